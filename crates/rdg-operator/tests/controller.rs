//! Reconcile tests against the fake API server (`fake_api`, the controller-rs pattern): it
//! answers every request like the real one would (echoing applied and created objects,
//! listing the scenario's pods) and records it; each test then asserts the exact requests one
//! reconcile made: method, path, field manager and body.

use k8s_openapi::api::core::v1::{ConfigMap, Pod, PodCondition, PodStatus, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};
use kube::runtime::events::Reporter;
use kube::runtime::{reflector, watcher};
use kube::{Resource, ResourceExt};
use rdg_core::State;
use rdg_operator::children::{HASH_ANNOTATION, PodDefaults, pod_name};
use rdg_operator::controller::{Caches, Context, reconcile};
use rdg_operator::fake_api::{self, Call, FakeApiServer, Reply};
use rdg_operator::status::{
    Failover, MemberEntry, Phase, RedundantGroupStatus, SwitchoverPhase, SwitchoverStatus,
};
use rdg_operator::{RedundantGroup, RedundantGroupSpec};
use serde_json::{Value, json};
use std::sync::Arc;

const NOW: &str = "2026-11-23T10:00:00Z";

fn now() -> Time {
    Time(NOW.parse().unwrap())
}

fn at(s: &str) -> Time {
    Time(s.parse().unwrap())
}

fn at_micro(s: &str) -> MicroTime {
    MicroTime(s.parse().unwrap())
}

/// What the fake API server serves: the scenario's pods and Services.
struct World {
    pods: Vec<Pod>,
    services: Vec<Service>,
}

fn spec(members: &[(&str, u16)]) -> RedundantGroupSpec {
    let members: Vec<Value> = members
        .iter()
        .enumerate()
        .map(|(i, (n, p))| {
            json!({"name": n, "priority": p, "nodeName": format!("node-{n}"),
                   "addresses": {"primary": format!("10.0.0.{}", 11 + i)}})
        })
        .collect();
    serde_json::from_value(json!({
        "networks": [{"name": "primary", "multicast": "224.0.0.35"}],
        "members": members,
        "vips": [{"address": "10.0.0.100/24", "network": "primary"}],
        "netCheck": {"targets": ["10.0.0.1"]},
    }))
    .unwrap()
}

fn group(spec: RedundantGroupSpec, status: Option<RedundantGroupStatus>) -> RedundantGroup {
    let mut g = RedundantGroup::new("infocast", spec);
    g.metadata.namespace = Some("broadcast".into());
    g.metadata.uid = Some("0b8e3c3e-1111-2222-3333-444455556666".into());
    g.metadata.generation = Some(4);
    g.status = status;
    g
}

fn entry(name: &str, state: State, epoch: u64) -> MemberEntry {
    MemberEntry {
        name: name.into(),
        state: Some(state),
        epoch: Some(epoch),
        net_check_ok: Some(true),
        pod: Some(pod_name("infocast", name)),
        last_seen: Some(at_micro("2026-11-23T09:59:50Z")),
        ..MemberEntry::default()
    }
}

fn status(entries: Vec<MemberEntry>) -> RedundantGroupStatus {
    RedundantGroupStatus {
        members: entries,
        ..RedundantGroupStatus::default()
    }
}

fn defaults() -> PodDefaults {
    PodDefaults {
        image: "ghcr.io/infocast/rdg:0.1.0".into(),
        service_account: "rdg-member".into(),
    }
}

/// A running pod of member `name`, built by the controller's own code with hash `hash`.
fn running_pod(g: &RedundantGroup, name: &str, hash: &str) -> Pod {
    let rendered = rdg_operator::render::render(&g.name_any(), &g.spec).unwrap();
    let member = g.spec.member(name).unwrap();
    let mut p = rdg_operator::children::pod(g, member, &rendered, hash, &defaults());
    p.metadata.creation_timestamp = Some(at("2026-11-23T09:00:00Z"));
    p.status = Some(PodStatus {
        phase: Some("Running".into()),
        ..PodStatus::default()
    });
    p
}

/// The hash the controller wants for `g`'s pods.
fn desired_hash(g: &RedundantGroup) -> String {
    let rendered = rdg_operator::render::render(&g.name_any(), &g.spec).unwrap();
    rdg_operator::children::pods_hash(g, &rendered, &defaults())
}

fn respond(w: &mut World, call: &Call) -> Reply {
    let m = call.method.as_str();
    if m == "GET" && call.path == PODS {
        let items: Vec<Value> = w
            .pods
            .iter()
            .map(|p| serde_json::to_value(p).unwrap())
            .collect();
        return fake_api::list("PodList", items);
    }
    if let Some(name) = call.path.strip_prefix(&format!("{SERVICES}/"))
        && (m == "GET" || m == "DELETE")
    {
        return match w.services.iter().find(|s| s.name_any() == name) {
            Some(s) => (200, serde_json::to_value(s).unwrap()),
            None => fake_api::not_found(),
        };
    }
    if m == "DELETE" {
        let name = call.path.rsplit('/').next().unwrap();
        return match w.pods.iter().find(|p| p.name_any() == name) {
            Some(p) => (200, serde_json::to_value(p).unwrap()),
            None => fake_api::not_found(),
        };
    }
    if call.path == GROUP {
        // A merge patch of the group's metadata: the stored object, annotation gone.
        return (
            200,
            serde_json::to_value(group(spec(&[("a", 100), ("b", 50)]), None)).unwrap(),
        );
    }
    // PATCH (apply, merge) and POST (create): answer with the object, as the server does.
    let (code, mut body) = fake_api::echo(call);
    if call.path.contains("redundantgroups") {
        body["apiVersion"] = json!(RedundantGroup::api_version(&()));
        body["kind"] = json!(RedundantGroup::kind(&()));
        body["metadata"]["name"] = json!("infocast");
        body["metadata"]["namespace"] = json!("broadcast");
        body["spec"] = serde_json::to_value(spec(&[("a", 100)])).unwrap();
    }
    if call.path.contains("/events") {
        body["metadata"]["name"] = json!("infocast.1");
        body["metadata"]["namespace"] = json!("broadcast");
    }
    (code, body)
}

