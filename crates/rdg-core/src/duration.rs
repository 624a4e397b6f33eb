//! Durations written as human strings (`"100ms"`, `"2s"`, `"1m 30s"`) in configuration files.

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A duration that reads and writes as a string such as `"100ms"` or `"2s"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Dur(pub Duration);

impl Dur {
    /// A duration of `ms` milliseconds.
    pub const fn from_millis(ms: u64) -> Dur {
        Dur(Duration::from_millis(ms))
    }

    /// The plain [`Duration`].
    pub const fn get(self) -> Duration {
        self.0
    }
}

impl From<Duration> for Dur {
    fn from(d: Duration) -> Dur {
        Dur(d)
    }
}

impl From<Dur> for Duration {
    fn from(d: Dur) -> Duration {
        d.0
    }
}

impl FromStr for Dur {
    type Err = String;

    fn from_str(s: &str) -> Result<Dur, String> {
        let t = s.trim();
        if t.is_empty() {
            return Err("empty duration (expected e.g. \"100ms\" or \"2s\")".into());
        }
        humantime::parse_duration(t)
            .map(Dur)
            .map_err(|e| format!("invalid duration {s:?} ({e}); expected e.g. \"100ms\" or \"2s\""))
    }
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_zero() {
            return f.write_str("0s");
        }
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl Serialize for Dur {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Dur, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Dur;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration string such as \"100ms\" or \"2s\"")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Dur, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

impl Dur {
    /// The JSON-schema pattern of a duration string: numbers each followed by a unit.
    pub const PATTERN: &'static str = "^\\s*[0-9]+\\s*[a-zA-Zµ]+(\\s*[0-9]+\\s*[a-zA-Zµ]+)*\\s*$";
}

impl JsonSchema for Dur {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "A duration such as \"100ms\", \"2s\" or \"1m 30s\".",
            "maxLength": 64,
            "pattern": Dur::PATTERN
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_design_examples() {
        assert_eq!("100ms".parse::<Dur>().unwrap(), Dur::from_millis(100));
        assert_eq!("2s".parse::<Dur>().unwrap(), Dur::from_millis(2000));
        assert_eq!("0s".parse::<Dur>().unwrap(), Dur::from_millis(0));
        assert_eq!(Dur::from_millis(100).to_string(), "100ms");
        assert_eq!(Dur::from_millis(1500).to_string(), "1s 500ms");
        assert_eq!(Dur::from_millis(0).to_string(), "0s");
    }

    #[test]
    fn rejects_garbage_with_a_hint() {
        for bad in ["", "fast", "100", "-1s", "1 parsec"] {
            let err = bad.parse::<Dur>().unwrap_err();
            assert!(err.contains("100ms"), "{bad}: {err}");
        }
    }

    #[test]
    fn serde_round_trip() {
        let d: Dur = serde_json::from_str("\"250ms\"").unwrap();
        assert_eq!(d, Dur::from_millis(250));
        assert_eq!(serde_json::to_string(&d).unwrap(), "\"250ms\"");
        assert!(serde_json::from_str::<Dur>("250").is_err());
    }
}
