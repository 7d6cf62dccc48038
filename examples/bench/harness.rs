//! The benchmark's I/O: starts the fake Twitch in this process, runs the real daemon binary as a
//! child process against it, drives own messages, samples `/proc` and prints the results.
//!
//! Latency is measured entirely on the fake's clock: from the instant the fake writes the
//! PRIVMSG frame to the daemon's socket ([`FakeTwitch::wait_frame_sent`]) to the instant it has
//! read the daemon's `PUT /helix/chat/color` ([`fake_twitch::HttpRequest::at`]). The bench loop's
//! own scheduling does not enter the figures.

use std::collections::HashMap;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use fake_twitch::{Account, FakeTwitch, HttpRequest, READ_CHAT_SCOPE};

use crate::measure::{
    detail_text, markdown_table, min_gap_per_user, parse_context_switches, parse_cpu_ticks,
    parse_options, parse_status, startup_comparison, Chat, Options, ProcStatus, Roots, RunReport,
    Transport, USAGE,
};

/// The daemon's binary name, as Cargo builds it.
const DAEMON_NAME: &str = "twitch-colorchanger";
/// How long one color change may take before the benchmark counts it as lost; far beyond
/// anything a working daemon needs on loopback.
const PUT_WAIT: Duration = Duration::from_secs(10);
/// Time allowed for the daemon to connect and join, on top of a per-user allowance.
const JOIN_WAIT: Duration = Duration::from_secs(30);
const JOIN_WAIT_PER_USER: Duration = Duration::from_millis(30);
/// Pause after the last JOIN before memory is sampled, so that the answers to it (USERSTATE,
/// ROOMSTATE) have been handled.
const SETTLE: Duration = Duration::from_millis(500);
/// Time allowed after SIGTERM before the daemon is killed.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(10);
/// CA bundles OpenSSL-based systems ship, in the order the daemon looks for them.
/// The system's hashed certificate directory (Debian, Ubuntu, Alpine).
const SYSTEM_CERT_DIR: &str = "/etc/ssl/certs";
const SYSTEM_CA_BUNDLES: [&str; 4] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// Runs the benchmark with these arguments (without the program name); returns the exit code.
pub fn main_with_args(args: &[String]) -> i32 {
    let options = match parse_options(args) {
        Ok(options) => options,
        Err(error) => {
            eprintln!("bench: {error}");
            return 2;
        }
    };
    if options.help {
        print!("{USAGE}");
        return 0;
    }
    match run_all(&options) {
        Ok(_) => 0,
        Err(error) => {
            eprintln!("bench: {error}");
            1
        }
    }
}

/// Runs every requested user count over every requested transport, printing each run's
/// details as it ends and one Markdown table at the end.
pub fn run_all(options: &Options) -> Result<Vec<RunReport>, String> {
    let binary = locate_binary(options)?;
    let clock_ticks = clock_ticks_per_second();
    println!("daemon binary: {}", binary.display());
    let mut reports = Vec::new();
    for &n_users in &options.user_counts {
        for &transport in &options.transports {
            for &chat in &options.chats {
                println!(
                    "\nrunning {n_users} user(s) over {}, chat {} …",
                    transport.label(),
                    chat.label()
                );
                let report = run_once(&binary, n_users, transport, chat, options, clock_ticks)?;
                print!("{}", detail_text(&report));
                let _ = std::io::stdout().flush();
                reports.push(report);
            }
        }
    }
    println!("\n{}", markdown_table(&reports));
    print!("{}", startup_comparison(&reports));
    Ok(reports)
}

