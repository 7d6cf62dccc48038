//! Whether a `session_reconnect`'s `reconnect_url` may be followed. The URL comes from the
//! network: followed blindly, a plain `ws://` address or another host would receive the
//! session and could feed the daemon "own messages" (and so `ccd`/`ccc`). Pure: the
//! configured EventSub URL and the offered one in, a verdict out.
//!
//! Followed: the configured scheme and host and port exactly (in tests `ws://127.0.0.1:port`),
//! or, when the configured host is Twitch's (`twitch.tv` or under it), `wss://` on any host
//! under `twitch.tv` at port 443. The default `wss://eventsub.wss.twitch.tv/ws` therefore
//! follows only `wss://*.twitch.tv`.

/// The domain Twitch's EventSub hosts live under.
pub const TWITCH_DOMAIN: &str = "twitch.tv";

/// Why a `reconnect_url` is not followed, for the log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusedReconnect {
    /// Not a `ws://` or `wss://` URL with a host.
    Unreadable,
    /// Another scheme than the configured one (`ws://` where `wss://` is configured).
    OtherScheme,
    /// A host or port that is neither the configured one nor Twitch's.
    OtherHost,
}

impl std::fmt::Display for RefusedReconnect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RefusedReconnect::Unreadable => "is no WebSocket URL",
            RefusedReconnect::OtherScheme => "uses another scheme than the configured URL",
            RefusedReconnect::OtherHost => "names a host that is not Twitch's EventSub host",
        })
    }
}

/// Scheme (`wss` or not), lowercase host and effective port of a WebSocket URL. Strict on
/// purpose: a user part (`user@`), an IPv6 literal or any character a host name or IPv4
/// address does not hold makes it unreadable, so no URL reads one way here and another way
/// in the dialer.
fn parts(url: &str) -> Option<(bool, String, u16)> {
    let (scheme, rest) = url.split_once("://")?;
    let secure = match scheme.to_ascii_lowercase().as_str() {
        "wss" => true,
        "ws" => false,
        _ => return None,
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let (host, port) = match authority.split_once(':') {
        Some((host, port)) => (host, Some(port.parse::<u16>().ok()?)),
        None => (authority, None),
    };
    let host_chars = |c: char| c.is_ascii_alphanumeric() || c == '.' || c == '-';
    if host.is_empty() || !host.chars().all(host_chars) {
        return None;
    }
    let port = port.unwrap_or(if secure { 443 } else { 80 });
    Some((secure, host.to_ascii_lowercase(), port))
}

fn is_twitch_host(host: &str) -> bool {
    host == TWITCH_DOMAIN
        || host
            .strip_suffix(TWITCH_DOMAIN)
            .is_some_and(|prefix| prefix.ends_with('.'))
}

/// `Ok` when `offered` may be connected to in place of the session on `configured`.
pub fn check_reconnect_url(configured: &str, offered: &str) -> Result<(), RefusedReconnect> {
    let (offered_secure, offered_host, offered_port) =
        parts(offered).ok_or(RefusedReconnect::Unreadable)?;
    let Some((secure, host, port)) = parts(configured) else {
        return Err(RefusedReconnect::OtherHost);
    };
    if offered_secure != secure {
        return Err(RefusedReconnect::OtherScheme);
    }
    if offered_host == host && offered_port == port {
        return Ok(());
    }
    if secure && is_twitch_host(&host) && is_twitch_host(&offered_host) && offered_port == 443 {
        return Ok(());
    }
    Err(RefusedReconnect::OtherHost)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_configured_host_or_twitch_over_wss_is_followed() {
        use RefusedReconnect::*;
        let twitch = "wss://eventsub.wss.twitch.tv/ws?keepalive_timeout_seconds=40";
        let local = "ws://127.0.0.1:4567/ws?keepalive_timeout_seconds=40";
        // (configured, offered, verdict)
        let cases: Vec<(&str, &str, Result<(), RefusedReconnect>)> = vec![
            (
                twitch,
                "wss://eventsub.wss.twitch.tv/ws?challenge=abc",
                Ok(()),
            ),
            (twitch, "wss://EventSub.WSS.Twitch.TV/ws", Ok(())),
            (twitch, "wss://eventsub-edge-7.wss.twitch.tv/ws", Ok(())),
            (twitch, "wss://eventsub.wss.twitch.tv:443/ws", Ok(())),
            (twitch, "ws://eventsub.wss.twitch.tv/ws", Err(OtherScheme)),
            (
                twitch,
                "wss://eventsub.wss.twitch.tv:8443/ws",
                Err(OtherHost),
            ),
            (twitch, "wss://evil.example/ws", Err(OtherHost)),
            (twitch, "wss://twitch.tv.evil.example/ws", Err(OtherHost)),
            (twitch, "wss://eviltwitch.tv/ws", Err(OtherHost)),
            (
                twitch,
                "wss://eventsub.wss.twitch.tv@evil.example/ws",
                Err(Unreadable),
            ),
            (
                twitch,
                "wss://evil.example\\@eventsub.wss.twitch.tv/ws",
                Err(Unreadable),
            ),
            (
                twitch,
                "wss://eventsub.wss.twitch.tv:99999/ws",
                Err(Unreadable),
            ),
            (twitch, "wss://[::1]/ws", Err(Unreadable)),
            (twitch, "WSS://eventsub.wss.twitch.tv", Ok(())),
            (twitch, "https://eventsub.wss.twitch.tv/ws", Err(Unreadable)),
            (twitch, "not a url", Err(Unreadable)),
            (twitch, "", Err(Unreadable)),
            (local, "ws://127.0.0.1:4567/ws?reconnect_of=s1", Ok(())),
            (local, "ws://127.0.0.1:4568/ws", Err(OtherHost)),
            (local, "ws://localhost:4567/ws", Err(OtherHost)),
            (local, "wss://127.0.0.1:4567/ws", Err(OtherScheme)),
            (local, "ws://eventsub.wss.twitch.tv/ws", Err(OtherHost)),
            // Twitch's domain is followed only from a configuration on it, and only over TLS.
            (local, "wss://eventsub.wss.twitch.tv/ws", Err(OtherScheme)),
            (
                "wss://proxy.example/ws",
                "wss://eventsub.wss.twitch.tv/ws",
                Err(OtherHost),
            ),
            ("wss://proxy.example/ws", "wss://proxy.example/ws?x", Ok(())),
        ];
        for (configured, offered, expected) in cases {
            assert_eq!(
                check_reconnect_url(configured, offered),
                expected,
                "{configured} → {offered}"
            );
        }
    }
}
