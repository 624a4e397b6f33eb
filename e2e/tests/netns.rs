//! rdg end to end: real `rdg agent` processes in network namespaces joined by two bridges,
//! real multicast, real net-check pings, real signals, link cuts and nftables faults.
//!
//! Every scenario asserts on the role files (what `rdg gate` acts on) and on the agents'
//! `/status`. Conditions are awaited by polling; "X never happens" is observed continuously
//! (every 10 ms) over the whole period, and [`rdg_e2e::HotWatch`] checks in the background that
//! two role files never hold a running HS lease at the same time. Needs root; without it every
//! test prints a loud SKIPPED line and passes.
//!
//! Timing used unless a scenario says otherwise: heartbeat interval 100 ms, timeout 500 ms,
//! election 1 s, net check on 10.0.0.1 with a 100 ms timeout.

use rdg_core::wire::{Flags, Message, MessageType, encode};
use rdg_core::{State, TemporalState};
use rdg_e2e::netns::send_udp;
use rdg_e2e::start::start_in_order;
use rdg_e2e::stats::whole_ms;
use rdg_e2e::{
    GroupConfig, Lab, Net, metrics, monotonic_ms, require_root, status_member,
    status_member_network,
};
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::SocketAddrV4;
use std::time::{Duration, Instant};

/// Bound for a member started alone or next to a settled group to reach HS or SBS (election
/// 1 s, confirming the hot member on every network, first net-check rounds), with slack for a
/// loaded machine. Waits end as soon as the condition holds.
const SETTLE: Duration = Duration::from_secs(6);

/// Starts the members one after another, each once the previous one has settled
/// ([`start_in_order`]): the first must become HS, the others SBS. Returns the epoch of the hot
/// term.
fn start_settled(lab: &Lab, order: &[&str]) -> u64 {
    let took = start_in_order(lab, order, SETTLE).unwrap_or_else(|e| lab.fail(&e));
    for (i, (m, took)) in order.iter().zip(took).enumerate() {
        let role = if i == 0 { "HS" } else { "SBS" };
        println!("{m} {role} {} ms after its start", whole_ms(took));
    }
    let first = order[0];
    wait_status_agrees(lab, order, first);
    lab.role(first).expect("the hot member's role file").epoch
}

/// Waits until every running member in `members` reports `hot` as the hot member in its
/// `/status`.
fn wait_status_agrees(lab: &Lab, members: &[&str], hot: &str) {
    lab.wait_until(
        SETTLE,
        &format!("/status of {members:?} to name {hot} as the hot member"),
        || {
            members
                .iter()
                .all(|m| lab.status(m).is_ok_and(|s| s["hot"].as_str() == Some(hot)))
        },
    );
}

/// Role of `member` in its role file, "-" when there is none.
fn role(lab: &Lab, member: &str) -> String {
    lab.role_name(member).unwrap_or_else(|| "-".into())
}

/// `member`'s `/status`; the test fails (with logs) when it cannot be read.
fn status(lab: &Lab, member: &str) -> Value {
    lab.status(member)
        .unwrap_or_else(|e| lab.fail(&format!("cannot read /status of {member}: {e}")))
}

/// Host revival: the role file is gone (it lives in /run, a tmpfs), cables back in, agent
/// started again.
fn host_revival(lab: &Lab, member: &str) {
    let _ = std::fs::remove_file(lab.role_file(member));
    for net in Net::BOTH {
        lab.link_up(member, net);
    }
    lab.start(member);
}

/// The three-member group with a net-check target on each network, so a member with one cable
/// cut still passes its net check (a round passes when at least one target answers).
fn three_with_targets_on_both_networks() -> GroupConfig {
    let mut config = GroupConfig::three_members();
    config.net_check_targets = vec![Net::Primary.target(), Net::Secondary.target()];
    config
}

// 1. First up wins, no preemption.

#[test]
fn s01_first_member_up_is_hot_the_others_stand_by() {
    if !require_root("s01_first_member_up_is_hot_the_others_stand_by") {
        return;
    }
    let lab = Lab::new(GroupConfig::three_members());
    let watch = lab.watch_hot();
    let epoch = start_settled(&lab, &["ics-a", "ics-b", "ics-c"]);
    let s = status(&lab, "ics-a");
    assert_eq!(s["state"], "HS");
    assert_eq!(s["member"], "ics-a");
    assert_eq!(s["epoch"], epoch);
    assert_eq!(s["group"], "e2e");
    for (m, state) in [("ics-a", "HS"), ("ics-b", "SBS"), ("ics-c", "SBS")] {
        assert_eq!(
            status_member(&s, m).map(|e| e["state"].clone()),
            Some(state.into()),
            "{m} in ics-a's /status: {s:#}"
        );
    }
    for m in ["ics-b", "ics-c"] {
        let s = status(&lab, m);
        assert_eq!(s["state"], "SBS", "{s:#}");
        assert_eq!(s["hot"], "ics-a", "{s:#}");
        assert_eq!(lab.role(m).unwrap().lease_until_monotonic_ms, 0);
    }
    // The operator's view over the network, from a standby's namespace.
    let group = lab
        .rdg_status("ics-c")
        .unwrap_or_else(|e| lab.fail(&format!("rdg status: {e}")));
    assert_eq!(group["group"], "e2e", "{group:#}");
    assert_eq!(group["hot"], "ics-a", "{group:#}");
    assert_eq!(group["epoch"], epoch, "{group:#}");
    for (m, state, priority) in [
        ("ics-a", "HS", 100),
        ("ics-b", "SBS", 50),
        ("ics-c", "SBS", 10),
    ] {
        let entry = status_member(&group, m).cloned().unwrap_or_default();
        assert_eq!(entry["state"], state, "{m} in rdg status: {group:#}");
        assert_eq!(entry["priority"], priority, "{m} in rdg status: {group:#}");
    }
    let report = watch.stop();
    report.assert_never_two_hot();
    report.assert_never_hot("ics-b");
    report.assert_never_hot("ics-c");
}

