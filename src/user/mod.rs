//! The state of one user that several threads see: identity, the current access token, the
//! color settings and the pending-change slot. Shared by design; no I/O of its own (saving a
//! setting hands it to the config writer).

pub mod queue;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::Duration;

use crossbeam_channel::Sender;

use crate::base::counters;
use crate::base::ids::{Login, UserId};
use crate::base::metrics::ChangeResult;
use crate::base::secret::Secret;
use crate::base::sync::lock;
use crate::color::{ChangeRequest, Color, ColorMode, ColorState, Rgb};
use crate::config::writer::ConfigWriter;
use crate::config::SavedField;
use crate::status::{StatusBoard, UserState};
use crate::twitch::helix::RateLimit;

/// Per-user bookkeeping that makes bursts coalesce: at most one change in flight and one
/// pending, a newer request replacing the pending one.
#[derive(Debug, Default)]
struct ChangeSlot {
    in_flight: bool,
    pending: Option<ChangeRequest>,
    /// The color the user has now as far as we know (seen at login or set by us), and the
    /// palette position.
    colors: ColorState,
    /// Hex colors Twitch refused in a row (no Turbo/Prime).
    n_hex_rejections: u32,
}

/// The color settings a user can change while running (chat commands, config edits).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ColorSettings {
    pub mode: ColorMode,
    /// Also change the color on this timer, without messages.
    pub change_every: Option<Duration>,
}

/// A report that Twitch refused the access token of `generation`, for the token refresher,
/// from the user entry `entry`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rejection {
    pub entry: u64,
    pub generation: u64,
}

/// Where a token cell reports refusals: the token refresher, naming the user entry.
#[derive(Clone, Debug)]
pub struct RejectionRoute {
    pub sender: Sender<Rejection>,
    pub entry: u64,
}

/// What the token refresher found when it checked a refused token that still validates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Settled {
    /// It validates with every scope: the refusal may have been passing, so the refused
    /// call is worth one more try with the same token.
    Validates,
    /// It validates but cannot do the job (a scope is missing, or it was made for another
    /// app's client id): trying again or refreshing will not help.
    CannotHelp,
}

/// What a reader that reported a refusal learns from the token refresher.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RefusalAnswer {
    /// A newer token (generation) is there: retry with it.
    Newer(Secret, u64),
    /// The refused token validates.
    Settled(Settled),
    /// No answer in time, or the daemon is stopping.
    None,
}

/// The access token, read by the chat thread and the workers, replaced by the token owner.
/// A generation number lets a reader wait for a token newer than the one that failed.
pub struct TokenCell {
    state: Mutex<TokenState>,
    changed: Condvar,
    /// Where readers report a token Twitch refused; `None` when no token refresher runs.
    rejections: Option<RejectionRoute>,
}

struct TokenState {
    token: Secret,
    generation: u64,
    /// The scopes validation reported for this token; `None` until it was validated.
    scopes: Option<Vec<String>>,
    /// Set at shutdown so that waiters stop waiting.
    closed: bool,
    /// A generation that was refused yet validates (or lacks a scope), and what the check
    /// found: no new token came for the refusals reported before it. A later report opens
    /// the question again (the token may have died since).
    settled: Option<(u64, Settled)>,
}

impl TokenCell {
    /// A cell whose rejections go to `rejections` (the token refresher), if any.
    pub fn new(token: Secret, rejections: Option<RejectionRoute>) -> TokenCell {
        TokenCell {
            state: Mutex::new(TokenState {
                token,
                generation: 0,
                scopes: None,
                closed: false,
                settled: None,
            }),
            changed: Condvar::new(),
            rejections,
        }
    }

