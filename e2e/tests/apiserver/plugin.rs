//! `kubectl rdg` through the real kubectl against the real API server: kubectl finds the
//! plugin as `kubectl-rdg` (a symlink to the rdg binary under test, first on its PATH) and the
//! plugin talks to the server through `KUBECONFIG` or `--kubeconfig`.
//!
//! No kubelet and no agents run here: the members' status entries are applied by the test as
//! their agents' reporters would (same body, field manager and force), and the controller's
//! part of the status by the controller's own aggregation code. Where a command waits for the
//! agents (`switchover --wait`), the test plays the controller's and the agents' part by
//! patching the status. The apiextensions-apiserver serves neither Pods nor Events, which is
//! how the plugin's "not served" paths are tested. Nor does it serve ConfigMaps: for the
//! agent reports of `report`, the plugin goes through [`ConfigMapFront`], which plays the
//! ConfigMap API (an in-memory store) and forwards every other request to the real server;
//! the reports in it are written by the reporter's own code. Every command's output is printed.

use super::{NAMESPACE, base_group, install_crd, show, text};
use k8s_openapi::api::core::v1::{Pod, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Resource;
use kube::api::{Api, Patch, PatchParams, PostParams};
use rdg_core::State;
use rdg_e2e::apiserver::ApiServer;
use rdg_e2e::rdg_binary;
use rdg_operator::RedundantGroup;
use rdg_operator::controller::apply_aggregate;
use rdg_operator::render::render;
use rdg_operator::reporter::K8sEnv;
use rdg_operator::reporter::field_manager;
use rdg_operator::reporter::snapshot::{Snapshot, agent_report, apply_agent_report};
use rdg_operator::status::{Failover, MemberEntry, NetworkHealth};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const GROUP: &str = "infocast";
/// An environment value the support bundle must never contain.
const SECRET_VALUE: &str = "s3cr3t-do-not-ship";

/// The server with the CRD, a three-member group and its members' reports: ics-a hot,
/// ics-b standing by, ics-c isolated (CS, net check failing).
struct Fixture {
    api: ApiServer,
    groups: Api<RedundantGroup>,
    /// Holds the `kubectl-rdg` symlink.
    plugins: PathBuf,
}

async fn fixture(test: &str) -> Option<Fixture> {
    let api = ApiServer::for_test(test)?;
    let client = api.client().await;
    install_crd(&api, &client).await;
    let groups: Api<RedundantGroup> = Api::namespaced(client, NAMESPACE);
    let mut doc = base_group();
    doc["metadata"] = json!({"name": GROUP, "namespace": NAMESPACE});
    doc["spec"]["members"] = json!([
        {"name": "ics-a", "priority": 100, "nodeName": "node-a", "addresses": {"primary": "10.20.0.11"}},
        {"name": "ics-b", "priority": 50, "nodeName": "node-b", "addresses": {"primary": "10.20.0.12"}},
        {"name": "ics-c", "priority": 10, "nodeName": "node-c", "addresses": {"primary": "10.20.0.13"}},
    ]);
    doc["spec"]["transmitter"] = json!({"container": {
        "image": "registry.example/tx:1", "command": ["/tx"],
        "env": [{"name": "TX_API_TOKEN", "value": SECRET_VALUE}, {"name": "TX_MODE", "value": "carousel"}],
    }});
    let group: RedundantGroup = serde_json::from_value(doc).expect("a RedundantGroup");
    groups
        .create(&PostParams::default(), &group)
        .await
        .expect("create the group");
    for (m, state, net_ok) in [
        ("ics-a", State::HS, true),
        ("ics-b", State::SBS, true),
        ("ics-c", State::CS, false),
    ] {
        report(&groups, &entry(m, state, 1, net_ok)).await;
    }
    aggregate(&groups, &["ics-a", "ics-b", "ics-c"]).await;
    let plugins = api.dir().join("plugins");
    std::fs::create_dir_all(&plugins).expect("create the plugin directory");
    for name in ["kubectl-rdg", "kubectl_complete-rdg"] {
        std::os::unix::fs::symlink(rdg_binary(), plugins.join(name))
            .unwrap_or_else(|e| panic!("link {name} to rdg: {e}"));
    }
    Some(Fixture {
        api,
        groups,
        plugins,
    })
}

/// Member `name`'s report as its agent writes it.
fn entry(name: &str, state: State, epoch: u64, net_check_ok: bool) -> MemberEntry {
    let now = Timestamp::now();
    MemberEntry {
        name: name.to_string(),
        state: Some(state),
        temporal_state: Some("iNone".to_string()),
        epoch: Some(epoch),
        hot: Some(if state == State::HS { name } else { "ics-a" }.to_string()),
        networks: vec![NetworkHealth {
            name: "primary".to_string(),
            healthy: true,
            silent: Vec::new(),
        }],
        hears: ["ics-a", "ics-b", "ics-c"]
            .iter()
            .filter(|m| **m != name)
            .map(|m| m.to_string())
            .collect(),
        net_check_ok: Some(net_check_ok),
        vips_ok: Some(true),
        pod: Some(format!("{GROUP}-{name}")),
        node: Some(format!("node-{}", &name[4..])),
        last_transition_time: Some(Time(now)),
        last_seen: Some(MicroTime(now)),
        // ics-a took over from ics-b a while ago (the epoch-1 term began with a failover).
        last_takeover: (state == State::HS && epoch == 1).then(|| Failover {
            from: Some("ics-b".to_string()),
            to: name.to_string(),
            reason: "hot member lost".to_string(),
            time: MicroTime(now - SignedDuration::from_secs(3 * 3600 + 17 * 60)),
            detection_ms: Some(412),
            epoch: Some(1),
        }),
        content_digest: Some("35011279434b508d".to_string()),
        content_differs: Vec::new(),
    }
}

/// Applies a member's entry as its agent's reporter does.
async fn report(groups: &Api<RedundantGroup>, e: &MemberEntry) {
    let body = RedundantGroup::member_entry_patch(GROUP, e);
    groups
        .patch_status(
            GROUP,
            &PatchParams::apply(&field_manager(&e.name)).force(),
            &Patch::Apply(&body),
        )
        .await
        .expect("apply a member entry");
}

/// The controller's part of the status, by its own code, with running pods of `members`.
async fn aggregate(groups: &Api<RedundantGroup>, members: &[&str]) {
    let group = groups.get(GROUP).await.expect("read the group");
    let pods: BTreeMap<String, Pod> = members
        .iter()
        .map(|m| {
            let pod = Pod {
                metadata: ObjectMeta {
                    name: Some(format!("{GROUP}-{m}")),
                    creation_timestamp: Some(Time(
                        Timestamp::now() - SignedDuration::from_secs(60),
                    )),
                    ..ObjectMeta::default()
                },
                status: Some(PodStatus {
                    phase: Some("Running".to_string()),
                    ..PodStatus::default()
                }),
                ..Pod::default()
            };
            (m.to_string(), pod)
        })
        .collect();
    apply_aggregate(groups, &group, &pods, &Time(Timestamp::now()))
        .await
        .expect("apply the controller's status");
}

/// A plain-HTTP front of the API server for the plugin: `/api/v1/namespaces/*/configmaps/*`
/// is played by an in-memory store (GET; PATCH stores the applied object as it is, without
/// server-side apply's merging), and so are the pods and their logs the test puts in it (this
/// server runs no kubelet: `pods/NAME` and `pods/NAME/log?container=C` answer from the store,
/// 404 otherwise); everything else is forwarded to the real server with the test's client.
struct ConfigMapFront {
    /// Holds the front's kubeconfig.
    kubeconfig: PathBuf,
    /// The ConfigMaps by path.
    store: Arc<Mutex<BTreeMap<String, Value>>>,
}

impl ConfigMapFront {
    /// Starts the front on its own thread and runtime: the test blocks its own runtime while
    /// the plugin runs.
    fn start(api: &ApiServer) -> ConfigMapFront {
        let store = Arc::new(Mutex::new(BTreeMap::new()));
        let served = Arc::clone(&store);
        let upstream_config = api.kubeconfig().to_path_buf();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for the front");
            rt.block_on(async move {
                let upstream = rdg_e2e::apiserver::client_from(&upstream_config, None)
                    .await
                    .expect("a client of the API server");
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                loop {
                    let (s, _) = listener.accept().await.unwrap();
                    let (upstream, store) = (upstream.clone(), Arc::clone(&served));
                    tokio::spawn(async move { front_exchange(s, &upstream, &store).await });
                }
            });
        });
        let addr = addr_rx.recv().expect("the front's address");
        let kubeconfig = api.dir().join("front.kubeconfig");
        std::fs::write(&kubeconfig, front_kubeconfig(addr)).expect("write the front kubeconfig");
        ConfigMapFront { kubeconfig, store }
    }

    async fn client(&self) -> kube::Client {
        rdg_e2e::apiserver::client_from(&self.kubeconfig, None)
            .await
            .expect("a client of the front")
    }
}

