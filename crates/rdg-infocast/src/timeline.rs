//! Who sent a channel's valid datagrams, and when (sans-IO): the figures a failover is judged
//! by.
//!
//! A **sender** is a (source address, session) pair: two transmitters on one host, or one
//! member hot twice, are different senders (the session changes at every gate opening).
//!
//! * **Silence**: the longest gap between two consecutive valid datagrams (any sender).
//! * **Switch**: a valid datagram from a sender other than the current one. It is recorded
//!   with the time since the start (`atMs`) and the gap since the previous sender's last
//!   datagram (`gapMs`); the new sender becomes the current one.
//! * **Interleaved**: a switch *to* a sender the stream had already switched away from. After
//!   a clean failover the old session never comes back (a member that is hot again has a new
//!   session), so this only happens when two transmitters send at once and their datagrams
//!   alternate.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Switches recorded in full; later ones are only counted.
pub const MAX_SWITCHES: usize = 1000;

/// One datagram source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sender {
    /// Source address of the datagram.
    pub address: IpAddr,
    /// Session from the frame.
    pub session: u32,
}

/// A change of sender.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Switch {
    /// The sender before.
    pub from: Sender,
    /// The sender after.
    pub to: Sender,
    /// When, since the receiver started.
    pub at: Duration,
    /// Time since `from`'s last datagram.
    pub gap: Duration,
}

/// The running figures of a stream.
#[derive(Debug)]
pub struct Timeline {
    start: Instant,
    first: Option<Instant>,
    first_chunk: Option<Instant>,
    last: Option<Instant>,
    longest_silence: Duration,
    current: Option<Sender>,
    left: HashSet<Sender>,
    last_from: HashMap<Sender, Instant>,
    addresses: BTreeSet<IpAddr>,
    switches: Vec<Switch>,
    switch_count: u64,
    interleaved: bool,
    datagrams: u64,
    bytes: u64,
}

impl Timeline {
    /// A timeline whose times count from `start`.
    pub fn new(start: Instant) -> Timeline {
        Timeline {
            start,
            first: None,
            first_chunk: None,
            last: None,
            longest_silence: Duration::ZERO,
            current: None,
            left: HashSet::new(),
            last_from: HashMap::new(),
            addresses: BTreeSet::new(),
            switches: Vec::new(),
            switch_count: 0,
            interleaved: false,
            datagrams: 0,
            bytes: 0,
        }
    }

    /// Records a valid datagram of `len` bytes from `from` at `now` (`chunk`: a chunk rather
    /// than an announcement).
    pub fn on_datagram(&mut self, now: Instant, from: Sender, len: usize, chunk: bool) {
        if let Some(last) = self.last {
            self.longest_silence = self
                .longest_silence
                .max(now.saturating_duration_since(last));
        }
        self.first.get_or_insert(now);
        if chunk {
            self.first_chunk.get_or_insert(now);
        }
        self.last = Some(now);
        self.datagrams += 1;
        self.bytes += len as u64;
        self.addresses.insert(from.address);
        match self.current {
            Some(cur) if cur != from => {
                if self.left.contains(&from) {
                    self.interleaved = true;
                }
                let gap = self
                    .last_from
                    .get(&cur)
                    .map_or(Duration::ZERO, |t| now.saturating_duration_since(*t));
                self.switch_count += 1;
                if self.switches.len() < MAX_SWITCHES {
                    self.switches.push(Switch {
                        from: cur,
                        to: from,
                        at: now.saturating_duration_since(self.start),
                        gap,
                    });
                }
                self.left.insert(cur);
                self.current = Some(from);
            }
            Some(_) => {}
            None => self.current = Some(from),
        }
        self.last_from.insert(from, now);
    }

    /// Longest gap between consecutive valid datagrams.
    pub fn longest_silence(&self) -> Duration {
        self.longest_silence
    }

    /// Time from the start to the first valid chunk.
    pub fn first_chunk(&self) -> Option<Duration> {
        self.first_chunk
            .map(|t| t.saturating_duration_since(self.start))
    }

    /// When the first and the last valid datagram arrived.
    pub fn first_and_last(&self) -> Option<(Instant, Instant)> {
        self.first.zip(self.last)
    }

    /// Distinct source addresses, sorted.
    pub fn addresses(&self) -> impl Iterator<Item = IpAddr> + '_ {
        self.addresses.iter().copied()
    }

    /// The recorded switches (the first [`MAX_SWITCHES`]).
    pub fn switches(&self) -> &[Switch] {
        &self.switches
    }

    /// All switches, recorded or not.
    pub fn switch_count(&self) -> u64 {
        self.switch_count
    }

    /// Whether a sender came back after the stream had switched away from it.
    pub fn interleaved(&self) -> bool {
        self.interleaved
    }

    /// Valid datagrams and their bytes.
    pub fn totals(&self) -> (u64, u64) {
        (self.datagrams, self.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(a: u8, session: u32) -> Sender {
        Sender {
            address: IpAddr::from([10, 0, 0, a]),
            session,
        }
    }

    #[test]
    fn a_clean_failover_is_one_switch_and_not_interleaved() {
        let t0 = Instant::now();
        let ms = |m| t0 + Duration::from_millis(m);
        let mut t = Timeline::new(t0);
        t.on_datagram(ms(10), s(11, 1), 100, true);
        t.on_datagram(ms(20), s(11, 1), 100, true);
        t.on_datagram(ms(320), s(12, 2), 100, false);
        t.on_datagram(ms(330), s(12, 2), 100, true);
        assert_eq!(t.longest_silence(), Duration::from_millis(300));
        assert_eq!(t.first_chunk(), Some(Duration::from_millis(10)));
        assert_eq!(t.switches().len(), 1);
        assert_eq!(t.switches()[0].gap, Duration::from_millis(300));
        assert_eq!(t.switches()[0].at, Duration::from_millis(320));
        assert!(!t.interleaved());
        // Same address, new session (hot again later): a switch, still not interleaved.
        t.on_datagram(ms(900), s(11, 3), 100, true);
        assert!(!t.interleaved());
        assert_eq!(t.addresses().count(), 2);
    }

    #[test]
    fn an_old_session_coming_back_is_interleaved() {
        let t0 = Instant::now();
        let mut t = Timeline::new(t0);
        for (i, a) in [11, 12, 11].into_iter().enumerate() {
            t.on_datagram(
                t0 + Duration::from_millis(i as u64),
                s(a, u32::from(a)),
                10,
                true,
            );
        }
        assert!(t.interleaved());
        assert_eq!(t.switch_count(), 2);
    }
}
