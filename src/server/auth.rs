//! Authentication as the vendor does it (spec §7): `userKey`+`secret`, or
//! `userKey`+`timestamp`+`nonce`+`sig` signed with HMAC-SHA1 over the canonical URL
//! `https://accounts.<dc>.gigya.com/<method>`.
//!
//! Decisions where the vendor is silent:
//! - `timestamp` may be Unix seconds (Python SDK) or milliseconds (Node SDK): values above
//!   10^11 are read as milliseconds. It must lie within ±`timestamp_window` (default
//!   5 minutes) of the server clock, else 403002.
//! - A nonce may be used once per `userKey` within the window (403004 "Duplicate nonce").
//!   Memory is bounded by `nonce_capacity`: when full, the oldest nonce is forgotten and
//!   every request whose timestamp is not newer than the forgotten one's is refused as
//!   expired, so a forgotten nonce can never be replayed.
//! - The Node SDK signs `false` and `0` as empty strings while sending `"false"`/`"0"`;
//!   when the signature over the wire values fails, that variant is tried too. So are the
//!   `http://` URL (the Python SDK signs the scheme it uses) and the request's own HTTP
//!   method when it is not POST.
//! - With no credentials configured the server is open: no check at all.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use hmac::{KeyInit, Mac};

use super::config::ServerConfig;
use super::envelope::VendorError;
use super::params::{Params, rfc3986_encode};

type HmacSha1 = hmac::Hmac<sha1::Sha1>;

/// Who a request authenticated as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Identity {
    /// No credentials are configured: the server is open.
    Open,
    /// This `userKey`, by its secret or a valid signature.
    Key(String),
}

/// Checks requests against the configured keys; remembers nonces.
#[derive(Debug)]
pub struct Authenticator {
    config: Arc<ServerConfig>,
    nonces: NonceCache,
}

impl Authenticator {
    /// An authenticator for `config`.
    pub fn new(config: Arc<ServerConfig>) -> Authenticator {
        let nonces = NonceCache::new(config.nonce_capacity);
        Authenticator { config, nonces }
    }

    /// Checks the credentials of a call to `method` (e.g. `accounts.search`) sent with
    /// `http_method`, at the current time.
    pub fn check(
        &self,
        params: &Params,
        method: &str,
        http_method: &str,
    ) -> Result<Identity, VendorError> {
        self.check_at(params, method, http_method, now_ms())
    }

    /// [`Authenticator::check`] at a given time (epoch milliseconds), for tests.
    pub fn check_at(
        &self,
        params: &Params,
        method: &str,
        http_method: &str,
        now: i64,
    ) -> Result<Identity, VendorError> {
        let config = &self.config;
        if config.refuse_plain_secret && params.get("secret").is_some() {
            return Err(VendorError::new(
                403006,
                "a secret was sent over plain HTTP to a non-loopback address: use HTTPS or a signed request",
            ));
        }
        if let Some(expected) = &config.api_key {
            match params.get_nonempty("apiKey") {
                None => return Err(VendorError::missing("apiKey")),
                Some(k) if k != expected => {
                    return Err(VendorError::new(
                        400093,
                        "the apiKey does not belong to this site",
                    ));
                }
                Some(_) => {}
            }
        }
        if config.credentials.is_empty() {
            return Ok(Identity::Open);
        }
        let Some(user_key) = params.get_nonempty("userKey") else {
            return Err(VendorError::missing("userKey"));
        };
        let Some(credential) = config.credentials.get(user_key) else {
            return Err(VendorError::new(
                403005,
                "the userKey is not known to this server",
            ));
        };
        if let Some(secret) = params.get("secret") {
            if !constant_time_eq(
                secret.trim().as_bytes(),
                credential.secret_text().as_bytes(),
            ) {
                return Err(VendorError::new(
                    403003,
                    "the secret does not match the userKey",
                ));
            }
            return Ok(Identity::Key(user_key.to_owned()));
        }
        let Some(sig) = params.get_nonempty("sig") else {
            return Err(VendorError::missing("secret (or timestamp, nonce and sig)"));
        };
        let Some(timestamp) = params.get_nonempty("timestamp") else {
            return Err(VendorError::missing("timestamp"));
        };
        let Some(nonce) = params.get_nonempty("nonce") else {
            return Err(VendorError::missing("nonce"));
        };
        let Some(ts_ms) = timestamp_ms(timestamp) else {
            return Err(VendorError::invalid(
                "timestamp",
                "expected Unix time in seconds or milliseconds",
            ));
        };
        let window = i64::try_from(config.timestamp_window.as_millis()).unwrap_or(i64::MAX);
        if (now - ts_ms).abs() > window {
            return Err(VendorError::new(
                403002,
                format!(
                    "the timestamp is more than {} s from the server time",
                    window / 1000
                ),
            ));
        }
        if !self.signature_matches(params, method, http_method, credential.secret_key(), sig) {
            return Err(VendorError::new(
                403003,
                "the signature does not match the request",
            ));
        }
        match self
            .nonces
            .check_and_insert(user_key, nonce, ts_ms, now, window)
        {
            Ok(()) => Ok(Identity::Key(user_key.to_owned())),
            Err(NonceRefusal::Replayed) => {
                Err(VendorError::new(403004, "this nonce was already used"))
            }
            Err(NonceRefusal::TooOld) => Err(VendorError::new(
                403002,
                "the timestamp is older than the nonces this server still remembers: resend with a fresh timestamp",
            )),
        }
    }

