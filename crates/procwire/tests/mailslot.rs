//! Mailslots across real processes: writer processes (this test binary, run again with a
//! role), Python, and writers and readers on UDP.

use std::net::UdpSocket;
use std::process::Command;
use std::time::{Duration, Instant};

use procwire::mailslot::{
    MailslotError, MailslotOptions, MailslotServer, MailslotWriter, ReadTimeout, WriterOptions,
};
use procwire_testkit::{helper_command, helper_role, run, unique_name, Watchdog};

/// The variable that names a helper's slot.
const SLOT: &str = "PROCWIRE_TEST_SLOT";
/// The variable that tells a writer its id and how many messages to write (`ID:COUNT`).
const WRITES: &str = "PROCWIRE_TEST_WRITES";

/// A writer process that writes `count` messages `w{id}:{seq}` into `slot`.
fn writer(slot: &str, id: &str, count: usize) -> Command {
    let writes = format!("{id}:{count}");
    helper_command(
        std::env::current_exe().unwrap(),
        "writer",
        &[(SLOT, slot), (WRITES, &writes)],
    )
}

/// Not a test of its own: the body of the helper processes. Without a role it does
/// nothing.
#[test]
fn helper_process() {
    let Some(role) = helper_role() else {
        return;
    };
    let slot = std::env::var(SLOT).unwrap();
    match role.as_str() {
        "writer" => {
            let writes = std::env::var(WRITES).unwrap();
            let (id, count) = writes.split_once(':').unwrap();
            let count: usize = count.parse().unwrap();
            let writer = MailslotWriter::open(slot.as_str()).unwrap();
            for seq in 0..count {
                writer.write(format!("w{id}:{seq}").as_bytes()).unwrap();
            }
        }
        other => panic!("unknown role {other}"),
    }
}

#[test]
fn eight_writer_processes_deliver_every_message_once_in_order_with_exact_counts() {
    let _wd = Watchdog::new(Duration::from_secs(120));
    const WRITERS: usize = 8;
    const EACH: usize = 10_000;
    let name = unique_name("eight");
    let slot = MailslotOptions::new()
        .read_timeout(ReadTimeout::Immediate)
        .create(name.as_str())
        .unwrap();
    assert_eq!(slot.info().unwrap().waiting, 0);

    // A first step with one writer: counts are exact as soon as its writes returned.
    let out = run(writer(&name, "x", 5), b"", Duration::from_secs(30));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let info = slot.info().unwrap();
    assert_eq!(info.waiting, 5);
    assert_eq!(info.next_size, Some("wx:0".len()));
    for seq in 0..5 {
        assert_eq!(slot.read().unwrap(), format!("wx:{seq}").as_bytes());
        assert_eq!(slot.info().unwrap().waiting, 4 - seq);
    }
    assert!(matches!(slot.read(), Err(MailslotError::Timeout { .. })));

    let writers: Vec<_> = (0..WRITERS)
        .map(|i| {
            let mut cmd = writer(&name, &i.to_string(), EACH);
            cmd.stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped());
            cmd.spawn().unwrap()
        })
        .collect();
    for writer in writers {
        let out = writer.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let total = WRITERS * EACH;
    assert_eq!(
        slot.info().unwrap().waiting,
        total,
        "every finished write is counted"
    );

    let mut next = [0usize; WRITERS];
    for read in 0..total {
        let info = slot.info().unwrap();
        assert_eq!(info.waiting, total - read);
        let message = slot.read().unwrap();
        assert_eq!(info.next_size, Some(message.len()));
        let text = String::from_utf8(message).unwrap();
        let (writer, seq) = text[1..].split_once(':').unwrap();
        let (writer, seq): (usize, usize) = (writer.parse().unwrap(), seq.parse().unwrap());
        assert_eq!(
            seq, next[writer],
            "writer {writer}'s messages arrive in order, once"
        );
        next[writer] += 1;
    }
    assert_eq!(next, [EACH; WRITERS]);
    assert_eq!(slot.info().unwrap().waiting, 0);
}

