//! Mailslots on NATS, against a real nats-server (JetStream, a store of its own) and real
//! separate writer and reader processes.

use std::time::{Duration, Instant};

use procwire_nats::mailslot::{
    AsyncNatsMailslot, AsyncNatsMailslotWriter, NatsMailslot, NatsMailslotError,
    NatsMailslotOptions, NatsMailslotWriter, NatsWriterOptions, ReadTimeout, HEADER_ROOM,
};
use procwire_testkit::nats::NatsServer;
use procwire_testkit::{helper, unique_name, Proc, Watchdog};

/// Message `i` of a run: its number, then a tail whose length varies, so that the sizes
/// `info()` reports differ from one message to the next.
fn message(i: usize) -> Vec<u8> {
    let mut m = format!("{i:06}:").into_bytes();
    m.extend(std::iter::repeat_n(b'x', i % 37));
    m
}

fn number(m: &[u8]) -> usize {
    std::str::from_utf8(&m[..6]).unwrap().parse().unwrap()
}

fn slot_url(server: &NatsServer, name: &str) -> String {
    format!("{}/mailslot/{name}", server.url())
}

fn env(key: &str) -> String {
    std::env::var(key).unwrap_or_else(|_| panic!("{key} is not set"))
}

fn env_usize(key: &str) -> usize {
    env(key).parse().unwrap()
}

/// The helper processes: `writer` (COUNT messages, creating the slot if needed),
/// `reader` (COUNT messages from FIRST, checking info() at CHECKS), `follower` (reads and
/// prints every message, for a test to kill), `broadcast-reader`.
#[test]
fn helper_process() {
    let Some(role) = procwire_testkit::helper_role() else {
        return;
    };
    let slot = env("SLOT");
    match role.as_str() {
        "writer" => {
            let writer = NatsWriterOptions::new()
                .timeout(Duration::from_secs(30))
                .open_or_create(&slot)
                .unwrap();
            let count = env_usize("COUNT");
            for i in 0..count {
                writer.write(&message(i)).unwrap();
                if i % 100 == 99 {
                    procwire_testkit::say(&format!("wrote {}", i + 1));
                }
            }
            procwire_testkit::say(&format!("done {count}"));
        }
        "reader" => {
            let reader = NatsMailslotOptions::new()
                .read_timeout(ReadTimeout::After(Duration::from_secs(30)))
                .create(&slot)
                .unwrap();
            let count = env_usize("COUNT");
            let checks: Vec<usize> = env("CHECKS")
                .split(',')
                .map(|c| c.parse().unwrap())
                .collect();
            for i in 0..count {
                if checks.contains(&i) {
                    let info = reader.info().unwrap();
                    assert_eq!(info.waiting, count - i, "waiting before message {i}");
                    assert_eq!(
                        info.next_size,
                        Some(message(i).len()),
                        "size of message {i}"
                    );
                    procwire_testkit::say(&format!("checked {i}: {} waiting", info.waiting));
                }
                let got = reader.read().unwrap();
                assert_eq!(got, message(i), "message {i} in order");
            }
            let info = reader.info().unwrap();
            assert_eq!((info.waiting, info.next_size), (0, None));
            procwire_testkit::say(&format!("read all {count}"));
        }
        "follower" => {
            let reader = NatsMailslotOptions::new()
                .read_timeout(ReadTimeout::After(Duration::from_secs(30)))
                .create(&slot)
                .unwrap();
            let count = env_usize("COUNT");
            loop {
                let got = reader.read().unwrap();
                let n = number(&got);
                assert_eq!(got, message(n));
                procwire_testkit::say(&format!("got {n}"));
                if n + 1 == count {
                    break;
                }
            }
            // Done: the last message is removed by the drop.
            drop(reader);
            procwire_testkit::say("follower done");
        }
        "broadcast-reader" => {
            let reader = NatsMailslotOptions::new()
                .read_timeout(ReadTimeout::After(Duration::from_secs(20)))
                .create(&slot)
                .unwrap();
            procwire_testkit::say("listening");
            for _ in 0..env_usize("COUNT") {
                let got = reader.read().unwrap();
                procwire_testkit::say(&format!("heard {}", String::from_utf8(got).unwrap()));
            }
        }
        other => panic!("unknown role {other}"),
    }
}

/// The numbers in the `got N` lines a follower printed (all of them, once it has exited).
fn got_numbers(lines: &[String]) -> Vec<usize> {
    lines
        .iter()
        .filter_map(|l| l.trim().strip_prefix("got "))
        .map(|n| n.parse().unwrap())
        .collect()
}

