//! The worker pool: threads that take users with a pending color change off a channel and
//! carry the change out through Helix, with bounded retries. Does I/O (HTTP) and waits;
//! the retry and color decisions come from `helix` and `color`.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, Sender};
use log::{debug, info, warn};
use rand::RngExt;

use crate::color::{random_hex, random_named, Color, Rgb};
use crate::helix::{bucket_wait, retry_delay, ColorChangeError, Helix, RateLimit};
use crate::stop::StopSignal;
use crate::user::{ChangeRequest, Queued, User};

/// How long a worker waits for the token thread to replace a token Helix refused.
pub const TOKEN_WAIT: Duration = Duration::from_secs(30);

/// Hands users with a pending change to the workers.
#[derive(Clone)]
pub struct ChangeQueue {
    sender: Sender<Arc<User>>,
}

impl ChangeQueue {
    /// A queue and the receiving end the workers share.
    pub fn new() -> (ChangeQueue, Receiver<Arc<User>>) {
        let (sender, receiver) = crossbeam_channel::unbounded();
        (ChangeQueue { sender }, receiver)
    }

    /// Asks for a color change of `user`, coalescing with one already under way.
    pub fn request(&self, user: &Arc<User>, request: ChangeRequest) {
        if user.request_change(request) == Queued::Dispatch {
            // The workers only go away at shutdown, when no change matters any more.
            let _ = self.sender.send(Arc::clone(user));
        }
    }
}

/// Runs one worker until every `ChangeQueue` is dropped. `stop` cuts waits short.
pub fn run_worker(jobs: Receiver<Arc<User>>, helix: Arc<Helix>, stop: StopSignal) {
    let mut rng = rand::rng();
    for user in jobs.iter() {
        let _release = ReleaseOnPanic(&user);
        while let Some((request, current)) = user.take_request() {
            let color = match request {
                ChangeRequest::Auto => next_auto_color(user.is_prime_or_turbo(), current, &mut rng),
                ChangeRequest::Set(color) => color,
            };
            change_color(&helix, &user, &color, &stop, &mut rng);
        }
    }
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

/// The next automatic color: random hex for Turbo/Prime users, else a named color; never
/// the color the user has now.
pub fn next_auto_color<R: rand::Rng + ?Sized>(
    prime_or_turbo: bool,
    current: Option<Rgb>,
    rng: &mut R,
) -> Color {
    if prime_or_turbo {
        random_hex(rng, current)
    } else {
        random_named(rng, current)
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

/// Carries one change out: waits for an empty rate-limit bucket to refill, retries
/// transient failures a bounded number of times, and retries once with a new token after a
/// 401. A change that finally fails is logged once.
fn change_color<R: rand::Rng + ?Sized>(
    helix: &Helix,
    user: &User,
    color: &Color,
    stop: &StopSignal,
    rng: &mut R,
) {
    let login = &user.login;
    let Some(user_id) = user.user_id() else {
        warn!("{login}: no user id known yet, color change to {color} skipped");
        return;
    };
    if let Some(wait) = bucket_wait(user.bucket_empty_until(), unix_now()) {
        debug!("{login}: rate-limit bucket empty, waiting {wait:?}");
        if stop.wait_timeout(wait) {
            return;
        }
    }
    let mut retried_with_new_token = false;
    let mut attempt = 1;
    loop {
        let (token, generation) = user.token.current();
        let started = Instant::now();
        let outcome = helix.put_color(&user_id, &user.client_id, &token, color);
        let rate_limit = match &outcome {
            Ok(rate_limit) => *rate_limit,
            Err(ColorChangeError::RateLimited { rate_limit }) => *rate_limit,
            Err(_) => RateLimit::default(),
        };
        user.note_rate_limit(rate_limit);
        let error = match outcome {
            Ok(_) => {
                user.changed_to(color.rgb());
                info!("{login} → {color}");
                debug!("{login}: change took {:?}", started.elapsed());
                return;
            }
            Err(error) => error,
        };
        if error == ColorChangeError::Unauthorized && !retried_with_new_token {
            retried_with_new_token = true;
            if user.token.report_rejected(generation)
                && user.token.wait_newer(generation, TOKEN_WAIT).is_some()
            {
                debug!("{login}: retrying the change to {color} with the new token");
                continue;
            }
        }
        match retry_delay(&error, attempt, unix_now(), rng.random()) {
            Some(delay) => {
                debug!("{login}: change to {color} failed ({error}), retrying in {delay:?}");
                if stop.wait_timeout(delay) {
                    return;
                }
                attempt += 1;
            }
            None => {
                warn!("{login}: color change to {color} failed: {error}");
                return;
            }
        }
    }
}
