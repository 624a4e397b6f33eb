//! ARP probe of an IPv4 VIP for another holder (RFC 5227 style, with much shorter timings).
//!
//! The member broadcasts [`PROBES`] ARP requests "who has VIP? tell 0.0.0.0" on the VIP's
//! interface, [`PROBE_SPACING`] apart, and listens for [`PROBE_WINDOW`] in all. Any host that
//! holds the address answers (Linux replies to such probes with a unicast ARP reply from the
//! VIP to our MAC); an ARP request or gratuitous ARP *from* the VIP seen in the window counts
//! too. When the probe runs is the VIP manager's policy (see [`crate::vip`]): after the VIP was
//! added on a failover (a conflict check that does not delay the takeover), before adding it on
//! a cold start and on retries.
//!
//! # Probing an address we already hold
//!
//! The probe keeps sender IP 0.0.0.0 even after the VIP was added. RFC 5227 lets a host that
//! uses an address announce it (sender IP = the address), but a Linux holder ignores an ARP
//! request whose sender IP is one of its own addresses (a martian source), so only the
//! 0.0.0.0 form gets an answer from a foreign holder; it also teaches no ARP cache anything.
//! Our own kernel does not see frames sent on a packet socket (they are looped back to packet
//! sockets only, never to the ARP layer), so it does not answer our probe; whatever our kernel
//! does send for the VIP meanwhile (answers to clients' requests, our gratuitous ARP) carries
//! our MAC and is skipped. A foreign holder's reply is addressed to our MAC and arrives whether
//! or not we hold the address, so both holders' answers are seen: the conflict is detected.
//!
//! # Foreign host or another member's leftover?
//!
//! An answer does not always mean a foreign host: a frozen (SIGSTOPped) former hot member, or one
//! whose agent crashed, still has the VIP in its kernel and its kernel still answers ARP. The
//! lease has fenced that member (it stopped being hot when its lease ran out, and it drops the
//! VIP as soon as it runs again), so the new hot member must take the VIP anyway and move the
//! clients with its gratuitous ARP.
//!
//! The two are told apart by MAC, learned live in the same window: together with every probe
//! the member sends an ordinary ARP request for every *other* member's configured address on
//! the VIP's network (`members[].addresses`; repeated so that one lost frame does not turn a
//! leftover into a "foreign" host). rdg only ever puts a VIP on the interface that holds the
//! member's own address on the VIP's network, so a member's leftover VIP answers with exactly
//! the MAC that answers for that member's address. An answer for the VIP from a MAC that also
//! answered for a configured member address is therefore "a member's leftover" (warning, take
//! the VIP); any other MAC is a foreign host (error, do not keep the VIP; the agent retries
//! every second and takes it once the address is free).
//!
//! Why not the neighbour table: members talk over multicast heartbeats, so the kernel usually
//! has no neighbour entry for the other members, and a stale entry could name a MAC that moved.
//! A live answer costs nothing extra (same window) and is always current. The one case it gets
//! "wrong" is someone adding the VIP by hand on another member's host: that is treated as a
//! leftover and taken over, which is also what an agent starting on that host does (it removes
//! leftover VIPs).
//!
//! # Cost
//!
//! A probe takes the whole window: [`PROBE_WINDOW`] (30 ms) plus opening an AF_PACKET socket
//! (well under 1 ms), on the blocking pool. On a failover that time runs *after* the VIP was
//! added and announced, so clients do not wait for it; on a cold start or a retry it runs
//! before the add. RFC 5227's timings (1–2 s) would be far too slow for a failover measured in
//! hundreds of milliseconds; on one Ethernet segment a holder answers within a millisecond,
//! and three probes cover a lost frame.
//!
//! The parser ([`parse_arp`]) takes any byte sequence from the network and never panics.
//!
//! IPv6 VIPs are not probed: they are added with duplicate address detection off by design (so
//! they work at once), and a frozen member's leftover would make DAD fail anyway.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use pnet_datalink::{Channel, MacAddr};

