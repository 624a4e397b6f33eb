//! Starting a group as after a normal start-up: one member after another, so that the first
//! becomes hot and the others stand by.

use crate::Lab;
use crate::bench::check_interrupted;
use crate::observe::POLL;
use std::time::{Duration, Instant};

/// Starts the members in `order` one after another, each once the previous one's role file and
/// `/status` say HS (the first) or SBS (the others). Returns how long each took after its
/// start; `Err` when one did not within `timeout`, or when the program was interrupted (see
/// [`crate::bench`]). Never panics, unlike the lab's waits.
pub fn start_in_order(
    lab: &Lab,
    order: &[&str],
    timeout: Duration,
) -> Result<Vec<Duration>, String> {
    let mut took = Vec::new();
    for (i, m) in order.iter().enumerate() {
        lab.start(m);
        let want = if i == 0 { "HS" } else { "SBS" };
        let start = Instant::now();
        while !(lab.role_name(m).as_deref() == Some(want)
            && lab
                .status(m)
                .is_ok_and(|s| s["state"].as_str() == Some(want)))
        {
            check_interrupted()?;
            if start.elapsed() >= timeout {
                return Err(format!("{m} not {want} {timeout:?} after its start"));
            }
            std::thread::sleep(POLL);
        }
        took.push(start.elapsed());
    }
    Ok(took)
}
