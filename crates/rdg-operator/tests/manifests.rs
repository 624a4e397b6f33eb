//! Typed checks of what the Helm chart renders: `manifests/install.yaml` always, and every
//! `*.yaml` in `$RDG_RENDERED_DIR` when it is set (`.ci/kubernetes-checks` renders the chart
//! with each of its value sets into `target/rendered/` and runs this test again).
//!
//! - Every object parses into its k8s-openapi type, and re-serialising the typed value gives
//!   back every field of the original: k8s-openapi ignores unknown fields, so a misspelled key
//!   would otherwise pass silently (and the API server would drop it too).
//! - The CRD in the chart and in each rendered set is `rdg_operator::crd_yaml()`.
//! - RBAC grants the controller and the member pods exactly the rights the operator and the
//!   agents use, no wildcard, nothing more.
//! - The controller Deployment fits the rest: one replica, Recreate, non-root, member pods get
//!   the chart's own image and a ServiceAccount that exists, probes and Service on the metrics
//!   port.
//! - The PodMonitor of the agents (and of the carousel containers' `carousel-metrics` port)
//!   selects member pods and turns their group and member labels
//!   into the target labels the alerting rules use.
//!
//! `RDG_UPDATE_CHART_CRD=1 cargo test -p rdg-operator --test manifests` rewrites the chart's
//! CRD from the types.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use rdg_operator::children::{CAROUSEL_METRICS_PORT_NAME, GROUP_LABEL, MEMBER_LABEL};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const CHART_CRD: &str = "charts/rdg-operator/crds/redundantgroups.rdg.infocast.io.yaml";
const INSTALL: &str = "manifests/install.yaml";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// One YAML document, with where it came from for messages.
#[derive(Debug, Clone)]
struct Doc {
    origin: String,
    value: Value,
}

impl Doc {
    fn kind(&self) -> &str {
        self.value["kind"].as_str().unwrap_or("")
    }
    fn name(&self) -> &str {
        self.value["metadata"]["name"].as_str().unwrap_or("")
    }
    fn namespace(&self) -> Option<&str> {
        self.value["metadata"]["namespace"].as_str()
    }
    fn typed<T: DeserializeOwned>(&self) -> T {
        serde_json::from_value(self.value.clone())
            .unwrap_or_else(|e| panic!("{}: {e}", self.origin))
    }
}

fn parse_docs(origin: &str, text: &str) -> Vec<Doc> {
    let mut docs = Vec::new();
    for (i, de) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        let yaml = serde_yaml_ng::Value::deserialize(de)
            .unwrap_or_else(|e| panic!("{origin}: document {i} is not YAML: {e}"));
        if yaml.is_null() {
            continue; // only comments, or an empty document between two `---`
        }
        let value = serde_json::to_value(&yaml)
            .unwrap_or_else(|e| panic!("{origin}: document {i} is not JSON-like: {e}"));
        let mut doc = Doc {
            origin: format!("{origin}#{i}"),
            value,
        };
        doc.origin = format!("{origin}#{i} ({} {})", doc.kind(), doc.name());
        docs.push(doc);
    }
    docs
}

fn read_docs(path: &Path) -> Vec<Doc> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    parse_docs(&path.display().to_string(), &text)
}

// ---------------------------------------------------------------------------------------
// Typed parse with unknown fields rejected

