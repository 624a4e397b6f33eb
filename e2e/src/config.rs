//! The group configuration a lab writes for its agents (the same keys as `rdg check-config` reads), and
//! the lab's fixed address plan.
//!
//! Member `i` (1-based, in the order of [`GroupConfig::members`]) has 10.0.0.1`i` on the primary
//! network and 192.168.100.1`i` on the secondary; the net-check targets are .1 on each network
//! and the client .50.

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

/// One of the lab's two networks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Net {
    /// 10.0.0.0/24, multicast 224.0.0.35.
    Primary,
    /// 192.168.100.0/24, multicast 224.0.0.36.
    Secondary,
}

impl Net {
    /// Both networks.
    pub const BOTH: [Net; 2] = [Net::Primary, Net::Secondary];

    /// The network's name in the configuration.
    pub fn name(self) -> &'static str {
        match self {
            Net::Primary => "primary",
            Net::Secondary => "secondary",
        }
    }

    /// Its heartbeat multicast group.
    pub fn multicast(self) -> Ipv4Addr {
        match self {
            Net::Primary => Ipv4Addr::new(224, 0, 0, 35),
            Net::Secondary => Ipv4Addr::new(224, 0, 0, 36),
        }
    }

    /// The address with host part `host` on this network.
    pub fn host(self, host: u8) -> Ipv4Addr {
        match self {
            Net::Primary => Ipv4Addr::new(10, 0, 0, host),
            Net::Secondary => Ipv4Addr::new(192, 168, 100, host),
        }
    }

    /// Address of the member with 1-based index `index`.
    pub fn member(self, index: usize) -> Ipv4Addr {
        let index = u8::try_from(index).ok().filter(|i| (1..=9).contains(i));
        self.host(10 + index.expect("labs hold members 1 to 9"))
    }

    /// Address of the net-check targets' namespace.
    pub fn target(self) -> Ipv4Addr {
        self.host(1)
    }

    /// Address of the client namespace.
    pub fn client(self) -> Ipv4Addr {
        self.host(50)
    }

    /// Suffix of interface names on this network.
    pub(crate) fn suffix(self) -> char {
        match self {
            Net::Primary => 'p',
            Net::Secondary => 's',
        }
    }

    /// The interface holding the network's address inside a namespace.
    pub fn interface(self) -> &'static str {
        match self {
            Net::Primary => "eth-p",
            Net::Secondary => "eth-s",
        }
    }
}

/// A member of the group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberConfig {
    /// Its name (`--member`).
    pub name: String,
    /// Its priority (0 = only by command).
    pub priority: u16,
}

/// The parts of the group configuration the scenarios vary; the rest is fixed by the lab
/// (addresses, multicast groups, role file, status listener).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupConfig {
    /// Group name.
    pub name: String,
    /// `heartbeat.interval`.
    pub interval: Duration,
    /// `heartbeat.timeout`.
    pub timeout: Duration,
    /// `heartbeat.port`.
    pub port: u16,
    /// Networks in use: `[Primary]` or `[Primary, Secondary]`.
    pub networks: Vec<Net>,
    /// The members, in address order.
    pub members: Vec<MemberConfig>,
    /// `preempt`.
    pub preempt: bool,
    /// `preemptDelay`.
    pub preempt_delay: Duration,
    /// `timeouts.election`.
    pub election: Duration,
    /// `netCheck.targets` (empty = no net check).
    pub net_check_targets: Vec<Ipv4Addr>,
    /// `netCheck.timeout`.
    pub net_check_timeout: Duration,
    /// The HMAC key: the lab writes it to a file and sets `auth.keyFile`.
    pub auth_key: Option<Vec<u8>>,
    /// `notify.command`.
    pub notify: Option<Vec<String>>,
    /// Virtual IPs (`address/prefix`) on the primary network.
    pub vips: Vec<String>,
    /// The Infocast carousel every agent runs in-process (sent only while hot).
    pub carousel: Option<Carousel>,
}

/// One carousel channel sent from the members' primary address (`transmitter:` in the file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Carousel {
    /// Multicast group.
    pub group: Ipv4Addr,
    /// UDP port.
    pub port: u16,
    /// `bitRate`, e.g. `2Mbit`.
    pub bit_rate: String,
    /// `payloadSize`.
    pub payload_size: u32,
    /// Objects as (name, size in bytes); the lab writes deterministic files of that size.
    pub objects: Vec<(String, usize)>,
}

