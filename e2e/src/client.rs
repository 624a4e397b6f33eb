//! What the lab's client sees of the group: who answers an address, and with which MAC.

use crate::config::Net;
use crate::lab::Lab;
use crate::shell::must;
use serde_json::Value;
use std::process::{Command, Stdio};

impl Lab {
    /// The MAC of `member`'s interface on `net`.
    pub fn mac(&self, member: &str, net: Net) -> String {
        let out = must(
            "ip",
            &[
                "-n",
                self.netns(member),
                "-j",
                "link",
                "show",
                "dev",
                net.interface(),
            ],
        );
        let v: Value = serde_json::from_str(&out).expect("ip -j prints JSON");
        v[0]["address"].as_str().expect("a MAC").to_string()
    }

    /// The client's neighbour entry for `address` (the MAC it sends to), if any.
    pub fn client_neighbour(&self, address: &str) -> Option<String> {
        let out = must(
            "ip",
            &["-n", self.client_netns(), "-j", "neigh", "show", address],
        );
        let v: Value = serde_json::from_str(&out).ok()?;
        v.as_array()?
            .iter()
            .find_map(|n| n["lladdr"].as_str().map(str::to_string))
    }

    /// One ping from the client to `address` (100 ms to answer).
    pub fn client_ping(&self, address: &str) -> bool {
        Command::new("ip")
            .args([
                "netns",
                "exec",
                self.client_netns(),
                "ping",
                "-c",
                "1",
                "-W",
                "0.1",
            ])
            .arg(address)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }
}