/// The daemon binary: `--binary`, else the one Cargo builds next to this example (built first
/// when the benchmark runs under Cargo, so that it is never stale).
fn locate_binary(options: &Options) -> Result<PathBuf, String> {
    if let Some(binary) = &options.binary {
        // Absolute, because the daemon starts in a temporary directory.
        return match binary.is_file() {
            true => binary
                .canonicalize()
                .map_err(|error| format!("--binary {}: {error}", binary.display())),
            false => Err(format!("--binary {}: no such file", binary.display())),
        };
    }
    let exe = std::env::current_exe().map_err(|error| format!("own path: {error}"))?;
    // target/<profile>/examples/bench → target/<profile>/twitch-colorchanger
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| format!("unexpected location {}", exe.display()))?;
    let binary = profile_dir.join(DAEMON_NAME);
    if let Some(cargo) = std::env::var_os("CARGO") {
        build_daemon(Path::new(&cargo), profile_dir)?;
    }
    if !binary.is_file() {
        return Err(format!(
            "no daemon binary at {}; build it with `cargo build --release` or pass --binary PATH",
            binary.display()
        ));
    }
    Ok(binary)
}

/// Builds the daemon in the profile this example was built in.
fn build_daemon(cargo: &Path, profile_dir: &Path) -> Result<(), String> {
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
    let mut command = Command::new(cargo);
    command.args(["build", "--bin", DAEMON_NAME, "--manifest-path", manifest]);
    match profile_dir.file_name().and_then(|name| name.to_str()) {
        Some("debug") => {}
        Some("release") => {
            command.arg("--release");
        }
        Some(other) => {
            command.args(["--profile", other]);
        }
        None => return Ok(()),
    }
    if let Some(target_dir) = profile_dir.parent() {
        command.arg("--target-dir").arg(target_dir);
    }
    println!("building the daemon: {command:?}");
    let status = command
        .status()
        .map_err(|error| format!("run cargo: {error}"))?;
    if !status.success() {
        return Err(format!("building the daemon failed ({status})"));
    }
    Ok(())
}

/// `getconf CLK_TCK`: the unit of the CPU times in `/proc/PID/stat` (100 nearly everywhere).
fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|output| String::from_utf8(output.stdout).ok())
        .and_then(|text| text.trim().parse::<f64>().ok())
        .filter(|ticks| *ticks > 0.0)
        .unwrap_or(100.0)
}

/// A fake account the benchmark drives.
#[derive(Clone, Debug)]
struct BenchUser {
    login: String,
    user_id: String,
}

fn bench_users(n_users: usize) -> Vec<BenchUser> {
    (1..=n_users)
        .map(|index| BenchUser {
            login: format!("bench{index:04}"),
            user_id: (100_000 + index).to_string(),
        })
        .collect()
}

/// The config a user would write for these accounts: each watches its own channel, over
/// the chat transport asked for.
fn config_json(twitch: &FakeTwitch, users: &[BenchUser], chat: Chat) -> String {
    let users: Vec<serde_json::Value> = users
        .iter()
        .map(|user| {
            let account = twitch.account(&user.login);
            let mut entry = account.config_entry(true, &[account.login.as_str()]);
            entry["chat_transport"] = chat.config_value().into();
            entry
        })
        .collect();
    serde_json::to_string_pretty(&serde_json::json!({ "users": users })).expect("json")
}

/// The environment that makes the daemon trust the fake's CA in a TLS run, per `roots`.
fn trust_env(
    dir: &Path,
    twitch: &FakeTwitch,
    roots: Roots,
) -> Result<(&'static str, PathBuf), String> {
    if roots == Roots::SystemAndFake {
        match hashed_dir_with_fake(dir, twitch)? {
            Some(certs) => return Ok(("SSL_CERT_DIR", certs)),
            None => println!(
                "note: no hashed {SYSTEM_CERT_DIR}; the daemon loads the system bundle instead"
            ),
        }
    }
    write_ca_file(dir, twitch, roots).map(|file| ("SSL_CERT_FILE", file))
}

