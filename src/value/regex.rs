//! The vendor's Lucene-style regular-expression dialect (spec §2.5.9), translated to the
//! `regex` crate, which matches in linear time.
//!
//! The dialect: patterns are anchored to the whole string; `.` matches any character
//! (newline included); `? + * {n} {n,m} {n,}` repeat the previous atom; `( )` group;
//! `|` alternates; `[…]` / `[^…]` are classes with `a-z` ranges (`-` first or escaped is
//! literal); `\c` is the character `c`. Everything else is literal, including
//! `@ # & ~ < > ^ $`, which optional Lucene syntax would give a meaning. An unescaped
//! `"`, a stray `]` or `}`, or a malformed `{…}` is an error.

use std::fmt::Write as _;

use regex::Regex;

/// The default limit on a compiled pattern's size, in bytes (the `regex` crate's unit).
pub const DEFAULT_SIZE_LIMIT: usize = 1 << 20;

/// A pattern was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RegexError {
    /// The pattern breaks the dialect's syntax.
    #[error("invalid regex at offset {offset}: {message}")]
    Syntax {
        /// Byte offset in the pattern.
        offset: usize,
        /// What is wrong.
        message: String,
    },
    /// The compiled pattern would exceed the size limit.
    #[error("regex too large")]
    TooLarge,
}

/// Compiles a dialect pattern with the default size limit.
pub fn compile(pattern: &str) -> Result<Regex, RegexError> {
    compile_with_limit(pattern, DEFAULT_SIZE_LIMIT)
}

/// Compiles a dialect pattern; `size_limit` bounds the compiled program (bytes).
pub fn compile_with_limit(pattern: &str, size_limit: usize) -> Result<Regex, RegexError> {
    let translated = translate(pattern)?;
    regex::RegexBuilder::new(&translated)
        .size_limit(size_limit)
        .dfa_size_limit(size_limit)
        .build()
        .map_err(|e| match e {
            regex::Error::CompiledTooBig(_) => RegexError::TooLarge,
            // The translator refuses every syntax fault of the dialect; what is left (a
            // nesting limit) has no position in the user's pattern, and the crate's text
            // quotes the translated pattern, so only its final `error:` line is kept.
            other => RegexError::Syntax {
                offset: 0,
                message: crate_reason(&other.to_string()),
            },
        })
}

/// The reason in a `regex` crate error, without the (translated) pattern it quotes.
fn crate_reason(text: &str) -> String {
    text.lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .map_or_else(|| "the pattern is too complex".to_string(), str::to_string)
}

/// Deepest `(` nesting accepted: the `regex` crate refuses deep nesting with an error
/// that cannot point into the user's pattern, so the translator stops well before it.
const MAX_GROUP_DEPTH: usize = 64;

/// Most repetition operators accepted in a row (`a**?`): each one stacked on another
/// costs a nesting level in the translation.
const MAX_STACKED_REPEATS: usize = 16;

fn syntax(offset: usize, message: &str) -> RegexError {
    RegexError::Syntax {
        offset,
        message: message.to_string(),
    }
}

/// Writes `c` so the `regex` crate reads it as the literal character, in or out of a class.
fn push_literal(out: &mut String, c: char) {
    if c.is_alphanumeric() || c == '_' || c == ' ' {
        out.push(c);
    } else {
        let _ = write!(out, "\\x{{{:X}}}", u32::from(c));
    }
}

