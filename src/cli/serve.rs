//! `acql serve`: the flags, and their conversion into the server's settings. The flags
//! are laid over the `--config` file's members ([`FileConfig`]), and the server resolves
//! the result, so a flag and the file member it overrides are checked by the same code.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use acql::server::config::{ConsoleConfig, FileCredential};
use acql::server::{FileConfig, Listen, LogConfig, LogFormat, ServeError, ServerConfig};
use clap::builder::{PossibleValuesParser, TypedValueParser};

/// `acql serve DB [...]`: the vendor's REST methods over HTTP.
///
/// With no `--user-key`/`--secret` pair and no credentials in `--config`, the server
/// accepts every request unauthenticated (it warns at startup).
#[derive(Clone, clap::Args)]
pub struct ServeArgs {
    /// The database file (created when missing), or a PostgreSQL URL
    /// (`postgres://user@host:5432/db`; also from `ACQL_DATABASE_URL`).
    #[arg(required_unless_present = "demo", env = "ACQL_DATABASE_URL")]
    pub db: Option<PathBuf>,
    /// Serve the demo store (generated accounts) instead of a database file.
    #[arg(long, conflicts_with = "db")]
    pub demo: bool,
    /// Serve the query console at `/` (see docs/console.md).
    #[arg(long)]
    pub console: bool,
    /// Let console sessions call the write methods and add or drop indexes (implies
    /// `--console`).
    #[arg(long = "console-writes")]
    pub console_writes: bool,
    /// Address to listen on [default: 127.0.0.1:8080]. Plain HTTP on a non-loopback address refuses requests
    /// that carry a `secret` (403006): use signed requests or TLS there.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// An application/user key; pair each with a `--secret`, in the same order.
    #[arg(long = "user-key", value_name = "KEY")]
    pub user_key: Vec<String>,
    /// The base64 secret of the `--user-key` at the same position.
    #[arg(long, value_name = "SECRET")]
    pub secret: Vec<String>,
    /// The site API key requests must carry (any `apiKey` is accepted when unset).
    #[arg(long = "api-key", value_name = "KEY")]
    pub api_key: Option<String>,
    /// The data center of the canonical URL signatures are computed over
    /// (`https://accounts.<dc>.gigya.com/<method>`), e.g. `us1`, `eu1`, or a whole domain.
    #[arg(long = "data-center", value_name = "DC")]
    pub data_center: Option<String>,
    /// A JSON config file; flags override its values. See `docs/server.md`.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// PEM certificate chain: serve HTTPS (needs `--tls-key`).
    #[arg(long = "tls-cert", value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `--tls-cert`.
    #[arg(long = "tls-key", value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Log level of the request log (`error`, `warn`, `info`, `debug`, `trace`).
    #[arg(long = "log-level", value_name = "LEVEL", default_value = "info")]
    pub log_level: tracing::Level,
    /// Log format: `text` lines or one JSON object per line.
    #[arg(
        long = "log-format",
        value_name = "FORMAT",
        default_value = "text",
        value_parser = PossibleValuesParser::new(LogFormat::NAMES.map(|(name, _)| name))
            .try_map(|name| name.parse::<LogFormat>())
    )]
    pub log_format: LogFormat,
    /// Searches run at once (more wait up to `queueTimeoutSeconds`, then get 503001)
    /// [default: 8].
    #[arg(long = "max-queries", value_name = "N")]
    pub max_queries: Option<usize>,
    /// Connections held open at once; more wait in the listen backlog [default: 1024].
    #[arg(long = "max-connections", value_name = "N")]
    pub max_connections: Option<usize>,
    /// Seconds a client may take to send a request's headers [default: 10].
    #[arg(long = "header-timeout", value_name = "SECONDS")]
    pub header_timeout: Option<u64>,
    /// Seconds a client may take to send a request's body [default: 30].
    #[arg(long = "body-timeout", value_name = "SECONDS")]
    pub body_timeout: Option<u64>,
    /// Seconds an idle keep-alive connection is kept open [default: 60].
    #[arg(long = "idle-timeout", value_name = "SECONDS")]
    pub idle_timeout: Option<u64>,
    /// A browser origin allowed to call the server (CORS), e.g. `https://app.example.com`;
    /// repeatable, `*` for any.
    #[arg(long = "cors-origin", value_name = "ORIGIN")]
    pub cors_origin: Vec<String>,
}

