//! The controller: for each `RedundantGroup`, renders the configuration into a ConfigMap,
//! keeps one pod per member (creating missing ones, rolling out-of-date ones standbys first
//! with one planned hand-over), applies the Service, carries out switchover requests through
//! the status, and aggregates the members' reports into `hot`, `phase` and the conditions.
//! When `spec.service` is removed, it deletes the Service it made (never one it does not
//! control).
//!
//! The watches of the objects it owns (pods, ConfigMaps, Services carrying the group label)
//! also fill caches: a reconcile reads the group's pods from there instead of listing them,
//! and applies the ConfigMap only when the cached one differs. A group with nothing to do
//! costs no request. While a cache's first listing is incomplete, it asks the API server.
//!
//! [`reconcile`] is the list of steps; each is a method of `RedundantGroup` in the file of its
//! concept: `config_map.rs`, `service.rs`, `pods.rs` (the group's pods and the rollout),
//! `switchover.rs`, `events.rs`, `status.rs`; `caches.rs` holds what the watches have seen.

mod caches;
mod config_map;
mod events;
mod pods;
mod service;
mod status;
mod switchover;

pub use caches::Caches;
pub use status::apply_aggregate;
pub use switchover::SWITCHOVER_ANNOTATION;

use crate::aggregate::aggregate;
use crate::children::{AGENT_REPORT_COMPONENT, GROUP_LABEL, MANAGER, PodDefaults, pods_hash};
use crate::metrics::ControllerMetrics;
use crate::render::render;
use crate::resource::RedundantGroup;
use crate::retry::{Backoff, Retry, watch_backoff};
use crate::rollout::request;
use crate::status::{Phase, RedundantGroupStatus};
use caches::PodIndex;
use futures_util::{StreamExt, TryStreamExt};
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{EventType, Recorder, Reporter};
use kube::runtime::reflector;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};
use rdg_core::config::Problem;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long running reconciles get to finish after SIGTERM.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Next reconcile while a rollout or hand-over is under way.
const BUSY_REQUEUE: Duration = Duration::from_secs(2);
/// Next reconcile of a group with nothing under way (watch events trigger earlier ones).
const IDLE_REQUEUE: Duration = Duration::from_secs(30);
/// Next reconcile of a group whose spec is invalid.
const INVALID_REQUEUE: Duration = Duration::from_secs(300);

/// Why a reconcile failed (it is retried with back-off).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A request to the API server failed.
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// The group has no namespace (the CRD is namespaced; this is a bug elsewhere).
    #[error("RedundantGroup {0} has no namespace")]
    NoNamespace(String),
}

/// Shared by every reconcile.
pub struct Context {
    /// The API client.
    pub client: Client,
    /// Publishes Events about groups.
    pub recorder: Recorder,
    /// Image and ServiceAccount of member pods.
    pub defaults: PodDefaults,
    /// Reconcile counters and timings.
    pub metrics: ControllerMetrics,
    /// Consecutive failures per group, for the back-off.
    failures: Mutex<HashMap<String, u32>>,
    /// The clock (tests pin it).
    now: Box<dyn Fn() -> Time + Send + Sync>,
    /// What the watches of the group's children have seen; [`run`] sets them. Without them
    /// (a context used outside `run`, as by a benchmark) a reconcile lists the pods, applies
    /// the ConfigMap every time and never looks for a Service to remove.
    caches: OnceLock<Caches>,
    /// Names of the pods in the pod cache by namespace and group.
    pod_names: PodIndex,
}

impl Context {
    /// A context with the wall clock.
    pub fn new(client: Client, defaults: PodDefaults, reporter: Reporter) -> Context {
        Context::with_clock(
            client,
            defaults,
            reporter,
            Box::new(|| Time(k8s_openapi::jiff::Timestamp::now())),
        )
    }

    /// A context with a given clock.
    pub fn with_clock(
        client: Client,
        defaults: PodDefaults,
        reporter: Reporter,
        now: Box<dyn Fn() -> Time + Send + Sync>,
    ) -> Context {
        Context {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            defaults,
            metrics: ControllerMetrics::default(),
            failures: Mutex::new(HashMap::new()),
            now,
            caches: OnceLock::new(),
            pod_names: PodIndex::default(),
        }
    }

