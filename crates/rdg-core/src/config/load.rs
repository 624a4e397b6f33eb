//! Reading a group configuration: YAML (the file on every member) or JSON (the Kubernetes
//! resource's spec). Errors name the field path in the same notation as validation problems
//! (`members[0].addresses.primary: ...`), so an operator sees one consistent format.

use super::types::GroupConfig;
use super::validate::Problem;
use serde_path_to_error::{Path as FieldPath, Segment};
use std::fmt;
use std::path::{Path, PathBuf};

/// A configuration text that does not have the right shape: bad YAML/JSON, a wrong type, an
/// unknown key. `path` is the field path (`heartbeat.interval`), empty for the whole document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Field path such as `members[1].priority`; empty when the error is about the document.
    pub path: String,
    /// What is wrong, with the parser's line and column when it knows them.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

impl From<ConfigError> for Problem {
    /// A shape error as a problem, so callers can list both kinds the same way.
    fn from(e: ConfigError) -> Problem {
        Problem {
            path: e.path,
            message: e.message,
        }
    }
}

/// Why a configuration file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file that was asked for.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The text is not a configuration of the right shape.
    #[error("{0}")]
    Parse(#[from] ConfigError),
    /// The configuration parsed but breaks rules; every problem is listed.
    #[error("{}", join_problems(.0))]
    Invalid(Vec<Problem>),
}

impl LoadError {
    /// Every problem as a field path and message (one for read and shape errors), for callers
    /// that print one line per problem (`rdg check-config`).
    pub fn problems(&self) -> Vec<Problem> {
        match self {
            LoadError::Read { .. } => vec![Problem {
                path: String::new(),
                message: self.to_string(),
            }],
            LoadError::Parse(e) => vec![e.clone().into()],
            LoadError::Invalid(p) => p.clone(),
        }
    }
}

fn join_problems(problems: &[Problem]) -> String {
    let lines: Vec<String> = problems.iter().map(Problem::to_string).collect();
    lines.join("; ")
}

/// The field path in the design's notation: dotted keys, `[i]` for sequence elements.
fn format_path(path: &FieldPath) -> String {
    let mut out = String::new();
    for segment in path {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Unknown => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push('?');
            }
        }
    }
    out
}

/// serde_yaml_ng starts its messages with its own (shorter) idea of the path
/// (`heartbeat: unknown field ...`); drop it when it is a prefix of ours, so the path is not
/// printed twice.
fn strip_path_prefix<'a>(path: &str, message: &'a str) -> &'a str {
    let Some((head, rest)) = message.split_once(": ") else {
        return message;
    };
    let at_boundary = path
        .strip_prefix(head)
        .is_some_and(|tail| tail.is_empty() || tail.starts_with(['.', '[']));
    if !head.is_empty() && at_boundary {
        rest
    } else {
        message
    }
}

/// True when a YAML text holds nothing but blank lines, comments and document markers.
fn is_blank_yaml(text: &str) -> bool {
    text.lines().all(|line| {
        let t = line.trim();
        t.is_empty() || t.starts_with('#') || t == "---" || t == "..."
    })
}

impl GroupConfig {
    /// Parses a YAML configuration. Shape errors name the field path
    /// (`heartbeat.interval: invalid duration "fast" ...`); rules are checked by
    /// [`GroupConfig::validate`], not here.
    pub fn from_yaml(text: &str) -> Result<GroupConfig, ConfigError> {
        if is_blank_yaml(text) {
            return Err(ConfigError {
                path: String::new(),
                message: "empty configuration: expected a YAML mapping with at least `name` \
                          (or `name: \"\"` to run standalone)"
                    .into(),
            });
        }
        let de = serde_yaml_ng::Deserializer::from_str(text);
        serde_path_to_error::deserialize(de).map_err(|e| {
            let path = format_path(e.path());
            let message = strip_path_prefix(&path, &e.inner().to_string()).to_string();
            ConfigError { path, message }
        })
    }

    /// Parses a JSON configuration (the Kubernetes resource's spec), with the same field-path
    /// errors as [`GroupConfig::from_yaml`].
    pub fn from_json(text: &str) -> Result<GroupConfig, ConfigError> {
        let mut de = serde_json::Deserializer::from_str(text);
        let cfg: GroupConfig =
            serde_path_to_error::deserialize(&mut de).map_err(|e| ConfigError {
                path: format_path(e.path()),
                message: e.inner().to_string(),
            })?;
        de.end().map_err(|e| ConfigError {
            path: String::new(),
            message: e.to_string(),
        })?;
        Ok(cfg)
    }

