//! Serde/schemars types of the group configuration. Defaults live here, next to the fields.

use crate::Dur;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

/// A whole redundant group: who is in it, how they heartbeat, and what the hot member owns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GroupConfig {
    /// Group name (D2000 GroupName). Empty: run standalone, always hot, no heartbeats.
    #[serde(default)]
    pub name: String,
    /// Heartbeat timing and transport.
    #[serde(default)]
    pub heartbeat: Heartbeat,
    /// One or two networks the members heartbeat on.
    #[serde(default)]
    pub networks: Vec<Network>,
    /// The members of the group (D2000 KernelName, Priority, IPAddr1/IPAddr2).
    #[serde(default)]
    pub members: Vec<Member>,
    /// When true, a higher-priority standby takes the role from a running hot member (after
    /// `preemptDelay`, by a planned hand-over). When false, a running hot member keeps it.
    #[serde(default)]
    pub preempt: bool,
    /// How long a higher-priority standby must be ready before it preempts.
    #[serde(default)]
    pub preempt_delay: Dur,
    /// Bounds of the temporal states (the D2000 RD_TIMEOUT_* family).
    #[serde(default)]
    pub timeouts: Timeouts,
    /// Addresses pinged before taking over, so an isolated member never grabs the role.
    #[serde(default)]
    pub net_check: NetCheck,
    /// Virtual IPs owned by the hot member.
    #[serde(default)]
    pub vips: Vec<Vip>,
    /// Announcements after taking the VIPs (gratuitous ARP, unsolicited neighbour
    /// advertisements). An rdg extension of the design's keys.
    #[serde(default)]
    pub garp: Garp,
    /// Where the agent writes its role and lease (JSON); default `/run/rdg/<name>.role`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_file: Option<String>,
    /// Heartbeat authentication; without it datagrams carry no MAC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<Auth>,
    /// Local status endpoint (/status, /healthz, /metrics, POST /switchover).
    #[serde(default)]
    pub status: StatusEndpoint,
    /// The Infocast carousel sent only while hot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transmitter: Option<Transmitter>,
    /// A command run on every notable event (became hot, standby, crashed, network anomaly,
    /// recovery), like keepalived's notify scripts, as `CMD... EVENT GROUP MEMBER EPOCH
    /// REASON`, and/or e-mail (`notify.email`). An rdg extension of the design's keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<Notify>,
}

/// Notifications of notable events: a command run as `COMMAND... EVENT GROUP MEMBER EPOCH
/// REASON` for every event, one at a time in order, and/or e-mail; never blocking the state
/// machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Notify {
    /// Program and leading arguments, e.g. `[/usr/local/bin/rdg-notify, --mail, ops@example.com]`.
    /// Required unless `email` is given.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// How long one run may take before it is killed.
    #[serde(default = "default_notify_timeout")]
    pub timeout: Dur,
    /// E-mail to an SMTP server on becoming hot, handing the role over, crash (CS), network
    /// anomaly, VIP failure, stop, and their recoveries; bursts are summed up in one mail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<NotifyEmail>,
}

fn default_notify_timeout() -> Dur {
    Dur::from_millis(10_000)
}

/// Where and how notification mails are sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NotifyEmail {
    /// SMTP server (relay) host name or IP address, e.g. `smtp.example.com`.
    pub server: String,
    /// SMTP port; by default 587 for `starttls`, 465 for `tls`, 25 for `none`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub port: Option<u16>,
    /// How the connection to the server is protected.
    #[serde(default)]
    pub security: SmtpSecurity,
    /// File holding the SMTP login as `user:password` on one line, or the user on the first line
    /// and the password on the second; readable by its owner only. Read at start. Without it,
    /// no login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_file: Option<String>,
    /// PEM file of a certificate authority to trust besides the built-in public roots (a
    /// company's own CA of its relay).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    /// Sender: `rdg@example.com` or `rdg <rdg@example.com>`.
    pub from: String,
    /// Recipients (at least one), each `ops@example.com` or `Ops <ops@example.com>`.
    pub to: Vec<String>,
    /// Start of every subject, before `<group>/<member>: <event>`.
    #[serde(default = "default_subject_prefix")]
    pub subject_prefix: String,
    /// Rate limit: after a mail, further events within this time are collected and sent as one
    /// summary mail when it has passed.
    #[serde(default = "default_email_min_interval")]
    pub min_interval: Dur,
    /// How long one mail may take to send (connect, TLS, login, transfer) before it counts as
    /// failed.
    #[serde(default = "default_email_timeout")]
    pub timeout: Dur,
}