#[test]
fn s01_first_member_up_wins_even_with_the_lowest_priority() {
    if !require_root("s01_first_member_up_wins_even_with_the_lowest_priority") {
        return;
    }
    let lab = Lab::new(GroupConfig::three_members());
    let watch = lab.watch_hot();
    start_settled(&lab, &["ics-c", "ics-b", "ics-a"]);
    // ics-a (priority 100) joined last: no preemption, ics-c (10) stays hot.
    lab.observe(
        lab.config().timeout * 3,
        "ics-c stays hot after ics-a joined",
        || match lab.hot_members().as_slice() {
            [only] if only == "ics-c" => Ok(()),
            other => Err(format!("hot: {other:?}")),
        },
    );
    assert_eq!(status(&lab, "ics-a")["state"], "SBS");
    assert_eq!(status(&lab, "ics-a")["hot"], "ics-c");
    let report = watch.stop();
    report.assert_never_two_hot();
    report.assert_never_hot("ics-a");
    report.assert_never_hot("ics-b");
}

// 2. Host death of the hot member.

#[test]
fn s02_host_death_best_standby_takes_over() {
    if !require_root("s02_host_death_best_standby_takes_over") {
        return;
    }
    let lab = Lab::new(GroupConfig::three_members());
    let epoch = start_settled(&lab, &["ics-a", "ics-b", "ics-c"]);
    let watch = lab.watch_hot();
    lab.host_death("ics-a");
    let took = lab.wait_until(SETTLE, "ics-b alone hot after ics-a's death", || {
        lab.hot_members() == ["ics-b"]
    });
    println!(
        "failover after host death: ics-b hot {} ms after the kill",
        whole_ms(took)
    );
    lab.observe(
        lab.config().timeout * 3,
        "ics-b stays the only hot member",
        || match (lab.hot_members().as_slice(), role(&lab, "ics-c").as_str()) {
            ([only], "SBS") if only == "ics-b" => Ok(()),
            (hot, c) => Err(format!("hot: {hot:?}, ics-c: {c}")),
        },
    );
    let b = status(&lab, "ics-b");
    assert_eq!(b["state"], "HS", "{b:#}");
    assert_eq!(b["epoch"], epoch + 1, "{b:#}");
    assert_eq!(lab.role("ics-b").unwrap().epoch, epoch + 1);
    wait_status_agrees(&lab, &["ics-c"], "ics-b");
    let report = watch.stop();
    report.assert_never_two_hot();
    report.assert_never_hot("ics-c");
}

// 3. A frozen hot member: its lease runs out, a standby takes over, it steps down on resume.

