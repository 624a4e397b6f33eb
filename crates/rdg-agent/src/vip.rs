//! Virtual IPs: the hot member owns them. Addresses are added and removed with rtnetlink on the
//! interface that holds this member's address on the VIP's network (IPv4 ones labelled
//! `<interface>:rdg`, so `ip addr` shows who put them there; IPv6 ones without duplicate
//! address detection, so they work at once), and announced with gratuitous ARP (request and
//! reply forms) or unsolicited neighbour advertisements so switches and clients move to the
//! new member's MAC at once.
//!
//! IPv4 VIPs are checked with an ARP probe (see [`crate::arp_probe`]) for a foreign holder, but
//! the probe never stands in front of a failover:
//!
//! - **Failover** (takeover from a lost hot member, or a hand-over: [`VipManager::acquire`]):
//!   the VIP is added and the announcement burst starts at once; the probe runs afterwards in
//!   the background, as a conflict check. An answer from another member's MAC is the leftover
//!   of a frozen or crashed former hot member (a warning; its lease fenced it and our
//!   gratuitous ARP already moved the clients); an answer from any other MAC is a foreign
//!   host: the VIP is removed again.
//! - **Cold start** (won the start-up election: nobody was hot, so nobody waits for the VIP)
//!   and **retries** while a VIP is missing ([`VipManager::acquire_probed`]): probe first, add
//!   only when nobody but a member's leftover answers.
//!
//! A VIP a foreign host holds is an error in `/status` (the same text for both paths, so the
//! `vip-failed` notification is sent once), `/healthz` answers 503, and the agent retries every
//! second while hot. Probes run on the blocking pool and their results come back to the agent
//! loop ([`VipManager::take_probe_results`], [`VipManager::on_probe`]), so the loop never waits
//! for a probe window. A result that arrives after the VIP was added or removed again (a
//! release, a new takeover) is stale and ignored (per-VIP generation counter). IPv6 VIPs are not
//! probed (duplicate address detection is off by design).
//!
//! Ordering is the agent's job: VIPs are removed *before* a member announces that it left HS,
//! and added right after it became HS (see `agent.rs`).

use crate::arp_probe::{self, Verdict};
use crate::metrics::{Metrics, VipLabels, VipProbeLabels};
use crate::transport::interface_of;
use pnet_datalink::{Channel, DataLinkSender, MacAddr};
use rdg_core::config::{GroupConfig, parse_cidr};
use rtnetlink::packet_route::address::{AddressAttribute, AddressFlags, AddressMessage};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Why VIP handling cannot start.
#[derive(Debug, thiserror::Error)]
pub enum VipError {
    /// A VIP's network has no interface on this host.
    #[error(
        "vips[{index}]: {address}: no interface of this host holds this member's address on network {network}"
    )]
    NoInterface {
        /// Index in `vips`.
        index: usize,
        /// The VIP.
        address: String,
        /// Its network.
        network: String,
    },
    /// The netlink socket cannot be opened.
    #[error("vips: cannot open a netlink socket: {0}")]
    Netlink(std::io::Error),
    /// A raw socket for the announcements cannot be opened (needs CAP_NET_RAW).
    #[error(
        "vips: cannot open a raw socket on {interface} for gratuitous ARP / neighbour advertisements: {source}; needs CAP_NET_RAW"
    )]
    Raw {
        /// The interface.
        interface: String,
        /// The OS error.
        source: std::io::Error,
    },
}

