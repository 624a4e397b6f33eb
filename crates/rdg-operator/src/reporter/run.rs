//! The reporter's I/O: six small loops joined on one current-thread runtime. One polls the
//! local agent and decides (with the pure pieces) what to write; the others each do one kind
//! of API call — the member entry, the pod's role label, Events, the switchover watch, the
//! agent report ConfigMap. Writes
//! are coalesced through `watch` channels (only the newest value is ever sent, one request in
//! flight per kind), spaced by a minimum gap, and retried with exponential back-off on errors,
//! so a slow or absent API server costs the agent nothing.

use super::agent_client::AgentClient;
use super::entry::EntryTracker;
use super::env::K8sEnv;
use super::notices::{Notice, Severity, transition_notices};
use super::snapshot::{Snapshot, SnapshotSchedule, agent_report, apply_agent_report};
use super::switchover::SwitchoverTrigger;
use crate::RedundantGroup;
use crate::children::ROLE_LABEL;
use crate::retry::{Backoff, Retry};
use crate::status::MemberEntry;
use k8s_openapi::api::core::v1::{ConfigMap, ObjectReference, Pod};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Api, Client, Resource};
use rdg_agent::switchover_token::Token;
use rdg_core::State;
use serde_json::json;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, MissedTickBehavior};

/// Timing of the reporter; the defaults suit production, tests shorten them.
#[derive(Debug, Clone)]
pub struct Tuning {
    /// How often the agent's `/status` is read.
    pub poll: Duration,
    /// Timeout of one request to the local agent.
    pub agent_timeout: Duration,
    /// Least time between two writes of one kind (member entry, pod label): at most ~5/s.
    pub min_write_gap: Duration,
    /// The member entry is written at least this often, for `lastSeen`.
    pub refresh: Duration,
    /// Retry delays after API errors.
    pub backoff: Backoff,
    /// Least time between two log lines about failures of one kind of call.
    pub log_quiet: Duration,
    /// How often the group is read for switchover requests.
    pub group_poll: Duration,
    /// The agent report ConfigMap is written at most this often, state changes aside.
    pub snapshot_every: Duration,
    /// Least time between two agent report writes, also on state changes.
    pub snapshot_min_gap: Duration,
}

impl Default for Tuning {
    fn default() -> Tuning {
        Tuning {
            poll: Duration::from_millis(250),
            agent_timeout: Duration::from_millis(200),
            min_write_gap: Duration::from_millis(200),
            refresh: Duration::from_secs(10),
            backoff: Backoff::REPORTER,
            log_quiet: Duration::from_secs(30),
            group_poll: Duration::from_secs(1),
            snapshot_every: Duration::from_secs(60),
            snapshot_min_gap: Duration::from_secs(10),
        }
    }
}

impl Tuning {
    /// Retries of `what` with this timing.
    fn retry(&self, what: &str) -> Retry {
        Retry::new(what, self.backoff, self.log_quiet)
    }
}

/// What the reporter needs to know.
#[derive(Debug, Clone)]
pub struct ReporterConfig {
    /// Where the member lives in Kubernetes.
    pub env: K8sEnv,
    /// The member's name (the agent's `--member`).
    pub member: String,
    /// The agent's local endpoint (`status.listen`).
    pub agent: SocketAddr,
    /// The agent's switchover credential (the agent and the reporter share a process).
    pub switchover_token: Token,
    /// Timing.
    pub tuning: Tuning,
}

impl ReporterConfig {
    /// A configuration with the default timing.
    pub fn new(
        env: K8sEnv,
        member: String,
        agent: SocketAddr,
        switchover_token: Token,
    ) -> ReporterConfig {
        ReporterConfig {
            env,
            member,
            agent,
            switchover_token,
            tuning: Tuning::default(),
        }
    }
}

/// The field manager of a member's own writes: `rdg-member-<member>`.
pub fn field_manager(member: &str) -> String {
    format!("rdg-member-{member}")
}

/// The role label value for a state: `hot` while HS, `standby` otherwise.
pub fn role_of(state: State) -> &'static str {
    if state == State::HS { "hot" } else { "standby" }
}

