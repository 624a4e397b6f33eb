//! Random but reproducible scenarios: a group configuration and a schedule of faults, both
//! drawn from one seed.

use crate::Dur;
use crate::config::{GroupConfig, Heartbeat, Member, NetCheck, Network, Timeouts};
use rand::{Rng, RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

/// A fault or command applied to the simulated group at a point in virtual time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Start (or restart) member `m` as a new process.
    Start(usize),
    /// kill -9: the process is gone, its datagrams stop, its role file stays.
    Crash(usize),
    /// SIGSTOP: nothing is processed; datagrams queue up in the socket.
    Freeze(usize),
    /// SIGCONT: the member runs again with a late clock and its queued datagrams.
    Resume(usize),
    /// Member `m`'s link on network `n` goes down.
    LinkDown(usize, usize),
    /// Member `m`'s link on network `n` comes back.
    LinkUp(usize, usize),
    /// Network `n` splits: members whose bit is set in the mask are cut off from the others
    /// (and from the net-check targets, which stay with the unmasked side of network 0).
    Partition(usize, u32),
    /// Network `n` is whole again.
    Heal(usize),
    /// Member `m` can no longer reach the net-check targets.
    Isolate(usize),
    /// Member `m` reaches the net-check targets again.
    Unisolate(usize),
    /// SIGTERM: graceful stop of member `m`.
    Stop(usize),
    /// An operator asks member `at` for a hand-over to member `to`.
    Switchover {
        /// Member the command is given to.
        at: usize,
        /// Member that should become hot.
        to: usize,
    },
}

/// Knobs of scenario generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScenarioOptions {
    /// Members per group.
    pub members: usize,
    /// Virtual duration of each scenario.
    pub duration: Duration,
}

impl Default for ScenarioOptions {
    fn default() -> Self {
        ScenarioOptions {
            members: 3,
            duration: Duration::from_secs(30),
        }
    }
}

/// One generated scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The seed everything was drawn from.
    pub seed: u64,
    /// The group configuration (valid by construction).
    pub config: GroupConfig,
    /// Packet loss probability per datagram, per network.
    pub loss: Vec<f64>,
    /// Where the net-check targets are: false = on the main side of network 0 (a member cut
    /// off from it fails its net check); true = reachable from every member with a working
    /// network-0 link (say, each host's own gateway), so a partition gives both sides a
    /// member that may become hot, and healing it must resolve the conflict.
    pub targets_everywhere: bool,
    /// Virtual duration.
    pub duration: Duration,
    /// Actions sorted by time.
    pub actions: Vec<(Duration, Action)>,
}

/// Period of net-check rounds in the simulation: the agent's
/// ([`GroupConfig::net_check_period`]).
pub fn net_check_period(cfg: &GroupConfig) -> Duration {
    cfg.net_check_period()
}

impl Scenario {
    /// Draws a scenario from `seed`.
    pub fn generate(seed: u64, opts: ScenarioOptions) -> Scenario {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let members = opts.members.max(2);
        let networks = if rng.random_bool(0.7) { 2 } else { 1 };
        let interval_ms = [50u64, 100, 100, 150, 200][rng.random_range(0..5)];
        let timeout_ms = interval_ms * rng.random_range(3..=5u64);
        let targets = rng.random_range(1..=3usize);
        let nc_timeout_ms = (interval_ms).clamp(50, 150);
        let election_ms = (2 * targets as u64 * nc_timeout_ms + 50).max(2 * timeout_ms);
        let cfg = GroupConfig {
            name: "sim".into(),
            heartbeat: Heartbeat {
                interval: Dur::from_millis(interval_ms),
                timeout: Dur::from_millis(timeout_ms),
                ..Heartbeat::default()
            },
            networks: (0..networks)
                .map(|n| Network {
                    name: format!("net{n}"),
                    multicast: Some(IpAddr::V4(Ipv4Addr::new(224, 0, 0, 35 + n as u8))),
                })
                .collect(),
            members: (0..members)
                .map(|m| Member {
                    name: format!("m{m}"),
                    priority: if m == 0 {
                        100
                    } else {
                        [0u16, 10, 50, 100, 100][rng.random_range(0..5)]
                    },
                    addresses: (0..networks)
                        .map(|n| {
                            let ip = Ipv4Addr::new(10, n as u8, 0, 11 + m as u8);
                            (format!("net{n}"), IpAddr::V4(ip))
                        })
                        .collect::<BTreeMap<_, _>>(),
                })
                .collect(),
            preempt: rng.random_bool(0.3),
            preempt_delay: Dur::from_millis(rng.random_range(0..=1000)),
            timeouts: Timeouts {
                election: Dur::from_millis(election_ms),
                waiting_hot: Dur::from_millis(election_ms + timeout_ms + 2 * interval_ms),
                waiting_ready_hot: Dur::from_millis(4 * interval_ms),
                starting_to_standby: Dur::from_millis(timeout_ms),
                starting_to_hot: Dur::from_millis(timeout_ms),
                to_standby_wait_for_hot: Dur::from_millis(4 * interval_ms),
                to_standby_wait_ans_conn: Dur::from_millis(timeout_ms),
            },
            net_check: NetCheck {
                targets: (0..targets)
                    .map(|t| IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1 + t as u8)))
                    .collect(),
                timeout: Dur::from_millis(nc_timeout_ms),
            },
            ..GroupConfig::default_for_sim()
        };
        let loss = (0..networks)
            .map(|_| {
                if rng.random_bool(0.5) {
                    0.0
                } else {
                    rng.random_range(0.0..0.05)
                }
            })
            .collect();
        let targets_everywhere = rng.random_bool(0.3);
        let actions = schedule(&mut rng, &cfg, opts.duration);
        Scenario {
            seed,
            config: cfg,
            loss,
            targets_everywhere,
            duration: opts.duration,
            actions,
        }
    }
}