/// One configured VIP, resolved on this host.
#[derive(Debug, Clone)]
pub struct Vip {
    /// The address.
    pub address: IpAddr,
    /// Its prefix length.
    pub prefix: u8,
    /// `address/prefix` as configured.
    pub cidr: String,
    /// Interface name.
    pub interface: String,
    /// Interface index.
    pub index: u32,
    /// Interface MAC (what the announcements carry).
    pub mac: [u8; 6],
    /// Whether it is on this host now (as far as the agent knows).
    pub held: bool,
    /// The last error adding it, if it is missing while hot.
    pub error: Option<String>,
    /// This member's IPv4 address on the VIP's network (sender of the ARP probe's requests).
    pub own: Option<Ipv4Addr>,
    /// The other members' IPv4 addresses on the VIP's network (to tell their leftovers from a
    /// foreign host in the ARP probe).
    pub members: Vec<Ipv4Addr>,
    /// Bumped by every add and delete: a probe result for an older generation is stale.
    generation: u64,
    /// An ARP probe for this VIP is running.
    probing: bool,
}

/// Why a VIP is being probed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeKind {
    /// The VIP is not on this host (cold start, retry): add it unless a foreign host answers.
    BeforeAdd,
    /// The VIP was just added (failover): remove it again if a foreign host answers.
    AfterAdd,
}

impl ProbeKind {
    fn as_str(self) -> &'static str {
        match self {
            ProbeKind::BeforeAdd => "before adding",
            ProbeKind::AfterAdd => "after adding",
        }
    }
}

/// A finished background ARP probe; the agent loop hands it to [`VipManager::on_probe`].
#[derive(Debug)]
pub struct ProbeDone {
    index: usize,
    generation: u64,
    kind: ProbeKind,
    result: std::io::Result<arp_probe::Probed>,
}

/// The VIPs of one member and the means to move them.
pub struct VipManager {
    vips: Vec<Vip>,
    handle: rtnetlink::Handle,
    count: u32,
    spacing: Duration,
    refresh: Duration,
    metrics: Arc<Metrics>,
    burst: Option<JoinHandle<()>>,
    probe_tx: mpsc::UnboundedSender<ProbeDone>,
    probe_rx: Option<mpsc::UnboundedReceiver<ProbeDone>>,
}

impl VipManager {
    /// Resolves every configured VIP on this host and opens netlink; None without VIPs.
    /// Must run inside a tokio runtime.
    pub fn open(
        cfg: &GroupConfig,
        member: &str,
        metrics: Arc<Metrics>,
    ) -> Result<Option<VipManager>, VipError> {
        if cfg.vips.is_empty() {
            return Ok(None);
        }
        let interfaces = pnet_datalink::interfaces();
        let mut vips = Vec::new();
        for (index, v) in cfg.vips.iter().enumerate() {
            let no_interface = || VipError::NoInterface {
                index,
                address: v.address.clone(),
                network: v.network.clone(),
            };
            // Validated configuration: the CIDR parses and the network exists.
            let (address, prefix) = parse_cidr(&v.address).map_err(|_| no_interface())?;
            let own = cfg
                .member(member)
                .and_then(|m| m.addresses.get(&v.network))
                .copied()
                .ok_or_else(no_interface)?;
            let name = interface_of(own).ok_or_else(no_interface)?;
            let iface = interfaces
                .iter()
                .find(|i| i.name == name)
                .ok_or_else(no_interface)?;
            let mac = iface.mac.unwrap_or(MacAddr::zero());
            let members = cfg
                .members
                .iter()
                .filter(|m| m.name != member)
                .filter_map(|m| match m.addresses.get(&v.network) {
                    Some(IpAddr::V4(a)) => Some(*a),
                    _ => None,
                })
                .collect();
            vips.push(Vip {
                address,
                prefix,
                cidr: v.address.clone(),
                interface: name,
                index: iface.index,
                mac: mac.octets(),
                held: false,
                error: None,
                own: match own {
                    IpAddr::V4(a) => Some(a),
                    IpAddr::V6(_) => None,
                },
                members,
                generation: 0,
                probing: false,
            });
        }
        // Fail now, not at the first takeover, if announcements cannot be sent.
        for v in &vips {
            Announcer::open(v)?;
        }
        let (conn, handle, _) = rtnetlink::new_connection().map_err(VipError::Netlink)?;
        tokio::spawn(conn);
        let (probe_tx, probe_rx) = mpsc::unbounded_channel();
        Ok(Some(VipManager {
            vips,
            handle,
            count: cfg.garp.count,
            spacing: cfg.garp.spacing.get(),
            refresh: cfg.garp.refresh.get(),
            metrics,
            burst: None,
            probe_tx,
            probe_rx: Some(probe_rx),
        }))
    }

