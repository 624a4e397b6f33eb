//! The simulated world: members as [`Node`]s, two networks with links, partitions and loss,
//! net-check targets, and a virtual clock. Datagrams really go through [`wire::encode`],
//! [`wire::decode`] and a [`ReplayGuard`], as in the agent. Everything random comes from the
//! scenario's seed, so a run replays identically.

use super::invariants::Checker;
use super::scenario::{Action, Scenario, net_check_period};
use crate::election::{Destination, Event, Input, Node, Output, Params};
use crate::wire::{self, ReplayGuard};
use crate::{State, TemporalState};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

/// One line of the timeline (kept only when tracing).
#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    /// Virtual time.
    pub at: Duration,
    /// Member concerned ("" for the world itself).
    pub member: String,
    /// What happened, in words.
    pub text: String,
    /// What happened, for a reader that picks lines by kind.
    pub what: Happening,
}

/// What a timeline line is about.
#[derive(Debug, Clone, PartialEq)]
pub enum Happening {
    /// The scenario acted on the world (a fault, a start, a command).
    Action(Action),
    /// A member's node reported an event.
    Event(Event),
    /// A member stopped after a graceful shutdown.
    Stopped,
}

#[derive(Debug, Clone)]
enum Ev {
    Action(Action),
    Wake(usize),
    /// A net-check round of member `.0` in its start `.1`; `.2`: the periodic one, which
    /// schedules the next, or one started at once because the check turned urgent.
    NetCheck(usize, u64, bool),
    Deliver {
        to: usize,
        from: usize,
        network: u8,
        bytes: Vec<u8>,
    },
}

/// A simulated member process and its host.
#[derive(Debug)]
pub(super) struct Host {
    pub name: String,
    pub priority: u16,
    pub params: Params,
    pub node: Option<Node>,
    pub frozen: bool,
    queued: Vec<(usize, u8, Vec<u8>)>,
    pub starts: u64,
    wake_at: Option<Duration>,
    pub links: [bool; 2],
    pub isolated: bool,
    guard: ReplayGuard,
    /// Lease of the last role written (what a gate would see).
    pub lease_until: Option<Duration>,
    /// Consecutive failed net-check rounds delivered to the member.
    pub net_fail_streak: u32,
    /// Result of the last round delivered.
    pub last_round: Option<bool>,
    /// The node's net check is at its urgent pace (`Node::net_check_urgent`).
    net_urgent: bool,
}

impl Host {
    /// Running and not frozen.
    pub fn running(&self) -> bool {
        self.node.is_some() && !self.frozen
    }

    /// Running and hot.
    pub fn hot(&self) -> bool {
        self.running() && self.node.as_ref().is_some_and(|n| n.state() == State::HS)
    }
}

/// A whole simulated group.
pub struct World {
    pub(super) sc: Scenario,
    pub(super) now: Duration,
    queue: BTreeMap<(Duration, u64), Ev>,
    seq: u64,
    rng: ChaCha8Rng,
    pub(super) hosts: Vec<Host>,
    /// Partition mask per network (bit m set = member m on the far side).
    pub(super) partition: [u32; 2],
    pub(super) checker: Checker,
    log: Option<Vec<LogLine>>,
    #[cfg(feature = "fault-injection")]
    fault: Option<crate::election::Fault>,
}

impl World {
    /// A world ready to run `sc`.
    pub fn new(sc: Scenario) -> World {
        let hosts = sc
            .config
            .members
            .iter()
            .map(|m| {
                let params = Params::from_config(&sc.config, &m.name)
                    .unwrap_or_else(|e| panic!("simulator built an invalid config: {e}"));
                Host {
                    name: m.name.clone(),
                    priority: m.priority,
                    params,
                    node: None,
                    frozen: false,
                    queued: Vec::new(),
                    starts: 0,
                    wake_at: None,
                    links: [true; 2],
                    isolated: false,
                    guard: ReplayGuard::new(sc.config.heartbeat.timeout.get()),
                    lease_until: None,
                    net_fail_streak: 0,
                    last_round: None,
                    net_urgent: false,
                }
            })
            .collect();
        let mut w = World {
            rng: ChaCha8Rng::seed_from_u64(sc.seed ^ 0x5eed_5eed),
            checker: Checker::new(&sc),
            now: Duration::ZERO,
            queue: BTreeMap::new(),
            seq: 0,
            hosts,
            partition: [0; 2],
            log: None,
            #[cfg(feature = "fault-injection")]
            fault: None,
            sc,
        };
        for (at, a) in w.sc.actions.clone() {
            w.push(at, Ev::Action(a));
        }
        w
    }

