//! Options `slowlab serve` and `slowlab proxy` share, because they share the server core: the
//! connection limits and timeouts, the rules file, TLS towards clients and the request log. Each
//! group is written once and flattened into both commands.

use std::fmt;
use std::path::PathBuf;

use clap::Args;
use slowlab_server::config::{
    BACKLOG, DRAIN_TIMEOUT, H2_MAX_STREAMS, HEADER_READ_TIMEOUT, IDLE_TIMEOUT, MAX_CONNECTIONS,
    MAX_HEADER_BYTES, MAX_HEADERS, MAX_RULES, MAX_RULES_FILE_BYTES, MAX_URI_BYTES, WRITE_TIMEOUT,
};
use slowlab_server::rules::RulesLimits;
use slowlab_server::{Config, ConfigError, Delay, LogFormat, Setting};

/// Connection limits and timeouts: how many clients, how big their request heads, how long each
/// step may take, and how long a drain lasts.
#[derive(Debug, Clone, Args)]
pub struct ConnectionArgs {
    /// Most connections served at once (1 to 10000000); more wait in the kernel's accept queue
    /// (their connect succeeds, their request is read when a connection closes). Default: no
    /// cap. Example: --max-connections 1000.
    #[arg(long, value_parser = within(&MAX_CONNECTIONS), value_name = "N")]
    pub max_connections: Option<usize>,
    /// Length of the kernel's accept queue (1 to 1048576, capped by net.core.somaxconn).
    /// Example: --backlog 8192.
    #[arg(long, default_value_t = BACKLOG.default, value_parser = within(&BACKLOG), value_name = "N")]
    pub backlog: u32,
    /// Longest request URI (path and query) accepted, in bytes (16 to 65534, the most hyper can
    /// hold); longer gets a JSON 414. Example: --max-uri-bytes 2048.
    #[arg(long, default_value_t = MAX_URI_BYTES.default, value_parser = within(&MAX_URI_BYTES), value_name = "BYTES")]
    pub max_uri_bytes: usize,
    /// Most bytes of request header names and values accepted (64 to 16777216, 16 MiB); more
    /// gets a JSON 431. Example: --max-header-bytes 4096.
    #[arg(long, default_value_t = MAX_HEADER_BYTES.default, value_parser = within(&MAX_HEADER_BYTES), value_name = "BYTES")]
    pub max_header_bytes: usize,
    /// Most request header lines accepted (1 to 10000); more gets a JSON 431.
    /// Example: --max-headers 50.
    #[arg(long, default_value_t = MAX_HEADERS.default, value_parser = within(&MAX_HEADERS), value_name = "N")]
    pub max_headers: usize,
    /// Most concurrent HTTP/2 streams per connection (1 to 1000000; hyper's default is 200).
    /// Example: --h2-max-streams 100000.
    #[arg(long, default_value_t = H2_MAX_STREAMS.default, value_parser = within(&H2_MAX_STREAMS), value_name = "N")]
    pub h2_max_streams: u32,
    /// How long a client may take to send a request's headers, from their first byte, before the
    /// connection is closed (slowloris defence; 0.001 to 86400 seconds). Waiting between requests
    /// counts against --idle-timeout instead. Example: --header-read-timeout 2.
    #[arg(long, default_value_t = HEADER_READ_TIMEOUT.default, value_parser = within(&HEADER_READ_TIMEOUT), value_name = "SECONDS")]
    pub header_read_timeout: Delay,
    /// Close a connection with nothing in flight and nothing received for this long (HTTP/1.1
    /// keep-alive and HTTP/2 alike; 0.001 to 86400 seconds). Example: --idle-timeout 5.
    #[arg(long, default_value_t = IDLE_TIMEOUT.default, value_parser = within(&IDLE_TIMEOUT), value_name = "SECONDS")]
    pub idle_timeout: Delay,
    /// Abandon a response write that made no progress for this long while bytes wait to be sent
    /// (the client does not read); drip pauses never count (0.001 to 86400 seconds).
    /// Example: --write-timeout 10.
    #[arg(long, default_value_t = WRITE_TIMEOUT.default, value_parser = within(&WRITE_TIMEOUT), value_name = "SECONDS")]
    pub write_timeout: Delay,
    /// On Ctrl-C or SIGTERM, how long to let requests in flight finish before cutting them off
    /// (0 to 86400 seconds). Example: --drain-timeout 30.
    #[arg(long, default_value_t = DRAIN_TIMEOUT.default, value_parser = within(&DRAIN_TIMEOUT), value_name = "SECONDS")]
    pub drain_timeout: Delay,
    /// Log one line per request on stderr (method, target, client, status, outcome, waited and
    /// total ms): `text` for people (coloured on a terminal unless NO_COLOR is set), `json` for
    /// log pipelines. SLOWLAB_LOG=slowlab_server=debug also turns the text log on.
    /// Example: --log-format json.
    #[arg(long, value_name = "text|json")]
    pub log_format: Option<LogFormat>,
}