/// The controller's caches of the group's children: none (a context used outside `run`: it
/// lists pods, applies the ConfigMap, never looks for a Service to remove), ones whose first
/// listing is not complete yet (it asks the API server), or ones holding the server's pods
/// and these ConfigMaps and Services (as the running controller has them; `indexed`: the
/// pod watch's events were noted, as `run` does, else the controller scans the pod cache).
enum Cache {
    Absent,
    Unfilled,
    Holding {
        config_maps: Vec<ConfigMap>,
        services: Vec<Service>,
        indexed: bool,
    },
}

impl Cache {
    /// Filled caches holding the server's pods (indexed), no ConfigMap and `services`.
    fn services(services: Vec<Service>) -> Cache {
        Cache::Holding {
            config_maps: vec![],
            services,
            indexed: true,
        }
    }

    /// Filled caches holding the server's pods and `config_maps`, no Service.
    fn config_maps(config_maps: Vec<ConfigMap>) -> Cache {
        Cache::Holding {
            config_maps,
            services: vec![],
            indexed: true,
        }
    }
}

/// A filled cache holding `objects`.
fn filled<K>(objects: Vec<K>) -> (reflector::Store<K>, reflector::store::Writer<K>)
where
    K: reflector::Lookup<DynamicType = ()> + Clone + 'static,
{
    let (store, mut writer) = reflector::store();
    writer.apply_watcher_event(&watcher::Event::Init);
    for o in objects {
        writer.apply_watcher_event(&watcher::Event::InitApply(o));
    }
    writer.apply_watcher_event(&watcher::Event::InitDone);
    (store, writer)
}

/// Runs one reconcile of `g` against the fake server holding `pods` and no Service, without
/// caches; returns the requests.
async fn reconcile_once(g: RedundantGroup, pods: Vec<Pod>) -> Vec<Call> {
    reconcile_with(g, pods, vec![], Cache::Absent).await
}

/// Runs one reconcile of `g` against the fake server holding `pods` and `services`.
async fn reconcile_with(
    g: RedundantGroup,
    pods: Vec<Pod>,
    services: Vec<Service>,
    cache: Cache,
) -> Vec<Call> {
    let cached_pods = pods.clone();
    let (client, server) = FakeApiServer::start(World { pods, services }, respond);
    let reporter = Reporter {
        controller: "rdg-controller".into(),
        instance: Some("rdg-controller-0".into()),
    };
    let ctx = Arc::new(Context::with_clock(
        client,
        defaults(),
        reporter,
        Box::new(now),
    ));
    // The writers stay alive during the reconcile, as the watches do.
    let writers = match cache {
        Cache::Absent => None,
        Cache::Unfilled => {
            let (pods, pw) = reflector::store();
            let (config_maps, cw) = reflector::store();
            let (services, sw) = reflector::store();
            let caches = Caches {
                pods,
                config_maps,
                services,
            };
            assert!(ctx.use_caches(caches));
            Some((pw, cw, sw))
        }
        Cache::Holding {
            config_maps,
            services,
            indexed,
        } => {
            if indexed {
                for p in &cached_pods {
                    ctx.note_pod_event(&watcher::Event::InitApply(p.clone()));
                }
            }
            let (pods, pw) = filled(cached_pods);
            let (config_maps, cw) = filled(config_maps);
            let (services, sw) = filled(services);
            let caches = Caches {
                pods,
                config_maps,
                services,
            };
            assert!(ctx.use_caches(caches));
            Some((pw, cw, sw))
        }
    };
    reconcile(Arc::new(g), ctx)
        .await
        .expect("reconcile succeeds");
    drop(writers);
    server.take_calls()
}

fn paths(calls: &[Call]) -> Vec<String> {
    calls
        .iter()
        .map(|c| format!("{} {}", c.method, c.path))
        .collect()
}

/// [`paths`] without the Events posted.
fn requests_but_events(calls: &[Call]) -> Vec<String> {
    paths(calls)
        .into_iter()
        .filter(|p| !p.contains("/events"))
        .collect()
}

const CM: &str = "/api/v1/namespaces/broadcast/configmaps/infocast-config";
const PODS: &str = "/api/v1/namespaces/broadcast/pods";
const SERVICES: &str = "/api/v1/namespaces/broadcast/services";
const STATUS: &str =
    "/apis/rdg.infocast.io/v1alpha1/namespaces/broadcast/redundantgroups/infocast/status";
const GROUP: &str = "/apis/rdg.infocast.io/v1alpha1/namespaces/broadcast/redundantgroups/infocast";
const EVENTS: &str = "/apis/events.k8s.io/v1/namespaces/broadcast/events";

/// The condition of type `kind` in a status body.
fn condition(status: &Value, kind: &str) -> Value {
    status["conditions"]
        .as_array()
        .unwrap_or_else(|| panic!("no conditions in {status}"))
        .iter()
        .find(|c| c["type"] == kind)
        .cloned()
        .unwrap_or_else(|| panic!("no condition {kind} in {status}"))
}

fn status_body(calls: &[Call]) -> Value {
    let c = calls
        .iter()
        .find(|c| c.is("PATCH", STATUS))
        .unwrap_or_else(|| panic!("no status write in {:?}", paths(calls)));
    assert_eq!(c.field_manager(), Some("rdg-controller"));
    assert!(c.query.contains("force=true"), "{}", c.query);
    c.body["status"].clone()
}

fn event_reasons(calls: &[Call]) -> Vec<String> {
    calls
        .iter()
        .filter(|c| c.is("POST", EVENTS))
        .map(|c| c.body["reason"].as_str().unwrap_or("").to_string())
        .collect()
}

