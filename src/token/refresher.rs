//! A user's token thread: the one owner of the user's tokens. Validates at start and every
//! hour, refreshes ahead of expiry and whenever a token is refused, publishes new access
//! tokens to the chat thread and the workers, and saves them. Does I/O; when to do what
//! comes from `token::clock`.

use crate::base::counters;
use crate::base::metrics::Outcome;
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::{select, Receiver};
use log::{debug, error, info, warn};
use rand::RngExt;

use crate::base::clock::unix_now;
use crate::base::secret::Secret;
use crate::base::stop::StopSignal;
use crate::config::SavedField;
use crate::status::UserState;
use crate::token::clock::{next_step, TokenClock, TokenStep};
use crate::token::device_login::{device_login, instructions, DeviceLoginError};
use crate::twitch::oauth::{OAuth, OAuthError, TokenGrant};
use crate::user::User;

/// Scopes without which the daemon cannot work.
const REQUIRED_SCOPES: [&str; 2] = ["chat:read", "user:manage:chat_color"];

/// Everything a token thread owns.
pub struct TokenOwner {
    pub user: Arc<User>,
    pub client_secret: Secret,
    pub refresh_token: Secret,
    /// Generations of access tokens that the chat thread or a worker saw refused.
    pub rejections: Receiver<u64>,
    pub oauth: Arc<OAuth>,
    /// True when a person watches the terminal: a lost login is then redone with a device
    /// code instead of stopping the user.
    pub interactive: bool,
    /// Fired when the user cannot go on (no way to get a valid token).
    pub user_stop: StopSignal,
    /// Wait this long before the first call to Twitch (spreads many users' first checks).
    pub first_check_after: std::time::Duration,
}

/// Runs until `user_stop` fires or the user has to stop for want of a valid token.
pub fn run_token_thread(mut owner: TokenOwner) {
    let login = owner.user.login.clone();
    let mut clock = TokenClock::default();
    let mut refresh_wanted = false;
    // A refreshed token is validated at once; failing that, refreshing again will not help.
    let mut refreshed_unvalidated = false;
    let mut rng = rand::rng();
    if owner.user_stop.wait_timeout(owner.first_check_after) {
        return;
    }

    if owner.user.token.current().0.is_empty() {
        if owner.refresh_token.is_empty() {
            info!("{login}: no tokens in the config; starting a device-code login");
            if !owner.log_in(&mut clock) {
                return;
            }
            refreshed_unvalidated = true;
        } else {
            refresh_wanted = true;
        }
    }
    loop {
        if owner.user_stop.is_stopped() {
            return;
        }
        let now = Instant::now();
        match next_step(&clock, now, refresh_wanted) {
            TokenStep::SleepUntil(wake_at) => {
                let due = clock
                    .refresh_due()
                    .map(|due| due.saturating_duration_since(now));
                owner
                    .user
                    .report_token_refresh_at(due.map(|due| unix_now() + due.as_secs()));
                select! {
                    recv(owner.rejections) -> generation => match generation {
                        Ok(generation) if generation == owner.user.token.current().1 => {
                            info!("{login}: Twitch refused the access token; refreshing it");
                            refresh_wanted = true;
                        }
                        Ok(_) => {}
                        Err(_) => return,
                    },
                    recv(owner.user_stop.receiver()) -> _ => return,
                    default(wake_at.saturating_duration_since(now)) => {}
                }
            }
            TokenStep::Validate => {
                let (token, _) = owner.user.token.current();
                match owner.oauth.validate(&token) {
                    Ok(validation) => {
                        if validation.login != login {
                            let why = format!(
                                "the access token belongs to the Twitch account {}, not to {login}",
                                validation.login
                            );
                            if !owner.give_up_or_log_in(&why, &mut clock) {
                                return;
                            }
                            refreshed_unvalidated = true;
                            continue;
                        }
                        let missing: Vec<&str> = REQUIRED_SCOPES
                            .into_iter()
                            .filter(|scope| !validation.scopes.iter().any(|s| s == scope))
                            .collect();
                        if !missing.is_empty() && clock.validated_at.is_none() {
                            warn!(
                                "{login}: the token lacks the scope(s) {}; get a token with chat:read and user:manage:chat_color",
                                missing.join(", ")
                            );
                        }
                        if owner.user.user_id().is_none() {
                            owner.user.set_user_id(validation.user_id);
                        }
                        debug!(
                            "{login}: token valid for another {} minutes",
                            validation.expires_in.as_secs() / 60
                        );
                        clock.after_validation(now, validation.expires_in);
                        refreshed_unvalidated = false;
                    }
                    Err(OAuthError::InvalidAccessToken) if refreshed_unvalidated => {
                        if !owner.give_up_or_log_in(
                            "the access token still fails validation after a refresh",
                            &mut clock,
                        ) {
                            return;
                        }
                    }
                    Err(OAuthError::InvalidAccessToken) => {
                        info!("{login}: the access token is expired or revoked; refreshing it");
                        refresh_wanted = true;
                    }
                    Err(error) => {
                        clock.after_transient_failure(now, rng.random());
                        owner
                            .user
                            .report_error(&format!("token validation failed: {error}"));
                        warn!(
                            "{login}: token validation failed ({error}); trying again in {} s",
                            retry_in_seconds(&clock, now)
                        );
                    }
                }
            }
            TokenStep::Refresh => {
                if owner.refresh_token.is_empty() {
                    refresh_wanted = false;
                    if !owner.give_up_or_log_in(
                        "the access token is no longer valid and the config has no refresh token",
                        &mut clock,
                    ) {
                        return;
                    }
                    refreshed_unvalidated = true;
                    continue;
                }
                let user = &owner.user;
                match owner.oauth.refresh(
                    &owner.refresh_token,
                    &user.client_id,
                    &owner.client_secret,
                ) {
                    Ok(grant) => {
                        counters::token_refresh(Outcome::Ok);
                        info!("{login}: access token refreshed");
                        owner.install(grant, &mut clock);
                        refresh_wanted = false;
                        refreshed_unvalidated = true;
                    }
                    Err(error) if error.is_transient() => {
                        counters::token_refresh(Outcome::Failed);
                        clock.after_transient_failure(now, rng.random());
                        owner
                            .user
                            .report_error(&format!("token refresh failed: {error}"));
                        warn!(
                            "{login}: token refresh failed ({error}); trying again in {} s",
                            retry_in_seconds(&clock, now)
                        );
                    }
                    Err(error) => {
                        counters::token_refresh(Outcome::Failed);
                        refresh_wanted = false;
                        let why = match error {
                            OAuthError::InvalidRefreshToken => "Twitch rejected the refresh token (a changed password or a removed app connection does that)".to_string(),
                            other => format!("Twitch refused to refresh the token ({other}); check client_id and client_secret"),
                        };
                        if !owner.give_up_or_log_in(&why, &mut clock) {
                            return;
                        }
                        refreshed_unvalidated = true;
                    }
                }
            }
        }
    }
}

