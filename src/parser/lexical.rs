//! Tokens: whitespace, keywords, paths, string/number literals, raw regex patterns.
//!
//! These are hand-written byte scanners rather than nom's `tag`/`take_while`: the input is
//! a small position-carrying [`Input`] (so spans are plain byte offsets), and a scan over
//! bytes avoids the per-token work of generic combinators in the hot path. Every token
//! function skips leading whitespace itself, so productions never deal with it.

use nom::IResult;

use super::Limits;
use super::error::{ExpSet, Hint, PErr, ParseErrorKind, exp};
use crate::ast::{Literal, Number, Path, Span, Spanned, is_reserved, is_segment_char};

/// The parser input: the whole text and a byte position in it (cheap to copy).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Input<'a> {
    /// The whole query text.
    pub src: &'a str,
    /// The current byte offset (always on a char boundary).
    pub pos: usize,
    /// The guards in force.
    pub limits: &'a Limits,
}

/// The result of a production.
pub(crate) type PResult<'a, O> = IResult<Input<'a>, O, PErr>;

/// A recoverable failure: `alt`/`opt` may try something else.
pub(crate) fn error<'a, O>(e: PErr) -> PResult<'a, O> {
    Err(nom::Err::Error(e))
}

/// A committed failure: the error is reported as is.
pub(crate) fn failure<'a, O>(e: PErr) -> PResult<'a, O> {
    Err(nom::Err::Failure(e))
}

impl<'a> Input<'a> {
    /// Starts at the beginning of `src`.
    pub(crate) fn new(src: &'a str, limits: &'a Limits) -> Self {
        Input {
            src,
            pos: 0,
            limits,
        }
    }

    /// The bytes from the current position on.
    pub(crate) fn bytes(&self) -> &'a [u8] {
        &self.src.as_bytes()[self.pos..]
    }

    /// The next byte.
    pub(crate) fn peek(&self) -> Option<u8> {
        self.src.as_bytes().get(self.pos).copied()
    }

    /// The input `n` bytes further.
    pub(crate) fn advance(self, n: usize) -> Self {
        Input {
            pos: self.pos + n,
            ..self
        }
    }

    /// The input with whitespace skipped.
    pub(crate) fn ws(self) -> Self {
        let n = self
            .bytes()
            .iter()
            .take_while(|b| b.is_ascii_whitespace())
            .count();
        self.advance(n)
    }

    /// The span from `start` to the current position.
    pub(crate) fn span_from(&self, start: usize) -> Span {
        Span::new(start, self.pos)
    }

    /// True at the end of the text.
    pub(crate) fn at_end(&self) -> bool {
        self.pos >= self.src.len()
    }
}

/// True for a byte that continues a word: an unquoted segment character, a dot, a
/// backtick, or any non-ASCII byte. A keyword must not be followed by one.
fn continues_word(b: u8) -> bool {
    is_segment_char(b as char) || b == b'.' || b == b'`' || !b.is_ascii()
}

/// The length of the unquoted-segment run at the start of `b`.
pub(crate) fn segment_len(b: &[u8]) -> usize {
    b.iter()
        .take_while(|&&c| is_segment_char(c as char))
        .count()
}

/// Case-insensitive `kw` (upper-case ASCII) at a word boundary, after whitespace; `None`
/// when it is not there. Returns the input after the keyword and the keyword's span.
pub(crate) fn peek_keyword<'a>(i: Input<'a>, kw: &str) -> Option<(Input<'a>, Span)> {
    let i = i.ws();
    let b = i.bytes();
    let n = kw.len();
    // Most probes fail on the first byte (a keyword tried where a path or value is).
    if b.first().map(u8::to_ascii_uppercase) != kw.as_bytes().first().copied() {
        return None;
    }
    if b.len() >= n
        && b[..n].eq_ignore_ascii_case(kw.as_bytes())
        && b.get(n).is_none_or(|&c| !continues_word(c))
    {
        let after = i.advance(n);
        Some((after, Span::new(i.pos, after.pos)))
    } else {
        None
    }
}

/// The production `keyword`: `kw` or a recoverable error expecting `expected`.
pub(crate) fn keyword<'a>(i: Input<'a>, kw: &str, expected: ExpSet) -> PResult<'a, Span> {
    match peek_keyword(i, kw) {
        Some(ok) => Ok(ok),
        None => error(PErr::expected(i.ws().pos, expected)),
    }
}