fn default_subject_prefix() -> String {
    "[rdg]".into()
}
fn default_email_min_interval() -> Dur {
    Dur::from_millis(30_000)
}
fn default_email_timeout() -> Dur {
    Dur::from_millis(30_000)
}

impl NotifyEmail {
    /// The port to connect to: `port`, or the usual one of the security mode.
    pub fn effective_port(&self) -> u16 {
        self.port.unwrap_or(self.security.default_port())
    }
}

/// How the connection to the SMTP server is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// Plain connection upgraded with STARTTLS, which the server must offer (port 587).
    #[default]
    Starttls,
    /// TLS from the start, SMTPS (port 465).
    Tls,
    /// No encryption (port 25): only for a relay on the same host or a trusted network.
    None,
}

impl SmtpSecurity {
    /// The usual port of this mode: 587, 465 or 25.
    pub fn default_port(self) -> u16 {
        match self {
            SmtpSecurity::Starttls => 587,
            SmtpSecurity::Tls => 465,
            SmtpSecurity::None => 25,
        }
    }

    /// The name used in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            SmtpSecurity::Starttls => "starttls",
            SmtpSecurity::Tls => "tls",
            SmtpSecurity::None => "none",
        }
    }
}

/// Heartbeat timing and transport, shared by all networks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Heartbeat {
    /// Time between heartbeats on every network.
    #[serde(default = "default_interval")]
    pub interval: Dur,
    /// No heartbeat from the hot member on ALL networks for this long = hot member lost.
    #[serde(default = "default_timeout")]
    pub timeout: Dur,
    /// UDP port used on every network.
    #[serde(default = "default_port")]
    #[schemars(range(min = 1))]
    pub port: u16,
    /// Multicast TTL of heartbeats.
    #[serde(default = "default_ttl")]
    #[schemars(range(min = 1))]
    pub ttl: u8,
}

fn default_interval() -> Dur {
    Dur::from_millis(100)
}
fn default_timeout() -> Dur {
    Dur::from_millis(500)
}
fn default_port() -> u16 {
    8035
}
fn default_ttl() -> u8 {
    5
}

impl Default for Heartbeat {
    fn default() -> Self {
        Heartbeat {
            interval: default_interval(),
            timeout: default_timeout(),
            port: default_port(),
            ttl: default_ttl(),
        }
    }
}

/// One network the members heartbeat on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Network {
    /// Name members use in `addresses` and VIPs use in `network`.
    #[schemars(length(min = 1, max = 63))]
    pub name: String,
    /// Multicast group; leave out to send unicast to the other members' addresses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multicast: Option<IpAddr>,
}

/// One member of the group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Member {
    /// Unique member name (D2000 KernelName).
    pub name: String,
    /// Higher wins when the hot member fails. 0 = never promoted automatically, only by an
    /// operator's switchover command.
    pub priority: u16,
    /// This member's address on each network, by network name; the interface holding it is
    /// the one used for that network.
    #[serde(default)]
    pub addresses: BTreeMap<String, IpAddr>,
}

/// Bounds of the temporal states (D2000 RD_TIMEOUT_*). Every transition ends by its bound.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Timeouts {
    /// iElection: how long a starting member listens before choosing a role.
    #[serde(default = "default_election")]
    pub election: Dur,
    /// iWaitingHot: how long a standby waits for a better candidate to become hot.
    #[serde(default = "default_waiting_hot")]
    pub waiting_hot: Dur,
    /// iWaitingReadyHot: how long a hand-over target waits for the hot member to release.
    #[serde(default = "default_waiting_ready_hot")]
    pub waiting_ready_hot: Dur,
    /// iStartingKernelToSBS: how long a starting member confirms the hot member on every
    /// network before declaring itself standby.
    #[serde(default = "default_starting_to_standby")]
    pub starting_to_standby: Dur,
    /// iStartingKernelToHot: how long a new hot member has to bring up its hot side.
    #[serde(default = "default_starting_to_hot")]
    pub starting_to_hot: Dur,
    /// iHotOrSBSToSBS_WaitForHot: after a planned hand-over, how long the old hot member
    /// waits for the new one to appear before the normal rules apply again.
    #[serde(default = "default_to_standby_wait_for_hot")]
    pub to_standby_wait_for_hot: Dur,
    /// iHotOrSBSToSBS_WaitAnsConn: after stepping down (conflict or lost lease), how long to
    /// wait to hear the hot member before the normal rules apply again.
    #[serde(default = "default_to_standby_wait_ans_conn")]
    pub to_standby_wait_ans_conn: Dur,
}

