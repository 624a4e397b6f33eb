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

use crate::aggregate::{Aggregate, aggregate, pod_running};
use crate::children::{
    self, GROUP_LABEL, MANAGER, PodDefaults, config_map, hash_of, member_of, pods_hash,
};
use crate::metrics::ControllerMetrics;
use crate::render::render;
use crate::resource::RedundantGroup;
use crate::retry::{Retry, WATCH_BACKOFF_MAX, WATCH_BACKOFF_START, watch_backoff};
use crate::rollout::{MemberView, PodView, advance, operator_request_is_new, plan, request};
use crate::status::{Phase, RedundantGroupStatus, SwitchoverPhase, SwitchoverStatus};
use futures_util::FutureExt;
use futures_util::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Annotation an operator may set on a group to ask for a planned hand-over to a member; the
/// controller takes it up and removes it.
pub const SWITCHOVER_ANNOTATION: &str = "rdg.infocast.io/switchover-to";

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
    /// Names of the pods in the pod cache by namespace and group, so that a reconcile need not
    /// scan the whole cache for its group's pods: kept up to date from the pod watch's events
    /// by [`run`] ([`Context::note_pod_event`]); a group not in it yet is found by one scan.
    /// It may name pods that are gone (each is looked up in the cache).
    pod_names: Mutex<HashMap<(String, String), BTreeSet<String>>>,
}

