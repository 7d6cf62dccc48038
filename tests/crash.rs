//! The real binary against the fake Twitch, treated as a hostile machine would (issue 19):
//! killed with SIGKILL at random instants under heavy token rotation and restarted, a user
//! never loses its refresh token, the config always parses and no temp file outlives a
//! clean start; SIGTERM in a slow refresh wave sends nothing more and loses no token, nor
//! starts a color change; SIGSTOP and SIGCONT drop no connection and fail no call; an
//! editor saving by rename and in place while the daemon writes loses no edit.
//!
//! The random instants come from a small seeded generator; the seed is printed, and
//! `CRASH_SEED=<n>` replays a run. The test never sleeps to synchronise: it waits for what
//! the fake Twitch records (the refresh grants it answered, its HTTP connections closing);
//! the only sleeps are the random delays before a kill, which are the point of the test.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::*;
use fake_twitch::{FakeTwitch, RefreshOutcome};
use serde_json::json;

/// Users rotating their tokens at once.
const N_USERS: usize = 4;
/// SIGKILLs per run.
const N_KILLS: usize = 100;
/// Every token the fake issues lives this long, so the daemon refreshes each user about
/// every 0.9 s (a tenth of the lifetime ahead of expiry).
const TOKEN_LIFETIME_SECS: u64 = 1;

/// A small deterministic generator (splitmix64): the same seed gives the same kills.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

fn seed() -> u64 {
    match std::env::var("CRASH_SEED") {
        Ok(text) => text.parse().expect("CRASH_SEED is a number"),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64,
    }
}

/// One run of the binary, its output going to `log`.
struct Run {
    child: Child,
    log: PathBuf,
    /// How many refresh grants the fake had answered before this run started.
    first_refresh: usize,
}

impl Run {
    fn start(dir: &Path, logs: &Path, twitch: &FakeTwitch, n: usize) -> Run {
        let log = logs.join(format!("run-{n}.log"));
        let file = fs::File::create(&log).unwrap();
        let first_refresh = twitch.refreshes().len();
        let mut command = binary_for(dir, twitch);
        command
            .stdout(Stdio::from(file.try_clone().unwrap()))
            .stderr(Stdio::from(file));
        Run {
            child: command.spawn().expect("binary starts"),
            log,
            first_refresh,
        }
    }

    fn output(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The refresh grants of this run.
    fn refreshes(&self, twitch: &FakeTwitch) -> Vec<RefreshOutcome> {
        twitch.refreshes().split_off(self.first_refresh)
    }

    /// Waits until every user's first refresh of this run was answered; panics with `why`.
    fn wait_every_user_refreshed(&self, twitch: &FakeTwitch, logins: &[String], why: &str) {
        let first = self.first_refresh;
        let done = twitch.wait_refreshes(
            |all| {
                let ours = &all[first.min(all.len())..];
                logins
                    .iter()
                    .all(|login| ours.iter().any(|r| r.login.as_deref() == Some(login)))
            },
            WAIT,
        );
        assert!(
            done.is_some(),
            "{why}: not every user refreshed\n{}",
            self.output()
        );
    }
}

/// Temp files of config writes left by a process other than `live_pid`.
fn orphaned_temp_files(dir: &Path, live_pid: u32) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with('.') && name.ends_with(".tmp"))
        .filter(|name| !name.contains(&format!(".{live_pid}.")))
        .collect()
}

