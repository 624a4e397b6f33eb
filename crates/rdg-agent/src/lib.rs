//! Host-side pieces of rdg: the agent that drives `rdg_core::election::Node` with real sockets
//! and a real clock ([`agent`]), its parts (heartbeat [`transport`], [`net_check`], the
//! [`role_file`] with its monotonic lease and its [`role_writer`], the [`vip`]s, the [`status`] endpoint and [`metrics`], [`notify`]
//! commands), the [`gate`] that runs a command only while hot, and the [`query`] behind
//! `rdg status`.

pub mod agent;
pub mod arp_probe;
pub mod auth;
pub mod clock;
pub mod content;
pub mod gate;
pub mod local_group;
pub mod metrics;
pub mod net_check;
pub mod notify;
pub mod private_file;
pub mod query;
pub mod role_file;
pub mod role_writer;
pub mod status;
pub mod switchover_token;
pub mod transport;
pub mod vip;
