//! The modelled world: the real [`Node`]s of a group, the datagrams in flight between them,
//! their links, processes and net checks, and a virtual clock; the actions that move it on,
//! and one step of each (the members' effects are carried out as the simulator does).

use super::invariants::{self, History};
use crate::Dur;
use crate::State as Role;
use crate::config::{GroupConfig, Heartbeat, Member as MemberConfig, NetCheck, Network, Timeouts};
use crate::election::{Destination, Event, Input, Node, Output, Params};
use crate::wire::{Message, ReplayGuard};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

/// Networks of the modelled group.
pub const NETWORKS: usize = 2;

/// One datagram on its way from a member to another on one network.
#[derive(Debug, Clone, Hash)]
pub struct Datagram {
    /// Sender.
    pub from: usize,
    /// Receiver.
    pub to: usize,
    /// Network index.
    pub network: u8,
    /// When it was sent.
    pub sent: Duration,
    /// What was sent.
    pub message: Message,
}

/// One member's host: its process (if running), links and net-check result.
#[derive(Debug, Clone, Hash)]
pub struct Host {
    /// The running process; None after a crash.
    pub node: Option<Node>,
    /// Processes started so far (the incarnation of the next one derives from it).
    pub starts: u64,
    /// Incarnation of the current (or, after a crash, the last) process.
    pub incarnation: u64,
    /// SIGSTOPped: not driven; datagrams for it wait in its socket.
    pub frozen: bool,
    /// Datagrams that arrived while frozen, read on resume.
    pub queued: Vec<Datagram>,
    /// The agent's replay guard (duplicates and reordered datagrams are dropped here).
    pub guard: ReplayGuard,
    /// Link up, per network.
    pub links: [bool; NETWORKS],
    /// The net-check targets answer this member.
    pub reaches: bool,
    /// When the next net-check round ends.
    pub next_net_check: Duration,
    /// The net check is at its urgent pace.
    pub net_urgent: bool,
    /// Consecutive failed rounds delivered to the process.
    pub net_fail_streak: u32,
    /// Result of the last round delivered.
    pub last_round: Option<bool>,
    /// Lease of the last role written (what a gate on this host sees; survives a crash).
    pub lease_until: Option<Duration>,
}

impl Host {
    /// Running and not frozen: the member acts and is acted upon.
    pub fn driven(&self) -> bool {
        self.node.is_some() && !self.frozen
    }

    /// Driven and hot.
    pub fn hot(&self) -> bool {
        self.driven() && self.node.as_ref().is_some_and(|n| n.state() == Role::HS)
    }
}

/// One state of the model.
#[derive(Debug, Clone, Hash)]
pub struct World {
    /// Virtual time.
    pub now: Duration,
    /// The members, in configuration order.
    pub hosts: Vec<Host>,
    /// Datagrams sent and not yet delivered or lost, in sending order.
    pub in_flight: Vec<Datagram>,
    /// What the invariants need to remember of the past.
    pub history: History,
}

impl World {
    /// Members `a` and `b` can exchange datagrams on some network.
    pub fn linked(&self, a: usize, b: usize) -> bool {
        (0..NETWORKS).any(|n| self.hosts[a].links[n] && self.hosts[b].links[n])
    }
}

/// A move of the model. Faults (marked) spend the path's fault budget; the others are free.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Action {
    /// Deliver every datagram in flight, in sending order (new ones wait for the next delivery).
    Deliver,
    /// Nothing in flight: advance the clock to the next member deadline or net-check round.
    Tick,
    /// Fault: deliver the in-flight datagram at this position ahead of the earlier ones.
    Reorder(usize),
    /// Fault: lose the in-flight datagram at this position.
    Drop(usize),
    /// Fault: the in-flight datagram at this position arrives twice.
    Duplicate(usize),
    /// Fault: member's link on a network goes down.
    LinkDown(usize, usize),
    /// The link comes back.
    LinkUp(usize, usize),
    /// Fault: kill -9 (the role file and its lease stay).
    Crash(usize),
    /// A crashed member starts again as a new process (new incarnation).
    Restart(usize),
    /// Fault: SIGSTOP.
    Freeze(usize),
    /// SIGCONT: the member runs again with a late clock and reads its socket.
    Resume(usize),
    /// Fault: the member's net-check targets stop answering.
    NetCheckFails(usize),
    /// The targets answer again.
    NetCheckPasses(usize),
}

