//! Device-code login: gets a user's first tokens without a browser on the machine running
//! the daemon. Does I/O (OAuth calls) and waits on the stop signal between polls.

use std::time::Instant;

use crate::base::ids::Login;
use crate::base::stop::StopSignal;
use crate::token::machine::{auth_retry_delay, poll_backoff, SLOW_DOWN_STEP};
use crate::twitch::oauth::{DeviceCode, OAuth, OAuthError, TokenGrant, Validation, SCOPES};

/// Why a device login ended without tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceLoginError {
    /// The stop signal fired.
    Stopped,
    /// The person declined the login on Twitch.
    Denied,
    /// Twitch refused the request itself (e.g. an unknown client id).
    Refused(OAuthError),
    /// The login succeeded, but as another Twitch account than the configured one.
    WrongAccount { logged_in_as: Login },
}

impl std::fmt::Display for DeviceLoginError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeviceLoginError::Stopped => f.write_str("stopped"),
            DeviceLoginError::Denied => f.write_str("the login was declined on Twitch"),
            DeviceLoginError::Refused(error) => {
                write!(f, "Twitch refused the device login: {error}")
            }
            DeviceLoginError::WrongAccount { logged_in_as } => write!(
                f,
                "the code was entered while logged in to Twitch as {logged_in_as}"
            ),
        }
    }
}

/// The line a person acts on: where to go and which code to enter.
pub fn instructions(login: &Login, code: &DeviceCode) -> String {
    format!(
        "{login}: to log in, open {} and enter the code {} (as {login}; valid for {} minutes)",
        code.verification_uri,
        code.user_code,
        code.expires_in.as_secs().div_ceil(60)
    )
}

/// Runs the device flow for `login` until tokens arrive: shows each code through
/// `announce`, polls at the server's interval (slower after `slow_down`), starts over with
/// a new code when one expires, and waits out transient failures. A shown code ends only
/// at its own expiry or when the person declines it: any other error while polling
/// ("invalid device code" included, twitchdev/issues#971) means "not yet" and backs off.
/// The tokens are checked to belong to `login`.
pub fn device_login(
    oauth: &OAuth,
    client_id: &str,
    login: &Login,
    stop: &StopSignal,
    announce: impl FnMut(&DeviceCode),
) -> Result<(TokenGrant, Validation), DeviceLoginError> {
    device_flow(oauth, client_id, Some(login), stop, announce)
}

/// The device flow for whichever account the person logs in as (`auth --client-id`, which
/// learns the account from the tokens); `expected` checks it when given.
pub fn device_login_any(
    oauth: &OAuth,
    client_id: &str,
    expected: Option<&Login>,
    stop: &StopSignal,
    announce: impl FnMut(&DeviceCode),
) -> Result<(TokenGrant, Validation), DeviceLoginError> {
    device_flow(oauth, client_id, expected, stop, announce)
}

fn device_flow(
    oauth: &OAuth,
    client_id: &str,
    login: Option<&Login>,
    stop: &StopSignal,
    mut announce: impl FnMut(&DeviceCode),
) -> Result<(TokenGrant, Validation), DeviceLoginError> {
    let mut n_failures = 0u32;
    loop {
        let code = match oauth.start_device(client_id, SCOPES) {
            Ok(code) => code,
            Err(error) if error.is_transient() => {
                n_failures += 1;
                if stop.wait_timeout(auth_retry_delay(n_failures, 0.5)) {
                    return Err(DeviceLoginError::Stopped);
                }
                continue;
            }
            Err(error) => return Err(DeviceLoginError::Refused(error)),
        };
        announce(&code);
        let expires_at = Instant::now() + code.expires_in;
        let mut interval = code.interval;
        let mut wait = interval;
        let mut n_failed_polls = 0;
        loop {
            let left = expires_at.saturating_duration_since(Instant::now());
            if stop.wait_timeout(wait.min(left)) {
                return Err(DeviceLoginError::Stopped);
            }
            if Instant::now() >= expires_at {
                break;
            }
            match oauth.poll_device(client_id, &code.device_code, SCOPES) {
                Ok(grant) => return check_account(oauth, login, grant, stop),
                Err(OAuthError::AccessDenied) => return Err(DeviceLoginError::Denied),
                Err(OAuthError::AuthorizationPending) => n_failed_polls = 0,
                Err(OAuthError::SlowDown) => {
                    interval += SLOW_DOWN_STEP;
                    n_failed_polls = 0;
                }
                // Anything else is "not yet" while the code lasts (see above).
                Err(_) => n_failed_polls += 1,
            }
            // The code's interval, doubled per failed poll in a row.
            wait = poll_backoff(interval, n_failed_polls);
        }
    }
}

/// Validates fresh tokens to learn whose they are.
fn check_account(
    oauth: &OAuth,
    login: Option<&Login>,
    grant: TokenGrant,
    stop: &StopSignal,
) -> Result<(TokenGrant, Validation), DeviceLoginError> {
    let mut n_failures = 0u32;
    loop {
        match oauth.validate(&grant.access_token) {
            Ok(validation) if login.is_none_or(|login| validation.login == *login) => {
                return Ok((grant, validation))
            }
            Ok(validation) => {
                return Err(DeviceLoginError::WrongAccount {
                    logged_in_as: validation.login,
                })
            }
            Err(error) if error.is_transient() => {
                n_failures += 1;
                if stop.wait_timeout(auth_retry_delay(n_failures, 0.5)) {
                    return Err(DeviceLoginError::Stopped);
                }
            }
            Err(error) => return Err(DeviceLoginError::Refused(error)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::secret::Secret;
    use std::time::Duration;

    #[test]
    fn instructions_are_one_actionable_line() {
        let code = DeviceCode {
            device_code: Secret::new("device-secret"),
            user_code: "ABCD-EFGH".into(),
            verification_uri: "https://www.twitch.tv/activate?public=true&device-code=ABCD-EFGH"
                .into(),
            expires_in: Duration::from_secs(1800),
            interval: Duration::from_secs(5),
        };
        let line = instructions(&Login::new("alice"), &code);
        assert_eq!(
            line,
            "alice: to log in, open https://www.twitch.tv/activate?public=true&device-code=ABCD-EFGH \
             and enter the code ABCD-EFGH (as alice; valid for 30 minutes)"
        );
        assert!(!line.contains("device-secret"));
        assert!(!line.contains('\n'));
    }
}
