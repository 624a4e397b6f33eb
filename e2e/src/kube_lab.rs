//! A lab whose agents run in Kubernetes mode against a real API server. Each member's namespace
//! gets a management link to this host, where the server listens; the group is a
//! `RedundantGroup` made from the lab's configuration; each agent's reporter writes its own
//! status entry. The server serves custom resources only (no kubelet or scheduler can run
//! here), so the member pods exist only in this harness: a stand-in controller watches the
//! group and applies the controller's aggregate (`rdg_operator::controller::apply_aggregate`)
//! with those pods, as the real controller does with its pod cache.

use crate::apiserver::{ApiServer, Options};
use crate::config::{GroupConfig, Net};
use crate::lab::Lab;
use crate::names;
use crate::shell::{ip, must};
use futures_util::StreamExt;
use k8s_openapi::api::core::v1::{Pod, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Resource};
use rdg_operator::RedundantGroup;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// This host's address on every management link: where the agents reach the API server.
pub const API_ADDRESS: Ipv4Addr = Ipv4Addr::new(172, 31, 255, 1);
/// The namespace of the group (the server has no Namespace objects to check it against).
pub const NAMESPACE: &str = "default";
/// The CRD file, relative to the workspace root.
const CRD_FILE: &str = "crds/redundantgroups.rdg.infocast.io.yaml";

/// One row of `kubectl get rdg`, by column name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RdgRow {
    /// HOT (None when the cell is empty or `<none>`).
    pub hot: Option<String>,
    /// EPOCH.
    pub epoch: Option<String>,
    /// MEMBERS.
    pub members: Option<String>,
    /// READY.
    pub ready: Option<String>,
    /// PHASE.
    pub phase: Option<String>,
    /// VIP.
    pub vip: Option<String>,
}

impl RdgRow {
    /// Parses kubectl's table (a header and one row) by the header's column offsets.
    pub fn parse(table: &str) -> Option<RdgRow> {
        let mut lines = table.lines().filter(|l| !l.trim().is_empty());
        let header = lines.next()?;
        let row = lines.next()?;
        let mut starts: Vec<(usize, &str)> = Vec::new();
        let mut prev_space = true;
        for (i, c) in header.char_indices() {
            if c != ' ' && prev_space {
                let end = header[i..].find(' ').map_or(header.len(), |e| i + e);
                starts.push((i, &header[i..end]));
            }
            prev_space = c == ' ';
        }
        let cell = |name: &str| -> Option<String> {
            let k = starts.iter().position(|(_, n)| *n == name)?;
            let from = starts[k].0;
            let to = starts.get(k + 1).map_or(row.len(), |(s, _)| *s);
            let text = row.get(from..to.min(row.len()))?.trim();
            (!text.is_empty() && text != "<none>").then(|| text.to_string())
        };
        Some(RdgRow {
            hot: cell("HOT"),
            epoch: cell("EPOCH"),
            members: cell("MEMBERS"),
            ready: cell("READY"),
            phase: cell("PHASE"),
            vip: cell("VIP"),
        })
    }
}

/// What one observer saw of `kubectl get rdg` around a host's death.
#[derive(Debug, Clone, PartialEq)]
pub struct DeathTrial {
    /// The member whose host died.
    pub victim: String,
    /// The member that took over (by its role file).
    pub new_hot: String,
    /// From the death to the first `kubectl get rdg` showing `new_hot` as HOT, phase not
    /// SplitBrain (None: never within the observation).
    pub to_new_hot: Option<Duration>,
    /// How long a row showed SplitBrain, after the death.
    pub split_brain: Duration,
    /// How long a row showed no HOT, after the death.
    pub empty_hot: Duration,
    /// How long a row still showed the dead member as HOT.
    pub old_hot: Duration,
    /// Wrong rows (any of the three) seen after `to_new_hot`.
    pub wrong_after_new_hot: Vec<(Duration, RdgRow)>,
    /// Rows read.
    pub reads: usize,
}