impl Action {
    /// Whether the action spends the fault budget.
    pub fn is_fault(self) -> bool {
        matches!(
            self,
            Action::Reorder(_)
                | Action::Drop(_)
                | Action::Duplicate(_)
                | Action::LinkDown(..)
                | Action::Crash(_)
                | Action::Freeze(_)
                | Action::NetCheckFails(_)
        )
    }
}

/// One line of a counterexample: an action or an event of a member, at a virtual time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TraceLine {
    /// Virtual time in milliseconds.
    pub at_ms: u64,
    /// Member concerned ("" for an action of the world).
    pub member: String,
    /// What happened, in words.
    pub text: String,
}

/// A broken rule found in one step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    /// Short name of the rule (as in the simulator).
    pub rule: &'static str,
    /// What happened.
    pub detail: String,
}

/// The group being checked: configuration, the members' parameters and the bounds.
#[derive(Debug, Clone)]
pub struct Model {
    /// The group configuration the members run with.
    pub config: GroupConfig,
    /// Each member's parameters.
    pub params: Vec<Params>,
    /// Faults allowed on one path.
    pub max_faults: u32,
    /// A rule every member breaks (model checker self-test).
    #[cfg(feature = "fault-injection")]
    pub fault: Option<crate::election::Fault>,
}

/// Priorities of the modelled members: a preferred member, a standby, and (with three) a
/// member that must never take the role by itself.
const PRIORITIES: [u16; 3] = [100, 50, 0];

/// The configuration of a modelled group of `members` (2 or 3) on two networks: the
/// simulator's shape with fixed timings (interval 100 ms, timeout 300 ms, one net-check
/// target), every one a multiple of 100 ms so that all deadlines fall on a coarse grid.
pub fn config(members: usize) -> GroupConfig {
    let ms = Dur::from_millis;
    let interval = 100;
    let timeout = 300;
    let election = 2 * timeout;
    GroupConfig {
        name: "model".into(),
        heartbeat: Heartbeat {
            interval: ms(interval),
            timeout: ms(timeout),
            ..Heartbeat::default()
        },
        networks: (0..NETWORKS)
            .map(|n| Network {
                name: format!("net{n}"),
                multicast: Some(IpAddr::V4(Ipv4Addr::new(224, 0, 0, 35 + n as u8))),
            })
            .collect(),
        members: (0..members)
            .map(|m| MemberConfig {
                name: format!("m{m}"),
                priority: PRIORITIES[m],
                addresses: (0..NETWORKS)
                    .map(|n| (format!("net{n}"), addr(m, n as u8).ip()))
                    .collect::<BTreeMap<_, _>>(),
            })
            .collect(),
        preempt: false,
        preempt_delay: Dur::default(),
        timeouts: Timeouts {
            election: ms(election),
            waiting_hot: ms(election + timeout + 2 * interval),
            waiting_ready_hot: ms(4 * interval),
            starting_to_standby: ms(timeout),
            starting_to_hot: ms(timeout),
            to_standby_wait_for_hot: ms(4 * interval),
            to_standby_wait_ans_conn: ms(timeout),
        },
        net_check: NetCheck {
            targets: vec![IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))],
            timeout: ms(interval),
        },
        ..GroupConfig::default_for_sim()
    }
}

fn addr(m: usize, n: u8) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, n, 0, 11 + m as u8)), 8035)
}

/// Where the effects of one step go: the world, the broken rules, and the trace if kept.
struct Step<'a> {
    broken: Vec<Broken>,
    log: Option<&'a mut Vec<TraceLine>>,
}

impl Model {
    /// A model of `members` members with at most `max_faults` faults per path.
    pub fn new(members: usize, max_faults: u32) -> Model {
        let config = config(members);
        let params = config
            .members
            .iter()
            .map(|m| {
                Params::from_config(&config, &m.name)
                    .unwrap_or_else(|e| panic!("model checker built an invalid config: {e}"))
            })
            .collect();
        Model {
            config,
            params,
            max_faults,
            #[cfg(feature = "fault-injection")]
            fault: None,
        }
    }

    fn members(&self) -> usize {
        self.params.len()
    }

    /// Heartbeat interval.
    pub fn interval(&self) -> Duration {
        self.config.heartbeat.interval.get()
    }

