//! Server settings: the JSON config file ([`FileConfig`], whose members the `acql serve`
//! flags override), and the resolved [`Listen`] address and [`ServerConfig`] the server runs
//! with. The flags themselves belong to the CLI, so this feature needs no argument parser.
//!
//! Secrets live only in [`Credential`], whose `Debug` never prints them, so a logged
//! config cannot leak a key.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use serde::Deserialize;

use super::ServeError;

/// The default listen address: loopback only, so nothing is exposed by accident.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// How far a signed request's `timestamp` may be from the server clock, either way.
pub const DEFAULT_TIMESTAMP_WINDOW: Duration = Duration::from_secs(300);
/// The largest request body accepted (form-encoded parameters).
pub const DEFAULT_BODY_LIMIT: usize = 2 * 1024 * 1024;
/// Nonces remembered at most; see `auth::NonceCache` for why this bound is safe.
pub const DEFAULT_NONCE_CAPACITY: usize = 100_000;
/// Searches run at once; more wait in a queue.
pub const DEFAULT_MAX_QUERIES: usize = 8;
/// How long a search waits in the queue before it is refused as busy (503001).
pub const DEFAULT_QUEUE_TIMEOUT: Duration = Duration::from_secs(10);
/// Page cache shared by the reader connections, in bytes.
pub const DEFAULT_CACHE_BUDGET: u64 = 256 << 20;
/// A reader connection unused this long is closed, releasing its cache.
pub const DEFAULT_READER_IDLE: Duration = Duration::from_secs(60);
/// How long a write waits for the database when another process holds its write lock
/// (a bulk import) before it is refused as busy (503001).
pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(20);
/// Connections held open at once; further ones wait in the listen backlog.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// How long a client may take to send a request's headers, from its first byte (and a
/// TLS handshake, from the connection).
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client may take to send a request's body, after its headers.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a connection may wait for its next request before it is closed.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// The format of the request log on stderr.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// One human-readable line per event.
    #[default]
    Text,
    /// One JSON object per line (`timestamp`, `level`, `target`, `message` and the
    /// event's fields), for log collectors.
    Json,
}

impl LogFormat {
    /// The formats by name, as `--log-format` takes them.
    pub const NAMES: [(&'static str, LogFormat); 2] =
        [("text", LogFormat::Text), ("json", LogFormat::Json)];
}

impl std::str::FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<LogFormat, String> {
        LogFormat::NAMES
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(s))
            .map(|&(_, format)| format)
            .ok_or_else(|| format!("unknown log format `{s}` (expected text or json)"))
    }
}

/// The request log on stderr: what [`run`](super::run) sets up before it serves.
#[derive(Clone, Copy, Debug)]
pub struct LogConfig {
    /// The most detailed level written.
    pub level: tracing::Level,
    /// Lines or JSON objects.
    pub format: LogFormat,
}

/// One application key and its secret.
#[derive(Clone)]
pub struct Credential {
    /// The secret as configured (base64 text): what `userKey`+`secret` requests must send.
    secret_text: String,
    /// The decoded secret: the HMAC-SHA1 key of signed requests.
    secret_key: Vec<u8>,
}

impl Credential {
    /// A credential from the base64 secret text the vendor hands out.
    pub fn new(secret: &str) -> Result<Credential, ServeError> {
        let secret_key = base64::engine::general_purpose::STANDARD
            .decode(secret.trim())
            .map_err(|_| ServeError::Config("a secret is not valid base64".into()))?;
        if secret_key.is_empty() {
            return Err(ServeError::Config("a secret is empty".into()));
        }
        Ok(Credential {
            secret_text: secret.trim().to_owned(),
            secret_key,
        })
    }

    /// The secret text, compared with the `secret` parameter.
    pub(crate) fn secret_text(&self) -> &str {
        &self.secret_text
    }

    /// The HMAC key.
    pub(crate) fn secret_key(&self) -> &[u8] {
        &self.secret_key
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Credential([redacted])")
    }
}

