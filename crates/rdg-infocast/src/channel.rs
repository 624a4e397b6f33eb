//! One carousel channel: a tokio task cycling through the channel's objects, forever.
//!
//! A **cycle** (a *burst*) is one pass over the objects in configuration order; after it the
//! channel pauses `burstDelay` if one is set. An object with a `repeatDelay` is skipped in
//! the cycles that start less than that delay after its previous transmission began; when
//! every object is waiting, the channel sleeps until the first is due.
//!
//! One **object cycle**: refresh the object from its source (a changed file is a new version,
//! see [`crate::object`]), log `(<addr>:<port>): Processing "<name>"` (at most once a second
//! per object), send an announcement, then the chunks, with the announcement repeated every
//! [`ANNOUNCE_EVERY`] chunks. Every datagram waits for its tokens (see [`crate::pacing`]) and
//! then checks the gate: a closed gate (or a new session) abandons the object at once, so the
//! carousel stops within one chunk; when the gate opens again the cycle starts over.

use crate::frame::{ANNOUNCE_EVERY, Announcement, Chunk, HEADER_LEN, ObjectRef, chunk_count};
use crate::object::{Content, ObjectSource};
use crate::pacing::TokenBucket;
use crate::permit::Gate;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use rdg_agent::metrics::{CarouselMetrics, ChannelLabels};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::time::Instant;

/// Pause before looking again when no object could be sent (all unreadable).
const NOTHING_TO_SEND_RETRY: Duration = Duration::from_millis(200);
/// `Processing` is logged at most this often per object.
const PROCESSING_LOG_EVERY: Duration = Duration::from_secs(1);
/// A failing send is logged at most this often.
const SEND_ERROR_LOG_EVERY: Duration = Duration::from_secs(5);

/// Counters of one channel, shared with whoever watches it (the metrics registry, tests,
/// benchmark). Prometheus counters are shared atomics: a clone counts into the same value.
#[derive(Debug, Default)]
pub struct ChannelStats {
    /// Datagrams sent.
    pub datagrams: Counter,
    /// UDP payload bytes sent (header included).
    pub bytes: Counter,
    /// Object cycles completed (every chunk of the object sent).
    pub object_cycles: Counter,
    /// Cycles completed: passes over the channel's objects that sent at least one.
    pub cycles: Counter,
    /// Sends that failed (network down, no route, ...).
    pub send_errors: Counter,
    /// 1 while the gate lets the channel send, 0 while it is gated off.
    pub sending: Gauge,
}

impl ChannelStats {
    /// Counters registered in `metrics` under the channel label of `destination`.
    pub fn registered(metrics: &CarouselMetrics, destination: SocketAddr) -> ChannelStats {
        let label = ChannelLabels {
            channel: destination.to_string(),
        };
        ChannelStats {
            datagrams: metrics.datagrams_sent.get_or_create(&label).clone(),
            bytes: metrics.bytes_sent.get_or_create(&label).clone(),
            object_cycles: Counter::default(),
            cycles: metrics.cycles.get_or_create(&label).clone(),
            send_errors: metrics.send_errors.get_or_create(&label).clone(),
            sending: metrics.sending.get_or_create(&label).clone(),
        }
    }
}

/// How a channel is set up.
#[derive(Debug)]
pub struct ChannelSetup {
    /// Where datagrams go.
    pub destination: SocketAddr,
    /// Bits per second (UDP payload, header included).
    pub bits_per_sec: u64,
    /// Object bytes per chunk.
    pub payload_size: usize,
    /// Pause after each cycle.
    pub burst_delay: Option<Duration>,
    /// The objects, in order.
    pub objects: Vec<ObjectSource>,
}

/// The state of a running channel.
pub struct ChannelTask {
    label: String,
    socket: UdpSocket,
    setup: ChannelSetup,
    gate: Gate,
    bucket: TokenBucket,
    origin: Instant,
    stats: Arc<ChannelStats>,
    next_due: Vec<Option<Instant>>,
    last_processing_log: Vec<Option<Instant>>,
    last_send_error_log: Option<Instant>,
    buf: Vec<u8>,
}

/// Why an object cycle ended early.
enum Abandon {
    /// The gate closed or reopened under a new session.
    GateClosed,
}

/// What became of one object's turn.
enum Turn {
    /// Every chunk went out.
    Sent,
    /// Nothing to send (never readable).
    NothingToSend,
}

