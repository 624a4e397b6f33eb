//! Part 2: what rdg costs next to keepalived at the same heartbeat rate.
//!
//! For each rate the three members run in the lab's namespaces, first as rdg agents (the
//! failover configuration: two networks, net check on both targets every interval), then as
//! keepalived VRRPv3 instances (one network, no isolation check: what people run today), and
//! finally rdg again without net check (the like-for-like protocol cost). Each tool gets a
//! settle phase, a warm-up (past keepalived's delayed second gratuitous-ARP burst), then a
//! measured window during which nothing talks to the processes:
//!
//! * memory: every second, the sum of `VmRSS` over each member's whole process tree
//!   (keepalived forks a VRRP child; `ip netns exec` execs the tool in place, so the tree root is
//!   the tool itself); the mean over the window is reported;
//! * CPU: `utime + stime` ticks of every process of the tree at the start and end of the window,
//!   over the wall time of the window (100 % = one core busy); the run time of every thread from
//!   `schedstat` (nanoseconds) gives the same figure without the 10 ms tick resolution;
//! * system calls: `syscalls_per_s` counts every system call entered by the tree's threads
//!   during the window (`perf stat -e raw_syscalls:sys_enter -p PIDS`: an in-kernel counter on
//!   the tracepoint, no ptrace and no record per call; `null` with `syscall_counter` saying why
//!   when perf cannot count, e.g. not installed); `read_write_syscalls_per_s` is `syscr +
//!   syscw` of `/proc/PID/io` over the tree, which counts only the read/write families (not
//!   `sendto`, `recvmsg`, polls or timers), as a cross-check that needs nothing.
//!
//! Perf's counters, attached during the window, add a few tens of nanoseconds to each counted
//! call, far below the CPU figures' resolution.
//!
//! `*_per_member` figures are the mean over the three members of a member's whole tree;
//! `*_per_process` divides them by the number of processes in a member's tree. Also reported:
//! PSS (`smaps_rollup`; shared pages such as a forked child's counted in shares, so it adds up
//! across processes), the packets each member's namespace sent per second and per interface
//! (rdg: every member heartbeats on both networks, plus net-check pings; VRRP: only the master
//! advertises, on one network), and whether the group stayed as it was (`stable`: same hot
//! member and epoch, no agent log line during the window; the lines are sampled in
//! `agent_log_sample`).

use crate::group::start_settled;
use crate::keepalived::{self, Instances};
use rdg_e2e::Lab;
use rdg_e2e::procfs;
use rdg_e2e::stats::{round1, round3};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a group may take to settle.
const SETTLE: Duration = Duration::from_secs(20);
/// RSS sampling period within the window.
const SAMPLE: Duration = Duration::from_secs(1);

/// Measures at each of `rates_hz`, `window` per tool after `warmup`.
pub fn run(rates_hz: &[u32], window: Duration, warmup: Duration) -> (Value, Vec<String>) {
    let mut errors = Vec::new();
    let keepalived_version = keepalived::version();
    if let Err(e) = &keepalived_version {
        errors.push(e.clone());
    }
    let mut out = Vec::new();
    for &rate in rates_hz {
        if let Err(e) = crate::check_interrupted() {
            errors.push(e);
            break;
        }
        let interval = Duration::from_millis(1000 / u64::from(rate));
        let timeout = interval * 3;
        let mut entry = json!({
            "rate_hz": rate,
            "interval_ms": interval.as_millis() as u64,
            "timeout_ms": timeout.as_millis() as u64,
        });
        let config = crate::failover::group_config(interval, timeout);
        let ka = keepalived_version.is_ok();
        let result = crate::guarded(&format!("footprint {rate} Hz"), || {
            let lab = Lab::new(config.clone());
            eprintln!("footprint {rate} Hz: lab in {}", lab.dir().display());
            entry["rdg"] = rdg(&lab, window, warmup)?;
            if ka {
                entry["keepalived"] = keepalived(&lab, interval, window, warmup)?;
            }
            Ok(())
        });
        if let Err(e) = result {
            errors.push(e);
        }
        let mut bare = config.clone();
        bare.net_check_targets.clear();
        let result = crate::guarded(&format!("footprint {rate} Hz without net check"), || {
            crate::check_interrupted()?;
            let lab = Lab::new(bare.clone());
            entry["rdg_without_net_check"] = rdg(&lab, window, warmup)?;
            Ok(())
        });
        if let Err(e) = result {
            errors.push(e);
        }
        out.push(entry);
    }
    let doc = json!({
        "window_s": window.as_secs_f64(),
        "warmup_s": warmup.as_secs_f64(),
        "keepalived_version": keepalived_version.ok(),
        "syscall_counter": match perf_counts() {
            Ok(()) => format!("perf stat -e {SYSCALL_EVENT}"),
            Err(e) => format!("none: {e}"),
        },
        "rates": out,
    });
    (doc, errors)
}