    /// Reports that Twitch refused the token of `generation`. True when the token
    /// refresher will look into it and may bring a new one (so waiting for it makes sense);
    /// false when no refresher runs or the refresher found that a new token would not help
    /// ([`Settled::CannotHelp`]; the refusal is still reported, so that a token that dies
    /// later is noticed). A refusal after [`Settled::Validates`] is new evidence: it is
    /// reported and waited for again (the refresher validates a few times a minute at most).
    pub fn report_rejected(&self, generation: u64) -> bool {
        let hopeless = {
            let mut state = lock(&self.state);
            match state.settled {
                Some((settled, Settled::CannotHelp)) if settled == generation => true,
                Some((settled, Settled::Validates)) if settled == generation => {
                    state.settled = None;
                    false
                }
                _ => false,
            }
        };
        let reported = self.rejections.as_ref().is_some_and(|route| {
            route
                .sender
                .send(Rejection {
                    entry: route.entry,
                    generation,
                })
                .is_ok()
        });
        reported && !hopeless
    }

    /// For the token refresher: the refusals of `generation` reported so far cannot be
    /// helped by a new token (it validates, or it lacks a scope). Waiters for a newer token
    /// wake with `None`; waiters for an answer learn `how`.
    pub fn settle(&self, generation: u64, how: Settled) {
        lock(&self.state).settled = Some((generation, how));
        self.changed.notify_all();
    }

    /// After reporting a refusal of `generation`: waits for a newer token or for the
    /// refresher's finding that the token validates, whichever comes first.
    pub fn wait_refusal_answer(&self, generation: u64, timeout: Duration) -> RefusalAnswer {
        let state = lock(&self.state);
        let (state, _) = self
            .changed
            .wait_timeout_while(state, timeout, |state| {
                state.generation <= generation
                    && !state.closed
                    && state
                        .settled
                        .is_none_or(|(settled, _)| settled != generation)
            })
            .unwrap_or_else(PoisonError::into_inner);
        if state.closed {
            return RefusalAnswer::None;
        }
        if state.generation > generation {
            return RefusalAnswer::Newer(state.token.clone(), state.generation);
        }
        match state.settled {
            Some((settled, how)) if settled == generation => RefusalAnswer::Settled(how),
            _ => RefusalAnswer::None,
        }
    }

    /// Wakes every waiter for good: the daemon is stopping.
    pub fn close(&self) {
        lock(&self.state).closed = true;
        self.changed.notify_all();
    }

    /// The current token and its generation.
    pub fn current(&self) -> (Secret, u64) {
        let state = lock(&self.state);
        (state.token.clone(), state.generation)
    }

    pub fn replace(&self, token: Secret) {
        let mut state = lock(&self.state);
        state.token = token;
        state.generation += 1;
        state.scopes = None;
        self.changed.notify_all();
    }

    /// Records the scopes validation reported for the token of `generation` (ignored when a
    /// newer token has replaced it meanwhile).
    pub fn set_scopes(&self, generation: u64, scopes: Vec<String>) {
        let mut state = lock(&self.state);
        if state.generation == generation {
            state.scopes = Some(scopes);
            self.changed.notify_all();
        }
    }

    /// Waits until the current token's scopes are known; `None` on timeout or shutdown.
    pub fn wait_scopes(&self, timeout: Duration) -> Option<Vec<String>> {
        let state = lock(&self.state);
        let (state, _) = self
            .changed
            .wait_timeout_while(state, timeout, |state| {
                state.scopes.is_none() && !state.closed
            })
            .unwrap_or_else(PoisonError::into_inner);
        if state.closed {
            return None;
        }
        state.scopes.clone()
    }

    /// Waits until the token is newer than `generation`; `None` on timeout, on shutdown, or
    /// when the refresher settled `generation` (no newer token is coming for it).
    pub fn wait_newer(&self, generation: u64, timeout: Duration) -> Option<(Secret, u64)> {
        match self.wait_refusal_answer(generation, timeout) {
            RefusalAnswer::Newer(token, newer) => Some((token, newer)),
            RefusalAnswer::Settled(_) | RefusalAnswer::None => None,
        }
    }
}

