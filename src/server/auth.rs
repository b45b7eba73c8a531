//! Authentication as the vendor does it (spec §7): `userKey`+`secret`, or
//! `userKey`+`timestamp`+`nonce`+`sig` signed with HMAC-SHA1 over the canonical URL
//! `https://accounts.<dc>.gigya.com/<method>`.
//!
//! Decisions where the vendor is silent:
//! - `timestamp` may be Unix seconds (Python SDK) or milliseconds (Node SDK): values above
//!   10^11 are read as milliseconds. It must lie within ±`timestamp_window` (default
//!   5 minutes) of the server clock, else 403002.
//! - A nonce may be used once per `userKey` within the window (403004 "Duplicate nonce").
//!   Memory is bounded by `nonce_capacity`: see `NonceCache` for how a full cache
//!   forgets without letting a replay through and without refusing a correctly timed
//!   request because of others.
//! - Parameter names enter the signed text unencoded, as the SDKs sign them; a name
//!   holding `=` or `&` could therefore pass for several parameters (`data=…&isActive`
//!   for `data` and `isActive`), so a signed request with such a name is refused
//!   (400001) rather than checked.
//! - The Node SDK signs `false` and `0` as empty strings while sending `"false"`/`"0"`;
//!   that variant is tried when the signature over the wire values fails, but only for a
//!   request shaped as that SDK sends it (see [`node_sdk_shaped`]): otherwise an
//!   empty value could be turned into `false` or `0` without breaking the signature.
//!   The `http://` URL (the Python SDK signs the scheme it uses) and the request's own
//!   HTTP method when it is not POST are tried too.
//! - With no credentials configured the server is open: no check at all.

use std::collections::{BTreeMap, BTreeSet, HashSet};
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
        if let Some((name, _)) = params.pairs().iter().find(|(k, _)| k.contains(['=', '&'])) {
            let shown: String = name.chars().take(40).collect();
            return Err(VendorError::new(
                400001,
                format!(
                    "a parameter name contains `=` or `&` (`{shown}`), which a request signature cannot tell apart from several parameters"
                ),
            ));
        }
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
            Err(NonceRefusal::Forgotten) => Err(VendorError::new(
                403002,
                "the nonces of this timestamp's second were forgotten (the nonce cache was full): resend with a current timestamp",
            )),
            Err(NonceRefusal::Full) => Err(VendorError::new(
                403002,
                "the nonce cache is full of requests timestamped closer to the server clock than this one: resend with a current timestamp",
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
        let mut methods = vec!["POST"];
        if !http_method.eq_ignore_ascii_case("POST") {
            methods.push(http_method);
        }
        let qs = signed_query_string(params, false);
        for scheme in ["https", "http"] {
            for m in &methods {
                let base = base_string(m, &format!("{scheme}://{host}/{method}"), &qs);
                if verify(key, &base, &sig) {
                    return true;
                }
            }
        }
        if node_sdk_shaped(params) {
            let qs = signed_query_string(params, true);
            let base = base_string("POST", &format!("https://{host}/{method}"), &qs);
            return verify(key, &base, &sig);
        }
        false
    }
}

/// Whether a signed request could come from the npm `gigya` SDK, whose signer reads each
/// value as `(value || '')`: a JavaScript `false` or `0` is signed as the empty string
/// but sent as `false`/`0`. Only then is that variant of the signature tried.
///
/// The SDK signs with POST over `https://`, always sends `format=json`, a millisecond
/// `timestamp` (`Date.now()`) and an integer `nonce`, and has some value `false` or `0`
/// (otherwise the variant equals the plain signature).
pub fn node_sdk_shaped(params: &Params) -> bool {
    let digits = |v: &str| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit());
    let millis = params
        .get("timestamp")
        .is_some_and(|t| digits(t) && t.len() >= 12);
    millis
        && params.get("format") == Some("json")
        && params.get("nonce").is_some_and(digits)
        && params
            .pairs()
            .iter()
            .any(|(k, v)| is_signed(k) && (v == "false" || v == "0"))
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
    /// Timestamped in a second whose nonces the full cache had to forget.
    Forgotten,
    /// The cache is full of nonces timestamped closer to the clock than this one (or
    /// holds as many timestamped ahead of the clock as it allows).
    Full,
}

