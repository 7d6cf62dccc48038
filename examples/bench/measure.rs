//! The benchmark's pure parts: command-line options, percentiles, parsing of `/proc` files,
//! pacing and the result tables. No I/O happens here; `harness` does it.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

pub const USAGE: &str = "\
bench — measures twitch-colorchanger against the in-process fake Twitch

Usage: cargo build --release && cargo run --release --example bench -- [OPTIONS]

Options:
  --users LIST        user counts to run, comma-separated (default 100), e.g. 1,10,100,1000
  --messages N        own messages per run for the latency figures (default 1000)
  --tls | --plain | --both
                      wss:// + https://, ws:// + http://, or one run of each (default both)
  --transport LIST    how the users read chat, comma-separated, one run each: irc;
                      eventsub (tokens that carry user:read:chat); auto (chat_transport
                      auto with IRC-only tokens: chat waits for the token's validation,
                      then reads IRC). `irc,auto` reports auto's all-joined time beside
                      irc's (default irc)
  --idle-secs S       length of the idle window for the CPU figure (default 30)
  --after-idle N      messages sent after the idle window, to distinct users (default 5)
  --in-flight K       messages in flight at once, to distinct users (default 1)
  --roots R           trust for --tls: system (default): SSL_CERT_DIR at the system's hashed
                      directory plus the fake's CA, as a real installation looks roots up;
                      bundle: SSL_CERT_FILE with the system bundle plus the fake's CA (an
                      installation without a hashed directory); fake: only the fake's CA
  --binary PATH       the daemon binary (default: twitch-colorchanger next to this example,
                      built first with cargo when run through cargo)
  --env KEY=VALUE     extra environment for the daemon, repeatable (e.g. MALLOC_ARENA_MAX=2)
  -h, --help          print this help

Nothing is asserted: the benchmark measures and prints.
";

/// Helix grants 800 points a minute per user; the fake counts them in a fixed window. Staying
/// below keeps the daemon from waiting for an empty bucket, which would measure the pacing.
pub const SAFE_PUTS_PER_MINUTE: u32 = 790;

/// How the daemon reaches the fake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Plain,
    Tls,
}

impl Transport {
    pub fn label(self) -> &'static str {
        match self {
            Transport::Plain => "plain (ws://, http://)",
            Transport::Tls => "TLS (wss://, https://)",
        }
    }

    pub fn short_label(self) -> &'static str {
        match self {
            Transport::Plain => "plain",
            Transport::Tls => "TLS",
        }
    }
}

/// How the benchmark's users read chat (their `chat_transport`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Chat {
    #[default]
    Irc,
    EventSub,
    /// `chat_transport: auto` with tokens without `user:read:chat`: each user's chat waits
    /// for its token's validation at start, then reads IRC.
    Auto,
}

impl Chat {
    pub fn label(self) -> &'static str {
        match self {
            Chat::Irc => "IRC",
            Chat::EventSub => "EventSub",
            Chat::Auto => "auto (IRC)",
        }
    }

    /// The `chat_transport` of the config.
    pub fn config_value(self) -> &'static str {
        match self {
            Chat::Irc => "irc",
            Chat::EventSub => "eventsub",
            Chat::Auto => "auto",
        }
    }

    /// True when the users end up reading chat over IRC.
    pub fn reads_irc(self) -> bool {
        self != Chat::EventSub
    }
}

/// Which certificates the daemon trusts in TLS runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Roots {
    /// The system's hashed certificate directory with the fake's CA added: what a real
    /// Debian, Ubuntu or Alpine installation looks roots up in (`SSL_CERT_DIR`).
    SystemAndFake,
    /// The system bundle with the fake's CA appended, as one file (`SSL_CERT_FILE`): what an
    /// installation without a hashed directory (a FROM scratch image, many NAS) loads.
    BundleAndFake,
    /// Only the fake's CA.
    FakeOnly,
}