impl TokenCell {
    /// Waits until the token is newer than `generation`, whatever the refresher decided
    /// about that generation; `None` on timeout or shutdown. For a reader backing off after
    /// refusals that a new token could not help: a token that comes anyway (a new login, a
    /// pasted one) is worth trying at once.
    pub fn wait_replaced(&self, generation: u64, timeout: Duration) -> Option<(Secret, u64)> {
        let state = lock(&self.state);
        let (state, _) = self
            .changed
            .wait_timeout_while(state, timeout, |state| {
                state.generation <= generation && !state.closed
            })
            .unwrap_or_else(PoisonError::into_inner);
        (state.generation > generation && !state.closed)
            .then(|| (state.token.clone(), state.generation))
    }
}

/// One configured user as the running threads share it.
pub struct User {
    pub login: Login,
    pub client_id: String,
    pub token: TokenCell,
    prime_or_turbo: AtomicBool,
    enabled: AtomicBool,
    user_id: Mutex<Option<UserId>>,
    changes: Mutex<ChangeSlot>,
    /// Unix seconds until which Helix said this user's bucket is empty.
    bucket_empty_until: Mutex<Option<u64>>,
    color_settings: Mutex<ColorSettings>,
    sinks: UserSinks,
    /// Set when the user is removed or restarted: from then on its threads (which may
    /// still be finishing) no longer write its status. Held while writing, so no write
    /// lands after [`User::retire`] returns.
    retired: Mutex<bool>,
}

/// Where a user's threads report to, each optional (tests run without files).
#[derive(Clone, Default)]
pub struct UserSinks {
    /// Saves settings and tokens; `None` when there is no config file.
    pub writer: Option<ConfigWriter>,
    /// The status file behind `twitch-colorchanger health`.
    pub status: Option<StatusBoard>,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("login", &self.login)
            .finish_non_exhaustive()
    }
}

/// What `User::request_change` did with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Queued {
    /// No change was in flight: the caller must hand the user to a worker.
    Dispatch,
    /// A change is in flight; the request waits in the slot (replacing an older one).
    Coalesced,
}

impl User {
    /// A user with its flags `(prime_or_turbo, enabled)`, color settings, and where it
    /// saves what changes and reports its state.
    pub fn new(
        login: Login,
        client_id: String,
        token: TokenCell,
        (prime_or_turbo, enabled): (bool, bool),
        color_settings: ColorSettings,
        sinks: UserSinks,
    ) -> User {
        if let Some(status) = &sinks.status {
            status.add_user(&login, enabled);
        }
        User {
            login,
            client_id,
            token,
            prime_or_turbo: AtomicBool::new(prime_or_turbo),
            enabled: AtomicBool::new(enabled),
            user_id: Mutex::new(None),
            changes: Mutex::new(ChangeSlot::default()),
            bucket_empty_until: Mutex::new(None),
            color_settings: Mutex::new(color_settings),
            sinks,
            retired: Mutex::new(false),
        }
    }

    /// Reports the user's state for the status file, unless the user was retired.
    pub fn report_state(&self, state: UserState) {
        let retired = lock(&self.retired);
        if *retired {
            return;
        }
        if let Some(status) = &self.sinks.status {
            status.set_state(&self.login, state);
        }
    }

    /// Reports how the user's chat is read and which channels, for the status page.
    pub fn report_chat(&self, transport: &str, channels: &[Login]) {
        let retired = lock(&self.retired);
        if *retired {
            return;
        }
        if let Some(status) = &self.sinks.status {
            status.set_chat(&self.login, transport, channels);
        }
    }

    /// Reports an error the status page shows until the next one (a failed change or token
    /// check). Never pass a secret.
    pub fn report_error(&self, text: &str) {
        let retired = lock(&self.retired);
        if *retired {
            return;
        }
        if let Some(status) = &self.sinks.status {
            status.record_error(&self.login, text);
        }
    }

    /// Reports when the tokens are next refreshed, in Unix seconds.
    pub fn report_token_refresh_at(&self, at_unix: Option<u64>) {
        let retired = lock(&self.retired);
        if *retired {
            return;
        }
        if let Some(status) = &self.sinks.status {
            status.set_next_token_refresh(&self.login, at_unix);
        }
    }