    fn signature_matches(
        &self,
        params: &Params,
        method: &str,
        http_method: &str,
        key: &[u8],
        sig: &str,
    ) -> bool {
        let Ok(sig) = base64::engine::general_purpose::STANDARD.decode(sig.trim()) else {
            return false;
        };
        let host = self.config.signing_host();
        let has_falsy = params
            .pairs()
            .iter()
            .any(|(k, v)| is_signed(k) && (v == "false" || v == "0"));
        let mut methods = vec!["POST"];
        if !http_method.eq_ignore_ascii_case("POST") {
            methods.push(http_method);
        }
        for falsy_empty in [false, true] {
            if falsy_empty && !has_falsy {
                continue;
            }
            let qs = signed_query_string(params, falsy_empty);
            for scheme in ["https", "http"] {
                for m in &methods {
                    let base = base_string(m, &format!("{scheme}://{host}/{method}"), &qs);
                    if verify(key, &base, &sig) {
                        return true;
                    }
                }
            }
        }
        false
    }
}

/// The parameters that take part in the signature.
fn is_signed(name: &str) -> bool {
    name != "sig" && name != "secret"
}

/// `k=enc(v)&…` over the signed parameters sorted by name.
fn signed_query_string(params: &Params, falsy_empty: bool) -> String {
    let mut pairs: Vec<&(String, String)> = params
        .pairs()
        .iter()
        .filter(|(k, _)| is_signed(k))
        .collect();
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = String::new();
    for (i, (k, v)) in pairs.into_iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        let v = if falsy_empty && (v == "false" || v == "0") {
            ""
        } else {
            v.as_str()
        };
        rfc3986_encode(v, &mut out);
    }
    out
}

/// `METHOD&enc(url)&enc(query string)`.
pub fn base_string(http_method: &str, url: &str, query_string: &str) -> String {
    let mut out = String::with_capacity(url.len() + query_string.len() * 3 / 2 + 16);
    out.push_str(&http_method.to_ascii_uppercase());
    out.push('&');
    rfc3986_encode(url, &mut out);
    out.push('&');
    rfc3986_encode(query_string, &mut out);
    out
}

