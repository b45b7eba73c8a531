//! SQLite's JSONB format (<https://sqlite.org/jsonb.html>): encoding, decoding, a
//! zero-copy view, and rendering JSONB straight to JSON text, in Rust.
//!
//! An element is a header then a payload. The header's first byte holds the type in its
//! low nibble and the payload size in its high nibble: 0–11 is the size itself, 12/13/14/15
//! mean a 1/2/4/8-byte big-endian size follows. Arrays and objects hold their children's
//! elements back to back (objects alternate key, value); scalars hold text (numbers are
//! kept as their JSON or JSON5 text).
//!
//! Reading never panics and never recurses without bound: [`Jsonb::new`] validates every
//! byte (iteratively, with a depth limit); [`Jsonb::trusted`] skips validation for bytes
//! this crate or SQLite wrote, and still only reads within bounds (malformed parts read
//! as `null` or end an iteration early).

use std::borrow::Cow;
use std::fmt::Write as _;
use std::ops::ControlFlow;

use serde_json::Value;

use crate::value::{
    Escapes, Kind, MAX_DEPTH, Node, Number, Text, is_json_number_text, key_run, unescape,
};

/// Element type codes (the header's low nibble).
pub mod kind {
    /// `null`.
    pub const NULL: u8 = 0;
    /// `true`.
    pub const TRUE: u8 = 1;
    /// `false`.
    pub const FALSE: u8 = 2;
    /// An integer as JSON text.
    pub const INT: u8 = 3;
    /// An integer as JSON5 text (hexadecimal, `+`).
    pub const INT5: u8 = 4;
    /// A real as JSON text.
    pub const FLOAT: u8 = 5;
    /// A real as JSON5 text (`.5`, `5.`, `Infinity`, `NaN`, `+`).
    pub const FLOAT5: u8 = 6;
    /// A string needing no escapes.
    pub const TEXT: u8 = 7;
    /// A string with JSON escapes.
    pub const TEXTJ: u8 = 8;
    /// A string with JSON5 escapes.
    pub const TEXT5: u8 = 9;
    /// A string to be escaped on output.
    pub const TEXTRAW: u8 = 10;
    /// An array.
    pub const ARRAY: u8 = 11;
    /// An object.
    pub const OBJECT: u8 = 12;
}

/// Malformed JSONB.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JsonbError {
    /// A header or payload runs past its container (or the buffer).
    #[error("JSONB truncated at byte {0}")]
    Truncated(usize),
    /// Bytes follow the root element.
    #[error("JSONB has trailing bytes after byte {0}")]
    Trailing(usize),
    /// A reserved type code, a key that is not text, an object with a key and no value.
    #[error("JSONB malformed at byte {0}")]
    Malformed(usize),
    /// A scalar payload is not valid for its type.
    #[error("JSONB payload of the element at byte {0} is not valid for its type")]
    BadPayload(usize),
    /// Containers nest deeper than [`MAX_DEPTH`].
    #[error("JSONB nests deeper than {MAX_DEPTH} levels")]
    TooDeep,
}

/// The header at `at`: `(type, payload start, payload end)`, within `buf`.
#[inline(always)]
fn header(buf: &[u8], at: usize) -> Option<(u8, usize, usize)> {
    let b0 = *buf.get(at)?;
    let code = usize::from(b0 >> 4);
    // Scalars and keys mostly fit the one-byte header, and most other elements (longer
    // strings, small containers) the two-byte one: keep both inline and branch-light.
    let (start, len) = if code <= 11 {
        (at + 1, code)
    } else if code == 12 {
        (at + 2, usize::from(*buf.get(at + 1)?))
    } else {
        return long_header(buf, at, b0, code);
    };
    let end = start + len;
    (end <= buf.len()).then_some((b0 & 0x0f, start, end))
}

/// [`header`] for the 1-, 2-, 4- and 8-byte size forms (codes 12–15): out of line and
/// cold, since only long strings and large containers need them, so that [`header`] stays
/// small enough to inline into every reader. Sizes that overflow `usize` or run past `buf`
/// read as `None`, as a truncated header does.
#[cold]
#[inline(never)]
fn long_header(buf: &[u8], at: usize, b0: u8, code: usize) -> Option<(u8, usize, usize)> {
    let (len, hdr) = match code {
        12 => (usize::from(*buf.get(at + 1)?), 2),
        13 => (
            usize::from(u16::from_be_bytes(
                buf.get(at + 1..at + 3)?.try_into().ok()?,
            )),
            3,
        ),
        14 => (
            usize::try_from(u32::from_be_bytes(
                buf.get(at + 1..at + 5)?.try_into().ok()?,
            ))
            .ok()?,
            5,
        ),
        _ => (
            usize::try_from(u64::from_be_bytes(
                buf.get(at + 1..at + 9)?.try_into().ok()?,
            ))
            .ok()?,
            9,
        ),
    };
    let start = at + hdr;
    let end = start.checked_add(len)?;
    (end <= buf.len()).then_some((b0 & 0x0f, start, end))
}

/// Whether byte `at` of the JSONB document `doc` may be part of a string written with
/// escapes (the payload of a TEXTJ or TEXT5 element, key or value), as [`Jsonb::trusted`]
/// reads the document.
///
/// Follows only the headers on the way to `at`: siblings are skipped by their sizes, and
/// just the container holding `at` is entered. A malformed document answers `true`.
/// Residual prefilters use it to tell a `\` that starts an escape from the same byte
/// value in a header or a size (objects of 92 bytes have one).
pub(crate) fn in_escaped_text(doc: &[u8], at: usize) -> bool {
    let (mut pos, mut end) = (0, doc.len());
    let mut root = true;
    while pos < end {
        let Some((k, s, e)) = header(doc, pos) else {
            return true;
        };
        if e > end {
            // A child overrunning its container: readers stop there, but stay safe.
            return true;
        }
        if at >= e {
            if root {
                // Bytes after the root element are never read.
                return false;
            }
            pos = e;
            continue;
        }
        if at < s {
            return false;
        }
        match k {
            kind::ARRAY | kind::OBJECT => (pos, end, root) = (s, e, false),
            kind::TEXTJ | kind::TEXT5 => return true,
            _ => return false,
        }
    }
    // `at` lies in a container's payload after its last whole child.
    !root
}

/// A borrowed view of one JSONB element.
#[derive(Clone, Copy, Debug)]
pub struct Jsonb<'a> {
    kind: u8,
    payload: &'a [u8],
}

