//! From a `RedundantGroup` spec to the group configuration file its member pods run with, and
//! every problem that keeps it from running, each with its field path in the spec. The
//! controller changes nothing for an invalid spec: it only reports the problems.

use crate::resource::{RedundantGroupSpec, objects_dir};
use rdg_core::config::{Auth, GroupConfig, Member, Problem};
use sha2::{Digest, Sha256};

/// Directory of the role file inside member pods (an in-memory emptyDir shared by the agent
/// and the transmitter containers).
pub const ROLE_DIR: &str = "/run/rdg";
/// Directory of the switchover token inside member pods: an in-memory emptyDir only the agent
/// container mounts (the in-process reporter is the only other user of the token).
pub const TOKEN_DIR: &str = "/run/rdg-agent";
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
    let token_file = format!("{TOKEN_DIR}/{name}.token");
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
                priority: m.effective_priority(),
                addresses: m.addresses.clone(),
            })
            .collect(),
        preempt: spec.preempt,
        preempt_delay: spec.preempt_delay,
        timeouts: spec.timeouts.clone(),
        net_check: spec.net_check.clone(),
        vips: spec.vips.clone(),
        garp: spec.garp.clone(),
        auth: spec
            .auth
            .as_ref()
            .map(|a| match a.secret_ref.keys.as_slice() {
                [] => Auth::key_file(format!("{KEY_DIR}/{}", a.secret_ref.key)),
                keys => Auth {
                    key_file: None,
                    key_files: keys.iter().map(|k| format!("{KEY_DIR}/{k}")).collect(),
                },
            }),
        status: rdg_core::config::StatusEndpoint {
            token_file: Some(token_file),
            ..spec.status.clone()
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
    if let Some(rest) = path.strip_prefix("auth.keyFiles") {
        format!("auth.secretRef.keys{rest}")
    } else if let Some(rest) = path.strip_prefix("auth.keyFile") {
        format!("auth.secretRef.key{rest}")
    } else {
        path.to_string()
    }
}