/// The base64 HMAC-SHA1 signature of `base` with the decoded secret `key`, as the SDKs
/// compute it (public so that tests and clients can sign requests).
pub fn sign(key: &[u8], base: &str) -> String {
    let mut mac = HmacSha1::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(base.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Signs a request the way the SDKs do: the `sig` for `params` (without `sig`/`secret`)
/// sent to `method` of a server whose signing host is `host`, with the base64 `secret`.
pub fn sign_request(secret: &str, host: &str, method: &str, params: &Params) -> Option<String> {
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret)
        .ok()?;
    let base = base_string(
        "POST",
        &format!("https://{host}/{method}"),
        &signed_query_string(params, false),
    );
    Some(sign(&key, &base))
}

fn verify(key: &[u8], base: &str, sig: &[u8]) -> bool {
    let mut mac = HmacSha1::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(base.as_bytes());
    mac.verify_slice(sig).is_ok()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Seconds or milliseconds → milliseconds. Values above 10^11 (year 5138 in seconds) are
/// milliseconds.
fn timestamp_ms(text: &str) -> Option<i64> {
    let n: i64 = text.trim().parse().ok()?;
    if n <= 0 {
        return None;
    }
    if n > 100_000_000_000 {
        Some(n)
    } else {
        n.checked_mul(1000)
    }
}

fn now_ms() -> i64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}

/// Why a nonce was refused.
#[derive(Debug, PartialEq, Eq)]
enum NonceRefusal {
    /// Seen before within the window.
    Replayed,
    /// Older than what the bounded cache can vouch for.
    TooOld,
}

/// Nonces seen within the window, bounded in memory (see the module doc).
#[derive(Debug)]
struct NonceCache {
    capacity: usize,
    state: Mutex<NonceState>,
}

#[derive(Debug, Default)]
struct NonceState {
    seen: HashMap<(String, String), i64>,
    order: VecDeque<((String, String), i64)>,
    /// Requests with a timestamp at or below this are refused: their nonces may have been
    /// forgotten.
    floor: i64,
}

impl NonceCache {
    fn new(capacity: usize) -> NonceCache {
        NonceCache {
            capacity: capacity.max(1),
            state: Mutex::new(NonceState {
                floor: i64::MIN,
                ..Default::default()
            }),
        }
    }

    fn check_and_insert(
        &self,
        user_key: &str,
        nonce: &str,
        ts: i64,
        now: i64,
        window: i64,
    ) -> Result<(), NonceRefusal> {
        let mut s = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Entries outside the window can go: the timestamp check already refuses them.
        while let Some((_, t)) = s.order.front() {
            if *t >= now.saturating_sub(window) {
                break;
            }
            let (key, _) = s.order.pop_front().expect("front exists");
            s.seen.remove(&key);
        }
        if ts <= s.floor {
            return Err(NonceRefusal::TooOld);
        }
        let key = (user_key.to_owned(), nonce.to_owned());
        if s.seen.contains_key(&key) {
            return Err(NonceRefusal::Replayed);
        }
        while s.order.len() >= self.capacity {
            let (old, t) = s.order.pop_front().expect("cache is full");
            s.seen.remove(&old);
            s.floor = s.floor.max(t);
        }
        if ts <= s.floor {
            return Err(NonceRefusal::TooOld);
        }
        s.seen.insert(key.clone(), ts);
        s.order.push_back((key, ts));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "dGhlIHNlY3JldCBrZXkgb2YgdGhlIGFwcA==";

    fn auth(config: ServerConfig) -> Authenticator {
        Authenticator::new(Arc::new(config))
    }

    fn keyed() -> ServerConfig {
        ServerConfig::default()
            .with_credential("UK", SECRET)
            .unwrap()
    }

    fn signed(pairs: &[(&str, &str)], ts: i64, nonce: &str) -> Params {
        let mut p = Params::from_pairs(pairs.iter().copied());
        let mut all = p.pairs().to_vec();
        all.push(("userKey".into(), "UK".into()));
        all.push(("timestamp".into(), ts.to_string()));
        all.push(("nonce".into(), nonce.into()));
        p = Params::from_pairs(all);
        let sig = sign_request(SECRET, "accounts.us1.gigya.com", "accounts.search", &p).unwrap();
        let mut all = p.pairs().to_vec();
        all.push(("sig".into(), sig));
        Params::from_pairs(all)
    }

    const NOW: i64 = 1_795_443_851_967;

    #[test]
    fn open_server_accepts_anything() {
        let a = auth(ServerConfig::default());
        assert_eq!(
            a.check_at(&Params::default(), "accounts.search", "POST", NOW),
            Ok(Identity::Open)
        );
    }

    #[test]
    fn secret_mode() {
        let a = auth(keyed());
        let ok = Params::from_pairs([("userKey", "UK"), ("secret", SECRET)]);
        assert_eq!(
            a.check_at(&ok, "accounts.search", "POST", NOW),
            Ok(Identity::Key("UK".into()))
        );
        let bad = Params::from_pairs([("userKey", "UK"), ("secret", "d3Jvbmc=")]);
        assert_eq!(
            a.check_at(&bad, "accounts.search", "POST", NOW)
                .unwrap_err()
                .code,
            403003
        );
        let unknown = Params::from_pairs([("userKey", "XX"), ("secret", SECRET)]);
        assert_eq!(
            a.check_at(&unknown, "accounts.search", "POST", NOW)
                .unwrap_err()
                .code,
            403005
        );
        let missing = Params::from_pairs([("secret", SECRET)]);
        assert_eq!(
            a.check_at(&missing, "accounts.search", "POST", NOW)
                .unwrap_err()
                .code,
            400002
        );
        let no_secret = Params::from_pairs([("userKey", "UK")]);
        assert_eq!(
            a.check_at(&no_secret, "accounts.search", "POST", NOW)
                .unwrap_err()
                .code,
            400002
        );
    }

    #[test]
    fn signed_mode_in_ms_and_seconds() {
        let a = auth(keyed());
        let p = signed(
            &[("query", "SELECT * FROM accounts"), ("format", "json")],
            NOW,
            "1",
        );
        assert_eq!(
            a.check_at(&p, "accounts.search", "POST", NOW),
            Ok(Identity::Key("UK".into()))
        );
        let p = signed(&[("query", "x")], NOW / 1000, "2");
        assert!(a.check_at(&p, "accounts.search", "POST", NOW).is_ok());
        // Signed for another method: the canonical URL differs.
        let p = signed(&[("query", "x")], NOW, "3");
        assert_eq!(
            a.check_at(&p, "accounts.getAccountInfo", "POST", NOW)
                .unwrap_err()
                .code,
            403003
        );
    }

    #[test]
    fn tampering_expiry_and_replay() {
        let a = auth(keyed());
        let p = signed(&[("query", "x")], NOW, "n1");
        let mut tampered = p.pairs().to_vec();
        tampered[0].1 = "y".into();
        let err = a
            .check_at(
                &Params::from_pairs(tampered),
                "accounts.search",
                "POST",
                NOW,
            )
            .unwrap_err();
        assert_eq!(err.code, 403003);
        assert!(a.check_at(&p, "accounts.search", "POST", NOW).is_ok());
        assert_eq!(
            a.check_at(&p, "accounts.search", "POST", NOW)
                .unwrap_err()
                .code,
            403004
        );
        let old = signed(&[("query", "x")], NOW - 301_000, "n2");
        assert_eq!(
            a.check_at(&old, "accounts.search", "POST", NOW)
                .unwrap_err()
                .code,
            403002
        );
        let future = signed(&[("query", "x")], NOW + 301_000, "n3");
        assert_eq!(
            a.check_at(&future, "accounts.search", "POST", NOW)
                .unwrap_err()
                .code,
            403002
        );
    }

    #[test]
    fn node_sdk_falsy_values_are_tolerated() {
        let a = auth(keyed());
        // What the Node SDK signs: openCursor as "" while the wire says "false".
        let p = signed(&[("openCursor", ""), ("timeout", "")], NOW, "f1");
        let wire: Vec<(String, String)> = p
            .pairs()
            .iter()
            .map(|(k, v)| match k.as_str() {
                "openCursor" => (k.clone(), "false".to_owned()),
                "timeout" => (k.clone(), "0".to_owned()),
                _ => (k.clone(), v.clone()),
            })
            .collect();
        assert!(
            a.check_at(&Params::from_pairs(wire), "accounts.search", "POST", NOW)
                .is_ok()
        );
    }

    #[test]
    fn nonce_memory_is_bounded_without_allowing_replays() {
        let mut config = keyed();
        config.nonce_capacity = 2;
        let a = auth(config);
        let first = signed(&[], NOW - 3, "a");
        assert!(a.check_at(&first, "accounts.search", "POST", NOW).is_ok());
        assert!(
            a.check_at(&signed(&[], NOW - 2, "b"), "accounts.search", "POST", NOW)
                .is_ok()
        );
        assert!(
            a.check_at(&signed(&[], NOW - 1, "c"), "accounts.search", "POST", NOW)
                .is_ok()
        );
        // "a" was forgotten; its replay is refused as too old, not accepted.
        assert_eq!(
            a.check_at(&first, "accounts.search", "POST", NOW)
                .unwrap_err()
                .code,
            403002
        );
        assert_eq!(a.nonces.state.lock().unwrap().seen.len(), 2);
    }

    #[test]
    fn api_key_and_plain_http_secret() {
        let mut config = keyed();
        config.api_key = Some("3_site".into());
        config.refuse_plain_secret = true;
        let a = auth(config);
        let p = Params::from_pairs([("userKey", "UK"), ("secret", SECRET), ("apiKey", "3_site")]);
        assert_eq!(
            a.check_at(&p, "accounts.search", "POST", NOW)
                .unwrap_err()
                .code,
            403006
        );
        let p = Params::from_pairs([("userKey", "UK")]);
        assert_eq!(
            a.check_at(&p, "accounts.search", "POST", NOW)
                .unwrap_err()
                .code,
            400002
        );
        let p = Params::from_pairs([("userKey", "UK"), ("apiKey", "3_other")]);
        assert_eq!(
            a.check_at(&p, "accounts.search", "POST", NOW)
                .unwrap_err()
                .code,
            400093
        );
    }

    #[test]
    fn known_signature_vector() {
        // Python SDK SigUtils.calcSignature: base64(HMAC-SHA1(b64decode(secret), base)).
        let sig = sign(b"key", "The quick brown fox jumps over the lazy dog");
        assert_eq!(sig, "3nybhbi3iqa8ino29wqQcBydtNk=");
    }
}