impl<'a> Jsonb<'a> {
    /// Validates `bytes` as exactly one well-formed JSONB element and views it.
    pub fn new(bytes: &'a [u8]) -> Result<Jsonb<'a>, JsonbError> {
        validate(bytes)?;
        Ok(Jsonb::trusted(bytes))
    }

    /// Views `bytes` without validating them (for bytes this crate or SQLite wrote).
    ///
    /// Never panics: a malformed root reads as `null`, malformed children end iteration.
    pub fn trusted(bytes: &'a [u8]) -> Jsonb<'a> {
        match header(bytes, 0) {
            Some((kind, s, e)) => Jsonb {
                kind,
                payload: &bytes[s..e],
            },
            None => Jsonb {
                kind: kind::NULL,
                payload: &[],
            },
        }
    }

    /// The type code (see [`kind`]).
    pub fn type_code(self) -> u8 {
        self.kind
    }

    /// The payload bytes.
    pub fn payload(self) -> &'a [u8] {
        self.payload
    }

    /// Renders this element as JSON text (see [`write_json`]).
    pub fn write_json(self, out: &mut Vec<u8>, skip_null_members: bool) -> Result<(), JsonbError> {
        write_elem(self.kind, self.payload, 0, out, skip_null_members, 0)
    }
}

/// The children of a JSONB container, in order.
#[derive(Clone, Debug)]
pub struct Children<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for Children<'a> {
    type Item = Jsonb<'a>;

    #[inline]
    fn next(&mut self) -> Option<Jsonb<'a>> {
        if self.pos >= self.buf.len() {
            return None;
        }
        match header(self.buf, self.pos) {
            Some((kind, s, e)) => {
                self.pos = e;
                Some(Jsonb {
                    kind,
                    payload: &self.buf[s..e],
                })
            }
            None => {
                self.pos = self.buf.len();
                None
            }
        }
    }
}

/// The members of a JSONB object: `(key, value)` pairs.
#[derive(Clone, Debug)]
pub struct Members<'a>(Children<'a>);

impl<'a> Iterator for Members<'a> {
    type Item = (Text<'a>, Jsonb<'a>);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        let k = self.0.next()?;
        let v = self.0.next()?;
        Some((k.as_text()?, v))
    }
}

/// How a string element of type `kind` is escaped: TEXT and TEXTRAW hold the characters
/// themselves, TEXTJ and TEXT5 hold JSON or JSON5 escapes. `None` for a type that is not a
/// string, which is how readers and the validator tell that an object key is malformed.
#[inline]
fn text_escapes(kind: u8) -> Option<Escapes> {
    match kind {
        kind::TEXT | kind::TEXTRAW => Some(Escapes::None),
        kind::TEXTJ => Some(Escapes::Json),
        kind::TEXT5 => Some(Escapes::Json5),
        _ => None,
    }
}

impl<'a> Node<'a> for Jsonb<'a> {
    type Elements = Children<'a>;
    type Members = Members<'a>;

    #[inline]
    fn kind(self) -> Kind {
        match self.kind {
            kind::TRUE | kind::FALSE => Kind::Bool,
            kind::INT..=kind::FLOAT5 => Kind::Number,
            kind::TEXT..=kind::TEXTRAW => Kind::String,
            kind::ARRAY => Kind::Array,
            kind::OBJECT => Kind::Object,
            _ => Kind::Null,
        }
    }

    fn as_bool(self) -> Option<bool> {
        match self.kind {
            kind::TRUE => Some(true),
            kind::FALSE => Some(false),
            _ => None,
        }
    }

    #[inline]
    fn as_text(self) -> Option<Text<'a>> {
        Some(Text::new(self.payload, text_escapes(self.kind)?))
    }

    fn as_number(self) -> Option<Number> {
        let text = std::str::from_utf8(self.payload).ok()?;
        match self.kind {
            kind::INT => match text.parse::<i64>() {
                #[allow(clippy::cast_precision_loss)]
                Ok(i) => Some(Number {
                    f: i as f64,
                    i: Some(i),
                }),
                Err(_) => Some(Number {
                    f: text.parse().ok()?,
                    i: None,
                }),
            },
            kind::FLOAT => Some(Number {
                f: text.parse().ok()?,
                i: None,
            }),
            kind::INT5 => parse_int5(text),
            kind::FLOAT5 => parse_float5(text).map(|f| Number { f, i: None }),
            _ => None,
        }
    }

    fn number_text(self) -> Option<Cow<'a, str>> {
        match self.kind {
            kind::INT | kind::FLOAT => std::str::from_utf8(self.payload).ok().map(Cow::Borrowed),
            kind::INT5 | kind::FLOAT5 => canonical_number(self.as_number()?).map(Cow::Owned),
            _ => None,
        }
    }

    fn members_matching<F: FnMut(usize, Self) -> ControlFlow<()>>(
        self,
        path: &[String],
        mut f: F,
    ) -> ControlFlow<()> {
        if self.kind != kind::OBJECT {
            return ControlFlow::Continue(());
        }
        // One pass over the payload with keys compared as raw bytes: no `Text` per member,
        // and escaped keys (rare) take the decoding path.
        let p = self.payload;
        let mut pos = 0;
        while pos < p.len() {
            let Some((kk, ks, ke)) = header(p, pos) else {
                break;
            };
            let Some((vk, vs, ve)) = header(p, ke) else {
                break;
            };
            pos = ve;
            let key = &p[ks..ke];
            let n = match kk {
                kind::TEXT | kind::TEXTRAW => key_run(key, path),
                kind::TEXTJ => Text::new(key, Escapes::Json).with_bytes(|k| key_run(k, path)),
                kind::TEXT5 => Text::new(key, Escapes::Json5).with_bytes(|k| key_run(k, path)),
                _ => break,
            };
            if let Some(n) = n {
                f(
                    n,
                    Jsonb {
                        kind: vk,
                        payload: &p[vs..ve],
                    },
                )?;
            }
        }
        ControlFlow::Continue(())
    }

    #[inline]
    fn elements(self) -> Children<'a> {
        let buf = if self.kind == kind::ARRAY {
            self.payload
        } else {
            &[]
        };
        Children { buf, pos: 0 }
    }

    #[inline]
    fn members(self) -> Members<'a> {
        let buf = if self.kind == kind::OBJECT {
            self.payload
        } else {
            &[]
        };
        Members(Children { buf, pos: 0 })
    }
}

/// JSON text for a number read from JSON5 (`None` when JSON cannot hold it).
fn canonical_number(n: Number) -> Option<String> {
    if let Some(i) = n.i {
        return Some(i.to_string());
    }
    serde_json::Number::from_f64(n.f).map(|x| x.to_string())
}

/// Splits a leading `-` or `+` (JSON5 allows both) off number text: `(negative, digits)`.
fn strip_sign(text: &str) -> (bool, &str) {
    match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    }
}

/// A JSON5 integer: optional sign, then decimal digits or `0x` hexadecimal.
fn parse_int5(text: &str) -> Option<Number> {
    let (neg, body) = strip_sign(text);
    let magnitude: u128 =
        if let Some(hex) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
            if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            // Wider than u128: keep it as a double only.
            match u128::from_str_radix(hex, 16) {
                Ok(m) => m,
                Err(_) => {
                    let f = hex.bytes().fold(0.0f64, |acc, b| {
                        acc * 16.0 + f64::from((b as char).to_digit(16).unwrap_or(0))
                    });
                    return Some(Number {
                        f: if neg { -f } else { f },
                        i: None,
                    });
                }
            }
        } else {
            if body.is_empty() || !body.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let f: f64 = body.parse().ok()?;
            return Some(Number {
                f: if neg { -f } else { f },
                i: body.parse::<i64>().ok().map(|i| if neg { -i } else { i }),
            });
        };
    // Never negate a wrapped value: beyond i64 the number is kept as a double only.
    #[allow(clippy::cast_precision_loss)]
    let f = magnitude as f64;
    let i = i64::try_from(magnitude)
        .ok()
        .map(|m| if neg { -m } else { m });
    Some(Number {
        f: if neg { -f } else { f },
        i,
    })
}