/// The objects carrying [`GROUP_LABEL`], as the controller's watches see them. They may lag
/// behind the API server: a reconcile that acts on a stale entry gets a 409 or 404 it
/// tolerates, and the watch event that brings the entry up to date triggers another reconcile.
#[derive(Clone)]
pub struct Caches {
    /// Member pods.
    pub pods: Store<Pod>,
    /// The rendered configuration ConfigMaps.
    pub config_maps: Store<ConfigMap>,
    /// The Services selecting the hot members.
    pub services: Store<Service>,
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
            pod_names: Mutex::new(HashMap::new()),
        }
    }

    /// Reads the group's children from `caches` instead of asking the API server; [`run`]
    /// sets its own. Returns false when caches were set already.
    pub fn use_caches(&self, caches: Caches) -> bool {
        self.caches.set(caches).is_ok()
    }

    /// Keeps the index of the pod cache by group up to date with an event of the pod watch.
    pub fn note_pod_event(&self, event: &watcher::Event<Pod>) {
        let (pod, present) = match event {
            watcher::Event::Apply(p) | watcher::Event::InitApply(p) => (p, true),
            watcher::Event::Delete(p) => (p, false),
            watcher::Event::Init | watcher::Event::InitDone => return,
        };
        let (Some(ns), Some(group)) = (pod.namespace(), pod.labels().get(GROUP_LABEL)) else {
            return;
        };
        let mut index = self.pod_names.lock().unwrap_or_else(|e| e.into_inner());
        let key = (ns, group.clone());
        if present {
            index.entry(key).or_default().insert(pod.name_any());
        } else if let Some(names) = index.get_mut(&key) {
            names.remove(&pod.name_any());
            // A deleted group's entry goes with its last pod.
            if names.is_empty() {
                index.remove(&key);
            }
        }
    }

    /// The pods in the pod cache labelled with group `group` of namespace `ns`, or of its
    /// `members` (whose pods the index may not know yet).
    fn cached_pods(
        &self,
        cache: &Store<Pod>,
        ns: &str,
        group: &str,
        members: &[String],
    ) -> Vec<Pod> {
        let key = (ns.to_string(), group.to_string());
        let known = self
            .pod_names
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            .cloned();
        let known = known.unwrap_or_else(|| {
            let names: BTreeSet<String> = cache
                .state_filter(|p| {
                    p.metadata.namespace.as_deref() == Some(ns)
                        && p.labels().get(GROUP_LABEL).map(String::as_str) == Some(group)
                })
                .iter()
                .map(|p| p.name_any())
                .collect();
            self.pod_names
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(key)
                .or_default()
                .extend(names.iter().cloned());
            names
        });
        let expected = members.iter().map(|m| children::pod_name(group, m));
        let names: BTreeSet<String> = known.into_iter().chain(expected).collect();
        names
            .iter()
            .filter_map(|n| cache.get(&ObjectRef::new(n).within(ns)))
            .filter(|p| p.labels().get(GROUP_LABEL).map(String::as_str) == Some(group))
            .map(|p| Pod::clone(&p))
            .collect()
    }

    /// A cache, once its first listing is complete (before it, a missing object proves
    /// nothing).
    fn cache<K>(&self, pick: impl Fn(&Caches) -> &Store<K>) -> Option<&Store<K>>
    where
        K: kube::runtime::reflector::Lookup + Clone + 'static,
        K::DynamicType: Eq + std::hash::Hash + Clone,
    {
        let store = pick(self.caches.get()?);
        matches!(store.wait_until_ready().now_or_never(), Some(Ok(()))).then_some(store)
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
        Some(ns) => (
            Api::namespaced(client.clone(), ns),
            Api::namespaced(client.clone(), ns),
            Api::namespaced(client.clone(), ns),
        ),
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
    let cm_events = reflector::reflector(
        cm_writer,
        watcher(cms, owned.clone()).modify(|c: &mut ConfigMap| c.managed_fields_mut().clear()),
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
        WATCH_BACKOFF_START,
        WATCH_BACKOFF_MAX,
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

/// How long running reconciles get to finish after SIGTERM.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

fn key(g: &RedundantGroup) -> String {
    format!("{}/{}", g.namespace().unwrap_or_default(), g.name_any())
}

/// Back-off after a failed reconcile: 1 s, doubling per consecutive failure, at most 5 min.
pub fn error_policy(group: Arc<RedundantGroup>, error: &Error, ctx: Arc<Context>) -> Action {
    let mut f = ctx.failures.lock().unwrap_or_else(|e| e.into_inner());
    let n = f.entry(key(&group)).or_insert(0);
    *n = n.saturating_add(1);
    let delay = Duration::from_secs(1u64 << (*n - 1).min(8)).min(Duration::from_secs(300));
    ctx.metrics.failure();
    tracing::warn!(group = %key(&group), error = %error, retry_in = ?delay, "reconcile failed");
    Action::requeue(delay)
}

/// Reconciles one group; see the module docs.
pub async fn reconcile(group: Arc<RedundantGroup>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let result = reconcile_inner(&group, &ctx).await;
    ctx.metrics.reconciled(started.elapsed());
    if result.is_ok() {
        ctx.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&key(&group));
    }
    result
}

async fn reconcile_inner(group: &RedundantGroup, ctx: &Context) -> Result<Action, Error> {
    let ns = group
        .namespace()
        .ok_or_else(|| Error::NoNamespace(group.name_any()))?;
    if group.meta().deletion_timestamp.is_some() {
        // Owner references delete the pods, ConfigMap and Service.
        return Ok(Action::await_change());
    }
    let name = group.name_any();
    let now = (ctx.now)();
    let previous = group.status.clone().unwrap_or_default();
    let client = ctx.client.clone();
    let groups: Api<RedundantGroup> = Api::namespaced(client.clone(), &ns);
    let pods_api: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let apply = PatchParams::apply(MANAGER).force();

    // An invalid spec changes nothing but the status.
    let rendered = match render(&name, &group.spec) {
        Ok(r) => r,
        Err(problems) => {
            let pods = member_pods(ctx, &pods_api, group, &ns).await?;
            let agg = aggregate(&group.spec, &previous, &pods.0, &problems, &now);
            let status = status_of(group, &previous, &agg, previous.switchover.clone(), None);
            if previous.phase != Some(Phase::Invalid) {
                let lines: Vec<String> = problems.iter().map(|p| format!("spec.{p}")).collect();
                tracing::warn!(group = %name, problems = %lines.join("; "), "invalid spec; nothing changed");
                publish(
                    ctx,
                    group,
                    EventType::Warning,
                    "InvalidSpec",
                    lines.join("; "),
                )
                .await;
            }
            write_status(&groups, &name, &previous, status, &apply).await?;
            prune_entries(&groups, group, &previous).await?;
            return Ok(Action::requeue(Duration::from_secs(300)));
        }
    };

    let cm_api: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let cm = config_map(group, &rendered);
    let cm_name = children::config_map_name(&name);
    let cached = ctx
        .cache(|c| &c.config_maps)
        .and_then(|c| c.get(&ObjectRef::new(&cm_name).within(&ns)));
    if !cached.is_some_and(|c| config_map_current(&c, &cm, group)) {
        cm_api
            .patch(
                &cm_name,
                &apply,
                &Patch::Apply(&with_kind(&cm, "v1", "ConfigMap")),
            )
            .await?;
    }
    if let Some(svc) = children::service(group) {
        let svc_api: Api<Service> = Api::namespaced(client.clone(), &ns);
        svc_api
            .patch(
                &name,
                &apply,
                &Patch::Apply(&with_kind(&svc, "v1", "Service")),
            )
            .await?;
    } else {
        remove_service(ctx, group, &ns).await?;
    }

    let (pods, orphans) = member_pods(ctx, &pods_api, group, &ns).await?;
    let hash = pods_hash(group, &rendered, &ctx.defaults);
    let agg = aggregate(&group.spec, &previous, &pods, &[], &now);

    // Planned hand-overs: advance the one under way, take up a new operator request.
    let mut switchover = advance(previous.switchover.as_ref(), agg.hot.as_deref(), &now);
    let annotated = group.annotations().get(SWITCHOVER_ANNOTATION).cloned();
    let pending = switchover
        .as_ref()
        .is_some_and(|s| s.phase == SwitchoverPhase::Pending);
    if let Some(to) = &annotated {
        if group.spec.member(to).is_some() && !pending {
            switchover = Some(request(to, "operator", group.meta().generation, &now));
        } else if group.spec.member(to).is_none() {
            publish(
                ctx,
                group,
                EventType::Warning,
                "SwitchoverRejected",
                format!("{SWITCHOVER_ANNOTATION}: {to:?} is not a member"),
            )
            .await;
        }
        if group.spec.member(to).is_none() || !pending {
            let remove =
                serde_json::json!({"metadata": {"annotations": {SWITCHOVER_ANNOTATION: null}}});
            groups
                .patch(&name, &PatchParams::default(), &Patch::Merge(&remove))
                .await?;
        }
    } else if let Some(req) = &group.spec.switchover
        && !pending
        && operator_request_is_new(&req.to, switchover.as_ref())
    {
        switchover = Some(request(&req.to, "operator", group.meta().generation, &now));
    }
    let pending = switchover
        .as_ref()
        .is_some_and(|s| s.phase == SwitchoverPhase::Pending);

    let views: Vec<MemberView> = group
        .spec
        .members
        .iter()
        .map(|m| {
            let pod = pods.get(&m.name);
            let entry = previous.member(&m.name);
            let counts = pod.is_some_and(pod_running);
            MemberView {
                name: m.name.clone(),
                priority: m.priority,
                pod: pod.map(|p| PodView {
                    name: p.name_any(),
                    up_to_date: hash_of(p) == Some(hash.as_str()),
                    running: pod_running(p),
                    deleting: p.metadata.deletion_timestamp.is_some(),
                }),
                state: entry.filter(|_| counts).and_then(|e| e.state),
                net_check_ok: entry.and_then(|e| e.net_check_ok),
            }
        })
        .collect();
    let plan = plan(&views, &orphans, agg.hot.as_deref(), pending);
    if let Some(to) = &plan.switchover {
        switchover = Some(request(to, "rollout", None, &now));
    }

    let mut created = Vec::new();
    for member in &plan.create {
        let spec = group.spec.member(member).expect("planned from the spec");
        let pod = children::pod(group, spec, &rendered, &hash, &ctx.defaults);
        match pods_api.create(&PostParams::default(), &pod).await {
            Ok(_) => {}
            // Created meanwhile (a stale cache): the next reconcile sees it.
            Err(kube::Error::Api(e)) if e.code == 409 => continue,
            Err(e) => return Err(e.into()),
        }
        tracing::info!(group = %name, member = %member, "pod created");
        created.push(pod.name_any());
    }
    if !created.is_empty() {
        let note = format!("created pod(s) {}", created.join(", "));
        publish(ctx, group, EventType::Normal, "PodsCreated", note).await;
    }
    let mut deleted = Vec::new();
    for (pod, why) in &plan.delete {
        match pods_api.delete(pod, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => continue,
            Err(e) => return Err(e.into()),
        }
        tracing::info!(group = %name, pod = %pod, reason = %why, "pod deleted");
        deleted.push(format!("{pod} ({why})"));
    }
    if !deleted.is_empty() {
        let note = format!("deleted pod(s) {}", deleted.join(", "));
        publish(ctx, group, EventType::Normal, "PodsReplaced", note).await;
    }
    if let Some(w) = &plan.waiting {
        tracing::info!(group = %name, "{w}");
    }

    announce(ctx, group, &previous, &agg, switchover.as_ref()).await;
    let busy = pending
        || plan.switchover.is_some()
        || !plan.create.is_empty()
        || !plan.delete.is_empty()
        || plan.waiting.is_some();
    let status = status_of(group, &previous, &agg, switchover, Some(hash));
    write_status(&groups, &name, &previous, status, &apply).await?;
    prune_entries(&groups, group, &previous).await?;
    Ok(Action::requeue(if busy {
        Duration::from_secs(2)
    } else {
        Duration::from_secs(30)
    }))
}

/// Deletes the Service the group had while `spec.service` was set: only one the group
/// controls (its owner reference), so a Service of the same name that someone else made stays.
async fn remove_service(ctx: &Context, group: &RedundantGroup, ns: &str) -> Result<(), Error> {
    let name = group.name_any();
    let api: Api<Service> = Api::namespaced(ctx.client.clone(), ns);
    let found = match ctx.cache(|c| &c.services) {
        Some(cache) => cache
            .get(&ObjectRef::new(&name).within(ns))
            .map(|s| Service::clone(&s)),
        None if ctx.caches.get().is_none() => return Ok(()),
        None => api.get_opt(&name).await?,
    };
    let Some(svc) = found else { return Ok(()) };
    if !controlled_by(&svc, group) || svc.metadata.deletion_timestamp.is_some() {
        return Ok(());
    }
    // The precondition makes sure it is the Service seen, not one made since under its name.
    let params = DeleteParams {
        preconditions: Some(Preconditions {
            uid: svc.uid(),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    match api.delete(&name, &params).await {
        Ok(_) => {}
        // Gone already, or replaced by another object: nothing of ours to delete.
        Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => return Ok(()),
        Err(e) => return Err(e.into()),
    }
    tracing::info!(group = %name, service = %name, "service deleted: spec.service was removed");
    let note = format!("deleted Service {name} (spec.service was removed)");
    publish(ctx, group, EventType::Normal, "ServiceDeleted", note).await;
    Ok(())
}

/// Whether the ConfigMap the API server has (`current`) already is the one to apply (`want`):
/// same data, our labels, controlled by the group, not being deleted.
fn config_map_current(current: &ConfigMap, want: &ConfigMap, group: &RedundantGroup) -> bool {
    current.data == want.data
        && current.binary_data.is_none()
        && current.metadata.deletion_timestamp.is_none()
        && want
            .labels()
            .iter()
            .all(|(k, v)| current.labels().get(k) == Some(v))
        && controlled_by(current, group)
}

/// Whether the group is `obj`'s controller (its owner reference with `controller: true`).
fn controlled_by<K: Resource>(obj: &K, group: &RedundantGroup) -> bool {
    let Some(uid) = group.uid() else { return false };
    obj.owner_references()
        .iter()
        .any(|o| o.controller == Some(true) && o.uid == uid && o.kind == "RedundantGroup")
}

/// The group's pods by member name, and the names of pods of members no longer in the spec:
/// from the pod cache, or listed.
async fn member_pods(
    ctx: &Context,
    api: &Api<Pod>,
    group: &RedundantGroup,
    ns: &str,
) -> Result<(BTreeMap<String, Pod>, Vec<String>), Error> {
    let name = group.name_any();
    let pods: Vec<Pod> = match ctx.cache(|c| &c.pods) {
        Some(cache) => {
            let members: Vec<String> = group.spec.members.iter().map(|m| m.name.clone()).collect();
            ctx.cached_pods(cache, ns, &name, &members)
        }
        None => {
            let lp = ListParams::default().labels(&format!("{GROUP_LABEL}={name}"));
            api.list(&lp).await?.items
        }
    };
    let mut by_member = BTreeMap::new();
    let mut orphans = Vec::new();
    for p in pods {
        match member_of(&p) {
            Some(m) if group.spec.member(&m).is_some() => {
                by_member.insert(m, p);
            }
            _ if p.metadata.deletion_timestamp.is_none() => orphans.push(p.name_any()),
            _ => {}
        }
    }
    Ok((by_member, orphans))
}

/// Aggregates `group`'s member entries with its pods by member name and applies the result,
/// as a reconcile does (without its switchover and rollout steps): for an API server that
/// serves no pods, where the pods come from elsewhere. Returns the status applied.
pub async fn apply_aggregate(
    api: &Api<RedundantGroup>,
    group: &RedundantGroup,
    pods: &BTreeMap<String, Pod>,
    now: &Time,
) -> Result<RedundantGroupStatus, Error> {
    let previous = group.status.clone().unwrap_or_default();
    let problems = render(&group.name_any(), &group.spec)
        .err()
        .unwrap_or_default();
    let agg = aggregate(&group.spec, &previous, pods, &problems, now);
    let status = status_of(group, &previous, &agg, previous.switchover.clone(), None);
    let apply = PatchParams::apply(MANAGER).force();
    write_status(api, &group.name_any(), &previous, status.clone(), &apply).await?;
    prune_entries(api, group, &previous).await?;
    Ok(status)
}

/// The status the controller owns, from the aggregate.
fn status_of(
    group: &RedundantGroup,
    previous: &RedundantGroupStatus,
    agg: &Aggregate,
    switchover: Option<SwitchoverStatus>,
    hash: Option<String>,
) -> RedundantGroupStatus {
    RedundantGroupStatus {
        hot: agg.hot.clone(),
        epoch: agg.epoch,
        phase: Some(agg.phase),
        member_count: Some(group.spec.members.len() as u32),
        ready: Some(agg.ready.clone()),
        members: Vec::new(),
        conditions: agg.conditions.clone(),
        last_failover: agg.last_failover.clone(),
        switchover,
        config_hash: hash.or_else(|| previous.config_hash.clone()),
        observed_generation: group.meta().generation,
    }
}

/// Applies the controller's part of the status, unless nothing changed.
async fn write_status(
    api: &Api<RedundantGroup>,
    name: &str,
    previous: &RedundantGroupStatus,
    status: RedundantGroupStatus,
    apply: &PatchParams,
) -> Result<(), Error> {
    let unchanged = RedundantGroupStatus {
        members: previous.members.clone(),
        ..status.clone()
    } == *previous;
    if unchanged {
        return Ok(());
    }
    let body = RedundantGroup::status_patch(
        name,
        serde_json::to_value(&status).expect("a status is JSON"),
    );
    api.patch_status(name, apply, &Patch::Apply(&body)).await?;
    Ok(())
}

/// Removes the entries of `status.members` whose member left the spec. Only a member's own
/// agent applies its entry, and a removed member's agent is gone with its pod, so nobody else
/// would. Each removal is guarded by a test of the entry's name, so an entry list changed
/// meanwhile makes the patch fail (and the next reconcile retry) rather than remove another.
async fn prune_entries(
    api: &Api<RedundantGroup>,
    group: &RedundantGroup,
    previous: &RedundantGroupStatus,
) -> Result<(), Error> {
    use json_patch::jsonptr::PointerBuf;
    use json_patch::{Patch as JsonPatch, PatchOperation, RemoveOperation, TestOperation};
    let ops: Vec<PatchOperation> = previous
        .members
        .iter()
        .enumerate()
        .rev()
        .filter(|(_, e)| group.spec.member(&e.name).is_none())
        .flat_map(|(i, e)| {
            let at = PointerBuf::from_tokens(["status", "members", &i.to_string()]);
            [
                PatchOperation::Test(TestOperation {
                    path: at.with_trailing_token("name"),
                    value: serde_json::Value::String(e.name.clone()),
                }),
                PatchOperation::Remove(RemoveOperation { path: at }),
            ]
        })
        .collect();
    if ops.is_empty() {
        return Ok(());
    }
    let removed = ops.len() / 2;
    match api
        .patch_status(
            &group.name_any(),
            &PatchParams::default(),
            &Patch::Json::<()>(JsonPatch(ops)),
        )
        .await
    {
        Ok(_) => {
            tracing::info!(group = %group.name_any(), removed, "removed the status entries of members no longer in the spec")
        }
        // The entries moved meanwhile (a test op failed): the write it raced with triggers
        // another reconcile, which tries again on the new list.
        Err(kube::Error::Api(e)) if e.code == 422 => {
            tracing::debug!(group = %group.name_any(), error = %e, "status entries changed meanwhile; pruning on the next reconcile");
        }
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

/// Events for what changed: a failover, split brain, a hand-over's progress.
async fn announce(
    ctx: &Context,
    group: &RedundantGroup,
    previous: &RedundantGroupStatus,
    agg: &Aggregate,
    switchover: Option<&SwitchoverStatus>,
) {
    if let Some(f) = &agg.last_failover
        && previous.last_failover.as_ref() != Some(f)
    {
        let note = format!(
            "{} took over from {} ({}){}",
            f.to,
            f.from.as_deref().unwrap_or("nobody"),
            f.reason,
            f.detection_ms
                .map(|d| format!(", detected after {d} ms"))
                .unwrap_or_default()
        );
        publish(ctx, group, EventType::Warning, "Failover", note).await;
    }
    if agg.phase == Phase::SplitBrain && previous.phase != Some(Phase::SplitBrain) {
        publish(
            ctx,
            group,
            EventType::Warning,
            "SplitBrain",
            format!("members claiming hot: {}", agg.claims.join(", ")),
        )
        .await;
    }
    if let Some(s) = switchover {
        let before = previous.switchover.as_ref();
        let changed =
            before.map(|b| (b.phase, &b.to, &b.requested)) != Some((s.phase, &s.to, &s.requested));
        if changed {
            let (kind, reason, note) = match s.phase {
                SwitchoverPhase::Pending => (
                    EventType::Normal,
                    "SwitchoverRequested",
                    format!("hand-over to {} requested ({})", s.to, s.reason),
                ),
                SwitchoverPhase::Done => (
                    EventType::Normal,
                    "SwitchoverDone",
                    format!("{} is hot", s.to),
                ),
                SwitchoverPhase::Failed => (
                    EventType::Warning,
                    "SwitchoverFailed",
                    s.message.clone().unwrap_or_default(),
                ),
            };
            publish(ctx, group, kind, reason, note).await;
        }
    }
}

/// Publishes an Event about the group; a failure is logged, never fatal.
async fn publish(
    ctx: &Context,
    group: &RedundantGroup,
    kind: EventType,
    reason: &str,
    note: String,
) {
    let ev = Event {
        type_: kind,
        reason: reason.to_string(),
        note: Some(note),
        action: "Reconcile".to_string(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&ev, &group.object_ref(&())).await {
        tracing::warn!(error = %e, reason, "could not publish event");
    }
}

/// A child object as a server-side apply body (apiVersion and kind filled in).
fn with_kind<T: serde::Serialize>(obj: &T, api_version: &str, kind: &str) -> serde_json::Value {
    let mut v = serde_json::to_value(obj).expect("k8s objects serialize");
    if let Some(o) = v.as_object_mut() {
        o.insert("apiVersion".to_string(), api_version.into());
        o.insert("kind".to_string(), kind.into());
    }
    v
}
