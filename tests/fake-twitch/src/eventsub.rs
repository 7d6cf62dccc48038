//! The fake's EventSub side as tests see it: sessions, subscriptions, the JSON messages the
//! WebSocket server sends, and the [`FakeTwitch`] methods that drive them (`say`, reconnect,
//! revocation, duplicate delivery, silence). The socket work lives in `eventsub_server`; this
//! file does no I/O of its own beyond handing frames to connection threads over channels.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use serde_json::{json, Value};

use crate::{unix_now, wire, FakeTwitch, IrcConnectionCommand, State};

/// The scope a user token needs to read chat over EventSub.
pub const READ_CHAT_SCOPE: &str = "user:read:chat";
/// The only subscription type the fake serves.
pub const CHAT_MESSAGE_TYPE: &str = "channel.chat.message";
/// Twitch's default keepalive window, used when the client asks for none.
pub(crate) const DEFAULT_KEEPALIVE_SECONDS: u64 = 10;
/// How long Twitch keeps the old connection open after a `session_reconnect` before it
/// closes it with 4004.
pub(crate) const DEFAULT_RECONNECT_GRACE: Duration = Duration::from_secs(30);
/// Enabled subscriptions one WebSocket session may hold (dev.twitch.tv/docs/eventsub/
/// handling-websocket-events, "Subscription limits"; twitch4j's EventSub WebSocket docs).
pub(crate) const MAX_SUBSCRIPTIONS_PER_SESSION: usize = 300;
/// WebSocket sessions with enabled subscriptions one client id and user may hold (the same
/// sources); the next session's subscription is answered 429 "number of websocket transports
/// limit exceeded" (twurple#616 shows that answer).
pub(crate) const MAX_SESSIONS_PER_USER: usize = 3;

/// A subscription made with `POST /helix/eventsub/subscriptions`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventSubSubscription {
    pub id: String,
    /// The login whose token created it.
    pub login: String,
    pub subscription_type: String,
    pub version: String,
    pub broadcaster_user_id: String,
    pub user_id: String,
    pub session_id: String,
    /// `enabled` while its session lives; `websocket_disconnected` after, or the reason of a
    /// revocation.
    pub status: String,
}

impl EventSubSubscription {
    pub fn is_enabled(&self) -> bool {
        self.status == "enabled"
    }
}

/// One frame an EventSub client sent; Twitch allows only pongs and close frames.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientFrame {
    Ping,
    Pong,
    /// A text frame (Twitch closes the connection with 4001 for it).
    Text(String),
    /// A binary frame of that many bytes (also closed with 4001).
    Binary(usize),
    /// A close frame with its code, if any.
    Close(Option<u16>),
}

/// Orders a test gives to one live EventSub connection thread.
#[derive(Debug)]
pub(crate) enum EventSubCommand {
    /// Send this text frame; a notification is recorded for `receiver` in its sent frames.
    Frame {
        frame: String,
        receiver: Option<String>,
    },
    /// Send a close frame with this code and reason.
    Close { code: u16, reason: String },
    /// Shut the socket down without a close frame.
    Drop,
    /// Send a WebSocket ping with this payload.
    Ping(String),
    /// A newer connection took the session over: close with 4004 after the grace period unless
    /// the client closes first.
    Superseded,
}

/// A live EventSub WebSocket connection, as test threads see it.
#[derive(Debug)]
pub(crate) struct EventSubConnectionEntry {
    /// The session this connection carries, once welcomed.
    pub(crate) session_id: Option<String>,
    pub(crate) accepts_frames: bool,
    pub(crate) commands: Sender<EventSubCommand>,
}

/// One session: its id survives a `session_reconnect`, the connection carrying it changes.
#[derive(Debug)]
pub(crate) struct SessionRecord {
    pub(crate) connection_id: u64,
    pub(crate) connected: bool,
}