fn front_kubeconfig(addr: SocketAddr) -> String {
    format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: front\n\
         clusters: [{{name: front, cluster: {{server: \"http://{addr}\"}}}}]\n\
         users: [{{name: front, user: {{}}}}]\n\
         contexts: [{{name: front, context: {{cluster: front, user: front, namespace: {NAMESPACE}}}}}]\n"
    )
}

/// One request on `s`, answered, then the connection closed.
async fn front_exchange(
    mut s: tokio::net::TcpStream,
    upstream: &kube::Client,
    store: &Mutex<BTreeMap<String, Value>>,
) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let split = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..split]).to_string();
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or("").split(' ');
    let (method, target) = (
        first.next().unwrap_or("").to_string(),
        first.next().unwrap_or("").to_string(),
    );
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[split + 4..].to_vec();
    while body.len() < length {
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => body.extend_from_slice(&chunk[..n]),
        }
    }
    let path = target.split('?').next().unwrap_or("").to_string();
    let is_config_map = path.starts_with("/api/v1/namespaces/")
        && path.split('/').nth(5) == Some("configmaps")
        && path.split('/').count() == 7;
    let is_pod = path.starts_with("/api/v1/namespaces/")
        && path.split('/').nth(5) == Some("pods")
        && (path.split('/').count() == 7
            || (path.split('/').count() == 8 && path.ends_with("/log")));
    let (code, content_type, answer) = if is_pod && method == "GET" {
        let key = match target.split_once("container=") {
            Some((_, rest)) if path.ends_with("/log") => {
                format!("{path}?container={}", rest.split('&').next().unwrap_or(""))
            }
            _ => path.clone(),
        };
        match store.lock().unwrap().get(&key) {
            Some(Value::String(log)) => (200, "text/plain".to_string(), log.clone().into_bytes()),
            Some(obj) => (
                200,
                "application/json".to_string(),
                obj.to_string().into_bytes(),
            ),
            None => (
                404,
                "application/json".to_string(),
                json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                       "reason": "NotFound", "code": 404,
                       "message": format!("{key} not found")})
                .to_string()
                .into_bytes(),
            ),
        }
    } else if is_config_map {
        let mut store = store.lock().unwrap();
        let name = path.rsplit('/').next().unwrap_or("").to_string();
        match method.as_str() {
            "PATCH" => {
                let mut obj: Value = serde_json::from_slice(&body).expect("an applied object");
                obj["metadata"]["uid"] = json!(format!("front-{name}"));
                obj["metadata"]["resourceVersion"] = json!("1");
                store.insert(path, obj.clone());
                (
                    200,
                    "application/json".to_string(),
                    obj.to_string().into_bytes(),
                )
            }
            "GET" if store.contains_key(&path) => (
                200,
                "application/json".to_string(),
                store[&path].to_string().into_bytes(),
            ),
            _ => (
                404,
                "application/json".to_string(),
                json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                       "reason": "NotFound", "code": 404,
                       "message": format!("configmaps \"{name}\" not found")})
                .to_string()
                .into_bytes(),
            ),
        }
    } else {
        let mut req = http::Request::builder()
            .method(method.as_str())
            .uri(&target);
        for (k, v) in &headers {
            if k == "accept" || k == "content-type" {
                req = req.header(k, v);
            }
        }
        let req = req.body(kube::client::Body::from(body)).expect("a request");
        match upstream.send(req).await {
            Ok(resp) => {
                let code = resp.status().as_u16();
                let ct = resp
                    .headers()
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("text/plain")
                    .to_string();
                let bytes = resp.into_body().collect_bytes().await.unwrap_or_default();
                (code, ct, bytes.to_vec())
            }
            Err(e) => (502, "text/plain".to_string(), e.to_string().into_bytes()),
        }
    };
    let head = format!(
        "HTTP/1.1 {code} X\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        answer.len()
    );
    let _ = s.write_all(head.as_bytes()).await;
    let _ = s.write_all(&answer).await;
}