/// Runs the reporter until `stop` completes. Never fails: every error is logged and retried.
pub async fn run(client: Client, cfg: ReporterConfig, stop: impl Future<Output = ()>) {
    let t = &cfg.tuning;
    let env = &cfg.env;
    let agent =
        AgentClient::new(cfg.agent, t.agent_timeout).with_token(cfg.switchover_token.clone());
    let manager = field_manager(&cfg.member);
    let groups: Api<RedundantGroup> = Api::namespaced(client.clone(), &env.namespace);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &env.namespace);
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), &env.namespace);
    let recorder = Recorder::new(
        client,
        Reporter {
            controller: "rdg-agent".into(),
            instance: Some(env.pod.clone()),
        },
    );
    let (entry_tx, entry_rx) = watch::channel(None::<MemberEntry>);
    let (role_tx, role_rx) = watch::channel(None::<&'static str>);
    let (state_tx, state_rx) = watch::channel(None::<State>);
    let (regarding_tx, regarding_rx) = watch::channel(ObjectReference {
        api_version: Some(RedundantGroup::api_version(&()).into_owned()),
        kind: Some(RedundantGroup::kind(&()).into_owned()),
        name: Some(env.group.clone()),
        namespace: Some(env.namespace.clone()),
        ..ObjectReference::default()
    });
    let (event_tx, event_rx) = mpsc::channel::<Notice>(32);
    let (snapshot_tx, snapshot_rx) = watch::channel(None::<(String, Timestamp)>);
    let owner_rx = regarding_tx.subscribe();

    let poll = poll_agent(
        &cfg,
        &agent,
        entry_tx,
        role_tx,
        state_tx,
        event_tx,
        snapshot_tx,
    );
    let entries = keep_applied(entry_rx, t, "member status", |entry: MemberEntry| {
        let body = RedundantGroup::member_entry_patch(&env.group, &entry);
        let (groups, pp) = (&groups, PatchParams::apply(&manager).force());
        async move {
            groups
                .patch_status(&env.group, &pp, &Patch::Apply(&body))
                .await
                .map(drop)
        }
    });
    let labels = keep_applied(role_rx, t, "pod role label", |role: &'static str| {
        let body = json!({"metadata": {"labels": {ROLE_LABEL: role}}});
        let pp = PatchParams {
            field_manager: Some(manager.clone()),
            ..PatchParams::default()
        };
        let pods = &pods;
        async move {
            pods.patch(&env.pod, &pp, &Patch::Merge(&body))
                .await
                .map(drop)
        }
    });
    let events = publish_events(event_rx, &recorder, regarding_rx, t);
    let switchover = watch_switchover(&cfg, &groups, &agent, state_rx, regarding_tx);
    let snapshots = keep_agent_report(&cfg, &agent, &config_maps, snapshot_rx, owner_rx);
    tokio::select! {
        () = stop => tracing::info!("Kubernetes reporter stopped"),
        _ = async { tokio::join!(poll, entries, labels, events, switchover, snapshots) } => {}
    }
}

/// Reads the agent's report every poll period and hands out what is to be written.
async fn poll_agent(
    cfg: &ReporterConfig,
    agent: &AgentClient,
    entry_tx: watch::Sender<Option<MemberEntry>>,
    role_tx: watch::Sender<Option<&'static str>>,
    state_tx: watch::Sender<Option<State>>,
    event_tx: mpsc::Sender<Notice>,
    snapshot_tx: watch::Sender<Option<(String, Timestamp)>>,
) {
    let t = &cfg.tuning;
    let mut tracker = EntryTracker::new(&cfg.env.pod, &cfg.env.node, t.refresh);
    let mut schedule = SnapshotSchedule::new(t.snapshot_every, t.snapshot_min_gap);
    let mut prev = None;
    let mut agent_ok = true;
    let mut tick = tokio::time::interval(cfg.tuning.poll);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let (report, text) = match agent.status_with_text().await {
            Ok(r) => r,
            Err(e) => {
                // Normal while the agent starts; worth a warning once it had answered.
                if agent_ok && prev.is_some() {
                    tracing::warn!(error = %e, "cannot read the agent's status");
                } else {
                    tracing::debug!(error = %e, "cannot read the agent's status");
                }
                agent_ok = false;
                continue;
            }
        };
        agent_ok = true;
        let now = Instant::now().into_std();
        let wall = Timestamp::now();
        if let Some(entry) = tracker.observe(&report, now, wall) {
            entry_tx.send_replace(Some(entry));
        }
        if schedule.due(report.state, now) {
            snapshot_tx.send_replace(Some((text, wall)));
        }
        let role = role_of(report.state);
        role_tx.send_if_modified(|r| {
            let changed = *r != Some(role);
            *r = Some(role);
            changed
        });
        state_tx.send_replace(Some(report.state));
        for n in transition_notices(prev.as_ref(), &report) {
            if event_tx.try_send(n).is_err() {
                tracing::warn!("too many Events queued: one dropped");
            }
        }
        prev = Some(report);
    }
}