/// Console settings, part of [`ServerConfig`] (the console itself is `server::console`).
#[derive(Clone, Debug, Default)]
pub struct ConsoleConfig {
    /// `--console-writes`: a console session may call the write methods and add or drop
    /// indexes.
    pub writes: bool,
    /// The listener is on a loopback address (set by `serve`/`serve_tls` from the bound
    /// address; `false`, the safe reading, when the router is embedded).
    pub loopback: bool,
    /// The listener serves TLS: the cookie gets `Secure`.
    pub tls: bool,
    /// The listener's port: it names the cookie, since browsers share cookies between the
    /// ports of one host and two consoles must not log each other out.
    pub port: u16,
}

/// Everything the router needs besides the engine.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// userKey → credential. Empty: the server is open (no authentication).
    pub credentials: HashMap<String, Credential>,
    /// The site API key requests must carry, if set.
    pub api_key: Option<String>,
    /// Data center of the canonical signing URL (`us1`, or a domain such as `eu1.gigya.com`).
    pub data_center: String,
    /// Accepted clock difference of a signed request's `timestamp`.
    pub timestamp_window: Duration,
    /// Largest accepted request body in bytes.
    pub body_limit: usize,
    /// Upper bound of remembered nonces.
    pub nonce_capacity: usize,
    /// Refuse a `secret` parameter (403006): set when serving plain HTTP on a non-loopback
    /// address, where the secret would cross the network in clear.
    pub refuse_plain_secret: bool,
    /// The query console, when served (`--console`).
    pub console: Option<ConsoleConfig>,
    /// Searches run at once; the reader pool has as many connections.
    pub max_queries: usize,
    /// How long a search waits for a slot before it is refused as busy (503001).
    pub queue_timeout: Duration,
    /// Page cache shared by the reader connections, in bytes.
    pub cache_budget: u64,
    /// Reader connections unused this long are closed.
    pub reader_idle_timeout: Duration,
    /// How long a write waits for the database lock (held by another process, such as a
    /// bulk import) before it is refused as busy (503001).
    pub write_timeout: Duration,
    /// Connections held open at once.
    pub max_connections: usize,
    /// Time to send a request's headers, from their first byte.
    pub header_timeout: Duration,
    /// Time to send a request's body, after the headers.
    pub body_timeout: Duration,
    /// Time a connection may wait for its next request.
    pub idle_timeout: Duration,
    /// Browser origins allowed by CORS (`*`: any). Empty: no CORS headers.
    pub cors_origins: Vec<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            credentials: HashMap::new(),
            api_key: None,
            data_center: "us1".into(),
            timestamp_window: DEFAULT_TIMESTAMP_WINDOW,
            body_limit: DEFAULT_BODY_LIMIT,
            nonce_capacity: DEFAULT_NONCE_CAPACITY,
            refuse_plain_secret: false,
            console: None,
            max_queries: DEFAULT_MAX_QUERIES,
            queue_timeout: DEFAULT_QUEUE_TIMEOUT,
            cache_budget: DEFAULT_CACHE_BUDGET,
            reader_idle_timeout: DEFAULT_READER_IDLE,
            write_timeout: DEFAULT_WRITE_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            body_timeout: DEFAULT_BODY_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            cors_origins: Vec::new(),
        }
    }
}

impl ServerConfig {
    /// Adds `user_key` with its base64 `secret`.
    pub fn with_credential(
        mut self,
        user_key: &str,
        secret: &str,
    ) -> Result<ServerConfig, ServeError> {
        self.credentials
            .insert(user_key.to_owned(), Credential::new(secret)?);
        Ok(self)
    }

    /// The reader pool limits this config asks the store for.
    pub fn reader_limits(&self) -> crate::store::ReaderLimits {
        crate::store::ReaderLimits {
            max_readers: self.max_queries.max(1),
            cache_budget: self.cache_budget,
            idle_timeout: self.reader_idle_timeout,
        }
    }

