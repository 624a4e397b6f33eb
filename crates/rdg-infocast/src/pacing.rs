//! Rate control of one channel: a token bucket filled at `bitRate`, counting UDP payload bytes
//! (carousel header included), so the configured rate is what leaves the socket.
//!
//! The bucket is small — [`BURST`] worth of bytes at the rate, and at least
//! [`MIN_DATAGRAMS`] datagrams — so bursts stay short, yet deep enough that a sender waking
//! only every millisecond or so (timer granularity) still reaches 200 Mbit/s. The bucket is
//! sans-IO: it is given the time, and answers how long to wait; the channel sleeps that long
//! (no busy loop).

use std::time::Duration;

/// Time's worth of bytes the bucket holds at most.
pub const BURST: Duration = Duration::from_millis(5);
/// The bucket holds at least this many datagrams, so slow channels are not starved by timer
/// granularity either.
pub const MIN_DATAGRAMS: usize = 4;

/// A token bucket in bytes.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    /// Bytes per second.
    rate: f64,
    /// Most bytes the bucket holds.
    depth: f64,
    tokens: f64,
    last: Duration,
}

impl TokenBucket {
    /// A bucket for `bits_per_sec` and datagrams of up to `datagram` bytes, full at `now`
    /// (time since any fixed origin).
    pub fn new(bits_per_sec: u64, datagram: usize, now: Duration) -> TokenBucket {
        let rate = bits_per_sec.max(1) as f64 / 8.0;
        let depth = (rate * BURST.as_secs_f64()).max((datagram * MIN_DATAGRAMS) as f64);
        TokenBucket {
            rate,
            depth,
            tokens: depth,
            last: now,
        }
    }

    /// Most bytes the bucket holds.
    pub fn depth(&self) -> usize {
        self.depth as usize
    }

    /// Takes `bytes` tokens at `now` if they are there (None: send now); otherwise takes
    /// nothing and says how long to wait until they will be.
    pub fn take(&mut self, now: Duration, bytes: usize) -> Option<Duration> {
        if let Some(elapsed) = now.checked_sub(self.last) {
            self.tokens = (self.tokens + elapsed.as_secs_f64() * self.rate).min(self.depth);
            self.last = now;
        }
        let need = bytes as f64;
        if self.tokens >= need || (need > self.depth && self.tokens >= self.depth) {
            // A datagram larger than the whole bucket goes out when the bucket is full and
            // drives it negative, so the average rate still holds.
            self.tokens -= need;
            None
        } else {
            let missing = need.min(self.depth) - self.tokens;
            Some(Duration::from_secs_f64(missing / self.rate).max(Duration::from_micros(1)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sends as fast as the bucket allows for `span` of simulated time, waking `tick` late
    /// after every wait (timer granularity), and returns the bytes sent.
    fn simulate(bits: u64, datagram: usize, span: Duration, tick: Duration) -> u64 {
        let mut now = Duration::ZERO;
        let mut b = TokenBucket::new(bits, datagram, now);
        let mut sent = 0u64;
        while now < span {
            match b.take(now, datagram) {
                None => sent += datagram as u64,
                Some(wait) => now += wait + tick,
            }
        }
        sent - b.depth() as u64
    }

    #[test]
    fn holds_the_rate_with_coarse_timers() {
        for (bits, tick_us) in [
            (2_000_000u64, 1000u64),
            (20_000_000, 1000),
            (200_000_000, 1000),
            (200_000_000, 100),
        ] {
            let span = Duration::from_secs(10);
            let sent = simulate(bits, 1436, span, Duration::from_micros(tick_us));
            let measured = sent as f64 * 8.0 / span.as_secs_f64();
            let err = (measured - bits as f64).abs() / bits as f64;
            assert!(
                err < 0.01,
                "{bits} bit/s with {tick_us} us ticks: measured {measured:.0} ({:.2} %)",
                err * 100.0
            );
        }
    }

    #[test]
    fn waits_exactly_for_the_missing_tokens() {
        let mut b = TokenBucket::new(8_000, 100, Duration::ZERO); // 1000 bytes/s, depth 400
        assert_eq!(b.depth(), 400);
        for _ in 0..4 {
            assert_eq!(b.take(Duration::ZERO, 100), None);
        }
        let wait = b.take(Duration::ZERO, 100).unwrap();
        assert!((wait.as_secs_f64() - 0.1).abs() < 1e-9, "{wait:?}");
        assert!(b.take(Duration::from_millis(99), 100).is_some());
        assert_eq!(b.take(Duration::from_millis(100), 100), None);
        // An idle second refills only up to the depth.
        b.take(Duration::from_secs(10), 0);
        for _ in 0..4 {
            assert_eq!(b.take(Duration::from_secs(10), 100), None);
        }
        assert!(b.take(Duration::from_secs(10), 100).is_some());
    }

    #[test]
    fn a_time_going_back_is_ignored() {
        let mut b = TokenBucket::new(8_000, 100, Duration::from_secs(5));
        for _ in 0..4 {
            b.take(Duration::from_secs(5), 100);
        }
        assert!(b.take(Duration::from_secs(1), 100).is_some());
    }
}
