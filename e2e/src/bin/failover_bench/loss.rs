//! Part 4: false takeovers under random packet loss, rdg beside keepalived.
//!
//! The three members run at heartbeat interval 20 ms (rdg: timeout 60 ms, two networks, net
//! check on both targets, the VIP 10.0.0.100/24; keepalived: VRRPv3 `advert_int` 0.02, nopreempt,
//! the same VIP) in a lab of their own. Once the group is settled, every member's namespace drops
//! `percent` % of everything it receives (`nft ... input numgen random mod 100 < 20 drop`, the
//! lab's `random_loss`; net-check replies included), for `seconds`. Nothing else happens, so
//! every change of owner is a false takeover. Every 10 ms the loop samples:
//!
//! * rdg: the hot set, i.e. the members whose role file says HS with a running lease;
//! * both tools: the VIP holders, i.e. the member namespaces in which a socket can be bound to
//!   10.0.0.100 ([`AddressHolders`]: one thread per namespace, joined with `setns`, so sampling
//!   spawns no process).
//!
//! `flips` counts changes of the sampled set (hot set for rdg, holder set for keepalived; a
//! takeover through a moment with two holders counts twice), `owner_changes` the times a
//! single owner was followed by a different single owner, `two_hot_ms` / `two_owners_ms` the
//! time (sum of sample periods) with two or more, `none_ms` with none. Log lines are counted as
//! a cross-check: rdg's `hot member lost`, keepalived's `Entering MASTER STATE`.

use crate::group::start_settled;
use crate::keepalived::{self, Instances, VIP};
use rdg_e2e::stats::round1;
use rdg_e2e::{AddressHolders, GroupConfig, Lab};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

/// How long a group may take to settle.
const SETTLE: Duration = Duration::from_secs(20);
/// Sampling period.
const TICK: Duration = Duration::from_millis(10);

/// Runs both tools for `seconds` each at `percent` % loss and heartbeat `interval`.
pub fn run(seconds: Duration, interval: Duration, percent: u8) -> (Value, Vec<String>) {
    let mut errors = Vec::new();
    let timeout = interval * 3;
    let mut doc = json!({
        "loss_percent": percent,
        "interval_ms": interval.as_millis() as u64,
        "timeout_ms": timeout.as_millis() as u64,
        "seconds": seconds.as_secs_f64(),
        "sample_ms": TICK.as_millis() as u64,
    });
    match crate::guarded("loss rdg", || rdg(seconds, interval, percent)) {
        Ok(report) => doc["rdg"] = report,
        Err(e) => errors.push(e),
    }
    let result = crate::guarded("loss keepalived", || {
        crate::check_interrupted()?;
        keepalived::version()?;
        keepalived(seconds, interval, percent)
    });
    match result {
        Ok(report) => doc["keepalived"] = report,
        Err(e) => errors.push(e),
    }
    (doc, errors)
}

/// The group of this part at heartbeat `interval` (timeout three intervals), with the VIP.
pub fn group_config(interval: Duration) -> GroupConfig {
    let mut config = crate::failover::group_config(interval, interval * 3);
    config.vips = vec![format!("{VIP}/24")];
    config
}

/// rdg's members in a lab of their own, settled, then `percent` % loss for `seconds`: the
/// changes of the hot set (`flips`, `owner_changes`, ...) and of the VIP holders.
pub fn rdg(seconds: Duration, interval: Duration, percent: u8) -> Result<Value, String> {
    let lab = Lab::new(group_config(interval));
    let label = format!("loss rdg {} ms", interval.as_millis());
    eprintln!("{label}: lab in {}", lab.dir().display());
    let hot = start_settled(&lab, SETTLE)?;
    crate::sleep(Duration::from_secs(1))?;
    let offsets = log_offsets(&lab, |m| lab.log_file(m).to_path_buf());
    eprintln!("{label}: settled ({hot} hot), {percent} % loss for {seconds:?}");
    for m in lab.member_names() {
        lab.random_loss(&m, percent);
    }
    let o = observe(&lab, seconds, true);
    for m in lab.member_names() {
        lab.clear_loss(&m);
    }
    let o = o?;
    let lost_lines = count_lines(
        &lab,
        &offsets,
        |m| lab.log_file(m).to_path_buf(),
        |l| l.contains("hot member lost"),
    );
    eprintln!(
        "{label}: {} flips of the hot set, {:.0} ms with two hot; VIP: {} flips",
        o.hot.flips, o.hot.two_ms, o.vip.flips
    );
    Ok(json!({
        "flips": o.hot.flips,
        "owner_changes": o.hot.owner_changes,
        "two_hot_ms": round1(o.hot.two_ms),
        "none_hot_ms": round1(o.hot.none_ms),
        "vip": o.vip.to_json(),
        "hot_member_lost_log_lines": lost_lines,
        "samples": o.samples,
        "transitions": o.hot.transitions,
    }))
}