/// What the benchmark was asked to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    pub user_counts: Vec<usize>,
    pub n_messages: usize,
    pub transports: Vec<Transport>,
    pub chats: Vec<Chat>,
    pub idle: Duration,
    pub n_after_idle: usize,
    pub in_flight: usize,
    pub roots: Roots,
    pub binary: Option<PathBuf>,
    pub daemon_env: Vec<(String, String)>,
    pub help: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            user_counts: vec![100],
            n_messages: 1000,
            transports: vec![Transport::Tls, Transport::Plain],
            chats: vec![Chat::Irc],
            idle: Duration::from_secs(30),
            n_after_idle: 5,
            in_flight: 1,
            roots: Roots::SystemAndFake,
            binary: None,
            daemon_env: Vec::new(),
            help: false,
        }
    }
}

fn parse_number(flag: &str, value: &str) -> Result<usize, String> {
    value
        .trim()
        .parse::<usize>()
        .map_err(|_| format!("{flag} needs a whole number, got {value:?}"))
}

/// Reads the command line (without the program name).
pub fn parse_options(args: &[String]) -> Result<Options, String> {
    let mut options = Options::default();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let (flag, inline_value) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag, Some(value.to_string())),
            _ => (arg.as_str(), None),
        };
        let mut value = || -> Result<String, String> {
            match &inline_value {
                Some(value) => Ok(value.clone()),
                None => args
                    .next()
                    .cloned()
                    .ok_or_else(|| format!("{flag} needs a value; see --help")),
            }
        };
        match flag {
            "-h" | "--help" => options.help = true,
            "--users" => {
                let list = value()?;
                options.user_counts = list
                    .split(',')
                    .map(|count| parse_number("--users", count))
                    .collect::<Result<_, _>>()?;
                if options.user_counts.contains(&0) {
                    return Err("--users needs counts of at least 1".to_string());
                }
            }
            "--messages" => options.n_messages = parse_number(flag, &value()?)?,
            "--idle-secs" => {
                let text = value()?;
                let seconds = text
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|seconds| seconds.is_finite() && *seconds >= 0.0)
                    .ok_or_else(|| format!("--idle-secs needs seconds, got {text:?}"))?;
                options.idle = Duration::from_secs_f64(seconds);
            }
            "--after-idle" => options.n_after_idle = parse_number(flag, &value()?)?,
            "--in-flight" => {
                options.in_flight = parse_number(flag, &value()?)?;
                if options.in_flight == 0 {
                    return Err("--in-flight needs at least 1".to_string());
                }
            }
            "--tls" => options.transports = vec![Transport::Tls],
            "--plain" => options.transports = vec![Transport::Plain],
            "--both" => options.transports = vec![Transport::Tls, Transport::Plain],
            "--transport" => {
                options.chats = value()?
                    .split(',')
                    .map(|chat| match chat.trim() {
                        "irc" => Ok(Chat::Irc),
                        "eventsub" => Ok(Chat::EventSub),
                        "auto" => Ok(Chat::Auto),
                        other => Err(format!(
                            "--transport is a list of irc, eventsub and auto, got {other:?}"
                        )),
                    })
                    .collect::<Result<_, _>>()?;
            }
            "--roots" => {
                options.roots = match value()?.as_str() {
                    "system" => Roots::SystemAndFake,
                    "bundle" => Roots::BundleAndFake,
                    "fake" => Roots::FakeOnly,
                    other => {
                        return Err(format!("--roots is system, bundle or fake, got {other:?}"))
                    }
                }
            }
            "--binary" => options.binary = Some(PathBuf::from(value()?)),
            "--env" => {
                let pair = value()?;
                let (key, env_value) = pair
                    .split_once('=')
                    .filter(|(key, _)| !key.is_empty())
                    .ok_or_else(|| format!("--env needs KEY=VALUE, got {pair:?}"))?;
                options
                    .daemon_env
                    .push((key.to_string(), env_value.to_string()));
            }
            other => return Err(format!("unknown argument {other:?}; see --help")),
        }
    }
    Ok(options)
}

/// The smallest gap between two messages to the same user that keeps the run within Helix's
/// rate limit, or `None` when the run sends too few messages per user to reach it.
pub fn min_gap_per_user(n_messages: usize, n_users: usize) -> Option<Duration> {
    let per_user = n_messages.div_ceil(n_users.max(1));
    (per_user >= SAFE_PUTS_PER_MINUTE as usize)
        .then(|| Duration::from_secs(60) / SAFE_PUTS_PER_MINUTE)
}

