//! The Kubernetes-mode reporter against the fake API server (`fake_api`, the controller-rs
//! pattern) and a real tiny HTTP server playing the local agent. The fake API server answers
//! every request like the real one would and records it; the fake agent serves a canned
//! `/status` the test changes and a fixed `/metrics`, and records `/switchover` requests. Tests wait for conditions
//! (with a deadline), never for fixed times.

use kube::Resource;
use rdg_agent::status::StatusReport;
use rdg_agent::switchover_token::Token;
use rdg_operator::RedundantGroup;
use rdg_operator::fake_api::{self, Call, Contents, FakeApiServer, Reply};
use rdg_operator::reporter::run::run;
use rdg_operator::reporter::{K8sEnv, ReporterConfig, Tuning};
use rdg_operator::retry::Backoff;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

const STATUS: &str =
    "/apis/rdg.infocast.io/v1alpha1/namespaces/broadcast/redundantgroups/infocast/status";
const GROUP: &str = "/apis/rdg.infocast.io/v1alpha1/namespaces/broadcast/redundantgroups/infocast";
const POD: &str = "/api/v1/namespaces/broadcast/pods/infocast-ics-b";
const EVENTS: &str = "/apis/events.k8s.io/v1/namespaces/broadcast/events";
const AGENT_REPORT: &str = "/api/v1/namespaces/broadcast/configmaps/infocast-ics-b-agent-report";
/// What the fake agent serves on `/metrics`.
const METRICS: &str = "# TYPE rdg_state gauge\nrdg_state{state=\"SBS\"} 1\n# EOF\n";
/// The agent's switchover credential in these tests.
const TOKEN: &str = "0123456789abcdef0123456789abcdef";

/// What the fake API server serves.
#[derive(Default)]
struct World {
    /// `status.switchover` of the group it serves.
    switchover: Option<Value>,
    /// Answer this many more status writes with 500.
    fail_status: usize,
}

/// The requests but reads.
fn writes(calls: &[Call]) -> Vec<Call> {
    calls
        .iter()
        .filter(|c| c.method != "GET")
        .cloned()
        .collect()
}

fn group_json(switchover: Option<Value>) -> Value {
    let mut g = json!({
        "apiVersion": RedundantGroup::api_version(&()),
        "kind": RedundantGroup::kind(&()),
        "metadata": {"name": "infocast", "namespace": "broadcast",
                     "uid": "0b8e3c3e-1111-2222-3333-444455556666", "resourceVersion": "7"},
        "spec": {
            "networks": [{"name": "primary", "multicast": "224.0.0.35"}],
            "members": [
                {"name": "ics-a", "priority": 100, "nodeName": "node-a", "addresses": {"primary": "10.0.0.11"}},
                {"name": "ics-b", "priority": 50, "nodeName": "node-b", "addresses": {"primary": "10.0.0.12"}}
            ]
        },
        "status": {}
    });
    if let Some(s) = switchover {
        g["status"]["switchover"] = s;
    }
    g
}

fn respond(w: &mut World, call: &Call) -> Reply {
    if call.path == STATUS && w.fail_status > 0 {
        w.fail_status -= 1;
        return fake_api::failure(500, "InternalError", "etcd is sulking");
    }
    match (call.method.as_str(), call.path.as_str()) {
        ("GET", GROUP) | ("PATCH", STATUS) => (200, group_json(w.switchover.clone())),
        ("PATCH", AGENT_REPORT) => fake_api::echo(call),
        ("PATCH", POD) => (
            200,
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "infocast-ics-b", "namespace": "broadcast", "labels": call.body["metadata"]["labels"]}}),
        ),
        ("POST", EVENTS) => {
            let mut ev = call.body.clone();
            ev["metadata"]["name"] = json!("infocast.1");
            (201, ev)
        }
        _ => fake_api::not_found(),
    }
}

/// The fake local agent: a canned report, and the switchover targets it was asked for.
#[derive(Default)]
struct Agent {
    report: Option<Value>,
    status_hits: usize,
    switchovers: Vec<String>,
}