impl ConnectionArgs {
    /// `config` with these limits and timeouts; the request log is set by the command, which
    /// knows whether tracing asks for it.
    pub fn apply(&self, config: &mut Config) {
        config.max_connections = self.max_connections;
        config.backlog = self.backlog;
        config.max_uri_bytes = self.max_uri_bytes;
        config.max_header_bytes = self.max_header_bytes;
        config.max_headers = self.max_headers;
        config.h2_max_streams = self.h2_max_streams;
        config.header_read_timeout = self.header_read_timeout.as_duration();
        config.idle_timeout = self.idle_timeout.as_duration();
        config.write_timeout = self.write_timeout.as_duration();
        config.drain_timeout = self.drain_timeout.as_duration();
    }
}

/// The rules file, the default rule, reloading, and the loader's limits.
#[derive(Debug, Clone, Args)]
pub struct RulesArgs {
    /// Rules for any path, from a TOML file: each `[[rule]]` matches a method and path and says how
    /// to wait, fail and answer (see docs/server.md; the proxy adds `when = "before" | "after"`,
    /// see docs/proxy.md). Checked at start-up (exit 2 naming the rule and field); SIGHUP reloads
    /// it, and a bad reload keeps the old rules. Example: --rules api.toml.
    #[arg(long, value_name = "FILE")]
    pub rules: Option<PathBuf>,
    /// The default rule, for every request no other rule takes: a delay and options in the URL's
    /// words. Replaces the file's `[default]`. Example: --default '0.2?jitter=0.1&mix=503:0.05'.
    #[arg(long, value_name = "SECONDS?OPTIONS")]
    pub default: Option<String>,
    /// Reload --rules when the file changes, as well as on SIGHUP: once its writes have settled
    /// (0.5 s unchanged), and an emptied file only if it stays empty for 2 s more.
    /// Example: --rules api.toml --watch.
    #[arg(long, requires = "rules")]
    pub watch: bool,
    /// Most `[[rule]]` tables a rules file may hold (1 to 10000000); more is refused naming the
    /// count. Example: --max-rules 1000.
    #[arg(long, default_value_t = MAX_RULES.default, value_parser = within(&MAX_RULES), value_name = "N")]
    pub max_rules: usize,
    /// Largest rules file read, checked before reading (1 to 4294967296 bytes).
    /// Example: --max-rules-file-bytes 1048576.
    #[arg(long, default_value_t = MAX_RULES_FILE_BYTES.default, value_parser = within(&MAX_RULES_FILE_BYTES), value_name = "BYTES")]
    pub max_rules_file_bytes: u64,
    /// Let a rule's `body_file` be an absolute path or lead out of the rules file's folder (with
    /// `..` or a link); without it such a path is refused. Example: --rules-allow-any-path.
    #[arg(long, requires = "rules")]
    pub rules_allow_any_path: bool,
}

impl RulesArgs {
    /// The loader's limits, with `max_body_bytes` for inline bodies and body files.
    pub fn limits(&self, max_body_bytes: u64) -> RulesLimits {
        RulesLimits {
            max_rules: self.max_rules,
            max_file_bytes: self.max_rules_file_bytes,
            max_body_bytes,
            allow_any_path: self.rules_allow_any_path,
        }
    }
}

/// TLS towards clients.
#[derive(Debug, Clone, Args)]
pub struct TlsArgs {
    /// Speak TLS on the port, with a certificate made at start-up for localhost and the listen
    /// address (its SHA-256 fingerprint is printed). The port then speaks TLS only (HTTP/1.1 and
    /// h2 by ALPN). Example: --tls-self-signed, then curl -k https://127.0.0.1:8000/1.
    #[arg(long, conflicts_with_all = ["tls_cert", "tls_key"])]
    pub tls_self_signed: bool,
    /// Speak TLS on the port with this PEM certificate chain (with --tls-key). The port then
    /// speaks TLS only. Example: --tls-cert cert.pem --tls-key key.pem.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert. Example: --tls-key key.pem.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

impl TlsArgs {
    /// Whether any TLS flag was given.
    pub fn any(&self) -> bool {
        self.tls_self_signed || self.tls_cert.is_some() || self.tls_key.is_some()
    }
}

/// The value parser of a numeric flag: parses its text and checks it against the setting's range.
pub(super) fn within<T>(
    setting: &'static Setting<T>,
) -> impl Fn(&str) -> Result<T, ConfigError> + Clone + Send + Sync + 'static
where
    T: Copy + PartialOrd + fmt::Display + std::str::FromStr + Send + Sync + 'static,
{
    move |text: &str| setting.parse(text.trim())
}