#[test]
fn sigkill_at_random_instants_under_token_rotation_loses_no_token() {
    let seed = seed();
    println!("crash test seed {seed} (replay with CRASH_SEED={seed})");
    let mut rng = Rng(seed);
    let started = Instant::now();

    let twitch = FakeTwitch::start();
    let logins: Vec<String> = (0..N_USERS).map(|n| format!("user{n}")).collect();
    let mut users = Vec::new();
    for (n, login) in logins.iter().enumerate() {
        let mut account = fake_twitch::Account::new(login, &format!("{}", 2001 + n));
        account.turbo = true;
        account.expires_in = TOKEN_LIFETIME_SECS;
        twitch.add_user(account.clone());
        users.push(user_json(&account, true, &[]));
    }
    let dir = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), &json!({ "users": users }));

    let mut n_forgiven = 0;
    let mut n_wave_kills = 0;
    for kill in 0..=N_KILLS {
        // A NAS back after a day off: every access token has expired, so every user
        // refreshes at once when the daemon starts.
        for login in &logins {
            twitch.expire_access_token(login);
        }
        let run = Run::start(dir.path(), logs.path(), &twitch, kill);
        let context = format!("seed {seed}, run {kill}");
        if kill == N_KILLS {
            // The last start is a clean one, stopped with SIGTERM.
            run.wait_every_user_refreshed(&twitch, &logins, &context);
            stop_cleanly(run, &twitch, &path, &logins, &context);
            break;
        }
        if rng.below(2) == 0 {
            // In the refresh wave at start: right after the k-th grant, while its answer
            // travels and is saved.
            n_wave_kills += 1;
            let k = 1 + rng.below(N_USERS as u64) as usize;
            let first = run.first_refresh;
            let waited = twitch.wait_refreshes(|all| all.len() >= first + k, WAIT);
            assert!(waited.is_some(), "{context}: no refresh\n{}", run.output());
            std::thread::sleep(Duration::from_micros(rng.below(20_000)));
        } else {
            // Later, while tokens rotate about every 0.9 s per user; by then every user
            // has refreshed with the token it held, and the start left no temp file.
            run.wait_every_user_refreshed(&twitch, &logins, &context);
            let orphans = orphaned_temp_files(dir.path(), run.child.id());
            assert!(
                orphans.is_empty(),
                "{context}: {orphans:?} survived a start"
            );
            std::thread::sleep(Duration::from_micros(rng.below(1_500_000)));
        }
        let mut run = run;
        run.child.kill().unwrap();
        run.child.wait().unwrap();
        // Requests the killed process had sent are still answered by the fake (and rotate
        // tokens): wait for them before judging.
        assert!(twitch.wait_http_idle(WAIT), "{context}: HTTP still busy");
        n_forgiven += check_after_kill(&run, &twitch, &path, &logins, &context);
    }
    let refreshes = twitch.refreshes();
    let n_lost_in_flight = refreshes.iter().filter(|r| r.forgiven).count();
    println!(
        "crash test: {N_KILLS} SIGKILLs ({n_wave_kills} in a start's refresh wave), \
         {N_USERS} users, {} refreshes, 0 tokens lost; {n_forgiven} refresh answers cut \
         off by a kill before the daemon reported them saved, {n_lost_in_flight} of them \
         before they reached the disk (lost to any client); {:.1} s",
        refreshes.len(),
        started.elapsed().as_secs_f64()
    );
}

/// After a kill: no refresh was refused, no device login was started, the config parses.
/// A refresh Twitch answered that the daemon had not reported yet ("access token
/// refreshed" is logged once the new tokens are on disk) may have been cut off in flight,
/// which no client can prevent: the fake then accepts the replaced token once more. Returns
/// how many such answers there were.
fn check_after_kill(
    run: &Run,
    twitch: &FakeTwitch,
    path: &Path,
    logins: &[String],
    context: &str,
) -> usize {
    let output = run.output();
    let refreshes = run.refreshes(twitch);
    let refused: Vec<&RefreshOutcome> = refreshes.iter().filter(|r| !r.accepted).collect();
    assert!(
        refused.is_empty(),
        "{context}: Twitch refused {} refresh(es) of {:?}: a token was lost\n{output}",
        refused.len(),
        refused.iter().map(|r| r.login.clone()).collect::<Vec<_>>()
    );
    let device_logins = twitch
        .requests()
        .iter()
        .filter(|request| request.path == "/oauth2/device")
        .count();
    assert_eq!(device_logins, 0, "{context}: a device login\n{output}");
    if let Err(error) = twitch_colorchanger::config::file::load(path) {
        panic!("{context}: the config does not parse: {error}");
    }
    let mut n_forgiven = 0;
    for login in logins {
        let n_granted = refreshes
            .iter()
            .filter(|r| r.login.as_deref() == Some(login.as_str()))
            .count();
        let n_reported = output
            .lines()
            .filter(|line| line.contains(&format!("{login}: access token refreshed")))
            .count();
        if n_granted > n_reported {
            twitch.accept_replaced_refresh_token_once(login);
            n_forgiven += 1;
        }
    }
    n_forgiven
}

