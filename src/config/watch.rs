//! Noticing that the config file changed without reading it every time: a `stat` of its
//! size and modification time, and a read only when those changed. Used by the config
//! writer's periodic check for hand edits. Does I/O.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use log::warn;

/// What identifies a version of the file without reading it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
}

fn stamp(path: &Path) -> std::io::Result<Stamp> {
    let metadata = fs::metadata(path)?;
    Ok(Stamp {
        len: metadata.len(),
        modified: metadata.modified().ok(),
    })
}

/// The last stamp seen of one file.
pub(super) struct FileWatch {
    path: PathBuf,
    last_stamp: Option<Stamp>,
    unreadable_reported: bool,
}

impl FileWatch {
    pub(super) fn new(path: PathBuf) -> FileWatch {
        let last_stamp = stamp(&path).ok();
        FileWatch {
            path,
            last_stamp,
            unreadable_reported: false,
        }
    }

    /// The file's content when its stamp changed since the last call; `None` when it looks
    /// the same, or cannot be read (reported once).
    pub(super) fn changed_content(&mut self) -> Option<Vec<u8>> {
        let current = match stamp(&self.path) {
            Ok(current) => current,
            Err(error) => {
                if !self.unreadable_reported {
                    warn!(
                        "{}: cannot be read ({error}); the running setup stays",
                        self.path.display()
                    );
                    self.unreadable_reported = true;
                }
                self.last_stamp = None;
                return None;
            }
        };
        self.unreadable_reported = false;
        if self.last_stamp == Some(current) {
            return None;
        }
        self.last_stamp = Some(current);
        fs::read(&self.path).ok()
    }
}
