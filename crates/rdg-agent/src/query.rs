//! `rdg status`: asks the group over the network who is hot, without Kubernetes and without
//! the members' status endpoints. One status-query datagram goes to every network (the
//! multicast group, or each member's address in unicast mode); every member answers with its
//! state, priority, epoch and the hot member it knows. Replies are gathered until every member
//! answered or the wait ends.

use crate::auth::{KeyError, load_keys};
use crate::transport::interface_of;
use rdg_core::config::GroupConfig;
use rdg_core::content::{Advert, differing_objects, name_hash};
use rdg_core::wire::{Flags, Message, MessageType};
use rdg_core::{State, TemporalState};
use serde::{Deserialize, Serialize};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

/// Name the query carries as its sender (not a member, so members only answer it).
pub const QUERY_SENDER: &str = "rdg-status";

/// The group as its members describe it (the `rdg status --json` contract).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupStatus {
    /// Group name.
    pub group: String,
    /// The member that answered as HS (the highest epoch if several did), or None.
    pub hot: Option<String>,
    /// The highest epoch any member reported.
    pub epoch: u64,
    /// Every member that answered, in configuration order.
    pub members: Vec<MemberReply>,
    /// Configured members that did not answer.
    pub missing: Vec<String>,
    /// More than one member answered as HS.
    pub split_brain: bool,
    /// Every member that told its carousel sends the same one as the hot member (None: no
    /// carousel was told, or no hot member answered).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_consistent: Option<bool>,
}

/// One member's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberReply {
    /// Member name.
    pub name: String,
    /// Its state.
    pub state: State,
    /// Its temporal state (D2000 name).
    pub temporal: String,
    /// Its priority.
    pub priority: u16,
    /// Its epoch.
    pub epoch: u64,
    /// The hot member it knows.
    pub hot: Option<String>,
    /// Whether its net check passes.
    pub net_check_ok: bool,
    /// Where the answer came from.
    pub address: IpAddr,
    /// Digest of its carousel (16 hex digits; None: it has none or did not tell).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// Objects on which its carousel differs from the hot member's (`address:port/name`, or
    /// a name hash for objects this host's configuration does not have).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub content_differs: Vec<String>,
}

impl MemberReply {
    /// The answer a status reply `m` from `address` carries.
    pub fn from_message(m: Message, address: IpAddr) -> MemberReply {
        MemberReply {
            name: m.member,
            state: m.state,
            temporal: m.temporal.as_str().to_string(),
            priority: m.priority,
            epoch: m.epoch,
            hot: (!m.hot.is_empty()).then_some(m.hot),
            net_check_ok: m.flags.contains(Flags::NET_CHECK_OK),
            address,
            content: None,
            content_differs: Vec::new(),
        }
    }
}

