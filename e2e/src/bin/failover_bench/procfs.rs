//! What a process tree costs, read from `/proc`: resident memory (`VmRSS` of
//! `/proc/PID/status`) and CPU time (`utime + stime` of `/proc/PID/stat`, in clock ticks, and
//! the nanosecond run time of every thread in `/proc/PID/task/TID/schedstat` as a finer
//! cross-check), and packets sent by the interfaces of a network namespace.

use std::collections::BTreeMap;
use std::fs;

/// CPU time of one process, as read at one moment.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuTime {
    /// `utime + stime` in clock ticks (all threads, living and exited).
    pub ticks: u64,
    /// Sum of the living threads' run time in nanoseconds (`schedstat`).
    pub ns: u64,
}

/// `pid`'s parent, from `/proc/PID/stat`.
fn parent(pid: i32) -> Option<i32> {
    stat_fields(pid)?.get(1)?.parse().ok()
}

/// The fields of `/proc/PID/stat` after the command name: index 0 is the state (field 3 of
/// proc(5)), so field `n` of proc(5) is at index `n - 3`.
fn stat_fields(pid: i32) -> Option<Vec<String>> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 1..];
    Some(rest.split_whitespace().map(str::to_string).collect())
}

/// Every living process in the tree rooted at `root` (root first), zombies excluded.
pub fn tree(root: i32) -> Vec<i32> {
    let mut children: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
    if let Ok(entries) = fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<i32>().ok())
            else {
                continue;
            };
            if let Some(ppid) = parent(pid) {
                children.entry(ppid).or_default().push(pid);
            }
        }
    }
    let mut out = Vec::new();
    let mut todo = vec![root];
    while let Some(pid) = todo.pop() {
        let alive = stat_fields(pid).is_some_and(|f| f.first().is_some_and(|s| s != "Z"));
        if alive {
            out.push(pid);
        }
        if let Some(kids) = children.get(&pid) {
            todo.extend(kids);
        }
    }
    out
}

/// `VmRSS` of `pid` in kB (0 when it is gone).
pub fn rss_kb(pid: i32) -> u64 {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

/// Proportional set size of `pid` in kB (`Pss` of `/proc/PID/smaps_rollup`: pages shared with
/// other processes, such as a forked child's, counted in shares; 0 when it is gone).
pub fn pss_kb(pid: i32) -> u64 {
    fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("Pss:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

/// CPU time `pid` has used so far (zero when it is gone).
pub fn cpu_time(pid: i32) -> CpuTime {
    let ticks = stat_fields(pid)
        .map(|f| {
            // utime and stime are fields 14 and 15 of proc(5).
            let field = |n: usize| f.get(n - 3).and_then(|v| v.parse::<u64>().ok());
            field(14).unwrap_or(0) + field(15).unwrap_or(0)
        })
        .unwrap_or(0);
    let mut ns = 0;
    if let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) {
        for task in tasks.flatten() {
            if let Ok(text) = fs::read_to_string(task.path().join("schedstat")) {
                ns += text
                    .split_whitespace()
                    .next()
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0);
            }
        }
    }
    CpuTime { ticks, ns }
}

/// Clock ticks per second of `utime`/`stime` (`getconf CLK_TCK`; USER_HZ, 100 on Linux).
pub fn clock_ticks_per_second() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .filter(|&t: &u64| t > 0)
        .unwrap_or(100)
}

/// A process's short name (`/proc/PID/comm`).
pub fn comm(pid: i32) -> String {
    fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// Packets sent so far by each interface of the network namespace `netns`
/// (`ip -n NETNS -j -s link show`), by interface name.
pub fn tx_packets(netns: &str) -> BTreeMap<String, u64> {
    let Ok(out) = std::process::Command::new("ip")
        .args(["-n", netns, "-j", "-s", "link", "show"])
        .output()
    else {
        return BTreeMap::new();
    };
    let links: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    links
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| {
            let name = l["ifname"].as_str()?.to_string();
            let stats = if l["stats64"].is_object() {
                &l["stats64"]
            } else {
                &l["stats"]
            };
            Some((name, stats["tx"]["packets"].as_u64()?))
        })
        .collect()
}
