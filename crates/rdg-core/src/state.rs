//! Member states and temporal states of a redundant group, with the numeric values of the
//! D2000 redundancy model (HS=0 … TS=5) so logs, the wire format and status JSON agree.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The stable state of a member: which role it plays in the group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum State {
    /// Hot server: the one member that does the work (transmits the carousel, holds the VIP).
    HS = 0,
    /// Standby server: healthy and ready to take over.
    SBS = 1,
    /// Crashed server: failed its net check (isolated); never takes over until it passes again.
    CS = 2,
    /// Starting server: listening for the group before choosing a role.
    SS = 3,
    /// Wrong configuration: the member cannot take part until its configuration is fixed.
    FS = 4,
    /// Test server (reserved by the D2000 model; never entered automatically).
    TS = 5,
}

impl State {
    /// All states in numeric order.
    pub const ALL: [State; 6] = [
        State::HS,
        State::SBS,
        State::CS,
        State::SS,
        State::FS,
        State::TS,
    ];

    /// The numeric value used on the wire and in metrics.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// Inverse of [`State::code`]; `None` for values outside 0..=5.
    pub fn from_code(code: u8) -> Option<State> {
        State::ALL.get(usize::from(code)).copied()
    }

    /// The short name (`"HS"`, `"SBS"`, ...) used in logs and status JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            State::HS => "HS",
            State::SBS => "SBS",
            State::CS => "CS",
            State::SS => "SS",
            State::FS => "FS",
            State::TS => "TS",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A transition in progress; each one is bounded by its own timeout from `timeouts`
/// (the D2000 `RD_TIMEOUT_*` family), so no member can stay "in between" forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum TemporalState {
    /// Stable: no transition in progress.
    None = 0,
    /// Just started: listening for the group for `timeouts.election`.
    Election = 1,
    /// Standby waiting for a new hot member to appear (after a loss, or when another member
    /// won the election); bounded by `timeouts.waitingHot`, then it re-evaluates.
    WaitingHot = 2,
    /// Named as the target of a planned hand-over, waiting for the hot member to release;
    /// bounded by `timeouts.waitingReadyHot`.
    WaitingReadyHot = 3,
    /// Found a hot member while starting; confirming it on every network before declaring
    /// itself standby; bounded by `timeouts.startingToStandby`.
    StartingKernelToSbs = 4,
    /// Just became hot; the runtime brings up the hot side (VIP, transmitter) within
    /// `timeouts.startingToHot`.
    StartingKernelToHot = 5,
    /// Gave the role away by a planned hand-over; waiting for the new hot member to show up,
    /// bounded by `timeouts.toStandbyWaitForHot`.
    HotOrSbsToSbsWaitForHot = 6,
    /// Stepped down (lost a two-hot conflict or its lease ran out); waiting to hear the hot
    /// member again, bounded by `timeouts.toStandbyWaitAnsConn`.
    HotOrSbsToSbsWaitAnsConn = 7,
}

impl TemporalState {
    /// All temporal states in numeric order.
    pub const ALL: [TemporalState; 8] = [
        TemporalState::None,
        TemporalState::Election,
        TemporalState::WaitingHot,
        TemporalState::WaitingReadyHot,
        TemporalState::StartingKernelToSbs,
        TemporalState::StartingKernelToHot,
        TemporalState::HotOrSbsToSbsWaitForHot,
        TemporalState::HotOrSbsToSbsWaitAnsConn,
    ];

    /// The numeric value used on the wire.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// Inverse of [`TemporalState::code`].
    pub fn from_code(code: u8) -> Option<TemporalState> {
        TemporalState::ALL.get(usize::from(code)).copied()
    }

    /// The D2000 name (`iElection`, `iWaitingHot`, ...) used in logs and status.
    pub fn as_str(self) -> &'static str {
        match self {
            TemporalState::None => "iNone",
            TemporalState::Election => "iElection",
            TemporalState::WaitingHot => "iWaitingHot",
            TemporalState::WaitingReadyHot => "iWaitingReadyHot",
            TemporalState::StartingKernelToSbs => "iStartingKernelToSBS",
            TemporalState::StartingKernelToHot => "iStartingKernelToHot",
            TemporalState::HotOrSbsToSbsWaitForHot => "iHotOrSBSToSBS_WaitForHot",
            TemporalState::HotOrSbsToSbsWaitAnsConn => "iHotOrSBSToSBS_WaitAnsConn",
        }
    }
}

impl fmt::Display for TemporalState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_match_d2000_values() {
        assert_eq!(State::HS.code(), 0);
        assert_eq!(State::SBS.code(), 1);
        assert_eq!(State::CS.code(), 2);
        assert_eq!(State::SS.code(), 3);
        assert_eq!(State::FS.code(), 4);
        assert_eq!(State::TS.code(), 5);
        for s in State::ALL {
            assert_eq!(State::from_code(s.code()), Some(s));
        }
        assert_eq!(State::from_code(6), None);
        for t in TemporalState::ALL {
            assert_eq!(TemporalState::from_code(t.code()), Some(t));
        }
        assert_eq!(TemporalState::from_code(8), None);
    }
}
