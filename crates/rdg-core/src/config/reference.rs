//! The configuration reference: every key of the group configuration file, generated from the
//! JSON schema of [`GroupConfig`] so it cannot drift from the code.
//!
//! [`rows`] walks `schemars::schema_for!(GroupConfig)` (following `$ref`s into `$defs`,
//! unwrapping `Option`s, descending into lists, sections and maps) and returns one [`Row`] per
//! key: its dotted path (`heartbeat.interval`, `networks[].multicast`), its type, its default
//! and its doc comment. [`markdown`] renders them as the table in `docs/configuration.md`;
//! `crates/rdg-core/tests/config_reference.rs` fails when that copy differs and rewrites it
//! with `RDG_UPDATE_REFERENCE=1`.
//!
//! Defaults come from the schema's `default` (schemars takes it from the serde default next to
//! the field). A field schemars gives none (one with `skip_serializing_if`) but that serde fills
//! in when absent gets the empty value of its type (`false`, `[]`, `{}`); the test checks every
//! default against what deserializing a configuration without the key really yields.

use super::GroupConfig;
use crate::Dur;
use schemars::JsonSchema;
use serde_json::{Map, Value};

/// What a key holds, as far as the walker is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A single value (string, number, duration, boolean, enum) or a list of such values.
    Value,
    /// A section: an object whose keys are rows of their own (`heartbeat`, `netCheck`).
    Section,
    /// A list of sections; their keys are rows under `path[]` (`networks[].name`).
    ListOfSections,
    /// A map with keys chosen by the user (`members[].addresses`, keyed by network name).
    Map,
}

/// One key of the configuration file.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Dotted path of the key; `[]` stands for every element of a list: `networks[].multicast`.
    pub path: String,
    /// What the key holds.
    pub kind: Kind,
    /// The type as shown in the table: `duration`, `integer 0–65535`, `list of IP address`,
    /// `one of bootcastinfo, generic`, ...
    pub ty: String,
    /// True when the key must be given (in every element, for keys under a list).
    pub required: bool,
    /// The value used when the key is left out; `None` when it has none (an optional key that
    /// is simply not set, or a required one).
    pub default: Option<Value>,
    /// The doc comment of the field, on one line.
    pub description: String,
}

impl Row {
    /// The default as shown in the table: the value in backticks, `required`, `—` (not set), or
    /// `see below` for a section whose keys have their own defaults.
    pub fn default_text(&self) -> String {
        if self.required {
            return "required".into();
        }
        match &self.default {
            None | Some(Value::Null) => "—".into(),
            Some(Value::Object(m)) if !m.is_empty() && self.kind == Kind::Section => {
                "see below".into()
            }
            Some(Value::String(s)) if s.is_empty() => "`\"\"`".into(),
            Some(Value::String(s)) => format!("`{s}`"),
            Some(v) => format!("`{v}`"),
        }
    }
}

/// Every key of the group configuration file, depth first, keys of a section in alphabetical
/// order (so the order does not depend on serde_json's `preserve_order` feature).
pub fn rows() -> Vec<Row> {
    let schema = schemars::schema_for!(GroupConfig);
    let root = schema.as_value();
    let mut out = Vec::new();
    Walker { root }.section("", root, &mut out);
    out
}

/// The configuration reference as Markdown: a short legend and one table of every key (path,
/// type, default, description), as it appears in `docs/configuration.md` between the
/// `config-reference` markers.
pub fn markdown() -> String {
    let mut s = String::new();
    s.push_str(
        "Every key, generated from the schema of `GroupConfig` (`[]` = each element of a list; \
         default `required` = must be given, `—` = not set unless given, `see below` = each key \
         of the section has its own default):\n\n",
    );
    s.push_str("| key | type | default | description |\n|---|---|---|---|\n");
    for row in rows() {
        s.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            row.path,
            cell(&row.ty),
            row.default_text(),
            cell(&row.description)
        ));
    }
    s
}

/// Text for a table cell: whitespace (line breaks of doc comments included) collapsed to one
/// space, `|` escaped.
fn cell(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|")
}

/// Walks the schema; `root` holds the `$defs` that `$ref`s point into.
struct Walker<'a> {
    root: &'a Value,
}

/// A property's schema with `$ref` and `Option` resolved.
struct Resolved<'a> {
    /// The schema of the value (the referenced definition, the non-null branch).
    schema: &'a Value,
    /// Name of the referenced definition, if the value is a `$ref`.
    def: Option<String>,
    /// True when `null` is allowed (an `Option` field).
    nullable: bool,
}