fn ms<R: Rng>(rng: &mut R, lo: u64, hi: u64) -> Duration {
    Duration::from_millis(rng.random_range(lo..=hi))
}

/// Staggered starts, then one fault every few seconds, each undone after a while.
fn schedule<R: Rng>(rng: &mut R, cfg: &GroupConfig, duration: Duration) -> Vec<(Duration, Action)> {
    let members = cfg.members.len();
    let networks = cfg.networks.len();
    let timeout = cfg.heartbeat.timeout.get();
    let mut actions = Vec::new();
    // Start-up: sometimes all at once, sometimes one after another.
    let together = rng.random_bool(0.3);
    for m in 0..members {
        let at = if together {
            ms(rng, 0, 20)
        } else {
            ms(rng, 0, 3000)
        };
        actions.push((at, Action::Start(m)));
    }
    let mut t = Duration::from_secs(4);
    while t + Duration::from_secs(4) < duration {
        let m = rng.random_range(0..members);
        let n = rng.random_range(0..networks);
        let hold = ms(rng, 500, 4000);
        match rng.random_range(0..9u32) {
            0 | 1 => {
                actions.push((t, Action::Crash(m)));
                actions.push((t + hold, Action::Start(m)));
            }
            2 => {
                let hold = timeout.mul_f64(rng.random_range(0.5..3.0));
                actions.push((t, Action::Freeze(m)));
                actions.push((t + hold, Action::Resume(m)));
            }
            3 => {
                actions.push((t, Action::LinkDown(m, n)));
                actions.push((t + hold, Action::LinkUp(m, n)));
            }
            4 => {
                // Host death: every link down and the process gone.
                for n in 0..networks {
                    actions.push((t, Action::LinkDown(m, n)));
                }
                actions.push((t, Action::Crash(m)));
                for n in 0..networks {
                    actions.push((t + hold, Action::LinkUp(m, n)));
                }
                actions.push((t + hold, Action::Start(m)));
            }
            5 => {
                let mask = rng.random_range(1..(1u32 << members) - 1);
                let both = networks == 2 && rng.random_bool(0.5);
                for net in 0..networks {
                    if both || net == n {
                        actions.push((t, Action::Partition(net, mask)));
                        actions.push((t + hold, Action::Heal(net)));
                    }
                }
            }
            6 => {
                actions.push((t, Action::Isolate(m)));
                actions.push((t + hold, Action::Unisolate(m)));
            }
            7 => {
                actions.push((t, Action::Stop(m)));
                actions.push((t + hold, Action::Start(m)));
            }
            _ => {
                let at = rng.random_range(0..members);
                actions.push((t, Action::Switchover { at, to: m }));
            }
        }
        t += hold.max(Duration::from_millis(500)) + ms(rng, 1500, 5000);
    }
    actions.sort_by_key(|(at, _)| *at);
    actions
}

impl GroupConfig {
    /// A configuration with every optional part at its default (the simulator fills the rest).
    pub(crate) fn default_for_sim() -> GroupConfig {
        GroupConfig {
            name: String::new(),
            heartbeat: Heartbeat::default(),
            networks: Vec::new(),
            members: Vec::new(),
            preempt: false,
            preempt_delay: Dur::default(),
            timeouts: Timeouts::default(),
            net_check: NetCheck::default(),
            vips: Vec::new(),
            garp: Default::default(),
            role_file: None,
            auth: None,
            status: Default::default(),
            transmitter: None,
            notify: None,
        }
    }
}