impl Carousel {
    /// 224.2.2.2:22222 at 2 Mbit/s, 1024-byte payloads, a 100 kB boot image and a 2 kB
    /// configuration: about 250 datagrams a second, so a silence of 20 ms is visible.
    pub fn infocast() -> Carousel {
        Carousel {
            group: Ipv4Addr::new(224, 2, 2, 2),
            port: 22222,
            bit_rate: "2Mbit".into(),
            payload_size: 1024,
            objects: vec![
                ("bootcast_1900".into(), 100_000),
                ("stb_config".into(), 2_000),
            ],
        }
    }

    /// `group:port`, as `rdg receive --channel` takes it.
    pub fn channel(&self) -> String {
        format!("{}:{}", self.group, self.port)
    }

    /// The bytes of object `index` (the same on every member).
    pub fn object_bytes(&self, index: usize) -> Vec<u8> {
        let (_, size) = &self.objects[index];
        (0..*size).map(|i| (i * 31 + index * 7) as u8).collect()
    }
}

impl GroupConfig {
    /// The `timeouts:` entries: `election`, and where the heartbeat is so slow that the
    /// defaults of the others would be refused (each must cover two intervals; `waitingHot`
    /// must exceed the election plus the heartbeat timeout), those stretched to fit.
    fn timeouts(&self) -> Vec<String> {
        let ms = |d: Duration| format!("{}ms", d.as_millis());
        let mut t = vec![format!("election: {}", ms(self.election))];
        let defaults = rdg_core::config::Timeouts::default();
        let two_beats = self.interval * 2;
        let election_and_timeout = self.election + self.timeout;
        let awaiting = [
            ("waitingReadyHot", defaults.waiting_ready_hot.0),
            ("startingToStandby", defaults.starting_to_standby.0),
            ("toStandbyWaitForHot", defaults.to_standby_wait_for_hot.0),
            ("toStandbyWaitAnsConn", defaults.to_standby_wait_ans_conn.0),
        ];
        let waiting_hot_too_short = election_and_timeout >= defaults.waiting_hot.0;
        if waiting_hot_too_short || awaiting.iter().any(|&(_, d)| d < two_beats) {
            let waiting_hot = if waiting_hot_too_short {
                election_and_timeout + self.interval
            } else {
                defaults.waiting_hot.0
            };
            t.push(format!("waitingHot: {}", ms(waiting_hot)));
            for (key, default) in awaiting {
                t.push(format!("{key}: {}", ms(two_beats.max(default))));
            }
        }
        t
    }

    /// The design's example group: ics-a (100), ics-b (50), ics-c (10) on two networks,
    /// interval 100 ms, timeout 500 ms, election 1 s, net check on 10.0.0.1 (100 ms).
    pub fn three_members() -> GroupConfig {
        GroupConfig::with_members(&[("ics-a", 100), ("ics-b", 50), ("ics-c", 10)])
    }

    /// The defaults of [`GroupConfig::three_members`] with other members.
    pub fn with_members(members: &[(&str, u16)]) -> GroupConfig {
        GroupConfig {
            name: "e2e".into(),
            interval: Duration::from_millis(100),
            timeout: Duration::from_millis(500),
            port: 8035,
            networks: Net::BOTH.to_vec(),
            members: members
                .iter()
                .map(|(name, priority)| MemberConfig {
                    name: (*name).into(),
                    priority: *priority,
                })
                .collect(),
            preempt: false,
            preempt_delay: Duration::ZERO,
            election: Duration::from_secs(1),
            net_check_targets: vec![Net::Primary.target()],
            net_check_timeout: Duration::from_millis(100),
            auth_key: None,
            notify: None,
            vips: Vec::new(),
            carousel: None,
        }
    }

    /// 1-based index of `member` (its address slot).
    pub fn index_of(&self, member: &str) -> Option<usize> {
        self.members
            .iter()
            .position(|m| m.name == member)
            .map(|i| i + 1)
    }

