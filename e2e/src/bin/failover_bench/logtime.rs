//! Reading the agents' log lines: `tracing`'s default format starts each line with an RFC 3339
//! UTC timestamp in microseconds (`2025-11-23T08:39:01.123456Z  WARN ...`), taken from the wall
//! clock (CLOCK_REALTIME) when the event is logged.

/// Microseconds since the Unix epoch of an RFC 3339 UTC timestamp such as
/// `2025-11-23T08:39:01.123456Z` (fraction of any length, `Z` only).
pub fn parse_utc_micros(ts: &str) -> Option<i64> {
    let ts = ts.strip_suffix('Z')?;
    let (date, time) = ts.split_once('T')?;
    let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (year, month, day) = (d.next()??, d.next()??, d.next()??);
    let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
    let mut t = hms.splitn(3, ':').map(|p| p.parse::<i64>().ok());
    let (h, m, s) = (t.next()??, t.next()??, t.next()??);
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Six digits of the fraction, padded or cut.
    let micros: i64 = format!("{frac:0<6}")[..6].parse().ok()?;
    let days = days_from_civil(year, month, day);
    Some(((days * 86_400 + h * 3_600 + m * 60 + s) * 1_000_000) + micros)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The value of `key=VALUE` in a log line (up to the next space).
pub fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let needle = format!(" {key}=");
    let start = line.find(&needle)? + needle.len();
    line[start..].split_whitespace().next()
}

/// The lines of `log` after byte `offset` (none when it cannot be read).
pub fn lines_after(log: &std::path::Path, offset: u64) -> Vec<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut text = String::new();
    let read = std::fs::File::open(log).and_then(|mut f| {
        f.seek(SeekFrom::Start(offset))?;
        f.read_to_string(&mut text)
    });
    match read {
        Ok(_) => text.lines().map(str::to_string).collect(),
        Err(_) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tracing_timestamps() {
        assert_eq!(parse_utc_micros("1970-01-01T00:00:00.000001Z"), Some(1));
        assert_eq!(
            parse_utc_micros("2000-03-01T00:00:01.5Z"),
            Some((951_868_800 + 1) * 1_000_000 + 500_000)
        );
        assert_eq!(parse_utc_micros("garbage"), None);
        let line = "2025-11-23T08:39:01.123456Z  WARN hot member lost (silent on every network) \
                    member=ics-a silent_ms=301";
        assert_eq!(field(line, "member"), Some("ics-a"));
        assert_eq!(field(line, "silent_ms"), Some("301"));
    }
}
