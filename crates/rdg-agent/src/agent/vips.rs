//! The VIP policy: which way the VIPs go at each role write, and the background probes'
//! verdicts. The netlink and ARP work itself is [`crate::vip`]'s.

use super::Agent;
use crate::notify::NotifyEvent;
use crate::vip::ProbeDone;
use rdg_core::State;
use rdg_core::election::HotReason;
use std::time::Duration;
use tokio::sync::mpsc;

/// How often a hot member retries adding a VIP it could not add.
const VIP_RETRY: Duration = Duration::from_secs(1);

/// Which way the VIPs go at one role write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum VipMove {
    /// Became hot: add them. A failover (takeover, hand-over) adds them at once and checks for
    /// a foreign holder afterwards; a cold start (nobody was hot, nobody waits) probes first.
    Take { probe_first: bool },
    /// Left HS: remove them.
    Drop,
    /// Still hot: retry missing ones (probe first) and repeat the announcement when due.
    Keep,
    /// Neither hot before nor after.
    Leave,
}

impl VipMove {
    /// The move for a role write from hot-or-not `was_hot` to `hot`; `became_hot` is the
    /// node's reason on the write that makes this member hot.
    fn at_role_write(was_hot: bool, hot: bool, became_hot: Option<HotReason>) -> VipMove {
        match (was_hot, hot) {
            (false, true) => VipMove::Take {
                probe_first: became_hot == Some(HotReason::Election),
            },
            (true, false) => VipMove::Drop,
            (true, true) => VipMove::Keep,
            (false, false) => VipMove::Leave,
        }
    }
}

impl Agent {
    /// Takes the VIPs on becoming hot and drops them on leaving HS — before the outputs that
    /// follow (a `leaving`, a switchover ack) announce anything. While hot, retries missing
    /// ones and repeats the announcement every `garp.refresh`.
    pub(super) async fn move_vips(
        &mut self,
        now: Duration,
        was_hot: bool,
        hot: bool,
        became_hot: Option<HotReason>,
    ) {
        let Some(vips) = self.vips.as_mut() else {
            return;
        };
        match VipMove::at_role_write(was_hot, hot, became_hot) {
            VipMove::Take { probe_first } => {
                self.vip_attempt = now;
                self.vip_refresh = now;
                let failed = if probe_first {
                    vips.acquire_probed().await
                } else {
                    vips.acquire().await
                };
                self.report_vip_failures(failed);
            }
            VipMove::Drop => vips.release().await,
            VipMove::Keep => {
                if !vips.all_held() && now >= self.vip_attempt + VIP_RETRY {
                    self.vip_attempt = now;
                    let failed = vips.acquire_probed().await;
                    self.report_vip_failures(failed);
                } else if !vips.refresh().is_zero() && now >= self.vip_refresh + vips.refresh() {
                    self.vip_refresh = now;
                    vips.announce(1);
                }
            }
            VipMove::Leave => {}
        }
    }

    /// A background ARP probe finished: add, keep or remove its VIP (only while hot; a release
    /// since the probe started makes the result stale anyway).
    pub(super) async fn on_vip_probe(&mut self, done: ProbeDone) {
        if self.node.state() != State::HS {
            return;
        }
        let Some(vips) = self.vips.as_mut() else {
            return;
        };
        let failed = vips.on_probe(done).await;
        self.report_vip_failures(failed);
    }

    fn report_vip_failures(&self, failed: Vec<(String, String)>) {
        for (vip, why) in failed {
            self.notifier.send(
                NotifyEvent::VipFailed,
                self.node.epoch(),
                format!("{vip}: {why}"),
            );
        }
    }
}

/// The next finished VIP probe (never, without VIPs).
pub(super) async fn recv_probe(
    rx: &mut Option<mpsc::UnboundedReceiver<ProbeDone>>,
) -> Option<ProbeDone> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::VipMove;
    use rdg_core::election::HotReason;

    #[test]
    fn a_cold_start_probes_first_a_failover_adds_at_once() {
        let take = |reason| VipMove::at_role_write(false, true, Some(reason));
        assert_eq!(
            take(HotReason::Election),
            VipMove::Take { probe_first: true }
        );
        for failover in [HotReason::Takeover, HotReason::Handover] {
            assert_eq!(take(failover), VipMove::Take { probe_first: false });
        }
    }

    #[test]
    fn leaving_hs_drops_them_staying_keeps_them() {
        assert_eq!(VipMove::at_role_write(true, false, None), VipMove::Drop);
        assert_eq!(VipMove::at_role_write(true, true, None), VipMove::Keep);
        assert_eq!(VipMove::at_role_write(false, false, None), VipMove::Leave);
    }
}