/// Member `member`'s agent report, made and applied by the reporter's own functions (through
/// `front`), as its reporter would after reading its agent's `/status` and `/metrics`.
async fn keep_agent_report(
    front: &kube::Client,
    group: &RedundantGroup,
    member: &str,
    state: &str,
) {
    let env = K8sEnv {
        group: GROUP.to_string(),
        namespace: NAMESPACE.to_string(),
        pod: format!("{GROUP}-{member}"),
        node: format!("node-{}", &member[4..]),
    };
    let status = json!({
        "group": GROUP, "member": member, "state": state, "temporal": "iNone", "epoch": 1,
        "hot": "ics-a", "priority": 100, "leaseRemainingMs": null,
        "netCheck": {"enabled": true, "ok": true, "targets": ["10.20.0.1"]},
        "networks": [{"name": "primary", "address": "10.20.0.11", "multicast": null}],
        "members": [], "vips": []
    });
    let snap = Snapshot {
        status: status.to_string(),
        metrics: format!(
            "# TYPE rdg_state gauge\nrdg_state{{member=\"{member}\",state=\"{state}\"}} 1\n# EOF\n"
        ),
        taken_at: Timestamp::now() - SignedDuration::from_secs(20),
    };
    let cm = agent_report(&env, member, &group.object_ref(&()), &snap).expect("the group's uid");
    apply_agent_report(&Api::namespaced(front.clone(), NAMESPACE), member, &cm)
        .await
        .expect("apply the agent report");
}