#[test]
fn python_standard_library_writes_into_a_local_slot() {
    let _wd = Watchdog::new(Duration::from_secs(30));
    let name = unique_name("py");
    let slot = MailslotServer::create(name.as_str()).unwrap();
    // As docs/protocol.md says: a local slot is a Unix datagram socket; one datagram is
    // one message.
    let path = procwire::name::Namespace::Local
        .directory(procwire::name::NameClass::Mailslot)
        .unwrap()
        .join(&name);
    let script = r#"
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
for m in [b"from python", b"", "ünïcode".encode()]:
    s.sendto(m, sys.argv[1])
"#;
    let mut cmd = Command::new("python3");
    cmd.args(["-c", script]).arg(&path);
    let out = run(cmd, b"", Duration::from_secs(20));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(slot.info().unwrap().waiting, 3);
    assert_eq!(slot.read().unwrap(), b"from python");
    assert_eq!(slot.read().unwrap(), b"");
    assert_eq!(slot.read().unwrap(), "ünïcode".as_bytes());
}

#[test]
fn oversize_messages_are_refused_at_the_writer() {
    let name = unique_name("oversize");
    let slot = MailslotOptions::new()
        .max_message_size(424)
        .read_timeout(ReadTimeout::Immediate)
        .create(name.as_str())
        .unwrap();
    let writer = MailslotWriter::open(name.as_str()).unwrap();
    assert_eq!(writer.max_message_size(), 424);
    let e = writer.write(&[1u8; 425]).unwrap_err();
    assert!(
        matches!(
            e,
            MailslotError::MessageTooLarge {
                len: 425,
                max: 424,
                ..
            }
        ),
        "{e}"
    );
    writer.write(&[2u8; 424]).unwrap();
    assert_eq!(slot.read().unwrap(), vec![2u8; 424]);
    assert!(
        slot.try_read().is_none(),
        "the refused message never arrived"
    );
}

#[test]
fn read_into_a_small_buffer_keeps_the_message_for_a_larger_one() {
    let _wd = Watchdog::new(Duration::from_secs(30));
    let name = unique_name("into");
    let slot = MailslotOptions::new()
        .max_message_size(1000)
        .read_timeout(ReadTimeout::After(Duration::from_secs(5)))
        .create(name.as_str())
        .unwrap();
    let writer = MailslotWriter::open(name.as_str()).unwrap();
    writer.write(&[1u8; 100]).unwrap();
    writer.write(b"second").unwrap();
    let mut small = [0u8; 10];
    let e = slot.read_into(&mut small).unwrap_err();
    assert!(
        matches!(
            e,
            MailslotError::BufferTooSmall {
                needed: 100,
                given: 10,
                ..
            }
        ),
        "{e}"
    );
    let mut big = vec![0u8; 2000];
    assert_eq!(slot.read_into(&mut big).unwrap(), 100);
    assert_eq!(&big[..100], &[1u8; 100]);
    assert_eq!(slot.read_into(&mut small).unwrap(), 6);
    assert_eq!(&small[..6], b"second");

    // A message that arrives while the reader waits: straight into a large buffer, or kept
    // when the buffer is too small.
    let late = std::thread::spawn({
        let name = name.clone();
        move || {
            std::thread::sleep(Duration::from_millis(100));
            let w = MailslotWriter::open(name.as_str()).unwrap();
            w.write(&[7u8; 50]).unwrap();
            std::thread::sleep(Duration::from_millis(100));
            w.write(&[8u8; 60]).unwrap();
        }
    });
    assert_eq!(slot.read_into(&mut big).unwrap(), 50);
    let e = slot.read_into(&mut small).unwrap_err();
    assert!(
        matches!(e, MailslotError::BufferTooSmall { needed: 60, .. }),
        "{e}"
    );
    assert_eq!(slot.info().unwrap().waiting, 1);
    assert_eq!(slot.read().unwrap(), vec![8u8; 60]);
    late.join().unwrap();
}

