//! The demo's scenario: a fake Twitch on loopback, four simulated accounts (Turbo, not
//! Turbo, rainbow, palette) and the real daemon watching them; the accounts take turns
//! chatting and every color change the daemon makes is reported. Does I/O (loopback
//! sockets, threads). Shared by `examples/demo.rs` and `tests/demo.rs`.

// The test uses less of it than the demo.
#![allow(dead_code)]

use std::collections::HashMap;
use std::time::Duration;

use fake_twitch::{Account, FakeTwitch};
use twitch_colorchanger::base::stop::StopSignal;
use twitch_colorchanger::cli::args;
use twitch_colorchanger::config;
use twitch_colorchanger::daemon::Daemon;

/// Long enough for any loopback round trip on a loaded machine; only reached when
/// something is broken.
pub const WAIT: Duration = Duration::from_secs(10);

/// How the demo runs.
pub struct Options {
    /// Time between two chat messages.
    pub message_every: Duration,
    /// Stop after this many messages (the test); `None` runs until the stop signal.
    pub n_messages: Option<usize>,
    /// Extra environment for the daemon's settings (`LOG_LEVEL`, `TWITCH_HTTP_LISTEN` for
    /// the status page …).
    pub env: HashMap<String, String>,
}

/// One simulated account: who it is and what the config asks for it.
pub struct Persona {
    pub account: Account,
    /// How the demo describes it.
    pub description: &'static str,
    /// The fields of its config entry beyond credentials and channels.
    pub settings: serde_json::Value,
}

/// What the demo reports as it runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// Every account is logged in and has joined its channel; the status page is at
    /// `status_url` when `TWITCH_HTTP_LISTEN` asked for it.
    Ready {
        logins: Vec<String>,
        status_url: Option<String>,
    },
    /// An account sent a chat message.
    Said { login: String, text: String },
    /// Twitch (the fake) was asked to change an account's color.
    Changed {
        login: String,
        from: String,
        to: String,
    },
}

/// The demo's four accounts.
pub fn personas() -> Vec<Persona> {
    let persona = |login: &str, user_id: &str, color: &str, turbo: bool| {
        let mut account = Account::new(login, user_id);
        account.color = color.to_string();
        account.turbo = turbo;
        account
    };
    vec![
        Persona {
            account: persona("tina_turbo", "9001", "#1E90FF", true),
            description: "Turbo: any color of the spectrum",
            settings: serde_json::json!({ "is_prime_or_turbo": true, "color_mode": "random" }),
        },
        Persona {
            account: persona("noah_noturbo", "9002", "green", false),
            description: "no Turbo: Twitch's 15 named colors",
            settings: serde_json::json!({ "is_prime_or_turbo": false, "color_mode": "random" }),
        },
        Persona {
            account: persona("rae_rainbow", "9003", "#FF0000", true),
            description: "rainbow: the hue moves 40° per message",
            settings: serde_json::json!({
                "is_prime_or_turbo": true, "color_mode": "rainbow", "rainbow_step": 40
            }),
        },
        Persona {
            account: persona("pat_palette", "9004", "", true),
            description: "palette: cycles through four colors of their own",
            settings: serde_json::json!({
                "is_prime_or_turbo": true,
                "color_mode": "palette",
                "palette": ["#FF7F50", "#9ACD32", "#8A2BE2", "HotPink"],
            }),
        },
    ]
}

const LINES: [&str; 8] = [
    "hello chat",
    "gg",
    "that was close",
    "Kappa",
    "anyone else lagging?",
    "PogChamp",
    "brb",
    "back!",
];

/// Runs the demo until `stop` fires or `options.n_messages` were sent and answered, then
/// shuts the daemon down. Returns the color changes seen, in order.
pub fn run(
    options: &Options,
    stop: &StopSignal,
    mut on_event: impl FnMut(&Event),
) -> Result<Vec<Event>, String> {
    let twitch = FakeTwitch::start();
    let personas = personas();
    let mut entries = Vec::new();
    for persona in &personas {
        twitch.add_user(persona.account.clone());
        let mut entry = persona
            .account
            .config_entry(persona.account.turbo, &[&persona.account.login]);
        for (key, value) in persona.settings.as_object().into_iter().flatten() {
            entry[key] = value.clone();
        }
        entries.push(entry);
    }
    let text = serde_json::json!({ "users": entries }).to_string();
    let (config, _document) = config::parse(&text, std::path::Path::new("demo.json"))
        .map_err(|error| format!("demo config: {error}"))?;
    let mut env = options.env.clone();
    env.insert("TWITCH_IRC_URL".to_string(), twitch.irc_url());
    env.insert("TWITCH_API_URL".to_string(), twitch.api_url());
    env.insert("TWITCH_AUTH_URL".to_string(), twitch.auth_url());
    let settings = args::parse(&[], &env)
        .map_err(|error| error.to_string())?
        .settings;
    let daemon = Daemon::start(&config.users, &settings, None)
        .map_err(|error| format!("cannot start the daemon: {error}"))?;
    let daemon_stop = daemon.stop_signal();
    let status_url = daemon
        .status_address()
        .map(|address| format!("http://{address}/"));
    let outcome = chat(&twitch, &personas, options, status_url, stop, &mut on_event);
    daemon_stop.stop();
    if !daemon.shutdown(WAIT) {
        return Err("the daemon did not stop in time".to_string());
    }
    outcome
}

/// The accounts take turns chatting; each message waits for the color change it causes.
fn chat(
    twitch: &FakeTwitch,
    personas: &[Persona],
    options: &Options,
    status_url: Option<String>,
    stop: &StopSignal,
    on_event: &mut impl FnMut(&Event),
) -> Result<Vec<Event>, String> {
    for persona in personas {
        let login = &persona.account.login;
        if !twitch.wait_joined(login, login, WAIT) {
            return Err(format!("{login} did not join #{login}"));
        }
    }
    on_event(&Event::Ready {
        logins: personas.iter().map(|p| p.account.login.clone()).collect(),
        status_url,
    });
    let mut changes = Vec::new();
    for n_sent in 0.. {
        if options.n_messages.is_some_and(|limit| n_sent >= limit) {
            break;
        }
        if stop.wait_timeout(options.message_every) {
            break;
        }
        let account = &personas[n_sent % personas.len()].account;
        let text = LINES[n_sent % LINES.len()];
        let from = twitch.current_color(&account.user_id);
        twitch.send_line(
            &account.login,
            &FakeTwitch::privmsg_line(
                &account.login,
                &account.user_id,
                &account.login,
                &account.login,
                text,
            ),
        );
        on_event(&Event::Said {
            login: account.login.clone(),
            text: text.to_string(),
        });
        let put = twitch
            .wait_request(
                |request| {
                    request.method == "PUT"
                        && request.path == "/helix/chat/color"
                        && request.query_param("user_id") == Some(account.user_id.as_str())
                },
                WAIT,
            )
            .ok_or_else(|| format!("no color change for {}", account.login))?;
        let changed = Event::Changed {
            login: account.login.clone(),
            from,
            to: put.query_param("color").unwrap_or_default().to_string(),
        };
        on_event(&changed);
        changes.push(changed);
    }
    Ok(changes)
}
