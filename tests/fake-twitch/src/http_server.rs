//! The fake's HTTP/1.1 server for Helix and OAuth; it does I/O (accepts loopback TCP
//! connections, one thread per connection, keep-alive, optionally behind TLS).
//!
//! Every request is recorded before it is answered. A queued scripted answer for the method and
//! path wins over the default behaviour of [`crate::routes`].

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::Instant;

use native_tls::TlsAcceptor;

use crate::{routes, unix_now, wire, HttpRequest, ScriptedResponse, Shared};

/// Bodies above this size are refused; the daemon never sends anything close to it.
const MAX_BODY_BYTES: usize = 1 << 20;

/// Accepts connections until the fake shuts down; with `tls`, every connection starts with a TLS
/// handshake.
pub(crate) fn run_listener(listener: TcpListener, shared: Arc<Shared>, tls: Option<TlsAcceptor>) {
    shared.accept_until_shutdown(&listener, |stream, mut state| {
        let connection_id = state.new_connection_id();
        drop(state);
        let connection_shared = Arc::clone(&shared);
        let connection_tls = tls.clone();
        let spawned = thread::Builder::new()
            .name(format!("fake-http-{connection_id}"))
            .spawn(move || {
                serve_connection(
                    connection_id,
                    stream,
                    connection_tls.as_ref(),
                    &connection_shared,
                )
            });
        if let Ok(handle) = spawned {
            shared.keep_thread(handle);
        }
    });
}

fn serve_connection(
    connection_id: u64,
    stream: TcpStream,
    tls: Option<&TlsAcceptor>,
    shared: &Shared,
) {
    let (Ok(registered), Ok(control)) = (stream.try_clone(), stream.try_clone()) else {
        return;
    };
    {
        // Registering under the lock that also sets `shutting_down` guarantees that the drop
        // either sees this socket and shuts it down, or this thread sees the flag.
        let mut state = shared.lock_state();
        if state.shutting_down {
            return;
        }
        state.http_streams.insert(connection_id, registered);
    }
    // The handshake runs after the registration, so that dropping the fake wakes it too.
    match tls {
        None => serve_requests(connection_id, stream, shared),
        Some(acceptor) => {
            if let Ok(tls_stream) = acceptor.accept(stream) {
                serve_requests(connection_id, tls_stream, shared);
            }
        }
    }
    shared.lock_state().http_streams.remove(&connection_id);
    shared.notify_changed();
    let _ = control.shutdown(Shutdown::Both);
}

/// Answers requests on one connection until the client closes it, asks to close it, sends
/// something unreadable or the fake stops.
fn serve_requests(connection_id: u64, stream: impl Read + Write, shared: &Shared) {
    // One object reads and writes: a TLS session cannot be split into halves. The reader's
    // buffer only holds bytes read ahead, so writing to the stream under it is safe.
    let mut reader = BufReader::new(stream);
    while let Ok(Some(parsed)) = read_request(&mut reader) {
        let keep_alive = parsed.keep_alive;
        let mut request = parsed.request;
        request.connection = connection_id;
        let response = {
            let mut state = shared.lock_state();
            let key = (request.method.to_ascii_uppercase(), request.path.clone());
            let scripted = state.scripted_responses.get_mut(&key).and_then(|queue| {
                let index = queue.iter().position(|response| response.fits(&request))?;
                queue.remove(index)
            });
            let mut response = match scripted {
                Some(response) => response,
                None => routes::default_response(&mut state, &request, unix_now().as_secs()),
            };
            if let Some(delay) = state
                .delays
                .get_mut(&key)
                .and_then(|queue| queue.pop_front())
            {
                response.delay = Some(delay);
            }
            state.http_requests.push(request);
            response
        };
        shared.notify_changed();
        if let Some(delay) = response.delay {
            if shared.wait_for_shutdown(delay) {
                break;
            }
        }
        if write_response(reader.get_mut(), &response, keep_alive).is_err() || !keep_alive {
            break;
        }
    }
}

