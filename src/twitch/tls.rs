//! The process's TLS client (OpenSSL): which CA certificates it trusts and how it opens a
//! verified TLS connection, for chat and HTTPS alike. Does I/O (looks at the trust store on
//! disk, handshakes).
//!
//! Trust is looked up in the system's hashed certificate directory (`/etc/ssl/certs/
//! <hash>.0`, kept by `update-ca-certificates` and `c_rehash`) when it has one: OpenSSL then
//! reads the one root a handshake needs, when it needs it. Loading the CA bundle file instead
//! parses all ~150 roots at start and keeps them: about 1.5 MiB of the daemon's private
//! memory (measured with examples/bench, one TLS user: 3.3 → 1.7 MiB). The bundle file is the
//! fallback where no hashed directory exists (a FROM scratch image, many NAS systems), and
//! is taken as well if the directory turns out not to know an issuer.

use std::fmt;
use std::io::{Read, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use log::{info, warn};
use openssl::ssl::{
    HandshakeError, SslContext, SslContextBuilder, SslMethod, SslMode, SslOptions, SslStream,
    SslVerifyMode, SslVersion,
};
use openssl::x509::store::{X509Lookup, X509StoreBuilder};
use openssl::x509::verify::X509CheckFlags;
use openssl::x509::X509VerifyResult;

/// Hashed certificate directories, in the order they are tried.
const SYSTEM_CERT_DIRS: &[&str] = &["/etc/ssl/certs", "/etc/pki/tls/certs", "/opt/etc/ssl/certs"];

/// CA bundle files, in the order they are tried: Debian, Ubuntu, Alpine's package, Gentoo
/// and the NAS systems built on them; RHEL and CentOS 7+; Fedora and RHEL 6; openSUSE;
/// OpenELEC; Alpine; Entware on NAS devices.
const SYSTEM_CA_FILES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/tls/cacert.pem",
    "/etc/ssl/cert.pem",
    "/opt/etc/ssl/certs/ca-certificates.crt",
];

/// Cipher suites for TLS 1.2 (TLS 1.3 has only strong ones): OpenSSL's defaults without the
/// unauthenticated, null and long-broken ones.
const TLS12_CIPHERS: &str =
    "DEFAULT:!aNULL:!eNULL:!MD5:!3DES:!DES:!RC4:!IDEA:!SEED:!aDSS:!SRP:!PSK";

/// OpenSSL's verify results that mean "no trusted issuer found": X509_V_ERR_UNABLE_TO_GET_
/// ISSUER_CERT, _SELF_SIGNED_CERT_IN_CHAIN, _UNABLE_TO_GET_ISSUER_CERT_LOCALLY. Only these
/// make the bundle worth loading; a wrong name or an expired certificate do not.
const ISSUER_UNKNOWN: [i32; 3] = [2, 19, 20];

/// Where trust comes from: what was found on disk and in the environment, before choosing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustFound {
    /// `SSL_CERT_FILE`, when it names a file that exists.
    pub env_file: Option<PathBuf>,
    /// `SSL_CERT_DIR` (colon-separated), the directories that exist.
    pub env_dirs: Vec<PathBuf>,
    /// System directories holding hashed certificate names.
    pub hashed_dirs: Vec<PathBuf>,
    /// The first system CA bundle that exists.
    pub system_file: Option<PathBuf>,
}

/// What the TLS context trusts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Trust {
    /// Bundles loaded whole at start.
    pub files: Vec<PathBuf>,
    /// Hashed directories, read a certificate at a time during handshakes.
    pub dirs: Vec<PathBuf>,
    /// A bundle to add when the directories turn out not to know an issuer.
    pub fallback_file: Option<PathBuf>,
}