impl fmt::Debug for ServeArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServeArgs")
            .field("db", &self.db)
            .field("listen", &self.listen)
            .field("user_key", &self.user_key)
            .field("secret", &format_args!("[{} redacted]", self.secret.len()))
            .field("api_key", &self.api_key)
            .field("data_center", &self.data_center)
            .field("config", &self.config)
            .field("tls_cert", &self.tls_cert)
            .field("tls_key", &self.tls_key)
            .field("console", &self.console)
            .field("console_writes", &self.console_writes)
            .field("log_format", &self.log_format)
            .field("max_queries", &self.max_queries)
            .field("max_connections", &self.max_connections)
            .field("header_timeout", &self.header_timeout)
            .field("body_timeout", &self.body_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("cors_origin", &self.cors_origin)
            .finish_non_exhaustive()
    }
}
impl ServeArgs {
    /// The config file (if any) with the flags laid over it: a flag wins over the member it
    /// names, `--user-key`/`--secret` pairs add to the file's credentials, and
    /// `--cors-origin` replaces the file's list.
    fn settings(&self) -> Result<FileConfig, ServeError> {
        if self.user_key.len() != self.secret.len() {
            return Err(ServeError::Config(format!(
                "{} --user-key but {} --secret: give them in pairs",
                self.user_key.len(),
                self.secret.len()
            )));
        }
        let mut file = match &self.config {
            Some(path) => FileConfig::load(path)?,
            None => FileConfig::default(),
        };
        file.credentials
            .extend(
                self.user_key
                    .iter()
                    .zip(&self.secret)
                    .map(|(key, secret)| FileCredential {
                        user_key: key.clone(),
                        secret: secret.clone(),
                    }),
            );
        fn over<T: Clone>(flag: &Option<T>, member: &mut Option<T>) {
            if let Some(v) = flag {
                *member = Some(v.clone());
            }
        }
        over(&self.listen, &mut file.listen);
        over(&self.api_key, &mut file.api_key);
        over(&self.data_center, &mut file.data_center);
        over(&self.tls_cert, &mut file.tls_cert);
        over(&self.tls_key, &mut file.tls_key);
        over(&self.max_queries, &mut file.max_concurrent_queries);
        over(&self.max_connections, &mut file.max_connections);
        over(&self.header_timeout, &mut file.header_timeout_seconds);
        over(&self.body_timeout, &mut file.body_timeout_seconds);
        over(&self.idle_timeout, &mut file.idle_timeout_seconds);
        if !self.cors_origin.is_empty() {
            file.cors_origins = self.cors_origin.clone();
        }
        Ok(file)
    }

    /// The listen address and the router config: file and flags resolved by the server,
    /// then the console (a flag only).
    pub fn resolve(&self) -> Result<(Listen, ServerConfig), ServeError> {
        let (listen, mut config) = self.settings()?.resolve()?;
        if self.console || self.console_writes {
            config.console = Some(ConsoleConfig {
                writes: self.console_writes,
                ..Default::default()
            });
        }
        Ok((listen, config))
    }