impl ChannelTask {
    /// A channel sending `setup` through `socket` (connected to the destination) while
    /// `gate` is open, counting into `stats`.
    pub fn new(
        socket: UdpSocket,
        setup: ChannelSetup,
        gate: Gate,
        stats: Arc<ChannelStats>,
    ) -> Self {
        let origin = Instant::now();
        let n = setup.objects.len();
        ChannelTask {
            label: format!("({})", setup.destination),
            bucket: TokenBucket::new(
                setup.bits_per_sec,
                HEADER_LEN + setup.payload_size,
                Duration::ZERO,
            ),
            socket,
            gate,
            origin,
            stats,
            next_due: vec![None; n],
            last_processing_log: vec![None; n],
            last_send_error_log: None,
            buf: Vec::with_capacity(HEADER_LEN + setup.payload_size),
            setup,
        }
    }

    /// Runs the carousel until the task is dropped or aborted.
    pub async fn run(mut self) {
        loop {
            let mut sent_any = false;
            let mut abandoned = false;
            for i in 0..self.setup.objects.len() {
                if self.next_due[i].is_some_and(|due| Instant::now() < due) {
                    continue;
                }
                let session = self.gate.wait_open().await;
                let started = Instant::now();
                match self.send_object(i, session).await {
                    Ok(Turn::Sent) => {
                        sent_any = true;
                        self.stats.object_cycles.inc();
                        if let Some(d) = self.setup.objects[i].repeat_delay {
                            self.next_due[i] = Some(started + d);
                        }
                    }
                    Ok(Turn::NothingToSend) => {}
                    Err(Abandon::GateClosed) => {
                        abandoned = true;
                        break;
                    }
                }
            }
            if abandoned {
                continue;
            }
            if !sent_any {
                let retry = Instant::now() + NOTHING_TO_SEND_RETRY;
                let wake = self
                    .next_due
                    .iter()
                    .flatten()
                    .min()
                    .copied()
                    .unwrap_or(retry);
                tokio::time::sleep_until(wake.min(retry)).await;
                continue;
            }
            self.stats.cycles.inc();
            if let Some(d) = self.setup.burst_delay {
                tokio::time::sleep(d).await;
            }
        }
    }

    /// One object cycle of object `i` under `session`.
    async fn send_object(&mut self, i: usize, session: u32) -> Result<Turn, Abandon> {
        let Some(content) = self.setup.objects[i].refresh() else {
            return Ok(Turn::NothingToSend);
        };
        self.log_processing(i);
        let ps = self.setup.payload_size;
        let size = content.bytes.len() as u64;
        let count = u32::try_from(chunk_count(size, ps as u32)).unwrap_or(u32::MAX);
        let object = ObjectRef {
            session,
            object_id: i as u32,
            version: content.crc,
            chunk_count: count,
        };
        let obj = &self.setup.objects[i];
        let announcement = Announcement {
            object,
            name: obj.name.clone(),
            kind: obj.kind,
            total_size: size,
            chunk_size: ps as u32,
            object_crc: obj.announce_crc.then_some(content.crc),
        };
        for index in 0..count {
            if index % ANNOUNCE_EVERY == 0 {
                announcement.encode(&mut self.buf);
                self.send(session).await?;
            }
            encode_chunk(&content, object, index, ps, &mut self.buf);
            self.send(session).await?;
        }
        Ok(Turn::Sent)
    }

    /// Sends `self.buf` when its tokens are there, if the gate is still open for `session`.
    async fn send(&mut self, session: u32) -> Result<(), Abandon> {
        let len = self.buf.len();
        while let Some(wait) = self.bucket.take(self.origin.elapsed(), len) {
            tokio::time::sleep(wait).await;
        }
        if self.gate.check() != Some(session) {
            return Err(Abandon::GateClosed);
        }
        match self.socket.send(&self.buf).await {
            Ok(_) => {
                self.stats.datagrams.inc();
                self.stats.bytes.inc_by(len as u64);
            }
            // A unicast destination with no listener answers with ICMP port unreachable,
            // reported on the next send; a carousel does not care who listens.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {}
            Err(e) => {
                self.stats.send_errors.inc();
                let now = Instant::now();
                if self
                    .last_send_error_log
                    .is_none_or(|t| now - t >= SEND_ERROR_LOG_EVERY)
                {
                    self.last_send_error_log = Some(now);
                    tracing::error!("{}: cannot send: {e}", self.label);
                }
            }
        }
        Ok(())
    }

    fn log_processing(&mut self, i: usize) {
        let now = Instant::now();
        let last = &mut self.last_processing_log[i];
        if last.is_none_or(|t| now - t >= PROCESSING_LOG_EVERY) {
            *last = Some(now);
            tracing::info!(
                "{}: Processing \"{}\"",
                self.label,
                self.setup.objects[i].name
            );
        }
    }
}

fn encode_chunk(content: &Content, object: ObjectRef, index: u32, ps: usize, out: &mut Vec<u8>) {
    let start = (index as usize).saturating_mul(ps).min(content.bytes.len());
    let end = start.saturating_add(ps).min(content.bytes.len());
    Chunk {
        object,
        index,
        payload: &content.bytes[start..end],
    }
    .encode(out);
}
