//! The net check (D2000's isolation check): ICMP echoes to every target; a round passes when
//! any target answers within the configured `netCheck.timeout`. Rounds run back to back in the
//! background (one per `netCheck.timeout`, at least one per heartbeat interval), so a takeover
//! never waits for a ping: the state machine always has a fresh verdict, and it goes to CS only
//! after two failed rounds in a row ("checks the list twice").
//!
//! A round is staggered: one target (a different one each round) gets an echo at once, and
//! while nothing has answered, every target gets a further echo every `timeout / ECHO_SLOTS`,
//! each waiting until the round's end. On a healthy network the first reply ends the round, so
//! it costs one echo; a lost packet or a dead target costs only later echoes, not the round.
//! Found by the loss benchmark: with two echoes per round, 20 % loss and 20 rounds/s, two
//! failed rounds in a row put the hot member in CS about twice a minute; with four slots and two
//! targets a round sends up to seven echoes and fails only when all of them go unanswered.

use crate::metrics::{Metrics, ResultLabels};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use rdg_core::config::GroupConfig;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use surge_ping::{Client, Config, ICMP, PingIdentifier, PingSequence};
use tokio::sync::{mpsc, watch};

/// Echo slots per round: while no target has answered, every target gets a new echo each
/// `timeout / ECHO_SLOTS`. One echo per round made a single target with 5 % loss fail two
/// rounds in a row about once a minute at 10 rounds/s (found by the netns suite).
const ECHO_SLOTS: u32 = 4;

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
    /// The ICMP identifier of this process's echoes.
    ident: PingIdentifier,
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
            ident: PingIdentifier(std::process::id() as u16),
            timeout,
            v4,
            v6,
        })
    }

    /// Runs one round: true as soon as any target answers, false when none has by the end of
    /// `timeout` (see the module doc for the staggered echoes).
    pub async fn round(&self, round: u16) -> bool {
        let ident = self.ident;
        let first = usize::from(round) % self.targets.len().max(1);
        let start = tokio::time::Instant::now();
        let end = start + self.timeout;
        let spacing = self.timeout / ECHO_SLOTS;
        let per_round = (self.targets.len() as u16).saturating_mul(ECHO_SLOTS as u16);
        let mut seq = round.wrapping_mul(per_round);
        let mut inflight = FuturesUnordered::new();
        for slot in 1..=ECHO_SLOTS {
            for (i, &target) in self.targets.iter().enumerate() {
                if slot == 1 && i != first {
                    continue;
                }
                let client = if target.is_ipv4() { &self.v4 } else { &self.v6 };
                let Some(client) = client else { continue };
                let wait = end.saturating_duration_since(tokio::time::Instant::now());
                let echo_seq = PingSequence(seq);
                seq = seq.wrapping_add(1);
                inflight.push(async move {
                    let mut pinger = client.pinger(target, ident).await;
                    pinger.timeout(wait);
                    pinger.ping(echo_seq, &[0u8; 16]).await.is_ok()
                });
            }
            // The next slot, or the end of the round after the last one.
            let until = if slot == ECHO_SLOTS {
                end
            } else {
                start + spacing * slot
            };
            loop {
                tokio::select! {
                    answered = inflight.next() => match answered {
                        Some(true) => return true,
                        Some(false) => continue,
                        // Nothing in flight: wait for the next slot (or the end).
                        None => {
                            tokio::time::sleep_until(until).await;
                            break;
                        }
                    },
                    () = tokio::time::sleep_until(until) => break,
                }
            }
        }
        false
    }

    /// Runs rounds until the agent goes away, sending each verdict to `tx`: a round every
    /// `pace.calm`, every `pace.urgent` while `urgent` holds, and one at once when it turns
    /// urgent (the first round starts at once too).
    pub async fn run(
        self,
        pace: Pace,
        mut urgent: watch::Receiver<bool>,
        tx: mpsc::Sender<bool>,
        metrics: Arc<Metrics>,
    ) {
        let mut seq: u16 = 0;
        let mut next = tokio::time::Instant::now();
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(next) => {}
                changed = urgent.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    if !*urgent.borrow_and_update() {
                        continue;
                    }
                }
            }
            let started = tokio::time::Instant::now();
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
            let period = if *urgent.borrow() {
                pace.urgent
            } else {
                pace.calm
            };
            next = (started + period).max(tokio::time::Instant::now());
        }
    }
}

/// How often net-check rounds start (see `GroupConfig::net_check_period` and
/// `rdg_core::election::Node::net_check_urgent` for why).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pace {
    /// While every other member is heard on every network.
    pub calm: Duration,
    /// While another member has gone quiet: a takeover or this member's isolation may follow.
    pub urgent: Duration,
}

impl Pace {
    /// The pace of group `cfg`.
    pub fn of(cfg: &GroupConfig) -> Pace {
        Pace {
            calm: cfg.net_check_period(),
            urgent: cfg.net_check_urgent_period(),
        }
    }
}
