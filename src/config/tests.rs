//! Table tests for the config area: parsing, validation, positions, environment users and
//! the document written back.

use std::path::Path;
use std::time::Duration;

use serde_json::{Map, Value};

use super::document::Document;
use super::env::users_from_env;
use super::fields::shown_number;
use super::locate::{line_and_column, locate, PathSegment};
use super::model::{ChatTransport, Config, ConfigError, Field, UserConfig};
use super::parse::parse;
use crate::base::ids::Login;
use crate::base::secret::Secret;
use crate::color::{self, Color, ColorMode, NamedColor, PaletteOrder};

use serde_json::json;

const EXAMPLE: &str = include_str!("../../config.example.json");

fn path() -> &'static Path {
    Path::new("config.json")
}

fn parse_ok(text: &str) -> Config {
    match parse(text, path()) {
        Ok((config, _)) => config,
        Err(error) => panic!("unexpected error for {text}: {error}"),
    }
}

fn parse_error(text: &str) -> String {
    match parse(text, path()) {
        Ok(_) => panic!("expected an error for {text}"),
        Err(error) => error.to_string(),
    }
}

/// A valid user object with `changes` applied (a `null` change removes the field).
fn user_json(changes: Value) -> Value {
    let mut user = json!({
        "username": "alice",
        "client_id": "cid123",
        "client_secret": "csecret",
        "access_token": "atoken",
        "refresh_token": "rtoken",
    });
    for (key, value) in changes.as_object().unwrap() {
        if value.is_null() {
            user.as_object_mut().unwrap().remove(key);
        } else {
            user[key] = value.clone();
        }
    }
    user
}

fn one_user(changes: Value) -> String {
    serde_json::to_string_pretty(&json!({ "users": [user_json(changes)] })).unwrap()
}

#[test]
fn minimal_user_gets_defaults() {
    let config = parse_ok(&one_user(json!({})));
    assert_eq!(
        config.users,
        vec![UserConfig {
            username: Login::new("alice"),
            client_id: "cid123".into(),
            client_secret: Secret::new("csecret"),
            access_token: Secret::new("atoken"),
            refresh_token: Secret::new("rtoken"),
            channels: vec![Login::new("alice")],
            is_prime_or_turbo: true,
            enabled: true,
            color_mode: ColorMode::Random,
            change_every: None,
            chat_transport: ChatTransport::Auto,
        }]
    );
}

#[test]
fn fields_are_read() {
    type Check = fn(&UserConfig) -> bool;
    let cases: [(Value, Check); 7] = [
        (json!({"is_prime_or_turbo": false}), |u: &UserConfig| {
            !u.is_prime_or_turbo && u.enabled
        }),
        (json!({"enabled": false}), |u: &UserConfig| {
            u.is_prime_or_turbo && !u.enabled
        }),
        (json!({"username": " #Alice "}), |u: &UserConfig| {
            u.username.as_str() == "alice"
        }),
        (json!({"client_id": " cid123 "}), |u: &UserConfig| {
            u.client_id == "cid123"
        }),
        (json!({"access_token": "oauth:abc"}), |u: &UserConfig| {
            u.access_token.expose() == "abc"
        }),
        (json!({"refresh_token": "OAuth:def"}), |u: &UserConfig| {
            u.refresh_token.expose() == "def"
        }),
        // Tokens and secret may be empty or absent: the device code flow fills them.
        (
            json!({"access_token": "", "refresh_token": null, "client_secret": ""}),
            |u: &UserConfig| {
                u.access_token.is_empty()
                    && u.refresh_token.is_empty()
                    && u.client_secret.is_empty()
            },
        ),
    ];
    for (changes, check) in cases {
        let config = parse_ok(&one_user(changes.clone()));
        assert!(check(&config.users[0]), "changes {changes}");
    }
}

#[test]
fn channels_are_normalised() {
    let cases: [(Value, &[&str]); 8] = [
        (json!(["bob"]), &["bob"]),
        (json!(["#Bob", " CAROL "]), &["bob", "carol"]),
        (json!(["bob", "#bob", "BOB", "carol"]), &["bob", "carol"]),
        (
            json!(["carol", "", "  ", "bob", "carol"]),
            &["carol", "bob"],
        ),
        (json!([]), &["alice"]),
        (json!(["", "#"]), &["alice"]),
        (json!(null), &["alice"]),
        (json!(["alice", "x_1"]), &["alice", "x_1"]),
    ];
    for (channels, expected) in cases {
        let config = parse_ok(&one_user(json!({ "channels": channels })));
        let got: Vec<&str> = config.users[0].channels.iter().map(Login::as_str).collect();
        assert_eq!(got, expected, "channels {channels}");
    }
}

#[test]
fn empty_users_list_is_valid() {
    let cases = [
        r#"{"users": []}"#,
        "\u{feff}{\"users\": []}",
        r#"{"users":[],"x":1}"#,
    ];
    for text in cases {
        assert!(parse_ok(text).users.is_empty(), "{text}");
    }
}

#[test]
fn syntax_errors_give_line_column_and_fix() {
    let cases = [
        // (text, line, column, words in the message)
        ("{\"users\": [}", 1, 12, "expected value"),
        ("{\n  \"users\": [],\n}", 3, 1, "remove the comma"),
        (
            "{\n  // comment\n  \"users\": []\n}",
            2,
            3,
            "use a \"_comment\" field",
        ),
        ("{\"users\": [\n", 2, 0, "ends too early"),
        ("{'users': []}", 1, 2, "double quotes"),
        (
            "{\"users\": [{\"username\": \"ä\" \"x\": 1}]}",
            1,
            29,
            "missing comma",
        ),
    ];
    for (text, line, column, words) in cases {
        let error = parse(text, path()).expect_err(text);
        let ConfigError::Syntax {
            line: got_line,
            column: got_column,
            ..
        } = &error
        else {
            panic!("not a syntax error for {text:?}: {error:?}");
        };
        assert_eq!(
            (*got_line, *got_column),
            (line, column),
            "{text:?}: {error}"
        );
        let shown = error.to_string();
        let prefix = format!("config.json:{line}:{column}: ");
        assert!(shown.starts_with(&prefix), "{shown}");
        assert!(shown.contains(" — "), "{shown}");
        assert!(shown.contains(words), "{text:?}: {shown}");
        assert!(!shown.contains(" at line "), "{shown}");
    }
}