/// A two-word keyword such as `GROUP BY`: once the first word is read, `BY` is committed.
pub(crate) fn keyword2<'a>(i: Input<'a>, first: &str, expected: ExpSet) -> PResult<'a, Span> {
    let (i, s1) = keyword(i, first, expected)?;
    match peek_keyword(i, "BY") {
        Some((i, s2)) => Ok((i, s1.to(s2))),
        None => failure(PErr::expected(i.ws().pos, exp::BY)),
    }
}

/// The punctuation `sym` after whitespace, or a recoverable error expecting `expected`.
pub(crate) fn symbol<'a>(i: Input<'a>, sym: u8, expected: ExpSet) -> PResult<'a, Span> {
    let i = i.ws();
    if i.peek() == Some(sym) {
        Ok((i.advance(1), Span::new(i.pos, i.pos + 1)))
    } else {
        error(PErr::expected(i.pos, expected))
    }
}

/// The production `segment`: an unquoted run of segment characters or a backtick segment
/// (a doubled backtick inside stands for one). Returns the text and whether it was quoted.
/// No whitespace is skipped: a path is one token.
pub(crate) fn segment(i: Input<'_>) -> PResult<'_, (String, bool)> {
    let b = i.bytes();
    if b.first() == Some(&b'`') {
        return backtick_segment(i);
    }
    let n = segment_len(b);
    if n == 0 {
        return error(PErr::expected(i.pos, exp::PATH));
    }
    Ok((i.advance(n), (i.src[i.pos..i.pos + n].to_owned(), false)))
}

fn backtick_segment(i: Input<'_>) -> PResult<'_, (String, bool)> {
    let open = Span::new(i.pos, i.pos + 1);
    let body = i.advance(1);
    let b = body.bytes();
    let mut text = String::new();
    let mut k = 0;
    loop {
        match memchr::memchr(b'`', &b[k..]) {
            None => {
                return failure(
                    PErr::at(
                        Span::new(i.src.len(), i.src.len()),
                        ParseErrorKind::UnclosedBacktick,
                    )
                    .also(exp::BACKTICK)
                    .open(open),
                );
            }
            Some(j) => {
                text.push_str(&body.src[body.pos + k..body.pos + k + j]);
                k += j;
                if b.get(k + 1) == Some(&b'`') {
                    text.push('`');
                    k += 2;
                } else {
                    return Ok((body.advance(k + 1), (text, true)));
                }
            }
        }
    }
}

/// The production `path`: `segment ("." segment)*`. A recoverable error when no path
/// starts here, or when the path would be a single unquoted keyword.
pub(crate) fn path(i: Input<'_>) -> PResult<'_, Path> {
    let i = i.ws();
    let start = i.pos;
    let (mut rest, (first, quoted)) = segment(i)?;
    // Most paths have two to four segments: one allocation instead of growing from one.
    let mut segments = Vec::with_capacity(4);
    segments.push(first);
    if rest.peek() != Some(b'.') && !quoted && is_reserved(&segments[0]) {
        return error(PErr::expected(start, exp::PATH).hint(Hint::KeywordAsPath));
    }
    while rest.peek() == Some(b'.') {
        let after_dot = rest.advance(1);
        match segment(after_dot) {
            Ok((r, (s, _))) => {
                segments.push(s);
                rest = r;
            }
            Err(nom::Err::Error(e)) => return failure(e),
            Err(e) => return Err(e),
        }
    }
    Ok((
        rest,
        Path {
            segments,
            span: rest.span_from(start),
        },
    ))
}

/// The production `string`: `"…"` or `'…'` with `\n \t \r \uXXXX` escapes (any other
/// `\x` is `x`). A recoverable error when no quote starts here.
pub(crate) fn string(i: Input<'_>) -> PResult<'_, Spanned<String>> {
    let i = i.ws();
    let quote = match i.peek() {
        Some(q @ (b'"' | b'\'')) => q,
        _ => return error(PErr::expected(i.pos, exp::STRING)),
    };
    let start = i.pos;
    let body = i.advance(1);
    let b = body.bytes();
    let mut out = String::new();
    let mut k = 0;
    loop {
        let Some(j) = memchr::memchr2(quote, b'\\', &b[k..]) else {
            return failure(unclosed_string(i.src, start, quote));
        };
        out.push_str(&body.src[body.pos + k..body.pos + k + j]);
        k += j;
        if b[k] == quote {
            let end = body.advance(k + 1);
            return Ok((end, Spanned::new(out, end.span_from(start))));
        }
        // A backslash: decode the escape that follows.
        let esc_at = body.pos + k;
        match b.get(k + 1) {
            None => return failure(unclosed_string(i.src, start, quote)),
            Some(b'n') => out.push('\n'),
            Some(b't') => out.push('\t'),
            Some(b'r') => out.push('\r'),
            Some(b'u') => {
                let (c, len) = unicode_escape(i.src, esc_at)?;
                out.push(c);
                k += len;
                continue;
            }
            Some(_) => {
                // Any other escaped character stands for itself (it may be multi-byte).
                let c = body.src[esc_at + 1..].chars().next().unwrap_or('\\');
                out.push(c);
                k += 1 + c.len_utf8();
                continue;
            }
        }
        k += 2;
    }
}

fn unclosed_string(src: &str, start: usize, quote: u8) -> PErr {
    PErr::at(
        Span::new(src.len(), src.len()),
        ParseErrorKind::UnclosedString,
    )
    .also(if quote == b'"' { exp::QUOTE } else { exp::APOS })
    .open(Span::new(start, start + 1))
    .hint(Hint::UnclosedString)
}

/// Decodes `\uXXXX` (and a following low surrogate) at `at`; returns the character and
/// the number of bytes consumed from the backslash.
fn unicode_escape(src: &str, at: usize) -> Result<(char, usize), nom::Err<PErr>> {
    let hex4 = |p: usize| -> Option<u32> {
        let h = src.get(p..p + 4)?;
        if h.bytes().all(|b| b.is_ascii_hexdigit()) {
            u32::from_str_radix(h, 16).ok()
        } else {
            None
        }
    };
    let bad = |len: usize| {
        let end = (at + len).min(src.len());
        let end = (end..=src.len())
            .find(|&e| src.is_char_boundary(e))
            .unwrap_or(src.len());
        nom::Err::Failure(
            PErr::at(Span::new(at, end), ParseErrorKind::InvalidEscape).hint(Hint::UnicodeEscape),
        )
    };
    let hi = hex4(at + 2).ok_or_else(|| bad(6))?;
    if (0xD800..0xDC00).contains(&hi) {
        // A high surrogate must be followed by `\u` and a low surrogate.
        if src.as_bytes().get(at + 6..at + 8) == Some(b"\\u")
            && let Some(lo) = hex4(at + 8)
            && (0xDC00..0xE000).contains(&lo)
        {
            let c = char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00))
                .ok_or_else(|| bad(12))?;
            return Ok((c, 12));
        }
        return Err(bad(6));
    }
    char::from_u32(hi).map(|c| (c, 6)).ok_or_else(|| bad(6))
}

/// The production `regex_pattern`: a quoted pattern taken raw. A backslash keeps the
/// next character from closing the pattern and stays in it (`'it\'s'` is `it\'s`,
/// which the regex dialect reads as `it's`).
pub(crate) fn regex_pattern(i: Input<'_>) -> PResult<'_, Spanned<String>> {
    let i = i.ws();
    let quote = match i.peek() {
        Some(q @ (b'"' | b'\'')) => q,
        _ => return failure(PErr::expected(i.pos, exp::STRING)),
    };
    let start = i.pos;
    let b = i.bytes();
    let mut k = 1;
    loop {
        match memchr::memchr2(quote, b'\\', &b[k..]) {
            None => return failure(unclosed_string(i.src, start, quote)),
            Some(j) if b[k + j] == quote => {
                let end = i.advance(k + j + 1);
                let text = i.src[start + 1..start + k + j].to_owned();
                return Ok((end, Spanned::new(text, end.span_from(start))));
            }
            // Skip the backslash and the byte after it; a multi-byte character's other
            // bytes are never ASCII, so the search cannot stop inside it.
            Some(j) => k += j + 2,
        }
        if k >= b.len() {
            return failure(unclosed_string(i.src, start, quote));
        }
    }
}

/// True for bytes that make an unquoted value one word: `2017-01-01T10:00:00Z`, `1.2.3`.
fn value_word_byte(b: u8) -> bool {
    is_segment_char(b as char) || matches!(b, b'.' | b':' | b'+') || !b.is_ascii()
}

/// The length of the number `-?digits[.digits][(e|E)[+-]digits]` at the start of `b`
/// (0 when there is none).
fn number_len(b: &[u8]) -> usize {
    let digits = |k: usize| {
        b[k.min(b.len())..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count()
    };
    let mut k = usize::from(b.first() == Some(&b'-'));
    let d = digits(k);
    if d == 0 {
        return 0;
    }
    k += d;
    if b.get(k) == Some(&b'.') && digits(k + 1) > 0 {
        k += 1 + digits(k + 1);
    }
    if matches!(b.get(k), Some(b'e' | b'E')) {
        let sign = usize::from(matches!(b.get(k + 1), Some(b'+' | b'-')));
        let d = digits(k + 1 + sign);
        if d > 0 {
            k += 1 + sign + d;
        }
    }
    k
}

/// The production `value`: a string, a number, `true`, `false` or `null` (any case).
/// Fails (committed) on an unquoted word, with a hint to quote it.
pub(crate) fn value(i: Input<'_>) -> PResult<'_, Spanned<Literal>> {
    let i = i.ws();
    let start = i.pos;
    let b = i.bytes();
    match b.first() {
        Some(b'"' | b'\'') => {
            let (rest, s) = string(i)?;
            Ok((rest, Spanned::new(Literal::String(s.node), s.span)))
        }
        Some(c) if c.is_ascii_digit() || *c == b'-' => {
            let n = number_len(b);
            if n == 0 {
                return failure(PErr::expected(start, exp::VALUE));
            }
            if b.get(n).is_some_and(|&c| value_word_byte(c)) {
                let w = b.iter().take_while(|&&c| value_word_byte(c)).count();
                return failure(unquoted(i, w));
            }
            let rest = i.advance(n);
            let number = Number::new(&i.src[start..start + n])
                .ok_or_else(|| nom::Err::Failure(PErr::expected(start, exp::VALUE)))?;
            Ok((
                rest,
                Spanned::new(Literal::Number(number), rest.span_from(start)),
            ))
        }
        Some(&c) if value_word_byte(c) => {
            let w = b.iter().take_while(|&&c| value_word_byte(c)).count();
            let word = &i.src[start..start + w];
            let lit = if word.eq_ignore_ascii_case("true") {
                Literal::Bool(true)
            } else if word.eq_ignore_ascii_case("false") {
                Literal::Bool(false)
            } else if word.eq_ignore_ascii_case("null") {
                Literal::Null
            } else {
                return failure(unquoted(i, w));
            };
            let rest = i.advance(w);
            Ok((rest, Spanned::new(lit, rest.span_from(start))))
        }
        _ => failure(PErr::expected(start, exp::VALUE)),
    }
}

/// An unquoted word of `len` bytes at `i` where a value belongs.
fn unquoted(i: Input<'_>, len: usize) -> PErr {
    let span = Span::new(i.pos, i.pos + len);
    let mut e = PErr::at(span, ParseErrorKind::Syntax).also(exp::VALUE);
    if !is_reserved(&i.src[span.start..span.end]) {
        e = e.hint(Hint::QuoteValue);
    }
    e
}

/// The production `integer`: a non-negative integer for `START`/`LIMIT`.
pub(crate) fn integer(i: Input<'_>) -> PResult<'_, Spanned<u64>> {
    let i = i.ws();
    let b = i.bytes();
    let d = b.iter().take_while(|c| c.is_ascii_digit()).count();
    let bad_word = b.get(d).is_some_and(|&c| value_word_byte(c));
    if d == 0 || bad_word {
        let mut e = PErr::expected(i.pos, exp::INTEGER);
        if matches!(b.first(), Some(b'-')) || (d > 0 && b.get(d) == Some(&b'.')) {
            e = e.hint(Hint::NonNegative);
        }
        return failure(e);
    }
    let span = Span::new(i.pos, i.pos + d);
    match i.src[span.start..span.end].parse::<u64>() {
        Ok(n) => Ok((i.advance(d), Spanned::new(n, span))),
        Err(_) => failure(PErr::at(span, ParseErrorKind::IntegerTooLarge)),
    }
}

/// The token at `pos` (after whitespace) for error reports: its span and text.
pub(crate) fn token_at(src: &str, pos: usize) -> Span {
    let pos = pos.min(src.len());
    let b = &src.as_bytes()[pos..];
    let len = match b.first() {
        None => 0,
        Some(&q @ (b'"' | b'\'' | b'`')) => {
            let mut k = 1;
            loop {
                match b.get(k) {
                    None => break k,
                    Some(b'\\') if q != b'`' => k += 2,
                    Some(&c) if c == q => break k + 1,
                    Some(_) => k += 1,
                }
            }
            .min(b.len())
        }
        Some(&c) if value_word_byte(c) => b.iter().take_while(|&&c| value_word_byte(c)).count(),
        Some(_) if b.len() >= 2 && matches!(&b[..2], b"<=" | b">=" | b"!=" | b"<>" | b"==") => 2,
        Some(_) => src[pos..].chars().next().map_or(1, char::len_utf8),
    };
    let mut end = pos + len;
    while !src.is_char_boundary(end) {
        end += 1;
    }
    Span::new(pos, end)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run<'a, O>(
        f: impl Fn(Input<'a>) -> PResult<'a, O>,
        src: &'a str,
    ) -> Result<(O, usize), PErr> {
        static LIMITS: Limits = Limits::DEFAULT;
        match f(Input::new(src, &LIMITS)) {
            Ok((rest, o)) => Ok((o, rest.pos)),
            Err(nom::Err::Error(e) | nom::Err::Failure(e)) => Err(e),
            Err(nom::Err::Incomplete(_)) => unreachable!("complete input"),
        }
    }

    #[test]
    fn keywords_need_a_word_boundary() {
        static LIMITS: Limits = Limits::DEFAULT;
        let i = |s| Input::new(s, &LIMITS);
        assert!(peek_keyword(i("  where x"), "WHERE").is_some());
        assert!(peek_keyword(i("WHERE("), "WHERE").is_some());
        assert!(peek_keyword(i("wherex"), "WHERE").is_none());
        assert!(peek_keyword(i("not.x"), "NOT").is_none());
        assert!(peek_keyword(i("andé"), "AND").is_none());
    }

    #[test]
    fn strings_resolve_escapes() {
        let s = |src| run(string, src).map(|(s, _)| s.node);
        assert_eq!(s(r#""a\"b\\c\n\t\r\q""#).unwrap(), "a\"b\\c\n\t\rq");
        assert_eq!(s(r"'it\'s'").unwrap(), "it's");
        assert_eq!(s(r#""\u00e9\uD83D\uDE00""#).unwrap(), "é😀");
        assert_eq!(s(r#""\é""#).unwrap(), "é");
        assert_eq!(
            s(r#""\u12""#).unwrap_err().kind,
            ParseErrorKind::InvalidEscape
        );
        assert_eq!(
            s(r#""\uD800x""#).unwrap_err().kind,
            ParseErrorKind::InvalidEscape
        );
        assert_eq!(
            s(r#""abc"#).unwrap_err().kind,
            ParseErrorKind::UnclosedString
        );
        assert_eq!(
            s(r#""abc\"#).unwrap_err().kind,
            ParseErrorKind::UnclosedString
        );
    }

    #[test]
    fn regex_patterns_are_raw() {
        let r = |src| run(regex_pattern, src).map(|(s, _)| s.node);
        assert_eq!(r(r"'a\.b'").unwrap(), r"a\.b");
        assert_eq!(r(r"'it\'s'").unwrap(), r"it\'s");
        assert_eq!(r(r#""say 'hi'""#).unwrap(), "say 'hi'");
        assert_eq!(r(r"'a\\'").unwrap(), r"a\\");
        assert!(r(r"'a\'").is_err());
        assert!(r(r"'a\").is_err());
    }

    #[test]
    fn numbers_and_words() {
        let v = |src| run(value, src).map(|(s, _)| s.node);
        assert_eq!(
            v("-1.5e+3").unwrap(),
            Literal::Number(Number::new("-1.5e+3").unwrap())
        );
        assert_eq!(v("TRUE").unwrap(), Literal::Bool(true));
        assert_eq!(v("Null").unwrap(), Literal::Null);
        let e = v("2017-01-01").unwrap_err();
        assert_eq!(
            (e.span, e.hint),
            (Some(Span::new(0, 10)), Some(Hint::QuoteValue))
        );
        assert_eq!(v("m").unwrap_err().hint, Some(Hint::QuoteValue));
        assert!(v("-").is_err());
        assert!(v("1.").is_err());
    }

    #[test]
    fn paths_and_backticks() {
        let p = |src| run(path, src).map(|(p, _)| p.segments);
        assert_eq!(p("a.b-c.@d.$e_1").unwrap(), ["a", "b-c", "@d", "$e_1"]);
        assert_eq!(
            p("subscriptions.`jun4th.a001`.email").unwrap(),
            ["subscriptions", "jun4th.a001", "email"]
        );
        assert_eq!(p("`a``b`").unwrap(), ["a`b"]);
        assert_eq!(p("``").unwrap(), [""]);
        assert!(p("where").is_err());
        assert_eq!(p("`where`").unwrap(), ["where"]);
        assert_eq!(p("order.by").unwrap(), ["order", "by"]);
        assert!(p("a.").is_err());
        assert_eq!(
            p("`abc").unwrap_err().kind,
            ParseErrorKind::UnclosedBacktick
        );
    }

    #[test]
    fn tokens_for_reports() {
        fn t(src: &str, pos: usize) -> &str {
            let s = token_at(src, pos);
            &src[s.start..s.end]
        }
        assert_eq!(t("a LIMT 5", 2), "LIMT");
        assert_eq!(t("a <= 5", 2), "<=");
        assert_eq!(t("a 'x y' 5", 2), "'x y'");
        assert_eq!(t("a é", 2), "é");
        assert_eq!(t("a", 1), "");
    }
}
