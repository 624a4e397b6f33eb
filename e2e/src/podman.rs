//! podman as the kubelet of emulated nodes: the project's image built from its Dockerfile, and
//! the controller's member pods translated to what podman 4.3's `kube play` runs the way a
//! kubelet would. Every translated field is named, so a test can print what was not run as
//! written.

use k8s_openapi::api::core::v1::{
    ConfigMap, Container, EnvVar, HostPathVolumeSource, Pod, Volume, VolumeMount,
};
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

/// The image the container tests run (built by [`image`]).
pub const IMAGE: &str = "localhost/rdg:e2e";
/// Where the translated pods find their kubeconfig (instead of a service-account token).
pub const KUBECONFIG_PATH: &str = "/var/run/rdg-e2e/kubeconfig";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// podman's settings for the tests (runc, cgroupfs, no default ulimits), leaving the host's
/// own configuration alone.
fn containers_conf() -> PathBuf {
    workspace().join("e2e/podman/containers.conf")
}

/// A `podman` command with the tests' settings. It runs in an empty directory: `kube play`
/// builds an image from `./<image name>/Containerfile` when such a directory exists.
pub fn command() -> Command {
    let cwd = std::env::temp_dir().join("rdg-e2e-podman");
    let _ = std::fs::create_dir_all(&cwd);
    let mut c = Command::new("podman");
    c.env("CONTAINERS_CONF", containers_conf())
        .current_dir(cwd)
        .stdin(Stdio::null());
    c
}

/// Runs `podman args...`: its stdout, or an error with the command line and its stderr.
pub fn podman(args: &[&str]) -> Result<String, String> {
    output_of(command().args(args), &format!("podman {}", args.join(" ")))
}

