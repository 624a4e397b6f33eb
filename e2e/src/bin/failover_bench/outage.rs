//! Part 3: the outage a client of the VIP sees when its owner dies, rdg beside keepalived.
//!
//! For each heartbeat rate the three members run in a lab with a client namespace (10.0.0.50 on
//! the primary network), first as rdg agents (the failover configuration plus the VIP
//! 10.0.0.100/24 on the primary network), then in a fresh lab as keepalived VRRPv3 instances
//! (`advert_int` = rdg's interval, nopreempt, the same VIP). Per trial, once the group is settled
//! and the client reaches the VIP:
//!
//! * the client runs `ping -D -n -i 0.005 10.0.0.100` (one echo request every 5 ms, each reply
//!   printed with its CLOCK_REALTIME arrival time, line-buffered into a file);
//! * after 300 ms plus a random part of the interval, host death of the VIP owner: its agent (or
//!   keepalived's process group) gets SIGKILL and both of its bridge ports go down; `t_dead` is
//!   read right after the ports are down (until then its kernel still answers pings);
//! * **outage** = first reply after `t_dead` minus the last reply before it: the longest silence
//!   the client saw (replies come every 5 ms otherwise, so the figure is exact to ~5 ms);
//!   `since_kill_ms` is the first reply after the death minus the moment just before SIGKILL;
//! * the probe runs on for 1 s after the first new reply; `gap_after_ms` is the longest gap
//!   among those later replies (a flapping owner would show here), and a thread samples the
//!   client's neighbour entry for the VIP every 10 ms: `macs_after` are the distinct MACs it held
//!   after the first new reply (one, the new owner's, when the takeover settled cleanly).
//!
//! The rdg members run twice: as processes, and as the controller's member pods in podman
//! containers on the same kind of lab (`rdg_e2e::cluster`, reporting to a real API server),
//! where host death is both cables cut and the pod's containers killed, and revival runs the
//! pod again.
//!
//! Restoration as after a host revival: the VIP the dead host kept is removed (a rebooted host
//! has no such address), its role file removed (rdg), its cables plugged back, its agent or
//! keepalived restarted; the next trial waits for a settled group with one VIP holder.

use crate::group::{start_settled, wait_settled};
use crate::keepalived::{self, Instances, VIP};
use rdg_e2e::cluster::Cluster;
use rdg_e2e::stats::{round1, summary};
use rdg_e2e::{Lab, Net, shell_output};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long a group may take to settle.
const SETTLE: Duration = Duration::from_secs(20);
/// How long the client may stay without a reply after a death before the trial fails.
const REPLY_LIMIT: Duration = Duration::from_secs(15);
/// How long the probe runs on after the first reply from the new owner.
const AFTER: Duration = Duration::from_secs(1);

/// One trial's measurements.
#[derive(Debug, Clone)]
pub struct Trial {
    killed: String,
    new_owner: Option<String>,
    outage_ms: f64,
    since_kill_ms: f64,
    gap_after_ms: f64,
    macs_after: Vec<String>,
    new_owner_mac: Option<String>,
}

impl Trial {
    fn to_json(&self) -> Value {
        json!({
            "killed": self.killed,
            "new_owner": self.new_owner,
            "outage_ms": round1(self.outage_ms),
            "since_kill_ms": round1(self.since_kill_ms),
            "gap_after_ms": round1(self.gap_after_ms),
            "macs_after": self.macs_after,
            "new_owner_mac": self.new_owner_mac,
        })
    }
}

