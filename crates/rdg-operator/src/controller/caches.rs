//! What the controller's watches have seen of the groups' children, and the index of the pod
//! cache by group that spares a reconcile a scan of the whole cache.

use super::Context;
use crate::children::{self, GROUP_LABEL};
use futures_util::FutureExt;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Service};
use kube::ResourceExt;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

/// The objects carrying [`GROUP_LABEL`], as the controller's watches see them. They may lag
/// behind the API server: a reconcile that acts on a stale entry gets a 409 or 404 it
/// tolerates, and the watch event that brings the entry up to date triggers another reconcile.
#[derive(Clone)]
pub struct Caches {
    /// Member pods.
    pub pods: Store<Pod>,
    /// The rendered configuration ConfigMaps.
    pub config_maps: Store<ConfigMap>,
    /// The Services selecting the hot members.
    pub services: Store<Service>,
}

/// Names of the pods in the pod cache by namespace and group: kept up to date from the pod
/// watch's events by [`super::run`] ([`Context::note_pod_event`]); a group not in it yet is
/// found by one scan. It may name pods that are gone (each is looked up in the cache).
#[derive(Default)]
pub(super) struct PodIndex(Mutex<HashMap<(String, String), BTreeSet<String>>>);

impl PodIndex {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), BTreeSet<String>>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Context {
    /// Reads the group's children from `caches` instead of asking the API server; [`super::run`]
    /// sets its own. Returns false when caches were set already.
    pub fn use_caches(&self, caches: Caches) -> bool {
        self.caches.set(caches).is_ok()
    }

    /// Keeps the index of the pod cache by group up to date with an event of the pod watch.
    pub fn note_pod_event(&self, event: &watcher::Event<Pod>) {
        let (pod, present) = match event {
            watcher::Event::Apply(p) | watcher::Event::InitApply(p) => (p, true),
            watcher::Event::Delete(p) => (p, false),
            watcher::Event::Init | watcher::Event::InitDone => return,
        };
        let (Some(ns), Some(group)) = (pod.namespace(), pod.labels().get(GROUP_LABEL)) else {
            return;
        };
        let mut index = self.pod_names.lock();
        let key = (ns, group.clone());
        if present {
            index.entry(key).or_default().insert(pod.name_any());
        } else if let Some(names) = index.get_mut(&key) {
            names.remove(&pod.name_any());
            // A deleted group's entry goes with its last pod.
            if names.is_empty() {
                index.remove(&key);
            }
        }
    }

    /// The pods in the pod cache labelled with group `group` of namespace `ns`, or of its
    /// `members` (whose pods the index may not know yet).
    pub(super) fn cached_pods(
        &self,
        cache: &Store<Pod>,
        ns: &str,
        group: &str,
        members: &[String],
    ) -> Vec<Pod> {
        let key = (ns.to_string(), group.to_string());
        let known = self.pod_names.lock().get(&key).cloned();
        let known = known.unwrap_or_else(|| {
            let names: BTreeSet<String> = cache
                .state_filter(|p| {
                    p.metadata.namespace.as_deref() == Some(ns)
                        && p.labels().get(GROUP_LABEL).map(String::as_str) == Some(group)
                })
                .iter()
                .map(|p| p.name_any())
                .collect();
            self.pod_names
                .lock()
                .entry(key)
                .or_default()
                .extend(names.iter().cloned());
            names
        });
        let expected = members.iter().map(|m| children::pod_name(group, m));
        let names: BTreeSet<String> = known.into_iter().chain(expected).collect();
        names
            .iter()
            .filter_map(|n| cache.get(&ObjectRef::new(n).within(ns)))
            .filter(|p| p.labels().get(GROUP_LABEL).map(String::as_str) == Some(group))
            .map(|p| Pod::clone(&p))
            .collect()
    }

    /// A cache, once its first listing is complete (before it, a missing object proves
    /// nothing).
    pub(super) fn cache<K>(&self, pick: impl Fn(&Caches) -> &Store<K>) -> Option<&Store<K>>
    where
        K: kube::runtime::reflector::Lookup + Clone + 'static,
        K::DynamicType: Eq + std::hash::Hash + Clone,
    {
        let store = pick(self.caches.get()?);
        matches!(store.wait_until_ready().now_or_never(), Some(Ok(()))).then_some(store)
    }

    /// Whether the context has caches at all (it has none outside [`super::run`]).
    pub(super) fn has_caches(&self) -> bool {
        self.caches.get().is_some()
    }
}
