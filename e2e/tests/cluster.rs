//! The kind suite's scenario, here, with real containers: the member pods the controller's code
//! renders, run from the project's image by podman on nodes emulated by network namespaces,
//! reporting to the real API server. What cannot run here is played by the harness and says so
//! in `rdg_e2e::cluster`: the scheduler (each pod is placed in its node's namespace) and the
//! controller's pod cache (the stand-in controller sees every pod Running, as a real one does
//! until the node controller notices a dead node).
//!
//! Needs root, podman and the API server; each is skipped loudly when missing, and CI has all.

use rdg_e2e::apiserver::ApiServer;
use rdg_e2e::cluster::Cluster;
use rdg_e2e::kube_lab::NAMESPACE;
use rdg_e2e::podman;
use rdg_e2e::{Carousel, GroupConfig, Net};
use std::io::Write;
use std::time::{Duration, Instant};

const VIP: &str = "10.0.0.100";
/// A pod's start: podman creates it, the agent elects or joins.
const START: Duration = Duration::from_secs(30);
/// From a member's takeover to `kubectl get rdg` showing it as HOT.
const STATUS_BOUND: Duration = Duration::from_secs(2);
/// Effective capabilities of the agent: CAP_NET_ADMIN (12) and CAP_NET_RAW (13).
const AGENT_CAPS: u64 = (1 << 12) | (1 << 13);

fn config() -> GroupConfig {
    let mut c = GroupConfig::with_members(&[("ics-a", 100), ("ics-b", 50), ("ics-c", 10)]);
    c.vips = vec![format!("{VIP}/24")];
    c.carousel = Some(Carousel::infocast());
    c
}

/// `Uid` (real) and `CapEff` of process `pid`, from `/proc/PID/status`.
fn uid_and_caps(pid: i32) -> (u32, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("a process status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
            .unwrap_or_else(|| panic!("{name} in /proc/{pid}/status"))
            .to_string()
    };
    let uid = field("Uid:")
        .split_whitespace()
        .next()
        .and_then(|u| u.parse().ok())
        .expect("a uid");
    let caps = u64::from_str_radix(&field("CapEff:"), 16).expect("CapEff in hex");
    (uid, caps)
}

/// Prints `text` straight to stderr, past the test harness's capture, so that CI's log shows
/// the translations and the figures of a passing run.
fn report(text: &str) {
    let _ = writeln!(std::io::stderr(), "{text}");
}

fn last_failover_to(c: &Cluster) -> Option<String> {
    let out = c.kube.server.kubectl(&[
        "get",
        "rdg",
        &c.kube.lab.config().name,
        "-n",
        NAMESPACE,
        "-o",
        "jsonpath={.status.lastFailover.to}",
    ]);
    let to = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && !to.is_empty()).then_some(to)
}

/// Applies `fault` to the hot member `victim` and checks what the kind suite checks after it:
/// another member hot, the VIP answering from its node, `kubectl get rdg` showing it within
/// the status bound, and `lastFailover` naming it. Returns the new hot member.
fn fail_over(c: &Cluster, victim: &str, what: &str, fault: impl FnOnce(&str) + Send) -> String {
    let lab = &c.kube.lab;
    let others: Vec<String> = lab
        .member_names()
        .into_iter()
        .filter(|m| m != victim)
        .collect();
    let start = Instant::now();
    let mut new_hot = String::new();
    // The fault runs beside the watch: deleting a pod returns only once its containers stopped.
    std::thread::scope(|s| {
        s.spawn(|| fault(victim));
        lab.wait_until(
            START,
            &format!("a new hot member after {what}"),
            || match others.iter().find(|m| lab.is_hot(m)) {
                Some(m) => {
                    new_hot = m.clone();
                    true
                }
                None => false,
            },
        );
    });
    let hot_after = start.elapsed();
    let mac = lab.mac(&new_hot, Net::Primary);
    lab.wait_until(
        START,
        &format!("the VIP to answer from {new_hot}'s node"),
        || lab.client_ping(VIP) && lab.client_neighbour(VIP).as_deref() == Some(mac.as_str()),
    );
    let vip_after = start.elapsed();
    let shown = c.kube.wait_row(STATUS_BOUND, |r| {
        r.hot.as_deref() == Some(new_hot.as_str()) && r.phase.as_deref() != Some("SplitBrain")
    });
    let Some(shown) = shown else {
        lab.fail(&format!(
            "{what}: kubectl get rdg did not show {new_hot} as HOT within {STATUS_BOUND:?}: {:?}\nstatus: {}",
            c.kube.rdg_row(),
            c.kube.status_text()
        ));
    };
    lab.wait_until(START, "lastFailover to name the new hot member", || {
        last_failover_to(c).as_deref() == Some(new_hot.as_str())
    });
    report(&format!(
        "{what}: {victim} -> {new_hot} hot after {hot_after:?}, VIP from its node after \
         {vip_after:?}, kubectl get rdg {shown:?} later"
    ));
    new_hot
}