#[test]
fn s03_frozen_hot_member_is_fenced_by_its_lease() {
    if !require_root("s03_frozen_hot_member_is_fenced_by_its_lease") {
        return;
    }
    let lab = Lab::new(GroupConfig::three_members());
    let interval = lab.config().interval;
    let freeze = lab.config().timeout * 2;
    start_settled(&lab, &["ics-a", "ics-b", "ics-c"]);

    // The "transmitter": a loop printing CLOCK_MONOTONIC ms every 5 ms, run by the gate.
    let ticks = lab.dir().join("ticks.txt");
    let python = if std::path::Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    };
    let rdg = lab.rdg().to_string_lossy().into_owned();
    let role_file = lab.role_file("ics-a").to_string_lossy().into_owned();
    let code = "import time\nwhile True:\n    print(int(time.monotonic() * 1000))\n    time.sleep(0.005)\n";
    let netns = lab.netns("ics-a").to_string();
    lab.spawn_in(
        &netns,
        "gate-ics-a",
        &[
            &rdg,
            "gate",
            "--role-file",
            &role_file,
            "--poll",
            "10ms",
            "--",
            python,
            "-u",
            "-c",
            code,
        ],
        Some(&ticks),
    );
    let read_ticks = || -> Vec<u64> {
        std::fs::read_to_string(&ticks)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    };
    lab.wait_until(SETTLE, "the gated command to run on ics-a", || {
        read_ticks().len() >= 10
    });

    let watch = lab.watch_hot();
    lab.sigstop("ics-a");
    let stopped = Instant::now();
    // The process is frozen: its role file cannot change any more.
    let frozen = lab.role("ics-a").expect("ics-a's role file");
    assert_eq!(frozen.role, "HS");
    let took = lab.wait_until(freeze, "ics-b to take over from the frozen ics-a", || {
        lab.is_hot("ics-b")
    });
    println!("ics-b hot {} ms after ics-a was frozen", whole_ms(took));
    // The fault lasts 2 x timeout; this sleep is its duration, not a wait for a condition.
    std::thread::sleep(freeze.saturating_sub(stopped.elapsed()));
    lab.sigcont("ics-a");
    let resumed_ms = monotonic_ms();
    let lease = frozen.lease_until_monotonic_ms;
    let fence = lease + 50;

    // Fencing while frozen: the gate stopped the command when the lease ran out.
    let during_freeze = read_ticks()
        .into_iter()
        .filter(|t| *t <= resumed_ms)
        .max()
        .unwrap_or(0);
    println!(
        "last tick while frozen {during_freeze}, lease until {lease} ({:+} ms)",
        during_freeze as i64 - lease as i64
    );
    if during_freeze > fence {
        lab.fail(&format!(
            "the gated command ran until {during_freeze} while ics-a was frozen, more than 50 ms \
             past its lease ({lease})"
        ));
    }

    // On resume ics-a gives the role up at once, and does not take it again: ics-b is hot.
    let stepped_down = lab.wait_until(SETTLE, "ics-a to step down after SIGCONT", || {
        lab.role("ics-a")
            .is_some_and(|r| !r.says_hot() || r.epoch != frozen.epoch)
    });
    let now = lab.role("ics-a").expect("ics-a's role file");
    println!(
        "ics-a's role file {} ms after SIGCONT: {now:?}",
        whole_ms(stepped_down)
    );
    if now.says_hot() {
        lab.fail(&format!(
            "ics-a became hot again (epoch {}) right after resuming, instead of standing by behind \
             ics-b (hot in epoch {})",
            now.epoch,
            frozen.epoch + 1
        ));
    }
    let bound = interval + Duration::from_millis(100);
    if stepped_down > bound {
        lab.fail(&format!(
            "ics-a stepped down {} ms after SIGCONT, more than interval + 100 ms = {} ms",
            whole_ms(stepped_down),
            whole_ms(bound)
        ));
    }
    lab.observe(
        lab.config().timeout * 3,
        "ics-b stays the only hot member after ics-a resumed",
        || match lab.hot_members().as_slice() {
            [only] if only == "ics-b" && role(&lab, "ics-a") != "HS" => Ok(()),
            other => Err(format!("hot: {other:?}, ics-a: {}", role(&lab, "ics-a"))),
        },
    );
    lab.wait_until(SETTLE, "ics-a to settle as SBS behind ics-b", || {
        lab.status("ics-a")
            .is_ok_and(|s| s["state"] == "SBS" && s["hot"] == "ics-b")
    });
    assert_eq!(role(&lab, "ics-a"), "SBS");
    assert_eq!(status(&lab, "ics-b")["state"], "HS");

    let last_tick = read_ticks().into_iter().max().unwrap_or(0);
    println!(
        "last tick of the gated command {last_tick}, lease of the frozen ics-a until {lease} \
         ({:+} ms)",
        last_tick as i64 - lease as i64
    );
    if last_tick > fence {
        lab.fail(&format!(
            "the gated command ran until {last_tick}, more than 50 ms past the lease ({lease})"
        ));
    }
    // Counted for the lease alert (RdgHotLeaseLapsed).
    let text = lab
        .metrics("ics-a")
        .unwrap_or_else(|e| lab.fail(&format!("/metrics of ics-a: {e}")));
    let lapsed = metrics::sum(
        &text,
        "rdg_hot_releases_total",
        &[("reason", "lease-expired")],
    );
    assert_eq!(lapsed, 1.0, "ics-a's lapsed leases in /metrics");
    watch.stop().assert_never_two_hot();
}

// 4. One network cut: an anomaly, no takeover. Both cut: takeover.

#[test]
fn s04_single_network_cut_is_an_anomaly_not_a_failover() {
    if !require_root("s04_single_network_cut_is_an_anomaly_not_a_failover") {
        return;
    }
    let lab = Lab::new(three_with_targets_on_both_networks());
    let epoch = start_settled(&lab, &["ics-a", "ics-b", "ics-c"]);
    let watch = lab.watch_hot();

    lab.link_down("ics-a", Net::Primary);
    let took = lab.wait_until(
        SETTLE,
        "ics-b and ics-c to report ics-a anomalous on primary",
        || {
            ["ics-b", "ics-c"].iter().all(|m| {
                lab.status(m).is_ok_and(|s| {
                    status_member_network(&s, "ics-a", "primary")
                        .is_some_and(|n| n["anomaly"] == true)
                })
            })
        },
    );
    println!("anomaly reported {} ms after the cut", whole_ms(took));
    lab.observe(
        lab.config().timeout * 3,
        "ics-a stays hot with one network cut",
        || {
            let hot = lab.hot_members();
            let epoch_now = lab.role("ics-a").map(|r| r.epoch);
            if hot == ["ics-a"] && epoch_now == Some(epoch) {
                Ok(())
            } else {
                Err(format!("hot: {hot:?}, ics-a's epoch: {epoch_now:?}"))
            }
        },
    );
    for m in ["ics-b", "ics-c"] {
        let s = status(&lab, m);
        assert_eq!(s["state"], "SBS", "{s:#}");
        assert_eq!(s["hot"], "ics-a", "{s:#}");
        let secondary = status_member_network(&s, "ics-a", "secondary").cloned();
        assert_eq!(
            secondary.as_ref().map(|n| n["anomaly"].clone()),
            Some(false.into()),
            "{m}: ics-a on secondary: {secondary:?}"
        );
    }
    assert_eq!(status(&lab, "ics-a")["state"], "HS");
    let report = watch.stop();
    report.assert_never_two_hot();
    report.assert_never_hot("ics-b");
    report.assert_never_hot("ics-c");

    // Both cables cut: ics-a is silent everywhere (and isolated), ics-b takes over. ics-a cannot
    // be heard any more, so its own role file is not part of the one-hot check here.
    lab.link_down("ics-a", Net::Secondary);
    let took = lab.wait_until(SETTLE, "ics-b to take over from the cut-off ics-a", || {
        lab.is_hot("ics-b")
    });
    println!(
        "ics-b hot {} ms after ics-a's second network was cut",
        whole_ms(took)
    );
    let b = status(&lab, "ics-b");
    assert_eq!(b["epoch"], epoch + 1, "{b:#}");
    wait_status_agrees(&lab, &["ics-b", "ics-c"], "ics-b");
    assert_eq!(role(&lab, "ics-c"), "SBS");
    // The cut-off member fails its net check (no target reachable) and gives the role up.
    lab.wait_until(SETTLE, "the cut-off ics-a to leave HS", || {
        role(&lab, "ics-a") != "HS"
    });
}

