//! The worker pool: threads that take users with a pending color change off a channel and
//! carry the change out through Helix. Does I/O (HTTP), one blocking call at a time.

use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};
use log::{info, warn};

use crate::color::{random_hex, random_named, Color, Rgb};
use crate::helix::Helix;
use crate::user::{ChangeRequest, Queued, User};

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

/// Runs one worker until every `ChangeQueue` is dropped.
pub fn run_worker(jobs: Receiver<Arc<User>>, helix: Arc<Helix>) {
    let mut rng = rand::rng();
    for user in jobs.iter() {
        while let Some((request, current)) = user.take_request() {
            let color = match request {
                ChangeRequest::Auto => next_auto_color(user.is_prime_or_turbo(), current, &mut rng),
                ChangeRequest::Set(color) => color,
            };
            change_color(&helix, &user, &color);
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

fn change_color(helix: &Helix, user: &User, color: &Color) {
    let login = &user.login;
    let Some(user_id) = user.user_id() else {
        warn!("{login}: no user id known yet, color change to {color} skipped");
        return;
    };
    let (token, _generation) = user.token.current();
    match helix.put_color(&user_id, &user.client_id, &token, color) {
        Ok(_) => {
            user.changed_to(color.rgb());
            info!("{login} → {color}");
        }
        Err(error) => warn!("{login}: color change to {color} failed: {error}"),
    }
}