    /// The VIPs and their state (for `/status`).
    pub fn vips(&self) -> &[Vip] {
        &self.vips
    }

    /// How often a hot member repeats one announcement (zero: never).
    pub fn refresh(&self) -> Duration {
        self.refresh
    }

    /// True when every VIP is on this host.
    pub fn all_held(&self) -> bool {
        self.vips.iter().all(|v| v.held)
    }

    /// The first VIP not on this host and why, as `/healthz` of a hot member says it.
    pub fn first_missing(&self) -> Option<String> {
        let v = self.vips.iter().find(|v| !v.held)?;
        Some(match &v.error {
            Some(e) => format!("VIP {} is missing: {e}", v.cidr),
            None => format!("VIP {} is missing", v.cidr),
        })
    }

    /// At start-up (not hot): removes VIPs left on this host by an earlier run that crashed.
    pub async fn remove_leftovers(&mut self) {
        for i in 0..self.vips.len() {
            if self.delete(i).await {
                tracing::warn!(
                    vip = %self.vips[i].cidr,
                    interface = %self.vips[i].interface,
                    "removed a VIP left on this host while not hot (an earlier run ended without releasing it)"
                );
            }
        }
    }

    /// The channel on which background ARP probes report (once; the agent loop owns it and
    /// passes every result to [`VipManager::on_probe`]).
    pub fn take_probe_results(&mut self) -> Option<mpsc::UnboundedReceiver<ProbeDone>> {
        self.probe_rx.take()
    }

    /// Failover: adds every VIP that is not held at once, starts the announcement burst, and
    /// only then ARP-probes the IPv4 ones in the background for a foreign holder (the result
    /// comes back through [`VipManager::take_probe_results`]). Returns the VIPs that could not
    /// be added, with why — only when the reason is new, so a retry every second does not
    /// repeat the same notification.
    pub async fn acquire(&mut self) -> Vec<(String, String)> {
        let mut failed = Vec::new();
        let mut added = Vec::new();
        for i in 0..self.vips.len() {
            if self.vips[i].held {
                continue;
            }
            match self.add(i, "none before adding (failover)").await {
                Ok(()) => added.push(i),
                Err(f) => failed.extend(f),
            }
        }
        self.announce(self.count);
        for i in added {
            self.spawn_probe(i, ProbeKind::AfterAdd);
        }
        failed
    }

    /// Cold start and retries: ARP-probes every IPv4 VIP that is neither held nor being probed
    /// (in the background; [`VipManager::on_probe`] adds it when nobody but a member's leftover
    /// answered) and adds the others (IPv6, or no IPv4 address of our own to probe from) at
    /// once. Returns the VIPs that could not be added, as [`VipManager::acquire`] does.
    pub async fn acquire_probed(&mut self) -> Vec<(String, String)> {
        let mut failed = Vec::new();
        let mut added = false;
        for i in 0..self.vips.len() {
            let v = &self.vips[i];
            if v.held || v.probing {
                continue;
            }
            if self.probe_target(i).is_some() {
                self.spawn_probe(i, ProbeKind::BeforeAdd);
                continue;
            }
            match self.add(i, "not probed").await {
                Ok(()) => added = true,
                Err(f) => failed.extend(f),
            }
        }
        if added {
            self.announce(self.count);
        }
        failed
    }

