//! CLOCK_MONOTONIC, the clock leases are written in: it never jumps with NTP or the operator's
//! `date`, and it keeps running while a process is frozen, so a frozen agent's lease expires.

use nix::time::{ClockId, clock_gettime};
use std::time::Duration;

/// Time since an arbitrary point (boot), from CLOCK_MONOTONIC; the same clock in every process.
pub fn monotonic() -> Duration {
    // CLOCK_MONOTONIC exists on every Linux; clock_gettime can only fail for an invalid clock id.
    let ts = clock_gettime(ClockId::CLOCK_MONOTONIC).expect("CLOCK_MONOTONIC is readable");
    Duration::new(ts.tv_sec() as u64, ts.tv_nsec() as u32)
}

/// [`monotonic`] in whole milliseconds, the unit of `leaseUntilMonotonicMs`.
pub fn monotonic_ms() -> u64 {
    monotonic().as_millis() as u64
}

#[cfg(test)]
mod tests {
    #[test]
    fn never_goes_back() {
        let a = super::monotonic();
        let b = super::monotonic();
        assert!(b >= a);
        assert!(super::monotonic_ms() > 0);
    }
}