#[tokio::test]
async fn a_new_group_gets_its_config_map_one_pod_per_member_and_a_status() {
    let g = group(spec(&[("a", 100), ("b", 50)]), None);
    let calls = reconcile_once(g, vec![]).await;
    assert_eq!(
        paths(&calls),
        vec![
            format!("PATCH {CM}"),
            format!("GET {PODS}"),
            format!("POST {PODS}"),
            format!("POST {PODS}"),
            format!("POST {EVENTS}"),
            format!("PATCH {STATUS}"),
        ]
    );
    let cm = &calls[0];
    assert_eq!(cm.field_manager(), Some("rdg-controller"));
    assert_eq!(cm.body["kind"], "ConfigMap");
    assert_eq!(
        cm.body["metadata"]["ownerReferences"][0]["kind"],
        "RedundantGroup"
    );
    assert_eq!(
        cm.body["metadata"]["ownerReferences"][0]["controller"],
        true
    );
    let config: rdg_core::config::GroupConfig =
        serde_yaml_ng::from_str(cm.body["data"]["group.yaml"].as_str().unwrap()).unwrap();
    assert_eq!(
        config.name, "infocast",
        "group name defaults to the resource name"
    );
    assert_eq!(config.members.len(), 2);
    assert!(config.validate().is_ok());
    assert!(
        calls[1]
            .query
            .contains("labelSelector=rdg.infocast.io%2Fgroup%3Dinfocast"),
        "{}",
        calls[1].query
    );

    let pod: Pod = serde_json::from_value(calls[2].body.clone()).unwrap();
    assert_eq!(pod.name_any(), "infocast-a");
    let ps = pod.spec.as_ref().unwrap();
    assert_eq!(ps.node_name.as_deref(), Some("node-a"));
    assert_eq!(ps.host_network, Some(true));
    assert_eq!(ps.dns_policy.as_deref(), Some("ClusterFirstWithHostNet"));
    let agent = &ps.containers[0];
    assert_eq!(
        agent.args.as_ref().unwrap()[..5],
        [
            "agent",
            "--config",
            "/etc/rdg/config/group.yaml",
            "--member",
            "a"
        ]
    );
    let caps = agent
        .security_context
        .as_ref()
        .unwrap()
        .capabilities
        .as_ref()
        .unwrap();
    assert_eq!(
        caps.add.as_deref(),
        Some(&["NET_ADMIN".to_string(), "NET_RAW".to_string()][..])
    );
    assert_eq!(caps.drop.as_deref(), Some(&["ALL".to_string()][..]));
    assert_eq!(
        agent.security_context.as_ref().unwrap().privileged,
        Some(false)
    );
    let live = agent
        .liveness_probe
        .as_ref()
        .unwrap()
        .http_get
        .as_ref()
        .unwrap();
    assert_eq!(live.path.as_deref(), Some("/healthz"));
    assert!(pod.annotations().contains_key(HASH_ANNOTATION));
    assert_eq!(event_reasons(&calls), ["PodsCreated"]);
    let note = calls[4].body["note"].as_str().unwrap();
    assert!(note.contains("infocast-a, infocast-b"), "{note}");

    let st = status_body(&calls);
    assert_eq!(st["phase"], "NoHot");
    assert_eq!(st["memberCount"], 2);
    assert_eq!(st["ready"], "0/2");
    assert_eq!(st["observedGeneration"], 4);
    assert!(
        st.get("members").is_none(),
        "the controller never writes members' entries"
    );
    let cond = |t: &str| condition(&st, t);
    assert_eq!(cond("Ready")["status"], "False");
    assert_eq!(cond("ConfigValid")["status"], "True");
}

#[tokio::test]
async fn with_a_transmitter_the_agent_is_a_native_sidecar_before_the_carousel() {
    let mut s = spec(&[("a", 100), ("b", 50)]);
    s.transmitter = Some(
        serde_json::from_value(json!({
            "configMaps": ["boot-objects"],
            "channels": [{"address": "224.2.2.2", "port": 22222, "bitRate": "2Mbit",
                "objects": [{"name": "bootcast_1900", "type": "bootcastinfo",
                             "source": "/var/lib/rdg/objects/boot-objects/bootcast_1900"}]}]
        }))
        .unwrap(),
    );
    let g = group(s, None);
    let calls = reconcile_once(g, vec![]).await;
    let pod: Pod = serde_json::from_value(calls[2].body.clone()).unwrap();
    let ps = pod.spec.unwrap();
    let init = ps.init_containers.unwrap();
    assert_eq!(init[0].name, "agent");
    assert_eq!(init[0].restart_policy.as_deref(), Some("Always"));
    assert!(
        init[0]
            .args
            .as_ref()
            .unwrap()
            .contains(&"--no-transmit".to_string())
    );
    let tx = &ps.containers[0];
    assert_eq!(tx.name, "carousel");
    let args = tx.args.clone().unwrap();
    assert_eq!(args[0], "transmit");
    assert!(
        args.windows(2)
            .any(|w| w == ["--role-file", "/run/rdg/infocast.role"])
    );
    assert!(args.windows(2).any(|w| w == ["--interface", "10.0.0.11"]));
    // Its metrics next to the agent's status port, on a named port the PodMonitor scrapes.
    let listen = carousel_metrics_port(&args);
    let ports = tx
        .ports
        .clone()
        .expect("the carousel declares its metrics port");
    assert_eq!(ports.len(), 1);
    assert_eq!(ports[0].name.as_deref(), Some("carousel-metrics"));
    assert_eq!(ports[0].container_port, i32::from(listen));
    let mounts = tx.volume_mounts.clone().unwrap();
    assert!(
        mounts
            .iter()
            .any(|m| m.mount_path == "/var/lib/rdg/objects/boot-objects")
    );
    // The role file both containers share lives in memory, not on the node's disk.
    let run_mount = mounts.iter().find(|m| m.mount_path == "/run/rdg").unwrap();
    let volumes = ps.volumes.clone().unwrap();
    let run = volumes.iter().find(|v| v.name == run_mount.name).unwrap();
    let empty_dir = run.empty_dir.clone().unwrap();
    assert_eq!(empty_dir.medium.as_deref(), Some("Memory"));
    assert!(empty_dir.size_limit.is_some());
    // The switchover token's volume is the agent's alone.
    assert!(!mounts.iter().any(|m| m.mount_path == "/run/rdg-agent"));
    let agent_mounts = init[0].volume_mounts.clone().unwrap();
    let private = agent_mounts
        .iter()
        .find(|m| m.mount_path == "/run/rdg-agent")
        .expect("the agent mounts its private volume");
    assert!(ps.containers.iter().all(|c| {
        c.volume_mounts
            .iter()
            .flatten()
            .all(|m| m.name != private.name)
    }));
    let sc = tx.security_context.clone().unwrap();
    assert_eq!(sc.run_as_non_root, Some(true));
    assert!(
        sc.capabilities.unwrap().add.is_none(),
        "the carousel needs no capability"
    );
}

