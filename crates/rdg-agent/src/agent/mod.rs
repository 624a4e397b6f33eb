//! `rdg agent`: one member on a real host. Drives the sans-IO [`Node`] with CLOCK_MONOTONIC
//! time and real sockets, and carries out its outputs in order: datagrams go out through the
//! [`Transport`], role changes and lease renewals go to the role file (atomically), events go
//! to the log, the metrics and the notify command.
//!
//! One concept per file: `start` wires a member up, this module runs its loop and carries out
//! the node's outputs, `events` turns events into log lines, metrics and notifications,
//! `datagrams` guards what goes in and out, `vips` holds the VIP policy, and `report` answers
//! the status endpoint.
//!
//! Everything runs on one thread (tokio's current-thread runtime): the loop waits for the
//! earliest of a datagram, a net-check verdict, a status request, the node's next deadline or
//! a stop signal. Nothing on that path waits for the network, a ping, a script or the status
//! endpoint, so a failover is never delayed by them.

mod datagrams;
mod events;
mod reload;
mod report;
mod start;
mod vips;

use crate::auth::KeyError;
use crate::clock::monotonic;
use crate::metrics::{Metrics, ReasonLabels};
use crate::net_check::NetCheckError;
use crate::notify::{Notifier, NotifyEvent};
use crate::role_file::{RoleFileError, RoleRecord};
use crate::role_writer::RoleWriter;
use crate::status::{HotHistory, Request};
use crate::transport::{Batch, Datagram, Transport, TransportError};
use crate::vip::{ProbeDone, VipError, VipManager};
use rdg_core::State;
use rdg_core::config::GroupConfig;
use rdg_core::election::{Input, Node, Output, ParamsError};
use rdg_core::wire::ReplayGuard;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

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
    /// The credential `POST /switchover` requires (see [`crate::switchover_token`]).
    pub switchover_token: crate::switchover_token::Token,
    /// The file `config` came from, re-read on SIGHUP for new keys (None: no reload).
    pub config_path: Option<PathBuf>,
    /// This member's carousel, compared with the hot member's (None: no transmitter).
    pub content: Option<crate::content::ContentWatch>,
    /// The carousel's metrics, served with the agent's when it runs the carousel in-process
    /// (None: no carousel metrics here).
    pub carousel_metrics: Option<crate::metrics::CarouselMetrics>,
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
    /// The notification mail settings cannot be used (credentials file, addresses, CA file).
    #[error(transparent)]
    Email(#[from] crate::notify::email::EmailError),
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
    let (mut agent, inputs) = start::start(&opts).await?;
    let result = agent.run_loop(inputs, stop).await;
    let Agent { notifier, .. } = agent;
    notifier.drain(Duration::from_secs(2)).await;
    result
}

/// What the tasks around the loop feed it.
struct Inputs {
    /// Net-check verdicts, one per round.
    net: mpsc::Receiver<bool>,
    /// Requests of the status endpoint.
    requests: mpsc::Receiver<Request>,
    /// SIGHUP: re-read the keys.
    hangups: Option<tokio::signal::unix::Signal>,
    /// This member's carousel, whenever it changed.
    content: Option<mpsc::Receiver<rdg_core::content::Manifest>>,
}

/// What woke the agent loop.
enum Wake {
    Stop,
    Datagrams(Vec<Datagram>),
    NetCheck(bool),
    Request(Request),
    Content(rdg_core::content::Manifest),
    VipProbe(ProbeDone),
    Reload,
    Tick,
}