/// Reads a follower's lines until it prints `follower done` (within `limit`).
fn follow_to_the_end(p: &mut Proc, limit: Duration) -> Vec<String> {
    let deadline = Instant::now() + limit;
    let mut lines = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let Some(line) = p.line_timeout(left) else {
            panic!(
                "the follower did not finish within {limit:?}; last lines: {:?}",
                &lines[lines.len().saturating_sub(3)..]
            );
        };
        if line.is_empty() {
            panic!("the follower ended early: {}", p.stderr());
        }
        if line.contains("follower done") {
            return lines;
        }
        lines.push(line);
    }
}

#[test]
fn ten_thousand_written_while_no_reader_runs_are_read_in_order_with_exact_counts() {
    let _w = Watchdog::new(Duration::from_secs(300));
    let server = NatsServer::start();
    let slot = slot_url(&server, &unique_name("ten-k"));
    const COUNT: usize = 10_000;
    // No reader has ever run: the writer creates the slot.
    let mut writer = helper("writer", &[("SLOT", &slot), ("COUNT", &COUNT.to_string())]);
    writer.wait_for_within(&format!("done {COUNT}"), Duration::from_secs(200));
    assert!(writer
        .exit_within(Duration::from_secs(10))
        .is_some_and(|s| s.success()));
    let checks = "0,1,2,37,2500,5000,7777,9998,9999";
    let mut reader = helper(
        "reader",
        &[
            ("SLOT", &slot),
            ("COUNT", &COUNT.to_string()),
            ("CHECKS", checks),
        ],
    );
    reader.wait_for_within("checked 0: 10000 waiting", Duration::from_secs(30));
    reader.wait_for_within("checked 5000: 5000 waiting", Duration::from_secs(200));
    reader.wait_for_within("checked 9999: 1 waiting", Duration::from_secs(200));
    reader.wait_for_within(&format!("read all {COUNT}"), Duration::from_secs(30));
    assert!(reader
        .exit_within(Duration::from_secs(10))
        .is_some_and(|s| s.success()));
    let after = NatsMailslot::create(&slot).unwrap().info().unwrap();
    assert_eq!((after.waiting, after.next_size), (0, None));
}

#[test]
fn a_killed_reader_loses_nothing_and_only_its_last_message_comes_again() {
    let _w = Watchdog::new(Duration::from_secs(240));
    let server = NatsServer::start();
    let slot = slot_url(&server, &unique_name("killed"));
    const COUNT: usize = 1_500;
    let mut writer = helper("writer", &[("SLOT", &slot), ("COUNT", &COUNT.to_string())]);
    writer.wait_for_within(&format!("done {COUNT}"), Duration::from_secs(120));
    let vars = [("SLOT", slot.as_str()), ("COUNT", "1500")];
    let mut first = helper("follower", &vars);
    first.wait_for_within("got 300\n", Duration::from_secs(60));
    first.kill();
    // Its output thread may still hold lines it printed before the kill.
    std::thread::sleep(Duration::from_millis(300));
    let after = got_numbers(&first.drain());
    assert_eq!(after, (301..301 + after.len()).collect::<Vec<_>>());
    let last = after.last().copied().unwrap_or(300);
    assert!(
        last + 1 < COUNT,
        "the first reader was killed before the end"
    );
    let mut second = helper("follower", &vars);
    let lines = follow_to_the_end(&mut second, Duration::from_secs(120));
    let next = got_numbers(&lines);
    // At-least-once: the second reader starts with the last message the first one had
    // printed (handed out, not yet removed) or the one after it, and then has every
    // message, in order, once.
    let start = next[0];
    assert!(
        start == last || start == last + 1,
        "the first reader printed up to {last}; the second started at {start}"
    );
    assert_eq!(next, (start..COUNT).collect::<Vec<_>>());
    let info = NatsMailslot::create(&slot).unwrap().info().unwrap();
    assert_eq!(info.waiting, 0);
}

#[test]
fn the_server_restarts_mid_run_and_nothing_stored_is_lost() {
    let _w = Watchdog::new(Duration::from_secs(240));
    let mut server = NatsServer::start();
    let slot = slot_url(&server, &unique_name("restart"));
    const COUNT: usize = 3_000;
    drop(NatsMailslot::create(&slot).unwrap());
    let count = COUNT.to_string();
    let mut writer = helper("writer", &[("SLOT", &slot), ("COUNT", &count)]);
    let mut reader = helper("follower", &[("SLOT", &slot), ("COUNT", &count)]);
    writer.wait_for_within("wrote 1000\n", Duration::from_secs(120));
    server.restart();
    writer.wait_for_within("wrote 2000\n", Duration::from_secs(120));
    server.restart();
    writer.wait_for_within(&format!("done {COUNT}"), Duration::from_secs(120));
    let lines = follow_to_the_end(&mut reader, Duration::from_secs(120));
    // One reader that stayed up: every message once, in order, across both restarts (a
    // write in flight at a restart may be stored twice: the reader drops the copy).
    assert_eq!(got_numbers(&lines), (0..COUNT).collect::<Vec<_>>());
    let info = NatsMailslot::create(&slot).unwrap().info().unwrap();
    assert_eq!((info.waiting, info.next_size), (0, None));
}

