//! The fake's IRC-over-WebSocket server; it does I/O (through `websocket_server`, which
//! accepts loopback TCP connections and runs one thread per connection plus one raw reader
//! thread). This file holds what IRC says: CAP, login by PASS and NICK (or its refusal), JOIN,
//! PART, PING, and the frames tests order; every line a client sends is recorded.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use tungstenite::{Message, WebSocket};

use crate::websocket_server::{close, read_message, send, BufferedSocket, Flow, Protocol};
use crate::wire;
use crate::{IrcConnectionCommand, IrcConnectionEntry, Shared, State};

enum LoginOutcome {
    Accepted { user_id: String, color: String },
    Rejected,
    BadlyFormatted,
}

/// How often Twitch's IRC server PINGs a client: "about once every five minutes"
/// (dev.twitch.tv/docs/chat/irc, "Keepalive messages"). A client that waits for these to
/// notice a dead link notices it minutes late: it must PING itself.
pub(crate) const SERVER_PING_INTERVAL: Duration = Duration::from_secs(300);

/// One open IRC connection.
pub(crate) struct IrcConnection {
    connection_id: u64,
    shared: Arc<Shared>,
    /// The NICK of this connection, lower-cased, once given.
    login: Option<String>,
    /// The parameter of the last PASS (`oauth:<token>`).
    pass_param: Option<String>,
    logged_in: bool,
    /// Lines received before NICK; they are filed under the login once it is known.
    lines_before_nick: Vec<String>,
    /// When the server PINGs next.
    next_ping: Instant,
}

impl Protocol for IrcConnection {
    type Command = IrcConnectionCommand;
    const NAME: &'static str = "irc";

    fn register(state: &mut State, commands: Sender<IrcConnectionCommand>) -> Option<u64> {
        state.n_irc_connections_accepted += 1;
        if state.n_irc_refusals_pending > 0 {
            state.n_irc_refusals_pending -= 1;
            return None;
        }
        let connection_id = state.new_connection_id();
        let entry = IrcConnectionEntry {
            login: None,
            logged_in: false,
            accepts_frames: true,
            commands,
        };
        state.irc_connections.insert(connection_id, entry);
        Some(connection_id)
    }

    fn unregister(state: &mut State, connection_id: u64) {
        state.irc_connections.remove(&connection_id);
    }

    fn open(
        connection_id: u64,
        shared: &Arc<Shared>,
        _query: &str,
        _websocket: &mut WebSocket<BufferedSocket>,
    ) -> Option<IrcConnection> {
        Some(IrcConnection {
            connection_id,
            shared: Arc::clone(shared),
            login: None,
            pass_param: None,
            logged_in: false,
            lines_before_nick: Vec::new(),
            next_ping: Instant::now() + SERVER_PING_INTERVAL,
        })
    }

    /// Handles every complete message buffered so far (tungstenite's own answers are
    /// discarded while the login is silent).
    fn read_available(&mut self, websocket: &mut WebSocket<BufferedSocket>) -> Flow {
        loop {
            match read_message(websocket, self.is_silent()) {
                Ok(Message::Text(text)) => {
                    if self.handle_frame(websocket, text.as_str()) == Flow::End {
                        return Flow::End;
                    }
                }
                Ok(_) => {}
                Err(flow) => return flow,
            }
        }
    }

    fn on_command(
        &mut self,
        websocket: &mut WebSocket<BufferedSocket>,
        command: IrcConnectionCommand,
    ) -> Flow {
        match command {
            IrcConnectionCommand::Frame(frame) => self.send_ordered_frame(websocket, frame),
            IrcConnectionCommand::Close => close(websocket, None),
            IrcConnectionCommand::Drop => Flow::End,
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        Some(self.next_ping)
    }

    /// The server's own keepalive PING, as Twitch sends it.
    fn on_deadline(&mut self, websocket: &mut WebSocket<BufferedSocket>) -> Flow {
        let now = Instant::now();
        if now < self.next_ping {
            return Flow::Continue;
        }
        self.next_ping = now + SERVER_PING_INTERVAL;
        self.reply(websocket, "PING :tmi.twitch.tv\r\n".to_string())
    }
}

impl IrcConnection {
    fn handle_frame(&mut self, websocket: &mut WebSocket<BufferedSocket>, frame: &str) -> Flow {
        for line in wire::split_frame_into_lines(frame) {
            // Recording after answering lets a test that saw the line rely on the answer
            // being on the wire already (or, while silent, on it never being sent).
            let flow = self.handle_line(websocket, line);
            self.record_line(line);
            if flow == Flow::End {
                return Flow::End;
            }
        }
        Flow::Continue
    }

