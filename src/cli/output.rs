//! Result formats (json envelope, ndjson, table, csv, line, markdown) and a stdout that
//! ends quietly on a broken pipe.
//!
//! Rust ignores SIGPIPE, so `acql … | head` sees `EPIPE` as a write error; `println!` would
//! panic on it. Every result byte therefore goes through [`Out`], which turns a broken pipe
//! into [`CliError::BrokenPipe`] (exit 0, nothing printed).

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{self, BufWriter, Write};

use serde_json::Value;

use super::CliError;
use super::args::Format;

/// A buffered result stream (stdout, or a file for `export -o`).
pub struct Out {
    w: Box<dyn Write>,
    /// Whether this stream is a terminal (stdout only).
    pub is_terminal: bool,
}

impl Out {
    /// Standard output.
    pub fn stdout() -> Out {
        use std::io::IsTerminal;
        let stdout = io::stdout();
        let is_terminal = stdout.is_terminal();
        Out {
            w: Box::new(BufWriter::with_capacity(64 * 1024, stdout)),
            is_terminal,
        }
    }

    /// Any writer (a file, a buffer in tests).
    pub fn new(w: Box<dyn Write>) -> Out {
        Out {
            w,
            is_terminal: false,
        }
    }

    /// Writes all of `bytes`.
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), CliError> {
        self.w.write_all(bytes).map_err(CliError::from_write)
    }

    /// Writes a string.
    pub fn str(&mut self, s: &str) -> Result<(), CliError> {
        self.write(s.as_bytes())
    }

    /// Flushes; call at the end of every command.
    pub fn flush(&mut self) -> Result<(), CliError> {
        self.w.flush().map_err(CliError::from_write)
    }
}

/// What a finished query reports besides its records.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    /// Records printed.
    pub objects_count: u64,
    /// All matches.
    pub total_count: u64,
    /// The next page's cursor, when a cursor is open and more results remain.
    pub next_cursor_id: Option<String>,
    /// Said when the results were cut (`showing 300 of 85,658 — …`); the table prints it
    /// in its footer, the caller prints it on stderr for the other formats.
    pub notice: Option<String>,
}

/// `85658` as `85,658`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The json response envelope of one page, serialised without copying the records.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Envelope<'a> {
    results: &'a [Value],
    objects_count: u64,
    total_count: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor_id: Option<&'a str>,
}

/// Writes the json response envelope of one page.
pub fn write_envelope(out: &mut Out, results: &[Value], summary: &Summary) -> Result<(), CliError> {
    let env = Envelope {
        results,
        objects_count: summary.objects_count,
        total_count: summary.total_count,
        next_cursor_id: summary.next_cursor_id.as_deref(),
    };
    let mut text = serde_json::to_vec_pretty(&env).map_err(|e| CliError::failed(e.to_string()))?;
    text.push(b'\n');
    out.write(&text)
}

/// A consumer of records for the streaming formats.
pub trait RecordSink {
    /// One record.
    fn record(&mut self, out: &mut Out, record: &Value) -> Result<(), CliError>;
    /// The end of the results.
    fn finish(&mut self, out: &mut Out, summary: &Summary) -> Result<(), CliError>;
}

/// The sink of a format (`json` is written whole by [`write_envelope`], not streamed).
pub fn sink_for(format: Format, width: Option<usize>) -> Box<dyn RecordSink> {
    match format {
        Format::Json | Format::Ndjson => Box::new(Ndjson),
        Format::Csv => Box::new(Tabular::new(TabularStyle::Csv)),
        Format::Table => Box::new(Tabular::new(TabularStyle::Table { width })),
        Format::Markdown => Box::new(Tabular::new(TabularStyle::Markdown)),
        Format::Line => Box::new(Lines { count: 0 }),
    }
}

/// `.mode line`: one `name = value` per line, names right-aligned, a blank line between
/// records (sqlite3's line mode). Nested fields are dotted names, as in the table.
struct Lines {
    count: u64,
}

