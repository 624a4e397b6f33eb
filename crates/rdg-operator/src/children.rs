//! The objects the controller makes for a group: the ConfigMap with the rendered
//! configuration, one host-network Pod per member (the agent as a native sidecar, the
//! transmitter after it) and, when asked, a Service selecting the hot member's pod. All carry
//! an owner reference to the group, so deleting the group deletes them.

use crate::render::{CONFIG_DIR, CONFIG_KEY, KEY_DIR, ROLE_DIR, Rendered, TOKEN_DIR};
use crate::resource::{DEFAULT_LOG_LEVEL, MemberSpec, RedundantGroup, objects_dir};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMap, ConfigMapVolumeSource, Container, ContainerPort, EmptyDirVolumeSource,
    EnvVar, EnvVarSource, HTTPGetAction, ObjectFieldSelector, Pod, PodSpec, Probe,
    SecretVolumeSource, SecurityContext, Service, ServiceSpec as K8sServiceSpec, Volume,
    VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::Resource;
use kube::ResourceExt;
use std::collections::BTreeMap;

/// Label naming the group a pod belongs to.
pub const GROUP_LABEL: &str = "rdg.infocast.io/group";
/// Label naming the member a pod runs.
pub const MEMBER_LABEL: &str = "rdg.infocast.io/member";
/// Label the member's agent sets on its own pod: `hot` or `standby`.
pub const ROLE_LABEL: &str = "rdg.infocast.io/role";
/// Size limit of the in-memory volume holding the role file (a record of about 100 bytes).
const RUN_SIZE_LIMIT: &str = "1Mi";

/// Name of the carousel container's port serving its metrics (the PodMonitor scrapes it).
pub const CAROUSEL_METRICS_PORT_NAME: &str = "carousel-metrics";

/// Where the carousel container serves its metrics: the address of the group's
/// `status.listen`, one port above it (9036 next to the agent's 9035), so Prometheus reaches
/// both alike; None when the status port is the last one.
pub fn carousel_metrics_listen(
    status_listen: std::net::SocketAddr,
) -> Option<std::net::SocketAddr> {
    let port = status_listen.port().checked_add(1)?;
    Some(std::net::SocketAddr::new(status_listen.ip(), port))
}

/// Annotation with the hash of what the pod runs; a differing one means out of date.
pub const HASH_ANNOTATION: &str = "rdg.infocast.io/config-hash";
/// Field manager of everything the controller applies.
pub const MANAGER: &str = "rdg-controller";

/// What the controller needs to know to build pods, beyond the group itself.
#[derive(Debug, Clone, PartialEq)]
pub struct PodDefaults {
    /// Image with `rdg` when the group names none (the operator's own image).
    pub image: String,
    /// ServiceAccount of member pods (allowed to patch the group's status, label their own
    /// pod and create events).
    pub service_account: String,
}

/// Name of the ConfigMap with the rendered configuration.
pub fn config_map_name(group: &str) -> String {
    format!("{group}-config")
}

/// Name of member `member`'s pod.
pub fn pod_name(group: &str, member: &str) -> String {
    format!("{group}-{member}")
}

/// Name of the ConfigMap in which member `member`'s reporter keeps its agent's last
/// `/status` and `/metrics` (see `reporter::snapshot`).
pub fn agent_report_name(group: &str, member: &str) -> String {
    format!("{group}-{member}-agent-report")
}

/// `app.kubernetes.io/component` of the agent-report ConfigMaps. The controller's ConfigMap
/// watch leaves them out: they are the agents' writes, not its children, and change each minute.
pub const AGENT_REPORT_COMPONENT: &str = "agent-report";

/// The labels of everything made for group `group`.
pub fn child_labels(group: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_string(), "rdg".to_string()),
        ("app.kubernetes.io/instance".to_string(), group.to_string()),
        (
            "app.kubernetes.io/managed-by".to_string(),
            "rdg-operator".to_string(),
        ),
        (GROUP_LABEL.to_string(), group.to_string()),
    ])
}

fn labels(group: &RedundantGroup) -> BTreeMap<String, String> {
    child_labels(&group.name_any())
}

fn meta(group: &RedundantGroup, name: String, labels: BTreeMap<String, String>) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: group.namespace(),
        labels: Some(labels),
        owner_references: group.controller_owner_ref(&()).map(|o| vec![o]),
        ..ObjectMeta::default()
    }
}

