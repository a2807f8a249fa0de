//! The C11 program of examples/c/, built with the system's gcc against the library: a
//! mutex holder killed mid-way, and failures as status codes and messages.

mod common;

use std::process::Command;
use std::time::Duration;

use procwire::mapping::MappingOptions;
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