// 5. Isolation from the net-check target: CS, never hot.

#[test]
fn s05_isolated_standby_goes_cs_and_never_takes_over() {
    if !require_root("s05_isolated_standby_goes_cs_and_never_takes_over") {
        return;
    }
    let lab = Lab::new(GroupConfig::three_members());
    let epoch = start_settled(&lab, &["ics-a", "ics-b", "ics-c"]);
    let watch = lab.watch_hot();
    lab.isolate_from_targets("ics-b");
    let took = lab.wait_role("ics-b", "CS", SETTLE);
    println!("ics-b CS {} ms after its isolation", whole_ms(took));
    lab.wait_until(SETTLE, "ics-a's /status to show ics-b as CS", || {
        lab.status("ics-a")
            .is_ok_and(|s| status_member(&s, "ics-b").is_some_and(|b| b["state"] == "CS"))
    });

    lab.host_death("ics-a");
    let took = lab.wait_until(SETTLE, "ics-c alone hot after ics-a's death", || {
        lab.hot_members() == ["ics-c"]
    });
    println!("ics-c hot {} ms after ics-a's death", whole_ms(took));
    lab.observe(
        lab.config().timeout * 3,
        "ics-c hot, the isolated ics-b CS",
        || match (lab.hot_members().as_slice(), role(&lab, "ics-b").as_str()) {
            ([only], "CS") if only == "ics-c" => Ok(()),
            (hot, b) => Err(format!("hot: {hot:?}, ics-b: {b}")),
        },
    );
    let c = status(&lab, "ics-c");
    assert_eq!(c["state"], "HS", "{c:#}");
    assert_eq!(c["epoch"], epoch + 1, "{c:#}");
    let b = status(&lab, "ics-b");
    assert_eq!(b["state"], "CS", "{b:#}");
    assert_eq!(b["netCheck"]["ok"], false, "{b:#}");
    let report = watch.stop();
    report.assert_never_two_hot();
    report.assert_never_hot("ics-b");
}

// 6. The old hot member returns.

#[test]
fn s06_returning_member_stays_standby_without_preemption() {
    if !require_root("s06_returning_member_stays_standby_without_preemption") {
        return;
    }
    let lab = Lab::new(GroupConfig::three_members());
    let epoch = start_settled(&lab, &["ics-a", "ics-b", "ics-c"]);
    lab.host_death("ics-a");
    lab.wait_until(SETTLE, "ics-b alone hot", || lab.hot_members() == ["ics-b"]);
    let watch = lab.watch_hot();
    host_revival(&lab, "ics-a");
    lab.wait_role("ics-a", "SBS", SETTLE);
    wait_status_agrees(&lab, &["ics-a", "ics-b", "ics-c"], "ics-b");
    lab.observe(
        lab.config().timeout * 4,
        "ics-b stays hot after ics-a's return",
        || match lab.hot_members().as_slice() {
            [only] if only == "ics-b" => Ok(()),
            other => Err(format!("hot: {other:?}")),
        },
    );
    assert_eq!(lab.role("ics-b").unwrap().epoch, epoch + 1);
    let report = watch.stop();
    report.assert_never_two_hot();
    report.assert_never_hot("ics-a");
}

#[test]
fn s06_returning_member_takes_back_the_role_with_preemption() {
    if !require_root("s06_returning_member_takes_back_the_role_with_preemption") {
        return;
    }
    let mut config = GroupConfig::three_members();
    config.preempt = true;
    config.preempt_delay = Duration::from_millis(200);
    let lab = Lab::new(config);
    let epoch = start_settled(&lab, &["ics-a", "ics-b", "ics-c"]);
    lab.host_death("ics-a");
    lab.wait_until(SETTLE, "ics-b alone hot", || lab.hot_members() == ["ics-b"]);
    let watch = lab.watch_hot();
    host_revival(&lab, "ics-a");
    let took = lab.wait_until(SETTLE * 2, "ics-a to take the role back", || {
        lab.hot_members() == ["ics-a"]
    });
    println!("ics-a hot again {} ms after its restart", whole_ms(took));
    wait_status_agrees(&lab, &["ics-a", "ics-b", "ics-c"], "ics-a");
    let a = lab.role("ics-a").unwrap();
    assert!(a.epoch > epoch + 1, "a hand-over starts a new term: {a:?}");
    lab.wait_role("ics-b", "SBS", SETTLE);
    assert_eq!(role(&lab, "ics-c"), "SBS");
    let report = watch.stop();
    report.assert_never_two_hot();
    report.assert_never_hot("ics-c");
}

// 7. Priority 0: only by command.

