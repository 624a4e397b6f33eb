//! The properties every simulated run must keep, checked after every event, and the failover
//! figures gathered on the way. Each check looks at the simulated *world* (who can reach whom,
//! who is frozen, what was delivered), not at a member's own bookkeeping, so a broken rule in
//! the state machine shows up as a violation here.

use super::scenario::{Action, Scenario, net_check_period};
use super::world::{Host, World};
use crate::election::HotReason;
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// A broken invariant, with everything needed to replay it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// Seed that reproduces it (`rdg simulate --seed N --trace`).
    pub seed: u64,
    /// Virtual time in milliseconds.
    pub at_ms: u64,
    /// Short name of the rule.
    pub rule: &'static str,
    /// What happened.
    pub detail: String,
}

/// Checks invariants and measures failovers during one run.
#[derive(Debug)]
pub struct Checker {
    seed: u64,
    timeout: Duration,
    interval: Duration,
    liveness_bound: Duration,
    lease: Duration,
    has_targets: bool,
    last_disturbance: Duration,
    dual_since: BTreeMap<(usize, usize), (Duration, bool)>,
    lack_since: Vec<Option<(Duration, bool)>>,
    /// Per (hot sender, receiver): when a hot heartbeat was last delivered, and its epoch.
    last_hot_heard: Vec<Vec<Option<(Duration, u64)>>>,
    manual_to: Vec<Option<Duration>>,
    outage: Option<(Duration, usize)>,
    /// Another fault happened during the current outage (the tight bound does not apply).
    outage_disturbed: bool,
    /// heartbeat.timeout + timeouts.election: the failover bound of an undisturbed outage.
    failover_bound: Duration,
    /// Every violation found.
    pub violations: Vec<Violation>,
    /// Takeovers (a standby became hot because the hot member was lost or left).
    pub takeovers: u32,
    /// Takeovers while the lost member's lease still ran because its last heartbeats (the
    /// ones that renewed the lease) were lost on the way: the lease only fences relative to
    /// the last heartbeat a standby *received*.
    pub lease_overlaps_after_loss: u32,
    /// Time from taking the hot member out (crash, freeze, stop, isolation, host death) to
    /// another member being hot.
    pub failover_times: Vec<Duration>,
}

impl Checker {
    /// A checker for scenario `sc`.
    pub fn new(sc: &Scenario) -> Checker {
        let c = &sc.config;
        let t = &c.timeouts;
        let n = c.members.len();
        let interval = c.heartbeat.interval.get();
        let timeout = c.heartbeat.timeout.get();
        // Longest chain of bounded waits a group can need to settle after the last fault.
        let liveness_bound = t.election.get()
            + timeout
            + t.waiting_hot.get()
            + t.to_standby_wait_for_hot.get()
            + t.waiting_ready_hot.get()
            + t.to_standby_wait_ans_conn.get()
            + net_check_period(c) * 3
            + interval * 2;
        Checker {
            seed: sc.seed,
            timeout,
            interval,
            liveness_bound,
            has_targets: !c.net_check.targets.is_empty(),
            last_disturbance: Duration::ZERO,
            dual_since: BTreeMap::new(),
            lack_since: vec![None; n],
            last_hot_heard: vec![vec![None; n]; n],
            manual_to: vec![None; n],
            outage: None,
            outage_disturbed: false,
            failover_bound: timeout + t.election.get(),
            violations: Vec::new(),
            takeovers: 0,
            failover_times: Vec::new(),
            lease_overlaps_after_loss: 0,
            lease: (interval + timeout) / 2,
        }
    }

    fn violate(&mut self, now: Duration, rule: &'static str, detail: String) {
        self.violations.push(Violation {
            seed: self.seed,
            at_ms: now.as_millis() as u64,
            rule,
            detail,
        });
    }

    pub(super) fn on_action(&mut self, now: Duration, a: &Action, hosts: &[Host]) {
        self.last_disturbance = now;
        let takes_out_hot = match *a {
            Action::Crash(m) | Action::Freeze(m) | Action::Stop(m) | Action::Isolate(m) => {
                hosts[m].hot().then_some(m)
            }
            Action::LinkDown(m, n) => {
                let others_down =
                    (0..hosts[m].params.networks).all(|o| o == n || !hosts[m].links[o]);
                (hosts[m].hot() && others_down).then_some(m)
            }
            _ => None,
        };
        if self.outage.is_some() {
            self.outage_disturbed = true;
        }
        if let Some(m) = takes_out_hot {
            if self.outage.is_none() {
                self.outage = Some((now, m));
                self.outage_disturbed = false;
            }
        }
        if let Action::Switchover { to, .. } = *a {
            self.manual_to[to] = Some(now);
        }
    }

    pub(super) fn on_hot_heard(&mut self, now: Duration, from: usize, to: usize, epoch: u64) {
        self.last_hot_heard[from][to] = Some((now, epoch));
    }