#[test]
fn oversize_messages_are_refused_with_the_sizes_on_both_sides() {
    let _w = Watchdog::new(Duration::from_secs(60));
    let server = NatsServer::start();
    let slot = slot_url(&server, &unique_name("big"));
    let reader = NatsMailslotOptions::new()
        .max_message_size(100)
        .create(&slot)
        .unwrap();
    assert_eq!(reader.info().unwrap().max_message, 100);
    let writer = NatsMailslotWriter::open(&slot).unwrap();
    assert_eq!(writer.max_message_size(), 100);
    match writer.write(&[7; 101]) {
        Err(NatsMailslotError::MessageTooLarge { len, max, .. }) => {
            assert_eq!((len, max), (101, 100))
        }
        other => panic!("{other:?}"),
    }
    writer.write(&[7; 100]).unwrap();
    // Another NATS client: the stream refuses what does not fit even the header room,
    // and the reader drops (and counts) what slipped into it.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let stream = reader.as_async().stream_name().unwrap();
    rt.block_on(async {
        let client = async_nats::connect(server.url()).await.unwrap();
        let subject = format!(
            "procwire.mailslot.{}",
            stream.trim_start_matches("PROCWIRE_MAILSLOT_")
        );
        let ack = client
            .request(subject.clone(), vec![1u8; 100 + HEADER_ROOM + 1].into())
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&ack.payload).to_string();
        assert!(
            text.contains("10054") || text.contains("exceeds maximum"),
            "{text}"
        );
        let ack = client
            .request(subject, vec![2u8; 150].into())
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&ack.payload).to_string();
        assert!(text.contains("\"seq\""), "{text}");
    });
    assert_eq!(reader.info().unwrap().waiting, 2);
    assert_eq!(reader.read().unwrap(), vec![7; 100]);
    match reader.read_timeout(Duration::from_millis(300)) {
        Err(NatsMailslotError::Timeout { .. }) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(reader.dropped_oversize(), 1);
    assert_eq!(reader.info().unwrap().waiting, 0);
    // A buffer too small keeps the message next.
    writer.write(b"twelve bytes").unwrap();
    let mut small = [0u8; 5];
    match reader.read_into(&mut small) {
        Err(NatsMailslotError::BufferTooSmall { needed, given, .. }) => {
            assert_eq!((needed, given), (12, 5))
        }
        other => panic!("{other:?}"),
    }
    let mut buf = [0u8; 100];
    assert_eq!(reader.read_into(&mut buf).unwrap(), 12);
    assert_eq!(&buf[..12], b"twelve bytes");
    // A maximum over the server's max_payload is refused at create, with both numbers.
    let e = NatsMailslotOptions::new()
        .max_message_size(10 << 20)
        .create(&slot_url(&server, &unique_name("huge")))
        .unwrap_err();
    assert!(matches!(e, NatsMailslotError::NotPermitted { .. }), "{e}");
    assert!(e.to_string().contains("max_payload is 1048576"), "{e}");
    // The slot's maximum is fixed at creation.
    let e = NatsMailslotOptions::new()
        .max_message_size(200)
        .create(&slot)
        .unwrap_err();
    assert!(
        e.to_string().contains("maximum message size of 100 bytes"),
        "{e}"
    );
}

#[test]
fn reads_on_an_empty_slot_time_out_as_a_local_slot_does() {
    let _w = Watchdog::new(Duration::from_secs(60));
    let server = NatsServer::start();
    let slot = slot_url(&server, &unique_name("empty"));
    let reader = NatsMailslotOptions::new()
        .read_timeout(ReadTimeout::After(Duration::from_millis(400)))
        .create(&slot)
        .unwrap();
    let started = Instant::now();
    match reader.read() {
        Err(NatsMailslotError::Timeout { after, .. }) => {
            assert_eq!(after, Duration::from_millis(400))
        }
        other => panic!("{other:?}"),
    }
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(400), "{waited:?}");
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    let started = Instant::now();
    match reader.read_timeout(Duration::from_millis(200)) {
        Err(NatsMailslotError::Timeout { after, .. }) => {
            assert_eq!(after, Duration::from_millis(200))
        }
        other => panic!("{other:?}"),
    }
    assert!(started.elapsed() >= Duration::from_millis(200));
    reader.set_read_timeout(ReadTimeout::Immediate);
    assert_eq!(reader.info().unwrap().read_timeout, ReadTimeout::Immediate);
    match reader.read() {
        Err(NatsMailslotError::Timeout { after, .. }) => assert_eq!(after, Duration::ZERO),
        other => panic!("{other:?}"),
    }
    assert_eq!(reader.try_read().unwrap(), None);
    // A message that arrives while a read waits ends the wait.
    reader.set_read_timeout(ReadTimeout::Forever);
    let url = slot.clone();
    let late = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        NatsMailslotWriter::open(&url)
            .unwrap()
            .write(b"late")
            .unwrap();
    });
    let started = Instant::now();
    assert_eq!(reader.read().unwrap(), b"late");
    assert!(started.elapsed() >= Duration::from_millis(250));
    late.join().unwrap();
    // peek leaves the message next.
    NatsMailslotWriter::open(&slot)
        .unwrap()
        .write(b"next")
        .unwrap();
    assert_eq!(reader.peek().unwrap(), b"next");
    assert_eq!(reader.info().unwrap().waiting, 1);
    assert_eq!(reader.read().unwrap(), b"next");
    assert_eq!(reader.info().unwrap().waiting, 0);
}