/// SIGTERM: the daemon exits 0 and the config holds every user's newest tokens.
fn stop_cleanly(mut run: Run, twitch: &FakeTwitch, path: &Path, logins: &[String], context: &str) {
    let orphans = orphaned_temp_files(path.parent().unwrap(), run.child.id());
    assert!(
        orphans.is_empty(),
        "{context}: {orphans:?} survived a start"
    );
    // SAFETY: kill(2) with a valid signal on our own child's pid.
    assert_eq!(
        unsafe { libc::kill(run.child.id() as libc::pid_t, libc::SIGTERM) },
        0
    );
    let status = run.child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{context}\n{}", run.output());
    let saved = read_config(path);
    for login in logins {
        assert_eq!(
            user_entry(&saved, login)["refresh_token"],
            twitch.refresh_token(login).as_str(),
            "{context}: {login}'s newest refresh token is in the config\n{}",
            run.output()
        );
    }
    let orphans = orphaned_temp_files(path.parent().unwrap(), 0);
    assert!(
        orphans.is_empty(),
        "{context}: {orphans:?} after a clean stop"
    );
}

#[test]
fn sigterm_during_a_slow_refresh_wave_sends_nothing_more_and_loses_no_token() {
    // A NAS back after a day off: more users whose access tokens all expired than there are
    // token-call threads, and an OAuth endpoint that takes 3 s per refresh (longer than the
    // shutdown grace). Twitch rotates the tokens when a refresh arrives.
    use twitch_colorchanger::token::refresher::MAX_TOKEN_CALLERS;
    let twitch = FakeTwitch::start();
    let logins: Vec<String> = (0..MAX_TOKEN_CALLERS + 4)
        .map(|n| format!("user{n:02}"))
        .collect();
    let mut users = Vec::new();
    for (n, login) in logins.iter().enumerate() {
        let account = account(&twitch, login, &format!("{}", 3001 + n), "", true);
        twitch.expire_access_token(login);
        twitch.delay_next("POST", "/oauth2/token", Duration::from_secs(3));
        users.push(user_json(&account, true, &[]));
    }
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), &json!({ "users": users }));
    let mut command = binary_for(dir.path(), &twitch);
    command.env("DEBUG", "true");
    let process = Process::spawn(command);
    // Every user's refresh is handed to the token callers: as many as there are threads
    // are waiting for an answer, the others queued behind them.
    let mut handed = std::collections::HashSet::new();
    while handed.len() < logins.len() {
        let line = process
            .wait_line(
                |line| line.contains(": token refresh handed to a token caller"),
                WAIT,
            )
            .unwrap_or_else(|| panic!("refreshes asked for: {handed:?}"));
        let head = line.split(": token refresh").next().unwrap_or("");
        handed.insert(head.rsplit(' ').next().unwrap_or("").to_string());
    }
    let in_flight = twitch
        .wait_refreshes(|refreshes| refreshes.len() >= MAX_TOKEN_CALLERS, WAIT)
        .expect("refreshes under way")
        .len();
    assert_eq!(in_flight, MAX_TOKEN_CALLERS);
    let is_oauth = |request: &fake_twitch::HttpRequest| request.path.starts_with("/oauth2/");
    let n_oauth_calls = twitch.requests().iter().filter(|r| is_oauth(r)).count();

    let (status, _, output) = process.terminate();
    assert_eq!(status.code(), Some(0), "{output}");
    let after: Vec<String> = twitch
        .requests()
        .iter()
        .filter(|r| is_oauth(r))
        .skip(n_oauth_calls)
        .map(|r| r.path.clone())
        .collect();
    assert!(after.is_empty(), "sent after SIGTERM: {after:?}\n{output}");
    assert_eq!(twitch.refreshes().len(), in_flight, "{output}");
    assert!(output.contains("token call(s) in flight"), "{output}");
    assert!(output.contains("not started are dropped"), "{output}");
    // The answers under way were saved; the queued users still hold their valid tokens.
    let saved = read_config(&path);
    for login in &logins {
        assert_eq!(
            user_entry(&saved, login)["refresh_token"],
            twitch.refresh_token(login).as_str(),
            "{login} holds a token Twitch accepts\n{output}"
        );
    }
}