    /// The user was removed or restarted: its threads no longer write its status (the
    /// current entry of the same login, if any, does).
    pub fn retire(&self) {
        *lock(&self.retired) = true;
    }

    /// The sinks this user reports to, for the token thread.
    pub fn sinks(&self) -> &UserSinks {
        &self.sinks
    }

    pub fn color_settings(&self) -> ColorSettings {
        lock(&self.color_settings).clone()
    }

    pub fn set_color_settings(&self, settings: ColorSettings) {
        *lock(&self.color_settings) = settings;
    }

    /// The token journal beside the config (when there is a config file).
    pub fn token_journal(&self) -> Option<std::sync::Arc<crate::config::journal::TokenJournal>> {
        self.sinks.writer.as_ref().map(ConfigWriter::journal)
    }

    /// Saves a change to this user's config entry (when there is a config file).
    pub fn save(&self, change: SavedField) {
        if let Some(writer) = &self.sinks.writer {
            writer.save(&self.login, change);
        }
    }

    pub fn user_id(&self) -> Option<UserId> {
        lock(&self.user_id).clone()
    }

    pub fn set_user_id(&self, user_id: UserId) {
        *lock(&self.user_id) = Some(user_id);
    }

    pub fn is_prime_or_turbo(&self) -> bool {
        self.prime_or_turbo.load(Ordering::Relaxed)
    }

    pub fn set_prime_or_turbo(&self, value: bool) {
        self.prime_or_turbo.store(value, Ordering::Relaxed);
    }

    pub fn is_enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    pub fn set_enabled(&self, value: bool) {
        self.enabled.store(value, Ordering::Relaxed);
        let retired = lock(&self.retired);
        if *retired {
            return;
        }
        if let Some(status) = &self.sinks.status {
            status.set_changes_enabled(&self.login, value);
        }
    }

    /// Records the color Twitch says the user has (GLOBALUSERSTATE at login).
    pub fn set_current_color(&self, color: Option<Rgb>) {
        if let Some(status) = &self.sinks.status {
            status.set_login_color(&self.login, color.map(|rgb| rgb.to_string()));
        }
        lock(&self.changes).colors.last = color;
    }

    pub fn current_color(&self) -> Option<Rgb> {
        lock(&self.changes).colors.last
    }

    /// Files a change request. Returns whether the caller must dispatch the user to a worker.
    pub fn request_change(&self, request: ChangeRequest) -> Queued {
        let mut slot = lock(&self.changes);
        slot.pending = Some(request);
        if slot.in_flight {
            Queued::Coalesced
        } else {
            slot.in_flight = true;
            Queued::Dispatch
        }
    }

    /// For the worker holding this user: the next request to carry out with the color
    /// state as it is now, or `None` (and the user is no longer in flight).
    pub fn take_request(&self) -> Option<(ChangeRequest, ColorState)> {
        let mut slot = lock(&self.changes);
        match slot.pending.take() {
            Some(request) => Some((request, slot.colors.clone())),
            None => {
                slot.in_flight = false;
                None
            }
        }
    }

    /// Records what Helix said of the user's rate-limit bucket.
    pub fn note_rate_limit(&self, rate_limit: RateLimit) {
        *lock(&self.bucket_empty_until) = match rate_limit.remaining {
            Some(0) => rate_limit.reset_at_unix,
            _ => None,
        };
    }

    /// Unix seconds until which the bucket is empty, if Helix said it is.
    pub fn bucket_empty_until(&self) -> Option<u64> {
        *lock(&self.bucket_empty_until)
    }

    /// For a worker that panicked while holding this user: nothing is in flight any more.
    /// A pending request stays and goes out with the next one.
    pub fn release_after_panic(&self) {
        lock(&self.changes).in_flight = false;
    }