    /// The request log the flags ask for.
    pub fn log(&self) -> LogConfig {
        LogConfig {
            level: self.log_level,
            format: self.log_format,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use acql::server::config::{
        DEFAULT_BODY_TIMEOUT, DEFAULT_CACHE_BUDGET, DEFAULT_HEADER_TIMEOUT, DEFAULT_IDLE_TIMEOUT,
        DEFAULT_LISTEN, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_QUERIES,
    };

    use super::*;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }

    fn args(argv: &[&str]) -> ServeArgs {
        use clap::Parser;
        Cli::try_parse_from(std::iter::once("acql-serve").chain(argv.iter().copied()))
            .unwrap()
            .serve
    }

    #[test]
    fn defaults_are_loopback_and_open() {
        let (listen, config) = args(&["x.db"]).resolve().unwrap();
        assert_eq!(listen.addr.to_string(), DEFAULT_LISTEN);
        assert!(listen.tls.is_none());
        assert!(config.credentials.is_empty() && !config.refuse_plain_secret);
        assert_eq!(config.data_center, "us1");
        assert!(config.console.is_none());
        let log = args(&["x.db"]).log();
        assert_eq!(
            (log.level, log.format),
            (tracing::Level::INFO, LogFormat::Text)
        );
    }

    #[test]
    fn console_and_log_flags() {
        let a = args(&[
            "--demo",
            "--console-writes",
            "--log-format",
            "json",
            "--log-level",
            "debug",
        ]);
        let (_, config) = a.resolve().unwrap();
        assert!(config.console.is_some_and(|c| c.writes));
        assert_eq!(
            (a.log().level, a.log().format),
            (tracing::Level::DEBUG, LogFormat::Json)
        );
        let (_, config) = args(&["x.db", "--console"]).resolve().unwrap();
        assert!(config.console.is_some_and(|c| !c.writes));
        use clap::Parser;
        assert!(Cli::try_parse_from(["s", "x.db", "--log-format", "yaml"]).is_err());
        assert!(
            Cli::try_parse_from(["s", "x.db", "--demo"]).is_err(),
            "a file or the demo"
        );
    }

    #[test]
    fn flags_override_the_config_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("serve.json");
        std::fs::write(
            &file,
            r#"{"listen": "0.0.0.0:9000", "apiKey": "3_file", "dataCenter": "eu1",
                "credentials": [{"userKey": "F", "secret": "c2VjcmV0"}], "timestampWindowSeconds": 60}"#,
        )
        .unwrap();
        let path = file.to_str().unwrap();
        let (listen, config) = args(&["x.db", "--config", path]).resolve().unwrap();
        assert_eq!(listen.addr.to_string(), "0.0.0.0:9000");
        assert!(config.refuse_plain_secret, "plain HTTP on a public address");
        assert_eq!(
            (config.api_key.as_deref(), config.data_center.as_str()),
            (Some("3_file"), "eu1")
        );
        assert_eq!(config.timestamp_window, Duration::from_secs(60));
        assert!(config.credentials.contains_key("F"));
        let (listen, config) = args(&[
            "x.db",
            "--config",
            path,
            "--listen",
            "127.0.0.1:1",
            "--api-key",
            "3_flag",
            "--user-key",
            "A",
            "--secret",
            "c2VjcmV0",
            "--user-key",
            "B",
            "--secret",
            "c2VjcmV0Mg==",
        ])
        .resolve()
        .unwrap();
        assert_eq!(listen.addr.to_string(), "127.0.0.1:1");
        assert_eq!(config.api_key.as_deref(), Some("3_flag"));
        assert_eq!(config.credentials.len(), 3);
        assert!(!config.refuse_plain_secret);
    }

    #[test]
    fn bad_configurations_are_reported() {
        assert!(args(&["x.db", "--user-key", "A"]).resolve().is_err());
        assert!(
            args(&["x.db", "--user-key", "A", "--secret", "!!"])
                .resolve()
                .is_err()
        );
        assert!(
            args(&["x.db", "--config", "/nonexistent/acql.json"])
                .resolve()
                .is_err()
        );
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bad.json");
        std::fs::write(&file, r#"{"lisen": "127.0.0.1:1"}"#).unwrap();
        let err = args(&["x.db", "--config", file.to_str().unwrap()])
            .resolve()
            .unwrap_err();
        assert!(err.to_string().contains("lisen"), "{err}");
        use clap::Parser;
        assert!(
            Cli::try_parse_from(["s", "x.db", "--tls-cert", "c.pem"]).is_err(),
            "a cert needs a key"
        );
    }

    #[test]
    fn limits_have_defaults_and_come_from_file_and_flags() {
        let (_, config) = args(&["x.db"]).resolve().unwrap();
        assert_eq!(
            (config.max_queries, config.max_connections),
            (DEFAULT_MAX_QUERIES, DEFAULT_MAX_CONNECTIONS)
        );
        assert_eq!(
            (
                config.header_timeout,
                config.body_timeout,
                config.idle_timeout
            ),
            (
                DEFAULT_HEADER_TIMEOUT,
                DEFAULT_BODY_TIMEOUT,
                DEFAULT_IDLE_TIMEOUT
            )
        );
        assert_eq!(config.reader_limits().max_readers, DEFAULT_MAX_QUERIES);
        assert_eq!(config.reader_limits().cache_budget, DEFAULT_CACHE_BUDGET);
        assert!(config.cors_origins.is_empty());

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("serve.json");
        std::fs::write(
            &file,
            r#"{"maxConcurrentQueries": 3, "queueTimeoutSeconds": 2, "cacheBudgetMiB": 30,
                "readerIdleSeconds": 5, "writeTimeoutSeconds": 7, "maxConnections": 50,
                "headerTimeoutSeconds": 4, "bodyTimeoutSeconds": 6, "idleTimeoutSeconds": 8,
                "corsOrigins": ["https://App.example.com/"]}"#,
        )
        .unwrap();
        let path = file.to_str().unwrap();
        let (_, config) = args(&["x.db", "--config", path]).resolve().unwrap();
        assert_eq!(config.max_queries, 3);
        assert_eq!(config.queue_timeout, Duration::from_secs(2));
        assert_eq!(config.cache_budget, 30 << 20);
        assert_eq!(config.reader_idle_timeout, Duration::from_secs(5));
        assert_eq!(config.write_timeout, Duration::from_secs(7));
        assert_eq!(config.max_connections, 50);
        assert_eq!(
            (
                config.header_timeout,
                config.body_timeout,
                config.idle_timeout
            ),
            (
                Duration::from_secs(4),
                Duration::from_secs(6),
                Duration::from_secs(8)
            )
        );
        assert_eq!(config.cors_origins, ["https://app.example.com"]);

        let (_, config) = args(&[
            "x.db",
            "--config",
            path,
            "--max-queries",
            "5",
            "--max-connections",
            "9",
            "--header-timeout",
            "11",
            "--body-timeout",
            "12",
            "--idle-timeout",
            "13",
            "--cors-origin",
            "*",
            "--log-format",
            "json",
        ])
        .resolve()
        .unwrap();
        assert_eq!((config.max_queries, config.max_connections), (5, 9));
        assert_eq!(config.header_timeout, Duration::from_secs(11));
        assert_eq!(config.body_timeout, Duration::from_secs(12));
        assert_eq!(config.idle_timeout, Duration::from_secs(13));
        assert_eq!(config.cors_origins, ["*"]);
    }

    #[test]
    fn zero_limits_and_bad_origins_are_refused() {
        for argv in [
            &["x.db", "--max-queries", "0"][..],
            &["x.db", "--max-connections", "0"],
            &["x.db", "--header-timeout", "0"],
            &["x.db", "--idle-timeout", "100000"],
            &["x.db", "--cors-origin", "app.example.com"],
        ] {
            assert!(args(argv).resolve().is_err(), "{argv:?}");
        }
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("serve.json");
        std::fs::write(&file, r#"{"cacheBudgetMiB": 0}"#).unwrap();
        let err = args(&["x.db", "--config", file.to_str().unwrap()])
            .resolve()
            .unwrap_err();
        assert!(err.to_string().contains("cacheBudgetMiB"), "{err}");
    }
}
