//! The `RedundantGroup` custom resource: its spec is the group configuration file (same keys,
//! the rdg-core types), plus what only Kubernetes needs — where each member runs, the image,
//! the HMAC key as a Secret, objects from ConfigMaps, a Service for the hot member and an
//! operator's switchover request. `rdg crd` prints the CRD generated from these types.

// Several `printcolumn(type_ = "string", ...)` entries look like duplicated attributes to clippy.
#![allow(clippy::duplicated_attributes)]

use crate::status::RedundantGroupStatus;
use k8s_openapi::api::core::v1::{EnvVar, ResourceRequirements, ServicePort, Toleration};
use kube::{CustomResource, KubeSchema};
use rdg_core::Dur;
use rdg_core::config::{
    Garp, Heartbeat, NetCheck, Network, Notify, StatusEndpoint, Timeouts, Transmitter, Vip,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// API group of the resource.
pub const GROUP: &str = "rdg.infocast.io";

/// A redundant group of servers: exactly one member is hot (owns the VIPs and transmits the
/// carousel), the others stand by and take over within the heartbeat timeout.
#[derive(CustomResource, KubeSchema, Debug, Clone, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "rdg.infocast.io",
    version = "v1alpha1",
    kind = "RedundantGroup",
    plural = "redundantgroups",
    shortname = "rdg",
    namespaced,
    status = "RedundantGroupStatus",
    derive = "PartialEq",
    doc = "A redundant group: one hot member, the others standing by to take over within the heartbeat timeout.",
    printcolumn(
        name = "Hot",
        type_ = "string",
        json_path = ".status.hot",
        description = "The hot member"
    ),
    printcolumn(
        name = "Epoch",
        type_ = "integer",
        json_path = ".status.epoch",
        description = "Epoch of the hot member's term"
    ),
    printcolumn(
        name = "Members",
        type_ = "integer",
        json_path = ".status.memberCount",
        description = "Configured members"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.ready",
        description = "Members hot or standing by, of all"
    ),
    printcolumn(
        name = "Phase",
        type_ = "string",
        json_path = ".status.phase",
        description = "Healthy, Degraded, NoHot, SplitBrain or Invalid"
    ),
    printcolumn(
        name = "VIP",
        type_ = "string",
        json_path = ".spec.vips[0].address",
        description = "First virtual IP"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    ),
    printcolumn(
        name = "Fenced",
        type_ = "string",
        json_path = ".status.fenced",
        description = "Members fenced for maintenance (kubectl get rdg -o wide)",
        priority = "1"
    )
)]
// The duration rules skip a value the field's pattern (crd::DURATION_PATTERN) already refuses,
// so a malformed duration is reported once, by the pattern.
#[x_kube(
    cel,
    validation = Rule::new("!has(self.heartbeat) || !has(self.heartbeat.interval) || !has(self.heartbeat.timeout) || !self.heartbeat.interval.matches('^([0-9]+(ns|us|µs|ms|s|m|h))+$') || !self.heartbeat.timeout.matches('^([0-9]+(ns|us|µs|ms|s|m|h))+$') || duration(self.heartbeat.interval) < duration(self.heartbeat.timeout)").message("heartbeat.interval must be shorter than heartbeat.timeout").field_path(".heartbeat.interval"),
    validation = Rule::new("!has(self.heartbeat) || !has(self.heartbeat.interval) || !self.heartbeat.interval.matches('^([0-9]+(ns|us|µs|ms|s|m|h))+$') || duration(self.heartbeat.interval) > duration('0s')").message("heartbeat.interval must be greater than 0s").field_path(".heartbeat.interval"),
    validation = Rule::new("self.members.all(m, !has(m.addresses) || m.addresses.all(k, self.networks.exists(n, n.name == k)))").message("every members[].addresses key must name one of networks").field_path(".members"),
    validation = Rule::new("!has(self.vips) || self.vips.all(v, self.networks.exists(n, n.name == v.network))").message("every vips[].network must name one of networks").field_path(".vips"),
    validation = Rule::new("!has(self.switchover) || !has(self.switchover.to) || self.members.exists(m, m.name == self.switchover.to)").message("switchover.to must name a member").field_path(".switchover.to")
)]
#[serde(rename_all = "camelCase")]
pub struct RedundantGroupSpec {
    /// Group name on the wire (D2000 GroupName); defaults to the resource's name. Members of
    /// different groups on the same networks must use different names or ports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub name: Option<String>,
    /// Heartbeat timing and transport.
    #[serde(default)]
    pub heartbeat: Heartbeat,
    /// One or two networks the members heartbeat on.
    #[schemars(length(min = 1, max = 2))]
    pub networks: Vec<Network>,
    /// The members: one pod each, on its own node.
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    #[schemars(length(min = 1, max = 16))]
    pub members: Vec<MemberSpec>,
    /// When true, a higher-priority standby takes the role from a running hot member.
    #[serde(default)]
    pub preempt: bool,
    /// How long a higher-priority standby must be ready before it preempts.
    #[serde(default)]
    pub preempt_delay: Dur,
    /// Bounds of the temporal states (the D2000 RD_TIMEOUT_* family).
    #[serde(default)]
    pub timeouts: Timeouts,
    /// Addresses pinged before taking over, so an isolated member never grabs the role.
    #[serde(default)]
    pub net_check: NetCheck,
    /// Virtual IPs owned by the hot member.
    #[serde(default)]
    #[schemars(length(max = 16))]
    pub vips: Vec<Vip>,
    /// Announcements after taking the VIPs (gratuitous ARP, unsolicited NA).
    #[serde(default)]
    pub garp: Garp,
    /// Heartbeat authentication: the HMAC key comes from a Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthSpec>,
    /// The agents' local status endpoint (/status, /healthz, /metrics) on each node. Pods use
    /// the host network, so groups sharing a node need different ports.
    #[serde(default)]
    pub status: StatusEndpoint,
    /// A command run on every notable event (inside the agent container).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<Notify>,
    /// What the hot member transmits: the built-in Infocast carousel, a third-party container
    /// run under `rdg gate`, or both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transmitter: Option<TransmitterSpec>,
    /// Container image with the `rdg` binary; defaults to the operator's own image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Image pull policy of the member pods (Always, IfNotPresent, Never).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<String>,
    /// Log filter of the rdg processes in the member pods (agent and carousel), as their
    /// `RUST_LOG`: a `tracing` EnvFilter such as `debug` or `info,rdg_agent=debug`; default
    /// `info`. Changing it replaces the member pods like any other spec change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256))]
    pub log_level: Option<String>,
    /// Resources of the agent container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Tolerations of the member pods (e.g. to run on dedicated broadcast nodes).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
    /// A Service selecting the hot member's pod (`rdg.infocast.io/role: hot`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<ServiceSpec>,
    /// An operator's planned hand-over: the hot member hands over to `to`. Done once; set it
    /// again (or to another member) for another hand-over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub switchover: Option<SwitchoverSpec>,
}