/// Requests timestamped more than this many seconds ahead of the clock may fill at most
/// half the cache.
const AHEAD_SECONDS: i64 = 1;

/// Nonces seen within the window, at most `capacity` of them.
///
/// Nonces are kept by the second of their request's `timestamp`. When the cache is full,
/// it forgets its oldest second if that is over a second in the past (and older than the
/// new request's), and from then on refuses every request timestamped in that second
/// (403002): a forgotten nonce can never be replayed, since its timestamp is signed.
/// Otherwise the new request is refused (403002). Requests timestamped over a second
/// ahead of the clock may fill at most half the cache, and their seconds are never
/// forgotten (they would become the present).
///
/// So a correctly timed request (its second within one of the clock's) is refused only
/// as a replay, or when `capacity / 2` other requests arrived timestamped within the
/// same three seconds: never because of requests timestamped farther off. A second
/// leaves the cache (nonces and refusal) when it leaves the window.
#[derive(Debug)]
pub(crate) struct NonceCache {
    capacity: usize,
    state: Mutex<NonceState>,
}

#[derive(Debug, Default)]
struct NonceState {
    /// Remembered nonces, by the second of their timestamp.
    seconds: BTreeMap<i64, HashSet<(String, String)>>,
    /// Nonces remembered in all.
    len: usize,
    /// Seconds whose nonces were forgotten: requests timestamped in them are refused.
    forgotten: BTreeSet<i64>,
}

