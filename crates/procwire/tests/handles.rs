//! Handle passing (issue 12, `DuplicateHandle`): open objects sent over a local pipe
//! connection to another process, which receives them as the same kind of object.
//!
//! Every test runs real processes: this binary re-run as a helper, a hostile client
//! written in Python from docs/protocol.md, and a helper run as `nobody`.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use procwire::mapping::{Mapping, MappingOptions};
use procwire::name::{NameClass, Namespace};
use procwire::pipe::{ClientOptions, PipeConnection, PipeError, PipeOptions, PipeServer};
use procwire::security::{Access, AccessList};
use procwire::sync::{EventOptions, EventReset, NamedEvent, NamedMutex};
use procwire::wire::{HandleKind, PipeMode};
use procwire_testkit::{helper, helper_as_user, helper_role, say, unique_name, Proc, Watchdog};

/// The variable that names the pipe a helper connects to.
const PIPE: &str = "PROCWIRE_TEST_PIPE";

/// How long any one step may take.
const STEP: Duration = Duration::from_secs(10);

fn open(name: &str) -> PipeConnection {
    ClientOptions::new()
        .read_mode(PipeMode::Message)
        .timeout(STEP)
        .open(name)
        .unwrap()
}

#[test]
fn helper_process() {
    let Some(role) = helper_role() else {
        return;
    };
    let pipe = std::env::var(PIPE).unwrap();
    match role.as_str() {
        "receive-objects" => {
            let mut conn = open(&pipe);
            assert_eq!(conn.recv().unwrap(), b"before");
            // The handle is next: a plain receive says so and takes nothing.
            match conn.recv_timeout(STEP) {
                Err(PipeError::WrongFrame { detail, .. }) => {
                    assert!(detail.contains("recv_handle"), "{detail}")
                }
                other => panic!("expected WrongFrame, got {other:?}"),
            }
            let handle = conn.recv_handle().unwrap();
            assert_eq!(handle.kind(), HandleKind::Mapping);
            assert_eq!(handle.access(), Access::ReadWrite);
            let mapping = handle.into_mapping().unwrap();
            let view = mapping.view(0, 4096).unwrap();
            assert_eq!(view.read_vec(0, 17).unwrap(), b"from the creator!");
            view.write_at(100, b"from the receiver").unwrap();
            // The same mapping again, read-only: the receiver cannot write through it.
            let read_only = conn.recv_handle().unwrap().into_mapping().unwrap();
            assert_eq!(read_only.access(), Access::Read);
            assert_eq!(read_only.size(), 4096);
            assert!(read_only.view(0, 16).unwrap().write_at(0, b"x").is_err());
            assert_eq!(
                read_only.view(0, 4096).unwrap().read_vec(0, 17).unwrap(),
                b"from the creator!"
            );
            // A file, read-only: it reads, and refuses writes.
            let mut file = conn.recv_handle().unwrap().into_file().unwrap();
            let mut text = String::new();
            file.seek(SeekFrom::Start(0)).unwrap();
            file.read_to_string(&mut text).unwrap();
            assert_eq!(text, "file contents");
            assert!(file.write_all(b"no").is_err());
            // A handle of another kind than asked for is an error, not a panic.
            let wrong = conn.recv_handle().unwrap();
            match wrong.into_pipe() {
                Err(PipeError::BadHandle { detail, .. }) => {
                    assert!(detail.contains("is a mapping"), "{detail}")
                }
                other => panic!("expected BadHandle, got {other:?}"),
            }
            assert_eq!(conn.recv().unwrap(), b"after");
            say("DONE");
            let _ = conn.recv();
        }
        "receive-pipe" => {
            let mut conn = open(&pipe);
            let mut passed = conn.recv_handle().unwrap().into_pipe().unwrap();
            let server_pid: u32 = std::env::var("PROCWIRE_TEST_SERVER_PID")
                .unwrap()
                .parse()
                .unwrap();
            assert_eq!(passed.peer_credentials().unwrap().pid, server_pid);
            passed.send(b"ping over the passed connection").unwrap();
            assert_eq!(passed.recv().unwrap(), b"pong");
            say("DONE");
            let _ = conn.recv();
        }
        "receive-sync" => {
            let mut conn = open(&pipe);
            let event = conn.recv_handle().unwrap().into_event().unwrap();
            let mutex = conn.recv_handle().unwrap().into_mutex().unwrap();
            // The creator holds the mutex: it is taken here too.
            assert!(mutex.try_lock().unwrap().is_none());
            say("WAITING");
            event.wait_timeout(STEP).unwrap();
            // The creator released the mutex before it set the event.
            let guard = mutex.try_lock().unwrap();
            assert!(guard.is_some(), "the mutex is free after the set");
            say("WOKE");
            drop(guard);
            let _ = conn.recv();
        }
        "wait" => {
            let mut conn = open(&pipe);
            say("CONNECTED");
            // Nothing is passed to this user: whatever comes first is an error or the end.
            match conn.recv_handle_timeout(STEP) {
                Ok(h) => {
                    let name = h.name().to_owned();
                    let mapping = h.into_mapping().unwrap();
                    let text = mapping.view(0, 5).unwrap().read_vec(0, 5).unwrap();
                    say(&format!(
                        "RECEIVED {name} {} {}",
                        mapping.access(),
                        String::from_utf8_lossy(&text)
                    ));
                }
                Err(e) => say(&format!("ENDED {e}")),
            }
        }
        "receive-async" => receive_async(&pipe),
        other => panic!("unknown role {other}"),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The tokio client of `the_tokio_api_passes_handles_...`.
fn receive_async(pipe: &str) {
    runtime().block_on(async {
        let mut conn = ClientOptions::new()
            .read_mode(PipeMode::Message)
            .timeout(STEP)
            .open_async(pipe)
            .await
            .unwrap();
        // A handle comes first: a plain receive says so and takes nothing.
        match conn.recv().await {
            Err(PipeError::WrongFrame { detail, .. }) => {
                assert!(detail.contains("recv_handle"), "{detail}")
            }
            other => panic!("expected WrongFrame, got {other:?}"),
        }
        let mapping = conn.recv_handle().await.unwrap().into_mapping().unwrap();
        let view = mapping.view(0, 4096).unwrap();
        assert_eq!(view.read_vec(0, 10).unwrap(), b"from tokio");
        view.write_at(100, b"seen by tokio").unwrap();
        // A message comes next: a handle receive says so and takes nothing.
        match conn.recv_handle().await {
            Err(PipeError::WrongFrame { .. }) => {}
            other => panic!("expected WrongFrame, got {other:?}"),
        }
        assert_eq!(conn.recv().await.unwrap(), b"between");
        // A handle receive dropped before the handle comes takes nothing.
        let early = tokio::time::timeout(Duration::from_millis(100), conn.recv_handle()).await;
        assert!(early.is_err(), "nothing was sent yet");
        say("WAITING");
        let mut passed = conn.recv_handle().await.unwrap().into_async_pipe().unwrap();
        passed.send(b"ping from tokio").await.unwrap();
        assert_eq!(passed.recv().await.unwrap(), b"pong");
        say("DONE");
        let _ = conn.recv().await;
    });
}

#[test]
fn a_passed_mapping_and_file_work_in_the_receiving_process() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let name = unique_name("handles-objects");
    let server = PipeServer::create(name.as_str()).unwrap();
    let mapping = Mapping::create(format!(r"Local\{name}-map").as_str(), 4096).unwrap();
    mapping
        .view(0, 4096)
        .unwrap()
        .write_at(0, b"from the creator!")
        .unwrap();
    let path = std::env::temp_dir().join(format!("{name}.txt"));
    std::fs::write(&path, "file contents").unwrap();
    let file = std::fs::File::open(&path).unwrap();
    let _ = std::fs::remove_file(&path);

    let mut child = helper("receive-objects", &[(PIPE, &name)]);
    let mut conn = server.accept_timeout(STEP).unwrap();
    conn.send(b"before").unwrap();
    conn.send_handle(&mapping).unwrap();
    conn.send_handle_with_access(&mapping, Access::Read)
        .unwrap();
    conn.send_handle(&file).unwrap();
    conn.send_handle(&mapping).unwrap();
    conn.send(b"after").unwrap();
    // A file cannot be passed with more access than it was opened with.
    match conn.send_handle_with_access(&file, Access::ReadWrite) {
        Err(PipeError::NotPermitted { detail, .. }) => {
            assert!(detail.contains("held with read access"), "{detail}")
        }
        other => panic!("expected NotPermitted, got {other:?}"),
    }
    child.wait_for("DONE");
    assert_eq!(
        mapping.view(0, 4096).unwrap().read_vec(100, 17).unwrap(),
        b"from the receiver"
    );
}

#[test]
fn the_tokio_api_passes_and_receives_handles_and_a_dropped_receive_takes_nothing() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let name = unique_name("handles-async");
    let data = unique_name("handles-async-data");
    let mapping = Mapping::create(format!(r"Local\{name}-map").as_str(), 4096).unwrap();
    mapping
        .view(0, 4096)
        .unwrap()
        .write_at(0, b"from tokio")
        .unwrap();
    let data_server = PipeServer::create(data.as_str()).unwrap();
    let client_end = open(&data);
    let mut server_end = data_server.accept_timeout(STEP).unwrap();
    runtime().block_on(async {
        let server = PipeOptions::new().create_async(name.as_str()).unwrap();
        let mut child = helper("receive-async", &[(PIPE, &name)]);
        let mut conn = server.accept().await.unwrap();
        conn.send_handle(&mapping).await.unwrap();
        conn.send(b"between").await.unwrap();
        child.wait_for("WAITING");
        conn.send_handle(&client_end).await.unwrap();
        drop(client_end);
        assert_eq!(server_end.recv_timeout(STEP).unwrap(), b"ping from tokio");
        server_end.send(b"pong").unwrap();
        child.wait_for("DONE");
    });
    assert_eq!(
        mapping.view(0, 4096).unwrap().read_vec(100, 13).unwrap(),
        b"seen by tokio"
    );
}

