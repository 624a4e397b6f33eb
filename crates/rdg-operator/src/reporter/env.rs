//! The environment contract of Kubernetes mode. The controller sets these on the agent
//! container (the downward API fills in namespace, pod and node); `RDG_K8S_GROUP` switches the
//! mode on. Without it nothing changes: the agent runs exactly as on bare metal.

use thiserror::Error;

/// Names the RedundantGroup; when set, the agent runs the reporter.
pub const ENV_GROUP: &str = "RDG_K8S_GROUP";
/// The group's (and the pod's) namespace.
pub const ENV_NAMESPACE: &str = "RDG_K8S_NAMESPACE";
/// This member's pod name (labelled with its role).
pub const ENV_POD: &str = "RDG_K8S_POD";
/// The node the pod runs on (reported in the member entry).
pub const ENV_NODE: &str = "RDG_K8S_NODE";

/// Where this member lives in Kubernetes, read from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct K8sEnv {
    /// RedundantGroup name.
    pub group: String,
    /// Namespace of the group and the pod.
    pub namespace: String,
    /// This member's pod.
    pub pod: String,
    /// The node the pod runs on.
    pub node: String,
}

/// A Kubernetes-mode environment that cannot be used.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum EnvError {
    /// A variable the mode needs is unset or empty.
    #[error(
        "{ENV_GROUP} is set, so {0} must be set too (the controller sets it through the downward API)"
    )]
    Missing(&'static str),
    /// A variable does not hold a Kubernetes object name.
    #[error(
        "{name}={value:?} is not a valid Kubernetes name (lowercase letters, digits, '-' and '.', at most 253)"
    )]
    Invalid {
        /// The variable.
        name: &'static str,
        /// Its value.
        value: String,
    },
}

impl K8sEnv {
    /// Reads the process environment: `Ok(None)` when `RDG_K8S_GROUP` is unset or empty
    /// (bare-metal mode), an error when it is set but the rest is missing or invalid.
    pub fn from_env() -> Result<Option<K8sEnv>, EnvError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Like [`K8sEnv::from_env`], with the variables from `get` (for tests).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Option<K8sEnv>, EnvError> {
        let Some(group) = get(ENV_GROUP).filter(|g| !g.is_empty()) else {
            return Ok(None);
        };
        let var = |name: &'static str, value: Option<String>| -> Result<String, EnvError> {
            let value = value
                .filter(|v| !v.is_empty())
                .ok_or(EnvError::Missing(name))?;
            if valid_name(&value) {
                Ok(value)
            } else {
                Err(EnvError::Invalid { name, value })
            }
        };
        Ok(Some(K8sEnv {
            group: var(ENV_GROUP, Some(group))?,
            namespace: var(ENV_NAMESPACE, get(ENV_NAMESPACE))?,
            pod: var(ENV_POD, get(ENV_POD))?,
            node: var(ENV_NODE, get(ENV_NODE))?,
        }))
    }
}

/// A DNS-1123 subdomain: what Kubernetes accepts as a namespace, pod, node or group name.
fn valid_name(s: &str) -> bool {
    s.len() <= 253
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn no_group_means_bare_metal_mode() {
        assert_eq!(K8sEnv::from_lookup(lookup(&[(ENV_POD, "p")])), Ok(None));
    }

    #[test]
    fn full_environment_is_read() {
        let env = K8sEnv::from_lookup(lookup(&[
            (ENV_GROUP, "infocast"),
            (ENV_NAMESPACE, "broadcast"),
            (ENV_POD, "infocast-ics-a"),
            (ENV_NODE, "node-1.example"),
        ]));
        assert_eq!(
            env,
            Ok(Some(K8sEnv {
                group: "infocast".into(),
                namespace: "broadcast".into(),
                pod: "infocast-ics-a".into(),
                node: "node-1.example".into(),
            }))
        );
    }

    #[test]
    fn group_without_namespace_is_an_error() {
        let env = K8sEnv::from_lookup(lookup(&[
            (ENV_GROUP, "infocast"),
            (ENV_POD, "p"),
            (ENV_NODE, "n"),
        ]));
        assert_eq!(env, Err(EnvError::Missing(ENV_NAMESPACE)));
        let msg = env.unwrap_err().to_string();
        assert!(msg.contains("RDG_K8S_NAMESPACE"), "{msg}");
    }

    #[test]
    fn empty_group_is_off_and_invalid_values_are_errors() {
        assert_eq!(K8sEnv::from_lookup(lookup(&[(ENV_GROUP, "")])), Ok(None));
        assert!(matches!(
            K8sEnv::from_lookup(lookup(&[
                (ENV_GROUP, "Info_Cast"),
                (ENV_NAMESPACE, "ns"),
                (ENV_POD, "p"),
                (ENV_NODE, "n"),
            ])),
            Err(EnvError::Invalid {
                name: ENV_GROUP,
                ..
            })
        ));
    }
}