/// A JSON5 real: optional sign, `.5`, `5.`, exponents, `Infinity`, `NaN`.
fn parse_float5(text: &str) -> Option<f64> {
    let (neg, body) = strip_sign(text);
    let f = match body {
        "Infinity" | "inf" => f64::INFINITY,
        "NaN" => f64::NAN,
        _ if body
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
            && body.bytes().any(|b| b.is_ascii_digit()) =>
        {
            body.parse().ok()?
        }
        _ => return None,
    };
    Some(if neg { -f } else { f })
}

/// Validates one whole JSONB element, iteratively.
fn validate(buf: &[u8]) -> Result<(), JsonbError> {
    /// An open container: where its payload ends, and how many children were seen, so
    /// that an object's keys (even positions) are checked to be text and a key without a
    /// value is caught at the end.
    struct Frame {
        end: usize,
        object: bool,
        count: usize,
    }
    let (k, s, e) = header(buf, 0).ok_or(JsonbError::Truncated(0))?;
    if e != buf.len() {
        return Err(JsonbError::Trailing(e));
    }
    let mut stack: Vec<Frame> = Vec::new();
    if k == kind::ARRAY || k == kind::OBJECT {
        stack.push(Frame {
            end: e,
            object: k == kind::OBJECT,
            count: 0,
        });
    } else {
        check_scalar(k, &buf[s..e], 0)?;
    }
    let mut pos = s;
    while let Some(top) = stack.last_mut() {
        if pos == top.end {
            if top.object && top.count % 2 == 1 {
                return Err(JsonbError::Malformed(pos));
            }
            stack.pop();
            continue;
        }
        let (k, s, e) = header(buf, pos).ok_or(JsonbError::Truncated(pos))?;
        if e > top.end {
            return Err(JsonbError::Truncated(pos));
        }
        let is_key = top.object && top.count % 2 == 0;
        top.count += 1;
        if is_key && text_escapes(k).is_none() {
            return Err(JsonbError::Malformed(pos));
        }
        if k == kind::ARRAY || k == kind::OBJECT {
            if stack.len() >= MAX_DEPTH {
                return Err(JsonbError::TooDeep);
            }
            stack.push(Frame {
                end: e,
                object: k == kind::OBJECT,
                count: 0,
            });
            pos = s;
        } else {
            check_scalar(k, &buf[s..e], pos)?;
            pos = e;
        }
    }
    Ok(())
}

/// Checks that `payload` is valid for scalar type `k`: no payload for the literals, number
/// text of the right form (INT has no fraction or exponent), UTF-8 strings whose escapes
/// match their type. `at` is the element's offset, for the error.
fn check_scalar(k: u8, payload: &[u8], at: usize) -> Result<(), JsonbError> {
    let bad = JsonbError::BadPayload(at);
    let text = || std::str::from_utf8(payload).map_err(|_| bad.clone());
    match k {
        kind::NULL | kind::TRUE | kind::FALSE => {
            if !payload.is_empty() {
                return Err(bad);
            }
        }
        kind::INT => {
            let t = text()?;
            if !is_json_number_text(t) || t.bytes().any(|b| matches!(b, b'.' | b'e' | b'E')) {
                return Err(bad);
            }
        }
        kind::FLOAT => {
            if !is_json_number_text(text()?) {
                return Err(bad);
            }
        }
        kind::INT5 => {
            parse_int5(text()?).ok_or(bad)?;
        }
        kind::FLOAT5 => {
            parse_float5(text()?).ok_or(bad)?;
        }
        kind::TEXT => {
            if payload.iter().any(|&b| b < 0x20 || b == b'"' || b == b'\\') {
                return Err(bad);
            }
            text()?;
        }
        kind::TEXTJ => {
            if payload.iter().any(|&b| b < 0x20) || !json_escapes_ok(payload) {
                return Err(bad);
            }
            text()?;
        }
        kind::TEXT5 | kind::TEXTRAW => {
            text()?;
        }
        _ => return Err(JsonbError::Malformed(at)),
    }
    Ok(())
}

/// Every backslash starts a valid JSON escape.
fn json_escapes_ok(p: &[u8]) -> bool {
    let mut i = 0;
    while let Some(off) = memchr::memchr(b'\\', &p[i..]) {
        i += off + 1;
        match p.get(i) {
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => i += 1,
            Some(b'u') => {
                if !p
                    .get(i + 1..i + 5)
                    .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
                {
                    return false;
                }
                i += 5;
            }
            _ => return false,
        }
    }
    true
}

// ---------------------------------------------------------------------------------------
// Encoding

/// Appends the JSONB encoding of `value` to `out` (minimal headers; strings that need
/// escapes are stored JSON-escaped as TEXTJ, so rendering them is a copy).
pub fn encode(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Null => out.push(kind::NULL),
        Value::Bool(true) => out.push(kind::TRUE),
        Value::Bool(false) => out.push(kind::FALSE),
        Value::Number(n) => {
            let k = if n.is_i64() || n.is_u64() {
                kind::INT
            } else {
                kind::FLOAT
            };
            // Formatted on the stack: numbers are most of the scalars of a document, and
            // their text is at most 24 bytes (u64 or ryu's shortest f64).
            let mut buf = [0u8; 40];
            let mut rest = &mut buf[..];
            if std::io::Write::write_fmt(&mut rest, format_args!("{n}")).is_ok() {
                let len = 40 - rest.len();
                push_header(out, k, len);
                out.extend_from_slice(&buf[..len]);
            } else {
                let text = n.to_string();
                push_header(out, k, text.len());
                out.extend_from_slice(text.as_bytes());
            }
        }
        Value::String(s) => encode_str(s, out),
        Value::Array(items) => container(out, kind::ARRAY, |out| {
            items.iter().for_each(|v| encode(v, out))
        }),
        Value::Object(map) => container(out, kind::OBJECT, |out| {
            for (k, v) in map {
                encode_str(k, out);
                encode(v, out);
            }
        }),
    }
}

/// Appends a string (a value or an object key): TEXT when it needs no escape, else TEXTJ
/// with the JSON escapes written once here, so that rendering is a copy either way.
fn encode_str(s: &str, out: &mut Vec<u8>) {
    let b = s.as_bytes();
    if b.iter().any(|&c| needs_escape(c)) {
        let mut esc = Vec::with_capacity(b.len() + 8);
        escape_into(&mut esc, b);
        push_header(out, kind::TEXTJ, esc.len());
        out.extend_from_slice(&esc);
    } else {
        push_header(out, kind::TEXT, b.len());
        out.extend_from_slice(b);
    }
}

/// The JSONB encoding of `value` as a new buffer.
pub fn to_vec(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    encode(value, &mut out);
    out
}