#[test]
fn member_pods_in_containers_fail_over_as_in_the_kind_suite() {
    let test = "member_pods_in_containers_fail_over_as_in_the_kind_suite";
    let Some(c) = Cluster::new(test, config()) else {
        return;
    };
    let lab = &c.kube.lab;
    let stb = lab.start_receiver("stb");
    for m in lab.member_names() {
        c.play(&m);
    }
    lab.wait_role("ics-a", "HS", START);
    lab.wait_role("ics-b", "SBS", START);
    lab.wait_role("ics-c", "SBS", START);
    let healthy = c.kube.wait_row(START, |r| {
        r.hot.as_deref() == Some("ics-a")
            && r.ready.as_deref() == Some("3/3")
            && r.phase.as_deref() == Some("Healthy")
    });
    if healthy.is_none() {
        lab.fail(&format!(
            "the group never became Healthy: {:?}",
            c.kube.rdg_row()
        ));
    }
    let translations = c.translations();
    let mut listing = String::from("pod fields translated for podman:");
    for t in &translations {
        listing += &format!("\n  {t}");
    }
    report(&listing);
    assert!(
        translations.iter().any(|t| t.contains("native sidecar")),
        "the agent runs as a native sidecar, which podman cannot: {translations:?}"
    );

    // Least privilege, read from the running containers.
    let agent = c.pid("ics-a", "agent").expect("the agent container runs");
    let (uid, caps) = uid_and_caps(agent);
    assert_eq!(
        (uid, caps),
        (0, AGENT_CAPS),
        "the agent: uid 0 with exactly NET_ADMIN and NET_RAW (CapEff {caps:#x})"
    );
    let carousel = c
        .pid("ics-a", "carousel")
        .expect("the carousel container runs");
    let (uid, caps) = uid_and_caps(carousel);
    assert_eq!(
        (uid, caps),
        (65532, 0),
        "the transmitter: uid 65532 without any capability (CapEff {caps:#x})"
    );
    lab.wait_until(START, "the VIP to answer from ics-a's node", || {
        let mac = lab.mac("ics-a", Net::Primary);
        lab.client_ping(VIP) && lab.client_neighbour(VIP) == Some(mac)
    });

    // 1. The hot pod is deleted; the controller makes it again and it joins as a standby.
    let hot = fail_over(&c, "ics-a", "the hot pod deleted", |m| c.delete_pod(m));
    c.play("ics-a");
    lab.wait_role("ics-a", "SBS", START);

    // 2. The hot node dies; it comes back later and its pod runs again.
    let victim = hot;
    let hot = fail_over(&c, &victim, "the hot node's death", |m| c.node_death(m));
    c.node_back(&victim);
    lab.wait_role(&victim, "SBS", START);

    // 3. The hot pod is frozen; thawed, it finds its lease over and stands by.
    let victim = hot;
    fail_over(&c, &victim, "the hot pod frozen", |m| c.pause(m));
    c.resume(&victim);
    lab.wait_role(&victim, "SBS", START);

    let report = stb.finish().unwrap_or_else(|e| lab.fail(&e));
    println!("receiver: {report}");
    let switches = report["switches"].as_array().cloned().unwrap_or_default();
    if report["interleaved"] != false || switches.len() != 3 {
        lab.fail(&format!(
            "the set-top box should see three clean switches of transmitter: {report}"
        ));
    }
    for o in report["objects"].as_array().into_iter().flatten() {
        if o["completed"].as_u64().unwrap_or(0) == 0 || o["corrupt"].as_u64() != Some(0) {
            lab.fail(&format!("object {o} incomplete or corrupt: {report}"));
        }
    }
}

/// Takes `capability` out of the `container`'s added capabilities.
fn without(pod: &mut k8s_openapi::api::core::v1::Pod, container: &str, capability: &str) {
    let spec = pod.spec.as_mut().expect("a pod spec");
    let c = spec
        .init_containers
        .iter_mut()
        .flatten()
        .chain(spec.containers.iter_mut())
        .find(|c| c.name == container)
        .expect("the container");
    let caps = c
        .security_context
        .as_mut()
        .and_then(|s| s.capabilities.as_mut())
        .and_then(|c| c.add.as_mut())
        .expect("added capabilities");
    caps.retain(|c| c != capability);
}

#[test]
fn an_agent_without_net_raw_refuses_to_start_and_names_the_capability() {
    let test = "an_agent_without_net_raw_refuses_to_start_and_names_the_capability";
    let Some(c) = Cluster::new(test, config()) else {
        return;
    };
    let lab = &c.kube.lab;
    c.play_with("ics-a", |pod| without(pod, "agent", "NET_RAW"));
    lab.wait_until(START, "the agent to stop with an error", || {
        c.logs("ics-a", "agent").contains("CAP_NET_RAW")
    });
    let log = c.logs("ics-a", "agent");
    println!("{log}");
    let line = log
        .lines()
        .find(|l| l.contains("CAP_NET_RAW"))
        .expect("a line naming the capability");
    assert!(
        line.contains("netCheck"),
        "the error names the net check: {line}"
    );
    assert!(
        lab.role_name("ics-a").is_none_or(|r| r != "HS"),
        "an agent that cannot check the network never becomes hot"
    );
}

