//! The part of a group's status the controller owns (`hot`, `phase`, conditions, the
//! hand-over, the pods' hash), and the pruning of entries of members no longer in the spec.
//! Each member's own entry is its agent's.

use super::{Error, apply_params};
use crate::aggregate::{Aggregate, aggregate};
use crate::render::render;
use crate::resource::RedundantGroup;
use crate::status::{RedundantGroupStatus, SwitchoverStatus};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use std::collections::BTreeMap;

/// Aggregates `group`'s member entries with its pods by member name and applies the result,
/// as a reconcile does (without its switchover and rollout steps): for an API server that
/// serves no pods, where the pods come from elsewhere. Returns the status applied.
pub async fn apply_aggregate(
    api: &Api<RedundantGroup>,
    group: &RedundantGroup,
    pods: &BTreeMap<String, Pod>,
    now: &Time,
) -> Result<RedundantGroupStatus, Error> {
    let previous = group.status.clone().unwrap_or_default();
    let problems = render(&group.name_any(), &group.spec)
        .err()
        .unwrap_or_default();
    let agg = aggregate(&group.spec, &previous, pods, &problems, now);
    let status = group.status_from(&previous, &agg, previous.switchover.clone(), None);
    group.write_status(api, &previous, status.clone()).await?;
    Ok(status)
}

impl RedundantGroup {
    /// The status the controller owns, from the aggregate; `hash` of the pods, when known.
    pub(super) fn status_from(
        &self,
        previous: &RedundantGroupStatus,
        agg: &Aggregate,
        switchover: Option<SwitchoverStatus>,
        hash: Option<String>,
    ) -> RedundantGroupStatus {
        RedundantGroupStatus {
            hot: agg.hot.clone(),
            epoch: agg.epoch,
            phase: Some(agg.phase),
            member_count: Some(self.spec.members.len() as u32),
            ready: Some(agg.ready.clone()),
            members: Vec::new(),
            conditions: agg.conditions.clone(),
            last_failover: agg.last_failover.clone(),
            fenced: self
                .spec
                .members
                .iter()
                .filter(|m| m.fenced)
                .map(|m| m.name.clone())
                .collect(),
            switchover,
            config_hash: hash.or_else(|| previous.config_hash.clone()),
            observed_generation: self.meta().generation,
        }
    }

    /// Applies the controller's part of the status unless nothing changed since `previous`,
    /// then prunes the entries of members no longer in the spec.
    pub(super) async fn write_status(
        &self,
        api: &Api<RedundantGroup>,
        previous: &RedundantGroupStatus,
        status: RedundantGroupStatus,
    ) -> Result<(), Error> {
        let unchanged = RedundantGroupStatus {
            members: previous.members.clone(),
            ..status.clone()
        } == *previous;
        if !unchanged {
            let name = self.name_any();
            let body = RedundantGroup::status_patch(
                &name,
                serde_json::to_value(&status).expect("a status is JSON"),
            );
            api.patch_status(&name, &apply_params(), &Patch::Apply(&body))
                .await?;
        }
        self.prune_entries(api, previous).await
    }

    /// Removes the entries of `status.members` whose member left the spec. Only a member's own
    /// agent applies its entry, and a removed member's agent is gone with its pod, so nobody
    /// else would. Each removal is guarded by a test of the entry's name, so an entry list
    /// changed meanwhile makes the patch fail (and the next reconcile retry) rather than
    /// remove another.
    async fn prune_entries(
        &self,
        api: &Api<RedundantGroup>,
        previous: &RedundantGroupStatus,
    ) -> Result<(), Error> {
        use json_patch::jsonptr::PointerBuf;
        use json_patch::{Patch as JsonPatch, PatchOperation, RemoveOperation, TestOperation};
        let ops: Vec<PatchOperation> = previous
            .members
            .iter()
            .enumerate()
            .rev()
            .filter(|(_, e)| self.spec.member(&e.name).is_none())
            .flat_map(|(i, e)| {
                let at = PointerBuf::from_tokens(["status", "members", &i.to_string()]);
                [
                    PatchOperation::Test(TestOperation {
                        path: at.with_trailing_token("name"),
                        value: serde_json::Value::String(e.name.clone()),
                    }),
                    PatchOperation::Remove(RemoveOperation { path: at }),
                ]
            })
            .collect();
        if ops.is_empty() {
            return Ok(());
        }
        let removed = ops.len() / 2;
        let name = self.name_any();
        match api
            .patch_status(
                &name,
                &PatchParams::default(),
                &Patch::Json::<()>(JsonPatch(ops)),
            )
            .await
        {
            Ok(_) => {
                tracing::info!(group = %name, removed, "removed the status entries of members no longer in the spec")
            }
            // The entries moved meanwhile (a test op failed): the write it raced with triggers
            // another reconcile, which tries again on the new list.
            Err(kube::Error::Api(e)) if e.code == 422 => {
                tracing::debug!(group = %name, error = %e, "status entries changed meanwhile; pruning on the next reconcile");
            }
            Err(e) => return Err(e.into()),
        }
        Ok(())
    }
}