/// A hashed certificate directory holding links to every root of the system's and the
/// fake's CA under its subject hash; `None` when the system has no hashed directory.
fn hashed_dir_with_fake(dir: &Path, twitch: &FakeTwitch) -> Result<Option<PathBuf>, String> {
    let Ok(entries) = fs::read_dir(SYSTEM_CERT_DIR) else {
        return Ok(None);
    };
    let certs = dir.join("certs");
    fs::create_dir_all(&certs).map_err(|error| format!("{}: {error}", certs.display()))?;
    let mut n_linked = 0;
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name();
        let hashed = name
            .to_str()
            .and_then(|name| name.split_once('.'))
            .is_some_and(|(hash, index)| {
                hash.len() == 8 && index.bytes().all(|byte| byte.is_ascii_digit())
            });
        if hashed {
            std::os::unix::fs::symlink(entry.path(), certs.join(&name))
                .map_err(|error| format!("linking {}: {error}", entry.path().display()))?;
            n_linked += 1;
        }
    }
    if n_linked == 0 {
        return Ok(None);
    }
    let pem = twitch.ca_cert_pem();
    let hash = openssl::x509::X509::from_pem(pem.as_bytes())
        .map_err(|error| format!("the fake's CA: {error}"))?
        .subject_name_hash();
    let index = (0..)
        .find(|index| !certs.join(format!("{hash:08x}.{index}")).exists())
        .expect("a free index");
    let path = certs.join(format!("{hash:08x}.{index}"));
    fs::write(&path, pem).map_err(|error| format!("{}: {error}", path.display()))?;
    Ok(Some(certs))
}

/// Writes the file `SSL_CERT_FILE` names for a TLS run: the fake's CA, after the system's
/// bundle unless `roots` is `FakeOnly`.
fn write_ca_file(dir: &Path, twitch: &FakeTwitch, roots: Roots) -> Result<PathBuf, String> {
    let mut pem = String::new();
    if roots != Roots::FakeOnly {
        match SYSTEM_CA_BUNDLES
            .iter()
            .find(|path| Path::new(path).is_file())
        {
            Some(bundle) => {
                pem = fs::read_to_string(bundle).map_err(|error| format!("{bundle}: {error}"))?;
                if !pem.ends_with('\n') {
                    pem.push('\n');
                }
            }
            None => {
                println!("note: no system CA bundle found; the daemon trusts only the fake's CA")
            }
        }
    }
    pem.push_str(&twitch.ca_cert_pem());
    let path = dir.join("ca.pem");
    fs::write(&path, pem).map_err(|error| format!("{}: {error}", path.display()))?;
    Ok(path)
}

/// The daemon as a child process. Its exit is collected by a waiter thread so that the exit
/// instant is known precisely; dropping it kills a daemon still running.
struct RunningDaemon {
    pid: u32,
    exited: Receiver<(Option<i32>, Instant)>,
    exit: Option<(Option<i32>, Instant)>,
    waiter: Option<JoinHandle<()>>,
}

impl RunningDaemon {
    fn watch(mut child: Child) -> RunningDaemon {
        let pid = child.id();
        let (sender, exited) = crossbeam_channel::bounded(1);
        let waiter = thread::Builder::new()
            .name("bench-daemon-waiter".to_string())
            .spawn(move || {
                let code = child.wait().ok().and_then(|status| status.code());
                let _ = sender.send((code, Instant::now()));
            })
            .expect("spawn waiter thread");
        RunningDaemon {
            pid,
            exited,
            exit: None,
            waiter: Some(waiter),
        }
    }

    /// The exit code and instant, waiting up to `timeout` for them.
    fn wait_exit(&mut self, timeout: Duration) -> Option<(Option<i32>, Instant)> {
        if self.exit.is_none() {
            self.exit = self.exited.recv_timeout(timeout).ok();
        }
        self.exit
    }

    fn has_exited(&mut self) -> bool {
        self.wait_exit(Duration::ZERO).is_some()
    }

