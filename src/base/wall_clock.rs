//! `WallClock`: where the daemon reads the time of day from — the system clock, or a source
//! handed in (a test simulating a suspend by moving the time of day ahead). Pure: it only
//! holds the source; `base::clock::wall_time` reads it.

use std::sync::Arc;
use std::time::Duration;

/// A source of the time since the Unix epoch.
pub type WallSource = Arc<dyn Fn() -> Duration + Send + Sync>;

/// The system clock unless a source was handed in.
#[derive(Clone, Default)]
pub struct WallClock {
    source: Option<WallSource>,
}

impl WallClock {
    /// A clock that reads `source` instead of the system clock.
    pub fn from_source(source: WallSource) -> WallClock {
        WallClock {
            source: Some(source),
        }
    }

    /// The source handed in; `None` for the system clock.
    pub fn source(&self) -> Option<&WallSource> {
        self.source.as_ref()
    }
}

impl std::fmt::Debug for WallClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.source {
            None => "WallClock(system)",
            Some(_) => "WallClock(handed in)",
        })
    }
}

impl PartialEq for WallClock {
    /// Two clocks are equal when both are the system clock or both read the same source.
    fn eq(&self, other: &WallClock) -> bool {
        match (&self.source, &other.source) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}