impl Fixture {
    /// `kubectl rdg ARGS` with `KUBECONFIG` set, run in `cwd`.
    fn command(&self, args: &[&str], cwd: &Path) -> Command {
        let mut cmd = self.kubectl(cwd);
        cmd.arg("rdg").args(args);
        cmd
    }

    /// kubectl with the plugin directory first on its PATH and `KUBECONFIG` set.
    fn kubectl(&self, cwd: &Path) -> Command {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut dirs = vec![self.plugins.clone()];
        dirs.extend(std::env::split_paths(&path));
        let mut cmd = Command::new(self.api.kubectl_binary());
        cmd.env("PATH", std::env::join_paths(dirs).expect("a PATH"))
            .env("KUBECONFIG", self.api.kubeconfig())
            .env_remove("NO_COLOR")
            .current_dir(cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    /// Runs `kubectl rdg ARGS`, prints it and its output.
    fn rdg(&self, args: &[&str]) -> Output {
        self.rdg_in(args, self.api.dir())
    }

    fn rdg_in(&self, args: &[&str], cwd: &Path) -> Output {
        let out = self.command(args, cwd).output().expect("run kubectl rdg");
        show(&format!("kubectl rdg {}", args.join(" ")), &out);
        out
    }

    async fn group(&self) -> RedundantGroup {
        self.groups.get(GROUP).await.expect("read the group")
    }
}

fn code(out: &Output) -> i32 {
    out.status.code().expect("an exit code")
}

#[tokio::test]
async fn kubectl_rdg_status_shows_the_group_and_its_data() {
    let Some(f) = fixture("kubectl_rdg_status_shows_the_group_and_its_data").await else {
        return;
    };
    let out = f.rdg(&["status", GROUP, "-n", NAMESPACE]);
    assert_eq!(code(&out), 0);
    let screen = text(&out.stdout);
    for want in [
        "phase Healthy",
        "hot ics-a",
        "epoch 1",
        "10.20.0.100/24",
        "held by ics-a",
        "Ready",
        "HOT",
        "standby",
        "CS isolated",
        "FAILING",
        "infocast-ics-b",
        "node-c",
        "primary ok",
        "ics-b → ics-a (hot member lost), detected after 412 ms",
        // The apiextensions-apiserver serves no core/v1 Events: a note, not a failure.
        "does not serve core/v1 Events",
    ] {
        assert!(screen.contains(want), "{want:?} missing from:\n{screen}");
    }
    assert!(!screen.contains('\x1b'), "no colour when piped:\n{screen}");
    // As on a terminal (CLICOLOR_FORCE stands in for one): coloured.
    let mut cmd = f.command(&["status", GROUP, "-n", NAMESPACE], f.api.dir());
    let out = cmd.env("CLICOLOR_FORCE", "1").output().expect("run");
    assert!(text(&out.stdout).contains("\x1b["), "colour when forced");

    // With --kubeconfig instead of KUBECONFIG, and as data.
    let kc = f.api.kubeconfig().to_str().expect("UTF-8").to_string();
    let mut cmd = f.command(
        &[
            "status",
            GROUP,
            "-n",
            NAMESPACE,
            "--kubeconfig",
            &kc,
            "-o",
            "json",
        ],
        f.api.dir(),
    );
    let out = cmd.env_remove("KUBECONFIG").output().expect("run");
    show("kubectl rdg status -o json --kubeconfig", &out);
    assert_eq!(code(&out), 0);
    let status: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(status["hot"], "ics-a");
    assert_eq!(status["members"].as_array().map(Vec::len), Some(3));
    let out = f.rdg(&["status", GROUP, "-n", NAMESPACE, "-o", "yaml"]);
    let status: Value = serde_yaml_ng::from_slice(&out.stdout).expect("YAML");
    assert_eq!(status["phase"], "Healthy");

    // kubectl's shell completion asks kubectl_complete-rdg: subcommands, then group names and
    // members from the server.
    for (words, want) in [
        (&["rdg", "sw"][..], "switchover"),
        (&["rdg", "status", "-n", NAMESPACE, ""][..], GROUP),
        (
            &["rdg", "fence", "-n", NAMESPACE, GROUP, "ics-"][..],
            "ics-c",
        ),
    ] {
        let out = f
            .kubectl(f.api.dir())
            .arg("__complete")
            .args(words)
            .output()
            .expect("run kubectl __complete");
        show(&format!("kubectl __complete {}", words.join(" ")), &out);
        let lines: Vec<String> = text(&out.stdout).lines().map(str::to_string).collect();
        assert!(lines.contains(&want.to_string()), "{want} in {lines:?}");
    }

    // Failures and usage.
    let out = f.rdg(&["status", "nosuch", "-n", NAMESPACE]);
    assert_eq!(code(&out), 1);
    assert!(text(&out.stderr).contains("no RedundantGroup \"nosuch\""));
    let out = f.rdg(&["status", GROUP, "-n", NAMESPACE, "-o", "xml"]);
    assert_eq!(code(&out), 2, "a usage error");

    // The support bundle. Agents ics-a and ics-b have kept their reports; ics-c's has not.
    let front = ConfigMapFront::start(&f.api);
    let through_front = front.client().await;
    let group = f.group().await;
    keep_agent_report(&through_front, &group, "ics-a", "HS").await;
    keep_agent_report(&through_front, &group, "ics-b", "SBS").await;
    assert_eq!(front.store.lock().unwrap().len(), 2);
    // ics-a's pod as the kubelet runs it, and its containers' logs (no kubelet here).
    let pod_path = format!("/api/v1/namespaces/{NAMESPACE}/pods/{GROUP}-ics-a");
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": format!("{GROUP}-ics-a"), "namespace": NAMESPACE},
        "spec": {
            "nodeName": "node-a",
            "initContainers": [{"name": "agent", "image": "rdg:test", "restartPolicy": "Always"}],
            "containers": [{"name": "carousel", "image": "rdg:test",
                            "env": [{"name": "SMTP_PASSWORD", "value": SECRET_VALUE}]}],
        },
        "status": {"phase": "Running"},
    });
    {
        let mut store = front.store.lock().unwrap();
        store.insert(pod_path.clone(), pod);
        for (c, line) in [
            ("agent", "became HOT (epoch 1, takeover)"),
            ("carousel", "Processing \"bootcast_1900\""),
        ] {
            store.insert(
                format!("{pod_path}/log?container={c}"),
                Value::String(format!("2026-12-03T10:00:00.000000000Z {line}\n")),
            );
        }
    }
    let dir = f.api.dir().join("report");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let mut report = f.command(&["report", GROUP, "-n", NAMESPACE], &dir);
    let out = report
        .env("KUBECONFIG", &front.kubeconfig)
        .output()
        .expect("run kubectl rdg report");
    show("kubectl rdg report (through the ConfigMap front)", &out);
    assert_eq!(code(&out), 0);
    let bundles: Vec<String> = std::fs::read_dir(&dir)
        .expect("read the directory")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(bundles.len(), 1, "{bundles:?}");
    let bundle = &bundles[0];
    assert!(
        bundle.starts_with("rdg-report-infocast-") && bundle.ends_with("Z.tar.gz"),
        "{bundle}"
    );
    let tar = Command::new("tar")
        .arg("-xzf")
        .arg(bundle)
        .current_dir(&dir)
        .output()
        .expect("run tar");
    assert!(tar.status.success(), "{}", text(&tar.stderr));
    let top = dir.join(bundle.trim_end_matches(".tar.gz"));
    let mut files = Vec::new();
    let mut stack = vec![top.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files.push(p.strip_prefix(&top).unwrap().display().to_string());
            }
        }
    }
    files.sort();
    say!("bundle {bundle}: {files:#?}");
    for want in [
        "README.txt",
        "spec.yaml",
        "status.yaml",
        "events.error.txt",
        "pods/infocast-ics-a.yaml",
        "logs/infocast-ics-a/agent.log",
        "logs/infocast-ics-a/carousel.log",
        "pods/infocast-ics-b.error.txt",
        "logs/infocast-ics-b.error.txt",
        "pods/infocast-ics-c.error.txt",
        "agents/ics-a/status.json",
        "agents/ics-a/metrics.txt",
        "agents/ics-a/SNAPSHOT.txt",
        "agents/ics-b/status.json",
        "agents/ics-b/metrics.txt",
        "agents/ics-c/MISSING.txt",
    ] {
        assert!(files.contains(&want.to_string()), "{want} in {files:?}");
    }
    let read = |f: &str| std::fs::read_to_string(top.join(f)).expect("read a bundle file");
    for f in &files {
        assert!(!read(f).contains(SECRET_VALUE), "{f} leaks the secret");
    }
    let spec = read("spec.yaml");
    say!("--- spec.yaml of the bundle\n{spec}");
    assert!(
        spec.contains("TX_MODE") && spec.contains("<redacted>"),
        "{spec}"
    );
    assert!(read("status.yaml").contains("ics-c"));
    assert!(read("logs/infocast-ics-b.error.txt").contains("404"));
    assert!(read("logs/infocast-ics-a/agent.log").contains("became HOT"));
    assert!(read("logs/infocast-ics-a/carousel.log").contains("bootcast_1900"));
    let pod_yaml = read("pods/infocast-ics-a.yaml");
    say!("--- pods/infocast-ics-a.yaml of the bundle\n{pod_yaml}");
    assert!(
        pod_yaml.contains("node-a") && pod_yaml.contains("SMTP_PASSWORD"),
        "{pod_yaml}"
    );
    let status: Value =
        serde_json::from_str(&read("agents/ics-b/status.json")).expect("status.json is JSON");
    assert_eq!(
        (&status["member"], &status["state"]),
        (&json!("ics-b"), &json!("SBS"))
    );
    assert!(
        read("agents/ics-a/metrics.txt").contains("rdg_state{member=\"ics-a\",state=\"HS\"} 1")
    );
    let snapshot = read("agents/ics-a/SNAPSHOT.txt");
    say!("--- agents/ics-a/SNAPSHOT.txt\n{snapshot}");
    assert!(
        snapshot.contains("reporter of infocast-ics-a")
            && snapshot.contains("infocast-ics-a-agent-report"),
        "{snapshot}"
    );
    let readme = read("README.txt");
    assert!(
        readme.contains("agents/ics-b: agent /status and /metrics"),
        "{readme}"
    );
    let missing = read("agents/ics-c/MISSING.txt");
    say!("--- agents/ics-c/MISSING.txt\n{missing}");
    assert!(
        missing.contains("no ConfigMap broadcast/infocast-ics-c-agent-report"),
        "{missing}"
    );
    say!("--- events.error.txt\n{}", read("events.error.txt"));
}

