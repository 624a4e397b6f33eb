//! Retrying calls to the API server: one exponential [`Backoff`] (the controller's watches and
//! failed reconciles and the reporter's writes each have their numbers), and [`Retry`], whose
//! log says the first failure, then at most one line per quiet period, then the recovery, so
//! an outage of hours writes a few dozen lines rather than one per attempt.

use kube::runtime::utils::ResetTimerBackoff;
use kube::runtime::watcher::ExponentialBackoff;
use std::fmt::Display;
use std::time::{Duration, Instant};

/// Exponential back-off: `start` after the first failure, doubling per consecutive failure
/// up to `max` (`start` is at most `max`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Delay after the first failure.
    pub start: Duration,
    /// Longest delay.
    pub max: Duration,
}

impl Backoff {
    /// The controller's watches and triggers: a request or two a second against a down server
    /// (kube's default waits up to 30 s, which would leave the status stale that long after an
    /// API-server restart).
    pub const WATCH: Backoff = Backoff {
        start: Duration::from_millis(250),
        max: Duration::from_secs(1),
    };

    /// A failed reconcile of one group: 1 s, doubling to 256 s.
    pub const RECONCILE: Backoff = Backoff {
        start: Duration::from_secs(1),
        max: Duration::from_secs(256),
    };

    /// The reporter's API calls: short, so the status is right soon after a server returns.
    pub const REPORTER: Backoff = Backoff {
        start: Duration::from_millis(500),
        max: Duration::from_secs(2),
    };

    /// The delay after `failures` consecutive failures (the first waits `start`).
    pub fn delay(&self, failures: u64) -> Duration {
        let doublings = failures.saturating_sub(1).min(31) as u32;
        self.start.saturating_mul(1 << doublings).min(self.max)
    }

    /// This back-off as kube's watch back-off: jitter adds up to as much again to each delay,
    /// and 60 s without a failure start it over.
    pub fn with_jitter(&self) -> ResetTimerBackoff<ExponentialBackoff> {
        let builder = backon::ExponentialBuilder::default()
            .with_min_delay(self.start)
            .with_max_delay(self.max)
            .with_factor(2.0)
            .without_max_times()
            .with_jitter();
        ResetTimerBackoff::new(ExponentialBackoff::from(builder), Duration::from_secs(60))
    }
}

/// The back-off of the controller's watches and triggers: [`Backoff::WATCH`] with jitter.
pub fn watch_backoff() -> ResetTimerBackoff<ExponentialBackoff> {
    Backoff::WATCH.with_jitter()
}

/// Back-off and rate-limited logging of one kind of call.
#[derive(Debug)]
pub struct Retry {
    what: String,
    backoff: Backoff,
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
    /// Retries of `what` (e.g. `write the member status`) with `backoff`, at most one failure
    /// line per `quiet`.
    pub fn new(what: impl Into<String>, backoff: Backoff, quiet: Duration) -> Retry {
        Retry {
            what: what.into(),
            backoff,
            quiet,
            failures: 0,
            unlogged: 0,
            last_logged: None,
        }
    }

    /// A failure at `now`: the delay before the next attempt, and whether to log it.
    pub fn fail_at(&mut self, now: Instant) -> (Duration, Say) {
        self.failures += 1;
        let delay = self.backoff.delay(self.failures);
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
        let backoff = Backoff {
            start: ms(500),
            max: ms(2000),
        };
        let mut r = Retry::new("x", backoff, Duration::from_secs(30));
        let t = Instant::now();
        let delays: Vec<Duration> = (0..5).map(|_| r.fail_at(t).0).collect();
        assert_eq!(delays, [ms(500), ms(1000), ms(2000), ms(2000), ms(2000)]);
        assert_eq!(r.succeeded(), 5);
        assert_eq!(r.fail_at(t).0, ms(500));
    }

    #[test]
    fn a_failed_reconcile_waits_one_second_doubling_to_256() {
        let secs: Vec<u64> = [1, 2, 3, 8, 9, 10, 1000, u64::MAX]
            .iter()
            .map(|&n| Backoff::RECONCILE.delay(n).as_secs())
            .collect();
        assert_eq!(secs, [1, 2, 4, 128, 256, 256, 256, 256]);
    }

    #[test]
    fn failures_are_logged_once_per_quiet_period_with_the_count_between() {
        let mut r = Retry::new("x", Backoff::REPORTER, Duration::from_secs(30));
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