/// A reader that only looks (`info`) while a flood of broadcasts comes in takes in at most
/// 65,536 of them (found in review: the queue grew with every look), and still reads the
/// first one first.
#[test]
fn a_flood_of_broadcasts_to_a_reader_that_only_looks_stays_bounded() {
    let _w = Watchdog::new(Duration::from_secs(120));
    let server = NatsServer::start();
    let broadcast = format!("{}/mailslot/*/{}", server.url(), unique_name("flood"));
    let reader = NatsMailslotOptions::new()
        .read_timeout(ReadTimeout::After(Duration::from_secs(10)))
        .create(&broadcast)
        .unwrap();
    let writer = NatsMailslotWriter::open(&broadcast).unwrap();
    let mut most = 0;
    for i in 0..70_000u32 {
        writer.write(i.to_string().as_bytes()).unwrap();
        if i % 1_000 == 999 {
            most = most.max(reader.info().unwrap().waiting);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while reader.info().unwrap().waiting < 65_536 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    most = most.max(reader.info().unwrap().waiting);
    assert_eq!(
        most, 65_536,
        "the reader took in more than its bound, or fewer"
    );
    assert_eq!(reader.read().unwrap(), b"0");
}

#[test]
fn a_broadcast_reaches_every_reader_listening_and_is_not_stored() {
    let _w = Watchdog::new(Duration::from_secs(60));
    let server = NatsServer::start();
    let name = unique_name("news");
    let broadcast = format!("{}/mailslot/*/{name}", server.url());
    let vars = [("SLOT", broadcast.as_str()), ("COUNT", "3")];
    let mut a = helper("broadcast-reader", &vars);
    let mut b = helper("broadcast-reader", &vars);
    a.wait_for_within("listening", Duration::from_secs(30));
    b.wait_for_within("listening", Duration::from_secs(30));
    let writer = NatsMailslotWriter::open(&broadcast).unwrap();
    assert_eq!(writer.max_message_size(), 1_048_576);
    for m in ["one", "two", "three"] {
        writer.write(m.as_bytes()).unwrap();
    }
    for p in [&mut a, &mut b] {
        for m in ["one", "two", "three"] {
            p.wait_for_within(&format!("heard {m}"), Duration::from_secs(20));
        }
        let status = p.exit_within(Duration::from_secs(10));
        assert!(
            status.is_some_and(|s| s.success()),
            "{status:?}: {}",
            p.stderr()
        );
    }
    // Nothing was stored: a reader that starts now hears nothing of it, and no stored
    // slot of that name was made.
    let late = NatsMailslotOptions::new()
        .read_timeout(ReadTimeout::After(Duration::from_millis(300)))
        .create(&broadcast)
        .unwrap();
    assert!(late.as_async().stream_name().is_none());
    assert_eq!(late.info().unwrap().waiting, 0);
    assert!(matches!(
        late.read(),
        Err(NatsMailslotError::Timeout { .. })
    ));
    let e = NatsMailslotWriter::open(&slot_url(&server, &name)).unwrap_err();
    assert!(matches!(e, NatsMailslotError::NotFound { .. }), "{e}");
}

#[test]
fn wrong_kinds_and_invalid_names_say_what_they_are() {
    let _w = Watchdog::new(Duration::from_secs(60));
    let server = NatsServer::start();
    let url = server.url();
    let cases: Vec<(String, &str)> = vec![
        (
            r"\\.\mailslot\Jobs".into(),
            "open it with procwire::mailslot",
        ),
        (format!("{url}/mailslot/a.b"), "only ASCII letters"),
        (format!("{url}/App/Service"), "remoting service URL"),
        (format!("{url}/pipe/Jobs"), "pipe name"),
        (format!("{url}/mailslot/"), "empty"),
    ];
    for (name, needle) in &cases {
        let e = NatsMailslotWriter::open(name).unwrap_err();
        assert!(e.to_string().contains(needle), "{name}: {e}");
        let e = NatsMailslot::create(name).unwrap_err();
        assert!(e.to_string().contains(needle), "{name}: {e}");
    }
    // A slot nobody created: the writer says how to make one.
    let never = slot_url(&server, &unique_name("never"));
    let e = NatsMailslotWriter::open(&never).unwrap_err();
    assert!(matches!(e, NatsMailslotError::NotFound { .. }), "{e}");
    assert!(e.to_string().contains("open_or_create"), "{e}");
    // A stream of the slot's name that is not a slot.
    let name = unique_name("foreign");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let client = async_nats::connect(&url).await.unwrap();
        let js = async_nats::jetstream::new(client);
        js.create_stream(async_nats::jetstream::stream::Config {
            name: format!("PROCWIRE_MAILSLOT_{name}"),
            subjects: vec![format!("elsewhere.{name}")],
            ..Default::default()
        })
        .await
        .unwrap();
    });
    let e = NatsMailslot::create(&slot_url(&server, &name)).unwrap_err();
    assert!(matches!(e, NatsMailslotError::WrongKind { .. }), "{e}");
    assert!(e.to_string().contains("not a procwire mailslot"), "{e}");
    // No server there.
    let e = NatsMailslot::create("nats://127.0.0.1:1/mailslot/Jobs").unwrap_err();
    assert!(matches!(e, NatsMailslotError::Connect { .. }), "{e}");
}

