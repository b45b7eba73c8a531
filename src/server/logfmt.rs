//! The request log on stderr: text lines, or one JSON object per event
//! (`--log-format json`) for log collectors:
//! `{"timestamp":"2026-11-23T15:41:32.123Z","level":"INFO","target":"acql::server::routes","message":"request","call_id":"…",…}`.

use std::fmt;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use super::config::LogFormat;

/// Installs the stderr subscriber. A second one (the CLI may have installed one) is not
/// an error: the first stays.
pub(crate) fn init(level: tracing::Level, format: LogFormat) {
    let builder = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
        LogFormat::Json => builder.with_ansi(false).event_format(Json).try_init(),
    };
}

/// Formats each event as one JSON object on one line.
pub(crate) struct Json;

impl<S, N> FormatEvent<S, N> for Json
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        writeln!(writer, "{}", event_json(event))
    }
}

/// The JSON object of one event.
fn event_json(event: &Event<'_>) -> Value {
    let meta = event.metadata();
    let mut fields = Fields(Map::new());
    fields.0.insert(
        "timestamp".into(),
        Value::String(super::envelope::now_iso()),
    );
    fields
        .0
        .insert("level".into(), Value::String(meta.level().to_string()));
    fields
        .0
        .insert("target".into(), Value::String(meta.target().to_owned()));
    event.record(&mut fields);
    Value::Object(fields.0)
}

/// Collects an event's fields; numbers and booleans stay JSON numbers and booleans.
struct Fields(Map<String, Value>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().to_owned(), Value::String(format!("{value:?}")));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0
            .insert(field.name().to_owned(), Value::String(value.to_owned()));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_owned(), value.into());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), value.into());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_owned(), value.into());
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().to_owned(), value.into());
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn each_event_is_one_json_line() {
        let buffer = Buffer::default();
        let sink = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || sink.clone())
            .with_ansi(false)
            .event_format(Json)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(call_id = "abc", error_code = 403003_u64, ok = false, peer = %"127.0.0.1:9", "request");
            tracing::warn!("quote \" and\nnewline");
        });
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        let first: Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(first["level"], "INFO");
        assert_eq!(first["message"], "request");
        assert_eq!(first["call_id"], "abc");
        assert_eq!(first["error_code"], 403003);
        assert_eq!(first["ok"], false);
        assert_eq!(first["peer"], "127.0.0.1:9");
        assert!(first["target"].as_str().unwrap().contains("logfmt"));
        assert_eq!(first["timestamp"].as_str().unwrap().len(), 24);
        let second: Value = serde_json::from_str(lines[1]).unwrap();
        assert_eq!(second["message"], "quote \" and\nnewline");
    }
}
