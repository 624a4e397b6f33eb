//! The numbers and names one member's state machine needs, resolved from the group config.

use crate::config::GroupConfig;
use std::time::Duration;

/// Position of a member in [`Params::names`] (and in every list parallel to it).
pub type MemberIndex = usize;

/// Resolved parameters of one member's state machine (config with defaults applied).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Params {
    /// Group name; empty = standalone.
    pub group: String,
    /// Member names, in config order; a member is referred to by its index here.
    pub names: Vec<String>,
    /// Priorities, parallel to `names`.
    pub priorities: Vec<u16>,
    /// This member's position in `names`.
    pub me: MemberIndex,
    /// Number of networks (1 or 2; 0 when standalone).
    pub networks: usize,
    /// Heartbeat period.
    pub interval: Duration,
    /// Silence on all networks for this long = member lost.
    pub timeout: Duration,
    /// Whether a higher-priority standby takes the role from a running hot member.
    pub preempt: bool,
    /// How long a better standby must be ready before it preempts.
    pub preempt_delay: Duration,
    /// Whether net-check targets are configured (without them the check always passes).
    pub net_check: bool,
    /// `timeouts.election`.
    pub election: Duration,
    /// `timeouts.waitingHot`.
    pub waiting_hot: Duration,
    /// `timeouts.waitingReadyHot`.
    pub waiting_ready_hot: Duration,
    /// `timeouts.startingToStandby`.
    pub starting_to_standby: Duration,
    /// `timeouts.startingToHot`.
    pub starting_to_hot: Duration,
    /// `timeouts.toStandbyWaitForHot`.
    pub to_standby_wait_for_hot: Duration,
    /// `timeouts.toStandbyWaitAnsConn`.
    pub to_standby_wait_ans_conn: Duration,
}

/// How long after a reported network anomaly ended a new one on the same member and network
/// is held down (see [`Params::anomaly_hold_down`]).
pub const ANOMALY_HOLD_DOWN_WINDOW: Duration = Duration::from_secs(60);

/// Why a member cannot run with a configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamsError {
    /// `--member` names no entry of `members`.
    #[error("member {0:?} is not in the group's members list")]
    UnknownMember(String),
    /// The configuration has validation problems.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl Params {
    /// The silence that makes a *recurring* network anomaly: within
    /// [`ANOMALY_HOLD_DOWN_WINDOW`] of the end of the last one reported for the same member
    /// and network, silence on that network is reported only once it lasts this long (4
    /// timeouts, at least 1 s), not after one timeout. A lossy network then raises one anomaly
    /// (and one notification) a minute, not one every few heartbeats, while a cut network is
    /// still reported within a second or so.
    pub fn anomaly_hold_down(&self) -> Duration {
        (self.timeout * 4).max(Duration::from_secs(1))
    }

    /// Resolves the parameters of member `member` from a configuration. The configuration
    /// must be valid; in standalone mode (empty group name) `member` may be absent.
    pub fn from_config(cfg: &GroupConfig, member: &str) -> Result<Params, ParamsError> {
        if let Err(problems) = cfg.validate() {
            let text: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
            return Err(ParamsError::Invalid(text.join("; ")));
        }
        let mut names: Vec<String> = cfg.members.iter().map(|m| m.name.clone()).collect();
        let mut priorities: Vec<u16> = cfg.members.iter().map(|m| m.priority).collect();
        let me = match names.iter().position(|n| n == member) {
            Some(i) => i,
            None if cfg.is_standalone() => {
                names.push(member.to_string());
                priorities.push(1);
                names.len() - 1
            }
            None => return Err(ParamsError::UnknownMember(member.to_string())),
        };
        let t = &cfg.timeouts;
        Ok(Params {
            group: cfg.name.clone(),
            names,
            priorities,
            me,
            networks: if cfg.is_standalone() {
                0
            } else {
                cfg.networks.len()
            },
            interval: cfg.heartbeat.interval.get(),
            timeout: cfg.heartbeat.timeout.get(),
            preempt: cfg.preempt,
            preempt_delay: cfg.preempt_delay.get(),
            net_check: !cfg.net_check.targets.is_empty(),
            election: t.election.get(),
            waiting_hot: t.waiting_hot.get(),
            waiting_ready_hot: t.waiting_ready_hot.get(),
            starting_to_standby: t.starting_to_standby.get(),
            starting_to_hot: t.starting_to_hot.get(),
            to_standby_wait_for_hot: t.to_standby_wait_for_hot.get(),
            to_standby_wait_ans_conn: t.to_standby_wait_ans_conn.get(),
        })
    }

    /// How long a hot member's lease lasts after each renewal: strictly between the heartbeat
    /// interval (so renewals keep it alive) and the timeout (so a frozen member's lease has run
    /// out before any standby can declare it lost). The midpoint leaves equal margins.
    pub fn lease(&self) -> Duration {
        (self.interval + self.timeout) / 2
    }

    /// This member's name.
    pub fn my_name(&self) -> &str {
        &self.names[self.me]
    }

    /// Index of member `name`.
    pub fn index_of(&self, name: &str) -> Option<MemberIndex> {
        self.names.iter().position(|n| n == name)
    }
}
