//! The carousel over real sockets on loopback (no root): a transmitter thread sends unicast to
//! receivers bound on 127.0.0.1, which reassemble and report like set-top boxes.

use rdg_agent::clock::monotonic_ms;
use rdg_agent::metrics::encode;
use rdg_agent::role_file::{self, RoleRecord};
use rdg_core::State;
use rdg_core::config::{Bootcast, CarouselObject, Channel, ObjectKind, Transmitter};
use rdg_infocast::frame::{Chunk, ObjectRef};
use rdg_infocast::{
    CarouselMetrics, GateMode, Receiver, ReceiverOptions, TransmitOptions, TransmitterThread,
};
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A fresh directory for one test.
fn tempdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rdg-carousel-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Polls `cond` every 5 ms until it holds or `within` passes; true when it held.
fn wait_for(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn receiver() -> Receiver {
    Receiver::start(ReceiverOptions {
        channel: "127.0.0.1:0".parse().unwrap(),
        interface: None,
    })
    .unwrap()
}

fn file_object(name: &str, path: &Path, crc: bool) -> CarouselObject {
    CarouselObject {
        name: name.into(),
        kind: ObjectKind::Generic,
        source: Some(path.to_string_lossy().into_owned()),
        bootcast: None,
        crc,
        repeat_delay: None,
    }
}

fn channel(to: SocketAddr, bit_rate: &str, objects: Vec<CarouselObject>) -> Channel {
    Channel {
        address: to.ip(),
        port: to.port(),
        ttl: 1,
        bit_rate: bit_rate.into(),
        payload_size: 1024,
        objects,
        burst_delay: None,
    }
}

fn transmit(channels: Vec<Channel>, gate: GateMode) -> TransmitterThread {
    TransmitterThread::spawn(
        Transmitter { channels },
        TransmitOptions {
            gate,
            interface: None,
            metrics: None,
        },
    )
    .unwrap()
}

fn completed(r: &Receiver, name: &str) -> u64 {
    r.report()
        .objects
        .iter()
        .find(|o| o.name == name)
        .map_or(0, |o| o.completed)
}

/// Pseudo-random but reproducible bytes.
fn bytes(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 8) as u8)
        .collect()
}