/// Measures `trials` host deaths per tool at each of `rates_hz`; keepalived's only when
/// `with_keepalived`, rdg in containers only when `with_containers`.
pub fn run(
    trials: usize,
    rates_hz: &[u32],
    with_keepalived: bool,
    with_containers: bool,
) -> (Value, Vec<String>) {
    let mut errors = Vec::new();
    let keepalived_version = if with_keepalived {
        keepalived::version()
    } else {
        Err("keepalived skipped (--skip-keepalived)".into())
    };
    if with_keepalived && let Err(e) = &keepalived_version {
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
        let mut config = crate::failover::group_config(interval, timeout);
        config.vips = vec![format!("{VIP}/24")];
        let mut entry = json!({
            "rate_hz": rate,
            "interval_ms": interval.as_millis() as u64,
            "timeout_ms": timeout.as_millis() as u64,
            "probe_interval_ms": 5,
        });
        let label = format!("{rate} Hz");
        let (rdg_trials, rdg_failed, rdg_errors) =
            rdg(&config, &label, trials, interval, timeout, None);
        errors.extend(rdg_errors);
        entry["rdg"] = tool_report(&rdg_trials, rdg_failed);

        if with_containers {
            let (c_trials, c_failed, c_errors) =
                containers(&config, rate, trials, interval, timeout);
            errors.extend(c_errors);
            entry["rdg_containers"] = tool_report(&c_trials, c_failed);
        }

        if keepalived_version.is_ok() {
            let (ka_trials, ka_failed, ka_errors) =
                keepalived(&config, &label, trials, interval, timeout, None);
            errors.extend(ka_errors);
            entry["keepalived"] = tool_report(&ka_trials, ka_failed);
            let p99 = |v: &Value| v["p99"].as_f64();
            if let (Some(r), Some(k)) = (p99(&entry["rdg"]), p99(&entry["keepalived"]))
                && k > 0.0
            {
                entry["ratio_p99"] = json!(rdg_e2e::stats::round3(r / k));
            }
        }
        out.push(entry);
    }
    let doc = json!({
        "trials": trials,
        "keepalived_version": keepalived_version.ok(),
        "rates": out,
    });
    (doc, errors)
}

/// `trials` host deaths of rdg's members as processes in a lab of `config` with a client, with
/// `loss` % random loss on every member's input once the group is settled (none when `None`):
/// the trials, how many failed, and the errors. `label` names the setting in progress lines.
pub fn rdg(
    config: &rdg_e2e::GroupConfig,
    label: &str,
    trials: usize,
    interval: Duration,
    timeout: Duration,
    loss: Option<u8>,
) -> (Vec<Trial>, usize, Vec<String>) {
    let (mut done, mut failed, mut errors) = (Vec::new(), 0, Vec::new());
    let result = crate::guarded(&format!("outage rdg {label}"), || {
        let lab = Lab::with_client(config.clone());
        eprintln!("outage rdg {label}: lab in {}", lab.dir().display());
        start_settled(&lab, SETTLE)?;
        add_loss(&lab, loss);
        for i in 0..trials {
            crate::check_interrupted()?;
            let owner = wait_settled(&lab, SETTLE)?;
            wait_vip(&lab, &owner)?;
            let mut kill = |m: &str| lab.host_death(m);
            let mut new_owner = || lab.hot_members().into_iter().next();
            let logs = LogMarks::take(&lab);
            let t = measure(&lab, &owner, interval, &mut kill, &mut new_owner);
            logs.print_if_outlier("rdg", label, i, &t, interval, timeout);
            // (A trial that failed before its kill leaves the owner running as it was.)
            if !lab.is_running(&owner) {
                revive_host(&lab, &owner);
                let _ = std::fs::remove_file(lab.role_file(&owner));
                lab.start(&owner);
            }
            report_trial("rdg", label, i, trials, &t, &mut done, &mut failed)
                .map_err(|e| errors.push(e))
                .ok();
        }
        Ok(())
    });
    if let Err(e) = result {
        errors.push(e);
    }
    (done, failed, errors)
}

/// As [`rdg`], with keepalived's instances (`advert_int` = `interval`) instead of rdg.
pub fn keepalived(
    config: &rdg_e2e::GroupConfig,
    label: &str,
    trials: usize,
    interval: Duration,
    timeout: Duration,
    loss: Option<u8>,
) -> (Vec<Trial>, usize, Vec<String>) {
    let (mut done, mut failed, mut errors) = (Vec::new(), 0, Vec::new());
    let result = crate::guarded(&format!("outage keepalived {label}"), || {
        crate::check_interrupted()?;
        let lab = Lab::with_client(config.clone());
        eprintln!("outage keepalived {label}: lab in {}", lab.dir().display());
        let instances = Mutex::new(Instances::start(&lab, interval)?);
        instances
            .lock()
            .map_err(|_| "poisoned")?
            .wait_master(&lab, SETTLE)?;
        add_loss(&lab, loss);
        for i in 0..trials {
            crate::check_interrupted()?;
            let owner = instances
                .lock()
                .map_err(|_| "poisoned")?
                .wait_master(&lab, SETTLE)?;
            wait_vip(&lab, &owner)?;
            let mut kill = |m: &str| {
                if let Ok(mut ks) = instances.lock() {
                    ks.kill_member(m);
                }
                for net in Net::BOTH {
                    lab.link_down(m, net);
                }
            };
            let mut new_owner = || {
                keepalived::vip_holders(&lab)
                    .into_iter()
                    .find(|m| *m != owner)
            };
            let logs = LogMarks::take(&lab);
            let t = measure(&lab, &owner, interval, &mut kill, &mut new_owner);
            logs.print_if_outlier("keepalived", label, i, &t, interval, timeout);
            revive_host(&lab, &owner);
            instances
                .lock()
                .map_err(|_| "poisoned")?
                .restart_member(&lab, &owner)?;
            report_trial("keepalived", label, i, trials, &t, &mut done, &mut failed)
                .map_err(|e| errors.push(e))
                .ok();
        }
        if let Ok(ks) = instances.into_inner() {
            ks.stop();
        }
        Ok(())
    });
    if let Err(e) = result {
        errors.push(e);
    }
    (done, failed, errors)
}