#[test]
fn semantic_errors_name_file_user_field_and_fix() {
    let two_users = |second: Value| {
        serde_json::to_string_pretty(&json!({
            "users": [user_json(json!({})), user_json(second)]
        }))
        .unwrap()
    };
    let cases: Vec<(String, &str)> =
        vec![
        ("".into(), "config.json: the file is empty — "),
        ("\"users\"".into(), "config.json: the top level must be an object — "),
        (r#"{"user": []}"#.into(), "config.json: there is no \"users\" list — "),
        (
            r#"{"users": {}}"#.into(),
            "config.json:1:11: field \"users\" must be a list of users — ",
        ),
        (
            r#"{"users": [{"username": "a", "client_id": "c"}, 5]}"#.into(),
            "config.json:1:49: user 2: must be an object — ",
        ),
        (
            two_users(json!({"username": null})),
            "config.json:10:5: user 2: field \"username\" is missing — ",
        ),
        (
            two_users(json!({"username": " # "})),
            "config.json:11:19: user 2: field \"username\" is empty — ",
        ),
        (
            two_users(json!({"username": 7})),
            "user 2: field \"username\" must be a string — ",
        ),
        (
            two_users(json!({"username": "bob smith"})),
            "user 2 (bob smith): field \"username\" \"bob smith\" is not a Twitch login name — ",
        ),
        (
            two_users(json!({"username": "ALICE"})),
            "config.json:11:19: user 2 (alice): field \"username\" repeats user 1 — \
             each Twitch account may appear only once",
        ),
        (
            two_users(json!({"username": "bob", "client_id": " "})),
            "user 2 (bob): field \"client_id\" is empty — set it to the client id of your \
             Twitch app from https://dev.twitch.tv/console",
        ),
        (
            two_users(json!({"username": "bob", "client_id": null})),
            "user 2 (bob): field \"client_id\" is missing — ",
        ),
        (
            two_users(json!({"username": "bob", "client_id": 12})),
            "user 2 (bob): field \"client_id\" must be a string — ",
        ),
        (
            two_users(json!({"username": "bob", "access_token": 12})),
            "user 2 (bob): field \"access_token\" must be a string — ",
        ),
        (
            two_users(json!({"username": "bob", "client_secret": ["x"]})),
            "user 2 (bob): field \"client_secret\" must be a string — ",
        ),
        (
            two_users(json!({"username": "bob", "channels": "bob"})),
            "config.json:16:19: user 2 (bob): field \"channels\" must be a list of channel \
             names — write it like [\"bob\"]",
        ),
        (
            two_users(json!({"username": "bob", "channels": ["bob", 3]})),
            "user 2 (bob): field \"channels\" entry 2 must be a string — ",
        ),
        (
            two_users(json!({"username": "bob", "channels": ["bob", "a b"]})),
            "user 2 (bob): field \"channels\" entry 2 \"a b\" is not a channel name — ",
        ),
        (
            two_users(json!({"username": "bob", "is_prime_or_turbo": "false"})),
            "user 2 (bob): field \"is_prime_or_turbo\" must be true or false — write it \
             without quotes",
        ),
        (
            two_users(json!({"username": "bob", "enabled": 0})),
            "user 2 (bob): field \"enabled\" must be true or false — ",
        ),
    ];
    for (text, expected) in cases {
        let shown = parse_error(&text);
        assert!(
            shown.contains(expected),
            "{text}\ngot:      {shown}\nexpected: {expected}"
        );
        assert!(shown.starts_with("config.json"), "{shown}");
    }
}

#[test]
fn placeholders_are_recognised_in_every_field() {
    let cases = [
        (json!({"username": "your_twitch_username"}), "username"),
        (json!({"username": "YOUR_TWITCH_USERNAME"}), "username"),
        (json!({"client_id": "your_client_id"}), "client_id"),
        (
            json!({"client_secret": "Your_Client_Secret"}),
            "client_secret",
        ),
        (json!({"access_token": "your_access_token"}), "access_token"),
        (
            json!({"access_token": "oauth:your_access_token"}),
            "access_token",
        ),
        (
            json!({"refresh_token": "your_refresh_token"}),
            "refresh_token",
        ),
        (
            json!({"channels": ["alice", "#some_friends_channel"]}),
            "channels",
        ),
    ];
    for (changes, field) in cases {
        let shown = parse_error(&one_user(changes.clone()));
        let expected_field = format!("field \"{field}\" ");
        assert!(shown.contains(&expected_field), "{changes}: {shown}");
        assert!(shown.contains("placeholder"), "{changes}: {shown}");
        assert!(shown.contains("replace it with"), "{changes}: {shown}");
    }
}

#[test]
fn example_file_is_valid_json_and_fails_on_first_placeholder() {
    let example: Value = serde_json::from_str(EXAMPLE).expect("example is valid JSON");
    assert_eq!(example["users"].as_array().map(Vec::len), Some(2));
    let error = parse(EXAMPLE, Path::new("config.example.json")).unwrap_err();
    let ConfigError::Invalid(invalid) = &error else {
        panic!("not a semantic error: {error:?}");
    };
    assert_eq!(
        invalid.user.as_deref(),
        Some("user 1 (your_twitch_username)")
    );
    assert_eq!(invalid.field.as_deref(), Some("username"));
    assert_eq!(invalid.position, Some((6, 19)));
    let shown = error.to_string();
    assert!(
        shown.contains("placeholder \"your_twitch_username\""),
        "{shown}"
    );
    assert!(shown.contains("README \"Getting tokens\""), "{shown}");
}

#[test]
fn example_file_parses_once_placeholders_are_replaced() {
    let filled = EXAMPLE
        .replace("your_second_twitch_username", "bob")
        .replace("your_twitch_username", "alice")
        .replace("some_friends_channel", "carol")
        .replace("\"your_", "\"real_");
    let config = parse_ok(&filled);
    let names: Vec<&str> = config.users.iter().map(|u| u.username.as_str()).collect();
    assert_eq!(names, ["alice", "bob"]);
    assert!(config.users[0].is_prime_or_turbo);
    assert!(!config.users[1].is_prime_or_turbo);
    let channels: Vec<&str> = config.users[1].channels.iter().map(Login::as_str).collect();
    assert_eq!(channels, ["bob", "carol"]);
    assert_eq!(config.users[0].color_mode, ColorMode::Random);
    assert_eq!(config.users[0].change_every, None);
    assert_eq!(
        config.users[1].color_mode,
        ColorMode::Palette {
            colors: colors(&["sea_green", "#1E90FF", "hot_pink"]),
            order: PaletteOrder::Cycle,
        }
    );
}

/// The example's first user with its mode switched still loads: the example's values
/// for the fields that mode reads are valid.
#[test]
fn example_file_modes_all_load() {
    let filled = EXAMPLE
        .replace("your_second_twitch_username", "bob")
        .replace("your_twitch_username", "alice")
        .replace("some_friends_channel", "carol")
        .replace("\"your_", "\"real_");
    let cases = [
        ("\"preset\"", ColorMode::Preset),
        ("\"rainbow\"", ColorMode::Rainbow { step_degrees: 30.0 }),
        ("\"readable\"", ColorMode::Readable),
    ];
    for (mode, expected) in cases {
        let text = filled.replacen(
            "\"color_mode\": \"random\"",
            &format!("\"color_mode\": {mode}"),
            1,
        );
        assert_eq!(parse_ok(&text).users[0].color_mode, expected, "{mode}");
    }
    let text = filled.replacen(
        "\"change_every_seconds\": 0",
        "\"change_every_seconds\": 90",
        1,
    );
    assert_eq!(
        parse_ok(&text).users[0].change_every,
        Some(Duration::from_secs(90))
    );
}

fn colors(texts: &[&str]) -> Vec<Color> {
    texts
        .iter()
        .map(|text| color::parse_user_color(text).unwrap())
        .collect()
}

fn hex_color(r: u8, g: u8, b: u8) -> Color {
    Color::Hex(color::Rgb::new(r, g, b))
}

#[test]
fn color_fields_are_read() {
    let rainbow = |step_degrees: f64| ColorMode::Rainbow { step_degrees };
    let palette = |colors: Vec<Color>, order: PaletteOrder| ColorMode::Palette { colors, order };
    let seconds = |n: u64| Some(Duration::from_secs(n));
    let cases: Vec<(Value, ColorMode, Option<Duration>)> = vec![
        (json!({}), ColorMode::Random, None),
        (
            json!({"color_mode": null, "rainbow_step": null, "palette": null,
                "palette_order": null, "change_every_seconds": null}),
            ColorMode::Random,
            None,
        ),
        (json!({"color_mode": "random"}), ColorMode::Random, None),
        (json!({"color_mode": "Preset"}), ColorMode::Preset, None),
        (
            json!({"color_mode": " READABLE "}),
            ColorMode::Readable,
            None,
        ),
        (json!({"color_mode": "rainbow"}), rainbow(30.0), None),
        (
            json!({"color_mode": "rainbow", "rainbow_step": 45}),
            rainbow(45.0),
            None,
        ),
        (
            json!({"color_mode": "rainbow", "rainbow_step": 7.5}),
            rainbow(7.5),
            None,
        ),
        (
            json!({"color_mode": "rainbow", "rainbow_step": 1}),
            rainbow(1.0),
            None,
        ),
        (
            json!({"color_mode": "rainbow", "rainbow_step": 359}),
            rainbow(359.0),
            None,
        ),
        (
            json!({"color_mode": "rainbow", "rainbow_step": -30}),
            rainbow(-30.0),
            None,
        ),
        (
            json!({"color_mode": "rainbow", "rainbow_step": -359.0}),
            rainbow(-359.0),
            None,
        ),
        // Settings the mode does not use are validated, then dropped.
        (
            json!({"rainbow_step": 90, "palette": ["red"], "palette_order": "random"}),
            ColorMode::Random,
            None,
        ),
        (
            json!({"color_mode": "palette",
                   "palette": ["Sea_Green", "#1E90FF", "hot_pink", "abc", "a1B2c3", " RED "]}),
            palette(
                vec![
                    Color::Named(NamedColor::SeaGreen),
                    hex_color(0x1E, 0x90, 0xFF),
                    Color::Named(NamedColor::HotPink),
                    hex_color(0xAA, 0xBB, 0xCC),
                    hex_color(0xA1, 0xB2, 0xC3),
                    Color::Named(NamedColor::Red),
                ],
                PaletteOrder::Cycle,
            ),
            None,
        ),
        (
            json!({"color_mode": "PALETTE", "palette": ["blue"], "palette_order": "cycle"}),
            palette(colors(&["blue"]), PaletteOrder::Cycle),
            None,
        ),
        (
            json!({"color_mode": "palette", "palette": ["blue", "red"], "palette_order": "Random"}),
            palette(colors(&["blue", "red"]), PaletteOrder::Random),
            None,
        ),
        (json!({"change_every_seconds": 0}), ColorMode::Random, None),
        (
            json!({"change_every_seconds": 0.0}),
            ColorMode::Random,
            None,
        ),
        (
            json!({"change_every_seconds": 10}),
            ColorMode::Random,
            seconds(10),
        ),
        (
            json!({"change_every_seconds": 60.0}),
            ColorMode::Random,
            seconds(60),
        ),
        (
            json!({"change_every_seconds": 604_800}),
            ColorMode::Random,
            seconds(604_800),
        ),
        (
            json!({"color_mode": "rainbow", "change_every_seconds": 300}),
            rainbow(30.0),
            seconds(300),
        ),
    ];
    for (changes, mode, change_every) in cases {
        let config = parse_ok(&one_user(changes.clone()));
        assert_eq!(config.users[0].color_mode, mode, "changes {changes}");
        assert_eq!(
            config.users[0].change_every, change_every,
            "changes {changes}"
        );
    }
}

#[test]
fn color_field_errors_name_user_field_and_fix() {
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"color_mode": "sparkle"}),
            "user 1 (alice): field \"color_mode\" \"sparkle\" is not a color mode — use one \
             of \"random\", \"preset\", \"rainbow\", \"palette\" or \"readable\"",
        ),
        (
            json!({"color_mode": ""}),
            "field \"color_mode\" \"\" is not a color mode — ",
        ),
        (
            json!({"color_mode": 3}),
            "field \"color_mode\" must be a string — write one of \"random\", ",
        ),
        (
            json!({"color_mode": ["rainbow"]}),
            "field \"color_mode\" must be a string — ",
        ),
        (
            json!({"rainbow_step": 0}),
            "field \"rainbow_step\" 0 is not a step from 1 to 359 degrees — use e.g. 30 \
             (the default), or a negative step such as -30 to go round the other way",
        ),
        (
            json!({"rainbow_step": 0.5}),
            "field \"rainbow_step\" 0.5 is not a step ",
        ),
        (
            json!({"rainbow_step": 360}),
            "field \"rainbow_step\" 360 is not a step ",
        ),
        (
            json!({"rainbow_step": -360}),
            "field \"rainbow_step\" -360 is not a step ",
        ),
        (
            json!({"rainbow_step": -0.9}),
            "field \"rainbow_step\" -0.9 is not a step ",
        ),
        (json!({"rainbow_step": 1e300}), "field \"rainbow_step\" "),
        (
            json!({"rainbow_step": "30"}),
            "field \"rainbow_step\" must be a number of degrees — write it without quotes",
        ),
        (
            json!({"palette": "red"}),
            "field \"palette\" must be a list of colors — write it like [\"sea_green\", ",
        ),
        (
            json!({"palette": {"a": "red"}}),
            "field \"palette\" must be a list of colors — ",
        ),
        (
            json!({"palette": ["red", 5]}),
            "field \"palette\" entry 2 must be a string — write each color in quotes",
        ),
        (
            json!({"color_mode": "palette", "palette": ["red", "blue", "purple"]}),
            "field \"palette\" entry 3 \"purple\" is neither a color name nor #RRGGBB or #RGB hex \
             — use a named color (blue, blue_violet, cadet_blue, chocolate, coral, \
             dodger_blue, firebrick, golden_rod, green, hot_pink, orange_red, red, \
             sea_green, spring_green, yellow_green; any case) or hex like \"#1E90FF\"",
        ),
        // A bad palette is an error even when the mode does not use it.
        (
            json!({"palette": ["#12345"]}),
            "field \"palette\" entry 1 \"#12345\" is neither a color name",
        ),
        (
            json!({"palette": ["red", "  "]}),
            "field \"palette\" entry 2 is empty — use a named",
        ),
        (
            json!({"palette": ["#GGGGGG"]}),
            "field \"palette\" entry 1 \"#GGGGGG\" is neither",
        ),
        (
            json!({"color_mode": "palette"}),
            "field \"palette\" is missing, but color_mode is \"palette\" — add \
             \"palette\": [\"sea_green\", \"#1E90FF\", \"hot_pink\"] with your colors, or \
             choose another color_mode",
        ),
        (
            json!({"color_mode": "palette", "palette": null}),
            "field \"palette\" is missing, but ",
        ),
        (
            json!({"color_mode": "palette", "palette": []}),
            "field \"palette\" is empty, but color_mode is \"palette\" — ",
        ),
        (
            json!({"palette_order": "shuffle"}),
            "field \"palette_order\" \"shuffle\" is not a palette order — use \"cycle\" \
             (in the listed order) or \"random\" (shuffled)",
        ),
        (
            json!({"palette_order": true}),
            "field \"palette_order\" must be a string — write \"palette_order\": \"cycle\" \
             or \"palette_order\": \"random\"",
        ),
        (
            json!({"chat_transport": 1}),
            "field \"chat_transport\" must be a string — write \"chat_transport\": \"auto\", \
             \"chat_transport\": \"irc\" or \"chat_transport\": \"eventsub\"",
        ),
        (
            json!({"change_every_seconds": 5}),
            "field \"change_every_seconds\" 5 is shorter than the minimum of 10 seconds — \
             use a whole number of seconds from 10 to 604800 (a week), or 0 to change \
             colors only when you chat",
        ),
        (
            json!({"change_every_seconds": -60}),
            "field \"change_every_seconds\" -60 is negative — ",
        ),
        (
            json!({"change_every_seconds": 30.5}),
            "field \"change_every_seconds\" 30.5 is not a whole number of seconds — ",
        ),
        (
            json!({"change_every_seconds": 604_801}),
            "field \"change_every_seconds\" 604801 is longer than the maximum of 604800 \
             seconds — ",
        ),
        (
            json!({"change_every_seconds": "60"}),
            "field \"change_every_seconds\" must be a number of seconds — write it \
             without quotes",
        ),
        (
            json!({"change_every_seconds": true}),
            "field \"change_every_seconds\" must be a number of seconds — ",
        ),
    ];
    for (changes, expected) in cases {
        let shown = parse_error(&one_user(changes.clone()));
        assert!(
            shown.contains(expected),
            "{changes}\ngot:      {shown}\nexpected: {expected}"
        );
        assert!(shown.starts_with("config.json:"), "{shown}");
        assert!(shown.contains("user 1 (alice): field "), "{shown}");
    }
}