#[test]
fn round_trip_of_several_objects_on_two_channels() {
    let dir = tempdir("round-trip");
    let big = bytes(100_000, 1); // 98 chunks of 1024: more than one announcement period
    let small = b"hello, set-top box".to_vec();
    std::fs::write(dir.join("big"), &big).unwrap();
    std::fs::write(dir.join("small"), &small).unwrap();
    std::fs::write(dir.join("empty"), b"").unwrap();
    let boot = CarouselObject {
        name: "bootcast_1900".into(),
        kind: ObjectKind::Bootcastinfo,
        source: None,
        bootcast: Some(Bootcast {
            kernel_address: "224.2.2.3:22223".parse().unwrap(),
            kernel_name: "vmlinuz".into(),
            kernel_version: "2.6.28-7".into(),
            kernel_args: None,
            extra: Default::default(),
        }),
        crc: true,
        repeat_delay: None,
    };
    let (r1, r2) = (receiver(), receiver());
    let tx = transmit(
        vec![
            channel(
                r1.local_addr(),
                "20Mbit",
                vec![boot, file_object("big", &dir.join("big"), true)],
            ),
            channel(
                r2.local_addr(),
                "20Mbit",
                vec![
                    file_object("small", &dir.join("small"), false),
                    file_object("empty", &dir.join("empty"), true),
                ],
            ),
        ],
        GateMode::Always,
    );
    let all_done = || {
        ["bootcast_1900", "big"]
            .iter()
            .all(|n| completed(&r1, n) >= 2)
            && ["small", "empty"].iter().all(|n| completed(&r2, n) >= 2)
    };
    assert!(
        wait_for(Duration::from_secs(10), all_done),
        "not every object completed twice: {:#?} {:#?}",
        r1.report(),
        r2.report()
    );
    tx.stop();
    assert_eq!(&*r1.object_bytes("big").unwrap(), &big[..]);
    assert_eq!(&*r2.object_bytes("small").unwrap(), &small[..]);
    assert!(r2.object_bytes("empty").unwrap().is_empty());
    let descriptor = r1.object_bytes("bootcast_1900").unwrap();
    let text = std::str::from_utf8(&descriptor).unwrap();
    assert!(text.contains("kernelName=vmlinuz\n"), "{text}");
    for r in [r1.stop(), r2.stop()] {
        assert_eq!(r.malformed, 0);
        assert!(!r.interleaved);
        assert_eq!(r.senders, ["127.0.0.1"]);
        for o in &r.objects {
            assert_eq!(o.corrupt, 0, "{o:?}");
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn pacing_holds_2_mbit_per_second_over_5_seconds() {
    let dir = tempdir("pacing");
    std::fs::write(dir.join("obj"), bytes(50_000, 2)).unwrap();
    let r = receiver();
    let tx = transmit(
        vec![channel(
            r.local_addr(),
            "2Mbit",
            vec![file_object("obj", &dir.join("obj"), false)],
        )],
        GateMode::Always,
    );
    let started = Instant::now();
    // Wait for 5 s of traffic (the condition is the span of what arrived).
    assert!(wait_for(Duration::from_secs(10), || {
        r.report().elapsed_ms >= 5_000.0 + r.report().first_chunk_ms.unwrap_or(f64::MAX)
    }));
    tx.stop();
    let report = r.stop();
    let rate = report.bits_per_second;
    let error = (rate - 2e6).abs() / 2e6;
    assert!(
        error < 0.10,
        "measured {rate:.0} bit/s over {:?}: {:.1} % off 2 Mbit/s",
        started.elapsed(),
        error * 100.0
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

fn write_role(path: &Path, role: State, lease_ms_from_now: u64) {
    let lease = if role == State::HS {
        monotonic_ms() + lease_ms_from_now
    } else {
        0
    };
    role_file::write(
        path,
        &RoleRecord {
            member: "ics-a".into(),
            role,
            epoch: 1,
            lease_until_monotonic_ms: lease,
        },
    )
    .unwrap();
}

/// Waits until nothing has arrived for `quiet`, and returns the last arrival.
fn wait_until_silent(r: &Receiver, quiet: Duration) -> Option<Instant> {
    assert!(
        wait_for(Duration::from_secs(5), || r
            .last_datagram()
            .is_none_or(|t| t.elapsed() >= quiet)),
        "the transmitter did not stop"
    );
    r.last_datagram()
}

#[test]
fn gate_follows_the_role_file_and_the_lease() {
    // 2 Mbit/s, 1060-byte datagrams: one chunk every 4.2 ms.
    let chunk = Duration::from_micros(4_240);
    // Scheduling slack on a loaded 2-core machine (tests run in parallel).
    let slack = Duration::from_millis(100);
    let dir = tempdir("gate");
    std::fs::write(dir.join("obj"), bytes(20_000, 3)).unwrap();
    let role = dir.join("run/infocast.role");
    let r = receiver();
    let tx = transmit(
        vec![channel(
            r.local_addr(),
            "2Mbit",
            vec![file_object("obj", &dir.join("obj"), false)],
        )],
        GateMode::RoleFile {
            path: role.clone(),
            member: Some("ics-a".into()),
        },
    );

    // No role file, then standby: nothing may go out (observed over a window).
    std::thread::sleep(Duration::from_millis(200));
    std::fs::create_dir_all(role.parent().unwrap()).unwrap();
    write_role(&role, State::SBS, 0);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(r.report().datagrams, 0, "sent while not hot");

    // Hot with a lease: starts at once (inotify, no fast polling).
    let hot_at = Instant::now();
    write_role(&role, State::HS, 10_000);
    assert!(wait_for(Duration::from_secs(2), || r
        .last_datagram()
        .is_some()));
    let first = r.report().first_chunk_ms.unwrap();
    let start_delay = r.last_datagram().unwrap().duration_since(hot_at);
    assert!(
        start_delay < slack,
        "started {start_delay:?} after the file turned hot (first chunk at {first} ms)"
    );

    // Standby: stops within one chunk.
    let sbs_at = Instant::now();
    write_role(&role, State::SBS, 0);
    let last = wait_until_silent(&r, Duration::from_millis(300)).unwrap();
    let overrun = last.saturating_duration_since(sbs_at);
    eprintln!("gate: started {start_delay:?} after hot, last datagram {overrun:?} after standby");
    assert!(
        overrun <= chunk + slack,
        "kept sending {overrun:?} after the file turned standby"
    );

    // Hot again with a short lease that nobody renews: stops at the lease end by itself.
    let lease = Duration::from_millis(500);
    let rehot_at = Instant::now();
    write_role(&role, State::HS, lease.as_millis() as u64);
    let lease_end = rehot_at + lease;
    assert!(wait_for(Duration::from_secs(2), || r
        .last_datagram()
        .is_some_and(|t| t > rehot_at)));
    let last = wait_until_silent(&r, Duration::from_millis(300)).unwrap();
    assert!(
        last <= lease_end + chunk + slack,
        "kept sending {:?} after the lease ended",
        last.saturating_duration_since(lease_end)
    );
    assert!(
        last + Duration::from_millis(150) >= lease_end,
        "stopped {:?} before the lease ended",
        lease_end.saturating_duration_since(last)
    );

    tx.stop();
    let report = r.stop();
    assert_eq!(
        report.switch_count, 1,
        "a new session per opening: {report:#?}"
    );
    assert!(!report.interleaved);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_rewritten_source_is_completed_in_its_new_version() {
    let dir = tempdir("source-change");
    let path = dir.join("obj");
    let v1 = bytes(5_000, 4);
    let v2 = bytes(7_000, 5);
    std::fs::write(&path, &v1).unwrap();
    let r = receiver();
    let tx = transmit(
        vec![channel(
            r.local_addr(),
            "10Mbit",
            vec![file_object("obj", &path, true)],
        )],
        GateMode::Always,
    );
    assert!(wait_for(Duration::from_secs(5), || r
        .object_bytes("obj")
        .is_some_and(|b| *b == v1[..])));
    let version1 = r.report().objects[0].version;
    // Replace it the way deployments do (write beside, rename over).
    std::fs::write(dir.join("obj.new"), &v2).unwrap();
    std::fs::rename(dir.join("obj.new"), &path).unwrap();
    assert!(
        wait_for(Duration::from_secs(5), || r
            .object_bytes("obj")
            .is_some_and(|b| *b == v2[..])),
        "new version never completed: {:#?}",
        r.report()
    );
    tx.stop();
    let report = r.stop();
    assert_ne!(report.objects[0].version, version1);
    assert_eq!(report.objects[0].corrupt, 0);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn malformed_datagrams_are_counted_and_ignored() {
    let dir = tempdir("malformed");
    std::fs::write(dir.join("obj"), bytes(30_000, 6)).unwrap();
    let r = receiver();
    let tx = transmit(
        vec![channel(
            r.local_addr(),
            "10Mbit",
            vec![file_object("obj", &dir.join("obj"), true)],
        )],
        GateMode::Always,
    );
    assert!(wait_for(Duration::from_secs(5), || completed(&r, "obj") >= 1));

    let mut junk: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"GET / HTTP/1.1\r\n\r\n".to_vec(),
        vec![0xff; 1400],
    ];
    let mut valid = Vec::new();
    let object = ObjectRef {
        session: 7,
        object_id: 0,
        version: 1,
        chunk_count: 3,
    };
    Chunk {
        object,
        index: 0,
        payload: b"forged",
    }
    .encode(&mut valid);
    let mut flipped = valid.clone();
    flipped[40] ^= 0x10;
    junk.push(flipped);
    junk.push(valid[..valid.len() - 1].to_vec());
    // A well-formed frame claiming an absurd chunk count: refused, never allocated.
    let mut huge = Vec::new();
    Chunk {
        object: ObjectRef {
            chunk_count: u32::MAX,
            ..object
        },
        index: 5,
        payload: b"x",
    }
    .encode(&mut huge);
    junk.push(huge);
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    for j in &junk {
        sock.send_to(j, r.local_addr()).unwrap();
    }
    let n = junk.len() as u64;
    assert!(wait_for(Duration::from_secs(5), || r.report().malformed == n));
    let before = completed(&r, "obj");
    assert!(
        wait_for(Duration::from_secs(5), || completed(&r, "obj")
            >= before + 2),
        "stopped completing after malformed datagrams: {:#?}",
        r.report()
    );
    tx.stop();
    let report = r.stop();
    assert_eq!(report.malformed, n);
    assert_eq!(report.objects.len(), 1);
    assert_eq!(report.objects[0].corrupt, 0);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn registered_metrics_count_what_is_sent_and_follow_the_gate() {
    let dir = tempdir("metrics");
    std::fs::write(dir.join("obj"), bytes(20_000, 5)).unwrap();
    let role = dir.join("run/infocast.role");
    let r = receiver();
    let metrics = CarouselMetrics::default();
    let registry = metrics.registry();
    let to = r.local_addr();
    let tx = TransmitterThread::spawn(
        Transmitter {
            channels: vec![channel(
                to,
                "4Mbit",
                vec![file_object("obj", &dir.join("obj"), false)],
            )],
        },
        TransmitOptions {
            gate: GateMode::RoleFile {
                path: role.clone(),
                member: Some("ics-a".into()),
            },
            interface: None,
            metrics: Some(metrics.clone()),
        },
    )
    .unwrap();
    let text = || encode(&registry);
    let value = |name: &str| {
        let series = format!("{name}{{channel=\"{to}\"}} ");
        text()
            .lines()
            .find_map(|l| l.strip_prefix(series.as_str())?.parse::<f64>().ok())
    };
    // Gated off (no role file): registered at 0, nothing sent.
    assert!(
        wait_for(Duration::from_secs(2), || value("rdg_carousel_sending")
            == Some(0.0)),
        "{}",
        text()
    );
    assert_eq!(
        value("rdg_carousel_bytes_sent_total"),
        Some(0.0),
        "{}",
        text()
    );

    // Hot: sending, and every counter the registry encodes is the channel's own.
    std::fs::create_dir_all(role.parent().unwrap()).unwrap();
    write_role(&role, State::HS, 10_000);
    assert!(
        wait_for(Duration::from_secs(2), || value("rdg_carousel_sending")
            == Some(1.0)),
        "{}",
        text()
    );
    assert!(
        wait_for(Duration::from_secs(5), || value(
            "rdg_carousel_cycles_total"
        )
        .is_some_and(|c| c >= 2.0)),
        "{}",
        text()
    );
    let stats = &tx.stats()[0].1;
    let bytes_now = value("rdg_carousel_bytes_sent_total").unwrap();
    assert!(bytes_now > 20_000.0, "{}", text());
    assert!(stats.bytes.get() as f64 >= bytes_now);
    assert!(
        value("rdg_carousel_datagrams_sent_total").is_some_and(|d| d >= 20.0),
        "{}",
        text()
    );
    assert_eq!(
        value("rdg_carousel_send_errors_total"),
        Some(0.0),
        "{}",
        text()
    );
    assert!(wait_for(Duration::from_secs(2), || r.report().bytes > 0));

    // A lease that runs out closes the gate without a new role file: the gauge follows.
    write_role(&role, State::HS, 300);
    assert!(
        wait_for(Duration::from_secs(3), || value("rdg_carousel_sending")
            == Some(0.0)),
        "{}",
        text()
    );
    drop(tx);
    let _ = std::fs::remove_dir_all(&dir);
}