    /// Keeps a readable timeline (see [`World::take_log`]).
    pub fn with_log(mut self) -> World {
        self.log = Some(Vec::new());
        self
    }

    /// Makes every member break one rule (simulator self-test).
    #[cfg(feature = "fault-injection")]
    pub fn with_fault(mut self, fault: crate::election::Fault) -> World {
        self.fault = Some(fault);
        self
    }

    /// Timeline lines gathered since the last call.
    pub fn take_log(&mut self) -> Vec<LogLine> {
        self.log.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// Current virtual time.
    pub fn now(&self) -> Duration {
        self.now
    }

    /// Time of the next event, if any remains before the scenario's end.
    pub fn peek(&self) -> Option<Duration> {
        self.queue
            .keys()
            .next()
            .map(|k| k.0)
            .filter(|t| *t <= self.sc.duration)
    }

    /// Processes every event up to and including virtual time `t`.
    pub fn run_until(&mut self, t: Duration) {
        while self.queue.keys().next().is_some_and(|k| k.0 <= t) {
            self.step();
        }
        self.now = self.now.max(t);
    }

    /// Names of the members that are running and hot.
    pub fn hot_members(&self) -> Vec<&str> {
        self.hosts
            .iter()
            .filter(|h| h.hot())
            .map(|h| h.name.as_str())
            .collect()
    }

    /// Index of member `name`.
    pub fn member(&self, name: &str) -> Option<usize> {
        self.hosts.iter().position(|h| h.name == name)
    }

    /// The state of member `m` (None while it is not running).
    pub fn state_of(&self, m: usize) -> Option<(State, TemporalState, u64)> {
        self.hosts[m]
            .node
            .as_ref()
            .map(|n| (n.state(), n.temporal(), n.epoch()))
    }

    /// Processes the next event; false when the scenario is over.
    pub fn step(&mut self) -> bool {
        let Some(((at, _), ev)) = self.queue.pop_first() else {
            return false;
        };
        if at > self.sc.duration {
            return false;
        }
        self.now = at;
        match ev {
            Ev::Action(a) => self.act(a),
            Ev::Wake(m) => {
                if self.hosts[m].running() && self.hosts[m].wake_at == Some(at) {
                    self.hosts[m].wake_at = None;
                    self.input(m, Input::Tick);
                }
            }
            Ev::NetCheck(m, start, periodic) => self.net_check_round(m, start, periodic),
            Ev::Deliver {
                to,
                from,
                network,
                bytes,
            } => {
                let h = &mut self.hosts[to];
                if h.frozen {
                    h.queued.push((from, network, bytes));
                } else if h.node.is_some() {
                    self.receive(to, from, network, &bytes);
                }
            }
        }
        let reaches: Vec<bool> = (0..self.hosts.len())
            .map(|m| self.reaches_targets(m))
            .collect();
        self.checker
            .after_event(self.now, &self.hosts, &self.partition, &reaches);
        true
    }

    /// The invariant checker (violations and failover figures so far).
    pub fn checker(&self) -> &Checker {
        &self.checker
    }

    /// Runs to the end and returns the checker with its findings.
    pub fn run(mut self) -> Checker {
        while self.step() {}
        self.checker
    }

    fn push(&mut self, at: Duration, ev: Ev) {
        self.seq += 1;
        self.queue.insert((at, self.seq), ev);
    }

    fn note(&mut self, m: Option<usize>, text: String, what: Happening) {
        if let Some(log) = &mut self.log {
            log.push(LogLine {
                at: self.now,
                member: m.map(|m| self.hosts[m].name.clone()).unwrap_or_default(),
                text,
                what,
            });
        }
    }

    /// Members `a` and `b` can exchange datagrams on network `n`.
    pub(super) fn connected(
        hosts: &[Host],
        partition: &[u32; 2],
        a: usize,
        b: usize,
        n: usize,
    ) -> bool {
        let side = |m: usize| (partition[n] >> m) & 1;
        hosts[a].links[n] && hosts[b].links[n] && side(a) == side(b)
    }

    /// Member `m` can ping the net-check targets (see [`Scenario::targets_everywhere`]).
    pub(super) fn reaches_targets(&self, m: usize) -> bool {
        let h = &self.hosts[m];
        !h.isolated
            && h.links[0]
            && (self.sc.targets_everywhere || (self.partition[0] >> m) & 1 == 0)
    }

    fn addr(m: usize, n: u8) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, n, 0, 11 + m as u8)), 8035)
    }

    fn act(&mut self, a: Action) {
        if self.log.is_some() {
            let text = self.describe_action(&a);
            self.note(None, text, Happening::Action(a.clone()));
        }
        self.checker.on_action(self.now, &a, &self.hosts);
        match a {
            Action::Start(m) => {
                if self.hosts[m].node.is_some() {
                    return;
                }
                let h = &mut self.hosts[m];
                h.starts += 1;
                let incarnation = (h.starts << 32) | u64::from(self.rng.random::<u32>());
                #[allow(unused_mut)]
                let mut node = Node::new(h.params.clone(), incarnation, self.now);
                #[cfg(feature = "fault-injection")]
                if let Some(f) = self.fault {
                    node.inject_fault(f);
                }
                h.node = Some(node);
                h.frozen = false;
                h.queued.clear();
                h.net_fail_streak = 0;
                h.last_round = None;
                h.net_urgent = false;
                let start = h.starts;
                let first = net_check_period(&self.sc.config);
                self.push(self.now + first, Ev::NetCheck(m, start, true));
                self.input(m, Input::Tick);
            }
            Action::Crash(m) => {
                let h = &mut self.hosts[m];
                h.node = None;
                h.frozen = false;
                h.queued.clear();
                h.wake_at = None;
            }
            Action::Freeze(m) => self.hosts[m].frozen = self.hosts[m].node.is_some(),
            Action::Resume(m) => {
                if !self.hosts[m].frozen {
                    return;
                }
                self.hosts[m].frozen = false;
                self.input(m, Input::Tick);
                for (from, network, bytes) in std::mem::take(&mut self.hosts[m].queued) {
                    if self.hosts[m].running() {
                        self.receive(m, from, network, &bytes);
                    }
                }
            }
            Action::LinkDown(m, n) => self.hosts[m].links[n] = false,
            Action::LinkUp(m, n) => self.hosts[m].links[n] = true,
            Action::Partition(n, mask) => self.partition[n] = mask,
            Action::Heal(n) => self.partition[n] = 0,
            Action::Isolate(m) => self.hosts[m].isolated = true,
            Action::Unisolate(m) => self.hosts[m].isolated = false,
            Action::Stop(m) => {
                if self.hosts[m].running() {
                    self.input(m, Input::Shutdown);
                }
            }
            Action::Switchover { at, to } => {
                if self.hosts[at].running() {
                    let target = self.hosts[to].name.clone();
                    self.input(at, Input::Switchover { target });
                }
            }
        }
    }

    /// An action in words, with member and network names.
    fn describe_action(&self, a: &Action) -> String {
        let name = |m: usize| self.hosts[m].name.as_str();
        let net = |n: usize| {
            self.sc
                .config
                .networks
                .get(n)
                .map_or("?", |x| x.name.as_str())
        };
        match *a {
            Action::Start(m) => format!("start {}", name(m)),
            Action::Crash(m) => format!("kill -9 {}", name(m)),
            Action::Freeze(m) => format!("SIGSTOP {}", name(m)),
            Action::Resume(m) => format!("SIGCONT {}", name(m)),
            Action::LinkDown(m, n) => format!("link of {} on {} down", name(m), net(n)),
            Action::LinkUp(m, n) => format!("link of {} on {} up", name(m), net(n)),
            Action::Partition(n, mask) => {
                let side: Vec<&str> = (0..self.hosts.len())
                    .filter(|m| (mask >> m) & 1 == 1)
                    .map(name)
                    .collect();
                format!("{} partitioned: {{{}}} cut off", net(n), side.join(", "))
            }
            Action::Heal(n) => format!("{} healed", net(n)),
            Action::Isolate(m) => format!("{} cannot reach the net-check targets", name(m)),
            Action::Unisolate(m) => format!("{} reaches the net-check targets again", name(m)),
            Action::Stop(m) => format!("SIGTERM {}", name(m)),
            Action::Switchover { at, to } => {
                format!(
                    "operator asks {} for a switchover to {}",
                    name(at),
                    name(to)
                )
            }
        }
    }

    fn net_check_round(&mut self, m: usize, start: u64, periodic: bool) {
        let h = &self.hosts[m];
        if h.node.is_none() || h.starts != start {
            return;
        }
        let frozen = h.frozen;
        if periodic {
            let period = if h.net_urgent {
                self.sc.config.net_check_urgent_period()
            } else {
                net_check_period(&self.sc.config)
            };
            self.push(self.now + period, Ev::NetCheck(m, start, true));
        }
        if frozen {
            return; // the pinger is frozen too
        }
        let ok = self.reaches_targets(m);
        let h = &mut self.hosts[m];
        h.last_round = Some(ok);
        h.net_fail_streak = if ok { 0 } else { h.net_fail_streak + 1 };
        self.input(m, Input::NetCheck { ok });
    }

    fn receive(&mut self, to: usize, from: usize, network: u8, bytes: &[u8]) {
        let message = match wire::decode(bytes, &self.sc.config.name, None) {
            Ok(msg) => msg,
            Err(e) => panic!("simulator produced an undecodable datagram: {e}"),
        };
        if self.hosts[to].guard.check(&message, self.now).is_err() {
            return; // reordered behind a newer datagram: dropped, as the agent does
        }
        if message.state == State::HS {
            self.checker.on_hot_heard(self.now, from, to, message.epoch);
        }
        let from_addr = Self::addr(from, network);
        self.input(
            to,
            Input::Received {
                network,
                from: from_addr,
                message,
            },
        );
    }

    fn input(&mut self, m: usize, input: Input) {
        let Some(node) = self.hosts[m].node.as_mut() else {
            return;
        };
        let outputs = node.handle(self.now, input);
        let deadline = node.next_deadline();
        let urgent = node.net_check_urgent(self.now);
        let h = &mut self.hosts[m];
        let turned_urgent = urgent && !h.net_urgent;
        h.net_urgent = urgent;
        if turned_urgent && !self.sc.config.net_check.targets.is_empty() {
            // The agent starts a round at once when its net check turns urgent.
            let start = h.starts;
            self.push(self.now, Ev::NetCheck(m, start, false));
        }
        for o in outputs {
            self.output(m, o);
        }
        if let Some(d) = deadline.filter(|_| self.hosts[m].node.is_some()) {
            let d = d.max(self.now);
            if self.hosts[m].wake_at != Some(d) {
                self.hosts[m].wake_at = Some(d);
                self.push(d, Ev::Wake(m));
            }
        }
    }

    fn output(&mut self, m: usize, o: Output) {
        match o {
            Output::Send {
                network,
                to: Destination::Group,
                message,
            } => {
                let bytes = match wire::encode(&message, None) {
                    Ok(b) => b,
                    Err(e) => panic!("simulator could not encode: {e}"),
                };
                let n = usize::from(network);
                for j in 0..self.hosts.len() {
                    if j == m || !Self::connected(&self.hosts, &self.partition, m, j, n) {
                        continue;
                    }
                    let loss = self.sc.loss.get(n).copied().unwrap_or(0.0);
                    if loss > 0.0 && self.rng.random_bool(loss) {
                        continue;
                    }
                    let latency = Duration::from_micros(self.rng.random_range(200..=2000));
                    self.push(
                        self.now + latency,
                        Ev::Deliver {
                            to: j,
                            from: m,
                            network,
                            bytes: bytes.clone(),
                        },
                    );
                }
            }
            Output::Send { .. } => {}
            Output::Role {
                state, lease_until, ..
            } => {
                self.hosts[m].lease_until = lease_until.filter(|_| state == State::HS);
            }
            Output::Stopped => {
                self.note(Some(m), "stopped".into(), Happening::Stopped);
                let h = &mut self.hosts[m];
                h.node = None;
                h.wake_at = None;
            }
            Output::Event(e) => {
                if let Event::BecameHot { reason, .. } = &e {
                    self.checker
                        .on_became_hot(self.now, m, *reason, &self.hosts);
                }
                if self.log.is_some() && !matches!(e, Event::Ignored { .. }) {
                    self.note(Some(m), e.to_string(), Happening::Event(e));
                }
            }
        }
    }
}