/// Appends the minimal header of a type-`k` element with a `len`-byte payload.
fn push_header(out: &mut Vec<u8>, k: u8, len: usize) {
    let mut buf = [0u8; 9];
    let n = header_into(&mut buf, k, len);
    out.extend_from_slice(&buf[..n]);
}

/// Writes a container: a 5-byte placeholder header, the children, then the real
/// (minimal) header, moving the payload down when the header is shorter.
fn container(out: &mut Vec<u8>, k: u8, body: impl FnOnce(&mut Vec<u8>)) {
    let at = out.len();
    out.extend_from_slice(&[0; 5]);
    body(out);
    let len = out.len() - at - 5;
    let mut buf = [0u8; 9];
    let n = header_into(&mut buf, k, len);
    let hdr = &buf[..n];
    if n <= 5 {
        let shift = 5 - n;
        out[at..at + n].copy_from_slice(hdr);
        if shift > 0 {
            out.copy_within(at + 5.., at + n);
            out.truncate(out.len() - shift);
        }
    } else {
        // Payloads of 4 GiB or more: make room for the 9-byte header.
        out.splice(at..at + 5, hdr.iter().copied());
    }
}

// ---------------------------------------------------------------------------------------
// Strict JSON text to JSONB

/// Where [`from_text`] refused its input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TextError {
    /// Byte offset of the first byte that cannot continue the text.
    pub at: usize,
    /// Arrays and objects nest deeper than [`TEXT_MAX_DEPTH`].
    pub too_deep: bool,
    /// A number at `at` overflows a double (`1e999`, or 400 digits): JSON allows it,
    /// acql refuses it (DESIGN §4a Numbers), since no index or comparison could hold it.
    pub out_of_range: bool,
}

impl TextError {
    /// The reason for a bad import line when the text is valid JSON but refused here
    /// (`None` for plain syntax errors, which the caller words).
    pub(crate) fn reason(&self) -> Option<String> {
        if self.out_of_range {
            Some(format!(
                "number out of range at byte {} (larger than a double can hold)",
                self.at + 1
            ))
        } else if self.too_deep {
            Some("invalid JSON (nested too deeply)".to_string())
        } else {
            None
        }
    }
}

/// The most deeply nested arrays and objects [`from_text`] accepts: SQLite's
/// `JSON_MAX_DEPTH`, so it refuses exactly what `jsonb()` refuses.
pub(crate) const TEXT_MAX_DEPTH: u32 = 1000;

/// Appends the JSONB of strict JSON text (RFC 8259; SQLite's JSON5 extensions refused) to
/// `out`, byte for byte as SQLite's `jsonb()` encodes it: numbers and strings keep their
/// text (INT or FLOAT; TEXT, or TEXTJ when escaped), headers are minimal, whitespace goes.
/// Accepts what `json_valid(text, 1)` accepts (both tested against SQLite), except numbers
/// that overflow a double ([`TextError::out_of_range`]). On error,
/// `out` holds a partial encoding past its original length: callers truncate.
///
/// One pass in Rust, where the bulk import used to ask SQLite for
/// `jsonb(?1) WHERE json_valid(?1, 1)`: a statement per line, the text copied into it and
/// the result copied out (docs/measurements.md).
pub(crate) fn from_text(text: &[u8], out: &mut Vec<u8>) -> Result<(), TextError> {
    let mut p = TextParser { z: text, i: 0, out };
    p.whitespace();
    p.value(0)?;
    p.whitespace();
    if p.i != text.len() {
        return Err(p.error_at(p.i));
    }
    Ok(())
}

/// The state of [`from_text`]: a recursive-descent JSON parser that writes JSONB as it
/// reads, one method per production. Recursion is bounded by [`TEXT_MAX_DEPTH`].
struct TextParser<'t, 'o> {
    /// The JSON text.
    z: &'t [u8],
    /// The next byte to read.
    i: usize,
    /// Where the JSONB goes.
    out: &'o mut Vec<u8>,
}

impl TextParser<'_, '_> {
    /// A syntax error at byte `at` (the caller words it).
    fn error_at(&self, at: usize) -> TextError {
        TextError {
            at,
            too_deep: false,
            out_of_range: false,
        }
    }

    /// The next byte, `None` at the end.
    fn peek(&self) -> Option<u8> {
        self.z.get(self.i).copied()
    }

    /// Skips JSON's four whitespace characters (JSON5's others and comments are refused
    /// where a value or separator is expected).
    fn whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.i += 1;
        }
    }

    /// One value at nesting `depth`, chosen by its first byte.
    fn value(&mut self, depth: u32) -> Result<(), TextError> {
        match self.peek() {
            Some(b'{') => self.container(depth, kind::OBJECT, b'}'),
            Some(b'[') => self.container(depth, kind::ARRAY, b']'),
            Some(b'"') => self.string(),
            Some(b't') => self.literal(b"true", kind::TRUE),
            Some(b'f') => self.literal(b"false", kind::FALSE),
            Some(b'n') => self.literal(b"null", kind::NULL),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => Err(self.error_at(self.i)),
        }
    }

    /// `true`, `false` or `null` (`word`), written as the payload-less element `k`.
    fn literal(&mut self, word: &[u8], k: u8) -> Result<(), TextError> {
        if !self.z[self.i..].starts_with(word) {
            return Err(self.error_at(self.i));
        }
        self.i += word.len();
        self.out.push(k);
        Ok(())
    }

    /// An array or object (`k`) up to its `close` byte; members are `"key": value` pairs
    /// when `k` is OBJECT. Refuses nesting past [`TEXT_MAX_DEPTH`].
    fn container(&mut self, depth: u32, k: u8, close: u8) -> Result<(), TextError> {
        if depth >= TEXT_MAX_DEPTH {
            return Err(TextError {
                at: self.i,
                too_deep: true,
                out_of_range: false,
            });
        }
        self.i += 1;
        let at = self.out.len();
        // A one-byte header for now; widened below once the payload's size is known
        // (most containers are small, so the payload rarely moves).
        self.out.push(k);
        self.whitespace();
        if self.peek() == Some(close) {
            self.i += 1;
            return Ok(());
        }
        loop {
            if k == kind::OBJECT {
                if self.peek() != Some(b'"') {
                    return Err(self.error_at(self.i));
                }
                self.string()?;
                self.whitespace();
                if self.peek() != Some(b':') {
                    return Err(self.error_at(self.i));
                }
                self.i += 1;
                self.whitespace();
            }
            self.value(depth + 1)?;
            self.whitespace();
            match self.peek() {
                Some(b',') => {
                    self.i += 1;
                    self.whitespace();
                }
                Some(c) if c == close => {
                    self.i += 1;
                    break;
                }
                _ => return Err(self.error_at(self.i)),
            }
        }
        let len = self.out.len() - at - 1;
        let mut header = [0u8; 9];
        let n = header_into(&mut header, k, len);
        if n > 1 {
            let end = self.out.len();
            self.out.resize(end + n - 1, 0);
            self.out.copy_within(at + 1..end, at + n);
        }
        self.out[at..at + n].copy_from_slice(&header[..n]);
        Ok(())
    }

    /// A string, its text kept as written: TEXT, or TEXTJ once it holds an escape (checked
    /// here, decoded only when read). Raw control characters are refused.
    fn string(&mut self) -> Result<(), TextError> {
        let z = self.z;
        let start = self.i + 1;
        let mut j = start;
        let mut k = kind::TEXT;
        loop {
            // Skip to the next quote or backslash at memchr's speed, then make sure no raw
            // control character was skipped (a vectorised scan): byte by byte, this loop
            // was the parser's main cost.
            let Some(next) = memchr::memchr2(b'"', b'\\', &z[j..]) else {
                return Err(self.error_at(z.len()));
            };
            let run = &z[j..j + next];
            // Without an early exit, so it vectorises.
            if run.iter().fold(false, |seen, &b| seen | (b < 0x20)) {
                let bad = run.iter().position(|&b| b < 0x20).unwrap_or(0);
                return Err(self.error_at(j + bad));
            }
            j += next;
            match z[j] {
                b'"' => break,
                b'\\' => {
                    match z.get(j + 1) {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => j += 2,
                        Some(b'u')
                            if z.get(j + 2..j + 6)
                                .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) =>
                        {
                            j += 6;
                        }
                        _ => return Err(self.error_at(j + 1)),
                    }
                    k = kind::TEXTJ;
                }
                // Raw control characters are JSON5 only (and NUL not even that).
                0..=0x1f => return Err(self.error_at(j)),
                _ => j += 1,
            }
        }
        push_header(self.out, k, j - start);
        self.out.extend_from_slice(&z[start..j]);
        self.i = j + 1;
        Ok(())
    }

    /// A number in JSON's grammar, its text kept: INT without fraction or exponent, FLOAT
    /// otherwise. Refuses one that overflows a double ([`TextError::out_of_range`]).
    fn number(&mut self) -> Result<(), TextError> {
        let start = self.i;
        let n = crate::value::scan_json_number(&self.z[start..])
            .map_err(|at| self.error_at(start + at))?;
        let text = &self.z[start..start + n.len];
        // Only an exponent or more than 308 integer digits can pass f64::MAX (1.8e308):
        // every other number skips the parse.
        if (n.exponent || n.int_len > 308) && overflows_f64(text) {
            return Err(TextError {
                at: start,
                too_deep: false,
                out_of_range: true,
            });
        }
        let k = if n.fraction || n.exponent {
            kind::FLOAT
        } else {
            kind::INT
        };
        push_header(self.out, k, n.len);
        self.out.extend_from_slice(text);
        self.i = start + n.len;
        Ok(())
    }
}

