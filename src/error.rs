//! The crate-wide error: one variant per layer, and the one place where errors map to
//! the vendor's error codes.

use crate::exec::ExecError;
use crate::parser::ParseError;
use crate::plan::PlanError;
use crate::store::StoreError;

/// Any error acql's library returns.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The query text does not parse. Boxed: a parse error carries its expected set and
    /// spans, and every `Result` in the crate would otherwise grow to its size.
    #[error("parse error: {0}")]
    Parse(Box<ParseError>),
    /// The query parses but cannot be planned (unknown collection, bad argument, …).
    #[error("plan error: {0}")]
    Plan(#[from] PlanError),
    /// A write was refused, or the database failed.
    #[error("store error: {0}")]
    Store(#[from] StoreError),
    /// Running a planned query failed.
    #[error("execution error: {0}")]
    Exec(#[from] ExecError),
}

impl From<ParseError> for Error {
    fn from(e: ParseError) -> Self {
        Error::Parse(Box::new(e))
    }
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The vendor's standard `errorMessage` of an error code.
pub fn vendor_message_for(code: u32) -> &'static str {
    match code {
        0 => "OK",
        400001 => "Invalid request format",
        400002 => "Missing required parameter",
        400003 => "Unique identifier exists",
        400004 => "Invalid parameter format",
        400006 => "Invalid parameter value",
        400009 => "Validation error",
        400093 => "Invalid ApiKey parameter",
        403002 => "Request has expired",
        403003 => "Invalid request signature",
        403004 => "Duplicate nonce",
        403005 => "Unauthorized user",
        403006 => "Secret Sent Over Http",
        403007 => "Permission denied",
        404000 => "Not found",
        500001 => "General Server Error",
        503001 => "Service unavailable for this operation",
        504002 => "Request Timeout",
        _ => "Error",
    }
}

/// The vendor mapping: every library error becomes one `errorCode`, `errorMessage` and
/// `errorDetails`, here and nowhere else (the layers' `vendor_code` methods are defined
/// in this module too).
///
/// Client mistakes never map to 500001, 504001, 409030 or 403048: the vendor's SDKs
/// retry those codes (five attempts, five seconds apart). A query that runs past its
/// timeout is 504002 "Request Timeout", which they do not retry. A failure that is not
/// the caller's (the database, I/O, a bug: [`StoreError::Internal`]) is 500001 "General
/// Server Error"; a front end logs its cause. Another process holding the database lock
/// past the wait is 503001, which asks the caller to retry later.
impl Error {
    /// The vendor's `errorCode`.
    pub fn vendor_code(&self) -> u32 {
        match self {
            Error::Parse(_) => 400_006,
            Error::Plan(e) => e.vendor_code(),
            Error::Store(e) => e.vendor_code(),
            Error::Exec(e) => e.vendor_code(),
        }
    }

    /// The vendor's `errorMessage`: the standard text of [`Error::vendor_code`].
    pub fn vendor_message(&self) -> &'static str {
        vendor_message_for(self.vendor_code())
    }

    /// Whether this is a failure of the engine or its database rather than of the
    /// request (500001): the one a front end should log with its cause.
    pub fn is_internal(&self) -> bool {
        self.vendor_code() == 500_001
    }

    /// `errorDetails`. A parse error names the line, the column, what was expected and what
    /// was found in `query_text` (when the query text is known).
    pub fn details(&self, query_text: Option<&str>) -> String {
        match (self, query_text) {
            (Error::Parse(e), Some(src)) => crate::diagnostic::summary(src, e),
            (Error::Parse(e), None) => e.to_string(),
            (Error::Plan(e), Some(src)) => match e.span() {
                Some(span) => {
                    let (line, column) = crate::span::Span::line_col(src, span.start);
                    format!("line {line}, column {column}: {e}")
                }
                None => e.to_string(),
            },
            (Error::Plan(e), None) => e.to_string(),
            (Error::Store(StoreError::Sqlite(e)), _) if is_lock_wait(e) => LOCK_WAIT.to_owned(),
            (Error::Exec(ExecError::Sqlite(e)), _) if is_lock_wait(e) => LOCK_WAIT.to_owned(),
            (Error::Store(e), _) => e.to_string(),
            (Error::Exec(e), _) => e.to_string(),
        }
    }

    /// `validationErrors`: `{errorCode, message, fieldName}` for each field at fault (empty
    /// when no single field is).
    pub fn validation_errors(&self) -> Vec<serde_json::Value> {
        match self {
            Error::Store(e) => e
                .validation_errors()
                .iter()
                .filter_map(|v| serde_json::to_value(v).ok())
                .collect(),
            _ => Vec::new(),
        }
    }
}

impl PlanError {
    /// The vendor error code: every planning error is an invalid parameter value.
    pub const fn vendor_code(&self) -> u32 {
        400_006
    }
}

impl ExecError {
    /// The vendor error code: 504002 for a timeout (a real timeout, not a client
    /// mistake, and not retried by the SDKs), 400006 for a bad or expired cursor or a
    /// cancelled query, 503001 when another process held the database lock past the wait,
    /// 500001 for any other database failure.
    pub fn vendor_code(&self) -> u32 {
        match self {
            ExecError::Timeout => 504_002,
            ExecError::InvalidCursor | ExecError::CursorExpired | ExecError::Cancelled => 400_006,
            ExecError::Sqlite(e) if is_lock_wait(e) => 503_001,
            ExecError::Sqlite(_) => 500_001,
        }
    }
}

impl StoreError {
    /// The vendor's `errorCode` for this error.
    pub fn vendor_code(&self) -> u32 {
        match self {
            StoreError::MissingParameter { .. } => 400_002,
            StoreError::InvalidValue { .. }
            | StoreError::BadImportLine { .. }
            | StoreError::Index(_) => 400_006,
            StoreError::IdentifierExists { .. } => 400_003,
            StoreError::UnknownAccount { .. } => 403_005,
            StoreError::Busy => 503_001,
            StoreError::Sqlite(e) if is_lock_wait(e) => 503_001,
            #[cfg(feature = "postgres")]
            StoreError::Postgres(_) => 500_001,
            StoreError::Sqlite(_)
            | StoreError::Io(_)
            | StoreError::CorruptDocument(_)
            | StoreError::NotFound(_)
            | StoreError::NotAStore(..)
            | StoreError::SchemaTooOld { .. }
            | StoreError::ReadOnly
            | StoreError::ImportInProgress(_)
            | StoreError::SchemaTooNew { .. }
            | StoreError::Internal(_) => 500_001,
        }
    }

    /// The vendor's `errorMessage` for [`StoreError::vendor_code`]; the `Display` text is
    /// the `errorDetails`.
    pub fn vendor_message(&self) -> &'static str {
        vendor_message_for(self.vendor_code())
    }
}

