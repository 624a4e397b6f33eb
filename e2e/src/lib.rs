//! Harness for rdg's end-to-end tests: network namespaces joined by bridges, real `rdg agent`
//! processes, role files and status endpoints.
//!
//! A [`Lab`] builds one isolated world per test: two Linux bridges in the root namespace (the
//! primary network 10.0.0.0/24 and the secondary 192.168.100.0/24), one network namespace per
//! group member, one for the net-check targets and optionally one for a client. Agents run as
//! real processes inside their namespaces (`ip netns exec NS rdg agent ...`); faults are real
//! signals, link state changes and nftables rules. Everything the lab created is removed when it
//! is dropped, also when a test panics, and leftovers of crashed earlier runs are swept when the
//! next lab is created.
//!
//! Labs take a process-wide lock for their whole life, so the timing-sensitive scenarios run
//! one at a time even though the test harness runs tests on several threads.
//!
//! ```no_run
//! use rdg_e2e::{GroupConfig, Lab};
//! use std::time::Duration;
//!
//! let lab = Lab::new(GroupConfig::three_members());
//! lab.start("ics-a");
//! lab.wait_until(Duration::from_secs(5), "ics-a hot", || lab.is_hot("ics-a"));
//! ```

mod agent;
pub mod apiserver;
pub mod bench;
mod binary;
mod client;
pub mod cluster;
mod config;
mod faults;
mod holders;
pub mod http;
pub mod kube_lab;
mod lab;
mod lock;
pub mod metrics;
mod names;
pub mod netns;
mod observe;
pub mod podman;
pub mod procfs;
mod receiver;
mod role;
mod root;
mod shell;
pub mod start;
pub mod stats;
mod watch;

pub use binary::rdg_binary;
pub use config::{Carousel, GroupConfig, MemberConfig, Net};
pub use holders::AddressHolders;
pub use lab::Lab;
pub use observe::{POLL, status_member, status_member_network};
pub use receiver::Receiver;
pub use role::{RoleRecord, monotonic_ms};
pub use root::{is_root, require_root};
pub use shell::shell_output;
pub use watch::{HotReport, HotWatch};