#[test]
fn s07_priority_zero_member_never_becomes_hot_by_itself() {
    if !require_root("s07_priority_zero_member_never_becomes_hot_by_itself") {
        return;
    }
    let lab = Lab::new(GroupConfig::with_members(&[("ics-a", 100), ("ics-z", 0)]));
    start_settled(&lab, &["ics-a", "ics-z"]);
    let watch = lab.watch_hot();
    lab.kill9("ics-a");
    let period = lab.config().timeout * 6 + lab.config().election;
    lab.observe(
        period,
        "the priority-0 ics-z stays out of HS",
        || match role(&lab, "ics-z").as_str() {
            "HS" => Err("ics-z's role file says HS".into()),
            _ => Ok(()),
        },
    );
    let z = status(&lab, "ics-z");
    assert_ne!(z["state"], "HS", "{z:#}");
    assert!(z["hot"].is_null(), "nobody is hot: {z:#}");
    assert!(lab.is_running("ics-z"));
    watch.stop().assert_never_hot("ics-z");
}

// 8. Partition of both networks, then heal.

#[test]
fn s08_healed_partition_leaves_exactly_one_hot_member() {
    if !require_root("s08_healed_partition_leaves_exactly_one_hot_member") {
        return;
    }
    let lab = Lab::new(GroupConfig::with_members(&[("ics-a", 100), ("ics-b", 50)]));
    let epoch = start_settled(&lab, &["ics-a", "ics-b"]);
    lab.partition("ics-a", "ics-b", &Net::BOTH);
    let took = lab.wait_until(SETTLE, "ics-b to become hot on its side", || {
        lab.is_hot("ics-b")
    });
    println!(
        "partition: ics-b hot on its side after {} ms",
        whole_ms(took)
    );
    assert!(
        lab.is_hot("ics-a"),
        "ics-a keeps its side (it still reaches the target)"
    );
    let before = lab.hot_members();

    lab.heal_partitions();
    let took = lab.wait_until(SETTLE, "exactly one hot member after the heal", || {
        lab.hot_members().len() == 1
    });
    let config = lab.config();
    // After the heal, each side's next heartbeat arrives within one interval, and the loser of
    // the two-hot conflict steps down in the step that handles it; the timeout is slack for a
    // loaded machine and for the heartbeat after a lost one.
    let bound = config.interval + config.timeout;
    println!(
        "heal: hot before {before:?}, exactly one hot ({:?}) {} ms after the heal (bound {} ms)",
        lab.hot_members(),
        whole_ms(took),
        whole_ms(bound)
    );
    if took > bound {
        lab.fail(&format!(
            "two hot members {} ms after the heal (bound {} ms)",
            whole_ms(took),
            whole_ms(bound)
        ));
    }
    // Higher epoch stays: ics-b took over with epoch + 1.
    assert_eq!(lab.hot_members(), ["ics-b"]);
    assert_eq!(lab.role("ics-b").unwrap().epoch, epoch + 1);
    lab.wait_role("ics-a", "SBS", SETTLE);
    wait_status_agrees(&lab, &["ics-a", "ics-b"], "ics-b");
}

// 9. Random loss on every member's input: no failover.

#[test]
fn s09_five_percent_loss_causes_no_failover() {
    if !require_root("s09_five_percent_loss_causes_no_failover") {
        return;
    }
    // The loss hits everything the members receive, ping replies included. With a single target
    // two lost replies in a row (a 1-in-400 event per round, rounds every 100 ms) would rightly
    // send the hot member to CS; a target on each network makes a round fail only when both
    // replies are lost, so this scenario measures heartbeat loss, not the net check.
    let mut config = three_with_targets_on_both_networks();
    config.timeout = config.interval * 3;
    let lab = Lab::new(config);
    let epoch = start_settled(&lab, &["ics-a", "ics-b", "ics-c"]);
    let received_before = received_heartbeats(&lab);
    for m in lab.member_names() {
        lab.random_loss(&m, 5);
    }
    let watch = lab.watch_hot();
    let checks = lab.observe(
        Duration::from_secs(60),
        "ics-a stays hot in the same term under 5 % loss",
        || {
            let a = lab.role("ics-a");
            let hot = lab.hot_members();
            match a {
                Some(a) if a.epoch == epoch && hot == ["ics-a"] => Ok(()),
                a => Err(format!("hot: {hot:?}, ics-a's role file: {a:?}")),
            }
        },
    );
    println!("{checks} checks over 60 s");
    let a = status(&lab, "ics-a");
    assert_eq!(a["state"], "HS", "{a:#}");
    assert_eq!(a["epoch"], epoch, "{a:#}");
    for m in ["ics-b", "ics-c"] {
        let s = status(&lab, m);
        assert_eq!(s["state"], "SBS", "{s:#}");
        assert_eq!(s["hot"], "ics-a", "{s:#}");
    }
    let received_after = received_heartbeats(&lab);
    println!("heartbeats received before the loss {received_before:?}, after {received_after:?}");
    for (m, after) in &received_after {
        assert!(
            after > &received_before[m],
            "{m} received heartbeats during the loss"
        );
    }
    let report = watch.stop();
    report.assert_never_two_hot();
    report.assert_never_hot("ics-b");
    report.assert_never_hot("ics-c");
}

fn received_heartbeats(lab: &Lab) -> BTreeMap<String, f64> {
    lab.member_names()
        .into_iter()
        .map(|m| {
            let text = lab
                .metrics(&m)
                .unwrap_or_else(|e| lab.fail(&format!("/metrics of {m}: {e}")));
            let n = metrics::sum(&text, "rdg_heartbeats_received_total", &[]);
            (m, n)
        })
        .collect()
}

// 10. Hostile datagrams on the heartbeat port.

/// The group's HMAC key (64 hex digits: usable as raw bytes or as hex by the agent).
const KEY: &[u8] = b"7f3a9c0e5b1d2f4a6c8e0b2d4f6a8c0e1b3d5f7a9c2e4b6d8f0a1c3e5b7d9f2a";

