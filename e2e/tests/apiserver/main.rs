//! The RedundantGroup CRD and status against a real API server (etcd + apiextensions-apiserver,
//! see `rdg_e2e::apiserver`): the CRD installs cleanly from every place it is shipped, the
//! examples are accepted, invalid specs are refused naming the field, and the members' status
//! entries and the controller's fields coexist as `kubectl get rdg` shows them. One more test
//! checks the harness itself: a restart on the same data, and a second address. [`lab`] runs
//! real agents in network namespaces against it: the status after a host's death, a real
//! split brain, and the API server down during a failover. [`plugin`] runs `kubectl rdg`
//! through kubectl against it.
//!
//! Each test starts its own server (a second or two) and is skipped loudly when the server's
//! binaries are not built and cannot be built here.

/// `println!` that also keeps the line in the running test's transcript (see [`transcript`]).
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::transcript(format_args!($($arg)*))
    };
}

mod lab;
mod plugin;

use k8s_openapi::api::core::v1::{Pod, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, ApiResource, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use rdg_core::State;
use rdg_e2e::apiserver::{ApiServer, Options, client_from};
use rdg_operator::RedundantGroup;
use rdg_operator::children::MANAGER;
use rdg_operator::controller::apply_aggregate;
use rdg_operator::reporter::field_manager;
use rdg_operator::status::{Failover, MemberEntry, NetworkHealth, RedundantGroupStatus};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

const CRD_NAME: &str = "redundantgroups.rdg.infocast.io";
const NAMESPACE: &str = "broadcast";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the e2e crate is inside the workspace")
        .to_path_buf()
}