/// rdg's three agents in `lab`: started, settled, measured, killed.
fn rdg(lab: &Lab, window: Duration, warmup: Duration) -> Result<Value, String> {
    let label = format!(
        "rdg {} ms{}",
        lab.config().interval.as_millis(),
        if lab.config().net_check_targets.is_empty() {
            " (no net check)"
        } else {
            ""
        }
    );
    let hot = start_settled(lab, SETTLE)?;
    eprintln!("footprint: {label}: settled ({hot} hot), warming up {warmup:?}");
    crate::sleep(warmup)?;
    let roots: Vec<(String, i32)> = lab
        .member_names()
        .into_iter()
        .map(|m| {
            let pid = lab.pid(&m).map(|p| p.as_raw());
            pid.map(|p| (m.clone(), p))
                .ok_or_else(|| format!("{m}'s agent is not running"))
        })
        .collect::<Result<_, _>>()?;
    let epoch = lab.role(&hot).map(|r| r.epoch);
    let offsets: Vec<u64> = lab
        .member_names()
        .iter()
        .map(|m| std::fs::metadata(lab.log_file(m)).map_or(0, |md| md.len()))
        .collect();
    eprintln!("footprint: {label}: measuring for {window:?}");
    let mut report = measure(lab, &roots, window)?;
    // Checked after the window only: asking /status during it would cost the agents CPU.
    // Stable: the same hot member in the same epoch, nothing logged by any agent meanwhile
    // (state changes, lost members and network anomalies are all logged).
    let events: Vec<String> = lab
        .member_names()
        .iter()
        .zip(&offsets)
        .flat_map(|(m, &offset)| {
            crate::logtime::lines_after(lab.log_file(m), offset)
                .into_iter()
                .map(move |l| format!("{m}: {l}"))
        })
        .collect();
    let same_hot = lab.role(&hot).map(|r| r.epoch) == epoch && settled_roles(lab, &hot);
    report["stable"] = json!(same_hot && events.is_empty());
    report["agent_log_lines_during_window"] = json!(events.len());
    report["agent_log_sample"] = json!(events.iter().take(12).collect::<Vec<_>>());
    if !events.is_empty() {
        eprintln!(
            "footprint: {label}: {} agent log lines during the window, first: {}",
            events.len(),
            events[0]
        );
    }
    for m in lab.member_names() {
        lab.kill9(&m);
    }
    eprintln!("footprint: {label}: {}", brief(&report));
    Ok(report)
}

/// keepalived in `lab`'s member namespaces at one advertisement per `interval`.
fn keepalived(
    lab: &Lab,
    interval: Duration,
    window: Duration,
    warmup: Duration,
) -> Result<Value, String> {
    let label = format!("keepalived advert_int {:.2}", interval.as_secs_f64());
    let mut instances = Instances::start(lab, interval)?;
    let master = instances.wait_master(lab, SETTLE)?;
    eprintln!("footprint: {label}: {master} MASTER, warming up {warmup:?}");
    crate::sleep(warmup)?;
    let roots = instances.roots();
    eprintln!("footprint: {label}: measuring for {window:?}");
    let mut report = measure(lab, &roots, window)?;
    instances.check_running()?;
    report["stable"] = json!(keepalived::vip_holders(lab) == [master.clone()]);
    report["master"] = json!(master);
    instances.stop();
    eprintln!("footprint: {label}: {}", brief(&report));
    Ok(report)
}

/// One line for the progress output.
fn brief(report: &Value) -> String {
    format!(
        "{} processes/member, RSS {} kB/member, CPU {} %/member (schedstat {} %), \
         {} system calls/s/member ({} read/write), stable {}",
        report["processes_per_member"],
        report["rss_kb_per_member"],
        report["cpu_percent_per_member"],
        report["cpu_percent_per_member_schedstat"],
        report["syscalls_per_s_per_member"],
        report["read_write_syscalls_per_s_per_member"],
        report["stable"]
    )
}

/// The tracepoint every system call passes on entry.
const SYSCALL_EVENT: &str = "raw_syscalls:sys_enter";

/// `Ok` when `perf stat` can count [`SYSCALL_EVENT`] here, else why not.
fn perf_counts() -> Result<(), String> {
    let out = Command::new("perf")
        .args(["stat", "-x,", "-e", SYSCALL_EVENT, "--", "true"])
        .stdout(Stdio::null())
        .output()
        .map_err(|e| format!("no perf ({e})"))?;
    let text = String::from_utf8_lossy(&out.stderr);
    if out.status.success() && parse_perf_count(&text).is_some() {
        Ok(())
    } else {
        Err(format!(
            "perf stat cannot count {SYSCALL_EVENT}: {}",
            text.trim()
        ))
    }
}

