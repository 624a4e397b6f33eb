//! Replay protection for decoded datagrams.
//!
//! [`super::decode`] is stateless, so a captured, correctly signed datagram would decode again
//! and again. A [`ReplayGuard`] remembers, per sender and network, the sender's incarnation (a
//! random number drawn at every process start) and the highest sequence number it accepted, and
//! rejects anything that is not newer.
//!
//! **Why per network.** A member sends the *same* sequence number on every network (one logical
//! heartbeat, one copy per network). Each copy must be accepted once, on its own network, so
//! that losing one network shows up as "heard on B only" instead of the second copy being
//! rejected as a replay of the first. A single window per sender would drop every second copy
//! and make the two networks look like one.
//!
//! **Restarts.** A restarted sender has a new random incarnation and starts its sequence over.
//! A higher incarnation is accepted at once; a lower one only after the old incarnation has been
//! silent for `stale_after` (so an attacker replaying an old incarnation while the real member
//! is alive is rejected, and a real restart with an unlucky smaller incarnation is accepted
//! after a short wait). Choose `stale_after` around the heartbeat timeout.
//!
//! **Memory.** At most [`ReplayGuard::DEFAULT_MAX_ENTRIES`] (sender, network) pairs are kept.
//! When full, remembering a new pair evicts the pair whose last accepted datagram is the oldest
//! (ties broken by name, then network, so the simulator stays deterministic). Live members are
//! refreshed every heartbeat interval and so are never the oldest; the ones evicted are
//! departed members or one-shot status tools. An evicted sender's next datagram is accepted as
//! from an unknown sender, which is why a key (MAC) is what keeps strangers out, not this guard.
//!
//! The guard reads no clock: the caller passes a monotonic `now`.

use std::collections::BTreeMap;
use std::time::Duration;

use super::message::Message;

/// Why [`ReplayGuard::check`] rejected a datagram.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    /// Same incarnation, sequence not above the last accepted one: a duplicate or replay.
    #[error("replayed datagram: sequence {got} after {last}")]
    Replayed {
        /// Highest sequence accepted so far from this sender on this network.
        last: u64,
        /// Sequence of the rejected datagram.
        got: u64,
    },
    /// A lower incarnation than the live one, which is still heard: an old process's datagrams.
    #[error("stale incarnation {got:#x} while {current:#x} is alive")]
    StaleIncarnation {
        /// The incarnation currently accepted from this sender on this network.
        current: u64,
        /// Incarnation of the rejected datagram.
        got: u64,
    },
}

impl ReplayError {
    /// Short snake_case label for metrics and logs, alongside [`super::DecodeError::reason`].
    pub fn reason(&self) -> &'static str {
        match self {
            ReplayError::Replayed { .. } => "replayed",
            ReplayError::StaleIncarnation { .. } => "stale_incarnation",
        }
    }
}

/// What is remembered of one (sender, network) pair.
#[derive(Debug, Clone, Copy, Hash)]
struct Entry {
    incarnation: u64,
    last_sequence: u64,
    last_accepted: Duration,
}

/// Per (member name, network index) replay window: accepts each datagram at most once.
/// Feed it only datagrams that [`super::decode`] accepted (and so authenticated, with a key).
#[derive(Debug, Clone, Hash)]
pub struct ReplayGuard {
    stale_after: Duration,
    max_entries: usize,
    // BTreeMap, not HashMap: eviction order must not depend on a random hasher (simulator).
    entries: BTreeMap<(String, u8), Entry>,
}

impl ReplayGuard {
    /// How many (sender, network) pairs [`ReplayGuard::new`] remembers at most.
    pub const DEFAULT_MAX_ENTRIES: usize = 1024;

    /// A guard that accepts a lower incarnation after the current one is silent for
    /// `stale_after`, remembering at most [`ReplayGuard::DEFAULT_MAX_ENTRIES`] pairs.
    pub fn new(stale_after: Duration) -> Self {
        Self::with_max_entries(stale_after, Self::DEFAULT_MAX_ENTRIES)
    }

