//! Words (for `CONTAINS` and the words index) and strict JSON number text.

use super::Number;

/// The words of `text` as slices, in order: maximal runs of Unicode alphanumerics
/// (`_`, `.`, `@`, `-`, spaces and every other character separate words). Not lower-cased.
pub fn word_spans(text: &str) -> impl Iterator<Item = &str> + Clone {
    WordSpans { rest: text }
}

#[derive(Clone)]
struct WordSpans<'a> {
    rest: &'a str,
}

impl<'a> Iterator for WordSpans<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let start = self.rest.find(char::is_alphanumeric)?;
        let tail = &self.rest[start..];
        let end = tail
            .find(|c: char| !c.is_alphanumeric())
            .unwrap_or(tail.len());
        self.rest = &tail[end..];
        Some(&tail[..end])
    }
}

/// The words of `text`, lower-cased: what `CONTAINS` compares and the words index stores.
///
/// `"Jane.Doe@Example.com"` → `jane`, `doe`, `example`, `com`.
pub fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    word_spans(text).map(str::to_lowercase)
}

/// True when `word` lower-cases to `lowered` (which is already lower-cased).
fn eq_lower(word: &str, lowered: &str) -> bool {
    if word.is_ascii() {
        word.len() == lowered.len()
            && word
                .bytes()
                .map(|b| b.to_ascii_lowercase())
                .eq(lowered.bytes())
    } else {
        word.chars()
            .flat_map(char::to_lowercase)
            .eq(lowered.chars())
    }
}

/// True when the lower-cased `phrase` words occur consecutively among the words of `text`.
///
/// An empty phrase matches nothing (an operand with no words matches no value).
/// Does not allocate.
pub fn contains_phrase(text: &str, phrase: &[String]) -> bool {
    let Some(first) = phrase.first() else {
        return false;
    };
    let mut spans = word_spans(text);
    while let Some(w) = spans.next() {
        if eq_lower(w, first) {
            let mut rest = spans.clone();
            if phrase[1..]
                .iter()
                .all(|p| rest.next().is_some_and(|w| eq_lower(w, p)))
            {
                return true;
            }
        }
    }
    false
}

/// True when `s` is strict JSON number text: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
pub fn is_json_number_text(s: &str) -> bool {
    scan_json_number(s.as_bytes()).is_ok_and(|n| n.len == s.len())
}

/// The strict JSON number at the start of some bytes, as [`scan_json_number`] found it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct JsonNumber {
    /// Its length in bytes.
    pub len: usize,
    /// The length of its sign and integer part.
    pub int_len: usize,
    /// It has a fraction (`.5`).
    pub fraction: bool,
    /// It has an exponent (`e5`).
    pub exponent: bool,
}

/// The longest strict JSON number (the grammar of [`is_json_number_text`]) at the start of
/// `b`, or the offset of the first byte that cannot continue one. The one reading of that
/// grammar: JSON text import (`jsonb::from_text`) and the number checks share it.
pub(crate) fn scan_json_number(b: &[u8]) -> Result<JsonNumber, usize> {
    let digits = |mut i: usize| {
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        i
    };
    let mut i = usize::from(b.first() == Some(&b'-'));
    match b.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => i = digits(i + 1),
        _ => return Err(i),
    }
    let int_len = i;
    let fraction = b.get(i) == Some(&b'.');
    if fraction {
        if !b.get(i + 1).is_some_and(u8::is_ascii_digit) {
            return Err(i + 1);
        }
        i = digits(i + 1);
    }
    let exponent = matches!(b.get(i), Some(b'e' | b'E'));
    if exponent {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if !b.get(i).is_some_and(u8::is_ascii_digit) {
            return Err(i);
        }
        i = digits(i);
    }
    Ok(JsonNumber {
        len: i,
        int_len,
        fraction,
        exponent,
    })
}

/// The value of a string that is strict JSON number text (`"42"`, `"4.2e1"`; not
/// `"042"`, `" 42"`, `"+1"`), else `None`.
pub fn number_text_value(s: &str) -> Option<f64> {
    number_text(s).map(|n| n.f)
}

/// Like [`number_text_value`], keeping integers exact.
pub fn number_text(s: &str) -> Option<Number> {
    if !is_json_number_text(s) {
        return None;
    }
    let f = s.parse::<f64>().ok()?;
    let is_int = !s.bytes().any(|b| matches!(b, b'.' | b'e' | b'E'));
    Some(Number {
        f,
        i: if is_int { s.parse().ok() } else { None },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_numbers_are_scanned_to_their_end_or_their_first_bad_byte() {
        let scan = |s: &str| scan_json_number(s.as_bytes()).map(|n| n.len);
        // Where a number stops, the caller decides whether that is its end.
        for (text, len) in [
            ("0", 1),
            ("-12.5e+3,", 8),
            ("01", 1),
            ("1.5E9]", 5),
            ("7x", 1),
        ] {
            assert_eq!(scan(text), Ok(len), "{text}");
        }
        for (text, at) in [
            ("-", 1),
            ("-x", 1),
            (".5", 0),
            ("1.", 2),
            ("1.e5", 2),
            ("1e", 2),
            ("1e+", 3),
            ("+1", 0),
        ] {
            assert_eq!(scan(text), Err(at), "{text}");
        }
        let n = scan_json_number(b"-123.4e5").unwrap();
        assert_eq!((n.int_len, n.fraction, n.exponent), (4, true, true));
        let n = scan_json_number(b"42").unwrap();
        assert_eq!((n.int_len, n.fraction, n.exponent), (2, false, false));
        for text in ["0", "-0.0", "1e5", "12.50"] {
            assert!(is_json_number_text(text), "{text}");
        }
        for text in ["01", "1.", " 1", "1 ", "", "-", "0x1", "1e5.0"] {
            assert!(!is_json_number_text(text), "{text}");
        }
    }

    fn phrase(s: &str) -> Vec<String> {
        words(s).collect()
    }

    #[test]
    fn words_split_on_non_alphanumerics() {
        assert_eq!(
            phrase("Jane_Doe@Example.com - x1"),
            ["jane", "doe", "example", "com", "x1"]
        );
        assert_eq!(phrase("Ärger über Straße"), ["ärger", "über", "straße"]);
        assert!(phrase(" .-_@ ").is_empty());
    }

    #[test]
    fn phrases_are_consecutive_whole_words() {
        let v = "jane@example.com";
        assert!(contains_phrase(v, &phrase("example")));
        assert!(contains_phrase(v, &phrase("EXAMPLE com")));
        assert!(contains_phrase(v, &phrase("jane@example.com")));
        assert!(!contains_phrase(v, &phrase("exam")));
        assert!(!contains_phrase(v, &phrase("jane com")));
        assert!(!contains_phrase(v, &phrase("...")));
        assert!(contains_phrase("a b a c", &phrase("a c")));
        assert!(contains_phrase("ÄRGER", &phrase("ärger")));
    }

    #[test]
    fn strict_number_text() {
        for ok in ["0", "-0", "42", "4.2e1", "1E-3", "-1.5"] {
            assert!(number_text_value(ok).is_some(), "{ok}");
        }
        for bad in [
            "042", " 42", "42 ", "+1", "1.", ".5", "0x10", "", "-", "1e", "NaN", "Infinity",
        ] {
            assert!(number_text_value(bad).is_none(), "{bad}");
        }
        assert_eq!(
            number_text("9007199254740993").unwrap().i,
            Some(9_007_199_254_740_993)
        );
        assert_eq!(number_text("4.2e1").unwrap().i, None);
    }
}
