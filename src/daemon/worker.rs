//! The worker pool: a dispatcher thread (`base::pool`) hands users with a pending color
//! change to worker threads, starting another worker whenever none is free (up to
//! `MAX_WORKERS`), and the workers carry the change out through Helix, with bounded retries.
//! Extra workers end after a quiet minute. Does I/O (HTTP) and waits; the retry and color decisions come from
//! `twitch::helix` and `color`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use log::{debug, info, warn};
use rand::RngExt;

use crate::config::SavedField;

use crate::base::clock::unix_now;
use crate::base::counters;
use crate::base::metrics::ChangeResult;
use crate::base::pool::{run_pool, PoolSpec};
use crate::base::stop::StopSignal;
use crate::color::ChangeRequest;
use crate::color::{nearest_named, next_color, Color, ColorState};
use crate::twitch::helix::{bucket_wait, retry_delay, Helix, HelixError, RateLimit};
use crate::user::{RefusalAnswer, Settled, User};

/// How long a worker waits for the token thread to answer a refusal: a new token, or the
/// finding that the refused one still validates.
pub const REFRESHED_TOKEN_WAIT: Duration = Duration::from_secs(30);

/// A change refused with 401 is tried again at most this many times with a new or
/// re-validated token. Twitch's 401 on `PUT /chat/color` has several causes (dev.twitch.tv,
/// API reference, "Update User Chat Color": an invalid token, a missing
/// `user:manage:chat_color` scope, a `user_id` or `Client-Id` that is not the token's): a
/// dead token (a refresh helps), a refusal of a token that still validates (issue 20: one
/// more try with the same token), or a token that cannot do the job (nothing helps).
/// docs/twitch-behaviour.md has the sources.
const MAX_TOKEN_RETRIES: u32 = 2;

/// Stack size of the dispatcher and the workers: one blocking HTTPS call at a time.
pub const WORKER_STACK_SIZE: usize = 256 * 1024;
/// At most this many workers run at once. Every user has at most one change in flight, so
/// up to this many users can each sit in a slow Helix call, a rate-limit wait or a wait for
/// a new token without delaying anybody else. Beyond it Helix is failing for everyone, and
/// further changes queue instead of starting more threads and connections.
pub const MAX_WORKERS: usize = 64;
/// A worker beyond the first ends after this long without work.
pub const WORKER_IDLE_END: Duration = Duration::from_secs(60);

/// Runs the pool until every `ChangeQueue` is dropped, then ends the workers and joins them.
/// Each user taken from `jobs` goes to a free worker, or to a new one when all are busy, so
/// that a user stalled on Helix never holds up another user's change. `stop` cuts the
/// workers' waits short.
pub fn run_dispatcher(jobs: Receiver<Arc<User>>, helix: Arc<Helix>, stop: StopSignal) {
    let spec = PoolSpec {
        name: "worker",
        max_threads: MAX_WORKERS,
        idle_end: WORKER_IDLE_END,
        stack_size: WORKER_STACK_SIZE,
        end_on_stop: false,
    };
    let worker_stop = stop.clone();
    run_pool(jobs, &spec, &stop, move |user: Arc<User>| {
        let _release = ReleaseOnPanic(&user);
        let mut rng = rand::rng();
        while let Some((request, colors)) = user.take_request() {
            carry_out(&helix, &user, request, colors, &worker_stop, &mut rng);
        }
    });
}

/// Marks the user as no longer in flight if the worker panics while holding it, so that the
/// user's next message dispatches again instead of waiting forever.
struct ReleaseOnPanic<'a>(&'a User);

impl Drop for ReleaseOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.release_after_panic();
        }
    }
}

/// Picks the color for `request` and changes to it. A hex color Twitch refuses (no Turbo
/// or Prime) is replaced at once by the nearest named color; after two such refusals in a
/// row the user is switched to named colors for good, and that is saved.
fn carry_out<R: rand::Rng + ?Sized>(
    helix: &Helix,
    user: &User,
    request: ChangeRequest,
    colors: ColorState,
    stop: &StopSignal,
    rng: &mut R,
) {
    let login = &user.login;
    let previous = colors.last;
    let mut after = colors;
    let color = match request {
        ChangeRequest::Auto => {
            let settings = user.color_settings();
            next_color(&settings.mode, user.is_prime_or_turbo(), &mut after, rng)
        }
        ChangeRequest::Set(color) => {
            after.last = Some(color.rgb());
            color
        }
    };
    match change_color(helix, user, &color, stop, rng) {
        Ok(()) => user.changed_to(&color, after),
        Err(HelixError::Rejected { .. }) if color.is_hex() => {
            if user.hex_rejected() >= 2 && user.is_prime_or_turbo() {
                user.set_prime_or_turbo(false);
                user.save(SavedField::IsPrimeOrTurbo(false));
                warn!("{login}: Twitch refused hex colors twice in a row, so this account has no Turbo or Prime; using named colors from now on (saved is_prime_or_turbo: false)");
            }
            counters::color_change(login.as_str(), ChangeResult::HexRefused);
            let named = Color::Named(nearest_named(color.rgb(), previous));
            info!("{login}: Twitch refused {color} (hex colors need Turbo or Prime); using {named} instead");
            after.last = Some(named.rgb());
            match change_color(helix, user, &named, stop, rng) {
                Ok(()) => user.changed_to(&named, after),
                Err(error) => change_failed(user, &named, &error),
            }
        }
        Err(error) => change_failed(user, &color, &error),
    }
}

