//! CORS for configured browser origins, and `OPTIONS` on every path.
//!
//! A response to a request whose `Origin` is configured carries
//! `Access-Control-Allow-Origin` (the origin itself, or `*` when any origin is allowed);
//! other origins get no CORS headers, so browsers keep the response from their scripts.
//! No `Access-Control-Allow-Credentials`: the API authenticates with parameters, not
//! cookies. `OPTIONS` is answered `204` with `Allow` (and, for an allowed origin's
//! preflight, the methods and requested headers it may use).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The methods every path answers.
pub(crate) const ALLOW: &str = "GET, POST, OPTIONS";

/// How long a browser may cache a preflight answer, in seconds.
const MAX_AGE: &str = "600";

/// The configured origins.
#[derive(Clone, Debug, Default)]
pub(crate) struct Cors {
    origins: Vec<String>,
}

impl Cors {
    pub(crate) fn new(origins: &[String]) -> Cors {
        Cors {
            origins: origins.to_vec(),
        }
    }

    /// The `Access-Control-Allow-Origin` value for a request's `Origin`, if it is allowed.
    fn allow(&self, headers: &HeaderMap) -> Option<HeaderValue> {
        if self.origins.is_empty() {
            return None;
        }
        let origin = headers.get(header::ORIGIN)?;
        if self.origins.iter().any(|o| o == "*") {
            return Some(HeaderValue::from_static("*"));
        }
        let wanted = normalize_origin(origin.to_str().ok()?).ok()?;
        self.origins.contains(&wanted).then(|| origin.clone())
    }
}

/// An origin as browsers send it: `scheme://host[:port]`, lower-cased, no trailing `/`;
/// or `*`.
pub(crate) fn normalize_origin(text: &str) -> Result<String, String> {
    let t = text.trim().trim_end_matches('/');
    if t == "*" {
        return Ok(t.to_owned());
    }
    let lower = t.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
        .ok_or_else(|| format!("CORS origin `{text}`: expected http(s)://host[:port] or *"))?;
    let bad = |c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
    if rest.is_empty() || rest.contains(bad) {
        return Err(format!(
            "CORS origin `{text}`: expected http(s)://host[:port] or * (no path)"
        ));
    }
    Ok(lower)
}

/// The middleware: answers `OPTIONS`, adds CORS headers to everything else.
pub(crate) async fn layer(State(cors): State<Arc<Cors>>, request: Request, next: Next) -> Response {
    let allow_origin = cors.allow(request.headers());
    if request.method() == Method::OPTIONS {
        return preflight(allow_origin, request.headers());
    }
    let mut response = next.run(request).await;
    decorate(
        response.headers_mut(),
        allow_origin,
        !cors.origins.is_empty(),
    );
    response
}

fn decorate(headers: &mut HeaderMap, allow_origin: Option<HeaderValue>, configured: bool) {
    if configured {
        // The answer depends on the Origin: caches must not hand one origin's to another.
        headers.append(header::VARY, HeaderValue::from_static("Origin"));
    }
    if let Some(origin) = allow_origin {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    }
}

fn preflight(allow_origin: Option<HeaderValue>, request: &HeaderMap) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    let headers = response.headers_mut();
    headers.insert(header::ALLOW, HeaderValue::from_static(ALLOW));
    let configured = allow_origin.is_some() || request.contains_key(header::ORIGIN);
    if let Some(origin) = allow_origin {
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(ALLOW),
        );
        let requested = request
            .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
            .cloned()
            .unwrap_or_else(|| HeaderValue::from_static("Content-Type"));
        headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, requested);
        headers.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static(MAX_AGE),
        );
        decorate(headers, Some(origin), true);
    } else if configured {
        decorate(headers, None, true);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_normalised_and_checked() {
        assert_eq!(
            normalize_origin(" HTTPS://App.Example.com/ ").unwrap(),
            "https://app.example.com"
        );
        assert_eq!(
            normalize_origin("http://localhost:3000").unwrap(),
            "http://localhost:3000"
        );
        assert_eq!(normalize_origin("*").unwrap(), "*");
        for bad in [
            "app.example.com",
            "ftp://x",
            "https://",
            "https://a/b",
            "https://a b",
        ] {
            assert!(normalize_origin(bad).is_err(), "{bad}");
        }
    }

    fn with_origin(origin: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ORIGIN, HeaderValue::from_str(origin).unwrap());
        h
    }

    #[test]
    fn only_configured_origins_are_allowed() {
        let cors = Cors::new(&["https://app.example.com".into()]);
        assert_eq!(
            cors.allow(&with_origin("https://app.example.com")).unwrap(),
            "https://app.example.com"
        );
        assert_eq!(
            cors.allow(&with_origin("https://APP.example.com")).unwrap(),
            "https://APP.example.com",
            "the origin is echoed as sent"
        );
        assert!(
            cors.allow(&with_origin("https://evil.example.com"))
                .is_none()
        );
        assert!(cors.allow(&HeaderMap::new()).is_none());
        assert!(
            Cors::default()
                .allow(&with_origin("https://app.example.com"))
                .is_none()
        );
        let any = Cors::new(&["*".into()]);
        assert_eq!(any.allow(&with_origin("https://x.y")).unwrap(), "*");
    }
}
