//! Status truth with real agents: members in network namespaces run `rdg agent` in Kubernetes
//! mode and report to the real API server through a management link; `kubectl get rdg` is read
//! continuously around failovers. The server serves no pods (no kubelet or scheduler runs
//! here), so a stand-in controller applies the real controller's aggregate with the pods the
//! controller's cache would hold: every member's pod Running, also after its host died (a
//! dead node's pods stay Running until the node controller marks them, about 40 s).

use rdg_e2e::kube_lab::KubeLab;
use rdg_e2e::stats::whole_ms;
use rdg_e2e::{GroupConfig, Net, POLL, require_root};
use std::time::{Duration, Instant};

/// Bound for a member to reach HS or SBS after its start, with slack for a loaded machine.
const SETTLE: Duration = Duration::from_secs(6);
/// Bound for `kubectl get rdg` to show a settled group after its members settled.
const STATUS_SETTLE: Duration = Duration::from_secs(10);
/// Bound from a host's death to `kubectl get rdg` showing the new hot member.
const STATUS_BOUND: Duration = Duration::from_secs(2);

/// A Kubernetes-mode lab for `members` (all but the first started once the first is hot),
/// `kubectl get rdg` showing the first as HOT and every member ready.
fn settled(test: &str, members: &[(&str, u16)]) -> Option<KubeLab> {
    if !require_root(test) {
        return None;
    }
    let kl = KubeLab::new(test, GroupConfig::with_members(members))?;
    let (first, rest) = members.split_first().expect("members");
    kl.start(first.0);
    kl.lab.wait_role(first.0, "HS", SETTLE);
    for (m, _) in rest {
        kl.start(m);
        kl.lab.wait_role(m, "SBS", SETTLE);
    }
    let ready = format!("{n}/{n}", n = members.len());
    let took = kl.wait_row(STATUS_SETTLE, |r| {
        r.hot.as_deref() == Some(first.0)
            && r.phase.as_deref() == Some("Healthy")
            && r.ready.as_deref() == Some(ready.as_str())
    });
    match took {
        Some(t) => println!(
            "kubectl get rdg settled {} ms after the members",
            whole_ms(t)
        ),
        None => kl.lab.fail(&format!(
            "kubectl get rdg never showed {} hot and {ready} ready: {:?}",
            first.0,
            kl.rdg_row()
        )),
    }
    Some(kl)
}

#[test]
fn after_the_hot_members_host_dies_kubectl_shows_the_new_hot_member_within_2s() {
    let Some(kl) = settled(
        "after_the_hot_members_host_dies_kubectl_shows_the_new_hot_member_within_2s",
        &[("ics-a", 100), ("ics-b", 50), ("ics-c", 10)],
    ) else {
        return;
    };
    let row = kl.rdg_row().expect("kubectl get rdg");
    assert!(
        row.epoch.is_some() && row.members.as_deref() == Some("3"),
        "{row:?}"
    );
    let trial = kl.host_death_trial("ics-a", STATUS_BOUND * 3);
    println!("{trial:#?}");
    assert_eq!(trial.new_hot, "ics-b", "the best standby takes over");
    let took = trial
        .to_new_hot
        .unwrap_or_else(|| kl.lab.fail("kubectl get rdg never showed ics-b as HOT"));
    assert!(
        took <= STATUS_BOUND,
        "kubectl get rdg showed the new HOT {} ms after the death (bound {} ms)",
        whole_ms(took),
        whole_ms(STATUS_BOUND)
    );
    assert!(
        trial.wrong_after_new_hot.is_empty(),
        "a wrong status after the new HOT was shown: {:?}",
        trial.wrong_after_new_hot
    );
    assert_eq!(trial.split_brain, Duration::ZERO, "SplitBrain was shown");
    // ics-a's pod still runs, but its claim is superseded: ics-b hot, ics-c ready.
    let row = kl.rdg_row().expect("kubectl get rdg");
    assert_eq!(row.phase.as_deref(), Some("Healthy"), "{row:?}");
    assert_eq!(row.ready.as_deref(), Some("2/3"), "{row:?}");
}

#[test]
fn two_live_claims_across_a_partition_still_show_split_brain() {
    let Some(kl) = settled(
        "two_live_claims_across_a_partition_still_show_split_brain",
        &[("ics-a", 100), ("ics-b", 50)],
    ) else {
        return;
    };
    let start = Instant::now();
    kl.lab.partition("ics-a", "ics-b", &Net::BOTH);
    kl.lab
        .wait_until(SETTLE, "both members hot across the partition", || {
            kl.lab.hot_members().len() == 2
        });
    kl.wait_row(STATUS_SETTLE, |r| {
        r.phase.as_deref() == Some("SplitBrain") && r.hot.is_none()
    })
    .unwrap_or_else(|| {
        kl.lab.fail(&format!(
            "kubectl get rdg never showed SplitBrain: {:?}",
            kl.rdg_row()
        ))
    });
    println!(
        "SplitBrain shown {} ms after the partition",
        whole_ms(start.elapsed())
    );
    kl.lab.heal_partitions();
    kl.lab
        .wait_until(SETTLE, "one hot member after healing", || {
            kl.lab.hot_members().len() == 1
        });
    let hot = kl.lab.hot_members().remove(0);
    kl.wait_row(STATUS_SETTLE, |r| {
        r.hot.as_deref() == Some(hot.as_str()) && r.phase.as_deref() != Some("SplitBrain")
    })
    .unwrap_or_else(|| {
        kl.lab.fail(&format!(
            "kubectl get rdg kept showing the healed split brain: {:?}",
            kl.rdg_row()
        ))
    });
}

