//! The group's virtual IP, end to end: real agents in namespaces add and remove it with
//! netlink and announce it with gratuitous ARP; a client namespace on the primary network
//! pings it and must learn the new owner's MAC after a failover. Needs root (skips loudly
//! otherwise).

use rdg_e2e::{GroupConfig, Lab, Net, require_root, shell_output};
use serde_json::Value;
use std::time::Duration;

const SETTLE: Duration = Duration::from_secs(6);
const VIP: &str = "10.0.0.100";

fn config() -> GroupConfig {
    let mut c = GroupConfig::with_members(&[("ics-a", 100), ("ics-b", 50)]);
    c.vips = vec![format!("{VIP}/24")];
    c
}

/// Whether the VIP is on `member`'s primary interface, and with which label.
fn vip_label(lab: &Lab, member: &str) -> Option<String> {
    vip_label_of(lab, member, VIP)
}

/// Whether `vip` is on `member`'s primary interface, and with which label ("" for IPv6).
fn vip_label_of(lab: &Lab, member: &str, vip: &str) -> Option<String> {
    let out = shell_output(
        "ip",
        &[
            "-n",
            lab.netns(member),
            "-j",
            "addr",
            "show",
            "dev",
            Net::Primary.interface(),
        ],
    );
    let v: Value = serde_json::from_str(&out).expect("ip -j prints JSON");
    v[0]["addr_info"]
        .as_array()?
        .iter()
        .find(|a| a["local"] == vip)
        .map(|a| a["label"].as_str().unwrap_or_default().to_string())
}

fn mac(lab: &Lab, member: &str) -> String {
    lab.mac(member, Net::Primary)
}

/// The client's neighbour entry for the VIP (the MAC it sends to), if any.
fn client_neighbour(lab: &Lab) -> Option<String> {
    client_neighbour_of(lab, VIP)
}

/// The client's neighbour entry for `vip` (the MAC it sends to), if any.
fn client_neighbour_of(lab: &Lab, vip: &str) -> Option<String> {
    lab.client_neighbour(vip)
}

/// One ping from the client to the VIP (100 ms to answer).
fn client_ping(lab: &Lab) -> bool {
    client_ping_of(lab, VIP)
}

/// One ping from the client to `vip` (IPv4 or IPv6; 100 ms to answer).
fn client_ping_of(lab: &Lab, vip: &str) -> bool {
    lab.client_ping(vip)
}

fn held(lab: &Lab, member: &str) -> bool {
    lab.status(member).expect("/status answers")["vips"][0]["held"] == true
}

/// The lines of `member`'s agent log (every run).
fn log_lines(lab: &Lab, member: &str) -> Vec<String> {
    std::fs::read_to_string(lab.log_file(member))
        .expect("the agent log")
        .lines()
        .map(str::to_string)
        .collect()
}

/// Index of the first line at or after `from` containing `needle`.
fn line_index(lines: &[String], from: usize, needle: &str) -> Option<usize> {
    lines
        .iter()
        .skip(from)
        .position(|l| l.contains(needle))
        .map(|i| i + from)
}