    /// The host of the canonical URL signatures are computed over, as the SDKs build it.
    pub fn signing_host(&self) -> String {
        let dc = self.data_center.trim();
        if dc.contains('.') {
            format!("accounts.{dc}")
        } else if dc == "cn1" {
            // The Node SDK's special case: China is not under gigya.com.
            "accounts.cn1.gigya-api.cn".to_owned()
        } else {
            format!("accounts.{dc}.gigya.com")
        }
    }
}

/// The JSON config file (`--config FILE`). Every member is optional; an unset one takes its
/// default when the settings are [resolved](FileConfig::resolve). The CLI lays its flags
/// over the file's members in this same shape before resolving.
///
/// ```json
/// { "listen": "127.0.0.1:8080", "apiKey": "3_abc", "dataCenter": "eu1",
///   "credentials": [ { "userKey": "AKEY", "secret": "c2VjcmV0" } ],
///   "tlsCert": "cert.pem", "tlsKey": "key.pem",
///   "timestampWindowSeconds": 300, "bodyLimitBytes": 2097152, "nonceCapacity": 100000,
///   "maxConcurrentQueries": 8, "queueTimeoutSeconds": 10, "cacheBudgetMiB": 256,
///   "readerIdleSeconds": 60, "writeTimeoutSeconds": 20, "maxConnections": 1024,
///   "headerTimeoutSeconds": 10, "bodyTimeoutSeconds": 30, "idleTimeoutSeconds": 60,
///   "corsOrigins": ["https://app.example.com"] }
/// ```
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FileConfig {
    /// Listen address.
    pub listen: Option<SocketAddr>,
    /// Site API key.
    pub api_key: Option<String>,
    /// Data center.
    pub data_center: Option<String>,
    /// Application keys.
    #[serde(default)]
    pub credentials: Vec<FileCredential>,
    /// PEM certificate chain.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key.
    pub tls_key: Option<PathBuf>,
    /// Signed-request clock window.
    pub timestamp_window_seconds: Option<u64>,
    /// Body size limit.
    pub body_limit_bytes: Option<usize>,
    /// Nonce cache bound.
    pub nonce_capacity: Option<usize>,
    /// Searches run at once.
    pub max_concurrent_queries: Option<usize>,
    /// Queue wait of a search.
    pub queue_timeout_seconds: Option<u64>,
    /// Page cache of all readers, in MiB.
    #[serde(rename = "cacheBudgetMiB")]
    pub cache_budget_mib: Option<u64>,
    /// Idle reader lifetime.
    pub reader_idle_seconds: Option<u64>,
    /// Lock wait of a write.
    pub write_timeout_seconds: Option<u64>,
    /// Connection limit.
    pub max_connections: Option<usize>,
    /// Header timeout.
    pub header_timeout_seconds: Option<u64>,
    /// Body timeout.
    pub body_timeout_seconds: Option<u64>,
    /// Keep-alive idle timeout.
    pub idle_timeout_seconds: Option<u64>,
    /// CORS origins.
    #[serde(default)]
    pub cors_origins: Vec<String>,
}

/// One `credentials` entry of the config file.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FileCredential {
    /// The application key.
    pub user_key: String,
    /// Its base64 secret.
    pub secret: String,
}

impl fmt::Debug for FileCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileCredential")
            .field("user_key", &self.user_key)
            .finish_non_exhaustive()
    }
}