/// Stops the process for half a second and lets it go on, as Ctrl-Z then `fg`, a debugger
/// attaching or a container runtime pausing it do.
fn stop_and_continue(pid: u32) {
    // SAFETY: kill(2) with valid signals on our own child's pid.
    assert_eq!(unsafe { libc::kill(pid as libc::pid_t, libc::SIGSTOP) }, 0);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(unsafe { libc::kill(pid as libc::pid_t, libc::SIGCONT) }, 0);
}

#[test]
fn sigstop_and_sigcont_drop_no_connection_and_fail_no_call() {
    stop_and_continue_rounds(FakeTwitch::start());
}

#[test]
fn sigstop_and_sigcont_over_tls_drop_no_connection_and_fail_no_call() {
    stop_and_continue_rounds(FakeTwitch::start_tls());
}

/// Four rounds of stop and continue, one during a color change and one during a refresh:
/// no chat connection is dropped and no call fails.
fn stop_and_continue_rounds(twitch: FakeTwitch) {
    let logins = ["alice", "bob", "carol"];
    let mut users = Vec::new();
    let mut accounts = Vec::new();
    for (n, login) in logins.iter().enumerate() {
        let mut account = fake_twitch::Account::new(login, &format!("{}", 4001 + n));
        account.turbo = true;
        if *login == "bob" {
            // Bob's tokens rotate every few seconds, so a refresh is under way at a stop.
            account.expires_in = 3;
        }
        twitch.add_user(account.clone());
        users.push(user_json(&account, true, &[]));
        accounts.push(account);
    }
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), &json!({ "users": users }));
    let mut command = binary_for(dir.path(), &twitch);
    if twitch.is_tls() {
        let ca = dir.path().join("fake-ca.pem");
        fs::write(&ca, twitch.ca_cert_pem()).unwrap();
        command.env("SSL_CERT_FILE", &ca);
    }
    let process = Process::spawn(command);
    for login in logins {
        assert!(twitch.wait_joined(login, login, WAIT), "{login} joined");
    }

    for round in 0..4 {
        match round {
            1 => {
                // A color change whose answer comes while the process is stopped.
                twitch.push_response(
                    "PUT",
                    "/helix/chat/color",
                    fake_twitch::ScriptedResponse::status(204).delayed(Duration::from_millis(200)),
                );
                twitch.send_line("alice", &own_message(&accounts[0], "alice", "hi"));
                twitch.wait_request(is_color_put, WAIT).expect("a PUT");
            }
            2 => {
                // A refresh whose answer comes while the process is stopped.
                twitch.delay_next("POST", "/oauth2/token", Duration::from_millis(200));
                let n = twitch.refreshes().len();
                twitch
                    .wait_refreshes(|refreshes| refreshes.len() > n, WAIT)
                    .expect("a refresh");
            }
            _ => {}
        }
        stop_and_continue(process.pid());
        for login in logins {
            sync_chat(&twitch, login, &format!("round-{round}"));
        }
    }
    process
        .wait_line(|line| line.contains("alice → "), WAIT)
        .expect("the color change made during a stop succeeded");
    let (status, _, output) = process.terminate();
    assert_eq!(status.code(), Some(0), "{output}");
    for login in logins {
        assert_eq!(twitch.n_logins(login), 1, "{login} reconnected\n{output}");
    }
    for bad in ["connection lost", "failed", "Interrupted"] {
        assert!(!output.contains(bad), "{bad}\n{output}");
    }
}

