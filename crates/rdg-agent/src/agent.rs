//! `rdg agent`: one member on a real host. Drives the sans-IO [`Node`] with CLOCK_MONOTONIC
//! time and real sockets, and carries out its outputs in order: datagrams go out through the
//! [`Transport`], role changes and lease renewals go to the role file (atomically), events go
//! to the log, the metrics and the notify command.
//!
//! Everything runs on one thread (tokio's current-thread runtime): the loop waits for the
//! earliest of a datagram, a net-check verdict, a status request, the node's next deadline or
//! a stop signal. Nothing on that path waits for the network, a ping, a script or the status
//! endpoint, so a failover is never delayed by them.

use crate::auth::{KeyError, load_key};
use crate::clock::monotonic;
use crate::metrics::{Metrics, ReasonLabels, RejectLabels, StateLabels, net};
use crate::net_check::{NetCheckError, NetChecker};
use crate::notify::{Notifier, NotifyEvent};
use crate::role_file::{RoleFileError, RoleRecord};
use crate::role_writer::RoleWriter;
use crate::status::{
    MemberStatus, NetCheckStatus, NetworkStatus, PeerNetworkStatus, Request, StatusReport,
    VipStatus,
};
use crate::transport::{Datagram, Transport, TransportError};
use crate::vip::{ProbeDone, VipError, VipManager};
use rdg_core::State;
use rdg_core::config::GroupConfig;
use rdg_core::election::{Event, HotReason, Input, Node, Output, Params, ParamsError};
use rdg_core::wire::{self, MessageType, ReplayGuard};
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// How one agent runs.
#[derive(Debug, Clone)]
pub struct AgentOptions {
    /// The group configuration (validated by [`run`]).
    pub config: GroupConfig,
    /// This member's name (`--member`).
    pub member: String,
    /// Where the role file goes (the config's `roleFile` unless overridden).
    pub role_file: PathBuf,
    /// Where the status endpoint listens (the config's `status.listen` unless overridden).
    pub status_listen: SocketAddr,
}