/// Everything the fake knows about EventSub, inside the fake's one state.
#[derive(Debug, Default)]
pub(crate) struct EventSubState {
    pub(crate) connections: HashMap<u64, EventSubConnectionEntry>,
    pub(crate) sessions: HashMap<String, SessionRecord>,
    pub(crate) subscriptions: Vec<EventSubSubscription>,
    /// Frames clients sent, with the session they came on ("" before the welcome).
    pub(crate) client_frames: Vec<(String, ClientFrame)>,
    pub(crate) n_connections_accepted: usize,
    pub(crate) n_sessions_created: u64,
    pub(crate) n_messages: u64,
    /// When set, every welcome announces this window whatever the client asked for.
    pub(crate) keepalive_override: Option<u64>,
    /// Logins whose sessions send no keepalives and answer no pings.
    pub(crate) silent_logins: HashSet<String>,
    /// The last notification frame each session received, for duplicate delivery.
    pub(crate) last_notification: HashMap<String, String>,
    /// The payloads of the pongs clients sent, in order.
    pub(crate) pong_payloads: Vec<String>,
    /// How long a superseded connection stays open; `None` for the default.
    pub(crate) reconnect_grace: Option<Duration>,
    /// Set while the listener is up, to build `reconnect_url`s.
    pub(crate) base_url: String,
    /// (chatting user's id, channel id) pairs banned from that channel's chat: their
    /// subscriptions are revoked with `chat_user_banned`, new ones as soon as made.
    pub(crate) banned: HashSet<(String, String)>,
}

impl EventSubState {
    /// The login owning a session: whoever made its subscriptions.
    pub(crate) fn session_owner(&self, session_id: &str) -> Option<&str> {
        self.subscriptions
            .iter()
            .find(|subscription| subscription.session_id == session_id)
            .map(|subscription| subscription.login.as_str())
    }

    pub(crate) fn is_live(&self, session_id: &str) -> bool {
        self.sessions
            .get(session_id)
            .is_some_and(|session| session.connected)
    }

    pub(crate) fn is_silent(&self, session_id: &str) -> bool {
        self.session_owner(session_id)
            .is_some_and(|login| self.silent_logins.contains(login))
    }

    pub(crate) fn has_enabled_subscription(&self, session_id: &str) -> bool {
        self.subscriptions
            .iter()
            .any(|subscription| subscription.session_id == session_id && subscription.is_enabled())
    }

    /// A connection ended: unless a newer connection carries its session on, the session is
    /// gone and its subscriptions are disabled, as Twitch does.
    pub(crate) fn connection_ended(&mut self, connection_id: u64) {
        let Some(entry) = self.connections.remove(&connection_id) else {
            return;
        };
        let Some(session_id) = entry.session_id else {
            return;
        };
        let Some(session) = self.sessions.get_mut(&session_id) else {
            return;
        };
        if session.connection_id != connection_id {
            return;
        }
        session.connected = false;
        for subscription in &mut self.subscriptions {
            if subscription.session_id == session_id && subscription.is_enabled() {
                subscription.status = "websocket_disconnected".to_string();
            }
        }
    }

    /// Revokes `subscription` (by index) with `status` and tells its session, if live.
    pub(crate) fn revoke(&mut self, index: usize, status: &str) {
        let subscription = &mut self.subscriptions[index];
        subscription.status = status.to_string();
        let subscription = subscription.clone();
        let Some(connection_id) = self
            .sessions
            .get(&subscription.session_id)
            .filter(|session| session.connected)
            .map(|session| session.connection_id)
        else {
            return;
        };
        let message_id = self.next_message_id();
        let frame = revocation_message(&message_id, &subscription);
        self.send(
            connection_id,
            EventSubCommand::Frame {
                frame,
                receiver: None,
            },
        );
    }

    fn next_message_id(&mut self) -> String {
        self.n_messages += 1;
        wire::uuid_like(self.n_messages, 0xe5e5)
    }

    /// Connections carrying a live session owned by `login`.
    fn connections_of(&self, login: &str) -> Vec<u64> {
        let mut connection_ids: Vec<u64> = self
            .sessions
            .iter()
            .filter(|(session_id, session)| {
                session.connected && self.session_owner(session_id) == Some(login)
            })
            .map(|(_, session)| session.connection_id)
            .collect();
        connection_ids.sort_unstable();
        connection_ids.dedup();
        connection_ids
    }