    /// Like [`ReplayGuard::new`] with another memory bound (at least 1).
    pub fn with_max_entries(stale_after: Duration, max_entries: usize) -> Self {
        ReplayGuard {
            stale_after,
            max_entries: max_entries.max(1),
            entries: BTreeMap::new(),
        }
    }

    /// Number of (sender, network) pairs currently remembered.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing is remembered yet.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Accepts `msg` (and remembers it) if it is new for its sender and network at monotonic
    /// time `now`; otherwise says why it is a replay. Rejections change nothing.
    pub fn check(&mut self, msg: &Message, now: Duration) -> Result<(), ReplayError> {
        let fresh = Entry {
            incarnation: msg.incarnation,
            last_sequence: msg.sequence,
            last_accepted: now,
        };
        let key = (msg.member.clone(), msg.network);
        let Some(entry) = self.entries.get_mut(&key) else {
            if self.entries.len() >= self.max_entries {
                self.evict_oldest();
            }
            self.entries.insert(key, fresh);
            return Ok(());
        };

        if msg.incarnation == entry.incarnation {
            if msg.sequence <= entry.last_sequence {
                return Err(ReplayError::Replayed {
                    last: entry.last_sequence,
                    got: msg.sequence,
                });
            }
        } else {
            let silent_for = now.saturating_sub(entry.last_accepted);
            if msg.incarnation < entry.incarnation && silent_for < self.stale_after {
                return Err(ReplayError::StaleIncarnation {
                    current: entry.incarnation,
                    got: msg.incarnation,
                });
            }
        }
        *entry = fresh;
        Ok(())
    }

