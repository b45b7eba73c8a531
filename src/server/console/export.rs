//! Downloads of a query's records as NDJSON or CSV, streamed to the client with no cap on
//! their size or on how long the client takes to read them.
//!
//! A query without `LIMIT`, `START`, `GROUP BY` or aggregates is read through a cursor in
//! pages of [`PAGE`] records: each page is its own short query (with the usual timeout), so
//! a long download never runs into the query timeout, and a page is sent before the next
//! is read, so memory stays at one page however slow the client. Other queries (bounded
//! by their LIMIT, or grouped) are streamed in one go.
//!
//! CSV needs every column before its header row: the records are spilled to a temporary
//! file as NDJSON while the columns are gathered, then written as rows. Nested objects
//! become dotted columns (`profile.firstName`); arrays stay whole as JSON text, as in
//! `acql --format csv`.

use std::io::{self, BufRead, BufWriter, Seek, Write};
use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use crate::engine::{Engine, SearchOptions};
use crate::span::{Span, Spanned};

/// Records per cursor page of a download (the engine's largest LIMIT).
pub const PAGE: u64 = crate::plan::MAX_LIMIT;
/// Bytes gathered before a chunk is handed to the connection.
const CHUNK: usize = 64 * 1024;

/// A download format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// One compact JSON record per line.
    Ndjson,
    /// RFC 4180 CSV with a header row.
    Csv,
}

impl Format {
    /// `ndjson` or `csv`.
    pub fn from_name(name: &str) -> Option<Format> {
        match name {
            "ndjson" => Some(Format::Ndjson),
            "csv" => Some(Format::Csv),
            _ => None,
        }
    }
}

/// Starts the download of `query` in `format`. Errors found before the first byte (a bad
/// query) come back as `Err`; later ones (the store failing mid-way) end the body with an
/// error, so the client sees a failed download rather than a short file.
pub async fn download(
    engine: Engine,
    query: String,
    format: Format,
) -> Result<Response, crate::Error> {
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(4);
    let (ready_tx, ready_rx) = oneshot::channel::<Result<(), crate::Error>>();
    tokio::task::spawn_blocking(move || {
        let mut out = Sender::new(tx);
        let mut ready = Some(ready_tx);
        let result = match format {
            Format::Ndjson => write_ndjson(&engine, &query, &mut out, &mut ready),
            Format::Csv => write_csv(&engine, &query, &mut out, &mut ready),
        };
        match (result, ready.take()) {
            (Err(e), Some(ready)) => {
                let _ = ready.send(Err(e));
            }
            (Err(e), None) => {
                tracing::warn!(error = %e, "console download failed mid-way");
                out.fail(&e.to_string());
            }
            (Ok(()), ready) => {
                if let Some(ready) = ready {
                    let _ = ready.send(Ok(()));
                }
                out.flush();
            }
        }
    });
    match ready_rx.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(e),
        Err(_) => {
            return Err(crate::exec::ExecError::Cancelled.into());
        }
    }
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let (content_type, name) = match format {
        Format::Ndjson => ("application/x-ndjson", "acql-results.ndjson"),
        Format::Csv => ("text/csv; charset=utf-8", "acql-results.csv"),
    };
    let mut response = Body::from_stream(stream).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// Buffers bytes and hands them to the response body in chunks; notices a client that
/// went away (the receiver is dropped) and cancels the query through `cancel`.
struct Sender {
    tx: mpsc::Sender<io::Result<Bytes>>,
    buf: Vec<u8>,
    cancel: Arc<AtomicBool>,
}

impl Sender {
    fn new(tx: mpsc::Sender<io::Result<Bytes>>) -> Sender {
        Sender {
            tx,
            buf: Vec::with_capacity(CHUNK),
            cancel: Arc::new(AtomicBool::new(false)),
        }
    }