/// A well-formed heartbeat of `group` in which `member` claims HS in `epoch` (a takeover if
/// anyone believed it).
fn forged(group: &str, member: &str, epoch: u64, network: u8) -> Message {
    Message {
        kind: MessageType::Heartbeat,
        group: group.into(),
        member: member.into(),
        state: State::HS,
        temporal: TemporalState::None,
        priority: 1000,
        epoch,
        incarnation: 0xdead_beef,
        sequence: 1_000_000,
        network,
        flags: Flags::NET_CHECK_OK,
        hot: member.into(),
        hot_heard_ago: None,
        content: None,
    }
}

/// One batch of rejected datagrams for network index `network`, with the reason each one must
/// be counted under.
fn hostile_datagrams(network: u8) -> Vec<(&'static str, Vec<u8>)> {
    let mut out = Vec::new();
    // Deterministic garbage (no magic).
    let mut x: u32 = 0x1234_5678;
    let garbage: Vec<u8> = (0..120)
        .map(|_| {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (x >> 24) as u8 | 0x80
        })
        .collect();
    out.push(("bad_magic", garbage));
    out.push(("too_short", b"RDG\x01".to_vec()));
    let signed = encode(&forged("e2e", "ics-c", 1000, network), Some(KEY)).unwrap();
    out.push(("truncated", signed[..signed.len() - 5].to_vec()));
    let mut oversized = signed.clone();
    oversized.resize(600, 0);
    out.push(("oversized", oversized));
    let mut version = signed.clone();
    version[3] = 99;
    out.push(("unsupported_version", version));
    out.push((
        "wrong_group",
        encode(&forged("other-group", "ics-c", 1000, network), Some(KEY)).unwrap(),
    ));
    out.push((
        "missing_mac",
        encode(&forged("e2e", "ics-c", 1000, network), None).unwrap(),
    ));
    out.push((
        "bad_mac",
        encode(
            &forged("e2e", "ics-c", 1000, network),
            Some(b"not the group key"),
        )
        .unwrap(),
    ));
    let mut flipped = signed;
    flipped[13 + 7] ^= 0x01; // the epoch's last byte: the MAC no longer matches
    out.push(("bad_mac", flipped));
    out
}

fn rejected(lab: &Lab, member: &str, reason: &str) -> f64 {
    let text = lab
        .metrics(member)
        .unwrap_or_else(|e| lab.fail(&format!("/metrics of {member}: {e}")));
    metrics::sum(&text, "rdg_datagrams_rejected_total", &[("reason", reason)])
}

#[test]
fn s10_hostile_datagrams_change_nothing_and_are_counted() {
    if !require_root("s10_hostile_datagrams_change_nothing_and_are_counted") {
        return;
    }
    let mut config = GroupConfig::three_members();
    config.auth_key = Some(KEY.to_vec());
    let lab = Lab::with_client(config);
    let epoch = start_settled(&lab, &["ics-a", "ics-b", "ics-c"]);
    let members = lab.member_names();
    let roles_before: Vec<_> = members
        .iter()
        .map(|m| (role(&lab, m), lab.role(m).unwrap().epoch))
        .collect();
    let reasons = [
        "bad_magic",
        "too_short",
        "truncated",
        "oversized",
        "unsupported_version",
        "wrong_group",
        "missing_mac",
        "bad_mac",
    ];
    let count = |m: &str| -> BTreeMap<&str, f64> {
        reasons.iter().map(|r| (*r, rejected(&lab, m, r))).collect()
    };
    let watch = lab.watch_hot();
    let port = lab.config().port;
    let client = lab.client_netns().to_string();
    let unchanged = || -> Result<(), String> {
        for (m, before) in members.iter().zip(&roles_before) {
            let now = (role(&lab, m), lab.role(m).map(|r| r.epoch).unwrap_or(0));
            if &now != before {
                return Err(format!("{m}: {before:?} -> {now:?}"));
            }
            if !lab.is_running(m) {
                return Err(format!("{m}'s agent exited: {:?}", lab.exit_status(m)));
            }
        }
        Ok(())
    };

    // Unicast to ics-b's address on the primary network.
    let b_before = count("ics-b");
    let datagrams: Vec<Vec<u8>> = hostile_datagrams(0).into_iter().map(|(_, d)| d).collect();
    let dest = SocketAddrV4::new(lab.address("ics-b", Net::Primary), port);
    for _ in 0..5 {
        send_udp(&client, Net::Primary.client(), dest, &datagrams).unwrap();
    }
    lab.wait_until(
        SETTLE,
        "ics-b to count the unicast datagrams it rejected",
        || {
            let now = count("ics-b");
            reasons.iter().all(|r| now[r] > b_before[r])
        },
    );
    println!(
        "ics-b rejected (unicast): before {b_before:?}, after {:?}",
        count("ics-b")
    );
    unchanged().unwrap_or_else(|e| lab.fail(&e));

    // Multicast on both networks: every member receives them.
    let before: Vec<_> = members.iter().map(|m| count(m)).collect();
    for (index, net) in Net::BOTH.iter().enumerate() {
        let datagrams: Vec<Vec<u8>> = hostile_datagrams(index as u8)
            .into_iter()
            .map(|(_, d)| d)
            .collect();
        let dest = SocketAddrV4::new(net.multicast(), port);
        for _ in 0..5 {
            send_udp(&client, net.client(), dest, &datagrams).unwrap();
        }
    }
    lab.wait_until(
        SETTLE,
        "every member to count the multicast datagrams it rejected",
        || {
            members.iter().zip(&before).all(|(m, before)| {
                let now = count(m);
                reasons.iter().all(|r| now[r] > before[r])
            })
        },
    );
    for (m, before) in members.iter().zip(&before) {
        println!(
            "{m} rejected (multicast): before {before:?}, after {:?}",
            count(m)
        );
        let text = lab.metrics(m).unwrap();
        for net in Net::BOTH {
            let n = metrics::sum(
                &text,
                "rdg_datagrams_rejected_total",
                &[("network", net.name()), ("reason", "bad_mac")],
            );
            assert!(n >= 5.0, "{m}: bad_mac on {}: {n}", net.name());
        }
    }

    // Nothing changed, during and well after.
    lab.observe(
        lab.config().timeout * 3,
        "roles and epochs unchanged by the hostile datagrams",
        unchanged,
    );
    for m in &members {
        assert_eq!(lab.healthz(m), Ok(200), "{m} /healthz");
        let s = status(&lab, m);
        assert_eq!(s["hot"], "ics-a", "{m}: {s:#}");
        assert_eq!(s["epoch"], epoch, "{m}: {s:#}");
        assert!(
            status_member(&s, "other-group").is_none(),
            "a foreign member appeared: {s:#}"
        );
    }
    let report = watch.stop();
    report.assert_never_two_hot();
    report.assert_never_hot("ics-b");
    report.assert_never_hot("ics-c");
}