fn retry_in_seconds(clock: &TokenClock, now: Instant) -> u64 {
    clock
        .retry_at
        .map_or(0, |at| at.saturating_duration_since(now).as_secs())
}

impl TokenOwner {
    /// Publishes new tokens to the other threads and saves them.
    fn install(&mut self, grant: TokenGrant, clock: &mut TokenClock) {
        let now = Instant::now();
        if !grant.refresh_token.is_empty() {
            self.refresh_token = grant.refresh_token.clone();
        }
        clock.after_refresh(now, grant.expires_in);
        let change = SavedField::Tokens {
            access_token: grant.access_token.clone(),
            refresh_token: self.refresh_token.clone(),
            expires_at_unix: grant
                .expires_in
                .map(|lifetime| unix_now() + lifetime.as_secs()),
        };
        // Handed to the writer before anyone can use the new token, so whatever follows from
        // its use (a change, a flush of the writer) comes after the save was asked for.
        if let Some(writer) = &self.user.sinks().writer {
            writer.save(&self.user.login, change);
        }
        self.user.token.replace(grant.access_token);
    }

    /// The login cannot go on with what the config holds. On a terminal, a device-code
    /// login replaces the tokens; otherwise the user stops with one clear line. True when
    /// new tokens were installed.
    fn give_up_or_log_in(&mut self, why: &str, clock: &mut TokenClock) -> bool {
        let login = &self.user.login;
        if self.interactive {
            warn!("{login}: {why}; starting a device-code login");
            return self.log_in(clock);
        }
        error!(
            "{login}: {why}. This user is stopped; the others go on. Fix: run `twitch-colorchanger auth --user {login}` (or put new tokens in the config) and restart."
        );
        self.user.report_state(UserState::NeedsLogin {
            reason: why.to_string(),
        });
        self.stop_user();
        false
    }

    fn stop_user(&self) {
        self.user_stop.stop();
        self.user.token.close();
    }

    /// Runs the device-code login and installs its tokens. False when it ended without.
    fn log_in(&mut self, clock: &mut TokenClock) -> bool {
        let login = self.user.login.clone();
        if self.user.client_id.is_empty() {
            error!("{login}: a device-code login needs the client_id of your Twitch app in the config; this user is stopped");
            self.user.report_state(UserState::NeedsLogin {
                reason: "no client_id for a device-code login".to_string(),
            });
            self.stop_user();
            return false;
        }
        let user = &self.user;
        let result = device_login(
            &self.oauth,
            &user.client_id,
            &login,
            &self.user_stop,
            |code| {
                let line = instructions(&login, code);
                warn!("{line}");
                user.report_state(UserState::NeedsLogin { reason: line });
            },
        );
        match result {
            Ok((grant, validation)) => {
                info!("{login}: logged in with the device code");
                if self.user.user_id().is_none() {
                    self.user.set_user_id(validation.user_id);
                }
                self.install(grant, clock);
                true
            }
            Err(DeviceLoginError::Stopped) => false,
            Err(error) => {
                error!("{login}: device-code login failed: {error}. This user is stopped; run `twitch-colorchanger auth --user {login}` and restart.");
                self.user.report_state(UserState::NeedsLogin {
                    reason: format!("device-code login failed: {error}"),
                });
                self.stop_user();
                false
            }
        }
    }
}
