//! Headless Chromium for the tests that check a page as a person sees it (Debian's
//! `chromium` package; `.ci/run` installs it). Included with `#[path]` by the tests that use
//! it.

use std::path::Path;
use std::process::Command;

/// The Chromium binary on this machine, if there is one.
pub fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser"].into_iter().find(|name| {
        Command::new(name)
            .arg("--version")
            .output()
            .is_ok_and(|output| output.status.success())
    })
}

/// Runs headless Chromium as root needs it, with the fresh profile `profile` and no
/// network of its own beyond the page, on `url` with `extra` arguments (`--dump-dom`,
/// `--screenshot=…`); returns what it printed.
pub fn run_chromium(binary: &str, profile: &Path, extra: &[String], url: &str) -> String {
    let output = Command::new(binary)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(url)
        .output()
        .expect("chromium runs");
    assert!(
        output.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}