impl NonceCache {
    fn new(capacity: usize) -> NonceCache {
        NonceCache {
            capacity: capacity.max(2),
            state: Mutex::new(NonceState::default()),
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
        // Seconds wholly outside the window can go: the timestamp check refuses them.
        let oldest_kept = now.saturating_sub(window).div_euclid(1000);
        while let Some((&second, _)) = s.seconds.first_key_value() {
            if second >= oldest_kept {
                break;
            }
            let gone = s.seconds.pop_first().map_or(0, |(_, n)| n.len());
            s.len -= gone;
        }
        s.forgotten = s.forgotten.split_off(&oldest_kept);
        let second = ts.div_euclid(1000);
        if s.forgotten.contains(&second) {
            return Err(NonceRefusal::Forgotten);
        }
        let key = (user_key.to_owned(), nonce.to_owned());
        if s.seconds.get(&second).is_some_and(|n| n.contains(&key)) {
            return Err(NonceRefusal::Replayed);
        }
        let now_second = now.div_euclid(1000);
        if second > now_second + AHEAD_SECONDS {
            let ahead: usize = s
                .seconds
                .range(now_second + AHEAD_SECONDS + 1..)
                .map(|(_, n)| n.len())
                .sum();
            if ahead >= self.capacity / 2 {
                return Err(NonceRefusal::Full);
            }
        }
        while s.len >= self.capacity {
            let Some(oldest) = s.seconds.first_key_value().map(|(k, _)| *k) else {
                break;
            };
            if oldest >= now_second - 1 || oldest >= second {
                return Err(NonceRefusal::Full);
            }
            let dropped = s.seconds.remove(&oldest).map_or(0, |n| n.len());
            s.len -= dropped;
            s.forgotten.insert(oldest);
        }
        s.seconds.entry(second).or_default().insert(key);
        s.len += 1;
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

    /// Pairs of a form body.
    fn form(body: &str) -> Params {
        let mut p = Params::default();
        p.extend_from_form(body.as_bytes()).unwrap();
        p
    }

    /// A request the npm `gigya` SDK 3.0.1 sent (tests/node, `setAccountInfo` with
    /// `isActive: false` and `isVerified: 0`): it signs both values as empty strings.
    const NODE_SDK_BODY: &str = "UID=u1&isActive=false&data=%7B%22n%22%3A0%7D&isVerified=0&apiKey=3_testsite&format=json&userKey=AKEY123&timestamp=1796648806266&nonce=56945998&sig=U%2F7oNd3vVoLgT1UYMKTz23nqxLY%3D";
    const NODE_SDK_SECRET: &str = "c2VjcmV0LW9mLXRoZS10ZXN0LWFwcGxpY2F0aW9u";
    const NODE_SDK_NOW: i64 = 1_796_648_806_266;

    fn node_sdk_auth() -> Authenticator {
        auth(
            ServerConfig::default()
                .with_credential("AKEY123", NODE_SDK_SECRET)
                .unwrap(),
        )
    }

    #[test]
    fn node_sdk_falsy_values_are_tolerated() {
        let p = form(NODE_SDK_BODY);
        assert!(node_sdk_shaped(&p));
        assert_eq!(
            node_sdk_auth().check_at(&p, "accounts.setAccountInfo", "POST", NODE_SDK_NOW),
            Ok(Identity::Key("AKEY123".into()))
        );
    }

    /// Issue 15, item 5: the "false signed as empty" variant is tried only for requests
    /// shaped as the Node SDK sends them, so an empty value signed by another client
    /// cannot be turned into `false`.
    #[test]
    fn falsy_variant_only_for_node_sdk_shaped_requests() {
        let a = auth(keyed());
        // Signed (Python-style, seconds) with an empty isActive, which means "unchanged".
        let p = signed(
            &[("UID", "u1"), ("isActive", ""), ("format", "json")],
            NOW / 1000,
            "17",
        );
        assert!(a.check_at(&p, "accounts.search", "POST", NOW).is_ok());
        let tampered: Vec<(String, String)> = p
            .pairs()
            .iter()
            .map(|(k, v)| match k.as_str() {
                "isActive" => (k.clone(), "false".to_owned()),
                _ => (k.clone(), v.clone()),
            })
            .collect();
        let tampered = Params::from_pairs(tampered);
        assert!(!node_sdk_shaped(&tampered), "seconds: not the Node SDK");
        assert_eq!(
            a.check_at(&tampered, "accounts.search", "POST", NOW)
                .unwrap_err()
                .code,
            403003
        );
        // The Node SDK's own request with its format or nonce changed is not its shape.
        let mut p = form(NODE_SDK_BODY);
        p = Params::from_pairs(
            p.pairs()
                .iter()
                .map(|(k, v)| match k.as_str() {
                    "nonce" => (k.clone(), "n-56945998".to_owned()),
                    _ => (k.clone(), v.clone()),
                })
                .collect::<Vec<_>>(),
        );
        assert!(!node_sdk_shaped(&p));
    }

    /// Issue 15, item 5: parameter names are signed unencoded (as the SDKs do), so a name
    /// such as `data=…&isActive` stood for `data` and `isActive` in the signed text while
    /// the server saw neither: a forged `setAccountInfo` was accepted.
    #[test]
    fn names_that_could_pass_for_several_parameters_are_refused() {
        let a = auth(keyed());
        let p = signed(
            &[("UID", "u1"), ("data", r#"{"x":1}"#), ("isActive", "true")],
            NOW,
            "orig",
        );
        assert!(a.check_at(&p, "accounts.search", "POST", NOW).is_ok());
        // The forgery: `data` and `isActive` folded into one name, same signed text.
        let mut encoded = String::new();
        rfc3986_encode(r#"{"x":1}"#, &mut encoded);
        let forged_name = format!("data={encoded}&isActive");
        let p = signed(
            &[("UID", "u1"), ("data", r#"{"x":1}"#), ("isActive", "true")],
            NOW,
            "forged",
        );
        let forged: Vec<(String, String)> = p
            .pairs()
            .iter()
            .filter(|(k, _)| k != "data")
            .map(|(k, v)| {
                if k == "isActive" {
                    (forged_name.clone(), v.clone())
                } else {
                    (k.clone(), v.clone())
                }
            })
            .collect();
        let forged = Params::from_pairs(forged);
        assert_eq!(
            signed_query_string(&forged, false),
            signed_query_string(&p, false),
            "the forgery has the same signed text"
        );
        let err = a
            .check_at(&forged, "accounts.search", "POST", NOW)
            .unwrap_err();
        assert_eq!(err.code, 400001, "{err:?}");
    }

    #[test]
    fn nonce_memory_is_bounded_without_allowing_replays() {
        let mut config = keyed();
        config.nonce_capacity = 2;
        let a = auth(config);
        let first = signed(&[], NOW - 3000, "a");
        assert!(a.check_at(&first, "accounts.search", "POST", NOW).is_ok());
        assert!(
            a.check_at(
                &signed(&[], NOW - 2000, "b"),
                "accounts.search",
                "POST",
                NOW
            )
            .is_ok()
        );
        assert!(
            a.check_at(
                &signed(&[], NOW - 1000, "c"),
                "accounts.search",
                "POST",
                NOW
            )
            .is_ok()
        );
        // "a" was forgotten; its replay is refused as expired, not accepted.
        assert_eq!(
            a.check_at(&first, "accounts.search", "POST", NOW)
                .unwrap_err()
                .code,
            403002
        );
        assert_eq!(a.nonces.state.lock().unwrap().len, 2);
    }

    /// Issue 15, item 4: one signed request timestamped 250 s ahead (inside the window)
    /// made every correctly timed request fail with 403002 once `nonceCapacity` later
    /// requests had arrived.
    #[test]
    fn a_request_far_ahead_never_locks_out_correctly_timed_ones() {
        let mut config = keyed();
        config.nonce_capacity = 3;
        let a = auth(config);
        let ahead = signed(&[], NOW + 250_000, "ahead");
        assert!(a.check_at(&ahead, "accounts.search", "POST", NOW).is_ok());
        for i in 0..20 {
            let now = NOW + i * 1000;
            let p = signed(&[], now, &format!("on-time-{i}"));
            assert_eq!(
                a.check_at(&p, "accounts.search", "POST", now),
                Ok(Identity::Key("UK".into())),
                "request {i}"
            );
        }
        // The one far ahead is still remembered: its replay is refused.
        assert_eq!(
            a.check_at(&ahead, "accounts.search", "POST", NOW + 20_000)
                .unwrap_err()
                .code,
            403004
        );
    }

    /// Generated traffic: requests timestamped anywhere in the window (at least 2 s off
    /// the clock), one correctly timed request per second, and replays of earlier ones.
    /// No replay is ever accepted, and no correctly timed request is ever refused.
    #[test]
    fn nonce_cache_under_generated_traffic() {
        let mut rng = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        let cache = NonceCache::new(16);
        let window = 300_000;
        let mut accepted: Vec<(String, i64)> = Vec::new();
        for step in 0..2000_i64 {
            let now = NOW + step * 1000;
            for k in 0..3 {
                let off = 2000 + i64::try_from(next(298_000)).unwrap();
                let ts = if next(2) == 0 { now + off } else { now - off };
                let nonce = format!("noise-{step}-{k}");
                if cache
                    .check_and_insert("UK", &nonce, ts, now, window)
                    .is_ok()
                {
                    accepted.push((nonce, ts));
                }
            }
            let nonce = format!("on-time-{step}");
            assert_eq!(
                cache.check_and_insert("UK", &nonce, now, now, window),
                Ok(()),
                "step {step}"
            );
            accepted.push((nonce, now));
            let (nonce, ts) = &accepted[usize::try_from(next(accepted.len() as u64)).unwrap()];
            if (now - ts).abs() <= window {
                assert!(
                    cache
                        .check_and_insert("UK", nonce, *ts, now, window)
                        .is_err(),
                    "replay of {nonce} at step {step}"
                );
            }
        }
        let s = cache.state.lock().unwrap();
        assert!(
            s.len <= 16 && s.forgotten.len() <= 601,
            "{} {}",
            s.len,
            s.forgotten.len()
        );
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
