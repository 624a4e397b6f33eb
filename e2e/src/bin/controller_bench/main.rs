//! Reconcile throughput and memory of the rdg controller against the in-process fake API
//! server (`rdg_operator::fake_api`): N groups of three members, each reconciled once from
//! nothing (ConfigMap, three pods, an event, the status) and then again in steady state (pods
//! running, members reporting). Prints JSON.
//!
//! As `rdg controller` runs it, the controller reads pods and ConfigMaps from its watches'
//! caches (kept up to date here as the watches would), so a steady-state reconcile sends no
//! request. `--no-caches` measures the path without them (a ConfigMap apply and a pod list
//! per reconcile), the one taken until the watches' first listing is in.
//!
//! `controller_bench [--groups 1000] [--rounds 3] [--no-caches]`

use clap::Parser;
use k8s_openapi::api::core::v1::{Pod, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};
use kube::ResourceExt;
use kube::runtime::events::Reporter;
use rdg_core::State;
use rdg_operator::children::{PodDefaults, pod_name, pods_hash};
use rdg_operator::controller::{Caches, Context, reconcile};
use rdg_operator::fake_api::{self, Call, FakeApiServer, Reply};
use rdg_operator::render::render;
use rdg_operator::status::{MemberEntry, RedundantGroupStatus};
use rdg_operator::{RedundantGroup, RedundantGroupSpec};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

const NOW: &str = "2026-11-23T10:00:00Z";

fn defaults() -> PodDefaults {
    PodDefaults {
        image: "ghcr.io/infocast/rdg:0.1.0".into(),
        service_account: "rdg-member".into(),
    }
}

fn group(i: usize) -> RedundantGroup {
    let members: Vec<Value> = ["a", "b", "c"]
        .iter()
        .enumerate()
        .map(|(k, m)| {
            json!({
                "name": m, "priority": 100 - 10 * k, "nodeName": format!("node-{i}-{m}"),
                "addresses": {"primary": format!("10.{}.{}.{}", i / 250, i % 250, 11 + k),
                              "secondary": format!("10.200.{}.{}", i % 250, 11 + k)}})
        })
        .collect();
    let spec: RedundantGroupSpec = serde_json::from_value(json!({
        "networks": [{"name": "primary", "multicast": "224.0.0.35"},
                     {"name": "secondary", "multicast": "224.0.0.36"}],
        "members": members,
        "vips": [{"address": format!("10.{}.{}.100/24", i / 250, i % 250), "network": "primary"}],
        "netCheck": {"targets": [format!("10.{}.{}.1", i / 250, i % 250)]},
    }))
    .expect("bench spec");
    let mut g = RedundantGroup::new(&format!("group-{i}"), spec);
    g.metadata.namespace = Some("bench".into());
    g.metadata.uid = Some(format!("00000000-0000-0000-0000-{i:012}"));
    g.metadata.generation = Some(1);
    g
}

/// What the fake API server serves.
#[derive(Default)]
struct Served {
    /// Pods of every group by label selector value.
    pods: HashMap<String, Vec<Value>>,
    /// The last status the controller wrote, by group name.
    statuses: HashMap<String, Value>,
}

fn respond(w: &mut Served, call: &Call) -> Reply {
    if call.method == "GET" && call.path.ends_with("/pods") {
        let group = call
            .param("labelSelector")
            .and_then(|s| s.strip_prefix("rdg.infocast.io%2Fgroup%3D"))
            .unwrap_or("");
        let items = w.pods.get(group).cloned().unwrap_or_default();
        return fake_api::list("PodList", items);
    }
    let (code, mut body) = fake_api::echo(call);
    if call.path.contains("/events") {
        body["metadata"] = json!({"name": "e", "namespace": "bench"});
    }
    if call.path.contains("redundantgroups") {
        let name = call.path.split('/').nth(7).unwrap_or("group-0").to_string();
        w.statuses.insert(name.clone(), body["status"].clone());
        let mut g = serde_json::to_value(group(0)).unwrap();
        g["metadata"]["name"] = json!(name);
        g["status"] = body["status"].clone();
        body = g;
    }
    (code, body)
}

/// Command-line options.
#[derive(Parser, Debug)]
#[command(
    name = "controller_bench",
    about = "Reconcile throughput and memory of the controller"
)]
struct Options {
    /// Groups of three members to reconcile.
    #[arg(long, default_value_t = 1000)]
    groups: usize,
    /// Steady-state reconciles of every group.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..))]
    rounds: u64,
    /// Reconcile without the watches' caches (a ConfigMap apply and a pod list each time).
    #[arg(long)]
    no_caches: bool,
}

fn main() {
    let options = Options::parse();
    let (groups, rounds) = (options.groups, options.rounds as usize);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let caches = !options.no_caches;
    let out = rt.block_on(run(groups, rounds, caches));
    println!("{out}");
}

