//! The vendor's response envelope: `callId`, `time`, `apiVersion`, `errorCode`,
//! `statusCode`/`statusReason`, and `errorMessage`/`errorDetails`/`validationErrors` on
//! errors; JSON or JSONP; HTTP 200 unless `httpStatusCodes=true`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::params::{Params, parse_bool};

/// An error answered in the envelope.
#[derive(Clone, Debug, PartialEq)]
pub struct VendorError {
    /// The vendor's `errorCode` (400006, 403005, …).
    pub code: u32,
    /// `errorMessage`: the standard text of the code.
    pub message: String,
    /// `errorDetails`: what exactly was wrong.
    pub details: String,
    /// `validationErrors`: the fields at fault, as `{errorCode, message, fieldName}`.
    pub validation_errors: Vec<Value>,
}

impl VendorError {
    /// An error with the standard message of `code`.
    pub fn new(code: u32, details: impl Into<String>) -> VendorError {
        VendorError {
            code,
            message: crate::error::vendor_message_for(code).to_owned(),
            details: details.into(),
            validation_errors: Vec::new(),
        }
    }

    /// The envelope error of a library error (codes and texts from [`crate::error`]);
    /// `query_text` lets a parse error name its line and column. An internal failure
    /// (500001) is logged with its cause here, once for every front end of the server.
    pub fn from_error(e: &crate::Error, query_text: Option<&str>) -> VendorError {
        if e.is_internal() {
            tracing::error!(error = %e, "engine failure");
        }
        VendorError {
            code: e.vendor_code(),
            message: e.vendor_message().to_owned(),
            details: e.details(query_text),
            validation_errors: e.validation_errors(),
        }
    }

    /// 400002 for the parameter `name`.
    pub fn missing(name: &str) -> VendorError {
        VendorError::new(400002, format!("Missing required parameter: {name}"))
    }

    /// 400006 for the parameter `name`, with a validation error naming it.
    pub fn invalid(name: &str, why: impl Into<String>) -> VendorError {
        let why = why.into();
        let mut e = VendorError::new(400006, format!("{name}: {why}"));
        e.validation_errors
            .push(json!({"errorCode": 400006, "message": why, "fieldName": name}));
        e
    }

    /// The HTTP status the code stands for (`403005` → 403).
    pub fn http_status(&self) -> StatusCode {
        status_of(self.code)
    }
}

fn status_of(code: u32) -> StatusCode {
    if code == 0 {
        return StatusCode::OK;
    }
    u16::try_from(code / 1000)
        .ok()
        .filter(|s| (200..600).contains(s))
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// How to shape the response: read from the request before anything else, so that even
/// an authentication error comes back in the format the caller asked for.
#[derive(Clone, Debug, Default)]
pub struct ResponseShape {
    /// `httpStatusCodes=true`.
    pub http_status_codes: bool,
    /// `format=jsonp`: the validated `callback`.
    pub jsonp_callback: Option<String>,
    /// `context`, echoed unchanged.
    pub context: Option<String>,
}

impl ResponseShape {
    /// Reads `format`, `callback`, `httpStatusCodes` and `context`. Problems with them are
    /// reported as an error while still honouring whatever could be read.
    pub fn from_params(params: &Params) -> (ResponseShape, Option<VendorError>) {
        let mut shape = ResponseShape {
            context: params.get("context").map(str::to_owned),
            ..Default::default()
        };
        let mut error = None;
        match params.get_nonempty("httpStatusCodes").map(parse_bool) {
            None => {}
            Some(Some(b)) => shape.http_status_codes = b,
            Some(None) => {
                error = Some(VendorError::invalid(
                    "httpStatusCodes",
                    "expected true or false",
                ))
            }
        }
        match params
            .get_nonempty("format")
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("json") => {}
            Some("jsonp") => match params.get_nonempty("callback") {
                Some(cb) if valid_callback(cb) => shape.jsonp_callback = Some(cb.to_owned()),
                Some(_) => {
                    error = error.or(Some(VendorError::invalid(
                        "callback",
                        "must be a JavaScript identifier path (letters, digits, _, $, .)",
                    )))
                }
                None => error = error.or(Some(VendorError::missing("callback"))),
            },
            Some(other) => {
                error = error.or(Some(VendorError::invalid(
                    "format",
                    format!("`{other}` is not supported (json, jsonp)"),
                )))
            }
        }
        (shape, error)
    }
}

