//! JSON and JSON5 string escapes, resolved: the one decoder behind [`super::Text::as_str`]
//! (documents' strings, whichever representation holds them).

/// Resolves JSON (or, with `json5`, JSON5) backslash escapes. Malformed escapes are kept
/// as their character; invalid UTF-8 or lone surrogates become U+FFFD.
pub(crate) fn unescape(raw: &[u8], json5: bool) -> String {
    let mut out: Vec<u8> = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let Some(off) = memchr::memchr(b'\\', &raw[i..]) else {
            out.extend_from_slice(&raw[i..]);
            break;
        };
        out.extend_from_slice(&raw[i..i + off]);
        i += off + 1;
        let Some(&c) = raw.get(i) else { break };
        i += 1;
        let ch: Option<char> = match c {
            b'n' => Some('\n'),
            b't' => Some('\t'),
            b'r' if json5 && raw.get(i) == Some(&b'\n') => {
                i += 1;
                None
            }
            b'r' => Some('\r'),
            b'b' => Some('\u{8}'),
            b'f' => Some('\u{c}'),
            b'v' if json5 => Some('\u{b}'),
            b'0' if json5 => Some('\0'),
            b'\n' if json5 => None,
            b'\r' if json5 => {
                if raw.get(i) == Some(&b'\n') {
                    i += 1;
                }
                None
            }
            b'x' if json5 => {
                let v = raw
                    .get(i..i + 2)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u32::from_str_radix(h, 16).ok());
                match v {
                    Some(v) => {
                        i += 2;
                        char::from_u32(v)
                    }
                    None => Some('x'),
                }
            }
            b'u' => {
                let hex4 = |at: usize| {
                    raw.get(at..at + 4)
                        .and_then(|h| std::str::from_utf8(h).ok())
                        .and_then(|h| u32::from_str_radix(h, 16).ok())
                };
                match hex4(i) {
                    Some(hi @ 0xD800..=0xDBFF) => {
                        i += 4;
                        if raw.get(i) == Some(&b'\\')
                            && raw.get(i + 1) == Some(&b'u')
                            && let Some(lo @ 0xDC00..=0xDFFF) = hex4(i + 2)
                        {
                            i += 6;
                            char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00))
                        } else {
                            Some('\u{FFFD}')
                        }
                    }
                    Some(v) => {
                        i += 4;
                        Some(char::from_u32(v).unwrap_or('\u{FFFD}'))
                    }
                    None => Some('u'),
                }
            }
            // JSON5 line continuations U+2028 / U+2029 (E2 80 A8 / E2 80 A9).
            0xE2 if json5
                && raw.get(i) == Some(&0x80)
                && matches!(raw.get(i + 1), Some(0xA8 | 0xA9)) =>
            {
                i += 2;
                None
            }
            other => {
                // `\"`, `\\`, `\/`, JSON5 `\'` and any other escaped byte: the byte itself.
                out.push(other);
                None
            }
        };
        if let Some(ch) = ch {
            let mut buf = [0u8; 4];
            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
        }
    }
    match String::from_utf8(out) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}