fn default_election() -> Dur {
    Dur::from_millis(1000)
}
fn default_waiting_hot() -> Dur {
    Dur::from_millis(2000)
}
fn default_waiting_ready_hot() -> Dur {
    Dur::from_millis(1000)
}
fn default_starting_to_standby() -> Dur {
    Dur::from_millis(500)
}
fn default_starting_to_hot() -> Dur {
    Dur::from_millis(500)
}
fn default_to_standby_wait_for_hot() -> Dur {
    Dur::from_millis(2000)
}
fn default_to_standby_wait_ans_conn() -> Dur {
    Dur::from_millis(1000)
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            election: default_election(),
            waiting_hot: default_waiting_hot(),
            waiting_ready_hot: default_waiting_ready_hot(),
            starting_to_standby: default_starting_to_standby(),
            starting_to_hot: default_starting_to_hot(),
            to_standby_wait_for_hot: default_to_standby_wait_for_hot(),
            to_standby_wait_ans_conn: default_to_standby_wait_ans_conn(),
        }
    }
}

/// The isolation check: ICMP echo to `targets`; none answering twice in a row = isolated (CS).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NetCheck {
    /// Addresses to ping (other members and at least one non-member, e.g. the gateway).
    /// Empty: no net check (always passes).
    #[serde(default)]
    pub targets: Vec<IpAddr>,
    /// Per-ping timeout (D2000 NetCheck_Ping_TIME_OUT).
    #[serde(default = "default_net_check_timeout")]
    pub timeout: Dur,
}

fn default_net_check_timeout() -> Dur {
    Dur::from_millis(200)
}

impl Default for NetCheck {
    fn default() -> Self {
        NetCheck {
            targets: Vec::new(),
            timeout: default_net_check_timeout(),
        }
    }
}

/// A virtual IP owned by the hot member.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Vip {
    /// Address with prefix length, e.g. `10.0.0.100/24` or `2001:db8::100/64`.
    #[schemars(length(min = 1, max = 64))]
    pub address: String,
    /// Name of the network (from `networks`) whose interface gets the address.
    #[schemars(length(min = 1, max = 63))]
    pub network: String,
}

/// How a new hot member announces its VIPs: a burst of gratuitous ARP (request and reply
/// forms) for IPv4, unsolicited neighbour advertisements for IPv6, the first at once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Garp {
    /// Announcements per VIP in the burst.
    #[serde(default = "default_garp_count")]
    #[schemars(range(min = 1))]
    pub count: u32,
    /// Time between the announcements of the burst.
    #[serde(default = "default_garp_spacing")]
    pub spacing: Dur,
    /// Repeat one announcement this often while hot (0s = never), for switches and hosts
    /// that forget.
    #[serde(default)]
    pub refresh: Dur,
}

// Five announcements 300 ms apart span 1.2 s: Linux hosts ignore an ARP update for an entry
// changed less than `locktime` (1 s by default) ago, so a burst that ends sooner can be
// ignored entirely by a client that was just talking to the old member.
fn default_garp_count() -> u32 {
    5
}
fn default_garp_spacing() -> Dur {
    Dur::from_millis(300)
}

impl Default for Garp {
    fn default() -> Self {
        Garp {
            count: default_garp_count(),
            spacing: default_garp_spacing(),
            refresh: Dur::default(),
        }
    }
}

/// Heartbeat authentication: one key file, or a list of them while keys are rotated.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Auth {
    /// File holding the shared HMAC-SHA256 key; heartbeats without a valid MAC are dropped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file: Option<String>,
    /// Instead of `keyFile`, while keys are rotated: heartbeats are signed with the first and
    /// accepted with any (add the new key second everywhere, then first, then drop the old).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub key_files: Vec<String>,
}

impl Auth {
    /// One key file.
    pub fn key_file(path: impl Into<String>) -> Auth {
        Auth {
            key_file: Some(path.into()),
            key_files: Vec::new(),
        }
    }

    /// The key files in order: the first signs, every one verifies.
    pub fn files(&self) -> Vec<&str> {
        self.key_file
            .iter()
            .chain(&self.key_files)
            .map(String::as_str)
            .collect()
    }
}

/// The local status endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StatusEndpoint {
    /// Address to serve /status, /healthz, /metrics and POST /switchover on.
    #[serde(default = "default_status_listen")]
    pub listen: SocketAddr,
    /// File holding the token `POST /switchover` requires (owner-only; created with a random
    /// token when missing); default: beside the role file, `/run/rdg/<name>.token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_file: Option<String>,
}

fn default_status_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9035))
}

impl Default for StatusEndpoint {
    fn default() -> Self {
        StatusEndpoint {
            listen: default_status_listen(),
            token_file: None,
        }
    }
}