#[test]
fn a_passed_pipe_connection_talks_to_the_original_other_end() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let control = unique_name("handles-control");
    let data = unique_name("handles-data");
    let control_server = PipeServer::create(control.as_str()).unwrap();
    let data_server = PipeServer::create(data.as_str()).unwrap();
    // This process is both ends of the data pipe; it passes its client end away.
    let client_end = open(&data);
    let mut server_end = data_server.accept_timeout(STEP).unwrap();

    let pid = std::process::id().to_string();
    let mut child = helper(
        "receive-pipe",
        &[(PIPE, &control), ("PROCWIRE_TEST_SERVER_PID", &pid)],
    );
    let mut conn = control_server.accept_timeout(STEP).unwrap();
    conn.send_handle(&client_end).unwrap();
    drop(client_end);
    assert_eq!(
        server_end.recv_timeout(STEP).unwrap(),
        b"ping over the passed connection"
    );
    server_end.send(b"pong").unwrap();
    child.wait_for("DONE");
}

#[test]
fn handles_need_a_local_message_pipe_and_a_clean_connection() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let name = unique_name("handles-mode");
    let server = PipeOptions::new()
        .mode(PipeMode::Byte)
        .create(name.as_str())
        .unwrap();
    let mut client = ClientOptions::new()
        .timeout(STEP)
        .open(name.as_str())
        .unwrap();
    let _server_end = server.accept_timeout(STEP).unwrap();
    let mapping = Mapping::create(format!("{name}-map").as_str(), 4096).unwrap();
    assert!(matches!(
        client.send_handle(&mapping),
        Err(PipeError::ModeMismatch { .. })
    ));

    // A connection with a message received and not taken cannot be passed.
    let name = unique_name("handles-unread");
    let server = PipeServer::create(name.as_str()).unwrap();
    let mut a = open(&name);
    let mut a_server = server.accept_timeout(STEP).unwrap();
    let b = open(&name);
    let _b_server = server.accept_timeout(STEP).unwrap();
    a_server.send(b"one").unwrap();
    a_server.send(b"two").unwrap();
    assert_eq!(a.recv_timeout(STEP).unwrap(), b"one");
    // `b` carries `a` to its server end: refused, since `a` holds "two" already read.
    let mut b = b;
    match b.send_handle(&a) {
        Err(PipeError::BadHandle { detail, .. }) => {
            assert!(detail.contains("received and not yet taken"), "{detail}")
        }
        other => panic!("expected BadHandle, got {other:?}"),
    }
    // A message where a handle is awaited: nothing taken, and the message still comes.
    a_server.send(b"three").unwrap();
    assert_eq!(a.recv_timeout(STEP).unwrap(), b"two");
    match a.recv_handle_timeout(STEP) {
        Err(PipeError::WrongFrame { detail, .. }) => assert!(detail.contains("recv"), "{detail}"),
        other => panic!("expected WrongFrame, got {other:?}"),
    }
    assert_eq!(a.recv_timeout(STEP).unwrap(), b"three");
    // Nonblocking: nothing there is WouldBlock, not a wait.
    a.set_nonblocking(true);
    assert!(matches!(a.recv_handle(), Err(PipeError::WouldBlock { .. })));
}

