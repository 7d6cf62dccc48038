//! `ChangeQueue`: how chat threads (and timers) hand a user with a pending color change to
//! the worker pool. Coalesces through the user's change slot; never blocks.

use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};

use crate::color::ChangeRequest;
use crate::user::{Queued, User};

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