/// The Infocast carousel transmitter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Transmitter {
    /// Multicast channels to send.
    #[serde(default)]
    pub channels: Vec<Channel>,
}

/// One carousel channel (a multicast group and port) and the objects it cycles through.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Channel {
    /// Multicast group the channel is sent to.
    pub address: IpAddr,
    /// UDP port.
    #[schemars(range(min = 1))]
    pub port: u16,
    /// Multicast TTL.
    #[serde(default = "default_ttl")]
    #[schemars(range(min = 1))]
    pub ttl: u8,
    /// Sending rate, e.g. `2Mbit`, `500kbit`, `1Gbit` (bits per second).
    pub bit_rate: String,
    /// Payload bytes per datagram.
    #[serde(default = "default_payload_size")]
    pub payload_size: u32,
    /// Objects sent in turn.
    #[serde(default)]
    pub objects: Vec<CarouselObject>,
    /// Pause after each burst, a burst being one pass over the channel's objects (one carousel
    /// cycle). Leave out (or `0s`) to start the next cycle at once. An rdg extension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst_delay: Option<Dur>,
}

fn default_payload_size() -> u32 {
    1024
}

/// One object of the carousel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CarouselObject {
    /// Name shown to receivers and in logs (`Processing "bootcast_1900"`).
    pub name: String,
    /// Kind of object.
    #[serde(rename = "type", default)]
    pub kind: ObjectKind,
    /// File whose bytes are the object; re-read when it changes. Exactly one of `source` and
    /// `bootcast` is required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// For `type: bootcastinfo` only: generate the boot descriptor from these fields instead
    /// of reading `source`. An rdg extension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bootcast: Option<Bootcast>,
    /// CRC precoding: announce the CRC32 of the whole object so receivers verify it after
    /// reassembly (every chunk is CRC-checked regardless). An rdg extension.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub crc: bool,
    /// Send this object at most once per this delay; the channel's other objects keep cycling
    /// in between. Leave out to send it in every cycle. An rdg extension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat_delay: Option<Dur>,
}

/// The fields of a generated set-top box boot descriptor (`type: bootcastinfo` objects without
/// a `source`). The descriptor is `key=value` lines: `name`, then these fields in this order,
/// then `extra` sorted by key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Bootcast {
    /// Multicast group and port the kernel image is sent on, e.g. `224.2.2.3:22223`.
    pub kernel_address: SocketAddr,
    /// Name of the kernel object on that channel.
    pub kernel_name: String,
    /// Version of the kernel; boxes compare it with the one they run to decide to upgrade.
    pub kernel_version: String,
    /// Kernel command line handed to the box's boot loader.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel_args: Option<String>,
    /// Further `key=value` lines, for fields a box model needs that rdg does not know.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, String>,
}

/// Kind of a carousel object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ObjectKind {
    /// A set-top box boot descriptor.
    Bootcastinfo,
    /// Any other file.
    #[default]
    Generic,
}

impl GroupConfig {
    /// True when the group name is empty: run standalone, always hot, no heartbeats.
    pub fn is_standalone(&self) -> bool {
        self.name.is_empty()
    }

    /// How often the net check starts a round: as seldom as still gives a standby a verdict
    /// from after a hot member went quiet before it may take over (a round starting within an
    /// interval of the last heartbeat ends before the heartbeat timeout), and never more often
    /// than one round per `netCheck.timeout`.
    pub fn net_check_period(&self) -> std::time::Duration {
        let nc = self.net_check.timeout.get();
        let hb = &self.heartbeat;
        hb.timeout
            .get()
            .saturating_sub(hb.interval.get() + nc)
            .max(nc)
    }

    /// How often the net check starts a round while it is urgent (another member went quiet,
    /// see `Node::net_check_urgent`): every heartbeat interval, and never more often than one
    /// round per `netCheck.timeout`.
    pub fn net_check_urgent_period(&self) -> std::time::Duration {
        self.heartbeat
            .interval
            .get()
            .max(self.net_check.timeout.get())
    }

    /// The entry of member `name`, if any.
    pub fn member(&self, name: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.name == name)
    }

    /// Index of network `name` in `networks`.
    pub fn network_index(&self, name: &str) -> Option<usize> {
        self.networks.iter().position(|n| n.name == name)
    }

    /// The role file path, with the default `/run/rdg/<name>.role` filled in.
    pub fn role_file_path(&self) -> String {
        match &self.role_file {
            Some(p) => p.clone(),
            None if self.name.is_empty() => "/run/rdg/standalone.role".to_string(),
            None => format!("/run/rdg/{}.role", self.name),
        }
    }
}
