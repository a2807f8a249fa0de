//! The C11 program of examples/c/, built with the system's gcc against the library: a
//! mutex holder killed mid-way, failures as status codes and messages, and handles passed
//! from one C process to another.

mod common;

use std::process::Command;
use std::time::Duration;

use procwire::mapping::MappingOptions;
use procwire::pipe::PipeServer;
use procwire::sync::{LockError, NamedMutex};
use procwire_testkit::{copy_for_others, run, unique_name, Proc, Watchdog};

fn c(args: &[&str]) -> String {
    let mut cmd = Command::new(common::c_program());
    cmd.args(args);
    let out = run(cmd, b"", Duration::from_secs(30));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn c_mutex_holder_killed_leaves_rust_locker_abandoned() {
    let _watchdog = Watchdog::new(Duration::from_secs(120));
    let name = format!(r"Local\{}", unique_name("c-mutex"));
    let mutex = NamedMutex::create(name.as_str()).unwrap();
    let mut cmd = Command::new(common::c_program());
    cmd.args(["hold-mutex", name.as_str()]);
    let mut holder = Proc::spawn(cmd);
    holder.wait_for_within("locked", Duration::from_secs(30));
    let pid = holder.pid();
    holder.kill();

    match mutex.lock_timeout(Duration::from_secs(10)) {
        Err(LockError::Abandoned(mut guard)) => {
            assert_eq!(
                guard.previous_owner(),
                pid,
                "the C program's main thread held it"
            );
            guard.mark_repaired();
        }
        Ok(_) => panic!("the lock of a killed holder came back as if released"),
        Err(LockError::Failed(e)) => panic!("{e}"),
    }
    // Repaired: the next locker, in C, gets a plain lock.
    assert_eq!(c(&["lock-mutex", name.as_str()]), "locked\n");
}

#[test]
fn c_locker_sees_abandoned_after_a_c_holder_dies() {
    let _watchdog = Watchdog::new(Duration::from_secs(120));
    let name = format!(r"Local\{}", unique_name("c-mutex"));
    let _mutex = NamedMutex::create(name.as_str()).unwrap();
    let mut holder = Proc::spawn({
        let mut cmd = Command::new(common::c_program());
        cmd.args(["hold-mutex", name.as_str()]);
        cmd
    });
    holder.wait_for_within("locked", Duration::from_secs(30));
    holder.kill();
    assert_eq!(c(&["lock-mutex", name.as_str()]), "abandoned\n");
    // The C locker marked it repaired.
    assert_eq!(c(&["lock-mutex", name.as_str()]), "locked\n");
}

#[test]
fn c_gets_not_found_message_too_large_and_null_pointer() {
    let _watchdog = Watchdog::new(Duration::from_secs(120));
    let missing = unique_name("c-missing");
    let out = c(&["open-pipe", missing.as_str()]);
    assert!(
        out.starts_with("PROCWIRE_STATUS_NOT_FOUND: no pipe named"),
        "{out}"
    );
    assert!(out.contains(&missing), "{out}");

    let slot = format!(r"\\.\mailslot\{}", unique_name("c-slot"));
    let out = c(&["too-large", slot.as_str()]);
    assert!(
        out.starts_with("PROCWIRE_STATUS_MESSAGE_TOO_LARGE: message of 100 bytes is larger than the maximum of 16 bytes"),
        "{out}"
    );

    let out = c(&["null"]);
    assert!(
        out.starts_with("PROCWIRE_STATUS_NULL_POINTER: the argument `connection` is NULL"),
        "{out}"
    );
}

#[test]
#[ignore = "needs root: runs the C program as uid 65534"]
fn c_as_another_user_gets_access_denied() {
    use std::os::unix::process::CommandExt;
    let _watchdog = Watchdog::new(Duration::from_secs(120));
    let name = format!(r"Global\{}", unique_name("c-denied"));
    let _mapping = MappingOptions::new()
        .size(4096)
        .create(name.as_str())
        .unwrap();
    let program = copy_for_others(&common::c_program());
    let mut cmd = Command::new(program);
    cmd.args(["open-mapping", name.as_str()])
        .uid(65534)
        .gid(65534)
        .current_dir("/");
    let out = run(cmd, b"", Duration::from_secs(30));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.starts_with("PROCWIRE_STATUS_ACCESS_DENIED: access to mapping"),
        "{stdout}"
    );
}