#[test]
fn color_field_errors_point_at_the_value() {
    let cases = [
        (
            "{\"users\": [{\"username\": \"alice\", \"client_id\": \"c\",\n  \
             \"color_mode\": \"palette\", \"palette\": [\"red\", \"blue\", \"purple\"]}]}",
            "config.json:2:55: user 1 (alice): field \"palette\" entry 3 \"purple\" ",
        ),
        // A missing palette is pointed out at the mode that needs it.
        (
            "{\"users\": [{\"username\": \"alice\", \"client_id\": \"c\",\n  \
             \"color_mode\": \"Palette\"}]}",
            "config.json:2:17: user 1 (alice): field \"palette\" is missing",
        ),
        (
            "{\"users\": [{\"username\": \"alice\", \"client_id\": \"c\",\n  \
             \"palette\": [], \"color_mode\": \"palette\"}]}",
            "config.json:2:14: user 1 (alice): field \"palette\" is empty",
        ),
        (
            "{\"users\": [{\"username\": \"alice\", \"client_id\": \"c\",\n  \
             \"rainbow_step\": 400}]}",
            "config.json:2:19: user 1 (alice): field \"rainbow_step\" 400 is not a step",
        ),
        (
            "{\"users\": [{\"username\": \"alice\", \"client_id\": \"c\",\n\
             \"change_every_seconds\": 1}]}",
            "config.json:2:25: user 1 (alice): field \"change_every_seconds\" 1 is shorter",
        ),
    ];
    for (text, expected) in cases {
        let shown = parse_error(text);
        assert!(
            shown.starts_with(expected),
            "{text}\ngot:      {shown}\nexpected: {expected}"
        );
    }
}

