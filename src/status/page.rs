//! What the status server answers: the route for a request line, the HTML status page, the
//! Prometheus text of `/metrics` and the `/healthz` verdict. Pure: the caller passes the
//! report, the counters and `now`; nothing here reads a socket or the clock.

use std::fmt::Write as _;

use crate::base::metrics::{MetricsSnapshot, LATENCY_BUCKETS_SECONDS};
use crate::color::{
    contrast_ratio, parse_user_color, Rgb, DARK_CHAT_BACKGROUND, LIGHT_CHAT_BACKGROUND,
};

use super::model::{
    evaluate, format_seconds, summarize, StatusReport, UserState, UserStatus, DEFAULT_HEALTH_GRACE,
    DEFAULT_MAX_STATUS_AGE,
};

/// Seconds between the page's own reloads.
pub const PAGE_REFRESH_SECONDS: u32 = 5;

/// One answer, ready to be written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
    /// Only the headers go out (a `HEAD` request).
    pub head_only: bool,
}

impl Response {
    fn text(status: u16, body: impl Into<String>) -> Response {
        Response {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.into(),
            head_only: false,
        }
    }

    /// The reason phrase for the status line.
    pub fn reason(&self) -> &'static str {
        match self.status {
            200 => "OK",
            400 => "Bad Request",
            404 => "Not Found",
            405 => "Method Not Allowed",
            408 => "Request Timeout",
            431 => "Request Header Fields Too Large",
            503 => "Service Unavailable",
            _ => "Error",
        }
    }

    /// The whole HTTP/1.1 response; the connection closes after it.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n",
            self.status,
            self.reason(),
            self.content_type,
            self.body.len()
        )
        .into_bytes();
        if !self.head_only {
            bytes.extend_from_slice(self.body.as_bytes());
        }
        bytes
    }
}

/// An answer to a request that could not be read (too big, too slow, not HTTP).
pub fn refusal(status: u16) -> Response {
    let mut response = Response::text(status, "");
    response.body = format!("{}\n", response.reason());
    response
}

/// Answers the request whose head (request line and headers) is `head`.
pub fn respond(
    head: &str,
    report: &StatusReport,
    metrics: &MetricsSnapshot,
    now_unix: u64,
) -> Response {
    let request_line = head.lines().next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return refusal(400);
    };
    if !version.starts_with("HTTP/1.") {
        return refusal(400);
    }
    // The method first: `OPTIONS *` is a method we do not serve, not a bad target.
    let head_only = match method {
        "GET" => false,
        "HEAD" => true,
        _ => return refusal(405),
    };
    if !target.starts_with('/') {
        return refusal(400);
    }
    let path = target.split(['?', '#']).next().unwrap_or_default();
    let mut response = match path {
        "/" => Response {
            status: 200,
            content_type: "text/html; charset=utf-8",
            body: render_page(report, now_unix),
            head_only: false,
        },
        "/metrics" => Response {
            status: 200,
            content_type: "text/plain; version=0.0.4; charset=utf-8",
            body: render_metrics(report, metrics),
            head_only: false,
        },
        "/healthz" => health(report, now_unix),
        _ => refusal(404),
    };
    response.head_only = head_only;
    response
}

/// The verdict of `twitch-colorchanger health`, for the live report: 200 or 503.
fn health(report: &StatusReport, now_unix: u64) -> Response {
    // The report in memory is current by definition; only the users decide.
    let mut live = report.clone();
    live.written_unix = now_unix;
    match evaluate(
        &live,
        now_unix,
        DEFAULT_HEALTH_GRACE,
        DEFAULT_MAX_STATUS_AGE,
    ) {
        Ok(()) => Response::text(200, format!("{}\n", summarize(&live, now_unix))),
        Err(reason) => Response::text(503, format!("unhealthy: {reason}\n")),
    }
}

/// The one-word name of a state.
pub fn state_word(state: &UserState) -> &'static str {
    match state {
        UserState::Starting { .. } => "starting",
        UserState::Connected { .. } => "connected",
        UserState::Reconnecting { .. } => "reconnecting",
        UserState::NeedsLogin { .. } => "needs_login",
        UserState::Stopped { .. } => "stopped",
        UserState::Disabled => "disabled",
    }
}

const STATES: [&str; 6] = [
    "starting",
    "connected",
    "reconnecting",
    "needs_login",
    "stopped",
    "disabled",
];

/// One metric family of `/metrics`: its name after the `twitch_colorchanger_` prefix, its
/// type, its help text and its samples.
struct Family {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
    samples: Vec<Sample>,
}