#[test]
fn a_passed_event_and_mutex_are_the_same_objects_in_the_receiving_process() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let name = unique_name("handles-sync");
    let server = PipeServer::create(name.as_str()).unwrap();
    let event =
        NamedEvent::create(format!("{name}-event").as_str(), EventReset::Manual, false).unwrap();
    let mutex = NamedMutex::create(format!("{name}-mutex").as_str()).unwrap();
    let guard = mutex.lock().unwrap();
    let mut child = helper("receive-sync", &[(PIPE, &name)]);
    let mut conn = server.accept_timeout(STEP).unwrap();
    conn.send_handle(&event).unwrap();
    conn.send_handle(&mutex).unwrap();
    match conn.send_handle_with_access(&event, Access::Read) {
        Err(PipeError::NotPermitted { detail, .. }) => {
            assert!(detail.contains("only read-write"), "{detail}")
        }
        other => panic!("expected NotPermitted, got {other:?}"),
    }
    child.wait_for("WAITING");
    drop(guard);
    event.set().unwrap();
    child.wait_for("WOKE");
}

/// However the receiver's reads cut the stream (many small frames read together, a header
/// read alone after a large message), each handle frame gets its own descriptor.
#[test]
fn handles_among_small_and_large_messages_keep_their_own_descriptors() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let name = unique_name("handles-mixed");
    let server = PipeServer::create(name.as_str()).unwrap();
    let mut receiver = open(&name);
    let mut sender = server.accept_timeout(STEP).unwrap();
    let maps: Vec<Mapping> = (0..3)
        .map(|i| {
            let m = Mapping::create(format!("{name}-{i}").as_str(), 4096).unwrap();
            m.view(0, 8).unwrap().write_at(0, &[i as u8; 8]).unwrap();
            m
        })
        .collect();
    let large = vec![7u8; 1 << 20];
    let writer = std::thread::spawn(move || {
        for i in 0..100u32 {
            sender.send(&i.to_be_bytes()).unwrap();
        }
        sender.send_handle(&maps[0]).unwrap();
        sender.send(&large).unwrap();
        sender.send_handle(&maps[1]).unwrap();
        sender.send(b"small").unwrap();
        sender.send_handle(&maps[2]).unwrap();
        (sender, maps)
    });
    std::thread::sleep(Duration::from_millis(100));
    for i in 0..100u32 {
        assert_eq!(receiver.recv_timeout(STEP).unwrap(), i.to_be_bytes());
    }
    let first = |r: &mut PipeConnection| {
        let m = r.recv_handle_timeout(STEP).unwrap().into_mapping().unwrap();
        m.view(0, 8).unwrap().read_vec(0, 1).unwrap()[0]
    };
    assert_eq!(first(&mut receiver), 0);
    assert_eq!(receiver.recv_timeout(STEP).unwrap().len(), 1 << 20);
    assert_eq!(first(&mut receiver), 1);
    assert_eq!(receiver.recv_timeout(STEP).unwrap(), b"small");
    assert_eq!(first(&mut receiver), 2);
    let _ = writer.join().unwrap();
}

