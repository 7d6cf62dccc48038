//! The daemon's TLS client against the fake Twitch's TLS server on loopback: roots looked
//! up in a hashed directory, the server's name checked, an unknown issuer refused, and the
//! bundle taken as well when the directory lacks the issuer. Does I/O (loopback, temp files).

use std::net::TcpStream;
use std::path::{Path, PathBuf};

use fake_twitch::FakeTwitch;
use twitch_colorchanger::twitch::tls::{TlsContext, Trust};

/// The port of the fake's TLS endpoint for Helix and OAuth.
fn port(twitch: &FakeTwitch) -> u16 {
    let url = twitch.api_url();
    let authority = url
        .trim_start_matches("https://")
        .split('/')
        .next()
        .unwrap();
    authority.rsplit(':').next().unwrap().parse().unwrap()
}

/// A hashed certificate directory holding `twitch`'s CA under its subject hash.
fn hashed_dir(root: &Path, name: &str, twitch: &FakeTwitch) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let pem = twitch.ca_cert_pem();
    let hash = openssl::x509::X509::from_pem(pem.as_bytes())
        .unwrap()
        .subject_name_hash();
    std::fs::write(dir.join(format!("{hash:08x}.0")), pem).unwrap();
    dir
}

fn connect(context: &TlsContext, host: &str, twitch: &FakeTwitch) -> Result<(), String> {
    let tcp = TcpStream::connect(("127.0.0.1", port(twitch))).unwrap();
    context
        .connect(host, tcp)
        .map(drop)
        .map_err(|error| error.to_string())
}

#[test]
fn roots_come_from_the_hashed_directory_and_the_name_is_checked() {
    let twitch = FakeTwitch::start_tls();
    let other = FakeTwitch::start_tls();
    let root = tempfile::tempdir().unwrap();
    let trusting = TlsContext::with_trust(Trust {
        dirs: vec![hashed_dir(root.path(), "certs", &twitch)],
        ..Trust::default()
    })
    .unwrap();
    // The certificate names 127.0.0.1 and localhost.
    assert_eq!(connect(&trusting, "127.0.0.1", &twitch), Ok(()));
    assert_eq!(connect(&trusting, "localhost", &twitch), Ok(()));
    let wrong_name = connect(&trusting, "irc-ws.chat.twitch.tv", &twitch).unwrap_err();
    assert!(wrong_name.contains("not trusted"), "{wrong_name}");
    assert!(wrong_name.contains("hostname mismatch"), "{wrong_name}");

    // A directory with another CA only: the server is refused.
    let other_ca = TlsContext::with_trust(Trust {
        dirs: vec![hashed_dir(root.path(), "other", &other)],
        ..Trust::default()
    })
    .unwrap();
    let refused = connect(&other_ca, "127.0.0.1", &twitch).unwrap_err();
    assert!(refused.contains("not trusted"), "{refused}");

    // Nothing trusted at all: refused too.
    let nothing = TlsContext::with_trust(Trust::default()).unwrap();
    assert!(connect(&nothing, "127.0.0.1", &twitch).is_err());
}

#[test]
fn a_directory_without_the_issuer_makes_the_next_connection_trust_the_bundle() {
    let twitch = FakeTwitch::start_tls();
    let other = FakeTwitch::start_tls();
    let root = tempfile::tempdir().unwrap();
    let bundle = root.path().join("ca-certificates.crt");
    std::fs::write(
        &bundle,
        format!("{}{}", other.ca_cert_pem(), twitch.ca_cert_pem()),
    )
    .unwrap();
    let context = TlsContext::with_trust(Trust {
        dirs: vec![hashed_dir(root.path(), "certs", &other)],
        fallback_file: Some(bundle),
        ..Trust::default()
    })
    .unwrap();
    let first = connect(&context, "127.0.0.1", &twitch).unwrap_err();
    assert!(first.contains("not trusted"), "{first}");
    assert_eq!(connect(&context, "127.0.0.1", &twitch), Ok(()));
    // The directory still serves what it knew.
    assert_eq!(connect(&context, "127.0.0.1", &other), Ok(()));
}

#[test]
fn a_wrong_name_does_not_load_the_bundle() {
    let twitch = FakeTwitch::start_tls();
    let other = FakeTwitch::start_tls();
    let root = tempfile::tempdir().unwrap();
    let bundle = root.path().join("ca-certificates.crt");
    std::fs::write(&bundle, other.ca_cert_pem()).unwrap();
    let context = TlsContext::with_trust(Trust {
        dirs: vec![hashed_dir(root.path(), "certs", &twitch)],
        fallback_file: Some(bundle),
        ..Trust::default()
    })
    .unwrap();
    assert!(connect(&context, "twitch.tv", &twitch).is_err());
    // Had the wrong name loaded the bundle, `other` would be trusted now. It is not: only
    // its unknown issuer makes the next connection take the bundle.
    assert!(connect(&context, "127.0.0.1", &other).is_err());
    assert_eq!(connect(&context, "127.0.0.1", &other), Ok(()));
}

/// A frame longer than one read of the chat socket, in one TLS record: the rest of it is
/// already decrypted inside OpenSSL, so reading on must not wait for the socket (which has
/// nothing more to say).
#[test]
fn a_frame_longer_than_one_read_arrives_whole_without_more_traffic() {
    use std::time::{Duration, Instant};
    use twitch_colorchanger::base::stop::StopSignal;
    use twitch_colorchanger::chat::net::socket::{FrameSocket, Incoming};

    let twitch = FakeTwitch::start_tls();
    let alice = fake_twitch::Account::new("alice", "1001");
    twitch.add_user(alice.clone());
    let root = tempfile::tempdir().unwrap();
    let context = TlsContext::with_trust(Trust {
        dirs: vec![hashed_dir(root.path(), "certs", &twitch)],
        ..Trust::default()
    })
    .unwrap();
    let stop = StopSignal::new();
    let mut socket = FrameSocket::connect(&twitch.irc_url(), Some(&context), &stop).unwrap();
    socket
        .send(format!("PASS oauth:{}", alice.access_token))
        .unwrap();
    socket.send("NICK alice".to_string()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut read_until = |wanted: &dyn Fn(&str) -> bool| loop {
        assert!(Instant::now() < deadline, "the frame did not arrive");
        match socket.read(Duration::from_secs(1)).unwrap() {
            Incoming::Text(text) if wanted(&text) => return text,
            _ => {}
        }
    };
    read_until(&|text| text.contains(" 001 alice "));
    assert!(twitch.wait_n_logins("alice", 1, Duration::from_secs(30)));
    // 12 KB: one TLS record (up to 16 KiB), three reads of the chat socket (4 KiB each).
    let long = format!(
        ":bob!bob@bob.tmi.twitch.tv PRIVMSG #alice :{}",
        "a".repeat(12_000)
    );
    twitch.send_line("alice", &long);
    let text = read_until(&|text| text.contains("PRIVMSG #alice"));
    assert_eq!(text.trim_end(), long);
}