#[test]
fn errors_never_show_secrets() {
    let cases = [
        json!({"client_secret": 123456789}),
        json!({"access_token": {"v": "hunter2"}}),
        json!({"channels": 5, "access_token": "hunter2"}),
    ];
    for changes in cases {
        let shown = parse_error(&one_user(changes.clone()));
        assert!(
            !shown.contains("hunter2") && !shown.contains("123456789"),
            "{shown}"
        );
    }
    let config = parse_ok(&one_user(json!({"access_token": "hunter2"})));
    assert!(!format!("{config:?}").contains("hunter2"));
    let (_, document) = parse(&one_user(json!({"access_token": "hunter2"})), path()).unwrap();
    assert!(!format!("{document:?}").contains("hunter2"));
}

#[test]
fn document_keeps_unknown_fields_and_key_order() {
    let text = r#"{
  "_comment": "top",
  "users": [
    {
      "_comment": "first",
      "username": "Alice",
      "access_token": "old",
      "client_id": "cid",
      "extra": {"nested": [1, 2]}
    },
    {"username": "bob", "client_id": "cid"}
  ],
  "later": true
}"#;
    let (_, mut document) = parse(text, path()).unwrap();
    assert!(document.set_user_field(&Login::new("ALICE"), Field::AccessToken, json!("new")));
    assert!(document.set_user_field(&Login::new("alice"), Field::RefreshToken, json!("r2")));
    assert!(document.set_user_field(&Login::new("bob"), Field::Enabled, json!(false)));
    assert!(!document.set_user_field(&Login::new("carol"), Field::Enabled, json!(false)));
    let expected = r#"{
  "_comment": "top",
  "users": [
    {
      "_comment": "first",
      "username": "Alice",
      "access_token": "new",
      "client_id": "cid",
      "extra": {
        "nested": [
          1,
          2
        ]
      },
      "refresh_token": "r2"
    },
    {
      "username": "bob",
      "client_id": "cid",
      "enabled": false
    }
  ],
  "later": true
}
"#;
    assert_eq!(document.to_json_string(), expected);
    // What we write, we read back the same way.
    let (config, _) = parse(&document.to_json_string(), path()).unwrap();
    assert_eq!(config.users[0].access_token.expose(), "new");
    assert!(!config.users[1].enabled);
}