    /// For the worker: the change succeeded and the color state is now `colors`. A hex
    /// color that went through shows Turbo/Prime, so the rejection count starts over.
    pub fn changed_to(&self, color: &Color, colors: ColorState) {
        counters::color_change(self.login.as_str(), ChangeResult::Ok);
        if let Some(status) = &self.sinks.status {
            if !*lock(&self.retired) {
                status.record_change(&self.login, &color.to_string());
            }
        }
        let was_hex = color.is_hex();
        let mut slot = lock(&self.changes);
        slot.colors = colors;
        if was_hex {
            slot.n_hex_rejections = 0;
        }
    }

    /// For the worker: Twitch refused a hex color. Returns how many in a row it refused.
    pub fn hex_rejected(&self) -> u32 {
        let mut slot = lock(&self.changes);
        slot.n_hex_rejections += 1;
        slot.n_hex_rejections
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn user() -> User {
        User::new(
            Login::new("alice"),
            "client".into(),
            TokenCell::new(Secret::new("token"), None),
            (true, true),
            ColorSettings::default(),
            UserSinks::default(),
        )
    }

    #[test]
    fn a_burst_coalesces_into_one_in_flight_and_one_pending() {
        let user = user();
        assert_eq!(user.request_change(ChangeRequest::Auto), Queued::Dispatch);
        // The worker picks the first request up.
        assert_eq!(
            user.take_request().map(|(r, _)| r),
            Some(ChangeRequest::Auto)
        );
        // Nine more messages arrive while the first change is in flight.
        for _ in 0..8 {
            assert_eq!(user.request_change(ChangeRequest::Auto), Queued::Coalesced);
        }
        let red = Color::Named(crate::color::NamedColor::Red);
        assert_eq!(
            user.request_change(ChangeRequest::Set(red)),
            Queued::Coalesced
        );
        // Only the newest waits.
        assert_eq!(
            user.take_request().map(|(r, _)| r),
            Some(ChangeRequest::Set(red))
        );
        assert_eq!(user.take_request(), None);
        // Idle again: the next request dispatches.
        assert_eq!(user.request_change(ChangeRequest::Auto), Queued::Dispatch);
    }

    #[test]
    fn a_user_released_after_a_panic_dispatches_again() {
        let user = user();
        assert_eq!(user.request_change(ChangeRequest::Auto), Queued::Dispatch);
        user.release_after_panic();
        assert_eq!(user.request_change(ChangeRequest::Auto), Queued::Dispatch);
    }

    #[test]
    fn the_current_color_is_handed_to_the_worker() {
        let user = user();
        let seen = Rgb { r: 1, g: 2, b: 3 };
        user.set_current_color(Some(seen));
        user.request_change(ChangeRequest::Auto);
        let (request, colors) = user.take_request().unwrap();
        assert_eq!((request, colors.last), (ChangeRequest::Auto, Some(seen)));
        let set = Rgb { r: 4, g: 5, b: 6 };
        user.changed_to(
            &Color::Hex(set),
            ColorState {
                last: Some(set),
                palette_index: 3,
            },
        );
        assert_eq!(user.current_color(), Some(set));
    }

    #[test]
    fn hex_rejections_count_in_a_row_until_a_hex_change_succeeds() {
        let user = user();
        let named = Color::Named(crate::color::NamedColor::Red);
        let hex = Color::Hex(Rgb { r: 1, g: 2, b: 3 });
        assert_eq!(user.hex_rejected(), 1);
        user.changed_to(&named, ColorState::default());
        assert_eq!(
            user.hex_rejected(),
            2,
            "a named change does not reset the count"
        );
        user.changed_to(&hex, ColorState::default());
        assert_eq!(user.hex_rejected(), 1);
    }

    #[test]
    fn token_waiters_see_only_newer_tokens() {
        let (sender, rejections) = crossbeam_channel::unbounded();
        let route = RejectionRoute { sender, entry: 7 };
        let cell = TokenCell::new(Secret::new("old"), Some(route));
        let (_, generation) = cell.current();
        assert!(cell
            .wait_newer(generation, Duration::from_millis(1))
            .is_none());
        assert!(cell.report_rejected(generation));
        assert_eq!(
            rejections.try_recv(),
            Ok(Rejection {
                entry: 7,
                generation
            })
        );
        cell.replace(Secret::new("new"));
        let (token, newer) = cell.wait_newer(generation, Duration::from_secs(5)).unwrap();
        assert_eq!(token.expose(), "new");
        assert_eq!(newer, generation + 1);
        cell.close();
        assert!(cell.wait_newer(newer, Duration::from_secs(60)).is_none());
    }

    #[test]
    fn a_settled_generation_wakes_its_waiters_and_later_refusals_are_still_reported() {
        let (sender, rejections) = crossbeam_channel::unbounded();
        let cell = std::sync::Arc::new(TokenCell::new(
            Secret::new("works"),
            Some(RejectionRoute { sender, entry: 1 }),
        ));
        let (_, generation) = cell.current();
        let waiter = {
            let cell = std::sync::Arc::clone(&cell);
            std::thread::spawn(move || cell.wait_newer(generation, Duration::from_secs(60)))
        };
        cell.settle(generation, Settled::CannotHelp);
        assert!(waiter.join().unwrap().is_none(), "the waiter woke early");
        // A token that cannot help is not waited for, but Twitch's refusal is still news.
        assert!(!cell.report_rejected(generation));
        assert!(rejections.try_recv().is_ok());
        // After "it validates", a refusal is new evidence: reported and waited for again.
        cell.settle(generation, Settled::Validates);
        assert_eq!(
            cell.wait_refusal_answer(generation, Duration::from_secs(60)),
            RefusalAnswer::Settled(Settled::Validates)
        );
        assert!(cell.report_rejected(generation));
        assert!(rejections.try_recv().is_ok());
        assert_eq!(
            cell.wait_refusal_answer(generation, Duration::from_millis(1)),
            RefusalAnswer::None,
            "the earlier finding does not answer the new report"
        );
        // A new generation is not settled.
        cell.replace(Secret::new("newer"));
        assert!(matches!(
            cell.wait_refusal_answer(generation, Duration::from_secs(60)),
            RefusalAnswer::Newer(_, newer) if newer == generation + 1
        ));
        assert!(cell.report_rejected(generation + 1));
    }

    #[test]
    fn a_settled_generation_ends_waits_for_a_refresh_but_not_for_a_replacement() {
        let cell = Arc::new(TokenCell::new(Secret::new("old"), None));
        cell.settle(0, Settled::Validates);
        assert!(cell.wait_newer(0, Duration::from_secs(60)).is_none());
        let waiter = {
            let cell = Arc::clone(&cell);
            std::thread::spawn(move || cell.wait_replaced(0, Duration::from_secs(60)))
        };
        cell.replace(Secret::new("pasted"));
        let (token, generation) = waiter.join().unwrap().expect("the new token");
        assert_eq!((token.expose(), generation), ("pasted", 1));
        cell.close();
        assert!(cell.wait_replaced(1, Duration::from_secs(60)).is_none());
    }

    #[test]
    fn scopes_belong_to_the_token_they_were_validated_for() {
        let cell = TokenCell::new(Secret::new("old"), None);
        let (_, generation) = cell.current();
        assert_eq!(cell.wait_scopes(Duration::from_millis(1)), None);
        cell.set_scopes(generation, vec!["chat:read".into()]);
        assert_eq!(
            cell.wait_scopes(Duration::from_secs(5)),
            Some(vec!["chat:read".to_string()])
        );
        cell.replace(Secret::new("new"));
        assert_eq!(
            cell.wait_scopes(Duration::from_millis(1)),
            None,
            "a new token"
        );
        // A validation of the old token that finishes late does not count for the new one.
        cell.set_scopes(generation, vec!["stale".into()]);
        assert_eq!(cell.wait_scopes(Duration::from_millis(1)), None);
        cell.close();
        assert_eq!(cell.wait_scopes(Duration::from_secs(60)), None);
    }

    #[test]
    fn without_a_token_thread_rejections_are_not_waited_for() {
        let cell = TokenCell::new(Secret::new("old"), None);
        assert!(!cell.report_rejected(0));
    }
}