/// True when JSON number text lies beyond the largest double (it parses to ±infinity).
fn overflows_f64(text: &[u8]) -> bool {
    std::str::from_utf8(text)
        .ok()
        .and_then(|t| t.parse::<f64>().ok())
        .is_none_or(f64::is_infinite)
}

/// Writes the minimal header of a `len`-byte payload into `buf`; returns its length.
fn header_into(buf: &mut [u8; 9], k: u8, len: usize) -> usize {
    if len <= 11 {
        #[allow(clippy::cast_possible_truncation)]
        {
            buf[0] = k | ((len as u8) << 4);
        }
        1
    } else if let Ok(l) = u8::try_from(len) {
        buf[0] = k | 0xC0;
        buf[1] = l;
        2
    } else if let Ok(l) = u16::try_from(len) {
        buf[0] = k | 0xD0;
        buf[1..3].copy_from_slice(&l.to_be_bytes());
        3
    } else if let Ok(l) = u32::try_from(len) {
        buf[0] = k | 0xE0;
        buf[1..5].copy_from_slice(&l.to_be_bytes());
        5
    } else {
        buf[0] = k | 0xF0;
        buf[1..9].copy_from_slice(&(len as u64).to_be_bytes());
        9
    }
}

// ---------------------------------------------------------------------------------------
// Decoding and rendering

/// Decodes (and validates) JSONB into a `serde_json::Value`.
pub fn decode(bytes: &[u8]) -> Result<Value, JsonbError> {
    Ok(Jsonb::new(bytes)?.to_value(false))
}

/// Renders JSONB as compact JSON text, appending to `out`, without building a `Value`.
///
/// With `skip_null_members`, object members whose value is `null` are left out at every
/// depth (nulls inside arrays stay), as responses require. Strings and numbers already in
/// JSON form are copied; JSON5 and raw forms are converted. Errors on malformed
/// structure; never panics.
pub fn write_json(
    bytes: &[u8],
    out: &mut Vec<u8>,
    skip_null_members: bool,
) -> Result<(), JsonbError> {
    let (k, s, e) = header(bytes, 0).ok_or(JsonbError::Truncated(0))?;
    if e != bytes.len() {
        return Err(JsonbError::Trailing(e));
    }
    write_elem(k, &bytes[s..e], s, out, skip_null_members, 0)
}

/// Renders the element of type `k` with payload `p` (at offset `at` of the document, for
/// errors) at nesting `depth`; `skip` leaves out null object members.
fn write_elem(
    k: u8,
    p: &[u8],
    at: usize,
    out: &mut Vec<u8>,
    skip: bool,
    depth: usize,
) -> Result<(), JsonbError> {
    match k {
        kind::ARRAY | kind::OBJECT => write_container(k, p, at, out, skip, depth),
        _ => write_other_scalar(k, p, at, out),
    }
}

/// Any scalar; kept out of the recursion of [`write_container`] (its conversions would
/// make every nesting level's frame larger).
#[inline(never)]
fn write_other_scalar(k: u8, p: &[u8], at: usize, out: &mut Vec<u8>) -> Result<(), JsonbError> {
    if write_scalar(k, p, out) {
        return Ok(());
    }
    match k {
        kind::NULL => out.extend_from_slice(b"null"),
        kind::INT | kind::FLOAT | kind::INT5 | kind::FLOAT5 => {
            // Numbers print as `to_value` renders them (`255.00` as `255.0`, `1e3` as
            // `1000.0`): one text per number in every response, the text `CONTAINS`
            // matches (DESIGN §4a). SQLite's ±Infinity (the FLOAT `9e999`; JSON cannot
            // hold it) prints as `null`, as `decode` gives.
            let node = Jsonb {
                kind: k,
                payload: p,
            };
            match crate::value::printed_number(node) {
                Some(t) => out.extend_from_slice(t.as_bytes()),
                None if node.as_number().is_none() => return Err(JsonbError::BadPayload(at)),
                None => out.extend_from_slice(b"null"),
            }
        }
        kind::TEXTRAW => {
            out.push(b'"');
            escape_into(out, p);
            out.push(b'"');
        }
        kind::TEXT5 => {
            out.push(b'"');
            escape_into(out, unescape(p, true).as_bytes());
            out.push(b'"');
        }
        _ => return Err(JsonbError::Malformed(at)),
    }
    Ok(())
}

