//! The token machine: every decision about a user's tokens, when to validate, refresh, start
//! or poll a device-code login, wait, or give up, and what each answer from Twitch's OAuth
//! server means for the next step. Pure, no I/O and no clocks: the caller passes `now` (wall
//! time, so a suspended machine does not make a token look younger than it is) and random
//! numbers in `0.0..1.0`.
//!
//! The refresher asks [`TokenMachine::next_step`] what to do, makes that call, turns its
//! reply into an [`Answer`] with [`decide_reply`] and feeds it to [`TokenMachine::on_answer`],
//! whose [`Verdict`] it logs and reports. The phases, and the answers that move between them:
//!
//! ```text
//!        some token in the config                 no token in the config
//!                  |                                        |
//!                  v                                        v
//!   +-----------------------------+         +-------------------------------+
//!   | Tokens                      |         | LoggingIn { why }             |
//!   |                             |         |                               |
//!   |  Validate --Invalid--+      |  (1)    |  StartDeviceLogin             |
//!   |     ^                |      | ------> |     | CodeIssued              |
//!   |     |                v      |         |     v                         |
//!   |     +--Refreshed-- Refresh  |         |  PollDevice <-- Pending,      |
//!   |                             |  (2)    |     |           SlowDown,     |
//!   |  WaitUntil(hourly check,    | <------ |     |           NotYet        |
//!   |    refresh before expiry)   |         |     +-- CodeEnded, expiry:    |
//!   |                             |         |         a new code (limited)  |
//!   +-----------------------------+         +-------------------------------+
//!                                                           |
//!                                                           | DeviceRefused
//!                                                           v
//!                                                       +---------+
//!                                                       | Stopped |
//!                                                       +---------+
//!
//! (1) Invalid with no refresh token or straight after a refresh, RefreshRejected,
//!     RefreshRefused, Valid for another account (see [`LoginReason`]).
//! (2) LoggedIn: the person approved the code from the configured account.
//! ```
//!
//! A refusal reported by chat or a worker ([`TokenMachine::on_refused`]) and a jump of the
//! wall clock ([`TokenMachine::on_clock_jump`]) ask for a validation at once; refusals, also
//! those after a validation said "good", at most [`REFUSAL_CHECKS_PER_WINDOW`] a minute.
//! `Transient` answers hold every step until a jittered, doubling backoff ends. A shown code
//! ends only at its expiry, an approval or `access_denied`: any other failed poll is
//! `NotYet`, polled again with backoff ([`poll_backoff`]).

use std::time::Duration;

use crate::base::backoff::{exponential_ceiling, upper_half_jitter};

/// Wall-clock time as a duration since the Unix epoch. Token lifetimes are real time: an
/// `Instant` stops while the machine sleeps, and a token does not.
pub type WallTime = Duration;

/// Twitch requires apps to validate every token at start and then at least once an hour.
pub const VALIDATION_INTERVAL: Duration = Duration::from_secs(60 * 60);

/// A token is refreshed once less than this remains of it (or less than a tenth of its
/// lifetime, for short-lived tokens): early enough that a few failed attempts still leave
/// time before it lapses.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(10 * 60);

/// The first wait after a transient failure of the auth endpoints; doubles with every
/// further failure.
pub const AUTH_RETRY_BASE: Duration = Duration::from_secs(5);

/// The wait after transient failures never grows past this.
pub const AUTH_RETRY_CAP: Duration = Duration::from_secs(5 * 60);

/// A device-code login shows this many codes as fast as they expire or end...
pub const FREE_DEVICE_CODES: u32 = 3;

/// ...and after those at most one per this interval, so that a login nobody answers does not
/// ask Twitch for a code every few minutes for months.
pub const DEVICE_CODE_INTERVAL: Duration = Duration::from_secs(30 * 60);

/// `slow_down` from the device endpoint adds this to the poll interval (RFC 8628).
pub const SLOW_DOWN_STEP: Duration = Duration::from_secs(5);

/// A poll Twitch answers with an error other than "pending" is "not yet", never the end of
/// the code (twitchdev/issues#971: "invalid device code" for codes that could still be
/// approved; twitch-cli and pyTwitchAPI poll on until `expires_in`). Such polls back off,
/// doubling the code's interval up to this.
pub const POLL_BACKOFF_CAP: Duration = Duration::from_secs(30);

/// The wall clock and the monotonic clock may drift apart by this much between two wake-ups
/// before it counts as a jump (a suspend, a VM pause, a clock set by hand).
pub const CLOCK_JUMP_TOLERANCE: Duration = Duration::from_secs(30);

/// A refusal reported after a validation said the token is good is new evidence (the token
/// may have died since: Twitch can invalidate a token early, dev.twitch.tv "Validating
/// requests"), so it is validated again, but at most this many times per
/// [`REFUSAL_CHECK_WINDOW`]: a token that keeps being refused yet validates (another app's
/// client id, a missing scope) must not turn every color change into a validation.
pub const REFUSAL_CHECKS_PER_WINDOW: usize = 3;

/// The window of [`REFUSAL_CHECKS_PER_WINDOW`].
pub const REFUSAL_CHECK_WINDOW: Duration = Duration::from_secs(60);

/// The scopes without which the daemon cannot work: chat login needs `chat:read`, color
/// changes `user:manage:chat_color`.
pub const REQUIRED_SCOPES: [&str; 2] = ["chat:read", "user:manage:chat_color"];

/// Why a user needs a new login.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoginReason {
    /// The config holds no tokens at all.
    NoTokens,
    /// The access token is dead and there is no refresh token to get another.
    NoRefreshToken,
    /// Twitch refused the refresh token (a changed password or a removed app connection).
    RefreshTokenRejected,
    /// Twitch refused the refresh for another reason (client id or secret).
    RefreshRefused,
    /// A token fresh from a refresh failed validation: refreshing again will not help.
    StillInvalidAfterRefresh,
    /// The access token belongs to another Twitch account.
    WrongAccount,
}

impl LoginReason {
    /// What a person reads in the log and the status file.
    pub fn describe(self) -> &'static str {
        match self {
            LoginReason::NoTokens => "the config has no tokens",
            LoginReason::NoRefreshToken => {
                "the access token is no longer valid and the config has no refresh token"
            }
            LoginReason::RefreshTokenRejected => {
                "Twitch rejected the refresh token (a changed password or a removed app connection does that)"
            }
            LoginReason::RefreshRefused => {
                "Twitch refused to refresh the token (check client_id and client_secret)"
            }
            LoginReason::StillInvalidAfterRefresh => {
                "the access token still fails validation after a refresh"
            }
            LoginReason::WrongAccount => "the access token belongs to another Twitch account",
        }
    }
}

/// Where a user's tokens stand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Working with the tokens in hand.
    Tokens,
    /// No usable token: a device-code login runs until a person approves it.
    LoggingIn { why: LoginReason },
    /// Nothing more can be done without a person changing the config.
    Stopped,
}

/// A device code on show.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShownCode {
    pub expires_at: WallTime,
    pub next_poll: WallTime,
    pub interval: Duration,
    /// Polls in a row Twitch answered with an error other than "pending" or "slow down".
    pub n_failed_polls: u32,
}

/// What to do next for one user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenStep {
    /// `GET /validate` the current token.
    Validate,
    /// `POST /token` with the refresh token.
    Refresh,
    /// `POST /device`: get a new device code to show.
    StartDeviceLogin,
    /// `POST /token` with the device code: has the person approved?
    PollDevice,
    /// Nothing is due before this moment.
    WaitUntil(WallTime),
    /// Nothing to do until a call in flight answers (or ever, when stopped).
    Idle,
}

/// What an answer means beyond the next step, for the shell to log, report or publish.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing to tell.
    Quiet,
    /// The token works. `settle`: it was reported refused, yet validates, so a new token
    /// would not help: readers should stop waiting for one. `missing_scopes`: the scopes it
    /// lacks, given the first time they are found missing (log it once). `usable`: it can
    /// do the daemon's job (no scope missing, made for the configured client id), so a
    /// refused call is worth one more try. `other_client`: it was made for another app's
    /// client id, to be said (at its first validation and after each refusal).
    Valid {
        settle: bool,
        missing_scopes: Vec<&'static str>,
        usable: bool,
        other_client: bool,
    },
    /// The token is expired or revoked: a refresh follows.
    Refreshing,
    /// A device-code login starts (or goes on) for this reason.
    LogIn(LoginReason),
    /// A transient failure; the next attempt is at this moment.
    RetryAt(WallTime),
    /// The shown code ended without tokens; the next one comes at this moment.
    CodeEnded { next_code_at: WallTime },
    /// Nothing more can be done: the user stops. Carries why it needed a login, read before
    /// the machine moved to `Stopped`.
    GiveUp { why: LoginReason },
}