#[test]
fn edits_saved_by_rename_and_in_place_while_tokens_rotate_are_never_lost() {
    let seed = seed();
    println!("edit race seed {seed} (replay with CRASH_SEED={seed})");
    let mut rng = Rng(seed ^ 0xed17);
    // Twelve users whose tokens live a second: the daemon writes the config several times a
    // second.
    let twitch = FakeTwitch::start();
    let mut users = Vec::new();
    for n in 0..12 {
        let mut account =
            fake_twitch::Account::new(&format!("editor{n}"), &format!("{}", 5001 + n));
        account.turbo = true;
        account.expires_in = 1;
        twitch.add_user(account.clone());
        users.push(user_json(&account, true, &[]));
        // The first validations answer 75 ms apart, so the users' refreshes (every 0.9 s)
        // fall at different moments and each becomes a write of its own.
        twitch.delay_next("GET", "/oauth2/validate", Duration::from_millis(75 * n));
    }
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), &json!({ "users": users, "edits": [] }));
    let mut command = binary_for(dir.path(), &twitch);
    command.env("DEBUG", "true").env("TWITCH_RELOAD_SECS", "1");
    let process = Process::spawn(command);
    twitch
        .wait_refreshes(|refreshes| refreshes.len() >= 12, WAIT)
        .expect("tokens rotate");

    // An editor saves a new version every few milliseconds, read from the file as it is
    // then, by rename (like `sed -i`) and in place (like vim with backupcopy=yes).
    const N_EDITS: u64 = 400;
    let editor_copy = dir.path().join("editor-copy");
    for n in 0..N_EDITS {
        let mut config: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(&path).unwrap()).expect("the config parses");
        config["edits"].as_array_mut().unwrap().push(json!(n));
        let text = serde_json::to_string_pretty(&config).unwrap();
        if n % 2 == 0 {
            fs::write(&editor_copy, &text).unwrap();
            fs::rename(&editor_copy, &path).unwrap();
        } else {
            fs::write(&path, &text).unwrap();
        }
        std::thread::sleep(Duration::from_micros(rng.below(40_000)));
    }
    // At the stop the writer takes the last edit in.
    let (status, _, output) = process.terminate();
    assert_eq!(status.code(), Some(0), "{output}");
    let saved = read_config(&path);
    let kept: Vec<u64> = saved["edits"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n.as_u64())
        .collect();
    let lost: Vec<u64> = (0..N_EDITS).filter(|n| !kept.contains(n)).collect();
    let mut unguarded: Vec<u64> = output
        .lines()
        .filter_map(|line| line.split("(unguarded for ").nth(1))
        .filter_map(|rest| rest.split(' ').next()?.parse().ok())
        .collect();
    unguarded.sort_unstable();
    let caught = output
        .lines()
        .filter(|line| line.contains("was saved while the daemon wrote it"))
        .count();
    println!(
        "edit race: {N_EDITS} edits (half by rename, half in place), {} daemon writes, {} \
         edits lost, {caught} caught after the rename; unguarded window median {} µs, max {} µs",
        unguarded.len(),
        lost.len(),
        unguarded.get(unguarded.len() / 2).copied().unwrap_or(0),
        unguarded.last().copied().unwrap_or(0),
    );
    assert!(lost.is_empty(), "edits lost: {lost:?}");
    assert!(
        unguarded.len() >= 50,
        "the daemon wrote only {} times",
        unguarded.len()
    );
}

#[test]
fn sigterm_starts_no_color_change_after_the_signal() {
    let twitch = FakeTwitch::start();
    let alice = account(&twitch, "alice", "1001", "", true);
    let dir = tempfile::tempdir().unwrap();
    write_config(
        dir.path(),
        &json!({ "users": [user_json(&alice, true, &[])] }),
    );
    let process = Process::spawn(binary_for(dir.path(), &twitch));
    assert!(twitch.wait_joined("alice", "alice", WAIT));
    // A change under way, answered a second later, and a second one waiting behind it.
    twitch.push_response(
        "PUT",
        "/helix/chat/color",
        fake_twitch::ScriptedResponse::status(204).delayed(Duration::from_secs(1)),
    );
    twitch.send_line("alice", &own_message(&alice, "alice", "one"));
    twitch
        .wait_request(is_color_put, WAIT)
        .expect("the first PUT");
    twitch.send_line("alice", &own_message(&alice, "alice", "two"));
    sync_chat(&twitch, "alice", "both-handled");

    let (status, _, output) = process.terminate();
    assert_eq!(status.code(), Some(0), "{output}");
    assert_eq!(
        twitch.color_puts().len(),
        1,
        "the change under way finished, none started after the signal\n{output}"
    );
}