/// An array or object: the only recursion of rendering, one frame per nesting level.
fn write_container(
    k: u8,
    p: &[u8],
    at: usize,
    out: &mut Vec<u8>,
    skip: bool,
    depth: usize,
) -> Result<(), JsonbError> {
    if depth >= MAX_DEPTH {
        return Err(JsonbError::TooDeep);
    }
    let object = k == kind::OBJECT;
    out.push(if object { b'{' } else { b'[' });
    let mut pos = 0;
    let mut first = true;
    while pos < p.len() {
        let (ck, cs, ce) = header(p, pos).ok_or(JsonbError::Truncated(at + pos))?;
        // The element to write after the key (objects) or the separator (arrays).
        let (vk, vs, ve) = if object {
            let v = header(p, ce).ok_or(JsonbError::Truncated(at + ce))?;
            if text_escapes(ck).is_none() {
                return Err(JsonbError::Malformed(at + pos));
            }
            pos = v.2;
            if skip && v.0 == kind::NULL {
                continue;
            }
            v
        } else {
            pos = ce;
            (ck, cs, ce)
        };
        if !first {
            out.push(b',');
        }
        first = false;
        if object {
            // Keys needing no conversion (nearly all) go out in one piece with their
            // quotes and colon.
            if matches!(ck, kind::TEXT | kind::TEXTJ) {
                out.push(b'"');
                out.extend_from_slice(&p[cs..ce]);
                out.extend_from_slice(b"\":");
            } else {
                write_other_scalar(ck, &p[cs..ce], at + cs, out)?;
                out.push(b':');
            }
        }
        let v = &p[vs..ve];
        if matches!(vk, kind::ARRAY | kind::OBJECT) {
            write_container(vk, v, at + vs, out, skip, depth + 1)?;
        } else if !write_scalar(vk, v, out) {
            write_other_scalar(vk, v, at + vs, out)?;
        }
    }
    out.push(if object { b'}' } else { b']' });
    Ok(())
}

/// Writes the common scalars in place (no call per scalar); `false` for anything else.
#[inline]
fn write_scalar(k: u8, p: &[u8], out: &mut Vec<u8>) -> bool {
    match k {
        kind::TEXT | kind::TEXTJ => {
            out.push(b'"');
            out.extend_from_slice(p);
            out.push(b'"');
        }
        // Most number text prints as itself (`value::prints_as_itself`; JSONB integer
        // text has no leading zero).
        kind::INT if p.len() <= 18 && p != b"-0" => out.extend_from_slice(p),
        kind::FLOAT if crate::value::prints_as_itself(p) => out.extend_from_slice(p),
        kind::TRUE => out.extend_from_slice(b"true"),
        kind::FALSE => out.extend_from_slice(b"false"),
        _ => return false,
    }
    true
}

/// Whether JSON text must escape byte `c`: control characters, `"` and `\`. Bytes of
/// multi-byte UTF-8 characters never need it, so strings are escaped bytewise.
#[inline]
fn needs_escape(c: u8) -> bool {
    c < 0x20 || c == b'"' || c == b'\\'
}