#[test]
fn the_async_api_writes_and_reads_on_the_callers_runtime() {
    let _w = Watchdog::new(Duration::from_secs(60));
    let server = NatsServer::start();
    let slot = slot_url(&server, &unique_name("async"));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let reader: AsyncNatsMailslot = NatsMailslotOptions::new()
            .create_async(&slot)
            .await
            .unwrap();
        let writer: AsyncNatsMailslotWriter =
            NatsWriterOptions::new().open_async(&slot).await.unwrap();
        let read = tokio::spawn({
            let reader = reader.clone();
            async move { reader.read().await.unwrap() }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        writer.write(b"first").await.unwrap();
        assert_eq!(read.await.unwrap(), b"first");
        writer.write(b"second").await.unwrap();
        let info = reader.info().await.unwrap();
        assert_eq!((info.waiting, info.next_size), (1, Some(6)));
        assert_eq!(reader.read().await.unwrap(), b"second");
        reader.close().await.unwrap();
        assert_eq!(reader.info().await.unwrap().waiting, 0);
        reader.remove().await.unwrap();
        let e = NatsWriterOptions::new()
            .open_async(&slot)
            .await
            .unwrap_err();
        assert!(matches!(e, NatsMailslotError::NotFound { .. }), "{e}");
    });
}

#[test]
fn public_types_are_send_sync_and_debug() {
    fn check<T: Send + Sync + std::fmt::Debug>() {}
    check::<NatsMailslot>();
    check::<NatsMailslotWriter>();
    check::<AsyncNatsMailslot>();
    check::<AsyncNatsMailslotWriter>();
    check::<NatsMailslotOptions>();
    check::<NatsWriterOptions>();
    check::<NatsMailslotError>();
}

#[test]
fn a_full_slot_makes_writes_wait_then_fail_with_the_message_kept_by_the_caller() {
    let _w = Watchdog::new(Duration::from_secs(60));
    let server = NatsServer::start();
    let slot = slot_url(&server, &unique_name("full"));
    let reader = NatsMailslotOptions::new()
        .max_message_size(100)
        .max_waiting(10)
        .create(&slot)
        .unwrap();
    let writer = NatsWriterOptions::new()
        .timeout(Duration::from_millis(500))
        .open(&slot)
        .unwrap();
    let mut stored = 0;
    // The 11th write finds the slot full.
    let started = loop {
        let started = Instant::now();
        match writer.write(&message(stored)) {
            Ok(()) => stored += 1,
            Err(NatsMailslotError::Full { waited, .. }) => {
                assert!(waited >= Duration::from_millis(500), "{waited:?}");
                break started;
            }
            Err(e) => panic!("{e}"),
        }
        assert!(stored < 100, "the slot never filled up");
    };
    assert!(started.elapsed() >= Duration::from_millis(500));
    assert_eq!(stored, 10);
    assert_eq!(reader.info().unwrap().waiting, stored);
    // Full means the new message is refused: the oldest is still there (a stream with a
    // byte limit would have dropped it on nats-server 2.9, see max_waiting).
    assert_eq!(reader.peek().unwrap(), message(0));
    // Room again once the reader takes one (removed when it comes back: the info).
    assert_eq!(reader.read().unwrap(), message(0));
    assert_eq!(reader.info().unwrap().waiting, stored - 1);
    writer.write(&[1; 100]).unwrap();
    assert_eq!(reader.info().unwrap().waiting, stored);
}