/// Number of probes sent.
pub const PROBES: u32 = 3;
/// Time between probes.
pub const PROBE_SPACING: Duration = Duration::from_millis(10);
/// How long to listen for answers, from the first probe.
pub const PROBE_WINDOW: Duration = Duration::from_millis(30);

/// What a probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Nobody answered for the address.
    Free,
    /// Only other members answered (a frozen or crashed former hot member's kernel): take it.
    MemberLeftover {
        /// The MAC that answered for the VIP.
        mac: [u8; 6],
        /// The member address that the same MAC answered for.
        member: Ipv4Addr,
    },
    /// A host that is no member of the group holds the address: do not take it.
    Foreign {
        /// The MAC that answered for the VIP.
        mac: [u8; 6],
    },
}

/// A probe's verdict and how long it took.
#[derive(Debug, Clone)]
pub struct Probed {
    /// What it found.
    pub verdict: Verdict,
    /// Time spent, socket opening included.
    pub elapsed: Duration,
}

/// What to probe: the VIP, the interface, this member's MAC and address there, and the other
/// members' addresses on that network.
#[derive(Debug, Clone)]
pub struct Target {
    /// The VIP.
    pub vip: Ipv4Addr,
    /// Interface index.
    pub index: u32,
    /// This member's MAC on it.
    pub mac: [u8; 6],
    /// This member's address on it (sender of the requests for member addresses).
    pub own: Ipv4Addr,
    /// The other members' addresses on the VIP's network.
    pub members: Vec<Ipv4Addr>,
}