    /// Forgets the pair with the oldest last-accepted time (ties: smallest key).
    fn evict_oldest(&mut self) {
        let oldest = self
            .entries
            .iter()
            .min_by_key(|(_, e)| e.last_accepted)
            .map(|(k, _)| k.clone());
        if let Some(k) = oldest {
            self.entries.remove(&k);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Flags, MessageType};
    use crate::{State, TemporalState};

    const STALE: Duration = Duration::from_millis(500);

    fn msg(member: &str, network: u8, incarnation: u64, sequence: u64) -> Message {
        Message {
            kind: MessageType::Heartbeat,
            group: "g".into(),
            member: member.into(),
            state: State::SBS,
            temporal: TemporalState::None,
            priority: 1,
            epoch: 1,
            incarnation,
            sequence,
            network,
            flags: Flags::default(),
            hot: String::new(),
            hot_heard_ago: None,
            content: None,
        }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn in_order_accepted_duplicates_and_older_rejected() {
        let mut g = ReplayGuard::new(STALE);
        assert!(g.is_empty());
        for seq in 1..=5 {
            assert_eq!(g.check(&msg("a", 0, 10, seq), ms(seq * 100)), Ok(()));
        }
        assert_eq!(
            g.check(&msg("a", 0, 10, 5), ms(600)),
            Err(ReplayError::Replayed { last: 5, got: 5 })
        );
        assert_eq!(
            g.check(&msg("a", 0, 10, 2), ms(600)),
            Err(ReplayError::Replayed { last: 5, got: 2 })
        );
        // Gaps (lost datagrams) are fine.
        assert_eq!(g.check(&msg("a", 0, 10, 9), ms(700)), Ok(()));
        // Same incarnation stays a replay even after a long silence.
        assert_eq!(
            g.check(&msg("a", 0, 10, 9), ms(60_000))
                .map_err(|e| e.reason()),
            Err("replayed")
        );
        assert_eq!(g.len(), 1);
    }

    #[test]
    fn networks_and_members_are_independent() {
        let mut g = ReplayGuard::new(STALE);
        // The same heartbeat arrives on both networks: each copy is accepted once.
        assert_eq!(g.check(&msg("a", 0, 10, 1), ms(0)), Ok(()));
        assert_eq!(g.check(&msg("a", 1, 10, 1), ms(1)), Ok(()));
        assert!(g.check(&msg("a", 0, 10, 1), ms(2)).is_err());
        assert!(g.check(&msg("a", 1, 10, 1), ms(2)).is_err());
        // Network 1 lags behind network 0 without affecting it.
        assert_eq!(g.check(&msg("a", 0, 10, 5), ms(3)), Ok(()));
        assert_eq!(g.check(&msg("a", 1, 10, 2), ms(4)), Ok(()));
        // Another member with the same numbers.
        assert_eq!(g.check(&msg("b", 0, 10, 1), ms(5)), Ok(()));
        assert_eq!(g.len(), 3);
    }

    #[test]
    fn incarnations() {
        let mut g = ReplayGuard::new(STALE);
        assert_eq!(g.check(&msg("a", 0, 10, 100), ms(0)), Ok(()));
        // Restart with a higher incarnation: accepted at once, sequence starts over.
        assert_eq!(g.check(&msg("a", 0, 20, 1), ms(100)), Ok(()));
        // The old incarnation replayed while the new one is alive: rejected.
        assert_eq!(
            g.check(&msg("a", 0, 10, 101), ms(200)),
            Err(ReplayError::StaleIncarnation {
                current: 20,
                got: 10
            })
        );
        assert_eq!(
            g.check(&msg("a", 0, 10, 101), ms(599))
                .map_err(|e| e.reason()),
            Err("stale_incarnation")
        );
        // Silent for stale_after: a restart with a lower incarnation is accepted.
        assert_eq!(g.check(&msg("a", 0, 5, 1), ms(600)), Ok(()));
        assert_eq!(g.check(&msg("a", 0, 5, 2), ms(700)), Ok(()));
        // And now the incarnation 20 counts as higher again.
        assert_eq!(g.check(&msg("a", 0, 20, 2), ms(800)), Ok(()));
    }

    #[test]
    fn rejections_do_not_refresh_the_entry() {
        let mut g = ReplayGuard::new(STALE);
        assert_eq!(g.check(&msg("a", 0, 20, 1), ms(0)), Ok(()));
        // Replays keep arriving, but the last *accepted* time stays 0.
        for t in (100..500).step_by(100) {
            assert!(g.check(&msg("a", 0, 20, 1), ms(t)).is_err());
        }
        assert_eq!(g.check(&msg("a", 0, 3, 1), ms(500)), Ok(()));
    }

    #[test]
    fn time_going_backwards_does_not_panic() {
        let mut g = ReplayGuard::new(STALE);
        assert_eq!(g.check(&msg("a", 0, 20, 1), ms(1000)), Ok(()));
        assert!(g.check(&msg("a", 0, 3, 1), ms(0)).is_err());
    }

    #[test]
    fn memory_is_bounded_and_the_oldest_is_evicted() {
        let mut g = ReplayGuard::with_max_entries(STALE, 3);
        assert_eq!(g.check(&msg("a", 0, 1, 1), ms(10)), Ok(()));
        assert_eq!(g.check(&msg("b", 0, 1, 1), ms(0)), Ok(()));
        assert_eq!(g.check(&msg("c", 0, 1, 1), ms(20)), Ok(()));
        assert_eq!(g.check(&msg("d", 0, 1, 1), ms(30)), Ok(()));
        assert_eq!(g.len(), 3);
        // "b" was the oldest and was forgotten: its old datagram is accepted again.
        assert_eq!(g.check(&msg("b", 0, 1, 1), ms(40)), Ok(()));
        // That evicted "a" (10); "c" and "d" are still remembered.
        assert!(g.check(&msg("c", 0, 1, 1), ms(50)).is_err());
        assert!(g.check(&msg("d", 0, 1, 1), ms(50)).is_err());
        assert_eq!(g.len(), 3);

        let mut g = ReplayGuard::new(STALE);
        for i in 0..(ReplayGuard::DEFAULT_MAX_ENTRIES as u64 + 100) {
            let name = format!("tool-{i}");
            assert_eq!(g.check(&msg(&name, 0, 1, 1), ms(i)), Ok(()));
        }
        assert_eq!(g.len(), ReplayGuard::DEFAULT_MAX_ENTRIES);
        // The most recent ones are remembered.
        assert!(g.check(&msg("tool-1123", 0, 1, 1), ms(2000)).is_err());
        assert_eq!(ReplayGuard::with_max_entries(STALE, 0).max_entries, 1);
    }
}
