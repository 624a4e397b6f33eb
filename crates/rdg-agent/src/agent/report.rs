//! The status endpoint's view of the agent: the `/status` report and the `/healthz` verdict.

use super::Agent;
use crate::clock::monotonic;
use crate::status::{
    ContentObject, ContentStatus, MemberStatus, NetCheckStatus, NetworkStatus, PeerNetworkStatus,
    StatusReport, VipStatus,
};
use rdg_core::State;

impl Agent {
    /// Why a hot member is not healthy (a VIP it should hold is missing), or None.
    pub(super) fn unhealthy(&self) -> Option<String> {
        self.vips
            .as_ref()
            .filter(|_| self.node.state() == State::HS)
            .and_then(|v| v.first_missing())
            .map(|why| format!("hot, but {why}"))
    }

    /// The `/status` report: this member as its node sees it, every other member as last
    /// heard, the networks, the VIPs and the last time this member became hot.
    pub(super) fn report(&self) -> StatusReport {
        let now = monotonic();
        let node = &self.node;
        let p = node.params();
        let timeout = p.timeout;
        let my_addr = |net: &str| {
            self.cfg
                .member(p.my_name())
                .and_then(|m| m.addresses.get(net).copied())
        };
        let members = p
            .names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                if i == p.me {
                    return MemberStatus {
                        name: name.clone(),
                        is_self: true,
                        state: Some(node.state()),
                        temporal: Some(node.temporal().as_str().to_string()),
                        priority: p.priorities[i],
                        epoch: Some(node.epoch()),
                        net_check_ok: node.net_check(),
                        alive: true,
                        networks: Vec::new(),
                    };
                }
                let peer = node.peer(name);
                let heard = peer.is_some_and(|pr| pr.first_seen.is_some());
                let networks = self
                    .cfg
                    .networks
                    .iter()
                    .enumerate()
                    .take(p.networks)
                    .map(|(n, netw)| PeerNetworkStatus {
                        name: netw.name.clone(),
                        healthy: peer.is_some_and(|pr| pr.alive_on(n, now, timeout)),
                        last_heard_ms_ago: peer
                            .and_then(|pr| pr.heard[n])
                            .map(|t| now.saturating_sub(t).as_millis() as u64),
                        anomaly: peer.is_some_and(|pr| pr.anomaly[n]),
                        address: peer.and_then(|pr| pr.addr[n]),
                    })
                    .collect();
                MemberStatus {
                    name: name.clone(),
                    is_self: false,
                    state: peer.filter(|_| heard).map(|pr| pr.state),
                    temporal: peer
                        .filter(|_| heard)
                        .map(|pr| pr.temporal.as_str().to_string()),
                    priority: p.priorities[i],
                    epoch: peer.filter(|_| heard).map(|pr| pr.epoch),
                    net_check_ok: peer.filter(|_| heard).map(|pr| pr.net_ok()),
                    alive: peer.is_some_and(|pr| pr.alive(p.networks, now, timeout)),
                    networks,
                }
            })
            .collect();
        StatusReport {
            group: p.group.clone(),
            member: p.my_name().to_string(),
            state: node.state(),
            temporal: node.temporal().as_str().to_string(),
            epoch: node.epoch(),
            hot: node.hot().map(str::to_string),
            priority: p.priorities[p.me],
            lease_remaining_ms: node
                .lease_until()
                .filter(|_| node.state() == State::HS)
                .map(|l| l.saturating_sub(now).as_millis() as u64),
            net_check: NetCheckStatus {
                enabled: !self.cfg.net_check.targets.is_empty(),
                ok: node.net_check(),
                targets: self.cfg.net_check.targets.clone(),
            },
            networks: self
                .cfg
                .networks
                .iter()
                .map(|n| NetworkStatus {
                    name: n.name.clone(),
                    address: my_addr(&n.name),
                    multicast: n.multicast,
                })
                .collect(),
            members,
            vips: self
                .vips
                .as_ref()
                .map(|v| {
                    v.vips()
                        .iter()
                        .map(|v| VipStatus {
                            address: v.cidr.clone(),
                            interface: v.interface.clone(),
                            held: v.held,
                            error: v.error.clone(),
                        })
                        .collect()
                })
                .unwrap_or_default(),
            last_became_hot: self.hot_history.last().cloned(),
            content: self.content_status(),
        }
    }

    /// This member's carousel and the last comparison with the hot member's.
    fn content_status(&self) -> Option<ContentStatus> {
        let mine = self.node.content()?;
        let verdict = self
            .node
            .content_verdict()
            .filter(|_| self.node.state() != State::HS);
        Some(ContentStatus {
            digest: format!("{:016x}", mine.digest()),
            objects: mine
                .objects
                .iter()
                .map(|o| ContentObject {
                    key: o.key(),
                    size: o.size,
                    version: o
                        .hash
                        .map(|h| format!("{:02x}{:02x}{:02x}{:02x}", h[0], h[1], h[2], h[3])),
                })
                .collect(),
            compared_with: verdict.map(|(hot, _)| hot.to_string()),
            consistent: verdict.map(|(_, d)| d.is_none()),
            differing: verdict
                .and_then(|(_, d)| d)
                .map(|d| d.changed.iter().chain(&d.only_here).cloned().collect())
                .unwrap_or_default(),
            difference: verdict.and_then(|(hot, d)| d.map(|d| d.describe(hot))),
        })
    }
}