/// Chooses what to trust (pure). `SSL_CERT_FILE` and `SSL_CERT_DIR` mean what they mean to
/// OpenSSL: a file set is loaded, directories set replace the system's. Without a file set,
/// the system's hashed directory is enough; the system bundle is loaded only when there is
/// no directory, and kept as a fallback otherwise.
pub fn choose_trust(found: &TrustFound) -> Trust {
    let dirs = if found.env_dirs.is_empty() {
        found.hashed_dirs.clone()
    } else {
        found.env_dirs.clone()
    };
    match (&found.env_file, dirs.is_empty()) {
        (Some(file), _) => Trust {
            files: vec![file.clone()],
            dirs,
            fallback_file: None,
        },
        (None, true) => Trust {
            files: found.system_file.iter().cloned().collect(),
            dirs,
            fallback_file: None,
        },
        (None, false) => Trust {
            files: Vec::new(),
            dirs,
            fallback_file: found.system_file.clone(),
        },
    }
}

/// Looks at the environment and the system's trust store (reads directories, no files).
pub fn find_trust() -> TrustFound {
    let existing_file = |path: PathBuf| path.is_file().then_some(path);
    TrustFound {
        env_file: std::env::var_os("SSL_CERT_FILE")
            .filter(|value| !value.is_empty())
            .map(PathBuf::from)
            .and_then(existing_file),
        env_dirs: std::env::var_os("SSL_CERT_DIR")
            .map(|value| {
                std::env::split_paths(&value)
                    .filter(|dir| dir.is_dir())
                    .collect()
            })
            .unwrap_or_default(),
        hashed_dirs: SYSTEM_CERT_DIRS
            .iter()
            .map(PathBuf::from)
            .filter(|dir| has_hashed_names(dir))
            .collect(),
        system_file: SYSTEM_CA_FILES
            .iter()
            .map(PathBuf::from)
            .find_map(existing_file),
    }
}

/// Whether `dir` holds at least one certificate under its subject hash (`1a2b3c4d.0`).
fn has_hashed_names(dir: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries
        .filter_map(Result::ok)
        .any(|entry| is_hashed_name(&entry.file_name().to_string_lossy()))
}

/// `8 hex digits . digits`, as `c_rehash` and `update-ca-certificates` name the links.
fn is_hashed_name(name: &str) -> bool {
    match name.split_once('.') {
        Some((hash, index)) => {
            hash.len() == 8
                && hash.bytes().all(|byte| byte.is_ascii_hexdigit())
                && !index.is_empty()
                && index.bytes().all(|byte| byte.is_ascii_digit())
        }
        None => false,
    }
}

/// Why a TLS connection failed, for the log.
#[derive(Debug)]
pub struct TlsError(String);

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TlsError {}

impl From<openssl::error::ErrorStack> for TlsError {
    fn from(error: openssl::error::ErrorStack) -> Self {
        TlsError(format!("TLS setup failed: {error}"))
    }
}

/// The process's TLS client context. Cloning shares it.
#[derive(Clone)]
pub struct TlsContext {
    inner: Arc<Inner>,
}

struct Inner {
    context: SslContext,
    /// The bundle to trust too, and the context that does, once a handshake needed it.
    fallback_file: Option<PathBuf>,
    with_fallback: OnceLock<SslContext>,
    trust: Trust,
}

impl fmt::Debug for TlsContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsContext")
            .field("trust", &self.inner.trust)
            .finish_non_exhaustive()
    }
}

impl TlsContext {
    /// A context trusting what the system and the environment name (`find_trust`).
    pub fn system() -> Result<TlsContext, TlsError> {
        TlsContext::with_trust(choose_trust(&find_trust()))
    }

    /// A context trusting `trust`.
    pub fn with_trust(trust: Trust) -> Result<TlsContext, TlsError> {
        if trust.files.is_empty() && trust.dirs.is_empty() {
            warn!(
                "no CA certificates found (looked for {} and a hashed /etc/ssl/certs); \
                 every TLS connection will fail: point SSL_CERT_FILE at a CA bundle",
                SYSTEM_CA_FILES.join(", ")
            );
        }
        let context = build_context(&trust.files, &trust.dirs)?;
        Ok(TlsContext {
            inner: Arc::new(Inner {
                context,
                fallback_file: trust.fallback_file.clone(),
                with_fallback: OnceLock::new(),
                trust,
            }),
        })
    }

