//! The configuration reference in `docs/configuration.md` is the one generated from the schema
//! (`rdg_core::config::reference`), and the generator misses no key and shows the defaults the
//! code really uses.
//!
//! `RDG_UPDATE_REFERENCE=1 cargo test -p rdg-core --test config_reference` rewrites that
//! block after a change to `crates/rdg-core/src/config/types.rs`.

use rdg_core::config::reference::{self, Kind, Row};
use rdg_core::config::{GroupConfig, Heartbeat, NetCheck, StatusEndpoint, Timeouts};
use serde_json::Value;

const DOC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/configuration.md");
const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples");
const BEGIN: &str = "<!-- config-reference:begin";
const END: &str = "<!-- config-reference:end -->";
const REGENERATE: &str = "RDG_UPDATE_REFERENCE=1 cargo test -p rdg-core --test config_reference";

/// Byte range of the text between the begin marker's line and the end marker.
fn block(readme: &str) -> std::ops::Range<usize> {
    let begin = readme
        .find(BEGIN)
        .unwrap_or_else(|| panic!("docs/configuration.md has no `{BEGIN} ... -->` marker"));
    let start = begin
        + readme[begin..]
            .find('\n')
            .expect("a line break after the begin marker")
        + 1;
    let end = start
        + readme[start..].find(END).unwrap_or_else(|| {
            panic!("docs/configuration.md has no `{END}` after the begin marker")
        });
    start..end
}

#[test]
fn documented_reference_is_the_generated_one() {
    let readme = std::fs::read_to_string(DOC).expect("docs/configuration.md is readable");
    let range = block(&readme);
    let generated = reference::markdown();
    let current = &readme[range.clone()];
    if current.trim() == generated.trim() {
        return;
    }
    if std::env::var_os("RDG_UPDATE_REFERENCE").is_some_and(|v| v == "1") {
        let mut updated = readme.clone();
        updated.replace_range(range, &format!("\n{}\n\n", generated.trim_end()));
        std::fs::write(DOC, updated).expect("docs/configuration.md is writable");
        eprintln!("docs/configuration.md: configuration reference regenerated");
        return;
    }
    let first_difference = current
        .trim()
        .lines()
        .zip(generated.trim().lines())
        .find(|(a, b)| a != b)
        .map(|(a, b)| format!("\n  documented: {a}\n  generated:  {b}"))
        .unwrap_or_else(|| "\n  (one is longer than the other)".into());
    panic!(
        "docs/configuration.md's configuration reference differs from the schema of GroupConfig \
         (crates/rdg-core/src/config/types.rs); regenerate it with\n\n    {REGENERATE}\n\n\
         first difference:{first_difference}"
    );
}

fn row<'a>(rows: &'a [Row], path: &str) -> &'a Row {
    rows.iter()
        .find(|r| r.path == path)
        .unwrap_or_else(|| panic!("the reference has no row `{path}`"))
}

/// Every key path of a YAML document, `[]` for the elements of a list; the keys of a map the
/// reference calls a map (`members[].addresses.primary`) are the user's, not the schema's.
fn key_paths(value: &serde_yaml_ng::Value, prefix: &str, rows: &[Row], out: &mut Vec<String>) {
    use serde_yaml_ng::Value as Y;
    match value {
        Y::Mapping(map) => {
            if rows.iter().any(|r| r.path == prefix && r.kind == Kind::Map) {
                return;
            }
            for (key, value) in map {
                let key = key.as_str().expect("string keys");
                let path = if prefix.is_empty() {
                    key.to_string()
                } else {
                    format!("{prefix}.{key}")
                };
                out.push(path.clone());
                key_paths(value, &path, rows, out);
            }
        }
        Y::Sequence(items) => {
            for item in items.iter().filter(|i| i.is_mapping()) {
                key_paths(item, &format!("{prefix}[]"), rows, out);
            }
        }
        _ => {}
    }
}

#[test]
fn every_key_of_the_examples_is_in_the_reference() {
    let rows = reference::rows();
    let mut files: Vec<_> = std::fs::read_dir(EXAMPLES)
        .expect("examples/ is readable")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(
        files.iter().any(|f| f.ends_with("infocast.yaml")),
        "examples/infocast.yaml is among {files:?}"
    );
    for file in files {
        let text = std::fs::read_to_string(&file).expect("example is readable");
        GroupConfig::from_yaml(&text)
            .unwrap_or_else(|e| panic!("{} is a group configuration: {e}", file.display()));
        let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).expect("YAML");
        let mut paths = Vec::new();
        key_paths(&doc, "", &rows, &mut paths);
        paths.sort();
        paths.dedup();
        assert!(!paths.is_empty(), "{} has keys", file.display());
        let missing: Vec<&String> = paths
            .iter()
            .filter(|p| !rows.iter().any(|r| &r.path == *p))
            .collect();
        assert!(
            missing.is_empty(),
            "{}: keys missing from the configuration reference: {missing:?}",
            file.display()
        );
    }
    // The example covers the deepest section, so the walker went all the way down.
    row(
        &rows,
        "transmitter.channels[].objects[].bootcast.kernelAddress",
    );
}