/// `errorDetails` of a statement that gave up waiting for another connection's lock: not
/// SQLite's "database is locked", which reads like a fault of this request.
const LOCK_WAIT: &str = "another process (a bulk import?) holds the lock of the database and kept it past this server's wait; retry later";

/// SQLite's `SQLITE_BUSY`/`SQLITE_LOCKED` after its busy timeout: another connection
/// held the database lock.
fn is_lock_wait(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

#[cfg(test)]
mod vendor_mapping_tests {
    use super::*;

    #[test]
    fn parse_errors_name_the_position() {
        let src = "SELECT * FROM";
        let e = Error::from(crate::parse(src).unwrap_err());
        assert_eq!(
            (e.vendor_code(), e.vendor_message()),
            (400006, "Invalid parameter value")
        );
        assert!(
            e.details(Some(src)).starts_with("line 1, column "),
            "{}",
            e.details(Some(src))
        );
        assert!(e.validation_errors().is_empty());
    }

    #[test]
    fn client_mistakes_are_never_retried_codes() {
        let timeout = Error::from(ExecError::Timeout);
        assert_eq!(
            (timeout.vendor_code(), timeout.vendor_message()),
            (504002, "Request Timeout")
        );
        assert_eq!(Error::from(ExecError::InvalidCursor).vendor_code(), 400006);
        let missing = Error::from(StoreError::MissingParameter {
            name: "email".into(),
        });
        assert_eq!(
            (missing.vendor_code(), missing.details(None).as_str()),
            (400002, "Missing required parameter: email")
        );
        let unknown = Error::from(StoreError::UnknownAccount {
            what: "UID x".into(),
        });
        assert_eq!(
            (unknown.vendor_code(), unknown.vendor_message()),
            (403005, "Unauthorized user")
        );
    }

    /// Internal failures are the server's (500001), never a client code the caller would
    /// look for in its request; a bad index declaration is the caller's (400006).
    #[test]
    fn internal_failures_are_general_server_errors() {
        let internal = Error::from(StoreError::Internal("an import worker stopped".into()));
        assert_eq!(
            (internal.vendor_code(), internal.vendor_message()),
            (500_001, "General Server Error")
        );
        assert!(internal.is_internal());
        let declared = Error::from(StoreError::Index("unknown index".into()));
        assert_eq!(declared.vendor_code(), 400_006);
        assert!(!declared.is_internal());
        let sqlite = Error::from(StoreError::Sqlite(rusqlite::Error::QueryReturnedNoRows));
        assert_eq!(sqlite.vendor_code(), 500_001);
    }

    /// Another process holding the lock is 503001 (retry later) with a readable reason,
    /// whichever layer met it.
    #[test]
    fn lock_waits_are_service_unavailable() {
        let locked = || {
            rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
                Some("database is locked".into()),
            )
        };
        for e in [
            Error::from(StoreError::Sqlite(locked())),
            Error::from(ExecError::Sqlite(locked())),
        ] {
            assert_eq!(
                (e.vendor_code(), e.vendor_message()),
                (503_001, "Service unavailable for this operation")
            );
            assert_eq!(e.details(None), LOCK_WAIT);
        }
        assert_eq!(Error::from(StoreError::Busy).vendor_code(), 503_001);
    }

    /// Every code the library produces has its own standard message.
    #[test]
    fn every_code_has_a_message() {
        for code in [
            400_002, 400_003, 400_006, 403_005, 500_001, 503_001, 504_002,
        ] {
            assert_ne!(vendor_message_for(code), "Error", "{code}");
        }
    }

    #[test]
    fn store_validation_errors_pass_through() {
        let e = Error::from(StoreError::InvalidValue {
            details: "profile.email: Invalid email address".into(),
            errors: vec![crate::store::ValidationError::invalid(
                "profile.email",
                "Invalid email address",
            )],
        });
        assert_eq!(e.validation_errors()[0]["fieldName"], "profile.email");
        assert_eq!(e.validation_errors()[0]["errorCode"], 400006);
    }
}
