//! The rules every reachable state (and every step into it) must keep: the simulator's
//! safety invariants (`sim::Checker`), under the same names, judged on the modelled world
//! (links, processes, datagrams delivered), never on a member's own bookkeeping.

use super::model::{Broken, Model, World};
use crate::election::HotReason;
use std::time::Duration;

/// What the rules remember of the past (part of the state, so equal states judge alike).
#[derive(Debug, Clone, Hash)]
pub struct History {
    /// Per (hot sender, receiver), row-major: the last datagram of a hot sender delivered.
    hot_heard: Vec<Option<Heard>>,
    /// Per pair (a < b), row-major: since when both are hot and linked, with no fault since.
    dual_since: Vec<Option<Duration>>,
}

impl History {
    /// Nothing remembered, for `n` members.
    pub fn new(n: usize) -> History {
        History {
            hot_heard: vec![None; n * n],
            dual_since: vec![None; n * n],
        }
    }

    /// A fault happened: two hot members get a fresh bound to resolve their conflict.
    pub fn on_fault(&mut self) {
        self.dual_since.iter_mut().for_each(|d| *d = None);
    }

    /// A datagram of hot member `from` reached `to`.
    pub fn on_hot_heard(&mut self, from: usize, to: usize, heard: Heard, n: usize) {
        self.hot_heard[from * n + to] = Some(heard);
    }
}

/// A datagram of a hot member, as delivered: the term (epoch of one process) it was sent in.
#[derive(Debug, Clone, Copy, Hash)]
pub struct Heard {
    /// When it was delivered.
    pub received: Duration,
    /// When it was sent (it may have waited in a frozen receiver's socket).
    pub sent: Duration,
    /// The sender's epoch.
    pub epoch: u64,
    /// The sender's process.
    pub incarnation: u64,
}

/// Checks a member becoming hot (rules `priority-zero`, `net-check`, `lease`,
/// `single-network`); `w` is the world as it is at that moment.
pub fn on_became_hot(model: &Model, w: &World, m: usize, reason: HotReason, out: &mut Vec<Broken>) {
    let n = w.hosts.len();
    let now = w.now;
    let name = &model.params[m].names[m];
    // priority-zero: the model gives no operator commands, so no hand-over to it is asked for.
    if model.params[m].priorities[m] == 0 {
        out.push(Broken {
            rule: "priority-zero",
            detail: format!("{name} (priority 0) became hot by {reason:?} without a command"),
        });
    }
    // net-check: hot only on a passing net check.
    if w.hosts[m].last_round != Some(true) {
        out.push(Broken {
            rule: "net-check",
            detail: format!("{name} became hot while its last net check failed or was missing"),
        });
    }
    for (i, h) in w.hosts.iter().enumerate() {
        if i == m {
            continue;
        }
        let other = &model.params[i].names[i];
        let heard = w.history.hot_heard[i * n + m];
        // lease: a crashed or frozen member's lease still runs and the heartbeat that renewed
        // it (sent at its end minus one lease) reached m.
        let gone = !h.driven();
        if let Some(l) = h.lease_until.filter(|&l| gone && l > now) {
            let renewed = l - model.lease();
            if heard.is_some_and(|x| x.incarnation == h.incarnation && x.sent >= renewed) {
                out.push(Broken {
                    rule: "lease",
                    detail: format!(
                        "{name} became hot while {other}'s lease still runs for {} ms",
                        (l - now).as_millis()
                    ),
                });
            }
        }
        // single-network: a takeover while the hot member's current term was heard within
        // the timeout (so it was silent on at most one network).
        if reason == HotReason::Takeover && h.hot() {
            let term = (h.node.as_ref().map_or(0, |n| n.epoch()), h.incarnation);
            let current = heard.filter(|x| (x.epoch, x.incarnation) == term);
            if let Some(t) = current.map(|x| x.received) {
                if now + Duration::from_millis(1) < t + model.timeout() {
                    out.push(Broken {
                        rule: "single-network",
                        detail: format!(
                            "{name} took over although hot {other} was heard {} ms ago",
                            (now - t).as_millis()
                        ),
                    });
                }
            }
        }
    }
}

/// Checks the state reached after a step (rules `two-hot`, `net-check`) and updates the
/// history they need.
pub fn after_step(model: &Model, w: &mut World, out: &mut Vec<Broken>) {
    let n = w.hosts.len();
    let now = w.now;
    // two-hot: two hot members that are linked resolve the conflict within a timeout and an
    // interval (counted from the later of the moment they met and the last fault).
    let limit = model.timeout() + model.interval();
    for a in 0..n {
        for b in a + 1..n {
            let k = a * n + b;
            if !(w.hosts[a].hot() && w.hosts[b].hot() && w.linked(a, b)) {
                w.history.dual_since[k] = None;
                continue;
            }
            let since = *w.history.dual_since[k].get_or_insert(now);
            if now > since + limit {
                out.push(Broken {
                    rule: "two-hot",
                    detail: format!(
                        "{} and {} both hot and linked for {} ms",
                        model.params[a].names[a],
                        model.params[b].names[b],
                        (now - since).as_millis()
                    ),
                });
            }
        }
    }
    // net-check: a member whose last two rounds failed is not hot.
    for (m, h) in w.hosts.iter().enumerate() {
        if h.hot() && h.net_fail_streak >= 2 {
            out.push(Broken {
                rule: "net-check",
                detail: format!(
                    "{} is hot after {} failed net checks",
                    model.params[m].names[m], h.net_fail_streak
                ),
            });
        }
    }
}
