//! Retrying calls to the API server: exponential back-off with a short cap, so the status is
//! right within seconds of the server coming back, and a log that says the first failure, then
//! at most one line per quiet period, then the recovery, so an outage of hours writes a few
//! dozen lines rather than one per attempt.

use kube::runtime::utils::ResetTimerBackoff;
use kube::runtime::watcher::ExponentialBackoff;
use std::fmt::Display;
use std::time::{Duration, Instant};

/// First retry delay of a watch; doubles per failure up to [`WATCH_BACKOFF_MAX`].
pub const WATCH_BACKOFF_START: Duration = Duration::from_millis(250);
/// Longest retry delay of a watch before jitter (which adds up to as much again): a request
/// or two a second against a down server.
pub const WATCH_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// The back-off of the controller's watches and triggers (kube's default waits up to 30 s plus
/// jitter, which would leave the status stale that long after an API-server restart).
pub fn watch_backoff() -> ResetTimerBackoff<ExponentialBackoff> {
    let builder = backon::ExponentialBuilder::default()
        .with_min_delay(WATCH_BACKOFF_START)
        .with_max_delay(WATCH_BACKOFF_MAX)
        .with_factor(2.0)
        .without_max_times()
        .with_jitter();
    ResetTimerBackoff::new(ExponentialBackoff::from(builder), Duration::from_secs(60))
}

/// Back-off and rate-limited logging of one kind of call.
#[derive(Debug)]
pub struct Retry {
    what: String,
    start: Duration,
    max: Duration,
    next: Duration,
    /// Least time between two failure lines.
    quiet: Duration,
    /// Failures since the last success.
    failures: u64,
    /// Failures not logged since the last line.
    unlogged: u64,
    last_logged: Option<Instant>,
}

/// What to say about a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Say {
    /// Log this failure (the first, or the first after a quiet period), with how many went
    /// unlogged before it.
    Log {
        /// Failures since the last line.
        suppressed: u64,
    },
    /// Say nothing: a line was written less than a quiet period ago.
    Nothing,
}

impl Retry {
    /// Retries of `what` (e.g. `write the member status`): delays from `start` doubling to
    /// `max`, at most one failure line per `quiet`.
    pub fn new(what: impl Into<String>, start: Duration, max: Duration, quiet: Duration) -> Retry {
        Retry {
            what: what.into(),
            start,
            max,
            next: start,
            quiet,
            failures: 0,
            unlogged: 0,
            last_logged: None,
        }
    }

    /// A failure at `now`: the delay before the next attempt, and whether to log it.
    pub fn fail_at(&mut self, now: Instant) -> (Duration, Say) {
        let delay = self.next;
        self.next = (self.next * 2).min(self.max);
        self.failures += 1;
        let due = self
            .last_logged
            .is_none_or(|t| now.saturating_duration_since(t) >= self.quiet);
        let say = if due {
            let suppressed = self.unlogged;
            self.unlogged = 0;
            self.last_logged = Some(now);
            Say::Log { suppressed }
        } else {
            self.unlogged += 1;
            Say::Nothing
        };
        (delay, say)
    }

    /// A failure with `error`: logs it unless quiet, returns the delay before the next attempt.
    pub fn failed(&mut self, error: &dyn Display) -> Duration {
        let (delay, say) = self.fail_at(Instant::now());
        if let Say::Log { suppressed } = say {
            tracing::warn!(
                error = %error,
                retry_in_ms = delay.as_millis() as u64,
                failures = self.failures,
                not_logged = suppressed,
                "cannot {}; retrying (further failures logged at most every {} s)",
                self.what,
                self.quiet.as_secs()
            );
        }
        delay
    }

    /// A success: resets the back-off, and says so when it ends a run of failures. Returns
    /// how many failures it ended.
    pub fn succeeded(&mut self) -> u64 {
        let ended = self.failures;
        if ended > 0 {
            tracing::info!(failures = ended, "can {} again", self.what);
        }
        self.next = self.start;
        self.failures = 0;
        self.unlogged = 0;
        self.last_logged = None;
        ended
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_to_the_cap_and_reset_on_success() {
        let ms = Duration::from_millis;
        let mut r = Retry::new("x", ms(500), ms(2000), Duration::from_secs(30));
        let t = Instant::now();
        let delays: Vec<Duration> = (0..5).map(|_| r.fail_at(t).0).collect();
        assert_eq!(delays, [ms(500), ms(1000), ms(2000), ms(2000), ms(2000)]);
        assert_eq!(r.succeeded(), 5);
        assert_eq!(r.fail_at(t).0, ms(500));
    }

    #[test]
    fn failures_are_logged_once_per_quiet_period_with_the_count_between() {
        let mut r = Retry::new(
            "x",
            Duration::from_millis(500),
            Duration::from_secs(2),
            Duration::from_secs(30),
        );
        let t0 = Instant::now();
        let says: Vec<Say> = (0..40)
            .map(|i| r.fail_at(t0 + Duration::from_secs(i * 2)).1)
            .collect();
        let logged: Vec<(usize, u64)> = says
            .iter()
            .enumerate()
            .filter_map(|(i, s)| match s {
                Say::Log { suppressed } => Some((i, *suppressed)),
                Say::Nothing => None,
            })
            .collect();
        // 80 s of failures every 2 s: lines at 0 s, 30 s and 60 s.
        assert_eq!(logged, [(0, 0), (15, 14), (30, 14)]);
        r.succeeded();
        assert_eq!(
            r.fail_at(t0 + Duration::from_secs(81)).1,
            Say::Log { suppressed: 0 },
            "a new run of failures is logged at once"
        );
    }
}