struct ParsedRequest {
    request: HttpRequest,
    keep_alive: bool,
}

fn invalid(message: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.to_string())
}

/// Reads one request; `None` at a clean end of stream between requests.
fn read_request(reader: &mut impl BufRead) -> io::Result<Option<ParsedRequest>> {
    let mut request_line = String::new();
    // Empty lines between requests are allowed by RFC 9112.
    while request_line.trim().is_empty() {
        request_line.clear();
        if reader.read_line(&mut request_line)? == 0 {
            return Ok(None);
        }
    }
    let mut parts = request_line.split_whitespace();
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid("bad request line"));
    };
    let mut headers = Vec::new();
    loop {
        let mut header_line = String::new();
        if reader.read_line(&mut header_line)? == 0 {
            return Err(invalid("end of stream in headers"));
        }
        let header_line = header_line.trim_end_matches(['\r', '\n']);
        if header_line.is_empty() {
            break;
        }
        let (name, value) = header_line
            .split_once(':')
            .ok_or_else(|| invalid("bad header"))?;
        headers.push((name.trim().to_string(), value.trim().to_string()));
    }
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    let chunked =
        header("Transfer-Encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let body = if chunked {
        read_chunked_body(reader)?
    } else {
        let length = match header("Content-Length") {
            Some(length) => length
                .parse::<usize>()
                .map_err(|_| invalid("bad content length"))?,
            None => 0,
        };
        if length > MAX_BODY_BYTES {
            return Err(invalid("body too large"));
        }
        let mut body = vec![0u8; length];
        reader.read_exact(&mut body)?;
        body
    };
    let connection = header("Connection")
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    let keep_alive = if version.eq_ignore_ascii_case("HTTP/1.0") {
        connection.contains("keep-alive")
    } else {
        !connection.contains("close")
    };
    let is_form = header("Content-Type").is_some_and(|v| {
        v.to_ascii_lowercase()
            .starts_with("application/x-www-form-urlencoded")
    });
    let body = String::from_utf8_lossy(&body).into_owned();
    // An absolute-form target (`http://host/path`) is reduced to its path.
    let target = match target.strip_prefix("http://") {
        Some(rest) => rest.find('/').map_or("/", |slash| &rest[slash..]),
        None => target,
    };
    // A raw `#` starts a fragment, which clients never send: drop it like they would.
    let target = target.split_once('#').map_or(target, |(before, _)| before);
    let (path, raw_query) = target.split_once('?').unwrap_or((target, ""));
    let request = HttpRequest {
        method: method.to_string(),
        path: path.to_string(),
        raw_query: raw_query.to_string(),
        query: wire::parse_urlencoded(raw_query),
        form: if is_form {
            wire::parse_urlencoded(&body)
        } else {
            Vec::new()
        },
        headers,
        body,
        at: Instant::now(),
        connection: 0,
    };
    Ok(Some(ParsedRequest {
        request,
        keep_alive,
    }))
}

fn read_chunked_body(reader: &mut impl BufRead) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut size_line = String::new();
        if reader.read_line(&mut size_line)? == 0 {
            return Err(invalid("end of stream in chunked body"));
        }
        let size_text = size_line.trim().split(';').next().unwrap_or("");
        let size = usize::from_str_radix(size_text, 16).map_err(|_| invalid("bad chunk size"))?;
        if size == 0 {
            // Trailer fields end with an empty line.
            loop {
                let mut trailer = String::new();
                if reader.read_line(&mut trailer)? == 0 || trailer.trim().is_empty() {
                    return Ok(body);
                }
            }
        }
        if body.len() + size > MAX_BODY_BYTES {
            return Err(invalid("body too large"));
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..])?;
        let mut line_end = String::new();
        reader.read_line(&mut line_end)?;
    }
}