/// `percent` % random loss on every member's input (the lab's `random_loss`), if any.
fn add_loss(lab: &Lab, percent: Option<u8>) {
    if let Some(percent) = percent {
        for m in lab.member_names() {
            lab.random_loss(&m, percent);
        }
    }
}

/// `trials` host deaths of rdg members running as podman pods: the trials, how many failed,
/// and the errors.
fn containers(
    config: &rdg_e2e::GroupConfig,
    rate: u32,
    trials: usize,
    interval: Duration,
    timeout: Duration,
) -> (Vec<Trial>, usize, Vec<String>) {
    let (mut done, mut failed, mut errors) = (Vec::new(), 0, Vec::new());
    let label = format!("{rate} Hz");
    let result = crate::guarded(&format!("outage rdg-containers {rate} Hz"), || {
        let cluster = Cluster::new("failover_bench", config.clone()).ok_or(
            "rdg in containers: needs root, podman and the API server (see the SKIPPED line)",
        )?;
        let lab = &cluster.kube.lab;
        eprintln!(
            "outage rdg-containers {rate} Hz: lab in {}",
            lab.dir().display()
        );
        for (i, m) in lab.member_names().iter().enumerate() {
            cluster.play(m);
            let want = if i == 0 { "HS" } else { "SBS" };
            let start = Instant::now();
            while lab.role_name(m).as_deref() != Some(want) {
                crate::check_interrupted()?;
                if start.elapsed() > SETTLE {
                    return Err(format!("{m}'s pod not {want} {SETTLE:?} after it started"));
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        for i in 0..trials {
            crate::check_interrupted()?;
            let owner = wait_settled(lab, SETTLE)?;
            wait_vip(lab, &owner)?;
            let mut kill = |m: &str| cluster.node_death(m);
            let mut new_owner = || lab.hot_members().into_iter().next();
            let logs = LogMarks::take(lab);
            let t = measure(lab, &owner, interval, &mut kill, &mut new_owner);
            logs.print_if_outlier("rdg-containers", &label, i, &t, interval, timeout);
            revive_host(lab, &owner);
            cluster.node_back(&owner);
            report_trial(
                "rdg-containers",
                &label,
                i,
                trials,
                &t,
                &mut done,
                &mut failed,
            )
            .map_err(|e| errors.push(e))
            .ok();
        }
        Ok(())
    });
    if let Err(e) = result {
        errors.push(e);
    }
    (done, failed, errors)
}

/// Logs a trial and files it; `Err` (for the error list) when it failed.
fn report_trial(
    tool: &str,
    label: &str,
    i: usize,
    trials: usize,
    t: &Result<Trial, String>,
    done: &mut Vec<Trial>,
    failed: &mut usize,
) -> Result<(), String> {
    match t {
        Ok(t) => {
            eprintln!(
                "outage {tool} {label}: trial {:>2}/{trials}: {} killed, {} owner, outage \
                 {:.1} ms (since kill {:.1} ms), later gap {:.1} ms, MACs {:?}",
                i + 1,
                t.killed,
                t.new_owner.as_deref().unwrap_or("?"),
                t.outage_ms,
                t.since_kill_ms,
                t.gap_after_ms,
                t.macs_after
            );
            done.push(t.clone());
            Ok(())
        }
        Err(e) => {
            *failed += 1;
            eprintln!(
                "outage {tool} {label}: trial {}/{trials} FAILED: {e}",
                i + 1
            );
            Err(format!("outage {tool} {label} trial {}: {e}", i + 1))
        }
    }
}

/// `{"p50", "p99", "max", "n", ...}` of the outages plus the other figures and every trial.
pub fn tool_report(trials: &[Trial], failed: usize) -> Value {
    let outages: Vec<f64> = trials.iter().map(|t| t.outage_ms).collect();
    let mut v = summary(&outages);
    if v.is_null() {
        v = json!({});
    }
    v["failed"] = json!(failed);
    v["since_kill_ms"] = summary(&trials.iter().map(|t| t.since_kill_ms).collect::<Vec<_>>());
    v["gap_after_ms"] = summary(&trials.iter().map(|t| t.gap_after_ms).collect::<Vec<_>>());
    v["trials_with_two_macs_after"] =
        json!(trials.iter().filter(|t| t.macs_after.len() > 1).count());
    v["trials_ending_on_new_owner_mac"] = json!(
            trials
                .iter()
                .filter(|t| t.new_owner_mac.is_some()
                    && t.macs_after.last() == t.new_owner_mac.as_ref())
                .count()
        );
    v["per_trial"] = trials.iter().map(Trial::to_json).collect();
    v
}

/// Waits until `owner` alone holds the VIP and the client reaches it.
fn wait_vip(lab: &Lab, owner: &str) -> Result<(), String> {
    let start = Instant::now();
    loop {
        crate::check_interrupted()?;
        let holders = keepalived::vip_holders(lab);
        if holders == [owner] && client_ping(lab) {
            return Ok(());
        }
        if start.elapsed() > SETTLE {
            return Err(format!(
                "VIP held by {holders:?} (owner {owner}), client reach {}",
                client_ping(lab)
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One ping from the client to the VIP (200 ms to answer).
fn client_ping(lab: &Lab) -> bool {
    Command::new("ip")
        .args(["netns", "exec", lab.client_netns(), "ping", "-n", "-c", "1"])
        .args(["-W", "0.2", VIP])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Host revival up to the tool's restart: the VIP a killed tool left behind removed, cables in.
fn revive_host(lab: &Lab, member: &str) {
    let _ = Command::new("ip")
        .args(["-n", lab.netns(member), "addr", "del", &format!("{VIP}/24")])
        .args(["dev", Net::Primary.interface()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    for net in Net::BOTH {
        lab.link_up(member, net);
    }
}

/// The MAC of `member`'s primary interface.
fn mac(lab: &Lab, member: &str) -> Option<String> {
    let out = shell_output(
        "ip",
        &["-n", lab.netns(member), "-j", "link", "show", "dev"]
            .into_iter()
            .chain([Net::Primary.interface()])
            .collect::<Vec<_>>(),
    );
    let v: Value = serde_json::from_str(&out).ok()?;
    v[0]["address"].as_str().map(str::to_string)
}

/// The client's neighbour entry for the VIP: its MAC, if any.
fn client_neighbour(netns: &str) -> Option<String> {
    let out = Command::new("ip")
        .args(["-n", netns, "-j", "neigh", "show", VIP])
        .output()
        .ok()?;
    let v: Value = serde_json::from_slice(&out.stdout).ok()?;
    v.as_array()?
        .iter()
        .find_map(|n| n["lladdr"].as_str().map(str::to_string))
}

/// CLOCK_REALTIME in seconds (ping's `-D` clock).
fn now_s() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The client's `ping` of the VIP, writing to a file.
struct Probe {
    child: Child,
    out: PathBuf,
}

impl Probe {
    fn start(lab: &Lab, out: PathBuf) -> Result<Probe, String> {
        let file = std::fs::File::create(&out).map_err(|e| format!("{}: {e}", out.display()))?;
        let child = Command::new("ip")
            .args(["netns", "exec", lab.client_netns(), "stdbuf", "-oL"])
            .args(["ping", "-D", "-n", "-i", "0.005", VIP])
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start ping: {e}"))?;
        Ok(Probe { child, out })
    }

    /// Arrival times (CLOCK_REALTIME seconds) of the replies so far.
    fn replies(&self) -> Vec<f64> {
        replies(&self.out)
    }

    fn stop(mut self) -> Vec<f64> {
        self.kill();
        replies(&self.out)
    }

    fn kill(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Reply times in ping `-D` output: `[1700000000.123456] 64 bytes from 10.0.0.100: ...`.
fn replies(path: &Path) -> Vec<f64> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(" bytes from "))
        .filter_map(|l| l.strip_prefix('[')?.split(']').next()?.parse::<f64>().ok())
        .collect()
}

/// One host death of `owner` as seen by the client.
fn measure(
    lab: &Lab,
    owner: &str,
    interval: Duration,
    kill: &mut dyn FnMut(&str),
    new_owner: &mut dyn FnMut() -> Option<String>,
) -> Result<Trial, String> {
    let probe = Probe::start(lab, lab.dir().join("ping.out"))?;
    let stop = AtomicBool::new(false);
    let client = lab.client_netns().to_string();
    std::thread::scope(|scope| {
        let watcher = scope.spawn(|| {
            let mut samples: Vec<(f64, Option<String>)> = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                samples.push((now_s(), client_neighbour(&client)));
                std::thread::sleep(Duration::from_millis(10));
            }
            samples
        });
        let result = (|| {
            std::thread::sleep(
                Duration::from_millis(300) + interval.mul_f64(rand::random::<f64>()),
            );
            if probe.replies().is_empty() {
                return Err("the client got no reply before the kill".to_string());
            }
            let t_kill = now_s();
            kill(owner);
            let t_dead = now_s();
            let start = Instant::now();
            let first = loop {
                crate::check_interrupted()?;
                if let Some(&b) = probe.replies().iter().find(|&&t| t > t_dead) {
                    break b;
                }
                if start.elapsed() > REPLY_LIMIT {
                    return Err(format!(
                        "no reply within {REPLY_LIMIT:?} of {owner}'s death"
                    ));
                }
                std::thread::sleep(Duration::from_millis(5));
            };
            crate::sleep(AFTER)?;
            Ok((t_kill, t_dead, first))
        })();
        stop.store(true, Ordering::SeqCst);
        let samples = watcher.join().unwrap_or_default();
        let (t_kill, t_dead, first) = result?;
        let replies = probe.stop();
        let last_before = replies
            .iter()
            .copied()
            .filter(|&t| t <= t_dead)
            .fold(f64::NAN, f64::max);
        if last_before.is_nan() {
            return Err("no reply before the death in the final output".into());
        }
        let after: Vec<f64> = replies.iter().copied().filter(|&t| t >= first).collect();
        let gap_after = after.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max);
        let mut macs_after: Vec<String> = Vec::new();
        for (_, m) in samples.iter().filter(|(t, _)| *t >= first) {
            if let Some(m) = m
                && macs_after.last() != Some(m)
            {
                macs_after.push(m.clone());
            }
        }
        let new_owner = new_owner();
        let new_owner_mac = new_owner.as_deref().and_then(|m| mac(lab, m));
        Ok(Trial {
            killed: owner.to_string(),
            new_owner,
            outage_ms: (first - last_before) * 1e3,
            since_kill_ms: (first - t_kill) * 1e3,
            gap_after_ms: gap_after * 1e3,
            macs_after,
            new_owner_mac,
        })
    })
}

/// Where the lab's logs (agents' or keepalived's) ended before a trial: an outlier trial prints
/// what they gained, so it can be explained from the benchmark's output alone (the lab is
/// deleted afterwards unless `RDG_E2E_KEEP` is set).
struct LogMarks(Vec<(PathBuf, u64)>);

impl LogMarks {
    fn take(lab: &Lab) -> LogMarks {
        let mut marks: Vec<(PathBuf, u64)> = std::fs::read_dir(lab.dir())
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "log"))
            .map(|p| {
                let len = std::fs::metadata(&p).map_or(0, |m| m.len());
                (p, len)
            })
            .collect();
        marks.sort();
        LogMarks(marks)
    }

    /// Prints the trial's log lines (the last 40 per file) when it failed, when the client saw
    /// two MACs after the takeover, or when the outage exceeded the timeout plus two intervals
    /// and 30 ms (far beyond the usual spread).
    fn print_if_outlier(
        &self,
        tool: &str,
        label: &str,
        i: usize,
        t: &Result<Trial, String>,
        interval: Duration,
        timeout: Duration,
    ) {
        let bound = (timeout + interval * 2).as_secs_f64() * 1e3 + 30.0;
        let why = match t {
            Err(e) => format!("failed: {e}"),
            Ok(t) if t.macs_after.len() > 1 => format!("two MACs after: {:?}", t.macs_after),
            Ok(t) if t.outage_ms > bound => format!("outage {:.1} ms > {bound:.0} ms", t.outage_ms),
            Ok(_) => return,
        };
        eprintln!(
            "outage {tool} {label}: trial {} is an outlier ({why}); its log lines:",
            i + 1
        );
        for (path, offset) in &self.0 {
            let lines = crate::logtime::lines_after(path, *offset);
            let name = path
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into());
            for line in &lines[lines.len().saturating_sub(40)..] {
                eprintln!("  {name}: {line}");
            }
        }
    }
}