/// A lab, a real API server and a stand-in controller. Dropped in this order: the
/// controller stops, the lab kills its agents and namespaces, the server and etcd are killed.
pub struct KubeLab {
    controller: Option<StatusLoop>,
    /// The namespaces, agents and faults.
    pub lab: Lab,
    /// The API server (with etcd).
    pub server: ApiServer,
    /// The kubeconfig the agents use (server at [`API_ADDRESS`]).
    pub(crate) agent_kubeconfig: PathBuf,
    /// When the harness's pods were "created".
    pods_created: Timestamp,
}

impl KubeLab {
    /// Starts the server (None, after a loud SKIPPED line naming `test`, when it cannot run
    /// here), the lab for `config` with management links, installs the CRD, creates the group
    /// and starts the stand-in controller. Agents are started with [`KubeLab::start`].
    pub fn new(test: &str, config: GroupConfig) -> Option<KubeLab> {
        KubeLab::build(test, config, false)
    }

    /// [`KubeLab::new`] with a client namespace in the lab (see [`Lab::with_client`]).
    pub fn with_client(test: &str, config: GroupConfig) -> Option<KubeLab> {
        KubeLab::build(test, config, true)
    }

    fn build(test: &str, config: GroupConfig, client: bool) -> Option<KubeLab> {
        let server =
            ApiServer::for_test_with(test, Options::reachable_at(&[IpAddr::V4(API_ADDRESS)]))?;
        let lab = if client {
            Lab::with_client(config)
        } else {
            Lab::new(config)
        };
        for member in lab.member_names() {
            lab.add_management_link(&member);
        }
        let agent_kubeconfig = server.kubeconfig_for(IpAddr::V4(API_ADDRESS));
        let crd = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(CRD_FILE);
        let out = server.kubectl(&["apply", "-f", &crd.to_string_lossy()]);
        assert!(out.status.success(), "kubectl apply of the CRD: {out:?}");
        let out = server.kubectl(&[
            "wait",
            "--for",
            "condition=Established",
            "--timeout",
            "30s",
            "crd/redundantgroups.rdg.infocast.io",
        ]);
        assert!(
            out.status.success(),
            "the CRD never became Established: {out:?}"
        );
        let group = group_manifest(lab.config());
        let out = server.kubectl_with_stdin(&["apply", "-f", "-"], Some(&group.to_string()));
        assert!(out.status.success(), "kubectl apply of the group: {out:?}");
        let pods_created = Timestamp::now() - SignedDuration::from_secs(5);
        let mut kube_lab = KubeLab {
            controller: None,
            lab,
            server,
            agent_kubeconfig,
            pods_created,
        };
        kube_lab.start_controller();
        Some(kube_lab)
    }

    /// Starts `member`'s agent in Kubernetes mode, reporting to the server.
    pub fn start(&self, member: &str) {
        let env = [
            ("RDG_K8S_GROUP", self.lab.config().name.clone()),
            ("RDG_K8S_NAMESPACE", NAMESPACE.to_string()),
            ("RDG_K8S_POD", pod_name(self.lab.config(), member)),
            ("RDG_K8S_NODE", format!("node-{member}")),
            (
                "KUBECONFIG",
                self.agent_kubeconfig.to_string_lossy().into_owned(),
            ),
        ]
        .map(|(k, v)| (k.to_string(), v));
        self.lab.start_with_env(member, &env);
    }

    /// (Re)starts the stand-in controller: a watch of the group that applies the aggregate on
    /// every change, with every member's pod Running.
    pub fn start_controller(&mut self) {
        self.controller = None;
        let pods: BTreeMap<String, Pod> = self
            .lab
            .member_names()
            .into_iter()
            .map(|m| {
                let pod = running_pod(&pod_name(self.lab.config(), &m), self.pods_created);
                (m, pod)
            })
            .collect();
        self.controller = Some(StatusLoop::spawn(
            self.server.kubeconfig().to_path_buf(),
            self.lab.config().name.clone(),
            pods,
        ));
    }

    /// The row of `kubectl get rdg GROUP`, None when kubectl fails (server down, say).
    pub fn rdg_row(&self) -> Option<RdgRow> {
        let out = self.server.kubectl(&[
            "get",
            "rdg",
            &self.lab.config().name,
            "--namespace",
            NAMESPACE,
        ]);
        if !out.status.success() {
            return None;
        }
        RdgRow::parse(&String::from_utf8_lossy(&out.stdout))
    }