impl FileConfig {
    /// Reads and parses a config file.
    pub fn load(path: &Path) -> Result<FileConfig, ServeError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ServeError::Config(format!("cannot read {}: {e}", path.display())))?;
        serde_json::from_str(&text)
            .map_err(|e| ServeError::Config(format!("{}: {e}", path.display())))
    }

    /// The listen address and the router config these settings ask for: unset members take
    /// their defaults, credentials are checked (base64, not empty), and a limit of zero or
    /// a timeout over a day is refused (a limit of nothing would refuse every request).
    /// Plain HTTP on a non-loopback address refuses requests carrying a `secret`.
    pub fn resolve(self) -> Result<(Listen, ServerConfig), ServeError> {
        let mut config = ServerConfig::default();
        for c in &self.credentials {
            config = config.with_credential(&c.user_key, &c.secret)?;
        }
        self.resolve_limits(&mut config)?;
        config.api_key = self.api_key;
        if let Some(dc) = self.data_center {
            config.data_center = dc;
        }
        if let Some(s) = self.timestamp_window_seconds {
            config.timestamp_window = Duration::from_secs(s);
        }
        if let Some(n) = self.body_limit_bytes {
            config.body_limit = n;
        }
        if let Some(n) = self.nonce_capacity {
            config.nonce_capacity = n.max(1);
        }
        let addr = match self.listen {
            Some(a) => a,
            None => DEFAULT_LISTEN
                .parse()
                .expect("the default listen address parses"),
        };
        let tls = match (self.tls_cert, self.tls_key) {
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => None,
            _ => {
                return Err(ServeError::Config(
                    "TLS needs both a certificate and a key".into(),
                ));
            }
        };
        config.refuse_plain_secret = tls.is_none() && !addr.ip().is_loopback();
        Ok((Listen { addr, tls }, config))
    }

    /// The resource limits and CORS origins, set or default. The messages name the
    /// `acql serve` flag beside the file's member where there is one.
    fn resolve_limits(&self, config: &mut ServerConfig) -> Result<(), ServeError> {
        fn count(name: &str, v: Option<usize>, default: usize) -> Result<usize, ServeError> {
            match v {
                Some(0) => Err(ServeError::Config(format!("{name} must be at least 1"))),
                Some(n) => Ok(n),
                None => Ok(default),
            }
        }
        fn seconds(name: &str, v: Option<u64>, default: Duration) -> Result<Duration, ServeError> {
            match v {
                Some(0) => Err(ServeError::Config(format!(
                    "{name} must be at least 1 second"
                ))),
                Some(s) if s > 86_400 => Err(ServeError::Config(format!(
                    "{name} is {s} seconds: at most 86400 (a day)"
                ))),
                Some(s) => Ok(Duration::from_secs(s)),
                None => Ok(default),
            }
        }
        config.max_queries = count(
            "maxConcurrentQueries (--max-queries)",
            self.max_concurrent_queries,
            config.max_queries,
        )?;
        config.max_connections = count(
            "maxConnections (--max-connections)",
            self.max_connections,
            config.max_connections,
        )?;
        config.queue_timeout = seconds(
            "queueTimeoutSeconds",
            self.queue_timeout_seconds,
            config.queue_timeout,
        )?;
        config.reader_idle_timeout = seconds(
            "readerIdleSeconds",
            self.reader_idle_seconds,
            config.reader_idle_timeout,
        )?;
        config.write_timeout = seconds(
            "writeTimeoutSeconds",
            self.write_timeout_seconds,
            config.write_timeout,
        )?;
        config.header_timeout = seconds(
            "headerTimeoutSeconds (--header-timeout)",
            self.header_timeout_seconds,
            config.header_timeout,
        )?;
        config.body_timeout = seconds(
            "bodyTimeoutSeconds (--body-timeout)",
            self.body_timeout_seconds,
            config.body_timeout,
        )?;
        config.idle_timeout = seconds(
            "idleTimeoutSeconds (--idle-timeout)",
            self.idle_timeout_seconds,
            config.idle_timeout,
        )?;
        match self.cache_budget_mib {
            Some(0) => {
                return Err(ServeError::Config(
                    "cacheBudgetMiB must be at least 1".into(),
                ));
            }
            Some(mib) => {
                config.cache_budget = mib.checked_mul(1 << 20).ok_or_else(|| {
                    ServeError::Config(format!("cacheBudgetMiB {mib} is too large"))
                })?;
            }
            None => {}
        }
        config.cors_origins = self
            .cors_origins
            .iter()
            .map(|o| super::cors::normalize_origin(o).map_err(ServeError::Config))
            .collect::<Result<_, _>>()?;
        Ok(())
    }
}