#[test]
fn document_from_users_round_trips() {
    let users = vec![
        UserConfig {
            username: Login::new("alice"),
            client_id: "cid".into(),
            client_secret: Secret::new("sec"),
            access_token: Secret::new("at"),
            refresh_token: Secret::new("rt"),
            channels: vec![Login::new("alice"), Login::new("bob")],
            is_prime_or_turbo: false,
            enabled: true,
            color_mode: ColorMode::Random,
            change_every: None,
            chat_transport: ChatTransport::Auto,
        },
        UserConfig {
            username: Login::new("bob"),
            client_id: "cid2".into(),
            client_secret: Secret::default(),
            access_token: Secret::default(),
            refresh_token: Secret::default(),
            channels: vec![Login::new("bob")],
            is_prime_or_turbo: true,
            enabled: false,
            color_mode: ColorMode::Random,
            change_every: None,
            chat_transport: ChatTransport::Auto,
        },
    ];
    let document = Document::from_users(&users);
    let text = document.to_json_string();
    assert!(text.starts_with("{\n  \"users\": [\n    {\n      \"username\": \"alice\","));
    assert!(text.ends_with("}\n"));
    let (config, reparsed) = parse(&text, path()).unwrap();
    assert_eq!(config.users, users);
    assert_eq!(reparsed, document);
}

