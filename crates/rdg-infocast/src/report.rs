//! What `rdg receive` prints: the receiver JSON of the design's contract, extended
//! compatibly, and a human summary of the same figures.
//!
//! ```json
//! {"channel": "224.2.2.2:22222",
//!  "objects": [{"name": "bootcast_1900", "type": "bootcastinfo", "completed": 12,
//!               "corrupt": 0, "duplicate": 0, "version": 305419896, "id": 0, "size": 512}],
//!  "longestSilenceMs": 4.1, "firstChunkMs": 12.5, "senders": ["10.0.0.11"],
//!  "interleaved": false, "malformed": 0,
//!  "switches": [{"from": "10.0.0.11", "to": "10.0.0.12", "atMs": 2310.2, "gapMs": 310.4,
//!                "fromSession": 1, "toSession": 2}],
//!  "switchCount": 1, "datagrams": 4100, "bytes": 4350000, "elapsedMs": 5000.3,
//!  "bitsPerSecond": 1999876.5}
//! ```
//!
//! Times are milliseconds as numbers (microsecond resolution); `firstChunkMs` is null when no
//! chunk arrived; `bitsPerSecond` is measured between the first and the last valid datagram
//! (UDP payload bytes, header included). See [`crate::timeline`] for `longestSilenceMs`,
//! `switches` and `interleaved`, and [`crate::reassembly`] for the object counters.

use rdg_core::config::ObjectKind;
use serde::{Deserialize, Serialize};
use std::fmt::Write;
use std::time::Duration;

/// The receiver's figures for one channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// The channel listened to, `ADDR:PORT`.
    pub channel: String,
    /// Every announced object, by id.
    pub objects: Vec<ObjectReport>,
    /// Longest gap between consecutive valid datagrams.
    pub longest_silence_ms: f64,
    /// Time from the start to the first valid chunk; null when none came.
    pub first_chunk_ms: Option<f64>,
    /// Distinct source addresses of valid datagrams.
    pub senders: Vec<String>,
    /// True when a sender came back after the stream had switched away from it.
    pub interleaved: bool,
    /// Datagrams that are not valid frames (counted and ignored).
    pub malformed: u64,
    /// Changes of sender (the first 1000).
    pub switches: Vec<SwitchReport>,
    /// Changes of sender, all of them.
    pub switch_count: u64,
    /// Valid datagrams.
    pub datagrams: u64,
    /// Bytes of valid datagrams (UDP payload).
    pub bytes: u64,
    /// How long the receiver listened.
    pub elapsed_ms: f64,
    /// Rate between the first and the last valid datagram; 0 with fewer than two.
    pub bits_per_second: f64,
}

/// The figures of one object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectReport {
    /// Name from its announcement.
    pub name: String,
    /// `bootcastinfo` or `generic`.
    #[serde(rename = "type")]
    pub kind: ObjectKind,
    /// Times received whole and checked.
    pub completed: u64,
    /// Times assembled but failing the size or CRC check.
    pub corrupt: u64,
    /// Chunks received while already held.
    pub duplicate: u64,
    /// Version from the latest announcement (CRC32 of the object's bytes).
    pub version: u32,
    /// Object id (its index in the channel).
    pub id: u32,
    /// Size in bytes from the latest announcement.
    pub size: u64,
}

/// One change of sender.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SwitchReport {
    /// Address of the sender before.
    pub from: String,
    /// Address of the sender after.
    pub to: String,
    /// When, since the receiver started.
    pub at_ms: f64,
    /// Time since the previous sender's last datagram.
    pub gap_ms: f64,
    /// Session of the sender before.
    pub from_session: u32,
    /// Session of the sender after.
    pub to_session: u32,
}

/// `d` in milliseconds, to the microsecond.
pub fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

impl Report {
    /// A few lines for people.
    pub fn human(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "channel {}: {} datagrams ({} bytes) in {:.1} s, {:.3} Mbit/s, from {}",
            self.channel,
            self.datagrams,
            self.bytes,
            self.elapsed_ms / 1000.0,
            self.bits_per_second / 1e6,
            if self.senders.is_empty() {
                "nobody".to_string()
            } else {
                self.senders.join(", ")
            }
        );
        for o in &self.objects {
            let kind = match o.kind {
                ObjectKind::Bootcastinfo => "bootcastinfo",
                ObjectKind::Generic => "generic",
            };
            let _ = writeln!(
                s,
                "  \"{}\" ({kind}, {} bytes, version {:08x}): {} completed, {} corrupt, {} duplicate chunks",
                o.name, o.size, o.version, o.completed, o.corrupt, o.duplicate
            );
        }
        let first = self.first_chunk_ms.map_or_else(
            || "no chunk".to_string(),
            |m| format!("first chunk after {m:.1} ms"),
        );
        let _ = writeln!(
            s,
            "  {first}; longest silence {:.1} ms; {} malformed; {} sender switch(es){}",
            self.longest_silence_ms,
            self.malformed,
            self.switch_count,
            if self.interleaved {
                "; INTERLEAVED: two transmitters alternated"
            } else {
                ""
            }
        );
        for sw in &self.switches {
            let _ = writeln!(
                s,
                "  switch at {:.1} ms: {} ({:08x}) -> {} ({:08x}) after {:.1} ms of silence",
                sw.at_ms, sw.from, sw.from_session, sw.to, sw.to_session, sw.gap_ms
            );
        }
        s
    }
}