    /// Sends a signal with the `kill` command.
    fn signal(&self, signal: &str) -> Result<(), String> {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid.to_string())
            .status()
            .map_err(|error| format!("run kill: {error}"))?;
        match status.success() {
            true => Ok(()),
            false => Err(format!("kill -{signal} {} failed ({status})", self.pid)),
        }
    }

    fn proc_path(&self, name: &str) -> PathBuf {
        PathBuf::from(format!("/proc/{}/{name}", self.pid))
    }

    fn status(&self) -> Result<ProcStatus, String> {
        let path = self.proc_path("status");
        let text =
            fs::read_to_string(&path).map_err(|error| format!("{}: {error}", path.display()))?;
        Ok(parse_status(&text))
    }

    fn cpu_ticks(&self) -> Result<u64, String> {
        let path = self.proc_path("stat");
        let text =
            fs::read_to_string(&path).map_err(|error| format!("{}: {error}", path.display()))?;
        parse_cpu_ticks(&text).ok_or_else(|| format!("{}: unexpected format", path.display()))
    }

    /// Context switches of every thread, summed: how often the daemon's threads woke up.
    fn context_switches(&self) -> u64 {
        let Ok(tasks) = fs::read_dir(self.proc_path("task")) else {
            return 0;
        };
        tasks
            .filter_map(Result::ok)
            .filter_map(|task| fs::read_to_string(task.path().join("status")).ok())
            .map(|text| parse_context_switches(&text))
            .sum()
    }
}

impl Drop for RunningDaemon {
    fn drop(&mut self) {
        if !self.has_exited() {
            let _ = self.signal("KILL");
            self.wait_exit(SHUTDOWN_WAIT);
        }
        if let Some(waiter) = self.waiter.take() {
            let _ = waiter.join();
        }
    }
}

/// The last lines of the daemon's log, for error messages.
fn log_tail(log_path: &Path) -> String {
    let text = fs::read_to_string(log_path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(20)..].join("\n");
    format!("last lines of the daemon's log:\n{tail}")
}

