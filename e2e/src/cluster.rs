//! A cluster on one machine: the [`KubeLab`]'s namespaces are the nodes, its real API server
//! holds the group, and podman plays the kubelet. The ConfigMap and the member Pods are the
//! ones the controller's own code renders for the group (`rdg_operator::children`), run from
//! the project's image with their security context, volumes and environment; only what podman
//! cannot honour is translated ([`podman::translate`]). The scheduler and the pod cache cannot
//! run here: the harness places each pod in its node's namespace, and the stand-in controller
//! of the [`KubeLab`] aggregates the status with every pod Running.

use crate::config::{GroupConfig, Net};
use crate::kube_lab::{KubeLab, NAMESPACE, objects_config_map_name};
use crate::podman::{self, Kubelet};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use rdg_operator::RedundantGroup;
use rdg_operator::children::{self, PodDefaults};
use rdg_operator::render::{ROLE_DIR, Rendered, render};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The service account the controller would give member pods.
const SERVICE_ACCOUNT: &str = "rdg-member";

/// A [`KubeLab`] whose members run as podman pods rendered by the controller's code.
pub struct Cluster {
    /// The lab, the API server and the stand-in controller.
    pub kube: KubeLab,
    group: RedundantGroup,
    rendered: Rendered,
    defaults: PodDefaults,
    config_maps: BTreeMap<String, ConfigMap>,
    /// Per pod, the directories of its volumes (on tmpfs).
    pods_dir: PathBuf,
    /// Every translation of a pod field made so far, in order, without repeats.
    translations: Mutex<Vec<String>>,
    /// podman's kills of dead nodes' pods still running.
    kills: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

impl Cluster {
    /// Builds the image, starts the [`KubeLab`] (with a client namespace) for `config` and
    /// renders the group the server holds. None, after a loud SKIPPED line, without root,
    /// podman or the API server.
    pub fn new(test: &str, config: GroupConfig) -> Option<Cluster> {
        if !crate::require_root(test) || !podman::require_podman(test) {
            return None;
        }
        let image = podman::image();
        let kube = KubeLab::with_client(test, config)?;
        let name = kube.lab.config().name.clone();
        let out = kube
            .server
            .kubectl(&["get", "rdg", &name, "-n", NAMESPACE, "-o", "json"]);
        assert!(out.status.success(), "kubectl get rdg: {out:?}");
        let group: RedundantGroup =
            serde_json::from_slice(&out.stdout).expect("the group as the server holds it");
        let rendered = render(&name, &group.spec)
            .unwrap_or_else(|p| panic!("the lab's group does not render: {p:?}"));
        let defaults = PodDefaults {
            image: image.to_string(),
            service_account: SERVICE_ACCOUNT.to_string(),
        };
        let mut config_maps = BTreeMap::new();
        let cm = children::config_map(&group, &rendered);
        config_maps.insert(cm.metadata.name.clone().unwrap_or_default(), cm);
        if let Some(c) = &kube.lab.config().carousel {
            let cm_name = objects_config_map_name(kube.lab.config());
            let mut cm = ConfigMap::default();
            cm.metadata.name = Some(cm_name.clone());
            cm.binary_data = Some(
                c.objects
                    .iter()
                    .enumerate()
                    .map(|(i, (n, _))| (n.clone(), ByteString(c.object_bytes(i))))
                    .collect(),
            );
            config_maps.insert(cm_name, cm);
        }
        let pods_dir = kube.lab.run_dir.join("pods");
        let role_file = Path::new(&rendered.role_file())
            .strip_prefix(ROLE_DIR)
            .expect("the role file is in the role directory")
            .to_path_buf();
        let mut cluster = Cluster {
            group,
            rendered,
            defaults,
            config_maps,
            pods_dir,
            translations: Mutex::new(Vec::new()),
            kills: Mutex::new(Vec::new()),
            kube,
        };
        let run_volume = cluster.role_volume();
        let group_name = cluster.kube.lab.config().name.clone();
        for slot in &mut cluster.kube.lab.members {
            let pod = children::pod_name(&group_name, &slot.name);
            podman::remove_now(&pod);
            slot.role_file = cluster
                .pods_dir
                .join(&pod)
                .join(&run_volume)
                .join(&role_file);
        }
        Some(cluster)
    }

    /// The name of `member`'s pod.
    pub fn pod_name(&self, member: &str) -> String {
        children::pod_name(&self.kube.lab.config().name, member)
    }

    /// The pod the controller renders for `member`.
    pub fn rendered_pod(&self, member: &str) -> Pod {
        let spec = self
            .group
            .spec
            .member(member)
            .unwrap_or_else(|| panic!("{member} is not in the group"));
        let hash = children::pods_hash(&self.group, &self.rendered, &self.defaults);
        children::pod(&self.group, spec, &self.rendered, &hash, &self.defaults)
    }

    /// The volume of member pods mounted at the role directory.
    fn role_volume(&self) -> String {
        let first = self.kube.lab.member_names()[0].clone();
        let pod = self.rendered_pod(&first);
        let spec = pod.spec.expect("a pod spec");
        spec.init_containers
            .iter()
            .flatten()
            .chain(&spec.containers)
            .flat_map(|c| c.volume_mounts.iter().flatten())
            .find(|m| m.mount_path == ROLE_DIR)
            .map(|m| m.name.clone())
            .expect("a volume at the role directory")
    }

    /// Runs `member`'s pod on its node (a new pod: fresh volumes), replacing any earlier one.
    pub fn play(&self, member: &str) {
        self.play_with(member, |_| {});
    }

