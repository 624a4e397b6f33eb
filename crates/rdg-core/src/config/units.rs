//! Parsers for the unit-bearing strings of the configuration: bit rates (`2Mbit`) and
//! addresses with a prefix length (`10.0.0.100/24`). Exact integer arithmetic, no floats, so
//! `1.5Mbit` is exactly 1 500 000 bit/s.

use std::net::IpAddr;

/// Parses a bit rate such as `2Mbit`, `500kbit`, `1.5Gbit`, `64000bit`, `2Mbit/s` or `2Mbps`
/// into bits per second. Units are case-insensitive and decimal (k = 1000, M = 10^6,
/// G = 10^9); a unit is required and zero is rejected, because a carousel must send something.
pub fn parse_bit_rate(s: &str) -> Result<u64, String> {
    let hint = "expected a number and a unit bit, kbit, Mbit or Gbit (per second), e.g. \"2Mbit\"";
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let scale_digits: u32 = match unit.trim_start().to_ascii_lowercase().as_str() {
        "bit" | "bit/s" | "bps" => 0,
        "kbit" | "kbit/s" | "kbps" => 3,
        "mbit" | "mbit/s" | "mbps" => 6,
        "gbit" | "gbit/s" | "gbps" => 9,
        _ => return Err(format!("invalid bit rate {s:?}: {hint}")),
    };
    let (whole, frac) = match number.split_once('.') {
        Some((w, f)) => (w, f),
        None => (number, ""),
    };
    if whole.is_empty() || frac.contains('.') || (number.contains('.') && frac.is_empty()) {
        return Err(format!("invalid bit rate {s:?}: {hint}"));
    }
    let too_large = || format!("invalid bit rate {s:?}: too large");
    let scale = 10u64.pow(scale_digits);
    let mut bps = whole
        .parse::<u64>()
        .map_err(|_| too_large())?
        .checked_mul(scale)
        .ok_or_else(too_large)?;
    let frac = frac.trim_end_matches('0');
    if frac.len() > scale_digits as usize {
        return Err(format!(
            "invalid bit rate {s:?}: not a whole number of bits per second"
        ));
    }
    if !frac.is_empty() {
        let digits = u32::try_from(frac.len()).map_err(|_| too_large())?;
        let f = frac.parse::<u64>().map_err(|_| too_large())?;
        let add = f * 10u64.pow(scale_digits - digits);
        bps = bps.checked_add(add).ok_or_else(too_large)?;
    }
    if bps == 0 {
        return Err(format!("invalid bit rate {s:?}: must be greater than zero"));
    }
    Ok(bps)
}

/// Parses `address/prefix` (`10.0.0.100/24`, `2001:db8::100/64`). The prefix is required and
/// must fit the family (IPv4 0..=32, IPv6 0..=128): a VIP without one would get a guessed mask.
pub fn parse_cidr(s: &str) -> Result<(IpAddr, u8), String> {
    let Some((addr, prefix)) = s.split_once('/') else {
        let guess = match s.parse::<IpAddr>() {
            Ok(IpAddr::V4(_)) => format!("; write it as {s}/24, or {s}/32 for a single address"),
            Ok(IpAddr::V6(_)) => format!("; write it as {s}/64, or {s}/128 for a single address"),
            Err(_) => String::new(),
        };
        return Err(format!(
            "invalid address {s:?}: missing prefix length (expected e.g. \"10.0.0.100/24\"){guess}"
        ));
    };
    let ip: IpAddr = addr
        .parse()
        .map_err(|_| format!("invalid address {s:?}: {addr:?} is not an IP address"))?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let len = if !prefix.is_empty() && prefix.bytes().all(|b| b.is_ascii_digit()) {
        prefix.parse::<u8>().ok().filter(|&p| p <= max)
    } else {
        None
    };
    match len {
        Some(p) => Ok((ip, p)),
        None => Err(format!(
            "invalid address {s:?}: prefix length must be a number from 0 to {max}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn bit_rates_in_every_spelling() {
        let cases = [
            ("2Mbit", 2_000_000),
            ("500kbit", 500_000),
            ("1Gbit", 1_000_000_000),
            ("64000bit", 64_000),
            ("2Mbit/s", 2_000_000),
            ("2Mbps", 2_000_000),
            ("2mbps", 2_000_000),
            ("2MBIT", 2_000_000),
            ("1.5Mbit", 1_500_000),
            ("1.50Mbit", 1_500_000),
            ("0.5kbit", 500),
            ("100bps", 100),
            ("100bit/s", 100),
            ("2 Mbit", 2_000_000),
            (" 3kbit/s ", 3_000),
            ("1.000000001Gbit", 1_000_000_001),
        ];
        for (s, want) in cases {
            assert_eq!(parse_bit_rate(s), Ok(want), "{s}");
        }
    }

    #[test]
    fn bad_bit_rates_are_rejected_with_a_hint() {
        for s in [
            "",
            "2",
            "fast",
            "2MB",
            "2Mb",
            "2 M",
            "Mbit",
            "-2Mbit",
            "2..5Mbit",
            "2.Mbit",
            ".5Mbit",
            "1.5bit",
            "0Mbit",
            "0.0kbit",
            "2Mbit/ss",
            "2Tbit",
            "2Mbit/sps",
            "99999999999999999999bit",
            "20000000000Gbit",
            "1e6bit",
            "2ps",
        ] {
            assert!(parse_bit_rate(s).is_err(), "{s:?} accepted");
        }
        let e = parse_bit_rate("fast").unwrap_err();
        assert!(e.contains("\"fast\"") && e.contains("2Mbit"), "{e}");
        assert!(
            parse_bit_rate("0Mbit")
                .unwrap_err()
                .contains("greater than zero")
        );
    }

    #[test]
    fn cidrs() {
        assert_eq!(
            parse_cidr("10.0.0.100/24"),
            Ok((IpAddr::V4(Ipv4Addr::new(10, 0, 0, 100)), 24))
        );
        assert_eq!(
            parse_cidr("2001:db8::100/64"),
            Ok((IpAddr::V6("2001:db8::100".parse::<Ipv6Addr>().unwrap()), 64))
        );
        assert_eq!(parse_cidr("10.0.0.1/0").map(|c| c.1), Ok(0));
        assert_eq!(parse_cidr("::1/128").map(|c| c.1), Ok(128));
        for bad in [
            "10.0.0.100",
            "10.0.0.100/",
            "10.0.0.100/33",
            "10.0.0.100/+8",
            "10.0.0.100/24/1",
            "10.0.0.999/24",
            "2001:db8::1/129",
            "/24",
            "host/24",
            " 10.0.0.1/24",
        ] {
            assert!(parse_cidr(bad).is_err(), "{bad:?} accepted");
        }
        assert!(
            parse_cidr("10.0.0.100")
                .unwrap_err()
                .contains("10.0.0.100/32")
        );
    }
}