#[tokio::test]
async fn a_deleted_pod_is_recreated_and_a_removed_members_pod_deleted() {
    let g = group(spec(&[("a", 100), ("b", 50)]), None);
    let hash = desired_hash(&g);
    let b = running_pod(&g, "b", &hash);
    // A pod of member "c", which the spec no longer has.
    let bigger = group(spec(&[("a", 100), ("b", 50), ("c", 10)]), None);
    let c = running_pod(&bigger, "c", &hash);
    let calls = reconcile_once(g, vec![b, c]).await;
    let writes = requests_but_events(&calls);
    assert_eq!(
        writes,
        vec![
            format!("PATCH {CM}"),
            format!("GET {PODS}"),
            format!("POST {PODS}"),
            format!("DELETE {PODS}/infocast-c"),
            format!("PATCH {STATUS}"),
        ]
    );
    assert_eq!(calls[2].body["metadata"]["name"], "infocast-a");
    assert_eq!(event_reasons(&calls), ["PodsCreated", "PodsReplaced"]);
}

#[tokio::test]
async fn nothing_changed_means_no_write_but_the_config_map_apply() {
    let g0 = group(spec(&[("a", 100), ("b", 50)]), None);
    let hash = desired_hash(&g0);
    let pods = vec![running_pod(&g0, "a", &hash), running_pod(&g0, "b", &hash)];
    // First reconcile computes the status; feed it back as the stored status.
    let calls = reconcile_once(g0.clone(), pods.clone()).await;
    let mut st: RedundantGroupStatus = serde_json::from_value(status_body(&calls)).unwrap();
    st.members = vec![entry("a", State::HS, 7), entry("b", State::SBS, 7)];
    let calls = reconcile_once(group(g0.spec.clone(), Some(st)), pods.clone()).await;
    let mut st: RedundantGroupStatus = serde_json::from_value(status_body(&calls)).unwrap();
    assert_eq!(st.phase, Some(Phase::Healthy));
    st.members = vec![entry("a", State::HS, 7), entry("b", State::SBS, 7)];
    let calls = reconcile_once(group(g0.spec.clone(), Some(st)), pods).await;
    assert_eq!(
        paths(&calls),
        vec![format!("PATCH {CM}"), format!("GET {PODS}")]
    );
}

#[tokio::test]
async fn aggregation_healthy_degraded_and_split_brain() {
    let g0 = group(spec(&[("a", 100), ("b", 50)]), None);
    let hash = desired_hash(&g0);
    let pods = vec![running_pod(&g0, "a", &hash), running_pod(&g0, "b", &hash)];
    let run = |entries: Vec<MemberEntry>| {
        let g = group(g0.spec.clone(), Some(status(entries)));
        let pods = pods.clone();
        async move { reconcile_once(g, pods).await }
    };

    let calls = run(vec![entry("a", State::HS, 7), entry("b", State::SBS, 7)]).await;
    let st = status_body(&calls);
    assert_eq!(
        (st["phase"].clone(), st["hot"].clone(), st["epoch"].clone()),
        (json!("Healthy"), json!("a"), json!(7))
    );
    assert_eq!(st["ready"], "2/2");
    assert!(event_reasons(&calls).is_empty());

    let calls = run(vec![entry("a", State::HS, 7), entry("b", State::CS, 7)]).await;
    let st = status_body(&calls);
    assert_eq!(st["phase"], "Degraded");
    assert_eq!(st["ready"], "1/2");

    let calls = run(vec![entry("a", State::HS, 7), entry("b", State::HS, 8)]).await;
    let st = status_body(&calls);
    assert_eq!(st["phase"], "SplitBrain");
    assert!(
        st.get("hot").is_none(),
        "no single hot member in a split brain"
    );
    let sb = condition(&st, "SplitBrain");
    assert_eq!(sb["status"], "True");
    assert!(sb["message"].as_str().unwrap().contains("a, b"));
    assert_eq!(event_reasons(&calls), ["SplitBrain"]);

    // A stale entry (its agent stopped writing) does not count as hot.
    let mut stale = entry("a", State::HS, 7);
    stale.last_seen = Some(at_micro("2026-11-23T09:50:00Z"));
    let st = status_body(&run(vec![stale, entry("b", State::SBS, 7)]).await);
    assert_eq!(st["phase"], "NoHot");

    // Nor does the entry of a pod marked unready (its node stopped answering).
    let mut dead = pods.clone();
    dead[0].status.as_mut().unwrap().conditions = Some(vec![PodCondition {
        type_: "Ready".into(),
        status: "False".into(),
        ..PodCondition::default()
    }]);
    let g = group(
        g0.spec.clone(),
        Some(status(vec![
            entry("a", State::HS, 7),
            entry("b", State::HS, 8),
        ])),
    );
    let st = status_body(&reconcile_once(g, dead).await);
    assert_eq!(
        (st["phase"].clone(), st["hot"].clone()),
        (json!("Degraded"), json!("b"))
    );
}

#[tokio::test]
async fn a_reported_takeover_becomes_last_failover_with_an_event() {
    let g0 = group(spec(&[("a", 100), ("b", 50)]), None);
    let hash = desired_hash(&g0);
    let pods = vec![running_pod(&g0, "a", &hash), running_pod(&g0, "b", &hash)];
    let mut b = entry("b", State::HS, 8);
    b.last_takeover = Some(Failover {
        from: Some("a".into()),
        to: "b".into(),
        reason: "hot member lost".into(),
        time: at_micro("2026-11-23T09:59:58Z"),
        detection_ms: Some(312),
        epoch: Some(8),
    });
    let g = group(
        g0.spec.clone(),
        Some(status(vec![entry("a", State::SBS, 8), b])),
    );
    let calls = reconcile_once(g, pods).await;
    let st = status_body(&calls);
    assert_eq!(st["lastFailover"]["from"], "a");
    assert_eq!(st["lastFailover"]["to"], "b");
    assert_eq!(st["lastFailover"]["detectionMs"], 312);
    assert_eq!(event_reasons(&calls), ["Failover"]);
    let ev = calls.iter().find(|c| c.is("POST", EVENTS)).unwrap();
    assert_eq!(ev.body["type"], "Warning");
    assert!(
        ev.body["note"]
            .as_str()
            .unwrap()
            .contains("detected after 312 ms")
    );
}