/// `rdg_arp_probes_total` of the VIP with `verdict` on `member` (0 before the first).
fn probes(lab: &Lab, member: &str, verdict: &str) -> u64 {
    let metrics = lab.metrics(member).expect("/metrics answers");
    let prefix = format!("rdg_arp_probes_total{{vip=\"{VIP}/24\",verdict=\"{verdict}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map_or(0, |v| v.trim().parse().expect("a counter value"))
}

/// On a failover the VIP is added (and announced) before the ARP probe runs: in `member`'s
/// log, after its last change to HS, "VIP added" comes before the probe's verdict, and that
/// verdict is the "after adding" kind. (With the probe in front of the add, the verdict would
/// come first.) Returns the verdict line.
fn assert_added_before_probe(lab: &Lab, member: &str) -> String {
    let lines = log_lines(lab, member);
    let hot = lines
        .iter()
        .rposition(|l| l.contains("-> HS/"))
        .unwrap_or_else(|| panic!("{member} became hot: {lines:#?}"));
    let added = line_index(&lines, hot, "VIP added")
        .unwrap_or_else(|| panic!("{member} added the VIP: {lines:#?}"));
    let verdict = line_index(&lines, hot, "ARP probe ")
        .unwrap_or_else(|| panic!("{member} probed the VIP: {lines:#?}"));
    assert!(
        added < verdict,
        "the VIP is added before the probe's verdict: {:#?}",
        &lines[hot..]
    );
    assert!(
        lines[verdict].contains("ARP probe after adding"),
        "{}",
        lines[verdict]
    );
    lines[verdict].clone()
}

#[test]
fn vip_follows_the_hot_member_and_a_returning_host_does_not_keep_it() {
    if !require_root("vip_follows_the_hot_member_and_a_returning_host_does_not_keep_it") {
        return;
    }
    let lab = Lab::with_client(config());
    lab.start("ics-a");
    lab.wait_role("ics-a", "HS", SETTLE);
    lab.start("ics-b");
    lab.wait_role("ics-b", "SBS", SETTLE);
    lab.wait_until(SETTLE, "the VIP on ics-a, labelled", || {
        vip_label(&lab, "ics-a").as_deref() == Some("eth-p:rdg")
    });
    assert!(held(&lab, "ics-a"));
    assert_eq!(vip_label(&lab, "ics-b"), None, "a standby holds no VIP");
    assert!(!held(&lab, "ics-b"));
    lab.wait_until(SETTLE, "the client reaches the VIP", || client_ping(&lab));
    let (mac_a, mac_b) = (mac(&lab, "ics-a"), mac(&lab, "ics-b"));
    assert_eq!(client_neighbour(&lab).as_deref(), Some(mac_a.as_str()));
    let metrics = lab.metrics("ics-a").expect("/metrics answers");
    assert!(
        metrics.contains("rdg_garp_sent_total{vip=\"10.0.0.100/24\"}"),
        "{metrics}"
    );

    // Host death of the hot member: ics-b takes the VIP and announces it; the client's
    // neighbour entry moves to ics-b's MAC without waiting for its ARP cache to expire.
    lab.host_death("ics-a");
    let took = lab.wait_until(
        SETTLE,
        "the client's neighbour entry on ics-b's MAC",
        || client_neighbour(&lab).as_deref() == Some(mac_b.as_str()),
    );
    println!(
        "client sees ics-b's MAC {} ms after the host death",
        took.as_millis()
    );
    assert!(lab.is_hot("ics-b"));
    assert_eq!(vip_label(&lab, "ics-b").as_deref(), Some("eth-p:rdg"));
    lab.wait_until(SETTLE, "the client reaches the VIP on ics-b", || {
        client_ping(&lab)
    });
    // The takeover did not wait for the ARP probe: ics-b added the VIP first and probed after.
    lab.wait_until(SETTLE, "ics-b's probe after the takeover", || {
        probes(&lab, "ics-b", "free") >= 1
    });
    let verdict = assert_added_before_probe(&lab, "ics-b");
    assert!(verdict.contains("nobody else holds the VIP"), "{verdict}");
    // ics-a's cold start (it won the start-up election) probed first.
    let lines = log_lines(&lab, "ics-a");
    let probed = line_index(
        &lines,
        0,
        "ARP probe before adding: nobody else holds the VIP",
    );
    let added = line_index(&lines, 0, "VIP added");
    assert!(
        probed.is_some() && probed < added,
        "a cold start probes before adding: {lines:#?}"
    );

    // The dead host comes back: its VIP was left on its interface (kill -9); the agent removes
    // it at start, stays standby, and the client keeps talking to ics-b.
    assert!(
        vip_label(&lab, "ics-a").is_some(),
        "kill -9 leaves the VIP behind"
    );
    lab.link_up("ics-a", Net::Primary);
    lab.link_up("ics-a", Net::Secondary);
    lab.start("ics-a");
    lab.wait_role("ics-a", "SBS", SETTLE);
    lab.wait_until(SETTLE, "the leftover VIP gone from ics-a", || {
        vip_label(&lab, "ics-a").is_none()
    });
    assert!(lab.is_hot("ics-b"));
    assert!(client_ping(&lab));
    assert_eq!(client_neighbour(&lab).as_deref(), Some(mac_b.as_str()));
    let log = std::fs::read_to_string(lab.log_file("ics-a")).unwrap();
    assert!(log.contains("removed a VIP left on this host"), "{log}");
}

#[test]
fn a_frozen_hot_member_drops_the_vip_when_it_resumes() {
    if !require_root("a_frozen_hot_member_drops_the_vip_when_it_resumes") {
        return;
    }
    let lab = Lab::with_client(config());
    lab.start("ics-a");
    lab.wait_role("ics-a", "HS", SETTLE);
    lab.start("ics-b");
    lab.wait_role("ics-b", "SBS", SETTLE);
    lab.wait_until(SETTLE, "the VIP on ics-a", || {
        vip_label(&lab, "ics-a").is_some()
    });
    let mac_b = mac(&lab, "ics-b");
    lab.sigstop("ics-a");
    lab.wait_until(SETTLE, "ics-b hot with the VIP", || {
        lab.is_hot("ics-b") && vip_label(&lab, "ics-b").is_some()
    });
    // ics-b's probe after the add runs while ics-a is still frozen (its kernel answers).
    lab.wait_until(SETTLE, "ics-b's probe verdict: ics-a's leftover", || {
        probes(&lab, "ics-b", "member_leftover") >= 1
    });
    lab.sigcont("ics-a");
    let took = lab.wait_until(SETTLE, "ics-a drops the VIP after resuming", || {
        vip_label(&lab, "ics-a").is_none()
    });
    println!(
        "ics-a removed the VIP {} ms after SIGCONT",
        took.as_millis()
    );
    lab.wait_role("ics-a", "SBS", SETTLE);
    // ics-b added the VIP at once; its ARP probe afterwards found the VIP still answered by
    // ics-a's frozen kernel, recognised the MAC as a member's and kept the VIP.
    let verdict = assert_added_before_probe(&lab, "ics-b");
    assert!(
        verdict.contains("the VIP is still on member 10.0.0.11's host"),
        "{verdict}"
    );
    println!("{verdict}");
    assert_eq!(probes(&lab, "ics-b", "foreign"), 0);
    // While ics-a was frozen its kernel still held the VIP (nothing can remove an address from
    // a stopped process's host); now only ics-b answers for it.
    lab.wait_until(SETTLE, "the client talking to the VIP on ics-b", || {
        client_ping(&lab) && client_neighbour(&lab).as_deref() == Some(mac_b.as_str())
    });
    assert!(lab.is_hot("ics-b"));
    assert!(vip_label(&lab, "ics-a").is_none());
}

/// Adds (`add`) or removes the VIP on the client's primary interface: a foreign host holding it.
fn client_holds_vip(lab: &Lab, add: bool) {
    let cidr = format!("{VIP}/24");
    shell_output(
        "ip",
        &[
            "-n",
            lab.client_netns(),
            "addr",
            if add { "add" } else { "del" },
            &cidr,
            "dev",
            Net::Primary.interface(),
        ],
    );
}

fn client_mac(lab: &Lab) -> String {
    let out = shell_output(
        "ip",
        &[
            "-n",
            lab.client_netns(),
            "-j",
            "link",
            "show",
            "dev",
            Net::Primary.interface(),
        ],
    );
    let v: Value = serde_json::from_str(&out).expect("ip -j prints JSON");
    v[0]["address"].as_str().expect("a MAC").to_string()
}

#[test]
fn a_vip_held_by_a_foreign_host_is_not_taken_until_it_is_free() {
    if !require_root("a_vip_held_by_a_foreign_host_is_not_taken_until_it_is_free") {
        return;
    }
    let notes = std::env::temp_dir().join(format!("rdg-e2e-vip-notify-{}", std::process::id()));
    let _ = std::fs::remove_file(&notes);
    let mut c = config();
    c.notify = Some(vec![
        "sh".into(),
        "-c".into(),
        format!("echo \"$*\" >> {}", notes.display()),
        "notify".into(),
    ]);
    let lab = Lab::with_client(c);
    // The client (no member of the group) holds the VIP before the group starts.
    client_holds_vip(&lab, true);
    let foreign = client_mac(&lab);
    lab.start("ics-a");
    lab.wait_role("ics-a", "HS", SETTLE);
    let error = |lab: &Lab| {
        lab.status("ics-a").expect("/status answers")["vips"][0]["error"]
            .as_str()
            .map(str::to_string)
    };
    lab.wait_until(SETTLE, "the VIP failure in ics-a's /status", || {
        error(&lab).is_some()
    });
    let why = error(&lab).unwrap();
    assert!(
        why.contains(&format!("{VIP} is in use by {foreign}; not taking it")),
        "{why}"
    );
    assert!(!held(&lab, "ics-a"));
    assert_eq!(
        vip_label(&lab, "ics-a"),
        None,
        "the hot member did not add it"
    );
    assert_eq!(
        lab.healthz("ics-a"),
        Ok(503),
        "hot without its VIP is not healthy"
    );
    lab.wait_until(SETTLE, "a vip-failed notification naming the MAC", || {
        std::fs::read_to_string(&notes).is_ok_and(|n| {
            n.lines()
                .any(|l| l.starts_with("vip-failed") && l.contains(&foreign))
        })
    });
    // Retries (every second, probe first) neither add it nor repeat the notification.
    lab.wait_until(SETTLE, "two more probes finding the foreign host", || {
        probes(&lab, "ics-a", "foreign") >= 3
    });
    assert_eq!(vip_label(&lab, "ics-a"), None);
    let lines = log_lines(&lab, "ics-a");
    assert_eq!(
        line_index(&lines, 0, "VIP added"),
        None,
        "a cold start probes before adding: {lines:#?}"
    );
    let n = std::fs::read_to_string(&notes).unwrap();
    assert_eq!(
        n.lines().filter(|l| l.starts_with("vip-failed")).count(),
        1,
        "{n}"
    );

    // The foreign host lets go: the next retry probes, finds it free and takes it.
    client_holds_vip(&lab, false);
    let took = lab.wait_until(SETTLE, "ics-a takes the VIP once it is free", || {
        vip_label(&lab, "ics-a").is_some()
    });
    println!(
        "ics-a took the VIP {} ms after the client released it",
        took.as_millis()
    );
    assert!(took < Duration::from_secs(3), "{took:?}");
    lab.wait_until(SETTLE, "ics-a healthy", || {
        held(&lab, "ics-a") && lab.healthz("ics-a") == Ok(200)
    });
    assert_eq!(error(&lab), None);
    lab.wait_until(SETTLE, "the client reaches the VIP on ics-a", || {
        client_ping(&lab)
    });
    let log = std::fs::read_to_string(lab.log_file("ics-a")).unwrap();
    let costs: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("ARP probe before adding: nobody else holds the VIP"))
        .collect();
    assert!(!costs.is_empty(), "{log}");
    println!("probe cost: {costs:?}");
    let _ = std::fs::remove_file(&notes);
}