/// The dialect pattern as `regex` crate syntax: `\A(?s:…)\z`.
pub fn translate(pattern: &str) -> Result<String, RegexError> {
    let mut out = String::with_capacity(pattern.len() * 2 + 12);
    out.push_str(r"\A(?s:");
    let mut chars = pattern.char_indices().peekable();
    // Where each open group starts in `out`, innermost last.
    let mut groups: Vec<usize> = Vec::new();
    // Where the last atom (what a repetition operator repeats) starts in `out`; `None`
    // at the start, after `(` and after `|`, where an operator has nothing to repeat.
    let mut atom: Option<usize> = None;
    // Repetition operators right after the last atom.
    let mut repeats = 0usize;
    while let Some((at, c)) = chars.next() {
        if let '?' | '+' | '*' | '{' = c {
            let Some(start) = atom else {
                return Err(RegexError::Syntax {
                    offset: at,
                    message: format!("`{c}` has nothing before it to repeat"),
                });
            };
            repeats += 1;
            if repeats > MAX_STACKED_REPEATS {
                return Err(syntax(at, "too many repetition operators in a row"));
            }
            if repeats > 1 {
                // The dialect repeats a repetition (`a*?` is `(a*)?`); the `regex` crate
                // would read `*?` as lazy and refuse `**`, so the repeated part is grouped.
                out.insert_str(start, "(?:");
                out.push(')');
            }
        } else {
            repeats = 0;
            atom = Some(out.len());
        }
        match c {
            '\\' => match chars.next() {
                Some((_, e)) => push_literal(&mut out, e),
                None => return Err(syntax(at, "trailing backslash")),
            },
            '.' => out.push('.'),
            '?' | '+' | '*' => out.push(c),
            '|' => {
                atom = None;
                out.push('|');
            }
            '(' => {
                // Non-capturing, and never read as `(?flags)`: `(?i)` is an error here, as
                // in the dialect (a `?` with nothing to repeat), not a case-insensitive flag.
                if groups.len() == MAX_GROUP_DEPTH {
                    return Err(syntax(at, "groups nested too deeply"));
                }
                groups.push(out.len());
                atom = None;
                out.push_str("(?:");
            }
            ')' => {
                let Some(start) = groups.pop() else {
                    return Err(syntax(at, "unmatched `)`"));
                };
                atom = Some(start);
                out.push(')');
            }
            '{' => {
                let mut body = String::new();
                loop {
                    match chars.next() {
                        Some((_, '}')) => break,
                        Some((_, d)) if d.is_ascii_digit() || d == ',' => body.push(d),
                        _ => return Err(syntax(at, "expected `{n}`, `{n,m}` or `{n,}`")),
                    }
                }
                let ok = match body.split_once(',') {
                    None => !body.is_empty(),
                    Some((lo, hi)) => match (lo.parse::<u32>(), hi.parse::<u32>()) {
                        (Ok(_), Err(_)) => hi.is_empty(),
                        (Ok(l), Ok(h)) => h >= l,
                        _ => false,
                    },
                };
                if !ok {
                    return Err(syntax(at, "expected `{n}`, `{n,m}` or `{n,}`"));
                }
                let _ = write!(out, "{{{body}}}");
            }
            '[' => {
                out.push('[');
                if chars.peek().is_some_and(|&(_, c)| c == '^') {
                    chars.next();
                    out.push('^');
                }
                let mut first = true;
                // The previous class member and its offset: the start of a range `a-z`.
                let mut prev: Option<(usize, char)> = None;
                loop {
                    let Some((i, c)) = chars.next() else {
                        return Err(syntax(at, "unclosed `[`"));
                    };
                    let lit = match c {
                        ']' if first => return Err(syntax(i, "empty character class")),
                        ']' => break,
                        '\\' => {
                            chars
                                .next()
                                .ok_or_else(|| syntax(i, "trailing backslash"))?
                                .1
                        }
                        '-' if chars.peek().is_some_and(|&(_, n)| n != ']')
                            && let Some((lo_at, lo)) = prev =>
                        {
                            // A range whose start was the previous character.
                            let (j, hi) = chars.next().ok_or_else(|| syntax(i, "unclosed `[`"))?;
                            let hi = if hi == '\\' {
                                chars
                                    .next()
                                    .ok_or_else(|| syntax(j, "trailing backslash"))?
                                    .1
                            } else {
                                hi
                            };
                            if hi < lo {
                                return Err(RegexError::Syntax {
                                    offset: lo_at,
                                    message: format!("character range `{lo}-{hi}` is out of order"),
                                });
                            }
                            out.push('-');
                            push_literal(&mut out, hi);
                            first = false;
                            // `[a-c-e]`: a `-` right after a range is a literal.
                            prev = None;
                            continue;
                        }
                        other => other,
                    };
                    push_literal(&mut out, lit);
                    first = false;
                    prev = Some((i, lit));
                }
                out.push(']');
            }
            '"' => return Err(syntax(at, "unescaped `\"`")),
            ']' => return Err(syntax(at, "unmatched `]`")),
            '}' => return Err(syntax(at, "unmatched `}`")),
            other => push_literal(&mut out, other),
        }
    }
    if !groups.is_empty() {
        return Err(syntax(pattern.len(), "unclosed `(`"));
    }
    out.push_str(r")\z");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn yes(p: &str, s: &str) {
        assert!(compile(p).unwrap().is_match(s), "{p} should match {s:?}");
    }

    #[track_caller]
    fn no(p: &str, s: &str) {
        assert!(
            !compile(p).unwrap().is_match(s),
            "{p} should not match {s:?}"
        );
    }

    #[test]
    fn vendor_examples() {
        yes("ab.*", "abcde");
        no("abcd", "abcde");
        yes("ab...", "abcde");
        yes("a.c.e", "abcde");
        for p in [
            "a+b+", "aa+bb+", "a+.+", "aa+bbb+", "a*b*", "a*b*c*", ".*bbb.*", "aaa*bbb*",
        ] {
            yes(p, "aaabbb");
        }
        for p in [
            "aaa?bbb?",
            "aaaa?bbbb?",
            ".....?.?",
            "a{3}b{3}",
            "a{2,4}b{2,4}",
            "a{2,}b{2,}",
            ".{3}.{3}",
        ] {
            yes(p, "aaabbb");
        }
        for p in ["aa?bb?", "a{4}b{4}", "a{4,6}b{4,6}", "a{4,}b{4,}"] {
            no(p, "aaabbb");
        }
        for p in [
            "(ab)+",
            "ab(ab)+",
            "(..)+",
            "(...)+",
            "(ab)*",
            "abab(ab)?",
            "(ab){3}",
        ] {
            yes(p, "ababab");
        }
        no("ab(ab)?", "ababab");
        no("(ab){1,2}", "ababab");
        for p in ["aabb|bbaa", "aa(cc|bb)", "a+b+|b+a+", "a+(b|c)+"] {
            yes(p, "aabb");
        }
        no("aacc|bb", "aabb");
        no("a+|b+", "aabb");
        yes("ab[cd]+", "abcd");
        yes("[a-d]+", "abcd");
        no("[^a-d]+", "abcd");
        yes("[-abc]+", "a-b");
        yes("[abc\\-]+", "a-b");
    }

    #[test]
    fn optional_operators_are_literal() {
        for c in ["@", "#", "&", "~", "<", ">", "^", "$"] {
            yes(&format!("a{c}b"), &format!("a{c}b"));
        }
        no("^a", "a");
        yes("a.b", "a\nb");
        yes("a\\.b", "a.b");
        no("a\\.b", "axb");
        yes("\\\\", "\\");
        yes("[\\]]", "]");
        yes("[[&~]+", "[&~");
        no("A.*", "a");
    }

    #[test]
    fn errors() {
        for bad in [
            "(?i)a", "a\"b", "a]", "a}", "a{", "a{x}", "a{,3}", "a{3,2}", "[", "[]", "(a", "a)",
            "\\", "*a",
        ] {
            assert!(compile(bad).is_err(), "{bad}");
        }
        assert_eq!(
            compile_with_limit("(a|b|c|d){1000}", 1000).unwrap_err(),
            RegexError::TooLarge
        );
    }

    #[test]
    fn regex_syntax_errors_point_into_the_users_pattern() {
        let cases = [
            ("(?i)a", 1, "`?` has nothing before it to repeat"),
            ("*a", 0, "`*` has nothing before it to repeat"),
            ("a|*", 2, "`*` has nothing before it to repeat"),
            ("a(+b)", 2, "`+` has nothing before it to repeat"),
            ("{2}", 0, "`{` has nothing before it to repeat"),
            ("ab[z-a]", 3, "character range `z-a` is out of order"),
            ("[\\z-a]", 1, "character range `z-a` is out of order"),
        ];
        for (p, offset, message) in cases {
            let want = RegexError::Syntax {
                offset,
                message: message.to_string(),
            };
            assert_eq!(compile(p).unwrap_err(), want, "{p}");
        }
        let deep = format!("{}a{}", "(".repeat(65), ")".repeat(65));
        assert!(matches!(
            compile(&deep).unwrap_err(),
            RegexError::Syntax { offset: 64, .. }
        ));
        // No message ever quotes the translated pattern.
        for p in ["(?i)a", "*a", "[z-a]", deep.as_str()] {
            let text = compile(p).unwrap_err().to_string();
            assert!(!text.contains("(?s:") && !text.contains("\\A"), "{text}");
        }
        assert_eq!(
            crate_reason("regex parse error:\n    \\A(?s:x\n    ^\nerror: nest limit exceeded"),
            "nest limit exceeded"
        );
    }

    #[test]
    fn stacked_repetitions_and_ranges_keep_their_meaning() {
        // `a*?` is `(a*)?` (the dialect), not a lazy `a*`: same set of whole matches.
        yes("a*?", "aaa");
        yes("a*?", "");
        yes("a**b", "aab");
        yes("(ab)+*", "abab");
        yes("a{2}{2}", "aaaa");
        no("a{2}{2}", "aaa");
        yes("[a-c-e]+", "b-e");
        no("[a-c-e]+", "d");
        yes("[a-a]", "a");
    }
}
