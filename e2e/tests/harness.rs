//! The harness itself, without agents: the topology carries unicast and multicast between the
//! namespaces, faults really cut traffic, and dropping a lab leaves nothing behind.

use rdg_e2e::netns::{in_netns, send_udp};
use rdg_e2e::{GroupConfig, Lab, Net, require_root, shell_output};
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::sync::mpsc;
use std::time::Duration;

/// Listens in `member`'s namespace on `group:port` (multicast, joined on its `net` interface)
/// or on its address, and returns how many of `count` datagrams sent by `send` arrived.
fn delivered(lab: &Lab, member: &str, net: Net, multicast: bool, send: impl FnOnce()) -> usize {
    let local = lab.address(member, net);
    let (tx, rx) = mpsc::channel();
    let netns = lab.netns(member).to_string();
    std::thread::scope(|scope| {
        let listener = scope.spawn(move || {
            in_netns(&netns, move || {
                let bind = if multicast { net.multicast() } else { local };
                let sock = UdpSocket::bind((bind, 9999)).expect("bind");
                if multicast {
                    sock.join_multicast_v4(&net.multicast(), &local)
                        .expect("join");
                }
                sock.set_read_timeout(Some(Duration::from_millis(300)))
                    .unwrap();
                tx.send(()).unwrap();
                let mut got = 0;
                let mut buf = [0u8; 64];
                while sock.recv(&mut buf).is_ok() {
                    got += 1;
                }
                got
            })
            .expect("listener thread")
        });
        rx.recv().unwrap();
        send();
        listener.join().unwrap()
    })
}

fn from_client(lab: &Lab, net: Net, dest: Ipv4Addr, count: usize) {
    let datagrams = vec![b"hello".to_vec(); count];
    send_udp(
        lab.client_netns(),
        net.client(),
        SocketAddrV4::new(dest, 9999),
        &datagrams,
    )
    .unwrap();
}

#[test]
fn topology_faults_and_clean_up() {
    if !require_root("topology_faults_and_clean_up") {
        return;
    }
    let id;
    {
        let lab = Lab::with_client(GroupConfig::three_members());
        id = lab
            .dir()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        for net in Net::BOTH {
            for multicast in [false, true] {
                let dest = if multicast {
                    net.multicast()
                } else {
                    lab.address("ics-b", net)
                };
                let got = delivered(&lab, "ics-b", net, multicast, || {
                    from_client(&lab, net, dest, 10)
                });
                assert_eq!(got, 10, "{net:?} multicast={multicast}");
            }
        }

        lab.link_down("ics-b", Net::Primary);
        let got = delivered(&lab, "ics-b", Net::Primary, true, || {
            from_client(&lab, Net::Primary, Net::Primary.multicast(), 10)
        });
        assert_eq!(got, 0, "link down");
        let got = delivered(&lab, "ics-b", Net::Secondary, true, || {
            from_client(&lab, Net::Secondary, Net::Secondary.multicast(), 10)
        });
        assert_eq!(got, 10, "the other network still works");
        lab.link_up("ics-b", Net::Primary);
        let got = delivered(&lab, "ics-b", Net::Primary, true, || {
            from_client(&lab, Net::Primary, Net::Primary.multicast(), 10)
        });
        assert_eq!(got, 10, "link up again");

        lab.random_loss("ics-b", 50);
        let got = delivered(&lab, "ics-b", Net::Primary, true, || {
            from_client(&lab, Net::Primary, Net::Primary.multicast(), 400)
        });
        assert!(
            (120..=280).contains(&got),
            "50 % loss delivered {got} of 400"
        );
        lab.clear_loss("ics-b");
        lab.clear_loss("ics-b");

        // A partition between ics-a and ics-b: ics-b hears nothing from ics-a, still the client.
        lab.partition("ics-a", "ics-b", &Net::BOTH);
        let a = lab.address("ics-a", Net::Primary);
        let got = delivered(&lab, "ics-b", Net::Primary, true, || {
            send_udp(
                lab.netns("ics-a"),
                a,
                SocketAddrV4::new(Net::Primary.multicast(), 9999),
                &[b"x".to_vec()],
            )
            .unwrap();
            from_client(&lab, Net::Primary, Net::Primary.multicast(), 1);
        });
        assert_eq!(got, 1, "only the client's datagram passes the partition");
        lab.heal_partitions();

        lab.isolate_from_targets("ics-c");
        lab.reconnect_targets("ics-c");

        // `ip netns exec` execs the command itself: signals reach it, not a wrapper.
        let targets = lab.targets_netns().to_string();
        let pid = lab.spawn_in(&targets, "sleeper", &["sleep", "987"], None);
        lab.wait_until(Duration::from_secs(2), "sleep to exec", || {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "sleep")
        });

        let out = shell_output("ip", &["netns", "list"]);
        assert!(out.contains(&format!("{id}-ics-a")), "{out}");
    }
    let out = shell_output("ip", &["-o", "link", "show"]) + &shell_output("ip", &["netns", "list"]);
    assert!(!out.contains(&id), "left behind: {out}");
    assert!(!std::env::temp_dir().join(&id).exists());
    assert!(
        !shell_output("ps", &["-eo", "args"]).contains("sleep 987"),
        "the helper process survived the lab"
    );
}

#[test]
fn lab_is_cleaned_up_after_a_panic() {
    if !require_root("lab_is_cleaned_up_after_a_panic") {
        return;
    }
    let result = std::panic::catch_unwind(|| {
        let lab = Lab::new(GroupConfig::with_members(&[("ics-a", 100)]));
        let id = lab
            .dir()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        std::fs::write(std::env::temp_dir().join("rdg-e2e-last-panic-lab"), &id).unwrap();
        lab.wait_until(
            Duration::from_millis(50),
            "something that never happens",
            || false,
        );
    });
    assert!(result.is_err());
    let id = std::fs::read_to_string(std::env::temp_dir().join("rdg-e2e-last-panic-lab")).unwrap();
    let out = shell_output("ip", &["-o", "link", "show"]) + &shell_output("ip", &["netns", "list"]);
    assert!(!out.contains(&id), "left behind: {out}");
}

#[test]
fn leftovers_of_a_crashed_run_are_swept() {
    if !require_root("leftovers_of_a_crashed_run_are_swept") {
        return;
    }
    // A pid that does not run: a namespace and a bridge "left" by its crashed test process.
    let pid = (4_000_000u32..)
        .find(|p| !std::path::Path::new(&format!("/proc/{p}")).exists())
        .unwrap();
    let mut digits = Vec::new();
    let mut n = pid;
    while n > 0 {
        digits.push(char::from_digit(n % 36, 36).unwrap());
        n /= 36;
    }
    let id = format!("rdgt{}-0", digits.iter().rev().collect::<String>());
    let netns = format!("{id}-ics-a");
    let bridge = format!("{id}bp");
    shell_output("ip", &["netns", "add", &netns]);
    shell_output("ip", &["link", "add", &bridge, "type", "bridge"]);
    drop(Lab::new(GroupConfig::with_members(&[("ics-a", 100)])));
    let out = shell_output("ip", &["-o", "link", "show"]) + &shell_output("ip", &["netns", "list"]);
    assert!(!out.contains(&id), "not swept: {out}");
}
