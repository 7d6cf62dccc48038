//! `cargo run --release --example demo`: see the daemon work without a Twitch account. The
//! real daemon (this crate's library, as `run` starts it) runs against the in-process fake
//! Twitch with four simulated accounts that take turns chatting; every color change is
//! printed as it happens, and the status page is served on http://127.0.0.1:8080/ (or
//! `--listen ADDR`; another free port when 8080 is taken). Ctrl-C stops it. Does I/O
//! (terminal, loopback sockets).

#[path = "demo/scenario.rs"]
mod scenario;

use std::collections::HashMap;
use std::io::IsTerminal;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use scenario::{Event, Options};
use twitch_colorchanger::base::stop::StopSignal;
use twitch_colorchanger::color::parse_user_color;

fn main() {
    let mut env: HashMap<String, String> = std::env::vars()
        .filter(|(key, _)| key == "LOG_LEVEL" || key == "DEBUG")
        .collect();
    // The demo prints the changes itself; the daemon's own log shows warnings and errors
    // unless LOG_LEVEL asks for more.
    env.entry("LOG_LEVEL".to_string())
        .or_insert_with(|| "warn".to_string());
    let level = match env["LOG_LEVEL"].to_ascii_lowercase().as_str() {
        "debug" | "trace" => log::LevelFilter::Debug,
        "info" => log::LevelFilter::Info,
        "error" => log::LevelFilter::Error,
        _ => log::LevelFilter::Warn,
    };
    twitch_colorchanger::cli::init_logging(level);
    env.insert("TWITCH_HTTP_LISTEN".to_string(), listen_address());

    let stop = StopSignal::new();
    let handler_stop = stop.clone();
    if let Err(error) = ctrlc::set_handler(move || handler_stop.stop()) {
        eprintln!("demo: cannot install the Ctrl-C handler: {error}");
        std::process::exit(1);
    }
    println!("twitch-colorchanger demo: the real daemon against a fake Twitch on this machine.");
    for persona in scenario::personas() {
        println!("  {:<14} {}", persona.account.login, persona.description);
    }
    let options = Options {
        message_every: Duration::from_millis(1500),
        n_messages: None,
        env,
    };
    let swatches = std::io::stdout().is_terminal();
    let outcome = scenario::run(&options, &stop, |event| print_event(event, swatches));
    match outcome {
        Ok(changes) => println!("stopped after {} color changes", changes.len()),
        Err(error) => {
            eprintln!("demo: {error}");
            std::process::exit(1);
        }
    }
}

/// `--listen ADDR` if given, else 127.0.0.1:8080 when it is free, else any free port.
fn listen_address() -> String {
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--listen" {
            if let Some(address) = args.next() {
                return address;
            }
        } else if let Some(address) = arg.strip_prefix("--listen=") {
            return address.to_string();
        }
    }
    match std::net::TcpListener::bind(DEFAULT_LISTEN) {
        Ok(_) => DEFAULT_LISTEN.to_string(),
        Err(_) => "127.0.0.1:0".to_string(),
    }
}

const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

fn print_event(event: &Event, swatches: bool) {
    let time = clock();
    match event {
        Event::Ready { logins, status_url } => {
            if let Some(url) = status_url {
                println!("{time}  status page: {url} (also {url}metrics and {url}healthz)");
            }
            println!(
                "{time}  {} logged in to chat; they start chatting now (Ctrl-C stops)",
                logins.join(", ")
            )
        }
        Event::Said { login, text } => println!("{time}  {login:<14} says {text:?}"),
        Event::Changed { login, from, to } => {
            let from = if from.is_empty() { "(none)" } else { from };
            println!(
                "{time}  {login:<14} color {from} → {to} {}",
                if swatches { swatch(to) } else { String::new() }
            )
        }
    }
}

/// A block in the color, for terminals with 24-bit color.
fn swatch(color: &str) -> String {
    match parse_user_color(color) {
        Ok(color) => {
            let rgb = color.rgb();
            format!("\u{1b}[48;2;{};{};{}m      \u{1b}[0m", rgb.r, rgb.g, rgb.b)
        }
        Err(_) => String::new(),
    }
}

/// The time of day in UTC, `HH:MM:SS`.
fn clock() -> String {
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    let of_day = seconds % 86_400;
    format!(
        "{:02}:{:02}:{:02}",
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60
    )
}