/// Runs the daemon for `n_users` over `transport` and measures it.
fn run_once(
    binary: &Path,
    n_users: usize,
    transport: Transport,
    chat: Chat,
    options: &Options,
    clock_ticks: f64,
) -> Result<RunReport, String> {
    let twitch = match transport {
        Transport::Plain => FakeTwitch::start(),
        Transport::Tls => FakeTwitch::start_tls(),
    };
    let users = bench_users(n_users);
    for user in &users {
        let mut account = Account::new(&user.login, &user.user_id);
        if chat == Chat::EventSub {
            account.scopes.push(READ_CHAT_SCOPE.to_string());
        }
        twitch.add_user(account);
    }
    let dir = tempfile::tempdir().map_err(|error| format!("temp dir: {error}"))?;
    let config_path = dir.path().join("twitch_colorchanger.conf");
    fs::write(&config_path, config_json(&twitch, &users, chat))
        .map_err(|error| format!("{}: {error}", config_path.display()))?;
    let log_path = dir.path().join("daemon.log");
    let log = fs::File::create(&log_path).map_err(|error| format!("daemon log: {error}"))?;
    let log_for_stdout = log
        .try_clone()
        .map_err(|error| format!("daemon log: {error}"))?;

    let mut command = Command::new(binary);
    command
        .env_clear()
        .current_dir(dir.path())
        .arg("--config")
        .arg(&config_path)
        .env("TWITCH_IRC_URL", twitch.irc_url())
        .env("TWITCH_EVENTSUB_URL", twitch.eventsub_url())
        .env("TWITCH_API_URL", twitch.api_url())
        .env("TWITCH_AUTH_URL", twitch.auth_url())
        .stdin(Stdio::null())
        .stdout(Stdio::from(log_for_stdout))
        .stderr(Stdio::from(log));
    if transport == Transport::Tls {
        let (key, value) = trust_env(dir.path(), &twitch, options.roots)?;
        command.env(key, value);
    }
    for (key, value) in &options.daemon_env {
        command.env(key, value);
    }

    let load_average = fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default();
    let started = Instant::now();
    let child = command
        .spawn()
        .map_err(|error| format!("start {}: {error}", binary.display()))?;
    let mut daemon = RunningDaemon::watch(child);

    let join_time = wait_all_joined(&twitch, &users, chat, started, &mut daemon)
        .map_err(|error| format!("{error}\n{}", log_tail(&log_path)))?;
    thread::sleep(SETTLE);
    let after_join = daemon.status()?;

    let gap = min_gap_per_user(options.n_messages, n_users);
    if let Some(gap) = gap {
        println!(
            "  ({} messages per user: at least {} between two to the same user, within Helix's rate limit)",
            options.n_messages.div_ceil(n_users),
            crate::measure::format_ms(gap)
        );
    }
    let mut driver = MessageDriver::new(&twitch, chat);
    let latencies = driver.drive(&users, options.n_messages, options.in_flight, gap);
    let n_sent = options.n_messages;
    let after_messages = daemon.status()?;

    let ticks_before = daemon.cpu_ticks()?;
    let switches_before = daemon.context_switches();
    let idle_started = Instant::now();
    thread::sleep(options.idle);
    let idle = idle_started.elapsed();
    let ticks_after = daemon.cpu_ticks()?;
    let switches_after = daemon.context_switches();

    let n_after_idle = options.n_after_idle.min(n_users);
    let after_idle = driver.drive(&users[..n_after_idle], n_after_idle, 1, None);

    let signalled = Instant::now();
    daemon.signal("TERM")?;
    let (shutdown_time, exit_code) = match daemon.wait_exit(SHUTDOWN_WAIT) {
        Some((code, exited_at)) => (Some(exited_at.saturating_duration_since(signalled)), code),
        None => {
            eprintln!(
                "bench: the daemon did not exit within {SHUTDOWN_WAIT:?} of SIGTERM; killing it"
            );
            (None, None)
        }
    };
    drop(daemon);

    let log_text = fs::read_to_string(&log_path).unwrap_or_default();
    let is_warning = |line: &&str| line.contains("[WARN]");
    let is_error = |line: &&str| line.contains("[ERROR]");
    let n_log_warnings = log_text.lines().filter(is_warning).count();
    let n_log_errors = log_text.lines().filter(is_error).count();
    for line in log_text
        .lines()
        .filter(|line| is_warning(line) || is_error(line))
        .take(5)
    {
        println!("  daemon: {line}");
    }
    Ok(RunReport {
        transport: Some(transport),
        chat,
        n_users,
        join_time,
        after_join,
        after_messages,
        n_sent,
        latencies,
        idle,
        idle_cpu_seconds: ticks_after.saturating_sub(ticks_before) as f64 / clock_ticks,
        idle_context_switches: switches_after.saturating_sub(switches_before),
        after_idle,
        shutdown_time,
        exit_code,
        n_log_warnings,
        n_log_errors,
        load_average,
    })
}

/// Waits until every user joined its channel (over EventSub: subscribed to it); returns the
/// time from `started` to the last JOIN the fake received (over EventSub: to when the last
/// subscription was seen).
fn wait_all_joined(
    twitch: &FakeTwitch,
    users: &[BenchUser],
    chat: Chat,
    started: Instant,
    daemon: &mut RunningDaemon,
) -> Result<Duration, String> {
    let deadline = started + JOIN_WAIT + JOIN_WAIT_PER_USER * users.len() as u32;
    for user in users {
        // Waiting in slices lets a daemon that died be noticed before the deadline.
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Err(format!(
                    "{} did not join #{} within {:?}",
                    user.login,
                    user.login,
                    deadline - started
                ));
            }
            let slice = (deadline - now).min(Duration::from_secs(1));
            let ready = if chat.reads_irc() {
                twitch.wait_joined(&user.login, &user.login, slice)
            } else {
                twitch.wait_eventsub_subscribed(&user.login, &user.login, slice)
            };
            if ready {
                break;
            }
            if daemon.has_exited() {
                return Err("the daemon exited before every user joined".to_string());
            }
        }
    }
    if chat == Chat::EventSub {
        return Ok(started.elapsed());
    }
    let last_join = users
        .iter()
        .filter_map(|user| twitch.join_times(&user.login).first().map(|(at, _)| *at))
        .max()
        .unwrap_or(started);
    Ok(last_join.saturating_duration_since(started))
}

