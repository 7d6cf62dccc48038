//! The fake's IRC-over-WebSocket server; it does I/O (accepts loopback TCP connections and runs
//! one thread per connection plus one raw reader thread).
//!
//! Each connection thread owns its WebSocket. The socket is read by a separate thread that
//! only forwards raw bytes over a channel, so the connection thread can `select!` over incoming
//! bytes, frames ordered by tests and the shutdown signal, and nobody polls. The WebSocket reads
//! from an in-memory buffer that answers `WouldBlock` when empty, the non-blocking mode
//! tungstenite supports, and writes straight to the socket.
//!
//! The EventSub server (`eventsub_server`) reuses this transport: the reader thread, the TLS
//! handshake and the buffered socket.
//!
//! With TLS the same split holds one layer down: the raw bytes feed an in-memory stream under
//! the TLS session (OpenSSL reads it in non-blocking mode), whose plaintext feeds the
//! WebSocket's buffer; writes go through the TLS session to the socket. A TLS session cannot be
//! read and written from two threads, so this keeps all of it on the connection thread.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::Instant;

use crossbeam_channel::{select, Receiver, Sender};
use native_tls::{TlsAcceptor, TlsStream};
use tungstenite::handshake::HandshakeError;
use tungstenite::{Message, WebSocket};

use crate::wire;
use crate::{IrcConnectionCommand, IrcConnectionEntry, Shared};

/// Accepts connections until the fake shuts down; with `tls`, every connection starts with a TLS
/// handshake.
pub(crate) fn run_listener(listener: TcpListener, shared: Arc<Shared>, tls: Option<TlsAcceptor>) {
    for incoming in listener.incoming() {
        let Ok(stream) = incoming else {
            if shared.is_shutting_down() {
                break;
            }
            continue;
        };
        // Answers go out as several small writes; Nagle's algorithm would hold each one back
        // until the client's delayed acknowledgement, adding tens of milliseconds per answer.
        let _ = stream.set_nodelay(true);
        let (command_sender, command_receiver) = crossbeam_channel::unbounded();
        let mut state = shared.lock_state();
        if state.shutting_down {
            break;
        }
        state.n_irc_connections_accepted += 1;
        if state.n_irc_refusals_pending > 0 {
            state.n_irc_refusals_pending -= 1;
            drop(state);
            shared.notify_changed();
            let _ = stream.shutdown(Shutdown::Both);
            continue;
        }
        let connection_id = state.new_connection_id();
        let entry = IrcConnectionEntry {
            login: None,
            logged_in: false,
            accepts_frames: true,
            commands: command_sender,
        };
        state.irc_connections.insert(connection_id, entry);
        drop(state);
        shared.notify_changed();
        let connection_shared = Arc::clone(&shared);
        let connection_tls = tls.clone();
        let spawned = thread::Builder::new()
            .name(format!("fake-irc-{connection_id}"))
            .spawn(move || {
                run_connection(
                    connection_id,
                    stream,
                    connection_tls.as_ref(),
                    &connection_shared,
                    &command_receiver,
                );
                connection_shared
                    .lock_state()
                    .irc_connections
                    .remove(&connection_id);
                connection_shared.notify_changed();
            });
        match spawned {
            Ok(handle) => shared.keep_thread(handle),
            Err(_) => {
                shared.lock_state().irc_connections.remove(&connection_id);
            }
        }
    }
}

