//! Faults the lab can inject besides signals: link cuts, isolation from the net-check targets,
//! random loss and partitions. The kernel here has no netem, so loss and filtering are
//! nftables rules, each fault in its own table of the member's namespace so faults combine and
//! each can be undone alone.

use crate::config::Net;
use crate::lab::Lab;
use crate::shell::{ip, nft};

/// nftables table holding the isolation rules.
const ISOLATE: &str = "rdgt_isolate";
/// nftables table holding the random-loss rule.
const LOSS: &str = "rdgt_loss";
/// nftables table holding the partition rules.
const PARTITION: &str = "rdgt_partition";

impl Lab {
    /// Cuts `member`'s cable on `net`: its bridge port goes down (the member's interface loses
    /// its carrier but keeps its address, as with a pulled cable).
    pub fn link_down(&self, member: &str, net: Net) {
        ip(&["link", "set", self.port(member, net), "down"]);
    }

    /// Plugs `member`'s cable on `net` back in.
    pub fn link_up(&self, member: &str, net: Net) {
        ip(&["link", "set", self.port(member, net), "up"]);
    }

    /// Host death: `kill -9` of the agent and both cables cut.
    pub fn host_death(&self, member: &str) {
        self.kill9(member);
        for net in Net::BOTH {
            self.link_down(member, net);
        }
    }

    /// Drops all traffic between `member` and the net-check targets' namespace, on both
    /// networks (its heartbeats still flow).
    pub fn isolate_from_targets(&self, member: &str) {
        let targets = set(Net::BOTH.iter().map(|n| n.target().to_string()));
        self.nft_table(
            member,
            ISOLATE,
            &format!("ip saddr {targets} drop"),
            &format!("ip daddr {targets} drop"),
        );
    }

    /// Undoes [`Lab::isolate_from_targets`].
    pub fn reconnect_targets(&self, member: &str) {
        self.nft_delete(member, ISOLATE);
    }

    /// Drops `percent` % of everything `member` receives from the networks, at random
    /// (`numgen random`). Loopback is spared: it carries the test's own `/status` and
    /// `/metrics` requests, whose dropped SYNs would time out the harness, not the agent.
    pub fn random_loss(&self, member: &str, percent: u8) {
        assert!(percent <= 100, "a loss of {percent} %");
        self.nft_table(
            member,
            LOSS,
            &format!("iif != \"lo\" numgen random mod 100 < {percent} drop"),
            "",
        );
    }

    /// Undoes [`Lab::random_loss`].
    pub fn clear_loss(&self, member: &str) {
        self.nft_delete(member, LOSS);
    }

    /// Drops all traffic between members `a` and `b` on `nets` (both directions, unicast and
    /// multicast: each drops what the other sends and sends nothing to the other's addresses).
    /// Partitions accumulate until [`Lab::heal_partitions`].
    pub fn partition(&self, a: &str, b: &str, nets: &[Net]) {
        for (me, peer) in [(a, b), (b, a)] {
            let peer_addresses = set(nets.iter().map(|n| self.address(peer, *n).to_string()));
            self.nft_table(
                me,
                PARTITION,
                &format!("ip saddr {peer_addresses} drop"),
                &format!("ip daddr {peer_addresses} drop"),
            );
        }
    }

    /// Removes every partition.
    pub fn heal_partitions(&self) {
        for m in &self.members {
            self.nft_delete(&m.name, PARTITION);
        }
    }

    fn port(&self, member: &str, net: Net) -> &str {
        let slot = self.slot(member);
        match net {
            Net::Primary => &slot.ports[0],
            Net::Secondary => &slot.ports[1],
        }
    }

    /// Adds `input_rule` and `output_rule` (when not empty) to `table` in `member`'s namespace,
    /// creating the table and its chains if needed.
    fn nft_table(&self, member: &str, table: &str, input_rule: &str, output_rule: &str) {
        let mut script = format!(
            "table inet {table} {{\n\
             \x20 chain input {{ type filter hook input priority 0; policy accept; }}\n\
             \x20 chain output {{ type filter hook output priority 0; policy accept; }}\n\
             }}\n\
             add rule inet {table} input {input_rule}\n"
        );
        if !output_rule.is_empty() {
            script.push_str(&format!("add rule inet {table} output {output_rule}\n"));
        }
        nft(self.netns(member), &script).unwrap_or_else(|e| panic!("{e}"));
    }

    /// Deletes `table` from `member`'s namespace (nothing happens when it does not exist).
    fn nft_delete(&self, member: &str, table: &str) {
        let script = format!("table inet {table}\ndelete table inet {table}\n");
        nft(self.netns(member), &script).unwrap_or_else(|e| panic!("{e}"));
    }
}

/// An nftables anonymous set: `{ a, b }`.
fn set(items: impl Iterator<Item = String>) -> String {
    format!("{{ {} }}", items.collect::<Vec<_>>().join(", "))
}