    /// [`Cluster::play`] with the rendered pod changed by `edit` first (to break it on purpose).
    pub fn play_with(&self, member: &str, edit: impl FnOnce(&mut Pod)) {
        self.settle_kills();
        let mut pod = self.rendered_pod(member);
        edit(&mut pod);
        let name = self.pod_name(member);
        let pod_dir = self.pods_dir.join(&name);
        let _ = std::fs::remove_dir_all(&pod_dir);
        let kubelet = Kubelet {
            pod_dir: &pod_dir,
            config_maps: &self.config_maps,
            kubeconfig: &self.kube.agent_kubeconfig,
        };
        let (pod, notes) = podman::translate(&pod, &kubelet)
            .unwrap_or_else(|e| panic!("translating {name} for podman: {e}"));
        {
            let mut seen = self.translations.lock().unwrap_or_else(|p| p.into_inner());
            for n in notes {
                if !seen.contains(&n) {
                    seen.push(n);
                }
            }
        }
        let file = self.kube.lab.dir().join(format!("{name}.pod.yaml"));
        let yaml = serde_yaml_ng::to_string(&pod).expect("a pod serializes");
        std::fs::write(&file, yaml).expect("write the pod file");
        if let Err(e) = podman::play_in(self.kube.lab.netns(member), &file) {
            panic!("{e}\n{}", self.dump());
        }
    }

    /// Every translation made to run the pods, without repeats.
    pub fn translations(&self) -> Vec<String> {
        self.translations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Deletes `member`'s pod as `kubectl delete pod` would: SIGTERM to every container, SIGKILL
    /// after the pod's grace period.
    pub fn delete_pod(&self, member: &str) {
        let pod = self.rendered_pod(member);
        let grace = pod
            .spec
            .and_then(|s| s.termination_grace_period_seconds)
            .unwrap_or(30)
            .to_string();
        let name = self.pod_name(member);
        if let Err(e) = podman::podman(&["pod", "rm", "--force", "--time", &grace, &name]) {
            panic!("{e}");
        }
    }

    /// The death of `member`'s node: every process of its pod's containers SIGKILLed, then
    /// both cables cut, as [`crate::Lab::host_death`] does to a process; it returns then, and
    /// podman marks the containers killed in the background (its own kill takes a tenth of a
    /// second or more, during which the host would still answer). The pod is left Running to
    /// the controller, as until the node controller notices.
    pub fn node_death(&self, member: &str) {
        let name = self.pod_name(member);
        let pod = self.rendered_pod(member);
        let spec = pod.spec.expect("a pod spec");
        let containers: Vec<String> = spec
            .init_containers
            .iter()
            .flatten()
            .chain(&spec.containers)
            .map(|c| format!("{name}-{}", c.name))
            .collect();
        let mut args = vec!["inspect", "--format", "{{.State.Pid}}"];
        args.extend(containers.iter().map(String::as_str));
        let pids = podman::podman(&args).unwrap_or_default();
        for pid in pids.lines().filter_map(|p| p.trim().parse::<i32>().ok()) {
            if pid > 0 {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        for net in Net::BOTH {
            self.kube.lab.link_down(member, net);
        }
        let kill = std::thread::spawn(move || {
            // Containers already gone are fine: the point is that nothing runs.
            let _ = podman::podman(&["pod", "kill", "--signal", "KILL", &name]);
        });
        self.pending(|p| p.push(kill));
    }

    /// Waits for podman's kills started by [`Cluster::node_death`] (before a pod runs again).
    fn settle_kills(&self) {
        for kill in self.pending(std::mem::take) {
            let _ = kill.join();
        }
    }

    fn pending<T>(&self, f: impl FnOnce(&mut Vec<std::thread::JoinHandle<()>>) -> T) -> T {
        f(&mut self.kills.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// `member`'s node is back: cables in, and its pod run again.
    pub fn node_back(&self, member: &str) {
        for net in Net::BOTH {
            self.kube.lab.link_up(member, net);
        }
        self.play(member);
    }

    /// Freezes every container of `member`'s pod (`podman pod pause`).
    pub fn pause(&self, member: &str) {
        let name = self.pod_name(member);
        if let Err(e) = podman::podman(&["pod", "pause", &name]) {
            panic!("{e}");
        }
    }

    /// Thaws `member`'s pod.
    pub fn resume(&self, member: &str) {
        let name = self.pod_name(member);
        if let Err(e) = podman::podman(&["pod", "unpause", &name]) {
            panic!("{e}");
        }
    }

    /// The host pid of `container` in `member`'s pod, when it runs.
    pub fn pid(&self, member: &str, container: &str) -> Option<i32> {
        podman::container_pid(&self.pod_name(member), container)
    }

    /// The state podman reports for `container` of `member`'s pod (`running`, `exited`, ...).
    pub fn state(&self, member: &str, container: &str) -> String {
        let name = format!("{}-{container}", self.pod_name(member));
        podman::podman(&["inspect", "--format", "{{.State.Status}}", &name])
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|e| e)
    }

    /// The log of `container` in `member`'s pod.
    pub fn logs(&self, member: &str, container: &str) -> String {
        podman::logs(&format!("{}-{container}", self.pod_name(member)))
    }

    /// The last lines of every container's log of every pod.
    pub fn dump(&self) -> String {
        let mut out = String::new();
        for member in self.kube.lab.member_names() {
            for c in ["agent", "carousel"] {
                let log = self.logs(&member, c);
                let lines: Vec<&str> = log.lines().collect();
                let tail = &lines[lines.len().saturating_sub(30)..];
                out += &format!("--- {member}/{c}\n{}\n", tail.join("\n"));
            }
        }
        out
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.settle_kills();
        if std::thread::panicking() {
            eprintln!("{}", self.dump());
        }
        for member in self.kube.lab.member_names() {
            podman::remove_now(&self.pod_name(&member));
        }
    }
}
