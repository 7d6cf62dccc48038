//! The token refresher: one thread that owns every user's tokens and drives every user's
//! [`TokenMachine`] from one deadline queue, and a small pool of its own that makes the OAuth
//! calls (validate, refresh, device-code login), so one user's slow call never holds up
//! another's. Publishes new access tokens, saves them, reports login states. Does I/O; what
//! to do when comes from `token::machine`.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle, ThreadId};
use std::time::{Duration, Instant};

use crossbeam_channel::{select, Receiver, Sender};
use log::{debug, error, info, warn};
use rand::RngExt;

use crate::base::backoff::BackoffPolicy;
use crate::base::clock::wall_time;
use crate::base::counters;
use crate::base::ids::Login;
use crate::base::metrics::Outcome;
use crate::base::pool::{run_pool, PoolSpec};
use crate::base::secret::Secret;
use crate::base::stop::StopSignal;
use crate::base::supervisor::supervise;
use crate::base::wall_clock::WallClock;
use crate::config::SavedField;
use crate::status::{LoginCode, UserState};
use crate::token::caller::{answer, Call, Done, Job, JournalTicket, Reply};
use crate::token::device_login::instructions;
use crate::token::machine::{
    clock_jumped, decide_reply, Answer, Approver, CallKind, Carry, Failure, Phase, ReplySummary,
    TokenMachine, TokenStep, Verdict, WallTime,
};
use crate::twitch::oauth::{OAuth, OAuthError, TokenGrant};
use crate::user::{Rejection, RejectionRoute, Settled, User};

/// At most this many threads make OAuth calls at once; the pool starts one whenever a call
/// waits and none is free, as the dialer pool does for connections (`MAX_DIALERS`), so a
/// start validates as many users at once as it dials (under `auto` each user's chat waits
/// for its validation, which decides the transport). Each user has at most one call in
/// flight, so a few slow users (each bounded by the HTTP timeout) leave the others' calls to
/// the rest; refreshes are planned ten minutes ahead of expiry, far more than a few timeouts.
pub const MAX_TOKEN_CALLERS: usize = 16;

/// A token-call thread beyond the first ends after this long without a call.
const CALLER_IDLE_END: Duration = Duration::from_secs(60);

/// Stack size of the refresher and its callers: one blocking HTTPS call at a time.
const STACK_SIZE: usize = 256 * 1024;

/// The refresher wakes at least this often, even with nothing due. `Instant`-based
/// timeouts stop during a suspend while the wall clock does not; the chat watch, which
/// compares the two, wakes the refresher at once after a suspend. This bound only matters
/// when no chat watch runs.
pub const MAX_SUSPEND_CHECK: Duration = Duration::from_secs(5 * 60);

/// After a jump of the wall clock, users validate this far apart, so that a thousand users
/// do not call Twitch in the same instant. (At start the bound of the token-call pool does
/// that: chat under `auto` waits for each validation, and no user waits there.)
const JUMP_STAGGER: Duration = Duration::from_millis(20);

/// Room beyond the HTTP timeout for an answer in flight at shutdown to arrive.
const SHUTDOWN_SLACK: Duration = Duration::from_secs(2);

/// Refresh tokens a user has used up (Twitch rotated them away), remembered so that a
/// restarted user given one of them (a stale copy of the config) takes over the newest
/// tokens instead.
const N_CONSUMED_REMEMBERED: usize = 8;

/// What the refresher needs to own one user's tokens.
pub struct TokenEntry {
    pub user: Arc<User>,
    pub client_secret: Secret,
    pub refresh_token: Secret,
    /// Fired when the user cannot go on (no way to get a valid token).
    pub user_stop: StopSignal,
    /// Wait this long before the first call to Twitch (spreads many users' first checks).
    pub first_check_after: Duration,
}

enum Control {
    Add(u64, TokenEntry),
    Remove(u64),
}

/// The daemon's handle on the refresher.
pub struct TokenService {
    control: Sender<Control>,
    rejections: Sender<Rejection>,
    next_key: AtomicU64,
    http_timeout: Duration,
    /// Disconnects when the refresher thread has ended.
    finished: Receiver<()>,
}