/// One member of the group: the rdg-core member keys plus where its pod runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemberSpec {
    /// Unique member name (D2000 KernelName); also names its pod `<group>-<name>`.
    #[schemars(
        length(min = 1, max = 40),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub name: String,
    /// Higher wins when the hot member fails; 0 = only by an operator's switchover.
    pub priority: u16,
    /// This member's address on each network, by network name: an address of its node.
    #[serde(default)]
    pub addresses: BTreeMap<String, IpAddr>,
    /// The node the member's pod runs on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_name: Option<String>,
    /// Instead of `nodeName`: labels selecting the node (must select exactly one node, since
    /// `addresses` are that node's).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    /// Maintenance: the member's agent runs with priority 0, so it never becomes hot by
    /// election (a hot member hands over first, as for any change). `kubectl rdg fence`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fenced: bool,
}

impl MemberSpec {
    /// The priority its agent runs with: 0 while fenced, otherwise `priority`.
    pub fn effective_priority(&self) -> u16 {
        if self.fenced { 0 } else { self.priority }
    }
}

/// Where the HMAC key comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthSpec {
    /// The Secret (in the group's namespace) and key holding the shared HMAC-SHA256 key.
    pub secret_ref: SecretKeyRef,
}

/// A key of a Secret in the group's namespace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Secret name.
    pub name: String,
    /// Key inside the Secret.
    #[serde(default = "default_secret_key")]
    pub key: String,
    /// Instead of `key`, while keys are rotated: keys of the Secret, the signing key first;
    /// heartbeats with a MAC of any of them are accepted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<String>,
}

