//! The ConfigMap holding a group's rendered configuration.

use super::{Context, Error, apply_body, apply_params};
use crate::children::{config_map, config_map_name};
use crate::render::Rendered;
use crate::resource::RedundantGroup;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::ResourceExt;
use kube::api::Patch;
use kube::runtime::reflector::ObjectRef;

impl RedundantGroup {
    /// Applies the ConfigMap of `rendered`, unless the cached one already is it.
    pub(super) async fn apply_config_map(
        &self,
        ctx: &Context,
        ns: &str,
        rendered: &Rendered,
    ) -> Result<(), Error> {
        let want = config_map(self, rendered);
        let name = config_map_name(&self.name_any());
        let cached = ctx
            .cache(|c| &c.config_maps)
            .and_then(|c| c.get(&ObjectRef::new(&name).within(ns)));
        if !cached.is_some_and(|c| self.config_map_is(&c, &want)) {
            ctx.api::<ConfigMap>(ns)
                .patch(&name, &apply_params(), &Patch::Apply(&apply_body(&want)))
                .await?;
        }
        Ok(())
    }

    /// Whether the ConfigMap the API server has (`current`) already is the one to apply
    /// (`want`): same data, our labels, controlled by the group, not being deleted.
    fn config_map_is(&self, current: &ConfigMap, want: &ConfigMap) -> bool {
        current.data == want.data
            && current.binary_data.is_none()
            && current.metadata.deletion_timestamp.is_none()
            && want
                .labels()
                .iter()
                .all(|(k, v)| current.labels().get(k) == Some(v))
            && self.controls(current)
    }
}
