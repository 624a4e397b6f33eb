//! CRD tests: the committed CRD matches `rdg crd`, its schema is structural, names and printer
//! columns are as documented, the CEL rules accept and reject what they should, bad specs fail
//! with the field named, and every example manifest parses strictly into its typed resource.

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use rdg_operator::{RedundantGroup, RedundantGroupSpec};
use serde::Deserialize;
use serde_json::{Value, json};
use std::path::PathBuf;

const CRD_FILE: &str = "crds/redundantgroups.rdg.infocast.io.yaml";

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The generated CRD as JSON.
fn crd() -> Value {
    serde_yaml_ng::from_str(&rdg_operator::crd_yaml()).expect("the CRD YAML parses")
}

/// The only version's openAPIV3Schema.
fn schema() -> Value {
    crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()
}

#[test]
fn committed_crd_matches_generated() {
    let path = repo_root().join(CRD_FILE);
    if std::env::var_os("RDG_UPDATE_CRD").is_some() {
        std::fs::write(&path, rdg_operator::crd_yaml())
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    }
    let committed = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    assert!(
        committed == rdg_operator::crd_yaml(),
        "{CRD_FILE} is out of date: run `cargo run -- crd > {CRD_FILE}` (or \
         `RDG_UPDATE_CRD=1 cargo test -p rdg-operator --test crd`)"
    );
}

// ---- structural schema ----------------------------------------------------------------------