/// The ConfigMap holding the rendered configuration.
pub fn config_map(group: &RedundantGroup, rendered: &Rendered) -> ConfigMap {
    ConfigMap {
        metadata: meta(group, config_map_name(&group.name_any()), labels(group)),
        data: Some(BTreeMap::from([(
            CONFIG_KEY.to_string(),
            rendered.yaml.clone(),
        )])),
        ..ConfigMap::default()
    }
}

/// The Service selecting the hot member's pod, when the group asks for one.
pub fn service(group: &RedundantGroup) -> Option<Service> {
    let s = group.spec.service.as_ref()?;
    let mut selector = BTreeMap::from([(GROUP_LABEL.to_string(), group.name_any())]);
    selector.insert(ROLE_LABEL.to_string(), "hot".to_string());
    Some(Service {
        metadata: meta(group, group.name_any(), labels(group)),
        spec: Some(K8sServiceSpec {
            selector: Some(selector),
            ports: Some(s.ports.clone()),
            type_: s.service_type.clone(),
            ..K8sServiceSpec::default()
        }),
        ..Service::default()
    })
}

/// The hash of everything member pods are built from: a pod annotated with another one is out
/// of date.
pub fn pods_hash(group: &RedundantGroup, rendered: &Rendered, defaults: &PodDefaults) -> String {
    let s = &group.spec;
    let inputs = serde_json::json!({
        "image": s.image.as_deref().unwrap_or(&defaults.image),
        "imagePullPolicy": s.image_pull_policy,
        "resources": s.resources,
        "tolerations": s.tolerations,
        "transmitter": s.transmitter,
        "members": s.members,
        "serviceAccount": defaults.service_account,
    });
    let mut inputs = inputs;
    // Only a level other than the default is an input, so that pods made before `logLevel`
    // existed (or with it set to the default) keep their hash and are not replaced.
    if s.log_level() != DEFAULT_LOG_LEVEL {
        inputs["logLevel"] = s.log_level().into();
    }
    crate::render::hash(&[&rendered.yaml, &inputs.to_string()])
}

fn env(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.to_string(),
        value: Some(value.to_string()),
        ..EnvVar::default()
    }
}