    fn record_line(&mut self, line: &str) {
        match &self.login {
            Some(login) => {
                let mut state = self.shared.lock_state();
                state
                    .irc_users
                    .entry(login.clone())
                    .or_default()
                    .lines
                    .push(line.to_string());
                drop(state);
                self.shared.notify_changed();
            }
            None => self.lines_before_nick.push(line.to_string()),
        }
    }

    fn handle_line(&mut self, websocket: &mut WebSocket<BufferedSocket>, line: &str) -> Flow {
        let Some(parsed) = wire::parse_client_line(line) else {
            return Flow::Continue;
        };
        let first_param = parsed.params.first().map_or("", String::as_str);
        match parsed.command.as_str() {
            "CAP" => {
                let capabilities = parsed.params.get(1).map_or("", String::as_str);
                if first_param.eq_ignore_ascii_case("REQ") {
                    let reply = format!(":tmi.twitch.tv CAP * ACK :{capabilities}\r\n");
                    return self.reply(websocket, reply);
                }
                if first_param.eq_ignore_ascii_case("LS") {
                    let reply = ":tmi.twitch.tv CAP * LS :twitch.tv/membership twitch.tv/tags \
                                 twitch.tv/commands\r\n";
                    return self.reply(websocket, reply.to_string());
                }
                Flow::Continue
            }
            "PASS" => {
                self.pass_param = Some(first_param.to_string());
                Flow::Continue
            }
            "NICK" if self.login.is_none() => self.log_in(websocket, first_param),
            "JOIN" if self.logged_in => self.join(websocket, first_param),
            "PART" if self.logged_in => self.part(websocket, first_param),
            "PING" => {
                let reply = format!(":tmi.twitch.tv PONG tmi.twitch.tv :{first_param}\r\n");
                self.reply(websocket, reply)
            }
            _ => Flow::Continue,
        }
    }

    fn log_in(&mut self, websocket: &mut WebSocket<BufferedSocket>, nick: &str) -> Flow {
        let login = nick.to_lowercase();
        self.login = Some(login.clone());
        let token = self
            .pass_param
            .as_deref()
            .and_then(|pass| pass.strip_prefix("oauth:"));
        let mut state = self.shared.lock_state();
        let outcome = match token {
            None => LoginOutcome::BadlyFormatted,
            Some(token) => match state.accounts.get(&login) {
                Some(record) if record.accepts_access_token(token) => LoginOutcome::Accepted {
                    user_id: record.account.user_id.clone(),
                    color: wire::color_as_shown(&record.current_color),
                },
                _ => LoginOutcome::Rejected,
            },
        };
        if let Some(entry) = state.irc_connections.get_mut(&self.connection_id) {
            entry.login = Some(login.clone());
        }
        let record = state.irc_users.entry(login.clone()).or_default();
        record.lines.append(&mut self.lines_before_nick);
        let refusal_notice = record.refusal_notice.clone();
        if refusal_notice.is_some() || !matches!(outcome, LoginOutcome::Accepted { .. }) {
            record.n_refused_logins += 1;
        }
        drop(state);
        self.shared.notify_changed();
        if let Some(notice) = refusal_notice {
            return self.refuse_login(websocket, &notice);
        }
        let (user_id, color) = match outcome {
            LoginOutcome::Accepted { user_id, color } => (user_id, color),
            LoginOutcome::Rejected => {
                return self.refuse_login(websocket, "Login authentication failed")
            }
            LoginOutcome::BadlyFormatted => {
                return self.refuse_login(websocket, "Improperly formatted auth")
            }
        };
        self.logged_in = true;
        let welcome: String = [
            "001 {login} :Welcome, GLHF!",
            "002 {login} :Your host is tmi.twitch.tv",
            "003 {login} :This server is rather new",
            "004 {login} :-",
            "375 {login} :-",
            "372 {login} :You are in a maze of twisty passages, all alike.",
            "376 {login} :>",
        ]
        .iter()
        .map(|template| format!(":tmi.twitch.tv {}\r\n", template.replace("{login}", &login)))
        .collect();
        let global_user_state = format!(
            "@badge-info=;badges=;color={color};display-name={display};emote-sets=0,300374282;\
             user-id={user_id};user-type= :tmi.twitch.tv GLOBALUSERSTATE\r\n",
            display = wire::display_name_for_login(&login),
        );
        let mut flow = self.reply(websocket, welcome);
        if flow == Flow::Continue {
            flow = self.reply(websocket, global_user_state);
        }
        // Counted once the welcome is on the wire, so a test that saw the login can send
        // lines that arrive after it.
        let mut state = self.shared.lock_state();
        if let Some(entry) = state.irc_connections.get_mut(&self.connection_id) {
            entry.logged_in = true;
        }
        state.irc_users.entry(login).or_default().n_logins += 1;
        drop(state);
        self.shared.notify_changed();
        flow
    }