/// prometheus-operator's ServiceMonitor, the fields the chart uses (k8s-openapi has no type
/// for it). A field the chart sets that is missing here fails the round trip like any other.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ServiceMonitor {
    api_version: String,
    kind: String,
    metadata: ObjectMeta,
    spec: ServiceMonitorSpec,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ServiceMonitorSpec {
    selector: LabelSelector,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    namespace_selector: Option<NamespaceSelector>,
    endpoints: Vec<Endpoint>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct NamespaceSelector {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    any: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    match_names: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Endpoint {
    port: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    interval: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    scrape_timeout: Option<String>,
}

/// prometheus-operator's PodMonitor (the member pods' agents), the fields the chart uses.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PodMonitor {
    api_version: String,
    kind: String,
    metadata: ObjectMeta,
    spec: PodMonitorSpec,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PodMonitorSpec {
    selector: LabelSelector,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    namespace_selector: Option<NamespaceSelector>,
    pod_metrics_endpoints: Vec<PodMetricsEndpoint>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PodMetricsEndpoint {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    port: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    interval: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    scrape_timeout: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    relabelings: Vec<Relabeling>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Relabeling {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    source_labels: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    target_label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    regex: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    replacement: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    action: Option<String>,
}

/// prometheus-operator's PrometheusRule (the alerts), the fields the chart uses.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PrometheusRule {
    api_version: String,
    kind: String,
    metadata: ObjectMeta,
    spec: PrometheusRuleSpec,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PrometheusRuleSpec {
    groups: Vec<RuleGroup>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RuleGroup {
    name: String,
    rules: Vec<AlertRule>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AlertRule {
    alert: String,
    expr: String,
    #[serde(default, rename = "for", skip_serializing_if = "Option::is_none")]
    for_: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    annotations: BTreeMap<String, String>,
}

/// A pod label as Prometheus' Kubernetes discovery names it (`__meta_kubernetes_pod_label_*`).
fn sanitize(label: &str) -> String {
    label
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// Paths of `original` that the round trip through the type lost or changed.
fn lost(original: &Value, back: &Value, path: &str, out: &mut Vec<String>) {
    match (original, back) {
        (Value::Object(o), Value::Object(b)) => {
            for (k, v) in o {
                let p = format!("{path}.{k}");
                match b.get(k) {
                    Some(bv) => lost(v, bv, &p, out),
                    None => out.push(format!("{p} (unknown field)")),
                }
            }
        }
        (Value::Array(o), Value::Array(b)) if o.len() == b.len() => {
            for (i, (ov, bv)) in o.iter().zip(b).enumerate() {
                lost(ov, bv, &format!("{path}[{i}]"), out);
            }
        }
        _ if original == back => {}
        _ => out.push(format!("{path} ({original} read back as {back})")),
    }
}

fn round_trip<T: DeserializeOwned + Serialize>(v: &Value) -> Result<(), String> {
    let typed: T = serde_json::from_value(v.clone()).map_err(|e| e.to_string())?;
    let back = serde_json::to_value(&typed).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    lost(v, &back, "", &mut out);
    if out.is_empty() {
        Ok(())
    } else {
        Err(out.join(", "))
    }
}

/// Parses a document into its k8s-openapi type; an unknown kind, a misspelled or mistyped
/// field fails with its path.
fn check_typed(v: &Value) -> Result<(), String> {
    let api = v["apiVersion"].as_str().unwrap_or("");
    let kind = v["kind"].as_str().unwrap_or("");
    match (api, kind) {
        ("v1", "Namespace") => round_trip::<Namespace>(v),
        ("v1", "ServiceAccount") => round_trip::<ServiceAccount>(v),
        ("v1", "Service") => round_trip::<Service>(v),
        ("v1", "ConfigMap") => round_trip::<ConfigMap>(v),
        ("apps/v1", "Deployment") => round_trip::<Deployment>(v),
        ("rbac.authorization.k8s.io/v1", "ClusterRole") => round_trip::<ClusterRole>(v),
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => {
            round_trip::<ClusterRoleBinding>(v)
        }
        ("rbac.authorization.k8s.io/v1", "Role") => round_trip::<Role>(v),
        ("rbac.authorization.k8s.io/v1", "RoleBinding") => round_trip::<RoleBinding>(v),
        ("apiextensions.k8s.io/v1", "CustomResourceDefinition") => {
            round_trip::<CustomResourceDefinition>(v)
        }
        ("monitoring.coreos.com/v1", "ServiceMonitor") => round_trip::<ServiceMonitor>(v),
        ("monitoring.coreos.com/v1", "PodMonitor") => round_trip::<PodMonitor>(v),
        ("monitoring.coreos.com/v1", "PrometheusRule") => round_trip::<PrometheusRule>(v),
        _ => Err(format!(
            "no type known for apiVersion {api:?} kind {kind:?}: add it to check_typed"
        )),
    }
}

// ---------------------------------------------------------------------------------------
// CRD

fn generated_crd() -> Value {
    let yaml: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&rdg_operator::crd_yaml()).expect("crd_yaml() is YAML");
    serde_json::to_value(yaml).expect("JSON-like")
}

fn check_crds(docs: &[Doc]) -> Result<(), String> {
    let crds: Vec<&Doc> = docs
        .iter()
        .filter(|d| d.kind() == "CustomResourceDefinition")
        .collect();
    match crds.as_slice() {
        [crd] if crd.value == generated_crd() => Ok(()),
        [crd] => Err(format!(
            "{} differs from rdg_operator::crd_yaml(): regenerate the chart's CRD with \
             RDG_UPDATE_CHART_CRD=1 cargo test -p rdg-operator --test manifests, then re-render \
             (.ci/kubernetes-checks --update)",
            crd.origin
        )),
        _ => Err(format!(
            "expected exactly one CustomResourceDefinition, found {}",
            crds.len()
        )),
    }
}

// ---------------------------------------------------------------------------------------
// RBAC

/// (namespace or "*" for cluster-wide, API group, resource, verb)
type Grant = (String, String, String, String);

fn rules_of(docs: &[Doc], kind: &str, name: &str, ns: Option<&str>) -> Result<Vec<Value>, String> {
    let role = docs
        .iter()
        .find(|d| {
            d.kind() == kind && d.name() == name && (kind == "ClusterRole" || d.namespace() == ns)
        })
        .ok_or_else(|| format!("{kind} {name} (namespace {ns:?}) is bound but not rendered"))?;
    Ok(role.value["rules"].as_array().cloned().unwrap_or_default())
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Everything ServiceAccount `ns/sa` may do, through every binding in `docs`. A wildcard or
/// a resourceNames restriction anywhere is an error (none is wanted).
fn grants_of(docs: &[Doc], sa: &str, ns: &str) -> Result<BTreeSet<Grant>, String> {
    let mut out = BTreeSet::new();
    for b in docs
        .iter()
        .filter(|d| d.kind() == "ClusterRoleBinding" || d.kind() == "RoleBinding")
    {
        let binds_sa = b.value["subjects"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|s| s["kind"] == "ServiceAccount" && s["name"] == sa && s["namespace"] == ns);
        if !binds_sa {
            continue;
        }
        let scope = match b.kind() {
            "ClusterRoleBinding" => "*".to_string(),
            _ => b
                .namespace()
                .ok_or_else(|| format!("{}: RoleBinding without namespace", b.origin))?
                .to_string(),
        };
        let role_kind = b.value["roleRef"]["kind"].as_str().unwrap_or("");
        let role_name = b.value["roleRef"]["name"].as_str().unwrap_or("");
        for rule in rules_of(docs, role_kind, role_name, b.namespace())? {
            if rule.get("resourceNames").is_some() || rule.get("nonResourceURLs").is_some() {
                return Err(format!("{role_kind} {role_name}: unexpected rule {rule}"));
            }
            for g in strings(&rule["apiGroups"]) {
                for r in strings(&rule["resources"]) {
                    for v in strings(&rule["verbs"]) {
                        if [&g, &r, &v].iter().any(|s| s.contains('*')) {
                            return Err(format!(
                                "{role_kind} {role_name}: wildcard in {g:?} {r:?} {v:?}"
                            ));
                        }
                        out.insert((scope.clone(), g.clone(), r.clone(), v));
                    }
                }
            }
        }
    }
    Ok(out)
}

fn expand(scope: &str, table: &[(&str, &[&str], &[&str])]) -> BTreeSet<Grant> {
    let mut out = BTreeSet::new();
    for (group, resources, verbs) in table {
        for r in *resources {
            for v in *verbs {
                out.insert((scope.into(), (*group).into(), (*r).into(), (*v).into()));
            }
        }
    }
    out
}

/// What the controller does (crates/rdg-operator/src/controller.rs): watches groups and
/// removes the switchover annotation (patch), applies the status, creates/deletes pods,
/// server-side-applies ConfigMaps and Services, deletes a group's Service once `spec.service` is
/// removed, publishes events.k8s.io Events.
fn controller_grants(scope: &str) -> BTreeSet<Grant> {
    expand(
        scope,
        &[
            (
                "rdg.infocast.io",
                &["redundantgroups"],
                &["get", "list", "watch", "patch"],
            ),
            (
                "rdg.infocast.io",
                &["redundantgroups/status"],
                &["get", "patch", "update"],
            ),
            ("", &["pods"], &["get", "list", "watch", "create", "delete"]),
            (
                "",
                &["configmaps"],
                &["get", "list", "watch", "create", "patch"],
            ),
            (
                "",
                &["services"],
                &["get", "list", "watch", "create", "patch", "delete"],
            ),
            ("events.k8s.io", &["events"], &["create", "patch"]),
        ],
    )
}

/// What an agent in Kubernetes mode does: reads its group, applies its own status entry,
/// labels its own pod, publishes Events, server-side-applies its agent-report ConfigMap
/// (`reporter::snapshot`: patch, create when missing). Never reads ConfigMaps, never deletes.
fn member_grants(ns: &str) -> BTreeSet<Grant> {
    expand(
        ns,
        &[
            ("rdg.infocast.io", &["redundantgroups"], &["get", "watch"]),
            ("rdg.infocast.io", &["redundantgroups/status"], &["patch"]),
            ("", &["pods"], &["get", "patch"]),
            ("events.k8s.io", &["events"], &["create", "patch"]),
            ("", &["configmaps"], &["create", "patch"]),
        ],
    )
}

fn diff_grants(who: &str, got: &BTreeSet<Grant>, want: &BTreeSet<Grant>) -> Result<(), String> {
    let extra: Vec<_> = got.difference(want).collect();
    let missing: Vec<_> = want.difference(got).collect();
    if extra.is_empty() && missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{who}: granted but not needed {extra:?}; needed but not granted {missing:?}"
        ))
    }
}

// ---------------------------------------------------------------------------------------
// The controller Deployment and what it refers to

fn env_of(c: &k8s_openapi::api::core::v1::Container, name: &str) -> Option<String> {
    c.env
        .iter()
        .flatten()
        .find(|e| e.name == name)
        .and_then(|e| e.value.clone())
}

/// One rendered set: every object typed, the CRD, the Deployment and RBAC consistent.
fn check_set(docs: &[Doc]) -> Result<(), String> {
    let mut errors = Vec::new();
    for d in docs {
        if let Err(e) = check_typed(&d.value) {
            errors.push(format!("{}: {e}", d.origin));
        }
    }
    if !errors.is_empty() {
        return Err(errors.join("\n"));
    }
    check_crds(docs)?;

    let deployments: Vec<&Doc> = docs.iter().filter(|d| d.kind() == "Deployment").collect();
    let [dep_doc] = deployments.as_slice() else {
        return Err(format!(
            "expected one Deployment, found {}",
            deployments.len()
        ));
    };
    let dep: Deployment = dep_doc.typed();
    let ns = dep_doc
        .namespace()
        .ok_or("the Deployment has no namespace")?;
    let spec = dep.spec.as_ref().ok_or("Deployment without spec")?;
    if spec.replicas != Some(1) {
        return Err(format!(
            "replicas {:?}: the controller has no leader election",
            spec.replicas
        ));
    }
    let strategy = spec.strategy.as_ref().and_then(|s| s.type_.as_deref());
    if strategy != Some("Recreate") {
        return Err(format!(
            "strategy {strategy:?}, want Recreate (never two controllers)"
        ));
    }
    let pod = spec
        .template
        .spec
        .as_ref()
        .ok_or("pod template without spec")?;
    let psc = pod.security_context.clone().unwrap_or_default();
    if psc.run_as_non_root != Some(true) || psc.run_as_user != Some(65532) {
        return Err("the controller must run as non-root uid 65532".into());
    }
    let [c] = pod.containers.as_slice() else {
        return Err("expected one container in the controller pod".into());
    };
    if c.args.as_deref() != Some(&["controller".to_string()][..]) {
        return Err(format!("controller args {:?}, want [controller]", c.args));
    }
    let sc = c.security_context.clone().unwrap_or_default();
    let dropped = sc.capabilities.and_then(|c| c.drop).unwrap_or_default();
    if sc.allow_privilege_escalation != Some(false) || dropped != ["ALL"] {
        return Err("the controller container must drop ALL capabilities, no escalation".into());
    }
    let image = c.image.clone().ok_or("controller without image")?;
    if env_of(c, "RDG_IMAGE").as_deref() != Some(&image) {
        return Err(format!(
            "RDG_IMAGE {:?} is not the controller's own image {image:?}",
            env_of(c, "RDG_IMAGE")
        ));
    }
    let listen = env_of(c, "RDG_METRICS_LISTEN").unwrap_or_else(|| "0.0.0.0:8080".into());
    let metrics_port: i32 = listen
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| format!("RDG_METRICS_LISTEN {listen:?} has no port"))?;
    let port = c
        .ports
        .iter()
        .flatten()
        .find(|p| p.name.as_deref() == Some("metrics"))
        .ok_or("no container port named metrics (the probes use it)")?;
    if port.container_port != metrics_port {
        return Err(format!(
            "container port metrics {} but the controller listens on {metrics_port}",
            port.container_port
        ));
    }
    for (what, probe) in [
        ("liveness", &c.liveness_probe),
        ("readiness", &c.readiness_probe),
    ] {
        let path = probe
            .as_ref()
            .and_then(|p| p.http_get.as_ref())
            .and_then(|h| h.path.clone());
        let want = if what == "liveness" {
            "/healthz"
        } else {
            "/readyz"
        };
        if path.as_deref() != Some(want) {
            return Err(format!("{what} probe path {path:?}, want {want}"));
        }
    }

    // The Service (when rendered) selects the controller pod's metrics port.
    let pod_labels = spec
        .template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    for s in docs.iter().filter(|d| d.kind() == "Service") {
        let svc: Service = s.typed();
        let sspec = svc.spec.unwrap_or_default();
        let selector = sspec.selector.unwrap_or_default();
        if selector.is_empty() || !selector.iter().all(|(k, v)| pod_labels.get(k) == Some(v)) {
            return Err(format!(
                "{}: selector {selector:?} misses the controller pod",
                s.origin
            ));
        }
        for p in sspec.ports.iter().flatten() {
            let target = serde_json::to_value(&p.target_port).unwrap_or_default();
            if target != "metrics" && target != metrics_port {
                return Err(format!(
                    "{}: targetPort {target} is not the metrics port",
                    s.origin
                ));
            }
        }
    }
    for m in docs.iter().filter(|d| d.kind() == "ServiceMonitor") {
        let svc = docs
            .iter()
            .find(|d| d.kind() == "Service")
            .ok_or_else(|| format!("{}: no Service to scrape", m.origin))?;
        let want = &m.value["spec"]["selector"]["matchLabels"];
        let have = &svc.value["metadata"]["labels"];
        let matches = want
            .as_object()
            .is_some_and(|w| !w.is_empty() && w.iter().all(|(k, v)| &have[k] == v));
        if !matches {
            return Err(format!(
                "{}: selector {want} does not select {}",
                m.origin, svc.origin
            ));
        }
        let svc_ports: Vec<&str> = svc.value["spec"]["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["name"].as_str())
            .collect();
        for e in m.value["spec"]["endpoints"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if !svc_ports.contains(&e["port"].as_str().unwrap_or("")) {
                return Err(format!(
                    "{}: endpoint port {} is not a Service port",
                    m.origin, e["port"]
                ));
            }
        }
    }

    // The PodMonitor selects member pods by the labels the controller gives them and turns
    // their group and member labels into the target labels the alerting rules rely on, for
    // the agent and for the carousel container's named metrics port.
    for m in docs.iter().filter(|d| d.kind() == "PodMonitor") {
        let relabel = |label: &str| format!("__meta_kubernetes_pod_label_{}", sanitize(label));
        let endpoints = m.value["spec"]["podMetricsEndpoints"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for (i, endpoint) in endpoints.iter().enumerate() {
            let relabelings = endpoint["relabelings"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            for (label, target) in [(GROUP_LABEL, "group"), (MEMBER_LABEL, "member")] {
                let found = relabelings.iter().any(|r| {
                    r["sourceLabels"][0].as_str() == Some(relabel(label).as_str())
                        && r["targetLabel"] == target
                });
                if !found {
                    return Err(format!(
                        "{}: endpoint {i}: no relabeling of the pod label {label} into {target}",
                        m.origin
                    ));
                }
            }
        }
        if !endpoints
            .iter()
            .any(|e| e["port"].as_str() == Some(CAROUSEL_METRICS_PORT_NAME))
        {
            return Err(format!(
                "{}: does not scrape the carousel's port {CAROUSEL_METRICS_PORT_NAME}",
                m.origin
            ));
        }
        if m.value["spec"]["selector"]["matchExpressions"][0]["key"] != MEMBER_LABEL {
            return Err(format!(
                "{}: does not select pods by {MEMBER_LABEL}",
                m.origin
            ));
        }
    }

    // RBAC: the controller's ServiceAccount exists and may do exactly what it needs, in the
    // watched namespace or everywhere.
    let sa = pod
        .service_account_name
        .clone()
        .ok_or("the controller pod names no ServiceAccount")?;
    let has_sa = |name: &str, ns: &str| {
        docs.iter()
            .any(|d| d.kind() == "ServiceAccount" && d.name() == name && d.namespace() == Some(ns))
    };
    if !has_sa(&sa, ns) {
        return Err(format!(
            "ServiceAccount {ns}/{sa} of the controller is not rendered"
        ));
    }
    let watch = env_of(c, "RDG_WATCH_NAMESPACE");
    let scope = watch.clone().unwrap_or_else(|| "*".into());
    diff_grants(
        &format!("controller {ns}/{sa}"),
        &grants_of(docs, &sa, ns)?,
        &controller_grants(&scope),
    )?;

    // Member pods: the ServiceAccount the controller gives them exists in some namespaces,
    // each with exactly the member rights; the controller sees those namespaces.
    let member_sa = env_of(c, "RDG_MEMBER_SERVICE_ACCOUNT").unwrap_or_else(|| "rdg-member".into());
    let member_namespaces: Vec<&str> = docs
        .iter()
        .filter(|d| d.kind() == "ServiceAccount" && d.name() == member_sa)
        .filter_map(|d| d.namespace())
        .collect();
    if member_namespaces.is_empty() {
        return Err(format!(
            "no ServiceAccount {member_sa} for member pods is rendered"
        ));
    }
    // Member pods pull the controller's image with the controller's pull secrets, which they
    // can only get through their ServiceAccount.
    let pull = serde_json::to_value(&pod.image_pull_secrets).unwrap_or_default();
    for d in docs
        .iter()
        .filter(|d| d.kind() == "ServiceAccount" && d.name() == member_sa)
    {
        let sa_pull = d
            .value
            .get("imagePullSecrets")
            .cloned()
            .unwrap_or(Value::Null);
        if sa_pull != pull {
            return Err(format!(
                "{}: imagePullSecrets {sa_pull}, but the controller pod (whose image member pods \
                 run) has {pull}",
                d.origin
            ));
        }
    }
    let mut want = BTreeSet::new();
    for mns in &member_namespaces {
        if let Some(w) = &watch
            && w != mns
        {
            return Err(format!(
                "members in {mns} but the controller watches only {w}"
            ));
        }
        want.extend(member_grants(mns));
    }
    let mut got = BTreeSet::new();
    for mns in &member_namespaces {
        got.extend(grants_of(docs, &member_sa, mns)?);
    }
    diff_grants(&format!("member ServiceAccount {member_sa}"), &got, &want)?;
    Ok(())
}

fn install_docs() -> Vec<Doc> {
    read_docs(&repo().join(INSTALL))
}

// ---------------------------------------------------------------------------------------
// Tests

#[test]
fn chart_crd_is_the_generated_crd() {
    let path = repo().join(CHART_CRD);
    if std::env::var_os("RDG_UPDATE_CHART_CRD").is_some() {
        let text = format!(
            "# Generated from crates/rdg-operator (rdg_operator::crd_yaml(), as `rdg crd` prints \
             it); do not edit.\n# Regenerate: RDG_UPDATE_CHART_CRD=1 cargo test -p rdg-operator \
             --test manifests\n{}",
            rdg_operator::crd_yaml()
        );
        std::fs::write(&path, text).expect("write the chart's CRD");
    }
    let docs = read_docs(&path);
    if let Err(e) = check_crds(&docs) {
        panic!("{e}");
    }
    check_typed(&docs[0].value).unwrap_or_else(|e| panic!("{CHART_CRD}: {e}"));
}

#[test]
fn install_yaml_passes_every_check() {
    let docs = install_docs();
    let kinds: BTreeMap<&str, usize> = docs.iter().fold(BTreeMap::new(), |mut m, d| {
        *m.entry(d.kind()).or_default() += 1;
        m
    });
    eprintln!("{INSTALL}: {} objects {kinds:?}", docs.len());
    if let Err(e) = check_set(&docs) {
        panic!("{INSTALL}:\n{e}");
    }
    // kubectl apply -f from nothing: the namespace comes first, then the CRD.
    assert_eq!(
        docs[0].kind(),
        "Namespace",
        "{INSTALL} must start with its Namespace"
    );
    assert_eq!(docs[1].kind(), "CustomResourceDefinition");
}

#[test]
fn rendered_sets_pass_every_check() {
    let Some(dir) = std::env::var_os("RDG_RENDERED_DIR") else {
        eprintln!(
            "RDG_RENDERED_DIR not set: only {INSTALL} is checked (see .ci/kubernetes-checks)"
        );
        return;
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("RDG_RENDERED_DIR {}: {e}", Path::new(&dir).display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no *.yaml in RDG_RENDERED_DIR");
    let mut failures = Vec::new();
    for f in &files {
        let docs = read_docs(f);
        eprintln!("{}: {} objects", f.display(), docs.len());
        if let Err(e) = check_set(&docs) {
            failures.push(format!("{}:\n{e}", f.display()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

// Negative tests: each breaks install.yaml in one way and expects the checks to say so.

fn mutated(f: impl Fn(&mut Vec<Doc>)) -> Result<(), String> {
    let mut docs = install_docs();
    f(&mut docs);
    check_set(&docs)
}

fn doc_mut<'a>(docs: &'a mut [Doc], kind: &str, name_part: &str) -> &'a mut Value {
    &mut docs
        .iter_mut()
        .find(|d| d.kind() == kind && d.name().contains(name_part))
        .unwrap_or_else(|| panic!("no {kind} *{name_part}* in {INSTALL}"))
        .value
}

#[test]
fn misspelled_key_is_rejected() {
    let err = mutated(|docs| {
        let spec = &mut doc_mut(docs, "Deployment", "controller")["spec"]["template"]["spec"];
        let sa = spec
            .as_object_mut()
            .unwrap()
            .remove("serviceAccountName")
            .unwrap();
        spec["serviceAcountName"] = sa;
    })
    .unwrap_err();
    assert!(
        err.contains(".spec.template.spec.serviceAcountName (unknown field)"),
        "{err}"
    );

    let err = mutated(|docs| {
        let crd = doc_mut(docs, "CustomResourceDefinition", "redundantgroups");
        crd["spec"]["versions"][0]["additionalPrinterColumns"][0]["jsonpat"] = "x".into();
    })
    .unwrap_err();
    assert!(err.contains("jsonpat (unknown field)"), "{err}");

    let unknown = check_typed(&serde_json::json!({"apiVersion": "v1", "kind": "Pood"}));
    assert!(unknown.unwrap_err().contains("no type known"));
}

#[test]
fn mistyped_value_is_rejected() {
    let err = mutated(|docs| {
        doc_mut(docs, "Deployment", "controller")["spec"]["replicas"] = "one".into();
    })
    .unwrap_err();
    assert!(err.contains("invalid type"), "{err}");
}

#[test]
fn wildcard_or_extra_rbac_grant_is_rejected() {
    let err = mutated(|docs| {
        doc_mut(docs, "Role", "member")["rules"][1]["verbs"] = serde_json::json!(["*"]);
    })
    .unwrap_err();
    assert!(err.contains("wildcard"), "{err}");

    let err = mutated(|docs| {
        doc_mut(docs, "Role", "member")["rules"][2]["verbs"] =
            serde_json::json!(["get", "patch", "delete"]);
    })
    .unwrap_err();
    assert!(
        err.contains("granted but not needed") && err.contains("\"delete\""),
        "{err}"
    );

    // The agents write their report ConfigMap but never read others (the group's
    // configuration) or delete any.
    let err = mutated(|docs| {
        let rules = doc_mut(docs, "Role", "member")["rules"]
            .as_array_mut()
            .unwrap();
        let cms = rules
            .iter_mut()
            .find(|r| r["resources"] == serde_json::json!(["configmaps"]))
            .expect("the members' ConfigMap rule");
        cms["verbs"] = serde_json::json!(["get", "create", "patch", "delete"]);
    })
    .unwrap_err();
    assert!(
        err.contains("configmaps") && err.contains("\"get\"") && err.contains("\"delete\""),
        "{err}"
    );
}

#[test]
fn missing_rbac_grant_is_rejected() {
    let err = mutated(|docs| {
        // The agents could no longer write their status entries.
        doc_mut(docs, "Role", "member")["rules"][1]["verbs"] = serde_json::json!(["get"]);
    })
    .unwrap_err();
    assert!(
        err.contains("needed but not granted") && err.contains("redundantgroups/status"),
        "{err}"
    );

    let err = mutated(|docs| {
        // The agents could no longer keep their /status and /metrics for support bundles.
        let rules = doc_mut(docs, "Role", "member")["rules"]
            .as_array_mut()
            .unwrap();
        rules.retain(|r| r["resources"] != serde_json::json!(["configmaps"]));
    })
    .unwrap_err();
    assert!(
        err.contains("needed but not granted") && err.contains("configmaps"),
        "{err}"
    );

    let err = mutated(|docs| {
        let rules = doc_mut(docs, "ClusterRole", "controller")["rules"]
            .as_array_mut()
            .unwrap();
        let events = rules
            .iter_mut()
            .find(|r| r["apiGroups"] == serde_json::json!(["events.k8s.io"]))
            .expect("the controller's Events rule");
        events["apiGroups"] = serde_json::json!([""]);
    })
    .unwrap_err();
    assert!(err.contains("events.k8s.io"), "{err}");
}

#[test]
fn inconsistent_deployment_is_rejected() {
    let err = mutated(|docs| {
        let c = &mut doc_mut(docs, "Deployment", "controller")["spec"]["template"]["spec"]["containers"][0];
        c["image"] = "example.net/other:1".into();
    })
    .unwrap_err();
    assert!(err.contains("RDG_IMAGE"), "{err}");

    let err = mutated(|docs| {
        doc_mut(docs, "Deployment", "controller")["spec"]["strategy"]["type"] =
            "RollingUpdate".into();
    })
    .unwrap_err();
    assert!(err.contains("Recreate"), "{err}");

    let err = mutated(|docs| {
        docs.retain(|d| !(d.kind() == "ServiceAccount" && d.name() == "rdg-member"))
    })
    .unwrap_err();
    assert!(err.contains("rdg-member"), "{err}");
}

#[test]
fn member_pods_without_the_pull_secrets_are_rejected() {
    let err = mutated(|docs| {
        doc_mut(docs, "Deployment", "controller")["spec"]["template"]["spec"]["imagePullSecrets"] =
            serde_json::json!([{"name": "regcred"}]);
    })
    .unwrap_err();
    assert!(err.contains("imagePullSecrets"), "{err}");
}

#[test]
fn changed_crd_is_rejected() {
    let err = mutated(|docs| {
        doc_mut(docs, "CustomResourceDefinition", "redundantgroups")["spec"]["names"]["shortNames"] =
            serde_json::json!(["rg"]);
    })
    .unwrap_err();
    assert!(
        err.contains("differs from rdg_operator::crd_yaml()"),
        "{err}"
    );
}