/// What an OAuth call came back with, reduced to what the machine needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// Validation passed. `own_account`: the token is the configured user's. `own_client`: it
    /// was made for the configured client id (Helix refuses it otherwise). `scopes`: what
    /// it grants. `expires_in`: zero for tokens that do not expire.
    Valid {
        own_account: bool,
        own_client: bool,
        scopes: Vec<String>,
        expires_in: Duration,
    },
    /// Validation answered 401.
    Invalid,
    /// A refresh gave new tokens living `expires_in` (when Twitch said).
    Refreshed { expires_in: Option<Duration> },
    /// The refresh token was refused.
    RefreshRejected,
    /// The refresh was refused for another reason (client id or secret).
    RefreshRefused,
    /// A device code was issued.
    CodeIssued {
        expires_in: Duration,
        interval: Duration,
    },
    /// The device code is not approved yet.
    Pending,
    /// Polling too fast.
    SlowDown,
    /// A poll failed otherwise (5xx, a timeout, "invalid device code", any 4xx): the code
    /// stays on show until its own expiry, polled with backoff.
    NotYet,
    /// The code was declined, or approved by the wrong account.
    CodeEnded,
    /// The person approved the code; the new tokens live `expires_in` (when Twitch said).
    /// `scopes`: what they grant, when validation confirmed they are the user's; `None`
    /// when that validation failed transiently (the tokens are kept and validated next).
    LoggedIn {
        expires_in: Option<Duration>,
        scopes: Option<Vec<String>>,
    },
    /// The device endpoint refused (an unknown client id): no login can work.
    DeviceRefused,
    /// 5xx, 429, timeout, broken connection: try again later.
    Transient,
}

/// Which OAuth call a reply answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallKind {
    Validation,
    Refresh,
    DeviceStart,
    DevicePoll,
    /// The call panicked before it could say what it was.
    Unknown,
}

impl CallKind {
    /// The call as log lines name it ("token refresh failed").
    pub fn name(self) -> &'static str {
        match self {
            CallKind::Validation => "validation",
            CallKind::Refresh => "refresh",
            CallKind::DeviceStart | CallKind::DevicePoll => "device login",
            CallKind::Unknown => "call",
        }
    }
}

/// How an OAuth call failed, reduced to what the machine tells apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// Validation answered 401.
    InvalidAccessToken,
    /// The refresh token was refused.
    InvalidRefreshToken,
    /// The device code is not approved yet.
    Pending,
    /// Polling too fast.
    SlowDown,
    /// The person declined the code (`access_denied`): the one final answer short of an
    /// approval.
    CodeOver,
    /// Twitch called the device code invalid or expired. Not final before the code's own
    /// expiry (twitchdev/issues#971).
    CodeDoubted,
    /// 5xx, 429, timeout, broken connection, a panic: try again later.
    Transient,
    /// Any other refusal.
    Refused,
}

/// Who approved a device code, as the validation of the new tokens tells.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Approver {
    /// The configured account; the tokens grant `scopes`.
    Owner { scopes: Vec<String> },
    /// Someone logged in to Twitch as another account entered the code.
    OtherAccount,
    /// The validation failed (transiently): whose they are is learnt at the next one.
    Unknown,
}

/// An OAuth reply reduced to what decides the next step: the tokens, codes and error texts
/// stay with the shell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReplySummary {
    /// The token validated; `own_account`: it is the configured user's; `own_client`: it was
    /// made for the configured client id.
    Validated {
        own_account: bool,
        own_client: bool,
        scopes: Vec<String>,
        expires_in: Duration,
    },
    /// A refresh gave new tokens living `expires_in` (when Twitch said).
    Refreshed { expires_in: Option<Duration> },
    /// A device code was issued.
    CodeIssued {
        expires_in: Duration,
        interval: Duration,
    },
    /// A device code was approved; the new tokens live `expires_in` (when Twitch said).
    Approved {
        expires_in: Option<Duration>,
        by: Approver,
    },
    /// The call failed.
    Failed(CallKind, Failure),
}

/// What the shell does with a reply's tokens or code before it feeds the answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Carry {
    /// Nothing beyond feeding the answer.
    Nothing,
    /// The token validated as the user's: learn the user id and the token's scopes.
    AdoptValidation,
    /// Save and publish the refreshed tokens.
    InstallRefresh,
    /// Keep the device code and show its user code.
    ShowCode,
    /// The device code is over: forget it.
    ForgetCode,
    /// The code was entered from another account: say so and forget the code; the tokens
    /// are not the user's and are dropped.
    RejectOtherAccount,
    /// The login worked: save and publish the tokens, learn their user id and scopes when
    /// validated, stop showing the code.
    InstallLogin,
}

/// What a reply means: the answer for [`TokenMachine::on_answer`], what the shell does first,
/// and which call it was (for log lines and counters).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplyDecision {
    pub call: CallKind,
    pub carry: Carry,
    pub answer: Answer,
}

/// Decides what a reply means. A device code approved from another account ends that code
/// (the next one is shown), exactly like an expired one; a token that validates for another
/// account is left to [`TokenMachine::on_answer`], which starts a login
/// ([`LoginReason::WrongAccount`]).
pub fn decide_reply(reply: ReplySummary) -> ReplyDecision {
    let decision = |call, carry, answer| ReplyDecision {
        call,
        carry,
        answer,
    };
    match reply {
        ReplySummary::Validated {
            own_account,
            own_client,
            scopes,
            expires_in,
        } => decision(
            CallKind::Validation,
            if own_account {
                Carry::AdoptValidation
            } else {
                Carry::Nothing
            },
            Answer::Valid {
                own_account,
                own_client,
                scopes,
                expires_in,
            },
        ),
        ReplySummary::Refreshed { expires_in } => decision(
            CallKind::Refresh,
            Carry::InstallRefresh,
            Answer::Refreshed { expires_in },
        ),
        ReplySummary::CodeIssued {
            expires_in,
            interval,
        } => decision(
            CallKind::DeviceStart,
            Carry::ShowCode,
            Answer::CodeIssued {
                expires_in,
                interval,
            },
        ),
        ReplySummary::Approved {
            by: Approver::OtherAccount,
            ..
        } => decision(
            CallKind::DevicePoll,
            Carry::RejectOtherAccount,
            Answer::CodeEnded,
        ),
        ReplySummary::Approved { expires_in, by } => decision(
            CallKind::DevicePoll,
            Carry::InstallLogin,
            Answer::LoggedIn {
                expires_in,
                scopes: match by {
                    Approver::Owner { scopes } => Some(scopes),
                    _ => None,
                },
            },
        ),
        ReplySummary::Failed(call, failure) => {
            let (carry, answer) = answer_to_failure(call, failure);
            decision(call, carry, answer)
        }
    }
}

/// What a failed call means, which depends on the call: a validation that fails in any way
/// but 401 is retried, a refresh or device call refused for an unknown reason is not.
fn answer_to_failure(call: CallKind, failure: Failure) -> (Carry, Answer) {
    let answer = match (call, failure) {
        (CallKind::DevicePoll, Failure::Pending) => Answer::Pending,
        (CallKind::DevicePoll, Failure::SlowDown) => Answer::SlowDown,
        (CallKind::DevicePoll, Failure::CodeOver) => return (Carry::ForgetCode, Answer::CodeEnded),
        // Only an approval or a refusal by the person ends a shown code before its expiry.
        (CallKind::DevicePoll, _) => Answer::NotYet,
        (_, Failure::Transient) | (CallKind::Unknown, _) => Answer::Transient,
        (CallKind::Validation, Failure::InvalidAccessToken) => Answer::Invalid,
        (CallKind::Validation, _) => Answer::Transient,
        (CallKind::Refresh, Failure::InvalidRefreshToken) => Answer::RefreshRejected,
        (CallKind::Refresh, _) => Answer::RefreshRefused,
        (CallKind::DeviceStart, _) => Answer::DeviceRefused,
    };
    (Carry::Nothing, answer)
}

