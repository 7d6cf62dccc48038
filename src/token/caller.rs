//! The token callers: a few threads that make the OAuth calls the token refresher asks for
//! and hand the answers back, so that a slow call holds up only its own user. Does I/O.

use std::panic::{self, AssertUnwindSafe};

use crossbeam_channel::{Receiver, Sender};

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

/// Makes calls until the refresher drops its end of `jobs`. A panicking call is answered
/// as [`Reply::Panicked`], so its user is never left waiting. After `stop` a stop starts
/// nothing new: a call still queued is answered [`Reply::NotSent`] without being sent (the
/// user's tokens stay valid), while a call already sent is waited for, since its answer may
/// hold tokens Twitch has already rotated.
pub fn run_caller(oauth: &OAuth, jobs: &Receiver<Job>, replies: &Sender<Done>, stop: &StopSignal) {
    for job in jobs {
        let reply = if stop.is_stopped() {
            Reply::NotSent
        } else {
            panic::catch_unwind(AssertUnwindSafe(|| call(oauth, job.call)))
                .unwrap_or(Reply::Panicked)
        };
        if replies
            .send(Done {
                key: job.key,
                reply,
            })
            .is_err()
        {
            return;
        }
    }
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