    fn refuse_login(&mut self, websocket: &mut WebSocket<BufferedSocket>, notice: &str) -> Flow {
        if self.is_silent() {
            return Flow::Continue;
        }
        if self.reply(websocket, format!(":tmi.twitch.tv NOTICE * :{notice}\r\n")) == Flow::End {
            return Flow::End;
        }
        close(websocket, None)
    }

    fn join(&mut self, websocket: &mut WebSocket<BufferedSocket>, channel_list: &str) -> Flow {
        let Some(login) = self.login.clone() else {
            return Flow::Continue;
        };
        let channels: Vec<String> = channel_list
            .split(',')
            .map(wire::normalize_channel)
            .filter(|channel| !channel.is_empty())
            .collect();
        let joined_at = Instant::now();
        let color = {
            let state = self.shared.lock_state();
            let record = state.accounts.get(&login);
            record
                .map(|record| wire::color_as_shown(&record.current_color))
                .unwrap_or_default()
        };
        let display = wire::display_name_for_login(&login);
        let mut flow = Flow::Continue;
        for channel in &channels {
            // Real Twitch mixes single-line and batched frames; so does the fake.
            let frames = [
                format!(":{login}!{login}@{login}.tmi.twitch.tv JOIN #{channel}\r\n"),
                format!(
                    ":{login}.tmi.twitch.tv 353 {login} = #{channel} :{login}\r\n\
                     :{login}.tmi.twitch.tv 366 {login} #{channel} :End of /NAMES list\r\n"
                ),
                format!(
                    "@badge-info=;badges=;color={color};display-name={display};emote-sets=0;\
                     mod=0;subscriber=0;user-type= :tmi.twitch.tv USERSTATE #{channel}\r\n\
                     @emote-only=0;followers-only=-1;r9k=0;room-id={room};slow=0;subs-only=0 \
                     :tmi.twitch.tv ROOMSTATE #{channel}\r\n",
                    room = wire::room_id_for_channel(channel),
                ),
            ];
            for frame in frames {
                if flow == Flow::Continue {
                    flow = self.reply(websocket, frame);
                }
            }
        }
        // Recorded after the answers, like lines; the time is when the JOIN arrived.
        let mut state = self.shared.lock_state();
        let record = state.irc_users.entry(login).or_default();
        record
            .joins
            .extend(channels.into_iter().map(|channel| (joined_at, channel)));
        drop(state);
        self.shared.notify_changed();
        flow
    }

    fn part(&mut self, websocket: &mut WebSocket<BufferedSocket>, channel_list: &str) -> Flow {
        let Some(login) = self.login.clone() else {
            return Flow::Continue;
        };
        for channel in channel_list.split(',').map(wire::normalize_channel) {
            if channel.is_empty() {
                continue;
            }
            let reply = format!(":{login}!{login}@{login}.tmi.twitch.tv PART #{channel}\r\n");
            if self.reply(websocket, reply) == Flow::End {
                return Flow::End;
            }
        }
        Flow::Continue
    }

    /// Sends a frame a test ordered and records when it went out.
    fn send_ordered_frame(&self, websocket: &mut WebSocket<BufferedSocket>, frame: String) -> Flow {
        let sent_at = Instant::now();
        let flow = send(websocket, Message::text(frame.clone()));
        if let Some(login) = &self.login {
            let mut state = self.shared.lock_state();
            state
                .irc_users
                .entry(login.clone())
                .or_default()
                .frames_sent
                .push((sent_at, frame));
            drop(state);
            self.shared.notify_changed();
        }
        flow
    }

    /// Sends an answer unless the login is silent or the connection is closing.
    fn reply(&self, websocket: &mut WebSocket<BufferedSocket>, frame: String) -> Flow {
        if self.is_silent() {
            return Flow::Continue;
        }
        send(websocket, Message::text(frame))
    }

    fn is_silent(&self) -> bool {
        let Some(login) = &self.login else {
            return false;
        };
        let state = self.shared.lock_state();
        state
            .irc_users
            .get(login)
            .is_some_and(|record| record.silent)
    }
}