/// A message the daemon has not answered with a PUT yet.
struct Outstanding {
    login: String,
    marker: String,
}

fn is_color_put(request: &HttpRequest) -> bool {
    request.method == "PUT" && request.path == "/helix/chat/color"
}

/// Sends own messages and pairs each with the daemon's PUT.
struct MessageDriver<'a> {
    twitch: &'a FakeTwitch,
    chat: Chat,
    /// Numbers every message of a run, so that each one's frame can be told apart.
    n_sent_total: usize,
}

impl<'a> MessageDriver<'a> {
    fn new(twitch: &'a FakeTwitch, chat: Chat) -> MessageDriver<'a> {
        MessageDriver {
            twitch,
            chat,
            n_sent_total: 0,
        }
    }

    /// Sends `n_messages` own messages round-robin over `users`, at most `in_flight` at once
    /// and never two at once to the same user (the daemon would coalesce them), at least
    /// `gap` apart per user. Returns the latency of every message that got its PUT.
    fn drive(
        &mut self,
        users: &[BenchUser],
        n_messages: usize,
        in_flight: usize,
        gap: Option<Duration>,
    ) -> Vec<Duration> {
        let mut latencies = Vec::with_capacity(n_messages);
        let mut outstanding: HashMap<String, Outstanding> = HashMap::new();
        let mut last_sent: Vec<Option<Instant>> = vec![None; users.len()];
        let mut cursor = 0;
        let mut n_sent = 0;
        let in_flight = in_flight.min(users.len()).max(1);
        while n_sent < n_messages || !outstanding.is_empty() {
            while n_sent < n_messages && outstanding.len() < in_flight {
                let Some(index) = (0..users.len())
                    .map(|offset| (cursor + offset) % users.len())
                    .find(|index| !outstanding.contains_key(&users[*index].user_id))
                else {
                    break;
                };
                cursor = index + 1;
                if let (Some(gap), Some(last)) = (gap, last_sent[index]) {
                    // Pacing, not synchronisation: the latency comes from the fake's clocks.
                    thread::sleep((last + gap).saturating_duration_since(Instant::now()));
                }
                let user = &users[index];
                self.n_sent_total += 1;
                let text = format!("bench m{}", self.n_sent_total);
                n_sent += 1;
                last_sent[index] = Some(Instant::now());
                let n_delivered = match self.chat {
                    Chat::Irc | Chat::Auto => {
                        let line = FakeTwitch::privmsg_line(
                            &user.login,
                            &user.user_id,
                            &user.login,
                            &user.login,
                            &text,
                        );
                        self.twitch.send_line(&user.login, &line)
                    }
                    Chat::EventSub => self.twitch.say(&user.login, &user.login, &text),
                };
                if n_delivered == 0 {
                    eprintln!("bench: {} has no live connection; message lost", user.login);
                    continue;
                }
                outstanding.insert(
                    user.user_id.clone(),
                    Outstanding {
                        login: user.login.clone(),
                        marker: match self.chat {
                            Chat::Irc | Chat::Auto => format!(":{text}\r\n"),
                            Chat::EventSub => format!("\"text\":\"{text}\""),
                        },
                    },
                );
            }
            if outstanding.is_empty() {
                continue;
            }
            let Some(put) = self.twitch.wait_request(is_color_put, PUT_WAIT) else {
                eprintln!(
                    "bench: no color change within {PUT_WAIT:?}; {} message(s) counted as lost",
                    outstanding.len()
                );
                outstanding.clear();
                continue;
            };
            let Some(message) = put
                .query_param("user_id")
                .and_then(|user_id| outstanding.remove(user_id))
            else {
                continue;
            };
            let marker = message.marker;
            let sent_at = self.twitch.wait_frame_sent(
                &message.login,
                |frame| frame.contains(&marker),
                PUT_WAIT,
            );
            if let Some(sent_at) = sent_at {
                latencies.push(put.at.saturating_duration_since(sent_at));
            }
        }
        latencies
    }
}
