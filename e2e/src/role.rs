//! The role file (the design's contract) as the tests read it, and the clock its lease is in.

use serde::Deserialize;
use std::path::Path;

/// What a member's role file says: `{"member", "role", "epoch", "leaseUntilMonotonicMs"}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleRecord {
    /// The member that wrote it.
    pub member: String,
    /// `"HS"`, `"SBS"`, `"CS"`, `"SS"`, `"FS"` or `"TS"`.
    pub role: String,
    /// The epoch of the hot term it knows.
    pub epoch: u64,
    /// End of the hot lease in CLOCK_MONOTONIC milliseconds (0 when not hot).
    pub lease_until_monotonic_ms: u64,
}

impl RoleRecord {
    /// Reads and parses a role file; `None` when it is missing or not a role record.
    pub fn read(path: &Path) -> Option<RoleRecord> {
        let text = std::fs::read_to_string(path).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// True when the file says HS.
    pub fn says_hot(&self) -> bool {
        self.role == "HS"
    }

    /// True when the file says HS and the lease has not run out at `now_ms` (monotonic): the
    /// member may act as the hot one (`rdg gate` would run its command).
    pub fn hot_with_lease(&self, now_ms: u64) -> bool {
        self.says_hot() && now_ms < self.lease_until_monotonic_ms
    }
}

/// CLOCK_MONOTONIC in milliseconds: the clock of `leaseUntilMonotonicMs` (the same in every
/// network namespace) and of Python's `time.monotonic()`.
pub fn monotonic_ms() -> u64 {
    let ts = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .expect("CLOCK_MONOTONIC is readable");
    let ms = i128::from(ts.tv_sec()) * 1000 + i128::from(ts.tv_nsec()) / 1_000_000;
    u64::try_from(ms).unwrap_or(0)
}