fn read(rel: &str) -> String {
    let path = root().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Prints `text` and appends it to `<target>/tmp/transcripts/<test name>.txt` (emptied on this
/// process's first line for that test), so that CI can show what the commands printed without
/// running the tests again uncaptured.
fn transcript(text: std::fmt::Arguments) {
    use std::io::Write;
    use std::sync::Mutex;
    static STARTED: Mutex<Vec<String>> = Mutex::new(Vec::new());
    println!("{text}");
    let test = std::thread::current()
        .name()
        .unwrap_or("unnamed")
        .replace("::", "-");
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("transcripts");
    let path = dir.join(format!("{test}.txt"));
    let first = {
        let mut started = STARTED.lock().unwrap_or_else(|p| p.into_inner());
        let first = !started.contains(&test);
        if first {
            started.push(test);
        }
        first
    };
    let written = std::fs::create_dir_all(&dir).and_then(|()| {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(!first)
            .write(true)
            .truncate(first)
            .open(&path)?;
        writeln!(f, "{text}")
    });
    written.unwrap_or_else(|e| panic!("transcript {}: {e}", path.display()));
}

/// Prints a kubectl run (the command, its exit status, stdout, stderr).
fn show(what: &str, out: &Output) {
    say!(
        "--- {what}: {}\n{}{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// The documents of a (multi-document) YAML text, as JSON values; empty documents left out.
fn yaml_docs(yaml: &str) -> Result<Vec<Value>, String> {
    use serde::Deserialize;
    let mut docs = Vec::new();
    for doc in serde_yaml_ng::Deserializer::from_str(yaml) {
        let v = Value::deserialize(doc).map_err(|e| e.to_string())?;
        if !v.is_null() {
            docs.push(v);
        }
    }
    Ok(docs)
}

fn kind_of(v: &Value) -> &str {
    v["kind"].as_str().unwrap_or("")
}

/// The one CustomResourceDefinition document of `rel` (a multi-document YAML file).
fn crd_doc(rel: &str) -> Value {
    let docs = yaml_docs(&read(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    let mut crds: Vec<Value> = docs
        .into_iter()
        .filter(|d| kind_of(d) == "CustomResourceDefinition")
        .collect();
    assert_eq!(
        crds.len(),
        1,
        "{rel}: expected one CustomResourceDefinition"
    );
    crds.remove(0)
}

/// Files under `dir` (recursively) whose text declares a CustomResourceDefinition.
fn crd_files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("read {}: {e}", d.display())) {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml")
                && std::fs::read_to_string(&path)
                    .is_ok_and(|t| t.contains("kind: CustomResourceDefinition"))
            {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// Applies the CRD of `crds/` and waits until RedundantGroups are served.
async fn install_crd(api: &ApiServer, client: &Client) {
    let out = api.kubectl(&[
        "apply",
        "-f",
        root()
            .join("crds/redundantgroups.rdg.infocast.io.yaml")
            .to_str()
            .expect("a UTF-8 path"),
    ]);
    show("kubectl apply -f crds/", &out);
    assert!(out.status.success(), "the CRD was not applied");
    wait_established(api);
    wait_served(client).await;
}

fn wait_established(api: &ApiServer) {
    let out = api.kubectl(&[
        "wait",
        "--for",
        "condition=Established",
        "--timeout=60s",
        &format!("crd/{CRD_NAME}"),
    ]);
    show("kubectl wait --for condition=Established", &out);
    assert!(out.status.success(), "the CRD did not become Established");
}

/// Waits until listing RedundantGroups succeeds: Established can come a moment before the
/// server's handler for the new resource.
async fn wait_served(client: &Client) {
    let groups: Api<RedundantGroup> = Api::all(client.clone());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match groups.list(&ListParams::default()).await {
            Ok(_) => return,
            Err(e) if Instant::now() > deadline => {
                panic!("RedundantGroups not served 30 s after the CRD was Established: {e}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

fn warning_lines(stderr: &[u8]) -> Vec<String> {
    text(stderr)
        .lines()
        .filter(|l| l.contains("Warning"))
        .map(str::to_string)
        .collect()
}

/// Every RedundantGroup document of the examples and of the YAML code blocks of the docs,
/// with where it comes from. A code block that names the kind but does not parse is a problem.
fn documented_groups(problems: &mut Vec<String>) -> Vec<(String, Value)> {
    let mut groups = Vec::new();
    let mut examples: Vec<PathBuf> = std::fs::read_dir(root().join("manifests/examples"))
        .expect("read manifests/examples")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    examples.sort();
    for path in examples {
        let rel = path
            .strip_prefix(root())
            .expect("under the root")
            .display()
            .to_string();
        match yaml_docs(&read(&rel)) {
            Ok(docs) => groups.extend(
                docs.into_iter()
                    .filter(|d| kind_of(d) == "RedundantGroup")
                    .map(|d| (rel.clone(), d)),
            ),
            Err(e) => problems.push(format!("{rel}: not YAML: {e}")),
        }
    }
    let mut markdown = vec![root().join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .expect("read docs")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    markdown.extend(docs);
    for path in markdown {
        let rel = path
            .strip_prefix(root())
            .expect("under the root")
            .display()
            .to_string();
        for (line, block) in code_blocks(&read(&rel)) {
            if !block.contains("kind: RedundantGroup") {
                continue;
            }
            match yaml_docs(&block) {
                Ok(docs) => groups.extend(
                    docs.into_iter()
                        .filter(|d| kind_of(d) == "RedundantGroup")
                        .map(|d| (format!("{rel}:{line}"), d)),
                ),
                Err(e) => problems.push(format!("{rel}:{line}: code block is not YAML: {e}")),
            }
        }
    }
    groups
}

/// The fenced code blocks of a Markdown text with the line each starts on.
fn code_blocks(markdown: &str) -> Vec<(usize, String)> {
    let mut blocks = Vec::new();
    let mut open: Option<(usize, String)> = None;
    for (i, line) in markdown.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            match open.take() {
                Some(b) => blocks.push(b),
                None => open = Some((i + 1, String::new())),
            }
        } else if let Some((_, b)) = open.as_mut() {
            b.push_str(line);
            b.push('\n');
        }
    }
    blocks
}

#[tokio::test]
async fn crd_installs_without_warnings() {
    let Some(api) = ApiServer::for_test("crd_installs_without_warnings") else {
        return;
    };
    println!("API server ready in {:?}", api.started_in());
    let mut problems = Vec::new();

    // Every place the CRD is shipped, each created afresh: the server warns about a schema on
    // create (an update warns only about what is new).
    let mut sources = vec![(
        "manifests/install.yaml".to_string(),
        crd_doc("manifests/install.yaml"),
    )];
    let chart_crds = crd_files_under(&root().join("charts"));
    assert!(!chart_crds.is_empty(), "no CRD found under charts/");
    for path in chart_crds {
        let rel = path
            .strip_prefix(root())
            .expect("under the root")
            .display()
            .to_string();
        sources.push((rel.clone(), crd_doc(&rel)));
    }
    let canonical = "crds/redundantgroups.rdg.infocast.io.yaml";
    sources.push((canonical.to_string(), crd_doc(canonical)));
    let last = sources.len() - 1;
    for (i, (source, crd)) in sources.iter().enumerate() {
        let body = serde_json::to_string(crd).expect("JSON");
        let out = api.kubectl_with_stdin(&["apply", "-f", "-"], Some(&body));
        show(&format!("kubectl apply the CRD of {source}"), &out);
        if !out.status.success() {
            problems.push(format!(
                "{source}: kubectl apply failed: {}",
                text(&out.stderr)
            ));
            continue;
        }
        for w in warning_lines(&out.stderr) {
            problems.push(format!("{source}: {w}"));
        }
        wait_established(&api);
        if i != last {
            let out = api.kubectl(&[
                "delete",
                &format!("crd/{CRD_NAME}"),
                "--wait=true",
                "--timeout=60s",
            ]);
            show("kubectl delete crd", &out);
            assert!(
                out.status.success(),
                "the CRD of {source} could not be deleted"
            );
        }
    }
    let installed = sources.last().is_some_and(|(s, _)| {
        !problems
            .iter()
            .any(|p| p.starts_with(&format!("{s}: kubectl apply failed")))
    });
    assert!(
        installed,
        "the CRD could not be installed:\n  {}",
        problems.join("\n  ")
    );
    wait_served(&api.client().await).await;

    // Every documented group is accepted as written.
    let groups = documented_groups(&mut problems);
    let from_examples = groups
        .iter()
        .filter(|(s, _)| s.starts_with("manifests/examples/"))
        .count();
    assert!(
        from_examples >= 3,
        "expected the RedundantGroups of manifests/examples/, found {from_examples}"
    );
    for (source, group) in &groups {
        let name = group["metadata"]["name"].as_str().unwrap_or("?");
        let body = serde_json::to_string(group).expect("JSON");
        let out = api.kubectl_with_stdin(&["apply", "--dry-run=server", "-f", "-"], Some(&body));
        show(
            &format!("kubectl apply --dry-run=server {name} of {source}"),
            &out,
        );
        if !out.status.success() {
            problems.push(format!(
                "{source} ({name}): refused: {}",
                text(&out.stderr).trim()
            ));
        }
        for w in warning_lines(&out.stderr) {
            problems.push(format!("{source} ({name}): {w}"));
        }
    }
    println!("{} documented RedundantGroup(s) checked", groups.len());
    assert!(
        problems.is_empty(),
        "{} problem(s):\n  {}",
        problems.len(),
        problems.join("\n  ")
    );
}

/// A valid group to mutate: the RedundantGroup of `manifests/examples/two-member.yaml`.
fn base_group() -> Value {
    let mut docs =
        yaml_docs(&read("manifests/examples/two-member.yaml")).expect("the example parses");
    docs.retain(|d| kind_of(d) == "RedundantGroup");
    let mut g = docs.remove(0);
    g["metadata"] = json!({"name": "case", "namespace": NAMESPACE});
    g
}

/// Sets the value at JSON pointer `ptr` (its parent must exist; an array index one past the
/// end appends).
fn set(doc: &mut Value, ptr: &str, value: Value) {
    let (parent, key) = ptr.rsplit_once('/').expect("a JSON pointer");
    let target = doc
        .pointer_mut(parent)
        .unwrap_or_else(|| panic!("{parent} is not in the base group"));
    match target {
        Value::Object(o) => {
            o.insert(key.to_string(), value);
        }
        Value::Array(a) => {
            let i: usize = key.parse().expect("an array index");
            if i == a.len() {
                a.push(value);
            } else {
                a[i] = value;
            }
        }
        _ => panic!("{parent} is neither an object nor an array"),
    }
}

/// One row of the table: a change to the base group and what the server must answer.
struct Case {
    name: String,
    changes: Vec<(&'static str, Value)>,
    /// None: must be accepted; Some(s): must be refused with a message containing `s`.
    refused_at: Option<&'static str>,
}

fn refused(name: &str, changes: Vec<(&'static str, Value)>, at: &'static str) -> Case {
    Case {
        name: name.to_string(),
        changes,
        refused_at: Some(at),
    }
}

fn accepted(name: &str, changes: Vec<(&'static str, Value)>) -> Case {
    Case {
        name: name.to_string(),
        changes,
        refused_at: None,
    }
}

/// The `i`th member, named `name`, on its own node and address.
fn member(i: usize, name: &str) -> Value {
    json!({"name": name, "priority": 100 - i, "nodeName": format!("node-{name}"),
           "addresses": {"primary": format!("10.20.0.{}", 11 + i)}})
}

fn members(n: usize) -> Value {
    Value::Array((0..n).map(|i| member(i, &format!("ics-{i}"))).collect())
}

fn cases() -> Vec<Case> {
    let hb = |i: &str, t: &str| {
        vec![
            ("/spec/heartbeat/interval", json!(i)),
            ("/spec/heartbeat/timeout", json!(t)),
        ]
    };
    let mut cases = vec![
        accepted("the example as it is", vec![]),
        refused(
            "networks[0].multicast not an IP",
            vec![("/spec/networks/0/multicast", json!("not-an-ip"))],
            "spec.networks[0].multicast",
        ),
        refused(
            "members[0].addresses.primary 999.1.2.3",
            vec![("/spec/members/0/addresses/primary", json!("999.1.2.3"))],
            "spec.members[0].addresses[primary]",
        ),
        refused(
            "netCheck.targets [bogus]",
            vec![("/spec/netCheck/targets", json!(["bogus"]))],
            "spec.netCheck.targets[0]",
        ),
        refused(
            "vips[0].address prefix /99",
            vec![("/spec/vips/0/address", json!("10.20.0.100/99"))],
            "spec.vips[0].address",
        ),
        refused(
            "vips[0].address bogus",
            vec![("/spec/vips/0/address", json!("bogus"))],
            "spec.vips[0].address",
        ),
        refused(
            "vips[0].address without a prefix",
            vec![("/spec/vips/0/address", json!("10.20.0.100"))],
            "spec.vips[0].address",
        ),
        refused(
            "transmitter.channels[0].address not an IP",
            vec![("/spec/transmitter/channels/0/address", json!("not-an-ip"))],
            "spec.transmitter.channels[0].address",
        ),
        refused(
            "duplicate member names",
            vec![("/spec/members/1/name", json!("ics-a"))],
            "spec.members[1]",
        ),
        refused(
            "duplicate network names",
            vec![(
                "/spec/networks",
                json!([{"name": "primary", "multicast": "224.0.0.35"}, {"name": "primary"}]),
            )],
            "spec.networks",
        ),
        refused(
            "switchover.to naming no member",
            vec![("/spec/switchover", json!({"to": "ics-z"}))],
            "spec.switchover.to",
        ),
        refused(
            "vips[0].network naming no network",
            vec![("/spec/vips/0/network", json!("nowhere"))],
            "spec.vips",
        ),
        refused(
            "members[0].addresses naming no network",
            vec![("/spec/members/0/addresses/nowhere", json!("10.30.0.1"))],
            "spec.members",
        ),
        refused(
            "no member",
            vec![("/spec/members", members(0))],
            "spec.members",
        ),
        refused(
            "17 members",
            vec![("/spec/members", members(17))],
            "spec.members",
        ),
        accepted("16 members", vec![("/spec/members", members(16))]),
        refused(
            "3 networks",
            vec![(
                "/spec/networks",
                json!([{"name": "primary"}, {"name": "secondary"}, {"name": "third"}]),
            )],
            "spec.networks",
        ),
        refused(
            "members[0].priority 70000",
            vec![("/spec/members/0/priority", json!(70000))],
            "spec.members[0].priority",
        ),
        refused(
            "heartbeat.port 70000",
            vec![("/spec/heartbeat/port", json!(70000))],
            "spec.heartbeat.port",
        ),
        refused(
            "heartbeat.ttl 300",
            vec![("/spec/heartbeat/ttl", json!(300))],
            "spec.heartbeat.ttl",
        ),
        refused(
            "garp.count 0",
            vec![("/spec/garp", json!({"count": 0}))],
            "spec.garp.count",
        ),
        refused(
            "heartbeat.interval fast",
            vec![("/spec/heartbeat/interval", json!("fast"))],
            "spec.heartbeat.interval",
        ),
        refused(
            "netCheck.timeout fast",
            vec![("/spec/netCheck/timeout", json!("fast"))],
            "spec.netCheck.timeout",
        ),
    ];
    // heartbeat.interval must be shorter than heartbeat.timeout, whatever the units.
    for (i, t) in [
        ("900000us", "500ms"),
        ("900000µs", "500ms"),
        ("1s", "500ms"),
        ("500ms", "500ms"),
        ("0.5s", "500ms"),
        ("1m", "59s"),
        ("1s500ms", "1s"),
        ("1s 500ms", "1s"),
        ("600000000ns", "500ms"),
        ("0s", "500ms"),
    ] {
        cases.push(refused(
            &format!("heartbeat {i} / {t}"),
            hb(i, t),
            "spec.heartbeat.interval",
        ));
    }
    for (i, t) in [
        ("100ms", "500ms"),
        ("100000us", "1s"),
        ("1s", "1m"),
        ("250ms", "1s500ms"),
    ] {
        cases.push(accepted(&format!("heartbeat {i} / {t}"), hb(i, t)));
    }
    cases
}

#[tokio::test]
async fn invalid_specs_are_refused_with_their_field_path() {
    let Some(api) = ApiServer::for_test("invalid_specs_are_refused_with_their_field_path") else {
        return;
    };
    println!("API server ready in {:?}", api.started_in());
    let client = api.client().await;
    install_crd(&api, &client).await;
    let groups: Api<DynamicObject> = Api::namespaced_with(
        client,
        NAMESPACE,
        &ApiResource::erase::<RedundantGroup>(&()),
    );
    let dry_run = PostParams {
        dry_run: true,
        field_manager: None,
    };
    let mut failures = Vec::new();
    for case in cases() {
        let mut doc = base_group();
        for (ptr, value) in &case.changes {
            set(&mut doc, ptr, value.clone());
        }
        let obj: DynamicObject = serde_json::from_value(doc).expect("a Kubernetes object");
        let answer = groups.create(&dry_run, &obj).await;
        let verdict = match (&answer, case.refused_at) {
            (Ok(_), None) => Ok("accepted".to_string()),
            (Ok(_), Some(at)) => Err(format!("ACCEPTED, expected refused at {at}")),
            (Err(kube::Error::Api(ae)), Some(at)) if ae.message.contains(at) => {
                Ok(format!("refused: {}", ae.message))
            }
            (Err(kube::Error::Api(ae)), Some(at)) => Err(format!(
                "refused ({}), but the message does not name {at}: {}",
                ae.code, ae.message
            )),
            (Err(e), _) => Err(format!("unexpected answer: {e}")),
        };
        match verdict {
            Ok(how) => println!("ok   {}: {how}", case.name),
            Err(why) => {
                println!("FAIL {}: {why}", case.name);
                failures.push(format!("{}: {why}", case.name));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n  {}",
        failures.len(),
        failures.join("\n  ")
    );
}

const GROUP: &str = "infocast";
const MEMBERS: [&str; 6] = ["ics-a", "ics-b", "ics-c", "ics-d", "ics-e", "ics-f"];
/// Writes of each member's entry, all members at once.
const ROUNDS: u64 = 5;

fn pod_name(member: &str) -> String {
    format!("{GROUP}-{member}")
}

/// Member `member`'s entry in round `round`: ics-a hot, the others standing by.
fn entry(member: &str, round: u64) -> MemberEntry {
    let hot = member == MEMBERS[0];
    let now = Time(Timestamp::now());
    MemberEntry {
        name: member.to_string(),
        state: Some(if hot { State::HS } else { State::SBS }),
        temporal_state: Some("iNone".to_string()),
        epoch: Some(round),
        hot: Some(MEMBERS[0].to_string()),
        networks: vec![NetworkHealth {
            name: "primary".to_string(),
            healthy: true,
            silent: Vec::new(),
        }],
        hears: MEMBERS
            .iter()
            .filter(|m| **m != member)
            .map(|m| m.to_string())
            .collect(),
        net_check_ok: Some(true),
        vips_ok: Some(true),
        pod: Some(pod_name(member)),
        node: Some(format!("node-{member}")),
        last_transition_time: Some(now.clone()),
        last_seen: Some(MicroTime(now.0)),
        last_takeover: hot.then(|| Failover {
            from: None,
            to: member.to_string(),
            reason: "hot member lost".to_string(),
            time: MicroTime(now.0),
            detection_ms: Some(412),
            epoch: Some(round),
        }),
        content_digest: Some("35011279434b508d".to_string()),
        content_differs: Vec::new(),
    }
}

/// Applies a member's entry as the agent's reporter does (`reporter::run`: the same body,
/// field manager and force).
async fn apply_entry(
    groups: &Api<RedundantGroup>,
    member: &str,
    entry: Option<&MemberEntry>,
) -> Result<(), kube::Error> {
    let body = match entry {
        Some(e) => RedundantGroup::member_entry_patch(GROUP, e),
        None => RedundantGroup::status_patch(GROUP, json!({})),
    };
    let pp = PatchParams::apply(&field_manager(member)).force();
    groups
        .patch_status(GROUP, &pp, &Patch::Apply(&body))
        .await
        .map(drop)
}

/// A running pod of `member`, created before its entry was written, for the aggregation.
fn running_pod(member: &str) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(pod_name(member)),
            namespace: Some(NAMESPACE.to_string()),
            creation_timestamp: Some(Time(Timestamp::now() - SignedDuration::from_secs(60))),
            ..ObjectMeta::default()
        },
        status: Some(PodStatus {
            phase: Some("Running".to_string()),
            ..PodStatus::default()
        }),
        ..Pod::default()
    }
}

/// The controller's part of the status from the members' entries and running pods, applied
/// by the controller's own code (`controller::apply_aggregate`, field manager `rdg-controller`).
async fn apply_controller_status(groups: &Api<RedundantGroup>) -> RedundantGroupStatus {
    let group = groups.get(GROUP).await.expect("read the group");
    let pods: BTreeMap<String, Pod> = MEMBERS
        .iter()
        .filter(|m| group.spec.member(m).is_some())
        .map(|m| (m.to_string(), running_pod(m)))
        .collect();
    apply_aggregate(groups, &group, &pods, &Time(Timestamp::now()))
        .await
        .expect("apply the controller's status")
}

/// `kubectl get rdg GROUP` as column name → value.
fn kubectl_get_row(api: &ApiServer) -> BTreeMap<String, String> {
    let out = api.kubectl(&["get", "rdg", GROUP, "-n", NAMESPACE]);
    show("kubectl get rdg", &out);
    assert!(out.status.success(), "kubectl get rdg failed");
    let stdout = text(&out.stdout);
    let mut lines = stdout.lines();
    let header: Vec<&str> = lines.next().expect("a header").split_whitespace().collect();
    let row: Vec<&str> = lines.next().expect("a row").split_whitespace().collect();
    assert_eq!(header.len(), row.len(), "every column filled in:\n{stdout}");
    header
        .into_iter()
        .zip(row)
        .map(|(h, v)| (h.to_string(), v.to_string()))
        .collect()
}

#[tokio::test]
async fn status_entries_from_many_members_coexist_and_kubectl_shows_them() {
    let Some(api) =
        ApiServer::for_test("status_entries_from_many_members_coexist_and_kubectl_shows_them")
    else {
        return;
    };
    println!("API server ready in {:?}", api.started_in());
    let client = api.client().await;
    install_crd(&api, &client).await;
    let groups: Api<RedundantGroup> = Api::namespaced(client, NAMESPACE);

    // A group of six members.
    let mut doc = base_group();
    doc["metadata"] = json!({"name": GROUP, "namespace": NAMESPACE});
    doc["spec"]["members"] = Value::Array(
        MEMBERS
            .iter()
            .enumerate()
            .map(|(i, m)| member(i, m))
            .collect(),
    );
    let group: RedundantGroup = serde_json::from_value(doc).expect("a RedundantGroup");
    groups
        .create(&PostParams::default(), &group)
        .await
        .expect("create the group");

    // Every member writes its entry several times, all at once.
    let t0 = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for member in MEMBERS {
        let groups = groups.clone();
        tasks.spawn(async move {
            for round in 1..=ROUNDS {
                apply_entry(&groups, member, Some(&entry(member, round)))
                    .await
                    .map_err(|e| format!("{member}, round {round}: {e}"))?;
            }
            Ok::<(), String>(())
        });
    }
    let mut errors = Vec::new();
    while let Some(done) = tasks.join_next().await {
        if let Err(e) = done.expect("a writer task") {
            errors.push(e);
        }
    }
    assert!(
        errors.is_empty(),
        "entry writes failed:\n  {}",
        errors.join("\n  ")
    );
    println!(
        "{} entry writes from {} members in {:?}",
        ROUNDS as usize * MEMBERS.len(),
        MEMBERS.len(),
        t0.elapsed()
    );

    let status = groups
        .get(GROUP)
        .await
        .expect("read the group")
        .status
        .unwrap_or_default();
    for member in MEMBERS {
        let e = status
            .member(member)
            .unwrap_or_else(|| panic!("the entry of {member} was lost: {:?}", status.members));
        assert_eq!(e.epoch, Some(ROUNDS), "{member}'s last write is kept");
        assert_eq!(e.pod.as_deref(), Some(pod_name(member).as_str()));
    }
    assert_eq!(status.members.len(), MEMBERS.len(), "one entry per member");

    // Each entry is owned by its member's field manager alone.
    let group = groups.get(GROUP).await.expect("read the group");
    for member in MEMBERS {
        let manager = field_manager(member);
        let owned = group
            .managed_fields()
            .iter()
            .find(|f| f.manager.as_deref() == Some(&manager))
            .unwrap_or_else(|| panic!("no managedFields entry of {manager}"));
        assert_eq!(owned.operation.as_deref(), Some("Apply"));
        assert_eq!(owned.subresource.as_deref(), Some("status"));
        let fields = serde_json::to_string(&owned.fields_v1).expect("JSON");
        assert!(
            fields.contains(&format!("k:{{\\\"name\\\":\\\"{member}\\\"}}")),
            "{manager} owns its entry: {fields}"
        );
    }

    // The controller's fields next to the entries, and what kubectl shows of them.
    let written = apply_controller_status(&groups).await;
    println!(
        "controller status: hot {:?}, epoch {:?}, phase {:?}, ready {:?}, ConfigValid {:?}",
        written.hot,
        written.epoch,
        written.phase,
        written.ready,
        written.condition("ConfigValid").map(|c| &c.message)
    );
    let group = groups.get(GROUP).await.expect("read the group");
    let controller = group
        .managed_fields()
        .iter()
        .find(|f| f.manager.as_deref() == Some(MANAGER))
        .unwrap_or_else(|| panic!("no managedFields entry of {MANAGER}"));
    let fields = serde_json::to_string(&controller.fields_v1).expect("JSON");
    assert!(
        fields.contains("f:phase") && !fields.contains("f:members"),
        "{MANAGER} owns its fields and no member entry: {fields}"
    );
    let status = group.status.unwrap_or_default();
    assert_eq!(
        status.members.len(),
        MEMBERS.len(),
        "the controller's apply keeps every entry"
    );
    assert_eq!(status.hot.as_deref(), Some(MEMBERS[0]));
    let row = kubectl_get_row(&api);
    let want = [
        ("NAME", GROUP.to_string()),
        ("HOT", MEMBERS[0].to_string()),
        ("EPOCH", ROUNDS.to_string()),
        ("MEMBERS", MEMBERS.len().to_string()),
        ("READY", format!("{0}/{0}", MEMBERS.len())),
        ("PHASE", "Healthy".to_string()),
        ("VIP", "10.20.0.100/24".to_string()),
    ];
    for (column, value) in want {
        assert_eq!(
            row.get(column),
            Some(&value),
            "column {column} of kubectl get rdg: {row:?}"
        );
    }
    assert!(row.contains_key("AGE"), "an AGE column: {row:?}");

    // A member's manager applying no entry removes its entry, and only its entry.
    let gone = MEMBERS[MEMBERS.len() - 1];
    apply_entry(&groups, gone, None)
        .await
        .expect("apply without the entry");
    let status = groups
        .get(GROUP)
        .await
        .expect("read the group")
        .status
        .unwrap_or_default();
    assert!(
        status.member(gone).is_none(),
        "the entry of {gone} is removed: {:?}",
        status.members
    );
    for member in &MEMBERS[..MEMBERS.len() - 1] {
        assert!(
            status.member(member).is_some(),
            "the entry of {member} stays"
        );
    }
    assert_eq!(
        status.hot.as_deref(),
        Some(MEMBERS[0]),
        "the controller's fields stay"
    );

    // Two members removed from the spec, one of them (ics-e) with its entry still there (its
    // agent is gone and will not remove it): the controller counts only the members left and
    // removes that entry.
    let left = MEMBERS.len() - 2;
    let spec_members: Vec<Value> = MEMBERS[..left]
        .iter()
        .enumerate()
        .map(|(i, m)| member(i, m))
        .collect();
    groups
        .patch(
            GROUP,
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"members": spec_members}})),
        )
        .await
        .expect("remove members from the spec");
    apply_controller_status(&groups).await;
    let row = kubectl_get_row(&api);
    assert_eq!(row.get("MEMBERS"), Some(&left.to_string()), "{row:?}");
    assert_eq!(row.get("READY"), Some(&format!("{left}/{left}")), "{row:?}");
    assert_eq!(
        row.get("PHASE").map(String::as_str),
        Some("Healthy"),
        "{row:?}"
    );
    let group = groups.get(GROUP).await.expect("read the group");
    let mut entries: Vec<String> = group
        .status
        .as_ref()
        .map(|s| s.members.iter().map(|e| e.name.clone()).collect())
        .unwrap_or_default();
    entries.sort();
    println!(
        "{} after removing {} and {gone} from the spec (generation {:?}): entries {entries:?}",
        group.name_any(),
        MEMBERS[left],
        group.metadata.generation
    );
    assert_eq!(
        entries,
        MEMBERS[..left],
        "only the entries of members in the spec are left"
    );
}

/// A minimal CRD of its own, so the harness is checked whatever the state of rdg's.
const WIDGETS_CRD: &str = r#"{
  "apiVersion": "apiextensions.k8s.io/v1",
  "kind": "CustomResourceDefinition",
  "metadata": {"name": "widgets.e2e.rdg.infocast.io"},
  "spec": {
    "group": "e2e.rdg.infocast.io",
    "names": {"kind": "Widget", "plural": "widgets"},
    "scope": "Namespaced",
    "versions": [{"name": "v1", "served": true, "storage": true,
      "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]
  }
}"#;

#[tokio::test]
async fn the_server_restarts_on_its_data_and_answers_on_extra_addresses() {
    let extra = std::net::IpAddr::from([127, 0, 0, 2]);
    let Some(mut api) = ApiServer::for_test_with(
        "the_server_restarts_on_its_data_and_answers_on_extra_addresses",
        Options::reachable_at(&[extra]),
    ) else {
        return;
    };
    println!("API server ready in {:?}", api.started_in());
    let out = api.kubectl_with_stdin(&["create", "-f", "-"], Some(WIDGETS_CRD));
    show("kubectl create the widgets CRD", &out);
    assert!(out.status.success(), "the CRD was not created");
    let uid = |api: &ApiServer| {
        let out = api.kubectl(&[
            "get",
            "crd",
            "widgets.e2e.rdg.infocast.io",
            "-o",
            "jsonpath={.metadata.uid}",
        ]);
        assert!(
            out.status.success(),
            "kubectl get crd: {}",
            text(&out.stderr)
        );
        text(&out.stdout)
    };
    let before = uid(&api);
    assert!(!before.is_empty(), "the CRD has a uid");

    // Reached through the extra address, whose certificate it presents.
    let other = client_from(&api.kubeconfig_for(extra), Some(Duration::from_secs(5)))
        .await
        .expect("a client for the extra address");
    let version = other
        .apiserver_version()
        .await
        .expect("/version through 127.0.0.2");
    println!("through {extra}: Kubernetes {}", version.git_version);

    api.stop();
    assert!(!api.is_running(), "stopped");
    let out = api.kubectl(&["get", "crd", "--request-timeout=2s"]);
    assert!(
        !out.status.success(),
        "kubectl answered with the server stopped"
    );

    api.start_again();
    println!("API server ready again in {:?}", api.started_in());
    assert!(api.is_running(), "running again");
    assert_eq!(
        uid(&api),
        before,
        "the same CRD after the restart: etcd kept its data"
    );
}
