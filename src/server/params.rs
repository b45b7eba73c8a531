//! Request parameters as the SDKs and curl send them: `application/x-www-form-urlencoded`
//! pairs from the query string and the body, with `+` and `%20` both meaning a space.
//!
//! The pairs keep their wire order and exact decoded text, because the request signature
//! is computed over them.

/// The decoded parameters of one request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

/// A parameter string is not valid form encoding.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParamsError(pub String);

impl Params {
    /// Parameters from name/value pairs, as given.
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Params {
        Params {
            pairs: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// Appends the pairs of a form-encoded string (`a=1&b=x+y`).
    pub fn extend_from_form(&mut self, text: &[u8]) -> Result<(), ParamsError> {
        for part in text.split(|&b| b == b'&') {
            if part.is_empty() {
                continue;
            }
            let (name, value) = match part.iter().position(|&b| b == b'=') {
                Some(i) => (&part[..i], &part[i + 1..]),
                None => (part, &b""[..]),
            };
            let name = decode(name)?;
            if name.is_empty() {
                continue;
            }
            self.pairs.push((name, decode(value)?));
        }
        Ok(())
    }

    /// The value of `name`. When a name repeats, the last one wins (body after query string).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The value of `name`, `None` when absent or empty (the SDKs send unset optional
    /// values as empty strings).
    pub fn get_nonempty(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|v| !v.is_empty())
    }

    /// Every pair in wire order.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }
}

/// Percent-decodes one form component; `+` is a space.
fn decode(raw: &[u8]) -> Result<String, ParamsError> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = raw.get(i + 1..i + 3).and_then(|h| {
                    let h = std::str::from_utf8(h).ok()?;
                    u8::from_str_radix(h, 16).ok()
                });
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => {
                        return Err(ParamsError(format!(
                            "bad percent-encoding at \"{}\"",
                            String::from_utf8_lossy(&raw[i..raw.len().min(i + 3)])
                        )));
                    }
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| ParamsError("a parameter is not valid UTF-8".into()))
}

/// RFC 3986 percent-encoding: everything but `A-Z a-z 0-9 - _ . ~` is escaped, space is
/// `%20`. This is what both the Node SDK (strict-uri-encode) and the Python SDK sign.
pub fn rfc3986_encode(text: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in text.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 15)] as char);
        }
    }
}

/// Reads a boolean parameter the way the SDKs write them (`true`/`false`, any case, or
/// `1`/`0`).
pub fn parse_bool(value: &str) -> Option<bool> {
    if value.eq_ignore_ascii_case("true") || value == "1" {
        Some(true)
    } else if value.eq_ignore_ascii_case("false") || value == "0" {
        Some(false)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(text: &str) -> Params {
        let mut p = Params::default();
        p.extend_from_form(text.as_bytes()).unwrap();
        p
    }

    #[test]
    fn plus_and_percent_20_are_both_spaces() {
        let p = form("query=SELECT+*%20FROM%20accounts&x=a%2Bb");
        assert_eq!(p.get("query"), Some("SELECT * FROM accounts"));
        assert_eq!(p.get("x"), Some("a+b"));
    }

    #[test]
    fn node_sdk_body_decodes() {
        let p = form(
            "email=a%40b.com&profile=%7B%22firstName%22%3A%22X%22%2C%22nullish%22%3Anull%7D&apiKey=3_APIKEY&format=json",
        );
        assert_eq!(p.get("email"), Some("a@b.com"));
        assert_eq!(
            p.get("profile"),
            Some(r#"{"firstName":"X","nullish":null}"#)
        );
    }

    #[test]
    fn last_value_wins_and_empty_is_absent() {
        let p = form("a=1&a=2&b=&c");
        assert_eq!(p.get("a"), Some("2"));
        assert_eq!(p.get("b"), Some(""));
        assert_eq!(p.get_nonempty("b"), None);
        assert_eq!(p.get("c"), Some(""));
    }

    #[test]
    fn bad_encoding_is_an_error() {
        assert!(Params::default().extend_from_form(b"a=%zz").is_err());
        assert!(Params::default().extend_from_form(b"a=%4").is_err());
        assert!(Params::default().extend_from_form(b"a=%ff").is_err());
    }

    proptest::proptest! {
        #[test]
        fn decoding_never_panics(raw in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            let _ = Params::default().extend_from_form(&raw);
        }

        #[test]
        fn encode_then_decode_is_identity(name in "[a-zA-Z]{1,8}", value in "\\PC{0,24}") {
            let mut text = String::new();
            rfc3986_encode(&name, &mut text);
            text.push('=');
            rfc3986_encode(&value, &mut text);
            let mut p = Params::default();
            p.extend_from_form(text.as_bytes()).unwrap();
            proptest::prop_assert_eq!(p.get(&name), Some(value.as_str()));
        }
    }

    #[test]
    fn rfc3986_matches_the_sdks() {
        let mut s = String::new();
        rfc3986_encode("SELECT * FROM a WHERE x='y' (!)~", &mut s);
        assert_eq!(
            s,
            "SELECT%20%2A%20FROM%20a%20WHERE%20x%3D%27y%27%20%28%21%29~"
        );
    }
}
