//! The token callers: the calls the token refresher asks for, made on the threads of a pool
//! (`base::pool`, started by the refresher) that grows while calls wait, so that a slow call
//! holds up only its own user and a start validates many users at once. New tokens in an
//! answer are written to the token journal here, before the answer goes anywhere. Does I/O.

use std::panic::{self, AssertUnwindSafe};

use crossbeam_channel::Sender;

use std::sync::Arc;

use crate::base::clock::unix_now;
use crate::base::ids::Login;
use crate::base::secret::Secret;
use crate::base::stop::StopSignal;
use crate::config::journal::TokenJournal;
use crate::config::tokens::TokenPair;
use crate::twitch::oauth::{DeviceCode, OAuth, OAuthError, TokenGrant, Validation, SCOPES};

/// One OAuth call for one user.
pub struct Job {
    pub key: u64,
    pub call: Call,
    /// Where new tokens in the answer go before anything else happens with them.
    pub journal: Option<JournalTicket>,
}

/// The user's token journal and what it needs to record an answer's tokens.
pub struct JournalTicket {
    pub journal: Arc<TokenJournal>,
    pub login: Login,
    /// Kept when an answer carries no new refresh token.
    pub refresh_token: Secret,
}

impl JournalTicket {
    /// Appends the tokens of a grant (fsynced; an error is logged by the journal).
    fn record(&self, grant: &TokenGrant) {
        let refresh_token = if grant.refresh_token.is_empty() {
            self.refresh_token.clone()
        } else {
            grant.refresh_token.clone()
        };
        let tokens = TokenPair {
            access_token: grant.access_token.clone(),
            refresh_token,
            expires_at_unix: grant
                .expires_in
                .map(|lifetime| unix_now() + lifetime.as_secs()),
        };
        let _ = self.journal.append(&self.login, &tokens);
    }
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
    // Write-ahead: new tokens are on disk before the answer goes anywhere, here on the
    // caller's thread, so that answers arriving together are synced in parallel rather than
    // one after the other on the refresher's.
    if let Some(ticket) = &job.journal {
        match &reply {
            Reply::Refreshed(Ok(grant)) | Reply::Polled(Ok((grant, _))) => ticket.record(grant),
            _ => {}
        }
    }
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