fn output_of(cmd: &mut Command, line: &str) -> Result<String, String> {
    let out: Output = cmd
        .output()
        .map_err(|e| format!("{line}: cannot start: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{line}: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// True when podman is installed.
pub fn available() -> bool {
    Command::new("podman")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Returns true when podman is installed; otherwise prints a loud SKIPPED line naming `test`.
pub fn require_podman(test: &str) -> bool {
    available()
        || crate::root::skipped(
            test,
            "needs podman (apt-get install podman runc catatonit); CI installs it",
        )
}

/// Builds [`IMAGE`] once per process with `e2e/podman/build-image.sh` (the Dockerfile, with
/// the static binary built on this host); panics with the script's output when it fails.
pub fn image() -> &'static str {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let script = workspace().join("e2e/podman/build-image.sh");
        let out = Command::new("bash")
            .arg(&script)
            .env("RDG_IMAGE", IMAGE)
            .env("CONTAINERS_CONF", containers_conf())
            .stdin(Stdio::null())
            .output()
            .expect("run build-image.sh");
        assert!(
            out.status.success(),
            "building the image failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    });
    IMAGE
}

/// What a kubelet would supply to a pod on this node.
pub struct Kubelet<'a> {
    /// A directory of this pod's own, on tmpfs, for its volumes.
    pub pod_dir: &'a Path,
    /// The ConfigMaps of the pod's namespace, by name.
    pub config_maps: &'a BTreeMap<String, ConfigMap>,
    /// A kubeconfig for the API server (client certificate), in place of the service account.
    pub kubeconfig: &'a Path,
}

/// Translates `pod`, as the controller renders it, into the pod `podman kube play` runs as a
/// kubelet would, filling the volumes' directories under [`Kubelet::pod_dir`]. Only fields
/// podman 4.3 cannot honour are changed; each change is listed in the second value:
///
/// - native sidecars (`initContainers` with `restartPolicy: Always`) become the first regular
///   containers: podman runs init containers to completion before the others;
/// - `httpGet` probes are removed: podman turns them into a `curl` in the container, and the
///   image has none (the tests read `/healthz` themselves);
/// - `emptyDir` volumes become a `hostPath` directory of the pod's own, mode 0777 as the
///   kubelet makes them (podman shares a named volume between pods);
/// - `configMap` volumes become a `hostPath` directory with the ConfigMap's keys as files,
///   which is what the kubelet writes;
/// - `fieldRef` environment variables get their value (podman knows no `spec.nodeName`);
/// - container ports of a host-network pod are dropped: the process binds the node's port
///   itself, and podman refuses port mappings on the host network;
/// - the service account's token becomes a kubeconfig file (client certificate) mounted at
///   [`KUBECONFIG_PATH`] with `KUBECONFIG` set: the API server here has no ServiceAccounts;
/// - scheduling fields (`nodeName`, `nodeSelector`, `tolerations`, `serviceAccountName`,
///   `dnsPolicy`) are dropped: the harness runs the pod in its node's network namespace.
///
/// Any other volume kind is an error naming it, so that nothing is silently left out.
pub fn translate(pod: &Pod, kubelet: &Kubelet) -> Result<(Pod, Vec<String>), String> {
    let mut pod = pod.clone();
    let name = pod.metadata.name.clone().unwrap_or_default();
    let namespace = pod.metadata.namespace.clone().unwrap_or_default();
    let mut notes = Vec::new();
    let spec = pod.spec.as_mut().ok_or("the pod has no spec")?;
    let node = spec.node_name.clone().unwrap_or_default();

    // Native sidecars.
    let (sidecars, inits): (Vec<Container>, Vec<Container>) = spec
        .init_containers
        .take()
        .unwrap_or_default()
        .into_iter()
        .partition(|c| c.restart_policy.as_deref() == Some("Always"));
    let sidecars: Vec<Container> = sidecars
        .into_iter()
        .map(|mut c| {
            notes.push(format!(
                "initContainers[{}] (restartPolicy: Always, a native sidecar) -> containers[0]",
                c.name
            ));
            c.restart_policy = None;
            c
        })
        .collect();
    spec.containers.splice(0..0, sidecars);
    spec.init_containers = (!inits.is_empty()).then_some(inits);

    // Volumes.
    let mut volumes = spec.volumes.take().unwrap_or_default();
    for v in &mut volumes {
        let dir = kubelet.pod_dir.join(&v.name);
        if let Some(e) = v.empty_dir.take() {
            make_dir(&dir, 0o777)?;
            notes.push(format!(
                "volumes[{}].emptyDir (medium {}) -> hostPath on tmpfs",
                v.name,
                e.medium.as_deref().unwrap_or("default")
            ));
        } else if let Some(cm) = v.config_map.take() {
            let map = kubelet
                .config_maps
                .get(&cm.name)
                .ok_or_else(|| format!("volume {}: no ConfigMap {}", v.name, cm.name))?;
            make_dir(&dir, 0o755)?;
            write_config_map(&dir, map)?;
            notes.push(format!(
                "volumes[{}].configMap {} -> hostPath with its keys as files",
                v.name, cm.name
            ));
        } else {
            return Err(format!(
                "volume {}: no translation for this kind of volume",
                v.name
            ));
        }
        v.host_path = Some(HostPathVolumeSource {
            path: dir.to_string_lossy().into_owned(),
            type_: Some("Directory".into()),
        });
    }
    volumes.push(Volume {
        name: "rdg-e2e-kubeconfig".into(),
        host_path: Some(HostPathVolumeSource {
            path: kubelet.kubeconfig.to_string_lossy().into_owned(),
            type_: Some("File".into()),
        }),
        ..Volume::default()
    });
    spec.volumes = Some(volumes);
    if let Some(sa) = spec.service_account_name.take() {
        notes.push(format!(
            "serviceAccountName {sa} (projected token) -> kubeconfig with a client certificate at {KUBECONFIG_PATH}"
        ));
    }

    // Containers.
    let host_network = spec.host_network == Some(true);
    let inits = spec.init_containers.iter_mut().flatten();
    for c in spec.containers.iter_mut().chain(inits) {
        // On the host network a container port is the host's port, which the process binds
        // itself; a kubelet maps nothing, and podman refuses to map on the host network.
        if host_network && c.ports.take().is_some() {
            notes.push(format!(
                "containers[{}].ports -> dropped, on the host network the process binds the node's port",
                c.name
            ));
        }
        for (probe, kind) in [
            (&mut c.liveness_probe, "livenessProbe"),
            (&mut c.readiness_probe, "readinessProbe"),
            (&mut c.startup_probe, "startupProbe"),
        ] {
            if probe.take().is_some() {
                notes.push(format!(
                    "containers[{}].{kind} (httpGet) -> removed, the test reads /healthz",
                    c.name
                ));
            }
        }
        let env = c.env.get_or_insert_with(Vec::new);
        for e in env.iter_mut() {
            let Some(path) = e
                .value_from
                .as_ref()
                .and_then(|f| f.field_ref.as_ref())
                .map(|f| f.field_path.clone())
            else {
                continue;
            };
            let value = match path.as_str() {
                "metadata.name" => name.clone(),
                "metadata.namespace" => namespace.clone(),
                "spec.nodeName" => node.clone(),
                other => return Err(format!("env {}: no translation for {other}", e.name)),
            };
            notes.push(format!(
                "containers[{}].env[{}].valueFrom.fieldRef {path} -> value",
                c.name, e.name
            ));
            e.value_from = None;
            e.value = Some(value);
        }
        env.push(EnvVar {
            name: "KUBECONFIG".into(),
            value: Some(KUBECONFIG_PATH.into()),
            ..EnvVar::default()
        });
        c.volume_mounts
            .get_or_insert_with(Vec::new)
            .push(VolumeMount {
                name: "rdg-e2e-kubeconfig".into(),
                mount_path: KUBECONFIG_PATH.into(),
                read_only: Some(true),
                ..VolumeMount::default()
            });
    }

    for (dropped, field) in [
        (spec.node_name.take().is_some(), "nodeName"),
        (spec.node_selector.take().is_some(), "nodeSelector"),
        (spec.tolerations.take().is_some(), "tolerations"),
        (spec.dns_policy.take().is_some(), "dnsPolicy"),
    ] {
        if dropped {
            notes.push(format!(
                "{field} -> dropped, the pod runs in its node's network namespace"
            ));
        }
    }
    notes.dedup();
    Ok((pod, notes))
}

fn make_dir(dir: &Path, mode: u32) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode))
        .map_err(|e| format!("{}: {e}", dir.display()))
}