impl<'a> Walker<'a> {
    /// Rows for every property of `schema` (an object schema), under `prefix`.
    fn section(&self, prefix: &str, schema: &'a Value, out: &mut Vec<Row>) {
        let Some(props) = schema.get("properties").and_then(Value::as_object) else {
            return;
        };
        let required: Vec<&str> = schema
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let mut keys: Vec<&String> = props.keys().collect();
        keys.sort();
        for key in keys {
            let path = if prefix.is_empty() {
                key.clone()
            } else {
                format!("{prefix}.{key}")
            };
            self.property(path, &props[key], required.contains(&key.as_str()), out);
        }
    }

    /// The row of one property, then the rows of its keys if it is a section or a list of them.
    fn property(&self, path: String, prop: &'a Value, required: bool, out: &mut Vec<Row>) {
        let r = self.resolve(prop);
        let description = prop
            .get("description")
            .or_else(|| r.schema.get("description"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        let mut description = cell(description);
        if let Some(variants) = self.enum_variants(r.schema) {
            for (value, doc) in variants.iter().filter(|(_, doc)| !doc.is_empty()) {
                description.push_str(&format!(" `{value}`: {}", cell(doc)));
            }
        }
        let (kind, ty) = self.kind_and_type(&r);
        let default = match prop.get("default").or_else(|| r.schema.get("default")) {
            Some(d) => Some(d.clone()),
            None if required || r.nullable => None,
            // serde fills in the type's empty value for `#[serde(default)]` fields that
            // schemars shows without a default (those with `skip_serializing_if`).
            None => match schema_type(r.schema) {
                Some("boolean") => Some(Value::Bool(false)),
                Some("array") => Some(Value::Array(Vec::new())),
                Some("object") if kind == Kind::Map => Some(Value::Object(Map::new())),
                _ => None,
            },
        };
        out.push(Row {
            path: path.clone(),
            kind,
            ty,
            required,
            default,
            description,
        });
        match kind {
            Kind::Section => self.section(&path, r.schema, out),
            Kind::ListOfSections => {
                let items = self.resolve(&r.schema["items"]);
                self.section(&format!("{path}[]"), items.schema, out);
            }
            Kind::Value | Kind::Map => {}
        }
    }

    /// Follows a `$ref` and unwraps `anyOf: [X, null]` / `type: [T, "null"]`.
    fn resolve(&self, schema: &'a Value) -> Resolved<'a> {
        if let Some(any_of) = schema.get("anyOf").and_then(Value::as_array) {
            let (null, other): (Vec<&Value>, Vec<&Value>) = any_of
                .iter()
                .partition(|s| s.get("type").and_then(Value::as_str) == Some("null"));
            if !null.is_empty() && other.len() == 1 {
                let inner = self.resolve(other[0]);
                return Resolved {
                    nullable: true,
                    ..inner
                };
            }
        }
        if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
            let target = reference
                .strip_prefix('#')
                .and_then(|pointer| self.root.pointer(pointer))
                .unwrap_or_else(|| panic!("unresolvable $ref {reference} in the config schema"));
            let inner = self.resolve(target);
            return Resolved {
                def: Some(reference.rsplit('/').next().unwrap_or_default().to_string()),
                ..inner
            };
        }
        let nullable = schema
            .get("type")
            .and_then(Value::as_array)
            .is_some_and(|t| t.iter().any(|t| t == "null"));
        Resolved {
            schema,
            def: None,
            nullable,
        }
    }

    /// The values of an enum (`oneOf` of `const`s, or `enum`) with their doc comments.
    fn enum_variants(&self, schema: &Value) -> Option<Vec<(String, String)>> {
        if let Some(values) = schema.get("enum").and_then(Value::as_array) {
            return Some(values.iter().map(|v| (plain(v), String::new())).collect());
        }
        let one_of = schema.get("oneOf").and_then(Value::as_array)?;
        one_of
            .iter()
            .map(|variant| {
                let variant = self.resolve(variant).schema;
                let value = variant
                    .get("const")
                    .or_else(|| variant.get("enum").and_then(|e| e.get(0)))?;
                let doc = variant
                    .get("description")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                Some((plain(value), doc.to_string()))
            })
            .collect()
    }

    /// The kind of a value and its type as shown in the table.
    fn kind_and_type(&self, r: &Resolved<'a>) -> (Kind, String) {
        if r.def.as_deref() == Some(&*Dur::schema_name()) {
            return (Kind::Value, "duration".into());
        }
        if let Some(variants) = self.enum_variants(r.schema) {
            let values: Vec<String> = variants.iter().map(|(v, _)| format!("`{v}`")).collect();
            return (Kind::Value, format!("one of {}", values.join(", ")));
        }
        let s = r.schema;
        match schema_type(s) {
            Some("object") if s.get("properties").is_some() => (Kind::Section, "section".into()),
            Some("object") => {
                let value = s
                    .get("additionalProperties")
                    .filter(|v| v.is_object())
                    .map(|v| self.value_type(&self.resolve(v)))
                    .unwrap_or_else(|| "any".into());
                (Kind::Map, format!("map of string → {value}"))
            }
            Some("array") => {
                let items = self.resolve(&s["items"]);
                if schema_type(items.schema) == Some("object")
                    && items.schema.get("properties").is_some()
                {
                    (Kind::ListOfSections, "list of sections".into())
                } else {
                    (Kind::Value, format!("list of {}", self.value_type(&items)))
                }
            }
            _ => (Kind::Value, self.value_type(r)),
        }
    }

    /// The type of a single value: `string`, `IP address`, `integer 0–255`, `duration`, ...
    fn value_type(&self, r: &Resolved<'a>) -> String {
        if r.def.as_deref() == Some(&*Dur::schema_name()) {
            return "duration".into();
        }
        let s = r.schema;
        let num = |k: &str| s.get(k).and_then(Value::as_u64);
        match schema_type(s) {
            Some("string") if s.get("format").and_then(Value::as_str) == Some("ip") => {
                "IP address".into()
            }
            Some("string") => match (num("minLength"), num("maxLength")) {
                (Some(min), Some(max)) => format!("string, {min}–{max} chars"),
                (None, Some(max)) => format!("string, at most {max} chars"),
                _ => "string".into(),
            },
            Some("integer") => match (num("minimum"), num("maximum")) {
                (Some(min), Some(max)) => format!("integer {min}–{max}"),
                (Some(min), None) => format!("integer ≥ {min}"),
                _ => "integer".into(),
            },
            Some("boolean") => "bool".into(),
            Some(other) => other.into(),
            None => "any".into(),
        }
    }
}

/// The JSON type of a schema, ignoring a `"null"` alternative (`type: [string, null]`).
fn schema_type(schema: &Value) -> Option<&str> {
    match schema.get("type")? {
        Value::String(t) => Some(t),
        Value::Array(types) => types
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null"),
        _ => None,
    }
}

/// A JSON value without the quotes of a string.
fn plain(v: &Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_one_line_and_pipes_escaped() {
        assert_eq!(cell("a |b\n   c\td"), "a \\|b c d");
    }

    #[test]
    fn optional_sections_required_keys_and_enums() {
        let rows = rows();
        let row = |p: &str| {
            rows.iter()
                .find(|r| r.path == p)
                .unwrap_or_else(|| panic!("no row {p}"))
        };
        assert_eq!(row("auth").kind, Kind::Section);
        assert_eq!(row("auth").default_text(), "—");
        assert_eq!(row("auth.keyFile").default_text(), "—");
        assert_eq!(row("notify.command").default_text(), "`[]`");
        assert_eq!(row("notify.email").kind, Kind::Section);
        assert_eq!(row("notify.email.server").default_text(), "required");
        assert_eq!(row("notify.email.to").default_text(), "required");
        assert_eq!(row("notify.email.port").default_text(), "—");
        let security = row("notify.email.security");
        assert_eq!(security.ty, "one of `starttls`, `tls`, `none`");
        assert_eq!(security.default_text(), "`starttls`");
        assert_eq!(row("notify.email.subjectPrefix").default_text(), "`[rdg]`");
        assert_eq!(row("networks").kind, Kind::ListOfSections);
        assert_eq!(row("networks[].multicast").ty, "IP address");
        assert_eq!(row("members[].addresses").kind, Kind::Map);
        let kind = row("transmitter.channels[].objects[].type");
        assert_eq!(kind.ty, "one of `bootcastinfo`, `generic`");
        assert!(kind.description.contains("`generic`: Any other file."));
        assert_eq!(
            row("transmitter.channels[].objects[].crc").default_text(),
            "`false`"
        );
    }
}
