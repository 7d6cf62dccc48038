//! The chat watch's decisions: every logged-in connection's color timer, and noticing that
//! the machine slept. Pure: the monotonic `now` and the wall-clock time come in as
//! arguments; `chat::watch` is the thread that carries the decisions out.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// The wall clock running ahead of the monotonic clock by more than this between two
/// checks means the machine slept (suspend, VM pause, NAS deep sleep): `Instant` stops
/// while the machine sleeps, the time of day does not. Well above any scheduling delay
/// (both clocks advance through those), well below Twitch's five-minute keepalive.
pub const SLEEP_THRESHOLD: Duration = Duration::from_secs(15);

/// One color timer: fires every `every`, counted from the login or its last firing. An
/// edit of the interval applies at once, counted from the same point, and fires at once if
/// that point plus the new interval is already past.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ColorTimer {
    every: Option<Duration>,
    since: Instant,
}

impl ColorTimer {
    fn next_at(&self) -> Option<Instant> {
        self.every.map(|every| self.since + every)
    }
}

/// The color timers of every logged-in connection, by connection key.
#[derive(Debug, Default)]
pub struct ColorTimers {
    timers: BTreeMap<u64, ColorTimer>,
}

impl ColorTimers {
    /// Starts the timer of a connection that logged in at `now`; `every` may be `None`
    /// (no timer, until an edit turns it on).
    pub fn arm(&mut self, key: u64, every: Option<Duration>, now: Instant) {
        self.timers.insert(key, ColorTimer { every, since: now });
    }

    /// The interval was edited: it applies from the login or the last firing.
    pub fn set_every(&mut self, key: u64, every: Option<Duration>) {
        if let Some(timer) = self.timers.get_mut(&key) {
            timer.every = every;
        }
    }

    /// The connection ended: its timer stops.
    pub fn remove(&mut self, key: u64) {
        self.timers.remove(&key);
    }

    /// The earliest firing, if any timer runs.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.timers.values().filter_map(ColorTimer::next_at).min()
    }

    /// The connections whose timer fires by `now`; each counts from `now` again.
    pub fn due(&mut self, now: Instant) -> Vec<u64> {
        let mut fired = Vec::new();
        for (key, timer) in &mut self.timers {
            if timer.next_at().is_some_and(|at| at <= now) {
                timer.since = now;
                fired.push(*key);
            }
        }
        fired
    }
}

/// Compares the progress of the wall clock with that of the monotonic clock between checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SleepDetector {
    last: Option<(Instant, Duration)>,
}

impl Default for SleepDetector {
    fn default() -> Self {
        SleepDetector::new()
    }
}

impl SleepDetector {
    pub fn new() -> SleepDetector {
        SleepDetector { last: None }
    }

    /// Records a check at `now` (monotonic) and `wall` (time since the epoch). Returns how
    /// long the machine slept since the previous check, when it did. A wall clock set back
    /// is not a sleep.
    pub fn observe(&mut self, now: Instant, wall: Duration) -> Option<Duration> {
        let previous = self.last.replace((now, wall));
        let (then, then_wall) = previous?;
        let awake = now.saturating_duration_since(then);
        let passed = wall.saturating_sub(then_wall);
        let slept = passed.saturating_sub(awake);
        (slept > SLEEP_THRESHOLD).then_some(slept)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(start: Instant, seconds: u64) -> Instant {
        start + Duration::from_secs(seconds)
    }

    #[test]
    fn timers_fire_from_login_and_follow_edits() {
        let start = Instant::now();
        let mut timers = ColorTimers::default();
        assert_eq!(timers.next_deadline(), None);
        timers.arm(1, Some(Duration::from_secs(60)), secs(start, 10));
        timers.arm(2, None, secs(start, 10));
        // (seconds since start, edit of connection 2 before `due`, fired, next deadline)
        type Edit = Option<(u64, Option<u64>)>;
        let cases: Vec<(u64, Edit, Vec<u64>, Option<u64>)> = vec![
            (69, None, vec![], Some(70)),
            (70, None, vec![1], Some(130)),
            // Turned on from off: counted from the login, so due at once.
            (100, Some((2, Some(60))), vec![2], Some(130)),
            // Lengthened: counted from the last firing.
            (110, Some((1, Some(300))), vec![], Some(160)),
            // Shortened below the time already waited: fires at once.
            (120, Some((1, Some(20))), vec![1], Some(140)),
            // Turned off: only connection 2 is left.
            (130, Some((1, None)), vec![], Some(160)),
            (160, None, vec![2], Some(220)),
        ];
        for (at, edit, fired, next) in cases {
            if let Some((key, every)) = edit {
                timers.set_every(key, every.map(Duration::from_secs));
            }
            assert_eq!(timers.due(secs(start, at)), fired, "at {at} s");
            assert_eq!(
                timers.next_deadline(),
                next.map(|next| secs(start, next)),
                "at {at} s"
            );
        }
        timers.remove(2);
        assert_eq!(timers.next_deadline(), None);
        // Edits of an unknown connection change nothing.
        timers.set_every(7, Some(Duration::from_secs(10)));
        assert_eq!(timers.next_deadline(), None);
    }

    #[test]
    fn a_wall_clock_running_ahead_means_the_machine_slept() {
        let start = Instant::now();
        let wall = |seconds: u64| Duration::from_secs(1_700_000_000 + seconds);
        let mut detector = SleepDetector::new();
        // (monotonic seconds, wall seconds, sleep reported)
        let cases: Vec<(u64, u64, Option<u64>)> = vec![
            (0, 0, None),
            (3, 3, None),
            // Scheduling delays move both clocks.
            (30, 30, None),
            // A small step of the wall clock (NTP) is not a sleep.
            (33, 43, None),
            // Ten minutes of suspend between two checks three seconds apart.
            (36, 646, Some(600)),
            (39, 649, None),
            // The wall clock set back.
            (42, 100, None),
            (45, 103, None),
        ];
        for (mono, wall_secs, slept) in cases {
            assert_eq!(
                detector.observe(secs(start, mono), wall(wall_secs)),
                slept.map(Duration::from_secs),
                "at {mono} s"
            );
        }
    }
}
