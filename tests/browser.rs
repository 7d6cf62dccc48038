//! A real browser renders the demo's status page: headless Chromium (Debian's `chromium`
//! package; `.ci/run` installs it) loads the page while the demo runs, and the rendered DOM
//! and a screenshot are checked. Without Chromium on the machine the test says so and
//! passes, so a developer without it can still run the suite.

#[path = "../examples/demo/scenario.rs"]
mod scenario;

#[path = "common/chromium.rs"]
mod chromium;

use std::collections::HashMap;
use std::time::Duration;

use chromium::{chromium, run_chromium};
use scenario::{Event, Options};
use twitch_colorchanger::base::stop::StopSignal;

const N_MESSAGES: usize = 8;

/// Width and height from a PNG's IHDR chunk.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert_eq!(&bytes[12..16], b"IHDR");
    let number = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    (number(16), number(20))
}

#[test]
fn chromium_renders_the_demo_status_page() {
    let Some(binary) = chromium() else {
        eprintln!("chromium is not installed; the browser check did not run");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        message_every: Duration::ZERO,
        n_messages: Some(N_MESSAGES),
        env: HashMap::from([
            ("LOG_LEVEL".to_string(), "warn".to_string()),
            ("TWITCH_HTTP_LISTEN".to_string(), "127.0.0.1:0".to_string()),
        ]),
    };
    let mut url = None;
    let mut n_changes = 0;
    let mut rendered = None;
    scenario::run(&options, &StopSignal::new(), |event| match event {
        Event::Ready { status_url, .. } => url = status_url.clone(),
        Event::Changed { .. } => {
            n_changes += 1;
            if n_changes < N_MESSAGES {
                return;
            }
            // The last change is in: every account changed twice, and each first change
            // was recorded before its second went out. Render while the daemon runs.
            let url = url.as_deref().expect("the demo serves its page");
            let dom = run_chromium(
                binary,
                &dir.path().join("profile-dom"),
                &["--dump-dom".to_string()],
                url,
            );
            let screenshot = dir.path().join("page.png");
            run_chromium(
                binary,
                &dir.path().join("profile-shot"),
                &[
                    format!("--screenshot={}", screenshot.display()),
                    "--window-size=412,915".to_string(),
                ],
                url,
            );
            rendered = Some((dom, std::fs::read(&screenshot).expect("a screenshot")));
        }
        Event::Said { .. } => {}
    })
    .expect("the demo runs");

    let (dom, png) = rendered.expect("the page was rendered");
    for login in ["tina_turbo", "noah_noturbo", "rae_rainbow", "pat_palette"] {
        let card_start = dom
            .find(&format!("id=\"user-{login}\""))
            .unwrap_or_else(|| panic!("no card for {login}: {dom}"));
        let card = &dom[card_start..];
        let card = &card[..card.find("</section>").unwrap()];
        assert!(card.contains("connected"), "{login}: {card}");
        assert!(card.contains("<li "), "{login} has a color history: {card}");
        assert!(card.contains("chat dark"), "{card}");
        assert!(
            card.contains(&format!("#{login}")),
            "{login}'s channel: {card}"
        );
    }
    assert!(dom.contains("healthy"), "{dom}");
    assert!(
        !dom.contains("at-tina_turbo") && !dom.contains("rt-"),
        "no tokens"
    );
    // A phone-sized screenshot (the page fits the width; Chromium keeps the window size).
    let (width, height) = png_size(&png);
    assert_eq!((width, height), (412, 915));
    assert!(png.len() > 10_000, "an empty page? {} bytes", png.len());
}