/// Every violation of the structural-schema rules below `node` (at JSON path `at`).
fn structural_problems(node: &Value, at: &str, out: &mut Vec<String>) {
    let Some(obj) = node.as_object() else {
        out.push(format!("{at}: schema is not an object"));
        return;
    };
    let flag = |k: &str| obj.get(k).and_then(Value::as_bool) == Some(true);
    if !obj.contains_key("type")
        && !flag("x-kubernetes-int-or-string")
        && !flag("x-kubernetes-preserve-unknown-fields")
    {
        out.push(format!("{at}: no type"));
    }
    if obj.contains_key("$ref") {
        out.push(format!("{at}: $ref"));
    }
    if obj.contains_key("uniqueItems") {
        out.push(format!("{at}: uniqueItems"));
    }
    if obj.contains_key("additionalProperties") && obj.contains_key("properties") {
        out.push(format!(
            "{at}: additionalProperties together with properties"
        ));
    }
    for junction in ["anyOf", "oneOf", "allOf", "not"] {
        if let Some(branches) = obj.get(junction) {
            // In a structural schema junctions may only constrain values, never declare
            // types, $refs or descriptions of their own.
            let mut stack: Vec<&Value> = match branches {
                Value::Array(a) => a.iter().collect(),
                other => vec![other],
            };
            while let Some(b) = stack.pop() {
                for k in [
                    "type",
                    "$ref",
                    "additionalProperties",
                    "default",
                    "nullable",
                ] {
                    if b.get(k).is_some() {
                        out.push(format!("{at}.{junction}: carries `{k}`"));
                    }
                }
                if let Some(props) = b.get("properties").and_then(Value::as_object) {
                    stack.extend(props.values());
                }
                if let Some(items) = b.get("items") {
                    stack.push(items);
                }
            }
        }
    }
    if obj.get("x-kubernetes-list-type").and_then(Value::as_str) == Some("map") {
        let keys: Vec<&str> = obj
            .get("x-kubernetes-list-map-keys")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if keys.is_empty() {
            out.push(format!("{at}: list-map without x-kubernetes-list-map-keys"));
        }
        let required: Vec<&str> = obj["items"]["required"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        for k in keys {
            if !required.contains(&k) {
                out.push(format!("{at}: list-map key `{k}` is not required in items"));
            }
        }
    }
    if let Some(props) = obj.get("properties") {
        match props.as_object() {
            Some(props) => {
                for (name, sub) in props {
                    structural_problems(sub, &format!("{at}.{name}"), out);
                }
            }
            None => out.push(format!("{at}.properties: not an object")),
        }
    }
    if let Some(items) = obj.get("items") {
        structural_problems(items, &format!("{at}[]"), out);
    }
    if let Some(ap) = obj.get("additionalProperties").filter(|v| v.is_object()) {
        structural_problems(ap, &format!("{at}{{}}"), out);
    }
}

#[test]
fn schema_is_structural() {
    let mut problems = Vec::new();
    structural_problems(&schema(), "", &mut problems);
    assert!(
        problems.is_empty(),
        "non-structural schema:\n{}",
        problems.join("\n")
    );
}

#[test]
fn structural_check_can_fail() {
    // The checker itself must catch each kind of violation.
    let bad = json!({
        "type": "object",
        "properties": {
            "untyped": {"description": "no type"},
            "mixed": {"type": "object", "properties": {}, "additionalProperties": {"type": "string"}},
            "set": {"type": "array", "uniqueItems": true, "items": {"type": "string"}},
            "junction": {"type": "string", "anyOf": [{"type": "string"}]},
            "map": {"type": "array", "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["name"],
                    "items": {"type": "object", "properties": {"name": {"type": "string"}}}}
        }
    });
    let mut problems = Vec::new();
    structural_problems(&bad, "", &mut problems);
    assert_eq!(problems.len(), 5, "{problems:#?}");
}

/// The list-map at `path` (property names from the root) is keyed by exactly `key`, which the
/// items require.
fn assert_list_map(path: &[&str], key: &str) {
    let mut node = schema();
    for p in path {
        node = node["properties"][p].clone();
    }
    let at = path.join(".");
    assert_eq!(node["type"], "array", "{at}");
    assert_eq!(node["x-kubernetes-list-type"], "map", "{at}");
    assert_eq!(node["x-kubernetes-list-map-keys"], json!([key]), "{at}");
    let required = node["items"]["required"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(required.contains(&json!(key)), "{at}: `{key}` not required");
}

#[test]
fn list_maps_are_keyed_by_required_fields() {
    assert_list_map(&["spec", "members"], "name");
    assert_list_map(&["status", "members"], "name");
    assert_list_map(&["status", "conditions"], "type");
}

// ---- names and printer columns -----------------------------------------------------------

#[test]
fn names_scope_version_and_subresource() {
    let crd = crd();
    assert_eq!(crd["apiVersion"], "apiextensions.k8s.io/v1");
    assert_eq!(crd["kind"], "CustomResourceDefinition");
    assert_eq!(crd["metadata"]["name"], "redundantgroups.rdg.infocast.io");
    let spec = &crd["spec"];
    assert_eq!(spec["group"], "rdg.infocast.io");
    assert_eq!(spec["scope"], "Namespaced");
    assert_eq!(spec["names"]["kind"], "RedundantGroup");
    assert_eq!(spec["names"]["plural"], "redundantgroups");
    assert_eq!(spec["names"]["singular"], "redundantgroup");
    assert_eq!(spec["names"]["shortNames"], json!(["rdg"]));
    let versions = spec["versions"].as_array().expect("versions");
    assert_eq!(versions.len(), 1);
    let v = &versions[0];
    assert_eq!(v["name"], "v1alpha1");
    assert_eq!(v["served"], true);
    assert_eq!(v["storage"], true);
    assert_eq!(v["subresources"]["status"], json!({}));
}

#[test]
fn printer_columns() {
    let crd = crd();
    let columns: Vec<(String, String)> = crd["spec"]["versions"][0]["additionalPrinterColumns"]
        .as_array()
        .expect("printer columns")
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap_or_default().to_string(),
                c["jsonPath"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let expected = [
        ("Hot", ".status.hot"),
        ("Epoch", ".status.epoch"),
        ("Members", ".status.memberCount"),
        ("Ready", ".status.ready"),
        ("Phase", ".status.phase"),
        ("VIP", ".spec.vips[0].address"),
        ("Age", ".metadata.creationTimestamp"),
        ("Fenced", ".status.fenced"),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(n, p)| (n.to_string(), p.to_string()))
        .collect();
    assert_eq!(columns, expected);
    // Every column's path exists in the schema (a typo would show an empty column forever).
    let schema = schema();
    for (name, path) in &columns {
        if path.starts_with(".metadata") {
            continue;
        }
        let mut node = &schema;
        for seg in path.trim_start_matches('.').split('.') {
            let (field, index) = match seg.strip_suffix("[0]") {
                Some(f) => (f, true),
                None => (seg, false),
            };
            node = &node["properties"][field];
            if index {
                node = &node["items"];
            }
        }
        assert!(
            node.get("type").is_some(),
            "column {name}: {path} not in the schema"
        );
    }
}

// ---- CEL rules ------------------------------------------------------------------------------

/// Every `x-kubernetes-validations` list below `node`.
fn collect_rules(node: &Value, out: &mut Vec<Value>) {
    match node {
        Value::Object(o) => {
            if let Some(Value::Array(rules)) = o.get("x-kubernetes-validations") {
                out.extend(rules.iter().cloned());
            }
            o.values().for_each(|v| collect_rules(v, out));
        }
        Value::Array(a) => a.iter().for_each(|v| collect_rules(v, out)),
        _ => {}
    }
}

#[test]
fn every_cel_rule_has_a_message() {
    let mut rules = Vec::new();
    collect_rules(&schema(), &mut rules);
    assert!(
        rules.len() >= 3,
        "expected the spec's rules, got {rules:#?}"
    );
    for r in &rules {
        let message = r["message"].as_str().unwrap_or_default();
        assert!(!message.trim().is_empty(), "rule without a message: {r}");
    }
}

/// A minimal valid spec (JSON, as the API server would see it).
fn base_spec() -> Value {
    json!({
        "heartbeat": {"interval": "100ms", "timeout": "500ms", "port": 8035, "ttl": 5},
        "networks": [{"name": "primary", "multicast": "224.0.0.35"}],
        "members": [
            {"name": "ics-a", "priority": 100, "addresses": {"primary": "10.0.0.11"}},
            {"name": "ics-b", "priority": 50, "addresses": {"primary": "10.0.0.12"}}
        ],
        "vips": [{"address": "10.0.0.100/24", "network": "primary"}]
    })
}

/// Runs the spec's CEL rules on `spec` (also checking it is a spec serde accepts).
fn cel(spec: &Value) -> Result<(), String> {
    serde_json::from_value::<RedundantGroupSpec>(spec.clone()).expect("a well-formed spec");
    RedundantGroupSpec::validate_cel(spec, None).map_err(|e| e.to_string())
}

#[test]
fn cel_base_spec_passes() {
    assert_eq!(cel(&base_spec()), Ok(()));
}

#[test]
fn cel_interval_must_be_shorter_than_timeout() {
    let mut s = base_spec();
    s["heartbeat"]["interval"] = json!("500ms");
    s["heartbeat"]["timeout"] = json!("100ms");
    let err = cel(&s).expect_err("interval 500ms > timeout 100ms must be rejected");
    assert!(err.contains("heartbeat.interval must be shorter"), "{err}");

    s["heartbeat"]["interval"] = json!("500ms");
    s["heartbeat"]["timeout"] = json!("500ms");
    assert!(cel(&s).is_err(), "interval == timeout must be rejected");

    s["heartbeat"]["interval"] = json!("100ms");
    s["heartbeat"]["timeout"] = json!("1s");
    assert_eq!(cel(&s), Ok(()), "100ms < 1s (mixed units)");

    s["heartbeat"]["interval"] = json!("2s");
    s["heartbeat"]["timeout"] = json!("1500ms");
    assert!(
        cel(&s).is_err(),
        "2s > 1500ms (mixed units) must be rejected"
    );
}

#[test]
fn cel_vip_network_must_be_a_network() {
    let mut s = base_spec();
    s["vips"][0]["network"] = json!("secondary");
    let err = cel(&s).expect_err("a VIP on an unknown network must be rejected");
    assert!(err.contains("vips[].network"), "{err}");

    s["networks"] = json!([{"name": "primary"}, {"name": "secondary"}]);
    assert_eq!(cel(&s), Ok(()));
}

#[test]
fn cel_switchover_must_name_a_member() {
    let mut s = base_spec();
    s["switchover"] = json!({"to": "ics-b"});
    assert_eq!(cel(&s), Ok(()));
    s["switchover"] = json!({"to": "ics-z"});
    let err = cel(&s).expect_err("a switchover to a non-member must be rejected");
    assert!(err.contains("switchover.to must name a member"), "{err}");
}

// ---- bad input ------------------------------------------------------------------------------

fn parse_group_yaml(yaml: &str) -> Result<RedundantGroup, String> {
    serde_yaml_ng::from_str::<RedundantGroup>(yaml).map_err(|e| e.to_string())
}

const GROUP_HEAD: &str = "apiVersion: rdg.infocast.io/v1alpha1
kind: RedundantGroup
metadata:
  name: infocast
spec:
  networks:
    - name: primary
";

#[test]
fn wrong_type_names_the_field() {
    let ok = format!("{GROUP_HEAD}  members:\n    - name: ics-a\n      priority: 100\n");
    parse_group_yaml(&ok).expect("the valid variant parses");
    let bad = format!("{GROUP_HEAD}  members:\n    - name: ics-a\n      priority: high\n");
    let err = parse_group_yaml(&bad).expect_err("a string priority must fail");
    assert!(err.contains("spec.members[0].priority"), "{err}");
}

#[test]
fn unknown_field_names_the_field() {
    let bad = format!(
        "{GROUP_HEAD}  members:\n    - name: ics-a\n      priority: 100\n  heartbeat:\n    intervall: 100ms\n"
    );
    let err = parse_group_yaml(&bad).expect_err("a misspelled heartbeat key must fail");
    assert!(
        err.contains("spec.heartbeat") && err.contains("intervall"),
        "{err}"
    );
}

#[test]
fn unknown_field_is_caught_by_the_strict_check() {
    // Spec-level and member-level keys of Kubernetes-only structs are not denied by serde
    // (the API server prunes unknown fields anyway); the example check below must still catch
    // a misspelling there.
    let bad = format!(
        "{GROUP_HEAD}  members:\n    - name: ics-a\n      priority: 100\n      nodeNmae: node-1\n"
    );
    let err = strict_parse::<RedundantGroup>(&serde_yaml_ng::from_str(&bad).unwrap())
        .expect_err("a misspelled member key must fail the strict check");
    assert!(err.contains("spec.members[0].nodeNmae"), "{err}");
}

// ---- example manifests ----------------------------------------------------------------------

/// Every key path of `original` that `reserialized` lacks (a key serde ignored), and every
/// scalar that changed.
fn lost_keys(original: &Value, reserialized: &Value, at: &str, out: &mut Vec<String>) {
    match (original, reserialized) {
        (Value::Object(o), Value::Object(r)) => {
            for (k, v) in o {
                let path = if at.is_empty() {
                    k.clone()
                } else {
                    format!("{at}.{k}")
                };
                match r.get(k) {
                    Some(rv) => lost_keys(v, rv, &path, out),
                    None => out.push(format!("{path}: unknown or ignored key")),
                }
            }
        }
        (Value::Array(o), Value::Array(r)) if o.len() == r.len() => {
            for (i, (v, rv)) in o.iter().zip(r).enumerate() {
                lost_keys(v, rv, &format!("{at}[{i}]"), out);
            }
        }
        (o, r) if o == r => {}
        // Scalars that serde normalises: numbers given as strings in YAML etc. are reported.
        (o, r) => out.push(format!("{at}: {o} became {r}")),
    }
}

/// Deserializes `value` into `T` and fails when a key was ignored (unknown or misspelled)
/// or a value did not survive the round trip.
fn strict_parse<T>(value: &Value) -> Result<T, String>
where
    T: for<'de> Deserialize<'de> + serde::Serialize,
{
    let typed: T = serde_json::from_value(value.clone()).map_err(|e| e.to_string())?;
    let back = serde_json::to_value(&typed).map_err(|e| e.to_string())?;
    let mut lost = Vec::new();
    lost_keys(value, &back, "", &mut lost);
    if lost.is_empty() {
        Ok(typed)
    } else {
        Err(lost.join("; "))
    }
}

#[test]
fn strict_parse_can_fail() {
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"},
                    "data": {"a": "b"}, "dataa": {"c": "d"}});
    let err = strict_parse::<ConfigMap>(&cm).expect_err("misspelled ConfigMap key");
    assert!(err.contains("dataa"), "{err}");
}

fn example_files() -> Vec<PathBuf> {
    let dir = repo_root().join("manifests/examples");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    files
}

#[test]
fn examples_parse_strictly_and_validate() {
    let files = example_files();
    let names: Vec<String> = files
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for expected in [
        "gated-transmitter.yaml",
        "three-member-two-networks.yaml",
        "two-member.yaml",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "missing example {expected}"
        );
    }
    for file in &files {
        let text = std::fs::read_to_string(file).expect("read example");
        let mut groups = 0;
        for (i, doc) in serde_yaml_ng::Deserializer::from_str(&text).enumerate() {
            let value = Value::deserialize(doc).expect("YAML document");
            if value.is_null() {
                continue;
            }
            let at = format!("{} document {i}", file.display());
            let kind = value["kind"].as_str().unwrap_or_default().to_string();
            let result = match kind.as_str() {
                "RedundantGroup" => strict_parse::<RedundantGroup>(&value).map(|g| {
                    groups += 1;
                    let name = g.metadata.name.clone().expect("group has a name");
                    // The controller's own rendering and checks (rdg-core's plus Kubernetes').
                    if let Err(problems) = rdg_operator::render::render(&name, &g.spec) {
                        let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
                        panic!("{at}: invalid group spec:\n{}", lines.join("\n"));
                    }
                    if let Err(e) = RedundantGroupSpec::validate_cel(&value["spec"], None) {
                        panic!("{at}: CEL rules reject the spec: {e}");
                    }
                    check_example_group(&at, &g, &text);
                }),
                "ConfigMap" => strict_parse::<ConfigMap>(&value).map(drop),
                "Secret" => strict_parse::<Secret>(&value).map(drop),
                other => Err(format!("unexpected kind {other:?}")),
            };
            if let Err(e) = result {
                panic!("{at} ({kind}): {e}");
            }
        }
        assert_eq!(
            groups,
            1,
            "{}: one RedundantGroup per example",
            file.display()
        );
    }
}