/// The rules only a Kubernetes spec has: where members run, where objects come from, what a
/// switchover names.
fn kubernetes_problems(spec: &RedundantGroupSpec) -> Vec<Problem> {
    let mut out = Vec::new();
    let mut add = |path: String, message: String| out.push(Problem { path, message });
    if spec.status.token_file.is_some() {
        add(
            "status.tokenFile".to_string(),
            format!(
                "leave it out: member pods keep the switchover token in {TOKEN_DIR}, a volume \
                 only the agent container mounts"
            ),
        );
    }
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
    if !spec.members.is_empty() && spec.members.iter().all(|m| m.fenced) {
        add(
            "members".to_string(),
            "every member is fenced, so none could become hot; unfence one".to_string(),
        );
    }
    if let Some(a) = &spec.auth {
        let r = &a.secret_ref;
        if r.name.trim().is_empty() {
            add(
                "auth.secretRef.name".to_string(),
                "must name the Secret holding the HMAC key".to_string(),
            );
        }
        if r.key.trim().is_empty() || r.key.contains('/') || r.key.starts_with('.') {
            add(
                "auth.secretRef.key".to_string(),
                format!(
                    "{:?} is not a Secret key (a file name: no '/', not starting with '.')",
                    r.key
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
    if let Some(l) = &spec.log_level {
        if l.trim().is_empty() {
            add(
                "logLevel".to_string(),
                "must not be empty (leave it out for the default, info)".to_string(),
            );
        } else if let Err(e) = l.parse::<tracing_subscriber::EnvFilter>() {
            add(
                "logLevel".to_string(),
                format!(
                    "{l:?} is not a log filter ({e}); use a level (error, warn, info, debug, \
                     trace) or directives like info,rdg_agent=debug"
                ),
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(extra: serde_json::Value) -> RedundantGroupSpec {
        let mut v = json!({
            "networks": [{"name": "primary", "multicast": "224.0.0.35"}],
            "members": [
                {"name": "a", "priority": 100, "nodeName": "n1", "addresses": {"primary": "10.0.0.11"}},
                {"name": "b", "priority": 50, "nodeName": "n2", "addresses": {"primary": "10.0.0.12"}},
            ],
        });
        for (k, val) in extra.as_object().unwrap() {
            v[k] = val.clone();
        }
        serde_json::from_value(v).unwrap()
    }

    fn paths(r: Result<Rendered, Vec<Problem>>) -> Vec<String> {
        r.expect_err("invalid")
            .into_iter()
            .map(|p| p.path)
            .collect()
    }

    #[test]
    fn a_valid_spec_renders_a_config_the_agent_accepts() {
        let s = spec(json!({"auth": {"secretRef": {"name": "hmac"}}}));
        let r = render("infocast", &s).unwrap();
        let back = GroupConfig::from_yaml(&r.yaml).unwrap();
        assert_eq!(back, r.config);
        assert_eq!(back.name, "infocast");
        assert_eq!(back.auth.unwrap().files(), ["/etc/rdg/key/key"]);
        let rotating =
            spec(json!({"auth": {"secretRef": {"name": "hmac", "keys": ["new", "old"]}}}));
        let rot = render("infocast", &rotating).unwrap();
        assert_eq!(
            rot.config.auth.unwrap().files(),
            ["/etc/rdg/key/new", "/etc/rdg/key/old"]
        );
        let twice = spec(json!({"auth": {"secretRef": {"name": "hmac", "keys": ["new", "new"]}}}));
        assert_eq!(
            paths(render("infocast", &twice)),
            ["auth.secretRef.keys[1]"]
        );
        assert_eq!(r.role_file(), "/run/rdg/infocast.role");
        assert_eq!(
            r.config.status.token_file.as_deref(),
            Some("/run/rdg-agent/infocast.token")
        );
        let s = spec(json!({"status": {"tokenFile": "/tmp/t"}}));
        assert_eq!(paths(render("infocast", &s)), ["status.tokenFile"]);
    }

    #[test]
    fn kubernetes_rules_name_the_spec_field() {
        let mut s = spec(json!({"switchover": {"to": "zz"}}));
        s.members[1].node_name = Some("n1".into());
        assert_eq!(
            paths(render("g", &s)),
            ["members[1].nodeName", "switchover.to"]
        );
        let mut s = spec(json!({}));
        s.members[0].node_name = None;
        assert_eq!(paths(render("g", &s)), ["members[0].nodeName"]);
    }

    #[test]
    fn a_fenced_member_runs_with_priority_0_and_not_every_member_may_be() {
        let mut s = spec(json!({}));
        s.members[0].fenced = true;
        let r = render("g", &s).unwrap();
        let prio: Vec<u16> = r.config.members.iter().map(|m| m.priority).collect();
        assert_eq!(prio, [0, 50]);
        assert_eq!(s.members[0].priority, 100, "the spec keeps its priority");
        s.members[1].fenced = true;
        let p = render("g", &s).expect_err("all fenced");
        assert!(
            p.iter()
                .any(|p| p.path == "members" && p.message.contains("fenced")),
            "{p:?}"
        );
    }

    #[test]
    fn carousel_objects_must_come_from_a_listed_config_map() {
        let tx = |source: &str| {
            spec(
                json!({"transmitter": {"configMaps": ["objs"], "channels": [{
                "address": "224.2.2.2", "port": 22222, "bitRate": "2Mbit",
                "objects": [{"name": "o", "source": source}]}]}}),
            )
        };
        assert!(render("g", &tx("/var/lib/rdg/objects/objs/o")).is_ok());
        for bad in [
            "/etc/passwd",
            "/var/lib/rdg/objects/other/o",
            "/var/lib/rdg/objects/objs/",
        ] {
            assert_eq!(
                paths(render("g", &tx(bad))),
                ["transmitter.channels[0].objects[0].source"],
                "{bad}"
            );
        }
    }

    #[test]
    fn core_rules_keep_their_paths_and_the_key_file_maps_to_the_secret() {
        let mut s = spec(json!({"auth": {"secretRef": {"name": "hmac", "key": ""}}}));
        s.heartbeat.timeout = rdg_core::Dur::from_millis(50);
        let p = paths(render("g", &s));
        assert!(p.contains(&"heartbeat.timeout".to_string()), "{p:?}");
        assert!(p.contains(&"auth.secretRef.key".to_string()), "{p:?}");
        assert!(p.iter().all(|p| !p.starts_with("auth.keyFile")), "{p:?}");
        assert_eq!(spec_path("auth.keyFile"), "auth.secretRef.key");
    }

    #[test]
    fn the_log_level_must_be_a_log_filter() {
        for good in [
            "debug",
            "info,rdg_agent=debug",
            "warn,rdg_core::election=trace",
        ] {
            assert!(
                render("g", &spec(json!({"logLevel": good}))).is_ok(),
                "{good}"
            );
        }
        for bad in ["", "  ", "rdg_agent=loud", "info,[bad", "a=b=c"] {
            let err = render("g", &spec(json!({"logLevel": bad}))).expect_err(bad);
            assert_eq!(err.len(), 1, "{bad}: {err:?}");
            assert_eq!(err[0].path, "logLevel", "{bad}");
            assert!(!err[0].message.is_empty());
        }
    }

    #[test]
    fn the_hash_changes_with_any_part() {
        assert_ne!(hash(&["ab", "c"]), hash(&["a", "bc"]));
        assert_eq!(hash(&["x"]), hash(&["x"]));
        assert_eq!(hash(&["x"]).len(), 16);
    }
}