impl RecordSink for Lines {
    fn record(&mut self, out: &mut Out, record: &Value) -> Result<(), CliError> {
        let mut t = Tabular::new(TabularStyle::Csv);
        let row = t.place(record);
        let width = t.columns.iter().map(|c| text_width(c)).max().unwrap_or(0);
        let mut text = String::new();
        if self.count > 0 {
            text.push('\n');
        }
        self.count += 1;
        for (i, cell) in &row {
            let name = &t.columns[*i];
            let pad = width - text_width(name);
            text.extend(std::iter::repeat_n(' ', pad));
            let _ = writeln!(text, "{name} = {}", display_text(cell));
        }
        out.str(&text)
    }

    fn finish(&mut self, _out: &mut Out, _summary: &Summary) -> Result<(), CliError> {
        Ok(())
    }
}

/// One compact JSON document per line.
pub struct Ndjson;

impl RecordSink for Ndjson {
    fn record(&mut self, out: &mut Out, record: &Value) -> Result<(), CliError> {
        let mut line = serde_json::to_vec(record).map_err(|e| CliError::failed(e.to_string()))?;
        line.push(b'\n');
        out.write(&line)
    }

    fn finish(&mut self, _out: &mut Out, _summary: &Summary) -> Result<(), CliError> {
        Ok(())
    }
}

/// One cell's text and whether it is a number (right-aligned in tables).
#[derive(Clone, Debug, PartialEq)]
pub struct Cell {
    /// The text: strings raw, everything else as JSON; `null` is empty.
    pub text: String,
    /// A JSON number.
    pub numeric: bool,
    /// A JSON null.
    pub null: bool,
}

impl Cell {
    fn of(v: &Value) -> Cell {
        match v {
            Value::String(s) => Cell {
                text: s.clone(),
                numeric: false,
                null: false,
            },
            Value::Null => Cell {
                text: String::new(),
                numeric: false,
                null: true,
            },
            Value::Number(n) => Cell {
                text: n.to_string(),
                numeric: true,
                null: false,
            },
            other => Cell {
                text: other.to_string(),
                numeric: false,
                null: false,
            },
        }
    }
}