/// Per-example expectations (what each example is there to show).
fn check_example_group(at: &str, g: &RedundantGroup, text: &str) {
    let s = &g.spec;
    for m in &s.members {
        assert!(
            m.node_name.is_some() || !m.node_selector.is_empty(),
            "{at}: member {} has no node",
            m.name
        );
    }
    if at.contains("/two-member.yaml") {
        assert_eq!(s.members.len(), 2, "{at}");
        assert_eq!(s.vips.len(), 1, "{at}");
        assert!(s.auth.is_some(), "{at}: HMAC Secret reference");
        let t = s.transmitter.as_ref().expect("built-in carousel");
        assert!(!t.channels.is_empty() && !t.config_maps.is_empty(), "{at}");
        for cm in &t.config_maps {
            assert!(
                text.contains(&format!("name: {cm}\n")),
                "{at}: ConfigMap {cm} not defined"
            );
        }
    } else if at.contains("three-member-two-networks.yaml") {
        assert_eq!(s.members.len(), 3, "{at}");
        assert_eq!(s.networks.len(), 2, "{at}");
        assert!(!s.net_check.targets.is_empty(), "{at}: net check");
        assert!(
            s.members.iter().any(|m| m.priority == 0),
            "{at}: priority-0 member"
        );
    } else if at.contains("gated-transmitter.yaml") {
        let t = s.transmitter.as_ref().expect("transmitter");
        assert!(t.container.is_some(), "{at}: gated container");
    }
}