/// Everything known about one user's tokens and their timing. Owned by the token thread.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenMachine {
    pub phase: Phase,
    /// Nothing is attempted before this (spreads many users' first checks).
    pub not_before: WallTime,
    /// Whether the config holds a refresh token (a login always brings one).
    pub has_refresh_token: bool,
    /// When the current token last passed validation; `None` before its first.
    pub validated_at: Option<WallTime>,
    /// When the current token lapses; `None` when unknown or when it does not expire.
    pub expires_at: Option<WallTime>,
    /// The longest lifetime known for the current token, which sets how early it is
    /// refreshed. A refresh tells the full lifetime; a validation only tells what is left.
    pub lifetime: Option<Duration>,
    /// The current token came from a refresh and has not passed validation yet: if it fails
    /// validation, refreshing again will not help.
    pub refreshed_unvalidated: bool,
    /// A validation is wanted at once (a refusal was reported, the wall clock jumped).
    pub validation_wanted: bool,
    /// A refresh is wanted at once (validation said the token is dead).
    pub refresh_wanted: bool,
    /// Someone reported the current token refused and no validation has answered since.
    pub refusal_pending: bool,
    /// When the validations prompted by refusals answered, the last
    /// [`REFUSAL_CHECKS_PER_WINDOW`] at most, oldest first.
    pub refusal_checks: Vec<WallTime>,
    /// The scopes were found missing and said so; not repeated until they are fine again.
    pub scopes_reported: bool,
    /// A call is in flight; its answer comes before anything else is done.
    pub busy: bool,
    /// Transient failures of the auth endpoints since the last success.
    pub n_transient_failures: u32,
    /// Nothing is attempted before this, after a transient failure.
    pub retry_at: Option<WallTime>,
    /// Device codes asked for so far, and when the last was issued.
    pub n_codes: u32,
    pub last_code_at: Option<WallTime>,
    /// The device code on show, while logging in.
    pub code: Option<ShownCode>,
}

impl TokenMachine {
    /// The machine of a user started at `now`, whose first call waits until `not_before`.
    /// `has_access_token`/`has_refresh_token`: what the config holds.
    pub fn new(not_before: WallTime, has_access_token: bool, has_refresh_token: bool) -> Self {
        let phase = if has_access_token || has_refresh_token {
            Phase::Tokens
        } else {
            Phase::LoggingIn {
                why: LoginReason::NoTokens,
            }
        };
        TokenMachine {
            phase,
            not_before,
            has_refresh_token,
            validated_at: None,
            expires_at: None,
            lifetime: None,
            refreshed_unvalidated: false,
            validation_wanted: false,
            // Without an access token, the refresh token gets one first.
            refresh_wanted: !has_access_token && has_refresh_token,
            refusal_pending: false,
            refusal_checks: Vec::new(),
            scopes_reported: false,
            busy: false,
            n_transient_failures: 0,
            retry_at: None,
            n_codes: 0,
            last_code_at: None,
            code: None,
        }
    }

    /// Decides the next step. Order of precedence: a call in flight or a stopped user does
    /// nothing; the start delay and a pending backoff are always honoured, so a failing
    /// endpoint is not hammered; then the login, a wanted refresh, a wanted or first
    /// validation, a refresh ahead of expiry, the hourly validation.
    pub fn next_step(&self, now: WallTime) -> TokenStep {
        if self.busy || self.phase == Phase::Stopped {
            return TokenStep::Idle;
        }
        let hold = self
            .retry_at
            .map_or(self.not_before, |at| at.max(self.not_before));
        if now < hold {
            return TokenStep::WaitUntil(hold);
        }
        if let Phase::LoggingIn { .. } = self.phase {
            return match self.code {
                Some(code) if now >= code.expires_at => self.code_step(now),
                Some(code) if now >= code.next_poll => TokenStep::PollDevice,
                Some(code) => TokenStep::WaitUntil(code.next_poll.min(code.expires_at)),
                None => self.code_step(now),
            };
        }
        if self.refresh_wanted {
            return TokenStep::Refresh;
        }
        let Some(validated_at) = self.validated_at else {
            return TokenStep::Validate;
        };
        // A refusal asks for a validation at once, unless refusals have asked for too many
        // lately: then it waits its turn, and the schedule below goes on meanwhile.
        let held_until = self.refusal_check_at().filter(|at| now < *at);
        if self.validation_wanted && held_until.is_none() {
            return TokenStep::Validate;
        }
        let refresh_due = self.refresh_due();
        if refresh_due.is_some_and(|due| now >= due) {
            return TokenStep::Refresh;
        }
        let validation_due = validated_at + VALIDATION_INTERVAL;
        if now >= validation_due {
            return TokenStep::Validate;
        }
        let next = refresh_due.map_or(validation_due, |due| due.min(validation_due));
        TokenStep::WaitUntil(held_until.map_or(next, |held| held.min(next)))
    }

    /// When a validation asked for by a refusal may go ahead: `None` when no refusal waits
    /// for one, else at once (a past moment) or once the oldest of the last
    /// [`REFUSAL_CHECKS_PER_WINDOW`] leaves the window.
    fn refusal_check_at(&self) -> Option<WallTime> {
        if !(self.validation_wanted && self.refusal_pending) {
            return None;
        }
        if self.refusal_checks.len() < REFUSAL_CHECKS_PER_WINDOW {
            return Some(Duration::ZERO);
        }
        self.refusal_checks
            .first()
            .map(|oldest| *oldest + REFUSAL_CHECK_WINDOW)
    }

    /// Counts a validation that answered a refusal, for [`Self::refusal_check_at`].
    fn note_refusal_check(&mut self, now: WallTime) {
        if !self.refusal_pending {
            return;
        }
        self.refusal_checks.push(now);
        let excess = self
            .refusal_checks
            .len()
            .saturating_sub(REFUSAL_CHECKS_PER_WINDOW);
        self.refusal_checks.drain(..excess);
    }

    /// A new code now, or a wait for the moment the rate limit allows one.
    fn code_step(&self, now: WallTime) -> TokenStep {
        let allowed = self.next_code_at(now);
        if now >= allowed {
            TokenStep::StartDeviceLogin
        } else {
            TokenStep::WaitUntil(allowed)
        }
    }

    /// When the next device code may be asked for: at once for the first
    /// [`FREE_DEVICE_CODES`], then [`DEVICE_CODE_INTERVAL`] after the previous one.
    pub fn next_code_at(&self, now: WallTime) -> WallTime {
        match self.last_code_at {
            Some(last) if self.n_codes >= FREE_DEVICE_CODES => {
                (last + DEVICE_CODE_INTERVAL).max(now)
            }
            _ => now,
        }
    }

    /// The shell carries out `step` now; its answer comes to [`Self::on_answer`].
    pub fn started(&mut self) {
        self.busy = true;
    }

    /// Someone reported the current token refused. The token is validated (at once unless
    /// a backoff holds, or refusals asked for [`REFUSAL_CHECKS_PER_WINDOW`] validations
    /// within the last [`REFUSAL_CHECK_WINDOW`]): a refresh follows only if validation finds
    /// it dead, so a token that works for OAuth is never refreshed over and over. A refusal
    /// that comes after a validation said "good" is checked again the same way, so a token
    /// Twitch invalidates later is refreshed within seconds. False when nothing will be done
    /// (a login is under way or the user stopped).
    pub fn on_refused(&mut self) -> bool {
        if self.phase != Phase::Tokens {
            return matches!(self.phase, Phase::LoggingIn { .. });
        }
        self.refusal_pending = true;
        self.validation_wanted = true;
        true
    }

    /// The wall clock jumped (a suspend or a clock set by hand): what is known of the
    /// token's remaining life is unreliable, so validate as soon as `not_before` (which
    /// spreads many users' validations a little).
    pub fn on_clock_jump(&mut self, not_before: WallTime) {
        if self.phase == Phase::Tokens {
            self.validation_wanted = true;
            self.not_before = self.not_before.max(not_before);
        }
    }

    /// Records the answer to the call in flight and says what it means.
    pub fn on_answer(&mut self, now: WallTime, answer: Answer, random_unit: f64) -> Verdict {
        self.busy = false;
        if matches!(answer, Answer::Valid { .. } | Answer::Invalid) {
            self.note_refusal_check(now);
        }
        match answer {
            Answer::Valid {
                own_account: false, ..
            } => self.log_in(LoginReason::WrongAccount),
            Answer::Valid {
                own_client,
                scopes,
                expires_in,
                ..
            } => self.on_valid(now, own_client, &scopes, expires_in),
            Answer::Invalid if self.refreshed_unvalidated => {
                self.log_in(LoginReason::StillInvalidAfterRefresh)
            }
            Answer::Invalid if !self.has_refresh_token => self.log_in(LoginReason::NoRefreshToken),
            Answer::Invalid => {
                self.validation_wanted = false;
                self.refresh_wanted = true;
                self.clear_failures();
                Verdict::Refreshing
            }
            Answer::Refreshed { expires_in } => {
                self.after_refresh(now, expires_in);
                Verdict::Quiet
            }
            Answer::RefreshRejected => self.log_in(LoginReason::RefreshTokenRejected),
            Answer::RefreshRefused => self.log_in(LoginReason::RefreshRefused),
            Answer::CodeIssued {
                expires_in,
                interval,
            } => self.on_code_issued(now, expires_in, interval),
            Answer::Pending | Answer::SlowDown | Answer::NotYet => self.on_poll(now, &answer),
            Answer::CodeEnded => {
                self.code = None;
                Verdict::CodeEnded {
                    next_code_at: self.next_code_at(now),
                }
            }
            Answer::LoggedIn { expires_in, scopes } => self.on_logged_in(now, expires_in, scopes),
            Answer::DeviceRefused => {
                let why = match self.phase {
                    Phase::LoggingIn { why } => why,
                    _ => LoginReason::NoTokens,
                };
                self.phase = Phase::Stopped;
                Verdict::GiveUp { why }
            }
            Answer::Transient => self.on_transient(now, random_unit),
        }
    }