#[test]
fn document_from_users_writes_only_color_fields_that_differ_from_defaults() {
    let user = |color_mode: ColorMode, change_every: Option<Duration>| UserConfig {
        username: Login::new("alice"),
        client_id: "cid".into(),
        client_secret: Secret::default(),
        access_token: Secret::default(),
        refresh_token: Secret::default(),
        channels: vec![Login::new("alice")],
        is_prime_or_turbo: true,
        enabled: true,
        color_mode,
        change_every,
        chat_transport: ChatTransport::default(),
    };
    let cases: Vec<(UserConfig, Value)> = vec![
        (user(ColorMode::Random, None), json!({})),
        (
            user(ColorMode::Preset, None),
            json!({"color_mode": "preset"}),
        ),
        (
            user(ColorMode::Readable, None),
            json!({"color_mode": "readable"}),
        ),
        (
            user(ColorMode::Rainbow { step_degrees: 30.0 }, None),
            json!({"color_mode": "rainbow"}),
        ),
        (
            user(
                ColorMode::Rainbow {
                    step_degrees: -45.0,
                },
                None,
            ),
            json!({"color_mode": "rainbow", "rainbow_step": -45}),
        ),
        (
            user(ColorMode::Rainbow { step_degrees: 7.5 }, None),
            json!({"color_mode": "rainbow", "rainbow_step": 7.5}),
        ),
        (
            user(
                ColorMode::Palette {
                    colors: colors(&["Sea_Green", "1e90ff", "#ABC"]),
                    order: PaletteOrder::Cycle,
                },
                None,
            ),
            json!({"color_mode": "palette", "palette": ["sea_green", "#1E90FF", "#AABBCC"]}),
        ),
        (
            user(
                ColorMode::Palette {
                    colors: colors(&["red", "blue"]),
                    order: PaletteOrder::Random,
                },
                Some(Duration::from_secs(60)),
            ),
            json!({"color_mode": "palette", "palette": ["red", "blue"],
                   "palette_order": "random", "change_every_seconds": 60}),
        ),
        (
            user(ColorMode::Random, Some(Duration::from_secs(3600))),
            json!({"change_every_seconds": 3600}),
        ),
    ];
    let color_keys = [
        "color_mode",
        "rainbow_step",
        "palette",
        "palette_order",
        "change_every_seconds",
    ];
    for (user, expected) in cases {
        let document = Document::from_users(std::slice::from_ref(&user));
        let written = &document.root["users"][0];
        let mut got = Map::new();
        for key in color_keys {
            if let Some(value) = written.get(key) {
                got.insert(key.to_string(), value.clone());
            }
        }
        assert_eq!(Value::Object(got), expected, "{user:?}");
        // What is written reads back as the same user.
        let (config, _) = parse(&document.to_json_string(), path()).unwrap();
        assert_eq!(config.users, [user]);
    }
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect()
}

#[test]
fn env_users_are_read_until_the_first_gap() {
    let vars = env(&[
        ("TWITCH_USERNAME_1", "Alice"),
        ("TWITCH_CLIENT_ID_1", "cid1"),
        ("TWITCH_CLIENT_SECRET_1", "sec1"),
        ("TWITCH_ACCESS_TOKEN_1", "oauth:at1"),
        ("TWITCH_REFRESH_TOKEN_1", "rt1"),
        ("TWITCH_CHANNELS_1", "#Bob, carol,,bob"),
        ("USE_RANDOM_COLORS_1", "no"),
        ("TWITCH_USERNAME_2", "dave"),
        ("TWITCH_CLIENT_ID_2", "cid2"),
        // User 3 is missing, so user 4 is never read.
        ("TWITCH_USERNAME_4", "erin"),
        ("TWITCH_CLIENT_ID_4", "cid4"),
        ("PATH", "/usr/bin"),
    ]);
    let users = users_from_env(&vars).unwrap();
    assert_eq!(
        users,
        vec![
            UserConfig {
                username: Login::new("alice"),
                client_id: "cid1".into(),
                client_secret: Secret::new("sec1"),
                access_token: Secret::new("at1"),
                refresh_token: Secret::new("rt1"),
                channels: vec![Login::new("bob"), Login::new("carol")],
                is_prime_or_turbo: false,
                enabled: true,
                color_mode: ColorMode::Random,
                change_every: None,
                chat_transport: ChatTransport::Auto,
            },
            UserConfig {
                username: Login::new("dave"),
                client_id: "cid2".into(),
                client_secret: Secret::default(),
                access_token: Secret::default(),
                refresh_token: Secret::default(),
                channels: vec![Login::new("dave")],
                is_prime_or_turbo: true,
                enabled: true,
                color_mode: ColorMode::Random,
                change_every: None,
                chat_transport: ChatTransport::Auto,
            },
        ]
    );
    assert_eq!(users_from_env(&[]).unwrap(), vec![]);
    let blank = env(&[("TWITCH_USERNAME_1", " "), ("TWITCH_CLIENT_ID_1", "c")]);
    assert_eq!(users_from_env(&blank).unwrap(), vec![]);
}

#[test]
fn env_use_random_colors_values() {
    let cases = [
        (None, Some(true)),
        (Some(""), Some(true)),
        (Some("true"), Some(true)),
        (Some("TRUE"), Some(true)),
        (Some("1"), Some(true)),
        (Some("yes"), Some(true)),
        (Some("false"), Some(false)),
        (Some(" False "), Some(false)),
        (Some("0"), Some(false)),
        (Some("no"), Some(false)),
        (Some("maybe"), None),
    ];
    for (value, expected) in cases {
        let mut vars = env(&[("TWITCH_USERNAME_1", "alice"), ("TWITCH_CLIENT_ID_1", "c")]);
        if let Some(value) = value {
            vars.push(("USE_RANDOM_COLORS_1".into(), value.into()));
        }
        match (users_from_env(&vars), expected) {
            (Ok(users), Some(expected)) => {
                assert_eq!(users[0].is_prime_or_turbo, expected, "{value:?}")
            }
            (Err(error), None) => {
                let shown = error.to_string();
                assert!(
                    shown.starts_with("environment variable USE_RANDOM_COLORS_1 must be"),
                    "{shown}"
                );
            }
            (result, _) => panic!("{value:?}: unexpected {result:?}"),
        }
    }
}