#[test]
fn cel_interval_rule_compares_every_unit_and_compound_form() {
    // The CRD's duration pattern admits only what CEL's duration() reads, so the rule sees
    // every form a user can write; these pairs are refused (interval >= timeout) ...
    let mut s = base_spec();
    for (interval, timeout) in [
        ("900000us", "500ms"),
        ("1s500ms", "1s"),
        ("600000000ns", "500ms"),
        ("1m", "59s"),
        ("1h", "59m59s"),
        ("500000µs", "500ms"),
    ] {
        s["heartbeat"]["interval"] = json!(interval);
        s["heartbeat"]["timeout"] = json!(timeout);
        assert!(
            cel(&s).is_err(),
            "interval {interval} >= timeout {timeout} must be rejected"
        );
    }
    // ... and these accepted.
    for (interval, timeout) in [("100000us", "1s"), ("1s", "1s1ms"), ("59s", "1m")] {
        s["heartbeat"]["interval"] = json!(interval);
        s["heartbeat"]["timeout"] = json!(timeout);
        assert_eq!(cel(&s), Ok(()), "{interval} < {timeout}");
    }
}

#[test]
fn crd_durations_take_only_forms_cel_reads() {
    let mut patterns = Vec::new();
    collect_strings(&schema(), "pattern", &mut patterns);
    assert!(
        patterns.contains(&rdg_operator::crd::DURATION_PATTERN.to_string()),
        "{patterns:?}"
    );
    assert!(
        !patterns.contains(&rdg_core::Dur::PATTERN.to_string()),
        "a duration field kept the config file's looser pattern: {patterns:?}"
    );
}

