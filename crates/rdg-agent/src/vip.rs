//! Virtual IPs: the hot member owns them. Addresses are added and removed with rtnetlink on the
//! interface that holds this member's address on the VIP's network (IPv4 ones labelled
//! `<interface>:rdg`, so `ip addr` shows who put them there; IPv6 ones without duplicate
//! address detection, so they work at once), and announced with gratuitous ARP (request and
//! reply forms) or unsolicited neighbour advertisements so switches and clients move to the
//! new member's MAC at once.
//!
//! Before an IPv4 VIP is added it is probed with ARP (see [`crate::arp_probe`]): a foreign host
//! answering for it keeps this member from adding it (an error in `/status`, `/healthz` 503, a
//! `vip-failed` notification; retried every second while hot), while another member's leftover
//! (a frozen former hot member's kernel) is taken over with a warning. IPv6 VIPs are not probed
//! (duplicate address detection is off by design).
//!
//! Ordering is the agent's job: VIPs are removed *before* a member announces that it left HS,
//! and added right after it became HS (see `agent.rs`).

use crate::arp_probe::{self, Verdict};
use crate::metrics::{Metrics, VipLabels};
use crate::transport::interface_of;
use pnet_datalink::{Channel, DataLinkSender, MacAddr};
use rdg_core::config::{GroupConfig, parse_cidr};
use rtnetlink::packet_route::address::{AddressAttribute, AddressFlags, AddressMessage};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::sync::Arc;
use std::time::Duration;
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
            });
        }
        // Fail now, not at the first takeover, if announcements cannot be sent.
        for v in &vips {
            Announcer::open(v)?;
        }
        let (conn, handle, _) = rtnetlink::new_connection().map_err(VipError::Netlink)?;
        tokio::spawn(conn);
        Ok(Some(VipManager {
            vips,
            handle,
            count: cfg.garp.count,
            spacing: cfg.garp.spacing.get(),
            refresh: cfg.garp.refresh.get(),
            metrics,
            burst: None,
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

    /// Adds every VIP (became hot) and starts the announcement burst; IPv4 VIPs not held yet are
    /// ARP-probed first, all in parallel, which bounds the added time to one probe window.
    /// Returns the VIPs that could not be added, with why — only when the reason is new, so a
    /// retry every second does not repeat the same notification.
    pub async fn acquire(&mut self) -> Vec<(String, String)> {
        let probes = self.probe_all().await;
        let mut failed = Vec::new();
        for (i, probed) in probes.into_iter().enumerate() {
            if let Some(why) = probed {
                let v = &mut self.vips[i];
                v.held = false;
                if v.error.as_deref() != Some(why.as_str()) {
                    tracing::error!(vip = %v.cidr, interface = %v.interface, error = %why, "VIP not added");
                    failed.push((v.cidr.clone(), why.clone()));
                }
                v.error = Some(why);
                self.set_gauge(i);
                continue;
            }
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
            match result {
                Ok(()) => {
                    v.held = true;
                    v.error = None;
                    tracing::info!(vip = %v.cidr, interface = %v.interface, "VIP added");
                }
                Err(e) => {
                    let why = e.to_string();
                    v.held = false;
                    if v.error.as_deref() != Some(why.as_str()) {
                        tracing::error!(vip = %v.cidr, interface = %v.interface, error = %why, "VIP could not be added");
                        failed.push((v.cidr.clone(), why.clone()));
                    }
                    v.error = Some(why);
                }
            }
            self.set_gauge(i);
        }
        self.announce(self.count);
        failed
    }

    /// ARP-probes every IPv4 VIP that is not held (in parallel, on the blocking pool); for each
    /// VIP, Some(why) when a foreign host holds it. A probe that cannot run (no raw socket) does
    /// not hold the takeover up: it is logged and the VIP is added as before.
    async fn probe_all(&self) -> Vec<Option<String>> {
        let tasks: Vec<Option<JoinHandle<std::io::Result<arp_probe::Probed>>>> = self
            .vips
            .iter()
            .map(|v| match (v.address, v.own) {
                (IpAddr::V4(vip), Some(own)) if !v.held => {
                    let target = arp_probe::Target {
                        vip,
                        index: v.index,
                        mac: v.mac,
                        own,
                        members: v.members.clone(),
                    };
                    Some(tokio::task::spawn_blocking(move || {
                        arp_probe::probe(&target)
                    }))
                }
                _ => None,
            })
            .collect();
        let mut out = Vec::with_capacity(tasks.len());
        for (v, task) in self.vips.iter().zip(tasks) {
            let Some(task) = task else {
                out.push(None);
                continue;
            };
            let result = task
                .await
                .unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())));
            out.push(match result {
                Err(e) => {
                    tracing::warn!(vip = %v.cidr, interface = %v.interface, error = %e, "ARP probe failed; adding the VIP without it");
                    None
                }
                Ok(p) => {
                    let ms = p.elapsed.as_secs_f64() * 1000.0;
                    match p.verdict {
                        Verdict::Free => {
                            tracing::info!(vip = %v.cidr, probe_ms = format!("{ms:.1}"), "ARP probe: nobody else holds the VIP");
                            None
                        }
                        Verdict::MemberLeftover { mac, member } => {
                            tracing::warn!(
                                vip = %v.cidr,
                                mac = %arp_probe::mac_string(mac),
                                %member,
                                probe_ms = format!("{ms:.1}"),
                                "ARP probe: the VIP is still on member {member}'s host (a frozen or crashed former hot member; its lease has fenced it); taking it anyway"
                            );
                            None
                        }
                        Verdict::Foreign { mac } => Some(format!(
                            "{} is in use by {}; not taking it (a host that is no member of the group answered an ARP probe for it)",
                            v.address,
                            arp_probe::mac_string(mac)
                        )),
                    }
                }
            });
        }
        out
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
