//! The net check (D2000's isolation check): ICMP echo to every target in parallel, each with
//! the configured per-ping timeout; a round passes when any target answers. Rounds run back to
//! back in the background (one per `netCheck.timeout`, at least one per heartbeat interval), so
//! a takeover never waits for a ping: the state machine always has a fresh verdict.

use crate::metrics::{Metrics, ResultLabels};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use surge_ping::{Client, Config, ICMP, PingIdentifier, PingSequence};
use tokio::sync::mpsc;

/// Echo requests sent per round, at least (spread over the targets, at once; any answer passes
/// the round). With one echo, a single target and 5 % random loss, two failed rounds in a row
/// — CS, and a failover if the member was hot — happen about once a minute at 10 rounds/s;
/// with two they need four lost packets in a row, a few times a day at worst. With two or more
/// targets one echo each already gives that. Found by the netns suite.
const MIN_ECHOES_PER_ROUND: usize = 2;

/// Why the net check cannot run.
#[derive(Debug, thiserror::Error)]
#[error(
    "netCheck: cannot open an ICMP socket for {family}: {source}. The net check needs \
     CAP_NET_RAW (run as root, `setcap cap_net_raw+ep rdg`, or add NET_RAW to the container), \
     or unprivileged ICMP (sysctl net.ipv4.ping_group_range)"
)]
pub struct NetCheckError {
    family: &'static str,
    source: std::io::Error,
}

/// ICMP clients for the address families of the targets; opening them is what needs the
/// capability, so it happens at start-up where the error can be reported clearly.
pub struct NetChecker {
    targets: Vec<IpAddr>,
    timeout: Duration,
    v4: Option<Client>,
    v6: Option<Client>,
}

impl NetChecker {
    /// Opens the ICMP sockets needed for `targets`.
    pub fn open(targets: Vec<IpAddr>, timeout: Duration) -> Result<NetChecker, NetCheckError> {
        let open = |kind: ICMP, family: &'static str| {
            Client::new(
                &Config::builder()
                    .kind(kind)
                    .sock_type_hint(socket2::Type::RAW)
                    .build(),
            )
            .map_err(|source| NetCheckError { family, source })
        };
        let v4 = if targets.iter().any(IpAddr::is_ipv4) {
            Some(open(ICMP::V4, "IPv4")?)
        } else {
            None
        };
        let v6 = if targets.iter().any(IpAddr::is_ipv6) {
            Some(open(ICMP::V6, "IPv6")?)
        } else {
            None
        };
        Ok(NetChecker {
            targets,
            timeout,
            v4,
            v6,
        })
    }

    /// Runs one round: true when any target answered within the timeout.
    pub async fn round(&self, round: u16) -> bool {
        let ident = PingIdentifier(std::process::id() as u16);
        let per_target = MIN_ECHOES_PER_ROUND.div_ceil(self.targets.len().max(1)) as u16;
        let echoes = self.targets.iter().flat_map(|&target| {
            (0..per_target).map(move |k| (target, round.wrapping_mul(per_target).wrapping_add(k)))
        });
        let pings = echoes.map(|(target, seq)| {
            let client = if target.is_ipv4() { &self.v4 } else { &self.v6 };
            async move {
                let Some(client) = client else { return false };
                let mut pinger = client.pinger(target, ident).await;
                pinger.timeout(self.timeout);
                pinger.ping(PingSequence(seq), &[0u8; 16]).await.is_ok()
            }
        });
        // All at once: a round takes one timeout however many targets there are.
        let results = futures_util::future::join_all(pings).await;
        results.into_iter().any(|ok| ok)
    }

    /// Runs rounds forever, sending each verdict to `tx`; a round starts every `period`.
    pub async fn run(self, period: Duration, tx: mpsc::Sender<bool>, metrics: Arc<Metrics>) {
        let mut seq: u16 = 0;
        let mut tick = tokio::time::interval(period.max(self.timeout));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            seq = seq.wrapping_add(1);
            let ok = self.round(seq).await;
            let result = if ok { "ok" } else { "failed" };
            metrics
                .net_check_rounds
                .get_or_create(&ResultLabels {
                    result: result.to_string(),
                })
                .inc();
            if tx.send(ok).await.is_err() {
                return;
            }
        }
    }
}
