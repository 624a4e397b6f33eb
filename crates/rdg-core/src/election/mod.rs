//! The election state machine of one member, sans-IO (no sockets, no clock reads).
//!
//! The runtime calls [`Node::handle`] with the current monotonic time and an [`Input`]
//! (a timer tick, a datagram, a net-check result, a command) and carries out the returned
//! [`Output`]s in order; it calls again at [`Node::next_deadline`]. The rules:
//!
//! - start in SS/iElection and listen for `timeouts.election`; a hot member heard → SBS
//!   (and `Primary/coordinator: <member>@<address>`); none → the best candidate heard
//!   (highest priority, then name) becomes HS, the others wait (iWaitingHot).
//! - no preemption by default; with `preempt`, a better standby asks for a planned hand-over
//!   after `preemptDelay`.
//! - the hot member is lost when silent on **all** networks for `heartbeat.timeout`; then the
//!   best eligible standby (priority > 0, net check passing) takes over with epoch + 1. Silent
//!   on one network only → a network anomaly, never a takeover (one that recurs within a
//!   minute of the last one on that member and network needs 4 timeouts of silence, at least
//!   1 s: a lossy network is reported once a minute, not at every third lost heartbeat).
//! - net check failing twice → CS (isolated): never hot; back to SBS when it passes again.
//! - two hot members that hear each other: higher epoch stays, then priority, then name.
//! - a hot member renews a lease every interval; if it could not (frozen process), it steps
//!   down before doing anything else (self-fencing).
//! - graceful stop: release first, then `leaving` naming the successor.
//! - operator switchover: the hot member releases first, then acks; the target then takes
//!   over (priority 0 allowed only here).

mod io;
mod node;
mod params;
mod peers;

pub use io::{Destination, Event, HotReason, Input, Output, ReleaseReason};
#[cfg(feature = "fault-injection")]
pub use node::Fault;
pub use node::Node;
pub use params::{ANOMALY_HOLD_DOWN_WINDOW, MemberIndex, Params, ParamsError};
pub use peers::{MAX_NETWORKS, Peer};
