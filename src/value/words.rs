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
    let b = s.as_bytes();
    let mut i = usize::from(b.first() == Some(&b'-'));
    match b.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => {
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
        }
        _ => return false,
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    i == b.len()
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