    fn send(&self, connection_id: u64, command: EventSubCommand) -> bool {
        self.connections
            .get(&connection_id)
            .filter(|entry| entry.accepts_frames)
            .is_some_and(|entry| entry.commands.send(command).is_ok())
    }
}

/// RFC 3339 UTC with nanoseconds, as Twitch writes its timestamps.
pub(crate) fn rfc3339(since_epoch: Duration) -> String {
    let seconds = since_epoch.as_secs();
    let (days, second_of_day) = (seconds / 86_400, seconds % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        second_of_day / 3600,
        second_of_day / 60 % 60,
        second_of_day % 60,
        since_epoch.subsec_nanos()
    )
}

fn metadata(message_id: &str, message_type: &str, subscription: Option<&Value>) -> Value {
    let mut metadata = json!({
        "message_id": message_id,
        "message_type": message_type,
        "message_timestamp": rfc3339(unix_now()),
    });
    if let Some(subscription) = subscription {
        metadata["subscription_type"] = subscription["type"].clone();
        metadata["subscription_version"] = subscription["version"].clone();
    }
    metadata
}

/// `session_welcome` for a (possibly carried-over) session.
pub(crate) fn welcome_message(
    message_id: &str,
    session_id: &str,
    keepalive_seconds: u64,
) -> String {
    json!({
        "metadata": metadata(message_id, "session_welcome", None),
        "payload": {"session": {
            "id": session_id,
            "status": "connected",
            "connected_at": rfc3339(unix_now()),
            "keepalive_timeout_seconds": keepalive_seconds,
            "reconnect_url": null,
            "recovery_url": null,
        }},
    })
    .to_string()
}

pub(crate) fn keepalive_message(message_id: &str) -> String {
    json!({
        "metadata": metadata(message_id, "session_keepalive", None),
        "payload": {},
    })
    .to_string()
}

fn reconnect_message(message_id: &str, session_id: &str, reconnect_url: &str) -> String {
    json!({
        "metadata": metadata(message_id, "session_reconnect", None),
        "payload": {"session": {
            "id": session_id,
            "status": "reconnecting",
            "keepalive_timeout_seconds": null,
            "reconnect_url": reconnect_url,
            "connected_at": rfc3339(unix_now()),
            "recovery_url": null,
        }},
    })
    .to_string()
}

/// The subscription object as Twitch shows it in answers and messages.
pub(crate) fn subscription_json(subscription: &EventSubSubscription) -> Value {
    json!({
        "id": subscription.id,
        "status": subscription.status,
        "type": subscription.subscription_type,
        "version": subscription.version,
        "condition": {
            "broadcaster_user_id": subscription.broadcaster_user_id,
            "user_id": subscription.user_id,
        },
        "transport": {"method": "websocket", "session_id": subscription.session_id},
        "created_at": rfc3339(unix_now()),
        "cost": 0,
    })
}

/// Who said something, as the notification names them.
struct Speaker<'a> {
    user_id: &'a str,
    login: &'a str,
}

fn chat_message_notification(
    message_id: &str,
    subscription: &EventSubSubscription,
    channel_login: &str,
    speaker: &Speaker<'_>,
    chat_message_id: &str,
    text: &str,
) -> String {
    let subscription_value = subscription_json(subscription);
    json!({
        "metadata": metadata(message_id, "notification", Some(&subscription_value)),
        "payload": {
            "subscription": subscription_value,
            "event": {
                "broadcaster_user_id": subscription.broadcaster_user_id,
                "broadcaster_user_login": channel_login,
                "broadcaster_user_name": wire::display_name_for_login(channel_login),
                "chatter_user_id": speaker.user_id,
                "chatter_user_login": speaker.login,
                "chatter_user_name": wire::display_name_for_login(speaker.login),
                "message_id": chat_message_id,
                "message": {
                    "text": text,
                    "fragments": [{"type": "text", "text": text, "cheermote": null,
                                   "emote": null, "mention": null}],
                },
                "color": "#0000FF",
                "badges": [],
                "message_type": "text",
                "cheer": null,
                "reply": null,
                "channel_points_custom_reward_id": null,
                "source_broadcaster_user_id": null,
                "source_broadcaster_user_login": null,
                "source_broadcaster_user_name": null,
                "source_message_id": null,
                "source_badges": null,
            },
        },
    })
    .to_string()
}

