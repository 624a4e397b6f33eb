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
        .find(|a| a["local"] == VIP)
        .map(|a| a["label"].as_str().unwrap_or_default().to_string())
}

fn mac(lab: &Lab, member: &str) -> String {
    let out = shell_output(
        "ip",
        &[
            "-n",
            lab.netns(member),
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

/// The client's neighbour entry for the VIP (the MAC it sends to), if any.
fn client_neighbour(lab: &Lab) -> Option<String> {
    let out = shell_output(
        "ip",
        &["-n", lab.client_netns(), "-j", "neigh", "show", VIP],
    );
    let v: Value = serde_json::from_str(&out).ok()?;
    v.as_array()?
        .iter()
        .find_map(|n| n["lladdr"].as_str().map(str::to_string))
}

/// One ping from the client to the VIP (100 ms to answer).
fn client_ping(lab: &Lab) -> bool {
    std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            lab.client_netns(),
            "ping",
            "-c",
            "1",
            "-W",
            "0.1",
            VIP,
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn held(lab: &Lab, member: &str) -> bool {
    lab.status(member).expect("/status answers")["vips"][0]["held"] == true
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
    lab.sigcont("ics-a");
    let took = lab.wait_until(SETTLE, "ics-a drops the VIP after resuming", || {
        vip_label(&lab, "ics-a").is_none()
    });
    println!(
        "ics-a removed the VIP {} ms after SIGCONT",
        took.as_millis()
    );
    lab.wait_role("ics-a", "SBS", SETTLE);
    // ics-b's ARP probe found the VIP still answered by ics-a's frozen kernel, recognised the
    // MAC as a member's and took the VIP anyway.
    let log = std::fs::read_to_string(lab.log_file("ics-b")).unwrap();
    let leftover = log
        .lines()
        .find(|l| l.contains("ARP probe: the VIP is still on member"));
    assert!(leftover.is_some(), "{log}");
    println!("{}", leftover.unwrap());
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
    // Retries (every second) neither add it nor repeat the notification.
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(vip_label(&lab, "ics-a"), None);
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
        .filter(|l| l.contains("ARP probe: nobody else holds the VIP"))
        .collect();
    assert!(!costs.is_empty(), "{log}");
    println!("probe cost: {costs:?}");
    let _ = std::fs::remove_file(&notes);
}