/// Where and how to listen, resolved from flags and file.
#[derive(Clone, Debug)]
pub struct Listen {
    /// Socket address.
    pub addr: SocketAddr,
    /// Certificate and key, for HTTPS.
    pub tls: Option<(PathBuf, PathBuf)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_secrets() {
        let config = ServerConfig::default()
            .with_credential("K", "c2VjcmV0c2VjcmV0")
            .unwrap();
        let text = format!("{config:?}");
        assert!(!text.contains("c2VjcmV0c2VjcmV0"), "{text}");
        assert!(text.contains("redacted"), "{text}");
        let file: FileConfig = serde_json::from_str(
            r#"{"credentials": [{"userKey": "K", "secret": "c2VjcmV0c2VjcmV0"}]}"#,
        )
        .unwrap();
        let text = format!("{file:?}");
        assert!(!text.contains("c2VjcmV0c2VjcmV0"), "{text}");
    }

    #[test]
    fn secrets_must_be_base64() {
        assert!(Credential::new("not base64!").is_err());
        assert!(Credential::new("").is_err());
    }

    #[test]
    fn an_empty_file_resolves_to_the_defaults() {
        let (listen, config) = FileConfig::default().resolve().unwrap();
        assert_eq!(listen.addr.to_string(), DEFAULT_LISTEN);
        assert!(listen.tls.is_none());
        assert!(config.credentials.is_empty() && !config.refuse_plain_secret);
        assert_eq!(config.data_center, "us1");
        assert_eq!(
            (
                config.max_queries,
                config.max_connections,
                config.cache_budget
            ),
            (
                DEFAULT_MAX_QUERIES,
                DEFAULT_MAX_CONNECTIONS,
                DEFAULT_CACHE_BUDGET
            )
        );
        assert_eq!(config.idle_timeout, DEFAULT_IDLE_TIMEOUT);
        let file: FileConfig =
            serde_json::from_str(r#"{"maxConcurrentQueries": 3, "cacheBudgetMiB": 30}"#).unwrap();
        let (_, config) = file.resolve().unwrap();
        assert_eq!(config.reader_limits().cache_kib_per_reader(), 10 * 1024);
    }

    #[test]
    fn the_file_alone_is_checked() {
        for text in [
            r#"{"maxConcurrentQueries": 0}"#,
            r#"{"idleTimeoutSeconds": 100000}"#,
            r#"{"cacheBudgetMiB": 0}"#,
            r#"{"corsOrigins": ["app.example.com"]}"#,
            r#"{"tlsCert": "c.pem"}"#,
            r#"{"credentials": [{"userKey": "K", "secret": "!!"}]}"#,
        ] {
            let file: FileConfig = serde_json::from_str(text).unwrap();
            assert!(file.resolve().is_err(), "{text}");
        }
        let file: FileConfig = serde_json::from_str(
            r#"{"listen": "0.0.0.0:9000", "tlsCert": "c.pem", "tlsKey": "k.pem"}"#,
        )
        .unwrap();
        let (listen, config) = file.resolve().unwrap();
        assert!(listen.tls.is_some());
        assert!(
            !config.refuse_plain_secret,
            "secrets travel encrypted over TLS"
        );
    }

    #[test]
    fn log_formats_parse_by_name() {
        assert_eq!("json".parse::<LogFormat>(), Ok(LogFormat::Json));
        assert_eq!("Text".parse::<LogFormat>(), Ok(LogFormat::Text));
        assert!("yaml".parse::<LogFormat>().is_err());
    }

    #[test]
    fn signing_host_follows_the_sdks() {
        let mut c = ServerConfig::default();
        assert_eq!(c.signing_host(), "accounts.us1.gigya.com");
        c.data_center = "eu1.gigya.com".into();
        assert_eq!(c.signing_host(), "accounts.eu1.gigya.com");
        c.data_center = "cn1".into();
        assert_eq!(c.signing_host(), "accounts.cn1.gigya-api.cn");
    }
}