/// Every string value of `key` anywhere below `node`.
fn collect_strings(node: &Value, key: &str, out: &mut Vec<String>) {
    match node {
        Value::Object(o) => {
            if let Some(Value::String(v)) = o.get(key) {
                out.push(v.clone());
            }
            o.values().for_each(|v| collect_strings(v, key, out));
        }
        Value::Array(a) => a.iter().for_each(|v| collect_strings(v, key, out)),
        _ => {}
    }
}

#[test]
fn crd_has_no_format_the_api_server_does_not_know() {
    // The API server warns on formats outside its list; schemars emits `ip` and `uint*`.
    let known = [
        "int32",
        "int64",
        "float",
        "double",
        "byte",
        "date",
        "date-time",
        "password",
    ];
    let mut formats = Vec::new();
    collect_strings(&crd(), "format", &mut formats);
    let unknown: Vec<_> = formats
        .iter()
        .filter(|f| !known.contains(&f.as_str()))
        .collect();
    assert!(unknown.is_empty(), "unknown formats: {unknown:?}");
}

#[test]
fn duration_rules_guard_with_the_fields_own_pattern() {
    // A rule that calls duration() on a value the pattern refuses would add a second, cryptic
    // error ("type conversion error"); the guard must be the CRD's duration pattern itself.
    let mut rules = Vec::new();
    collect_rules(&schema(), &mut rules);
    let guard = format!("matches('{}')", rdg_operator::crd::DURATION_PATTERN);
    let with_duration: Vec<&Value> = rules
        .iter()
        .filter(|r| {
            r["rule"]
                .as_str()
                .is_some_and(|s| s.contains("duration(self"))
        })
        .collect();
    assert!(with_duration.len() >= 2, "{rules:#?}");
    for r in with_duration {
        let rule = r["rule"].as_str().unwrap();
        assert!(rule.contains(&guard), "unguarded duration rule: {rule}");
    }
}
