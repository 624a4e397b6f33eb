//! CPU time of one thread of this process, from `/proc/self/task/*/stat`.

use std::time::Duration;

/// Clock ticks per second of `/proc` times (USER_HZ; 100 on every Linux ABI).
const TICKS_PER_SECOND: u64 = 100;

/// User + system CPU time of the thread named `name` (its `comm`), if there is one.
pub fn thread_cpu(name: &str) -> Option<Duration> {
    for entry in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
        if comm.trim_end() != name {
            continue;
        }
        let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
        // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
        let rest = &stat[stat.rfind(')')? + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let utime: u64 = fields.get(11)?.parse().ok()?;
        let stime: u64 = fields.get(12)?.parse().ok()?;
        return Some(Duration::from_millis(
            (utime + stime) * 1000 / TICKS_PER_SECOND,
        ));
    }
    None
}