/// The rows under `prefix` must show exactly the values `defaults` (a section's `Default`
/// serialized) has, key by key, and no key of the section may be missing; `unset` are the
/// section's optional keys that have no default (left out of `defaults`).
fn assert_section_defaults(rows: &[Row], prefix: &str, defaults: Value, unset: &[&str]) {
    let Value::Object(defaults) = defaults else {
        panic!("{prefix}: a section serializes to an object");
    };
    for (key, value) in &defaults {
        let r = row(rows, &format!("{prefix}.{key}"));
        assert_eq!(r.default.as_ref(), Some(value), "default of `{}`", r.path);
        let shown = match value {
            Value::String(s) => format!("`{s}`"),
            v => format!("`{v}`"),
        };
        assert_eq!(r.default_text(), shown, "`{}` as shown", r.path);
    }
    let keys_in_reference = rows
        .iter()
        .filter(|r| {
            r.path
                .strip_prefix(prefix)
                .and_then(|rest| rest.strip_prefix('.'))
                .is_some_and(|rest| !rest.contains('.'))
        })
        .count();
    for key in unset {
        let r = row(rows, &format!("{prefix}.{key}"));
        assert!(
            r.default.is_none() && !r.required,
            "`{}` is optional",
            r.path
        );
    }
    assert_eq!(
        keys_in_reference,
        defaults.len() + unset.len(),
        "keys of `{prefix}`"
    );
}

#[test]
fn known_rows_show_the_defaults_of_the_code() {
    let rows = reference::rows();
    assert_section_defaults(
        &rows,
        "heartbeat",
        serde_json::to_value(Heartbeat::default()).unwrap(),
        &[],
    );
    assert_section_defaults(
        &rows,
        "timeouts",
        serde_json::to_value(Timeouts::default()).unwrap(),
        &[],
    );
    assert_section_defaults(
        &rows,
        "netCheck",
        serde_json::to_value(NetCheck::default()).unwrap(),
        &[],
    );
    assert_section_defaults(
        &rows,
        "status",
        serde_json::to_value(StatusEndpoint::default()).unwrap(),
        &["tokenFile"],
    );

    let interval = row(&rows, "heartbeat.interval");
    assert_eq!(interval.ty, "duration");
    assert_eq!(
        interval.default_text(),
        format!("`{}`", Heartbeat::default().interval)
    );
    let port = row(&rows, "heartbeat.port");
    assert_eq!(port.ty, "integer 1–65535");
    assert_eq!(
        port.default_text(),
        format!("`{}`", Heartbeat::default().port)
    );
    let priority = row(&rows, "members[].priority");
    assert!(priority.required);
    assert_eq!(priority.default_text(), "required");
    assert!(priority.description.starts_with("Higher wins"));

    let md = reference::markdown();
    assert!(
        md.contains("| `heartbeat.interval` | duration | `100ms` | Time between heartbeats"),
        "{md}"
    );
    for line in md.lines().filter(|l| l.starts_with('|')) {
        let cells = line.replace("\\|", "").matches('|').count() - 1;
        assert_eq!(cells, 4, "four cells in {line}");
    }
}

/// Configurations that leave keys out, from nothing at all to one element in every list and
/// every optional section present, each with only its required keys: every key that is not
/// required is left out by one of them inside a section that is there.
const SPARSE: [&str; 8] = [
    "{}",
    "auth: {keyFiles: [k]}",
    "notify: {command: [c]}",
    "notify: {email: {server: s, from: a@example.com, to: [b@example.com]}}",
    "transmitter: {}",
    "transmitter: {channels: [{address: 224.2.2.2, port: 1, bitRate: 1Mbit}]}",
    "transmitter: {channels: [{address: 224.2.2.2, port: 1, bitRate: 1Mbit, objects: [{name: o}]}]}",
    FULL,
];

/// One element in every list and every optional section, each with only its required keys.
const FULL: &str = "
networks: [{name: n}]
members: [{name: m, priority: 1}]
vips: [{address: 10.0.0.100/24, network: n}]
auth: {keyFile: k}
notify: {command: [c], email: {server: s, from: a@example.com, to: [b@example.com]}}
transmitter:
  channels:
    - address: 224.2.2.2
      port: 1
      bitRate: 1Mbit
      objects:
        - name: o
          bootcast: {kernelAddress: '224.2.2.3:3', kernelName: k, kernelVersion: v}
";

/// The value at a reference path (`[]` = the first element) of a serialized configuration.
fn at<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .try_fold(value, |v, segment| match segment.strip_suffix("[]") {
            Some(key) => v.get(key)?.get(0),
            None => v.get(segment),
        })
}

#[test]
fn every_default_is_what_serde_fills_in() {
    let given: Vec<Value> = SPARSE
        .iter()
        .map(|text| serde_yaml_ng::from_str(text).expect("YAML"))
        .collect();
    let filled: Vec<Value> = SPARSE
        .iter()
        .map(|text| {
            let cfg = GroupConfig::from_yaml(text).expect("the configuration parses");
            serde_json::to_value(&cfg).unwrap()
        })
        .collect();
    for r in reference::rows().iter().filter(|r| !r.required) {
        // A configuration that leaves the key out but has the section it belongs to.
        let parent = r.path.rsplit_once('.').map(|(p, _)| p);
        let Some(i) = (0..given.len()).find(|&i| {
            at(&given[i], &r.path).is_none() && parent.is_none_or(|p| at(&filled[i], p).is_some())
        }) else {
            panic!(
                "no SPARSE configuration leaves out `{}` inside its section",
                r.path
            );
        };
        match (&r.default, at(&filled[i], &r.path)) {
            (Some(shown), Some(actual)) => assert_eq!(shown, actual, "default of `{}`", r.path),
            // Left out by `skip_serializing_if`: only empty values are skipped here.
            (Some(shown), None) => assert!(
                matches!(shown, Value::Bool(false))
                    || shown.as_array().is_some_and(Vec::is_empty)
                    || shown.as_object().is_some_and(|o| o.is_empty()),
                "`{}`: default {shown} but the key is not serialized",
                r.path
            ),
            (None, None | Some(Value::Null)) => {}
            (None, Some(actual)) => panic!(
                "`{}` is shown without a default but a configuration without it has {actual}",
                r.path
            ),
        }
    }
}