fn revocation_message(message_id: &str, subscription: &EventSubSubscription) -> String {
    let subscription_value = subscription_json(subscription);
    json!({
        "metadata": metadata(message_id, "revocation", Some(&subscription_value)),
        "payload": {"subscription": subscription_value},
    })
    .to_string()
}

/// The id Helix gives a channel login: the account's id when it is a registered account, else
/// the stable made-up room id IRC also uses.
pub(crate) fn user_id_for_login(state: &State, login: &str) -> String {
    state.accounts.get(login).map_or_else(
        || wire::room_id_for_channel(login).to_string(),
        |record| record.account.user_id.clone(),
    )
}

/// EventSub and chat-wide test controls.
impl FakeTwitch {
    /// `ws://127.0.0.1:PORT/ws` of the EventSub WebSocket server (`wss://` with TLS).
    pub fn eventsub_url(&self) -> String {
        let scheme = if self.is_tls() { "wss" } else { "ws" };
        format!("{scheme}://{}/ws", self.eventsub_address)
    }

    /// `login` says `text` in `channel`: a PRIVMSG goes to every logged-in IRC connection of a
    /// login that joined the channel, and a `channel.chat.message` notification to every
    /// session with an enabled subscription for it. Returns how many deliveries went out.
    pub fn say(&self, login: &str, channel: &str, text: &str) -> usize {
        self.say_shaped(login, channel, text, &|_| {})
    }

    /// `say`, with the named fields of each notification's `payload.event` set to `null`
    /// (`"broadcaster_user_login"`, `"message.text"`, ...); IRC lines are unchanged. Twitch
    /// documents these fields as always set, yet has changed a field of its chat events from
    /// `[]` to `null` overnight (twitchdev/issues#983: `message.fragments`), and shared chat's
    /// `source_*` fields are `null` outside shared chat: a client must not need what its
    /// decision does not use.
    pub fn say_with_null_fields(
        &self,
        login: &str,
        channel: &str,
        text: &str,
        null_fields: &[&str],
    ) -> usize {
        let null_fields: Vec<String> = null_fields.iter().map(|f| f.to_string()).collect();
        self.say_shaped(login, channel, text, &move |event| {
            for path in &null_fields {
                let mut value = &mut *event;
                let mut parts = path.split('.').peekable();
                while let Some(part) = parts.next() {
                    if parts.peek().is_none() {
                        value[part] = Value::Null;
                    } else {
                        value = &mut value[part];
                    }
                }
            }
        })
    }

    fn say_shaped(
        &self,
        login: &str,
        channel: &str,
        text: &str,
        shape: &dyn Fn(&mut Value),
    ) -> usize {
        let login = login.to_lowercase();
        let channel = wire::normalize_channel(channel);
        let mut state = self.shared.lock_state();
        let speaker_id = user_id_for_login(&state, &login);
        let line = format!(
            "{}\r\n",
            FakeTwitch::privmsg_line(
                &login,
                &speaker_id,
                &wire::display_name_for_login(&login),
                &channel,
                text
            )
        );
        let mut n_delivered = 0;
        for entry in state.irc_connections.values() {
            let Some(receiver) = entry.login.as_deref() else {
                continue;
            };
            let joined = state
                .irc_users
                .get(receiver)
                .is_some_and(|record| record.joins.iter().any(|(_, joined)| *joined == channel));
            if entry.logged_in
                && entry.accepts_frames
                && joined
                && entry
                    .commands
                    .send(IrcConnectionCommand::Frame(line.clone()))
                    .is_ok()
            {
                n_delivered += 1;
            }
        }
        let channel_id = user_id_for_login(&state, &channel);
        let chat_message_id = state.eventsub.next_message_id();
        let speaker = Speaker {
            user_id: &speaker_id,
            login: &login,
        };
        let targets: Vec<EventSubSubscription> = state
            .eventsub
            .subscriptions
            .iter()
            .filter(|subscription| {
                subscription.is_enabled() && subscription.broadcaster_user_id == channel_id
            })
            .cloned()
            .collect();
        for subscription in targets {
            let Some(session) = state.eventsub.sessions.get(&subscription.session_id) else {
                continue;
            };
            let connection_id = session.connection_id;
            let message_id = state.eventsub.next_message_id();
            let frame = chat_message_notification(
                &message_id,
                &subscription,
                &channel,
                &speaker,
                &chat_message_id,
                text,
            );
            let mut value: Value = serde_json::from_str(&frame).expect("the fake's own JSON");
            shape(&mut value["payload"]["event"]);
            let frame = value.to_string();
            state
                .eventsub
                .last_notification
                .insert(subscription.session_id.clone(), frame.clone());
            let command = EventSubCommand::Frame {
                frame,
                receiver: Some(subscription.login.clone()),
            };
            if state.eventsub.send(connection_id, command) {
                n_delivered += 1;
            }
        }
        n_delivered
    }