/// Logs a change that failed for good, once, and reports it to the status page and metrics.
fn change_failed(user: &User, color: &Color, error: &HelixError) {
    let text = format!("color change to {color} failed: {error}");
    warn!("{}: {text}", user.login);
    counters::color_change(user.login.as_str(), ChangeResult::Failed);
    user.report_error(&text);
}

/// Carries one change out: waits for an empty rate-limit bucket to refill, retries
/// transient failures a bounded number of times, and retries once with a new token after a
/// 401. The caller logs a change that finally fails, once.
fn change_color<R: rand::Rng + ?Sized>(
    helix: &Helix,
    user: &User,
    color: &Color,
    stop: &StopSignal,
    rng: &mut R,
) -> Result<(), HelixError> {
    let login = &user.login;
    let stopped = || HelixError::Transport {
        message: "stopped".to_string(),
    };
    let Some(user_id) = user.user_id() else {
        return Err(HelixError::Transport {
            message: "no user id known yet".to_string(),
        });
    };
    if let Some(wait) = bucket_wait(user.bucket_empty_until(), unix_now()) {
        debug!("{login}: rate-limit bucket empty, waiting {wait:?}");
        counters::rate_limit_wait(wait);
        if stop.wait_timeout(wait) {
            return Err(stopped());
        }
    }
    let mut n_token_retries = 0;
    let mut retried_same_token = false;
    let mut attempt = 1;
    loop {
        // A stop starts nothing new: no call goes out after it (one under way finishes).
        if stop.is_stopped() {
            return Err(stopped());
        }
        let (token, generation) = user.token.current();
        let started = Instant::now();
        let outcome = helix.put_color(&user_id, &user.client_id, &token, color);
        counters::helix_call(started.elapsed());
        let rate_limit = match &outcome {
            Ok(rate_limit) => *rate_limit,
            Err(HelixError::RateLimited { rate_limit }) => *rate_limit,
            Err(_) => RateLimit::default(),
        };
        user.note_rate_limit(rate_limit);
        let error = match outcome {
            Ok(_) => {
                info!("{login} → {color}");
                debug!("{login}: change took {:?}", started.elapsed());
                return Ok(());
            }
            Err(error) => error,
        };
        if matches!(error, HelixError::Unauthorized { .. }) && n_token_retries < MAX_TOKEN_RETRIES {
            n_token_retries += 1;
            // Every 401 is reported, including one after the token was found to validate:
            // the token may have died since, and the token thread validates again (a few
            // times a minute at most) and refreshes a dead one.
            if user.token.report_rejected(generation) {
                match user
                    .token
                    .wait_refusal_answer(generation, REFRESHED_TOKEN_WAIT)
                {
                    RefusalAnswer::Newer(..) => {
                        debug!("{login}: retrying the change to {color} with the new token");
                        continue;
                    }
                    RefusalAnswer::Settled(Settled::Validates) if !retried_same_token => {
                        // A 401 for a token that validates with every scope can be passing:
                        // the same change is tried again at once, once.
                        retried_same_token = true;
                        debug!("{login}: the refused token validates; retrying the change to {color} once");
                        continue;
                    }
                    RefusalAnswer::Settled(_) | RefusalAnswer::None => {}
                }
            }
        }
        match retry_delay(&error, attempt, unix_now(), rng.random()) {
            Some(delay) => {
                debug!("{login}: change to {color} failed ({error}), retrying in {delay:?}");
                if matches!(error, HelixError::RateLimited { .. }) {
                    counters::rate_limit_wait(delay);
                }
                if stop.wait_timeout(delay) {
                    return Err(stopped());
                }
                attempt += 1;
            }
            None => return Err(error),
        }
    }
}