/// Runs one connection to its end, then shuts its socket down and joins its reader thread.
fn run_connection(
    connection_id: u64,
    stream: TcpStream,
    tls: Option<&TlsAcceptor>,
    shared: &Arc<Shared>,
    commands: &Receiver<IrcConnectionCommand>,
) {
    let (Ok(reader_stream), Ok(control_stream)) = (stream.try_clone(), stream.try_clone()) else {
        return;
    };
    let (bytes_sender, bytes_receiver) = crossbeam_channel::bounded(64);
    let reader = thread::Builder::new()
        .name(format!("fake-irc-read-{connection_id}"))
        .spawn(move || forward_raw_bytes(reader_stream, &bytes_sender));
    let transport = match (&reader, tls) {
        (Err(_), _) => None,
        (Ok(_), None) => Some(Transport::Plain(stream)),
        (Ok(_), Some(acceptor)) => {
            accept_tls(acceptor, stream, &bytes_receiver, commands, shared).map(Transport::Tls)
        }
    };
    if let Some(transport) = transport {
        let mut connection = IrcConnection {
            connection_id,
            shared: Arc::clone(shared),
            login: None,
            pass_param: None,
            logged_in: false,
            lines_before_nick: Vec::new(),
        };
        connection.serve(BufferedSocket::new(transport), &bytes_receiver, commands);
    }
    // Shutting the socket down wakes the reader thread blocked in read().
    let _ = control_stream.shutdown(Shutdown::Both);
    drop(bytes_receiver);
    if let Ok(reader) = reader {
        let _ = reader.join();
    }
}

/// Forwards what the socket delivers until end of stream, an error, or nobody listening.
pub(crate) fn forward_raw_bytes(mut stream: TcpStream, bytes_sender: &Sender<Vec<u8>>) {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(n_read) => {
                if bytes_sender.send(buffer[..n_read].to_vec()).is_err() {
                    break;
                }
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
}

/// Runs the server side of a TLS handshake over the raw bytes the reader thread forwards;
/// `None` when it fails, the client goes away, a test drops the connection or the fake stops.
pub(crate) fn accept_tls<Command>(
    acceptor: &TlsAcceptor,
    socket: TcpStream,
    bytes_receiver: &Receiver<Vec<u8>>,
    commands: &Receiver<Command>,
    shared: &Shared,
) -> Option<TlsStream<RawSocket>> {
    let shutdown_receiver = shared.shutdown_receiver.clone();
    let mut handshake = acceptor.accept(RawSocket::new(socket));
    loop {
        let mut interrupted = match handshake {
            Ok(tls) => return Some(tls),
            Err(native_tls::HandshakeError::Failure(_)) => return None,
            Err(native_tls::HandshakeError::WouldBlock(interrupted)) => interrupted,
        };
        select! {
            recv(bytes_receiver) -> bytes => interrupted.get_mut().push_incoming(bytes.ok()),
            recv(commands) -> _ => return None,
            recv(shutdown_receiver) -> _ => return None,
        }
        handshake = interrupted.handshake();
    }
}

/// The stream under a TLS session: reads come from raw bytes pushed by the connection thread
/// (`WouldBlock` when none are there yet, which OpenSSL passes on as "want read"), writes go
/// straight to the socket.
#[derive(Debug)]
pub(crate) struct RawSocket {
    incoming: Vec<u8>,
    read_position: usize,
    incoming_ended: bool,
    socket: TcpStream,
}

impl RawSocket {
    fn new(socket: TcpStream) -> RawSocket {
        RawSocket {
            incoming: Vec::new(),
            read_position: 0,
            incoming_ended: false,
            socket,
        }
    }

    fn push_incoming(&mut self, bytes: Option<Vec<u8>>) {
        push_bytes(
            &mut self.incoming,
            &mut self.read_position,
            &mut self.incoming_ended,
            bytes,
        );
    }
}

impl Read for RawSocket {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let available = &self.incoming[self.read_position..];
        if available.is_empty() {
            if self.incoming_ended {
                return Ok(0);
            }
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n_copied = available.len().min(buffer.len());
        buffer[..n_copied].copy_from_slice(&available[..n_copied]);
        self.read_position += n_copied;
        Ok(n_copied)
    }
}

impl Write for RawSocket {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.socket.write(bytes)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.socket.flush()
    }
}

