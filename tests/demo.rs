//! The demo (`cargo run --example demo`) runs its scenario for a bounded number of
//! messages: every account's color changes the way its settings ask, and it stops cleanly.

#[path = "../examples/demo/scenario.rs"]
mod scenario;

use std::collections::HashMap;
use std::time::Duration;

use scenario::{Event, Options};
use twitch_colorchanger::base::stop::StopSignal;
use twitch_colorchanger::color::{parse_user_color, rgb_to_hsl, Color};

#[test]
fn the_demo_changes_every_accounts_color_as_its_settings_ask() {
    let options = Options {
        message_every: Duration::ZERO,
        n_messages: Some(12),
        env: HashMap::from([("LOG_LEVEL".to_string(), "warn".to_string())]),
    };
    let mut events = Vec::new();
    let changes = scenario::run(&options, &StopSignal::new(), |event| {
        events.push(event.clone())
    })
    .expect("the demo runs");
    assert!(matches!(events[0], Event::Ready { .. }), "{events:?}");
    assert_eq!(changes.len(), 12, "{events:?}");

    let mut by_login: HashMap<String, Vec<(String, String)>> = HashMap::new();
    for change in &changes {
        let Event::Changed { login, from, to } = change else {
            panic!("{change:?}")
        };
        assert_ne!(from, to, "a change never keeps the color: {change:?}");
        by_login
            .entry(login.clone())
            .or_default()
            .push((from.clone(), to.clone()));
    }
    let parse = |text: &str| parse_user_color(text).unwrap_or_else(|_| panic!("{text}"));
    // Turbo: hex colors.
    for (_, to) in &by_login["tina_turbo"] {
        assert!(parse(to).is_hex(), "{to}");
    }
    // No Turbo: named colors only.
    for (_, to) in &by_login["noah_noturbo"] {
        assert!(matches!(parse(to), Color::Named(_)), "{to}");
    }
    // Rainbow: each change moves the hue 40° on from the color before.
    for (from, to) in &by_login["rae_rainbow"] {
        let (hue_from, _, _) = rgb_to_hsl(parse(from).rgb());
        let (hue_to, _, _) = rgb_to_hsl(parse(to).rgb());
        let step = (hue_to - hue_from).rem_euclid(360.0);
        assert!((step - 40.0).abs() < 2.0, "{from} → {to}: {step}°");
    }
    // Palette: in order, from the start of the list.
    let palette: Vec<String> = by_login["pat_palette"]
        .iter()
        .map(|(_, to)| to.to_ascii_uppercase())
        .collect();
    assert_eq!(palette, ["#FF7F50", "#9ACD32", "#8A2BE2"]);
}

#[test]
fn the_demo_stops_when_told() {
    let stop = StopSignal::new();
    let options = Options {
        message_every: Duration::from_secs(3600),
        n_messages: None,
        env: HashMap::from([("LOG_LEVEL".to_string(), "warn".to_string())]),
    };
    let mut ready = false;
    let changes = scenario::run(&options, &stop, |event| {
        if matches!(event, Event::Ready { .. }) {
            ready = true;
            // Ctrl-C as soon as everyone is in chat: the hour-long wait ends at once.
            stop.stop();
        }
    })
    .expect("the demo stops cleanly");
    assert!(ready);
    assert!(changes.is_empty());
}