#[test]
fn an_agent_without_net_admin_reports_the_vip_refused_and_runs_on() {
    let test = "an_agent_without_net_admin_reports_the_vip_refused_and_runs_on";
    let Some(c) = Cluster::new(test, config()) else {
        return;
    };
    let lab = &c.kube.lab;
    c.play_with("ics-a", |pod| without(pod, "agent", "NET_ADMIN"));
    c.play("ics-b");
    lab.wait_role("ics-a", "HS", START);
    lab.wait_role("ics-b", "SBS", START);
    // The rest works: heartbeats, election, the carousel's gate, the status report.
    lab.wait_until(START, "/healthz to say why the VIP is missing", || {
        lab.http_get("ics-a", "/healthz")
            .is_ok_and(|r| r.status == 503 && r.body.contains("CAP_NET_ADMIN"))
    });
    let health = lab.http_get("ics-a", "/healthz").expect("/healthz");
    report(&format!(
        "/healthz: {} {}",
        health.status,
        health.body.trim()
    ));
    assert!(
        health.body.contains(VIP),
        "it names the VIP: {}",
        health.body
    );
    let log = c.logs("ics-a", "agent");
    assert!(
        log.lines()
            .any(|l| l.contains(VIP) && l.contains("CAP_NET_ADMIN")),
        "the agent's log names the VIP and the capability:\n{log}"
    );
    lab.wait_until(START, "the carousel to run on the hot member", || {
        c.logs("ics-a", "carousel").contains("Processing")
    });
    assert_eq!(c.state("ics-a", "agent"), "running");
    let row = c
        .kube
        .wait_row(START, |r| r.hot.as_deref() == Some("ics-a"));
    assert!(row.is_some(), "kubectl get rdg: {:?}", c.kube.rdg_row());
}

#[test]
fn the_image_is_small_static_and_runs_the_controller_as_nobody() {
    let test = "the_image_is_small_static_and_runs_the_controller_as_nobody";
    if !rdg_e2e::require_root(test) || !podman::require_podman(test) {
        return;
    }
    let image = podman::image();
    let inspect = podman::podman(&[
        "image",
        "inspect",
        "--format",
        "{{.Size}}|{{.Config.User}}|{{json .Config.Entrypoint}}",
        image,
    ])
    .expect("podman image inspect");
    report(&format!("image {image}: {}", inspect.trim()));
    let fields: Vec<&str> = inspect.trim().split('|').collect();
    let size: u64 = fields[0].parse().expect("a size");
    assert!(
        size < 40_000_000,
        "one static binary on an empty base: {size} bytes"
    );
    assert_eq!(fields[1], "65532:65532", "nobody by default");
    assert_eq!(fields[2], r#"["/usr/local/bin/rdg"]"#);
    let version = podman::podman(&["run", "--rm", image, "--version"]).expect("rdg --version");
    assert_eq!(
        version.trim(),
        format!("rdg {}", env!("CARGO_PKG_VERSION")),
        "podman run IMAGE --version"
    );

    // The controller, as its Deployment runs it, against the real API server.
    let Some(server) = ApiServer::for_test(test) else {
        return;
    };
    let name = "rdg-e2e-controller";
    podman::remove_container_now(name);
    let kubeconfig = format!("{}:/kubeconfig:ro", server.kubeconfig().display());
    let listen = "127.0.0.1:18089";
    podman::podman(&[
        "run",
        "--detach",
        "--name",
        name,
        "--network",
        "host",
        "--read-only",
        "--cap-drop",
        "ALL",
        "--volume",
        &kubeconfig,
        "--env",
        "KUBECONFIG=/kubeconfig",
        image,
        "controller",
        "--image",
        image,
        "--metrics-listen",
        listen,
    ])
    .expect("podman run the controller");
    let addr = listen.parse().expect("an address");
    let started = Instant::now();
    let healthy = loop {
        let ok = rdg_e2e::http::get(addr, "/healthz", Duration::from_secs(1))
            .is_ok_and(|r| r.status == 200);
        if ok || started.elapsed() > START {
            break ok;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let logs = podman::logs(name);
    let running =
        podman::podman(&["inspect", "--format", "{{.State.Status}}", name]).unwrap_or_default();
    podman::remove_container_now(name);
    assert!(healthy, "the controller never answered /healthz:\n{logs}");
    assert!(
        logs.contains("controller started"),
        "the controller's log:\n{logs}"
    );
    assert_eq!(running.trim(), "running", "{logs}");
}
