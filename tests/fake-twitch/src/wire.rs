//! Pure text helpers of the fake Twitch: percent decoding, IRC line splitting and building, tag
//! escaping, color validation. No I/O happens here.

/// The 15 color names Helix accepts from every account, in Twitch's spelling.
pub const NAMED_COLORS: [&str; 15] = [
    "blue",
    "blue_violet",
    "cadet_blue",
    "chocolate",
    "coral",
    "dodger_blue",
    "firebrick",
    "golden_rod",
    "green",
    "hot_pink",
    "orange_red",
    "red",
    "sea_green",
    "spring_green",
    "yellow_green",
];

/// The hex value Twitch shows in IRC tags and Helix answers for each named color.
pub(crate) fn named_color_hex(name: &str) -> Option<&'static str> {
    let hex = match name {
        "blue" => "#0000FF",
        "blue_violet" => "#8A2BE2",
        "cadet_blue" => "#5F9EA0",
        "chocolate" => "#D2691E",
        "coral" => "#FF7F50",
        "dodger_blue" => "#1E90FF",
        "firebrick" => "#B22222",
        "golden_rod" => "#DAA520",
        "green" => "#008000",
        "hot_pink" => "#FF69B4",
        "orange_red" => "#FF4500",
        "red" => "#FF0000",
        "sea_green" => "#2E8B57",
        "spring_green" => "#00FF7F",
        "yellow_green" => "#9ACD32",
        _ => return None,
    };
    Some(hex)
}

/// The color as IRC tags and Helix show it: named colors become their hex value, an unset
/// color stays empty.
pub(crate) fn color_as_shown(stored_color: &str) -> String {
    named_color_hex(stored_color).map_or_else(|| stored_color.to_string(), str::to_string)
}

/// The scopes the fake grants to every token it issues or validates.
pub(crate) const GRANTED_SCOPES: [&str; 2] = ["chat:read", "user:manage:chat_color"];

/// Decodes `%XX` escapes (and `+` as a space when `plus_is_space`), replacing bytes that do not
/// form UTF-8 instead of failing, because the fake must record whatever a client sends.
pub(crate) fn percent_decode(text: &str, plus_is_space: bool) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let byte = bytes[index];
        if byte == b'%' && index + 2 < bytes.len() {
            let high = hex_digit_value(bytes[index + 1]);
            let low = hex_digit_value(bytes[index + 2]);
            if let (Some(high), Some(low)) = (high, low) {
                decoded.push(high * 16 + low);
                index += 3;
                continue;
            }
        }
        if byte == b'+' && plus_is_space {
            decoded.push(b' ');
        } else {
            decoded.push(byte);
        }
        index += 1;
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

fn hex_digit_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// Splits an `application/x-www-form-urlencoded` text (a query string or a form body) into
/// decoded pairs, keeping their order and repetitions; a part without `=` gets an empty value.
pub(crate) fn parse_urlencoded(text: &str) -> Vec<(String, String)> {
    text.split('&')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (name, value) = part.split_once('=').unwrap_or((part, ""));
            (percent_decode(name, true), percent_decode(value, true))
        })
        .collect()
}

/// Escapes an IRCv3 tag value the way Twitch does (space as `\s`, `;` as `\:`).
pub(crate) fn escape_tag_value(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for character in value.chars() {
        match character {
            '\\' => escaped.push_str("\\\\"),
            ';' => escaped.push_str("\\:"),
            ' ' => escaped.push_str("\\s"),
            '\r' => escaped.push_str("\\r"),
            '\n' => escaped.push_str("\\n"),
            other => escaped.push(other),
        }
    }
    escaped
}

/// A stable made-up room id for a channel, so ROOMSTATE and PRIVMSG lines of one channel agree.
pub(crate) fn room_id_for_channel(channel_login: &str) -> u32 {
    // FNV-1a keeps the id stable across runs without any state; it only has to look numeric.
    let mut hash: u32 = 0x811c_9dc5;
    for byte in channel_login.bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash % 900_000_000 + 100_000_000
}

/// The display name the fake gives an account: its login with the first letter upper-cased.
pub(crate) fn display_name_for_login(login: &str) -> String {
    let mut characters = login.chars();
    match characters.next() {
        Some(first) => first.to_uppercase().chain(characters).collect(),
        None => String::new(),
    }
}

/// Strips `#` and lower-cases a channel name as given in a JOIN or by a test.
pub(crate) fn normalize_channel(channel: &str) -> String {
    channel.trim().trim_start_matches('#').to_lowercase()
}

/// Splits a WebSocket text frame into IRC lines, tolerating bare `\n` and skipping empty lines.
pub(crate) fn split_frame_into_lines(frame: &str) -> Vec<&str> {
    frame
        .split('\n')
        .map(|line| line.strip_suffix('\r').unwrap_or(line))
        .filter(|line| !line.is_empty())
        .collect()
}

