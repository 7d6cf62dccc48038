//! Channels a user must stay unsubscribed from for a while: Twitch revoked the user's chat
//! subscription there with `chat_user_banned` (or `moderator_removed`), and subscribing again
//! at once would only be revoked again, in a loop. Pure: `now` is passed in; the chat thread
//! keeps one `ChannelBans` across its connections, so a config change (which restarts the
//! user's chat) forgets them, and so does a day.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::base::ids::Login;

/// How long a channel stays unsubscribed after a ban revoked its subscription.
pub const BAN_HOLD: Duration = Duration::from_secs(24 * 60 * 60);

/// Banned channels and until when.
#[derive(Debug, Default)]
pub struct ChannelBans {
    until: HashMap<Login, Instant>,
}

impl ChannelBans {
    /// Records a ban of `channel` at `now`; true when it is new (the one worth a log line).
    pub fn ban(&mut self, channel: &Login, now: Instant) -> bool {
        let new = !self.is_banned(channel, now);
        if new {
            self.until.insert(channel.clone(), now + BAN_HOLD);
        }
        new
    }

    /// True while `channel`'s ban holds at `now`.
    pub fn is_banned(&self, channel: &Login, now: Instant) -> bool {
        self.until.get(channel).is_some_and(|until| now < *until)
    }

    /// When the first ban runs out, if any holds.
    pub fn first_end(&self) -> Option<Instant> {
        self.until.values().min().copied()
    }

    /// The channels whose ban ran out by `now`, forgotten from now on.
    pub fn take_ended(&mut self, now: Instant) -> Vec<Login> {
        let ended: Vec<Login> = self
            .until
            .iter()
            .filter(|(_, until)| now >= **until)
            .map(|(channel, _)| channel.clone())
            .collect();
        for channel in &ended {
            self.until.remove(channel);
        }
        ended
    }

    /// `channels` without those banned at `now`; bans that ran out are forgotten.
    pub fn allowed(&mut self, channels: Vec<Login>, now: Instant) -> Vec<Login> {
        self.until.retain(|_, until| now < *until);
        channels
            .into_iter()
            .filter(|channel| !self.until.contains_key(channel))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ban_holds_for_a_day_and_is_new_once() {
        let start = Instant::now();
        let hours = |n: u64| start + Duration::from_secs(n * 3600);
        let strict = Login::new("strict");
        let friendly = Login::new("friendly");
        let both = || vec![strict.clone(), friendly.clone()];
        let mut bans = ChannelBans::default();
        assert_eq!(bans.allowed(both(), start), both());
        // (hours after the start, ban strict then, new ban expected, channels allowed)
        let cases: Vec<(u64, bool, bool, Vec<Login>)> = vec![
            (0, true, true, vec![friendly.clone()]),
            (1, true, false, vec![friendly.clone()]),
            (23, false, false, vec![friendly.clone()]),
            (24, false, false, both()),
            (25, true, true, vec![friendly.clone()]),
            (49, false, false, both()),
        ];
        for (hour, ban, new, allowed) in cases {
            if ban {
                assert_eq!(bans.ban(&strict, hours(hour)), new, "at {hour} h");
            }
            assert_eq!(bans.allowed(both(), hours(hour)), allowed, "at {hour} h");
        }
    }

    #[test]
    fn ended_bans_are_taken_once_and_the_first_end_follows() {
        let start = Instant::now();
        let hours = |n: u64| start + Duration::from_secs(n * 3600);
        let (one, two) = (Login::new("one"), Login::new("two"));
        let mut bans = ChannelBans::default();
        assert_eq!(bans.first_end(), None);
        bans.ban(&one, hours(0));
        bans.ban(&two, hours(2));
        assert_eq!(bans.first_end(), Some(hours(24)));
        assert_eq!(bans.take_ended(hours(23)), vec![]);
        assert_eq!(bans.take_ended(hours(24)), vec![one.clone()]);
        assert_eq!(bans.take_ended(hours(25)), vec![]);
        assert_eq!(bans.first_end(), Some(hours(26)));
        assert_eq!(bans.take_ended(hours(30)), vec![two]);
        assert_eq!(bans.first_end(), None);
    }
}