/// Quotes one CSV field per RFC 4180: fields holding a comma, a quote, CR or LF are
/// enclosed in quotes, with quotes doubled.
pub fn csv_field(text: &str) -> std::borrow::Cow<'_, str> {
    if text
        .bytes()
        .any(|b| matches!(b, b',' | b'"' | b'\r' | b'\n'))
    {
        std::borrow::Cow::Owned(format!("\"{}\"", text.replace('"', "\"\"")))
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TabularStyle {
    Csv,
    Table { width: Option<usize> },
    Markdown,
}

/// Rows read before the header is written: their columns make the header, their cells the
/// column widths. Then rows print as they arrive.
const PREVIEW_ROWS: usize = 1000;
/// No table column is wider than this before fitting to the terminal.
const MAX_COLUMN_WIDTH: usize = 60;
/// A header squeezed to fit the terminal keeps at least this many columns of its start.
const HEADER_FLOOR: usize = 14;

/// Table, Markdown and CSV: a header of every column, then one row per record.
///
/// Records differ in their fields, so the columns come from the first [`PREVIEW_ROWS`]
/// rows (held in memory); after the header the rows stream out as they arrive, in
/// constant memory. A column first seen later starts a new header in a table or Markdown
/// (the rows below it have it); CSV has one header, so such a field is left out and
/// counted, and `finish` says which fields were left out.
struct Tabular {
    style: TabularStyle,
    columns: Vec<String>,
    index: HashMap<String, usize>,
    /// Widest cell per column (headers not included), capped at [`MAX_COLUMN_WIDTH`].
    widths: Vec<usize>,
    numeric: Vec<bool>,
    preview: Vec<Vec<(usize, Cell)>>,
    /// The layout of the header written last (`None` until the preview ends).
    layout: Option<Layout>,
    /// How many columns the header written last had.
    headed: usize,
    count: u64,
    /// CSV rows that had fields outside the header, and those fields' columns.
    left_out_rows: u64,
    left_out: std::collections::BTreeSet<usize>,
}

impl Tabular {
    fn new(style: TabularStyle) -> Tabular {
        Tabular {
            style,
            columns: Vec::new(),
            index: HashMap::new(),
            widths: Vec::new(),
            numeric: Vec::new(),
            preview: Vec::new(),
            layout: None,
            headed: 0,
            count: 0,
            left_out_rows: 0,
            left_out: std::collections::BTreeSet::new(),
        }
    }

    /// Flattens a record into cells of dotted columns, in document order: objects recurse;
    /// arrays stay whole as compact JSON, because one cell per element would give every
    /// record its own columns; an empty object is a `{}` cell so it is not lost. A column
    /// name is allocated only the first time it is seen.
    fn place(&mut self, record: &Value) -> Vec<(usize, Cell)> {
        let mut row = Vec::new();
        acql::value::for_each_leaf(record, &mut |name, value| {
            row.push(self.cell(name, value));
        });
        row
    }

    /// The cell of one leaf, in the column `name` (added when new), widening the column.
    fn cell(&mut self, name: &str, value: &Value) -> (usize, Cell) {
        let i = match self.index.get(name) {
            Some(&i) => i,
            None => {
                let i = self.columns.len();
                self.widths.push(0);
                self.numeric.push(true);
                self.index.insert(name.to_string(), i);
                self.columns.push(name.to_string());
                i
            }
        };
        let cell = Cell::of(value);
        if self.style != TabularStyle::Csv {
            let w = text_width(&display_text(&cell));
            self.widths[i] = self.widths[i].max(w.min(MAX_COLUMN_WIDTH));
        }
        if !cell.numeric && !cell.null {
            self.numeric[i] = false;
        }
        (i, cell)
    }

    fn write_row(
        &self,
        out: &mut Out,
        row: &[(usize, Cell)],
        layout: &Layout,
    ) -> Result<(), CliError> {
        let mut cells: Vec<Option<&Cell>> = vec![None; self.headed];
        for (i, cell) in row {
            if let Some(slot) = cells.get_mut(*i) {
                *slot = Some(cell);
            }
        }
        let mut line = String::new();
        match self.style {
            TabularStyle::Markdown => {
                line.push('|');
                for cell in &cells {
                    line.push(' ');
                    if let Some(c) = cell {
                        let text = if c.null { "null" } else { c.text.as_str() };
                        line.push_str(&markdown_cell(text));
                    }
                    line.push_str(" |");
                }
                line.push('\n');
            }
            TabularStyle::Csv => {
                for (i, cell) in cells.iter().enumerate() {
                    if i > 0 {
                        line.push(',');
                    }
                    if let Some(c) = cell {
                        line.push_str(&csv_field(&c.text));
                    }
                }
                line.push_str("\r\n");
            }
            TabularStyle::Table { .. } => {
                for (slot, &col) in layout.shown.iter().enumerate() {
                    if slot > 0 {
                        line.push_str(" │ ");
                    }
                    let text = cells[col].map(display_text).unwrap_or_default();
                    push_cell(&mut line, &text, layout.widths[slot], self.numeric[col]);
                }
                if layout.hidden > 0 {
                    line.push_str(" │ …");
                }
                let trimmed = line.trim_end().len();
                line.truncate(trimmed);
                line.push('\n');
            }
        }
        out.str(&line)
    }
}

/// A cell as a table shows it: control characters escaped so a row stays on one line.
fn display_text(cell: &Cell) -> Cow<'_, str> {
    if cell.null {
        return Cow::Borrowed("null");
    }
    if cell.text.contains(|c: char| c.is_control()) {
        Cow::Owned(cell.text.escape_debug().to_string())
    } else {
        Cow::Borrowed(&cell.text)
    }
}