async fn run(n: usize, rounds: usize, caches: bool) -> Value {
    let (rss_start, _) = rdg_e2e::procfs::own_rss_kb();
    // Only counting requests: a record of them would weigh in the memory figures.
    let (client, api) = FakeApiServer::start_counting(Served::default(), respond);
    let take_requests = || std::mem::take(&mut api.lock().requests);
    let reporter = Reporter {
        controller: "rdg-controller".into(),
        instance: None,
    };
    let ctx = Arc::new(Context::with_clock(
        client,
        defaults(),
        reporter,
        Box::new(|| Time(NOW.parse().unwrap())),
    ));
    // The controller's watch caches, as `rdg controller` has them: listed (empty at first),
    // then kept up to date below as the watches would.
    let mut writers = None;
    if caches {
        use kube::runtime::{reflector, watcher};
        let (pods, mut pw) = reflector::store::<Pod>();
        let (config_maps, mut cw) = reflector::store::<k8s_openapi::api::core::v1::ConfigMap>();
        let (services, mut sw) = reflector::store();
        pw.apply_watcher_event(&watcher::Event::Init);
        pw.apply_watcher_event(&watcher::Event::InitDone);
        cw.apply_watcher_event(&watcher::Event::Init);
        cw.apply_watcher_event(&watcher::Event::InitDone);
        sw.apply_watcher_event(&watcher::Event::Init);
        sw.apply_watcher_event(&watcher::Event::InitDone);
        assert!(ctx.use_caches(Caches {
            pods,
            config_maps,
            services,
        }));
        writers = Some((pw, cw, sw));
    }
    let groups: Vec<RedundantGroup> = (0..n).map(group).collect();

    // 1. From nothing: every group gets its ConfigMap, pods, an event and a status.
    let t = Instant::now();
    for g in &groups {
        reconcile(Arc::new(g.clone()), Arc::clone(&ctx))
            .await
            .expect("create reconcile");
    }
    let create_s = t.elapsed().as_secs_f64();
    let create_requests = take_requests();

    // 2. Steady state: pods running with the desired hash, members reporting HS/SBS/SBS.
    let mut steady: Vec<RedundantGroup> = Vec::with_capacity(n);
    for g in &groups {
        let rendered = render(&g.name_any(), &g.spec).unwrap();
        let hash = pods_hash(g, &rendered, &defaults());
        let items: Vec<Value> = g
            .spec
            .members
            .iter()
            .map(|m| {
                let mut p: Pod = rdg_operator::children::pod(g, m, &rendered, &hash, &defaults());
                p.metadata.creation_timestamp = Some(Time("2026-11-23T09:00:00Z".parse().unwrap()));
                p.status = Some(PodStatus {
                    phase: Some("Running".into()),
                    ..PodStatus::default()
                });
                serde_json::to_value(p).unwrap()
            })
            .collect();
        if let Some((pw, cw, _)) = writers.as_mut() {
            for p in &items {
                let p: Pod = serde_json::from_value(p.clone()).unwrap();
                let ev = kube::runtime::watcher::Event::Apply(p);
                pw.apply_watcher_event(&ev);
                ctx.note_pod_event(&ev);
            }
            let cm = rdg_operator::children::config_map(g, &rendered);
            cw.apply_watcher_event(&kube::runtime::watcher::Event::Apply(cm));
        }
        api.lock().state.pods.insert(g.name_any(), items);
        let mut g = g.clone();
        let members: Vec<MemberEntry> = ["a", "b", "c"]
            .iter()
            .enumerate()
            .map(|(k, m)| MemberEntry {
                name: m.to_string(),
                state: Some(if k == 0 { State::HS } else { State::SBS }),
                epoch: Some(3),
                net_check_ok: Some(true),
                pod: Some(pod_name(&g.name_any(), m)),
                last_seen: Some(MicroTime("2026-11-23T09:59:50Z".parse().unwrap())),
                ..MemberEntry::default()
            })
            .collect();
        g.status = Some(RedundantGroupStatus {
            members: members.clone(),
            ..RedundantGroupStatus::default()
        });
        // One reconcile to settle the aggregate, then store what it wrote, as the API would.
        reconcile(Arc::new(g.clone()), Arc::clone(&ctx))
            .await
            .expect("settle");
        let written = api.lock().state.statuses.get(&g.name_any()).cloned();
        let mut settled: RedundantGroupStatus =
            serde_json::from_value(written.expect("settle wrote a status")).expect("status");
        settled.members = members;
        g.status = Some(settled);
        steady.push(g);
    }
    take_requests();
    let t = Instant::now();
    for _ in 0..rounds {
        for g in &steady {
            reconcile(Arc::new(g.clone()), Arc::clone(&ctx))
                .await
                .expect("steady reconcile");
        }
    }
    let steady_s = t.elapsed().as_secs_f64();
    let steady_requests = take_requests();
    let (rss_end, hwm) = rdg_e2e::procfs::own_rss_kb();
    let round = |x: f64| (x * 100.0).round() / 100.0;
    json!({
        "groups": n,
        "caches": caches,
        "membersPerGroup": 3,
        "create": {
            "reconciles": n,
            "seconds": round(create_s),
            "reconcilesPerSecond": round(n as f64 / create_s),
            "requests": create_requests,
        },
        "steady": {
            "reconciles": n * rounds,
            "seconds": round(steady_s),
            "reconcilesPerSecond": round((n * rounds) as f64 / steady_s),
            "requestsPerReconcile": round(steady_requests as f64 / (n * rounds) as f64),
        },
        "memory": {"rssStartKb": rss_start, "rssEndKb": rss_end, "peakRssKb": hwm},
        "note": "in-process fake API server (tower-test) answering like the API server; the figures include its JSON work, not network latency",
    })
}
