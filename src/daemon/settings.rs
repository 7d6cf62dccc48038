//! `Settings`: how the daemon runs, decided before the config file is read (endpoints,
//! paths, intervals, log level), with their defaults. Pure data, no I/O; the command line
//! and the environment are read by `cli::args`.

use core::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::base::backoff::BackoffPolicy;
use crate::base::wall_clock::WallClock;
use crate::status::model::default_status_path;

pub const DEFAULT_IRC_URL: &str = "wss://irc-ws.chat.twitch.tv:443";
pub const DEFAULT_EVENTSUB_URL: &str = "wss://eventsub.wss.twitch.tv/ws";
pub const DEFAULT_API_URL: &str = "https://api.twitch.tv/helix";
pub const DEFAULT_AUTH_URL: &str = "https://id.twitch.tv/oauth2";
pub const DEFAULT_CONFIG_PATH: &str = "twitch_colorchanger.conf";
/// How quiet a chat link may be before it is checked; chat owns the figure.
pub use crate::chat::machine::DEFAULT_KEEPALIVE;
/// Time allowed for a whole HTTP call to Helix or OAuth, so that no worker waits forever on
/// a stalled server.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the config file is checked for edits unless `TWITCH_RELOAD_SECS` says
/// otherwise.
pub const DEFAULT_RELOAD_INTERVAL: Duration = Duration::from_secs(3);

/// Where Twitch is. Tests point these at 127.0.0.1.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoints {
    pub irc_url: String,
    /// Chat over EventSub; the keepalive window is added as a query unless it names one.
    pub eventsub_url: String,
    pub api_url: String,
    pub auth_url: String,
}

/// How the daemon runs, decided before the config file is read: where Twitch is, where the
/// files are, intervals and timeouts, the log level. Plain data; `cli::args` fills it in from
/// the command line and the environment.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    pub config_path: PathBuf,
    pub endpoints: Endpoints,
    pub keepalive: Duration,
    /// How chat reconnects are spaced.
    pub chat_backoff: BackoffPolicy,
    /// Where the time of day is read from, to notice that the machine slept.
    pub wall_clock: WallClock,
    /// Time allowed for one HTTP call to Helix or OAuth.
    pub http_timeout: Duration,
    /// How often the config file is checked for edits.
    pub reload_interval: Duration,
    /// The status file given by `--status-file` or `TWITCH_STATUS_FILE`; when `None`, the
    /// binary uses [`Settings::status_path`] and in-process tests write none.
    pub status_file: Option<PathBuf>,
    pub log_level: log::LevelFilter,
    /// Where the status server (status page, `/metrics`, `/healthz`) listens; `None`: off.
    pub listen: Option<SocketAddr>,
}

impl Settings {
    /// Where the daemon keeps its status file: as given, else beside the config.
    pub fn status_path(&self) -> PathBuf {
        self.status_file
            .clone()
            .unwrap_or_else(|| default_status_path(&self.config_path))
    }
}

impl Default for Settings {
    /// Twitch's real endpoints, the config in the working directory, the default intervals.
    fn default() -> Settings {
        Settings {
            config_path: PathBuf::from(DEFAULT_CONFIG_PATH),
            endpoints: Endpoints {
                irc_url: DEFAULT_IRC_URL.to_string(),
                eventsub_url: DEFAULT_EVENTSUB_URL.to_string(),
                api_url: DEFAULT_API_URL.to_string(),
                auth_url: DEFAULT_AUTH_URL.to_string(),
            },
            keepalive: DEFAULT_KEEPALIVE,
            chat_backoff: BackoffPolicy::default(),
            wall_clock: WallClock::default(),
            http_timeout: DEFAULT_CALL_TIMEOUT,
            reload_interval: DEFAULT_RELOAD_INTERVAL,
            status_file: None,
            listen: None,
            log_level: log::LevelFilter::Info,
        }
    }
}
