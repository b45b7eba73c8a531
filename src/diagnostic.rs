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
    // One block per marker, or per group of markers close together on one line.
    let mut i = 0;
    while i < marks.len() {
        let (line_no, col) = Span::line_col(src, marks[i].span.start);
        let mut group = vec![marks[i]];
        // Markers share a block when they fit in one window of the line.
        while let Some(next) = marks.get(i + 1) {
            let (l, c) = Span::line_col(src, next.span.start);
            if l != line_no || c > col + MAX_LINE / 2 {
                break;
            }
            i += 1;
            group.push(*next);
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
    // A window from a little before the first marker when the line is long; the
    // markers of one block start within half a window of each other.
    let first = cols.iter().map(|c| c.0).min().unwrap_or(0);
    let (from, to) = if chars.len() <= MAX_LINE {
        (0, chars.len())
    } else {
        let from = first.saturating_sub(30).min(chars.len());
        (from, (from + MAX_LINE).min(chars.len()))
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
        // Clipped to the text shown (plus a column for a marker at the end of input).
        let len = len.min((to - from + shift + 1).saturating_sub(c)).max(1);
        marker.extend(std::iter::repeat_n(' ', c - at));
        marker.extend(std::iter::repeat_n(m.ch, len));
        at = c + len;
        if !m.label.is_empty() && cols.len() == 1 {
            marker.push(' ');
            marker.push_str(m.label);
        }
    }
    let _ = writeln!(out, "{:width$} | {marker}", "");
}

/// Optimal-string-alignment distance between two strings, in characters (insertions,
/// deletions, substitutions and swaps of neighbours): how far a misspelling is from a
/// word, for "did you mean" hints (keywords, field paths, subcommands).
pub fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carets_line_up_with_tabs_and_crlf() {
        let src = "SELECT *\r\nFROM accounts\r\nWHERE\ta = m";
        let err = crate::parse(src).unwrap_err();
        let out = render(src, &err);
        assert!(out.contains("3 | WHERE a = m\n  |           ^\n"), "{out}");
        assert!(summary(src, &err).starts_with("line 3, column 11: expected a value"));
    }

    #[test]
    fn long_lines_are_windowed_around_the_marker() {
        let src = format!(
            "SELECT * FROM accounts WHERE {}b = x",
            "a = 1 AND ".repeat(50)
        );
        let err = crate::parse(&src).unwrap_err();
        let out = render(&src, &err);
        assert!(
            out.lines().all(|l| l.chars().count() <= MAX_LINE + 10),
            "{out}"
        );
        let line = out.lines().find(|l| l.starts_with("1 |")).unwrap();
        let marker = out.lines().find(|l| l.contains('^')).unwrap();
        let col = marker.find('^').unwrap();
        assert_eq!(line.chars().nth(col), Some('x'), "{out}");
    }
}