    /// Reads, parses and validates a YAML configuration file: what `rdg agent` and
    /// `rdg check-config` do first. Validation failures come back as [`LoadError::Invalid`].
    pub fn load(path: &Path) -> Result<GroupConfig, LoadError> {
        let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let cfg = GroupConfig::from_yaml(&text)?;
        cfg.validate().map_err(LoadError::Invalid)?;
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Dur;

    fn err(yaml: &str) -> ConfigError {
        match GroupConfig::from_yaml(yaml) {
            Ok(cfg) => panic!("parsed: {cfg:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn minimal_document_gets_defaults() {
        let cfg = GroupConfig::from_yaml("name: g\n").expect("parses");
        assert_eq!(cfg.name, "g");
        assert_eq!(cfg.heartbeat.interval, Dur::from_millis(100));
        assert_eq!(cfg.heartbeat.timeout, Dur::from_millis(500));
        let standalone = GroupConfig::from_yaml("name: \"\"\n").expect("parses");
        assert!(standalone.is_standalone());
    }

    #[test]
    fn empty_document_is_a_clear_error() {
        for text in ["", "   \n", "# only a comment\n", "---\n"] {
            let e = err(text);
            assert_eq!(e.path, "");
            assert!(e.message.contains("empty configuration"), "{e}");
        }
    }

    #[test]
    fn bad_duration_names_its_field() {
        let e = err("name: g\nheartbeat:\n  interval: fast\n");
        assert_eq!(e.path, "heartbeat.interval");
        assert!(e.message.contains("invalid duration \"fast\""), "{e}");
        assert!(
            e.to_string()
                .starts_with("heartbeat.interval: invalid duration")
        );
    }

    #[test]
    fn sequence_indices_use_brackets() {
        let yaml =
            "name: g\nmembers:\n  - {name: a, priority: 1}\n  - {name: b, priority: 70000}\n";
        let e = err(yaml);
        assert_eq!(e.path, "members[1].priority");
        assert!(e.message.contains("70000"), "{e}");

        let yaml =
            "name: g\nmembers:\n  - {name: a, priority: 1, addresses: {primary: 10.0.0.999}}\n";
        assert_eq!(err(yaml).path, "members[0].addresses.primary");
    }

    #[test]
    fn unknown_keys_say_where_they_are() {
        let e = err("name: g\nheartbeat:\n  intervall: 100ms\n");
        assert!(e.path.starts_with("heartbeat"), "{e}");
        assert!(e.message.contains("intervall"), "{e}");
        let e = err("name: g\nnetworks:\n  - {name: p, multicst: 224.0.0.35}\n");
        assert!(e.path.starts_with("networks[0]"), "{e}");
        let e = err("name: g\nnmae: x\n");
        assert!(e.message.contains("nmae"), "{e}");
    }

    #[test]
    fn not_a_mapping() {
        let e = err("- a\n- b\n");
        assert_eq!(e.path, "");
        assert!(!e.message.is_empty());
    }

    #[test]
    fn json_has_the_same_paths() {
        let ok = GroupConfig::from_json(r#"{"name": "g", "heartbeat": {"interval": "50ms"}}"#)
            .expect("parses");
        assert_eq!(ok.heartbeat.interval, Dur::from_millis(50));
        let e =
            GroupConfig::from_json(r#"{"name": "g", "members": [{"name": "a", "priority": -1}]}"#)
                .expect_err("negative priority");
        assert_eq!(e.path, "members[0].priority");
        let e = GroupConfig::from_json(r#"{"name": "g"} trailing"#).expect_err("trailing");
        assert!(e.message.contains("trailing"), "{e}");
    }

    #[test]
    fn load_reports_read_errors_with_the_path() {
        let e = GroupConfig::load(Path::new("/nonexistent/rdg.yaml")).expect_err("no file");
        assert!(matches!(e, LoadError::Read { .. }));
        assert!(e.to_string().contains("/nonexistent/rdg.yaml"), "{e}");
        assert_eq!(e.problems().len(), 1);
    }
}