    /// Sends the last notification each live session of `login` received once more,
    /// unchanged (same `message_id`), as Twitch does when unsure it was delivered. Returns to
    /// how many sessions.
    pub fn redeliver_last(&self, login: &str) -> usize {
        let login = login.to_lowercase();
        let state = self.shared.lock_state();
        let eventsub = &state.eventsub;
        let mut n_sent = 0;
        for connection_id in eventsub.connections_of(&login) {
            let frame = eventsub
                .connections
                .get(&connection_id)
                .and_then(|entry| entry.session_id.as_ref())
                .and_then(|session_id| eventsub.last_notification.get(session_id));
            if let Some(frame) = frame {
                let command = EventSubCommand::Frame {
                    frame: frame.clone(),
                    receiver: Some(login.clone()),
                };
                if eventsub.send(connection_id, command) {
                    n_sent += 1;
                }
            }
        }
        n_sent
    }

    /// Sends `session_reconnect` on every live session of `login`, pointing at this server;
    /// a client that connects there gets the same session with its subscriptions. Returns to
    /// how many sessions.
    pub fn eventsub_reconnect(&self, login: &str) -> usize {
        self.send_reconnect(login, |base_url, session_id| {
            format!("{base_url}?reconnect_of={session_id}")
        })
    }

    /// Sends `session_reconnect` on every live session of `login` naming `url` as the
    /// `reconnect_url`, whatever it is: another port, another scheme, another server. Twitch
    /// itself names its own host over `wss://` (`wss://eventsub.wss.twitch.tv/ws?...`,
    /// dev.twitch.tv/docs/eventsub/handling-websocket-events, "Reconnect message"); any other
    /// URL in that field is what a man in the middle or a bug would put there. Returns to how
    /// many sessions.
    pub fn eventsub_reconnect_to(&self, login: &str, url: &str) -> usize {
        self.send_reconnect(login, |_, _| url.to_string())
    }

    fn send_reconnect(&self, login: &str, url_for: impl Fn(&str, &str) -> String) -> usize {
        let login = login.to_lowercase();
        let mut state = self.shared.lock_state();
        let mut n_sent = 0;
        for connection_id in state.eventsub.connections_of(&login) {
            let Some(session_id) = state
                .eventsub
                .connections
                .get(&connection_id)
                .and_then(|entry| entry.session_id.clone())
            else {
                continue;
            };
            let url = url_for(&state.eventsub.base_url, &session_id);
            let message_id = state.eventsub.next_message_id();
            let frame = reconnect_message(&message_id, &session_id, &url);
            let command = EventSubCommand::Frame {
                frame,
                receiver: None,
            };
            if state.eventsub.send(connection_id, command) {
                n_sent += 1;
            }
        }
        n_sent
    }