/// A callback name that cannot inject script: `a.b_c$1`.
fn valid_callback(cb: &str) -> bool {
    cb.len() <= 128
        && !cb.starts_with('.')
        && !cb.ends_with('.')
        && !cb.contains("..")
        && cb
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'$' | b'.'))
        && !cb.as_bytes()[0].is_ascii_digit()
}

/// A 32-hex-digit call id.
pub fn new_call_id() -> String {
    let bytes: [u8; 16] = rand::random();
    hex::encode(bytes)
}

/// Now as `yyyy-mm-ddThh:mm:ss.SSSZ`, the format of the store's timestamps.
pub fn now_iso() -> String {
    crate::store::time::iso_from_millis(crate::store::time::now_millis())
}

/// Builds the response: `body` holds the method's members (results, UID, …); the envelope
/// members are added after them. `error` turns it into an error envelope.
pub fn respond(
    shape: &ResponseShape,
    call_id: &str,
    body: Map<String, Value>,
    error: Option<&VendorError>,
) -> Response {
    let mut out = body;
    let code = error.map_or(0, |e| e.code);
    let status = status_of(code);
    if let Some(ctx) = &shape.context {
        out.insert("context".into(), Value::String(ctx.clone()));
    }
    out.insert("statusCode".into(), json!(status.as_u16()));
    out.insert("errorCode".into(), json!(code));
    if let Some(e) = error {
        out.insert("errorMessage".into(), json!(e.message));
        out.insert("errorDetails".into(), json!(e.details));
        if !e.validation_errors.is_empty() {
            out.insert(
                "validationErrors".into(),
                Value::Array(e.validation_errors.clone()),
            );
        }
    }
    out.insert(
        "statusReason".into(),
        json!(status.canonical_reason().unwrap_or("Error")),
    );
    out.insert("callId".into(), json!(call_id));
    out.insert("time".into(), json!(now_iso()));
    out.insert("apiVersion".into(), json!(2));
    let json = serde_json::to_string(&Value::Object(out)).unwrap_or_else(|_| "{}".into());
    let http = if shape.http_status_codes {
        status
    } else {
        StatusCode::OK
    };
    let (text, content_type) = match &shape.jsonp_callback {
        Some(cb) => (
            format!("{cb}({json});"),
            "application/javascript; charset=utf-8",
        ),
        None => (json, "application/json; charset=utf-8"),
    };
    let mut response = (http, text).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_format() {
        let t = now_iso();
        assert_eq!(t.len(), 24, "{t}");
        assert!(
            t.ends_with('Z') && t.as_bytes()[10] == b'T' && t.as_bytes()[19] == b'.',
            "{t}"
        );
    }

    #[test]
    fn call_ids_are_32_hex() {
        let id = new_call_id();
        assert_eq!(id.len(), 32);
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_ne!(id, new_call_id());
    }

    #[test]
    fn status_follows_the_code() {
        assert_eq!(status_of(0), StatusCode::OK);
        assert_eq!(status_of(400006), StatusCode::BAD_REQUEST);
        assert_eq!(status_of(403005), StatusCode::FORBIDDEN);
        assert_eq!(status_of(504002), StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(status_of(200008), StatusCode::OK);
        assert_eq!(status_of(100001), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn callbacks_cannot_inject() {
        assert!(valid_callback("cb"));
        assert!(valid_callback("window.$app.cb_1"));
        assert!(!valid_callback("alert(1)//"));
        assert!(!valid_callback("1cb"));
        assert!(!valid_callback("a..b"));
        assert!(!valid_callback("a<b"));
    }
}
