//! Notices edits of the config file while the daemon runs: one cheap check every few
//! seconds for the whole process (a `stat`, and a read only when it changed). Hands valid
//! edits to the daemon, reports invalid ones with their position, and ignores the daemon's
//! own writes. Does I/O.

use std::fs;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use crossbeam_channel::Sender;
use log::{error, info, warn};

use crate::base::stop::StopSignal;
use crate::config::writer::OwnWrites;
use crate::config::{self, Config};

/// What identifies a version of the file without reading it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
}

fn stamp(path: &PathBuf) -> std::io::Result<Stamp> {
    let metadata = fs::metadata(path)?;
    Ok(Stamp {
        len: metadata.len(),
        modified: metadata.modified().ok(),
    })
}

/// Watches `path` until `stop` fires, sending each valid hand edit's config to `edits`.
pub fn run_config_watch(
    path: PathBuf,
    own_writes: OwnWrites,
    interval: Duration,
    stop: StopSignal,
    edits: Sender<Config>,
) {
    let display = path.display().to_string();
    let mut last_stamp = stamp(&path).ok();
    let mut last_content = fs::read(&path).ok();
    let mut missing_reported = false;
    while !stop.wait_timeout(interval) {
        let current = match stamp(&path) {
            Ok(current) => current,
            Err(error) => {
                if !missing_reported {
                    warn!("{display}: cannot be read ({error}); the running setup stays");
                    missing_reported = true;
                }
                last_stamp = None;
                continue;
            }
        };
        missing_reported = false;
        if last_stamp == Some(current) {
            continue;
        }
        last_stamp = Some(current);
        let Ok(content) = fs::read(&path) else {
            continue;
        };
        if last_content.as_deref() == Some(content.as_slice()) {
            continue;
        }
        last_content = Some(content.clone());
        if own_writes.is_own(&content) {
            continue;
        }
        let text = String::from_utf8_lossy(&content);
        match config::parse(&text, &path) {
            Ok((config, _document)) => {
                info!("{display} changed; applying it");
                if edits.send(config).is_err() {
                    return;
                }
            }
            Err(problem) => {
                error!("config edit ignored, the running setup stays: {problem}")
            }
        }
    }
}