/// Appends pushed bytes to a buffer whose front part up to `read_position` was consumed;
/// `None` marks the end of the stream.
fn push_bytes(
    incoming: &mut Vec<u8>,
    read_position: &mut usize,
    incoming_ended: &mut bool,
    bytes: Option<Vec<u8>>,
) {
    match bytes {
        Some(bytes) => {
            if *read_position == incoming.len() {
                incoming.clear();
                *read_position = 0;
            }
            incoming.extend_from_slice(&bytes);
        }
        None => *incoming_ended = true,
    }
}

/// What carries the WebSocket's bytes: the socket itself or a TLS session over it.
#[derive(Debug)]
pub(crate) enum Transport {
    Plain(TcpStream),
    Tls(TlsStream<RawSocket>),
}

/// The stream the WebSocket sees: reads come from bytes pushed by the connection thread
/// (`WouldBlock` when none are there yet), writes go to the transport or are discarded while
/// the login is silent.
#[derive(Debug)]
pub(crate) struct BufferedSocket {
    incoming: Vec<u8>,
    read_position: usize,
    incoming_ended: bool,
    /// During the handshake, reads stop at the end of the HTTP request so that frames sent
    /// right behind it are not taken as junk after the request.
    pub(crate) handshake_pending: bool,
    pub(crate) discard_writes: bool,
    transport: Transport,
}

impl BufferedSocket {
    pub(crate) fn new(transport: Transport) -> BufferedSocket {
        BufferedSocket {
            incoming: Vec::new(),
            read_position: 0,
            incoming_ended: false,
            handshake_pending: true,
            discard_writes: false,
            transport,
        }
    }

    /// Takes raw bytes from the reader thread (`None` at the end of the stream); with TLS,
    /// decrypts everything they complete.
    pub(crate) fn push_incoming(&mut self, bytes: Option<Vec<u8>>) {
        let tls = match &mut self.transport {
            Transport::Plain(_) => {
                push_bytes(
                    &mut self.incoming,
                    &mut self.read_position,
                    &mut self.incoming_ended,
                    bytes,
                );
                return;
            }
            Transport::Tls(tls) => tls,
        };
        tls.get_mut().push_incoming(bytes);
        let mut plaintext = [0u8; 16 * 1024];
        loop {
            match tls.read(&mut plaintext) {
                Ok(0) => {
                    self.incoming_ended = true;
                    return;
                }
                Ok(n_read) => push_bytes(
                    &mut self.incoming,
                    &mut self.read_position,
                    &mut self.incoming_ended,
                    Some(plaintext[..n_read].to_vec()),
                ),
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.incoming_ended = true;
                    return;
                }
            }
        }
    }
}

impl Read for BufferedSocket {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let mut available = &self.incoming[self.read_position..];
        if available.is_empty() {
            if self.incoming_ended {
                return Ok(0);
            }
            return Err(io::ErrorKind::WouldBlock.into());
        }
        if self.handshake_pending {
            if let Some(end) = available
                .windows(4)
                .position(|window| window == b"\r\n\r\n")
            {
                available = &available[..end + 4];
            }
        }
        let n_copied = available.len().min(buffer.len());
        buffer[..n_copied].copy_from_slice(&available[..n_copied]);
        self.read_position += n_copied;
        Ok(n_copied)
    }
}

impl Write for BufferedSocket {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        if self.discard_writes {
            return Ok(bytes.len());
        }
        match &mut self.transport {
            Transport::Plain(socket) => socket.write(bytes),
            Transport::Tls(tls) => tls.write(bytes),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.transport {
            Transport::Plain(socket) => socket.flush(),
            Transport::Tls(tls) => tls.flush(),
        }
    }
}

/// Whether the connection goes on after handling something.
#[derive(Debug, PartialEq, Eq)]
enum Flow {
    Continue,
    End,
}

enum LoginOutcome {
    Accepted { user_id: String, color: String },
    Rejected,
    BadlyFormatted,
}

