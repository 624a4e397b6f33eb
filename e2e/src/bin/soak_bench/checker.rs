//! The continuous check of the one-owner rule, every `--sample-ms` (default 25 ms) for the whole
//! soak: every member's role file, and which member namespaces hold the VIP.
//!
//! **Hot** means what `rdg gate` acts on: the role file says HS and its lease runs
//! (`leaseUntilMonotonicMs` ahead of CLOCK_MONOTONIC). A **VIP holder** is a member namespace
//! in which the VIP is a local address (a socket can be bound to it), i.e. whose kernel answers
//! ARP for it.
//!
//! Two owners at once are not always wrong. The protocol allows them only where the members
//! cannot hear each other, as the network-namespace tests define it:
//!
//! * a member the fault in progress takes **out of the group** (see [`crate::fault`]: killed,
//!   frozen, both cables cut, partitioned from the others) is not counted: a partitioned member
//!   keeps its side and is legitimately hot; a frozen one keeps a role file saying HS until its
//!   lease runs out, and its kernel keeps the VIP; a killed one leaves the VIP on its interface
//!   until its agent starts again and removes it;
//! * once a fault is healed (the thaw, the restart — once the new agent answers on its status
//!   endpoint —, the cables back, the rules removed) the member counts again, and two owners
//!   may remain for the **bound**: one heartbeat interval plus the timeout, the time the
//!   healed partition's test (`s08`) allows for the loser of the two-hot conflict to step down
//!   (the same bound for giving up the VIP).
//!
//! A **two-hot moment** is a stretch of consecutive samples in which two or more members that
//! count were hot at once, lasting longer than the bound (from its first sample to its last);
//! a **VIP owner conflict** the same for VIP holders. Each is recorded with its start (seconds
//! into the soak), its length, the members and the fault in progress (or the one healed last).
//! Shorter overlaps, and the time with two owners among all members, excused ones included, are
//! reported as totals. `failovers` counts the changes of the single hot member (among all).

use crate::situation::{Situation, Snapshot};
use rdg_e2e::stats::round1;
use rdg_e2e::{AddressHolders, Lab};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Recorded entries per list (counts go on).
const LIST_MAX: usize = 100;

/// Overlaps of owners among the members that count.
#[derive(Default)]
struct Overlaps {
    /// The stretch going on: (first sample, last sample, members, fault at its start).
    current: Option<(Instant, Instant, BTreeSet<String>, String)>,
    /// Stretches longer than the bound.
    violations: Vec<Value>,
    count: usize,
    /// Stretches within the bound, and the longest of them.
    within_bound: usize,
    longest_within_bound: Duration,
    /// Time with two or more owners among all members (excused ones included).
    total_ms: f64,
}

impl Overlaps {
    /// One sample: `counted` owners among the members that count, `all` among all members.
    fn sample(
        &mut self,
        now: Instant,
        dt_ms: f64,
        counted: BTreeSet<String>,
        all: usize,
        situation: &Snapshot,
        ctx: &Context,
    ) {
        if all >= 2 {
            self.total_ms += dt_ms;
        }
        if counted.len() >= 2 {
            match &mut self.current {
                Some((_, last, members, _)) => {
                    *last = now;
                    members.extend(counted);
                }
                None => self.current = Some((now, now, counted, situation.fault.clone())),
            }
        } else {
            self.close(ctx);
        }
    }

    /// Ends the stretch going on, if any, and judges it.
    fn close(&mut self, ctx: &Context) {
        let Some((first, last, members, fault)) = self.current.take() else {
            return;
        };
        let length = last - first;
        if length <= ctx.bound {
            self.within_bound += 1;
            self.longest_within_bound = self.longest_within_bound.max(length);
            return;
        }
        self.count += 1;
        if self.violations.len() < LIST_MAX {
            self.violations.push(json!({
                "at_s": round1((first - ctx.start).as_secs_f64()),
                "duration_ms": round1(length.as_secs_f64() * 1e3),
                "members": members,
                "fault": fault,
            }));
        }
    }

    fn to_json(&self) -> Value {
        json!({
            "count": self.count,
            "list": self.violations,
            "within_bound": self.within_bound,
            "longest_within_bound_ms": round1(self.longest_within_bound.as_secs_f64() * 1e3),
            "total_ms_all_members": round1(self.total_ms),
        })
    }
}

/// What every judgement needs.
struct Context {
    start: Instant,
    bound: Duration,
}

/// Runs the check every `period` until `stop` is set; the report.
pub fn run(
    lab: &Lab,
    vip: Ipv4Addr,
    situation: &Situation,
    period: Duration,
    bound: Duration,
    start: Instant,
    stop: &AtomicBool,
) -> Result<Value, String> {
    let holders = AddressHolders::start(lab, vip);
    let ctx = Context { start, bound };
    let mut hot = Overlaps::default();
    let mut vips = Overlaps::default();
    let mut failovers = Vec::new();
    let mut failover_count = 0usize;
    let mut single: Option<String> = None;
    let mut none_hot_ms = 0.0;
    let mut samples = 0u64;
    let mut max_gap = Duration::ZERO;
    let mut prev = Instant::now();
    let mut next = prev;
    while !stop.load(Ordering::SeqCst) {
        let situation = situation.snapshot();
        let hot_all: BTreeSet<String> = lab.hot_members().into_iter().collect();
        let held = holders.sample()?;
        let now = Instant::now();
        let gap = now - prev;
        max_gap = max_gap.max(gap);
        let dt_ms = gap.as_secs_f64() * 1e3;
        prev = now;
        samples += 1;
        if hot_all.is_empty() {
            none_hot_ms += dt_ms;
        }
        if let [one] = hot_all.iter().collect::<Vec<_>>().as_slice() {
            if single.as_ref().is_some_and(|s| s != *one) {
                failover_count += 1;
                if failovers.len() < LIST_MAX {
                    failovers.push(json!({
                        "at_s": round1((now - start).as_secs_f64()),
                        "from": single,
                        "to": one,
                        "fault": situation.fault,
                    }));
                }
            }
            single = Some((*one).clone());
        }
        let counted = |set: &BTreeSet<String>| -> BTreeSet<String> {
            set.difference(&situation.out).cloned().collect()
        };
        hot.sample(
            now,
            dt_ms,
            counted(&hot_all),
            hot_all.len(),
            &situation,
            &ctx,
        );
        vips.sample(now, dt_ms, counted(&held), held.len(), &situation, &ctx);
        // A late sample (a loaded machine) delays the next ones instead of bunching them.
        next = (next + period).max(Instant::now());
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    hot.close(&ctx);
    vips.close(&ctx);
    Ok(json!({
        "samples": samples,
        "sample_ms": period.as_millis() as u64,
        "max_sample_gap_ms": round1(max_gap.as_secs_f64() * 1e3),
        "bound_ms": bound.as_millis() as u64,
        "two_hot_moments": hot.to_json(),
        "vip_owner_conflicts": vips.to_json(),
        "none_hot_ms": round1(none_hot_ms),
        "failovers": {"count": failover_count, "list": failovers},
    }))
}
