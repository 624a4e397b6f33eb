//! The Kubernetes side of rdg: the `RedundantGroup` custom resource, the controller that runs
//! one host-network pod per member and aggregates the members' reports into the status, and
//! the reporter an agent runs in Kubernetes mode. The data plane never depends on any of it:
//! with the API server down, failover works exactly as on bare metal.

pub mod aggregate;
pub mod children;
pub mod controller;
pub mod crd;
#[cfg(feature = "testing")]
pub mod fake_api;
pub mod http;
pub mod metrics;
pub mod render;
pub mod reporter;
pub mod resource;
pub mod retry;
pub mod rollout;
pub mod status;

pub use resource::{RedundantGroup, RedundantGroupSpec};
pub use status::RedundantGroupStatus;

/// The CRD as YAML, as `rdg crd` prints it and `crds/` holds it.
pub fn crd_yaml() -> String {
    serde_yaml_ng::to_string(&crd::crd()).expect("a CRD always serializes")
}