struct IrcConnection {
    connection_id: u64,
    shared: Arc<Shared>,
    /// The NICK of this connection, lower-cased, once given.
    login: Option<String>,
    /// The parameter of the last PASS (`oauth:<token>`).
    pass_param: Option<String>,
    logged_in: bool,
    /// Lines received before NICK; they are filed under the login once it is known.
    lines_before_nick: Vec<String>,
}

impl IrcConnection {
    fn serve(
        &mut self,
        socket: BufferedSocket,
        bytes_receiver: &Receiver<Vec<u8>>,
        commands: &Receiver<IrcConnectionCommand>,
    ) {
        let shutdown_receiver = self.shared.shutdown_receiver.clone();
        let mut handshake = tungstenite::accept(socket);
        let mut websocket = loop {
            let mut interrupted = match handshake {
                Ok(websocket) => break websocket,
                Err(HandshakeError::Failure(_)) => return,
                Err(HandshakeError::Interrupted(interrupted)) => interrupted,
            };
            select! {
                recv(bytes_receiver) -> bytes => interrupted.get_mut().get_mut().push_incoming(bytes.ok()),
                // No command targets a connection before its NICK except drop and close.
                recv(commands) -> _ => return,
                recv(shutdown_receiver) -> _ => return,
            }
            handshake = interrupted.handshake();
        };
        websocket.get_mut().handshake_pending = false;
        // Frames that arrived together with the handshake request are already buffered.
        if self.read_available_messages(&mut websocket) == Flow::End {
            return;
        }
        loop {
            let flow = select! {
                recv(bytes_receiver) -> bytes => {
                    websocket.get_mut().push_incoming(bytes.ok());
                    self.read_available_messages(&mut websocket)
                }
                recv(commands) -> command => match command {
                    Ok(IrcConnectionCommand::Frame(frame)) => self.send_ordered_frame(&mut websocket, frame),
                    Ok(IrcConnectionCommand::Close) => close(&mut websocket),
                    Ok(IrcConnectionCommand::Drop) | Err(_) => Flow::End,
                },
                recv(shutdown_receiver) -> _ => Flow::End,
            };
            if flow == Flow::End {
                return;
            }
        }
    }

    /// Handles every complete message buffered so far; tungstenite answers pings and close
    /// frames itself during these reads (unless the login is silent).
    fn read_available_messages(&mut self, websocket: &mut WebSocket<BufferedSocket>) -> Flow {
        loop {
            websocket.get_mut().discard_writes = self.is_silent();
            let message = websocket.read();
            websocket.get_mut().discard_writes = false;
            match message {
                Ok(Message::Text(text)) => {
                    if self.handle_frame(websocket, text.as_str()) == Flow::End {
                        return Flow::End;
                    }
                }
                Ok(_) => {}
                Err(tungstenite::Error::Io(error)) if error.kind() == io::ErrorKind::WouldBlock => {
                    return Flow::Continue;
                }
                Err(_) => return Flow::End,
            }
        }
    }

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
        close(websocket)
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
        let flow = send_frame(websocket, frame.clone());
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
        send_frame(websocket, frame)
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

fn send_frame(websocket: &mut WebSocket<BufferedSocket>, frame: String) -> Flow {
    // After a close frame nothing more may be sent; the connection still waits for the
    // client's close answer.
    if !websocket.can_write() {
        return Flow::Continue;
    }
    match websocket.send(Message::text(frame)) {
        Ok(()) => Flow::Continue,
        Err(_) => Flow::End,
    }
}

/// Sends a close frame; the connection ends when the client answers it or goes away.
fn close(websocket: &mut WebSocket<BufferedSocket>) -> Flow {
    if !websocket.can_write() {
        return Flow::Continue;
    }
    match websocket.close(None) {
        Ok(()) => Flow::Continue,
        Err(_) => Flow::End,
    }
}