#[test]
fn a_full_slot_makes_writers_wait_and_loses_nothing() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let name = unique_name("full");
    let slot = MailslotOptions::new()
        .capacity(1000)
        .read_timeout(ReadTimeout::Immediate)
        .create(name.as_str())
        .unwrap();
    let writer = WriterOptions::new()
        .timeout(Duration::from_millis(200))
        .open(name.as_str())
        .unwrap();
    let mut written = 0usize;
    let failure = loop {
        let started = Instant::now();
        match writer.write(format!("{written:0100}").as_bytes()) {
            Ok(()) => written += 1,
            Err(e) => break (e, started.elapsed()),
        }
        assert!(written < 100_000, "the slot never filled up");
    };
    assert!(
        matches!(failure.0, MailslotError::Full { .. }),
        "{}",
        failure.0
    );
    assert!(
        failure.1 >= Duration::from_millis(200),
        "gave up after {:?}",
        failure.1
    );
    // Every accepted message is there, in order; the refused one is not.
    for i in 0..written {
        assert_eq!(
            slot.read().unwrap(),
            format!("{i:0100}").as_bytes(),
            "message {i}"
        );
    }
    assert!(slot.try_read().is_none());
    writer.write(b"room again").unwrap();
    assert_eq!(slot.read().unwrap(), b"room again");
}

#[test]
fn missing_and_wrong_names_are_clear_errors() {
    let e = MailslotWriter::open(unique_name("none").as_str()).unwrap_err();
    assert!(matches!(e, MailslotError::NotFound { .. }), "{e}");
    let e = MailslotWriter::open(r"\\.\pipe\Something").unwrap_err();
    assert!(e.to_string().contains("is a pipe name"), "{e}");
    let e = MailslotOptions::new()
        .listen_udp("0.0.0.0:0".parse().unwrap())
        .create(unique_name("open").as_str())
        .unwrap_err();
    assert!(e.to_string().contains("allow_plaintext_network"), "{e}");
}

#[test]
fn bad_network_datagrams_are_dropped_and_counted_and_the_slot_keeps_working() {
    let _wd = Watchdog::new(Duration::from_secs(30));
    let name = unique_name("udp-bad");
    let slot = MailslotOptions::new()
        .max_message_size(100)
        .read_timeout(ReadTimeout::After(Duration::from_secs(5)))
        .listen_udp("127.0.0.1:0".parse().unwrap())
        .create(name.as_str())
        .unwrap();
    let addr = slot.udp_addr().unwrap();
    let raw = UdpSocket::bind("127.0.0.1:0").unwrap();
    let datagram = |slot: &str, message: &[u8]| {
        procwire::wire::SlotDatagram { slot, message }
            .encode()
            .unwrap()
    };
    raw.send_to(&datagram(&name, &[7u8; 101]), addr).unwrap(); // oversize
    raw.send_to(b"", addr).unwrap(); // empty
    raw.send_to(b"GET / HTTP/1.1\r\n\r\n", addr).unwrap(); // garbage
    raw.send_to(b"PWMS\x01\xffab", addr).unwrap(); // truncated name
    raw.send_to(&datagram("someone-else", b"x"), addr).unwrap(); // another slot
    raw.send_to(&datagram(&name, b"good"), addr).unwrap();
    assert_eq!(slot.read().unwrap(), b"good");
    let dropped = slot.dropped();
    assert_eq!(
        (
            dropped.oversize,
            dropped.empty,
            dropped.garbage,
            dropped.other_slot
        ),
        (1, 1, 2, 1)
    );
    // Through the library's own network writer, to one host.
    let remote = format!(r"\\127.0.0.1:{}\mailslot\{name}", addr.port());
    let writer = MailslotWriter::open(remote.as_str()).unwrap();
    writer.write(b"over udp").unwrap();
    assert_eq!(slot.read().unwrap(), b"over udp");
    assert!(matches!(
        writer.write(&[0u8; 70_000]),
        Err(MailslotError::MessageTooLarge { .. })
    ));
}