/// Why the query could not be made.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The configuration is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// Standalone groups have no network to ask.
    #[error(
        "group name is empty (standalone): there is no group to ask; read the member's /status instead"
    )]
    Standalone,
    /// The key could not be read.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// A socket operation failed.
    #[error("network {network}: {source}")]
    Socket {
        /// The network's name.
        network: String,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Sends the query on every network and gathers answers for at most `wait`.
pub fn query(cfg: &GroupConfig, wait: Duration) -> Result<GroupStatus, QueryError> {
    if let Err(problems) = cfg.validate() {
        let text: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        return Err(QueryError::Config(text.join("; ")));
    }
    if cfg.is_standalone() {
        return Err(QueryError::Standalone);
    }
    let keys = load_keys(cfg)?;
    let incarnation = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64);
    let mut sockets = Vec::new();
    for (i, network) in cfg.networks.iter().enumerate() {
        let err = |source| QueryError::Socket {
            network: network.name.clone(),
            source,
        };
        let sock = open_for(cfg, &network.name).map_err(err)?;
        let msg = Message {
            kind: MessageType::StatusQuery,
            group: cfg.name.clone(),
            member: QUERY_SENDER.to_string(),
            state: State::SS,
            temporal: TemporalState::None,
            priority: 0,
            epoch: 0,
            incarnation,
            sequence: 1,
            network: i as u8,
            flags: Flags::default(),
            hot: String::new(),
            hot_heard_ago: None,
            content: None,
        };
        let bytes = keys.encode(&msg).expect("a status query always encodes");
        let destinations: Vec<SocketAddr> = match network.multicast {
            Some(group) => vec![SocketAddr::new(group, cfg.heartbeat.port)],
            None => cfg
                .members
                .iter()
                .filter_map(|m| m.addresses.get(&network.name))
                .map(|ip| SocketAddr::new(*ip, cfg.heartbeat.port))
                .collect(),
        };
        for d in destinations {
            // An unreachable network must not hide the answers from the other one.
            if let Err(e) = sock.send_to(&bytes, d) {
                eprintln!(
                    "rdg status: network {}: cannot send to {d}: {e}",
                    network.name
                );
            }
        }
        sockets.push(sock);
    }

    let mut replies: BTreeMap<String, MemberReply> = BTreeMap::new();
    let mut adverts: BTreeMap<String, Advert> = BTreeMap::new();
    // A group with a carousel answers with it too (members of older versions do not, and
    // are waited for until `wait` ends).
    let want_content = cfg.transmitter.is_some();
    let deadline = Instant::now() + wait;
    let mut buf = [0u8; 2048];
    while Instant::now() < deadline
        && (replies.len() < cfg.members.len()
            || (want_content && adverts.len() < cfg.members.len()))
    {
        let mut got = false;
        for sock in &sockets {
            while let Ok((n, from)) = sock.recv_from(&mut buf) {
                got = true;
                let Ok(m) = keys.decode(&buf[..n], &cfg.name) else {
                    continue;
                };
                if cfg.member(&m.member).is_none() {
                    continue;
                }
                if m.kind == MessageType::Content {
                    if let Some(a) = m.content {
                        adverts.entry(m.member).or_insert(a);
                    }
                    continue;
                }
                if m.kind != MessageType::StatusReply {
                    continue;
                }
                replies
                    .entry(m.member.clone())
                    .or_insert_with(|| MemberReply::from_message(m, from.ip()));
            }
        }
        if !got {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    let mut status = summarize(cfg, replies);
    compare_content(cfg, &mut status, &adverts);
    Ok(status)
}

/// Fills in each member's carousel digest and the objects on which it differs from the hot
/// member's, named from this host's configuration.
fn compare_content(
    cfg: &GroupConfig,
    status: &mut GroupStatus,
    adverts: &BTreeMap<String, Advert>,
) {
    let names: BTreeMap<u32, String> = cfg
        .transmitter
        .iter()
        .flat_map(|tx| &tx.channels)
        .flat_map(|ch| {
            ch.objects
                .iter()
                .map(move |o| format!("{}:{}/{}", ch.address, ch.port, o.name))
        })
        .map(|key| (name_hash(&key), key))
        .collect();
    let hot = status.hot.as_ref().and_then(|h| adverts.get(h));
    let mut all_same = true;
    for m in &mut status.members {
        let Some(a) = adverts.get(&m.name) else {
            continue;
        };
        m.content = Some(format!("{:016x}", a.digest));
        if let Some(hot) = hot
            && hot.digest != a.digest
        {
            all_same = false;
            m.content_differs = differing_objects(a, hot)
                .into_iter()
                .map(|h| {
                    names
                        .get(&h)
                        .cloned()
                        .unwrap_or_else(|| format!("#{h:08x}"))
                })
                .collect();
            if m.content_differs.is_empty() {
                m.content_differs
                    .push("(channel settings or unlisted objects)".to_string());
            }
        }
    }
    status.content_consistent = hot.map(|_| all_same);
}

/// Orders the answers by configuration and works out the hot member.
fn summarize(cfg: &GroupConfig, mut replies: BTreeMap<String, MemberReply>) -> GroupStatus {
    let members: Vec<MemberReply> = cfg
        .members
        .iter()
        .filter_map(|m| replies.remove(&m.name))
        .collect();
    let missing = cfg
        .members
        .iter()
        .filter(|m| !members.iter().any(|r| r.name == m.name))
        .map(|m| m.name.clone())
        .collect();
    let hots: Vec<&MemberReply> = members.iter().filter(|r| r.state == State::HS).collect();
    let hot = hots.iter().max_by_key(|r| r.epoch).map(|r| r.name.clone());
    GroupStatus {
        group: cfg.name.clone(),
        hot,
        epoch: members.iter().map(|r| r.epoch).max().unwrap_or(0),
        split_brain: hots.len() > 1,
        members,
        missing,
        content_consistent: None,
    }
}

/// A non-blocking socket for asking on network `network`: bound to this host's member address
/// on it when this host is a member (so the query leaves on the right interface), else to any.
fn open_for(cfg: &GroupConfig, network: &str) -> std::io::Result<std::net::UdpSocket> {
    let local = cfg
        .members
        .iter()
        .filter_map(|m| m.addresses.get(network).copied())
        .find(|ip| interface_of(*ip).is_some());
    let family_v6 = cfg
        .members
        .iter()
        .filter_map(|m| m.addresses.get(network))
        .any(IpAddr::is_ipv6);
    let bind = local.unwrap_or(if family_v6 {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    });
    let s = Socket::new(
        Domain::for_address(SocketAddr::new(bind, 0)),
        Type::DGRAM,
        Some(Protocol::UDP),
    )?;
    s.bind(&SockAddr::from(SocketAddr::new(bind, 0)))?;
    match bind {
        IpAddr::V4(v4) => {
            if !v4.is_unspecified() {
                s.set_multicast_if_v4(&v4)?;
            }
            s.set_multicast_ttl_v4(u32::from(cfg.heartbeat.ttl))?;
        }
        IpAddr::V6(v6) => {
            if let Some(idx) = local.and_then(crate::transport::interface_index) {
                s.set_multicast_if_v6(idx)?;
            } else if !v6.is_unspecified() {
                return Err(std::io::Error::other(format!("{v6} has no interface")));
            }
            s.set_multicast_hops_v6(u32::from(cfg.heartbeat.ttl))?;
        }
    }
    s.set_nonblocking(true)?;
    Ok(s.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(name: &str, state: State, epoch: u64) -> MemberReply {
        MemberReply {
            name: name.into(),
            state,
            temporal: "iNone".into(),
            priority: 1,
            epoch,
            hot: None,
            net_check_ok: true,
            address: "10.0.0.1".parse().unwrap(),
            content: None,
            content_differs: Vec::new(),
        }
    }

    #[test]
    fn summary_orders_by_config_and_finds_the_hot_member() {
        let cfg = GroupConfig::from_yaml(
            "name: g\nnetworks: [{name: p, multicast: 224.0.0.35}]\nmembers:\n  - {name: a, priority: 1, addresses: {p: 10.0.0.11}}\n  - {name: b, priority: 2, addresses: {p: 10.0.0.12}}\n  - {name: c, priority: 3, addresses: {p: 10.0.0.13}}\n",
        )
        .unwrap();
        let mut r = BTreeMap::new();
        r.insert("c".to_string(), reply("c", State::SBS, 4));
        r.insert("a".to_string(), reply("a", State::HS, 4));
        let s = summarize(&cfg, r);
        assert_eq!(s.hot.as_deref(), Some("a"));
        assert_eq!(s.epoch, 4);
        assert_eq!(
            s.members
                .iter()
                .map(|m| m.name.as_str())
                .collect::<Vec<_>>(),
            ["a", "c"]
        );
        assert_eq!(s.missing, ["b"]);
        assert!(!s.split_brain);
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["members"][0]["state"], "HS");
        assert_eq!(v["members"][0]["priority"], 1);

        let mut r = BTreeMap::new();
        r.insert("a".to_string(), reply("a", State::HS, 4));
        r.insert("b".to_string(), reply("b", State::HS, 5));
        let s = summarize(&cfg, r);
        assert_eq!(s.hot.as_deref(), Some("b"));
        assert!(s.split_brain);
    }
}
