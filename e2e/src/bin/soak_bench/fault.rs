//! The soak's faults, drawn from the lab's fault matrix, each applied to one member and healed
//! completely before the next.
//!
//! | kind | applied | healed | member out of the group meanwhile |
//! |---|---|---|---|
//! | `kill` | SIGKILL of its agent | the agent started again (a new process) | yes (dead) |
//! | `freeze` | SIGSTOP | SIGCONT | yes (frozen) |
//! | `cut-one` | one cable cut (bridge port down) | plugged back in | no: it is heard on the other network |
//! | `cut-both` | both cables cut | plugged back in | yes (heard by nobody) |
//! | `partition` | nftables drop between it and every other member, both networks | rules removed | yes (both sides may be hot) |
//! | `loss` | 20–30 % random loss on everything it receives (nftables `numgen random`) | rule removed | no |
//! | `isolation` | net-check targets unreachable from it | rule removed | no |

use clap::ValueEnum;
use rand::{Rng, RngExt};
use rdg_e2e::{Lab, Net};

/// A kind of fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    Kill,
    Freeze,
    CutOne,
    CutBoth,
    Partition,
    Loss,
    Isolation,
}

impl Kind {
    /// The kind's name, as `--faults` takes it.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Kill => "kill",
            Kind::Freeze => "freeze",
            Kind::CutOne => "cut-one",
            Kind::CutBoth => "cut-both",
            Kind::Partition => "partition",
            Kind::Loss => "loss",
            Kind::Isolation => "isolation",
        }
    }

    /// Whether the fault takes its member out of the group (see the module's table).
    fn takes_out(self) -> bool {
        matches!(
            self,
            Kind::Kill | Kind::Freeze | Kind::CutBoth | Kind::Partition
        )
    }
}

/// One fault, drawn.
#[derive(Debug, Clone)]
pub struct Fault {
    pub kind: Kind,
    pub member: String,
    /// The network of `cut-one`.
    pub net: Net,
    /// The loss rate of `loss`, in percent.
    pub percent: u8,
}

impl Fault {
    /// Draws the fault's details for `kind` on `member`.
    pub fn draw(kind: Kind, member: String, rng: &mut impl Rng) -> Fault {
        Fault {
            kind,
            member,
            net: Net::BOTH[rng.random_range(0..2)],
            percent: rng.random_range(20..=30),
        }
    }

    /// `kind member [detail]`, e.g. `loss ics-a 23 %`.
    pub fn label(&self) -> String {
        let detail = match self.kind {
            Kind::CutOne => format!(" {}", self.net.name()),
            Kind::Loss => format!(" {} %", self.percent),
            _ => String::new(),
        };
        format!("{} {}{detail}", self.kind.name(), self.member)
    }

    /// The members out of the group while the fault lasts.
    pub fn out(&self) -> Vec<String> {
        if self.kind.takes_out() {
            vec![self.member.clone()]
        } else {
            Vec::new()
        }
    }

    /// Applies the fault (panics, like the lab, when a command fails).
    pub fn apply(&self, lab: &Lab) {
        let m = self.member.as_str();
        match self.kind {
            Kind::Kill => lab.kill9(m),
            Kind::Freeze => lab.sigstop(m),
            Kind::CutOne => lab.link_down(m, self.net),
            Kind::CutBoth => Net::BOTH.iter().for_each(|&n| lab.link_down(m, n)),
            Kind::Partition => {
                for other in lab.member_names().iter().filter(|o| *o != m) {
                    lab.partition(m, other, &Net::BOTH);
                }
            }
            Kind::Loss => lab.random_loss(m, self.percent),
            Kind::Isolation => lab.isolate_from_targets(m),
        }
    }

    /// Undoes the fault. A killed member's agent is started again: a new process, whose
    /// resources start a new series.
    pub fn heal(&self, lab: &Lab) {
        let m = self.member.as_str();
        match self.kind {
            Kind::Kill => lab.start(m),
            Kind::Freeze => lab.sigcont(m),
            Kind::CutOne => lab.link_up(m, self.net),
            Kind::CutBoth => Net::BOTH.iter().for_each(|&n| lab.link_up(m, n)),
            Kind::Partition => lab.heal_partitions(),
            Kind::Loss => lab.clear_loss(m),
            Kind::Isolation => lab.reconnect_targets(m),
        }
    }
}