/// The hostile client.
const FORGER: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/python/forged_handle_client.py"
);

/// This process's descriptors whose target contains one of `tags`.
fn descriptors_of(tags: &[String]) -> Vec<String> {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .map(|target| target.to_string_lossy().into_owned())
        .filter(|target| tags.iter().any(|t| target.contains(t.as_str())))
        .collect()
}

#[test]
fn forged_handles_are_refused_precisely_and_leave_no_descriptor() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let name = unique_name("handles-forged");
    let server = PipeServer::create(name.as_str()).unwrap();
    let socket = Namespace::Local
        .directory(NameClass::Pipe)
        .unwrap()
        .join(&name);
    let scratch = std::env::temp_dir().join(unique_name("handles-scratch"));
    std::fs::create_dir_all(&scratch).unwrap();
    let _cleanup = RemoveDir(scratch.clone());
    let mut cmd = Command::new("python3");
    cmd.arg(FORGER).arg(&socket).arg(&name).arg(&scratch);
    let mut forger = Proc::spawn(cmd);
    let mut conn = server.accept_timeout(STEP).unwrap();
    let line = forger.wait_for("SOCKET");
    let inode = line.trim().trim_start_matches("SOCKET ").to_owned();
    forger.wait_for("SENT");

    let bad = |conn: &mut PipeConnection| match conn.recv_handle_timeout(STEP) {
        Err(PipeError::BadHandle { detail, .. }) => detail,
        other => panic!("expected BadHandle, got {other:?}"),
    };
    let detail = bad(&mut conn);
    assert!(
        detail.contains("announced a mapping `forged-none` but passed no descriptor"),
        "{detail}"
    );
    assert_eq!(conn.recv_timeout(STEP).unwrap(), b"usable-1");
    let detail = bad(&mut conn);
    assert!(
        detail.contains("`forged-fifo` but passed a FIFO"),
        "{detail}"
    );
    let detail = bad(&mut conn);
    assert!(
        detail.contains("`forged-socket` but passed a socket"),
        "{detail}"
    );
    let detail = bad(&mut conn);
    assert!(
        detail.contains("a pipe connection `forged-pipe` but passed a regular file"),
        "{detail}"
    );
    let detail = bad(&mut conn);
    assert!(
        detail.contains("with read-write access but passed a descriptor open read-only"),
        "{detail}"
    );
    let detail = bad(&mut conn);
    assert!(
        detail.contains("record refused") && detail.contains("handle kind"),
        "{detail}"
    );
    assert_eq!(conn.recv_timeout(STEP).unwrap(), b"stray");
    let detail = bad(&mut conn);
    assert!(
        detail.contains("`forged-none-again` but passed no descriptor"),
        "{detail}"
    );
    assert_eq!(conn.recv_timeout(STEP).unwrap(), b"end");
    let kept = descriptors_of(&["forged-handle".into(), format!("socket:[{inode}]")]);
    assert!(kept.is_empty(), "descriptors kept: {kept:?}");
    drop(conn);
    assert!(forger.exit_within(STEP).is_some_and(|s| s.success()));
}