/// A notify command that appends every notification to a fresh file; returns the command and
/// the file.
fn notes_file(test: &str) -> (Vec<String>, std::path::PathBuf) {
    let notes = std::env::temp_dir().join(format!("rdg-e2e-{test}-{}", std::process::id()));
    let _ = std::fs::remove_file(&notes);
    let command = vec![
        "sh".into(),
        "-c".into(),
        format!("echo \"$*\" >> {}", notes.display()),
        "notify".into(),
    ];
    (command, notes)
}

fn vip_failed_lines(notes: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(notes)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("vip-failed"))
        .map(str::to_string)
        .collect()
}

#[test]
fn a_failover_takes_the_vip_at_once_and_gives_it_back_when_a_foreign_host_answers() {
    if !require_root(
        "a_failover_takes_the_vip_at_once_and_gives_it_back_when_a_foreign_host_answers",
    ) {
        return;
    }
    let (notify, notes) = notes_file("vip-failover-conflict");
    let mut c = config();
    c.notify = Some(notify);
    let lab = Lab::with_client(c);
    lab.start("ics-a");
    lab.wait_role("ics-a", "HS", SETTLE);
    lab.start("ics-b");
    lab.wait_role("ics-b", "SBS", SETTLE);
    lab.wait_until(SETTLE, "the VIP on ics-a", || {
        vip_label(&lab, "ics-a").is_some()
    });
    // A foreign host (the client) puts the VIP on its interface too, then the hot member dies.
    client_holds_vip(&lab, true);
    let foreign = client_mac(&lab);
    lab.host_death("ics-a");
    lab.wait_role("ics-b", "HS", SETTLE);
    // ics-b added the VIP at once (no probe in front of the takeover); the probe afterwards
    // saw the client's answer next to its own kernel's and gave the VIP back.
    let error = |lab: &Lab| {
        lab.status("ics-b").expect("/status answers")["vips"][0]["error"]
            .as_str()
            .map(str::to_string)
    };
    lab.wait_until(SETTLE, "the VIP failure in ics-b's /status", || {
        error(&lab).is_some()
    });
    let why = error(&lab).unwrap();
    assert!(
        why.contains(&format!("{VIP} is in use by {foreign}; not taking it")),
        "{why}"
    );
    let verdict = assert_added_before_probe(&lab, "ics-b");
    assert!(verdict.contains("ARP probe after adding"), "{verdict}");
    let lines = log_lines(&lab, "ics-b");
    assert!(
        lines.iter().any(|l| l.contains("VIP removed again")),
        "{lines:#?}"
    );
    assert!(!held(&lab, "ics-b"));
    assert_eq!(vip_label(&lab, "ics-b"), None, "given back");
    assert_eq!(lab.healthz("ics-b"), Ok(503));
    lab.wait_until(SETTLE, "a vip-failed notification naming the MAC", || {
        vip_failed_lines(&notes)
            .iter()
            .any(|l| l.contains(&foreign))
    });
    // Retries probe first: they neither add it nor notify again.
    lab.wait_until(SETTLE, "two retries finding the foreign host", || {
        probes(&lab, "ics-b", "foreign") >= 3
    });
    assert_eq!(vip_label(&lab, "ics-b"), None);
    assert_eq!(
        vip_failed_lines(&notes).len(),
        1,
        "{:?}",
        vip_failed_lines(&notes)
    );

    // The client lets go: the next retry finds it free and ics-b takes it.
    client_holds_vip(&lab, false);
    lab.wait_until(SETTLE, "ics-b takes the VIP once it is free", || {
        vip_label(&lab, "ics-b").is_some()
    });
    lab.wait_until(SETTLE, "ics-b healthy", || {
        held(&lab, "ics-b") && lab.healthz("ics-b") == Ok(200)
    });
    assert_eq!(error(&lab), None);
    let mac_b = mac(&lab, "ics-b");
    lab.wait_until(SETTLE, "the client talking to the VIP on ics-b", || {
        client_ping(&lab) && client_neighbour(&lab).as_deref() == Some(mac_b.as_str())
    });
    let _ = std::fs::remove_file(&notes);
}