/// keepalived's instances (`advert_int` = `interval`) in a lab of their own, settled, then
/// `percent` % loss for `seconds`: the changes of the VIP holders.
pub fn keepalived(seconds: Duration, interval: Duration, percent: u8) -> Result<Value, String> {
    let lab = Lab::new(group_config(interval));
    let label = format!("loss keepalived {} ms", interval.as_millis());
    eprintln!("{label}: lab in {}", lab.dir().display());
    let mut instances = Instances::start(&lab, interval)?;
    let master = instances.wait_master(&lab, SETTLE)?;
    crate::sleep(Duration::from_secs(1))?;
    let log = |m: &str| lab.dir().join(format!("keepalived-{m}.log"));
    let offsets = log_offsets(&lab, log);
    eprintln!("{label}: {master} master, {percent} % loss for {seconds:?}");
    for m in lab.member_names() {
        lab.random_loss(&m, percent);
    }
    let o = observe(&lab, seconds, false);
    for m in lab.member_names() {
        lab.clear_loss(&m);
    }
    let running = instances.check_running();
    instances.stop();
    let o = o?;
    running?;
    let master_lines = count_lines(&lab, &offsets, log, |l| l.contains("Entering MASTER STATE"));
    eprintln!(
        "{label}: {} flips of the VIP holders, {:.0} ms with two",
        o.vip.flips, o.vip.two_ms
    );
    Ok(json!({
        "flips": o.vip.flips,
        "owner_changes": o.vip.owner_changes,
        "two_owners_ms": round1(o.vip.two_ms),
        "none_ms": round1(o.vip.none_ms),
        "entering_master_log_lines": master_lines,
        "samples": o.samples,
        "transitions": o.vip.transitions,
    }))
}

/// The current length of each member's log.
fn log_offsets(lab: &Lab, log: impl Fn(&str) -> std::path::PathBuf) -> Vec<u64> {
    lab.member_names()
        .iter()
        .map(|m| std::fs::metadata(log(m)).map_or(0, |md| md.len()))
        .collect()
}

/// Lines after `offsets` in the members' logs that match `pred`.
fn count_lines(
    lab: &Lab,
    offsets: &[u64],
    log: impl Fn(&str) -> std::path::PathBuf,
    pred: impl Fn(&str) -> bool,
) -> usize {
    lab.member_names()
        .iter()
        .zip(offsets)
        .map(|(m, &off)| {
            crate::logtime::lines_after(&log(m), off)
                .iter()
                .filter(|l| pred(l))
                .count()
        })
        .sum()
}

/// Changes of one sampled set of members.
#[derive(Default)]
struct Track {
    last: Option<BTreeSet<String>>,
    last_single: Option<String>,
    flips: usize,
    owner_changes: usize,
    two_ms: f64,
    none_ms: f64,
    /// The first 50 changes: (ms since start, the new set).
    transitions: Vec<(f64, Vec<String>)>,
}

impl Track {
    fn sample(&mut self, at_ms: f64, dt_ms: f64, set: BTreeSet<String>) {
        if let Some(last) = &self.last {
            match last.len() {
                0 => self.none_ms += dt_ms,
                1 => {}
                _ => self.two_ms += dt_ms,
            }
            if *last != set {
                self.flips += 1;
                if self.transitions.len() < 50 {
                    self.transitions
                        .push((round1(at_ms), set.iter().cloned().collect()));
                }
            }
        }
        if set.len() == 1 {
            let one = set.iter().next().cloned();
            if self.last_single.is_some() && self.last_single != one {
                self.owner_changes += 1;
            }
            self.last_single = one;
        }
        self.last = Some(set);
    }

    fn to_json(&self) -> Value {
        json!({
            "flips": self.flips,
            "owner_changes": self.owner_changes,
            "two_owners_ms": round1(self.two_ms),
            "none_ms": round1(self.none_ms),
        })
    }
}

/// What [`observe`] saw.
struct Observed {
    hot: Track,
    vip: Track,
    samples: usize,
}

/// Samples the hot set (when `roles`) and the VIP holders every [`TICK`] for `seconds`.
fn observe(lab: &Lab, seconds: Duration, roles: bool) -> Result<Observed, String> {
    let vip: Ipv4Addr = VIP.parse().expect("the VIP is an IPv4 address");
    let holders = AddressHolders::start(lab, vip);
    let mut o = Observed {
        hot: Track::default(),
        vip: Track::default(),
        samples: 0,
    };
    let start = Instant::now();
    let mut next = start;
    let mut prev = start;
    while start.elapsed() < seconds {
        crate::check_interrupted()?;
        let now = Instant::now();
        let at_ms = (now - start).as_secs_f64() * 1e3;
        let dt_ms = (now - prev).as_secs_f64() * 1e3;
        prev = now;
        let held = holders.sample()?;
        if roles {
            o.hot
                .sample(at_ms, dt_ms, lab.hot_members().into_iter().collect());
        }
        o.vip.sample(at_ms, dt_ms, held);
        o.samples += 1;
        next += TICK;
        let left = next.saturating_duration_since(Instant::now());
        std::thread::sleep(left);
    }
    Ok(o)
}