    /// Revokes every enabled subscription of `login` with `status` as the reason
    /// (`authorization_revoked`, `user_removed`, `version_removed`) and tells its session.
    /// Returns how many were revoked.
    pub fn eventsub_revoke(&self, login: &str, status: &str) -> usize {
        let login = login.to_lowercase();
        let mut state = self.shared.lock_state();
        let mut revoked = Vec::new();
        for subscription in &mut state.eventsub.subscriptions {
            if subscription.login == login && subscription.is_enabled() {
                subscription.status = status.to_string();
                revoked.push(subscription.clone());
            }
        }
        for subscription in &revoked {
            let Some(connection_id) = state
                .eventsub
                .sessions
                .get(&subscription.session_id)
                .filter(|session| session.connected)
                .map(|session| session.connection_id)
            else {
                continue;
            };
            let message_id = state.eventsub.next_message_id();
            let frame = revocation_message(&message_id, subscription);
            state.eventsub.send(
                connection_id,
                EventSubCommand::Frame {
                    frame,
                    receiver: None,
                },
            );
        }
        drop(state);
        self.shared.notify_changed();
        revoked.len()
    }

    /// Closes every live EventSub connection of `login` with `code` (4000–4007 as Twitch
    /// uses them). Returns how many.
    pub fn eventsub_close(&self, login: &str, code: u16, reason: &str) -> usize {
        self.order_eventsub(login, || EventSubCommand::Close {
            code,
            reason: reason.to_string(),
        })
    }

    /// Shuts down every live EventSub connection of `login` without a close frame.
    pub fn eventsub_drop(&self, login: &str) -> usize {
        self.order_eventsub(login, || EventSubCommand::Drop)
    }

    /// Pings `login`'s live EventSub connections and waits for the pong: the client reads
    /// frames in order, so everything sent to it before has been read (the EventSub
    /// counterpart of an IRC `PING :tag`). False when no pong came within `timeout`.
    pub fn sync_eventsub(&self, login: &str, tag: &str, timeout: Duration) -> bool {
        let login = login.to_lowercase();
        let state = self.shared.lock_state();
        let n_pinged = state
            .eventsub
            .connections_of(&login)
            .into_iter()
            .filter(|connection_id| {
                state
                    .eventsub
                    .send(*connection_id, EventSubCommand::Ping(tag.to_string()))
            })
            .count();
        drop(state);
        n_pinged > 0
            && self
                .shared
                .wait_until(timeout, |state| {
                    state
                        .eventsub
                        .pong_payloads
                        .iter()
                        .any(|payload| payload == tag)
                        .then_some(())
                })
                .is_some()
    }

    fn order_eventsub(&self, login: &str, command: impl Fn() -> EventSubCommand) -> usize {
        let login = login.to_lowercase();
        let mut state = self.shared.lock_state();
        let mut n_ordered = 0;
        for connection_id in state.eventsub.connections_of(&login) {
            if state.eventsub.send(connection_id, command()) {
                n_ordered += 1;
            }
            if let Some(entry) = state.eventsub.connections.get_mut(&connection_id) {
                entry.accepts_frames = false;
            }
        }
        n_ordered
    }

    /// While silent, sessions of `login` send no keepalives and answer no pings; notifications
    /// still go out.
    pub fn set_eventsub_silent(&self, login: &str, silent: bool) {
        let login = login.to_lowercase();
        let mut state = self.shared.lock_state();
        if silent {
            state.eventsub.silent_logins.insert(login);
        } else {
            state.eventsub.silent_logins.remove(&login);
        }
        drop(state);
        self.shared.notify_changed();
    }

    /// Makes every later welcome announce `seconds` as the keepalive window, whatever the
    /// client asked for (`None`: what it asked for, else Twitch's default of 10). Twitch only
    /// grants 10 to 600; shorter windows keep tests fast.
    pub fn set_eventsub_keepalive_seconds(&self, seconds: Option<u64>) {
        self.shared.lock_state().eventsub.keepalive_override = seconds;
    }

    /// How long a connection superseded by a reconnect stays open before the server closes it
    /// with 4004 (default 30 s).
    pub fn set_eventsub_reconnect_grace(&self, grace: Duration) {
        self.shared.lock_state().eventsub.reconnect_grace = Some(grace);
    }

