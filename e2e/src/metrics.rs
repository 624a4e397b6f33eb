//! Reading the Prometheus text the agents serve on `/metrics`.

use std::collections::BTreeMap;

/// One sample line: `name{label="value",...} value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Metric name (with its `_total` suffix for counters).
    pub name: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Its value.
    pub value: f64,
}

/// Every sample in a Prometheus text exposition (comments and unparsable lines are skipped).
pub fn parse(text: &str) -> Vec<Sample> {
    text.lines().filter_map(parse_line).collect()
}

/// Sum of the samples named `name` whose labels include every pair of `labels`
/// (0 when there is none).
pub fn sum(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    parse(text)
        .iter()
        .filter(|s| s.name == name)
        .filter(|s| {
            labels
                .iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
        .fold(0.0, |total, v| total + v)
}

fn parse_line(line: &str) -> Option<Sample> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let (series, value) = match line.find('{') {
        Some(_) => {
            let close = line.rfind('}')?;
            (&line[..=close], line[close + 1..].trim())
        }
        None => line.split_once(char::is_whitespace)?,
    };
    // A timestamp may follow the value.
    let value = value.split_whitespace().next()?.parse().ok()?;
    let (name, labels) = match series.split_once('{') {
        Some((name, rest)) => (name, parse_labels(rest.strip_suffix('}')?)?),
        None => (series, BTreeMap::new()),
    };
    Some(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

fn parse_labels(mut s: &str) -> Option<BTreeMap<String, String>> {
    let mut labels = BTreeMap::new();
    loop {
        s = s.trim_start_matches([',', ' ']);
        if s.is_empty() {
            return Some(labels);
        }
        let (key, rest) = s.split_once('=')?;
        let rest = rest.strip_prefix('"')?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            let (i, c) = chars.next()?;
            match c {
                '\\' => {
                    let (_, escaped) = chars.next()?;
                    value.push(if escaped == 'n' { '\n' } else { escaped });
                }
                '"' => break i,
                c => value.push(c),
            }
        };
        labels.insert(key.trim().to_string(), value);
        s = &rest[end + 1..];
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn sums_matching_series() {
        let text = "# HELP x y\n# TYPE rdg_datagrams_rejected counter\n\
            rdg_datagrams_rejected_total{network=\"primary\",reason=\"bad_mac\"} 3\n\
            rdg_datagrams_rejected_total{network=\"secondary\",reason=\"bad_mac\"} 2\n\
            rdg_datagrams_rejected_total{network=\"primary\",reason=\"too_short\"} 1\n\
            rdg_epoch 4\n# EOF\n";
        assert_eq!(super::sum(text, "rdg_datagrams_rejected_total", &[]), 6.0);
        assert_eq!(
            super::sum(
                text,
                "rdg_datagrams_rejected_total",
                &[("reason", "bad_mac")]
            ),
            5.0
        );
        assert_eq!(super::sum(text, "rdg_epoch", &[]), 4.0);
        assert_eq!(super::sum(text, "missing", &[]), 0.0);
    }
}