#[tokio::test]
async fn an_invalid_spec_changes_nothing_and_says_which_field() {
    let mut s = spec(&[("a", 100), ("b", 50)]);
    s.heartbeat.timeout = rdg_core::Dur::from_millis(100);
    s.members[1].node_name = None;
    let g = group(s, None);
    let calls = reconcile_once(g, vec![]).await;
    let writes: Vec<String> = paths(&calls);
    assert_eq!(
        writes,
        vec![
            format!("GET {PODS}"),
            format!("POST {EVENTS}"),
            format!("PATCH {STATUS}")
        ],
        "no ConfigMap, no pod"
    );
    let st = status_body(&calls);
    assert_eq!(st["phase"], "Invalid");
    let cv = condition(&st, "ConfigValid");
    assert_eq!(cv["status"], "False");
    let msg = cv["message"].as_str().unwrap();
    assert!(
        msg.contains("spec.heartbeat.timeout: must be greater"),
        "{msg}"
    );
    assert!(msg.contains("spec.members[1].nodeName"), "{msg}");
    assert_eq!(event_reasons(&calls), ["InvalidSpec"]);
}

#[tokio::test]
async fn a_spec_change_rolls_standbys_first_then_hands_over_then_the_old_hot_member() {
    let old = group(spec(&[("a", 100), ("b", 50), ("c", 80)]), None);
    let old_hash = desired_hash(&old);
    let mut new_spec = old.spec.clone();
    new_spec.heartbeat.interval = rdg_core::Dur::from_millis(50);
    let new = group(new_spec.clone(), None);
    let new_hash = desired_hash(&new);
    assert_ne!(old_hash, new_hash);
    let entries = || {
        vec![
            entry("a", State::HS, 7),
            entry("b", State::SBS, 7),
            entry("c", State::SBS, 7),
        ]
    };
    let pods = |hashes: [&str; 3]| {
        ["a", "b", "c"]
            .iter()
            .zip(hashes)
            .map(|(m, h)| running_pod(&new, m, h))
            .collect::<Vec<_>>()
    };
    let deletes = |calls: &[Call]| -> Vec<String> {
        calls
            .iter()
            .filter(|c| c.method == "DELETE")
            .map(|c| c.path.rsplit('/').next().unwrap().to_string())
            .collect()
    };

    // 1. All out of date: the lowest-priority standby goes first, alone.
    let calls = reconcile_once(
        group(new_spec.clone(), Some(status(entries()))),
        pods([&old_hash, &old_hash, &old_hash]),
    )
    .await;
    assert_eq!(deletes(&calls), ["infocast-b"]);
    // 2. b renewed: c next.
    let calls = reconcile_once(
        group(new_spec.clone(), Some(status(entries()))),
        pods([&old_hash, &new_hash, &old_hash]),
    )
    .await;
    assert_eq!(deletes(&calls), ["infocast-c"]);
    // 3. Only the hot member is old: no deletion, a planned hand-over to the best standby (c).
    let calls = reconcile_once(
        group(new_spec.clone(), Some(status(entries()))),
        pods([&old_hash, &new_hash, &new_hash]),
    )
    .await;
    assert!(deletes(&calls).is_empty());
    let st = status_body(&calls);
    assert_eq!(st["switchover"]["to"], "c");
    assert_eq!(st["switchover"]["phase"], "Pending");
    assert_eq!(st["switchover"]["reason"], "rollout");
    assert_eq!(event_reasons(&calls), ["SwitchoverRequested"]);
    // 4. Still pending (a still hot): wait.
    let mut st: RedundantGroupStatus = serde_json::from_value(st).unwrap();
    st.members = entries();
    let calls = reconcile_once(
        group(new_spec.clone(), Some(st.clone())),
        pods([&old_hash, &new_hash, &new_hash]),
    )
    .await;
    assert!(deletes(&calls).is_empty());
    // 5. c took over: the hand-over is done and the old hot member, now standby, is replaced.
    st.members = vec![
        entry("a", State::SBS, 8),
        entry("b", State::SBS, 8),
        entry("c", State::HS, 8),
    ];
    let calls = reconcile_once(
        group(new_spec.clone(), Some(st)),
        pods([&old_hash, &new_hash, &new_hash]),
    )
    .await;
    let st = status_body(&calls);
    assert_eq!(st["switchover"]["phase"], "Done");
    assert_eq!(st["hot"], "c");
    assert_eq!(deletes(&calls), ["infocast-a"]);
    assert_eq!(event_reasons(&calls), ["PodsReplaced", "SwitchoverDone"]);
}

#[tokio::test]
async fn an_operator_switchover_is_requested_once_and_times_out_when_not_carried_out() {
    let mut s = spec(&[("a", 100), ("b", 50)]);
    s.switchover = Some(serde_json::from_value(json!({"to": "b"})).unwrap());
    let g0 = group(s.clone(), None);
    let hash = desired_hash(&g0);
    let pods = vec![running_pod(&g0, "a", &hash), running_pod(&g0, "b", &hash)];
    let entries = || vec![entry("a", State::HS, 7), entry("b", State::SBS, 7)];

    let calls = reconcile_once(group(s.clone(), Some(status(entries()))), pods.clone()).await;
    let st = status_body(&calls);
    assert_eq!(st["switchover"]["to"], "b");
    assert_eq!(st["switchover"]["phase"], "Pending");
    assert_eq!(st["switchover"]["reason"], "operator");
    assert_eq!(st["switchover"]["generation"], 4);

    // Not carried out within the timeout: Failed, and not asked again.
    let mut stored = status(entries());
    stored.switchover = Some(SwitchoverStatus {
        to: "b".into(),
        phase: SwitchoverPhase::Pending,
        reason: "operator".into(),
        requested: at("2026-11-23T09:59:00Z"),
        finished: None,
        generation: Some(4),
        message: None,
    });
    let calls = reconcile_once(group(s.clone(), Some(stored)), pods.clone()).await;
    let st = status_body(&calls);
    assert_eq!(st["switchover"]["phase"], "Failed");
    assert!(
        st["switchover"]["message"]
            .as_str()
            .unwrap()
            .contains("b did not become hot")
    );
    assert_eq!(event_reasons(&calls), ["SwitchoverFailed"]);
    let mut failed: RedundantGroupStatus = serde_json::from_value(st).unwrap();
    failed.members = entries();
    let calls = reconcile_once(group(s, Some(failed)), pods).await;
    assert!(
        calls.iter().all(|c| !c.is("PATCH", STATUS)),
        "{:?}",
        paths(&calls)
    );
}