    /// Makes `login`'s three WebSocket transports taken, as subscriptions Twitch still counts
    /// but no client holds do (twitchdev/issues#1094: orphans that GET did not even list):
    /// three live sessions with an enabled subscription each and no connection. Every new
    /// session of `login` is then refused its first subscription with 429 "number of
    /// websocket transports limit exceeded". Returns the orphans' session ids.
    pub fn occupy_eventsub_transports(&self, login: &str) -> Vec<String> {
        let login = login.to_lowercase();
        let mut state = self.shared.lock_state();
        let user_id = user_id_for_login(&state, &login);
        let mut session_ids = Vec::new();
        for _ in 0..MAX_SESSIONS_PER_USER {
            state.eventsub.n_sessions_created += 1;
            let n = state.eventsub.n_sessions_created;
            let session_id = format!("AgoQorphan{n}");
            state.eventsub.sessions.insert(
                session_id.clone(),
                SessionRecord {
                    connection_id: u64::MAX - n,
                    connected: true,
                },
            );
            let id = wire::uuid_like(state.eventsub.subscriptions.len() as u64 + 1, 0x0a0a);
            state.eventsub.subscriptions.push(EventSubSubscription {
                id,
                login: login.clone(),
                subscription_type: CHAT_MESSAGE_TYPE.to_string(),
                version: "1".to_string(),
                broadcaster_user_id: format!("orphan-{n}"),
                user_id: user_id.clone(),
                session_id: session_id.clone(),
                status: "enabled".to_string(),
            });
            session_ids.push(session_id);
        }
        session_ids
    }

    /// Bans `login` from `channel`'s chat: every enabled subscription of `login` for the
    /// channel is revoked with `chat_user_banned` (one of the revocation statuses of the
    /// EventSub subscription API: dev.twitch.tv/docs/api/reference "Get EventSub
    /// Subscriptions"; twitch_api's `Status::ChatUserBanned`). Twitch's pages do not say what
    /// a new subscription of a banned user gets; the fake takes the worst case the issue
    /// names: accepted (202), then revoked again at once. Returns how many were revoked.
    pub fn ban_from_chat(&self, login: &str, channel: &str) -> usize {
        let login = login.to_lowercase();
        let channel = wire::normalize_channel(channel);
        let mut state = self.shared.lock_state();
        let user_id = user_id_for_login(&state, &login);
        let channel_id = user_id_for_login(&state, &channel);
        state
            .eventsub
            .banned
            .insert((user_id.clone(), channel_id.clone()));
        let indexes: Vec<usize> = state
            .eventsub
            .subscriptions
            .iter()
            .enumerate()
            .filter(|(_, subscription)| {
                subscription.is_enabled()
                    && subscription.user_id == user_id
                    && subscription.broadcaster_user_id == channel_id
            })
            .map(|(index, _)| index)
            .collect();
        for index in &indexes {
            state.eventsub.revoke(*index, "chat_user_banned");
        }
        drop(state);
        self.shared.notify_changed();
        indexes.len()
    }

    /// The id Helix gives `channel` (what subscriptions name as `broadcaster_user_id`).
    pub fn channel_id(&self, channel: &str) -> String {
        let state = self.shared.lock_state();
        user_id_for_login(&state, &wire::normalize_channel(channel))
    }

    /// Every subscription created so far, disabled and revoked ones included.
    pub fn eventsub_subscriptions(&self) -> Vec<EventSubSubscription> {
        self.shared.lock_state().eventsub.subscriptions.clone()
    }

    /// Waits until `login` holds an enabled subscription for `channel` on a live session.
    pub fn wait_eventsub_subscribed(&self, login: &str, channel: &str, timeout: Duration) -> bool {
        let login = login.to_lowercase();
        let channel = wire::normalize_channel(channel);
        self.shared
            .wait_until(timeout, |state| {
                let channel_id = user_id_for_login(state, &channel);
                state
                    .eventsub
                    .subscriptions
                    .iter()
                    .any(|subscription| {
                        subscription.login == login
                            && subscription.broadcaster_user_id == channel_id
                            && subscription.is_enabled()
                            && state.eventsub.is_live(&subscription.session_id)
                    })
                    .then_some(())
            })
            .is_some()
    }

