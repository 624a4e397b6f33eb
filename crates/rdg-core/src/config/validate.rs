//! The rules a parsed configuration must follow before any member runs with it. Every problem
//! is reported (never only the first), each with the field path of the value to fix, so one
//! `rdg check-config` run lists everything an operator has to change.

use super::types::{
    Bootcast, CarouselObject, GroupConfig, Member, NotifyEmail, ObjectKind, SmtpSecurity,
};
use super::units::{parse_bit_rate, parse_cidr};
use crate::Dur;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

/// Longest group, member or network name in bytes. Names travel in every heartbeat, whose
/// format has room for 63 bytes (this is `crate::wire::MAX_NAME`).
const MAX_NAME: usize = 63;
/// Most keys `auth.keyFiles` may list (a rotation needs two).
const MAX_KEYS: usize = 4;

/// Smallest and largest carousel payload per datagram. 65 000 stays below the 65 507 bytes a
/// UDP/IPv4 datagram can carry, leaving room for the carousel header; under 16 is all header.
const PAYLOAD_RANGE: std::ops::RangeInclusive<u32> = 16..=65_000;

/// Longest pause after a carousel cycle: a box that joins during it waits that long.
const MAX_BURST_DELAY: Duration = Duration::from_secs(60);

/// Longest delay between repetitions of one object.
const MAX_REPEAT_DELAY: Duration = Duration::from_secs(3600);

/// One thing wrong with a configuration: the field path to fix and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Field path in the file's notation, e.g. `members[1].addresses.secondary`.
    pub path: String,
    /// What is wrong and, where it helps, why the rule exists.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Collects problems in file order.
#[derive(Default)]
struct Report {
    problems: Vec<Problem>,
}

impl Report {
    fn add(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem {
            path: path.into(),
            message: message.into(),
        });
    }
}

fn is_zero(d: Dur) -> bool {
    d.get().is_zero()
}

fn is_broadcast(ip: IpAddr) -> bool {
    matches!(ip, IpAddr::V4(v4) if v4 == Ipv4Addr::BROADCAST)
}

fn family(ip: IpAddr) -> &'static str {
    if ip.is_ipv4() { "IPv4" } else { "IPv6" }
}

/// Why `ip` cannot be a unicast address of a host (member address, ping target), if it can't.
fn not_a_host(ip: IpAddr) -> Option<&'static str> {
    if ip.is_unspecified() {
        Some("is the unspecified address")
    } else if ip.is_multicast() {
        Some("is a multicast address")
    } else if is_broadcast(ip) {
        Some("is the broadcast address")
    } else {
        None
    }
}

/// Checks a group, member or network name: wire length, a safe alphabet (names end up in
/// file names, log lines and `--member` arguments), and a letter or digit first.
fn check_name(r: &mut Report, path: &str, what: &str, name: &str) {
    if name.is_empty() {
        r.add(path, format!("{what} name must not be empty"));
        return;
    }
    if name.len() > MAX_NAME {
        r.add(
            path,
            format!(
                "{what} name {name:?} is {} bytes long; at most {MAX_NAME} fit in a heartbeat",
                name.len()
            ),
        );
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if let Some(c) = name.chars().find(|&c| !allowed(c)) {
        r.add(
            path,
            format!(
                "{what} name {name:?} contains {c:?}; use only letters, digits, '-', '_' and '.'"
            ),
        );
    } else if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        r.add(
            path,
            format!("{what} name {name:?} must start with a letter or a digit"),
        );
    }
}

/// Checks `notify.email`: a server, a sender and recipients that are mail addresses, files as
/// absolute paths, sane times.
fn check_email(r: &mut Report, e: &NotifyEmail) {
    if e.server.trim().is_empty() {
        r.add(
            "notify.email.server",
            "must name the SMTP server (host name or IP address)",
        );
    } else if !is_host(&e.server) {
        r.add(
            "notify.email.server",
            format!(
                "{:?} is not a host name or IP address (the port goes in notify.email.port; no \
                 URL, user or spaces)",
                e.server
            ),
        );
    }
    if e.port == Some(0) {
        r.add(
            "notify.email.port",
            "must not be 0 (leave it out for the usual port of the security mode)",
        );
    }
    for (path, file) in [
        ("notify.email.credentialsFile", &e.credentials_file),
        ("notify.email.caFile", &e.ca_file),
    ] {
        if let Some(f) = file {
            if !f.starts_with('/') || f.ends_with('/') {
                r.add(path, format!("{f:?} must be an absolute path to a file"));
            }
        }
    }
    if e.credentials_file.is_some() && e.security == SmtpSecurity::None {
        r.add(
            "notify.email.credentialsFile",
            "with security none the password would cross the network in clear; use starttls or \
             tls",
        );
    }
    if let Err(why) = check_mailbox(&e.from) {
        r.add("notify.email.from", why);
    }
    if e.to.is_empty() {
        r.add("notify.email.to", "must list at least one recipient");
    }
    let mut seen = HashMap::new();
    for (i, to) in e.to.iter().enumerate() {
        match check_mailbox(to) {
            Err(why) => r.add(format!("notify.email.to[{i}]"), why),
            Ok(addr) => {
                if let Some(first) = seen.insert(addr.to_ascii_lowercase(), i) {
                    r.add(
                        format!("notify.email.to[{i}]"),
                        format!("{addr} is listed twice (also at to[{first}])"),
                    );
                }
            }
        }
    }
    if e.subject_prefix.contains(['\r', '\n']) {
        r.add("notify.email.subjectPrefix", "must be one line");
    }
    if e.min_interval.get() < Duration::from_secs(1) {
        r.add(
            "notify.email.minInterval",
            format!(
                "{}: use at least 1s (events within it are summed up in one mail)",
                e.min_interval
            ),
        );
    }
    if is_zero(e.timeout) {
        r.add("notify.email.timeout", "must be greater than 0");
    }
}

/// True for an IP address or a DNS host name (labels of letters, digits, '-' and '_').
fn is_host(s: &str) -> bool {
    let label = |l: &str| {
        (1..=63).contains(&l.len())
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
    };
    s.parse::<IpAddr>().is_ok() || (s.len() <= 253 && s.trim_end_matches('.').split('.').all(label))
}

fn unbalanced(mailbox: &str) -> String {
    format!("{mailbox:?}: unbalanced < > (use Name <user@example.com>)")
}

/// Checks one mailbox, `user@example.com` or `Name <user@example.com>`; returns the address.
pub fn check_mailbox(mailbox: &str) -> Result<&str, String> {
    let text = mailbox.trim();
    let addr = match text.strip_suffix('>') {
        Some(rest) => match rest.rsplit_once('<') {
            Some((name, addr)) if !name.contains(['<', '>', '\r', '\n']) => addr.trim(),
            _ => return Err(unbalanced(mailbox)),
        },
        None if text.contains(['<', '>']) => return Err(unbalanced(mailbox)),
        None => text,
    };
    let opts = email_address::Options::default().without_display_text();
    match email_address::EmailAddress::parse_with_options(addr, opts) {
        Ok(_) if addr.contains('@') => Ok(addr),
        Ok(_) => Err(format!(
            "{mailbox:?} is not a mail address (user@example.com)"
        )),
        Err(e) => Err(format!(
            "{mailbox:?} is not a mail address: {} (use user@example.com or Name \
             <user@example.com>)",
            e.to_string().trim_end_matches('.').to_lowercase()
        )),
    }
}