    /// The token validates for the user's own account: settle a refusal, say what it lacks.
    fn on_valid(
        &mut self,
        now: WallTime,
        own_client: bool,
        scopes: &[String],
        expires_in: Duration,
    ) -> Verdict {
        let first = self.validated_at.is_none();
        self.after_validation(now, expires_in);
        let missing = missing_scopes(scopes);
        let report = !missing.is_empty() && !self.scopes_reported;
        self.scopes_reported = !missing.is_empty();
        let settle = std::mem::take(&mut self.refusal_pending);
        Verdict::Valid {
            settle,
            usable: missing.is_empty() && own_client,
            missing_scopes: if report { missing } else { Vec::new() },
            // Said at the token's first validation and after every refusal.
            other_client: !own_client && (first || settle),
        }
    }

    /// A device code is on show from `now`: poll it at its interval until it expires.
    fn on_code_issued(
        &mut self,
        now: WallTime,
        expires_in: Duration,
        interval: Duration,
    ) -> Verdict {
        self.clear_failures();
        self.n_codes = self.n_codes.saturating_add(1);
        self.last_code_at = Some(now);
        self.code = Some(ShownCode {
            expires_at: now + expires_in,
            next_poll: now + interval,
            interval,
            n_failed_polls: 0,
        });
        Verdict::Quiet
    }

    /// A poll of the code on show found it not approved yet (`Pending`, `SlowDown`) or
    /// failed otherwise (`NotYet`: the next poll backs off, the code stays).
    fn on_poll(&mut self, now: WallTime, answer: &Answer) -> Verdict {
        if let Some(code) = &mut self.code {
            if *answer == Answer::NotYet {
                code.n_failed_polls = code.n_failed_polls.saturating_add(1);
                code.next_poll = now + poll_backoff(code.interval, code.n_failed_polls);
            } else {
                if *answer == Answer::SlowDown {
                    code.interval += SLOW_DOWN_STEP;
                }
                code.n_failed_polls = 0;
                code.next_poll = now + code.interval;
            }
        }
        Verdict::Quiet
    }

    /// The code was approved: new tokens, validated with it when `scopes` came along.
    fn on_logged_in(
        &mut self,
        now: WallTime,
        expires_in: Option<Duration>,
        scopes: Option<Vec<String>>,
    ) -> Verdict {
        self.phase = Phase::Tokens;
        self.code = None;
        self.has_refresh_token = true;
        self.after_refresh(now, expires_in);
        let Some(scopes) = scopes else {
            return Verdict::Quiet;
        };
        // The login validated the tokens to learn whose they are.
        self.refreshed_unvalidated = false;
        self.validated_at = Some(now);
        let missing = missing_scopes(&scopes);
        self.scopes_reported = !missing.is_empty();
        Verdict::Valid {
            settle: false,
            usable: missing.is_empty(),
            missing_scopes: missing,
            other_client: false,
        }
    }

    /// A call failed in a way that may pass: retry with backoff (a poll at the code's pace).
    fn on_transient(&mut self, now: WallTime, random_unit: f64) -> Verdict {
        if let (Phase::LoggingIn { .. }, Some(code)) = (self.phase, &mut self.code) {
            // A failed poll is retried at the code's own pace.
            code.next_poll = now + code.interval;
            return Verdict::RetryAt(code.next_poll);
        }
        self.n_transient_failures = self.n_transient_failures.saturating_add(1);
        let retry_at = now + auth_retry_delay(self.n_transient_failures, random_unit);
        self.retry_at = Some(retry_at);
        Verdict::RetryAt(retry_at)
    }

    /// No usable token: a device-code login takes over (or goes on).
    fn log_in(&mut self, why: LoginReason) -> Verdict {
        self.phase = Phase::LoggingIn { why };
        self.code = None;
        self.refresh_wanted = false;
        self.validation_wanted = false;
        self.refusal_pending = false;
        self.clear_failures();
        Verdict::LogIn(why)
    }

    /// Records a successful validation that said `expires_in` remains. Twitch answers 0 for
    /// tokens that do not expire, so zero means "no known expiry".
    pub fn after_validation(&mut self, now: WallTime, expires_in: Duration) {
        self.validated_at = Some(now);
        self.validation_wanted = false;
        self.refreshed_unvalidated = false;
        if expires_in.is_zero() {
            self.expires_at = None;
            self.lifetime = None;
        } else {
            self.expires_at = Some(now + expires_in);
            self.lifetime = Some(
                self.lifetime
                    .map_or(expires_in, |known| known.max(expires_in)),
            );
        }
        self.clear_failures();
    }

    /// Records a successful refresh that gave a token living `expires_in` (when Twitch said).
    /// The new token has not been validated yet, so a validation is due at once: that also
    /// catches a refreshed token that still does not work.
    pub fn after_refresh(&mut self, now: WallTime, expires_in: Option<Duration>) {
        self.validated_at = None;
        self.refreshed_unvalidated = true;
        self.refresh_wanted = false;
        self.validation_wanted = false;
        // A refusal was of the old token; the new one starts a new episode.
        self.refusal_pending = false;
        let expires_in = expires_in.filter(|lifetime| !lifetime.is_zero());
        self.expires_at = expires_in.map(|lifetime| now + lifetime);
        self.lifetime = expires_in;
        self.clear_failures();
    }

    fn clear_failures(&mut self) {
        self.n_transient_failures = 0;
        self.retry_at = None;
    }

    /// When the token should be refreshed ahead of its expiry, if its expiry is known.
    pub fn refresh_due(&self) -> Option<WallTime> {
        let expires_at = self.expires_at?;
        // Without a known lifetime the token counts as long-lived: the full margin applies.
        let lifetime = self.lifetime.unwrap_or(Duration::MAX);
        Some(refresh_due_at(expires_at, lifetime))
    }
}

/// The required scopes missing from `granted`.
pub fn missing_scopes(granted: &[String]) -> Vec<&'static str> {
    REQUIRED_SCOPES
        .into_iter()
        .filter(|scope| !granted.iter().any(|granted| granted == scope))
        .collect()
}

/// True when the wall clock moved by more than [`CLOCK_JUMP_TOLERANCE`] against the
/// monotonic clock between two readings: `wall_elapsed` is `None` when it went backwards.
pub fn clock_jumped(monotonic_elapsed: Duration, wall_elapsed: Option<Duration>) -> bool {
    match wall_elapsed {
        None => true,
        Some(wall) => wall.abs_diff(monotonic_elapsed) > CLOCK_JUMP_TOLERANCE,
    }
}

/// When a token that lapses at `expires_at` and lives `lifetime` in all should be
/// refreshed: [`REFRESH_MARGIN`] before, or a tenth of the lifetime before for tokens
/// shorter than ten margins.
pub fn refresh_due_at(expires_at: WallTime, lifetime: Duration) -> WallTime {
    let margin = REFRESH_MARGIN.min(lifetime / 10);
    expires_at.checked_sub(margin).unwrap_or(expires_at)
}

/// The wait before the next poll of a shown code after `n_failed` polls in a row failed
/// (1 for the first): the code's `interval` doubled per failure, at most
/// [`POLL_BACKOFF_CAP`] (and never below the interval).
pub fn poll_backoff(interval: Duration, n_failed: u32) -> Duration {
    exponential_ceiling(interval, POLL_BACKOFF_CAP.max(interval), n_failed)
}

