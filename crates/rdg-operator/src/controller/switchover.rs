//! Planned hand-overs: the one under way advances (done when its target is hot, failed after
//! a timeout), and an operator's new request — the [`SWITCHOVER_ANNOTATION`] or
//! `spec.switchover` — is taken up once none is under way, unless its target is fenced.

use super::{Context, Error};
use crate::aggregate::Aggregate;
use crate::resource::RedundantGroup;
use crate::rollout::{advance, operator_request_is_new, request};
use crate::status::{RedundantGroupStatus, SwitchoverPhase, SwitchoverStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Patch, PatchParams};
use kube::runtime::events::EventType;
use kube::{Api, Resource, ResourceExt};

/// Annotation an operator may set on a group to ask for a planned hand-over to a member; the
/// controller takes it up and removes it.
pub const SWITCHOVER_ANNOTATION: &str = "rdg.infocast.io/switchover-to";

/// Whether a hand-over is under way.
pub(super) fn is_pending(switchover: Option<&SwitchoverStatus>) -> bool {
    switchover.is_some_and(|s| s.phase == SwitchoverPhase::Pending)
}

impl RedundantGroup {
    /// The hand-over after this reconcile: the previous one advanced, or an operator's new
    /// request. The annotation is removed once taken up or rejected (not a member); while a
    /// hand-over is under way it stays, for later.
    pub(super) async fn take_up_switchover(
        &self,
        ctx: &Context,
        ns: &str,
        previous: &RedundantGroupStatus,
        agg: &Aggregate,
        now: &Time,
    ) -> Result<Option<SwitchoverStatus>, Error> {
        let switchover = advance(previous.switchover.as_ref(), agg.hot.as_deref(), now);
        let under_way = is_pending(switchover.as_ref());
        let generation = self.meta().generation;
        let fenced = |to: &str| self.spec.member(to).is_some_and(|m| m.fenced);
        let Some(to) = self.annotations().get(SWITCHOVER_ANNOTATION) else {
            return Ok(match &self.spec.switchover {
                Some(req)
                    if !under_way
                        && !fenced(&req.to)
                        && operator_request_is_new(&req.to, switchover.as_ref()) =>
                {
                    Some(request(&req.to, "operator", generation, now))
                }
                _ => switchover,
            });
        };
        let next = match (self.spec.member(to), under_way) {
            // A fenced member must not become hot, not even by command.
            (Some(m), _) if m.fenced => {
                let note = format!("{SWITCHOVER_ANNOTATION}: {to:?} is fenced; unfence it first");
                self.publish(ctx, EventType::Warning, "SwitchoverRejected", note)
                    .await;
                switchover
            }
            // Kept until the hand-over under way has ended.
            (Some(_), true) => return Ok(switchover),
            (Some(_), false) => Some(request(to, "operator", generation, now)),
            (None, _) => {
                let note = format!("{SWITCHOVER_ANNOTATION}: {to:?} is not a member");
                self.publish(ctx, EventType::Warning, "SwitchoverRejected", note)
                    .await;
                switchover
            }
        };
        self.remove_switchover_annotation(ctx, ns).await?;
        Ok(next)
    }

    /// Removes the [`SWITCHOVER_ANNOTATION`] (a merge patch of the group's metadata).
    async fn remove_switchover_annotation(&self, ctx: &Context, ns: &str) -> Result<(), Error> {
        let remove =
            serde_json::json!({"metadata": {"annotations": {SWITCHOVER_ANNOTATION: null}}});
        let api: Api<RedundantGroup> = ctx.api(ns);
        api.patch(
            &self.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&remove),
        )
        .await?;
        Ok(())
    }
}
