//! Checks the layering that ARCHITECTURE.md promises, by reading the sources: no module
//! imports from a layer above its own, no two files import each other (directly or around a
//! loop), and a pure file never imports a file that does I/O or runs a thread. A file is pure
//! when its own `//!` doc says so with the word "Pure"; that line is the only list. Reads only
//! the files under `src/`.

use std::collections::{BTreeMap, BTreeSet};
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

/// The code above a file's test module (a `#[cfg(...test...)]` line at the top level):
/// tests may read fixtures and their `super` is the file itself.
fn code_above_tests(text: &str) -> &str {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        if line.starts_with("#[cfg(") && line.contains("test") {
            return &text[..offset];
        }
        offset += line.len();
    }
    text
}

/// True when the file's leading `//!` block calls it pure (the word "Pure").
fn says_pure(text: &str) -> bool {
    text.lines()
        .take_while(|line| line.starts_with("//!"))
        .any(|line| {
            line.split(|c: char| !c.is_ascii_alphanumeric())
                .any(|word| word == "Pure")
        })
}

/// The files of the pure core: no I/O, no clock, no threads. Paths relative to `src/`.
fn pure_files(sources: &BTreeMap<String, String>) -> BTreeSet<String> {
    sources
        .iter()
        .filter(|(_, text)| says_pure(text))
        .map(|(relative, _)| relative.clone())
        .collect()
}

/// The file a `crate::a::b::Item` path names: a/b.rs, or a/mod.rs when b is an item in it
/// (the longest prefix that is a file wins).
fn file_of(path: &[String], sources: &BTreeMap<String, String>) -> Option<String> {
    (1..=path.len()).rev().find_map(|n| {
        let prefix = path[..n].join("/");
        [format!("{prefix}.rs"), format!("{prefix}/mod.rs")]
            .into_iter()
            .find(|candidate| sources.contains_key(candidate))
    })
}

/// The module path of a file: `a/b.rs` is `a::b`, `a/mod.rs` is `a`, `lib.rs` the root.
fn module_of(relative: &str) -> Vec<String> {
    let mut segments: Vec<String> = relative
        .trim_end_matches(".rs")
        .split('/')
        .map(str::to_string)
        .collect();
    if matches!(
        segments.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        segments.pop();
    }
    segments
}

/// The path segments that follow `at` in `text`: `a::b::C` as `[a, b, C]`.
fn segments_at(text: &str) -> Vec<String> {
    let path: String = text
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
        .collect();
    path.split("::")
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// Every module path a file names, made absolute: `crate::` paths anywhere, and in the code
/// above its test module `super::`, `self::` and `use child::` paths (a test module's
/// `super` is the file itself). Grouped imports count by their common prefix.
fn named_paths(relative: &str, text: &str) -> Vec<Vec<String>> {
    let mut paths = crate_paths(text);
    let own = module_of(relative);
    let code = code_above_tests(text);
    let starts_word = |at: usize| {
        code[..at]
            .chars()
            .next_back()
            .is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
    };
    for (at, _) in code.match_indices("super::") {
        if !starts_word(at) {
            continue;
        }
        let mut rest = &code[at..];
        let mut base = own.clone();
        while let Some(after) = rest.strip_prefix("super::") {
            base.pop();
            rest = after;
        }
        base.extend(segments_at(rest));
        paths.push(base);
    }
    for (at, _) in code.match_indices("self::") {
        if starts_word(at) {
            let mut base = own.clone();
            base.extend(segments_at(&code[at + "self::".len()..]));
            paths.push(base);
        }
    }
    for line in code.lines() {
        let line = line.trim_start();
        let line = line
            .strip_prefix("pub(crate) ")
            .or_else(|| line.strip_prefix("pub(super) "))
            .or_else(|| line.strip_prefix("pub "))
            .unwrap_or(line);
        if let Some(rest) = line.strip_prefix("use ") {
            let segments = segments_at(rest);
            let external = ["crate", "super", "self", "std", "core", "alloc"];
            if segments.len() > 1 && !external.contains(&segments[0].as_str()) {
                let mut base = own.clone();
                base.extend(segments);
                paths.push(base);
            }
        }
    }
    paths
}

/// Which files each file imports (itself left out).
fn imports(sources: &BTreeMap<String, String>) -> BTreeMap<String, BTreeSet<String>> {
    sources
        .iter()
        .map(|(relative, text)| {
            let targets = named_paths(relative, text)
                .iter()
                .filter(|path| !path.is_empty())
                .filter_map(|path| file_of(path, sources))
                .filter(|target| target != relative)
                .collect();
            (relative.clone(), targets)
        })
        .collect()
}

#[test]
fn imports_name_files_not_crates() {
    let sources: BTreeMap<String, String> = [
        (
            "a/mod.rs",
            "pub use b::B;\nuse serde::Deserialize;\nuse std::fmt;\n",
        ),
        ("a/b.rs", "use crate::c::D;\n"),
        ("c.rs", ""),
    ]
    .into_iter()
    .map(|(file, text)| (file.to_string(), text.to_string()))
    .collect();
    let graph = imports(&sources);
    assert_eq!(graph["a/mod.rs"], BTreeSet::from(["a/b.rs".to_string()]));
    assert_eq!(graph["a/b.rs"], BTreeSet::from(["c.rs".to_string()]));
}

#[test]
fn relative_paths_resolve_to_files() {
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "config/parse.rs",
            "use super::source::FileSource;\n",
            &["config::source::FileSource"],
        ),
        (
            "config/mod.rs",
            "pub use model::Config;\n",
            &["config::model::Config"],
        ),
        ("a/b/c.rs", "use super::super::x::Y;\n", &["a::x::Y"]),
        ("a/mod.rs", "use self::b::C;\n", &["a::b::C"]),
        (
            "a/b.rs",
            "use crate::c::D;\n#[cfg(test)]\nmod tests { use super::*; }\n",
            &["c::D"],
        ),
    ];
    for (relative, text, expected) in cases {
        let found: Vec<String> = named_paths(relative, text)
            .iter()
            .map(|path| path.join("::"))
            .collect();
        assert_eq!(found, *expected, "{relative}: {text:?}");
    }
}

