//! Store errors, with the vendor's error codes and messages (spec §4).

use std::path::PathBuf;

use serde::Serialize;

/// One entry of a `validationErrors` array: which field is at fault and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ValidationError {
    /// The vendor code of this field's error (400006 for an invalid value).
    pub error_code: u32,
    /// What is wrong, e.g. `"Invalid email address"`.
    pub message: String,
    /// The dotted field name, e.g. `"profile.email"` or
    /// `"subscriptions.newsletter.email.isSubscribed"`.
    pub field_name: String,
}

impl ValidationError {
    /// An invalid-value (400006) error on `field`.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> ValidationError {
        ValidationError {
            error_code: 400_006,
            message: message.into(),
            field_name: field.into(),
        }
    }
}

/// A line of an NDJSON import that was refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BadLine {
    /// 1-based line number in the input.
    pub line: u64,
    /// Why the line was refused.
    pub reason: String,
}

/// A store operation failed.
///
/// Caller errors carry the vendor's codes ([`StoreError::vendor_code`], mapped in
/// [`crate::error`]); database, I/O and internal failures map to 500001.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// SQLite failed.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL failed (a `postgres://` database).
    #[cfg(feature = "postgres")]
    #[error("database error: {}", postgres_message(.0))]
    Postgres(#[from] postgres::Error),
    /// Reading or writing a stream (import/export) failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// A stored document is not valid JSON (the file was edited outside acql).
    #[error("stored document is corrupt: {0}")]
    CorruptDocument(String),
    /// The database file does not exist (read-only commands never create one).
    #[error("no database at {0}")]
    NotFound(PathBuf),
    /// The file is not an acql store (another program's SQLite file, or not SQLite at
    /// all); it was left unchanged.
    #[error("{0} is not an acql database: {1}")]
    NotAStore(PathBuf, String),
    /// The file was written by an older acql; a command that writes upgrades it.
    #[error(
        "{path} has acql's layout version {found}; open it once with a command that writes (the REPL, `acql import`, `acql serve`) to upgrade it to version {supported}"
    )]
    SchemaTooOld {
        /// The file.
        path: PathBuf,
        /// The file's version.
        found: i64,
        /// This build's version.
        supported: i64,
    },
    /// The store was opened read-only ([`OpenMode::ReadOnly`](super::OpenMode::ReadOnly)).
    #[error("the store was opened read-only")]
    ReadOnly,
    /// Another process is importing into the file exclusively and the caller chose not to
    /// wait for its commit ([`WaitForImport::limit`](super::WaitForImport::limit)).
    #[error("an import into {0} is in progress; try again when it has committed")]
    ImportInProgress(PathBuf),
    /// Another connection held the write lock for longer than this write would wait (a
    /// long import in another process, for instance).
    #[error(
        "the store is busy: another process is writing to it (an import holds the write lock until it commits); try again later"
    )]
    Busy,
    /// The file was written by a newer acql.
    #[error("database schema version {found} is newer than this acql supports ({supported})")]
    SchemaTooNew {
        /// The file's version.
        found: i64,
        /// This build's version.
        supported: i64,
    },
    /// 400002: a required parameter is missing.
    #[error("Missing required parameter: {name}")]
    MissingParameter {
        /// The parameter's name, e.g. `email`.
        name: String,
    },
    /// 400006: a parameter has an invalid value; `errors` names the fields at fault.
    #[error("{details}")]
    InvalidValue {
        /// A one-line summary (`errorDetails`).
        details: String,
        /// The fields at fault (`validationErrors`); may be empty.
        errors: Vec<ValidationError>,
    },
    /// 400003: `importFullAccount` with a UID that exists.
    #[error("User already exists: UID {uid}")]
    IdentifierExists {
        /// The UID.
        uid: String,
    },
    /// 403005: no account with this UID (or email-account token).
    #[error("Unknown account: {what}")]
    UnknownAccount {
        /// Which identifier was not found, e.g. `UID 1234`.
        what: String,
    },
    /// 400006: a bulk import line was refused (atomic mode: nothing was imported).
    #[error("line {line}: {reason}")]
    BadImportLine {
        /// 1-based line number.
        line: u64,
        /// Why.
        reason: String,
    },
    /// 400006: an index declaration is invalid (bad pattern, unknown index, duplicate).
    #[error("index: {0}")]
    Index(String),
    /// 500001: something that cannot happen did (a bug, or a worker thread that stopped);
    /// never the caller's mistake.
    #[error("internal error: {0}")]
    Internal(String),
}

/// A PostgreSQL error as text: the server's own message (with its detail and hint) when
/// the server refused a statement, where `postgres::Error` alone says only "db error".
#[cfg(feature = "postgres")]
fn postgres_message(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => db.to_string(),
        None => e.to_string(),
    }
}

impl StoreError {
    /// The `validationErrors` of a 400006 error; empty for every other error.
    pub fn validation_errors(&self) -> &[ValidationError] {
        match self {
            StoreError::InvalidValue { errors, .. } => errors,
            _ => &[],
        }
    }

    /// A 400006 error on one field.
    pub(crate) fn invalid_field(
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> StoreError {
        let error = ValidationError::invalid(field, message);
        StoreError::InvalidValue {
            details: format!("{}: {}", error.field_name, error.message),
            errors: vec![error],
        }
    }

    /// A 400002 error.
    pub(crate) fn missing(name: &str) -> StoreError {
        StoreError::MissingParameter {
            name: name.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_messages_and_details() {
        let e = StoreError::missing("email");
        assert_eq!(
            (e.vendor_code(), e.vendor_message()),
            (400_002, "Missing required parameter")
        );
        assert_eq!(e.to_string(), "Missing required parameter: email");
        let e = StoreError::invalid_field("profile.email", "Invalid email address");
        assert_eq!(
            (e.vendor_code(), e.vendor_message()),
            (400_006, "Invalid parameter value")
        );
        assert_eq!(e.to_string(), "profile.email: Invalid email address");
        assert_eq!(e.validation_errors()[0].field_name, "profile.email");
        let json = serde_json::to_value(&e.validation_errors()[0]).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"errorCode": 400006, "message": "Invalid email address", "fieldName": "profile.email"})
        );
        let e = StoreError::IdentifierExists { uid: "u1".into() };
        assert_eq!(
            (e.vendor_code(), e.vendor_message()),
            (400_003, "Unique identifier exists")
        );
        let e = StoreError::UnknownAccount {
            what: "UID u1".into(),
        };
        assert_eq!(
            (e.vendor_code(), e.vendor_message()),
            (403_005, "Unauthorized user")
        );
        assert_eq!(e.to_string(), "Unknown account: UID u1");
        let e = StoreError::BadImportLine {
            line: 3,
            reason: "not JSON".into(),
        };
        assert_eq!(
            (e.vendor_code(), e.to_string().as_str()),
            (400_006, "line 3: not JSON")
        );
        assert!(e.validation_errors().is_empty());
    }
}