/// The count of [`SYSCALL_EVENT`] in `perf stat -x,` output (`<not counted>`, for tasks that
/// never ran while counted, is 0).
fn parse_perf_count(text: &str) -> Option<u64> {
    let line = text
        .lines()
        .find(|l| l.split(',').nth(2) == Some(SYSCALL_EVENT))?;
    let count = line.split(',').next()?;
    if count == "<not counted>" {
        Some(0)
    } else {
        count.parse().ok()
    }
}

/// `perf stat` counting the system calls of some processes until [`SyscallCount::finish`].
struct SyscallCount {
    child: Child,
    out: std::path::PathBuf,
}

impl SyscallCount {
    /// Starts counting the calls of every thread of `pids`, the result written to `out`.
    fn start(pids: &[i32], out: std::path::PathBuf) -> Result<SyscallCount, String> {
        let list = pids
            .iter()
            .map(i32::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let child = Command::new("perf")
            .args(["stat", "-x,", "-e", SYSCALL_EVENT, "-o"])
            .arg(&out)
            .args(["-p", &list])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start perf: {e}"))?;
        let count = SyscallCount { child, out };
        // Counting has begun once perf holds a counter for every thread of `pids`.
        let threads: usize = pids
            .iter()
            .map(|p| std::fs::read_dir(format!("/proc/{p}/task")).map_or(0, |d| d.count()))
            .sum();
        let perf_fd = format!("/proc/{}/fd", count.child.id());
        let start = Instant::now();
        while open_counters(&perf_fd) < threads {
            if start.elapsed() > Duration::from_secs(5) {
                return Err("perf stat did not attach its counters within 5 s".into());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(count)
    }

    /// Stops counting (SIGINT makes perf print its counts) and returns the count.
    fn finish(mut self) -> Result<u64, String> {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT);
        let _ = self.child.wait();
        let text = std::fs::read_to_string(&self.out).unwrap_or_default();
        parse_perf_count(&text).ok_or_else(|| format!("perf stat printed: {}", text.trim()))
    }
}

/// The perf event descriptors open in the process whose fd directory is `fd_dir`.
fn open_counters(fd_dir: &str) -> usize {
    std::fs::read_dir(fd_dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            std::fs::read_link(e.path())
                .is_ok_and(|t| t.to_string_lossy() == "anon_inode:[perf_event]")
        })
        .count()
}

impl Drop for SyscallCount {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// CPU time and read/write-class system calls of every process in each member's tree.
fn cpu_snapshot(roots: &[(String, i32)]) -> Vec<BTreeMap<i32, (procfs::CpuTime, u64)>> {
    roots
        .iter()
        .map(|(_, root)| {
            procfs::tree(*root)
                .into_iter()
                .map(|pid| {
                    let cpu = procfs::cpu_time(pid);
                    (pid, (cpu, procfs::read_write_syscalls(pid)))
                })
                .collect()
        })
        .collect()
}

/// Measures each member's process tree (rooted at its pid in `roots`) for `window`, and the
/// packets its namespace sends (a check that both tools really run at the rate asked for).
fn measure(lab: &Lab, roots: &[(String, i32)], window: Duration) -> Result<Value, String> {
    let tck = procfs::clock_ticks_per_second() as f64;
    let tx_before: Vec<_> = roots
        .iter()
        .map(|(m, _)| tx_packets(lab.netns(m)))
        .collect();
    // One perf per member, counting its whole tree (None: perf cannot count here).
    let mut counts: Vec<Option<SyscallCount>> = Vec::new();
    let counting = perf_counts().is_ok();
    for (i, (m, root)) in roots.iter().enumerate() {
        let out = lab.dir().join(format!("perf-{m}-{i}.csv"));
        counts.push(if counting {
            Some(SyscallCount::start(&procfs::tree(*root), out)?)
        } else {
            None
        });
    }
    let before = cpu_snapshot(roots);
    let start = Instant::now();
    let mut rss: Vec<Vec<u64>> = vec![Vec::new(); roots.len()];
    let mut pss: Vec<Vec<u64>> = vec![Vec::new(); roots.len()];
    let mut procs: Vec<Vec<usize>> = vec![Vec::new(); roots.len()];
    while start.elapsed() < window {
        for (i, (_, root)) in roots.iter().enumerate() {
            let tree = procfs::tree(*root);
            rss[i].push(tree.iter().map(|&p| procfs::rss_kb(p)).sum());
            pss[i].push(tree.iter().map(|&p| procfs::pss_kb(p)).sum());
            procs[i].push(tree.len());
        }
        let left = window.saturating_sub(start.elapsed());
        crate::sleep(left.min(SAMPLE))?;
    }
    let after = cpu_snapshot(roots);
    let wall = start.elapsed().as_secs_f64();
    let syscalls: Vec<Option<u64>> = counts
        .into_iter()
        .map(|c| c.map(SyscallCount::finish).transpose())
        .collect::<Result<_, _>>()?;
    let tx_after: Vec<_> = roots
        .iter()
        .map(|(m, _)| tx_packets(lab.netns(m)))
        .collect();
    let mut members = Vec::new();
    for (i, (name, root)) in roots.iter().enumerate() {
        if after[i].is_empty() {
            return Err(format!("{name}'s process {root} died during the window"));
        }
        let (mut ticks, mut ns, mut rw_calls) = (0u64, 0u64, 0u64);
        for (pid, (now, now_rw)) in &after[i] {
            let (then, then_rw) = before[i].get(pid).copied().unwrap_or_default();
            ticks += now.ticks.saturating_sub(then.ticks);
            ns += now.ns.saturating_sub(then.ns);
            rw_calls += now_rw.saturating_sub(then_rw);
        }
        let mean = |v: &[u64]| v.iter().sum::<u64>() as f64 / v.len().max(1) as f64;
        let mean_rss = mean(&rss[i]);
        let tx_pps: BTreeMap<&String, f64> = tx_after[i]
            .iter()
            .filter(|(ifname, _)| ifname.as_str() != "lo")
            .map(|(ifname, n)| {
                let then = tx_before[i].get(ifname).copied().unwrap_or(0);
                (ifname, round1(n.saturating_sub(then) as f64 / wall))
            })
            .collect();
        let mean_procs = procs[i].iter().sum::<usize>() as f64 / procs[i].len().max(1) as f64;
        members.push(json!({
            "name": name,
            "processes": mean_procs,
            "commands": after[i].keys().map(|&p| procfs::comm(p)).collect::<Vec<_>>(),
            "rss_kb": round1(mean_rss),
            "rss_kb_max": rss[i].iter().max(),
            "pss_kb": round1(mean(&pss[i])),
            "tx_packets_per_s": tx_pps,
            "cpu_ticks": ticks,
            "cpu_percent": round3(ticks as f64 / tck / wall * 100.0),
            "cpu_percent_schedstat": round3(ns as f64 / 1e9 / wall * 100.0),
            "syscalls_per_s": syscalls[i].map(|n| round1(n as f64 / wall)),
            "read_write_syscalls_per_s": round1(rw_calls as f64 / wall),
        }));
    }
    let mean = |key: &str| {
        members.iter().filter_map(|m| m[key].as_f64()).sum::<f64>() / members.len() as f64
    };
    let procs_per_member = mean("processes");
    let rss_per_member = mean("rss_kb");
    let cpu_per_member = mean("cpu_percent");
    Ok(json!({
        "window_s": round3(wall),
        "processes_per_member": round1(procs_per_member),
        "rss_kb_per_member": round1(rss_per_member),
        "rss_kb_per_process": round1(rss_per_member / procs_per_member),
        "pss_kb_per_member": round1(mean("pss_kb")),
        "cpu_percent_per_member": round3(cpu_per_member),
        "cpu_percent_per_process": round3(cpu_per_member / procs_per_member),
        "cpu_percent_per_member_schedstat": round3(mean("cpu_percent_schedstat")),
        "syscalls_per_s_per_member": syscalls
            .iter()
            .all(Option::is_some)
            .then(|| round1(mean("syscalls_per_s"))),
        "read_write_syscalls_per_s_per_member": round1(mean("read_write_syscalls_per_s")),
        "rss_kb_total": round1(rss_per_member * members.len() as f64),
        "cpu_percent_total": round3(cpu_per_member * members.len() as f64),
        "members": members,
    }))
}

/// True when `hot`'s role file says HS and every other member's says SBS.
fn settled_roles(lab: &Lab, hot: &str) -> bool {
    lab.member_names().iter().all(|m| {
        let want = if m == hot { "HS" } else { "SBS" };
        lab.role_name(m).as_deref() == Some(want)
    })
}

/// Packets sent so far by each interface of the network namespace `netns`
/// (`ip -n NETNS -j -s link show`), by interface name.
fn tx_packets(netns: &str) -> BTreeMap<String, u64> {
    let Ok(out) = Command::new("ip")
        .args(["-n", netns, "-j", "-s", "link", "show"])
        .output()
    else {
        return BTreeMap::new();
    };
    let links: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perf_output() {
        let text = "# started on Mon\n\n1234,,raw_syscalls:sys_enter,9000,100.00,,\n";
        assert_eq!(parse_perf_count(text), Some(1234));
        let idle = "<not counted>,,raw_syscalls:sys_enter,0,100.00,,";
        assert_eq!(parse_perf_count(idle), Some(0));
        assert_eq!(parse_perf_count("nothing"), None);
    }
}