/// The nearest-rank percentile `p` (0–100) of `sorted`, which must be sorted ascending.
pub fn percentile(sorted: &[Duration], p: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Latency figures of one run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LatencySummary {
    pub n: usize,
    pub p50: Duration,
    pub p90: Duration,
    pub p99: Duration,
    pub max: Duration,
    /// How many took longer than a millisecond: on loopback, those waited for a CPU.
    pub n_over_1ms: usize,
}

impl LatencySummary {
    pub fn of(latencies: &[Duration]) -> Option<LatencySummary> {
        let mut sorted = latencies.to_vec();
        sorted.sort();
        Some(LatencySummary {
            n: sorted.len(),
            p50: percentile(&sorted, 50.0)?,
            p90: percentile(&sorted, 90.0)?,
            p99: percentile(&sorted, 99.0)?,
            max: *sorted.last()?,
            n_over_1ms: sorted
                .iter()
                .filter(|latency| **latency > Duration::from_millis(1))
                .count(),
        })
    }
}

/// Figures from `/proc/PID/status`, sizes in KiB.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProcStatus {
    pub vm_rss_kib: u64,
    pub vm_hwm_kib: u64,
    pub rss_anon_kib: u64,
    pub rss_file_kib: u64,
    pub vm_size_kib: u64,
    pub threads: u64,
}