/// The groups of files that import each other around a loop (strongly connected
/// components of more than one file), by Tarjan's algorithm.
fn import_circles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct Walk<'a> {
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        circles: Vec<Vec<String>>,
    }
    impl<'a> Walk<'a> {
        fn visit(&mut self, file: &'a str) {
            let n = self.index.len();
            self.index.insert(file, n);
            self.low.insert(file, n);
            self.stack.push(file);
            self.on_stack.insert(file);
            for target in self.graph.get(file).into_iter().flatten() {
                let target = target.as_str();
                if !self.index.contains_key(target) {
                    self.visit(target);
                    let low = self.low[file].min(self.low[target]);
                    self.low.insert(file, low);
                } else if self.on_stack.contains(target) {
                    let low = self.low[file].min(self.index[target]);
                    self.low.insert(file, low);
                }
            }
            if self.low[file] == self.index[file] {
                let mut group = Vec::new();
                while let Some(member) = self.stack.pop() {
                    self.on_stack.remove(member);
                    group.push(member.to_string());
                    if member == file {
                        break;
                    }
                }
                if group.len() > 1 {
                    group.sort();
                    self.circles.push(group);
                }
            }
        }
    }
    let mut walk = Walk {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        circles: Vec::new(),
    };
    for file in graph.keys() {
        if !walk.index.contains_key(file.as_str()) {
            walk.visit(file);
        }
    }
    walk.circles
}

#[test]
fn the_circle_finder_finds_circles() {
    let graph = |edges: &[(&str, &str)]| {
        let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (from, to) in edges {
            graph
                .entry(from.to_string())
                .or_default()
                .insert(to.to_string());
            graph.entry(to.to_string()).or_default();
        }
        graph
    };
    type Edges = &'static [(&'static str, &'static str)];
    type Groups = &'static [&'static [&'static str]];
    let cases: &[(Edges, Groups)] = &[
        (&[("a", "b"), ("b", "c")], &[]),
        (&[("a", "b"), ("b", "a")], &[&["a", "b"]]),
        (
            &[("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")],
            &[&["a", "b", "c"]],
        ),
        (
            &[("a", "b"), ("b", "a"), ("c", "d"), ("d", "c")],
            &[&["a", "b"], &["c", "d"]],
        ),
    ];
    for (edges, expected) in cases {
        let mut found = import_circles(&graph(edges));
        found.sort();
        let expected: Vec<Vec<String>> = expected
            .iter()
            .map(|group| group.iter().map(|s| s.to_string()).collect())
            .collect();
        assert_eq!(found, expected, "{edges:?}");
    }
}

#[test]
fn no_two_files_import_each_other() {
    let circles = import_circles(&imports(&sources()));
    let described: Vec<String> = circles.iter().map(|group| group.join(" <-> ")).collect();
    assert!(
        described.is_empty(),
        "files importing each other, directly or around a loop:\n{}",
        described.join("\n")
    );
}

#[test]
fn the_pure_core_is_where_the_docs_say() {
    let pure = pure_files(&sources());
    // The folders whose decisions ARCHITECTURE.md calls pure keep a pure file each.
    for expected in [
        "chat/irc/link.rs",
        "chat/eventsub/link.rs",
        "chat/reconnect.rs",
        "base/backoff.rs",
    ] {
        assert!(pure.contains(expected), "{expected} no longer says Pure");
    }
    assert!(!says_pure("//! Does I/O.\n// Pure here is no doc line\n"));
    assert!(says_pure("//! A parser.\n//! Pure: text in, values out.\n"));
    assert!(!says_pure("//! Impure on purpose.\n"));
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
    let pure = pure_files(&sources);
    let mut impure = Vec::new();
    for relative in &pure {
        for path in named_paths(relative, &sources[relative]) {
            if let Some(target) = file_of(&path, &sources) {
                if target != *relative && !pure.contains(&target) {
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
    for relative in &pure_files(&sources) {
        let text = &sources[relative];
        // Tests may read fixtures; only the code above the test module counts.
        let code = code_above_tests(text);
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

/// The two chat transports live in folders of their own and neither imports the other:
/// what both need sits in `chat/` above them.
#[test]
fn the_chat_transports_import_nothing_of_each_other() {
    let sources = sources();
    let graph = imports(&sources);
    let mut crossing = Vec::new();
    for (from, to) in [
        ("chat/irc/", "chat/eventsub/"),
        ("chat/eventsub/", "chat/irc/"),
    ] {
        for (file, targets) in &graph {
            if file.starts_with(from) {
                crossing.extend(
                    targets
                        .iter()
                        .filter(|target| target.starts_with(to))
                        .map(|target| format!("{file} imports {target}")),
                );
            }
        }
    }
    assert!(
        graph.keys().any(|file| file.starts_with("chat/irc/"))
            && graph.keys().any(|file| file.starts_with("chat/eventsub/")),
        "the transport folders moved"
    );
    assert!(crossing.is_empty(), "{}", crossing.join("\n"));
}
