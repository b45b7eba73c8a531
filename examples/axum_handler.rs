//! Embed the engine in your own axum application: a handler of yours that searches, next
//! to acql's own REST methods mounted under `/gigya`.
//!
//! ```text
//! cargo run --example axum_handler
//! ```
//!
//! The engine is synchronous (SQLite), so handlers call it on tokio's blocking pool.
//! Requests here go straight to the router (`tower::ServiceExt::oneshot`); to serve them,
//! hand the same router to `axum::serve` with a `tokio::net::TcpListener`.

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{Request, StatusCode};
use axum::routing::get;
use serde_json::{Value, json};
use tower::ServiceExt;

use acql::engine::{Engine, SearchOptions};
use acql::server::ServerConfig;
use acql::store::OpenMode;

/// `GET /countries/top?n=3`: the countries with the most accounts.
async fn top_countries(
    State(engine): State<Engine>,
    Query(params): Query<std::collections::HashMap<String, String>>,
) -> Result<axum::Json<Value>, (StatusCode, String)> {
    let n: u32 = params.get("n").and_then(|n| n.parse().ok()).unwrap_or(5);
    // The limit is a number we parsed, never user text spliced into the query.
    let query = format!(
        "SELECT profile.country, count(*) FROM emailAccounts GROUP BY profile.country LIMIT {n}"
    );
    let page =
        tokio::task::spawn_blocking(move || engine.search(&query, &SearchOptions::default()))
            .await
            .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
            .map_err(|e| (StatusCode::BAD_REQUEST, e.to_string()))?;
    Ok(axum::Json(json!({ "countries": page.results })))
}

async fn body_json(response: axum::response::Response) -> Value {
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("a body");
    serde_json::from_slice(&bytes).expect("JSON")
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let engine = Engine::open(dir.path().join("accounts.db"), OpenMode::Create)?;
    engine.import_generated(1_000, 3)?;

    // The default config has no credentials: fine on loopback, never on a public address
    // (see `ServerConfig::with_credential`).
    let app = Router::new()
        .route("/countries/top", get(top_countries))
        .with_state(engine.clone())
        .nest_service(
            "/gigya",
            acql::server::router(engine, ServerConfig::default()),
        );

    let mine = app
        .clone()
        .oneshot(Request::get("/countries/top?n=3").body(Body::empty())?)
        .await?;
    assert_eq!(mine.status(), StatusCode::OK);
    let mine = body_json(mine).await;
    println!("your handler: {mine}");
    assert_eq!(mine["countries"].as_array().map(Vec::len), Some(3));

    let vendor = app
        .oneshot(
            Request::post("/gigya/accounts.search")
                .header("content-type", "application/x-www-form-urlencoded")
                .body(Body::from("query=SELECT+count(*)+FROM+emailAccounts"))?,
        )
        .await?;
    let vendor = body_json(vendor).await;
    println!("acql's accounts.search: {vendor}");
    assert_eq!(vendor["errorCode"], 0);
    assert_eq!(vendor["results"][0]["count(*)"], 1000);
    Ok(())
}