#[tokio::test]
async fn kubectl_rdg_switchover_refuses_what_cannot_work_and_waits_for_the_hand_over() {
    let Some(f) =
        fixture("kubectl_rdg_switchover_refuses_what_cannot_work_and_waits_for_the_hand_over")
            .await
    else {
        return;
    };
    let refusals = [
        ("ics-z", "is not a member"),
        ("ics-a", "already hot"),
        ("ics-c", "is isolated"),
    ];
    for (member, why) in refusals {
        let out = f.rdg(&["switchover", GROUP, member, "-n", NAMESPACE]);
        assert_eq!(code(&out), 1, "{member}");
        assert!(text(&out.stderr).contains(why), "{member}: {why}");
    }
    // A member without a report (its pod never ran).
    let mut members = serde_json::to_value(&f.group().await.spec.members).unwrap();
    members.as_array_mut().unwrap().push(json!(
        {"name": "ics-d", "priority": 5, "nodeName": "node-d", "addresses": {"primary": "10.20.0.14"}}
    ));
    f.groups
        .patch(
            GROUP,
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"members": members}})),
        )
        .await
        .expect("add ics-d");
    let out = f.rdg(&["switchover", GROUP, "ics-d", "-n", NAMESPACE]);
    assert_eq!(code(&out), 1);
    assert!(text(&out.stderr).contains("no status entry"));
    // A fenced member.
    assert_eq!(code(&f.rdg(&["fence", GROUP, "ics-b", "-n", NAMESPACE])), 0);
    let out = f.rdg(&["switchover", GROUP, "ics-b", "-n", NAMESPACE]);
    assert_eq!(code(&out), 1);
    assert!(text(&out.stderr).contains("fenced"));
    assert_eq!(
        code(&f.rdg(&["unfence", GROUP, "ics-b", "-n", NAMESPACE])),
        0
    );
    // Usage.
    assert_eq!(code(&f.rdg(&["switchover", GROUP])), 2);
    // Nothing was asked for by any of these.
    let annotations = f.group().await.metadata.annotations.unwrap_or_default();
    assert!(annotations.is_empty(), "{annotations:?}");

    // The real thing, waiting. The test plays the controller (takes up the annotation) and
    // the agents (ics-a steps down, ics-b reports hot), as the running system would.
    let mut child = f
        .command(
            &[
                "switchover",
                GROUP,
                "ics-b",
                "-n",
                NAMESPACE,
                "--wait",
                "--timeout",
                "30s",
            ],
            f.api.dir(),
        )
        .spawn()
        .expect("start kubectl rdg switchover --wait");
    let annotation = rdg_operator::controller::SWITCHOVER_ANNOTATION;
    let mut asked = false;
    for _ in 0..100 {
        if child.try_wait().expect("poll the child").is_some() {
            let out = child.wait_with_output().expect("its output");
            show("kubectl rdg switchover --wait (ended early)", &out);
            panic!("kubectl rdg switchover --wait ended before the hand-over");
        }
        let g = f.group().await;
        if g.metadata.annotations.unwrap_or_default().get(annotation) == Some(&"ics-b".to_string())
        {
            asked = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(asked, "the plugin set {annotation}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    f.groups
        .patch(
            GROUP,
            &PatchParams::default(),
            &Patch::Merge(&json!({"metadata": {"annotations": {annotation: null}}})),
        )
        .await
        .expect("take up the annotation");
    report(&f.groups, &entry("ics-a", State::SBS, 2, true)).await;
    report(&f.groups, &entry("ics-b", State::HS, 2, true)).await;
    aggregate(&f.groups, &["ics-a", "ics-b", "ics-c"]).await;
    let out = child.wait_with_output().expect("wait for kubectl rdg");
    show("kubectl rdg switchover --wait", &out);
    assert_eq!(code(&out), 0);
    let said = text(&out.stdout);
    assert!(said.contains("ics-b is hot after"), "{said}");
    assert_eq!(
        f.group().await.status.unwrap().hot.as_deref(),
        Some("ics-b")
    );
}

#[tokio::test]
async fn kubectl_rdg_fence_is_kept_in_the_spec_and_renders_priority_0() {
    let Some(f) = fixture("kubectl_rdg_fence_is_kept_in_the_spec_and_renders_priority_0").await
    else {
        return;
    };
    let out = f.rdg(&["fence", GROUP, "ics-a", "-n", NAMESPACE]);
    assert_eq!(code(&out), 0);
    assert!(text(&out.stdout).contains("hands over"), "ics-a is hot");
    let g = f.group().await;
    let fenced: Vec<(&str, bool)> = g
        .spec
        .members
        .iter()
        .map(|m| (m.name.as_str(), m.fenced))
        .collect();
    assert_eq!(
        fenced,
        [("ics-a", true), ("ics-b", false), ("ics-c", false)]
    );
    assert_eq!(g.spec.members[0].priority, 100, "the priority is kept");
    // What the controller renders for the agents.
    let rendered = render(GROUP, &g.spec).expect("a valid spec");
    let prio: Vec<u16> = rendered.config.members.iter().map(|m| m.priority).collect();
    assert_eq!(prio, [0, 50, 10]);
    say!("rendered priorities with ics-a fenced: {prio:?}");
    aggregate(&f.groups, &["ics-a", "ics-b", "ics-c"]).await;
    assert_eq!(f.group().await.status.unwrap().fenced, ["ics-a"]);
    // `kubectl get rdg -o wide` shows it too (the Fenced column is a wide one).
    let wide = f
        .api
        .kubectl(&["get", "rdg", GROUP, "-n", NAMESPACE, "-o", "wide"]);
    let wide = text(&wide.stdout);
    say!("--- kubectl get rdg -o wide\n{wide}");
    let mut lines = wide.lines();
    assert!(lines.next().is_some_and(|h| h.contains("FENCED")), "{wide}");
    assert!(lines.next().is_some_and(|r| r.contains("ics-a")), "{wide}");
    let out = f.rdg(&["status", GROUP, "-n", NAMESPACE]);
    assert!(text(&out.stdout).contains("FENCED"));

    // Again: nothing to do. Then the last member that could become hot: refused.
    let out = f.rdg(&["fence", GROUP, "ics-a", "-n", NAMESPACE]);
    assert_eq!(code(&out), 0);
    assert!(text(&out.stdout).contains("already fenced"));
    assert_eq!(code(&f.rdg(&["fence", GROUP, "ics-b", "-n", NAMESPACE])), 0);
    let out = f.rdg(&["fence", GROUP, "ics-c", "-n", NAMESPACE]);
    assert_eq!(code(&out), 1);
    assert!(text(&out.stderr).contains("no member"));
    let out = f.rdg(&["fence", GROUP, "ics-q", "-n", NAMESPACE]);
    assert_eq!(code(&out), 1);

    // Unfenced: the field is gone from the stored object, as before.
    for m in ["ics-a", "ics-b"] {
        assert_eq!(code(&f.rdg(&["unfence", GROUP, m, "-n", NAMESPACE])), 0);
    }
    let raw = f
        .api
        .kubectl(&["get", "rdg", GROUP, "-n", NAMESPACE, "-o", "json"]);
    let raw: Value = serde_json::from_slice(&raw.stdout).expect("JSON");
    for m in raw["spec"]["members"].as_array().expect("members") {
        assert!(m.get("fenced").is_none(), "{m}");
    }
}
