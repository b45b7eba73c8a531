//! Stateless cursor ids.
//!
//! A cursor id carries everything needed to produce its page: the query text, the page
//! size, the keyset position after which the page starts (last sort keys + document id),
//! the `totalCount` of the first page, and the time it was issued, all authenticated with
//! HMAC-SHA1 under the store's `cursor_key`. Re-sending an id recomputes the same page;
//! cursors cost no server memory and work across processes sharing the database file.
//! Ids are URL-safe base64 (no padding).

use base64::Engine as _;
use hmac::{KeyInit, Mac};
use serde_json::{Value, json};

use super::ExecError;
use crate::value::ValueKey;

/// The MAC that authenticates cursor ids (keyed per store).
type HmacSha1 = hmac::Hmac<sha1::Sha1>;

/// How long a cursor id stays valid after it was issued.
pub const CURSOR_TTL_MS: i64 = 5 * 60 * 1000;

/// Bytes of the MAC at the end of a decoded cursor id.
const MAC_LEN: usize = 20;

/// Where the next page starts: after the record with these sort keys and id.
#[derive(Clone, Debug, PartialEq)]
pub struct Position {
    /// The sort keys of the last record returned (empty in insertion order); `None`
    /// for a missing value.
    pub keys: Vec<Option<ValueKey>>,
    /// The last record's document id.
    pub id: i64,
}

/// The decoded content of a cursor id.
#[derive(Clone, Debug, PartialEq)]
pub struct CursorState {
    /// The query text.
    pub query: String,
    /// The page size (the query's LIMIT).
    pub page_size: u64,
    /// Where the page starts.
    pub after: Position,
    /// `totalCount`, from the first page.
    pub total: u64,
    /// Issue time, epoch milliseconds.
    pub issued_ms: i64,
}

/// A sort key as the cursor's JSON holds it.
fn key_json(k: &Option<ValueKey>) -> Value {
    match k {
        None => Value::Null,
        // Wrapped so that booleans, numbers and strings keep their types unambiguously.
        Some(ValueKey::Int(i)) => json!({ "i": i }),
        Some(ValueKey::Real(f)) => json!({ "r": f }),
        Some(ValueKey::Text(s)) => json!({ "s": s }),
        Some(ValueKey::Bool(b)) => json!({ "b": b }),
    }
}

/// The inverse of [`key_json`]; `None` when `v` is not one.
fn key_from_json(v: &Value) -> Option<Option<ValueKey>> {
    if v.is_null() {
        return Some(None);
    }
    let o = v.as_object()?;
    let (tag, val) = o.iter().next()?;
    Some(Some(match tag.as_str() {
        "i" => ValueKey::Int(val.as_i64()?),
        "r" => ValueKey::Real(val.as_f64()?),
        "s" => ValueKey::Text(val.as_str()?.to_string()),
        "b" => ValueKey::Bool(val.as_bool()?),
        _ => return None,
    }))
}

/// A MAC keyed with the store's cursor key.
fn mac(key: &[u8]) -> HmacSha1 {
    // HMAC accepts keys of any length.
    <HmacSha1 as KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"))
}

impl CursorState {
    /// Encodes and signs the state as a URL-safe id.
    pub fn encode(&self, key: &[u8]) -> String {
        let body = json!({
            "q": self.query,
            "l": self.page_size,
            "k": self.after.keys.iter().map(key_json).collect::<Vec<_>>(),
            "d": self.after.id,
            "t": self.total,
            "i": self.issued_ms,
        });
        let mut bytes = serde_json::to_vec(&body).unwrap_or_default();
        let mut m = mac(key);
        m.update(&bytes);
        bytes.extend_from_slice(&m.finalize().into_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    /// Verifies and decodes an id; `now_ms` decides expiry.
    pub fn decode(id: &str, key: &[u8], now_ms: i64) -> Result<CursorState, ExecError> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(id.trim().as_bytes())
            .map_err(|_| ExecError::InvalidCursor)?;
        if bytes.len() <= MAC_LEN {
            return Err(ExecError::InvalidCursor);
        }
        let (body, tag) = bytes.split_at(bytes.len() - MAC_LEN);
        let mut m = mac(key);
        m.update(body);
        m.verify_slice(tag).map_err(|_| ExecError::InvalidCursor)?;
        let v: Value = serde_json::from_slice(body).map_err(|_| ExecError::InvalidCursor)?;
        let state = (|| {
            Some(CursorState {
                query: v.get("q")?.as_str()?.to_string(),
                page_size: v.get("l")?.as_u64()?,
                after: Position {
                    keys: v
                        .get("k")?
                        .as_array()?
                        .iter()
                        .map(key_from_json)
                        .collect::<Option<Vec<_>>>()?,
                    id: v.get("d")?.as_i64()?,
                },
                total: v.get("t")?.as_u64()?,
                issued_ms: v.get("i")?.as_i64()?,
            })
        })()
        .ok_or(ExecError::InvalidCursor)?;
        if now_ms - state.issued_ms > CURSOR_TTL_MS || now_ms < state.issued_ms - 60_000 {
            return Err(ExecError::CursorExpired);
        }
        Ok(state)
    }
}

/// The current time in epoch milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> CursorState {
        CursorState {
            query: "SELECT * FROM emailAccounts WHERE a = \"x\"".into(),
            page_size: 300,
            after: Position {
                keys: vec![
                    Some(ValueKey::Int(3)),
                    None,
                    Some(ValueKey::Bool(true)),
                    Some(ValueKey::Text("é".into())),
                ],
                id: 42,
            },
            total: 20_000,
            issued_ms: 1_000_000,
        }
    }

    #[test]
    fn round_trips_and_is_url_safe() {
        let id = state().encode(b"k");
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "{id}"
        );
        assert_eq!(
            CursorState::decode(&id, b"k", 1_000_000 + CURSOR_TTL_MS).unwrap(),
            state()
        );
    }

    #[test]
    fn tampering_expiry_and_other_keys_fail() {
        let id = state().encode(b"k");
        assert!(matches!(
            CursorState::decode(&id, b"other", 1_000_000),
            Err(ExecError::InvalidCursor)
        ));
        assert!(matches!(
            CursorState::decode(&id, b"k", 1_000_001 + CURSOR_TTL_MS),
            Err(ExecError::CursorExpired)
        ));
        let mut bad = id.clone().into_bytes();
        bad[5] = if bad[5] == b'A' { b'B' } else { b'A' };
        assert!(CursorState::decode(std::str::from_utf8(&bad).unwrap(), b"k", 1_000_000).is_err());
        assert!(matches!(
            CursorState::decode("not a cursor!", b"k", 0),
            Err(ExecError::InvalidCursor)
        ));
    }
}