/// Lines in `member`'s log about failed calls to the API server (the reporter's own, and any
/// kube client error).
fn api_error_lines(kl: &KubeLab, member: &str) -> usize {
    std::fs::read_to_string(kl.lab.log_file(member))
        .unwrap_or_default()
        .lines()
        .filter(|l| (l.contains(" WARN ") && l.contains("cannot ")) || l.contains(" ERROR "))
        .count()
}

#[test]
fn with_the_api_server_down_failover_is_unchanged_and_the_status_right_soon_after() {
    let Some(mut kl) = settled(
        "with_the_api_server_down_failover_is_unchanged_and_the_status_right_soon_after",
        &[("ics-a", 100), ("ics-b", 50), ("ics-c", 10)],
    ) else {
        return;
    };
    let warned_before: Vec<usize> = ["ics-b", "ics-c"]
        .iter()
        .map(|m| api_error_lines(&kl, m))
        .collect();
    kl.server.stop();
    let down = Instant::now();
    kl.lab.host_death("ics-a");
    let took = kl
        .lab
        .wait_until(SETTLE, "ics-b hot with the API server down", || {
            kl.lab.hot_members() == ["ics-b"]
        });
    // The same bound as on bare metal: the heartbeat timeout, the net check's verdict and a
    // few intervals of slack (netns.rs measures the same takeover without Kubernetes).
    let bound = kl.lab.config().timeout * 3;
    println!(
        "takeover with the API server down: {} ms (bound {} ms)",
        whole_ms(took),
        whole_ms(bound)
    );
    assert!(took <= bound, "takeover took {} ms", whole_ms(took));
    // Until both survivors' reporters have failed to write their new entries (and backed
    // off), the group keeps going: ics-b the only hot member throughout.
    let failing = |m: &str| {
        std::fs::read_to_string(kl.lab.log_file(m))
            .is_ok_and(|l| l.contains("cannot write the member status"))
    };
    let waited = Instant::now();
    while !(failing("ics-b") && failing("ics-c")) {
        match kl.lab.hot_members().as_slice() {
            [only] if only == "ics-b" => {}
            hot => kl
                .lab
                .fail(&format!("with the API server down, hot: {hot:?}")),
        }
        if waited.elapsed() > SETTLE {
            kl.lab
                .fail("the reporters never tried to write with the API server down");
        }
        std::thread::sleep(POLL);
    }
    // Then a few more seconds of outage, so their back-off reaches its cap.
    kl.lab.observe(
        Duration::from_secs(3),
        "ics-b stays the only hot member",
        || match kl.lab.hot_members().as_slice() {
            [only] if only == "ics-b" => Ok(()),
            hot => Err(format!("hot: {hot:?}")),
        },
    );
    let outage = down.elapsed();
    kl.server.start_again();
    println!(
        "API server down {} ms, up again in {} ms",
        whole_ms(outage),
        whole_ms(kl.server.started_in())
    );
    let took = kl
        .wait_row(Duration::from_secs(5), |r| {
            r.hot.as_deref() == Some("ics-b") && r.phase.as_deref() == Some("Healthy")
        })
        .unwrap_or_else(|| {
            kl.lab.fail(&format!(
                "5 s after the API server came back kubectl get rdg shows {:?}",
                kl.rdg_row()
            ))
        });
    println!(
        "status right {} ms after the API server was back",
        whole_ms(took)
    );
    for (m, before) in ["ics-b", "ics-c"].iter().zip(warned_before) {
        // A write that failed is retried within the back-off's cap (2 s) of the server's return.
        let recovered = kl.lab.poll_until(Duration::from_secs(5), || {
            std::fs::read_to_string(kl.lab.log_file(m))
                .unwrap_or_default()
                .contains("can write the member status again")
        });
        assert!(kl.lab.is_running(m), "{m}'s agent exited");
        let log = std::fs::read_to_string(kl.lab.log_file(m)).unwrap_or_default();
        assert!(!log.contains("panicked"), "{m} panicked:\n{log}");
        assert_eq!(
            log.matches("starting the agent").count(),
            1,
            "{m} restarted"
        );
        // Each kind of call logs its first failure, then at most one line per 30 s, then its
        // recovery: four kinds (entry, pod label, group read, Events), not a line per retry.
        let warned = api_error_lines(&kl, m) - before;
        println!("{m}: {warned} lines about API errors during the outage");
        assert!(
            warned <= 4,
            "{m} logged {warned} lines about API errors in {} ms:\n{log}",
            whole_ms(outage)
        );
        assert!(
            recovered.is_some(),
            "{m} never said its writes work again:\n{log}"
        );
    }
}