#[test]
fn env_errors_name_the_variable() {
    let base = [
        ("TWITCH_USERNAME_1", "alice"),
        ("TWITCH_CLIENT_ID_1", "cid"),
        ("TWITCH_USERNAME_2", "bob"),
        ("TWITCH_CLIENT_ID_2", "cid"),
    ];
    type Overrides<'a> = &'a [(&'a str, &'a str)];
    let cases: [(Overrides, &str, &str); 8] = [
        (
            &[("TWITCH_CLIENT_ID_2", "")],
            "TWITCH_CLIENT_ID_2",
            "is empty",
        ),
        (&[("TWITCH_CLIENT_ID_2", "-")], "", ""),
        (
            &[("TWITCH_USERNAME_2", "Alice")],
            "TWITCH_USERNAME_2",
            "repeats TWITCH_USERNAME_1",
        ),
        (
            &[("TWITCH_USERNAME_2", "a-b")],
            "TWITCH_USERNAME_2",
            "is not a Twitch login",
        ),
        (
            &[("TWITCH_USERNAME_2", "your_twitch_username")],
            "TWITCH_USERNAME_2",
            "placeholder",
        ),
        (
            &[("TWITCH_ACCESS_TOKEN_2", "oauth:your_access_token")],
            "TWITCH_ACCESS_TOKEN_2",
            "placeholder",
        ),
        (
            &[("TWITCH_CHANNELS_2", "bob,c d")],
            "TWITCH_CHANNELS_2",
            "entry 2 \"c d\"",
        ),
        (
            &[("TWITCH_CLIENT_ID_1", "your_client_id")],
            "TWITCH_CLIENT_ID_1",
            "placeholder",
        ),
    ];
    for (overrides, variable, words) in cases {
        let mut vars = env(&base);
        for (key, value) in overrides.iter() {
            vars.retain(|(k, _)| k != key);
            vars.push((key.to_string(), value.to_string()));
        }
        let result = users_from_env(&vars);
        if variable.is_empty() {
            assert!(result.is_ok(), "{overrides:?}: {result:?}");
            continue;
        }
        let shown = result.expect_err(variable).to_string();
        let prefix = format!("environment variable {variable} ");
        assert!(shown.starts_with(&prefix), "{shown}");
        assert!(shown.contains(words), "{shown}");
        assert!(shown.contains(" — "), "{shown}");
    }
    let missing = env(&[("TWITCH_USERNAME_1", "alice")]);
    let shown = users_from_env(&missing).unwrap_err().to_string();
    assert!(
        shown.starts_with("environment variable TWITCH_CLIENT_ID_1 is missing — "),
        "{shown}"
    );
}

#[test]
fn locate_finds_values() {
    let text = "{\"a\": [1, {\"b\\\"\": \"x,]}\", \"c\": [ true , null ]}], \"d\": {}}";
    let cases: [(&[PathSegment], Option<&str>); 7] = [
        (&[PathSegment::Key("a")], Some("[1,")),
        (
            &[
                PathSegment::Key("a"),
                PathSegment::Index(1),
                PathSegment::Key("c"),
            ],
            Some("[ true"),
        ),
        (
            &[
                PathSegment::Key("a"),
                PathSegment::Index(1),
                PathSegment::Key("c"),
                PathSegment::Index(1),
            ],
            Some("null"),
        ),
        (
            &[
                PathSegment::Key("a"),
                PathSegment::Index(1),
                PathSegment::Key("b\""),
            ],
            Some("\"x,]}\""),
        ),
        (&[PathSegment::Key("d")], Some("{}")),
        (&[PathSegment::Key("a"), PathSegment::Index(2)], None),
        (&[PathSegment::Key("zz")], None),
    ];
    for (steps, expected) in cases {
        let got = locate(text, steps).map(|offset| &text[offset..]);
        match (got, expected) {
            (Some(got), Some(expected)) => assert!(got.starts_with(expected), "{got}"),
            (None, None) => {}
            (got, expected) => panic!("got {got:?}, expected {expected:?}"),
        }
    }
    assert_eq!(line_and_column("ab\ncäd", 6), (2, 3));
}

#[test]
fn env_color_variables_are_read() {
    let rainbow = |step_degrees: f64| ColorMode::Rainbow { step_degrees };
    type Vars<'a> = &'a [(&'a str, &'a str)];
    let cases: Vec<(Vars, ColorMode, Option<Duration>)> = vec![
        (&[], ColorMode::Random, None),
        (
            &[
                ("TWITCH_COLOR_MODE_1", " "),
                ("TWITCH_RAINBOW_STEP_1", ""),
                ("TWITCH_PALETTE_1", ""),
                ("TWITCH_PALETTE_ORDER_1", ""),
                ("TWITCH_CHANGE_EVERY_SECONDS_1", ""),
            ],
            ColorMode::Random,
            None,
        ),
        (
            &[("TWITCH_COLOR_MODE_1", "Preset")],
            ColorMode::Preset,
            None,
        ),
        (
            &[("TWITCH_COLOR_MODE_1", "readable")],
            ColorMode::Readable,
            None,
        ),
        (&[("TWITCH_COLOR_MODE_1", "RAINBOW")], rainbow(30.0), None),
        (
            &[
                ("TWITCH_COLOR_MODE_1", "rainbow"),
                ("TWITCH_RAINBOW_STEP_1", " -12.5 "),
            ],
            rainbow(-12.5),
            None,
        ),
        (
            &[
                ("TWITCH_COLOR_MODE_1", "palette"),
                ("TWITCH_PALETTE_1", "Sea_Green, #1E90FF,,hot_pink,"),
            ],
            ColorMode::Palette {
                colors: colors(&["sea_green", "#1E90FF", "hot_pink"]),
                order: PaletteOrder::Cycle,
            },
            None,
        ),
        (
            &[
                ("TWITCH_COLOR_MODE_1", "palette"),
                ("TWITCH_PALETTE_1", "red,ABC"),
                ("TWITCH_PALETTE_ORDER_1", "random"),
                ("TWITCH_CHANGE_EVERY_SECONDS_1", "120"),
            ],
            ColorMode::Palette {
                colors: colors(&["red", "#AABBCC"]),
                order: PaletteOrder::Random,
            },
            Some(Duration::from_secs(120)),
        ),
        (
            &[("TWITCH_CHANGE_EVERY_SECONDS_1", "0")],
            ColorMode::Random,
            None,
        ),
        // Another user's variables are not this user's.
        (
            &[("TWITCH_COLOR_MODE_2", "sparkle")],
            ColorMode::Random,
            None,
        ),
    ];
    for (extra, mode, change_every) in cases {
        let mut vars = env(&[("TWITCH_USERNAME_1", "alice"), ("TWITCH_CLIENT_ID_1", "c")]);
        vars.extend(env(extra));
        let users = users_from_env(&vars).unwrap();
        assert_eq!(users[0].color_mode, mode, "{extra:?}");
        assert_eq!(users[0].change_every, change_every, "{extra:?}");
        // Env users written to a new file read back the same.
        let text = Document::from_users(&users).to_json_string();
        assert_eq!(parse_ok(&text).users, users, "{extra:?}");
    }
}