/// A NATS client in python3's standard library, from docs/protocol.md section 10.3 alone:
/// it writes one message to the slot (a JetStream publish), then reads the first message
/// stored (STREAM.MSG.GET) and removes it (STREAM.PURGE below the next), printing it.
const PYTHON_CLIENT: &str = r#"
import base64, json, socket, sys
port, name, message = int(sys.argv[1]), sys.argv[2], sys.argv[3].encode()
s = socket.create_connection(("127.0.0.1", port), timeout=10)
f = s.makefile("rb")
f.readline()  # INFO
s.sendall(b'CONNECT {"verbose":false,"headers":true}\r\nSUB _INBOX.py 1\r\n')
def request(subject, body):
    s.sendall(b"PUB %s _INBOX.py %d\r\n%s\r\n" % (subject.encode(), len(body), body))
    while True:
        line = f.readline()
        if line.startswith(b"PING"):
            s.sendall(b"PONG\r\n")
        elif line.startswith(b"MSG"):
            n = int(line.split()[-1])
            return json.loads(f.read(n + 2)[:-2])
ack = request("procwire.mailslot." + name, message)
assert ack["stream"] == "PROCWIRE_MAILSLOT_" + name and ack["seq"] > 0, ack
got = request("$JS.API.STREAM.MSG.GET.PROCWIRE_MAILSLOT_" + name,
              json.dumps({"seq": 1, "next_by_subj": "procwire.mailslot." + name}).encode())
seq = got["message"]["seq"]
data = base64.b64decode(got["message"].get("data", ""))
done = request("$JS.API.STREAM.PURGE.PROCWIRE_MAILSLOT_" + name,
               json.dumps({"seq": seq + 1}).encode())
assert done["success"], done
print("read", data.decode())
"#;

#[test]
fn a_python_client_written_from_the_protocol_page_writes_and_reads_a_slot() {
    let _w = Watchdog::new(Duration::from_secs(60));
    let server = NatsServer::start();
    let name = unique_name("py");
    let slot = slot_url(&server, &name);
    let reader = NatsMailslot::create(&slot).unwrap();
    let writer = NatsMailslotWriter::open(&slot).unwrap();
    writer.write(b"from procwire").unwrap();
    let mut cmd = std::process::Command::new("python3");
    cmd.args([
        "-c",
        PYTHON_CLIENT,
        &server.port().to_string(),
        &name,
        "from python",
    ]);
    let out = procwire_testkit::run(cmd, b"", Duration::from_secs(30));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Python took the first message stored (procwire's) and left its own.
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "read from procwire"
    );
    let info = reader.info().unwrap();
    assert_eq!((info.waiting, info.next_size), (1, Some(11)));
    assert_eq!(reader.read().unwrap(), b"from python");
    // An empty message is a message.
    writer.write(b"").unwrap();
    assert_eq!(reader.info().unwrap().next_size, Some(0));
    assert_eq!(reader.read().unwrap(), b"");
    assert_eq!(reader.info().unwrap().waiting, 0);
}

#[test]
fn stored_slots_can_be_listed_tested_for_and_removed() {
    use procwire_nats::mailslot::{exists, list, NatsOptions};
    let _w = Watchdog::new(Duration::from_secs(60));
    let server = NatsServer::start();
    let nats = NatsOptions::new();
    assert_eq!(list(&server.url(), &nats).unwrap(), Vec::<String>::new());
    let (a, b) = (unique_name("list-a"), unique_name("list-b"));
    let slot_a = NatsMailslot::create(&slot_url(&server, &a)).unwrap();
    let writer_a = NatsWriterOptions::new()
        .timeout(Duration::from_millis(500))
        .open(&slot_url(&server, &a))
        .unwrap();
    drop(
        NatsWriterOptions::new()
            .open_or_create(&slot_url(&server, &b))
            .unwrap(),
    );
    let mut both = vec![a.clone(), b.clone()];
    both.sort();
    assert_eq!(list(&server.url(), &nats).unwrap(), both);
    assert!(exists(&slot_url(&server, &a), &nats).unwrap());
    assert!(!exists(&slot_url(&server, "nobody"), &nats).unwrap());
    assert!(exists(&format!("{}/mailslot/*/{a}", server.url()), &nats).unwrap());
    slot_a.remove().unwrap();
    assert!(!exists(&slot_url(&server, &a), &nats).unwrap());
    // A writer of a removed slot is told so.
    let e = writer_a.write(b"to nobody").unwrap_err();
    assert!(matches!(e, NatsMailslotError::NotFound { .. }), "{e}");
    assert_eq!(list(&server.url(), &nats).unwrap(), vec![b]);
}