#[test]
fn read_timeouts_are_honoured_and_can_change() {
    let name = unique_name("timeout");
    let slot = MailslotOptions::new()
        .read_timeout(ReadTimeout::After(Duration::from_millis(150)))
        .create(name.as_str())
        .unwrap();
    let started = Instant::now();
    assert!(matches!(slot.read(), Err(MailslotError::Timeout { .. })));
    assert!(started.elapsed() >= Duration::from_millis(150));
    slot.set_read_timeout(ReadTimeout::Immediate);
    assert_eq!(slot.info().unwrap().read_timeout, ReadTimeout::Immediate);
    assert!(matches!(slot.read(), Err(MailslotError::Timeout { .. })));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokio_reader_awaits_messages_from_a_writer_process() {
    let _wd = Watchdog::new(Duration::from_secs(30));
    let name = unique_name("async");
    let slot = MailslotServer::create(name.as_str()).unwrap();
    let writer = tokio::task::spawn_blocking({
        let name = name.clone();
        move || {
            std::thread::sleep(Duration::from_millis(100));
            run(writer(&name, "a", 3), b"", Duration::from_secs(20))
        }
    });
    for seq in 0..3 {
        assert_eq!(
            slot.read_async().await.unwrap(),
            format!("wa:{seq}").as_bytes()
        );
    }
    assert!(writer.await.unwrap().status.success());
}

#[test]
fn peek_shows_the_next_message_from_another_process_and_leaves_it_next() {
    let _wd = Watchdog::new(Duration::from_secs(30));
    let name = unique_name("peek");
    let slot = MailslotServer::create(name.as_str()).unwrap();
    assert_eq!(slot.try_peek(), None);
    // The writer starts later: the first peek waits for its first message, in the kernel.
    let writer = std::thread::spawn({
        let name = name.clone();
        move || {
            std::thread::sleep(Duration::from_millis(100));
            run(writer(&name, "p", 3), b"", Duration::from_secs(20))
        }
    });
    assert_eq!(slot.peek().unwrap(), b"wp:0");
    assert_eq!(slot.peek().unwrap(), b"wp:0", "a peek takes nothing");
    assert_eq!(slot.try_peek().as_deref(), Some(&b"wp:0"[..]));
    assert!(writer.join().unwrap().status.success());
    for seq in 0..3 {
        let next = format!("wp:{seq}");
        assert_eq!(slot.peek().unwrap(), next.as_bytes());
        assert_eq!(slot.info().unwrap().next_size, Some(next.len()));
        assert_eq!(slot.read().unwrap(), next.as_bytes());
    }
    // A changed read timeout applies to peeks too.
    slot.set_read_timeout(ReadTimeout::Immediate);
    assert!(matches!(slot.peek(), Err(MailslotError::Timeout { .. })));
    slot.set_read_timeout(ReadTimeout::After(Duration::from_millis(100)));
    let started = Instant::now();
    assert!(matches!(slot.peek(), Err(MailslotError::Timeout { .. })));
    assert!(started.elapsed() >= Duration::from_millis(100));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokio_peek_awaits_the_next_message_and_a_dropped_peek_takes_nothing() {
    let _wd = Watchdog::new(Duration::from_secs(30));
    let name = unique_name("async-peek");
    let slot = MailslotServer::create(name.as_str()).unwrap();
    // A peek dropped before anything came takes nothing and leaves no trace.
    let early = tokio::time::timeout(Duration::from_millis(20), slot.peek_async()).await;
    assert!(early.is_err());
    let writer = tokio::task::spawn_blocking({
        let name = name.clone();
        move || run(writer(&name, "t", 2), b"", Duration::from_secs(20))
    });
    assert_eq!(slot.peek_async().await.unwrap(), b"wt:0");
    assert_eq!(slot.read_async().await.unwrap(), b"wt:0");
    assert!(writer.await.unwrap().status.success());
    assert_eq!(slot.peek_async().await.unwrap(), b"wt:1");
    assert_eq!(slot.read_async().await.unwrap(), b"wt:1");
    slot.set_read_timeout(ReadTimeout::Immediate);
    assert!(matches!(
        slot.peek_async().await,
        Err(MailslotError::Timeout { .. })
    ));
}
