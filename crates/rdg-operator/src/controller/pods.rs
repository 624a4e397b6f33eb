//! A group's member pods: found (in the pod cache, or listed), and created or deleted as the
//! rollout plan says.

use super::{Context, Error};
use crate::aggregate::{Aggregate, pod_running};
use crate::children::{self, GROUP_LABEL, hash_of, member_of};
use crate::render::Rendered;
use crate::resource::RedundantGroup;
use crate::rollout::{MemberView, Plan, PodView, plan};
use crate::status::RedundantGroupStatus;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::runtime::events::EventType;
use std::collections::BTreeMap;

/// A group's pods.
pub(super) struct MemberPods {
    /// The pods of the spec's members, by member name.
    pub by_member: BTreeMap<String, Pod>,
    /// Names of pods of members no longer in the spec (not being deleted).
    pub orphans: Vec<String>,
}

/// Whether the plan has a rollout under way: something to create, delete, hand over or wait
/// for.
pub(super) fn under_way(plan: &Plan) -> bool {
    plan.switchover.is_some()
        || !plan.create.is_empty()
        || !plan.delete.is_empty()
        || plan.waiting.is_some()
}

impl RedundantGroup {
    /// The group's pods, from the pod cache, or listed.
    pub(super) async fn member_pods(&self, ctx: &Context, ns: &str) -> Result<MemberPods, Error> {
        let name = self.name_any();
        let pods: Vec<Pod> = match ctx.cache(|c| &c.pods) {
            Some(cache) => {
                let members: Vec<String> =
                    self.spec.members.iter().map(|m| m.name.clone()).collect();
                ctx.cached_pods(cache, ns, &name, &members)
            }
            None => {
                let lp = ListParams::default().labels(&format!("{GROUP_LABEL}={name}"));
                ctx.api::<Pod>(ns).list(&lp).await?.items
            }
        };
        let mut found = MemberPods {
            by_member: BTreeMap::new(),
            orphans: Vec::new(),
        };
        for p in pods {
            match member_of(&p) {
                Some(m) if self.spec.member(&m).is_some() => {
                    found.by_member.insert(m, p);
                }
                _ if p.metadata.deletion_timestamp.is_none() => found.orphans.push(p.name_any()),
                _ => {}
            }
        }
        Ok(found)
    }

    /// What to do with the pods: each member's pod and reported state seen by the rollout,
    /// with `hash` the one up-to-date pods carry and `pending` a hand-over under way.
    pub(super) fn plan_rollout(
        &self,
        pods: &MemberPods,
        hash: &str,
        previous: &RedundantGroupStatus,
        agg: &Aggregate,
        pending: bool,
    ) -> Plan {
        let views: Vec<MemberView> = self
            .spec
            .members
            .iter()
            .map(|m| {
                let pod = pods.by_member.get(&m.name);
                let entry = previous.member(&m.name);
                let counts = pod.is_some_and(pod_running);
                MemberView {
                    name: m.name.clone(),
                    priority: m.effective_priority(),
                    pod: pod.map(|p| PodView {
                        name: p.name_any(),
                        up_to_date: hash_of(p) == Some(hash),
                        running: pod_running(p),
                        deleting: p.metadata.deletion_timestamp.is_some(),
                    }),
                    state: entry.filter(|_| counts).and_then(|e| e.state),
                    net_check_ok: entry.and_then(|e| e.net_check_ok),
                }
            })
            .collect();
        plan(&views, &pods.orphans, agg.hot.as_deref(), pending)
    }

    /// Creates and deletes the pods `plan` says, with an Event for each kind of change.
    pub(super) async fn carry_out(
        &self,
        ctx: &Context,
        ns: &str,
        plan: &Plan,
        rendered: &Rendered,
        hash: &str,
    ) -> Result<(), Error> {
        let name = self.name_any();
        let api: Api<Pod> = ctx.api(ns);
        let mut created = Vec::new();
        for member in &plan.create {
            let spec = self.spec.member(member).expect("planned from the spec");
            let pod = children::pod(self, spec, rendered, hash, &ctx.defaults);
            match api.create(&PostParams::default(), &pod).await {
                Ok(_) => {}
                // Created meanwhile (a stale cache): the next reconcile sees it.
                Err(kube::Error::Api(e)) if e.code == 409 => continue,
                Err(e) => return Err(e.into()),
            }
            tracing::info!(group = %name, member = %member, "pod created");
            created.push(pod.name_any());
        }
        if !created.is_empty() {
            let note = format!("created pod(s) {}", created.join(", "));
            self.publish(ctx, EventType::Normal, "PodsCreated", note)
                .await;
        }
        let mut deleted = Vec::new();
        for (pod, why) in &plan.delete {
            match api.delete(pod, &DeleteParams::default()).await {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 404 => continue,
                Err(e) => return Err(e.into()),
            }
            tracing::info!(group = %name, pod = %pod, reason = %why, "pod deleted");
            deleted.push(format!("{pod} ({why})"));
        }
        if !deleted.is_empty() {
            let note = format!("deleted pod(s) {}", deleted.join(", "));
            self.publish(ctx, EventType::Normal, "PodsReplaced", note)
                .await;
        }
        if let Some(w) = &plan.waiting {
            tracing::info!(group = %name, "{w}");
        }
        Ok(())
    }
}