    /// The API of objects of kind `K` in namespace `ns`.
    fn api<K>(&self, ns: &str) -> Api<K>
    where
        K: Resource<Scope = NamespaceResourceScope>,
        K::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), ns)
    }

    /// Counts a failed reconcile of `group`; returns its consecutive failures.
    fn note_failure(&self, group: &RedundantGroup) -> u32 {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let n = failures.entry(group.key()).or_insert(0);
        *n = n.saturating_add(1);
        *n
    }

    /// Forgets `group`'s failures after a successful reconcile.
    fn forget_failures(&self, group: &RedundantGroup) {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&group.key());
    }
}

/// Runs the controller for groups in every namespace (or one) until `shutdown` completes.
pub async fn run(
    ctx: Arc<Context>,
    namespace: Option<String>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let client = ctx.client.clone();
    let groups: Api<RedundantGroup> = match &namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let (pods, cms, svcs): (Api<Pod>, Api<ConfigMap>, Api<Service>) = match &namespace {
        Some(ns) => (ctx.api(ns), ctx.api(ns), ctx.api(ns)),
        None => (
            Api::all(client.clone()),
            Api::all(client.clone()),
            Api::all(client.clone()),
        ),
    };
    let owned = watcher::Config::default().labels(GROUP_LABEL);
    // The children's watches trigger reconciles of their group and fill the caches. Managed
    // fields are dropped: the controller never reads them.
    let (pod_store, pod_writer) = reflector::store();
    let (cm_store, cm_writer) = reflector::store();
    let (svc_store, svc_writer) = reflector::store();
    let caches = Caches {
        pods: pod_store,
        config_maps: cm_store,
        services: svc_store,
    };
    if !ctx.use_caches(caches) {
        tracing::warn!("the context has caches already; they are not kept up to date");
    }
    let indexing = Arc::clone(&ctx);
    let pod_events = reflector::reflector(
        pod_writer,
        watcher(pods, owned.clone()).modify(|p: &mut Pod| p.managed_fields_mut().clear()),
    )
    .inspect_ok(move |ev| indexing.note_pod_event(ev))
    .backoff(watch_backoff())
    .touched_objects();
    // The agents' report ConfigMaps carry the group label too, but are not the controller's.
    let owned_cms = watcher::Config::default().labels(&format!(
        "{GROUP_LABEL},app.kubernetes.io/component!={AGENT_REPORT_COMPONENT}"
    ));
    let cm_events = reflector::reflector(
        cm_writer,
        watcher(cms, owned_cms).modify(|c: &mut ConfigMap| c.managed_fields_mut().clear()),
    )
    .backoff(watch_backoff())
    .touched_objects();
    let svc_events = reflector::reflector(
        svc_writer,
        watcher(svcs, owned).modify(|s: &mut Service| s.managed_fields_mut().clear()),
    )
    .backoff(watch_backoff())
    .touched_objects();
    // Graceful shutdown lets running reconciles finish, but the controller waits for its
    // stores first; with the API server unreachable that never happens, so give it a bound.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    // Reconcile failures are logged by error_policy; what reaches here unlogged are the
    // watches' errors (an unreachable API server), logged once per quiet period.
    let mut watch_errors = Retry::new(
        "watch the API server",
        Backoff::WATCH,
        Duration::from_secs(30),
    );
    let controller = Controller::new(groups, watcher::Config::default())
        .owns_stream(pod_events)
        .owns_stream(cm_events)
        .owns_stream(svc_events)
        .trigger_backoff(watch_backoff())
        .graceful_shutdown_on(stopped(stop_rx.clone()))
        .run(reconcile, error_policy, ctx)
        .for_each(|r| {
            match r {
                Ok((obj, _)) => {
                    watch_errors.succeeded();
                    tracing::debug!(group = %obj.name, "reconciled");
                }
                Err(kube::runtime::controller::Error::ReconcilerFailed(..)) => {}
                Err(e) => {
                    watch_errors.failed(&e);
                }
            }
            std::future::ready(())
        });
    tokio::select! {
        _ = controller => {}
        _ = async {
            stopped(stop_rx).await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } => tracing::warn!(grace = ?SHUTDOWN_GRACE, "reconciles still running at shutdown; stopped anyway"),
    }
}

/// Back-off after a failed reconcile: [`Backoff::RECONCILE`] by consecutive failures.
pub fn error_policy(group: Arc<RedundantGroup>, error: &Error, ctx: Arc<Context>) -> Action {
    let failures = ctx.note_failure(&group);
    let delay = Backoff::RECONCILE.delay(failures.into());
    ctx.metrics.failure();
    tracing::warn!(group = %group.key(), error = %error, retry_in = ?delay, "reconcile failed");
    Action::requeue(delay)
}