#[tokio::test]
async fn the_switchover_annotation_is_taken_up_and_removed() {
    let s = spec(&[("a", 100), ("b", 50)]);
    let mut g = group(
        s,
        Some(status(vec![
            entry("a", State::HS, 7),
            entry("b", State::SBS, 7),
        ])),
    );
    let hash = desired_hash(&g);
    let pods = vec![running_pod(&g, "a", &hash), running_pod(&g, "b", &hash)];
    g.metadata.annotations =
        Some([("rdg.infocast.io/switchover-to".to_string(), "b".to_string())].into());
    let calls = reconcile_once(g, pods).await;
    let patch = calls
        .iter()
        .find(|c| c.is("PATCH", GROUP))
        .expect("annotation removed");
    assert_eq!(
        patch.body,
        json!({"metadata": {"annotations": {"rdg.infocast.io/switchover-to": null}}})
    );
    let st = status_body(&calls);
    assert_eq!(
        (
            st["switchover"]["to"].clone(),
            st["switchover"]["phase"].clone()
        ),
        (json!("b"), json!("Pending"))
    );
}

/// Fencing the hot member `a` and the best standby `c`: both run with priority 0 (the
/// ConfigMap says so), the status lists them, the rollout hands the hot role to `b` (not to
/// the fenced `c`, despite its priority) before replacing `a`, and a switchover request to a
/// fenced member is rejected.
#[tokio::test]
async fn fenced_members_run_with_priority_0_and_are_never_handed_the_hot_role() {
    let old = spec(&[("a", 100), ("b", 50), ("c", 80)]);
    let old_hash = desired_hash(&group(old.clone(), None));
    let mut fenced = old.clone();
    fenced.members[0].fenced = true;
    fenced.members[2].fenced = true;
    let g = group(fenced.clone(), None);
    let new_hash = desired_hash(&g);
    assert_ne!(old_hash, new_hash, "fencing changes what the pods run");
    let entries = || {
        vec![
            entry("a", State::HS, 7),
            entry("b", State::SBS, 7),
            entry("c", State::SBS, 7),
        ]
    };
    let pods = ["a", "b", "c"]
        .iter()
        .zip([&old_hash, &new_hash, &new_hash])
        .map(|(m, h)| running_pod(&g, m, h))
        .collect::<Vec<_>>();
    let calls = reconcile_once(group(fenced.clone(), Some(status(entries()))), pods.clone()).await;
    let cm = calls
        .iter()
        .find(|c| c.body["kind"] == "ConfigMap")
        .expect("the ConfigMap is applied");
    let config: rdg_core::config::GroupConfig =
        serde_yaml_ng::from_str(cm.body["data"]["group.yaml"].as_str().unwrap()).unwrap();
    let priorities: Vec<(String, u16)> = config
        .members
        .iter()
        .map(|m| (m.name.clone(), m.priority))
        .collect();
    assert_eq!(
        priorities,
        [("a".into(), 0), ("b".into(), 50), ("c".into(), 0)]
    );
    let st = status_body(&calls);
    assert_eq!(st["fenced"], json!(["a", "c"]));
    assert!(event_reasons(&calls).contains(&"Fenced".to_string()));
    assert_eq!(st["switchover"]["to"], "b", "never the fenced c");
    assert_eq!(st["switchover"]["reason"], "rollout");
    assert!(
        calls.iter().all(|c| c.method != "DELETE"),
        "a hands over first"
    );

    // A request to hand over to the fenced c is rejected and its annotation removed.
    let mut g = group(fenced, Some(status(entries())));
    g.metadata.annotations =
        Some([("rdg.infocast.io/switchover-to".to_string(), "c".to_string())].into());
    let pods = ["a", "b", "c"]
        .iter()
        .map(|m| running_pod(&g, m, &new_hash))
        .collect::<Vec<_>>();
    let calls = reconcile_once(g, pods).await;
    assert!(event_reasons(&calls).contains(&"SwitchoverRejected".to_string()));
    assert!(
        calls.iter().any(|c| c.is("PATCH", GROUP)),
        "annotation removed"
    );
    let st = status_body(&calls);
    assert!(st["switchover"].is_null(), "no hand-over to c: {st}");
}

/// A spec asking for a Service on port 8080.
fn with_service(mut s: RedundantGroupSpec) -> RedundantGroupSpec {
    s.service =
        Some(serde_json::from_value(json!({"ports": [{"name": "http", "port": 8080}]})).unwrap());
    s
}

/// The Service the controller made for `g` while it asked for one, as the API server has it.
fn made_service(g: &RedundantGroup) -> Service {
    let asking = group(with_service(g.spec.clone()), None);
    let mut s = rdg_operator::children::service(&asking).unwrap();
    s.metadata.uid = Some("5e7c1ce0-0000-4000-8000-000000000001".into());
    s
}

/// A steady group (both pods up to date, a had status) without `spec.service`.
fn steady_without_service() -> (RedundantGroup, Vec<Pod>) {
    let g0 = group(spec(&[("a", 100), ("b", 50)]), None);
    let hash = desired_hash(&g0);
    let pods = vec![running_pod(&g0, "a", &hash), running_pod(&g0, "b", &hash)];
    let g = group(
        g0.spec.clone(),
        Some(status(vec![
            entry("a", State::HS, 7),
            entry("b", State::SBS, 7),
        ])),
    );
    (g, pods)
}

#[tokio::test]
async fn a_service_is_applied_while_the_spec_asks_for_one() {
    let g = group(with_service(spec(&[("a", 100), ("b", 50)])), None);
    let calls = reconcile_once(g, vec![]).await;
    let apply = calls
        .iter()
        .find(|c| c.is("PATCH", &format!("{SERVICES}/infocast")))
        .unwrap_or_else(|| panic!("no Service apply in {:?}", paths(&calls)));
    assert_eq!(apply.field_manager(), Some("rdg-controller"));
    assert_eq!(apply.body["kind"], "Service");
    assert_eq!(
        apply.body["spec"]["selector"]["rdg.infocast.io/role"],
        "hot"
    );
    assert!(calls.iter().all(|c| c.method != "DELETE"));
}