/// The command and parameters of an IRC line sent by a client, tags and prefix dropped.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ClientLine {
    /// The command in upper case (`PASS`, `NICK`, `JOIN`, ...).
    pub(crate) command: String,
    /// The middle parameters followed by the trailing one (without its `:`).
    pub(crate) params: Vec<String>,
}

/// Parses an IRC line just enough to act on the commands a chat client sends.
pub(crate) fn parse_client_line(line: &str) -> Option<ClientLine> {
    let mut rest = line.trim_start();
    if rest.starts_with('@') {
        rest = rest
            .split_once(' ')
            .map_or("", |(_, after)| after)
            .trim_start();
    }
    if rest.starts_with(':') {
        rest = rest
            .split_once(' ')
            .map_or("", |(_, after)| after)
            .trim_start();
    }
    let (command, mut rest) = rest.split_once(' ').unwrap_or((rest, ""));
    if command.is_empty() {
        return None;
    }
    let mut params = Vec::new();
    loop {
        rest = rest.trim_start_matches(' ');
        if rest.is_empty() {
            break;
        }
        if let Some(trailing) = rest.strip_prefix(':') {
            params.push(trailing.to_string());
            break;
        }
        let (param, after) = rest.split_once(' ').unwrap_or((rest, ""));
        params.push(param.to_string());
        rest = after;
    }
    Some(ClientLine {
        command: command.to_ascii_uppercase(),
        params,
    })
}

/// A color given to `PUT /helix/chat/color`, validated.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum RequestedColor {
    /// One of [`NAMED_COLORS`], stored lower-case.
    Named(String),
    /// `#RRGGBB`, stored upper-case.
    Hex(String),
}

/// Validates a decoded `color` query value the way Helix does.
pub(crate) fn parse_requested_color(value: &str) -> Option<RequestedColor> {
    let lowered = value.to_ascii_lowercase();
    if NAMED_COLORS.contains(&lowered.as_str()) {
        return Some(RequestedColor::Named(lowered));
    }
    let digits = value.strip_prefix('#')?;
    if digits.len() == 6 && digits.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return Some(RequestedColor::Hex(format!(
            "#{}",
            digits.to_ascii_uppercase()
        )));
    }
    None
}

/// The reason phrase for the status codes the fake uses.
pub(crate) fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        409 => "Conflict",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Unknown",
    }
}

/// A uuid-looking message id derived from a counter and a seed (for example the clock), so two
/// generated PRIVMSG lines never share an id.
pub(crate) fn uuid_like(counter: u64, seed: u64) -> String {
    let first = split_mix_64(counter ^ seed.rotate_left(17));
    let second = split_mix_64(first ^ counter);
    format!(
        "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
        first >> 32,
        (first >> 16) & 0xffff,
        first & 0x0fff,
        (second >> 48) & 0x0fff,
        second & 0xffff_ffff_ffff
    )
}