/// Reconciles one group (see the module docs), timed, its back-off reset on success.
pub async fn reconcile(group: Arc<RedundantGroup>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let result = group.reconcile(&ctx).await;
    ctx.metrics.reconciled(started.elapsed());
    if result.is_ok() {
        ctx.forget_failures(&group);
    }
    result
}

impl RedundantGroup {
    /// `namespace/name`, as the failure counts and logs name the group.
    fn key(&self) -> String {
        format!(
            "{}/{}",
            self.namespace().unwrap_or_default(),
            self.name_any()
        )
    }

    /// One reconcile: its steps in order.
    async fn reconcile(&self, ctx: &Context) -> Result<Action, Error> {
        let ns = self
            .namespace()
            .ok_or_else(|| Error::NoNamespace(self.name_any()))?;
        if self.meta().deletion_timestamp.is_some() {
            // Owner references delete the pods, ConfigMap and Service.
            return Ok(Action::await_change());
        }
        let now = (ctx.now)();
        let previous = self.status.clone().unwrap_or_default();
        let rendered = match render(&self.name_any(), &self.spec) {
            Ok(r) => r,
            Err(problems) => {
                return self
                    .report_invalid_spec(ctx, &ns, &previous, &problems, &now)
                    .await;
            }
        };
        self.apply_config_map(ctx, &ns, &rendered).await?;
        self.apply_service(ctx, &ns).await?;
        let pods = self.member_pods(ctx, &ns).await?;
        let agg = aggregate(&self.spec, &previous, &pods.by_member, &[], &now);
        let switchover = self
            .take_up_switchover(ctx, &ns, &previous, &agg, &now)
            .await?;
        let pending = switchover::is_pending(switchover.as_ref());
        let hash = pods_hash(self, &rendered, &ctx.defaults);
        let plan = self.plan_rollout(&pods, &hash, &previous, &agg, pending);
        let switchover = match &plan.switchover {
            Some(to) => Some(request(to, "rollout", None, &now)),
            None => switchover,
        };
        self.carry_out(ctx, &ns, &plan, &rendered, &hash).await?;
        self.announce(ctx, &previous, &agg, switchover.as_ref())
            .await;
        let status = self.status_from(&previous, &agg, switchover, Some(hash));
        self.write_status(&ctx.api(&ns), &previous, status).await?;
        let busy = pending || pods::under_way(&plan);
        Ok(Action::requeue(if busy {
            BUSY_REQUEUE
        } else {
            IDLE_REQUEUE
        }))
    }

    /// With an invalid spec, changes nothing but the status, and says so once by an Event.
    async fn report_invalid_spec(
        &self,
        ctx: &Context,
        ns: &str,
        previous: &RedundantGroupStatus,
        problems: &[Problem],
        now: &Time,
    ) -> Result<Action, Error> {
        let pods = self.member_pods(ctx, ns).await?;
        let agg = aggregate(&self.spec, previous, &pods.by_member, problems, now);
        let status = self.status_from(previous, &agg, previous.switchover.clone(), None);
        if previous.phase != Some(Phase::Invalid) {
            let lines: Vec<String> = problems.iter().map(|p| format!("spec.{p}")).collect();
            let lines = lines.join("; ");
            tracing::warn!(group = %self.name_any(), problems = %lines, "invalid spec; nothing changed");
            self.publish(ctx, EventType::Warning, "InvalidSpec", lines)
                .await;
        }
        self.write_status(&ctx.api(ns), previous, status).await?;
        Ok(Action::requeue(INVALID_REQUEUE))
    }
}

/// Server-side apply, as the controller's field manager, taking fields over from others.
fn apply_params() -> PatchParams {
    PatchParams::apply(MANAGER).force()
}

/// A child object as a server-side apply body (apiVersion and kind filled in from its type).
fn apply_body<K>(obj: &K) -> serde_json::Value
where
    K: Resource<DynamicType = ()> + serde::Serialize,
{
    let mut v = serde_json::to_value(obj).expect("k8s objects serialize");
    if let Some(o) = v.as_object_mut() {
        o.insert("apiVersion".to_string(), K::api_version(&()).into());
        o.insert("kind".to_string(), K::kind(&()).into());
    }
    v
}