/// Probes `t.vip` on its interface. Blocking, bounded by [`PROBE_WINDOW`]; run it on the blocking
/// pool.
pub fn probe(t: &Target) -> std::io::Result<Probed> {
    let start = Instant::now();
    let iface = pnet_datalink::interfaces()
        .into_iter()
        .find(|i| i.index == t.index)
        .ok_or_else(|| std::io::Error::other("interface gone"))?;
    let config = pnet_datalink::Config {
        read_timeout: Some(Duration::from_millis(2)),
        promiscuous: false,
        ..Default::default()
    };
    let (mut tx, mut rx) = match pnet_datalink::channel(&iface, config)? {
        Channel::Ethernet(tx, rx) => (tx, rx),
        _ => return Err(std::io::Error::other("not an Ethernet interface")),
    };
    let mut send = |frame: &[u8]| match tx.send_to(frame, None) {
        Some(r) => r,
        None => Err(std::io::Error::other("no room to send")),
    };
    let deadline = start + PROBE_WINDOW;
    let mut vip_macs = BTreeSet::new();
    let mut member_macs = Vec::new();
    let mut sent = 0;
    loop {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        // Each probe goes out with a request for every other member's address.
        if sent < PROBES && now >= start + PROBE_SPACING * sent {
            send(&probe_frame(t.mac, t.vip))?;
            for m in &t.members {
                send(&request_frame(t.mac, t.own, *m))?;
            }
            sent += 1;
        }
        match rx.next() {
            Ok(frame) => {
                let Some(a) = parse_arp(frame) else { continue };
                if a.sender_mac == t.mac {
                    continue; // our own frames, looped back to the packet socket
                }
                if a.sender_ip == t.vip {
                    vip_macs.insert(a.sender_mac);
                } else if t.members.contains(&a.sender_ip) {
                    member_macs.push((a.sender_mac, a.sender_ip));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(Probed {
        verdict: classify(&vip_macs, &member_macs),
        elapsed: start.elapsed(),
    })
}

/// The verdict from the MACs that answered for the VIP and the (MAC, member address) pairs that
/// answered for member addresses: foreign when any VIP answer came from a MAC no member address
/// answered from.
pub fn classify(vip_macs: &BTreeSet<[u8; 6]>, member_macs: &[([u8; 6], Ipv4Addr)]) -> Verdict {
    let mut leftover = None;
    for mac in vip_macs {
        match member_macs.iter().find(|(m, _)| m == mac) {
            Some((_, member)) => {
                leftover.get_or_insert(Verdict::MemberLeftover {
                    mac: *mac,
                    member: *member,
                });
            }
            None => return Verdict::Foreign { mac: *mac },
        }
    }
    leftover.unwrap_or(Verdict::Free)
}

/// `02:00:...` form of a MAC.
pub fn mac_string(mac: [u8; 6]) -> String {
    MacAddr::from(mac).to_string()
}

/// A broadcast ARP probe for `vip`: request, sender IP 0.0.0.0, target hardware address zero.
pub fn probe_frame(mac: [u8; 6], vip: Ipv4Addr) -> Vec<u8> {
    arp_request(mac, Ipv4Addr::UNSPECIFIED, vip)
}

/// A broadcast ordinary ARP request "who has `target`? tell `own`".
pub fn request_frame(mac: [u8; 6], own: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
    arp_request(mac, own, target)
}

fn arp_request(mac: [u8; 6], sender: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
    let mut f = Vec::with_capacity(42);
    f.extend_from_slice(&[0xff; 6]); // destination: broadcast
    f.extend_from_slice(&mac); // source
    f.extend_from_slice(&[0x08, 0x06]); // EtherType ARP
    f.extend_from_slice(&[0x00, 0x01, 0x08, 0x00, 6, 4]); // Ethernet, IPv4, sizes
    f.extend_from_slice(&[0x00, 0x01]); // request
    f.extend_from_slice(&mac);
    f.extend_from_slice(&sender.octets());
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&target.octets());
    f
}

/// The parts of an Ethernet/IPv4 ARP packet the probe looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arp {
    /// 1 request, 2 reply.
    pub op: u16,
    /// Sender hardware address.
    pub sender_mac: [u8; 6],
    /// Sender protocol address.
    pub sender_ip: Ipv4Addr,
    /// Target protocol address.
    pub target_ip: Ipv4Addr,
}

/// Parses an Ethernet frame carrying an Ethernet/IPv4 ARP packet; None for anything else.
pub fn parse_arp(frame: &[u8]) -> Option<Arp> {
    if frame.len() < 42 || frame[12..14] != [0x08, 0x06] {
        return None;
    }
    let p = &frame[14..];
    if p[0..6] != [0x00, 0x01, 0x08, 0x00, 6, 4] {
        return None;
    }
    let ip = |o: usize| Ipv4Addr::new(p[o], p[o + 1], p[o + 2], p[o + 3]);
    Some(Arp {
        op: u16::from_be_bytes([p[6], p[7]]),
        sender_mac: p[8..14].try_into().ok()?,
        sender_ip: ip(14),
        target_ip: ip(24),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWN: [u8; 6] = [2, 0, 0, 0, 0, 0x11];
    const B: [u8; 6] = [2, 0, 0, 0, 0, 0x22];
    const FOREIGN: [u8; 6] = [2, 0, 0, 0, 0, 0x99];

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn a_probe_has_sender_ip_zero_and_round_trips() {
        let f = probe_frame(OWN, ip("10.0.0.100"));
        assert_eq!(f.len(), 42);
        assert_eq!(&f[0..6], &[0xff; 6]);
        assert_eq!(&f[28..32], &[0, 0, 0, 0], "sender IP 0.0.0.0");
        assert_eq!(&f[32..38], &[0; 6]);
        let a = parse_arp(&f).unwrap();
        assert_eq!(
            a,
            Arp {
                op: 1,
                sender_mac: OWN,
                sender_ip: Ipv4Addr::UNSPECIFIED,
                target_ip: ip("10.0.0.100"),
            }
        );
        let r = parse_arp(&request_frame(OWN, ip("10.0.0.1"), ip("10.0.0.2"))).unwrap();
        assert_eq!(r.sender_ip, ip("10.0.0.1"));
        assert_eq!(r.target_ip, ip("10.0.0.2"));
    }

    #[test]
    fn non_arp_frames_are_ignored() {
        let mut f = probe_frame(OWN, ip("10.0.0.100"));
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        assert_eq!(parse_arp(&f), None);
        assert_eq!(parse_arp(&f[..30]), None);
    }

    /// xorshift64: a deterministic stream of bytes, no extra dependency.
    fn bytes(seed: &mut u64, n: usize) -> Vec<u8> {
        (0..n)
            .map(|_| {
                *seed ^= *seed << 13;
                *seed ^= *seed >> 7;
                *seed ^= *seed << 17;
                *seed as u8
            })
            .collect()
    }

    #[test]
    fn no_panic_on_any_byte_sequence() {
        let mut seed = 0x9e37_79b9_7f4a_7c15;
        for len in 0..=80 {
            for _ in 0..200 {
                let mut f = bytes(&mut seed, len);
                let _ = parse_arp(&f);
                // Also with the ARP EtherType and header in place, so the parser goes deeper.
                if len >= 14 {
                    f[12..14].copy_from_slice(&[0x08, 0x06]);
                    let _ = parse_arp(&f);
                }
                if len >= 20 {
                    f[14..20].copy_from_slice(&[0x00, 0x01, 0x08, 0x00, 6, 4]);
                    let parsed = parse_arp(&f);
                    assert_eq!(parsed.is_some(), len >= 42, "len {len}");
                }
            }
        }
        // Every truncation of a real probe.
        let f = probe_frame(OWN, ip("10.0.0.100"));
        for len in 0..f.len() {
            assert_eq!(parse_arp(&f[..len]), None);
        }
        // Other hardware/protocol types are not Ethernet/IPv4 ARP.
        let mut g = f.clone();
        g[15] = 6; // hardware type 6 (IEEE 802)
        assert_eq!(parse_arp(&g), None);
        let mut g = f.clone();
        g[18] = 16; // hardware address length 16
        assert_eq!(parse_arp(&g), None);
        // Trailing bytes (Ethernet padding to 60 bytes) are fine.
        let mut padded = f.clone();
        padded.resize(60, 0);
        assert_eq!(parse_arp(&padded), parse_arp(&f));
    }

    #[test]
    fn a_reply_to_a_probe_is_parsed() {
        // What Linux sends back to a probe: a unicast reply from the VIP, target IP 0.0.0.0.
        let mut f = Vec::new();
        f.extend_from_slice(&OWN);
        f.extend_from_slice(&FOREIGN);
        f.extend_from_slice(&[0x08, 0x06, 0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x02]);
        f.extend_from_slice(&FOREIGN);
        f.extend_from_slice(&[10, 0, 0, 100]);
        f.extend_from_slice(&OWN);
        f.extend_from_slice(&[0, 0, 0, 0]);
        assert_eq!(
            parse_arp(&f),
            Some(Arp {
                op: 2,
                sender_mac: FOREIGN,
                sender_ip: ip("10.0.0.100"),
                target_ip: Ipv4Addr::UNSPECIFIED,
            })
        );
    }

    #[test]
    fn nobody_answering_is_free() {
        assert_eq!(
            classify(&BTreeSet::new(), &[(B, ip("10.0.0.2"))]),
            Verdict::Free
        );
    }

    #[test]
    fn an_answer_from_a_members_mac_is_a_leftover() {
        let vip = BTreeSet::from([B]);
        assert_eq!(
            classify(&vip, &[(B, ip("10.0.0.2"))]),
            Verdict::MemberLeftover {
                mac: B,
                member: ip("10.0.0.2")
            }
        );
    }

    #[test]
    fn an_answer_from_any_other_mac_is_foreign() {
        let vip = BTreeSet::from([FOREIGN]);
        assert_eq!(
            classify(&vip, &[(B, ip("10.0.0.2"))]),
            Verdict::Foreign { mac: FOREIGN }
        );
        // A foreign holder is not excused by a member's leftover answering as well.
        let both = BTreeSet::from([B, FOREIGN]);
        assert_eq!(
            classify(&both, &[(B, ip("10.0.0.2"))]),
            Verdict::Foreign { mac: FOREIGN }
        );
        assert_eq!(
            mac_string(FOREIGN),
            "02:00:00:00:00:99",
            "the error names the MAC"
        );
    }
}