#[test]
fn calls_while_the_server_is_down_end_in_their_time_and_lose_nothing() {
    let _w = Watchdog::new(Duration::from_secs(90));
    let mut server = NatsServer::start();
    let slot = slot_url(&server, &unique_name("down"));
    let reader = NatsMailslot::create(&slot).unwrap();
    let writer = NatsWriterOptions::new()
        .timeout(Duration::from_secs(1))
        .open(&slot)
        .unwrap();
    writer.write(b"one").unwrap();
    writer.write(b"two").unwrap();
    assert_eq!(reader.read().unwrap(), b"one");
    server.kill();
    let started = Instant::now();
    let e = writer.write(b"three").unwrap_err();
    assert!(matches!(e, NatsMailslotError::Disconnected { .. }), "{e}");
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    // The reader cannot remove "one" while the server is down: it says so, in time.
    let started = Instant::now();
    let e = reader.read_timeout(Duration::from_secs(1)).unwrap_err();
    assert!(matches!(e, NatsMailslotError::Disconnected { .. }), "{e}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let started = Instant::now();
    drop(reader);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    server.restart();
    // At-least-once: "one" was handed out but never removed, so it comes again.
    let reader = NatsMailslotOptions::new()
        .read_timeout(ReadTimeout::After(Duration::from_secs(10)))
        .create(&slot)
        .unwrap();
    assert_eq!(reader.read().unwrap(), b"one");
    assert_eq!(reader.read().unwrap(), b"two");
    // The writer reconnects by itself (the client backs off up to 4 s between tries, so
    // a write with a 1 s timeout may fail a few times first).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match writer.write(b"four") {
            Ok(()) => break,
            Err(NatsMailslotError::Disconnected { .. }) if Instant::now() < deadline => {}
            Err(e) => panic!("{e}"),
        }
    }
    // A write that failed with Disconnected may still be stored: the client sends what
    // it buffered once it reconnects. So "three" may be there, and "four" more than once;
    // nothing else.
    let mut rest = Vec::new();
    while let Some(m) = reader.try_read().unwrap() {
        rest.push(String::from_utf8(m).unwrap());
    }
    let fours = rest.iter().filter(|m| *m == "four").count();
    assert!(fours >= 1, "{rest:?}");
    let expected: Vec<&str> = if rest[0] == "three" {
        std::iter::once("three")
            .chain(std::iter::repeat_n("four", fours))
            .collect()
    } else {
        std::iter::repeat_n("four", fours).collect()
    };
    assert_eq!(rest, expected);
}

#[test]
fn a_stored_slot_has_one_live_reader_at_a_time() {
    let _w = Watchdog::new(Duration::from_secs(60));
    let server = NatsServer::start();
    let slot = slot_url(&server, &unique_name("one-reader"));
    let vars = [("SLOT", slot.as_str()), ("COUNT", "1")];
    let mut first = helper("follower", &vars);
    // The follower waits for its one message: it is alive and answers.
    let started = Instant::now();
    let e = loop {
        match NatsMailslot::create(&slot) {
            Err(e) => break e,
            // Not started yet: this test's reader came first; let it go and try again.
            Ok(mine) => drop(mine),
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the follower never started"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(matches!(e, NatsMailslotError::AlreadyExists { .. }), "{e}");
    assert!(
        e.to_string().contains(&format!("pid {}", first.pid())),
        "{e}"
    );
    NatsMailslotWriter::open(&slot)
        .unwrap()
        .write(&message(0))
        .unwrap();
    first.wait_for_within("follower done", Duration::from_secs(30));
    assert!(first
        .exit_within(Duration::from_secs(10))
        .is_some_and(|s| s.success()));
    // Gone: the slot takes a new reader.
    let next = NatsMailslot::create(&slot).unwrap();
    assert_eq!(next.info().unwrap().waiting, 0);
    // Broadcast readers are many.
    let broadcast = format!("{}/mailslot/*/x", server.url());
    let _a = NatsMailslot::create(&broadcast).unwrap();
    let _b = NatsMailslot::create(&broadcast).unwrap();
}

#[test]
fn credentials_are_used_and_a_wrong_password_is_a_connect_error() {
    use procwire_nats::mailslot::NatsOptions;
    let _w = Watchdog::new(Duration::from_secs(60));
    let server = NatsServer::start_with_args(&["--user", "slots", "--pass", "s3cret"]);
    let slot = slot_url(&server, &unique_name("creds"));
    let wrong = NatsOptions::new().user_password("slots", "wrong");
    let e = NatsMailslotOptions::new()
        .nats(wrong)
        .create(&slot)
        .unwrap_err();
    assert!(matches!(e, NatsMailslotError::Connect { .. }), "{e}");
    assert!(
        e.to_string().to_lowercase().contains("authorization"),
        "{e}"
    );
    let right = NatsOptions::new().user_password("slots", "s3cret");
    let reader = NatsMailslotOptions::new()
        .nats(right.clone())
        .create(&slot)
        .unwrap();
    let writer = NatsWriterOptions::new().nats(right).open(&slot).unwrap();
    writer.write(b"signed in").unwrap();
    assert_eq!(reader.read().unwrap(), b"signed in");
}

#[test]
fn a_reader_follows_its_slot_when_the_stream_is_made_anew() {
    let _w = Watchdog::new(Duration::from_secs(60));
    let server = NatsServer::start();
    let name = unique_name("anew");
    let slot = slot_url(&server, &name);
    let reader = NatsMailslot::create(&slot).unwrap();
    let writer = NatsWriterOptions::new().open(&slot).unwrap();
    for m in [&b"one"[..], b"two", b"three"] {
        writer.write(m).unwrap();
    }
    for m in [&b"one"[..], b"two", b"three"] {
        assert_eq!(reader.read_timeout(Duration::from_secs(10)).unwrap(), m);
    }
    assert_eq!(reader.info().unwrap().waiting, 0);
    // A tool removes the stream under the reader; a writer makes the slot again.
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let raw = async_nats::connect(server.url()).await.unwrap();
            let subject = format!("$JS.API.STREAM.DELETE.PROCWIRE_MAILSLOT_{name}");
            let answer = raw.request(subject, "".into()).await.unwrap();
            let text = String::from_utf8_lossy(&answer.payload).to_string();
            assert!(text.contains("\"success\":true"), "{text}");
        });
    let writer = NatsWriterOptions::new().open_or_create(&slot).unwrap();
    writer.write(b"four").unwrap();
    writer.write(b"five").unwrap();
    // The new stream numbers its messages from 1, below the reader's place in the old one:
    // it counts them, and reads them, rather than remove them as read or wait above them.
    assert_eq!(reader.info().unwrap().waiting, 2);
    assert_eq!(
        reader.read_timeout(Duration::from_secs(10)).unwrap(),
        b"four"
    );
    assert_eq!(
        reader.read_timeout(Duration::from_secs(10)).unwrap(),
        b"five"
    );
    assert_eq!(reader.info().unwrap().waiting, 0);
}