    /// The YAML file of `member`'s agent: the group configuration with its own `role_file`
    /// (everything else is identical on every member). `key_file` is where the lab wrote
    /// [`GroupConfig::auth_key`].
    /// `objects_dir` holds the carousel's object files (see [`Carousel::object_bytes`]).
    pub(crate) fn render(
        &self,
        role_file: &Path,
        key_file: Option<&Path>,
        objects_dir: &Path,
    ) -> String {
        let mut y = String::new();
        let ms = |d: Duration| format!("{}ms", d.as_millis());
        let _ = writeln!(y, "name: {}", self.name);
        let _ = writeln!(
            y,
            "heartbeat: {{interval: {}, timeout: {}, port: {}, ttl: 5}}",
            ms(self.interval),
            ms(self.timeout),
            self.port
        );
        let _ = writeln!(y, "networks:");
        for net in &self.networks {
            let _ = writeln!(
                y,
                "  - {{name: {}, multicast: {}}}",
                net.name(),
                net.multicast()
            );
        }
        let _ = writeln!(y, "members:");
        for (i, m) in self.members.iter().enumerate() {
            let addresses: Vec<String> = self
                .networks
                .iter()
                .map(|net| format!("{}: {}", net.name(), net.member(i + 1)))
                .collect();
            let _ = writeln!(
                y,
                "  - {{name: {}, priority: {}, addresses: {{{}}}}}",
                m.name,
                m.priority,
                addresses.join(", ")
            );
        }
        let _ = writeln!(y, "preempt: {}", self.preempt);
        let _ = writeln!(y, "preemptDelay: {}", ms(self.preempt_delay));
        let _ = writeln!(y, "timeouts: {{{}}}", self.timeouts().join(", "));
        let targets: Vec<String> = self
            .net_check_targets
            .iter()
            .map(ToString::to_string)
            .collect();
        let _ = writeln!(
            y,
            "netCheck: {{targets: [{}], timeout: {}}}",
            targets.join(", "),
            ms(self.net_check_timeout)
        );
        if !self.vips.is_empty() {
            let _ = writeln!(y, "vips:");
            for vip in &self.vips {
                let _ = writeln!(y, "  - {{address: {vip}, network: primary}}");
            }
        }
        let _ = writeln!(y, "roleFile: {}", role_file.display());
        if let Some(key_file) = key_file {
            let _ = writeln!(y, "auth: {{keyFile: {}}}", key_file.display());
        }
        let _ = writeln!(y, "status: {{listen: 127.0.0.1:9035}}");
        if let Some(command) = &self.notify {
            let quoted: Vec<String> = command
                .iter()
                .map(|c| serde_json::to_string(c).expect("strings serialise"))
                .collect();
            let _ = writeln!(y, "notify: {{command: [{}]}}", quoted.join(", "));
        }
        if let Some(c) = &self.carousel {
            let _ = writeln!(y, "transmitter:\n  channels:");
            let _ = writeln!(
                y,
                "    - {{address: {}, port: {}, ttl: 5, bitRate: {}, payloadSize: {}, objects: [{}]}}",
                c.group,
                c.port,
                c.bit_rate,
                c.payload_size,
                c.objects
                    .iter()
                    .map(|(name, _)| format!(
                        "{{name: {name}, type: generic, source: {}}}",
                        objects_dir.join(name).display()
                    ))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        y
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Heartbeats from 10 ms to 2 s (the lossy sweep's range) give files the agent accepts.
    #[test]
    fn slow_and_fast_heartbeats_render_valid_files() {
        for interval_ms in [10, 20, 100, 250, 300, 500, 1000, 2000] {
            let mut c = GroupConfig::three_members();
            c.interval = Duration::from_millis(interval_ms);
            c.timeout = c.interval * 3;
            c.election = Duration::from_secs(1).max(c.timeout);
            let yaml = c.render(
                Path::new("/dev/shm/x.role"),
                None,
                Path::new("/nonexistent"),
            );
            let parsed = rdg_core::config::GroupConfig::from_yaml(&yaml)
                .unwrap_or_else(|e| panic!("{interval_ms} ms: {e}\n{yaml}"));
            if let Err(problems) = parsed.validate() {
                panic!("{interval_ms} ms: {problems:?}\n{yaml}");
            }
        }
    }
}
