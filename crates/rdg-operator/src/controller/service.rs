//! The Service selecting a group's hot member: applied while `spec.service` asks for it,
//! deleted once it does not (only the one the group controls).

use super::{Context, Error, apply_body, apply_params};
use crate::children;
use crate::resource::RedundantGroup;
use k8s_openapi::api::core::v1::Service;
use kube::api::{DeleteParams, Patch, Preconditions};
use kube::runtime::events::EventType;
use kube::runtime::reflector::ObjectRef;
use kube::{Api, ResourceExt};

impl RedundantGroup {
    /// Applies the Service `spec.service` asks for, or removes the one the group had.
    pub(super) async fn apply_service(&self, ctx: &Context, ns: &str) -> Result<(), Error> {
        let Some(svc) = children::service(self) else {
            return self.remove_service(ctx, ns).await;
        };
        ctx.api::<Service>(ns)
            .patch(
                &self.name_any(),
                &apply_params(),
                &Patch::Apply(&apply_body(&svc)),
            )
            .await?;
        Ok(())
    }

    /// Deletes the Service the group had while `spec.service` was set: only one the group
    /// controls (its owner reference), so a Service of the same name someone else made stays.
    async fn remove_service(&self, ctx: &Context, ns: &str) -> Result<(), Error> {
        let name = self.name_any();
        let api: Api<Service> = ctx.api(ns);
        let found = match ctx.cache(|c| &c.services) {
            Some(cache) => cache
                .get(&ObjectRef::new(&name).within(ns))
                .map(|s| Service::clone(&s)),
            None if !ctx.has_caches() => return Ok(()),
            None => api.get_opt(&name).await?,
        };
        let Some(svc) = found else { return Ok(()) };
        if !self.controls(&svc) || svc.metadata.deletion_timestamp.is_some() {
            return Ok(());
        }
        // The precondition makes sure it is the Service seen, not one made since under its name.
        let params = DeleteParams {
            preconditions: Some(Preconditions {
                uid: svc.uid(),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        match api.delete(&name, &params).await {
            Ok(_) => {}
            // Gone already, or replaced by another object: nothing of ours to delete.
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        tracing::info!(group = %name, service = %name, "service deleted: spec.service was removed");
        let note = format!("deleted Service {name} (spec.service was removed)");
        self.publish(ctx, EventType::Normal, "ServiceDeleted", note)
            .await;
        Ok(())
    }
}