#[test]
fn s11_keys_rotate_member_by_member_without_a_rejected_heartbeat() {
    if !require_root("s11_keys_rotate_member_by_member_without_a_rejected_heartbeat") {
        return;
    }
    let mut config = GroupConfig::three_members();
    config.auth_key = Some(KEY.to_vec());
    let lab = Lab::with_client(config);
    let epoch = start_settled(&lab, &["ics-a", "ics-b", "ics-c"]);
    let members = lab.member_names();
    let watch = lab.watch_hot();
    let old = lab.dir().join("group.key");
    let new = lab.dir().join("new.key");
    std::fs::write(
        &new,
        "c41f0e9d2b7a5e3c1f8d6b4a2e0c9f7d5b3a1e8c6f4d2b0a9e7c5f3d1b8a6e4c\n",
    )
    .unwrap();
    let sample = |m: &str, name: &str, labels: &[(&str, &str)]| {
        let text = lab
            .metrics(m)
            .unwrap_or_else(|e| lab.fail(&format!("/metrics of {m}: {e}")));
        metrics::sum(&text, name, labels)
    };
    let rejected = |m: &str| sample(m, "rdg_datagrams_rejected_total", &[]);
    let received = |m: &str| sample(m, "rdg_heartbeats_received_total", &[]);
    let rejected_before: Vec<f64> = members.iter().map(|m| rejected(m)).collect();

    // The documented rotation: the new key second everywhere, then first, then the old one out.
    let steps = [vec![&old, &new], vec![&new, &old], vec![&new]];
    for keys in &steps {
        let list = keys
            .iter()
            .map(|k| k.display().to_string())
            .collect::<Vec<_>>()
            .join(", ");
        for m in &members {
            let file = lab.config_file(m);
            let yaml = std::fs::read_to_string(file).unwrap();
            let rewritten: String = yaml
                .lines()
                .map(|l| match l.starts_with("auth:") {
                    true => format!("auth: {{keyFiles: [{list}]}}\n"),
                    false => format!("{l}\n"),
                })
                .collect();
            assert_ne!(yaml, rewritten, "{m}'s configuration has an auth line");
            std::fs::write(file, rewritten).unwrap();
            let reloads = sample(m, "rdg_config_reloads_total", &[("result", "ok")]);
            let pid = lab
                .pid(m)
                .unwrap_or_else(|| lab.fail(&format!("{m} is not running")));
            nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).unwrap();
            lab.wait_until(SETTLE, &format!("{m} to take up [{list}]"), || {
                sample(m, "rdg_config_reloads_total", &[("result", "ok")]) > reloads
                    && sample(m, "rdg_auth_keys", &[]) == keys.len() as f64
            });
            // A few heartbeats in this state before the next member moves.
            let heard = received(m);
            lab.wait_until(
                SETTLE,
                &format!("{m} to hear heartbeats with [{list}]"),
                || received(m) >= heard + 6.0,
            );
        }
        println!("every member took up [{list}]");
    }

    for (m, before) in members.iter().zip(&rejected_before) {
        assert_eq!(
            rejected(m),
            *before,
            "{m} rejected datagrams during the rotation"
        );
        let s = status(&lab, m);
        assert_eq!(s["hot"], "ics-a", "{m}: {s:#}");
        assert_eq!(
            s["epoch"], epoch,
            "{m}: no takeover during the rotation: {s:#}"
        );
    }
    let report = watch.stop();
    report.assert_never_two_hot();
    report.assert_never_hot("ics-b");
    report.assert_never_hot("ics-c");

    // The old key is really gone: a heartbeat signed with it is now a bad MAC.
    let bad_mac = |m: &str| sample(m, "rdg_datagrams_rejected_total", &[("reason", "bad_mac")]);
    let before = bad_mac("ics-b");
    let old_signed = encode(&forged("e2e", "ics-c", 1000, 0), Some(KEY)).unwrap();
    let dest = SocketAddrV4::new(lab.address("ics-b", Net::Primary), lab.config().port);
    let client = lab.client_netns().to_string();
    send_udp(&client, Net::Primary.client(), dest, &[old_signed]).unwrap();
    lab.wait_until(SETTLE, "ics-b to refuse the old key", || {
        bad_mac("ics-b") > before
    });
}