/// Applies the newest value of `rx` whenever it changes: one request in flight, at least
/// `min_write_gap` apart, retried with back-off (always with the newest value) on errors.
async fn keep_applied<T, F, Fut>(
    mut rx: watch::Receiver<Option<T>>,
    t: &Tuning,
    what: &str,
    mut apply: F,
) where
    T: Clone,
    F: FnMut(T) -> Fut,
    Fut: Future<Output = Result<(), kube::Error>>,
{
    let mut retry = t.retry(&format!("write the {what}"));
    while rx.changed().await.is_ok() {
        loop {
            let Some(value) = rx.borrow_and_update().clone() else {
                break;
            };
            match apply(value).await {
                Ok(()) => {
                    retry.succeeded();
                    tracing::debug!("{what} written");
                    tokio::time::sleep(t.min_write_gap).await;
                    break;
                }
                Err(e) => tokio::time::sleep(retry.failed(&e)).await,
            }
        }
    }
}

/// Writes the agent report ConfigMap with each `/status` text handed out (and `/metrics` read
/// just then), once the group has been read: the ConfigMap's owner reference needs its uid.
async fn keep_agent_report(
    cfg: &ReporterConfig,
    agent: &AgentClient,
    config_maps: &Api<ConfigMap>,
    rx: watch::Receiver<Option<(String, Timestamp)>>,
    mut group: watch::Receiver<ObjectReference>,
) {
    if group.wait_for(|g| g.uid.is_some()).await.is_err() {
        return;
    }
    let group = &group;
    keep_applied(rx, &cfg.tuning, "agent report", |(status, taken_at)| {
        let owner = group.borrow().clone();
        async move {
            let metrics = match agent.metrics().await {
                Ok(m) => m,
                Err(e) => format!("# the agent's /metrics could not be read: {e}\n"),
            };
            let snap = Snapshot {
                status,
                metrics,
                taken_at,
            };
            let cm = agent_report(&cfg.env, &cfg.member, &owner, &snap)
                .expect("the group's uid is known");
            apply_agent_report(config_maps, &cfg.member, &cm).await
        }
    })
    .await;
}

/// Publishes queued Events about the group; on errors waits (back-off) and goes on with the
/// next one: Events are best-effort.
async fn publish_events(
    mut rx: mpsc::Receiver<Notice>,
    recorder: &Recorder,
    regarding: watch::Receiver<ObjectReference>,
    t: &Tuning,
) {
    let mut retry = t.retry("publish Events");
    while let Some(n) = rx.recv().await {
        let ev = Event {
            type_: match n.severity {
                Severity::Normal => EventType::Normal,
                Severity::Warning => EventType::Warning,
            },
            reason: n.reason.to_string(),
            note: Some(n.note.clone()),
            action: "Report".to_string(),
            secondary: None,
        };
        let reference = regarding.borrow().clone();
        match recorder.publish(&ev, &reference).await {
            Ok(()) => {
                retry.succeeded();
            }
            Err(e) => {
                tracing::debug!(reason = n.reason, note = %n.note, error = %e, "Event dropped");
                let e = format!("{e} (Event {}, dropped)", n.reason);
                tokio::time::sleep(retry.failed(&e)).await;
            }
        }
    }
}

/// Reads the group every `group_poll`; passes a pending switchover for another member to
/// this (hot) member's agent, once per request.
async fn watch_switchover(
    cfg: &ReporterConfig,
    groups: &Api<RedundantGroup>,
    agent: &AgentClient,
    state: watch::Receiver<Option<State>>,
    regarding: watch::Sender<ObjectReference>,
) {
    let mut trigger = SwitchoverTrigger::default();
    let mut retry = cfg.tuning.retry("read the RedundantGroup");
    let mut tick = tokio::time::interval(cfg.tuning.group_poll);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let group = match groups.get(&cfg.env.group).await {
            Ok(g) => {
                retry.succeeded();
                g
            }
            Err(e) => {
                tokio::time::sleep(retry.failed(&e)).await;
                continue;
            }
        };
        regarding.send_replace(group.object_ref(&()));
        let my_state = *state.borrow();
        let Some(to) = trigger.check(group.status.as_ref(), &cfg.member, my_state) else {
            continue;
        };
        tracing::info!(%to, "switchover requested through the RedundantGroup: asking the agent to hand over");
        match agent.switchover(&to).await {
            Ok(answer) => tracing::info!(%to, %answer, "switchover accepted by the agent"),
            Err(e) => tracing::warn!(%to, error = %e, "switchover not accepted by the agent"),
        }
    }
}