#[test]
fn env_color_variable_errors_name_the_variable() {
    type Vars<'a> = &'a [(&'a str, &'a str)];
    let cases: [(Vars, &str); 10] = [
        (
            &[("TWITCH_COLOR_MODE_1", "sparkle")],
            "environment variable TWITCH_COLOR_MODE_1 \"sparkle\" is not a color mode — use \
             one of \"random\", ",
        ),
        (
            &[("TWITCH_RAINBOW_STEP_1", "fast")],
            "environment variable TWITCH_RAINBOW_STEP_1 must be a number of degrees, not \
             \"fast\" — ",
        ),
        (
            &[("TWITCH_RAINBOW_STEP_1", "0")],
            "environment variable TWITCH_RAINBOW_STEP_1 0 is not a step from 1 to 359 \
             degrees — ",
        ),
        (
            &[("TWITCH_RAINBOW_STEP_1", "inf")],
            "environment variable TWITCH_RAINBOW_STEP_1 inf is not a step ",
        ),
        (
            &[("TWITCH_COLOR_MODE_1", "palette")],
            "environment variable TWITCH_PALETTE_1 is missing, but TWITCH_COLOR_MODE_1 is \
             \"palette\" — add TWITCH_PALETTE_1=sea_green,#1E90FF,hot_pink with your colors",
        ),
        (
            &[
                ("TWITCH_COLOR_MODE_1", "palette"),
                ("TWITCH_PALETTE_1", " , "),
            ],
            "environment variable TWITCH_PALETTE_1 is empty, but ",
        ),
        (
            &[("TWITCH_PALETTE_1", "red, purple")],
            "environment variable TWITCH_PALETTE_1 entry 2 \"purple\" is neither a color name \
             nor #RRGGBB or #RGB hex — use a named color (",
        ),
        (
            &[("TWITCH_PALETTE_ORDER_1", "backwards")],
            "environment variable TWITCH_PALETTE_ORDER_1 \"backwards\" is not a palette order",
        ),
        (
            &[("TWITCH_CHANGE_EVERY_SECONDS_1", "1m")],
            "environment variable TWITCH_CHANGE_EVERY_SECONDS_1 must be a number of seconds, \
             not \"1m\" — ",
        ),
        (
            &[("TWITCH_CHANGE_EVERY_SECONDS_1", "9")],
            "environment variable TWITCH_CHANGE_EVERY_SECONDS_1 9 is shorter than the minimum \
             of 10 seconds — ",
        ),
    ];
    for (extra, expected) in cases {
        let mut vars = env(&[("TWITCH_USERNAME_1", "alice"), ("TWITCH_CLIENT_ID_1", "c")]);
        vars.extend(env(extra));
        let shown = users_from_env(&vars).expect_err(expected).to_string();
        assert!(
            shown.starts_with(expected),
            "{extra:?}\ngot:      {shown}\nexpected: {expected}"
        );
    }
}

#[test]
fn shown_numbers_stay_short() {
    let cases = [
        (0.0, "0"),
        (-360.0, "-360"),
        (7.5, "7.5"),
        (1e300, "1e300"),
        (0.00001, "1e-5"),
        (f64::NAN, "NaN"),
    ];
    for (value, expected) in cases {
        assert_eq!(shown_number(value), expected);
    }
}

#[test]
fn chat_transport_is_read_from_file_and_environment() {
    // (file value, expected)
    let file_cases = [
        (Value::Null, ChatTransport::Auto),
        (json!("irc"), ChatTransport::Irc),
        (json!("EventSub"), ChatTransport::EventSub),
        (json!(" auto "), ChatTransport::Auto),
    ];
    for (value, expected) in file_cases {
        let config = parse_ok(&one_user(json!({ "chat_transport": value })));
        assert_eq!(config.users[0].chat_transport, expected, "{value}");
    }
    let error = parse_error(&one_user(json!({"chat_transport": "smoke"})));
    assert!(
        error.contains("field \"chat_transport\"")
            && error.contains("\"smoke\" is not a chat transport")
            && error.contains("\"eventsub\""),
        "{error}"
    );
    let error = parse_error(&one_user(json!({"chat_transport": 1})));
    assert!(error.contains("must be a string"), "{error}");

    let env_cases = [
        (None, ChatTransport::Auto),
        (Some("irc"), ChatTransport::Irc),
        (Some("eventsub"), ChatTransport::EventSub),
    ];
    for (value, expected) in env_cases {
        let mut vars = env(&[("TWITCH_USERNAME_1", "alice"), ("TWITCH_CLIENT_ID_1", "c")]);
        if let Some(value) = value {
            vars.extend(env(&[("TWITCH_CHAT_TRANSPORT_1", value)]));
        }
        let users = users_from_env(&vars).unwrap();
        assert_eq!(users[0].chat_transport, expected, "{value:?}");
        // Env users written to a new file read back the same.
        let text = Document::from_users(&users).to_json_string();
        assert_eq!(parse_ok(&text).users, users, "{value:?}");
    }
    let vars = env(&[
        ("TWITCH_USERNAME_1", "alice"),
        ("TWITCH_CLIENT_ID_1", "c"),
        ("TWITCH_CHAT_TRANSPORT_1", "pigeon"),
    ]);
    let error = users_from_env(&vars).unwrap_err().to_string();
    assert!(
        error.contains("TWITCH_CHAT_TRANSPORT_1") && error.contains("not a chat transport"),
        "{error}"
    );
}