/// One member on a real host: the node and the IO around it.
struct Agent {
    node: Node,
    /// The (state, epoch) last written to the role file.
    written: Option<(State, u64)>,
    replay: ReplayGuard,
    keys: crate::auth::Keys,
    transport: Option<Transport>,
    metrics: Arc<Metrics>,
    notifier: Notifier,
    role: RoleWriter,
    cfg: GroupConfig,
    /// Where `cfg` came from (re-read on SIGHUP).
    config_path: Option<PathBuf>,
    stopped: bool,
    vips: Option<VipManager>,
    /// When adding missing VIPs was last tried (retried every second while hot).
    vip_attempt: Duration,
    /// When the VIPs were last announced (for `garp.refresh`).
    vip_refresh: Duration,
    /// Tells the net check its pace (`Node::net_check_urgent`).
    net_urgent: watch::Sender<bool>,
    /// When and why this member last became hot (`lastBecameHot` in `/status`).
    hot_history: HotHistory,
    /// The standby notification of a move from HS to SBS (epoch, reason), held until the
    /// `Released` event that follows says why; sent at the end of the step at the latest.
    standby_after_hot: Option<(u64, String)>,
}

impl Agent {
    /// Waits for the earliest of a datagram, a net-check verdict, a status request, a VIP
    /// probe, the node's next deadline or `stop`, and feeds it to the node, until it stops.
    async fn run_loop(
        &mut self,
        inputs: Inputs,
        stop: impl Future<Output = ()>,
    ) -> Result<(), AgentError> {
        let Inputs {
            mut net,
            mut requests,
            mut hangups,
            mut content,
        } = inputs;
        tokio::pin!(stop);
        let lease = self.node.params().lease();
        let mut last_wake = monotonic();
        let mut probes = self.vips.as_mut().and_then(VipManager::take_probe_results);
        let mut batch = Batch::new();
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
                ds = receive(self.transport.as_ref(), &mut batch) => Wake::Datagrams(ds),
                Some(ok) = net.recv() => Wake::NetCheck(ok),
                Some(r) = requests.recv() => Wake::Request(r),
                Some(p) = vips::recv_probe(&mut probes) => Wake::VipProbe(p),
                Some(()) = reload::next_hangup(&mut hangups) => Wake::Reload,
                Some(m) = next_content(&mut content) => Wake::Content(m),
                () = sleep => Wake::Tick,
            };
            let now = monotonic();
            // The loop wakes at least once per heartbeat interval; a longer pause means the
            // process was frozen or starved. Whatever queued up meanwhile is history: drop it
            // (it could make this member act on the group as it was), then let the node see
            // the gap and step down if its lease ran out.
            if now > last_wake + lease {
                let mut dropped = self.transport.as_ref().map_or(0, Transport::discard_queued);
                let wake_was_datagram = matches!(wake, Wake::Datagrams(_));
                if let Wake::Datagrams(ds) = &wake {
                    dropped += ds.len();
                }
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
                Wake::Datagrams(ds) => {
                    for d in ds {
                        self.on_datagram(d).await;
                    }
                }
                Wake::NetCheck(ok) => self.step(now, Input::NetCheck { ok }).await,
                Wake::Request(r) => self.on_request(r).await,
                Wake::VipProbe(p) => self.on_vip_probe(p).await,
                Wake::Reload => self.reload(),
                Wake::Content(m) => self.step(now, Input::Content(Some(m))).await,
                Wake::Tick => self.step(now, Input::Tick).await,
            }
        }
        Ok(())
    }

    /// Answers one request of the status endpoint; a switchover goes to the node.
    async fn on_request(&mut self, r: Request) {
        match r {
            Request::Status(tx) => {
                let _ = tx.send(self.report());
            }
            Request::Health(tx) => {
                let _ = tx.send(self.unhealthy());
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
        let urgent = self.node.net_check_urgent(now);
        if *self.net_urgent.borrow() != urgent {
            self.net_urgent.send_replace(urgent);
        }
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
        self.notify_standby_after_hot(None);
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
}

/// The next change of this member's carousel, or never when it has none.
async fn next_content(
    rx: &mut Option<mpsc::Receiver<rdg_core::content::Manifest>>,
) -> Option<rdg_core::content::Manifest> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// The next datagrams of `transport`, or never without one (standalone).
async fn receive(transport: Option<&Transport>, batch: &mut Batch) -> Vec<Datagram> {
    match transport {
        Some(t) => t.receive(batch).await,
        None => std::future::pending().await,
    }
}
