//! Rendering of errors for people: the source line, a caret under the span, and what was
//! expected. The library never prints; the REPL prints [`render`], the HTTP server puts
//! [`summary`] into `errorDetails`.
//!
//! ```
//! let src = "SELECT * FROM accounts WHERE gender = m";
//! let err = acql::parse(src).unwrap_err();
//! assert_eq!(
//!     acql::diagnostic::summary(src, &err),
//!     "line 1, column 39: expected a value, found `m`; hint: text values must be quoted: \"m\""
//! );
//! ```

use std::fmt::Write;

use crate::parser::ParseError;
use crate::span::Span;

/// Lines longer than this (in characters) are shown as a window around the marker.
const MAX_LINE: usize = 100;

/// The one-line form: `line L, column C: expected …, found …; hint: …`.
pub fn summary(src: &str, err: &ParseError) -> String {
    let (line, col) = Span::line_col(src, err.span.start);
    let mut s = format!("line {line}, column {col}: {err}");
    if let Some(hint) = &err.hint {
        let _ = write!(s, "; hint: {hint}");
    }
    s
}

/// The multi-line form: message, location, the source line with a caret run under the
/// span (and a `-` under the opening delimiter of an unclosed construct), and the hint.
pub fn render(src: &str, err: &ParseError) -> String {
    let (line, col) = Span::line_col(src, err.span.start);
    let mut out = format!("error: {err}\n --> line {line}, column {col}\n");
    let mut marks = vec![Mark {
        span: err.span,
        ch: '^',
        label: "",
    }];
    if let Some(open) = err.open {
        marks.insert(
            0,
            Mark {
                span: open,
                ch: '-',
                label: "opened here",
            },
        );
    }
    let width = Span::line_col(src, src.len()).0.to_string().len();
    let _ = writeln!(out, "{:width$} |", "");
    // One block per source line; markers on the same line share it.
    let mut i = 0;
    while i < marks.len() {
        let line_no = Span::line_col(src, marks[i].span.start).0;
        let mut group = vec![marks[i]];
        while i + 1 < marks.len() && Span::line_col(src, marks[i + 1].span.start).0 == line_no {
            i += 1;
            group.push(marks[i]);
        }
        block(&mut out, src, line_no, &group, width);
        i += 1;
    }
    if let Some(hint) = &err.hint {
        let _ = writeln!(out, "{:width$} = hint: {hint}", "");
    }
    out
}

#[derive(Clone, Copy)]
struct Mark {
    span: Span,
    ch: char,
    label: &'static str,
}

/// The source line `line_no` and a marker line under it.
fn block(out: &mut String, src: &str, line_no: usize, marks: &[Mark], width: usize) {
    let line_start = src
        .split_inclusive('\n')
        .take(line_no - 1)
        .map(str::len)
        .sum::<usize>();
    let text = src[line_start..]
        .split('\n')
        .next()
        .unwrap_or("")
        .trim_end_matches('\r');
    let chars: Vec<char> = text
        .chars()
        .map(|c| if c == '\t' { ' ' } else { c })
        .collect();
    // Marker columns in characters, clamped to one past the end of the line.
    let col_of = |offset: usize| {
        let off = offset.clamp(line_start, line_start + text.len());
        let mut b = off - line_start;
        while !text.is_char_boundary(b) {
            b -= 1;
        }
        text[..b].chars().count()
    };
    let cols: Vec<(usize, usize)> = marks
        .iter()
        .map(|m| {
            let c = col_of(m.span.start);
            let e = col_of(m.span.end.max(m.span.start));
            (c, (e - c).max(1))
        })
        .collect();
    // A window around the markers when the line is long.
    let first = cols.iter().map(|c| c.0).min().unwrap_or(0);
    let last = cols.iter().map(|c| c.0 + c.1).max().unwrap_or(0);
    let (from, to) = if chars.len() <= MAX_LINE {
        (0, chars.len())
    } else {
        let from = first.saturating_sub(30).min(chars.len());
        let to = (from.max(last.saturating_sub(MAX_LINE)) + MAX_LINE)
            .min(chars.len())
            .max(from);
        (from, to)
    };
    let prefix = if from > 0 { "…" } else { "" };
    let suffix = if to < chars.len() { "…" } else { "" };
    let shown: String = chars[from..to].iter().collect();
    let _ = writeln!(out, "{line_no:>width$} | {prefix}{shown}{suffix}");
    let mut marker = String::new();
    let shift = usize::from(from > 0);
    let mut at = 0;
    for (m, &(c, len)) in marks.iter().zip(&cols) {
        let c = c.saturating_sub(from) + shift;
        if c < at {
            continue;
        }
        marker.extend(std::iter::repeat_n(' ', c - at));
        marker.extend(std::iter::repeat_n(m.ch, len.min(MAX_LINE)));
        at = c + len.min(MAX_LINE);
        if !m.label.is_empty() && marks.len() == 1 {
            marker.push(' ');
            marker.push_str(m.label);
        }
    }
    let _ = writeln!(out, "{:width$} | {marker}", "");
}