    /// Heartbeat timeout.
    pub fn timeout(&self) -> Duration {
        self.config.heartbeat.timeout.get()
    }

    /// How long a hot member's lease lasts after each renewal.
    pub fn lease(&self) -> Duration {
        self.params[0].lease()
    }

    fn name(&self, m: usize) -> &str {
        &self.params[m].names[m]
    }

    /// The action in words, with member and network names.
    pub fn describe(&self, a: Action, w: &World) -> String {
        let datagram = |k: usize| {
            w.in_flight.get(k).map_or_else(
                || "?".to_string(),
                |d| {
                    format!(
                        "{} {} -> {} on net{} (seq {})",
                        kind(&d.message),
                        self.name(d.from),
                        self.name(d.to),
                        d.network,
                        d.message.sequence
                    )
                },
            )
        };
        match a {
            Action::Deliver => format!("deliver {} datagram(s)", w.in_flight.len()),
            Action::Tick => "time passes".into(),
            Action::Reorder(k) => format!("reorder: deliver first {}", datagram(k)),
            Action::Drop(k) => format!("lose {}", datagram(k)),
            Action::Duplicate(k) => format!("duplicate {}", datagram(k)),
            Action::LinkDown(m, n) => format!("link of {} on net{n} down", self.name(m)),
            Action::LinkUp(m, n) => format!("link of {} on net{n} up", self.name(m)),
            Action::Crash(m) => format!("kill -9 {}", self.name(m)),
            Action::Restart(m) => format!("restart {}", self.name(m)),
            Action::Freeze(m) => format!("SIGSTOP {}", self.name(m)),
            Action::Resume(m) => format!("SIGCONT {}", self.name(m)),
            Action::NetCheckFails(m) => {
                format!("{} cannot reach the net-check targets", self.name(m))
            }
            Action::NetCheckPasses(m) => {
                format!("{} reaches the net-check targets again", self.name(m))
            }
        }
    }

    /// Every member started at time 0 (cold start of the whole group).
    pub fn cold_start(&self) -> World {
        let n = self.members();
        let mut w = World {
            now: Duration::ZERO,
            hosts: (0..n)
                .map(|_| Host {
                    node: None,
                    starts: 0,
                    incarnation: 0,
                    frozen: false,
                    queued: Vec::new(),
                    guard: ReplayGuard::new(self.timeout()),
                    links: [true; NETWORKS],
                    reaches: true,
                    next_net_check: Duration::ZERO,
                    net_urgent: false,
                    net_fail_streak: 0,
                    last_round: None,
                    lease_until: None,
                })
                .collect(),
            in_flight: Vec::new(),
            history: History::new(n),
        };
        let mut step = Step {
            broken: Vec::new(),
            log: None,
        };
        for m in 0..n {
            self.start(&mut w, m, &mut step);
        }
        w
    }

    /// The group after a fault-free cold start has settled (one member hot, the others
    /// standing by, nothing in flight), with the actions that led there.
    pub fn settled(&self) -> (World, Vec<Action>) {
        let mut w = self.cold_start();
        let mut path = Vec::new();
        for _ in 0..10_000 {
            let calm = w.in_flight.is_empty()
                && w.hosts.iter().filter(|h| h.hot()).count() == 1
                && w.hosts.iter().all(|h| {
                    h.node.as_ref().is_some_and(|n| {
                        matches!(n.state(), Role::HS | Role::SBS)
                            && n.temporal() == crate::TemporalState::None
                    })
                });
            if calm {
                return (w, path);
            }
            let a = if w.in_flight.is_empty() {
                Action::Tick
            } else {
                Action::Deliver
            };
            let (next, broken) = self.step(&w, a, None);
            assert!(broken.is_empty(), "a fault-free start broke {broken:?}");
            w = next;
            path.push(a);
        }
        panic!("the modelled group did not settle after a fault-free start")
    }

