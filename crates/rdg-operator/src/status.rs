//! The `RedundantGroup` status. Each agent server-side-applies its own entry of `members`
//! (field manager `rdg-member-<name>`, a list-map keyed by `name`); the controller owns the
//! aggregate fields (`hot`, `epoch`, `phase`, `conditions`, `lastFailover`, `switchover`, ...).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, MicroTime, Time};
use kube::KubeSchema;
use rdg_core::State;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Live state of a group, as `kubectl get rdg` shows it.
#[derive(KubeSchema, Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RedundantGroupStatus {
    /// The hot member (None: no member is hot, or more than one claims to be).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hot: Option<String>,
    /// Epoch of the hot member's term.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<u64>,
    /// Healthy, Degraded (hot but no standby ready), NoHot, SplitBrain or Invalid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// Number of configured members.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member_count: Option<u32>,
    /// Members hot or standing by, of all, e.g. `2/3`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready: Option<String>,
    /// One entry per member, written by the member's own agent.
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<MemberEntry>,
    /// Ready, Degraded, SplitBrain, ConfigValid.
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The last unplanned change of hot member.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failover: Option<Failover>,
    /// Members fenced for maintenance (`spec.members[].fenced`): their agents run with
    /// priority 0 and are never elected hot.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fenced: Vec<String>,
    /// The current or last planned hand-over (operator's request or a rollout's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub switchover: Option<SwitchoverStatus>,
    /// Hash of the configuration the member pods should run (rendered config + pod template).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_hash: Option<String>,
    /// The spec generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// Summary of a group's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Phase {
    /// One member is hot and at least one standby is ready to take over.
    Healthy,
    /// One member is hot but no standby could take over.
    Degraded,
    /// No member is hot.
    NoHot,
    /// More than one member claims to be hot.
    SplitBrain,
    /// The spec is invalid; nothing was changed (see the ConfigValid condition).
    Invalid,
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

/// One member's own report, applied by its agent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemberEntry {
    /// Member name.
    pub name: String,
    /// HS, SBS, CS, SS, FS or TS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<State>,
    /// Temporal state (D2000 name, e.g. `iNone`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temporal_state: Option<String>,
    /// Epoch the member knows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<u64>,
    /// The hot member this member believes in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hot: Option<String>,
    /// Heartbeat health of the other members, per network, as this member hears them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub networks: Vec<NetworkHealth>,
    /// The other members this member hears on at least one network. It changes, and so is
    /// written at once, when a member goes silent: that is how a live claim of a partitioned
    /// hot member is told from the last word of a dead one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hears: Vec<String>,
    /// Last net-check verdict (None: disabled or not run yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub net_check_ok: Option<bool>,
    /// Whether every VIP is held (hot) or none is (standby).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vips_ok: Option<bool>,
    /// The member's pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    /// The node it runs on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// When `state` last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<Time>,
    /// When the agent last wrote this entry (to the microsecond: the aggregation compares it
    /// with another member's takeover, a fraction of a second later).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<MicroTime>,
    /// This member's last takeover (it became hot without a planned hand-over).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_takeover: Option<Failover>,
    /// Digest of the carousel this member would send (16 hex digits; None: no transmitter).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_digest: Option<String>,
    /// Objects on which this member's carousel differs from the hot member's, as the member
    /// found when comparing (`address:port/name`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub content_differs: Vec<String>,
}

/// Heartbeat health on one network.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NetworkHealth {
    /// Network name.
    pub name: String,
    /// Every other live member is heard on this network within the heartbeat timeout.
    pub healthy: bool,
    /// Members heard on another network but silent on this one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub silent: Vec<String>,
}

/// An unplanned change of hot member.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Failover {
    /// The member that was hot (None: none was known).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The member that became hot.
    pub to: String,
    /// Why (e.g. `hot member lost`).
    pub reason: String,
    /// When it became hot (to the microsecond).
    pub time: MicroTime,
    /// How long after the old hot member's last heartbeat the loss was detected, in ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detection_ms: Option<u64>,
    /// Epoch of the new term.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<u64>,
}

/// A planned hand-over the controller asked for, and how it went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SwitchoverStatus {
    /// The member that should become hot.
    pub to: String,
    /// Pending (the hot member's agent should hand over), Done or Failed.
    pub phase: SwitchoverPhase,
    /// Who asked: `operator` (spec.switchover) or `rollout`.
    pub reason: String,
    /// When it was asked for.
    pub requested: Time,
    /// When it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished: Option<Time>,
    /// The spec generation of an operator's request (so it is carried out once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Progress of a planned hand-over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum SwitchoverPhase {
    /// The hot member's agent should hand over to `to`.
    Pending,
    /// `to` is hot.
    Done,
    /// It did not happen in time, or the target cannot become hot.
    Failed,
}

impl RedundantGroupStatus {
    /// The condition of type `kind`, if set.
    pub fn condition(&self, kind: &str) -> Option<&Condition> {
        self.conditions.iter().find(|c| c.type_ == kind)
    }

    /// The entry of member `name`, if its agent has reported.
    pub fn member(&self, name: &str) -> Option<&MemberEntry> {
        self.members.iter().find(|m| m.name == name)
    }
}