#[tokio::test]
async fn removing_spec_service_deletes_the_service_the_group_made() {
    let (g, pods) = steady_without_service();
    let svc = made_service(&g);
    let calls = reconcile_with(g, pods, vec![svc.clone()], Cache::services(vec![svc])).await;
    assert_eq!(
        paths(&calls),
        vec![
            format!("PATCH {CM}"),
            format!("DELETE {SERVICES}/infocast"),
            format!("POST {EVENTS}"),
            format!("PATCH {STATUS}"),
        ],
        "the caches answer: no GET of the Service, no pod list"
    );
    let delete = &calls[1];
    assert_eq!(
        delete.body["preconditions"]["uid"], "5e7c1ce0-0000-4000-8000-000000000001",
        "only the Service seen, not one made since under its name"
    );
    assert_eq!(event_reasons(&calls), ["ServiceDeleted"]);
}

#[tokio::test]
async fn before_the_cache_is_filled_the_service_is_looked_up_then_deleted() {
    let (g, pods) = steady_without_service();
    let svc = made_service(&g);
    let calls = reconcile_with(g, pods, vec![svc], Cache::Unfilled).await;
    assert!(
        calls.iter().any(|c| c.is("GET", PODS)),
        "{:?}",
        paths(&calls)
    );
    let svc_calls: Vec<String> = paths(&calls)
        .into_iter()
        .filter(|p| p.contains("/services"))
        .collect();
    assert_eq!(
        svc_calls,
        [
            format!("GET {SERVICES}/infocast"),
            format!("DELETE {SERVICES}/infocast"),
        ]
    );

    // Nothing there: one GET, no DELETE, no Event.
    let (g, pods) = steady_without_service();
    let calls = reconcile_with(g, pods, vec![], Cache::Unfilled).await;
    assert!(
        calls
            .iter()
            .any(|c| c.is("GET", &format!("{SERVICES}/infocast")))
    );
    assert!(
        calls.iter().all(|c| c.method != "DELETE"),
        "{:?}",
        paths(&calls)
    );
    assert!(event_reasons(&calls).is_empty());

    // Outside `run` (no cache at all) nobody looks for a Service.
    let (g, pods) = steady_without_service();
    let svc = made_service(&g);
    let calls = reconcile_with(g, pods, vec![svc], Cache::Absent).await;
    assert!(
        calls.iter().all(|c| !c.path.contains("/services")),
        "{:?}",
        paths(&calls)
    );
}

#[tokio::test]
async fn a_service_the_group_does_not_control_is_never_deleted() {
    let (g, pods) = steady_without_service();
    // Same name and labels, but made by someone else (no owner reference) ...
    let mut foreign = made_service(&g);
    foreign.metadata.owner_references = None;
    // ... or controlled by another object (a previous group of the same name).
    let mut other_owner = made_service(&g);
    other_owner.metadata.owner_references.as_mut().unwrap()[0].uid =
        "0b8e3c3e-9999-2222-3333-444455556666".into();
    for svc in [foreign, other_owner] {
        for cache in [Cache::services(vec![svc.clone()]), Cache::Unfilled] {
            let calls = reconcile_with(g.clone(), pods.clone(), vec![svc.clone()], cache).await;
            assert!(
                calls.iter().all(|c| c.method != "DELETE"),
                "{:?}",
                paths(&calls)
            );
            assert!(event_reasons(&calls).is_empty());
        }
    }
}

fn rust_log(pod: &Pod, container: &str) -> Option<String> {
    let ps = pod.spec.as_ref().unwrap();
    ps.containers
        .iter()
        .chain(ps.init_containers.iter().flatten())
        .find(|c| c.name == container)?
        .env
        .as_ref()?
        .iter()
        .find(|e| e.name == "RUST_LOG")?
        .value
        .clone()
}

#[tokio::test]
async fn member_pods_log_at_the_specs_log_level() {
    let created = |calls: &[Call]| -> Pod {
        let c = calls.iter().find(|c| c.is("POST", PODS)).unwrap();
        serde_json::from_value(c.body.clone()).unwrap()
    };
    let g = group(spec(&[("a", 100), ("b", 50)]), None);
    let calls = reconcile_once(g, vec![]).await;
    assert_eq!(rust_log(&created(&calls), "agent").as_deref(), Some("info"));

    let mut s = spec(&[("a", 100), ("b", 50)]);
    s.log_level = Some("info,rdg_agent=debug".into());
    s.transmitter = Some(
        serde_json::from_value(json!({
            "configMaps": ["boot-objects"],
            "channels": [{"address": "224.2.2.2", "port": 22222, "bitRate": "2Mbit",
                "objects": [{"name": "o", "source": "/var/lib/rdg/objects/boot-objects/o"}]}]
        }))
        .unwrap(),
    );
    let calls = reconcile_once(group(s, None), vec![]).await;
    let pod = created(&calls);
    assert_eq!(
        rust_log(&pod, "agent").as_deref(),
        Some("info,rdg_agent=debug")
    );
    assert_eq!(
        rust_log(&pod, "carousel").as_deref(),
        Some("info,rdg_agent=debug")
    );
}

#[test]
fn only_a_log_level_other_than_the_default_changes_the_pods_hash() {
    let with = |level: Option<&str>| {
        let mut s = spec(&[("a", 100), ("b", 50)]);
        s.log_level = level.map(str::to_string);
        desired_hash(&group(s, None))
    };
    // Pods made before logLevel existed keep their hash: an operator upgrade rolls nothing.
    assert_eq!(with(None), with(Some("info")));
    assert_ne!(with(None), with(Some("debug")));
    assert_ne!(with(Some("debug")), with(Some("trace")));
}