/// Display width in terminal columns. ASCII (the common case) is one column per byte;
/// only other text pays for `console`'s Unicode-aware measure.
fn text_width(s: &str) -> usize {
    if s.is_ascii() {
        s.len()
    } else {
        console::measure_text_width(s)
    }
}

/// Appends `text` truncated (with `…`) or padded to exactly `width` columns, numbers
/// aligned right.
fn push_cell(line: &mut String, text: &str, width: usize, right: bool) {
    let fitted: Cow<'_, str> = if text_width(text) <= width {
        Cow::Borrowed(text)
    } else if text.is_ascii() {
        Cow::Owned(format!("{}…", &text[..width.saturating_sub(1)]))
    } else {
        console::truncate_str(text, width, "…")
    };
    let pad = width.saturating_sub(text_width(&fitted));
    if right {
        line.extend(std::iter::repeat_n(' ', pad));
        line.push_str(&fitted);
    } else {
        line.push_str(&fitted);
        line.extend(std::iter::repeat_n(' ', pad));
    }
}

/// Keeps the start of a column name that does not fit (`subscriptions.news…`): a path is
/// read from its root, and the end alone (`…sSubscribed`) names no column for sure.
fn truncate_header(name: &str, width: usize) -> Cow<'_, str> {
    if text_width(name) <= width {
        Cow::Borrowed(name)
    } else {
        console::truncate_str(name, width, "…")
    }
}

/// The narrowest a header gets before its cells are squeezed: its first
/// [`HEADER_FLOOR`] columns.
fn compact_header_width(name: &str) -> usize {
    text_width(name).min(HEADER_FLOOR)
}

/// A Markdown table cell: `|` escaped, line breaks as `<br>`.
fn markdown_cell(text: &str) -> Cow<'_, str> {
    if text.contains(['|', '\n', '\r']) {
        Cow::Owned(
            text.replace('|', "\\|")
                .replace("\r\n", "<br>")
                .replace(['\n', '\r'], "<br>"),
        )
    } else {
        Cow::Borrowed(text)
    }
}

/// Which columns a table shows, and how wide.
struct Layout {
    shown: Vec<usize>,
    widths: Vec<usize>,
    hidden: usize,
}

/// Fits column widths into `limit` terminal columns. `natural` widths hold whole headers
/// and cells; when they do not fit, headers first shrink to their last segment
/// (`compact`), then the widest column shrinks one step at a time down to a floor, then
/// columns drop from the right (the last slot says `…`).
fn fit(natural: &[usize], compact: &[usize], limit: Option<usize>) -> Layout {
    let widths = natural;
    const SEP: usize = 3;
    // Below this a column says little; showing fewer, readable columns is better.
    const FLOOR: usize = 12;
    let mut shown: Vec<usize> = (0..widths.len()).collect();
    let mut w: Vec<usize> = widths.to_vec();
    let Some(limit) = limit else {
        return Layout {
            shown,
            widths: w,
            hidden: 0,
        };
    };
    let total = |w: &[usize], hidden: bool| {
        w.iter().sum::<usize>() + SEP * w.len().saturating_sub(1) + if hidden { SEP + 1 } else { 0 }
    };
    // Compact the headers that overshoot their cells most, one at a time, while too wide.
    while total(&w, false) > limit {
        let Some((i, _)) = w
            .iter()
            .zip(compact)
            .enumerate()
            .filter(|(_, (w, c))| w > c)
            .max_by_key(|(_, (w, c))| **w - **c)
        else {
            break;
        };
        w[i] = compact[i];
    }
    loop {
        let hidden = shown.len() < widths.len();
        if total(&w, hidden) <= limit {
            break;
        }
        // Shrink the widest column still above the floor.
        if let Some((i, _)) = w
            .iter()
            .enumerate()
            .filter(|(_, x)| **x > FLOOR)
            .max_by_key(|(_, x)| **x)
        {
            w[i] -= 1;
            continue;
        }
        if shown.len() <= 1 {
            // One column wider than the terminal: truncate it to what is left.
            w[0] = limit
                .saturating_sub(if hidden { SEP + 1 } else { 0 })
                .max(1);
            break;
        }
        shown.pop();
        w.pop();
    }
    let hidden = widths.len() - shown.len();
    Layout {
        shown,
        widths: w,
        hidden,
    }
}