fn write_response(
    writer: &mut impl Write,
    response: &ScriptedResponse,
    keep_alive: bool,
) -> io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {} {}\r\n",
        response.status,
        wire::reason_phrase(response.status)
    );
    for (name, value) in &response.headers {
        // The fake owns framing: a scripted length or connection header would desynchronise it.
        if name.eq_ignore_ascii_case("Content-Length") || name.eq_ignore_ascii_case("Connection") {
            continue;
        }
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n", response.body.len()));
    if !keep_alive {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(response.body.as_bytes());
    writer.write_all(&bytes)?;
    writer.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str) -> io::Result<Option<ParsedRequest>> {
        read_request(&mut io::Cursor::new(raw.as_bytes().to_vec()))
    }

    #[test]
    fn parses_requests_of_the_shapes_clients_send() {
        let cases = [
            (
                "PUT /helix/chat/color?user_id=1&color=%23AABBCC HTTP/1.1\r\nHost: x\r\n\r\n",
                "PUT",
                "/helix/chat/color",
                vec![("user_id", "1"), ("color", "#AABBCC")],
                "",
                true,
            ),
            (
                "POST /oauth2/token HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\n\
                 Content-Length: 13\r\nConnection: close\r\n\r\ngrant_type=ab",
                "POST",
                "/oauth2/token",
                vec![],
                "grant_type=ab",
                false,
            ),
            (
                "POST /oauth2/device HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\
                 5\r\nclien\r\n6\r\nt_id=a\r\n0\r\n\r\n",
                "POST",
                "/oauth2/device",
                vec![],
                "client_id=a",
                true,
            ),
            ("GET http://127.0.0.1:1/helix/users HTTP/1.0\r\n\r\n", "GET", "/helix/users", vec![], "", false),
            (
                "PUT /helix/chat/color?user_id=1&color=#AABBCC HTTP/1.1\r\n\r\n",
                "PUT",
                "/helix/chat/color",
                vec![("user_id", "1"), ("color", "")],
                "",
                true,
            ),
        ];
        for (raw, method, path, query, body, keep_alive) in cases {
            let parsed = parse(raw).expect("parse").expect("a request");
            assert_eq!(parsed.request.method, method, "{raw:?}");
            assert_eq!(parsed.request.path, path, "{raw:?}");
            let query: Vec<(String, String)> = query
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            assert_eq!(parsed.request.query, query, "{raw:?}");
            assert_eq!(parsed.request.body, body, "{raw:?}");
            assert_eq!(parsed.keep_alive, keep_alive, "{raw:?}");
        }
    }

    #[test]
    fn form_fields_are_decoded_only_for_form_bodies() {
        let form = parse(
            "POST /oauth2/token HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\n\
             Content-Length: 9\r\n\r\na=1&b=x+y",
        )
        .unwrap()
        .unwrap();
        assert_eq!(form.request.form_param("b"), Some("x y"));
        let json = parse(
            "POST /x HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 3\r\n\r\na=1",
        )
        .unwrap()
        .unwrap();
        assert!(json.request.form.is_empty());
    }

    #[test]
    fn end_of_stream_between_requests_is_not_an_error() {
        assert!(parse("").unwrap().is_none());
        assert!(parse("\r\n").unwrap().is_none());
        assert!(parse("GET / HTTP/1.1\r\nHost").is_err());
        assert!(parse("nonsense\r\n\r\n").is_err());
    }

    #[test]
    fn responses_always_carry_a_content_length() {
        let cases = [
            (ScriptedResponse::status(204), true, "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n"),
            (
                ScriptedResponse::json(400, "{}").with_header("Content-Length", "99"),
                false,
                "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\
                 Connection: close\r\n\r\n{}",
            ),
        ];
        for (response, keep_alive, expected) in cases {
            let mut written = Vec::new();
            write_response(&mut written, &response, keep_alive).unwrap();
            assert_eq!(String::from_utf8(written).unwrap(), expected);
        }
    }
}