    /// Carries out a finished probe: adds the VIP (probe before adding: free, or only a
    /// member's leftover), removes it again (probe after adding: a foreign host answered), or
    /// records the foreign holder as the VIP's error. Stale results (the VIP was added or
    /// removed since the probe started) are ignored. Returns the new failures, as
    /// [`VipManager::acquire`] does.
    pub async fn on_probe(&mut self, done: ProbeDone) -> Vec<(String, String)> {
        let i = done.index;
        let Some(v) = self.vips.get_mut(i) else {
            return Vec::new();
        };
        if v.generation != done.generation {
            tracing::debug!(vip = %v.cidr, "stale ARP probe result ignored (the VIP was added or removed since)");
            return Vec::new();
        }
        v.probing = false;
        let kind = done.kind;
        let verdict = match done.result {
            Err(e) => {
                self.count_probe(i, "error");
                let v = &self.vips[i];
                tracing::warn!(vip = %v.cidr, interface = %v.interface, error = %e, probe = kind.as_str(), "ARP probe failed; the VIP is taken without it");
                return match kind {
                    ProbeKind::BeforeAdd => self.add_and_announce(i, "probe failed").await,
                    ProbeKind::AfterAdd => Vec::new(),
                };
            }
            Ok(p) => p,
        };
        let ms = format!("{:.1}", verdict.elapsed.as_secs_f64() * 1000.0);
        let v = &self.vips[i];
        match verdict.verdict {
            Verdict::Free => {
                self.count_probe(i, "free");
                tracing::info!(vip = %v.cidr, probe_ms = ms, "ARP probe {}: nobody else holds the VIP", kind.as_str());
                match kind {
                    ProbeKind::BeforeAdd => self.add_and_announce(i, "free").await,
                    ProbeKind::AfterAdd => Vec::new(),
                }
            }
            Verdict::MemberLeftover { mac, member } => {
                self.count_probe(i, "member_leftover");
                tracing::warn!(
                    vip = %v.cidr,
                    mac = %arp_probe::mac_string(mac),
                    %member,
                    probe_ms = ms,
                    "ARP probe {}: the VIP is still on member {member}'s host (a frozen or crashed former hot member; its lease has fenced it); taking it anyway",
                    kind.as_str()
                );
                match kind {
                    ProbeKind::BeforeAdd => self.add_and_announce(i, "member leftover").await,
                    ProbeKind::AfterAdd => Vec::new(),
                }
            }
            Verdict::Foreign { mac } => {
                self.count_probe(i, "foreign");
                let why = format!(
                    "{} is in use by {}; not taking it (a host that is no member of the group answered an ARP probe for it)",
                    v.address,
                    arp_probe::mac_string(mac)
                );
                if kind == ProbeKind::AfterAdd {
                    // Stop announcing it before giving it back, then announce the others again.
                    if let Some(b) = self.burst.take() {
                        b.abort();
                    }
                    self.delete(i).await;
                    tracing::error!(vip = %self.vips[i].cidr, "VIP removed again: a foreign host answered the ARP probe after adding it");
                    self.announce(self.count);
                }
                self.fail(i, why).into_iter().collect()
            }
        }
    }

    /// Records `why` as VIP `i`'s error; Some when it is new (to be notified).
    fn fail(&mut self, i: usize, why: String) -> Option<(String, String)> {
        let v = &mut self.vips[i];
        v.held = false;
        let new = v.error.as_deref() != Some(why.as_str());
        if new {
            tracing::error!(vip = %v.cidr, interface = %v.interface, error = %why, "VIP not added");
        }
        v.error = Some(why.clone());
        self.set_gauge(i);
        new.then(|| (self.vips[i].cidr.clone(), why))
    }

    async fn add_and_announce(&mut self, i: usize, probe: &str) -> Vec<(String, String)> {
        match self.add(i, probe).await {
            Ok(()) => {
                self.announce(self.count);
                Vec::new()
            }
            Err(f) => f.into_iter().collect(),
        }
    }

