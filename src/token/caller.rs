//! The token callers: the calls the token refresher asks for, made on the threads of a pool
//! (`base::pool`, started by the refresher) that grows while calls wait, so that a slow call
//! holds up only its own user and a start validates many users at once. Does I/O.

use std::panic::{self, AssertUnwindSafe};

use crossbeam_channel::Sender;

use crate::base::secret::Secret;
use crate::base::stop::StopSignal;
use crate::twitch::oauth::{DeviceCode, OAuth, OAuthError, TokenGrant, Validation, SCOPES};

/// One OAuth call for one user.
pub struct Job {
    pub key: u64,
    pub call: Call,
}

/// What to ask Twitch's OAuth server.
pub enum Call {
    Validate(Secret),
    Refresh {
        refresh_token: Secret,
        client_id: String,
        client_secret: Secret,
    },
    StartDevice {
        client_id: String,
    },
    /// Polls and, once approved, validates the new tokens to learn whose they are.
    PollDevice {
        client_id: String,
        device_code: Secret,
    },
}

/// What it answered.
pub enum Reply {
    Validated(Result<Validation, OAuthError>),
    Refreshed(Result<TokenGrant, OAuthError>),
    DeviceStarted(Result<DeviceCode, OAuthError>),
    Polled(Result<(TokenGrant, Result<Validation, OAuthError>), OAuthError>),
    /// The call panicked; treated as a transient failure.
    Panicked,
    /// The stop signal fired before the call was sent: nothing was asked of Twitch.
    NotSent,
}

impl Call {
    /// What the call is, for log lines.
    pub fn name(&self) -> &'static str {
        match self {
            Call::Validate(_) => "validation",
            Call::Refresh { .. } => "refresh",
            Call::StartDevice { .. } => "device login",
            Call::PollDevice { .. } => "device login poll",
        }
    }
}

/// An answer for the user entry `key`.
pub struct Done {
    pub key: u64,
    pub reply: Reply,
}

/// Makes one call and sends its answer to `replies`. A panicking call is answered as
/// [`Reply::Panicked`], so its user is never left waiting. A stop starts nothing new: once
/// `stop` has fired, a call still waiting for a thread is answered [`Reply::NotSent`]
/// without being sent (the user's tokens stay valid), while a call already sent is waited
/// for, since its answer may hold tokens Twitch has already rotated.
pub fn answer(oauth: &OAuth, job: Job, replies: &Sender<Done>, stop: &StopSignal) {
    let reply = if stop.is_stopped() {
        Reply::NotSent
    } else {
        panic::catch_unwind(AssertUnwindSafe(|| call(oauth, job.call))).unwrap_or(Reply::Panicked)
    };
    // The refresher has ended when nobody listens: the answer has nowhere to go.
    let _ = replies.send(Done {
        key: job.key,
        reply,
    });
}

fn call(oauth: &OAuth, call: Call) -> Reply {
    match call {
        Call::Validate(token) => Reply::Validated(oauth.validate(&token)),
        Call::Refresh {
            refresh_token,
            client_id,
            client_secret,
        } => Reply::Refreshed(oauth.refresh(&refresh_token, &client_id, &client_secret)),
        Call::StartDevice { client_id } => {
            Reply::DeviceStarted(oauth.start_device(&client_id, SCOPES))
        }
        Call::PollDevice {
            client_id,
            device_code,
        } => Reply::Polled(
            oauth
                .poll_device(&client_id, &device_code, SCOPES)
                .map(|grant| {
                    let validation = oauth.validate(&grant.access_token);
                    (grant, validation)
                }),
        ),
    }
}