    /// Waits until at least `n_subscriptions` subscriptions were created for `login` in total.
    pub fn wait_n_eventsub_subscriptions(
        &self,
        login: &str,
        n_subscriptions: usize,
        timeout: Duration,
    ) -> bool {
        let login = login.to_lowercase();
        self.shared
            .wait_until(timeout, |state| {
                let n_made = state
                    .eventsub
                    .subscriptions
                    .iter()
                    .filter(|subscription| subscription.login == login)
                    .count();
                (n_made >= n_subscriptions).then_some(())
            })
            .is_some()
    }

    /// TCP connections the EventSub server accepted so far.
    pub fn n_eventsub_connections(&self) -> usize {
        self.shared.lock_state().eventsub.n_connections_accepted
    }

    /// Waits until the EventSub server accepted at least `n_connections` TCP connections.
    pub fn wait_n_eventsub_connections(&self, n_connections: usize, timeout: Duration) -> bool {
        self.shared
            .wait_until(timeout, |state| {
                (state.eventsub.n_connections_accepted >= n_connections).then_some(())
            })
            .is_some()
    }

    /// Live EventSub connections, welcomed or not, whoever they belong to.
    pub fn n_live_eventsub_connections(&self) -> usize {
        self.shared.lock_state().eventsub.connections.len()
    }

    /// Waits until exactly `n_connections` EventSub connections are live.
    pub fn wait_live_eventsub_connections(&self, n_connections: usize, timeout: Duration) -> bool {
        self.shared
            .wait_until(timeout, |state| {
                (state.eventsub.connections.len() == n_connections).then_some(())
            })
            .is_some()
    }

    /// Every frame EventSub clients sent, with the session it came on.
    pub fn eventsub_client_frames(&self) -> Vec<(String, ClientFrame)> {
        self.shared.lock_state().eventsub.client_frames.clone()
    }

    /// Waits for a frame from an EventSub client matching `pred`.
    pub fn wait_eventsub_client_frame(
        &self,
        pred: impl Fn(&ClientFrame) -> bool,
        timeout: Duration,
    ) -> Option<ClientFrame> {
        self.shared.wait_until(timeout, |state| {
            state
                .eventsub
                .client_frames
                .iter()
                .map(|(_, frame)| frame)
                .find(|frame| pred(frame))
                .cloned()
        })
    }
}

/// Deadlines of one connection: keepalive, unused session, superseded.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnectionTimers {
    pub(crate) keepalive: Duration,
    pub(crate) last_sent: Instant,
    /// Until then the session must have a subscription (4003 after).
    pub(crate) subscribe_by: Option<Instant>,
    /// Set once superseded: the server closes with 4004 then.
    pub(crate) superseded_close_at: Option<Instant>,
}

impl ConnectionTimers {
    pub(crate) fn next_deadline(&self) -> Instant {
        [self.subscribe_by, self.superseded_close_at]
            .into_iter()
            .flatten()
            .fold(self.last_sent + self.keepalive, Instant::min)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc_with_nanoseconds() {
        let cases = [
            (0, 0, "1970-01-01T00:00:00.000000000Z"),
            (1_700_000_000, 5, "2023-11-14T22:13:20.000000005Z"),
            (951_782_400, 0, "2000-02-29T00:00:00.000000000Z"),
            (1_719_792_000, 123_000_000, "2024-07-01T00:00:00.123000000Z"),
        ];
        for (seconds, nanos, expected) in cases {
            assert_eq!(rfc3339(Duration::new(seconds, nanos)), expected);
        }
    }

    #[test]
    fn welcome_names_the_session_and_window() {
        let welcome: Value = serde_json::from_str(&welcome_message("m1", "session-1", 10)).unwrap();
        assert_eq!(welcome["metadata"]["message_type"], "session_welcome");
        assert_eq!(welcome["payload"]["session"]["id"], "session-1");
        assert_eq!(
            welcome["payload"]["session"]["keepalive_timeout_seconds"],
            10
        );
    }
}