async fn serve_agent(agent: Arc<Mutex<Agent>>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (mut s, _) = listener.accept().await.unwrap();
            let agent = Arc::clone(&agent);
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    let n = s.read(&mut chunk).await.unwrap();
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                let head = String::from_utf8_lossy(&buf).to_string();
                let target = head.split(' ').nth(1).unwrap_or("").to_string();
                let (code, body) = {
                    let mut a = agent.lock().unwrap();
                    if head.starts_with("GET /status") {
                        a.status_hits += 1;
                        (200, a.report.clone().unwrap().to_string())
                    } else if head.starts_with("GET /metrics") {
                        (200, METRICS.to_string())
                    } else if let Some(to) = target.strip_prefix("/switchover?to=") {
                        // The real agent refuses a switchover without its token (401).
                        let bearer = format!("authorization: {}", token().bearer());
                        if head
                            .to_ascii_lowercase()
                            .contains(&bearer.to_ascii_lowercase())
                        {
                            a.switchovers.push(to.to_string());
                            (202, format!("switchover to {to} requested\n"))
                        } else {
                            (401, "switchover needs the member's token\n".to_string())
                        }
                    } else {
                        (404, String::new())
                    }
                };
                let resp = format!(
                    "HTTP/1.1 {code} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(resp.as_bytes()).await;
            });
        }
    });
    addr
}

fn token() -> Token {
    Token::parse(TOKEN).unwrap()
}

/// This member (`ics-b`) in `state`, with `ics-a` alive and heard on both networks.
fn report(state: &str, epoch: u64, hot: Option<&str>) -> Value {
    json!({
        "group": "infocast", "member": "ics-b", "state": state, "temporal": "iNone",
        "epoch": epoch, "hot": hot, "priority": 50, "leaseRemainingMs": null,
        "netCheck": {"enabled": true, "ok": true, "targets": ["10.0.0.1"]},
        "networks": [
            {"name": "primary", "address": "10.0.0.12", "multicast": "224.0.0.35"},
            {"name": "secondary", "address": "192.168.0.12", "multicast": "224.0.0.36"}
        ],
        "members": [
            {"name": "ics-a", "self": false, "state": "HS", "temporal": "iNone", "priority": 100,
             "epoch": epoch, "netCheckOk": true, "alive": true, "networks": [
                {"name": "primary", "healthy": true, "lastHeardMsAgo": 40, "anomaly": false, "address": "10.0.0.11:8035"},
                {"name": "secondary", "healthy": true, "lastHeardMsAgo": 40, "anomaly": false, "address": "192.168.0.11:8035"}
             ]},
            {"name": "ics-b", "self": true, "state": state, "temporal": "iNone", "priority": 50,
             "epoch": epoch, "netCheckOk": true, "alive": true, "networks": []}
        ],
        "vips": []
    })
}