/// One member's `/status` `content` section.
fn content(lab: &Lab, member: &str) -> Value {
    status(lab, member)["content"].clone()
}

#[test]
fn s12_a_standby_with_another_carousel_reports_the_object_before_any_failover() {
    if !require_root("s12_a_standby_with_another_carousel_reports_the_object_before_any_failover") {
        return;
    }
    let notes = std::env::temp_dir().join(format!("rdg-e2e-content-notify-{}", std::process::id()));
    let _ = std::fs::remove_file(&notes);
    let mut config = GroupConfig::three_members();
    config.carousel = Some(rdg_e2e::Carousel::infocast());
    config.notify = Some(vec![
        "sh".into(),
        "-c".into(),
        format!("echo \"$*\" >> {}", notes.display()),
        "notify".into(),
    ]);
    let lab = Lab::with_client(config);
    // ics-c reads stb_config from its own copy, equal at first.
    let shared = lab.dir().join("stb_config");
    let own = lab.dir().join("stb_config.ics-c");
    std::fs::copy(&shared, &own).unwrap();
    let file = lab.config_file("ics-c");
    let yaml = std::fs::read_to_string(file).unwrap();
    let rewritten = yaml.replace(&shared.display().to_string(), &own.display().to_string());
    assert_ne!(
        yaml,
        rewritten,
        "ics-c's configuration names {}",
        shared.display()
    );
    std::fs::write(file, rewritten).unwrap();
    let epoch = start_settled(&lab, &["ics-a", "ics-b", "ics-c"]);
    let differs = |m: &str| {
        let text = lab
            .metrics(m)
            .unwrap_or_else(|e| lab.fail(&format!("/metrics of {m}: {e}")));
        metrics::sum(&text, "rdg_content_differs", &[])
    };
    let warnings = |m: &str| {
        std::fs::read_to_string(lab.log_file(m))
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("carousel differs"))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };

    // Equal carousels: both standbys compared with ics-a and found nothing.
    for m in ["ics-b", "ics-c"] {
        lab.wait_until(SETTLE, &format!("{m} to compare with ics-a"), || {
            content(&lab, m)["comparedWith"] == "ics-a"
        });
        let c = content(&lab, m);
        println!("{m}: {c}");
        assert_eq!(c["consistent"], true, "{m}: {c:#}");
        assert_eq!(differs(m), 0.0, "{m}");
        assert!(warnings(m).is_empty(), "{m}: {:?}", warnings(m));
    }
    assert_eq!(
        content(&lab, "ics-a")["digest"],
        content(&lab, "ics-c")["digest"]
    );
    let group = lab.rdg_status("ics-b").unwrap_or_else(|e| lab.fail(&e));
    assert_eq!(group["contentConsistent"], true, "{group:#}");

    // One object changes on ics-c only.
    let mut bytes = std::fs::read(&own).unwrap();
    bytes[0] ^= 0xff;
    std::fs::write(&own, bytes).unwrap();
    let changed = Instant::now();
    let took = lab.wait_until(SETTLE, "ics-c to report its different stb_config", || {
        content(&lab, "ics-c")["consistent"] == false
    });
    let heartbeats = took.as_millis() / lab.config().interval.as_millis();
    println!(
        "ics-c reported the difference {} ms (about {heartbeats} heartbeats) after the file changed",
        whole_ms(changed.elapsed())
    );
    let c = content(&lab, "ics-c");
    println!("ics-c: {c}");
    assert_eq!(
        c["differing"],
        serde_json::json!(["224.2.2.2:22222/stb_config"]),
        "{c:#}"
    );
    assert_eq!(differs("ics-c"), 1.0);
    let logged = warnings("ics-c");
    println!("ics-c logged: {logged:?}");
    assert_eq!(logged.len(), 1, "{logged:?}");
    assert!(logged[0].contains("stb_config"), "{logged:?}");
    lab.wait_until(SETTLE, "the content-mismatch notification", || {
        std::fs::read_to_string(&notes)
            .unwrap_or_default()
            .lines()
            .any(|l| l.starts_with("content-mismatch e2e ics-c") && l.contains("stb_config"))
    });
    // ics-b still carries ics-a's carousel; `rdg status` names the object on ics-c.
    assert_eq!(content(&lab, "ics-b")["consistent"], true);
    assert_eq!(differs("ics-b"), 0.0);
    let group = lab.rdg_status("ics-b").unwrap_or_else(|e| lab.fail(&e));
    println!("rdg status: {group}");
    assert_eq!(group["contentConsistent"], false, "{group:#}");
    let c_row = status_member(&group, "ics-c").expect("ics-c answered");
    assert_eq!(
        c_row["contentDiffers"],
        serde_json::json!(["224.2.2.2:22222/stb_config"]),
        "{group:#}"
    );

    // Put back: reported as consistent again, with a notification; no failover throughout.
    std::fs::copy(&shared, &own).unwrap();
    lab.wait_until(SETTLE, "ics-c to carry ics-a's carousel again", || {
        content(&lab, "ics-c")["consistent"] == true
    });
    assert_eq!(differs("ics-c"), 0.0);
    lab.wait_until(SETTLE, "the content-consistent notification", || {
        std::fs::read_to_string(&notes)
            .unwrap_or_default()
            .lines()
            .any(|l| l.starts_with("content-consistent e2e ics-c"))
    });
    assert_eq!(status(&lab, "ics-a")["epoch"], epoch, "no takeover");
    let _ = std::fs::remove_file(&notes);
}