#[tokio::test]
async fn an_invalid_log_level_is_reported_with_its_field_path() {
    let mut s = spec(&[("a", 100), ("b", 50)]);
    s.log_level = Some("rdg_agent=loud".into());
    let calls = reconcile_once(group(s, None), vec![]).await;
    assert!(calls.iter().all(|c| !c.is("POST", PODS)), "no pod");
    let st = status_body(&calls);
    assert_eq!(st["phase"], "Invalid");
    let cv = condition(&st, "ConfigValid");
    assert_eq!(cv["status"], "False");
    let msg = cv["message"].as_str().unwrap();
    assert!(
        msg.contains("spec.logLevel: \"rdg_agent=loud\" is not a log filter"),
        "{msg}"
    );
    assert_eq!(event_reasons(&calls), ["InvalidSpec"]);
}

/// The ConfigMap the controller applies for `g`, as the API server has it.
fn made_config_map(g: &RedundantGroup) -> ConfigMap {
    let rendered = rdg_operator::render::render(&g.name_any(), &g.spec).unwrap();
    let mut cm = rdg_operator::children::config_map(g, &rendered);
    cm.metadata.uid = Some("c0f16e00-0000-4000-8000-000000000001".into());
    cm
}

/// A steady group whose stored status is what the controller wrote, with its pods.
async fn settled() -> (RedundantGroup, Vec<Pod>) {
    let (g, pods) = steady_without_service();
    let calls = reconcile_once(g.clone(), pods.clone()).await;
    let mut st: RedundantGroupStatus = serde_json::from_value(status_body(&calls)).unwrap();
    st.members = g.status.clone().unwrap().members;
    (group(g.spec.clone(), Some(st)), pods)
}

#[tokio::test]
async fn with_filled_caches_a_steady_group_costs_no_request() {
    let (g, pods) = settled().await;
    for indexed in [true, false] {
        let cache = Cache::Holding {
            config_maps: vec![made_config_map(&g)],
            services: vec![],
            indexed,
        };
        let calls = reconcile_with(g.clone(), pods.clone(), vec![], cache).await;
        assert_eq!(paths(&calls), Vec::<String>::new(), "indexed: {indexed}");
    }

    // Without caches: the ConfigMap apply and the pod list.
    let calls = reconcile_once(g, pods).await;
    assert_eq!(
        paths(&calls),
        vec![format!("PATCH {CM}"), format!("GET {PODS}")]
    );
}

#[tokio::test]
async fn a_cached_config_map_that_differs_is_applied_again() {
    let (g, pods) = settled().await;
    let edits: [fn(&mut ConfigMap); 3] = [
        // Someone edited the configuration (or it is the one of the previous spec).
        |cm| {
            cm.data
                .as_mut()
                .unwrap()
                .insert("group.yaml".into(), "name: other\n".into());
        },
        // Someone took the group label off.
        |cm| {
            cm.metadata
                .labels
                .as_mut()
                .unwrap()
                .remove("rdg.infocast.io/group");
        },
        // The group does not control it (no owner reference).
        |cm| cm.metadata.owner_references = None,
    ];
    for edit in edits {
        let mut cm = made_config_map(&g);
        edit(&mut cm);
        let calls = reconcile_with(
            g.clone(),
            pods.clone(),
            vec![],
            Cache::config_maps(vec![cm]),
        )
        .await;
        assert_eq!(paths(&calls), vec![format!("PATCH {CM}")]);
        assert_eq!(calls[0].body["kind"], "ConfigMap");
    }
}

#[tokio::test]
async fn a_new_group_with_filled_caches_lists_nothing() {
    let g = group(spec(&[("a", 100), ("b", 50)]), None);
    let calls = reconcile_with(g, vec![], vec![], Cache::services(vec![])).await;
    assert_eq!(
        paths(&calls),
        vec![
            format!("PATCH {CM}"),
            format!("POST {PODS}"),
            format!("POST {PODS}"),
            format!("POST {EVENTS}"),
            format!("PATCH {STATUS}"),
        ]
    );
}

#[tokio::test]
async fn a_removed_members_pod_is_found_in_the_pod_cache_and_deleted() {
    let g = group(spec(&[("a", 100), ("b", 50)]), None);
    let hash = desired_hash(&g);
    let bigger = group(spec(&[("a", 100), ("b", 50), ("c", 10)]), None);
    let pods = vec![
        running_pod(&g, "a", &hash),
        running_pod(&g, "b", &hash),
        running_pod(&bigger, "c", &hash),
    ];
    for indexed in [true, false] {
        let cache = Cache::Holding {
            config_maps: vec![made_config_map(&g)],
            services: vec![],
            indexed,
        };
        let calls = reconcile_with(g.clone(), pods.clone(), vec![], cache).await;
        let writes = requests_but_events(&calls);
        assert_eq!(
            writes,
            vec![
                format!("DELETE {PODS}/infocast-c"),
                format!("PATCH {STATUS}")
            ],
            "indexed: {indexed}"
        );
    }
}

#[tokio::test]
async fn the_pod_cache_is_read_per_group_and_namespace() {
    let g = group(spec(&[("a", 100), ("b", 50)]), None);
    let hash = desired_hash(&g);
    let a = running_pod(&g, "a", &hash);
    // Pod b of a group of the same name in another namespace, and of another group here.
    let mut elsewhere = running_pod(&g, "b", &hash);
    elsewhere.metadata.namespace = Some("other".into());
    let mut other_group = running_pod(&g, "b", &hash);
    other_group.metadata.name = Some("radio-b".into());
    other_group
        .metadata
        .labels
        .as_mut()
        .unwrap()
        .insert("rdg.infocast.io/group".into(), "radio".into());
    let calls = reconcile_with(
        g,
        vec![a, elsewhere, other_group],
        vec![],
        Cache::services(vec![]),
    )
    .await;
    let created: Vec<&str> = calls
        .iter()
        .filter(|c| c.is("POST", PODS))
        .map(|c| c.body["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(created, ["infocast-b"], "{:?}", paths(&calls));
    assert!(calls.iter().all(|c| c.method != "DELETE"), "no orphan");
}

/// The port of the carousel's `--metrics-listen` argument: one above the status port.
fn carousel_metrics_port(args: &[String]) -> u16 {
    let addr: std::net::SocketAddr = args
        .windows(2)
        .find(|w| w[0] == "--metrics-listen")
        .expect("--metrics-listen")[1]
        .parse()
        .unwrap();
    assert_eq!(
        addr.to_string(),
        "127.0.0.1:9036",
        "the status port 9035, plus one"
    );
    addr.port()
}