    /// Adds VIP `i` with netlink; Err(Some) with a new failure to notify, Err(None) when it
    /// failed for the reason already reported.
    async fn add(&mut self, i: usize, probe: &str) -> Result<(), Option<(String, String)>> {
        let v = &self.vips[i];
        let mut req = self
            .handle
            .address()
            .add(v.index, v.address, v.prefix)
            .replace();
        let msg = req.message_mut();
        if v.address.is_ipv4() {
            let label = format!("{}:rdg", v.interface);
            if label.len() <= 15 {
                msg.attributes.push(AddressAttribute::Label(label));
            }
        } else {
            msg.attributes
                .push(AddressAttribute::Flags(AddressFlags::Nodad));
        }
        let result = req.execute().await;
        let v = &mut self.vips[i];
        v.generation += 1;
        match result {
            Ok(()) => {
                v.held = true;
                v.error = None;
                tracing::info!(vip = %v.cidr, interface = %v.interface, probe, "VIP added");
                self.set_gauge(i);
                Ok(())
            }
            Err(e) => {
                let denied = matches!(&e, rtnetlink::Error::NetlinkError(m)
                    if m.to_io().kind() == std::io::ErrorKind::PermissionDenied);
                let why = if denied {
                    format!("cannot add it: {e}; adding an address needs CAP_NET_ADMIN")
                } else {
                    format!("cannot add it: {e}")
                };
                Err(self.fail(i, why))
            }
        }
    }

    /// What to probe for VIP `i`: None for IPv6 VIPs and when this member has no IPv4 address
    /// on the VIP's network to send from.
    fn probe_target(&self, i: usize) -> Option<arp_probe::Target> {
        let v = &self.vips[i];
        match (v.address, v.own) {
            (IpAddr::V4(vip), Some(own)) => Some(arp_probe::Target {
                vip,
                index: v.index,
                mac: v.mac,
                own,
                members: v.members.clone(),
            }),
            _ => None,
        }
    }

    /// Starts an ARP probe of VIP `i` on the blocking pool (bounded by the probe window); the
    /// result goes to the probe channel. Nothing for VIPs that are not probed.
    fn spawn_probe(&mut self, i: usize, kind: ProbeKind) {
        let Some(target) = self.probe_target(i) else {
            return;
        };
        let v = &mut self.vips[i];
        v.probing = true;
        let generation = v.generation;
        let tx = self.probe_tx.clone();
        tokio::task::spawn_blocking(move || {
            let result = arp_probe::probe(&target);
            let _ = tx.send(ProbeDone {
                index: i,
                generation,
                kind,
                result,
            });
        });
    }

    fn count_probe(&self, i: usize, verdict: &str) {
        self.metrics
            .arp_probes
            .get_or_create(&VipProbeLabels {
                vip: self.vips[i].cidr.clone(),
                verdict: verdict.to_string(),
            })
            .inc();
    }

    /// Removes every VIP (left HS). Waits for the kernel's answer, so the caller can announce
    /// the release right after.
    pub async fn release(&mut self) {
        if let Some(b) = self.burst.take() {
            b.abort();
        }
        for i in 0..self.vips.len() {
            if self.delete(i).await {
                tracing::info!(vip = %self.vips[i].cidr, "VIP removed");
            }
        }
    }

    /// Sends `count` announcements of every held VIP in the background (the first at once).
    pub fn announce(&mut self, count: u32) {
        let held: Vec<Vip> = self.vips.iter().filter(|v| v.held).cloned().collect();
        if held.is_empty() || count == 0 {
            return;
        }
        if let Some(b) = self.burst.take() {
            b.abort();
        }
        let spacing = self.spacing;
        let metrics = Arc::clone(&self.metrics);
        self.burst = Some(tokio::spawn(async move {
            let mut announcers: Vec<(Vip, Option<Announcer>)> = held
                .into_iter()
                .map(|v| {
                    let a = Announcer::open(&v)
                        .inspect_err(|e| tracing::error!(error = %e, "no announcements"))
                        .ok();
                    (v, a)
                })
                .collect();
            for round in 0..count {
                if round > 0 {
                    tokio::time::sleep(spacing).await;
                }
                for (v, a) in &mut announcers {
                    let Some(a) = a else { continue };
                    match a.send(v) {
                        Ok(n) => {
                            metrics
                                .garp_sent
                                .get_or_create(&VipLabels {
                                    vip: v.cidr.clone(),
                                })
                                .inc_by(n);
                        }
                        Err(e) => {
                            tracing::warn!(vip = %v.cidr, error = %e, "announcement not sent")
                        }
                    }
                }
            }
        }));
    }

