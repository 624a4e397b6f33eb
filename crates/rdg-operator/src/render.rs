//! From a `RedundantGroup` spec to the group configuration file its member pods run with, and
//! every problem that keeps it from running, each with its field path in the spec. The
//! controller changes nothing for an invalid spec: it only reports the problems.

use crate::resource::{RedundantGroupSpec, objects_dir};
use rdg_core::config::{Auth, GroupConfig, Member, Problem, StatusEndpoint};
use sha2::{Digest, Sha256};

/// Directory of the role file inside member pods (an emptyDir shared by the agent and the
/// transmitter containers).
pub const ROLE_DIR: &str = "/run/rdg";
/// Directory the HMAC key Secret is mounted at.
pub const KEY_DIR: &str = "/etc/rdg/key";
/// Directory the rendered configuration ConfigMap is mounted at.
pub const CONFIG_DIR: &str = "/etc/rdg/config";
/// Key of the configuration in its ConfigMap (and file name under [`CONFIG_DIR`]).
pub const CONFIG_KEY: &str = "group.yaml";

/// The configuration file member pods run with, rendered from a group's spec.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// The configuration (valid).
    pub config: GroupConfig,
    /// Its YAML text, as the ConfigMap holds it.
    pub yaml: String,
}

impl Rendered {
    /// Role file path inside member pods.
    pub fn role_file(&self) -> String {
        self.config.role_file_path()
    }
}

/// Renders the configuration of group `resource_name` and checks it; `Err` carries every
/// problem (rdg-core's rules plus the Kubernetes-only ones), each with its spec field path.
pub fn render(resource_name: &str, spec: &RedundantGroupSpec) -> Result<Rendered, Vec<Problem>> {
    let name = spec
        .name
        .clone()
        .unwrap_or_else(|| resource_name.to_string());
    let config = GroupConfig {
        role_file: Some(format!("{ROLE_DIR}/{name}.role")),
        name,
        heartbeat: spec.heartbeat.clone(),
        networks: spec.networks.clone(),
        members: spec
            .members
            .iter()
            .map(|m| Member {
                name: m.name.clone(),
                priority: m.priority,
                addresses: m.addresses.clone(),
            })
            .collect(),
        preempt: spec.preempt,
        preempt_delay: spec.preempt_delay,
        timeouts: spec.timeouts.clone(),
        net_check: spec.net_check.clone(),
        vips: spec.vips.clone(),
        garp: spec.garp.clone(),
        auth: spec.auth.as_ref().map(|a| Auth {
            key_file: format!("{KEY_DIR}/{}", a.secret_ref.key),
        }),
        status: StatusEndpoint {
            listen: spec.status.listen,
        },
        transmitter: spec.carousel(),
        notify: spec.notify.clone(),
    };
    let mut problems: Vec<Problem> = config
        .problems()
        .into_iter()
        .map(|p| Problem {
            path: spec_path(&p.path),
            message: p.message,
        })
        .collect();
    problems.extend(kubernetes_problems(spec));
    if !problems.is_empty() {
        return Err(problems);
    }
    let yaml = serde_yaml_ng::to_string(&config).expect("a group configuration always serializes");
    Ok(Rendered { config, yaml })
}

/// Maps a configuration file path to the spec's: the same keys, except that the key file is
/// the Secret reference and the carousel lives under `transmitter.channels` in both.
fn spec_path(path: &str) -> String {
    match path.strip_prefix("auth.keyFile") {
        Some(rest) => format!("auth.secretRef.key{rest}"),
        None => path.to_string(),
    }
}

/// The rules only a Kubernetes spec has: where members run, where objects come from, what a
/// switchover names.
fn kubernetes_problems(spec: &RedundantGroupSpec) -> Vec<Problem> {
    let mut out = Vec::new();
    let mut add = |path: String, message: String| out.push(Problem { path, message });
    for (i, m) in spec.members.iter().enumerate() {
        match (&m.node_name, m.node_selector.is_empty()) {
            (None, true) => add(
                format!("members[{i}].nodeName"),
                format!(
                    "member {:?} needs nodeName or nodeSelector: its addresses belong to one node",
                    m.name
                ),
            ),
            (Some(_), false) => add(
                format!("members[{i}].nodeSelector"),
                "give nodeName or nodeSelector, not both".to_string(),
            ),
            (Some(n), true) if n.is_empty() => add(
                format!("members[{i}].nodeName"),
                "must not be empty".to_string(),
            ),
            _ => {}
        }
        if m.name.len() > 40 {
            add(
                format!("members[{i}].name"),
                "at most 40 characters (it names the member's pod)".to_string(),
            );
        }
    }
    for (i, a) in spec.members.iter().enumerate() {
        if let Some(n) = &a.node_name
            && let Some(j) = spec.members[..i]
                .iter()
                .position(|b| b.node_name.as_ref() == Some(n))
        {
            add(
                format!("members[{i}].nodeName"),
                format!(
                    "node {n:?} already runs member {:?}: members must be on different nodes",
                    spec.members[j].name
                ),
            );
        }
    }
    if let Some(t) = &spec.transmitter {
        for (c, ch) in t.channels.iter().enumerate() {
            for (o, obj) in ch.objects.iter().enumerate() {
                let Some(source) = &obj.source else { continue };
                let mounted = t.config_maps.iter().any(|cm| {
                    source
                        .strip_prefix(&objects_dir(cm))
                        .and_then(|rest| rest.strip_prefix('/'))
                        .is_some_and(|key| !key.is_empty() && !key.contains('/'))
                });
                if !mounted {
                    add(
                        format!("transmitter.channels[{c}].objects[{o}].source"),
                        format!(
                            "{source:?} is not a file of a listed ConfigMap; use {}/KEY with the \
                             ConfigMap in transmitter.configMaps",
                            objects_dir("CONFIGMAP")
                        ),
                    );
                }
            }
        }
        if let Some(c) = &t.container
            && c.command.is_empty()
        {
            add(
                "transmitter.container.command".to_string(),
                "must name the transmitter's program".to_string(),
            );
        }
    }
    if let Some(s) = &spec.switchover
        && spec.member(&s.to).is_none()
    {
        add(
            "switchover.to".to_string(),
            format!("{:?} is not a member", s.to),
        );
    }
    if let Some(s) = &spec.service
        && s.ports.is_empty()
    {
        add(
            "service.ports".to_string(),
            "a Service needs at least one port".to_string(),
        );
    }
    out
}

/// A short stable hash of what member pods run (the rendered configuration and the pod
/// template's inputs): a pod whose annotation differs is out of date and gets rolled.
pub fn hash(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p.as_bytes());
    }
    h.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
