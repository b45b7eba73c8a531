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
            other => RegexError::Syntax {
                offset: 0,
                message: other.to_string(),
            },
        })
}

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
    let mut depth = 0usize;
    while let Some((at, c)) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some((_, e)) => push_literal(&mut out, e),
                None => return Err(syntax(at, "trailing backslash")),
            },
            '.' => out.push('.'),
            '?' | '+' | '*' | '|' => out.push(c),
            '(' => {
                // Non-capturing, and never read as `(?flags)`: `(?i)` is an error here, as
                // in the dialect (a `?` with nothing to repeat), not a case-insensitive flag.
                depth += 1;
                out.push_str("(?:");
            }
            ')' => {
                if depth == 0 {
                    return Err(syntax(at, "unmatched `)`"));
                }
                depth -= 1;
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
                        '-' if !first && chars.peek().is_some_and(|&(_, n)| n != ']') => {
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
                            out.push('-');
                            push_literal(&mut out, hi);
                            first = false;
                            continue;
                        }
                        other => other,
                    };
                    push_literal(&mut out, lit);
                    first = false;
                }
                out.push(']');
            }
            '"' => return Err(syntax(at, "unescaped `\"`")),
            ']' => return Err(syntax(at, "unmatched `]`")),
            '}' => return Err(syntax(at, "unmatched `}`")),
            other => push_literal(&mut out, other),
        }
    }
    if depth > 0 {
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
}