    /// The group's `.status` as `kubectl get -o json` prints it (empty when kubectl fails): what
    /// the aggregation saw, to explain a wrong row.
    pub fn status_text(&self) -> String {
        let out = self.server.kubectl(&[
            "get",
            "rdg",
            &self.lab.config().name,
            "-n",
            NAMESPACE,
            "-o",
            "jsonpath={.status}",
        ]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits (reading `kubectl get rdg` continuously) until a row satisfies `ok`; the time it
    /// took, or None after `timeout`.
    pub fn wait_row(&self, timeout: Duration, ok: impl Fn(&RdgRow) -> bool) -> Option<Duration> {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if self.rdg_row().is_some_and(|r| ok(&r)) {
                return Some(start.elapsed());
            }
        }
        None
    }

    /// Kills `victim`'s host (agent and cables; its pod stays Running to the controller) and
    /// reads `kubectl get rdg` for `observe`, timing what it shows.
    pub fn host_death_trial(&self, victim: &str, observe: Duration) -> DeathTrial {
        let survivors: Vec<String> = self
            .lab
            .member_names()
            .into_iter()
            .filter(|m| m != victim)
            .collect();
        let death = Instant::now();
        self.lab.host_death(victim);
        let mut trial = DeathTrial {
            victim: victim.to_string(),
            new_hot: String::new(),
            to_new_hot: None,
            split_brain: Duration::ZERO,
            empty_hot: Duration::ZERO,
            old_hot: Duration::ZERO,
            wrong_after_new_hot: Vec::new(),
            reads: 0,
        };
        let mut last = death;
        while death.elapsed() < observe {
            if trial.new_hot.is_empty()
                && let Some(h) = survivors.iter().find(|m| self.lab.is_hot(m))
            {
                trial.new_hot = h.clone();
            }
            let row = self.rdg_row();
            let now = Instant::now();
            let span = now - last;
            last = now;
            trial.reads += 1;
            let Some(row) = row else { continue };
            let split = row.phase.as_deref() == Some("SplitBrain");
            let empty = row.hot.is_none();
            let old = row.hot.as_deref() == Some(victim);
            trial.split_brain += if split { span } else { Duration::ZERO };
            trial.empty_hot += if empty { span } else { Duration::ZERO };
            trial.old_hot += if old { span } else { Duration::ZERO };
            let right = !trial.new_hot.is_empty()
                && row.hot.as_deref() == Some(trial.new_hot.as_str())
                && !split;
            match trial.to_new_hot {
                None if right => trial.to_new_hot = Some(now - death),
                Some(_) if split || empty || old || !right => {
                    trial.wrong_after_new_hot.push((now - death, row));
                }
                _ => {}
            }
        }
        trial
    }
}

/// The `RedundantGroup` of the lab's configuration (members on nodes `node-<member>`).
pub fn group_manifest(config: &GroupConfig) -> Value {
    let ms = |d: Duration| format!("{}ms", d.as_millis());
    let members: Vec<Value> = config
        .members
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let addresses: serde_json::Map<String, Value> = config
                .networks
                .iter()
                .map(|n| (n.name().to_string(), json!(n.member(i + 1).to_string())))
                .collect();
            json!({
                "name": m.name,
                "priority": m.priority,
                "addresses": addresses,
                "nodeName": format!("node-{}", m.name),
            })
        })
        .collect();
    let networks: Vec<Value> = config
        .networks
        .iter()
        .map(|n| json!({"name": n.name(), "multicast": n.multicast().to_string()}))
        .collect();
    let mut spec = json!({
            "heartbeat": {
                "interval": ms(config.interval),
                "timeout": ms(config.timeout),
                "port": config.port,
            },
            "networks": networks,
            "members": members,
            "preempt": config.preempt,
            "timeouts": {"election": ms(config.election)},
            "netCheck": {
                "targets": config.net_check_targets.iter().map(ToString::to_string).collect::<Vec<_>>(),
                "timeout": ms(config.net_check_timeout),
            },
            "status": {"listen": crate::observe::STATUS_ADDR},
    });
    if !config.vips.is_empty() {
        let vips: Vec<Value> = config
            .vips
            .iter()
            .map(|v| json!({"address": v, "network": Net::Primary.name()}))
            .collect();
        spec["vips"] = json!(vips);
    }
    if let Some(c) = &config.carousel {
        let cm = objects_config_map_name(config);
        let objects: Vec<Value> = c
            .objects
            .iter()
            .map(|(name, _)| {
                let source = format!("{}/{name}", rdg_operator::resource::objects_dir(&cm));
                json!({"name": name, "type": "generic", "source": source})
            })
            .collect();
        spec["transmitter"] = json!({
            "channels": [{
                "address": c.group.to_string(),
                "port": c.port,
                "ttl": 5,
                "bitRate": c.bit_rate,
                "payloadSize": c.payload_size,
                "objects": objects,
            }],
            "configMaps": [cm],
        });
    }
    json!({
        "apiVersion": RedundantGroup::api_version(&()),
        "kind": RedundantGroup::kind(&()),
        "metadata": {"name": config.name, "namespace": NAMESPACE},
        "spec": spec,
    })
}

