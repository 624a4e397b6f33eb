//! The CRD as installed: the schema generated from the resource types, refined with what the
//! API server can check itself (IP and CIDR syntax, duration syntax, unique network names) and
//! stripped of the integer formats it does not know, so that `kubectl apply` of the CRD warns
//! of nothing and a bad spec is refused with its field path before the controller sees it.

use crate::RedundantGroup;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;
use rdg_core::Dur;
use serde_json::{Value, json};

/// Durations as the CRD accepts them: numbers each followed by a unit that both rdg and the
/// API server's CEL `duration()` read (`100ms`, `2s`, `1m30s`, `900000us`), no spaces.
pub const DURATION_PATTERN: &str = r"^([0-9]+(ns|us|µs|ms|s|m|h))+$";

/// Integer formats schemars emits that the API server does not recognize (it warns on each);
/// `minimum`/`maximum` already bound the values.
const UNKNOWN_FORMATS: [&str; 4] = ["uint8", "uint16", "uint32", "uint64"];

/// Most net-check targets a group may list in Kubernetes.
pub const MAX_NET_CHECK_TARGETS: usize = 16;
/// Most carousel channels a group may list in Kubernetes.
pub const MAX_CHANNELS: usize = 16;

/// The `RedundantGroup` CRD with the API server's own checks added.
pub fn crd() -> CustomResourceDefinition {
    let mut crd = serde_json::to_value(RedundantGroup::crd()).expect("a CRD is JSON");
    for version in crd["spec"]["versions"]
        .as_array_mut()
        .expect("a CRD has versions")
    {
        let root = &mut version["schema"]["openAPIV3Schema"];
        refine(root);
        refine_spec(&mut root["properties"]["spec"]);
    }
    serde_json::from_value(crd).expect("the refined CRD is still a CRD")
}

/// Everywhere in the schema: IP fields get a CEL `isIP` rule instead of the unknown format
/// `ip`, unsigned formats are dropped, durations take the CRD's stricter pattern.
fn refine(node: &mut Value) {
    match node {
        Value::Object(o) => {
            match o.get("format").and_then(Value::as_str) {
                Some("ip") => {
                    o.remove("format");
                    // The longest IPv6 text; bounds the rule's cost estimate.
                    o.insert("maxLength".into(), json!(45));
                    add_rule(
                        o,
                        "isIP(self)",
                        "must be an IP address, e.g. 10.0.0.1 or 2001:db8::1",
                    );
                }
                Some(f) if UNKNOWN_FORMATS.contains(&f) => {
                    o.remove("format");
                }
                _ => {}
            }
            if o.get("pattern").and_then(Value::as_str) == Some(Dur::PATTERN) {
                o.insert("pattern".into(), json!(DURATION_PATTERN));
            }
            o.values_mut().for_each(refine);
        }
        Value::Array(a) => a.iter_mut().for_each(refine),
        _ => {}
    }
}

/// Rules on particular spec fields.
fn refine_spec(spec: &mut Value) {
    let props = &mut spec["properties"];
    // Network names are keys (members' addresses and VIPs name them): unique, as a list-map.
    let networks = props["networks"]
        .as_object_mut()
        .expect("spec.networks is in the schema");
    networks.insert("x-kubernetes-list-type".into(), json!("map"));
    networks.insert("x-kubernetes-list-map-keys".into(), json!(["name"]));
    // One address per network, and there are at most two networks.
    props["members"]["items"]["properties"]["addresses"]["maxProperties"] = json!(2);
    // Bounds for the API server's estimate of the rules' cost.
    props["netCheck"]["properties"]["targets"]["maxItems"] = json!(MAX_NET_CHECK_TARGETS);
    props["transmitter"]["properties"]["channels"]["maxItems"] = json!(MAX_CHANNELS);
    let vip_address = props["vips"]["items"]["properties"]["address"]
        .as_object_mut()
        .expect("spec.vips[].address is in the schema");
    add_rule(
        vip_address,
        "isCIDR(self)",
        "must be an address with its prefix length, e.g. 10.0.0.100/24 or 2001:db8::100/64",
    );
}

fn add_rule(schema: &mut serde_json::Map<String, Value>, rule: &str, message: &str) {
    let rules = schema
        .entry("x-kubernetes-validations")
        .or_insert_with(|| json!([]));
    if let Value::Array(rules) = rules {
        rules.push(json!({"rule": rule, "message": message}));
    }
}