fn env_field(name: &str, path: &str) -> EnvVar {
    EnvVar {
        name: name.to_string(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: path.to_string(),
                ..ObjectFieldSelector::default()
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

fn mount(name: &str, path: &str) -> VolumeMount {
    VolumeMount {
        name: name.to_string(),
        mount_path: path.to_string(),
        read_only: Some(true),
        ..VolumeMount::default()
    }
}

/// Capabilities NET_ADMIN (VIPs) and NET_RAW (ARP, ICMP) only; everything else dropped. It
/// runs as uid 0 whatever the image says: Kubernetes grants added capabilities only to root
/// (there are no ambient capabilities for other users).
fn agent_security() -> SecurityContext {
    SecurityContext {
        run_as_user: Some(0),
        run_as_non_root: Some(false),
        capabilities: Some(Capabilities {
            add: Some(vec!["NET_ADMIN".to_string(), "NET_RAW".to_string()]),
            drop: Some(vec!["ALL".to_string()]),
        }),
        privileged: Some(false),
        allow_privilege_escalation: Some(false),
        read_only_root_filesystem: Some(true),
        ..SecurityContext::default()
    }
}

/// A transmitter needs no capability: it runs as nobody with everything dropped.
fn transmitter_security() -> SecurityContext {
    SecurityContext {
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".to_string()]),
            ..Capabilities::default()
        }),
        privileged: Some(false),
        allow_privilege_escalation: Some(false),
        read_only_root_filesystem: Some(true),
        run_as_non_root: Some(true),
        run_as_user: Some(65532),
        ..SecurityContext::default()
    }
}

/// Member `member`'s pod: pinned to its node, on the host network, the agent as a native
/// sidecar (started first, restarted on failure, stopped last) and the transmitter(s) after it.
pub fn pod(
    group: &RedundantGroup,
    member: &MemberSpec,
    rendered: &Rendered,
    hash: &str,
    defaults: &PodDefaults,
) -> Pod {
    let s = &group.spec;
    let name = group.name_any();
    let image = s.image.clone().unwrap_or_else(|| defaults.image.clone());
    let config_file = format!("{CONFIG_DIR}/{CONFIG_KEY}");
    let role_file = rendered.role_file();
    let mut lbl = labels(group);
    lbl.insert(MEMBER_LABEL.to_string(), member.name.clone());
    let mut metadata = meta(group, pod_name(&name, &member.name), lbl);
    metadata.annotations = Some(BTreeMap::from([(
        HASH_ANNOTATION.to_string(),
        hash.to_string(),
    )]));

    let mut volumes = vec![
        Volume {
            name: "config".to_string(),
            config_map: Some(ConfigMapVolumeSource {
                name: config_map_name(&name),
                ..ConfigMapVolumeSource::default()
            }),
            ..Volume::default()
        },
        // The role file, renewed every heartbeat, lives in memory: on the node's disk one
        // rename can stall for tens of milliseconds and let the hot member's lease lapse.
        Volume {
            name: "run".to_string(),
            empty_dir: Some(EmptyDirVolumeSource {
                medium: Some("Memory".to_string()),
                size_limit: Some(Quantity(RUN_SIZE_LIMIT.to_string())),
            }),
            ..Volume::default()
        },
        // The switchover token, in memory and mounted by the agent container only.
        Volume {
            name: "agent-private".to_string(),
            empty_dir: Some(EmptyDirVolumeSource {
                medium: Some("Memory".to_string()),
                size_limit: Some(Quantity(RUN_SIZE_LIMIT.to_string())),
            }),
            ..Volume::default()
        },
    ];
    let mut agent_mounts = vec![
        mount("config", CONFIG_DIR),
        VolumeMount {
            read_only: Some(false),
            ..mount("run", ROLE_DIR)
        },
        VolumeMount {
            read_only: Some(false),
            ..mount("agent-private", TOKEN_DIR)
        },
    ];
    if let Some(a) = &s.auth {
        volumes.push(Volume {
            name: "key".to_string(),
            secret: Some(SecretVolumeSource {
                secret_name: Some(a.secret_ref.name.clone()),
                default_mode: Some(0o400),
                ..SecretVolumeSource::default()
            }),
            ..Volume::default()
        });
        agent_mounts.push(mount("key", KEY_DIR));
    }
    let mut object_mounts = Vec::new();
    for (i, cm) in s
        .transmitter
        .iter()
        .flat_map(|t| &t.config_maps)
        .enumerate()
    {
        let vol = format!("objects-{i}");
        volumes.push(Volume {
            name: vol.clone(),
            config_map: Some(ConfigMapVolumeSource {
                name: cm.clone(),
                ..ConfigMapVolumeSource::default()
            }),
            ..Volume::default()
        });
        object_mounts.push(mount(&vol, &objects_dir(cm)));
    }

    let listen = s.status.listen;
    let probe_host = if listen.ip().is_unspecified() {
        "127.0.0.1".to_string()
    } else {
        listen.ip().to_string()
    };
    let agent = Container {
        name: "agent".to_string(),
        image: Some(image.clone()),
        image_pull_policy: s.image_pull_policy.clone(),
        args: Some(vec![
            "agent".to_string(),
            "--config".to_string(),
            config_file.clone(),
            "--member".to_string(),
            member.name.clone(),
            "--no-transmit".to_string(),
        ]),
        env: Some(vec![
            env("RDG_K8S_GROUP", &name),
            env_field("RDG_K8S_NAMESPACE", "metadata.namespace"),
            env_field("RDG_K8S_POD", "metadata.name"),
            env_field("RDG_K8S_NODE", "spec.nodeName"),
            env("RUST_LOG", s.log_level()),
        ]),
        volume_mounts: Some(agent_mounts),
        resources: s.resources.clone(),
        security_context: Some(agent_security()),
        restart_policy: Some("Always".to_string()),
        liveness_probe: Some(Probe {
            http_get: Some(HTTPGetAction {
                host: Some(probe_host),
                path: Some("/healthz".to_string()),
                port: IntOrString::Int(listen.port().into()),
                ..HTTPGetAction::default()
            }),
            period_seconds: Some(5),
            timeout_seconds: Some(2),
            failure_threshold: Some(3),
            ..Probe::default()
        }),
        ..Container::default()
    };

    let mut containers = Vec::new();
    let mut init_containers = vec![agent];
    let transmitter = s.transmitter.as_ref();
    if transmitter.is_some_and(|t| !t.channels.is_empty()) {
        let mut args = vec![
            "transmit".to_string(),
            "--config".to_string(),
            config_file.clone(),
            "--role-file".to_string(),
            role_file.clone(),
            "--member".to_string(),
            member.name.clone(),
        ];
        if let Some(addr) = s
            .networks
            .first()
            .and_then(|n| member.addresses.get(&n.name))
        {
            args.extend(["--interface".to_string(), addr.to_string()]);
        }
        let metrics_listen = carousel_metrics_listen(listen);
        if let Some(m) = metrics_listen {
            args.extend(["--metrics-listen".to_string(), m.to_string()]);
        }
        let mut mounts = vec![mount("config", CONFIG_DIR), mount("run", ROLE_DIR)];
        mounts.extend(object_mounts.iter().cloned());
        containers.push(Container {
            name: "carousel".to_string(),
            image: Some(image.clone()),
            image_pull_policy: s.image_pull_policy.clone(),
            args: Some(args),
            ports: metrics_listen.map(|m| {
                vec![ContainerPort {
                    name: Some(CAROUSEL_METRICS_PORT_NAME.to_string()),
                    container_port: m.port().into(),
                    protocol: Some("TCP".to_string()),
                    ..ContainerPort::default()
                }]
            }),
            env: Some(vec![env("RUST_LOG", s.log_level())]),
            volume_mounts: Some(mounts),
            security_context: Some(transmitter_security()),
            ..Container::default()
        });
    }
    if let Some(c) = transmitter.and_then(|t| t.container.as_ref()) {
        // The transmitter's image need not contain rdg: a first init container copies the
        // binary into a shared volume, and the transmitter runs under it.
        volumes.push(Volume {
            name: "rdg-bin".to_string(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Volume::default()
        });
        init_containers.insert(
            0,
            Container {
                name: "install-rdg".to_string(),
                image: Some(image.clone()),
                image_pull_policy: s.image_pull_policy.clone(),
                args: Some(vec![
                    "install".to_string(),
                    "--to".to_string(),
                    "/opt/rdg".to_string(),
                ]),
                volume_mounts: Some(vec![VolumeMount {
                    read_only: Some(false),
                    ..mount("rdg-bin", "/opt/rdg")
                }]),
                security_context: Some(transmitter_security()),
                ..Container::default()
            },
        );
        let mut command = vec![
            "/opt/rdg/rdg".to_string(),
            "gate".to_string(),
            "--role-file".to_string(),
            role_file.clone(),
        ];
        if let Some(g) = c.grace {
            command.extend(["--grace".to_string(), g.to_string()]);
        }
        command.push("--".to_string());
        command.extend(c.command.iter().cloned());
        let mut mounts = vec![mount("rdg-bin", "/opt/rdg"), mount("run", ROLE_DIR)];
        mounts.extend(object_mounts.iter().cloned());
        containers.push(Container {
            name: "transmitter".to_string(),
            image: Some(c.image.clone()),
            image_pull_policy: s.image_pull_policy.clone(),
            command: Some(command),
            env: (!c.env.is_empty()).then(|| c.env.clone()),
            resources: c.resources.clone(),
            volume_mounts: Some(mounts),
            security_context: Some(SecurityContext {
                capabilities: Some(Capabilities {
                    drop: Some(vec!["ALL".to_string()]),
                    ..Capabilities::default()
                }),
                privileged: Some(false),
                allow_privilege_escalation: Some(false),
                ..SecurityContext::default()
            }),
            ..Container::default()
        });
    }
    if containers.is_empty() {
        // Nothing to transmit: the agent is the pod's only (main) container.
        let mut agent = init_containers.pop().expect("the agent container");
        agent.restart_policy = None;
        containers.push(agent);
    }

    Pod {
        metadata,
        spec: Some(PodSpec {
            node_name: member.node_name.clone(),
            node_selector: (!member.node_selector.is_empty()).then(|| member.node_selector.clone()),
            host_network: Some(true),
            dns_policy: Some("ClusterFirstWithHostNet".to_string()),
            service_account_name: Some(defaults.service_account.clone()),
            tolerations: (!s.tolerations.is_empty()).then(|| s.tolerations.clone()),
            termination_grace_period_seconds: Some(15),
            init_containers: (!init_containers.is_empty()).then_some(init_containers),
            containers,
            volumes: Some(volumes),
            ..PodSpec::default()
        }),
        ..Pod::default()
    }
}

/// The member a pod runs, by its label.
pub fn member_of(pod: &Pod) -> Option<String> {
    pod.labels().get(MEMBER_LABEL).cloned()
}

/// The hash annotation of a pod.
pub fn hash_of(pod: &Pod) -> Option<&str> {
    pod.annotations().get(HASH_ANNOTATION).map(String::as_str)
}