impl TokenService {
    /// Starts the refresher and its callers. They end once `stop` fires and the calls in
    /// flight have answered; each thread drops its clone of `done` when it ends.
    pub fn start(
        oauth: Arc<OAuth>,
        stop: StopSignal,
        http_timeout: Duration,
        (wall_clock, slept): (WallClock, Receiver<()>),
        done: &Sender<ThreadId>,
    ) -> std::io::Result<(TokenService, Vec<JoinHandle<()>>)> {
        let (control, control_receiver) = crossbeam_channel::unbounded();
        let (rejections, rejection_receiver) = crossbeam_channel::unbounded();
        let (jobs, job_receiver) = crossbeam_channel::unbounded::<Job>();
        let (replies, reply_receiver) = crossbeam_channel::unbounded::<Done>();
        let in_flight = Arc::new(AtomicUsize::new(0));
        let (finished_sender, finished) = crossbeam_channel::bounded::<()>(0);
        let mut threads = Vec::new();
        {
            let done = done.clone();
            let stop = stop.clone();
            // The pool ends when the refresher drops its end of the jobs, after the calls in
            // flight at shutdown have answered: their new tokens must be saved.
            let spec = PoolSpec {
                name: "token-call",
                max_threads: MAX_TOKEN_CALLERS,
                idle_end: CALLER_IDLE_END,
                stack_size: STACK_SIZE,
                end_on_stop: false,
            };
            threads.push(
                thread::Builder::new()
                    .name("token-callers".to_string())
                    .stack_size(STACK_SIZE)
                    .spawn(move || {
                        let caller_stop = stop.clone();
                        run_pool(job_receiver, &spec, &stop, move |job: Job| {
                            answer(&oauth, job, &replies, &caller_stop);
                        });
                        drop(done);
                    })?,
            );
        }
        let mut refresher = Refresher {
            slots: HashMap::new(),
            queue: BinaryHeap::new(),
            jobs: Some(jobs),
            replies: reply_receiver,
            control: control_receiver,
            rejections: rejection_receiver,
            stop: stop.clone(),
            in_flight,
            http_timeout,
            last_reading: (Instant::now(), wall_time(&wall_clock)),
            wall_clock,
            slept,
            handovers: HashMap::new(),
        };
        let done = done.clone();
        threads.push(
            thread::Builder::new()
                .name("token-refresh".to_string())
                .stack_size(STACK_SIZE)
                .spawn(move || {
                    supervise("token refresher", &stop, &BackoffPolicy::default(), || {
                        refresher.run();
                    });
                    refresher.finish_in_flight();
                    drop(finished_sender);
                    drop(done);
                })?,
        );
        Ok((
            TokenService {
                control,
                rejections,
                next_key: AtomicU64::new(1),
                http_timeout,
                finished,
            },
            threads,
        ))
    }