fn write_config_map(dir: &Path, cm: &ConfigMap) -> Result<(), String> {
    let text = cm.data.iter().flatten().map(|(k, v)| (k, v.as_bytes()));
    let binary = cm.binary_data.iter().flatten().map(|(k, v)| (k, &v.0[..]));
    for (key, bytes) in text.chain(binary) {
        let path = dir.join(key);
        std::fs::write(&path, bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}

/// Runs `podman kube play --replace FILE` inside network namespace `netns` (hostNetwork pods
/// then use that namespace's network, as on a node).
pub fn play_in(netns: &str, file: &Path) -> Result<String, String> {
    let ns = format!("--net=/run/netns/{netns}");
    let mut c = Command::new("nsenter");
    c.arg(&ns)
        .arg("podman")
        .args(["kube", "play", "--replace"])
        .arg(file)
        .env("CONTAINERS_CONF", containers_conf())
        .current_dir(command().get_current_dir().expect("set by command()"))
        .stdin(Stdio::null());
    output_of(
        &mut c,
        &format!("nsenter {ns} podman kube play {}", file.display()),
    )
}

/// The host pid of container `container` of pod `pod` (None when not running).
pub fn container_pid(pod: &str, container: &str) -> Option<i32> {
    let name = format!("{pod}-{container}");
    podman(&["inspect", "--format", "{{.State.Pid}}", &name])
        .ok()?
        .trim()
        .parse()
        .ok()
        .filter(|p| *p > 0)
}

/// Removes pod `pod` at once (SIGKILL, no grace period); no error when it does not exist.
pub fn remove_now(pod: &str) {
    let _ = podman(&["pod", "rm", "--force", "--ignore", "--time", "0", pod]);
}

/// Removes container `name` at once; no error when it does not exist.
pub fn remove_container_now(name: &str) {
    let _ = podman(&["rm", "--force", "--ignore", "--time", "0", name]);
}

/// Container `name`'s log, stdout and stderr (what `podman logs` prints; an error says why
/// there is none).
pub fn logs(name: &str) -> String {
    match command().args(["logs", name]).output() {
        Ok(o) => {
            String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
        }
        Err(e) => format!("podman logs {name}: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ContainerPort, PodSpec};

    fn pod(host_network: bool) -> Pod {
        Pod {
            spec: Some(PodSpec {
                host_network: Some(host_network),
                containers: vec![Container {
                    name: "carousel".into(),
                    ports: Some(vec![ContainerPort {
                        container_port: 9101,
                        ..ContainerPort::default()
                    }]),
                    ..Container::default()
                }],
                ..PodSpec::default()
            }),
            ..Pod::default()
        }
    }

    #[test]
    fn container_ports_of_a_host_network_pod_are_dropped_and_named() {
        let dir = std::env::temp_dir().join(format!("rdg-e2e-translate-{}", std::process::id()));
        let kubelet = Kubelet {
            pod_dir: &dir,
            config_maps: &BTreeMap::new(),
            kubeconfig: Path::new("/nonexistent/kubeconfig"),
        };
        let (out, notes) = translate(&pod(true), &kubelet).unwrap();
        assert_eq!(out.spec.unwrap().containers[0].ports, None);
        assert!(
            notes
                .iter()
                .any(|n| n.starts_with("containers[carousel].ports -> dropped")),
            "{notes:?}"
        );
        let (out, notes) = translate(&pod(false), &kubelet).unwrap();
        assert_eq!(
            out.spec.unwrap().containers[0].ports.as_ref().map(Vec::len),
            Some(1)
        );
        assert!(!notes.iter().any(|n| n.contains("ports")), "{notes:?}");
    }
}