struct RemoveDir(PathBuf);

impl Drop for RemoveDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
#[ignore = "needs root: drops to `nobody`"]
fn passing_to_a_user_without_access_is_refused_by_the_sender() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let pipe = format!(r"Global\{}", unique_name("handles-nobody"));
    let server = PipeOptions::new()
        .access_list(AccessList::owner_only().everyone(Access::ReadWrite))
        .create(pipe.as_str())
        .unwrap();
    let mut child: Proc = helper_as_user(65534, "wait", &[(PIPE, &pipe)]);
    let mut conn = server.accept_timeout(STEP).unwrap();
    child.wait_for("CONNECTED");
    assert_eq!(conn.peer_credentials().unwrap().uid, 65534);

    let denied = |result: Result<(), PipeError>| match result {
        Err(PipeError::AccessDenied { detail, .. }) => detail,
        other => panic!("expected AccessDenied, got {other:?}"),
    };
    // A Local mapping is private to its user.
    let local = Mapping::create(unique_name("handles-local").as_str(), 4096).unwrap();
    let detail = denied(conn.send_handle(&local));
    assert!(
        detail.contains("Local namespace") && detail.contains("uid 65534"),
        "{detail}"
    );
    // A Global mapping for the owner only: nobody could not open it.
    let private = Mapping::create(
        format!(r"Global\{}", unique_name("handles-private")).as_str(),
        4096,
    )
    .unwrap();
    let detail = denied(conn.send_handle(&private));
    assert!(
        detail.contains("uid 65534") && detail.contains("could not open mapping"),
        "{detail}"
    );
    // Granted read to everyone: read-write is refused, read passes.
    let readable = MappingOptions::new()
        .size(4096)
        .access_list(AccessList::owner_only().everyone(Access::Read))
        .create(format!(r"Global\{}", unique_name("handles-readable")).as_str())
        .unwrap();
    readable.view(0, 5).unwrap().write_at(0, b"hello").unwrap();
    let detail = denied(conn.send_handle(&readable));
    assert!(detail.contains("for read-write access"), "{detail}");
    // Sync objects follow their file mode too.
    let event = EventOptions::new(EventReset::Manual)
        .create(format!(r"Global\{}", unique_name("handles-event")).as_str())
        .unwrap();
    let detail = denied(conn.send_handle(&event));
    assert!(detail.contains("could not open an event"), "{detail}");
    // A pipe connection passes only to its own user.
    let other = unique_name("handles-other");
    let other_server = PipeServer::create(other.as_str()).unwrap();
    let end = open(&other);
    let _other_end = other_server.accept_timeout(STEP).unwrap();
    let detail = denied(conn.send_handle(&end));
    assert!(detail.contains("passes only to its own user"), "{detail}");
    // Nothing was sent by the refusals: the first handle the peer sees is the allowed one.
    conn.send_handle_with_access(&readable, Access::Read)
        .unwrap();
    let line = child.wait_for("RECEIVED");
    assert!(line.contains("handles-readable"), "{line}");
    assert!(line.trim_end().ends_with("read hello"), "{line}");
}