/// The ConfigMap holding the carousel's objects (see [`crate::config::Carousel::object_bytes`]).
pub fn objects_config_map_name(config: &GroupConfig) -> String {
    format!("{}-objects", config.name)
}

/// The pod name the controller gives `member`: `<group>-<member>`.
fn pod_name(config: &GroupConfig, member: &str) -> String {
    format!("{}-{member}", config.name)
}

/// A Running pod named `name`, as the pod cache would hold it.
fn running_pod(name: &str, created: Timestamp) -> Pod {
    let mut pod = Pod::default();
    pod.metadata.name = Some(name.to_string());
    pod.metadata.namespace = Some(NAMESPACE.to_string());
    pod.metadata.creation_timestamp = Some(Time(created));
    pod.status = Some(PodStatus {
        phase: Some("Running".into()),
        ..PodStatus::default()
    });
    pod
}

impl Lab {
    /// Gives `member`'s namespace a point-to-point link to this host: the member at
    /// 172.31.255.(10 + index), this host at [`API_ADDRESS`]. Removed with the namespace.
    pub fn add_management_link(&self, member: &str) {
        let slot = self.slot(member);
        let root = names::veth_root(&self.id, char::from(b'0' + slot.index as u8), 'm');
        let inner = "eth-m";
        let mine = Ipv4Addr::new(172, 31, 255, 10 + slot.index as u8);
        ip(&[
            "link",
            "add",
            &root,
            "type",
            "veth",
            "peer",
            "name",
            inner,
            "netns",
            &slot.netns,
        ]);
        let api = API_ADDRESS.to_string();
        let member_ip = mine.to_string();
        ip(&["addr", "add", &api, "peer", &member_ip, "dev", &root]);
        ip(&["link", "set", &root, "up"]);
        let ns = ["-n", slot.netns.as_str()];
        must(
            "ip",
            &[
                &ns[..],
                &["addr", "add", &member_ip, "peer", &api, "dev", inner],
            ]
            .concat(),
        );
        must("ip", &[&ns[..], &["link", "set", inner, "up"]].concat());
    }
}

/// The stand-in controller: a thread running a watch of the group.
struct StatusLoop {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl StatusLoop {
    fn spawn(kubeconfig: PathBuf, group: String, pods: BTreeMap<String, Pod>) -> StatusLoop {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            rt.block_on(async move {
                let client = crate::apiserver::client_from(&kubeconfig, None)
                    .await
                    .expect("a client for the stand-in controller");
                let api: Api<RedundantGroup> = Api::namespaced(client, NAMESPACE);
                let config = watcher::Config::default().fields(&format!("metadata.name={group}"));
                let mut events = watcher(api.clone(), config)
                    .backoff(rdg_operator::retry::watch_backoff())
                    .applied_objects()
                    .boxed();
                let work = async {
                    while let Some(event) = events.next().await {
                        let Ok(g) = event else { continue };
                        let now = Time(Timestamp::now());
                        if let Err(e) =
                            rdg_operator::controller::apply_aggregate(&api, &g, &pods, &now).await
                        {
                            eprintln!("stand-in controller: {e}");
                        }
                    }
                };
                tokio::select! {
                    _ = stopped => {}
                    () = work => {}
                }
            });
        });
        StatusLoop {
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for StatusLoop {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