fn status_field(text: &str, name: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// Reads the fields we report from the text of `/proc/PID/status`; missing ones are 0.
pub fn parse_status(text: &str) -> ProcStatus {
    let field = |name| status_field(text, name).unwrap_or(0);
    ProcStatus {
        vm_rss_kib: field("VmRSS"),
        vm_hwm_kib: field("VmHWM"),
        rss_anon_kib: field("RssAnon"),
        rss_file_kib: field("RssFile"),
        vm_size_kib: field("VmSize"),
        threads: field("Threads"),
    }
}

/// Voluntary plus involuntary context switches in the text of `/proc/PID/task/TID/status`.
pub fn parse_context_switches(text: &str) -> u64 {
    status_field(text, "voluntary_ctxt_switches").unwrap_or(0)
        + status_field(text, "nonvoluntary_ctxt_switches").unwrap_or(0)
}

/// User plus system CPU time in clock ticks from the text of `/proc/PID/stat`.
pub fn parse_cpu_ticks(text: &str) -> Option<u64> {
    // The command name in parentheses may hold spaces and parentheses: fields are counted
    // from the last closing one. After it come state (field 3) … utime (14) and stime (15).
    let after_name = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Everything one run measured.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunReport {
    pub transport: Option<Transport>,
    pub chat: Chat,
    pub n_users: usize,
    pub join_time: Duration,
    pub after_join: ProcStatus,
    pub after_messages: ProcStatus,
    pub n_sent: usize,
    pub latencies: Vec<Duration>,
    pub idle: Duration,
    pub idle_cpu_seconds: f64,
    pub idle_context_switches: u64,
    pub after_idle: Vec<Duration>,
    pub shutdown_time: Option<Duration>,
    pub exit_code: Option<i32>,
    pub n_log_warnings: usize,
    pub n_log_errors: usize,
    /// `/proc/loadavg` when the run started: other work on the machine shows in the figures.
    pub load_average: String,
}

impl RunReport {
    pub fn latency(&self) -> Option<LatencySummary> {
        LatencySummary::of(&self.latencies)
    }

    /// Idle CPU time scaled to seconds per minute.
    pub fn idle_cpu_per_minute(&self) -> f64 {
        if self.idle.is_zero() {
            return 0.0;
        }
        self.idle_cpu_seconds * 60.0 / self.idle.as_secs_f64()
    }
}

pub fn format_ms(duration: Duration) -> String {
    let ms = duration.as_secs_f64() * 1000.0;
    if ms < 10.0 {
        format!("{ms:.2} ms")
    } else if ms < 1000.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{:.2} s", duration.as_secs_f64())
    }
}

pub fn format_mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn format_optional_ms(duration: Option<Duration>) -> String {
    duration.map_or_else(|| "–".to_string(), format_ms)
}

/// The detailed block printed after each run.
pub fn detail_text(report: &RunReport) -> String {
    let mut text = String::new();
    let transport = report.transport.map_or("?", Transport::label);
    let _ = writeln!(
        text,
        "== {transport}, {}, {} user{} ==",
        report.chat.label(),
        report.n_users,
        if report.n_users == 1 { "" } else { "s" }
    );
    let mut row = |name: &str, value: String| {
        let _ = writeln!(text, "  {name:<34} {value}");
    };
    row("load average at start", report.load_average.clone());
    row("all joined after start", format_ms(report.join_time));
    match report.latency() {
        Some(latency) => row(
            "own message → Helix PUT",
            format!(
                "p50 {}  p90 {}  p99 {}  max {}  ({} of {} answered, {} over 1 ms)",
                format_ms(latency.p50),
                format_ms(latency.p90),
                format_ms(latency.p99),
                format_ms(latency.max),
                latency.n,
                report.n_sent,
                latency.n_over_1ms
            ),
        ),
        None => row(
            "own message → Helix PUT",
            format!("no answer to {} messages", report.n_sent),
        ),
    }
    let after_idle: Vec<String> = report.after_idle.iter().map(|d| format_ms(*d)).collect();
    row(
        &format!(
            "after {:.0} s idle (first, then next)",
            report.idle.as_secs_f64()
        ),
        if after_idle.is_empty() {
            "–".to_string()
        } else {
            after_idle.join(", ")
        },
    );
    for (name, status) in [
        ("memory after join", report.after_join),
        ("memory after messages", report.after_messages),
    ] {
        row(
            name,
            format!(
                "VmRSS {} (anon {}, file {})  VmHWM {}  VmSize {}",
                format_mib(status.vm_rss_kib),
                format_mib(status.rss_anon_kib),
                format_mib(status.rss_file_kib),
                format_mib(status.vm_hwm_kib),
                format_mib(status.vm_size_kib),
            ),
        );
    }
    row(
        "threads",
        format!(
            "{} after join, {} after messages",
            report.after_join.threads, report.after_messages.threads
        ),
    );
    row(
        &format!("idle CPU over {:.0} s", report.idle.as_secs_f64()),
        format!(
            "{:.2} s ({:.3} s per minute), {} context switches",
            report.idle_cpu_seconds,
            report.idle_cpu_per_minute(),
            report.idle_context_switches
        ),
    );
    row(
        "shutdown after SIGTERM",
        format!(
            "{}, exit code {}",
            format_optional_ms(report.shutdown_time),
            report.exit_code.map_or_else(
                || "none (killed or still running)".to_string(),
                |c| c.to_string()
            )
        ),
    );
    row(
        "daemon log",
        format!(
            "{} warnings, {} errors",
            report.n_log_warnings, report.n_log_errors
        ),
    );
    text
}

/// One Markdown table over all runs, ready for the README.
pub fn markdown_table(reports: &[RunReport]) -> String {
    let mut text = String::new();
    text.push_str(
        "| transport | chat | users | all joined | p50 | p99 | max | 1st after idle | VmRSS joined | RssAnon joined | VmHWM | VmRSS after msgs | RssAnon after msgs | threads | idle CPU s/min | shutdown | exit |\n",
    );
    text.push_str(
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for report in reports {
        let latency = report.latency();
        let _ = writeln!(
            text,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.3} | {} | {} |",
            report.transport.map_or("?", Transport::short_label),
            report.chat.label(),
            report.n_users,
            format_ms(report.join_time),
            format_optional_ms(latency.map(|l| l.p50)),
            format_optional_ms(latency.map(|l| l.p99)),
            format_optional_ms(latency.map(|l| l.max)),
            format_optional_ms(report.after_idle.first().copied()),
            format_mib(report.after_join.vm_rss_kib),
            format_mib(report.after_join.rss_anon_kib),
            format_mib(report.after_messages.vm_hwm_kib),
            format_mib(report.after_messages.vm_rss_kib),
            format_mib(report.after_messages.rss_anon_kib),
            report.after_join.threads,
            report.idle_cpu_per_minute(),
            format_optional_ms(report.shutdown_time),
            report
                .exit_code
                .map_or_else(|| "–".to_string(), |code| code.to_string()),
        );
    }
    text
}

/// Start-up under `auto` beside `irc`: for every user count and transport run both ways,
/// one line with both all-joined times and their ratio (auto waits for each token's
/// validation before it dials; the goal is within 1.5× of irc). Empty without such pairs.
pub fn startup_comparison(reports: &[RunReport]) -> String {
    let mut text = String::new();
    for auto in reports.iter().filter(|report| report.chat == Chat::Auto) {
        let Some(irc) = reports.iter().find(|report| {
            report.chat == Chat::Irc
                && report.n_users == auto.n_users
                && report.transport == auto.transport
        }) else {
            continue;
        };
        let ratio = auto.join_time.as_secs_f64() / irc.join_time.as_secs_f64().max(1e-9);
        let _ = writeln!(
            text,
            "all joined, {} users over {}: auto {}, irc {} (auto/irc {ratio:.2}×)",
            auto.n_users,
            auto.transport.map_or("?", Transport::short_label),
            format_ms(auto.join_time),
            format_ms(irc.join_time),
        );
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn startup_pairs_auto_with_irc_of_the_same_run_shape() {
        let run = |chat, n_users, join_ms| RunReport {
            transport: Some(Transport::Tls),
            chat,
            n_users,
            join_time: Duration::from_millis(join_ms),
            ..RunReport::default()
        };
        let reports = [
            run(Chat::Irc, 100, 320),
            run(Chat::Auto, 100, 400),
            run(Chat::Auto, 10, 50),
        ];
        assert_eq!(
            startup_comparison(&reports),
            "all joined, 100 users over TLS: auto 400.0 ms, irc 320.0 ms (auto/irc 1.25×)\n"
        );
        assert_eq!(startup_comparison(&reports[..1]), "");
    }

    fn args(text: &str) -> Vec<String> {
        text.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn options_parse_from_the_command_line() {
        let defaults = Options::default();
        let cases: Vec<(&str, Options)> = vec![
            ("", defaults.clone()),
            (
                "--users 1,10,100 --messages 200 --plain --idle-secs 1.5",
                Options {
                    user_counts: vec![1, 10, 100],
                    n_messages: 200,
                    transports: vec![Transport::Plain],
                    idle: Duration::from_millis(1500),
                    ..defaults.clone()
                },
            ),
            (
                "--users=3 --tls --roots fake --in-flight 4 --after-idle 0 --binary /x/d \
                 --transport eventsub",
                Options {
                    user_counts: vec![3],
                    transports: vec![Transport::Tls],
                    chats: vec![Chat::EventSub],
                    roots: Roots::FakeOnly,
                    in_flight: 4,
                    n_after_idle: 0,
                    binary: Some(PathBuf::from("/x/d")),
                    ..defaults.clone()
                },
            ),
            (
                "--transport irc,auto",
                Options {
                    chats: vec![Chat::Irc, Chat::Auto],
                    ..defaults.clone()
                },
            ),
            (
                "--env MALLOC_ARENA_MAX=2 --env A=b=c --help",
                Options {
                    daemon_env: vec![
                        ("MALLOC_ARENA_MAX".into(), "2".into()),
                        ("A".into(), "b=c".into()),
                    ],
                    help: true,
                    ..defaults.clone()
                },
            ),
        ];
        for (line, expected) in cases {
            assert_eq!(parse_options(&args(line)), Ok(expected), "{line}");
        }
    }

    #[test]
    fn bad_options_are_refused_with_the_flag_named() {
        let cases = [
            ("--users", "--users needs a value"),
            ("--users 0", "at least 1"),
            ("--users ten", "--users needs a whole number"),
            ("--idle-secs -1", "--idle-secs"),
            ("--in-flight 0", "--in-flight"),
            ("--roots mine", "--roots"),
            (
                "--transport smoke",
                "--transport is a list of irc, eventsub and auto",
            ),
            ("--env NOVALUE", "--env"),
            ("--frobnicate", "--frobnicate"),
        ];
        for (line, expected) in cases {
            let error = parse_options(&args(line)).expect_err(line);
            assert!(error.contains(expected), "{line}: {error}");
        }
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let ms = |values: &[u64]| -> Vec<Duration> {
            values.iter().map(|v| Duration::from_millis(*v)).collect()
        };
        let hundred: Vec<u64> = (1..=100).collect();
        let cases: Vec<(Vec<u64>, f64, Option<u64>)> = vec![
            (vec![], 50.0, None),
            (vec![7], 99.0, Some(7)),
            (vec![1, 2], 50.0, Some(1)),
            (vec![1, 2, 3], 50.0, Some(2)),
            (hundred.clone(), 50.0, Some(50)),
            (hundred.clone(), 99.0, Some(99)),
            (hundred, 100.0, Some(100)),
        ];
        for (values, p, expected) in cases {
            assert_eq!(
                percentile(&ms(&values), p),
                expected.map(Duration::from_millis),
                "{values:?} p{p}"
            );
        }
        let summary = LatencySummary::of(&ms(&[5, 1, 3])).unwrap();
        assert_eq!(
            (summary.n, summary.p50, summary.max),
            (3, Duration::from_millis(3), Duration::from_millis(5))
        );
    }

    #[test]
    fn proc_files_are_parsed() {
        let status = "Name:\ttwitch-colorch\nVmHWM:\t    5120 kB\nVmRSS:\t    4096 kB\n\
                      RssAnon:\t    1024 kB\nRssFile:\t    3072 kB\nVmSize:\t  100000 kB\n\
                      Threads:\t7\nvoluntary_ctxt_switches:\t12\nnonvoluntary_ctxt_switches:\t3\n";
        assert_eq!(
            parse_status(status),
            ProcStatus {
                vm_rss_kib: 4096,
                vm_hwm_kib: 5120,
                rss_anon_kib: 1024,
                rss_file_kib: 3072,
                vm_size_kib: 100000,
                threads: 7,
            }
        );
        assert_eq!(parse_context_switches(status), 15);
        assert_eq!(parse_status(""), ProcStatus::default());
        let stat = "4242 (odd) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 7 0";
        assert_eq!(parse_cpu_ticks(stat), Some(300));
        assert_eq!(parse_cpu_ticks("garbage"), None);
    }

    #[test]
    fn pacing_starts_where_the_rate_limit_would_bite() {
        let cases = [
            (1000, 100, None),
            (789, 1, None),
            (790, 1, Some(Duration::from_secs(60) / 790)),
            (1000, 1, Some(Duration::from_secs(60) / 790)),
            (10, 0, None),
        ];
        for (n_messages, n_users, expected) in cases {
            assert_eq!(
                min_gap_per_user(n_messages, n_users),
                expected,
                "{n_messages}/{n_users}"
            );
        }
    }

    #[test]
    fn tables_show_every_run() {
        let report = RunReport {
            transport: Some(Transport::Tls),
            n_users: 100,
            join_time: Duration::from_millis(250),
            n_sent: 2,
            latencies: vec![Duration::from_micros(300), Duration::from_micros(500)],
            idle: Duration::from_secs(30),
            idle_cpu_seconds: 0.01,
            exit_code: Some(0),
            shutdown_time: Some(Duration::from_millis(12)),
            ..RunReport::default()
        };
        let table = markdown_table(std::slice::from_ref(&report));
        assert_eq!(table.lines().count(), 3);
        assert!(
            table.contains("| TLS | IRC | 100 | 250.0 ms | 0.30 ms | 0.50 ms | 0.50 ms |"),
            "{table}"
        );
        assert!(table.contains("| 0.020 | 12.0 ms | 0 |"), "{table}");
        let detail = detail_text(&report);
        assert!(
            detail.contains("(2 of 2 answered, 0 over 1 ms)"),
            "{detail}"
        );
        assert!(detail.contains("exit code 0"), "{detail}");
    }
}