const VIP6: &str = "fd00:10::100";
const CLIENT6: &str = "fd00:10::50/64";

#[test]
fn an_ipv6_vip_follows_the_hot_member_with_unsolicited_neighbour_advertisements() {
    if !require_root("an_ipv6_vip_follows_the_hot_member_with_unsolicited_neighbour_advertisements")
    {
        return;
    }
    let mut c = GroupConfig::with_members(&[("ics-a", 100), ("ics-b", 50)]);
    c.vips = vec![format!("{VIP6}/64")];
    let lab = Lab::with_client(c);
    // The client gets an address in the VIP's prefix (the members need none: the VIP's
    // prefix route is enough for their replies).
    shell_output(
        "ip",
        &[
            "-n",
            lab.client_netns(),
            "addr",
            "add",
            CLIENT6,
            "dev",
            Net::Primary.interface(),
            "nodad",
        ],
    );
    lab.start("ics-a");
    lab.wait_role("ics-a", "HS", SETTLE);
    lab.start("ics-b");
    lab.wait_role("ics-b", "SBS", SETTLE);
    lab.wait_until(SETTLE, "the IPv6 VIP on ics-a", || {
        vip_label_of(&lab, "ics-a", VIP6).is_some()
    });
    assert!(held(&lab, "ics-a"));
    assert_eq!(vip_label_of(&lab, "ics-b", VIP6), None);
    lab.wait_until(SETTLE, "the client reaches the IPv6 VIP", || {
        client_ping_of(&lab, VIP6)
    });
    let (mac_a, mac_b) = (mac(&lab, "ics-a"), mac(&lab, "ics-b"));
    assert_eq!(
        client_neighbour_of(&lab, VIP6).as_deref(),
        Some(mac_a.as_str())
    );
    let metrics = lab.metrics("ics-a").expect("/metrics answers");
    assert!(
        metrics.contains(&format!("rdg_garp_sent_total{{vip=\"{VIP6}/64\"}}")),
        "{metrics}"
    );

    // Host death of the hot member: the unsolicited NA (override flag) moves the client's
    // neighbour entry to ics-b's MAC.
    lab.host_death("ics-a");
    let took = lab.wait_until(
        SETTLE,
        "the client's IPv6 neighbour entry on ics-b's MAC",
        || client_neighbour_of(&lab, VIP6).as_deref() == Some(mac_b.as_str()),
    );
    println!(
        "client sees ics-b's MAC for {VIP6} {} ms after the host death",
        took.as_millis()
    );
    assert!(lab.is_hot("ics-b"));
    assert!(held(&lab, "ics-b"));
    lab.wait_until(SETTLE, "the client reaches the IPv6 VIP on ics-b", || {
        client_ping_of(&lab, VIP6)
    });
    // No ARP probe for IPv6 VIPs.
    let lines = log_lines(&lab, "ics-b");
    assert_eq!(line_index(&lines, 0, "ARP probe"), None, "{lines:#?}");

    // The dead host comes back: the agent removes the VIP its kill -9 left behind and stays
    // standby; the client keeps talking to ics-b.
    assert!(
        vip_label_of(&lab, "ics-a", VIP6).is_some(),
        "kill -9 leaves the VIP behind"
    );
    lab.link_up("ics-a", Net::Primary);
    lab.link_up("ics-a", Net::Secondary);
    lab.start("ics-a");
    lab.wait_role("ics-a", "SBS", SETTLE);
    lab.wait_until(SETTLE, "the leftover IPv6 VIP gone from ics-a", || {
        vip_label_of(&lab, "ics-a", VIP6).is_none()
    });
    assert!(lab.is_hot("ics-b"));
    assert!(client_ping_of(&lab, VIP6));
    assert_eq!(
        client_neighbour_of(&lab, VIP6).as_deref(),
        Some(mac_b.as_str())
    );
}