struct Harness {
    api: FakeApiServer<World>,
    agent: Arc<Mutex<Agent>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Harness {
    async fn start(first: Value) -> Harness {
        Self::start_with(first, World::default()).await
    }

    async fn start_with(first: Value, world: World) -> Harness {
        // The report must be what the real agent serves.
        let _: StatusReport = serde_json::from_value(first.clone()).expect("a valid report");
        let agent = Arc::new(Mutex::new(Agent {
            report: Some(first),
            ..Agent::default()
        }));
        let addr = serve_agent(Arc::clone(&agent)).await;
        let (client, api) = FakeApiServer::start(world, respond);
        let cfg = ReporterConfig {
            env: K8sEnv {
                group: "infocast".into(),
                namespace: "broadcast".into(),
                pod: "infocast-ics-b".into(),
                node: "node-b".into(),
            },
            member: "ics-b".into(),
            agent: addr,
            switchover_token: token(),
            tuning: Tuning {
                poll: Duration::from_millis(20),
                agent_timeout: Duration::from_secs(2),
                min_write_gap: Duration::from_millis(10),
                refresh: Duration::from_secs(3600),
                backoff: Backoff {
                    start: Duration::from_millis(40),
                    max: Duration::from_millis(320),
                },
                log_quiet: Duration::from_secs(30),
                group_poll: Duration::from_millis(30),
                snapshot_every: Duration::from_secs(3600),
                snapshot_min_gap: Duration::from_millis(10),
            },
        };
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(run(client, cfg, async {
            let _ = stop_rx.await;
        }));
        Harness {
            api,
            agent,
            stop: Some(stop_tx),
            task,
        }
    }

    fn set_report(&self, r: Value) {
        let _: StatusReport = serde_json::from_value(r.clone()).expect("a valid report");
        self.agent.lock().unwrap().report = Some(r);
    }

    fn world<T>(&self, f: impl FnOnce(&mut Contents<World>) -> T) -> T {
        f(&mut self.api.lock())
    }

    fn status_hits(&self) -> usize {
        self.agent.lock().unwrap().status_hits
    }

    /// Waits until the agent was polled `n` more times and the group read `g` more times.
    async fn wait_rounds(&self, n: usize, g: usize) {
        let (hits, gets) = (self.status_hits(), self.world(|w| w.count("GET", GROUP)));
        wait_for("agent polls and group reads", || {
            (self.status_hits() >= hits + n && self.world(|w| w.count("GET", GROUP)) >= gets + g)
                .then_some(())
        })
        .await;
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .expect("the reporter stops when asked")
            .expect("the reporter does not panic");
    }
}

/// Polls `f` until it yields, failing the test after 10 s.
async fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn query_has(c: &Call, kv: &str) -> bool {
    c.query.split('&').any(|p| p == kv)
}

/// The status write's body with its times checked and removed.
fn without_times(c: &Call) -> Value {
    let mut body = c.body.clone();
    let entry = body["status"]["members"][0].as_object_mut().unwrap();
    for k in ["lastSeen", "lastTransitionTime"] {
        let t = entry.remove(k).unwrap_or_else(|| panic!("{k} missing"));
        assert!(t.as_str().is_some_and(|s| s.ends_with('Z')), "{k}: {t}");
    }
    body
}

#[tokio::test]
async fn first_report_applies_exactly_the_members_entry() {
    let h = Harness::start(report("SBS", 1, Some("ics-a"))).await;
    let call = wait_for("the status write", || {
        h.world(|w| w.calls.iter().find(|c| c.is("PATCH", STATUS)).cloned())
    })
    .await;
    assert!(
        query_has(&call, "fieldManager=rdg-member-ics-b"),
        "{}",
        call.query
    );
    assert!(query_has(&call, "force=true"), "{}", call.query);
    assert_eq!(
        without_times(&call),
        json!({
            "apiVersion": "rdg.infocast.io/v1alpha1",
            "kind": "RedundantGroup",
            "metadata": {"name": "infocast"},
            "status": {"members": [{
                "name": "ics-b", "state": "SBS", "temporalState": "iNone", "epoch": 1,
                "hot": "ics-a", "hears": ["ics-a"], "netCheckOk": true, "pod": "infocast-ics-b",
                "node": "node-b",
                "networks": [{"name": "primary", "healthy": true}, {"name": "secondary", "healthy": true}]
            }]}
        })
    );
    // Its pod is labelled standby (merge patch under its own field manager), and it says so.
    let label = wait_for("the pod label", || {
        h.world(|w| w.calls.iter().find(|c| c.is("PATCH", POD)).cloned())
    })
    .await;
    assert!(
        query_has(&label, "fieldManager=rdg-member-ics-b"),
        "{}",
        label.query
    );
    assert_eq!(
        label.body,
        json!({"metadata": {"labels": {"rdg.infocast.io/role": "standby"}}})
    );
    let ev = wait_for("the event", || {
        h.world(|w| w.calls.iter().find(|c| c.is("POST", EVENTS)).cloned())
    })
    .await;
    assert_eq!(ev.body["reason"], "BecameStandby");
    assert_eq!(ev.body["regarding"]["kind"], "RedundantGroup");
    assert_eq!(ev.body["regarding"]["name"], "infocast");
    h.stop().await;
}

#[tokio::test]
async fn the_agents_status_and_metrics_are_kept_in_a_config_map_owned_by_the_group() {
    let first = report("SBS", 1, Some("ics-a"));
    let h = Harness::start(first.clone()).await;
    let call = wait_for("the agent report", || {
        h.world(|w| {
            w.calls
                .iter()
                .find(|c| c.is("PATCH", AGENT_REPORT))
                .cloned()
        })
    })
    .await;
    // Server-side apply under the member's own field manager.
    assert!(
        query_has(&call, "fieldManager=rdg-member-ics-b"),
        "{}",
        call.query
    );
    assert!(query_has(&call, "force=true"), "{}", call.query);
    let cm = &call.body;
    assert_eq!(cm["kind"], "ConfigMap");
    assert_eq!(cm["metadata"]["name"], "infocast-ics-b-agent-report");
    assert_eq!(
        cm["metadata"]["labels"]["rdg.infocast.io/group"],
        "infocast"
    );
    assert_eq!(cm["metadata"]["labels"]["rdg.infocast.io/member"], "ics-b");
    assert_eq!(
        cm["metadata"]["ownerReferences"],
        json!([{"apiVersion": "rdg.infocast.io/v1alpha1", "kind": "RedundantGroup",
                "name": "infocast", "uid": "0b8e3c3e-1111-2222-3333-444455556666"}])
    );
    let data = &cm["data"];
    let status: Value = serde_json::from_str(data["status.json"].as_str().unwrap()).unwrap();
    assert_eq!(status, first, "the agent's /status, verbatim");
    assert_eq!(data["metrics.txt"], METRICS);
    assert_eq!(data["pod"], "infocast-ics-b");
    assert!(data["takenAt"].as_str().unwrap().ends_with('Z'), "{data}");
    assert!(!cm.to_string().contains(TOKEN), "no switchover token in it");

    // A state change is written at once (past the minimum gap); an unchanged report is not.
    h.set_report(report("HS", 2, Some("ics-b")));
    let second = wait_for("the agent report after the change", || {
        h.world(|w| {
            w.calls
                .iter()
                .filter(|c| c.is("PATCH", AGENT_REPORT))
                .nth(1)
                .cloned()
        })
    })
    .await;
    let status: Value =
        serde_json::from_str(second.body["data"]["status.json"].as_str().unwrap()).unwrap();
    assert_eq!(status["state"], "HS");
    h.wait_rounds(10, 3).await;
    assert_eq!(h.world(|w| w.count("PATCH", AGENT_REPORT)), 2);
    h.stop().await;
}

#[tokio::test]
async fn an_unchanged_report_makes_no_request() {
    let h = Harness::start(report("SBS", 1, Some("ics-a"))).await;
    wait_for("the first writes", || {
        h.world(|w| {
            (w.count("PATCH", STATUS) == 1
                && w.count("PATCH", POD) == 1
                && w.count("POST", EVENTS) == 1
                && w.count("PATCH", AGENT_REPORT) == 1)
                .then_some(())
        })
    })
    .await;
    let before = h.world(|w| writes(&w.calls).len());
    h.wait_rounds(10, 3).await;
    let writes = h.world(|w| writes(&w.calls));
    assert_eq!(
        writes.len(),
        before,
        "no write for an unchanged report: {:?}",
        writes
            .iter()
            .map(|c| format!("{} {}", c.method, c.path))
            .collect::<Vec<_>>()
    );
    h.stop().await;
}

#[tokio::test]
async fn becoming_hot_applies_the_entry_labels_the_pod_and_tells_why() {
    let h = Harness::start(report("SBS", 1, Some("ics-a"))).await;
    wait_for("the first writes", || {
        h.world(|w| (w.count("PATCH", POD) == 1 && w.count("POST", EVENTS) == 1).then_some(()))
    })
    .await;
    let mut hot = report("HS", 2, Some("ics-b"));
    hot["members"][0]["alive"] = json!(false);
    hot["lastBecameHot"] = json!({"from": "ics-a", "reason": "takeover", "planned": false,
        "epoch": 2, "unixMs": 1_795_000_000_000u64, "detectionMs": 480});
    h.set_report(hot);
    let status = wait_for("the new entry", || {
        h.world(|w| {
            w.calls
                .iter()
                .filter(|c| c.is("PATCH", STATUS))
                .nth(1)
                .cloned()
        })
    })
    .await;
    let entry = &without_times(&status)["status"]["members"][0];
    assert_eq!(entry["state"], "HS");
    assert_eq!(entry["epoch"], 2);
    assert_eq!(
        entry["lastTakeover"],
        json!({"from": "ics-a", "to": "ics-b", "reason": "hot member lost",
               "time": "2026-11-18T11:06:40.000000Z", "detectionMs": 480, "epoch": 2})
    );
    let label = wait_for("the hot label", || {
        h.world(|w| {
            w.calls
                .iter()
                .filter(|c| c.is("PATCH", POD))
                .nth(1)
                .cloned()
        })
    })
    .await;
    assert_eq!(
        label.body["metadata"]["labels"]["rdg.infocast.io/role"],
        "hot"
    );
    let ev = wait_for("the BecameHot event", || {
        h.world(|w| {
            w.calls
                .iter()
                .find(|c| c.is("POST", EVENTS) && c.body["reason"] == "BecameHot")
                .cloned()
        })
    })
    .await;
    assert_eq!(ev.body["type"], "Normal");
    let note = ev.body["note"].as_str().unwrap();
    assert!(
        note.contains("from ics-a") && note.contains("takeover"),
        "{note}"
    );
    assert!(note.contains("480 ms"), "{note}");
    // Once: the transition is not reported again.
    h.wait_rounds(5, 2).await;
    assert_eq!(h.world(|w| w.count("PATCH", POD)), 2);
    assert_eq!(h.world(|w| w.count("PATCH", STATUS)), 2);
    h.stop().await;
}

#[tokio::test]
async fn a_network_anomaly_is_a_warning_event_and_shows_in_the_entry() {
    let h = Harness::start(report("SBS", 1, Some("ics-a"))).await;
    wait_for("the first event", || {
        h.world(|w| (w.count("POST", EVENTS) == 1).then_some(()))
    })
    .await;
    let mut r = report("SBS", 1, Some("ics-a"));
    r["members"][0]["networks"][1]["healthy"] = json!(false);
    r["members"][0]["networks"][1]["anomaly"] = json!(true);
    h.set_report(r);
    let ev = wait_for("the anomaly event", || {
        h.world(|w| {
            w.calls
                .iter()
                .find(|c| c.is("POST", EVENTS) && c.body["reason"] == "NetworkAnomaly")
                .cloned()
        })
    })
    .await;
    assert_eq!(ev.body["type"], "Warning");
    assert!(ev.body["note"].as_str().unwrap().contains("ics-a"));
    let status = wait_for("the new entry", || {
        h.world(|w| {
            w.calls
                .iter()
                .filter(|c| c.is("PATCH", STATUS))
                .nth(1)
                .cloned()
        })
    })
    .await;
    assert_eq!(
        status.body["status"]["members"][0]["networks"][1],
        json!({"name": "secondary", "healthy": false, "silent": ["ics-a"]})
    );
    h.stop().await;
}

#[tokio::test]
async fn a_pending_switchover_for_another_member_is_passed_to_the_hot_agent_once() {
    let world = World {
        switchover: Some(
            json!({"to": "ics-a", "phase": "Pending", "reason": "operator",
                                "requested": "2026-11-23T10:00:00Z"}),
        ),
        ..World::default()
    };
    let h = Harness::start_with(report("HS", 3, Some("ics-b")), world).await;
    wait_for("the switchover request", || {
        (!h.agent.lock().unwrap().switchovers.is_empty()).then_some(())
    })
    .await;
    h.wait_rounds(5, 4).await;
    assert_eq!(
        h.agent.lock().unwrap().switchovers,
        vec!["ics-a".to_string()]
    );
    // A new request (another time) is passed on again.
    h.world(|w| {
        w.state.switchover = Some(
            json!({"to": "ics-a", "phase": "Pending", "reason": "rollout",
                                   "requested": "2026-11-23T10:05:00Z"}),
        )
    });
    wait_for("the second switchover request", || {
        (h.agent.lock().unwrap().switchovers.len() == 2).then_some(())
    })
    .await;
    h.stop().await;
}

#[tokio::test]
async fn a_standby_ignores_a_pending_switchover() {
    let world = World {
        switchover: Some(
            json!({"to": "ics-b", "phase": "Pending", "reason": "operator",
                                "requested": "2026-11-23T10:00:00Z"}),
        ),
        ..World::default()
    };
    let h = Harness::start_with(report("SBS", 3, Some("ics-a")), world).await;
    h.wait_rounds(10, 5).await;
    assert!(h.agent.lock().unwrap().switchovers.is_empty());
    h.stop().await;
}

#[tokio::test]
async fn api_errors_back_off_and_the_reporter_keeps_going() {
    let world = World {
        fail_status: 4,
        ..World::default()
    };
    let h = Harness::start_with(report("SBS", 1, Some("ics-a")), world).await;
    let attempts = wait_for("a successful status write after four failures", || {
        h.world(|w| {
            let a: Vec<Call> = w
                .calls
                .iter()
                .filter(|c| c.is("PATCH", STATUS))
                .cloned()
                .collect();
            a.iter().any(|c| c.code == 200).then_some(a)
        })
    })
    .await;
    let codes: Vec<u16> = attempts.iter().map(|c| c.code).collect();
    assert_eq!(codes, vec![500, 500, 500, 500, 200]);
    // Retries wait 40, 80, 160, 320 ms: exponential back-off, not a hot loop.
    for (i, pair) in attempts.windows(2).enumerate() {
        let gap = pair[1].at - pair[0].at;
        let want = Duration::from_millis(40 << i);
        assert!(
            gap >= want,
            "retry {i} after {gap:?}, want at least {want:?}"
        );
    }
    // The agent was polled all along, and later changes still get through.
    h.set_report(report("HS", 2, Some("ics-b")));
    wait_for("the entry after recovery", || {
        h.world(|w| {
            w.calls
                .iter()
                .any(|c| {
                    c.is("PATCH", STATUS)
                        && c.code == 200
                        && c.body["status"]["members"][0]["state"] == "HS"
                })
                .then_some(())
        })
    })
    .await;
    h.stop().await;
}
