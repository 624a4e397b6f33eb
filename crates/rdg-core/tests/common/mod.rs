//! Helpers shared by the integration tests.

use std::time::Duration;

/// `v` milliseconds: the unit every scenario and timeline here is written in.
pub fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}
