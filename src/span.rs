//! Byte-offset source spans.
//!
//! Spans are attached to the AST nodes that errors point at. Two spans always compare
//! equal, so `#[derive(PartialEq)]` on an AST node compares its meaning, not where it
//! was written: `parse("a = 1")` equals `parse("a  =  1")`.

use std::hash::{Hash, Hasher};

/// A half-open byte range `start..end` into the query text.
#[derive(Clone, Copy, Debug, Default)]
pub struct Span {
    /// First byte of the range.
    pub start: usize,
    /// One past the last byte of the range.
    pub end: usize,
}

impl Span {
    /// The span `start..end`.
    pub const fn new(start: usize, end: usize) -> Self {
        Span { start, end }
    }

    /// The smallest span covering both `self` and `other`.
    #[must_use]
    pub fn to(self, other: Span) -> Span {
        Span::new(self.start.min(other.start), self.end.max(other.end))
    }

    /// Compares the offsets themselves (`==` on spans is always true).
    pub fn same(&self, other: &Span) -> bool {
        self.start == other.start && self.end == other.end
    }

    /// 1-based line and column (in characters) of `offset` in `src`.
    pub fn line_col(src: &str, offset: usize) -> (usize, usize) {
        let offset = offset.min(src.len());
        let before = &src[..floor_char_boundary(src, offset)];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let col = before[line_start..].chars().count() + 1;
        (line, col)
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

impl PartialEq for Span {
    /// Always true: equality of AST nodes ignores where they were written.
    fn eq(&self, _: &Span) -> bool {
        true
    }
}

impl Eq for Span {}

impl Hash for Span {
    fn hash<H: Hasher>(&self, _: &mut H) {}
}

/// A value together with the span it was parsed from; equality compares only the value.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Spanned<T> {
    /// The value.
    pub node: T,
    /// Where it was written.
    pub span: Span,
}

impl<T> Spanned<T> {
    /// Wraps `node` with `span`.
    pub const fn new(node: T, span: Span) -> Self {
        Spanned { node, span }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_never_affect_equality() {
        assert_eq!(Span::new(0, 1), Span::new(5, 9));
        assert!(!Span::new(0, 1).same(&Span::new(5, 9)));
        assert_eq!(
            Spanned::new(1, Span::new(0, 1)),
            Spanned::new(1, Span::new(3, 4))
        );
    }

    #[test]
    fn line_col_counts_characters() {
        let src = "SELECT *\nFROM é x";
        assert_eq!(Span::line_col(src, 0), (1, 1));
        assert_eq!(Span::line_col(src, 9), (2, 1));
        assert_eq!(Span::line_col(src, src.len()), (2, 9));
    }
}