    /// Opens TLS over `stream` to `host` (a name or an IP address): SNI for names, the
    /// certificate verified against the trust store and against `host`.
    pub fn connect<S: Read + Write>(
        &self,
        host: &str,
        stream: S,
    ) -> Result<SslStream<S>, TlsError> {
        let context = self
            .inner
            .with_fallback
            .get()
            .unwrap_or(&self.inner.context);
        let mut ssl = openssl::ssl::Ssl::new(context)?;
        ssl.set_verify(SslVerifyMode::PEER);
        let ip = host.parse::<IpAddr>().ok();
        if ip.is_none() {
            // SNI: only for names, never for addresses.
            ssl.set_hostname(host)?;
        }
        let param = ssl.param_mut();
        param.set_hostflags(X509CheckFlags::NO_PARTIAL_WILDCARDS);
        match ip {
            Some(ip) => param.set_ip(ip)?,
            None => param.set_host(host)?,
        }
        match ssl.connect(stream) {
            Ok(stream) => Ok(stream),
            Err(HandshakeError::Failure(mid)) => {
                let verify = mid.ssl().verify_result();
                if verify != X509VerifyResult::OK {
                    if ISSUER_UNKNOWN.contains(&verify.as_raw()) {
                        self.trust_fallback_after(verify);
                    }
                    return Err(TlsError(format!(
                        "TLS handshake with {host}: certificate not trusted ({})",
                        verify.error_string()
                    )));
                }
                Err(TlsError(format!(
                    "TLS handshake with {host}: {}",
                    mid.error()
                )))
            }
            Err(HandshakeError::SetupFailure(error)) => Err(error.into()),
            // The streams we hand in block, so a handshake never stops half way.
            Err(HandshakeError::WouldBlock(_)) => {
                Err(TlsError(format!("TLS handshake with {host} interrupted")))
            }
        }
    }

    /// After a verification failure under hashed-directory trust: from the next connection
    /// on, the system bundle is trusted too (loaded once), in case the directory lacks an
    /// issuer the bundle has.
    fn trust_fallback_after(&self, verify: X509VerifyResult) {
        let Some(file) = &self.inner.fallback_file else {
            return;
        };
        if self.inner.with_fallback.get().is_some() {
            return;
        }
        match build_context(std::slice::from_ref(file), &self.inner.trust.dirs) {
            Ok(context) => {
                if self.inner.with_fallback.set(context).is_ok() {
                    info!(
                        "TLS: the hashed certificate directory did not verify a server ({}); \
                         trusting {} as well from now on",
                        verify.error_string(),
                        file.display()
                    );
                }
            }
            Err(error) => warn!("TLS: cannot load {}: {error}", file.display()),
        }
    }
}

