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
        500001 => "General Server error",
        503001 => "Service unavailable for this operation",
        504002 => "Request Timeout",
        _ => "Error",
    }
}

/// The vendor mapping: every library error becomes one `errorCode`, `errorMessage` and
/// `errorDetails`, here and nowhere else.
///
/// Client mistakes never map to 500001, 504001, 409030 or 403048: the vendor's SDKs
/// retry those codes (five attempts, five seconds apart). A query that runs past its
/// timeout is 504002 "Request Timeout", which they do not retry.
impl Error {
    /// The vendor's `errorCode`.
    pub fn vendor_code(&self) -> u32 {
        match self {
            Error::Parse(_) => 400006,
            Error::Plan(e) => e.vendor_code(),
            Error::Store(e) => e.vendor_code(),
            Error::Exec(e) => e.vendor_code(),
        }
    }

    /// The vendor's `errorMessage`: the standard text of [`Error::vendor_code`].
    pub fn vendor_message(&self) -> &'static str {
        vendor_message_for(self.vendor_code())
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