    /// A new key for a user entry and the route its token cell reports refusals on.
    pub fn new_route(&self) -> RejectionRoute {
        RejectionRoute {
            sender: self.rejections.clone(),
            entry: self.next_key.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// Hands a user's tokens to the refresher under the key of its route.
    pub fn add(&self, key: u64, entry: TokenEntry) {
        let _ = self.control.send(Control::Add(key, entry));
    }

    /// Takes a user off the refresher. A call in flight still finishes and its tokens are
    /// saved (and handed to a restarted user of the same login).
    pub fn remove(&self, key: u64) {
        let _ = self.control.send(Control::Remove(key));
    }

    /// After the stop signal: waits until the refresher has ended. Without a call in flight
    /// that is at once; with one, it waits for the answer (up to the HTTP timeout and some
    /// slack), because the answer may hold tokens Twitch has already rotated, and saves them.
    /// False if it had not ended by then.
    pub fn wait_finished(&self) -> bool {
        let deadline = Instant::now() + self.http_timeout + SHUTDOWN_SLACK * 2;
        matches!(
            self.finished.recv_deadline(deadline),
            Err(crossbeam_channel::RecvTimeoutError::Disconnected)
        )
    }
}

/// One user as the refresher holds it.
struct Slot {
    entry: TokenEntry,
    machine: TokenMachine,
    /// The deadline this slot is queued for; queue items with another time are stale.
    scheduled: Option<WallTime>,
    /// The device code on show (a secret: only sent to Twitch).
    device_code: Option<Secret>,
    /// The user code on show, for the status file.
    shown: Option<LoginCode>,
    /// Refresh tokens this user has used up, newest last.
    consumed: Vec<Secret>,
    /// Taken off the refresher while a call was in flight: only its answer is awaited.
    retired: bool,
    /// A retired slot of the same login whose call is in flight: this one waits for it.
    waits_for: Option<u64>,
    /// The client id the last validation named (not a secret), for the log line that
    /// explains a token made for another app.
    validated_client_id: Option<String>,
}

struct Refresher {
    slots: HashMap<u64, Slot>,
    /// Next deadlines, earliest first.
    queue: BinaryHeap<Reverse<(WallTime, u64)>>,
    jobs: Option<Sender<Job>>,
    replies: Receiver<Done>,
    control: Receiver<Control>,
    rejections: Receiver<Rejection>,
    stop: StopSignal,
    in_flight: Arc<AtomicUsize>,
    http_timeout: Duration,
    /// The clocks at the last wake-up, to notice a jump of the wall clock.
    last_reading: (Instant, WallTime),
    /// Where the time of day comes from (the system clock, or a test's).
    wall_clock: WallClock,
    /// The longest wait: how soon a suspend is noticed.
    /// Notices from the chat watch that the machine slept; they only wake the refresher,
    /// which then reads both clocks itself.
    slept: Receiver<()>,
    /// The newest tokens of users taken off, for a restarted user of the same login.
    handovers: HashMap<Login, Handover>,
}

/// What a user taken off leaves for its successor.
struct Handover {
    access_token: Secret,
    refresh_token: Secret,
    /// The refresh tokens it used up: a successor given one of them holds a stale copy.
    consumed: Vec<Secret>,
}

impl Refresher {
    fn wall_now(&self) -> WallTime {
        wall_time(&self.wall_clock)
    }

    /// Runs until the stop signal fires: carries out what is due, then blocks on the
    /// channels until the earliest deadline.
    fn run(&mut self) {
        loop {
            if self.stop.is_stopped() {
                return;
            }
            let now = self.read_clocks();
            self.run_due(now);
            let timeout = self
                .earliest()
                .map_or(MAX_SUSPEND_CHECK, |at| at.saturating_sub(now))
                .min(MAX_SUSPEND_CHECK);
            select! {
                recv(self.control) -> message => match message {
                    Ok(Control::Add(key, entry)) => self.add(key, entry),
                    Ok(Control::Remove(key)) => self.remove(key),
                    Err(_) => return,
                },
                recv(self.rejections) -> rejection => {
                    if let Ok(rejection) = rejection {
                        self.on_rejection(rejection);
                    }
                }
                recv(self.replies) -> done => {
                    if let Ok(done) = done {
                        self.on_done(done);
                    }
                }
                recv(self.slept) -> notice => {
                    if notice.is_err() {
                        // The watch has ended (shutdown): stop listening to it.
                        self.slept = crossbeam_channel::never();
                    }
                }
                recv(self.stop.receiver()) -> _ => return,
                default(timeout) => {}
            }
        }
    }

    /// After the stop signal: waits for the answers of calls in flight (bounded by the HTTP
    /// timeout) so that tokens Twitch already rotated are saved, then lets the callers end.
    fn finish_in_flight(&mut self) {
        // The callers send nothing after the stop: queued calls come back as `NotSent`.
        let n_queued = self.jobs.take().map_or(0, |jobs| jobs.len());
        let n_calls = self.in_flight.load(Ordering::SeqCst);
        if n_queued > 0 {
            info!(
                "shutdown: {n_queued} token call(s) not started are dropped; those users keep their tokens"
            );
        }
        if n_calls > n_queued {
            info!(
                "shutdown: waiting for {} token call(s) in flight (at most {} s) so that new tokens are saved",
                n_calls - n_queued,
                (self.http_timeout + SHUTDOWN_SLACK).as_secs()
            );
        }
        if n_calls > 0 {
            let deadline = Instant::now() + self.http_timeout + SHUTDOWN_SLACK;
            while self.in_flight.load(Ordering::SeqCst) > 0 {
                match self.replies.recv_deadline(deadline) {
                    Ok(done) => self.on_done(done),
                    Err(_) => {
                        warn!("shutdown: a token call did not answer in time");
                        break;
                    }
                }
            }
        }
        // Waiters for a new token (workers, chat) must not wait for one that never comes.
        for slot in self.slots.values() {
            slot.entry.user.token.close();
        }
    }

    /// Reads both clocks; a jump of the wall clock against the monotonic one makes every
    /// user validate at once.
    fn read_clocks(&mut self) -> WallTime {
        let (mono_now, wall) = (Instant::now(), self.wall_now());
        let (last_mono, last_wall) = self.last_reading;
        self.last_reading = (mono_now, wall);
        if clock_jumped(mono_now - last_mono, wall.checked_sub(last_wall)) {
            info!("the wall clock jumped (a suspend or a clock change); validating every token");
            let keys: Vec<u64> = self.slots.keys().copied().collect();
            for (index, key) in keys.into_iter().enumerate() {
                if let Some(slot) = self.slots.get_mut(&key) {
                    slot.machine
                        .on_clock_jump(wall + JUMP_STAGGER * index as u32);
                }
                self.plan(key, wall);
            }
        }
        wall
    }

    fn earliest(&mut self) -> Option<WallTime> {
        while let Some(Reverse((at, key))) = self.queue.peek().copied() {
            if self.slots.get(&key).and_then(|slot| slot.scheduled) == Some(at) {
                return Some(at);
            }
            self.queue.pop();
        }
        None
    }

    fn run_due(&mut self, now: WallTime) {
        while let Some(at) = self.earliest() {
            if at > now {
                return;
            }
            let Some(Reverse((_, key))) = self.queue.pop() else {
                return;
            };
            if let Some(slot) = self.slots.get_mut(&key) {
                slot.scheduled = None;
            }
            self.plan(key, now);
        }
    }

    fn add(&mut self, key: u64, mut entry: TokenEntry) {
        let now = self.wall_now();
        let login = entry.user.login.clone();
        // A restarted user: the old entry's call in flight answers first.
        let waits_for = self
            .slots
            .iter()
            .find(|(_, slot)| slot.retired && slot.entry.user.login == login)
            .map(|(key, _)| *key);
        if waits_for.is_some() {
            info!("{login}: waiting for the previous token call to finish before taking over");
        }
        let has_access = !entry.user.token.current().0.is_empty();
        let has_refresh = !entry.refresh_token.is_empty();
        if !has_access && !has_refresh {
            info!("{login}: no tokens in the config; starting a device-code login");
        }
        let machine = TokenMachine::new(now + entry.first_check_after, has_access, has_refresh);
        entry.first_check_after = Duration::ZERO;
        self.slots.insert(
            key,
            Slot {
                entry,
                machine,
                scheduled: None,
                device_code: None,
                shown: None,
                consumed: Vec::new(),
                retired: false,
                waits_for,
                validated_client_id: None,
            },
        );
        if waits_for.is_none() {
            self.take_over(key, now);
        }
    }

    /// Takes a user off. With a call in flight the slot stays, retired, until it answers.
    fn remove(&mut self, key: u64) {
        let Some(slot) = self.slots.get_mut(&key) else {
            return;
        };
        if slot.machine.busy {
            slot.retired = true;
            slot.scheduled = None;
        } else {
            self.drop_slot(key);
        }
    }

    /// Forgets a slot, leaving its newest tokens for a successor of the same login, and
    /// lets a successor that waited for it take over.
    fn drop_slot(&mut self, key: u64) {
        let Some(slot) = self.slots.remove(&key) else {
            return;
        };
        let login = slot.entry.user.login.clone();
        if !slot.consumed.is_empty() {
            self.handovers.insert(
                login.clone(),
                Handover {
                    access_token: slot.entry.user.token.current().0,
                    refresh_token: slot.entry.refresh_token.clone(),
                    consumed: slot.consumed,
                },
            );
        }
        let now = self.wall_now();
        let successors: Vec<u64> = self
            .slots
            .iter()
            .filter(|(_, slot)| slot.waits_for == Some(key))
            .map(|(key, _)| *key)
            .collect();
        for successor in successors {
            if let Some(slot) = self.slots.get_mut(&successor) {
                slot.waits_for = None;
            }
            self.take_over(successor, now);
        }
    }

    /// A new slot starts. Given a refresh token its predecessor used up (a stale copy of
    /// the config), it takes over the predecessor's newest tokens and saves them.
    fn take_over(&mut self, key: u64, now: WallTime) {
        let Some(slot) = self.slots.get_mut(&key) else {
            return;
        };
        if let Some(handover) = self.handovers.remove(&slot.entry.user.login) {
            let login = &slot.entry.user.login;
            if handover.consumed.contains(&slot.entry.refresh_token) {
                info!("{login}: the config holds tokens Twitch has since rotated; keeping the newest and saving them");
                slot.entry.refresh_token = handover.refresh_token;
                save_tokens(
                    &slot.entry.user,
                    &handover.access_token,
                    &slot.entry.refresh_token,
                    None,
                    now,
                );
                slot.entry.user.token.replace(handover.access_token);
                slot.consumed = handover.consumed;
                slot.machine.after_refresh(now, None);
                slot.machine.has_refresh_token = true;
            } else if handover.refresh_token != slot.entry.refresh_token {
                info!("{login}: new tokens were put in the config; using them");
            }
        }
        self.plan(key, now);
    }

    fn on_rejection(&mut self, rejection: Rejection) {
        let now = self.wall_now();
        let Some(slot) = self.slots.get_mut(&rejection.entry) else {
            return;
        };
        if slot.retired || rejection.generation != slot.entry.user.token.current().1 {
            return;
        }
        let login = &slot.entry.user.login;
        if slot.machine.on_refused() {
            if let Some(code) = &slot.shown {
                // Chat reported the refusal (and its reconnecting state) after the code was
                // shown: the code is what a person needs to see.
                slot.entry
                    .user
                    .report_state(needs_login(&slot.machine, Some(code)));
            } else {
                info!("{login}: Twitch refused the access token; checking it");
            }
        }
        self.plan(rejection.entry, now);
    }

    /// Decides and starts the next step of one user.
    fn plan(&mut self, key: u64, now: WallTime) {
        let Some(slot) = self.slots.get_mut(&key) else {
            return;
        };
        if slot.retired || slot.waits_for.is_some() {
            return;
        }
        let step = slot.machine.next_step(now);
        let user = &slot.entry.user;
        let call = match step {
            TokenStep::Idle => {
                slot.scheduled = None;
                return;
            }
            TokenStep::WaitUntil(at) => {
                if slot.scheduled != Some(at) {
                    slot.scheduled = Some(at);
                    self.queue.push(Reverse((at, key)));
                    user.report_token_refresh_at(
                        slot.machine.refresh_due().map(|due| due.as_secs()),
                    );
                }
                return;
            }
            TokenStep::Validate => Call::Validate(user.token.current().0),
            TokenStep::Refresh => Call::Refresh {
                refresh_token: slot.entry.refresh_token.clone(),
                client_id: user.client_id.clone(),
                client_secret: slot.entry.client_secret.clone(),
            },
            TokenStep::StartDeviceLogin if user.client_id.is_empty() => {
                error!(
                    "{}: a device-code login needs the client_id of your Twitch app in the config",
                    user.login
                );
                slot.machine.started();
                let verdict = slot.machine.on_answer(now, Answer::DeviceRefused, 0.5);
                self.carry_out(key, verdict, "no client_id for a device-code login");
                return;
            }
            TokenStep::StartDeviceLogin => Call::StartDevice {
                client_id: user.client_id.clone(),
            },
            TokenStep::PollDevice => match &slot.device_code {
                Some(device_code) => Call::PollDevice {
                    client_id: user.client_id.clone(),
                    device_code: device_code.clone(),
                },
                None => Call::StartDevice {
                    client_id: user.client_id.clone(),
                },
            },
        };
        let Some(jobs) = &self.jobs else {
            return;
        };
        slot.machine.started();
        slot.scheduled = None;
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        let what = call.name();
        let journal = user.token_journal().map(|journal| JournalTicket {
            journal,
            login: user.login.clone(),
            refresh_token: slot.entry.refresh_token.clone(),
        });
        if jobs.send(Job { key, call, journal }).is_err() {
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
        } else {
            debug!("{}: token {what} handed to a token caller", user.login);
        }
    }

    /// Handles the answer of a call: [`decide_reply`] says what it means, this carries that
    /// out and feeds the answer to the user's machine.
    fn on_done(&mut self, done: Done) {
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        if let Reply::NotSent = done.reply {
            // Dropped after the stop before it was sent: the user's tokens did not change.
            return;
        }
        let now = self.wall_now();
        let key = done.key;
        let Some(slot) = self.slots.get_mut(&key) else {
            return;
        };
        let login = slot.entry.user.login.clone();
        let detail = reply_detail(&done.reply);
        let decision = decide_reply(summarize(&done.reply, &login, &slot.entry.user.client_id));
        if let Reply::Validated(Ok(validation)) = &done.reply {
            slot.validated_client_id = Some(validation.client_id.clone());
        }
        if decision.call == CallKind::Refresh {
            let refreshed = matches!(decision.answer, Answer::Refreshed { .. });
            counters::token_refresh(if refreshed {
                Outcome::Ok
            } else {
                Outcome::Failed
            });
        }
        if let Answer::Valid { expires_in, .. } = &decision.answer {
            debug!(
                "{login}: token valid for another {} minutes",
                expires_in.as_secs() / 60
            );
        }
        carry_reply(slot, decision.carry, done.reply, now);
        if slot.retired {
            // Its tokens are saved; a successor takes over from here.
            debug!("{login}: the token call of a removed or restarted entry answered");
            self.drop_slot(key);
            return;
        }
        let what = decision.call.name();
        if decision.answer == Answer::NotYet {
            // Not final while the code lasts (twitchdev/issues#971): it stays on show.
            debug!("{login}: the login code is not approved yet ({detail}); polling on until it expires");
        }
        if decision.answer == Answer::Transient {
            slot.entry
                .user
                .report_error(&format!("token {what} failed: {detail}"));
        }
        let verdict = slot
            .machine
            .on_answer(now, decision.answer, rand::rng().random());
        let detail = match verdict {
            Verdict::RetryAt(at) => format!(
                "{login}: token {what} failed ({detail}); trying again in {} s",
                at.saturating_sub(now).as_secs()
            ),
            _ => detail,
        };
        self.carry_out(key, verdict, &detail);
        self.plan(key, now);
    }

    /// Logs, reports and publishes what a verdict says.
    fn carry_out(&mut self, key: u64, verdict: Verdict, detail: &str) {
        let now = self.wall_now();
        let Some(slot) = self.slots.get_mut(&key) else {
            return;
        };
        let user = &slot.entry.user;
        let login = &user.login;
        match verdict {
            Verdict::Quiet => {}
            Verdict::Valid {
                settle,
                missing_scopes,
                usable,
                other_client,
            } => {
                let generation = user.token.current().1;
                if !usable {
                    user.token.settle(generation, Settled::CannotHelp);
                }
                if other_client {
                    // Helix takes a user token only with the Client-Id it was made for, and
                    // answers 401 otherwise ("Client ID and OAuth token do not match";
                    // dev.twitch.tv, "Twitch API reference", and docs/twitch-behaviour.md).
                    // Validation names the token's client id.
                    let theirs = slot.validated_client_id.as_deref().unwrap_or("?");
                    error!(
                        "{login}: the access token was made for another Twitch app (client id {theirs}), not for the configured client_id {}; Twitch refuses it for color changes (401), and a refresh cannot fix that. Fix: log in again with this app's client id: `twitch-colorchanger auth --user {login}`",
                        user.client_id
                    );
                }
                if !missing_scopes.is_empty() {
                    error!(
                        "{login}: the token lacks the scope(s) {}, so Twitch refuses what needs them; a new token will not help. Fix: run `twitch-colorchanger auth --user {login}`",
                        missing_scopes.join(", ")
                    );
                } else if settle && usable {
                    info!("{login}: Twitch refused the access token, but it validates; trying again with it (a new token would not help, so none is fetched)");
                    user.token.settle(generation, Settled::Validates);
                }
            }
            Verdict::Refreshing => {
                info!("{login}: the access token is expired or revoked; refreshing it");
            }
            Verdict::LogIn(why) => {
                warn!(
                    "{login}: {}; starting a device-code login (the code follows)",
                    why.describe()
                );
                slot.shown = None;
                slot.device_code = None;
                user.report_state(needs_login(&slot.machine, None));
            }
            Verdict::RetryAt(_) => warn!("{detail}"),
            Verdict::CodeEnded { next_code_at } => {
                let wait = next_code_at.saturating_sub(now);
                let ended = if detail.is_empty() { "ended" } else { detail };
                if wait.is_zero() {
                    info!("{login}: the login code {ended}; asking for a new one");
                } else {
                    info!(
                        "{login}: the login code {ended}; the next one comes in {} minutes",
                        wait.as_secs().div_ceil(60)
                    );
                }
                slot.shown = None;
                user.report_state(needs_login(&slot.machine, None));
            }
            Verdict::GiveUp { why } => {
                let reason = if detail.is_empty() {
                    format!("{}; the device-code login was refused", why.describe())
                } else {
                    format!(
                        "{}; the device-code login was refused: {detail}",
                        why.describe()
                    )
                };
                error!(
                    "{login}: {reason}. This user is stopped; the others go on. Fix: run `twitch-colorchanger auth --user {login}` (or put new tokens in the config)."
                );
                user.report_state(UserState::NeedsLogin {
                    reason,
                    login_code: None,
                });
                slot.entry.user_stop.stop();
                user.token.close();
                self.slots.remove(&key);
            }
        }
        if let Some(slot) = self.slots.get(&key) {
            if let (Some(code), Phase::LoggingIn { .. }) = (&slot.shown, slot.machine.phase) {
                slot.entry
                    .user
                    .report_state(needs_login(&slot.machine, Some(code)));
            }
        }
    }
}

/// The state a user needing a login shows in the status file.
fn needs_login(machine: &TokenMachine, code: Option<&LoginCode>) -> UserState {
    let why = match machine.phase {
        Phase::LoggingIn { why } => why.describe(),
        _ => "no usable token",
    };
    let reason = match code {
        Some(code) => format!(
            "{why}; to log in, open {} and enter the code {}",
            code.verification_uri, code.user_code
        ),
        None => format!("{why}; a device-code login is starting"),
    };
    UserState::NeedsLogin {
        reason,
        login_code: code.cloned(),
    }
}

/// A call's reply reduced to what decides the next step (see [`decide_reply`]): whether a
/// validation is of `login`'s own account and of the configured `client_id`, and how an
/// error failed.
fn summarize(reply: &Reply, login: &Login, client_id: &str) -> ReplySummary {
    match reply {
        Reply::Validated(Ok(validation)) => ReplySummary::Validated {
            own_account: validation.login == *login,
            // An answer without a client id tells nothing against the configured one.
            own_client: validation.client_id.is_empty()
                || validation.client_id.trim() == client_id.trim(),
            scopes: validation.scopes.clone(),
            expires_in: validation.expires_in,
        },
        Reply::Validated(Err(error)) => {
            ReplySummary::Failed(CallKind::Validation, failure_of(error))
        }
        Reply::Refreshed(Ok(grant)) => ReplySummary::Refreshed {
            expires_in: grant.expires_in,
        },
        Reply::Refreshed(Err(error)) => ReplySummary::Failed(CallKind::Refresh, failure_of(error)),
        Reply::DeviceStarted(Ok(code)) => ReplySummary::CodeIssued {
            expires_in: code.expires_in,
            interval: code.interval,
        },
        Reply::DeviceStarted(Err(error)) => {
            ReplySummary::Failed(CallKind::DeviceStart, failure_of(error))
        }
        Reply::Polled(Ok((grant, validation))) => ReplySummary::Approved {
            expires_in: grant.expires_in,
            by: match validation {
                Ok(validation) if validation.login != *login => Approver::OtherAccount,
                Ok(validation) => Approver::Owner {
                    scopes: validation.scopes.clone(),
                },
                // The tokens are new and the old ones dead: keep them, validate later.
                Err(_) => Approver::Unknown,
            },
        },
        Reply::Polled(Err(error)) => ReplySummary::Failed(CallKind::DevicePoll, failure_of(error)),
        Reply::Panicked | Reply::NotSent => {
            ReplySummary::Failed(CallKind::Unknown, Failure::Transient)
        }
    }
}

/// How an OAuth error failed, as the token machine tells failures apart.
fn failure_of(error: &OAuthError) -> Failure {
    match error {
        OAuthError::InvalidAccessToken => Failure::InvalidAccessToken,
        OAuthError::InvalidRefreshToken => Failure::InvalidRefreshToken,
        OAuthError::AuthorizationPending => Failure::Pending,
        OAuthError::SlowDown => Failure::SlowDown,
        OAuthError::AccessDenied => Failure::CodeOver,
        OAuthError::DeviceCodeExpired | OAuthError::InvalidDeviceCode => Failure::CodeDoubted,
        error if error.is_transient() => Failure::Transient,
        _ => Failure::Refused,
    }
}

/// What went wrong, for log lines and the status file: the error of a failed call, empty
/// for a call that worked.
fn reply_detail(reply: &Reply) -> String {
    let error = match reply {
        Reply::Validated(Err(error))
        | Reply::Refreshed(Err(error))
        | Reply::DeviceStarted(Err(error))
        | Reply::Polled(Err(error)) => error,
        Reply::Panicked => return "it panicked".to_string(),
        Reply::NotSent => return "not sent: stopping".to_string(),
        _ => return String::new(),
    };
    error.to_string()
}

/// Does what [`decide_reply`] asked with a reply's tokens or code: adopts a validation,
/// saves and publishes new tokens, shows or forgets a device code.
fn carry_reply(slot: &mut Slot, carry: Carry, reply: Reply, now: WallTime) {
    let login = slot.entry.user.login.clone();
    match (carry, reply) {
        (Carry::AdoptValidation, Reply::Validated(Ok(validation))) => {
            let user = &slot.entry.user;
            if user.user_id().is_none() {
                user.set_user_id(validation.user_id);
            }
            // Only this thread replaces tokens, and one call per user is under way: the
            // current token is the one validated. Chat chooses its transport by these
            // scopes (user:read:chat).
            user.token
                .set_scopes(user.token.current().1, validation.scopes);
        }
        (Carry::InstallRefresh, Reply::Refreshed(Ok(grant))) => {
            remember_consumed(slot);
            install(slot, &grant, now);
            // Logged once the new tokens are on disk (in the token journal).
            info!("{login}: access token refreshed");
        }
        (Carry::ShowCode, Reply::DeviceStarted(Ok(code))) => {
            let line = instructions(&login, &code);
            warn!("{line}");
            slot.shown = Some(LoginCode {
                verification_uri: code.verification_uri,
                user_code: code.user_code,
                expires_unix: (now + code.expires_in).as_secs(),
            });
            slot.device_code = Some(code.device_code);
        }
        (Carry::RejectOtherAccount, Reply::Polled(Ok((_, Ok(validation))))) => {
            error!(
                "{login}: the code was entered while logged in to Twitch as {}; log in as {login}",
                validation.login
            );
            slot.device_code = None;
        }
        (Carry::InstallLogin, Reply::Polled(Ok((grant, validation)))) => {
            let scopes = validation.ok().map(|validation| {
                if slot.entry.user.user_id().is_none() {
                    slot.entry.user.set_user_id(validation.user_id);
                }
                validation.scopes
            });
            remember_consumed(slot);
            install(slot, &grant, now);
            info!("{login}: logged in with the device code");
            if let Some(scopes) = scopes {
                let token = &slot.entry.user.token;
                token.set_scopes(token.current().1, scopes);
            }
            slot.device_code = None;
            slot.shown = None;
            slot.entry.user.report_state(UserState::Starting {
                since_unix: now.as_secs(),
            });
        }
        (Carry::ForgetCode, _) => slot.device_code = None,
        // `Carry::Nothing`; `decide_reply` pairs every other carry with its reply kind.
        _ => {}
    }
}

/// Remembers the refresh token about to be replaced: Twitch rotates it away.
fn remember_consumed(slot: &mut Slot) {
    if slot.entry.refresh_token.is_empty() {
        return;
    }
    slot.consumed.push(slot.entry.refresh_token.clone());
    if slot.consumed.len() > N_CONSUMED_REMEMBERED {
        slot.consumed.remove(0);
    }
}

/// Saves new tokens, then publishes them to the other threads.
fn install(slot: &mut Slot, grant: &TokenGrant, now: WallTime) {
    if !grant.refresh_token.is_empty() {
        slot.entry.refresh_token = grant.refresh_token.clone();
    }
    let user = &slot.entry.user;
    save_tokens(
        user,
        &grant.access_token,
        &slot.entry.refresh_token,
        grant.expires_in,
        now,
    );
    user.token.replace(grant.access_token.clone());
}

/// Hands tokens to the config writer (the token-call thread has already put them in the
/// token journal; the writer's own append is then a no-op). Done before anyone can use the
/// new token, so whatever follows from its use (a change, a flush of the writer) comes
/// after the save was asked for.
fn save_tokens(
    user: &User,
    access_token: &Secret,
    refresh_token: &Secret,
    expires_in: Option<Duration>,
    now: WallTime,
) {
    user.save(SavedField::Tokens {
        access_token: access_token.clone(),
        refresh_token: refresh_token.clone(),
        expires_at_unix: expires_in.map(|lifetime| (now + lifetime).as_secs()),
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::ids::UserId;
    use crate::twitch::oauth::{DeviceCode, Validation};

    const HOUR: Duration = Duration::from_secs(3600);

    fn validation(login: &str) -> Validation {
        Validation {
            client_id: "client".to_string(),
            login: Login::new(login),
            user_id: UserId::new("1"),
            scopes: vec!["chat:read".to_string()],
            expires_in: HOUR,
        }
    }

    fn grant() -> TokenGrant {
        TokenGrant {
            access_token: Secret::new("access"),
            refresh_token: Secret::new("refresh"),
            expires_in: Some(4 * HOUR),
            scopes: Vec::new(),
        }
    }

    fn status(status: u16) -> OAuthError {
        OAuthError::Status {
            status,
            message: "no".to_string(),
        }
    }

    #[test]
    fn failure_of_each_error() {
        let cases = [
            (OAuthError::InvalidAccessToken, Failure::InvalidAccessToken),
            (
                OAuthError::InvalidRefreshToken,
                Failure::InvalidRefreshToken,
            ),
            (OAuthError::AuthorizationPending, Failure::Pending),
            (OAuthError::SlowDown, Failure::SlowDown),
            (OAuthError::DeviceCodeExpired, Failure::CodeDoubted),
            (OAuthError::InvalidDeviceCode, Failure::CodeDoubted),
            (OAuthError::AccessDenied, Failure::CodeOver),
            (status(503), Failure::Transient),
            (status(429), Failure::Transient),
            (status(400), Failure::Refused),
            (
                OAuthError::Transport {
                    message: "reset".to_string(),
                },
                Failure::Transient,
            ),
            (
                OAuthError::UnexpectedBody {
                    status: 200,
                    message: "<html>".to_string(),
                },
                Failure::Transient,
            ),
        ];
        for (error, failure) in cases {
            assert_eq!(failure_of(&error), failure, "{error}");
        }
    }

    #[test]
    fn summarize_each_reply_kind() {
        let login = Login::new("alice");
        let code = DeviceCode {
            device_code: Secret::new("device"),
            user_code: "ABCD".to_string(),
            verification_uri: "https://www.twitch.tv/activate".to_string(),
            expires_in: HOUR / 2,
            interval: Duration::from_secs(5),
        };
        let chat_read = vec!["chat:read".to_string()];
        let cases: Vec<(&str, Reply, ReplySummary)> = vec![
            (
                "own validation",
                Reply::Validated(Ok(validation("alice"))),
                ReplySummary::Validated {
                    own_account: true,
                    own_client: true,
                    scopes: chat_read.clone(),
                    expires_in: HOUR,
                },
            ),
            (
                "a token made for another app's client id",
                Reply::Validated(Ok(Validation {
                    client_id: "other-app".to_string(),
                    ..validation("alice")
                })),
                ReplySummary::Validated {
                    own_account: true,
                    own_client: false,
                    scopes: chat_read.clone(),
                    expires_in: HOUR,
                },
            ),
            (
                "another account's token",
                Reply::Validated(Ok(validation("mallory"))),
                ReplySummary::Validated {
                    own_account: false,
                    own_client: true,
                    scopes: chat_read.clone(),
                    expires_in: HOUR,
                },
            ),
            (
                "validation 401",
                Reply::Validated(Err(OAuthError::InvalidAccessToken)),
                ReplySummary::Failed(CallKind::Validation, Failure::InvalidAccessToken),
            ),
            (
                "refreshed",
                Reply::Refreshed(Ok(grant())),
                ReplySummary::Refreshed {
                    expires_in: Some(4 * HOUR),
                },
            ),
            (
                "refresh 500",
                Reply::Refreshed(Err(status(500))),
                ReplySummary::Failed(CallKind::Refresh, Failure::Transient),
            ),
            (
                "code issued",
                Reply::DeviceStarted(Ok(code)),
                ReplySummary::CodeIssued {
                    expires_in: HOUR / 2,
                    interval: Duration::from_secs(5),
                },
            ),
            (
                "device start refused",
                Reply::DeviceStarted(Err(status(400))),
                ReplySummary::Failed(CallKind::DeviceStart, Failure::Refused),
            ),
            (
                "approved by the owner",
                Reply::Polled(Ok((grant(), Ok(validation("alice"))))),
                ReplySummary::Approved {
                    expires_in: Some(4 * HOUR),
                    by: Approver::Owner {
                        scopes: chat_read.clone(),
                    },
                },
            ),
            (
                "approved from another account",
                Reply::Polled(Ok((grant(), Ok(validation("mallory"))))),
                ReplySummary::Approved {
                    expires_in: Some(4 * HOUR),
                    by: Approver::OtherAccount,
                },
            ),
            (
                "approved, validation failed",
                Reply::Polled(Ok((grant(), Err(status(502))))),
                ReplySummary::Approved {
                    expires_in: Some(4 * HOUR),
                    by: Approver::Unknown,
                },
            ),
            (
                "poll pending",
                Reply::Polled(Err(OAuthError::AuthorizationPending)),
                ReplySummary::Failed(CallKind::DevicePoll, Failure::Pending),
            ),
            (
                "panicked",
                Reply::Panicked,
                ReplySummary::Failed(CallKind::Unknown, Failure::Transient),
            ),
        ];
        for (name, reply, summary) in cases {
            assert_eq!(summarize(&reply, &login, "client"), summary, "{name}");
        }
    }

    #[test]
    fn reply_detail_names_the_error_only() {
        let cases = [
            (Reply::Validated(Ok(validation("alice"))), ""),
            (Reply::Refreshed(Err(status(503))), "status 503: no"),
            (
                Reply::Polled(Err(OAuthError::DeviceCodeExpired)),
                "device code expired",
            ),
            (Reply::Polled(Ok((grant(), Err(status(502))))), ""),
            (Reply::Panicked, "it panicked"),
        ];
        for (reply, detail) in cases {
            assert_eq!(reply_detail(&reply), detail);
        }
    }

    #[test]
    fn needs_login_shows_the_code_when_there_is_one() {
        let machine = TokenMachine::new(Duration::ZERO, false, false);
        let code = LoginCode {
            verification_uri: "https://www.twitch.tv/activate".to_string(),
            user_code: "ABCD".to_string(),
            expires_unix: 1_800_000_000,
        };
        assert_eq!(
            needs_login(&machine, Some(&code)),
            UserState::NeedsLogin {
                reason: "the config has no tokens; to log in, open https://www.twitch.tv/activate and enter the code ABCD".to_string(),
                login_code: Some(code),
            }
        );
        assert_eq!(
            needs_login(&machine, None),
            UserState::NeedsLogin {
                reason: "the config has no tokens; a device-code login is starting".to_string(),
                login_code: None,
            }
        );
        let working = TokenMachine::new(Duration::ZERO, true, true);
        assert_eq!(
            needs_login(&working, None),
            UserState::NeedsLogin {
                reason: "no usable token; a device-code login is starting".to_string(),
                login_code: None,
            }
        );
    }
}