/// The wait after `n_failures` consecutive transient failures (1 for the first): the
/// ceiling `min(cap, base * 2^(n_failures - 1))`, jittered into its upper half so that
/// users failing together spread out but no retry comes at once. `random_unit` is in
/// `0.0..1.0`.
pub fn auth_retry_delay(n_failures: u32, random_unit: f64) -> Duration {
    let ceiling = exponential_ceiling(AUTH_RETRY_BASE, AUTH_RETRY_CAP, n_failures);
    upper_half_jitter(ceiling, random_unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);
    const HOUR: Duration = Duration::from_secs(3600);
    /// Some wall-clock moment.
    const T0: WallTime = Duration::from_secs(1_800_000_000);

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    fn at(offset: Duration) -> WallTime {
        T0 + offset
    }

    fn scopes(names: &[&str]) -> Vec<String> {
        names.iter().map(|name| name.to_string()).collect()
    }

    fn valid(expires_in: Duration) -> Answer {
        Answer::Valid {
            own_account: true,
            own_client: true,
            scopes: scopes(&REQUIRED_SCOPES),
            expires_in,
        }
    }

    /// A token validated at `T0` with four hours left, as Twitch issues them.
    fn fresh() -> TokenMachine {
        let mut machine = TokenMachine::new(T0, true, true);
        machine.after_validation(T0, 4 * HOUR);
        machine
    }

    fn logging_in() -> TokenMachine {
        TokenMachine::new(T0, false, false)
    }

    #[test]
    fn next_step_table() {
        let backing_off = TokenMachine {
            n_transient_failures: 2,
            retry_at: Some(at(secs(10))),
            ..fresh()
        };
        let unknown_expiry = TokenMachine {
            expires_at: None,
            lifetime: None,
            ..fresh()
        };
        let short_lived = TokenMachine {
            expires_at: Some(at(secs(100))),
            lifetime: Some(secs(100)),
            ..fresh()
        };
        let late = TokenMachine {
            validated_at: Some(at(3 * HOUR + 30 * MINUTE)),
            ..fresh()
        };
        let code = ShownCode {
            expires_at: at(30 * MINUTE),
            next_poll: at(secs(5)),
            interval: secs(5),
            n_failed_polls: 0,
        };
        let cases: Vec<(&str, TokenMachine, Duration, TokenStep)> = vec![
            (
                "staggered start waits",
                TokenMachine::new(at(secs(2)), true, true),
                Duration::ZERO,
                TokenStep::WaitUntil(at(secs(2))),
            ),
            (
                "nothing known: validate at start",
                TokenMachine::new(T0, true, true),
                Duration::ZERO,
                TokenStep::Validate,
            ),
            (
                "only a refresh token: refresh first",
                TokenMachine::new(T0, false, true),
                Duration::ZERO,
                TokenStep::Refresh,
            ),
            (
                "no tokens: log in",
                logging_in(),
                Duration::ZERO,
                TokenStep::StartDeviceLogin,
            ),
            (
                "no tokens, staggered: the login waits too",
                TokenMachine::new(at(secs(1)), false, false),
                Duration::ZERO,
                TokenStep::WaitUntil(at(secs(1))),
            ),
            (
                "a call in flight: idle",
                TokenMachine {
                    busy: true,
                    ..fresh()
                },
                HOUR,
                TokenStep::Idle,
            ),
            (
                "stopped: idle for good",
                TokenMachine {
                    phase: Phase::Stopped,
                    ..fresh()
                },
                10 * HOUR,
                TokenStep::Idle,
            ),
            (
                "fresh token waits for the hourly validation",
                fresh(),
                MINUTE,
                TokenStep::WaitUntil(at(HOUR)),
            ),
            ("hourly validation due", fresh(), HOUR, TokenStep::Validate),
            (
                "hourly validation overdue",
                fresh(),
                HOUR + MINUTE,
                TokenStep::Validate,
            ),
            (
                "validation wanted on a fresh token",
                TokenMachine {
                    validation_wanted: true,
                    ..fresh()
                },
                MINUTE,
                TokenStep::Validate,
            ),
            (
                "refresh wanted on a fresh token",
                TokenMachine {
                    refresh_wanted: true,
                    ..fresh()
                },
                MINUTE,
                TokenStep::Refresh,
            ),
            (
                "near expiry: refresh is due before the validation",
                late.clone(),
                3 * HOUR + 50 * MINUTE,
                TokenStep::Refresh,
            ),
            (
                "waits for the refresh when it comes before the validation",
                late,
                3 * HOUR + 31 * MINUTE,
                TokenStep::WaitUntil(at(3 * HOUR + 50 * MINUTE)),
            ),
            (
                "expired token is refreshed",
                fresh(),
                5 * HOUR,
                TokenStep::Refresh,
            ),
            (
                "unknown expiry: only hourly validation",
                unknown_expiry.clone(),
                10 * HOUR,
                TokenStep::Validate,
            ),
            (
                "unknown expiry waits for the validation",
                unknown_expiry,
                MINUTE,
                TokenStep::WaitUntil(at(HOUR)),
            ),
            (
                "short-lived token waits until a tenth of its life remains",
                short_lived.clone(),
                secs(1),
                TokenStep::WaitUntil(at(secs(90))),
            ),
            (
                "short-lived token refreshed with a tenth of its life left",
                short_lived,
                secs(90),
                TokenStep::Refresh,
            ),
            (
                "backing off: wait even though a refresh is wanted",
                TokenMachine {
                    refresh_wanted: true,
                    ..backing_off.clone()
                },
                secs(3),
                TokenStep::WaitUntil(at(secs(10))),
            ),
            (
                "backing off: wait even though validation is overdue",
                TokenMachine {
                    validated_at: None,
                    ..backing_off.clone()
                },
                secs(3),
                TokenStep::WaitUntil(at(secs(10))),
            ),
            (
                "backoff over: the wanted refresh goes ahead",
                TokenMachine {
                    refresh_wanted: true,
                    ..backing_off.clone()
                },
                secs(10),
                TokenStep::Refresh,
            ),
            (
                "backoff over, nothing wanted: back to the schedule",
                backing_off,
                secs(11),
                TokenStep::WaitUntil(at(HOUR)),
            ),
            (
                "refreshed but not yet validated",
                TokenMachine {
                    validated_at: None,
                    ..fresh()
                },
                MINUTE,
                TokenStep::Validate,
            ),
            (
                "code on show: wait for the next poll",
                TokenMachine {
                    code: Some(code),
                    ..logging_in()
                },
                secs(1),
                TokenStep::WaitUntil(at(secs(5))),
            ),
            (
                "code on show: poll when due",
                TokenMachine {
                    code: Some(code),
                    ..logging_in()
                },
                secs(5),
                TokenStep::PollDevice,
            ),
            (
                "code expired: a new one (within the free ones)",
                TokenMachine {
                    code: Some(code),
                    n_codes: 2,
                    last_code_at: Some(T0),
                    ..logging_in()
                },
                30 * MINUTE,
                TokenStep::StartDeviceLogin,
            ),
            (
                "after three codes: the fourth waits 30 minutes after the third",
                TokenMachine {
                    n_codes: 3,
                    last_code_at: Some(at(10 * MINUTE)),
                    ..logging_in()
                },
                15 * MINUTE,
                TokenStep::WaitUntil(at(40 * MINUTE)),
            ),
            (
                "after three codes: the fourth comes when its time is up",
                TokenMachine {
                    n_codes: 3,
                    last_code_at: Some(at(10 * MINUTE)),
                    ..logging_in()
                },
                40 * MINUTE,
                TokenStep::StartDeviceLogin,
            ),
        ];
        for (name, machine, elapsed, expected) in cases {
            assert_eq!(machine.next_step(at(elapsed)), expected, "{name}");
        }
    }

    /// One answer of a story: when it comes, what it is, the verdict, the step after.
    type Beat = (Duration, Answer, Verdict, TokenStep);

    /// Feeds a user's machine a story of answers and checks each verdict and the step after.
    fn run_story(mut machine: TokenMachine, story: &[Beat], name: &str) -> TokenMachine {
        for (index, (offset, answer, verdict, step)) in story.iter().enumerate() {
            machine.started();
            let now = at(*offset);
            assert_eq!(
                machine.on_answer(now, answer.clone(), 1.0),
                *verdict,
                "{name}: answer {index}"
            );
            assert_eq!(machine.next_step(now), *step, "{name}: step {index}");
        }
        machine
    }

    #[test]
    fn answer_stories() {
        let quiet_valid = Verdict::Valid {
            settle: false,
            missing_scopes: Vec::new(),
            usable: true,
            other_client: false,
        };
        let stories: Vec<(&str, TokenMachine, Vec<Beat>)> = vec![
            (
                "expired at start: one refresh, then validation of the new token",
                TokenMachine::new(T0, true, true),
                vec![
                    (
                        Duration::ZERO,
                        Answer::Invalid,
                        Verdict::Refreshing,
                        TokenStep::Refresh,
                    ),
                    (
                        Duration::ZERO,
                        Answer::Refreshed {
                            expires_in: Some(4 * HOUR),
                        },
                        Verdict::Quiet,
                        TokenStep::Validate,
                    ),
                    (
                        Duration::ZERO,
                        valid(4 * HOUR),
                        quiet_valid.clone(),
                        TokenStep::WaitUntil(at(HOUR)),
                    ),
                ],
            ),
            (
                "a refreshed token that still fails validation: log in, do not refresh again",
                TokenMachine::new(T0, true, true),
                vec![
                    (
                        Duration::ZERO,
                        Answer::Invalid,
                        Verdict::Refreshing,
                        TokenStep::Refresh,
                    ),
                    (
                        Duration::ZERO,
                        Answer::Refreshed { expires_in: None },
                        Verdict::Quiet,
                        TokenStep::Validate,
                    ),
                    (
                        Duration::ZERO,
                        Answer::Invalid,
                        Verdict::LogIn(LoginReason::StillInvalidAfterRefresh),
                        TokenStep::StartDeviceLogin,
                    ),
                ],
            ),
            (
                "dead token and no refresh token: log in",
                TokenMachine::new(T0, true, false),
                vec![(
                    Duration::ZERO,
                    Answer::Invalid,
                    Verdict::LogIn(LoginReason::NoRefreshToken),
                    TokenStep::StartDeviceLogin,
                )],
            ),
            (
                "rejected refresh token: log in",
                TokenMachine::new(T0, false, true),
                vec![(
                    Duration::ZERO,
                    Answer::RefreshRejected,
                    Verdict::LogIn(LoginReason::RefreshTokenRejected),
                    TokenStep::StartDeviceLogin,
                )],
            ),
            (
                "another account's token: log in",
                TokenMachine::new(T0, true, true),
                vec![(
                    Duration::ZERO,
                    Answer::Valid {
                        own_account: false,
                        own_client: true,
                        scopes: scopes(&REQUIRED_SCOPES),
                        expires_in: HOUR,
                    },
                    Verdict::LogIn(LoginReason::WrongAccount),
                    TokenStep::StartDeviceLogin,
                )],
            ),
            (
                "a missing scope is told once, and never leads to a refresh",
                TokenMachine::new(T0, true, true),
                vec![
                    (
                        Duration::ZERO,
                        Answer::Valid {
                            own_account: true,
                            own_client: true,
                            scopes: scopes(&["chat:read"]),
                            expires_in: 4 * HOUR,
                        },
                        Verdict::Valid {
                            settle: false,
                            missing_scopes: vec!["user:manage:chat_color"],
                            usable: false,
                            other_client: false,
                        },
                        TokenStep::WaitUntil(at(HOUR)),
                    ),
                    (
                        HOUR,
                        Answer::Valid {
                            own_account: true,
                            own_client: true,
                            scopes: scopes(&["chat:read"]),
                            expires_in: 3 * HOUR,
                        },
                        Verdict::Valid {
                            settle: false,
                            missing_scopes: Vec::new(),
                            usable: false,
                            other_client: false,
                        },
                        TokenStep::WaitUntil(at(2 * HOUR)),
                    ),
                ],
            ),
            (
                "login: codes, pending, slow down, approval",
                logging_in(),
                vec![
                    (
                        Duration::ZERO,
                        Answer::CodeIssued {
                            expires_in: 30 * MINUTE,
                            interval: secs(5),
                        },
                        Verdict::Quiet,
                        TokenStep::WaitUntil(at(secs(5))),
                    ),
                    (
                        secs(5),
                        Answer::Pending,
                        Verdict::Quiet,
                        TokenStep::WaitUntil(at(secs(10))),
                    ),
                    (
                        secs(10),
                        Answer::SlowDown,
                        Verdict::Quiet,
                        TokenStep::WaitUntil(at(secs(20))),
                    ),
                    (
                        secs(20),
                        Answer::Transient,
                        Verdict::RetryAt(at(secs(30))),
                        TokenStep::WaitUntil(at(secs(30))),
                    ),
                    (
                        secs(30),
                        Answer::LoggedIn {
                            expires_in: Some(4 * HOUR),
                            scopes: Some(scopes(&REQUIRED_SCOPES)),
                        },
                        quiet_valid.clone(),
                        TokenStep::WaitUntil(at(secs(30)) + HOUR),
                    ),
                ],
            ),
            (
                "codes nobody answers: three at once, then one per 30 minutes",
                logging_in(),
                vec![
                    (
                        Duration::ZERO,
                        Answer::CodeIssued {
                            expires_in: MINUTE,
                            interval: secs(5),
                        },
                        Verdict::Quiet,
                        TokenStep::WaitUntil(at(secs(5))),
                    ),
                    (
                        secs(5),
                        Answer::CodeEnded,
                        Verdict::CodeEnded {
                            next_code_at: at(secs(5)),
                        },
                        TokenStep::StartDeviceLogin,
                    ),
                    (
                        secs(5),
                        Answer::CodeIssued {
                            expires_in: MINUTE,
                            interval: secs(5),
                        },
                        Verdict::Quiet,
                        TokenStep::WaitUntil(at(secs(10))),
                    ),
                    (
                        secs(10),
                        Answer::CodeEnded,
                        Verdict::CodeEnded {
                            next_code_at: at(secs(10)),
                        },
                        TokenStep::StartDeviceLogin,
                    ),
                    (
                        secs(10),
                        Answer::CodeIssued {
                            expires_in: MINUTE,
                            interval: secs(5),
                        },
                        Verdict::Quiet,
                        TokenStep::WaitUntil(at(secs(15))),
                    ),
                    (
                        secs(15),
                        Answer::CodeEnded,
                        Verdict::CodeEnded {
                            next_code_at: at(secs(10)) + DEVICE_CODE_INTERVAL,
                        },
                        TokenStep::WaitUntil(at(secs(10)) + DEVICE_CODE_INTERVAL),
                    ),
                ],
            ),
            (
                "an unknown client id at the device endpoint: give up",
                logging_in(),
                vec![(
                    Duration::ZERO,
                    Answer::DeviceRefused,
                    Verdict::GiveUp {
                        why: LoginReason::NoTokens,
                    },
                    TokenStep::Idle,
                )],
            ),
            (
                "a refused device login after a rejected refresh token says so",
                TokenMachine {
                    phase: Phase::LoggingIn {
                        why: LoginReason::RefreshTokenRejected,
                    },
                    ..logging_in()
                },
                vec![(
                    Duration::ZERO,
                    Answer::DeviceRefused,
                    Verdict::GiveUp {
                        why: LoginReason::RefreshTokenRejected,
                    },
                    TokenStep::Idle,
                )],
            ),
            (
                "transient failures back off, a success clears them",
                TokenMachine::new(T0, true, true),
                vec![
                    (
                        Duration::ZERO,
                        Answer::Transient,
                        Verdict::RetryAt(at(secs(5))),
                        TokenStep::WaitUntil(at(secs(5))),
                    ),
                    (
                        secs(5),
                        Answer::Transient,
                        Verdict::RetryAt(at(secs(15))),
                        TokenStep::WaitUntil(at(secs(15))),
                    ),
                    (
                        secs(15),
                        valid(HOUR * 4),
                        quiet_valid.clone(),
                        TokenStep::WaitUntil(at(secs(15)) + HOUR),
                    ),
                ],
            ),
        ];
        for (name, machine, story) in stories {
            run_story(machine, &story, name);
        }
    }

    #[test]
    fn a_refusal_episode_costs_at_most_one_refresh() {
        let mut machine = fresh();
        let mut n_refreshes = 0;
        // Chat refuses every token, however fresh, for a minute; each refusal is reported.
        for second in 0..60u64 {
            let now = at(secs(second));
            machine.on_refused();
            loop {
                let step = machine.next_step(now);
                let answer = match step {
                    TokenStep::Validate if n_refreshes == 0 => Answer::Invalid,
                    TokenStep::Validate => valid(4 * HOUR),
                    TokenStep::Refresh => {
                        n_refreshes += 1;
                        Answer::Refreshed {
                            expires_in: Some(4 * HOUR),
                        }
                    }
                    TokenStep::WaitUntil(_) | TokenStep::Idle => break,
                    other => panic!("unexpected {other:?}"),
                };
                machine.started();
                machine.on_answer(now, answer, 0.5);
            }
        }
        assert_eq!(n_refreshes, 1);
    }

    #[test]
    fn a_refused_token_that_validates_is_settled_not_refreshed() {
        let mut machine = fresh();
        assert!(machine.on_refused());
        assert_eq!(machine.next_step(at(MINUTE)), TokenStep::Validate);
        machine.started();
        assert_eq!(
            machine.on_answer(at(MINUTE), valid(3 * HOUR), 0.5),
            Verdict::Valid {
                settle: true,
                missing_scopes: Vec::new(),
                usable: true,
                other_client: false,
            }
        );
        assert_eq!(
            machine.next_step(at(MINUTE)),
            TokenStep::WaitUntil(at(MINUTE + HOUR))
        );
        // While logging in, a refusal is expected and changes nothing.
        let mut machine = logging_in();
        assert!(machine.on_refused());
        assert_eq!(machine.next_step(T0), TokenStep::StartDeviceLogin);
        let mut stopped = TokenMachine {
            phase: Phase::Stopped,
            ..fresh()
        };
        assert!(!stopped.on_refused());
    }

    /// Issue 20, point 1: a 401 after a validation said "good" is new evidence. Refusals are
    /// validated again, three per minute at most, and a token found dead is refreshed.
    #[test]
    fn refusals_after_a_good_validation_are_validated_again_a_few_times_a_minute() {
        let mut machine = fresh();
        let settled = Verdict::Valid {
            settle: true,
            missing_scopes: Vec::new(),
            usable: true,
            other_client: false,
        };
        // (refused at, answer to the validation, verdict; None: no validation yet)
        let beats: [(Duration, Option<(Answer, Verdict)>); 5] = [
            (secs(1), Some((valid(4 * HOUR), settled.clone()))),
            (secs(2), Some((valid(4 * HOUR), settled.clone()))),
            (secs(3), Some((valid(4 * HOUR), settled.clone()))),
            (secs(4), None),
            (secs(61), Some((Answer::Invalid, Verdict::Refreshing))),
        ];
        for (offset, answer) in beats {
            let now = at(offset);
            assert!(machine.on_refused());
            match answer {
                Some((answer, verdict)) => {
                    assert_eq!(machine.next_step(now), TokenStep::Validate, "{offset:?}");
                    machine.started();
                    assert_eq!(machine.on_answer(now, answer, 0.5), verdict, "{offset:?}");
                }
                None => assert_eq!(
                    machine.next_step(now),
                    TokenStep::WaitUntil(at(secs(61))),
                    "the fourth in a minute waits for the first to leave the window"
                ),
            }
        }
        assert_eq!(machine.next_step(at(secs(61))), TokenStep::Refresh);
        // A held check does not hold up a refresh that falls due meanwhile.
        let held = TokenMachine {
            refusal_pending: true,
            validation_wanted: true,
            refusal_checks: vec![at(secs(1)), at(secs(2)), at(secs(3))],
            expires_at: Some(at(secs(30))),
            lifetime: Some(4 * HOUR),
            ..fresh()
        };
        assert_eq!(held.next_step(at(secs(4))), TokenStep::Refresh);
        let held = TokenMachine {
            expires_at: Some(at(5 * HOUR)),
            ..held
        };
        assert_eq!(
            held.next_step(at(secs(4))),
            TokenStep::WaitUntil(at(secs(61)))
        );
    }

    /// Issue 20, point 6: a token made for another app's client id is said at its first
    /// validation and after each refusal, never refreshed, and never worth a retry.
    #[test]
    fn a_token_of_another_client_is_named_at_start_and_after_each_refusal() {
        let other_client = Answer::Valid {
            own_account: true,
            own_client: false,
            scopes: scopes(&REQUIRED_SCOPES),
            expires_in: 4 * HOUR,
        };
        let verdict = |settle, other_client| Verdict::Valid {
            settle,
            missing_scopes: Vec::new(),
            usable: false,
            other_client,
        };
        let mut machine = TokenMachine::new(T0, true, true);
        // (when, refused first, expected verdict)
        let beats = [
            (Duration::ZERO, false, verdict(false, true)),
            (HOUR, false, verdict(false, false)),
            (HOUR + MINUTE, true, verdict(true, true)),
        ];
        for (offset, refused, expected) in beats {
            if refused {
                assert!(machine.on_refused());
            }
            assert_eq!(
                machine.next_step(at(offset)),
                TokenStep::Validate,
                "{offset:?}"
            );
            machine.started();
            assert_eq!(
                machine.on_answer(at(offset), other_client.clone(), 0.5),
                expected,
                "{offset:?}"
            );
            assert!(
                matches!(machine.next_step(at(offset)), TokenStep::WaitUntil(_)),
                "no refresh"
            );
        }
    }

    /// Issue 20, point 2: a shown code lives until its own expiry or the person's answer;
    /// failed polls back off from the code's interval up to the cap.
    #[test]
    fn failed_polls_keep_the_code_and_back_off_until_it_expires() {
        let mut machine = logging_in();
        machine.started();
        machine.on_answer(
            T0,
            Answer::CodeIssued {
                expires_in: 2 * MINUTE,
                interval: secs(5),
            },
            0.5,
        );
        // (now, answer, next poll expected at)
        let beats = [
            (secs(5), Answer::NotYet, secs(10)),
            (secs(10), Answer::NotYet, secs(20)),
            (secs(20), Answer::NotYet, secs(40)),
            (secs(40), Answer::NotYet, secs(70)),
            (secs(70), Answer::Pending, secs(75)),
            (secs(75), Answer::NotYet, secs(80)),
            (secs(80), Answer::NotYet, secs(90)),
        ];
        for (now, answer, next) in beats {
            assert_eq!(machine.next_step(at(now)), TokenStep::PollDevice, "{now:?}");
            machine.started();
            assert_eq!(machine.on_answer(at(now), answer, 0.5), Verdict::Quiet);
            assert_eq!(
                machine.next_step(at(now)),
                TokenStep::WaitUntil(at(next)),
                "{now:?}"
            );
        }
        // The code's own expiry ends it: a new one.
        machine.code = Some(ShownCode {
            next_poll: at(3 * MINUTE),
            ..machine.code.unwrap()
        });
        assert_eq!(
            machine.next_step(at(2 * MINUTE)),
            TokenStep::StartDeviceLogin
        );
        let cases = [
            (secs(5), 0, secs(5)),
            (secs(5), 1, secs(5)),
            (secs(5), 2, secs(10)),
            (secs(5), 4, secs(30)),
            (secs(5), 40, secs(30)),
            (secs(45), 3, secs(45)),
        ];
        for (interval, n_failed, expected) in cases {
            assert_eq!(poll_backoff(interval, n_failed), expected, "{n_failed}");
        }
    }

    #[test]
    fn a_clock_jump_asks_for_validation_at_once() {
        let mut machine = fresh();
        machine.on_clock_jump(at(MINUTE + secs(1)));
        assert_eq!(
            machine.next_step(at(MINUTE)),
            TokenStep::WaitUntil(at(MINUTE + secs(1)))
        );
        assert_eq!(machine.next_step(at(MINUTE + secs(1))), TokenStep::Validate);
        let cases = [
            // (monotonic elapsed, wall elapsed, jumped)
            (secs(300), Some(secs(300)), false),
            (secs(300), Some(secs(320)), false),
            (secs(300), Some(secs(331)), true),
            (secs(300), Some(secs(3 * 3600)), true),
            (secs(300), Some(secs(200)), true),
            (secs(300), None, true),
        ];
        for (monotonic, wall, expected) in cases {
            assert_eq!(clock_jumped(monotonic, wall), expected, "{wall:?}");
        }
    }

    #[test]
    fn refresh_due_at_keeps_ten_minutes_or_a_tenth() {
        let expires_at = at(10 * HOUR);
        let cases = [
            // (lifetime, expected margin before expiry)
            (4 * HOUR, 10 * MINUTE),
            (100 * MINUTE, 10 * MINUTE),
            (50 * MINUTE, 5 * MINUTE),
            (secs(100), secs(10)),
            (secs(5), Duration::from_millis(500)),
            (Duration::ZERO, Duration::ZERO),
        ];
        for (lifetime, margin) in cases {
            assert_eq!(
                expires_at - refresh_due_at(expires_at, lifetime),
                margin,
                "lifetime {lifetime:?}"
            );
        }
    }

    #[test]
    fn auth_retry_delay_doubles_from_five_seconds_to_five_minutes() {
        let cases = [
            // (failures, random unit, expected milliseconds)
            (1, 0.0, 2_500),
            (1, 0.5, 3_750),
            (1, 1.0, 5_000),
            (2, 1.0, 10_000),
            (3, 1.0, 20_000),
            (6, 1.0, 160_000),
            (7, 1.0, 300_000),
            (7, 0.0, 150_000),
            (40, 1.0, 300_000),
            (u32::MAX, 1.0, 300_000),
            (0, 1.0, 5_000),
            (2, -3.0, 5_000),
            (2, 9.0, 10_000),
        ];
        for (n_failures, unit, expected_ms) in cases {
            assert_eq!(
                auth_retry_delay(n_failures, unit),
                Duration::from_millis(expected_ms),
                "n_failures {n_failures}, unit {unit}"
            );
        }
    }

    #[test]
    fn validation_records_expiry_and_keeps_the_longest_lifetime() {
        // (name, lifetime before, expires_in, expected lifetime, expected expiry offset)
        let cases = [
            (
                "first validation",
                None,
                3 * HOUR,
                Some(3 * HOUR),
                Some(3 * HOUR),
            ),
            (
                "later validation keeps the refresh's lifetime",
                Some(4 * HOUR),
                HOUR,
                Some(4 * HOUR),
                Some(HOUR),
            ),
            (
                "zero means no expiry",
                Some(4 * HOUR),
                Duration::ZERO,
                None,
                None,
            ),
        ];
        for (name, lifetime, expires_in, expected_lifetime, expected_expiry) in cases {
            let mut machine = TokenMachine {
                lifetime,
                n_transient_failures: 3,
                retry_at: Some(T0),
                ..TokenMachine::new(T0, true, true)
            };
            machine.after_validation(T0, expires_in);
            assert_eq!(machine.validated_at, Some(T0), "{name}");
            assert_eq!(machine.lifetime, expected_lifetime, "{name}");
            assert_eq!(machine.expires_at, expected_expiry.map(at), "{name}");
            assert_eq!(machine.n_transient_failures, 0, "{name}");
            assert_eq!(machine.retry_at, None, "{name}");
        }
    }

    #[test]
    fn hourly_validation_late_in_life_does_not_delay_the_refresh() {
        let mut machine = TokenMachine::new(T0, true, true);
        machine.after_refresh(T0, Some(4 * HOUR));
        machine.after_validation(T0, 4 * HOUR);
        let planned = machine.refresh_due();
        machine.after_validation(at(3 * HOUR), HOUR);
        assert_eq!(machine.refresh_due(), planned);
        assert_eq!(planned, Some(at(3 * HOUR + 50 * MINUTE)));
    }

    #[test]
    fn refresh_asks_for_validation_of_the_new_token() {
        let cases = [
            (Some(4 * HOUR), Some(at(4 * HOUR))),
            (None, None),
            (Some(Duration::ZERO), None),
        ];
        for (expires_in, expected_expiry) in cases {
            let mut machine = TokenMachine {
                n_transient_failures: 2,
                retry_at: Some(at(MINUTE)),
                ..fresh()
            };
            machine.after_refresh(T0, expires_in);
            assert_eq!(machine.expires_at, expected_expiry, "{expires_in:?}");
            assert_eq!(machine.lifetime, expires_in.filter(|d| !d.is_zero()));
            assert_eq!(machine.next_step(T0), TokenStep::Validate);
        }
    }

    #[test]
    fn missing_scopes_names_each_required_one_absent() {
        let cases: [(&[&str], Vec<&str>); 4] = [
            (&["chat:read", "user:manage:chat_color"], vec![]),
            (
                &["chat:read", "user:manage:chat_color", "user:read:chat"],
                vec![],
            ),
            (&["chat:read"], vec!["user:manage:chat_color"]),
            (&[], vec!["chat:read", "user:manage:chat_color"]),
        ];
        for (granted, expected) in cases {
            assert_eq!(missing_scopes(&scopes(granted)), expected, "{granted:?}");
        }
    }

    /// One row per reply kind: what it means and what the shell does with it.
    #[test]
    fn decide_reply_table() {
        use CallKind::*;
        use Failure::*;
        let granted = scopes(&REQUIRED_SCOPES);
        let failed = |call, failure| ReplySummary::Failed(call, failure);
        let cases: Vec<(&str, ReplySummary, CallKind, Carry, Answer)> = vec![
            (
                "validated, own account",
                ReplySummary::Validated {
                    own_account: true,
                    own_client: true,
                    scopes: granted.clone(),
                    expires_in: HOUR,
                },
                Validation,
                Carry::AdoptValidation,
                valid(HOUR),
            ),
            (
                "validated, another account: the machine decides (WrongAccount)",
                ReplySummary::Validated {
                    own_account: false,
                    own_client: true,
                    scopes: granted.clone(),
                    expires_in: HOUR,
                },
                Validation,
                Carry::Nothing,
                Answer::Valid {
                    own_account: false,
                    own_client: true,
                    scopes: granted.clone(),
                    expires_in: HOUR,
                },
            ),
            (
                "validation 401",
                failed(Validation, InvalidAccessToken),
                Validation,
                Carry::Nothing,
                Answer::Invalid,
            ),
            (
                "validation transient",
                failed(Validation, Transient),
                Validation,
                Carry::Nothing,
                Answer::Transient,
            ),
            (
                "validation refused otherwise is retried",
                failed(Validation, Refused),
                Validation,
                Carry::Nothing,
                Answer::Transient,
            ),
            (
                "refreshed",
                ReplySummary::Refreshed {
                    expires_in: Some(4 * HOUR),
                },
                Refresh,
                Carry::InstallRefresh,
                Answer::Refreshed {
                    expires_in: Some(4 * HOUR),
                },
            ),
            (
                "refresh transient",
                failed(Refresh, Transient),
                Refresh,
                Carry::Nothing,
                Answer::Transient,
            ),
            (
                "refresh token rejected",
                failed(Refresh, InvalidRefreshToken),
                Refresh,
                Carry::Nothing,
                Answer::RefreshRejected,
            ),
            (
                "refresh refused otherwise",
                failed(Refresh, Refused),
                Refresh,
                Carry::Nothing,
                Answer::RefreshRefused,
            ),
            (
                "code issued",
                ReplySummary::CodeIssued {
                    expires_in: 30 * MINUTE,
                    interval: secs(5),
                },
                DeviceStart,
                Carry::ShowCode,
                Answer::CodeIssued {
                    expires_in: 30 * MINUTE,
                    interval: secs(5),
                },
            ),
            (
                "device start transient",
                failed(DeviceStart, Transient),
                DeviceStart,
                Carry::Nothing,
                Answer::Transient,
            ),
            (
                "device start refused",
                failed(DeviceStart, Refused),
                DeviceStart,
                Carry::Nothing,
                Answer::DeviceRefused,
            ),
            (
                "approved by the owner",
                ReplySummary::Approved {
                    expires_in: Some(4 * HOUR),
                    by: Approver::Owner {
                        scopes: granted.clone(),
                    },
                },
                DevicePoll,
                Carry::InstallLogin,
                Answer::LoggedIn {
                    expires_in: Some(4 * HOUR),
                    scopes: Some(granted.clone()),
                },
            ),
            (
                "approved, validation failed: tokens kept, validated later",
                ReplySummary::Approved {
                    expires_in: None,
                    by: Approver::Unknown,
                },
                DevicePoll,
                Carry::InstallLogin,
                Answer::LoggedIn {
                    expires_in: None,
                    scopes: None,
                },
            ),
            (
                "approved from another account: the code ends",
                ReplySummary::Approved {
                    expires_in: Some(4 * HOUR),
                    by: Approver::OtherAccount,
                },
                DevicePoll,
                Carry::RejectOtherAccount,
                Answer::CodeEnded,
            ),
            (
                "poll pending",
                failed(DevicePoll, Pending),
                DevicePoll,
                Carry::Nothing,
                Answer::Pending,
            ),
            (
                "poll slow down",
                failed(DevicePoll, SlowDown),
                DevicePoll,
                Carry::Nothing,
                Answer::SlowDown,
            ),
            (
                "code expired or declined",
                failed(DevicePoll, CodeOver),
                DevicePoll,
                Carry::ForgetCode,
                Answer::CodeEnded,
            ),
            (
                "poll transient: not yet",
                failed(DevicePoll, Transient),
                DevicePoll,
                Carry::Nothing,
                Answer::NotYet,
            ),
            (
                "poll refused otherwise: not yet (twitchdev/issues#971)",
                failed(DevicePoll, Refused),
                DevicePoll,
                Carry::Nothing,
                Answer::NotYet,
            ),
            (
                "invalid device code: not yet (twitchdev/issues#971)",
                failed(DevicePoll, CodeDoubted),
                DevicePoll,
                Carry::Nothing,
                Answer::NotYet,
            ),
            (
                "a panicked call",
                failed(Unknown, Transient),
                Unknown,
                Carry::Nothing,
                Answer::Transient,
            ),
        ];
        for (name, reply, call, carry, answer) in cases {
            assert_eq!(
                decide_reply(reply),
                ReplyDecision {
                    call,
                    carry,
                    answer
                },
                "{name}"
            );
        }
    }

    #[test]
    fn call_names_as_logged() {
        let cases = [
            (CallKind::Validation, "validation"),
            (CallKind::Refresh, "refresh"),
            (CallKind::DeviceStart, "device login"),
            (CallKind::DevicePoll, "device login"),
            (CallKind::Unknown, "call"),
        ];
        for (call, name) in cases {
            assert_eq!(call.name(), name);
        }
    }
}