/// Appends `s` JSON-escaped (no quotes).
fn escape_into(out: &mut Vec<u8>, s: &[u8]) {
    let mut start = 0;
    for (i, &c) in s.iter().enumerate() {
        if !needs_escape(c) {
            continue;
        }
        out.extend_from_slice(&s[start..i]);
        match c {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            _ => {
                let mut t = String::new();
                let _ = write!(t, "\\u{c:04x}");
                out.extend_from_slice(t.as_bytes());
            }
        }
        start = i + 1;
    }
    out.extend_from_slice(&s[start..]);
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use rusqlite::Connection;
    use serde_json::json;

    use super::*;

    /// SQLite's verdict on `text`: its `jsonb()` when `json_valid(text, 1)` accepts it.
    fn sqlite_jsonb(conn: &Connection, text: &str) -> Option<Vec<u8>> {
        conn.query_row("SELECT jsonb(?1) WHERE json_valid(?1, 1)", [text], |r| {
            r.get::<_, Vec<u8>>(0)
        })
        .ok()
    }

    fn ours(text: &str) -> Option<Vec<u8>> {
        let mut out = vec![0xAA];
        from_text(text.as_bytes(), &mut out).ok()?;
        Some(out.split_off(1))
    }

    #[test]
    fn text_to_jsonb_matches_sqlite_byte_for_byte() {
        let conn = Connection::open_in_memory().unwrap();
        let long = "x".repeat(300);
        let longer = "y".repeat(70_000);
        let deep_ok = format!("{}{}", "[".repeat(1000), "]".repeat(1000));
        let deep_bad = format!("{}{}", "[".repeat(1001), "]".repeat(1001));
        let cases: Vec<String> = [
            "{}",
            "[]",
            " { } ",
            "null",
            "true",
            "false",
            "0",
            "-0",
            "12",
            "-12",
            "1.5",
            "-0.0",
            "1e5",
            "1E+5",
            "1.5e-7",
            "123456789012345678901234567890",
            r#""""#,
            r#""abc""#,
            r#""a\"b""#,
            r#""\u00e9\n\t\/\\""#,
            r#""\uD83D\uDE00""#,
            r#""\ud800""#,
            r#""é€😀""#,
            r#"{"a":1,"b":[true,false,null],"c":{"d":"e"}}"#,
            "[1,[2,[3,[4]]]]",
            "{\"k\":{}}",
            " \t\r\n[ 1 , 2 ]\n",
            r#"{"dup":1,"dup":2}"#,
            r#"{"a.b":{"c":[{}]}}"#,
            // Refused by both:
            "",
            " ",
            "{",
            "}",
            "[1,]",
            "[,1]",
            "{\"a\":1,}",
            "{a:1}",
            "{'a':1}",
            "['a']",
            "01",
            "-01",
            "1.",
            ".5",
            "+1",
            "0x1F",
            "Infinity",
            "-Infinity",
            "NaN",
            "1e",
            "1e+",
            "--1",
            "1.2.3",
            "tru",
            "truex",
            "nul",
            "[1 2]",
            "{\"a\" 1}",
            "{\"a\":}",
            "[1]x",
            "/* c */ 1",
            "// c\n1",
            "[1,/*x*/2]",
            "\u{000b}1",
            "\u{00a0}1",
            r#""\x41""#,
            r#""\'""#,
            r#""\v""#,
            r#""\0""#,
            r#""\u12""#,
            r#""\u12G4""#,
            "\"a\u{0001}b\"",
            "\"a\u{001f}b\"",
            "\"a\u{007f}b\"",
            "\"tab\there\"",
            "\"unterminated",
            "[\"a\",]",
            "{\"a\":1 \"b\":2}",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([
            format!("\"{long}\""),
            format!("[\"{long}\",\"{longer}\"]"),
            format!("{{\"k\":\"{longer}\"}}"),
            deep_ok,
            deep_bad,
        ])
        .collect();
        for text in &cases {
            assert_eq!(ours(text), sqlite_jsonb(&conn, text), "{text:.80}");
        }
        let mut generated = Vec::new();
        crate::datagen::generate(2000, 3, &mut generated).unwrap();
        for line in String::from_utf8(generated).unwrap().lines() {
            let expected = sqlite_jsonb(&conn, line);
            assert!(expected.is_some());
            assert_eq!(ours(line), expected, "{line}");
        }
    }

    #[test]
    fn text_errors_say_where_and_why() {
        let mut out = Vec::new();
        assert_eq!(
            from_text(b"[1, 2,]", &mut out),
            Err(TextError {
                at: 6,
                too_deep: false,
                out_of_range: false,
            })
        );
        let deep = format!("{}{}", "[".repeat(1001), "]".repeat(1001));
        assert!(from_text(deep.as_bytes(), &mut out).unwrap_err().too_deep);
    }

    /// Rendering prints every number as `to_value` does (DESIGN §4a: "the text acql
    /// prints", which `CONTAINS` and the words index read): `SELECT *` and `SELECT n`
    /// agree.
    #[test]
    fn numbers_render_as_to_value_prints_them() {
        let texts = [
            "255.00",
            "1e3",
            "1E2",
            "-0",
            "-0.0",
            "0",
            "45.10",
            "0.1",
            "1.5e300",
            "-1.5E-7",
            "123456789012345678",
            "-123456789012345678",
            "1234567890123456789",
            "9223372036854775807",
            "-9223372036854775808",
            "9223372036854775808",
            "18446744073709551615",
            "18446744073709551616",
            "123456789012345678901234567890",
            "4.2e1",
            "7",
            "97.35",
            "0.001",
            "0.00001",
            "0.000012",
            "123456789012345.6",
            "12345678901234.56",
            "0.123456789012345",
            "0.1234567890123456",
            "1234567890123456.5",
            "-0.5",
            "5.0",
            "99.990",
            "0.30000000000000004",
            "1.7976931348623157e308",
            "5e-324",
        ];
        let conn = Connection::open_in_memory().unwrap();
        for text in texts {
            let doc = format!("{{\"n\":[{text}]}}");
            for bytes in [ours(&doc).unwrap(), sqlite_jsonb(&conn, &doc).unwrap()] {
                let mut out = Vec::new();
                write_json(&bytes, &mut out, false).unwrap();
                let want = serde_json::to_string(&decode(&bytes).unwrap()).unwrap();
                assert_eq!(String::from_utf8(out).unwrap(), want, "{text}");
            }
        }
        let mut out = Vec::new();
        write_json(
            &ours(r#"[255.00, 1e3, -0, 45.10]"#).unwrap(),
            &mut out,
            false,
        )
        .unwrap();
        assert_eq!(out, b"[255.0,1000.0,0,45.1]");
    }

    #[test]
    fn numbers_beyond_a_double_are_refused() {
        let huge = format!("[1, {}]", "9".repeat(400));
        for (text, at) in [
            (r#"{"n": 1e999}"#, 6),
            (r#"{"n": -1E+400}"#, 6),
            (r#"[0, 2e308]"#, 4),
            (huge.as_str(), 4),
        ] {
            let mut out = Vec::new();
            let e = from_text(text.as_bytes(), &mut out).unwrap_err();
            assert!(e.out_of_range && e.at == at, "{text}: {e:?}");
            assert!(e.reason().unwrap().contains("out of range"), "{text}");
        }
        // Large but finite, and underflow (to 0), stay: as SQLite stores them.
        let conn = Connection::open_in_memory().unwrap();
        let max = format!("[1.7976931348623157e308, 1e-999, {}]", "9".repeat(308));
        for text in [max.as_str(), "[-1e308, 0e999999]"] {
            assert_eq!(ours(text), sqlite_jsonb(&conn, text), "{text}");
            assert!(ours(text).is_some(), "{text}");
        }
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(|f| json!(f)),
            ".{0,20}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 40, 5, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                prop::collection::vec((".{0,6}", inner), 0..5)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Any JSON serde writes (compact or pretty) encodes as SQLite encodes it.
        #[test]
        fn text_to_jsonb_equals_sqlite_on_any_json(v in json_value(), pretty in any::<bool>()) {
            let conn = Connection::open_in_memory().unwrap();
            let text = if pretty {
                serde_json::to_string_pretty(&v).unwrap()
            } else {
                serde_json::to_string(&v).unwrap()
            };
            prop_assert_eq!(ours(&text), sqlite_jsonb(&conn, &text));
        }

        /// Damaged JSON is refused exactly when SQLite's strict check refuses it.
        #[test]
        fn text_validity_equals_sqlite_strict_validity(
            v in json_value(),
            at in any::<prop::sample::Index>(),
            edit in prop::sample::select(vec![
                "", ",", "]", "}", "[", "{", ":", "\"", "\\", "0", "-", ".", "e", "+", " ",
                "\u{0001}", "'", "x", "tru", "/", "\u{00a0}",
            ]),
            delete in 0usize..3,
        ) {
            let conn = Connection::open_in_memory().unwrap();
            let text = serde_json::to_string(&v).unwrap();
            let chars: Vec<char> = text.chars().collect();
            let i = at.index(chars.len() + 1);
            let mut damaged: String = chars[..i].iter().collect();
            damaged.push_str(edit);
            damaged.extend(chars[(i + delete).min(chars.len())..].iter());
            let mut out = Vec::new();
            // acql also refuses numbers SQLite would store as ±Infinity (DESIGN §4a).
            if !from_text(damaged.as_bytes(), &mut out).is_err_and(|e| e.out_of_range) {
                prop_assert_eq!(ours(&damaged), sqlite_jsonb(&conn, &damaged), "{}", damaged);
            }
        }
    }

    fn sample() -> Value {
        json!({
            "email": "jane@example.com",
            "n": null,
            "nested": {"deep": {"x": [1, -2, 3.5, 1e20, null, true, false, "q\"uote\\ \n\t\u{1}é"]}, "z": null},
            "big": 18_446_744_073_709_551_615u64,
            "empty": {}, "list": [], "long": "x".repeat(300),
        })
    }

    #[test]
    fn sqlite_reads_what_we_encode() {
        let conn = Connection::open_in_memory().unwrap();
        let doc = sample();
        let bytes = to_vec(&doc);
        let text: String = conn
            .query_row("SELECT json(?)", [&bytes], |r| r.get(0))
            .unwrap();
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), doc);
        let email: String = conn
            .query_row("SELECT json_extract(?, '$.email')", [&bytes], |r| r.get(0))
            .unwrap();
        assert_eq!(email, "jane@example.com");
        let s: String = conn
            .query_row(
                "SELECT json_extract(?, '$.nested.deep.x[7]')",
                [&bytes],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(s, "q\"uote\\ \n\t\u{1}é");
        let valid: i64 = conn
            .query_row("SELECT json_valid(?, 8)", [&bytes], |r| r.get(0))
            .unwrap();
        assert_eq!(valid, 1);
    }

    #[test]
    fn we_read_what_sqlite_encodes() {
        let conn = Connection::open_in_memory().unwrap();
        let doc = sample();
        let bytes: Vec<u8> = conn
            .query_row("SELECT jsonb(?)", [doc.to_string()], |r| r.get(0))
            .unwrap();
        assert_eq!(decode(&bytes).unwrap(), doc);
        let json5 = r#"{a: 0x1F, b: .5, c: 5., d: +3, e: 'it\'s \x41\
z', f: [Infinity, -0x10], "g": "\u00e9\ud83d\ude00", h: NaN}"#;
        let bytes: Vec<u8> = conn
            .query_row("SELECT jsonb(?)", [json5], |r| r.get(0))
            .unwrap();
        let v = decode(&bytes).unwrap();
        assert_eq!(v["a"], json!(31));
        assert_eq!(v["b"], json!(0.5));
        assert_eq!(v["c"], json!(5.0));
        assert_eq!(v["d"], json!(3));
        assert_eq!(v["e"], json!("it's Az"));
        assert_eq!(v["f"], json!([null, -16]));
        assert_eq!(v["g"], json!("é😀"));
        // Rendering agrees with SQLite's own json() on everything JSON can hold.
        let mut out = Vec::new();
        write_json(&bytes, &mut out, false).unwrap();
        let ours: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(ours, v);
        let theirs: String = conn
            .query_row("SELECT json(?)", [&bytes], |r| r.get(0))
            .unwrap();
        let theirs: Value =
            serde_json::from_str(&theirs.replace("9.0e+999", "null").replace("9e999", "null"))
                .unwrap_or_else(|e| panic!("{theirs}: {e}"));
        assert_eq!(ours["e"], theirs["e"]);
        assert_eq!(ours["a"], theirs["a"]);
    }

    /// The byte ranges of every escaped string payload (TEXTJ, TEXT5), keys included.
    fn escaped_ranges(j: Jsonb<'_>, base: &[u8], out: &mut Vec<std::ops::Range<usize>>) {
        let start = j.payload().as_ptr() as usize - base.as_ptr() as usize;
        match j.type_code() {
            kind::TEXTJ | kind::TEXT5 => out.push(start..start + j.payload().len()),
            kind::ARRAY | kind::OBJECT => {
                for c in (Children {
                    buf: j.payload(),
                    pos: 0,
                }) {
                    escaped_ranges(c, base, out);
                }
            }
            _ => {}
        }
    }

    #[test]
    fn escaped_text_is_told_from_headers_and_sizes() {
        let conn = Connection::open_in_memory().unwrap();
        let mut docs = vec![
            to_vec(&sample()),
            // A 92-byte object and array: their size byte is `\`.
            to_vec(&json!({"a": {"k": "x".repeat(88)}, "b": ["y".repeat(90)]})),
            to_vec(&json!({"q\\k": ["\\", "a\"b", {"\\": "\\\\"}], "n": 92})),
            to_vec(&json!({"s": format!("\\{}", "z".repeat(203))})),
        ];
        for text in [
            r#"{a: 'it\'s', "b\u0041": "x\\y", c: [1, '\x41']}"#,
            r#"{"e": "\u00e9\ud83d\ude00", "f": {"g": "\n"}}"#,
        ] {
            docs.push(
                conn.query_row("SELECT jsonb(?)", [text], |r| r.get(0))
                    .unwrap(),
            );
        }
        assert_eq!(docs[1].iter().filter(|&&b| b == b'\\').count(), 2);
        for doc in &docs {
            let mut ranges = Vec::new();
            escaped_ranges(Jsonb::trusted(doc), doc, &mut ranges);
            for i in 0..doc.len() {
                let want = ranges.iter().any(|r| r.contains(&i));
                assert_eq!(in_escaped_text(doc, i), want, "byte {i} of {doc:x?}");
            }
            assert!(!in_escaped_text(doc, doc.len()));
            // Truncated documents: no panic, and escaped bytes are never denied.
            for cut in 0..doc.len() {
                for i in 0..cut {
                    let r = in_escaped_text(&doc[..cut], i);
                    if ranges.iter().any(|x| x.contains(&i) && x.end <= cut) {
                        assert!(r, "cut {cut}, byte {i}");
                    }
                }
            }
        }
    }

    #[test]
    fn json5_integers_never_overflow() {
        assert_eq!(parse_int5("-0x10").unwrap().i, Some(-16));
        assert_eq!(parse_int5("+12").unwrap().i, Some(12));
        for big in [
            "-0x80000000000000000000000000000000",
            "0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF",
            "-0x8000000000000000",
        ] {
            let n = parse_int5(big).unwrap();
            assert_eq!(n.i, None, "{big}");
            assert!(n.f.abs() >= 9.2e18, "{big}");
        }
        assert!(parse_int5("0x").is_none());
        assert!(parse_int5("-").is_none());
    }

    #[test]
    fn write_json_skips_null_members_only() {
        let bytes = to_vec(&json!({"a": null, "b": [null, {"c": null, "d": 1}], "e": {}}));
        let mut out = Vec::new();
        write_json(&bytes, &mut out, true).unwrap();
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            r#"{"b":[null,{"d":1}],"e":{}}"#
        );
        out.clear();
        write_json(&bytes, &mut out, false).unwrap();
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            r#"{"a":null,"b":[null,{"c":null,"d":1}],"e":{}}"#
        );
    }

    #[test]
    fn round_trip_and_compact_text() {
        let doc = sample();
        let bytes = to_vec(&doc);
        assert_eq!(decode(&bytes).unwrap(), doc);
        let mut out = Vec::new();
        write_json(&bytes, &mut out, false).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), doc.to_string());
    }

    #[test]
    fn malformed_bytes_are_errors_not_panics() {
        let good = to_vec(&sample());
        for cut in 0..good.len() {
            assert!(Jsonb::new(&good[..cut]).is_err(), "prefix {cut}");
            let mut out = Vec::new();
            let _ = write_json(&good[..cut], &mut out, true);
            let _ = Jsonb::trusted(&good[..cut]).to_value(true);
        }
        for bad in [
            &[0x13u8][..],
            &[0x0d],
            &[0x1c, 0x00],
            &[0x0c, 0x01],
            &[0x13, b'x'],
            &[0x17, b'"'],
            &[0x00, 0x00],
        ] {
            assert!(Jsonb::new(bad).is_err(), "{bad:?}");
        }
        // Deep nesting is refused without recursion.
        let deep: Vec<u8> = std::iter::repeat_n(0xCBu8, 1)
            .chain(std::iter::repeat_n(0u8, 0))
            .collect();
        assert!(Jsonb::new(&deep).is_err());
        let mut nested = vec![0x0bu8];
        for _ in 0..5000 {
            let len = nested.len();
            let mut outer = Vec::new();
            push_header(&mut outer, kind::ARRAY, len);
            outer.extend_from_slice(&nested);
            nested = outer;
        }
        assert_eq!(Jsonb::new(&nested).unwrap_err(), JsonbError::TooDeep);
        assert_eq!(
            write_json(&nested, &mut Vec::new(), false).unwrap_err(),
            JsonbError::TooDeep
        );
        // Random bytes: whatever happens, no panic.
        let mut x: u32 = 12345;
        for _ in 0..20_000 {
            let bytes: Vec<u8> = (0..(x % 40) as usize)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    (x & 0xff) as u8
                })
                .collect();
            let _ = Jsonb::new(&bytes);
            let _ = Jsonb::trusted(&bytes).to_value(false);
            let _ = write_json(&bytes, &mut Vec::new(), true);
        }
    }
}