impl Tabular {
    /// Lays out the columns seen so far and writes their header (and, the first time, the
    /// preview rows under it).
    fn write_header(&mut self, out: &mut Out) -> Result<(), CliError> {
        let limit = match self.style {
            TabularStyle::Table { width } => width,
            TabularStyle::Csv | TabularStyle::Markdown => None,
        };
        let natural: Vec<usize> = self
            .columns
            .iter()
            .zip(&self.widths)
            .map(|(c, w)| (*w).max(text_width(c)))
            .collect();
        let compact: Vec<usize> = self
            .columns
            .iter()
            .zip(&self.widths)
            .map(|(c, w)| (*w).max(compact_header_width(c)))
            .collect();
        let layout = fit(&natural, &compact, limit);
        self.headed = self.columns.len();
        if !self.columns.is_empty() {
            match self.style {
                TabularStyle::Csv => {
                    let header: Vec<_> = self.columns.iter().map(|c| csv_field(c)).collect();
                    out.str(&header.join(","))?;
                    out.str("\r\n")?;
                }
                TabularStyle::Markdown => {
                    let mut head = String::from("|");
                    let mut rule = String::from("|");
                    for (c, numeric) in self.columns.iter().zip(&self.numeric) {
                        let _ = write!(head, " {} |", markdown_cell(c));
                        rule.push_str(if *numeric { " ---: |" } else { " --- |" });
                    }
                    out.str(&head)?;
                    out.str("\n")?;
                    out.str(&rule)?;
                    out.str("\n")?;
                }
                TabularStyle::Table { .. } => {
                    let mut head = String::new();
                    let mut rule = String::new();
                    for (slot, &col) in layout.shown.iter().enumerate() {
                        if slot > 0 {
                            head.push_str(" │ ");
                            rule.push_str("─┼─");
                        }
                        let w = layout.widths[slot];
                        let name = truncate_header(&self.columns[col], w);
                        head.push_str(&console::pad_str(&name, w, console::Alignment::Left, None));
                        rule.push_str(&"─".repeat(w));
                    }
                    if layout.hidden > 0 {
                        head.push_str(" │ …");
                        rule.push_str("─┼──");
                    }
                    out.str(head.trim_end())?;
                    out.str("\n")?;
                    out.str(&rule)?;
                    out.str("\n")?;
                }
            }
        }
        self.layout = Some(layout);
        Ok(())
    }

    /// Ends the preview: the header, then the rows held so far.
    fn start(&mut self, out: &mut Out) -> Result<(), CliError> {
        self.write_header(out)?;
        let rows = std::mem::take(&mut self.preview);
        let layout = self.layout.take().expect("written above");
        for row in &rows {
            self.write_row(out, row, &layout)?;
        }
        self.layout = Some(layout);
        Ok(())
    }
}

impl RecordSink for Tabular {
    fn record(&mut self, out: &mut Out, record: &Value) -> Result<(), CliError> {
        self.count += 1;
        let placed = self.place(record);
        if self.layout.is_none() {
            self.preview.push(placed);
            if self.preview.len() >= PREVIEW_ROWS {
                self.start(out)?;
            }
            return Ok(());
        }
        if placed.iter().any(|(i, _)| *i >= self.headed) {
            if self.style == TabularStyle::Csv {
                self.left_out_rows += 1;
                self.left_out
                    .extend(placed.iter().map(|(i, _)| *i).filter(|i| *i >= self.headed));
            } else {
                // A column first seen now: a new header, so the rows below show it.
                out.str("\n")?;
                self.write_header(out)?;
            }
        }
        let layout = self.layout.take().expect("header written");
        let written = self.write_row(out, &placed, &layout);
        self.layout = Some(layout);
        written
    }