#[test]
fn c_passes_a_mapping_a_file_a_pipe_connection_and_an_event_to_another_c_process() {
    let _watchdog = Watchdog::new(Duration::from_secs(120));
    let pipe = format!(r"\\.\pipe\{}", unique_name("c-pass"));
    let mapping = format!(r"Local\{}", unique_name("c-pass-map"));
    let event = format!(r"Local\{}", unique_name("c-pass-event"));
    let echo = format!(r"\\.\pipe\{}", unique_name("c-pass-echo"));
    let file = common::build_dir().join(unique_name("c-pass-file"));
    std::fs::write(&file, "file contents").unwrap();

    // The pipe whose connection the sender opens and passes: it answers whoever talks on
    // that connection, and sees who opened it.
    let echo_server = PipeServer::create(echo.as_str()).unwrap();
    let echoing = std::thread::spawn(move || {
        let mut conn = echo_server.accept_timeout(Duration::from_secs(30)).unwrap();
        let opener = conn.peer_credentials().unwrap().pid;
        let message = conn.recv_timeout(Duration::from_secs(30)).unwrap();
        let mut answer = b"echo: ".to_vec();
        answer.extend_from_slice(&message);
        conn.send(&answer).unwrap();
        opener
    });

    let mut sender = Proc::spawn({
        let mut cmd = Command::new(common::c_program());
        cmd.arg("send-handles")
            .args([&pipe, &mapping, &event])
            .arg(&file)
            .arg(&echo);
        cmd
    });
    sender.wait_for_within("ready", Duration::from_secs(30));
    let received = c(&["recv-handles", pipe.as_str()]);
    let lines: Vec<&str> = received.lines().collect();
    let expect = |i: usize, prefix: &str| {
        assert!(
            lines.get(i).is_some_and(|l| l.starts_with(prefix)),
            "line {i} should start with {prefix:?}:\n{received}"
        )
    };
    // A plain receive of a handle frame takes nothing and says what to call.
    expect(0, "recv: PROCWIRE_STATUS_WRONG_FRAME: ");
    assert!(lines[0].contains("recv_handle"), "{received}");
    expect(1, &format!(r#"handle: kind 1 access 3 name "{mapping}""#));
    // Asked for as another kind, the handle names what it is, and stays usable.
    expect(
        2,
        &format!(
            "into_pipe: PROCWIRE_STATUS_WRONG_KIND: procwire_passed_handle_into_pipe: the \
             passed handle is a mapping `{mapping}`, not a pipe connection; take it with \
             procwire_passed_handle_into_mapping"
        ),
    );
    expect(
        3,
        "again: PROCWIRE_STATUS_INVALID_ARGUMENT: the passed handle's object was already taken out",
    );
    expect(4, "mapping: from the sender (4096 bytes)");
    expect(5, &format!(r#"handle: kind 1 access 1 name "{mapping}""#));
    expect(
        6,
        "read-only: writable 0, reads from the sender; write: PROCWIRE_STATUS_NOT_PERMITTED",
    );
    expect(7, r#"handle: kind 2 access 1 name """#);
    expect(8, "file: file contents (read 13 bytes; write refused)");
    expect(9, &format!(r#"handle: kind 3 access 3 name "{echo}""#));
    expect(10, "echo: echo: hello through a passed pipe");
    expect(11, &format!(r#"handle: kind 6 access 3 name "{event}""#));
    expect(12, "event set");
    assert_eq!(lines.len(), 13, "{received}");

    // The echo server saw the sender open the connection, and the receiver talk on it.
    assert_eq!(echoing.join().unwrap(), sender.pid());
    sender.wait_for_within(
        "self: PROCWIRE_STATUS_INVALID_ARGUMENT: the arguments `connection` and `passed` are the same connection",
        Duration::from_secs(30),
    );
    // The event woke the sender, which reads what the receiver wrote into the mapping.
    sender.wait_for_within("reply: from the receiver", Duration::from_secs(30));
    assert!(sender
        .exit_within(Duration::from_secs(30))
        .unwrap()
        .success());
    let _ = std::fs::remove_file(&file);
}