/// Publishes `payload` on `subject` with message id `id` as any NATS client could, until
/// JetStream answers (it may still be starting); the answer's text.
fn publish_with_id(url: &str, subject: &str, id: &str, payload: &'static [u8]) -> String {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let client = async_nats::connect(url).await.unwrap();
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let mut headers = async_nats::HeaderMap::new();
                headers.insert("Nats-Msg-Id", id);
                let answer = tokio::time::timeout(
                    Duration::from_secs(2),
                    client.request_with_headers(subject.to_owned(), headers, payload.into()),
                )
                .await;
                if let Ok(Ok(answer)) = answer {
                    let text = String::from_utf8_lossy(&answer.payload).into_owned();
                    if text.contains("\"seq\"") {
                        return text;
                    }
                }
                assert!(Instant::now() < deadline, "JetStream did not store {id}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
}

#[test]
fn a_message_stored_again_across_a_server_restart_is_not_read_twice() {
    let _w = Watchdog::new(Duration::from_secs(120));
    let mut server = NatsServer::start();
    let name = unique_name("copy");
    let slot = slot_url(&server, &name);
    let subject = format!("procwire.mailslot.{name}");
    let reader = NatsMailslot::create(&slot).unwrap();
    publish_with_id(&server.url(), &subject, "writer-7", b"once");
    assert_eq!(
        reader.read_timeout(Duration::from_secs(10)).unwrap(),
        b"once"
    );
    // Coming back removes what was read; then the server restarts and a writer's next
    // try of the same message (the same id) arrives, as when the restart cut off its
    // acknowledgement.
    assert_eq!(reader.info().unwrap().waiting, 0);
    server.restart();
    let answer = publish_with_id(&server.url(), &subject, "writer-7", b"once");
    assert!(
        !answer.contains("\"duplicate\":true"),
        "this nats-server remembers removed messages' ids across a restart, so it never \
         stores the copy this test is about: {answer}"
    );
    // The reader drops the copy: info counts nothing, and the next read is the next write.
    assert_eq!(reader.info().unwrap().waiting, 0);
    publish_with_id(&server.url(), &subject, "writer-8", b"twice?");
    assert_eq!(
        reader.read_timeout(Duration::from_secs(10)).unwrap(),
        b"twice?"
    );
    // And a copy that comes before the reader looks is dropped by the read itself.
    assert_eq!(reader.info().unwrap().waiting, 0);
    server.restart();
    publish_with_id(&server.url(), &subject, "writer-8", b"twice?");
    publish_with_id(&server.url(), &subject, "writer-9", b"three");
    assert_eq!(
        reader.read_timeout(Duration::from_secs(10)).unwrap(),
        b"three"
    );
    assert_eq!(reader.info().unwrap().waiting, 0);
}