    /// Deletes VIP `i`; true when it was there.
    async fn delete(&mut self, i: usize) -> bool {
        let v = &self.vips[i];
        let mut msg = AddressMessage::default();
        msg.header.family = if v.address.is_ipv4() {
            rtnetlink::packet_route::AddressFamily::Inet
        } else {
            rtnetlink::packet_route::AddressFamily::Inet6
        };
        msg.header.prefix_len = v.prefix;
        msg.header.index = v.index;
        msg.attributes.push(AddressAttribute::Local(v.address));
        msg.attributes.push(AddressAttribute::Address(v.address));
        let result = self.handle.address().del(msg).execute().await;
        let v = &mut self.vips[i];
        v.held = false;
        v.error = None;
        v.generation += 1;
        v.probing = false;
        let was_there = match result {
            Ok(()) => true,
            // EADDRNOTAVAIL: it was not there.
            Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc_eaddrnotavail() => {
                false
            }
            Err(e) => {
                tracing::error!(vip = %v.cidr, error = %e, "VIP could not be removed");
                false
            }
        };
        self.set_gauge(i);
        was_there
    }

    fn set_gauge(&self, i: usize) {
        let v = &self.vips[i];
        self.metrics
            .vip_held
            .get_or_create(&VipLabels {
                vip: v.cidr.clone(),
            })
            .set(i64::from(v.held));
    }
}

fn libc_eaddrnotavail() -> i32 {
    nix::errno::Errno::EADDRNOTAVAIL as i32
}

/// Sends the announcements of one VIP: an AF_PACKET channel for gratuitous ARP, or an ICMPv6
/// raw socket for unsolicited neighbour advertisements.
enum Announcer {
    Arp(Box<dyn DataLinkSender>),
    Na(socket2::Socket),
}

impl Announcer {
    fn open(v: &Vip) -> Result<Announcer, VipError> {
        let raw = |source| VipError::Raw {
            interface: v.interface.clone(),
            source,
        };
        if v.address.is_ipv4() {
            let iface = pnet_datalink::interfaces()
                .into_iter()
                .find(|i| i.index == v.index)
                .ok_or_else(|| raw(std::io::Error::other("interface gone")))?;
            match pnet_datalink::channel(&iface, Default::default()).map_err(raw)? {
                Channel::Ethernet(tx, _rx) => Ok(Announcer::Arp(tx)),
                _ => Err(raw(std::io::Error::other("not an Ethernet interface"))),
            }
        } else {
            let s = socket2::Socket::new(
                socket2::Domain::IPV6,
                socket2::Type::RAW,
                Some(socket2::Protocol::ICMPV6),
            )
            .map_err(raw)?;
            s.set_multicast_hops_v6(255).map_err(raw)?;
            s.set_multicast_if_v6(v.index).map_err(raw)?;
            Ok(Announcer::Na(s))
        }
    }

    /// Sends one announcement round; returns the number of packets sent.
    fn send(&mut self, v: &Vip) -> std::io::Result<u64> {
        match (self, v.address) {
            (Announcer::Arp(tx), IpAddr::V4(ip)) => {
                let mut sent = 0;
                for op in [ArpOp::Request, ArpOp::Reply] {
                    let frame = garp_frame(v.mac, ip.octets(), op);
                    match tx.send_to(&frame, None) {
                        Some(Ok(())) => sent += 1,
                        Some(Err(e)) => return Err(e),
                        None => return Err(std::io::Error::other("no room to send")),
                    }
                }
                Ok(sent)
            }
            (Announcer::Na(s), IpAddr::V6(ip)) => {
                let packet = unsolicited_na(ip, v.mac);
                let all_nodes =
                    SocketAddrV6::new(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1), 0, 0, v.index);
                s.send_to(&packet, &SocketAddr::V6(all_nodes).into())?;
                Ok(1)
            }
            _ => Ok(0),
        }
    }
}

