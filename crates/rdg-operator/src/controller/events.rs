//! The Events the controller publishes about a group: what changed in its aggregate (a
//! failover, split brain, a hand-over's progress, members fenced or unfenced), and the steps'
//! own (pods created or replaced, a Service deleted, an invalid spec, a rejected request).

use super::Context;
use crate::aggregate::Aggregate;
use crate::resource::RedundantGroup;
use crate::status::{Phase, RedundantGroupStatus, SwitchoverPhase, SwitchoverStatus};
use kube::Resource;
use kube::runtime::events::{Event, EventType};

impl RedundantGroup {
    /// Events for what changed since `previous`: a failover, split brain, a hand-over's
    /// progress.
    pub(super) async fn announce(
        &self,
        ctx: &Context,
        previous: &RedundantGroupStatus,
        agg: &Aggregate,
        switchover: Option<&SwitchoverStatus>,
    ) {
        if let Some(f) = &agg.last_failover
            && previous.last_failover.as_ref() != Some(f)
        {
            let note = format!(
                "{} took over from {} ({}){}",
                f.to,
                f.from.as_deref().unwrap_or("nobody"),
                f.reason,
                f.detection_ms
                    .map(|d| format!(", detected after {d} ms"))
                    .unwrap_or_default()
            );
            self.publish(ctx, EventType::Warning, "Failover", note)
                .await;
        }
        let fenced: Vec<&str> = self
            .spec
            .members
            .iter()
            .filter(|m| m.fenced)
            .map(|m| m.name.as_str())
            .collect();
        let newly: Vec<&str> = fenced
            .iter()
            .filter(|m| !previous.fenced.iter().any(|p| p == *m))
            .copied()
            .collect();
        if !newly.is_empty() {
            let note = format!(
                "fenced {}: runs with priority 0, never elected hot",
                newly.join(", ")
            );
            self.publish(ctx, EventType::Normal, "Fenced", note).await;
        }
        let unfenced: Vec<&str> = previous
            .fenced
            .iter()
            .filter(|p| !fenced.contains(&p.as_str()) && self.spec.member(p).is_some())
            .map(String::as_str)
            .collect();
        if !unfenced.is_empty() {
            let note = format!(
                "unfenced {}: runs with its priority again",
                unfenced.join(", ")
            );
            self.publish(ctx, EventType::Normal, "Unfenced", note).await;
        }
        if agg.phase == Phase::SplitBrain && previous.phase != Some(Phase::SplitBrain) {
            let note = format!("members claiming hot: {}", agg.claims.join(", "));
            self.publish(ctx, EventType::Warning, "SplitBrain", note)
                .await;
        }
        if let Some(s) = switchover {
            let before = previous.switchover.as_ref();
            let changed = before.map(|b| (b.phase, &b.to, &b.requested))
                != Some((s.phase, &s.to, &s.requested));
            if changed {
                let (kind, reason, note) = match s.phase {
                    SwitchoverPhase::Pending => (
                        EventType::Normal,
                        "SwitchoverRequested",
                        format!("hand-over to {} requested ({})", s.to, s.reason),
                    ),
                    SwitchoverPhase::Done => (
                        EventType::Normal,
                        "SwitchoverDone",
                        format!("{} is hot", s.to),
                    ),
                    SwitchoverPhase::Failed => (
                        EventType::Warning,
                        "SwitchoverFailed",
                        s.message.clone().unwrap_or_default(),
                    ),
                };
                self.publish(ctx, kind, reason, note).await;
            }
        }
    }

    /// Publishes an Event about the group; a failure is logged, never fatal.
    pub(super) async fn publish(&self, ctx: &Context, kind: EventType, reason: &str, note: String) {
        let ev = Event {
            type_: kind,
            reason: reason.to_string(),
            note: Some(note),
            action: "Reconcile".to_string(),
            secondary: None,
        };
        if let Err(e) = ctx.recorder.publish(&ev, &self.object_ref(&())).await {
            tracing::warn!(error = %e, reason, "could not publish event");
        }
    }
}
