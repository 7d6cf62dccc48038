//! The one blocking HTTP agent the process shares for Twitch's APIs (Helix and OAuth):
//! TLS, timeouts, pooled connections, a resolver cache; and how a failed call is described
//! without echoing what it sent. Does I/O (DNS, sockets).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ureq::config::Config;
use ureq::http::Uri;
use ureq::tls::{RootCerts, TlsConfig, TlsProvider};
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{DefaultConnector, NextTimeout};
use ureq::Agent;

use crate::base::sync::lock;

/// Time allowed to open a connection to Twitch.
pub const HTTP_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a resolved address of Twitch's API hosts is reused.
pub const RESOLVE_CACHE_TTL: Duration = Duration::from_secs(300);
/// How long an idle connection to Helix or OAuth is kept for the next call. Longer than
/// ureq's 15 s default, so the first change after a quiet minute does not pay a new TLS
/// handshake (a stale connection fails as a transport error, which is retried).
pub const MAX_IDLE_AGE: Duration = Duration::from_secs(120);
/// Idle connections kept per host: one per worker.
pub const IDLE_CONNECTIONS_PER_HOST: usize = 4;
/// Buffer size per connection and direction; Helix and OAuth answers are under 1 KiB
/// (ureq's default is 128 KiB).
pub const HTTP_BUFFER_SIZE: usize = 16 * 1024;

/// Builds the one HTTP agent the process shares: native-tls with the system's trust store
/// (OpenSSL honours `SSL_CERT_FILE` and `SSL_CERT_DIR`), explicit timeouts, pooled
/// connections kept warm, a resolver cache, and status codes returned as responses rather
/// than errors so that each call can interpret them. `call_timeout` bounds a whole call,
/// connect included.
pub fn new_agent(call_timeout: Duration) -> Agent {
    let tls = TlsConfig::builder()
        .provider(TlsProvider::NativeTls)
        .root_certs(RootCerts::PlatformVerifier)
        .build();
    let config = Agent::config_builder()
        .tls_config(tls)
        .http_status_as_error(false)
        .timeout_connect(Some(HTTP_CONNECT_TIMEOUT.min(call_timeout)))
        .timeout_global(Some(call_timeout))
        .max_idle_age(MAX_IDLE_AGE)
        .max_idle_connections_per_host(IDLE_CONNECTIONS_PER_HOST)
        .input_buffer_size(HTTP_BUFFER_SIZE)
        .output_buffer_size(HTTP_BUFFER_SIZE)
        .user_agent(concat!("twitch-colorchanger/", env!("CARGO_PKG_VERSION")))
        .build();
    Agent::with_parts(config, DefaultConnector::new(), CachingResolver::default())
}

/// Remembers resolved addresses per host and port for [`RESOLVE_CACHE_TTL`].
///
/// ureq resolves the host of every request before it looks in its connection pool, and with
/// a timeout set it does so on a new thread. Without a cache every color change would start
/// a thread and look `api.twitch.tv` up again; with it, only a miss does.
#[derive(Debug, Default)]
pub struct CachingResolver {
    inner: DefaultResolver,
    cache: Mutex<HashMap<String, (Instant, ResolvedSocketAddrs)>>,
}

impl Resolver for CachingResolver {
    fn resolve(
        &self,
        uri: &Uri,
        config: &Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let key = uri
            .authority()
            .map(|authority| format!("{}|{authority}", uri.scheme_str().unwrap_or("")));
        let now = Instant::now();
        if let Some(key) = &key {
            let cache = lock(&self.cache);
            if let Some((resolved_at, addresses)) = cache.get(key) {
                if now.duration_since(*resolved_at) < RESOLVE_CACHE_TTL {
                    return Ok(addresses.clone());
                }
            }
        }
        let addresses = self.inner.resolve(uri, config, timeout)?;
        if let Some(key) = key {
            lock(&self.cache).insert(key, (now, addresses.clone()));
        }
        Ok(addresses)
    }
}

/// The `message` of a Twitch error body, or a short excerpt of whatever came back.
pub fn error_message(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|value| value.get("message")?.as_str().map(str::to_string))
        .unwrap_or_else(|| {
            body.chars()
                .take(200)
                .collect::<String>()
                .trim()
                .to_string()
        })
}

/// Describes a transport failure without echoing request headers (which hold the token).
pub fn describe_transport_error(error: &ureq::Error) -> String {
    match error {
        ureq::Error::Timeout(which) => format!("timed out ({which})"),
        ureq::Error::Io(io) => io.to_string(),
        other => other.to_string(),
    }
}
