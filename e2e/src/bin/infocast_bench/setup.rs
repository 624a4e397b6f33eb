//! A transmitter thread and a receiver on loopback, for one measurement.

use rdg_core::config::{CarouselObject, Channel, ObjectKind, Transmitter};
use rdg_infocast::channel::ChannelStats;
use rdg_infocast::{GateMode, Receiver, ReceiverOptions, TransmitOptions, TransmitterThread};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Payload bytes per chunk in every run.
pub const PAYLOAD: u32 = 1400;

/// A running pair.
pub struct Pair {
    /// The transmitter (stopped on drop).
    pub tx: TransmitterThread,
    /// The receiver (stopped on drop).
    pub rx: Receiver,
    dir: PathBuf,
}

/// A counter pair read at one instant.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// When.
    pub at: Instant,
    /// Bytes the transmitter sent.
    pub sent: u64,
    /// Bytes the receiver got (valid datagrams).
    pub received: u64,
    /// Datagrams the transmitter sent.
    pub sent_datagrams: u64,
    /// Valid datagrams the receiver got.
    pub received_datagrams: u64,
}

impl Pair {
    /// Starts a receiver on 127.0.0.1 and a transmitter sending it a 1.4 MB object at
    /// `bit_rate`.
    pub fn start(tag: &str, bit_rate: &str) -> Result<Pair, String> {
        let dir =
            std::env::temp_dir().join(format!("rdg-infocast-bench-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let object = dir.join("object");
        let bytes: Vec<u8> = (0..1_400_000u32)
            .map(|i| (i * 7 + i / 1400) as u8)
            .collect();
        std::fs::write(&object, bytes).map_err(|e| e.to_string())?;
        let rx = Receiver::start(ReceiverOptions {
            channel: "127.0.0.1:0".parse().expect("an address"),
            interface: None,
        })
        .map_err(|e| format!("receiver: {e}"))?;
        let to = rx.local_addr();
        let cfg = Transmitter {
            channels: vec![Channel {
                address: to.ip(),
                port: to.port(),
                ttl: 1,
                bit_rate: bit_rate.into(),
                payload_size: PAYLOAD,
                objects: vec![CarouselObject {
                    name: "object".into(),
                    kind: ObjectKind::Generic,
                    source: Some(object.to_string_lossy().into_owned()),
                    bootcast: None,
                    crc: true,
                    repeat_delay: None,
                }],
                burst_delay: None,
            }],
        };
        let tx = TransmitterThread::spawn(
            cfg,
            TransmitOptions {
                gate: GateMode::Always,
                interface: None,
                metrics: None,
            },
        )
        .map_err(|e| e.to_string())?;
        Ok(Pair { tx, rx, dir })
    }

    fn stats(&self) -> &Arc<ChannelStats> {
        &self.tx.stats()[0].1
    }

    /// Both counters now.
    pub fn sample(&self) -> Sample {
        let r = self.rx.report();
        let s = self.stats();
        Sample {
            at: Instant::now(),
            sent: s.bytes.get(),
            sent_datagrams: s.datagrams.get(),
            received: r.bytes,
            received_datagrams: r.datagrams,
        }
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Mbit/s of `bytes` over `d`.
pub fn mbit(bytes: u64, d: Duration) -> f64 {
    round(bytes as f64 * 8.0 / d.as_secs_f64() / 1e6, 3)
}

/// `x` rounded to `digits` decimals.
pub fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}
