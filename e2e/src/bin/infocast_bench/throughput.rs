//! Sustained throughput of one transmitter on loopback with 1400-byte payloads, paced at a
//! rate it cannot reach (100 Gbit/s), so the figure is what the sender manages. The
//! transmitter's CPU % is its thread's user + system time over the window (the carousel runs
//! on one thread with a current-thread runtime, as in `rdg agent`).

use crate::Settings;
use crate::setup::{PAYLOAD, Pair, mbit, round};
use rdg_e2e::procfs::own_thread_cpu;
use serde_json::{Value, json};

/// Name of the transmitter's thread (see `rdg_infocast::TransmitterThread`).
const CAROUSEL_THREAD: &str = "rdg-carousel";

/// Measures and returns the `throughput` section.
pub fn run(s: &Settings) -> Result<Value, String> {
    let pair = Pair::start("throughput", "100Gbit")?;
    std::thread::sleep(s.warmup);
    let cpu0 = own_thread_cpu(CAROUSEL_THREAD).ok_or("no transmitter thread")?;
    let a = pair.sample();
    std::thread::sleep(s.window);
    let b = pair.sample();
    let cpu1 = own_thread_cpu(CAROUSEL_THREAD).ok_or("no transmitter thread")?;
    let span = b.at - a.at;
    let sent = b.sent_datagrams - a.sent_datagrams;
    let received = b.received_datagrams - a.received_datagrams;
    let loss = if sent == 0 {
        0.0
    } else {
        100.0 * sent.saturating_sub(received) as f64 / sent as f64
    };
    Ok(json!({
        "payloadBytes": PAYLOAD,
        "seconds": round(span.as_secs_f64(), 3),
        "sentMbitPerSecond": mbit(b.sent - a.sent, span),
        "receivedMbitPerSecond": mbit(b.received - a.received, span),
        "datagramsPerSecond": round(sent as f64 / span.as_secs_f64(), 0),
        "receiverLossPercent": round(loss, 2),
        "transmitterCpuPercent": round(100.0 * (cpu1 - cpu0).as_secs_f64() / span.as_secs_f64(), 1),
    }))
}
