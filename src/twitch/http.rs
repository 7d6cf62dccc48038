//! The one blocking HTTP agent the process shares for Twitch's APIs (Helix and OAuth):
//! TLS through the process's one TLS context (`SharedTls`, also used by chat), timeouts,
//! pooled connections, a resolver cache; and how a failed call is described without echoing
//! what it sent. Does I/O (DNS, sockets).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use openssl::ssl::SslStream;
use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{
    Buffers, ConnectProxyConnector, ConnectionDetails, Connector, Either, LazyBuffers, NextTimeout,
    TcpConnector, Transport, TransportAdapter,
};
use ureq::Agent;

use crate::base::sync::lock;
use crate::twitch::tls::{TlsContext, TlsError};

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

/// The process's one TLS context (`twitch::tls`: the system's trust store, honouring
/// `SSL_CERT_FILE` and `SSL_CERT_DIR`), built on first use and shared by chat and HTTPS.
/// Cloning shares it.
#[derive(Clone, Default)]
pub struct SharedTls {
    context: Arc<OnceLock<TlsContext>>,
}

impl SharedTls {
    /// The context, built now if this is the first use. A failure is not kept: the next
    /// use tries again.
    pub fn get(&self) -> Result<TlsContext, TlsError> {
        if let Some(context) = self.context.get() {
            return Ok(context.clone());
        }
        let built = TlsContext::system()?;
        Ok(self.context.get_or_init(|| built).clone())
    }
}

/// Builds the one HTTP agent the process shares: TLS through `tls`, explicit timeouts,
/// pooled connections kept warm, a resolver cache, and status codes returned as responses
/// rather than errors so that each call can interpret them. `call_timeout` bounds a whole
/// call, connect included. Proxies from the environment (`HTTPS_PROXY` …) work as ureq's
/// default connector does them.
pub fn new_agent(call_timeout: Duration, tls: &SharedTls) -> Agent {
    let config = Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(HTTP_CONNECT_TIMEOUT.min(call_timeout)))
        .timeout_global(Some(call_timeout))
        .max_idle_age(MAX_IDLE_AGE)
        .max_idle_connections_per_host(IDLE_CONNECTIONS_PER_HOST)
        .input_buffer_size(HTTP_BUFFER_SIZE)
        .output_buffer_size(HTTP_BUFFER_SIZE)
        .user_agent(concat!("twitch-colorchanger/", env!("CARGO_PKG_VERSION")))
        .build();
    let connector =
        ().chain(ConnectProxyConnector::default())
            .chain(TcpConnector::default())
            .chain(SharedTlsConnector { tls: tls.clone() });
    Agent::with_parts(config, connector, CachingResolver::default())
}

/// Wraps `https` connections in TLS with the shared context (ureq's own TLS connectors
/// would build and keep a second one).
#[derive(Debug)]
struct SharedTlsConnector {
    tls: SharedTls,
}

impl std::fmt::Debug for SharedTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedTls").finish_non_exhaustive()
    }
}

impl<In: Transport> Connector<In> for SharedTlsConnector {
    type Out = Either<In, TlsTransport>;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        let Some(transport) = chained else {
            return Ok(None);
        };
        if !details.needs_tls() || transport.is_tls() {
            return Ok(Some(Either::A(transport)));
        }
        let host = details
            .uri
            .host()
            .unwrap_or_default()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let mut adapter = TransportAdapter::new(transport.boxed(), details.current_time.clone());
        adapter.set_timeout(details.timeout);
        let tls = self.tls.get().map_err(io_error)?;
        let stream = tls.connect(&host, adapter).map_err(io_error)?;
        let buffers = LazyBuffers::new(
            details.config.input_buffer_size(),
            details.config.output_buffer_size(),
        );
        Ok(Some(Either::B(TlsTransport { buffers, stream })))
    }
}

fn io_error(error: TlsError) -> ureq::Error {
    ureq::Error::Io(std::io::Error::other(error))
}

/// An HTTPS connection: TLS over the chained transport.
struct TlsTransport {
    buffers: LazyBuffers,
    stream: SslStream<TransportAdapter>,
}

impl std::fmt::Debug for TlsTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsTransport").finish_non_exhaustive()
    }
}

impl Transport for TlsTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        self.stream.get_mut().set_timeout(timeout);
        let output = &self.buffers.output()[..amount];
        self.stream.write_all(output)?;
        Ok(())
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        self.stream.get_mut().set_timeout(timeout);
        let input = self.buffers.input_append_buf();
        let amount = self.stream.read(input)?;
        self.buffers.input_appended(amount);
        Ok(amount > 0)
    }

    fn is_open(&mut self) -> bool {
        self.stream.get_mut().get_mut().is_open()
    }

    fn is_tls(&self) -> bool {
        true
    }
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
