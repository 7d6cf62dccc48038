//! A user's chat over IRC: one IRC-over-WebSocket connection to Twitch at a time, logged in,
//! joined to the channels, answering PINGs and turning the user's own messages into
//! color-change requests. Does I/O, and only that: it reads a frame, hands it to
//! `chat::irc::link`, carries out the `Step`s that come back; the reconnect loop around it is
//! `chat::thread`'s. A logged-in connection is known to `chat::net::watch`, which runs the
//! color timer.

use std::time::Instant;

use log::{debug, info, warn};

use crate::base::clock::unix_now;
use crate::base::secret::Secret;
use crate::chat::irc::line as irc;
use crate::chat::irc::link::{Link, LinkTiming, Step};
use crate::chat::irc::session::JoinBudget;
use crate::chat::net::socket::FrameSocket;
use crate::chat::net::watch::WatchedLink;
use crate::chat::reconnect::ConnectionEnd;
use crate::chat::thread::{ChatThread, Connector, Served};
use crate::status::UserState;

/// Chat over IRC, as the reconnect loop drives it: what lives across its connections.
pub struct Irc {
    url: String,
    /// Reconnects count against Twitch's join limit too.
    join_budget: JoinBudget,
}

impl Irc {
    pub fn new(url: String) -> Irc {
        Irc {
            url,
            join_budget: JoinBudget::default(),
        }
    }
}

impl Connector for Irc {
    const NAME: &'static str = "chat";
    const REFUSED: &'static str = "the chat login";
    const SCOPES: &'static str = "chat:read and user:manage:chat_color";
    const READ_SCOPE: &'static str = "chat:read";

    fn serve(&mut self, chat: &ChatThread) -> Served {
        let socket = match chat.common.dialer.dial(&self.url, &chat.stop) {
            Ok(socket) => socket,
            Err(error) => {
                return Served {
                    end: ConnectionEnd::Lost(error.to_string()),
                    logged_in: false,
                    generation: chat.user.token.current().1,
                }
            }
        };
        let mut connection = IrcConnection {
            chat,
            socket,
            watched: None,
        };
        let (token, generation) = chat.user.token.current();
        let link = Link::new(
            chat.user.login.clone(),
            chat.user.user_id(),
            chat.channels.clone(),
            LinkTiming::new(chat.common.keepalive),
            &mut self.join_budget,
            Instant::now(),
        );
        let end = connection.run(link, token);
        Served {
            end,
            logged_in: connection.watched.is_some(),
            generation,
        }
    }
}

/// One live IRC connection: the user's chat and the socket.
struct IrcConnection<'a> {
    chat: &'a ChatThread,
    socket: FrameSocket,
    /// Set once logged in; dropping it tells the watch the connection ended.
    watched: Option<WatchedLink>,
}

impl IrcConnection<'_> {
    /// Logs in with `token`, then reads and dispatches until the connection ends.
    fn run(&mut self, mut link: Link<'_>, token: Secret) -> ConnectionEnd {
        let steps = link.login_steps(&token);
        drop(token);
        if let Err(end) = self.carry_out(steps) {
            return end;
        }
        loop {
            let steps = match self.socket.next_steps(&mut link) {
                Ok(steps) => steps,
                Err(error) => return self.lost(error.to_string()),
            };
            if let Err(end) = self.carry_out(steps) {
                return end;
            }
        }
    }

    /// How a connection that the socket ended ended.
    fn lost(&self, reason: String) -> ConnectionEnd {
        match &self.watched {
            Some(watched) if watched.closed_after_sleep() => ConnectionEnd::Slept,
            _ => ConnectionEnd::Lost(reason),
        }
    }

    /// Carries out the link's steps in order; `Err` when one ends the connection.
    fn carry_out(&mut self, steps: Vec<Step>) -> Result<(), ConnectionEnd> {
        let chat = self.chat;
        let user = &chat.user;
        let login = &user.login;
        for step in steps {
            match step {
                Step::Send(line) => {
                    debug!("{login}: > {}", irc::line_for_log(&line));
                    if let Err(error) = self.socket.send(line) {
                        return Err(self.lost(error.to_string()));
                    }
                }
                Step::LoggedIn { user_id, color } => {
                    if let Some(user_id) = user_id {
                        info!("{login}: logged in to chat (user id {user_id})");
                        user.set_user_id(user_id);
                    } else {
                        warn!("{login}: logged in, but Twitch sent no user id; own messages cannot be recognised");
                    }
                    user.set_current_color(color);
                    user.report_state(UserState::Connected {
                        since_unix: unix_now(),
                    });
                    self.watched = Some(chat.common.watch.logged_in(user, &chat.stop));
                }
                Step::Joined { channel } => info!("{login}: joined #{channel}"),
                Step::JoinsWaiting { n_waiting } => {
                    info!("{login}: {n_waiting} channels wait for Twitch's join limit");
                }
                Step::OwnMessage { channel, text } => {
                    debug!("{login}: own message in #{channel}");
                    chat.act_on_own_message(&text);
                }
                Step::Notice { channel, text } => info!("{login}: notice in #{channel}: {text}"),
                Step::End(end) => return Err(end),
            }
        }
        Ok(())
    }
}