fn default_secret_key() -> String {
    "key".to_string()
}

/// What the hot member transmits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TransmitterSpec {
    /// Built-in Infocast carousel channels (the config file's `transmitter.channels`). An
    /// object's `source` must be a file of one of `configMaps`, mounted at
    /// `/var/lib/rdg/objects/<configMap>/<key>`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub channels: Vec<rdg_core::config::Channel>,
    /// ConfigMaps (in the group's namespace) holding the carousel objects; `binaryData` keys
    /// work too. Each is mounted read-only at `/var/lib/rdg/objects/<name>/`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub config_maps: Vec<String>,
    /// A third-party transmitter container, run under `rdg gate` so that it runs only while
    /// its member is hot with a valid lease.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<GatedContainer>,
}

/// A third-party transmitter run under `rdg gate`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GatedContainer {
    /// Image of the transmitter; it must contain `rdg` at `/usr/local/bin/rdg` or get it from
    /// the shared `/opt/rdg` volume (the pod copies it there).
    pub image: String,
    /// Command and arguments of the transmitter (run as `rdg gate --role-file F -- command...`).
    #[schemars(length(min = 1))]
    pub command: Vec<String>,
    /// Environment of the transmitter.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvVar>,
    /// Resources of the transmitter container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// How long the transmitter gets after SIGTERM before SIGKILL when its member stops being
    /// hot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace: Option<Dur>,
}

/// A Service for clients that reach the hot member through the cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceSpec {
    /// Ports of the Service (the hot member's host-network ports).
    #[schemars(length(min = 1))]
    pub ports: Vec<ServicePort>,
    /// Service type (ClusterIP, NodePort, LoadBalancer); default ClusterIP.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub service_type: Option<String>,
}

/// An operator's switchover request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SwitchoverSpec {
    /// The member that should become hot.
    pub to: String,
}

/// Path inside member pods where the ConfigMap `name` of carousel objects is mounted.
pub fn objects_dir(config_map: &str) -> String {
    format!("/var/lib/rdg/objects/{config_map}")
}

/// Log filter of member pods when the spec names none.
pub const DEFAULT_LOG_LEVEL: &str = "info";

impl RedundantGroup {
    /// The server-side-apply body that sets `status` (fields of whoever applies it) of the
    /// group `name`.
    pub fn status_patch(name: &str, status: serde_json::Value) -> serde_json::Value {
        use kube::Resource;
        serde_json::json!({
            "apiVersion": RedundantGroup::api_version(&()),
            "kind": RedundantGroup::kind(&()),
            "metadata": {"name": name},
            "status": status,
        })
    }

    /// The server-side-apply body of one member's own entry of `status.members`, as its agent
    /// applies it (field manager `rdg-member-<member>`).
    pub fn member_entry_patch(name: &str, entry: &crate::status::MemberEntry) -> serde_json::Value {
        RedundantGroup::status_patch(name, serde_json::json!({"members": [entry]}))
    }

    /// Whether the group is `obj`'s controller (its owner reference with `controller: true`).
    pub fn controls<K: kube::Resource>(&self, obj: &K) -> bool {
        use kube::{Resource, ResourceExt};
        let Some(uid) = self.uid() else { return false };
        let kind = RedundantGroup::kind(&());
        obj.owner_references()
            .iter()
            .any(|o| o.controller == Some(true) && o.uid == uid && o.kind == kind)
    }
}

impl RedundantGroupSpec {
    /// The member pods' log filter (`RUST_LOG`): `logLevel`, or [`DEFAULT_LOG_LEVEL`].
    pub fn log_level(&self) -> &str {
        self.log_level.as_deref().unwrap_or(DEFAULT_LOG_LEVEL)
    }

    /// The member entry named `name`.
    pub fn member(&self, name: &str) -> Option<&MemberSpec> {
        self.members.iter().find(|m| m.name == name)
    }

    /// The built-in carousel as the config file's `transmitter`, when there is one.
    pub fn carousel(&self) -> Option<Transmitter> {
        let t = self.transmitter.as_ref()?;
        (!t.channels.is_empty()).then(|| Transmitter {
            channels: t.channels.clone(),
        })
    }
}