    /// The actions possible in `w` after `spent` faults on the way. Datagrams in flight are
    /// delivered (or lost, duplicated, reordered) before anything else happens: they take less
    /// time than any deadline. Reordering is offered only between datagrams to one receiver
    /// (deliveries to different members commute).
    pub fn actions(&self, w: &World, spent: u32) -> Vec<Action> {
        let mut v = Vec::new();
        let faults = spent < self.max_faults;
        if !w.in_flight.is_empty() {
            v.push(Action::Deliver);
            if faults {
                for (k, d) in w.in_flight.iter().enumerate() {
                    if w.in_flight[..k].iter().any(|e| e.to == d.to) {
                        v.push(Action::Reorder(k));
                    }
                    v.push(Action::Drop(k));
                    v.push(Action::Duplicate(k));
                }
            }
            return v;
        }
        v.push(Action::Tick);
        for (m, h) in w.hosts.iter().enumerate() {
            for n in 0..NETWORKS {
                if !h.links[n] {
                    v.push(Action::LinkUp(m, n));
                } else if faults {
                    v.push(Action::LinkDown(m, n));
                }
            }
            match (&h.node, h.frozen) {
                (None, _) => v.push(Action::Restart(m)),
                (Some(_), true) => v.push(Action::Resume(m)),
                (Some(_), false) if faults => {
                    v.push(Action::Crash(m));
                    v.push(Action::Freeze(m));
                }
                _ => {}
            }
            if !h.reaches {
                v.push(Action::NetCheckPasses(m));
            } else if faults {
                v.push(Action::NetCheckFails(m));
            }
        }
        v
    }

    /// The world after action `a`, and the rules broken on the way (`log`: the trace lines).
    pub fn step(
        &self,
        w: &World,
        a: Action,
        log: Option<&mut Vec<TraceLine>>,
    ) -> (World, Vec<Broken>) {
        let mut w = w.clone();
        let mut step = Step {
            broken: Vec::new(),
            log,
        };
        if a.is_fault() {
            w.history.on_fault();
        }
        if !matches!(a, Action::Deliver | Action::Tick) {
            let text = self.describe(a, &w);
            self.note(&mut step, w.now, "", text);
        }
        match a {
            Action::Deliver => {
                for d in std::mem::take(&mut w.in_flight) {
                    self.deliver(&mut w, d, &mut step);
                }
            }
            Action::Tick => self.tick(&mut w, &mut step),
            Action::Reorder(k) => {
                let d = w.in_flight.remove(k);
                self.deliver(&mut w, d, &mut step);
            }
            Action::Drop(k) => {
                w.in_flight.remove(k);
            }
            Action::Duplicate(k) => {
                let d = w.in_flight[k].clone();
                w.in_flight.insert(k + 1, d);
            }
            Action::LinkDown(m, n) => w.hosts[m].links[n] = false,
            Action::LinkUp(m, n) => w.hosts[m].links[n] = true,
            Action::Crash(m) => {
                let h = &mut w.hosts[m];
                h.node = None;
                h.frozen = false;
                h.queued.clear();
                w.in_flight.retain(|d| d.to != m);
            }
            Action::Restart(m) => self.start(&mut w, m, &mut step),
            Action::Freeze(m) => w.hosts[m].frozen = true,
            Action::Resume(m) => {
                w.hosts[m].frozen = false;
                self.input(&mut w, m, Input::Tick, &mut step);
                for d in std::mem::take(&mut w.hosts[m].queued) {
                    self.deliver(&mut w, d, &mut step);
                }
            }
            Action::NetCheckFails(m) => w.hosts[m].reaches = false,
            Action::NetCheckPasses(m) => w.hosts[m].reaches = true,
        }
        invariants::after_step(self, &mut w, &mut step.broken);
        (w, step.broken)
    }

    fn note(&self, step: &mut Step<'_>, at: Duration, member: &str, text: String) {
        if let Some(log) = step.log.as_mut() {
            log.push(TraceLine {
                at_ms: at.as_millis() as u64,
                member: member.to_string(),
                text,
            });
        }
    }

    fn start(&self, w: &mut World, m: usize, step: &mut Step<'_>) {
        let now = w.now;
        let h = &mut w.hosts[m];
        h.starts += 1;
        let incarnation = (h.starts << 32) | m as u64;
        h.incarnation = incarnation;
        #[allow(unused_mut)]
        let mut node = Node::new(self.params[m].clone(), incarnation, now);
        #[cfg(feature = "fault-injection")]
        if let Some(f) = self.fault {
            node.inject_fault(f);
        }
        h.node = Some(node);
        h.frozen = false;
        h.queued.clear();
        h.guard = ReplayGuard::new(self.timeout());
        h.net_fail_streak = 0;
        h.last_round = None;
        h.net_urgent = false;
        h.next_net_check = now + self.config.net_check_period();
        self.input(w, m, Input::Tick, step);
    }