    fn gone(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    /// Appends `bytes`; false once the client is gone.
    fn push(&mut self, bytes: &[u8]) -> bool {
        self.buf.extend_from_slice(bytes);
        if self.buf.len() >= CHUNK {
            self.flush();
        }
        !self.gone()
    }

    fn flush(&mut self) {
        if self.buf.is_empty() || self.gone() {
            return;
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        if self.tx.blocking_send(Ok(chunk)).is_err() {
            self.cancel.store(true, Ordering::Relaxed);
        }
    }

    fn fail(&mut self, why: &str) {
        self.flush();
        let _ = self.tx.blocking_send(Err(io::Error::other(why.to_owned())));
    }

    fn options(&self) -> SearchOptions {
        SearchOptions {
            cancel: Some(Arc::clone(&self.cancel)),
            ..SearchOptions::default()
        }
    }
}

type Ready = Option<oneshot::Sender<Result<(), crate::Error>>>;

/// Hands every record of `query` to `sink` as compact JSON text. Reports readiness (the
/// query parsed, planned and produced its first page) through `ready`.
fn records(
    engine: &Engine,
    query: &str,
    options: &SearchOptions,
    ready: &mut Ready,
    sink: &mut dyn FnMut(&[u8]) -> ControlFlow<()>,
) -> Result<(), crate::Error> {
    let mut ast = crate::parse(query)?;
    // Planned as written first, so that errors point into the text the user wrote.
    engine.prepare(query)?;
    let pageable = ast.limit.is_none() && crate::plan::validate_cursor(&ast).is_ok();
    if !pageable {
        signal(ready);
        engine.stream_json(query, options, sink)?;
        return Ok(());
    }
    ast.limit = Some(Spanned::new(PAGE, Span::default()));
    let paged = ast.to_string();
    let cursor_options = SearchOptions {
        open_cursor: true,
        ..options.clone()
    };
    let mut page = engine.search(&paged, &cursor_options)?;
    signal(ready);
    let mut line = Vec::new();
    loop {
        for record in &page.results {
            line.clear();
            serde_json::to_writer(&mut line, record).map_err(io_error)?;
            if sink(&line).is_break() {
                return Ok(());
            }
        }
        match page.next_cursor_id.take() {
            Some(id) => page = engine.search_cursor(&id, options)?,
            None => return Ok(()),
        }
    }
}

fn signal(ready: &mut Ready) {
    if let Some(ready) = ready.take() {
        let _ = ready.send(Ok(()));
    }
}

fn io_error(e: impl std::fmt::Display) -> crate::Error {
    crate::store::StoreError::Io(io::Error::other(e.to_string())).into()
}

fn write_ndjson(
    engine: &Engine,
    query: &str,
    out: &mut Sender,
    ready: &mut Ready,
) -> Result<(), crate::Error> {
    let options = out.options();
    records(engine, query, &options, ready, &mut |json| {
        if out.push(json) && out.push(b"\n") {
            ControlFlow::Continue(())
        } else {
            ControlFlow::Break(())
        }
    })
}

fn write_csv(
    engine: &Engine,
    query: &str,
    out: &mut Sender,
    ready: &mut Ready,
) -> Result<(), crate::Error> {
    let options = out.options();
    let spill = tempfile::tempfile().map_err(io_error)?;
    let mut spill = BufWriter::new(spill);
    let mut columns = Columns::default();
    let mut failed = None;
    records(engine, query, &options, ready, &mut |json| {
        let written = serde_json::from_slice::<Value>(json)
            .map_err(io_error)
            .and_then(|v| {
                columns.gather(&v);
                spill
                    .write_all(json)
                    .and_then(|()| spill.write_all(b"\n"))
                    .map_err(io_error)
            });
        match written {
            Ok(()) => ControlFlow::Continue(()),
            Err(e) => {
                failed = Some(e);
                ControlFlow::Break(())
            }
        }
    })?;
    if let Some(e) = failed {
        return Err(e);
    }
    let mut file = spill.into_inner().map_err(io_error)?;
    file.rewind().map_err(io_error)?;
    let header: Vec<std::borrow::Cow<'_, str>> =
        columns.names.iter().map(|c| csv_field(c)).collect();
    let mut line = header.join(",");
    line.push_str("\r\n");
    if !out.push(line.as_bytes()) {
        return Ok(());
    }
    let mut cells = vec![String::new(); columns.names.len()];
    for text in io::BufReader::new(file).lines() {
        let value: Value = serde_json::from_str(&text.map_err(io_error)?).map_err(io_error)?;
        cells.iter_mut().for_each(String::clear);
        columns.place(&value, &mut cells);
        line.clear();
        for (i, c) in cells.iter().enumerate() {
            if i > 0 {
                line.push(',');
            }
            line.push_str(&csv_field(c));
        }
        line.push_str("\r\n");
        if !out.push(line.as_bytes()) {
            return Ok(());
        }
    }
    Ok(())
}

/// The CSV columns in order of first appearance.
#[derive(Default)]
struct Columns {
    names: Vec<String>,
    index: std::collections::HashMap<String, usize>,
}

impl Columns {
    /// Adds the columns of `value`'s leaves not seen before.
    fn gather(&mut self, value: &Value) {
        crate::value::for_each_leaf(value, &mut |name, _| {
            if !self.index.contains_key(name) {
                self.index.insert(name.to_owned(), self.names.len());
                self.names.push(name.to_owned());
            }
        });
    }

    /// Fills `cells` (one per column) with `value`'s leaves.
    fn place(&self, value: &Value, cells: &mut [String]) {
        crate::value::for_each_leaf(value, &mut |name, v| {
            if let Some(&i) = self.index.get(name) {
                cells[i] = cell_text(v);
            }
        });
    }
}

fn cell_text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Object(m) if m.is_empty() => "{}".into(),
        other => other.to_string(),
    }
}

/// A CSV field, quoted when it holds a comma, a quote or a line break (RFC 4180).
pub fn csv_field(text: &str) -> std::borrow::Cow<'_, str> {
    if text.contains([',', '"', '\n', '\r']) {
        std::borrow::Cow::Owned(format!("\"{}\"", text.replace('"', "\"\"")))
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

/// Flattens one record into (column, cell) pairs, for tests.
#[cfg(test)]
fn flatten(value: &Value) -> Vec<(String, String)> {
    let mut cols = Columns::default();
    cols.gather(value);
    let mut cells = vec![String::new(); cols.names.len()];
    cols.place(value, &mut cells);
    cols.names.into_iter().zip(cells).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nested_objects_become_dotted_columns() {
        let v = json!({"email": "a@b.c", "profile": {"age": 3, "likes": [1, 2]}, "data": {}, "n": null});
        assert_eq!(
            flatten(&v),
            [
                ("email".into(), "a@b.c".into()),
                ("profile.age".into(), "3".into()),
                ("profile.likes".into(), "[1,2]".into()),
                ("data".into(), "{}".into()),
                ("n".into(), String::new()),
            ]
        );
    }

    #[test]
    fn csv_quotes_per_rfc_4180() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
    }
}