/// A client context: TLS 1.2 or newer, peer verification, small buffers when idle, trust
/// from `files` (loaded now) and `dirs` (looked up during handshakes).
fn build_context(files: &[PathBuf], dirs: &[PathBuf]) -> Result<SslContext, TlsError> {
    let mut builder = SslContextBuilder::new(SslMethod::tls_client())?;
    builder.set_min_proto_version(Some(SslVersion::TLS1_2))?;
    builder.set_options(SslOptions::NO_COMPRESSION);
    builder.set_cipher_list(TLS12_CIPHERS)?;
    // RELEASE_BUFFERS: an idle connection (a chat socket waits minutes for a line) gives
    // its record buffers back instead of holding about 34 KiB.
    builder.set_mode(
        SslMode::AUTO_RETRY
            | SslMode::ACCEPT_MOVING_WRITE_BUFFER
            | SslMode::ENABLE_PARTIAL_WRITE
            | SslMode::RELEASE_BUFFERS,
    );
    builder.set_verify(SslVerifyMode::PEER);
    let mut store = X509StoreBuilder::new()?;
    for file in files {
        let lookup = store.add_lookup(X509Lookup::file())?;
        if let Err(error) = lookup.load_cert_file(file, openssl::ssl::SslFiletype::PEM) {
            warn!("TLS: cannot load CA bundle {}: {error}", file.display());
        }
    }
    for dir in dirs {
        let lookup = store.add_lookup(X509Lookup::hash_dir())?;
        let Some(dir) = dir.to_str() else {
            warn!("TLS: certificate directory {} is not UTF-8", dir.display());
            continue;
        };
        lookup.add_dir(dir, openssl::ssl::SslFiletype::PEM)?;
    }
    builder.set_cert_store(store.build());
    Ok(builder.build())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(text: &str) -> PathBuf {
        PathBuf::from(text)
    }

    #[test]
    fn trust_is_chosen_as_openssl_reads_the_environment_but_prefers_the_hashed_directory() {
        let system_dir = || vec![path("/etc/ssl/certs")];
        let system_file = || Some(path("/etc/ssl/certs/ca-certificates.crt"));
        let cases = [
            (
                "a normal Debian system: the directory, the bundle as fallback",
                TrustFound {
                    hashed_dirs: system_dir(),
                    system_file: system_file(),
                    ..TrustFound::default()
                },
                Trust {
                    files: vec![],
                    dirs: system_dir(),
                    fallback_file: system_file(),
                },
            ),
            (
                "no hashed directory (FROM scratch, many NAS): the bundle",
                TrustFound {
                    system_file: system_file(),
                    ..TrustFound::default()
                },
                Trust {
                    files: vec![path("/etc/ssl/certs/ca-certificates.crt")],
                    dirs: vec![],
                    fallback_file: None,
                },
            ),
            (
                "SSL_CERT_FILE is loaded, the system directory kept beside it",
                TrustFound {
                    env_file: Some(path("/nas/ca.pem")),
                    hashed_dirs: system_dir(),
                    system_file: system_file(),
                    ..TrustFound::default()
                },
                Trust {
                    files: vec![path("/nas/ca.pem")],
                    dirs: system_dir(),
                    fallback_file: None,
                },
            ),
            (
                "SSL_CERT_DIR replaces the system directory; the bundle stays a fallback",
                TrustFound {
                    env_dirs: vec![path("/nas/certs")],
                    hashed_dirs: system_dir(),
                    system_file: system_file(),
                    ..TrustFound::default()
                },
                Trust {
                    files: vec![],
                    dirs: vec![path("/nas/certs")],
                    fallback_file: system_file(),
                },
            ),
            (
                "SSL_CERT_DIR alone, no system store",
                TrustFound {
                    env_dirs: vec![path("/nas/certs")],
                    ..TrustFound::default()
                },
                Trust {
                    files: vec![],
                    dirs: vec![path("/nas/certs")],
                    fallback_file: None,
                },
            ),
            (
                "nothing anywhere: nothing trusted",
                TrustFound::default(),
                Trust::default(),
            ),
        ];
        for (what, found, expected) in cases {
            assert_eq!(choose_trust(&found), expected, "{what}");
        }
    }

    #[test]
    fn hashed_names_are_recognised() {
        let cases = [
            ("1a2b3c4d.0", true),
            ("ABCDEF01.12", true),
            ("1a2b3c4d.r0", false),
            ("1a2b3c4d.", false),
            ("1a2b3c4.0", false),
            ("ca-certificates.crt", false),
            ("ISRG_Root_X1.pem", false),
            ("1a2b3c4g.0", false),
        ];
        for (name, expected) in cases {
            assert_eq!(is_hashed_name(name), expected, "{name}");
        }
    }
}
