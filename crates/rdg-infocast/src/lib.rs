//! The Infocast carousel of rdg: a transmitter that sends the configuration's `transmitter`
//! channels only while this member may (the role file's HS with a running lease), and a
//! receiver that listens like a set-top box and reports what a failover looked like.
//!
//! Transmitter side: [`object`] (bytes of each object, re-read when the file changes, or a
//! generated [`bootcast`] descriptor), [`frame`] (the datagram format), [`pacing`] (token
//! bucket at `bitRate`), [`permit`] (the gate, checked before every chunk), [`channel`] (one
//! task per channel), [`transmitter`] (all channels; on the caller's runtime or its own
//! thread), [`socket`].
//!
//! Receiver side: [`receiver`] (socket and thread), [`reassembly`] (objects from chunks),
//! [`timeline`] (senders, switches, silences), [`report`] (the JSON of `rdg receive`).

pub mod bootcast;
pub mod channel;
pub mod frame;
pub mod manifest;
pub mod object;
pub mod pacing;
pub mod permit;
pub mod reassembly;
pub mod receiver;
pub mod report;
pub mod socket;
pub mod timeline;
pub mod transmitter;

pub use permit::GateMode;
pub use rdg_agent::metrics::CarouselMetrics;
pub use receiver::{Receiver, ReceiverOptions};
pub use report::Report;
pub use transmitter::{TransmitError, TransmitOptions, Transmitter, TransmitterThread};