/// The two forms of gratuitous ARP (hosts differ in which one they honour).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArpOp {
    /// "Who has VIP? Tell VIP" (ARP request, target hardware address zero).
    Request,
    /// "VIP is at MAC" (ARP reply, target = sender).
    Reply,
}

/// A broadcast Ethernet frame carrying a gratuitous ARP for `ip` at `mac`.
pub fn garp_frame(mac: [u8; 6], ip: [u8; 4], op: ArpOp) -> Vec<u8> {
    let mut f = Vec::with_capacity(42);
    f.extend_from_slice(&[0xff; 6]); // destination: broadcast
    f.extend_from_slice(&mac); // source
    f.extend_from_slice(&[0x08, 0x06]); // EtherType ARP
    f.extend_from_slice(&[0x00, 0x01, 0x08, 0x00, 6, 4]); // Ethernet, IPv4, sizes
    let (code, target_mac) = match op {
        ArpOp::Request => (1u8, [0u8; 6]),
        ArpOp::Reply => (2u8, mac),
    };
    f.extend_from_slice(&[0x00, code]);
    f.extend_from_slice(&mac); // sender hardware address
    f.extend_from_slice(&ip); // sender protocol address
    f.extend_from_slice(&target_mac); // target hardware address
    f.extend_from_slice(&ip); // target protocol address
    f
}

/// An ICMPv6 unsolicited neighbour advertisement (RFC 4861 §7.2.6) for `target` at `mac`, with
/// the override flag; the kernel fills in the checksum of raw ICMPv6 sockets.
pub fn unsolicited_na(target: Ipv6Addr, mac: [u8; 6]) -> Vec<u8> {
    let mut p = Vec::with_capacity(32);
    p.extend_from_slice(&[136, 0, 0, 0]); // type NA, code 0, checksum (kernel)
    p.extend_from_slice(&[0x20, 0, 0, 0]); // flags: override
    p.extend_from_slice(&target.octets());
    p.extend_from_slice(&[2, 1]); // option: target link-layer address, 8 bytes
    p.extend_from_slice(&mac);
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gratuitous_arp_frames() {
        let mac = [0x02, 0, 0, 0, 0, 0x11];
        let ip = [10, 0, 0, 100];
        let req = garp_frame(mac, ip, ArpOp::Request);
        assert_eq!(req.len(), 42);
        assert_eq!(&req[0..6], &[0xff; 6]);
        assert_eq!(&req[6..12], &mac);
        assert_eq!(&req[12..14], &[0x08, 0x06]);
        assert_eq!(&req[20..22], &[0, 1]);
        assert_eq!(&req[22..28], &mac);
        assert_eq!(&req[28..32], &ip);
        assert_eq!(&req[32..38], &[0; 6]);
        assert_eq!(&req[38..42], &ip);
        let rep = garp_frame(mac, ip, ArpOp::Reply);
        assert_eq!(&rep[20..22], &[0, 2]);
        assert_eq!(&rep[32..38], &mac);
    }

    #[test]
    fn neighbour_advertisement() {
        let t: Ipv6Addr = "2001:db8::100".parse().unwrap();
        let p = unsolicited_na(t, [2, 0, 0, 0, 0, 1]);
        assert_eq!(p.len(), 32);
        assert_eq!(p[0], 136);
        assert_eq!(p[4] & 0x20, 0x20, "override");
        assert_eq!(p[4] & 0x40, 0, "not solicited");
        assert_eq!(&p[8..24], &t.octets());
        assert_eq!(&p[24..26], &[2, 1]);
    }
}