fn split_mix_64(input: u64) -> u64 {
    let mut value = input.wrapping_add(0x9e37_79b9_7f4a_7c15);
    value = (value ^ (value >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    value = (value ^ (value >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    value ^ (value >> 31)
}

/// A device flow user code: eight upper-case letters, unique per counter value.
pub(crate) fn user_code_for(counter: u64) -> String {
    let mut remaining = split_mix_64(counter) % 26u64.pow(4);
    let mut suffix = String::new();
    for _ in 0..4 {
        suffix.insert(0, char::from(b'A' + (remaining % 26) as u8));
        remaining /= 26;
    }
    // The counter part keeps codes unique even when the scrambled suffix collides.
    let mut prefix = String::new();
    let mut counter_remaining = counter;
    for _ in 0..4 {
        prefix.insert(0, char::from(b'A' + (counter_remaining % 26) as u8));
        counter_remaining /= 26;
    }
    format!("{prefix}{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decode_handles_escapes_plus_and_broken_escapes() {
        let cases = [
            ("%23AABBCC", false, "#AABBCC"),
            ("%23aabbcc", true, "#aabbcc"),
            (
                "chat%3Aread+user%3Amanage%3Achat_color",
                true,
                "chat:read user:manage:chat_color",
            ),
            ("a+b", false, "a+b"),
            ("100%", true, "100%"),
            ("%2", true, "%2"),
            ("%zz", true, "%zz"),
            ("%e2%9c%93", true, "\u{2713}"),
            ("", true, ""),
        ];
        for (input, plus_is_space, expected) in cases {
            assert_eq!(
                percent_decode(input, plus_is_space),
                expected,
                "input {input:?}"
            );
        }
    }

    #[test]
    fn parse_urlencoded_keeps_order_and_empty_values() {
        let cases: [(&str, Vec<(&str, &str)>); 4] = [
            (
                "user_id=1&color=%23FF0000",
                vec![("user_id", "1"), ("color", "#FF0000")],
            ),
            ("a&b=&c=3", vec![("a", ""), ("b", ""), ("c", "3")]),
            ("", vec![]),
            ("x=1&&x=2", vec![("x", "1"), ("x", "2")]),
        ];
        for (input, expected) in cases {
            let expected: Vec<(String, String)> = expected
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            assert_eq!(parse_urlencoded(input), expected, "input {input:?}");
        }
    }

    #[test]
    fn escape_tag_value_escapes_like_twitch() {
        let cases = [
            ("Riot Games", "Riot\\sGames"),
            ("a;b", "a\\:b"),
            ("back\\slash", "back\\\\slash"),
            ("line\r\nbreak", "line\\r\\nbreak"),
            ("테스트계정420", "테스트계정420"),
            ("trailing ", "trailing\\s"),
        ];
        for (input, expected) in cases {
            assert_eq!(escape_tag_value(input), expected, "input {input:?}");
        }
    }

    #[test]
    fn split_frame_into_lines_skips_empty_lines() {
        let cases: [(&str, Vec<&str>); 5] = [
            ("PING :a\r\nPING :b\r\n", vec!["PING :a", "PING :b"]),
            ("PING :a", vec!["PING :a"]),
            ("\r\n\r\nJOIN #a\r\n", vec!["JOIN #a"]),
            ("NICK a\nJOIN #b\n", vec!["NICK a", "JOIN #b"]),
            ("", vec![]),
        ];
        for (input, expected) in cases {
            assert_eq!(split_frame_into_lines(input), expected, "input {input:?}");
        }
    }

    #[test]
    fn parse_client_line_finds_command_and_params() {
        let cases = [
            ("PASS oauth:abc", Some(("PASS", vec!["oauth:abc"]))),
            ("NICK alice", Some(("NICK", vec!["alice"]))),
            ("JOIN #a,#b", Some(("JOIN", vec!["#a,#b"]))),
            ("PING :tmi.twitch.tv", Some(("PING", vec!["tmi.twitch.tv"]))),
            ("ping", Some(("PING", vec![]))),
            (
                "CAP REQ :twitch.tv/tags twitch.tv/commands",
                Some(("CAP", vec!["REQ", "twitch.tv/tags twitch.tv/commands"])),
            ),
            (
                "@a=b :x!x@x PRIVMSG #c :hi there",
                Some(("PRIVMSG", vec!["#c", "hi there"])),
            ),
            ("PRIVMSG #c :", Some(("PRIVMSG", vec!["#c", ""]))),
            ("", None),
            ("@only-tags", None),
        ];
        for (input, expected) in cases {
            let expected = expected.map(|(command, params)| ClientLine {
                command: command.to_string(),
                params: params.into_iter().map(str::to_string).collect(),
            });
            assert_eq!(parse_client_line(input), expected, "input {input:?}");
        }
    }

    #[test]
    fn parse_requested_color_accepts_names_and_hex_only() {
        let cases = [
            ("blue", Some(RequestedColor::Named("blue".to_string()))),
            (
                "Hot_Pink",
                Some(RequestedColor::Named("hot_pink".to_string())),
            ),
            ("#aabbcc", Some(RequestedColor::Hex("#AABBCC".to_string()))),
            ("#A1B2C3", Some(RequestedColor::Hex("#A1B2C3".to_string()))),
            ("aabbcc", None),
            ("#abc", None),
            ("#gggggg", None),
            ("purple", None),
            ("", None),
        ];
        for (input, expected) in cases {
            assert_eq!(parse_requested_color(input), expected, "input {input:?}");
        }
    }

    #[test]
    fn every_named_color_has_a_hex_value() {
        for name in NAMED_COLORS {
            let hex = named_color_hex(name).expect("hex for named color");
            assert!(
                matches!(parse_requested_color(hex), Some(RequestedColor::Hex(_))),
                "{name}"
            );
        }
        assert_eq!(color_as_shown("blue"), "#0000FF");
        assert_eq!(color_as_shown("#ABCDEF"), "#ABCDEF");
        assert_eq!(color_as_shown(""), "");
    }

    #[test]
    fn display_name_and_channel_helpers() {
        assert_eq!(display_name_for_login("alice"), "Alice");
        assert_eq!(display_name_for_login(""), "");
        assert_eq!(normalize_channel("#Forsen "), "forsen");
        assert_eq!(normalize_channel("pajlada"), "pajlada");
        assert_eq!(room_id_for_channel("forsen"), room_id_for_channel("forsen"));
        assert_ne!(
            room_id_for_channel("forsen"),
            room_id_for_channel("pajlada")
        );
    }

    #[test]
    fn generated_ids_are_unique_and_well_formed() {
        let ids: Vec<String> = (0..100).map(|counter| uuid_like(counter, 42)).collect();
        for id in &ids {
            let lengths: Vec<usize> = id.split('-').map(str::len).collect();
            assert_eq!(lengths, vec![8, 4, 4, 4, 12], "id {id}");
        }
        let mut unique = ids.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), ids.len());

        let codes: Vec<String> = (1..200).map(user_code_for).collect();
        assert!(codes
            .iter()
            .all(|code| code.len() == 8 && code.bytes().all(|b| b.is_ascii_uppercase())));
        let mut unique_codes = codes.clone();
        unique_codes.sort();
        unique_codes.dedup();
        assert_eq!(unique_codes.len(), codes.len());
    }
}