    /// The next time something is due: a member's deadline or the end of a net-check round.
    fn wake_time(&self, w: &World) -> Duration {
        w.hosts
            .iter()
            .filter(|h| h.driven())
            .flat_map(|h| {
                let deadline = h.node.as_ref().and_then(Node::next_deadline);
                deadline.into_iter().chain([h.next_net_check])
            })
            .min()
            .unwrap_or(w.now + self.interval())
            .max(w.now)
    }

    fn tick(&self, w: &mut World, step: &mut Step<'_>) {
        w.now = self.wake_time(w);
        let now = w.now;
        for m in 0..w.hosts.len() {
            if !w.hosts[m].driven() {
                continue;
            }
            if w.hosts[m].next_net_check <= now {
                let h = &mut w.hosts[m];
                let ok = h.reaches;
                h.last_round = Some(ok);
                h.net_fail_streak = if ok { 0 } else { h.net_fail_streak + 1 };
                h.next_net_check = now
                    + if h.net_urgent {
                        self.config.net_check_urgent_period()
                    } else {
                        self.config.net_check_period()
                    };
                self.input(w, m, Input::NetCheck { ok }, step);
            }
            let due = w.hosts[m]
                .node
                .as_ref()
                .and_then(Node::next_deadline)
                .is_some_and(|d| d <= now);
            if due {
                self.input(w, m, Input::Tick, step);
            }
        }
    }

    fn deliver(&self, w: &mut World, d: Datagram, step: &mut Step<'_>) {
        let h = &mut w.hosts[d.to];
        if h.node.is_none() {
            return;
        }
        if h.frozen {
            h.queued.push(d);
            return;
        }
        if h.guard.check(&d.message, w.now).is_err() {
            return; // a duplicate, or overtaken on its network: dropped, as the agent does
        }
        if d.message.state == Role::HS {
            let heard = invariants::Heard {
                received: w.now,
                sent: d.sent,
                epoch: d.message.epoch,
                incarnation: d.message.incarnation,
            };
            w.history.on_hot_heard(d.from, d.to, heard, self.members());
        }
        let input = Input::Received {
            network: d.network,
            from: addr(d.from, d.network),
            message: d.message,
        };
        self.input(w, d.to, input, step);
    }

    /// Feeds one input to member `m` and carries out its outputs.
    fn input(&self, w: &mut World, m: usize, input: Input, step: &mut Step<'_>) {
        let now = w.now;
        let Some(node) = w.hosts[m].node.as_mut() else {
            return;
        };
        let outputs = node.handle(now, input);
        let urgent = node.net_check_urgent(now);
        let h = &mut w.hosts[m];
        if urgent && !h.net_urgent {
            // The agent starts a round at once when its net check turns urgent.
            h.next_net_check = h.next_net_check.min(now);
        }
        h.net_urgent = urgent;
        for o in outputs {
            match o {
                Output::Send {
                    network,
                    to: Destination::Group,
                    message,
                } => {
                    let n = usize::from(network);
                    for j in 0..w.hosts.len() {
                        let up = w.hosts[m].links[n] && w.hosts[j].links[n];
                        if j != m && up && w.hosts[j].node.is_some() {
                            w.in_flight.push(Datagram {
                                from: m,
                                to: j,
                                network,
                                sent: now,
                                message: message.clone(),
                            });
                        }
                    }
                }
                Output::Send { .. } | Output::Stopped => {}
                Output::Role {
                    state, lease_until, ..
                } => {
                    w.hosts[m].lease_until = lease_until.filter(|_| state == Role::HS);
                }
                Output::Event(e) => {
                    if let Event::BecameHot { reason, .. } = &e {
                        invariants::on_became_hot(self, w, m, *reason, &mut step.broken);
                    }
                    if !matches!(e, Event::Ignored { .. }) {
                        self.note(step, now, self.name(m), e.to_string());
                    }
                }
            }
        }
    }
}

fn kind(m: &Message) -> String {
    let mut s = String::new();
    let _ = write!(s, "{:?}", m.kind);
    s.make_ascii_lowercase();
    s
}
