//! What operators and load balancers call: `GET /healthz` (the process answers),
//! `GET /readyz` (the store is open and answers a read), and the vendor-shaped answer to
//! an HTTP method a path does not take.

use std::time::Duration;

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, json};

use super::cors::ALLOW;
use super::envelope::{ResponseShape, VendorError, new_call_id, respond};
use crate::engine::Engine;

/// How long `/readyz` waits for the store before it says not ready.
const READY_WAIT: Duration = Duration::from_secs(5);

/// `GET /healthz`: 200 while the process serves requests.
pub(crate) async fn healthz() -> Response {
    axum::Json(json!({"status": "ok"})).into_response()
}

/// `GET /readyz`: 200 when a read on the store succeeds within 5 s, else 503 with why.
pub(crate) async fn readyz(engine: Engine) -> Response {
    let probe = tokio::task::spawn_blocking(move || engine.ping().map_err(|e| e.to_string()));
    let error = match tokio::time::timeout(READY_WAIT, probe).await {
        Ok(Ok(Ok(_))) => return axum::Json(json!({"status": "ready"})).into_response(),
        Ok(Ok(Err(e))) => e,
        Ok(Err(_)) => "the probe failed".to_owned(),
        Err(_) => format!("the store did not answer within {} s", READY_WAIT.as_secs()),
    };
    (
        StatusCode::SERVICE_UNAVAILABLE,
        axum::Json(json!({"status": "unavailable", "error": error})),
    )
        .into_response()
}

/// An HTTP method a path does not take: 405 with `Allow` and the vendor's envelope
/// (`errorCode` 405000), whatever `httpStatusCodes` says, since no method ran.
pub(crate) async fn method_not_allowed(request: Request) -> Response {
    let error = VendorError {
        code: 405_000,
        message: "Method not allowed".into(),
        details: format!("HTTP {} is not allowed here; use {ALLOW}", request.method()),
        validation_errors: Vec::new(),
    };
    let mut response = respond(
        &ResponseShape::default(),
        &new_call_id(),
        Map::new(),
        Some(&error),
    );
    *response.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(ALLOW));
    response
}
