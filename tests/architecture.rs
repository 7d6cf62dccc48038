//! Checks the layering that ARCHITECTURE.md promises, by reading the sources: no module
//! imports from a layer above its own, and a pure file never imports a file that does I/O
//! or runs a thread. Pure, reads only the files under `src/`.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// The top-level areas, bottom first. An area may import from its own layer and below.
const LAYERS: &[(&str, u8)] = &[
    ("base", 1),
    ("color", 2),
    ("twitch", 3),
    ("config", 4),
    ("status", 5),
    ("user", 6),
    ("chat", 7),
    ("token", 7),
    ("daemon", 8),
    ("cli", 9),
];

/// Files of the pure core: no I/O, no clock, no threads. Paths relative to `src/`.
const PURE: &[&str] = &[
    "base/backoff.rs",
    "base/ids.rs",
    "base/metrics.rs",
    "base/secret.rs",
    "base/wall_clock.rs",
    "cli/args.rs",
    "cli/env.rs",
    "cli/raw.rs",
    "color/mod.rs",
    "chat/command.rs",
    "chat/eventsub.rs",
    "chat/irc.rs",
    "chat/link.rs",
    "chat/reconnect.rs",
    "chat/schedule.rs",
    "chat/session.rs",
    "config/document.rs",
    "config/env.rs",
    "config/fields.rs",
    "config/locate.rs",
    "config/mod.rs",
    "config/model.rs",
    "config/parse.rs",
    "config/upstream.rs",
    "config/source.rs",
    "config/tokens.rs",
    "daemon/settings.rs",
    "status/model.rs",
    "status/page.rs",
    "token/clock.rs",
];

fn layer_of(area: &str) -> Option<u8> {
    LAYERS
        .iter()
        .find(|(name, _)| *name == area)
        .map(|(_, layer)| *layer)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("read src") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            out.push(path);
        }
    }
}

/// Every `crate::a::b` path named in a file's code (comments and tests included: a test
/// module may import from anywhere below, never above), as the list of its segments.
fn crate_paths(text: &str) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    for (start, _) in text.match_indices("crate::") {
        let rest = &text[start + "crate::".len()..];
        let path: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
            .collect();
        let segments: Vec<String> = path
            .split("::")
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        if !segments.is_empty() {
            paths.push(segments);
        }
    }
    paths
}

fn sources() -> BTreeMap<String, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    files
        .into_iter()
        .map(|path| {
            let relative = path
                .strip_prefix(&root)
                .expect("under src")
                .to_string_lossy()
                .replace('\\', "/");
            (relative, fs::read_to_string(&path).expect("read source"))
        })
        .collect()
}

#[test]
fn every_area_has_a_layer() {
    for relative in sources().keys() {
        let area = relative.split('/').next().expect("a path");
        if relative.contains('/') {
            assert!(
                layer_of(area).is_some(),
                "{relative}: area {area} has no layer"
            );
        }
    }
}

#[test]
fn no_import_runs_upward() {
    let mut upward = Vec::new();
    for (relative, text) in sources() {
        let Some(own) = relative.split('/').next().and_then(layer_of) else {
            continue; // lib.rs and main.rs sit above everything.
        };
        for path in crate_paths(&text) {
            if let Some(target) = layer_of(&path[0]) {
                if target > own {
                    upward.push(format!("{relative} imports crate::{}", path.join("::")));
                }
            }
        }
    }
    assert!(
        upward.is_empty(),
        "imports running upward:\n{}",
        upward.join("\n")
    );
}

#[test]
fn pure_files_import_only_pure_files() {
    let sources = sources();
    let mut impure = Vec::new();
    for relative in PURE {
        let text = sources
            .get(*relative)
            .unwrap_or_else(|| panic!("{relative} missing"));
        for path in crate_paths(text) {
            // crate::a::b::Item names the file a/b.rs, or a/mod.rs when b is an item in
            // it: the longest prefix that is a file wins.
            let target = (1..=path.len()).rev().find_map(|n| {
                let prefix = path[..n].join("/");
                [format!("{prefix}.rs"), format!("{prefix}/mod.rs")]
                    .into_iter()
                    .find(|candidate| sources.contains_key(candidate))
            });
            if let Some(target) = target {
                if !PURE.contains(&target.as_str()) {
                    impure.push(format!("{relative} imports {target}"));
                }
            }
        }
    }
    assert!(
        impure.is_empty(),
        "pure files importing I/O files:\n{}",
        impure.join("\n")
    );
}

#[test]
fn pure_files_touch_no_io() {
    const IO: &[&str] = &[
        "std::fs",
        "std::net",
        "std::thread",
        "Instant::now",
        "SystemTime::now",
        "ureq::",
        "tungstenite::",
    ];
    let sources = sources();
    let mut found = Vec::new();
    for relative in PURE {
        let text = &sources[*relative];
        // Tests may read fixtures; only the code above the test module counts.
        let code = text.split("#[cfg(test)]").next().unwrap_or(text);
        for needle in IO {
            if code.contains(needle) {
                found.push(format!("{relative} uses {needle}"));
            }
        }
    }
    assert!(
        found.is_empty(),
        "pure files doing I/O:\n{}",
        found.join("\n")
    );
}