/// Why the agent could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The configuration is invalid or does not name this member.
    #[error(transparent)]
    Params(#[from] ParamsError),
    /// The heartbeat sockets could not be opened.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The net check cannot run (missing capability).
    #[error(transparent)]
    NetCheck(#[from] NetCheckError),
    /// The HMAC key could not be read.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The VIPs cannot be managed (no interface, no netlink, no raw socket).
    #[error(transparent)]
    Vip(#[from] VipError),
    /// The role file cannot be written.
    #[error(transparent)]
    RoleFile(#[from] RoleFileError),
    /// The status endpoint cannot listen.
    #[error("status.listen: cannot listen on {addr}: {source}")]
    Status {
        /// The configured address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Runs one member until `stop` completes (SIGTERM/SIGINT in the CLI), then hands over
/// gracefully: a hot member releases (role file first), tells the group it is leaving, and
/// returns. Must run inside a tokio runtime.
pub async fn run(opts: AgentOptions, stop: impl Future<Output = ()>) -> Result<(), AgentError> {
    let cfg = &opts.config;
    let params = Params::from_config(cfg, &opts.member)?;
    let key = load_key(cfg)?;
    let metrics = Arc::new(Metrics::new());
    let standalone = cfg.is_standalone();

    // Start-up checks that can fail come first, before anything is announced.
    let (dgram_tx, dgram_rx) = mpsc::channel::<Datagram>(1024);
    let transport = if standalone {
        tracing::warn!(
            member = %opts.member,
            "group name is empty: running standalone, always hot, no heartbeats"
        );
        None
    } else {
        let t = Transport::open(cfg, &opts.member)?;
        t.spawn_receivers(dgram_tx);
        Some(t)
    };
    // The net check first: without CAP_NET_RAW its error is the one that says what the member
    // could not do (never take over safely), and names the capability.
    let (net_tx, net_rx) = mpsc::channel::<bool>(4);
    if !standalone && !cfg.net_check.targets.is_empty() {
        let checker = NetChecker::open(cfg.net_check.targets.clone(), cfg.net_check.timeout.get())?;
        let period = cfg.net_check.timeout.get().max(params.interval);
        tokio::spawn(checker.run(period, net_tx, Arc::clone(&metrics)));
    }
    let vips = if standalone {
        None
    } else {
        VipManager::open(cfg, &opts.member, Arc::clone(&metrics))?
    };
    let listener = tokio::net::TcpListener::bind(opts.status_listen)
        .await
        .map_err(|source| AgentError::Status {
            addr: opts.status_listen,
            source,
        })?;
    let (req_tx, req_rx) = mpsc::channel::<Request>(16);
    tokio::spawn(crate::status::serve(listener, req_tx, Arc::clone(&metrics)));
    let notifier = match &cfg.notify {
        Some(n) => Notifier::start(
            n.command.clone(),
            n.timeout.get(),
            cfg.name.clone(),
            opts.member.clone(),
            Arc::clone(&metrics),
        ),
        None => Notifier::disabled(),
    };

    let now = monotonic();
    let node = Node::new(params.clone(), incarnation(), now);
    let mut agent = Agent {
        node,
        written: None,
        replay: ReplayGuard::new(params.timeout),
        key,
        transport,
        metrics,
        notifier,
        role: RoleWriter::new(&opts.role_file).map_err(|source| {
            AgentError::RoleFile(RoleFileError::Write {
                path: opts.role_file.clone(),
                source,
            })
        })?,
        cfg: opts.config.clone(),
        stopped: false,
        vips,
        vip_attempt: Duration::ZERO,
        vip_refresh: Duration::ZERO,
        hot_history: crate::status::HotHistory::default(),
    };
    if let Some(v) = agent.vips.as_mut() {
        v.remove_leftovers().await;
    }
    tracing::info!(
        group = %cfg.name,
        member = %opts.member,
        priority = params.priorities[params.me],
        role_file = %opts.role_file.display(),
        status = %opts.status_listen,
        "agent started"
    );
    match crate::role_file::on_tmpfs(&opts.role_file) {
        Ok(true) => {}
        Ok(false) => tracing::warn!(
            role_file = %opts.role_file.display(),
            "the role file is not on tmpfs: a hot member renews it every heartbeat, and on a \
             disk file system a write can stall for tens of milliseconds on a busy host and let \
             the lease lapse for a moment; put it under /run (tmpfs on systemd hosts) or \
             /dev/shm"
        ),
        Err(e) => tracing::warn!(
            role_file = %opts.role_file.display(),
            error = %e,
            "cannot tell which file system holds the role file"
        ),
    }
    // A member that cannot write its role file can never run the work: say so now.
    agent.role.write_now(&RoleRecord {
        member: opts.member.clone(),
        role: State::SS,
        epoch: 0,
        lease_until_monotonic_ms: 0,
    })?;
    agent.step(now, Input::Tick).await;
    let result = agent.run_loop(dgram_rx, net_rx, req_rx, stop).await;
    let Agent { notifier, .. } = agent;
    notifier.drain(Duration::from_secs(2)).await;
    result
}

/// A process-unique incarnation that grows across restarts (wall-clock nanoseconds), so peers'
/// replay guards accept a restarted member at once.
fn incarnation() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or_else(|_| rand::random())
}

/// What woke the agent loop.
enum Wake {
    Stop,
    Datagram(Datagram),
    NetCheck(bool),
    Request(Request),
    VipProbe(ProbeDone),
    Tick,
}

struct Agent {
    node: Node,
    /// The (state, epoch) last written to the role file.
    written: Option<(State, u64)>,
    replay: ReplayGuard,
    key: Option<Vec<u8>>,
    transport: Option<Transport>,
    metrics: Arc<Metrics>,
    notifier: Notifier,
    role: RoleWriter,
    cfg: GroupConfig,
    stopped: bool,
    vips: Option<VipManager>,
    /// When adding missing VIPs was last tried (retried every second while hot).
    vip_attempt: Duration,
    /// When the VIPs were last announced (for `garp.refresh`).
    vip_refresh: Duration,
    /// When and why this member last became hot (`lastBecameHot` in `/status`).
    hot_history: crate::status::HotHistory,
}

/// The next finished VIP probe (never, without VIPs).
async fn recv_probe(rx: &mut Option<mpsc::UnboundedReceiver<ProbeDone>>) -> Option<ProbeDone> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// How often a hot member retries adding a VIP it could not add.
const VIP_RETRY: Duration = Duration::from_secs(1);

impl Agent {
    async fn run_loop(
        &mut self,
        mut dgrams: mpsc::Receiver<Datagram>,
        mut net: mpsc::Receiver<bool>,
        mut requests: mpsc::Receiver<Request>,
        stop: impl Future<Output = ()>,
    ) -> Result<(), AgentError> {
        tokio::pin!(stop);
        let lease = self.node.params().lease();
        let mut last_wake = monotonic();
        let mut probes = self.vips.as_mut().and_then(VipManager::take_probe_results);
        while !self.stopped {
            let wake = self
                .node
                .next_deadline()
                .map(|d| tokio::time::Instant::now() + d.saturating_sub(monotonic()));
            let sleep = async {
                match wake {
                    Some(w) => tokio::time::sleep_until(w).await,
                    None => std::future::pending().await,
                }
            };
            let wake = tokio::select! {
                () = &mut stop => Wake::Stop,
                Some(d) = dgrams.recv() => Wake::Datagram(d),
                Some(ok) = net.recv() => Wake::NetCheck(ok),
                Some(r) = requests.recv() => Wake::Request(r),
                Some(p) = recv_probe(&mut probes) => Wake::VipProbe(p),
                () = sleep => Wake::Tick,
            };
            let now = monotonic();
            // The loop wakes at least once per heartbeat interval; a longer pause means the
            // process was frozen or starved. Whatever queued up meanwhile is history: drop it
            // (it could make this member act on the group as it was), then let the node see
            // the gap and step down if its lease ran out.
            if now > last_wake + lease {
                let mut dropped = self.transport.as_ref().map_or(0, Transport::discard_queued);
                while dgrams.try_recv().is_ok() {
                    dropped += 1;
                }
                let wake_was_datagram = matches!(wake, Wake::Datagram(_));
                dropped += usize::from(wake_was_datagram);
                tracing::warn!(
                    paused_ms = (now - last_wake).as_millis() as u64,
                    dropped,
                    "resumed after a pause longer than the lease; datagrams queued meanwhile dropped"
                );
                self.metrics
                    .ignored
                    .get_or_create(&ReasonLabels {
                        reason: "queued_while_paused".to_string(),
                    })
                    .inc_by(dropped as u64);
                self.step(now, Input::Tick).await;
                last_wake = now;
                if wake_was_datagram {
                    continue;
                }
            }
            last_wake = now;
            match wake {
                Wake::Stop => {
                    tracing::info!("stop requested: handing over and leaving the group");
                    self.step(now, Input::Shutdown).await;
                    self.notifier
                        .send(NotifyEvent::Stopped, self.node.epoch(), "shutdown");
                    break;
                }
                Wake::Datagram(d) => self.on_datagram(d).await,
                Wake::NetCheck(ok) => self.step(now, Input::NetCheck { ok }).await,
                Wake::Request(r) => self.on_request(r).await,
                Wake::VipProbe(p) => self.on_vip_probe(p).await,
                Wake::Tick => self.step(now, Input::Tick).await,
            }
        }
        Ok(())
    }

    fn network_name(&self, network: u8) -> &str {
        self.cfg
            .networks
            .get(usize::from(network))
            .map_or("?", |n| n.name.as_str())
    }

    fn reject(&self, network: u8, reason: &str) {
        self.metrics
            .rejected
            .get_or_create(&RejectLabels {
                network: self.network_name(network).to_string(),
                reason: reason.to_string(),
            })
            .inc();
    }

    /// Decodes, authenticates and de-duplicates one datagram, then feeds it to the node.
    async fn on_datagram(&mut self, d: Datagram) {
        let now = monotonic();
        let msg = match wire::decode(&d.bytes, &self.cfg.name, self.key.as_deref()) {
            Ok(m) => m,
            Err(e) => {
                self.reject(d.network, e.reason());
                tracing::debug!(from = %d.from, network = self.network_name(d.network), error = %e, "datagram rejected");
                return;
            }
        };
        if msg.network != d.network {
            // Sent for another network (cross-wired networks, or a replay from one to the other).
            self.reject(d.network, "wrong_network");
            return;
        }
        if let Err(e) = self.replay.check(&msg, now) {
            self.reject(d.network, e.reason());
            tracing::debug!(from = %d.from, member = %msg.member, error = %e, "datagram rejected");
            return;
        }
        if msg.kind == MessageType::Heartbeat {
            self.metrics
                .heartbeats_received
                .get_or_create(&net(self.network_name(d.network)))
                .inc();
        }
        self.step(
            now,
            Input::Received {
                network: d.network,
                from: d.from,
                message: msg,
            },
        )
        .await;
    }

    async fn on_request(&mut self, r: Request) {
        match r {
            Request::Status(tx) => {
                let _ = tx.send(self.report());
            }
            Request::Health(tx) => {
                let missing = self
                    .vips
                    .as_ref()
                    .filter(|_| self.node.state() == State::HS)
                    .and_then(|v| v.first_missing());
                let _ = tx.send(missing.map(|why| format!("hot, but {why}")));
            }
            Request::Switchover(target, tx) => {
                if self.node.params().index_of(&target).is_none() {
                    let _ = tx.send(Err(format!("{target:?} is not a member of this group")));
                    return;
                }
                tracing::info!(%target, "switchover requested by an operator");
                self.step(monotonic(), Input::Switchover { target }).await;
                let _ = tx.send(Ok(()));
            }
        }
    }

    /// Feeds one input and carries out every output, in order.
    async fn step(&mut self, now: Duration, input: Input) {
        let outputs = self.node.handle(now, input);
        for out in outputs {
            match out {
                Output::Send {
                    network,
                    to,
                    message,
                } => self.send(network, to, &message),
                Output::Role {
                    state,
                    epoch,
                    lease_until,
                    became_hot,
                } => {
                    let was_hot = self.written.is_some_and(|(s, _)| s == State::HS);
                    self.write_role(state, epoch, lease_until);
                    self.move_vips(now, was_hot, state == State::HS, became_hot)
                        .await;
                }
                Output::Event(e) => self.on_event(e),
                Output::Stopped => self.stopped = true,
            }
        }
    }

    /// Takes the VIPs on becoming hot and drops them on leaving HS — before the outputs that
    /// follow (a `leaving`, a switchover ack) announce anything. A failover (takeover,
    /// hand-over) adds them at once and checks for a foreign holder afterwards; a cold start
    /// (won the start-up election: nobody was hot, nobody waits) probes first. While hot,
    /// retries missing ones (probe first) and repeats the announcement every `garp.refresh`.
    async fn move_vips(
        &mut self,
        now: Duration,
        was_hot: bool,
        hot: bool,
        reason: Option<HotReason>,
    ) {
        let Some(vips) = self.vips.as_mut() else {
            return;
        };
        match (was_hot, hot) {
            (false, true) => {
                self.vip_attempt = now;
                self.vip_refresh = now;
                let failed = if reason == Some(HotReason::Election) {
                    vips.acquire_probed().await
                } else {
                    vips.acquire().await
                };
                self.report_vip_failures(failed);
            }
            (true, false) => vips.release().await,
            (true, true) => {
                if !vips.all_held() && now >= self.vip_attempt + VIP_RETRY {
                    self.vip_attempt = now;
                    let failed = vips.acquire_probed().await;
                    self.report_vip_failures(failed);
                } else if !vips.refresh().is_zero() && now >= self.vip_refresh + vips.refresh() {
                    self.vip_refresh = now;
                    vips.announce(1);
                }
            }
            (false, false) => {}
        }
    }

    /// A background ARP probe finished: add, keep or remove its VIP (only while hot; a release
    /// since the probe started makes the result stale anyway).
    async fn on_vip_probe(&mut self, done: ProbeDone) {
        if self.node.state() != State::HS {
            return;
        }
        let Some(vips) = self.vips.as_mut() else {
            return;
        };
        let failed = vips.on_probe(done).await;
        self.report_vip_failures(failed);
    }

    fn report_vip_failures(&self, failed: Vec<(String, String)>) {
        for (vip, why) in failed {
            self.notifier.send(
                NotifyEvent::VipFailed,
                self.node.epoch(),
                format!("{vip}: {why}"),
            );
        }
    }

    fn send(&self, network: u8, to: rdg_core::election::Destination, message: &wire::Message) {
        let Some(t) = &self.transport else { return };
        let bytes = match wire::encode(message, self.key.as_deref()) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "cannot encode a datagram");
                return;
            }
        };
        if t.send(network, to, &bytes, &self.metrics) && message.kind == MessageType::Heartbeat {
            self.metrics
                .heartbeats_sent
                .get_or_create(&net(self.network_name(network)))
                .inc();
        }
    }

    /// Lease renewals (hot and still hot, same epoch) go to the writer thread; every other
    /// change is on disk before this returns, so a release precedes any announcement.
    fn write_role(&mut self, state: State, epoch: u64, lease_until: Option<Duration>) {
        let renewal = state == State::HS && self.written == Some((state, epoch));
        let record = RoleRecord {
            member: self.node.params().my_name().to_string(),
            role: state,
            epoch,
            lease_until_monotonic_ms: lease_until.map_or(0, |l| l.as_millis() as u64),
        };
        if renewal {
            self.role.renew(record);
            return;
        }
        self.written = Some((state, epoch));
        if let Err(e) = self.role.write_now(&record) {
            // The gate then sees an old or missing file: an old HS record's lease runs out by
            // itself, so this can only stop the transmitter, never start a second one.
            tracing::error!(error = %e, "role file not written");
        }
        self.metrics.set_state(state);
        self.metrics.epoch.set(epoch as i64);
    }

    fn my_address(&self) -> String {
        self.transport
            .as_ref()
            .and_then(|t| t.links.first())
            .map_or_else(|| "localhost".to_string(), |l| l.local.to_string())
    }

    fn on_event(&mut self, e: Event) {
        let epoch = self.node.epoch();
        match e {
            Event::StateChanged { from, to } => {
                tracing::info!("{}/{} -> {}/{}", from.0, from.1, to.0, to.1);
                if from.0 != to.0 {
                    self.metrics
                        .transitions
                        .get_or_create(&StateLabels {
                            state: to.0.as_str().to_string(),
                        })
                        .inc();
                    if to.0 == State::SBS {
                        self.notifier
                            .send(NotifyEvent::Standby, epoch, format!("from {}", from.0));
                    }
                }
            }
            Event::PrimaryCoordinator { member, address } => {
                let addr = address.map_or_else(|| self.my_address(), |a| a.ip().to_string());
                tracing::info!("Primary/coordinator: {member}@{addr}");
            }
            Event::BecameHot {
                epoch,
                reason,
                previous,
            } => {
                tracing::info!(
                    epoch,
                    reason = reason.as_str(),
                    previous = previous.as_deref().unwrap_or("-"),
                    "became HOT"
                );
                let from = previous.as_deref();
                self.hot_history.became_hot(epoch, reason, from);
                self.notifier.send(NotifyEvent::Hot, epoch, reason.as_str());
            }
            Event::Released { reason } => {
                tracing::warn!(reason = reason.as_str(), "released the hot role");
            }
            Event::HotLost {
                member,
                silent_for,
                left,
            } => {
                self.hot_history.hot_lost(&member, silent_for, left);
                if left {
                    tracing::warn!(%member, "hot member left the group");
                } else {
                    self.metrics.detection.observe(silent_for.as_secs_f64());
                    tracing::warn!(
                        %member,
                        silent_ms = silent_for.as_millis() as u64,
                        "hot member lost (silent on every network)"
                    );
                }
            }
            Event::MemberLost { member } => tracing::info!(%member, "member lost"),
            Event::MemberJoined { member } => tracing::info!(%member, "member heard"),
            Event::NetworkAnomaly { member, network } => {
                let name = self.network_name(network).to_string();
                self.metrics.anomalies.get_or_create(&net(&name)).inc();
                tracing::warn!(%member, network = %name, "network anomaly: silent on this network only; no takeover");
                self.notifier.send(
                    NotifyEvent::Anomaly,
                    epoch,
                    format!("{member} silent on {name}"),
                );
            }
            Event::NetworkRecovered { member, network } => {
                let name = self.network_name(network).to_string();
                tracing::info!(%member, network = %name, "network recovered");
                self.notifier.send(
                    NotifyEvent::AnomalyRecovered,
                    epoch,
                    format!("{member} heard on {name}"),
                );
            }
            Event::Isolated => {
                tracing::error!(
                    "net check failed twice: isolated, going to CS (will not take over)"
                );
                self.notifier
                    .send(NotifyEvent::Crashed, epoch, "net-check-failed");
            }
            Event::IsolationEnded => {
                tracing::info!("net check passes again: leaving CS");
                self.notifier
                    .send(NotifyEvent::CrashRecovered, epoch, "net-check-ok");
            }
            Event::SwitchoverStarted { target } => {
                tracing::info!(%target, "switchover started");
            }
            Event::SwitchoverRejected { target, reason } => {
                tracing::warn!(%target, %reason, "switchover rejected");
            }
            Event::DuplicateMember { from } => {
                tracing::error!(%from, "another process sends as this member (two agents with one --member?)");
            }
            Event::Ignored { reason } => {
                self.metrics
                    .ignored
                    .get_or_create(&ReasonLabels {
                        reason: reason.to_string(),
                    })
                    .inc();
            }
            Event::ClockGap { gap } => {
                tracing::warn!(
                    gap_ms = gap.as_millis() as u64,
                    "the agent was not running for longer than its lease (frozen or starved)"
                );
            }
        }
    }

    fn report(&self) -> StatusReport {
        let now = monotonic();
        let node = &self.node;
        let p = node.params();
        let timeout = p.timeout;
        let my_addr = |net: &str| {
            self.cfg
                .member(p.my_name())
                .and_then(|m| m.addresses.get(net).copied())
        };
        let members = p
            .names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                if i == p.me {
                    return MemberStatus {
                        name: name.clone(),
                        is_self: true,
                        state: Some(node.state()),
                        temporal: Some(node.temporal().as_str().to_string()),
                        priority: p.priorities[i],
                        epoch: Some(node.epoch()),
                        net_check_ok: node.net_check(),
                        alive: true,
                        networks: Vec::new(),
                    };
                }
                let peer = node.peer(name);
                let heard = peer.is_some_and(|pr| pr.first_seen.is_some());
                let networks = self
                    .cfg
                    .networks
                    .iter()
                    .enumerate()
                    .take(p.networks)
                    .map(|(n, netw)| PeerNetworkStatus {
                        name: netw.name.clone(),
                        healthy: peer.is_some_and(|pr| pr.alive_on(n, now, timeout)),
                        last_heard_ms_ago: peer
                            .and_then(|pr| pr.heard[n])
                            .map(|t| now.saturating_sub(t).as_millis() as u64),
                        anomaly: peer.is_some_and(|pr| pr.anomaly[n]),
                        address: peer.and_then(|pr| pr.addr[n]),
                    })
                    .collect();
                MemberStatus {
                    name: name.clone(),
                    is_self: false,
                    state: peer.filter(|_| heard).map(|pr| pr.state),
                    temporal: peer
                        .filter(|_| heard)
                        .map(|pr| pr.temporal.as_str().to_string()),
                    priority: p.priorities[i],
                    epoch: peer.filter(|_| heard).map(|pr| pr.epoch),
                    net_check_ok: peer.filter(|_| heard).map(|pr| pr.net_ok()),
                    alive: peer.is_some_and(|pr| pr.alive(p.networks, now, timeout)),
                    networks,
                }
            })
            .collect();
        StatusReport {
            group: p.group.clone(),
            member: p.my_name().to_string(),
            state: node.state(),
            temporal: node.temporal().as_str().to_string(),
            epoch: node.epoch(),
            hot: node.hot().map(str::to_string),
            priority: p.priorities[p.me],
            lease_remaining_ms: node
                .lease_until()
                .filter(|_| node.state() == State::HS)
                .map(|l| l.saturating_sub(now).as_millis() as u64),
            net_check: NetCheckStatus {
                enabled: !self.cfg.net_check.targets.is_empty(),
                ok: node.net_check(),
                targets: self.cfg.net_check.targets.clone(),
            },
            networks: self
                .cfg
                .networks
                .iter()
                .map(|n| NetworkStatus {
                    name: n.name.clone(),
                    address: my_addr(&n.name),
                    multicast: n.multicast,
                })
                .collect(),
            members,
            vips: self
                .vips
                .as_ref()
                .map(|v| {
                    v.vips()
                        .iter()
                        .map(|v| VipStatus {
                            address: v.cidr.clone(),
                            interface: v.interface.clone(),
                            held: v.held,
                            error: v.error.clone(),
                        })
                        .collect()
                })
                .unwrap_or_default(),
            last_became_hot: self.hot_history.last().cloned(),
        }
    }
}
