//! Which tokens the daemon has held for each user, and what a token found in an edited
//! config means: the tokens the daemon holds now, a stale copy of tokens it already
//! replaced (an editor saving an old buffer), or tokens a person pasted. Pure; kept in
//! memory only, by the config writer.

use std::collections::{HashMap, VecDeque};

use crate::base::ids::Login;
use crate::base::secret::Secret;

/// How many replaced tokens are remembered per user. A refresh replaces two (access and
/// refresh token); an editor buffer is older than a few refreshes only after days, and a
/// copy older than that is still recognised as long as its refresh token is here.
pub const REMEMBERED_PER_USER: usize = 32;

/// A user's tokens as the config file holds them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TokenPair {
    pub access_token: Secret,
    pub refresh_token: Secret,
    /// `token_expires_at`, when known.
    pub expires_at_unix: Option<u64>,
}

impl TokenPair {
    fn same_tokens(&self, other: &TokenPair) -> bool {
        self.access_token == other.access_token && self.refresh_token == other.refresh_token
    }
}

/// What the tokens of a user in an edited config are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenVerdict {
    /// The tokens the daemon holds: nothing to do.
    Current,
    /// Every token in the edit is one the daemon held and replaced: the edit came from an
    /// old copy. The daemon keeps its newer tokens and writes them back.
    StaleCopy,
    /// The edit holds a token the daemon has never held: a person put it there. The daemon
    /// adopts it.
    Pasted,
    /// The daemon has held no tokens for this user (a new user).
    NewUser,
}

/// One user's tokens: the newest, and those it replaced.
#[derive(Clone, Debug, Default)]
struct History {
    current: TokenPair,
    replaced: VecDeque<Secret>,
}

impl History {
    fn knows(&self, token: &Secret) -> bool {
        self.current.access_token == *token
            || self.current.refresh_token == *token
            || self.replaced.contains(token)
    }

    fn replace(&mut self, newer: TokenPair) {
        let older = std::mem::replace(&mut self.current, newer);
        for token in [older.access_token, older.refresh_token] {
            if self.knows(&token) {
                continue;
            }
            if self.replaced.len() == REMEMBERED_PER_USER {
                self.replaced.pop_front();
            }
            self.replaced.push_back(token);
        }
    }
}

/// Every user's token history. `Debug` shows only logins.
#[derive(Default)]
pub struct TokenLedger {
    users: HashMap<Login, History>,
}

impl std::fmt::Debug for TokenLedger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.users.keys()).finish()
    }
}

impl TokenLedger {
    /// The tokens the daemon holds for `login`, if it has held any.
    pub fn current(&self, login: &Login) -> Option<&TokenPair> {
        self.users.get(login).map(|history| &history.current)
    }

    /// Records `newer` as `login`'s tokens; the ones they replace are remembered as
    /// replaced. An empty token (no login yet) is remembered like any other, so an old
    /// copy from before the first login is recognised too.
    pub fn hold(&mut self, login: &Login, newer: TokenPair) {
        match self.users.get_mut(login) {
            Some(history) => history.replace(newer),
            None => {
                self.users.insert(
                    login.clone(),
                    History {
                        current: newer,
                        replaced: VecDeque::new(),
                    },
                );
            }
        }
    }

    /// Remembers `tokens` as replaced ones of `login` without making them current: tokens a
    /// previous run held (read back from the token journal).
    pub fn remember_replaced(&mut self, login: &Login, tokens: &[Secret]) {
        let history = self.users.entry(login.clone()).or_default();
        for token in tokens {
            if !history.knows(token) {
                if history.replaced.len() == REMEMBERED_PER_USER {
                    history.replaced.pop_front();
                }
                history.replaced.push_back(token.clone());
            }
        }
    }

