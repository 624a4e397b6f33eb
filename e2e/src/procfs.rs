//! What a process costs, read from `/proc` (see proc(5)): its state, parent and CPU ticks
//! (`stat`), resident memory (`status`, `smaps_rollup`), the run time of its threads
//! (`schedstat`), its read/write-class system calls (`io`), threads and open file descriptors.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::time::Duration;

/// The fields of a `/proc/PID/stat` (or `/proc/PID/task/TID/stat`) the benchmarks use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// Field 3: `R`, `S`, `Z`, ...
    pub state: char,
    /// Field 4.
    pub ppid: i32,
    /// Fields 14 and 15: user and system time in clock ticks (of every thread, living and
    /// exited, for a process).
    pub utime: u64,
    pub stime: u64,
}

impl Stat {
    /// Parses the text of a `stat` file. The command name (field 2) is in parentheses and may
    /// itself hold spaces and parentheses, so the fields are counted from its last `)`.
    pub fn parse(text: &str) -> Option<Stat> {
        let rest = text.get(text.rfind(')')? + 1..)?;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // Field n of proc(5) is at index n - 3.
        let field = |n: usize| fields.get(n - 3).copied();
        Some(Stat {
            state: field(3)?.chars().next()?,
            ppid: field(4)?.parse().ok()?,
            utime: field(14)?.parse().ok()?,
            stime: field(15)?.parse().ok()?,
        })
    }

    /// `utime + stime` in clock ticks.
    pub fn ticks(&self) -> u64 {
        self.utime + self.stime
    }
}

/// `pid`'s `/proc/PID/stat`, `None` when it is gone.
pub fn stat(pid: i32) -> Option<Stat> {
    stat_at(&Path::new("/proc").join(pid.to_string()))
}

/// The `stat` file in the `/proc` directory `dir` (of a process or a thread).
fn stat_at(dir: &Path) -> Option<Stat> {
    Stat::parse(&fs::read_to_string(dir.join("stat")).ok()?)
}

/// Clock ticks per second of `utime`/`stime` (`sysconf(_SC_CLK_TCK)`: USER_HZ, 100 on Linux).
pub fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf only reads a constant of the C library.
    let ticks = unsafe { nix::libc::sysconf(nix::libc::_SC_CLK_TCK) };
    u64::try_from(ticks).ok().filter(|&t| t > 0).unwrap_or(100)
}

/// The ids of every process in `/proc` now (empty when it cannot be read).
pub fn pids() -> Vec<i32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()))
        .collect()
}

/// Every living process in the tree rooted at `root` (root first), zombies excluded.
pub fn tree(root: i32) -> Vec<i32> {
    let mut children: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
    for pid in pids() {
        if let Some(s) = stat(pid) {
            children.entry(s.ppid).or_default().push(pid);
        }
    }
    let mut out = Vec::new();
    let mut todo = vec![root];
    while let Some(pid) = todo.pop() {
        if stat(pid).is_some_and(|s| s.state != 'Z') {
            out.push(pid);
        }
        if let Some(kids) = children.get(&pid) {
            todo.extend(kids);
        }
    }
    out
}

/// The value in kB of `key` (e.g. `VmRSS:`) in a `status` or `smaps_rollup` text.
fn kb_field(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(key))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// `key`'s value in kB in `/proc/{who}/{file}`; 0 when it is gone.
fn read_kb(who: &str, file: &str, key: &str) -> u64 {
    fs::read_to_string(format!("/proc/{who}/{file}"))
        .ok()
        .and_then(|text| kb_field(&text, key))
        .unwrap_or(0)
}

/// Resident set size (`VmRSS`) of `pid` in kB; 0 when it is gone.
pub fn rss_kb(pid: i32) -> u64 {
    read_kb(&pid.to_string(), "status", "VmRSS:")
}

/// Threads of `pid` (`Threads:` of `/proc/PID/status`); 0 when it is gone.
pub fn threads(pid: i32) -> u64 {
    // The same parse as a kB field: the first number after the key.
    read_kb(&pid.to_string(), "status", "Threads:")
}

/// Open file descriptors of `pid` (entries of `/proc/PID/fd`); `None` when it is gone.
pub fn open_fds(pid: i32) -> Option<usize> {
    fs::read_dir(format!("/proc/{pid}/fd"))
        .ok()
        .map(|entries| entries.count())
}

/// Resident memory of this process in kB: `(VmRSS, VmHWM)`, now and at its high-water mark.
pub fn own_rss_kb() -> (u64, u64) {
    let text = fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |key| kb_field(&text, key).unwrap_or(0);
    (field("VmRSS:"), field("VmHWM:"))
}

/// Proportional set size of `pid` in kB (`Pss` of `/proc/PID/smaps_rollup`: pages shared with
/// other processes, such as a forked child's, counted in shares; 0 when it is gone).
pub fn pss_kb(pid: i32) -> u64 {
    read_kb(&pid.to_string(), "smaps_rollup", "Pss:")
}

/// CPU time of one process, as read at one moment.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuTime {
    /// `utime + stime` in clock ticks (all threads, living and exited).
    pub ticks: u64,
    /// Sum of the living threads' run time in nanoseconds (`schedstat`).
    pub ns: u64,
}

/// CPU time `pid` has used so far (zero when it is gone).
pub fn cpu_time(pid: i32) -> CpuTime {
    let ticks = stat(pid).map_or(0, |s| s.ticks());
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

/// User + system CPU time of this process's thread named `name` (its `comm`), if there is one.
pub fn own_thread_cpu(name: &str) -> Option<Duration> {
    for entry in fs::read_dir("/proc/self/task").ok()?.flatten() {
        let comm = fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
        if comm.trim_end() == name {
            let ticks = stat_at(&entry.path())?.ticks();
            return Some(Duration::from_secs_f64(
                ticks as f64 / clock_ticks_per_second() as f64,
            ));
        }
    }
    None
}

/// Read- and write-class system calls `pid` has made so far (`syscr + syscw` of
/// `/proc/PID/io`, over all its threads, living and exited; 0 when it is gone). Only the
/// `read`/`write` families (`readv`, `pwrite`, `sendfile`, ...) count: socket calls such as
/// `sendto` and `recvmsg`, polls and timers do not.
pub fn read_write_syscalls(pid: i32) -> u64 {
    let text = fs::read_to_string(format!("/proc/{pid}/io")).unwrap_or_default();
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    field("syscr:") + field("syscw:")
}

/// A process's short name (`/proc/PID/comm`).
pub fn comm(pid: i32) -> String {
    fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_a_tricky_command_name() {
        let text = "42 (a) b (c) S 7 42 42 0 -1 4194560 100 0 0 0 11 22 0 0 20 0 1 0 5 0 0";
        let s = Stat::parse(text).expect("parses");
        assert_eq!(
            s,
            Stat {
                state: 'S',
                ppid: 7,
                utime: 11,
                stime: 22
            }
        );
        assert_eq!(Stat::parse("42 (truncated"), None);
    }

    #[test]
    fn own_figures() {
        let me = std::process::id() as i32;
        assert!(stat(me).is_some_and(|s| s.state != 'Z'));
        assert!(tree(me).contains(&me));
        let (rss, hwm) = own_rss_kb();
        assert!(rss > 0 && hwm >= rss, "VmRSS {rss} kB, VmHWM {hwm} kB");
        assert!(rss_kb(me) > 0);
        assert!(threads(me) >= 1);
        assert!(open_fds(me).is_some_and(|n| n >= 3));
    }
}