    fn finish(&mut self, out: &mut Out, summary: &Summary) -> Result<(), CliError> {
        if self.layout.is_none() {
            self.start(out)?;
        }
        let layout = self.layout.take().expect("header written");
        if self.left_out_rows > 0 {
            let names: Vec<&str> = self
                .left_out
                .iter()
                .take(5)
                .map(|i| self.columns[*i].as_str())
                .collect();
            let more = if self.left_out.len() > names.len() {
                format!(" and {} more", self.left_out.len() - names.len())
            } else {
                String::new()
            };
            eprintln!(
                "acql: {} rows had fields that the first {} rows did not ({}{more}); CSV has one header, so those fields were left out: name them in SELECT, or use ndjson",
                thousands(self.left_out_rows),
                thousands(PREVIEW_ROWS as u64),
                names.join(", ")
            );
        }
        if let TabularStyle::Table { width } = self.style {
            let mut footer = String::from("(");
            match &summary.notice {
                Some(notice) => footer.push_str(notice),
                None => {
                    let _ = write!(
                        footer,
                        "{} {}",
                        self.count,
                        if self.count == 1 { "row" } else { "rows" }
                    );
                    if summary.total_count != self.count {
                        let _ = write!(footer, ", totalCount {}", summary.total_count);
                    }
                }
            }
            if layout.hidden > 0 {
                let names: Vec<&str> = self.columns[layout.shown.len()..self.headed]
                    .iter()
                    .map(String::as_str)
                    .collect();
                let _ = write!(
                    footer,
                    "; {} more columns: {}",
                    layout.hidden,
                    names.join(", ")
                );
            }
            footer.push(')');
            // The footer obeys the width too; the hidden names are a hint, not data.
            // The notice itself is never cut.
            let footer = match width {
                Some(w) => {
                    let keep = summary.notice.as_ref().map_or(0, |n| text_width(n) + 2);
                    console::truncate_str(&footer, w.max(keep), "…)").into_owned()
                }
                None => footer,
            };
            out.str(&footer)?;
            out.str("\n")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn render(format: Format, width: Option<usize>, records: &[Value]) -> String {
        let buf = Buf::default();
        let mut out = Out::new(Box::new(buf.clone()));
        let mut sink = sink_for(format, width);
        for r in records {
            sink.record(&mut out, r).unwrap();
        }
        let summary = Summary {
            objects_count: records.len() as u64,
            total_count: records.len() as u64,
            ..Summary::default()
        };
        sink.finish(&mut out, &summary).unwrap();
        out.flush().unwrap();
        String::from_utf8(buf.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn flatten_makes_dotted_columns_and_keeps_arrays_whole() {
        let mut t = Tabular::new(TabularStyle::Csv);
        let row =
            t.place(&json!({"a": 1, "p": {"n": "x", "q": {"z": null}}, "t": [1, "b"], "e": {}}));
        assert_eq!(t.columns, ["a", "p.n", "p.q.z", "t", "e"]);
        assert_eq!(
            row.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
            [0, 1, 2, 3, 4]
        );
        assert_eq!(row[3].1.text, r#"[1,"b"]"#);
        assert_eq!(row[4].1.text, "{}");
        assert!(row[2].1.null);
        let again = t.place(&json!({"e": 2, "z": 3}));
        assert_eq!(again.iter().map(|(i, _)| *i).collect::<Vec<_>>(), [4, 5]);
    }

    #[test]
    fn csv_quotes_per_rfc_4180() {
        let text = render(
            Format::Csv,
            None,
            &[
                json!({"a": "x,y", "b": "say \"hi\""}),
                json!({"a": "line\nbreak", "c": 3}),
            ],
        );
        assert_eq!(
            text,
            "a,b,c\r\n\"x,y\",\"say \"\"hi\"\"\",\r\n\"line\nbreak\",,3\r\n"
        );
    }

    #[test]
    fn table_aligns_and_counts() {
        let text = render(
            Format::Table,
            None,
            &[
                json!({"n": "ann", "age": 7}),
                json!({"n": "bob", "age": 12}),
            ],
        );
        assert_eq!(
            text,
            "n   │ age\n────┼────\nann │   7\nbob │  12\n(2 rows)\n"
        );
    }

    #[test]
    fn table_fits_the_width() {
        let rec = json!({"email": "a-very-long-address@example.com", "profile": {"firstName": "Alexandra", "lastName": "Konstantinopoulou"}, "x": 1, "y": 2});
        let text = render(Format::Table, Some(40), &[rec]);
        for line in text.lines().take(3) {
            assert!(
                console::measure_text_width(line) <= 40,
                "{line:?} is wider than 40"
            );
        }
        assert!(text.contains('…'), "{text}");
    }

    #[test]
    fn long_headers_keep_their_start() {
        assert_eq!(
            truncate_header("subscriptions.newsletter.email.isSubscribed", 16),
            "subscriptions.n…"
        );
        assert_eq!(truncate_header("profile.firstName", 10), "profile.f…");
        assert_eq!(truncate_header("email", 10), "email");
    }

    #[test]
    fn rows_print_as_they_arrive_after_the_preview() {
        for format in [Format::Csv, Format::Table, Format::Markdown] {
            let buf = Buf::default();
            let mut out = Out::new(Box::new(buf.clone()));
            let mut sink = sink_for(format, None);
            let written = |out: &mut Out| {
                out.flush().unwrap();
                buf.0.lock().unwrap().len()
            };
            for i in 0..PREVIEW_ROWS - 1 {
                sink.record(&mut out, &json!({ "i": i })).unwrap();
            }
            assert_eq!(written(&mut out), 0, "{format:?}: the preview is held");
            sink.record(&mut out, &json!({ "i": -1 })).unwrap();
            let after_preview = written(&mut out);
            assert!(after_preview > 0, "{format:?}: header and preview written");
            sink.record(&mut out, &json!({ "i": 7 })).unwrap();
            assert!(
                written(&mut out) > after_preview,
                "{format:?}: a row streams"
            );
        }
    }

    #[test]
    fn csv_leaves_out_late_columns_and_tables_head_them() {
        let mut records: Vec<Value> = (0..PREVIEW_ROWS + 10).map(|i| json!({"i": i})).collect();
        records.push(json!({"i": -1, "late": "yes"}));
        let text = render(Format::Csv, None, &records);
        let mut lines = text.split("\r\n");
        assert_eq!(lines.next(), Some("i"));
        assert_eq!(lines.next(), Some("0"));
        assert!(text.ends_with("\r\n-1\r\n"));
        assert_eq!(text.matches("\r\n").count(), PREVIEW_ROWS + 12);
        let text = render(Format::Table, None, &records);
        assert!(
            text.ends_with("\n\ni    │ late\n─────┼─────\n  -1 │ yes\n(1011 rows)\n"),
            "{}",
            &text[text.len() - 80..]
        );
    }

    #[test]
    fn markdown_escapes_and_aligns() {
        assert_eq!(
            render(
                Format::Markdown,
                None,
                &[
                    json!({"a": "x|y", "n": 1}),
                    json!({"a": "two\nlines", "n": 22})
                ]
            ),
            "| a | n |\n| --- | ---: |\n| x\\|y | 1 |\n| two<br>lines | 22 |\n"
        );
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(85_658), "85,658");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn ndjson_is_one_compact_record_per_line() {
        assert_eq!(
            render(
                Format::Ndjson,
                None,
                &[json!({"a": {"b": 1}}), json!({"c": []})]
            ),
            "{\"a\":{\"b\":1}}\n{\"c\":[]}\n"
        );
    }
}
