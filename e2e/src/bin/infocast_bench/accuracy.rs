//! Rate accuracy: the channel paced at 2, 20 and 200 Mbit/s (UDP payload bytes, header
//! included), each measured by the receiver over the window after a warm-up.

use crate::Settings;
use crate::setup::{Pair, mbit, round};
use serde_json::{Value, json};

/// Target rates in Mbit/s.
const TARGETS: [u64; 3] = [2, 20, 200];

/// Measures and returns the `accuracy` section (one entry per target).
pub fn run(s: &Settings) -> Result<Value, String> {
    let mut out = Vec::new();
    for target in TARGETS {
        let pair = Pair::start(&format!("rate-{target}"), &format!("{target}Mbit"))?;
        std::thread::sleep(s.warmup);
        let a = pair.sample();
        std::thread::sleep(s.window);
        let b = pair.sample();
        let span = b.at - a.at;
        let measured = mbit(b.received - a.received, span);
        let sent = mbit(b.sent - a.sent, span);
        out.push(json!({
            "targetMbitPerSecond": target,
            "measuredMbitPerSecond": measured,
            "sentMbitPerSecond": sent,
            "errorPercent": round(100.0 * (measured - target as f64) / target as f64, 2),
            "seconds": round(span.as_secs_f64(), 3),
        }));
    }
    Ok(Value::Array(out))
}