impl GroupConfig {
    /// Checks every rule; `Err` carries all problems, in file order, each with its field path.
    pub fn validate(&self) -> Result<(), Vec<Problem>> {
        let problems = self.problems();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    /// Every problem of this configuration, in file order; empty when it is valid.
    pub fn problems(&self) -> Vec<Problem> {
        let mut r = Report::default();
        self.check_group(&mut r);
        self.check_heartbeat(&mut r);
        self.check_networks(&mut r);
        self.check_members(&mut r);
        self.check_timeouts(&mut r);
        self.check_net_check(&mut r);
        self.check_vips(&mut r);
        self.check_files(&mut r);
        self.check_status(&mut r);
        self.check_transmitter(&mut r);
        self.check_notify(&mut r);
        self.check_garp(&mut r);
        r.problems
    }

    /// `(declared: a, b)`, for messages about an unknown network name.
    fn declared_networks(&self) -> String {
        if self.networks.is_empty() {
            "(no networks are declared)".to_string()
        } else {
            let mut names: Vec<&str> = Vec::new();
            for net in &self.networks {
                if !names.contains(&net.name.as_str()) {
                    names.push(&net.name);
                }
            }
            format!("(declared: {})", names.join(", "))
        }
    }

    /// Every member address with its path, for uniqueness and "is a member address" checks.
    fn member_addresses(&self) -> Vec<(IpAddr, String)> {
        let mut out = Vec::new();
        for (i, m) in self.members.iter().enumerate() {
            for (net, ip) in &m.addresses {
                out.push((*ip, format!("members[{i}].addresses.{net}")));
            }
        }
        out
    }

    fn check_group(&self, r: &mut Report) {
        if !self.is_standalone() {
            check_name(r, "name", "group", &self.name);
        }
        let n = self.networks.len();
        if n == 0 && !self.is_standalone() {
            r.add(
                "networks",
                "a group needs one or two networks to heartbeat on (or name: \"\" to run \
                 standalone)",
            );
        } else if n > 2 {
            r.add(
                "networks",
                format!("at most two networks are supported; found {n}"),
            );
        }
        if !self.is_standalone() {
            if self.members.is_empty() {
                r.add(
                    "members",
                    "a group needs at least one member (or name: \"\" to run standalone)",
                );
            } else if self.members.iter().all(|m| m.priority == 0) {
                r.add(
                    "members",
                    "every member has priority 0, so none would ever become hot without an \
                     operator's command; give at least one member a priority above 0",
                );
            }
        }
    }

    fn check_heartbeat(&self, r: &mut Report) {
        let hb = &self.heartbeat;
        if is_zero(hb.interval) {
            r.add("heartbeat.interval", "must be greater than 0s");
        }
        if hb.timeout <= hb.interval {
            r.add(
                "heartbeat.timeout",
                format!(
                    "must be greater than heartbeat.interval ({}); got {}: the hot member is \
                     declared lost only after missing heartbeats",
                    hb.interval, hb.timeout
                ),
            );
        }
        if hb.port == 0 {
            r.add("heartbeat.port", "must not be 0");
        }
        if hb.ttl == 0 {
            r.add(
                "heartbeat.ttl",
                "must be at least 1 (0 keeps heartbeats on the sending host)",
            );
        }
    }

    fn check_networks(&self, r: &mut Report) {
        let mut names: HashMap<&str, usize> = HashMap::new();
        let mut groups: HashMap<IpAddr, usize> = HashMap::new();
        for (i, net) in self.networks.iter().enumerate() {
            let path = format!("networks[{i}].name");
            check_name(r, &path, "network", &net.name);
            if net.name.is_empty() {
                // Already reported by check_name.
            } else if let Some(first) = names.get(net.name.as_str()) {
                r.add(
                    path,
                    format!(
                        "duplicate network name {:?} (also networks[{first}])",
                        net.name
                    ),
                );
            } else {
                names.insert(&net.name, i);
            }
            let Some(group) = net.multicast else { continue };
            let path = format!("networks[{i}].multicast");
            if !group.is_multicast() {
                r.add(
                    path,
                    format!(
                        "{group} is not a multicast address (IPv4 224.0.0.0/4 or IPv6 ff00::/8); \
                         leave multicast out to heartbeat by unicast"
                    ),
                );
            } else if let Some(first) = groups.get(&group) {
                r.add(
                    path,
                    format!(
                        "same multicast group as networks[{first}] ({group}); each network needs \
                         its own group so a heartbeat counts for the network it arrived on"
                    ),
                );
            } else {
                groups.insert(group, i);
            }
        }
    }

    fn check_members(&self, r: &mut Report) {
        let mut names: HashMap<&str, usize> = HashMap::new();
        let mut owners: HashMap<IpAddr, String> = HashMap::new();
        // Per network: the address family in use and where it was set.
        let mut families: BTreeMap<usize, (IpAddr, String)> = BTreeMap::new();
        for (n, net) in self.networks.iter().enumerate() {
            if let Some(group) = net.multicast.filter(|g| g.is_multicast()) {
                families.insert(n, (group, format!("multicast group {group}")));
            }
        }
        for (i, m) in self.members.iter().enumerate() {
            let path = format!("members[{i}].name");
            check_name(r, &path, "member", &m.name);
            if m.name.is_empty() {
                // Already reported by check_name.
            } else if let Some(first) = names.get(m.name.as_str()) {
                r.add(
                    path,
                    format!("duplicate member name {:?} (also members[{first}])", m.name),
                );
            } else {
                names.insert(&m.name, i);
            }
            self.check_member_addresses(r, i, m, &mut owners, &mut families);
        }
    }

    fn check_member_addresses(
        &self,
        r: &mut Report,
        i: usize,
        m: &Member,
        owners: &mut HashMap<IpAddr, String>,
        families: &mut BTreeMap<usize, (IpAddr, String)>,
    ) {
        for (net, &ip) in &m.addresses {
            let path = format!("members[{i}].addresses.{net}");
            let Some(n) = self.network_index(net) else {
                r.add(
                    path,
                    format!("no network named {net:?} {}", self.declared_networks()),
                );
                continue;
            };
            if let Some(why) = not_a_host(ip) {
                r.add(
                    path,
                    format!("{ip} {why}; a member address must be a unicast address of the member"),
                );
                continue;
            }
            if let Some(first) = owners.get(&ip) {
                r.add(
                    path,
                    format!(
                        "address {ip} is already {first}; every member needs its own address \
                         on each network"
                    ),
                );
                continue;
            }
            owners.insert(ip, path.clone());
            match families.get(&n) {
                Some((other, what)) if other.is_ipv4() != ip.is_ipv4() => r.add(
                    path,
                    format!(
                        "{} address {ip} on network {net:?}, whose {what} is {}",
                        family(ip),
                        family(*other)
                    ),
                ),
                Some(_) => {}
                None => {
                    families.insert(n, (ip, format!("other address {ip} ({path})")));
                }
            }
        }
        for net in &self.networks {
            if net.name.is_empty() || m.addresses.contains_key(&net.name) {
                continue;
            }
            let why = if net.multicast.is_none() {
                format!(
                    "network {:?} is unicast, so the other members send heartbeats to this \
                     address",
                    net.name
                )
            } else {
                "every member needs an address on every network, which picks its interface"
                    .to_string()
            };
            r.add(
                format!("members[{i}].addresses.{}", net.name),
                format!("missing: {why}"),
            );
        }
    }

    fn check_timeouts(&self, r: &mut Report) {
        let t = &self.timeouts;
        let hb = &self.heartbeat;
        let all = [
            ("timeouts.election", t.election),
            ("timeouts.waitingHot", t.waiting_hot),
            ("timeouts.waitingReadyHot", t.waiting_ready_hot),
            ("timeouts.startingToStandby", t.starting_to_standby),
            ("timeouts.startingToHot", t.starting_to_hot),
            ("timeouts.toStandbyWaitForHot", t.to_standby_wait_for_hot),
            ("timeouts.toStandbyWaitAnsConn", t.to_standby_wait_ans_conn),
        ];
        for (path, d) in all {
            if is_zero(d) {
                r.add(path, "must be greater than 0s");
            }
        }
        if !is_zero(t.election) && t.election < hb.timeout {
            r.add(
                "timeouts.election",
                format!(
                    "{} is shorter than heartbeat.timeout ({}): a starting member must listen at \
                     least as long as a standby waits before declaring the hot member lost",
                    t.election, hb.timeout
                ),
            );
        }
        let needed = Dur(t.election.get().saturating_add(hb.timeout.get()));
        if !is_zero(t.waiting_hot) && t.waiting_hot <= needed {
            r.add(
                "timeouts.waitingHot",
                format!(
                    "{} must be greater than timeouts.election + heartbeat.timeout ({} + {} = \
                     {needed}): a standby that lost the election must wait long enough for the \
                     winner to finish its own election and be heard",
                    t.waiting_hot, t.election, hb.timeout
                ),
            );
        }
        let two_beats = Dur(hb.interval.get().saturating_mul(2));
        let awaiting = [
            ("timeouts.waitingReadyHot", t.waiting_ready_hot),
            ("timeouts.startingToStandby", t.starting_to_standby),
            ("timeouts.toStandbyWaitForHot", t.to_standby_wait_for_hot),
            ("timeouts.toStandbyWaitAnsConn", t.to_standby_wait_ans_conn),
        ];
        for (path, d) in awaiting {
            if !is_zero(d) && d < two_beats {
                r.add(
                    path,
                    format!(
                        "{d} must be at least 2 * heartbeat.interval ({two_beats}) so the awaited \
                         heartbeat can arrive"
                    ),
                );
            }
        }
    }

    fn check_net_check(&self, r: &mut Report) {
        let nc = &self.net_check;
        let mut seen: HashMap<IpAddr, usize> = HashMap::new();
        let vips: Vec<(IpAddr, usize)> = self
            .vips
            .iter()
            .enumerate()
            .filter_map(|(i, v)| parse_cidr(&v.address).ok().map(|(ip, _)| (ip, i)))
            .collect();
        for (i, &ip) in nc.targets.iter().enumerate() {
            let path = format!("netCheck.targets[{i}]");
            if let Some(why) = not_a_host(ip) {
                r.add(
                    path,
                    format!("{ip} {why}; a ping target must be a unicast host"),
                );
            } else if let Some(first) = seen.get(&ip) {
                r.add(
                    path,
                    format!("duplicate target {ip} (also netCheck.targets[{first}])"),
                );
            } else if let Some((_, v)) = vips.iter().find(|(vip, _)| *vip == ip) {
                r.add(
                    path,
                    format!(
                        "{ip} is the VIP of vips[{v}]; it moves with the hot member, so it cannot \
                         tell a standby whether the standby is isolated"
                    ),
                );
            }
            seen.entry(ip).or_insert(i);
        }
        let members = self.member_addresses();
        let is_member = |ip: &IpAddr| members.iter().any(|(m, _)| m == ip);
        if !nc.targets.is_empty() && nc.targets.iter().all(is_member) {
            r.add(
                "netCheck.targets",
                "every target is a member address: when the other members are down none answers \
                 and no standby can take over; add at least one non-member (e.g. the gateway)",
            );
        }
        if nc.targets.is_empty() {
            return;
        }
        if is_zero(nc.timeout) {
            r.add(
                "netCheck.timeout",
                "must be greater than 0s when targets are given",
            );
            return;
        }
        let n = nc.targets.len();
        let pings = u32::try_from(n.saturating_mul(2)).unwrap_or(u32::MAX);
        let total = nc.timeout.get().checked_mul(pings).unwrap_or(Duration::MAX);
        let election = self.timeouts.election;
        if !is_zero(election) && total >= election.get() {
            let noun = if n == 1 { "target" } else { "targets" };
            r.add(
                "netCheck.timeout",
                format!(
                    "2 * {n} {noun} * {} = {} must be less than timeouts.election ({election}) \
                     (the D2000 rule 2 * N * netCheck.timeout < timeouts.election: before taking \
                     over, a member pings every target twice within its election)",
                    nc.timeout,
                    Dur(total)
                ),
            );
        }
    }

    fn check_vips(&self, r: &mut Report) {
        let members = self.member_addresses();
        let mut seen: HashMap<IpAddr, usize> = HashMap::new();
        for (i, vip) in self.vips.iter().enumerate() {
            let path = format!("vips[{i}].address");
            match parse_cidr(&vip.address) {
                Err(e) => r.add(path, e),
                Ok((ip, prefix)) => {
                    if let Some(why) = vip_problem(ip, prefix) {
                        r.add(path, format!("{} {why}", vip.address));
                    } else if let Some(first) = seen.get(&ip) {
                        r.add(path, format!("duplicate VIP {ip} (also vips[{first}])"));
                    } else if let Some((_, owner)) = members.iter().find(|(m, _)| *m == ip) {
                        r.add(
                            path,
                            format!(
                                "{ip} is {owner}; a VIP must be an address no member owns, since \
                                 it moves with the hot member"
                            ),
                        );
                    }
                    seen.entry(ip).or_insert(i);
                }
            }
            if self.network_index(&vip.network).is_none() {
                r.add(
                    format!("vips[{i}].network"),
                    format!(
                        "no network named {:?} {}",
                        vip.network,
                        self.declared_networks()
                    ),
                );
            }
        }
    }

    fn check_files(&self, r: &mut Report) {
        if let Some(path) = &self.role_file {
            if path.is_empty() {
                r.add(
                    "roleFile",
                    "must not be empty (leave roleFile out for /run/rdg/<name>.role)",
                );
            } else if !path.starts_with('/') {
                r.add(
                    "roleFile",
                    format!(
                        "{path:?} must be an absolute path: the agent and `rdg gate` must find \
                         the same file whatever their working directory"
                    ),
                );
            } else if path.ends_with('/') {
                r.add(
                    "roleFile",
                    format!("{path:?} must name a file, not a directory"),
                );
            }
        }
        if let Some(auth) = &self.auth {
            match (&auth.key_file, auth.key_files.is_empty()) {
                (None, true) => r.add(
                    "auth",
                    "needs keyFile (or keyFiles while rotating keys); leave auth out to send \
                     heartbeats without a MAC",
                ),
                (Some(_), false) => r.add(
                    "auth.keyFiles",
                    "give keyFile or keyFiles, not both (keyFiles: the signing key first)",
                ),
                (Some(f), true) if f.trim().is_empty() => r.add(
                    "auth.keyFile",
                    "must not be empty (leave auth out to send heartbeats without a MAC)",
                ),
                _ => {}
            }
            for (i, f) in auth.key_files.iter().enumerate() {
                if f.trim().is_empty() {
                    r.add(format!("auth.keyFiles[{i}]"), "must not be empty");
                } else if auth.key_files[..i].contains(f) {
                    r.add(
                        format!("auth.keyFiles[{i}]"),
                        format!("{f:?} is listed twice"),
                    );
                }
            }
            if auth.key_files.len() > MAX_KEYS {
                r.add(
                    "auth.keyFiles",
                    format!("at most {MAX_KEYS} keys (every datagram may be checked against each)"),
                );
            }
        }
    }

    fn check_garp(&self, r: &mut Report) {
        let g = &self.garp;
        if !(1..=100).contains(&g.count) {
            r.add(
                "garp.count",
                format!("{} announcements: use 1 to 100", g.count),
            );
        }
        if g.count > 1 && is_zero(g.spacing) {
            r.add(
                "garp.spacing",
                "must be greater than 0 when count is above 1 (a burst in one instant is one announcement to most switches)",
            );
        }
        let refresh = g.refresh.get();
        if !refresh.is_zero() && refresh < Duration::from_millis(100) {
            r.add(
                "garp.refresh",
                format!("{}: use 0s (off) or at least 100ms", g.refresh),
            );
        }
    }

    fn check_notify(&self, r: &mut Report) {
        let Some(notify) = &self.notify else {
            return;
        };
        match notify.command.first() {
            None if notify.email.is_none() => r.add(
                "notify.command",
                "must name a program unless notify.email is given (leave notify out to notify \
                 nothing)",
            ),
            None => {}
            Some(p) if p.trim().is_empty() => {
                r.add("notify.command[0]", "the program must not be empty")
            }
            Some(_) => {}
        }
        if is_zero(notify.timeout) {
            r.add("notify.timeout", "must be greater than 0");
        }
        if let Some(email) = &notify.email {
            check_email(r, email);
        }
    }

    fn check_status(&self, r: &mut Report) {
        if self.status.listen.port() == 0 {
            r.add(
                "status.listen",
                format!(
                    "{}: port must not be 0 (probes and `rdg status` need a known port)",
                    self.status.listen
                ),
            );
        }
        if let Some(path) = &self.status.token_file {
            if !path.starts_with('/') || path.ends_with('/') {
                r.add(
                    "status.tokenFile",
                    format!(
                        "{path:?} must be an absolute path to a file: the agent, `rdg switchover` \
                         and the reporter must find the same file (leave it out for \
                         /run/rdg/<name>.token)"
                    ),
                );
            }
        }
    }

    fn check_transmitter(&self, r: &mut Report) {
        let Some(tx) = &self.transmitter else { return };
        if tx.channels.is_empty() {
            r.add(
                "transmitter.channels",
                "at least one channel is required (leave transmitter out to send nothing)",
            );
        }
        let heartbeat_groups: Vec<IpAddr> =
            self.networks.iter().filter_map(|n| n.multicast).collect();
        let mut seen: HashMap<(IpAddr, u16), usize> = HashMap::new();
        for (i, ch) in tx.channels.iter().enumerate() {
            let at = format!("transmitter.channels[{i}]");
            if !ch.address.is_multicast() {
                r.add(
                    format!("{at}.address"),
                    format!(
                        "{} is not a multicast address; the carousel is sent to a multicast \
                         group (IPv4 224.0.0.0/4 or IPv6 ff00::/8)",
                        ch.address
                    ),
                );
            } else if let Some(first) = seen.get(&(ch.address, ch.port)) {
                r.add(
                    format!("{at}.address"),
                    format!(
                        "same address and port as transmitter.channels[{first}] ({}:{})",
                        ch.address, ch.port
                    ),
                );
            } else if ch.port == self.heartbeat.port && heartbeat_groups.contains(&ch.address) {
                r.add(
                    format!("{at}.address"),
                    format!(
                        "{}:{} is where heartbeats are sent; the carousel needs its own group \
                         or port",
                        ch.address, ch.port
                    ),
                );
            }
            seen.entry((ch.address, ch.port)).or_insert(i);
            if ch.port == 0 {
                r.add(format!("{at}.port"), "must not be 0");
            }
            if ch.ttl == 0 {
                r.add(
                    format!("{at}.ttl"),
                    "must be at least 1 (0 keeps the carousel on the sending host)",
                );
            }
            if let Err(e) = parse_bit_rate(&ch.bit_rate) {
                r.add(format!("{at}.bitRate"), e);
            }
            if !PAYLOAD_RANGE.contains(&ch.payload_size) {
                r.add(
                    format!("{at}.payloadSize"),
                    format!(
                        "{} is outside {}..={}: a UDP datagram carries at most 65507 bytes, \
                         including the carousel header",
                        ch.payload_size,
                        PAYLOAD_RANGE.start(),
                        PAYLOAD_RANGE.end()
                    ),
                );
            }
            if let Some(d) = ch.burst_delay {
                if d.get() > MAX_BURST_DELAY {
                    r.add(
                        format!("{at}.burstDelay"),
                        format!(
                            "{d} is too long: use at most {} (a box that joins waits for the \
                             next cycle)",
                            Dur(MAX_BURST_DELAY)
                        ),
                    );
                }
            }
            if ch.objects.is_empty() {
                r.add(
                    format!("{at}.objects"),
                    "at least one object is required: a channel without objects sends nothing",
                );
            }
            let mut names: HashMap<&str, usize> = HashMap::new();
            for (j, obj) in ch.objects.iter().enumerate() {
                let path = format!("{at}.objects[{j}].name");
                if obj.name.trim().is_empty() {
                    r.add(path, "must not be empty");
                } else if obj.name.chars().any(char::is_control) {
                    r.add(
                        path,
                        format!(
                            "{:?} contains control characters (it is shown to receivers and in \
                             logs)",
                            obj.name
                        ),
                    );
                } else if let Some(first) = names.get(obj.name.as_str()) {
                    r.add(
                        path,
                        format!(
                            "duplicate object name {:?} (also {at}.objects[{first}])",
                            obj.name
                        ),
                    );
                } else {
                    names.insert(&obj.name, j);
                }
                check_object(r, &format!("{at}.objects[{j}]"), obj);
            }
        }
    }
}

/// Keys of a generated boot descriptor that `bootcast.extra` must not repeat.
const BOOTCAST_KEYS: [&str; 5] = [
    "name",
    "kernelAddress",
    "kernelName",
    "kernelVersion",
    "kernelArgs",
];

/// Checks one carousel object at `at` (`transmitter.channels[i].objects[j]`), apart from its
/// name (unique per channel, checked by the caller).
fn check_object(r: &mut Report, at: &str, obj: &CarouselObject) {
    match (&obj.source, &obj.bootcast) {
        (Some(_), Some(_)) => r.add(
            at,
            "give either source or bootcast, not both (bootcast generates the object's bytes)",
        ),
        (None, None) => r.add(
            format!("{at}.source"),
            "is required (or bootcast for a generated bootcastinfo object): name the file \
             whose bytes are the object",
        ),
        (Some(src), None) if src.trim().is_empty() => r.add(
            format!("{at}.source"),
            "must not be empty: name the file whose bytes are the object",
        ),
        _ => {}
    }
    if let Some(b) = &obj.bootcast {
        check_bootcast(r, &format!("{at}.bootcast"), obj.kind, b);
    }
    if let Some(d) = obj.repeat_delay {
        if is_zero(d) {
            r.add(
                format!("{at}.repeatDelay"),
                "must be greater than 0 (leave repeatDelay out to send the object in every cycle)",
            );
        } else if d.get() > MAX_REPEAT_DELAY {
            r.add(
                format!("{at}.repeatDelay"),
                format!(
                    "{d} is too long: use at most {} (a box that joins may wait that long for \
                     the object)",
                    Dur(MAX_REPEAT_DELAY)
                ),
            );
        }
    }
}

/// Checks the generated boot descriptor's fields at `at` (`...objects[j].bootcast`).
fn check_bootcast(r: &mut Report, at: &str, kind: ObjectKind, b: &Bootcast) {
    if kind != ObjectKind::Bootcastinfo {
        r.add(
            at,
            "is only for objects of type bootcastinfo (a generic object is read from source)",
        );
    }
    let ip = b.kernel_address.ip();
    if !ip.is_multicast() {
        r.add(
            format!("{at}.kernelAddress"),
            format!(
                "{ip} is not a multicast address; boxes fetch the kernel from a carousel group"
            ),
        );
    } else if b.kernel_address.port() == 0 {
        r.add(format!("{at}.kernelAddress"), "port must not be 0");
    }
    for (field, value) in [
        ("kernelName", b.kernel_name.as_str()),
        ("kernelVersion", b.kernel_version.as_str()),
    ] {
        if value.trim().is_empty() {
            r.add(format!("{at}.{field}"), "must not be empty");
        } else if value.chars().any(char::is_control) {
            r.add(
                format!("{at}.{field}"),
                format!("{value:?} contains control characters (the descriptor is one key=value per line)"),
            );
        }
    }
    if let Some(args) = &b.kernel_args {
        if args.chars().any(char::is_control) {
            r.add(
                format!("{at}.kernelArgs"),
                "contains control characters (the descriptor is one key=value per line)",
            );
        }
    }
    for (key, value) in &b.extra {
        let path = format!("{at}.extra.{key}");
        let key_ok = !key.is_empty()
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if !key_ok {
            r.add(
                path,
                "keys use letters, digits, '_', '-' and '.' only (they become key=value lines)",
            );
        } else if BOOTCAST_KEYS.contains(&key.as_str()) {
            r.add(
                path,
                format!("{key:?} is generated from the named field; set that field instead"),
            );
        } else if value.chars().any(char::is_control) {
            r.add(
                path,
                "contains control characters (the descriptor is one key=value per line)",
            );
        }
    }
}

/// Why `ip/prefix` cannot be a VIP, if it can't.
fn vip_problem(ip: IpAddr, prefix: u8) -> Option<&'static str> {
    if ip.is_unspecified() {
        return Some("is the unspecified address, not a VIP");
    }
    if ip.is_multicast() {
        return Some("is a multicast address, not a VIP");
    }
    if ip.is_loopback() {
        return Some("is a loopback address; a VIP must be reachable from other hosts");
    }
    if is_broadcast(ip) {
        return Some("is the broadcast address, not a VIP");
    }
    if prefix == 0 {
        return Some("has prefix length 0, which would make every address on-link");
    }
    if let IpAddr::V4(v4) = ip {
        if prefix <= 30 {
            let host_mask = u32::MAX >> prefix;
            let host = u32::from(v4) & host_mask;
            if host == 0 {
                return Some("is the network address of its subnet, not a usable VIP");
            }
            if host == host_mask {
                return Some("is the broadcast address of its subnet, not a usable VIP");
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Auth, CarouselObject, Channel, ObjectKind, Transmitter, Vip};

    const GROUP: &str = "\
name: infocast
networks:
  - {name: primary, multicast: 224.0.0.35}
  - {name: secondary, multicast: 224.0.0.36}
members:
  - {name: ics-a, priority: 100, addresses: {primary: 10.0.0.11, secondary: 192.168.100.11}}
  - {name: ics-b, priority: 50, addresses: {primary: 10.0.0.12, secondary: 192.168.100.12}}
netCheck: {targets: [10.0.0.1, 10.0.0.254], timeout: 200ms}
vips: [{address: 10.0.0.100/24, network: primary}]
";

    fn group() -> GroupConfig {
        let cfg = GroupConfig::from_yaml(GROUP).expect("parses");
        assert_eq!(cfg.validate(), Ok(()));
        cfg
    }

    fn paths(cfg: &GroupConfig) -> Vec<String> {
        cfg.problems().into_iter().map(|p| p.path).collect()
    }

    /// The one problem at `path`; fails when there is none or several.
    fn problem_at(cfg: &GroupConfig, path: &str) -> String {
        let all = cfg.problems();
        let at: Vec<&Problem> = all.iter().filter(|p| p.path == path).collect();
        assert_eq!(at.len(), 1, "expected one problem at {path}: {all:#?}");
        at[0].message.clone()
    }

    #[test]
    fn defaults_are_valid() {
        let standalone = GroupConfig::from_yaml("name: \"\"\n").expect("parses");
        assert_eq!(standalone.validate(), Ok(()));
        group();
    }

    #[test]
    fn problem_display() {
        let p = Problem {
            path: "netCheck.timeout".into(),
            message: "too long".into(),
        };
        assert_eq!(p.to_string(), "netCheck.timeout: too long");
    }

    #[test]
    fn group_needs_members_networks_and_an_automatic_candidate() {
        let cfg = GroupConfig::from_yaml("name: g\n").expect("parses");
        assert_eq!(paths(&cfg), ["networks", "members"]);
        let mut cfg = group();
        for m in &mut cfg.members {
            m.priority = 0;
        }
        assert!(problem_at(&cfg, "members").contains("priority 0"));
        let mut cfg = group();
        let extra = cfg.networks[0].clone();
        cfg.networks.push(extra);
        cfg.networks[2].name = "third".into();
        cfg.networks[2].multicast = None;
        assert!(problem_at(&cfg, "networks").contains("at most two"));
    }

    #[test]
    fn standalone_still_checks_what_is_present() {
        let mut cfg = GroupConfig::from_yaml("name: \"\"\n").expect("parses");
        cfg.heartbeat.port = 0;
        cfg.vips.push(Vip {
            address: "10.0.0.100/24".into(),
            network: "primary".into(),
        });
        assert_eq!(paths(&cfg), ["heartbeat.port", "vips[0].network"]);
        assert!(problem_at(&cfg, "vips[0].network").contains("no networks are declared"));
    }

    #[test]
    fn names() {
        let mut cfg = group();
        cfg.name = "a".repeat(64);
        cfg.members[0].name = "ics a".into();
        cfg.members[1].name = "-b".into();
        cfg.networks[1].name = String::new();
        let p = paths(&cfg);
        assert!(p.contains(&"name".to_string()), "{p:?}");
        assert!(problem_at(&cfg, "members[0].name").contains("' '"));
        assert!(problem_at(&cfg, "members[1].name").contains("start with"));
        assert!(problem_at(&cfg, "networks[1].name").contains("empty"));
        let mut cfg = group();
        cfg.name = "a".repeat(63);
        assert_eq!(cfg.validate(), Ok(()));
    }

    #[test]
    fn duplicates_name_the_first_occurrence() {
        let mut cfg = group();
        let mut third = cfg.members[1].clone();
        third.name = "ics-a".into();
        third.addresses.clear();
        third
            .addresses
            .insert("primary".into(), "10.0.0.13".parse().unwrap());
        third
            .addresses
            .insert("secondary".into(), "192.168.100.13".parse().unwrap());
        cfg.members.push(third);
        assert_eq!(
            problem_at(&cfg, "members[2].name"),
            "duplicate member name \"ics-a\" (also members[0])"
        );
        let mut cfg = group();
        cfg.networks[1].name = "primary".into();
        assert!(problem_at(&cfg, "networks[1].name").contains("also networks[0]"));
        let mut cfg = group();
        cfg.networks[1].multicast = cfg.networks[0].multicast;
        assert!(problem_at(&cfg, "networks[1].multicast").contains("networks[0]"));
    }

    #[test]
    fn member_addresses() {
        let mut cfg = group();
        let a = &mut cfg.members[0].addresses;
        a.insert("primary".into(), "0.0.0.0".parse().unwrap());
        a.insert("tertiary".into(), "10.2.0.1".parse().unwrap());
        cfg.members[1]
            .addresses
            .insert("secondary".into(), "2001:db8::12".parse().unwrap());
        assert!(problem_at(&cfg, "members[0].addresses.primary").contains("unspecified"));
        assert!(
            problem_at(&cfg, "members[0].addresses.tertiary")
                .starts_with("no network named \"tertiary\" (declared: primary, secondary)")
        );
        assert!(problem_at(&cfg, "members[1].addresses.secondary").contains("IPv6 address"));

        let mut cfg = group();
        cfg.members[1].addresses.remove("secondary");
        cfg.members[1]
            .addresses
            .insert("primary".into(), "10.0.0.11".parse().unwrap());
        assert!(problem_at(&cfg, "members[1].addresses.secondary").starts_with("missing"));
        assert!(
            problem_at(&cfg, "members[1].addresses.primary")
                .contains("already members[0].addresses.primary")
        );
    }

    #[test]
    fn unicast_network_needs_every_address() {
        let mut cfg = group();
        cfg.networks[1].multicast = None;
        cfg.members[0].addresses.remove("secondary");
        assert!(problem_at(&cfg, "members[0].addresses.secondary").contains("unicast"));
        let mut cfg = group();
        cfg.networks[1].multicast = "10.0.0.36".parse().ok();
        assert!(problem_at(&cfg, "networks[1].multicast").contains("not a multicast"));
    }

    #[test]
    fn heartbeat_rules() {
        let mut cfg = group();
        cfg.heartbeat.interval = Dur::from_millis(500);
        assert!(
            problem_at(&cfg, "heartbeat.timeout")
                .starts_with("must be greater than heartbeat.interval (500ms)")
        );
        let mut cfg = group();
        cfg.heartbeat.interval = Dur::from_millis(0);
        cfg.heartbeat.ttl = 0;
        assert_eq!(paths(&cfg), ["heartbeat.interval", "heartbeat.ttl"]);
    }

    #[test]
    fn timeout_relations() {
        let mut cfg = group();
        cfg.timeouts.waiting_hot = Dur::from_millis(1500);
        let m = problem_at(&cfg, "timeouts.waitingHot");
        assert!(m.contains("(1s + 500ms = 1s 500ms)"), "{m}");
        let mut cfg = group();
        cfg.timeouts.election = Dur::from_millis(400);
        assert!(problem_at(&cfg, "timeouts.election").contains("heartbeat.timeout (500ms)"));
        let mut cfg = group();
        cfg.timeouts.to_standby_wait_ans_conn = Dur::from_millis(150);
        assert!(
            problem_at(&cfg, "timeouts.toStandbyWaitAnsConn")
                .contains("2 * heartbeat.interval (200ms)")
        );
        let mut cfg = group();
        cfg.timeouts.starting_to_hot = Dur::from_millis(0);
        cfg.timeouts.waiting_ready_hot = Dur::from_millis(0);
        assert_eq!(
            paths(&cfg),
            ["timeouts.waitingReadyHot", "timeouts.startingToHot"]
        );
    }

    #[test]
    fn d2000_rule_quotes_the_numbers() {
        let mut cfg = group();
        cfg.net_check.timeout = Dur::from_millis(250);
        assert_eq!(
            problem_at(&cfg, "netCheck.timeout")
                .split(" (the D2000")
                .next(),
            Some("2 * 2 targets * 250ms = 1s must be less than timeouts.election (1s)")
        );
        cfg.net_check.targets.truncate(1);
        assert_eq!(cfg.validate(), Ok(()));
        cfg.net_check.timeout = Dur::from_millis(0);
        assert!(problem_at(&cfg, "netCheck.timeout").contains("greater than 0s"));
        cfg.net_check.targets.clear();
        assert_eq!(cfg.validate(), Ok(()));
    }

    #[test]
    fn net_check_targets() {
        let mut cfg = group();
        cfg.net_check.targets = vec![
            "10.0.0.1".parse().unwrap(),
            "10.0.0.1".parse().unwrap(),
            "224.0.0.1".parse().unwrap(),
            "10.0.0.100".parse().unwrap(),
        ];
        cfg.net_check.timeout = Dur::from_millis(100);
        assert!(problem_at(&cfg, "netCheck.targets[1]").contains("duplicate target 10.0.0.1"));
        assert!(problem_at(&cfg, "netCheck.targets[2]").contains("multicast"));
        assert!(problem_at(&cfg, "netCheck.targets[3]").contains("vips[0]"));
        let mut cfg = group();
        cfg.net_check.targets = vec!["10.0.0.12".parse().unwrap()];
        assert!(problem_at(&cfg, "netCheck.targets").contains("non-member"));
    }

    #[test]
    fn vips() {
        let mut cfg = group();
        let vip = |a: &str, n: &str| Vip {
            address: a.into(),
            network: n.into(),
        };
        cfg.vips = vec![
            vip("10.0.0.100", "primary"),
            vip("10.0.0.0/24", "primary"),
            vip("10.0.0.255/24", "primary"),
            vip("10.0.0.100/24", "x"),
            vip("10.0.0.100/25", "secondary"),
            vip("10.0.0.11/24", "primary"),
            vip("127.0.0.2/8", "primary"),
            vip("10.0.0.101/0", "primary"),
            vip("2001:db8::100/64", "primary"),
            vip("10.0.0.102/32", "primary"),
        ];
        assert!(problem_at(&cfg, "vips[0].address").contains("missing prefix"));
        assert!(problem_at(&cfg, "vips[1].address").contains("network address"));
        assert!(problem_at(&cfg, "vips[2].address").contains("broadcast address of its subnet"));
        assert!(problem_at(&cfg, "vips[3].network").starts_with("no network named \"x\""));
        assert!(problem_at(&cfg, "vips[4].address").contains("duplicate VIP 10.0.0.100"));
        assert!(problem_at(&cfg, "vips[5].address").contains("members[0].addresses.primary"));
        assert!(problem_at(&cfg, "vips[6].address").contains("loopback"));
        assert!(problem_at(&cfg, "vips[7].address").contains("prefix length 0"));
        assert_eq!(cfg.problems().len(), 8, "{:#?}", cfg.problems());
    }

    #[test]
    fn garp() {
        let mut cfg = group();
        cfg.garp.count = 0;
        cfg.garp.refresh = Dur::from_millis(10);
        assert_eq!(paths(&cfg), ["garp.count", "garp.refresh"]);
        cfg.garp.count = 3;
        cfg.garp.spacing = Dur::from_millis(0);
        cfg.garp.refresh = Dur::from_millis(0);
        assert_eq!(paths(&cfg), ["garp.spacing"]);
        cfg.garp.count = 1;
        assert!(cfg.problems().is_empty());
    }

    #[test]
    fn notify_email() {
        let mut cfg = group();
        let email = |yaml: &str| {
            let e: NotifyEmail = serde_yaml_ng::from_str(yaml).unwrap();
            Some(crate::config::Notify {
                command: vec![],
                timeout: Dur::from_millis(10_000),
                email: Some(e),
            })
        };
        cfg.notify = email(
            "{server: smtp.example.com, from: 'rdg <rdg@example.com>', to: [ops@example.com], \
             credentialsFile: /etc/rdg/smtp}",
        );
        assert_eq!(cfg.validate(), Ok(()), "email without a command is enough");
        cfg.notify = email(
            "{server: 'smtp://x y', port: 0, security: none, credentialsFile: smtp, \
             caFile: /etc/, from: 'rdg at example', to: [], subjectPrefix: \"a\\nb\", \
             minInterval: 100ms, timeout: 0s}",
        );
        assert_eq!(
            paths(&cfg),
            [
                "notify.email.server",
                "notify.email.port",
                "notify.email.credentialsFile",
                "notify.email.caFile",
                "notify.email.credentialsFile",
                "notify.email.from",
                "notify.email.to",
                "notify.email.subjectPrefix",
                "notify.email.minInterval",
                "notify.email.timeout",
            ]
        );
        cfg.notify = email(
            "{server: 192.0.2.25, from: rdg@example.com, to: [ops@example.com, 'Ops \
             <OPS@example.com>', 'x@', 'Bad <a@example.com']}",
        );
        assert!(problem_at(&cfg, "notify.email.to[1]").contains("listed twice"));
        assert!(problem_at(&cfg, "notify.email.to[2]").contains("not a mail address"));
        assert!(problem_at(&cfg, "notify.email.to[3]").contains("unbalanced"));
        assert_eq!(
            check_mailbox(" Ops Team <ops@example.com> "),
            Ok("ops@example.com")
        );
        assert!(
            check_mailbox("ops")
                .unwrap_err()
                .contains("not a mail address")
        );
        let mut n = cfg.notify.take().unwrap();
        n.email = None;
        cfg.notify = Some(n);
        assert!(problem_at(&cfg, "notify.command").contains("unless notify.email"));
    }

    #[test]
    fn files_and_status() {
        let mut cfg = group();
        cfg.role_file = Some("run/x.role".into());
        cfg.auth = Some(Auth::key_file(" "));
        cfg.status.listen = "0.0.0.0:0".parse().unwrap();
        assert_eq!(paths(&cfg), ["roleFile", "auth.keyFile", "status.listen"]);
        cfg.notify = Some(crate::config::Notify {
            command: vec![],
            timeout: Dur::from_millis(0),
            email: None,
        });
        assert_eq!(
            paths(&cfg),
            [
                "roleFile",
                "auth.keyFile",
                "status.listen",
                "notify.command",
                "notify.timeout"
            ]
        );
        cfg.auth = Some(Auth::default());
        assert!(problem_at(&cfg, "auth").contains("keyFile"));
        cfg.auth = Some(Auth {
            key_file: Some("/k".into()),
            key_files: vec!["/k2".into()],
        });
        assert!(problem_at(&cfg, "auth.keyFiles").contains("not both"));
        cfg.auth = Some(Auth {
            key_file: None,
            key_files: vec!["/new".into(), "/old".into(), "/new".into(), " ".into()],
        });
        assert!(problem_at(&cfg, "auth.keyFiles[2]").contains("twice"));
        assert!(problem_at(&cfg, "auth.keyFiles[3]").contains("empty"));
        cfg.auth = Some(Auth {
            key_file: None,
            key_files: vec!["/new".into(), "/old".into()],
        });
        assert!(!paths(&cfg).iter().any(|p| p.starts_with("auth")));
        cfg.role_file = Some(String::new());
        assert!(problem_at(&cfg, "roleFile").contains("empty"));
        cfg.role_file = Some("/run/rdg/".into());
        assert!(problem_at(&cfg, "roleFile").contains("not a directory"));
        for bad in ["", "token", "/run/rdg/"] {
            cfg.status.token_file = Some(bad.into());
            assert!(
                problem_at(&cfg, "status.tokenFile").contains("absolute"),
                "{bad:?}"
            );
        }
        cfg.status.token_file = Some("/etc/rdg/switchover.token".into());
        assert!(!paths(&cfg).contains(&"status.tokenFile".to_string()));
    }

    fn channel() -> Channel {
        Channel {
            address: "224.2.2.2".parse().unwrap(),
            port: 22222,
            ttl: 5,
            bit_rate: "2Mbit".into(),
            payload_size: 1024,
            objects: vec![CarouselObject {
                name: "bootcast_1900".into(),
                kind: ObjectKind::Bootcastinfo,
                source: Some("/var/lib/infocast/bootcast_1900".into()),
                bootcast: None,
                crc: false,
                repeat_delay: None,
            }],
            burst_delay: None,
        }
    }

    fn bootcast() -> Bootcast {
        Bootcast {
            kernel_address: "224.2.2.3:22223".parse().unwrap(),
            kernel_name: "vmlinuz".into(),
            kernel_version: "2.6.28-7".into(),
            kernel_args: Some("console=ttyS0".into()),
            extra: BTreeMap::from([("model".into(), "stb-1900".into())]),
        }
    }

    #[test]
    fn carousel_extensions_are_valid_when_sensible() {
        let mut cfg = group();
        let mut ch = channel();
        ch.burst_delay = Some(Dur::from_millis(500));
        ch.objects[0].source = None;
        ch.objects[0].bootcast = Some(bootcast());
        ch.objects[0].crc = true;
        ch.objects[0].repeat_delay = Some(Dur::from_millis(2000));
        cfg.transmitter = Some(Transmitter { channels: vec![ch] });
        assert_eq!(paths(&cfg), Vec::<String>::new());
    }

    #[test]
    fn carousel_extensions_report_their_paths() {
        let mut cfg = group();
        let mut ch = channel();
        ch.burst_delay = Some(Dur::from_millis(61_000));
        let obj = ch.objects[0].clone();
        // Both source and bootcast.
        let mut both = obj.clone();
        both.name = "both".into();
        both.bootcast = Some(bootcast());
        // Neither.
        let mut neither = obj.clone();
        neither.name = "neither".into();
        neither.source = None;
        // A bootcast on a generic object, with every field wrong.
        let mut generic = obj.clone();
        generic.name = "generic".into();
        generic.kind = ObjectKind::Generic;
        generic.source = None;
        generic.bootcast = Some(Bootcast {
            kernel_address: "10.0.0.1:22223".parse().unwrap(),
            kernel_name: " ".into(),
            kernel_version: "1\n2".into(),
            kernel_args: Some("a\nb".into()),
            extra: BTreeMap::from([
                ("kernelName".into(), "x".into()),
                ("bad key".into(), "x".into()),
                ("ok".into(), "line\nbreak".into()),
            ]),
        });
        let mut zero_port = obj.clone();
        zero_port.name = "zero-port".into();
        zero_port.source = None;
        let mut b = bootcast();
        b.kernel_address.set_port(0);
        zero_port.bootcast = Some(b);
        let mut repeat_zero = obj.clone();
        repeat_zero.name = "repeat-zero".into();
        repeat_zero.repeat_delay = Some(Dur::from_millis(0));
        let mut repeat_long = obj;
        repeat_long.name = "repeat-long".into();
        repeat_long.repeat_delay = Some(Dur::from_millis(3_600_001));
        ch.objects = vec![both, neither, generic, zero_port, repeat_zero, repeat_long];
        cfg.transmitter = Some(Transmitter { channels: vec![ch] });
        let o = "transmitter.channels[0].objects";
        assert_eq!(
            paths(&cfg),
            [
                "transmitter.channels[0].burstDelay".to_string(),
                format!("{o}[0]"),
                format!("{o}[1].source"),
                format!("{o}[2].bootcast"),
                format!("{o}[2].bootcast.kernelAddress"),
                format!("{o}[2].bootcast.kernelName"),
                format!("{o}[2].bootcast.kernelVersion"),
                format!("{o}[2].bootcast.kernelArgs"),
                format!("{o}[2].bootcast.extra.bad key"),
                format!("{o}[2].bootcast.extra.kernelName"),
                format!("{o}[2].bootcast.extra.ok"),
                format!("{o}[3].bootcast.kernelAddress"),
                format!("{o}[4].repeatDelay"),
                format!("{o}[5].repeatDelay"),
            ]
        );
        assert!(problem_at(&cfg, "transmitter.channels[0].burstDelay").contains("at most 1m"));
        assert!(problem_at(&cfg, &format!("{o}[0]")).contains("not both"));
        assert!(problem_at(&cfg, &format!("{o}[1].source")).contains("or bootcast"));
        assert!(problem_at(&cfg, &format!("{o}[2].bootcast")).contains("bootcastinfo"));
        assert!(problem_at(&cfg, &format!("{o}[2].bootcast.kernelAddress")).contains("multicast"));
        assert!(
            problem_at(&cfg, &format!("{o}[2].bootcast.extra.kernelName")).contains("generated")
        );
        assert!(problem_at(&cfg, &format!("{o}[3].bootcast.kernelAddress")).contains("port"));
        assert!(problem_at(&cfg, &format!("{o}[4].repeatDelay")).contains("greater than 0"));
        assert!(problem_at(&cfg, &format!("{o}[5].repeatDelay")).contains("at most 1h"));
    }

    #[test]
    fn transmitter() {
        let mut cfg = group();
        cfg.transmitter = Some(Transmitter { channels: vec![] });
        assert!(problem_at(&cfg, "transmitter.channels").contains("at least one channel"));

        let mut bad = channel();
        bad.address = "10.2.2.2".parse().unwrap();
        bad.port = 0;
        bad.ttl = 0;
        bad.bit_rate = "2MB".into();
        bad.payload_size = 65_001;
        let mut dup = channel();
        dup.objects.push(dup.objects[0].clone());
        dup.objects.push(CarouselObject {
            name: String::new(),
            kind: ObjectKind::Generic,
            source: Some(String::new()),
            bootcast: None,
            crc: false,
            repeat_delay: None,
        });
        let mut empty = channel();
        empty.objects.clear();
        empty.address = "224.0.0.35".parse().unwrap();
        empty.port = 8035;
        cfg.transmitter = Some(Transmitter {
            channels: vec![channel(), bad, dup, empty],
        });
        assert_eq!(
            paths(&cfg),
            [
                "transmitter.channels[1].address",
                "transmitter.channels[1].port",
                "transmitter.channels[1].ttl",
                "transmitter.channels[1].bitRate",
                "transmitter.channels[1].payloadSize",
                "transmitter.channels[2].address",
                "transmitter.channels[2].objects[1].name",
                "transmitter.channels[2].objects[2].name",
                "transmitter.channels[2].objects[2].source",
                "transmitter.channels[3].address",
                "transmitter.channels[3].objects",
            ]
        );
        assert!(
            problem_at(&cfg, "transmitter.channels[2].address")
                .contains("transmitter.channels[0] (224.2.2.2:22222)")
        );
        assert!(problem_at(&cfg, "transmitter.channels[3].address").contains("heartbeats"));
    }

    #[test]
    fn every_problem_is_reported() {
        let mut cfg = group();
        cfg.heartbeat.port = 0;
        cfg.members[1].name = "ics-a".into();
        cfg.net_check.timeout = Dur::from_millis(600);
        cfg.vips[0].network = "nowhere".into();
        assert_eq!(
            paths(&cfg),
            [
                "heartbeat.port",
                "members[1].name",
                "netCheck.timeout",
                "vips[0].network"
            ]
        );
    }
}
