//! Answers to status queries, on both paths:
//! * `rdg status` (`rdg_agent::query::query`): a status-reply datagram goes through
//!   `rdg_core::wire::decode` (with and without the group key), is filtered to
//!   `MessageType::StatusReply` and turned into a `MemberReply` (that loop and `summarize` are
//!   private to `query()`, which needs sockets, so the same steps are mirrored here), and the
//!   `rdg status --json` contract `GroupStatus` is parsed from JSON;
//! * the operator's reporter (`AgentClient::status`): the agent's `/status` body parsed as
//!   `rdg_agent::status::StatusReport` (its HTTP framing `parse_response` is private).
//!
//! The first input byte picks the path. Invariant: whatever parses re-serializes and parses
//! back to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rdg_agent::query::{GroupStatus, MemberReply};
use rdg_agent::status::StatusReport;
use rdg_core::wire::{self, MessageType};
use std::net::{IpAddr, Ipv4Addr};

const GROUP: &str = "g";
const KEY: &[u8] = b"fuzz-key";

fn roundtrip<T>(v: &T)
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let text = serde_json::to_string(v).expect("serializes");
    let back: T = serde_json::from_str(&text).expect("re-parses");
    assert_eq!(&back, v, "JSON round trip changed the value: {text}");
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 3 {
        0 => {
            for key in [None, Some(KEY)] {
                let Ok(m) = wire::decode(rest, GROUP, key) else {
                    continue;
                };
                if m.kind != MessageType::StatusReply {
                    continue;
                }
                let reply = MemberReply::from_message(m, IpAddr::V4(Ipv4Addr::LOCALHOST));
                roundtrip(&reply);
                let status = GroupStatus {
                    group: GROUP.into(),
                    hot: (reply.state == rdg_core::State::HS).then(|| reply.name.clone()),
                    epoch: reply.epoch,
                    members: vec![reply],
                    missing: Vec::new(),
                    split_brain: false,
                    content_consistent: None,
                };
                roundtrip(&status);
            }
        }
        1 => {
            if let Ok(s) = serde_json::from_slice::<GroupStatus>(rest) {
                roundtrip(&s);
            }
        }
        _ => {
            if let Ok(s) = serde_json::from_slice::<StatusReport>(rest) {
                roundtrip(&s);
            }
        }
    }
});