/// One sample line: a suffix to the family's name (`_bucket`, `_sum` …), its labels (values
/// unescaped) and its value.
struct Sample {
    suffix: &'static str,
    labels: Vec<(&'static str, String)>,
    value: String,
}

impl Sample {
    fn new(labels: Vec<(&'static str, String)>, value: impl ToString) -> Sample {
        Sample {
            suffix: "",
            labels,
            value: value.to_string(),
        }
    }

    fn unlabelled(value: impl ToString) -> Sample {
        Sample::new(Vec::new(), value)
    }
}

/// `/metrics` in Prometheus' text format (version 0.0.4).
pub fn render_metrics(report: &StatusReport, metrics: &MetricsSnapshot) -> String {
    let mut out = String::new();
    for family in metric_families(report, metrics) {
        write_family(&mut out, &family);
    }
    out
}

/// Every family `/metrics` shows, in order. A table of facts (names, types, help texts and
/// where each value comes from): it stays long on purpose.
fn metric_families(report: &StatusReport, metrics: &MetricsSnapshot) -> Vec<Family> {
    let by_label = |key: &'static str, counts: Vec<(&'static str, u64)>| -> Vec<Sample> {
        counts
            .into_iter()
            .map(|(value, count)| Sample::new(vec![(key, value.to_string())], count))
            .collect()
    };
    vec![
        Family {
            name: "build_info",
            kind: "gauge",
            help: "The running version.",
            samples: vec![Sample::new(vec![("version", report.version.clone())], 1)],
        },
        Family {
            name: "users",
            kind: "gauge",
            help: "Configured users by the state of their chat connection.",
            samples: by_label("state", users_by_state(report)),
        },
        Family {
            name: "color_changes_total",
            kind: "counter",
            help: "Color changes by user and result, counted once all retries are done.",
            samples: metrics
                .color_changes
                .iter()
                .map(|((login, result), count)| {
                    let labels = vec![("user", login.clone()), ("result", result.label().into())];
                    Sample::new(labels, count)
                })
                .collect(),
        },
        Family {
            name: "helix_request_duration_seconds",
            kind: "histogram",
            help: "Time of each Helix call (PUT /chat/color), retries counted one by one.",
            samples: latency_histogram(metrics),
        },
        Family {
            name: "rate_limit_waits_total",
            kind: "counter",
            help: "Changes that waited for an empty Helix rate-limit bucket to refill.",
            samples: vec![Sample::unlabelled(metrics.rate_limit_waits)],
        },
        Family {
            name: "rate_limit_wait_seconds_total",
            kind: "counter",
            help: "Time spent waiting for empty Helix rate-limit buckets.",
            samples: vec![Sample::unlabelled(metrics.rate_limit_wait_seconds)],
        },
        Family {
            name: "chat_reconnects_total",
            kind: "counter",
            help: "Chat connections made again, by why the previous one ended.",
            samples: by_label(
                "reason",
                metrics
                    .reconnects
                    .iter()
                    .map(|(r, n)| (r.label(), *n))
                    .collect(),
            ),
        },
        Family {
            name: "token_refreshes_total",
            kind: "counter",
            help: "Token refreshes by result.",
            samples: by_label(
                "result",
                metrics
                    .token_refreshes
                    .iter()
                    .map(|(o, n)| (o.label(), *n))
                    .collect(),
            ),
        },
        Family {
            name: "config_writes_total",
            kind: "counter",
            help: "Writes of the config file (new tokens, settings) by result.",
            samples: by_label(
                "result",
                metrics
                    .config_writes
                    .iter()
                    .map(|(o, n)| (o.label(), *n))
                    .collect(),
            ),
        },
    ]
}

/// How many users are in each state, every state listed (zero included).
fn users_by_state(report: &StatusReport) -> Vec<(&'static str, u64)> {
    STATES
        .iter()
        .map(|state| {
            let count = report
                .users
                .values()
                .filter(|status| state_word(&status.state) == *state)
                .count();
            (*state, count as u64)
        })
        .collect()
}

/// The Helix latency histogram: cumulative buckets up to `+Inf`, then the sum and count.
fn latency_histogram(metrics: &MetricsSnapshot) -> Vec<Sample> {
    let mut samples = Vec::new();
    let mut cumulative = 0;
    for (index, count) in metrics.helix_latency_buckets.iter().enumerate() {
        cumulative += count;
        let bound = LATENCY_BUCKETS_SECONDS
            .get(index)
            .map_or_else(|| "+Inf".to_string(), |bound| bound.to_string());
        samples.push(Sample {
            suffix: "_bucket",
            ..Sample::new(vec![("le", bound)], cumulative)
        });
    }
    samples.push(Sample {
        suffix: "_sum",
        ..Sample::unlabelled(metrics.helix_latency_sum_seconds)
    });
    samples.push(Sample {
        suffix: "_count",
        ..Sample::unlabelled(metrics.helix_calls())
    });
    samples
}

/// Writes a family's HELP and TYPE lines and its samples, label values escaped.
fn write_family(out: &mut String, family: &Family) {
    let name = family.name;
    let _ = writeln!(out, "# HELP twitch_colorchanger_{name} {}", family.help);
    let _ = writeln!(out, "# TYPE twitch_colorchanger_{name} {}", family.kind);
    for sample in &family.samples {
        let labels = if sample.labels.is_empty() {
            String::new()
        } else {
            let pairs: Vec<String> = sample
                .labels
                .iter()
                .map(|(key, value)| format!("{key}=\"{}\"", label(value)))
                .collect();
            format!("{{{}}}", pairs.join(","))
        };
        let _ = writeln!(
            out,
            "twitch_colorchanger_{name}{}{labels} {}",
            sample.suffix, sample.value
        );
    }
}

/// A label value with `\`, `"` and line breaks escaped, as the text format asks.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Text for HTML, with the five special characters escaped.
fn html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `#RRGGBB` for CSS, for a color as the daemon writes it (`#RRGGBB` or a Twitch name).
fn css_color(color: &str) -> Option<Rgb> {
    parse_user_color(color).ok().map(|color| color.rgb())
}

fn ago(then_unix: u64, now_unix: u64) -> String {
    format!("{} ago", format_seconds(now_unix.saturating_sub(then_unix)))
}

/// Hours for long spans, which the token refresh usually is.
fn span(seconds: u64) -> String {
    if seconds >= 2 * 3600 {
        format!("{} h {} min", seconds / 3600, seconds % 3600 / 60)
    } else {
        format_seconds(seconds)
    }
}

/// A box atop the page for each user whose device-code login waits for a person: the link
/// and the code, large, so that a first start on a NAS is finished from this page. The
/// page reloads itself, so the box gives way to the user's "connected" once the code is
/// entered. A link is only made of an `http(s)` address.
fn render_login_prompts(page: &mut String, report: &StatusReport, now_unix: u64) {
    for (login, status) in &report.users {
        let UserState::NeedsLogin {
            login_code: Some(code),
            ..
        } = &status.state
        else {
            continue;
        };
        let login = html(login);
        let uri = html(&code.verification_uri);
        let place = if code.verification_uri.starts_with("https://")
            || code.verification_uri.starts_with("http://")
        {
            format!("<a href=\"{uri}\" target=\"_blank\" rel=\"noreferrer\">{uri}</a>")
        } else {
            uri
        };
        let _ = write!(
            page,
            "<section class=\"login\" id=\"login-{login}\"><h2>{login}: log in</h2>\
             <p>Open {place} while logged in to Twitch as <b>{login}</b> and enter the code</p>\
             <p class=\"code\">{}</p><p><small>The code works for {} more; this page shows \
             {login} connected once Twitch has it.</small></p></section>",
            html(&code.user_code),
            format_seconds(code.expires_unix.saturating_sub(now_unix)),
        );
    }
}

const STYLE: &str = "\
*{box-sizing:border-box}\
body{margin:0;font:16px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;background:#f4f4f6;color:#1f1f23}\
header{padding:14px 16px;background:#18181b;color:#efeff1}\
header h1{margin:0;font-size:1.25rem}\
header p{margin:4px 0 0;font-size:.9rem;color:#adadb8}\
.verdict{font-weight:600}.ok{color:#3ec46d}.bad{color:#ff6b6b}\
main{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(100%,22rem),1fr));gap:14px;padding:14px;max-width:90rem;margin:0 auto}\
.user{background:#fff;border-radius:10px;padding:14px;box-shadow:0 1px 3px rgba(0,0,0,.12)}\
.user h2{margin:0 0 10px;font-size:1.15rem;display:flex;align-items:center;gap:8px;flex-wrap:wrap}\
.swatch{display:inline-block;width:1.1em;height:1.1em;border-radius:4px;border:1px solid rgba(0,0,0,.25);vertical-align:-.15em}\
.state{font-size:.78rem;font-weight:600;padding:2px 8px;border-radius:99px;background:#e5e5ea;text-transform:uppercase;letter-spacing:.03em}\
.state.connected{background:#d3f5de;color:#11602d}.state.reconnecting,.state.starting{background:#fff0c2;color:#6b4d00}\
.state.needs_login,.state.stopped{background:#ffd9d9;color:#8a1010}\
.chat{padding:8px 12px;border-radius:6px;margin:0 0 6px;font-size:.95rem;word-break:break-word}\
.chat small{float:right;font-size:.75rem;opacity:.7}\
.dark{background:#18181b;color:#efeff1}.light{background:#fff;color:#0e0e10;border:1px solid #dedee3}\
dl{display:grid;grid-template-columns:auto 1fr;gap:2px 12px;margin:10px 0;font-size:.92rem}\
dt{color:#6a6a75}dd{margin:0;word-break:break-word}\
h3{font-size:.9rem;margin:10px 0 4px;color:#6a6a75;font-weight:600}\
ol{list-style:none;padding:0;margin:0;display:flex;flex-wrap:wrap;gap:4px}\
ol li{font-size:.8rem;font-family:ui-monospace,monospace;display:flex;align-items:center;gap:4px;background:#f4f4f6;border-radius:4px;padding:2px 6px}\
.empty{color:#8a8a95;font-size:.9rem}\
.login{grid-column:1/-1;background:#fff7d6;border:2px solid #e0b000;border-radius:10px;padding:14px}\
.login h2{margin:0 0 6px;font-size:1.15rem}.login p{margin:6px 0}\
.code{font:700 2rem/1.2 ui-monospace,monospace;letter-spacing:.12em;user-select:all}\
footer{text-align:center;font-size:.8rem;color:#8a8a95;padding:8px 16px 20px}";

/// The status page: one card per user. Self-contained (no scripts, fonts or images from
/// elsewhere) and reloading itself every [`PAGE_REFRESH_SECONDS`].
pub fn render_page(report: &StatusReport, now_unix: u64) -> String {
    let mut live = report.clone();
    live.written_unix = now_unix;
    let verdict = match evaluate(
        &live,
        now_unix,
        DEFAULT_HEALTH_GRACE,
        DEFAULT_MAX_STATUS_AGE,
    ) {
        Ok(()) => "<span class=\"verdict ok\">healthy</span>".to_string(),
        Err(reason) => format!(
            "<span class=\"verdict bad\">unhealthy</span>: {}",
            html(&without_login_instructions(&reason, "below"))
        ),
    };
    let mut page = String::with_capacity(4096 + 2048 * report.users.len());
    let _ = write!(
        page,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <meta http-equiv=\"refresh\" content=\"{PAGE_REFRESH_SECONDS}\">\
         <title>twitch-colorchanger</title><style>{STYLE}</style></head><body>\
         <header><h1>twitch-colorchanger</h1><p>{verdict} · {} user{} · version {} · up {}</p></header><main>",
        report.users.len(),
        if report.users.len() == 1 { "" } else { "s" },
        html(&report.version),
        span(now_unix.saturating_sub(report.started_unix)),
    );
    if report.users.is_empty() {
        page.push_str("<p class=\"empty\">No users are running.</p>");
    }
    render_login_prompts(&mut page, report, now_unix);
    for (login, status) in &report.users {
        render_user(&mut page, login, status, now_unix);
    }
    let _ = writeln!(
        page,
        "</main><footer>Reloads every {PAGE_REFRESH_SECONDS} s · times are relative to {} UTC · \
         <a href=\"/metrics\">metrics</a> · <a href=\"/healthz\">health</a></footer></body></html>",
        clock_of_day(now_unix)
    );
    page
}

fn clock_of_day(unix: u64) -> String {
    let of_day = unix % 86_400;
    format!(
        "{:02}:{:02}:{:02}",
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60
    )
}

fn swatch(rgb: Rgb) -> String {
    format!("<span class=\"swatch\" style=\"background:{rgb}\"></span>")
}

/// One user's card: the name in its current color, how it shows in chat, the facts about
/// the user ([`user_rows`]) and the last colors.
fn render_user(page: &mut String, login: &str, status: &UserStatus, now_unix: u64) {
    let state = state_word(&status.state);
    let login_html = html(login);
    let rgb = status.current_color().and_then(css_color);
    let _ = write!(
        page,
        "<section class=\"user\" id=\"user-{login_html}\"><h2>{}{login_html} <span class=\"state {state}\">{}</span></h2>",
        rgb.map(swatch).unwrap_or_default(),
        state.replace('_', " "),
    );
    render_chat_previews(page, &login_html, rgb);
    page.push_str("<dl>");
    for (name, value) in user_rows(status, now_unix) {
        let _ = write!(page, "<dt>{name}</dt><dd>{value}</dd>");
    }
    page.push_str("</dl><h3>Last colors</h3>");
    render_color_history(page, status, now_unix);
    page.push_str("</section>");
}

/// The name as it shows in chat, on Twitch's dark and light backgrounds, with its contrast
/// on each.
fn render_chat_previews(page: &mut String, login_html: &str, rgb: Option<Rgb>) {
    for (class, background, theme) in [
        ("dark", DARK_CHAT_BACKGROUND, "dark"),
        ("light", LIGHT_CHAT_BACKGROUND, "light"),
    ] {
        let (style, contrast) = match rgb {
            Some(rgb) => (
                format!(" style=\"color:{rgb}\""),
                format!(
                    "{theme} · contrast {:.1}:1",
                    contrast_ratio(rgb, background)
                ),
            ),
            None => (String::new(), format!("{theme} · color not known yet")),
        };
        let _ = write!(
            page,
            "<div class=\"chat {class}\"><small>{contrast}</small><b{style}>{login_html}</b>: hello chat</div>"
        );
    }
}

/// The facts on a user's card, as (name, HTML) rows in the order shown. A table of facts:
/// one entry per row.
fn user_rows(status: &UserStatus, now_unix: u64) -> [(&'static str, String); 7] {
    [
        ("State", state_detail(&status.state, now_unix)),
        (
            "Color",
            status
                .current_color()
                .map_or_else(|| "not known yet".to_string(), html),
        ),
        (
            "Changes",
            if status.changes_enabled {
                "on".to_string()
            } else {
                "off (cce in chat turns them on)".to_string()
            },
        ),
        (
            "Transport",
            status
                .transport
                .as_deref()
                .map_or_else(|| "—".to_string(), html),
        ),
        ("Channels", channel_list(&status.channels)),
        (
            "Last error",
            match &status.last_error {
                // The login prompt on show is no error; its box says what to do.
                Some(error) if is_shown_prompt(&status.state, &error.text) => "none".to_string(),
                Some(error) => format!("{} ({})", html(&error.text), ago(error.at_unix, now_unix)),
                None => "none".to_string(),
            },
        ),
        (
            "Token refresh",
            token_refresh(status.next_token_refresh_unix, now_unix),
        ),
    ]
}

/// A text with the login instructions a prompt carries ("; to log in, open URL and enter the
/// code CODE") replaced by a pointer to the box that shows them `where` ("above", "below"):
/// the page says the link and the code once, large, instead of in every line about the user.
fn without_login_instructions(text: &str, place: &str) -> String {
    const START: &str = "; to log in, open ";
    const CODE: &str = " and enter the code ";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(START) {
        let Some(code_at) = rest[start..].find(CODE) else {
            break;
        };
        let code_start = start + code_at + CODE.len();
        let code_len = rest[code_start..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
            .unwrap_or(rest.len() - code_start);
        out.push_str(&rest[..start]);
        let _ = write!(out, " (the link and the code to log in are {place})");
        rest = &rest[code_start + code_len..];
    }
    out.push_str(rest);
    out
}

/// Whether `text` is the login prompt the user's state shows now (in its box).
fn is_shown_prompt(state: &UserState, text: &str) -> bool {
    matches!(
        state,
        UserState::NeedsLogin { reason, login_code: Some(_) } if reason == text
    )
}

/// What the user's chat connection is doing, and for how long (HTML).
fn state_detail(state: &UserState, now_unix: u64) -> String {
    match state {
        UserState::Starting { since_unix } => format!(
            "starting for {}",
            format_seconds(now_unix.saturating_sub(*since_unix))
        ),
        UserState::Connected { since_unix } => format!(
            "connected for {}",
            span(now_unix.saturating_sub(*since_unix))
        ),
        UserState::Reconnecting { since_unix, reason } => format!(
            "reconnecting for {}: {}",
            format_seconds(now_unix.saturating_sub(*since_unix)),
            html(reason)
        ),
        UserState::NeedsLogin { reason, .. } => format!(
            "needs a new login: {}",
            html(&without_login_instructions(reason, "above"))
        ),
        UserState::Stopped { reason } => format!("stopped: {}", html(reason)),
        UserState::Disabled => "disabled".to_string(),
    }
}

/// The channels as `#a, #b` (HTML), or a dash for none.
fn channel_list(channels: &[String]) -> String {
    if channels.is_empty() {
        return "—".to_string();
    }
    channels
        .iter()
        .map(|channel| format!("#{}", html(channel)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// When the next token refresh is due.
fn token_refresh(next_unix: Option<u64>, now_unix: u64) -> String {
    match next_unix {
        Some(at) if at > now_unix => format!("in {}", span(at - now_unix)),
        Some(_) => "due now".to_string(),
        None => "not scheduled yet".to_string(),
    }
}

/// The user's last colors, newest first, each as a swatch, its name and how long ago.
fn render_color_history(page: &mut String, status: &UserStatus, now_unix: u64) {
    if status.recent_colors.is_empty() {
        page.push_str("<p class=\"empty\">No change yet.</p>");
        return;
    }
    page.push_str("<ol class=\"history\">");
    for color in status.recent_colors.iter().rev() {
        let _ = write!(
            page,
            "<li title=\"{}\">{}{} <time>{}</time></li>",
            clock_of_day(color.at_unix),
            css_color(&color.text).map(swatch).unwrap_or_default(),
            html(&color.text),
            ago(color.at_unix, now_unix)
        );
    }
    page.push_str("</ol>");
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::super::model::{TimedText, COLOR_HISTORY};
    use super::*;
    use crate::base::metrics::{ChangeResult, Outcome, ReconnectReason};

    fn get(path: &str, report: &StatusReport) -> Response {
        respond(
            &format!("GET {path} HTTP/1.1\r\nHost: x"),
            report,
            &MetricsSnapshot::default(),
            NOW,
        )
    }

    #[test]
    fn routes_and_refusals() {
        let report = report(NOW, &[("alice", UserState::Connected { since_unix: NOW })]);
        let cases = [
            ("GET / HTTP/1.1", 200, "text/html"),
            ("GET /?x=1 HTTP/1.0", 200, "text/html"),
            ("GET /metrics HTTP/1.1", 200, "text/plain; version=0.0.4"),
            ("GET /healthz HTTP/1.1", 200, "text/plain"),
            ("HEAD /healthz HTTP/1.1", 200, "text/plain"),
            ("GET /favicon.ico HTTP/1.1", 404, "text/plain"),
            ("GET /../etc/passwd HTTP/1.1", 404, "text/plain"),
            ("POST / HTTP/1.1", 405, "text/plain"),
            ("DELETE /metrics HTTP/1.1", 405, "text/plain"),
            ("OPTIONS * HTTP/1.1", 405, "text/plain"),
            ("GET / SPDY/3", 400, "text/plain"),
            ("GET http://x/ HTTP/1.1", 400, "text/plain"),
            ("GET /", 400, "text/plain"),
            ("GET  / HTTP/1.1", 400, "text/plain"),
            ("", 400, "text/plain"),
            ("\u{0}\u{1}garbage", 400, "text/plain"),
        ];
        for (line, status, content_type) in cases {
            let response = respond(line, &report, &MetricsSnapshot::default(), NOW);
            assert_eq!(response.status, status, "{line:?}");
            assert!(
                response.content_type.starts_with(content_type),
                "{line:?}: {}",
                response.content_type
            );
        }
        let head = respond("HEAD / HTTP/1.1", &report, &MetricsSnapshot::default(), NOW);
        let bytes = String::from_utf8(head.to_bytes()).unwrap();
        assert!(bytes.ends_with("\r\n\r\n"), "HEAD has no body: {bytes}");
        assert!(bytes.contains(&format!("Content-Length: {}", head.body.len())));
    }

    #[test]
    fn healthz_gives_the_health_verdict() {
        let cases = [
            (
                UserState::Connected { since_unix: NOW },
                200,
                "healthy: 1 user connected",
            ),
            (UserState::Disabled, 200, "healthy"),
            (
                UserState::NeedsLogin {
                    reason: "refresh token rejected".into(),
                    login_code: None,
                },
                503,
                "unhealthy: alice needs a new login: refresh token rejected",
            ),
            (
                UserState::Reconnecting {
                    since_unix: NOW - 600,
                    reason: "refused".into(),
                },
                503,
                "alice has been reconnecting for 10 min: refused",
            ),
            (
                UserState::Starting {
                    since_unix: NOW - 10,
                },
                200,
                "1 user starting",
            ),
        ];
        for (state, status, text) in cases {
            // The live report is current whatever the file's age would be.
            let response = get("/healthz", &report(NOW - 3600, &[("alice", state.clone())]));
            assert_eq!(response.status, status, "{state:?}");
            assert!(response.body.contains(text), "{state:?}: {}", response.body);
        }
    }

    #[test]
    fn a_login_waiting_for_a_person_shows_its_link_and_code_atop_the_page() {
        let waiting = |uri: &str| UserState::NeedsLogin {
            reason: "the config has no tokens; to log in, open it and enter the code".into(),
            login_code: Some(super::super::model::LoginCode {
                verification_uri: uri.into(),
                user_code: "WDJB-MJHT".into(),
                expires_unix: NOW + 1800,
            }),
        };
        let cases = [
            (
                "https://www.twitch.tv/activate?device-code=WDJB-MJHT",
                "<a href=\"https://www.twitch.tv/activate?device-code=WDJB-MJHT\"",
            ),
            // Anything but an http(s) address is shown, never linked.
            ("javascript:alert(1)", "Open javascript:alert(1) while"),
        ];
        for (uri, expected) in cases {
            let report = report(
                NOW,
                &[
                    ("alice", waiting(uri)),
                    ("bob", UserState::Connected { since_unix: NOW }),
                ],
            );
            let page = get("/", &report).body;
            let prompt_at = page.find("id=\"login-alice\"").expect("a login box");
            assert!(
                page.find("id=\"user-alice\"").unwrap() > prompt_at,
                "atop: {page}"
            );
            for text in [
                expected,
                "alice: log in",
                "<p class=\"code\">WDJB-MJHT</p>",
                "30 min more",
            ] {
                assert!(page.contains(text), "{uri}: {text} missing: {page}");
            }
            assert!(!page.contains("href=\"javascript"), "{page}");
            assert!(!page.contains("id=\"login-bob\""), "{page}");
        }
        // Once the login is done the box is gone.
        let report = report(NOW, &[("alice", UserState::Connected { since_unix: NOW })]);
        assert!(!get("/", &report).body.contains("class=\"login\""));
    }

    #[test]
    fn the_page_shows_each_user_and_escapes_what_it_shows() {
        let mut report = report(
            NOW,
            &[
                (
                    "alice",
                    UserState::Connected {
                        since_unix: NOW - 90,
                    },
                ),
                (
                    "bob",
                    UserState::Reconnecting {
                        since_unix: NOW - 5,
                        reason: "<script>alert(1)</script>".into(),
                    },
                ),
            ],
        );
        let alice = report.users.get_mut("alice").unwrap();
        alice.transport = Some("IRC".into());
        alice.channels = vec!["alice".into(), "friend".into()];
        alice.login_color = Some("#1E90FF".into());
        for n in 0..25u64 {
            alice.push_color(
                if n % 2 == 0 { "#FF4500" } else { "hot_pink" },
                NOW - 100 + n,
            );
        }
        alice.next_token_refresh_unix = Some(NOW + 3 * 3600 + 120);
        alice.last_error = Some(TimedText {
            at_unix: NOW - 30,
            text: "color change to #FF4500 failed: Helix answered 500".into(),
        });
        let page = get("/", &report).body;
        assert!(page.starts_with("<!doctype html>"), "{page}");
        for expected in [
            "<meta http-equiv=\"refresh\" content=\"5\">",
            "name=\"viewport\"",
            "id=\"user-alice\"",
            "id=\"user-bob\"",
            // The current color (the last set, #FF4500) as a swatch and the name in it on
            // both chat backgrounds.
            "style=\"background:#FF4500\"",
            "<div class=\"chat dark\"><small>dark · contrast",
            "<div class=\"chat light\"><small>light · contrast",
            "<b style=\"color:#FF4500\">alice</b>",
            "#alice, #friend",
            "IRC",
            "in 3 h 2 min",
            "Helix answered 500 (30 s ago)",
            "connected for 90 s",
            // hot_pink is drawn in its color.
            "style=\"background:#FF69B4\"",
            "&lt;script&gt;alert(1)&lt;/script&gt;",
            "color not known yet",
        ] {
            assert!(page.contains(expected), "{expected} missing: {page}");
        }
        assert!(!page.contains("<script>"), "{page}");
        assert_eq!(
            page.matches("<li ").count(),
            COLOR_HISTORY,
            "last 20 colors"
        );
        assert!(
            !page.contains("http://") && !page.contains("https://"),
            "no external assets"
        );
    }

    #[test]
    fn metrics_follow_the_text_format() {
        let report = report(
            NOW,
            &[
                ("alice", UserState::Connected { since_unix: NOW }),
                ("bob", UserState::Connected { since_unix: NOW }),
                ("carol", UserState::Disabled),
            ],
        );
        let mut metrics = MetricsSnapshot::default();
        metrics
            .color_changes
            .insert(("alice".into(), ChangeResult::Ok), 3);
        metrics
            .color_changes
            .insert(("alice".into(), ChangeResult::Failed), 1);
        metrics.helix_latency_buckets[2] = 2;
        metrics.helix_latency_buckets[9] = 1;
        metrics.helix_latency_sum_seconds = 31.5;
        metrics.reconnects.insert(ReconnectReason::Lost, 4);
        metrics.token_refreshes.insert(Outcome::Ok, 2);
        metrics.config_writes.insert(Outcome::Failed, 1);
        let text = render_metrics(&report, &metrics);
        for line in [
            "twitch_colorchanger_users{state=\"connected\"} 2",
            "twitch_colorchanger_users{state=\"disabled\"} 1",
            "twitch_colorchanger_users{state=\"needs_login\"} 0",
            "twitch_colorchanger_color_changes_total{user=\"alice\",result=\"ok\"} 3",
            "twitch_colorchanger_color_changes_total{user=\"alice\",result=\"failed\"} 1",
            "twitch_colorchanger_helix_request_duration_seconds_bucket{le=\"0.1\"} 0",
            "twitch_colorchanger_helix_request_duration_seconds_bucket{le=\"0.25\"} 2",
            "twitch_colorchanger_helix_request_duration_seconds_bucket{le=\"30\"} 2",
            "twitch_colorchanger_helix_request_duration_seconds_bucket{le=\"+Inf\"} 3",
            "twitch_colorchanger_helix_request_duration_seconds_sum 31.5",
            "twitch_colorchanger_helix_request_duration_seconds_count 3",
            "twitch_colorchanger_chat_reconnects_total{reason=\"connection_lost\"} 4",
            "twitch_colorchanger_token_refreshes_total{result=\"ok\"} 2",
            "twitch_colorchanger_config_writes_total{result=\"failed\"} 1",
            "# TYPE twitch_colorchanger_helix_request_duration_seconds histogram",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
        }
        // Every sample line is `name{labels} value` or `name value`, with a HELP and TYPE.
        for line in text.lines().filter(|line| !line.starts_with('#')) {
            let (name, value) = line.rsplit_once(' ').unwrap();
            assert!(value.parse::<f64>().is_ok(), "{line}");
            let family = name.split('{').next().unwrap();
            let base = family
                .trim_end_matches("_bucket")
                .trim_end_matches("_sum")
                .trim_end_matches("_count");
            assert!(
                text.contains(&format!("# TYPE {base} "))
                    || text.contains(&format!("# TYPE {family} ")),
                "{line}"
            );
        }
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn state_details() {
        let cases = [
            (
                UserState::Starting {
                    since_unix: NOW - 3,
                },
                "starting for 3 s",
            ),
            (
                UserState::Connected {
                    since_unix: NOW - 9000,
                },
                "connected for 2 h 30 min",
            ),
            (
                UserState::Reconnecting {
                    since_unix: NOW - 5,
                    reason: "<x>".into(),
                },
                "reconnecting for 5 s: &lt;x&gt;",
            ),
            (
                UserState::NeedsLogin {
                    reason: "rejected".into(),
                    login_code: None,
                },
                "needs a new login: rejected",
            ),
            (
                UserState::Stopped {
                    reason: "gave up".into(),
                },
                "stopped: gave up",
            ),
            (UserState::Disabled, "disabled"),
        ];
        for (state, expected) in cases {
            assert_eq!(state_detail(&state, NOW), expected, "{state:?}");
        }
    }

    #[test]
    fn token_refresh_times() {
        let cases = [
            (Some(NOW + 3 * 3600 + 120), "in 3 h 2 min"),
            (Some(NOW + 90), "in 90 s"),
            (Some(NOW), "due now"),
            (Some(NOW - 5), "due now"),
            (None, "not scheduled yet"),
        ];
        for (next, expected) in cases {
            assert_eq!(token_refresh(next, NOW), expected, "{next:?}");
        }
    }

    #[test]
    fn login_instructions_are_said_once_in_the_box() {
        let cases = [
            (
                "the config has no tokens; to log in, open https://t.tv/activate?a=b&c=ABCD-EFGH and enter the code ABCD-EFGH",
                "the config has no tokens (the link and the code to log in are above)",
            ),
            (
                "alice needs a new login: no usable token; to log in, open URL and enter the code XY12; bob stopped",
                "alice needs a new login: no usable token (the link and the code to log in are above); bob stopped",
            ),
            ("refresh token rejected", "refresh token rejected"),
            ("odd; to log in, open URL but no code", "odd; to log in, open URL but no code"),
        ];
        for (text, expected) in cases {
            assert_eq!(
                without_login_instructions(text, "above"),
                expected,
                "{text}"
            );
        }
    }
}