    pub(super) fn on_became_hot(
        &mut self,
        now: Duration,
        m: usize,
        reason: HotReason,
        hosts: &[Host],
    ) {
        let name = hosts[m].name.clone();
        if hosts[m].priority == 0 {
            let commanded = self.manual_to[m].is_some_and(|t| now < t + Duration::from_secs(10));
            if reason != HotReason::Handover || !commanded {
                self.violate(
                    now,
                    "priority-zero",
                    format!("{name} (priority 0) became hot by {reason:?} without a command"),
                );
            }
        }
        if self.has_targets && hosts[m].last_round != Some(true) {
            self.violate(
                now,
                "net-check",
                format!("{name} became hot while its last net check failed or was missing"),
            );
        }
        for (i, h) in hosts.iter().enumerate() {
            if i == m {
                continue;
            }
            let gone = h.node.is_none() || h.frozen;
            if let Some(l) = h.lease_until.filter(|&l| gone && l > now) {
                // The renewal that set this lease went out at l - lease. If the new hot member
                // heard it, it must have waited a whole timeout (> lease) since: violation.
                let renewed = l - self.lease;
                if self.last_hot_heard[i][m].is_some_and(|(t, _)| t >= renewed) {
                    self.violate(now, "lease", format!(
                        "{name} became hot while {}'s lease still runs for {} ms (gate would transmit)",
                        h.name, (l - now).as_millis()));
                } else {
                    self.lease_overlaps_after_loss += 1;
                }
            }
            if reason == HotReason::Takeover && h.hot() {
                // Heartbeats of i's *current* term reached m within the timeout on some network.
                let term = h.node.as_ref().map_or(0, |n| n.epoch());
                if let Some((t, _)) = self.last_hot_heard[i][m].filter(|&(_, e)| e == term) {
                    if now + Duration::from_millis(1) < t + self.timeout {
                        self.violate(
                            now,
                            "single-network",
                            format!(
                                "{name} took over although hot {} was heard {} ms ago",
                                h.name,
                                (now - t).as_millis()
                            ),
                        );
                    }
                }
            }
        }
        if reason == HotReason::Takeover {
            self.takeovers += 1;
        }
        if let Some((t0, out)) = self.outage {
            if out != m {
                self.failover_times.push(now - t0);
                // Delivery latency (< 2 ms) and one interval of phase are the only slack.
                let bound = self.failover_bound + self.interval + Duration::from_millis(5);
                if !self.outage_disturbed && now - t0 > bound {
                    self.violate(now, "failover-bound", format!(
                        "{name} became hot {} ms after the hot member {} was taken out (bound {} ms)",
                        (now - t0).as_millis(), hosts[out].name, bound.as_millis()));
                }
            }
            self.outage = None;
        }
    }

    pub(super) fn after_event(
        &mut self,
        now: Duration,
        hosts: &[Host],
        partition: &[u32; 2],
        reaches_targets: &[bool],
    ) {
        let n = hosts.len();
        if self.outage.is_some_and(|(_, m)| hosts[m].hot()) {
            self.outage = None; // back (e.g. a short freeze) and still hot: no failover needed
        }
        let networks = hosts.first().map_or(0, |h| h.params.networks);
        let linked =
            |a: usize, b: usize| (0..networks).any(|k| World::connected(hosts, partition, a, b, k));
        // 1. Two hot members that can hear each other: resolved within timeout + interval.
        let limit = self.timeout + self.interval + Duration::from_millis(5);
        for a in 0..n {
            for b in a + 1..n {
                if hosts[a].hot() && hosts[b].hot() && linked(a, b) {
                    let (since, reported) = *self.dual_since.entry((a, b)).or_insert((now, false));
                    if now > since + limit && !reported {
                        self.dual_since.insert((a, b), (since, true));
                        let detail = format!(
                            "{} and {} both hot and connected for {} ms",
                            hosts[a].name,
                            hosts[b].name,
                            (now - since).as_millis()
                        );
                        self.violate(now, "two-hot", detail);
                    }
                } else {
                    self.dual_since.remove(&(a, b));
                }
            }
        }
        // 2. A member failing its net check is never hot.
        for h in hosts {
            if h.hot() && h.net_fail_streak >= 2 {
                let detail = format!(
                    "{} is hot after {} failed net checks",
                    h.name, h.net_fail_streak
                );
                self.violate(now, "net-check", detail);
            }
        }
        // 3. Liveness: once the faults are over, every eligible member is hot or hears one.
        for e in 0..n {
            let eligible = hosts[e].running() && hosts[e].priority > 0 && reaches_targets[e];
            let served = hosts[e].hot() || (0..n).any(|h| h != e && hosts[h].hot() && linked(e, h));
            if !eligible || served {
                self.lack_since[e] = None;
                continue;
            }
            let (since, reported) = *self.lack_since[e].get_or_insert((now, false));
            let from = since.max(self.last_disturbance);
            if now > from + self.liveness_bound && !reported {
                self.lack_since[e] = Some((since, true));
                let detail = format!(
                    "{} eligible without a reachable hot member for {} ms after the last fault",
                    hosts[e].name,
                    (now - from).as_millis()
                );
                self.violate(now, "liveness", detail);
            }
        }
    }
}
