//! Twitch chat, over either of two transports: IRC over WebSocket (`irc/`) or EventSub's
//! `channel.chat.message` on a WebSocket session (`eventsub/`). Each transport folder holds
//! its parser, its pure machine (`link`) and the I/O that carries it out (`connection`);
//! neither imports the other. What both share sits here: the machine shape (`machine`), what
//! an own message asks for (`own_message`, `command`), how a connection ended and when to
//! connect again (`reconnect`), color timers and sleep detection (`schedule`), the choice of
//! transport (`transport`) and the one reconnect loop (`thread`). `net/` moves the frames:
//! the WebSocket (`socket`), the dialer threads that open it (`dialer`) and the watch thread
//! that runs every color timer and notices a suspend (`watch`).
//!
//! This file is the entry: [`run_chat`] picks the transport and falls back from EventSub to
//! IRC when the token cannot read chat over EventSub. Does I/O (waits for the token's scopes).

pub mod command;
pub mod eventsub;
pub mod irc;
pub mod machine;
pub mod net;
pub mod own_message;
pub mod reconnect;
pub mod schedule;
pub mod thread;
pub mod transport;

use std::sync::Arc;
use std::time::Duration;

use log::info;

use crate::base::backoff::BackoffPolicy;
use crate::base::ids::Login;
use crate::base::stop::StopSignal;
use crate::chat::eventsub::connection::EventSub;
use crate::chat::eventsub::setup::EventSubShared;
use crate::chat::irc::connection::Irc;
use crate::chat::net::dialer::Dialer;
use crate::chat::net::watch::ChatWatch;
use crate::chat::thread::{ChatThread, Common, Finished, TOKEN_RECHECK_INTERVAL};
use crate::chat::transport::{choose_transport, Transport};
use crate::config::ChatTransport;
use crate::twitch::helix::Helix;
use crate::user::queue::ChangeQueue;
use crate::user::User;

/// What a chat thread needs besides its user: each transport's own settings and what both
/// share.
#[derive(Clone)]
pub struct ChatSettings {
    pub irc_url: String,
    /// Chat over EventSub (`wss://eventsub.wss.twitch.tv/ws`).
    pub eventsub_url: String,
    /// Helix, for EventSub's subscriptions, channel ids and the current color.
    pub helix: Arc<Helix>,
    /// Channel ids resolved so far and the queue of EventSub's setup threads, shared by
    /// every user of the process.
    pub eventsub: EventSubShared,
    /// Opens the connections (TCP, TLS, WebSocket handshake) on the dialer threads.
    pub dialer: Dialer,
    pub keepalive: Duration,
    pub backoff: BackoffPolicy,
    /// Runs the color timers and notices when the machine slept.
    pub watch: ChatWatch,
}

/// How long `auto` waits for the token thread's first validation to learn the token's
/// scopes; after that it chooses IRC.
const SCOPES_WAIT: Duration = Duration::from_secs(60);

/// Runs the chat side of one user until `stop` fires, reconnecting after every loss. This is
/// the transport seam: `transport` (with the token's scopes, for `auto`) decides whether the
/// user's chat is read over EventSub or over IRC; a missing scope under `auto` falls back
/// from EventSub to IRC.
pub fn run_chat(
    user: Arc<User>,
    channels: Vec<Login>,
    settings: ChatSettings,
    queue: ChangeQueue,
    stop: StopSignal,
    transport: ChatTransport,
) {
    let chosen = choose(&user, transport, channels.len(), &stop);
    let chat = ChatThread {
        user,
        channels,
        queue,
        stop,
        common: Common {
            dialer: settings.dialer,
            keepalive: settings.keepalive,
            backoff: settings.backoff,
            watch: settings.watch,
        },
    };
    let login = &chat.user.login;
    if chosen == Transport::EventSub {
        chat.user.report_chat("EventSub", &chat.channels);
        let mut eventsub = EventSub::new(
            &settings.eventsub_url,
            chat.common.keepalive,
            settings.helix,
            settings.eventsub,
        );
        match chat.run(&mut eventsub, transport == ChatTransport::Auto) {
            Finished::Stopped => return,
            Finished::FallBack => info!("{login}: chat over IRC from now on"),
        }
    }
    chat.user.report_chat("IRC", &chat.channels);
    chat.run(&mut Irc::new(settings.irc_url), false);
}

/// Chooses the transport and says which at start. Under `auto` this waits for a token and
/// for the token thread to validate it, since its scopes decide.
fn choose(
    user: &User,
    configured: ChatTransport,
    n_channels: usize,
    stop: &StopSignal,
) -> Transport {
    let login = &user.login;
    let scopes = if configured == ChatTransport::Auto {
        loop {
            let (token, generation) = user.token.current();
            if stop.is_stopped() || !token.is_empty() {
                break;
            }
            let _ = user.token.wait_newer(generation, TOKEN_RECHECK_INTERVAL);
        }
        user.token.wait_scopes(SCOPES_WAIT)
    } else {
        None
    };
    let (transport, why) = choose_transport(configured, scopes.as_deref(), n_channels);
    match transport {
        Transport::EventSub => info!("{login}: chat over EventSub ({why})"),
        Transport::Irc => info!("{login}: chat over IRC ({why})"),
    }
    transport
}