    /// The replaced tokens of `login`, oldest first.
    pub fn replaced(&self, login: &Login) -> Vec<Secret> {
        self.users
            .get(login)
            .map(|history| history.replaced.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The users whose tokens the daemon has replaced (or learned replaced ones of), in
    /// order: the ones a stale copy of the config could set back.
    pub fn users_with_history(&self) -> Vec<Login> {
        let mut logins: Vec<Login> = self
            .users
            .iter()
            .filter(|(_, history)| !history.replaced.is_empty())
            .map(|(login, _)| login.clone())
            .collect();
        logins.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        logins
    }

    /// Every user the ledger holds tokens of, in order.
    pub fn users(&self) -> Vec<Login> {
        let mut logins: Vec<Login> = self.users.keys().cloned().collect();
        logins.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        logins
    }

    /// Judges the tokens an edited config holds for `login`.
    pub fn judge(&self, login: &Login, edited: &TokenPair) -> TokenVerdict {
        let Some(history) = self.users.get(login) else {
            return TokenVerdict::NewUser;
        };
        if history.current.same_tokens(edited) {
            TokenVerdict::Current
        } else if history.knows(&edited.access_token) && history.knows(&edited.refresh_token) {
            TokenVerdict::StaleCopy
        } else {
            TokenVerdict::Pasted
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(access: &str, refresh: &str) -> TokenPair {
        TokenPair {
            access_token: Secret::new(access),
            refresh_token: Secret::new(refresh),
            expires_at_unix: None,
        }
    }

    #[test]
    fn edited_tokens_are_judged_against_what_the_daemon_held() {
        let alice = Login::new("alice");
        let mut ledger = TokenLedger::default();
        ledger.hold(&alice, pair("a1", "r1"));
        ledger.hold(&alice, pair("a2", "r2"));
        ledger.hold(&alice, pair("a3", "r3"));
        let cases = [
            (pair("a3", "r3"), TokenVerdict::Current),
            // An editor's buffer from before one or two refreshes.
            (pair("a2", "r2"), TokenVerdict::StaleCopy),
            (pair("a1", "r1"), TokenVerdict::StaleCopy),
            // Mixed old and new: still nothing new in it.
            (pair("a3", "r1"), TokenVerdict::StaleCopy),
            // Anything the daemon never held is a person's paste.
            (pair("fresh", "r3"), TokenVerdict::Pasted),
            (pair("a2", "fresh"), TokenVerdict::Pasted),
            (pair("fresh", "fresher"), TokenVerdict::Pasted),
            (pair("", ""), TokenVerdict::Pasted),
        ];
        for (edited, expected) in cases {
            assert_eq!(ledger.judge(&alice, &edited), expected, "{edited:?}");
        }
        assert_eq!(
            ledger.judge(&Login::new("bob"), &pair("a1", "r1")),
            TokenVerdict::NewUser
        );
    }

    #[test]
    fn empty_tokens_from_before_the_first_login_are_a_stale_copy() {
        let alice = Login::new("alice");
        let mut ledger = TokenLedger::default();
        ledger.hold(&alice, pair("", ""));
        assert_eq!(ledger.judge(&alice, &pair("", "")), TokenVerdict::Current);
        ledger.hold(&alice, pair("a1", "r1"));
        assert_eq!(ledger.judge(&alice, &pair("", "")), TokenVerdict::StaleCopy);
    }

    #[test]
    fn a_paste_becomes_current_and_the_old_tokens_are_replaced() {
        let alice = Login::new("alice");
        let mut ledger = TokenLedger::default();
        ledger.hold(&alice, pair("a1", "r1"));
        ledger.hold(&alice, pair("pasted", "pasted-r"));
        assert_eq!(
            ledger.judge(&alice, &pair("pasted", "pasted-r")),
            TokenVerdict::Current
        );
        assert_eq!(
            ledger.judge(&alice, &pair("a1", "r1")),
            TokenVerdict::StaleCopy
        );
        assert_eq!(
            ledger.replaced(&alice),
            [Secret::new("a1"), Secret::new("r1")]
        );
    }

    #[test]
    fn only_the_newest_replaced_tokens_are_remembered() {
        let alice = Login::new("alice");
        let mut ledger = TokenLedger::default();
        let n = REMEMBERED_PER_USER;
        for i in 0..n {
            ledger.hold(&alice, pair(&format!("a{i}"), &format!("r{i}")));
        }
        // Each refresh replaces two tokens; the first half of the refreshes are forgotten.
        assert_eq!(ledger.replaced(&alice).len(), n);
        assert_eq!(
            ledger.judge(&alice, &pair("a0", "r0")),
            TokenVerdict::Pasted
        );
        let last = n - 2;
        assert_eq!(
            ledger.judge(&alice, &pair(&format!("a{last}"), &format!("r{last}"))),
            TokenVerdict::StaleCopy
        );
        ledger.remember_replaced(&alice, &[Secret::new("from-last-run")]);
        assert_eq!(
            ledger.judge(&alice, &pair("from-last-run", "from-last-run")),
            TokenVerdict::StaleCopy
        );
        assert!(!format!("{ledger:?}").contains("r1"));
    }
}
