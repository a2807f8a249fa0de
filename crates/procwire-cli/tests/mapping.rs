//! File mapping across real processes: the `procwire shm` commands on one side, this process
//! or Python on the other.

mod util;

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use procwire::mapping::{Lifetime, Mapping, MappingError, MappingOptions};
use procwire::registry::NamedObject;
use procwire::security::Access;
use procwire::sync::NamedMutex;
use util::{procwire, procwire_for_others, run, unique_name, Watchdog};

const SEED_MESSAGE: &str = "Message from the first process";
const LIMIT: Duration = Duration::from_secs(20);

/// `procwire ARGS...`, run to the end.
fn cli(args: &[&str]) -> Output {
    let mut cmd = procwire();
    cmd.args(args);
    run(cmd, b"", LIMIT)
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts that `out` succeeded and returns its stdout.
fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "failed ({}): {}",
        out.status,
        stderr(&out)
    );
    stdout(&out)
}

/// Asserts that `out` failed with `needle` in its stderr.
fn fails_with(out: Output, needle: &str) {
    assert!(!out.status.success(), "succeeded: {}", stdout(&out));
    assert!(
        stderr(&out).contains(needle),
        "expected {needle:?} in stderr: {}",
        stderr(&out)
    );
}

/// A child whose standard input we hold (closing it tells `--hold` to finish), with its
/// stdout lines read on a thread. Killed when dropped.
struct Held {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
}

impl Held {
    fn spawn(mut cmd: Command) -> Held {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start child process");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Held {
            child,
            stdin,
            lines,
        }
    }

    fn wait_for(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + LIMIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(_) => panic!("the child never printed {needle:?}"),
            }
        }
    }

    /// Closes the child's stdin and waits for it to exit cleanly.
    fn finish(&mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + LIMIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "the child failed: {status}");
                return;
            }
            assert!(Instant::now() < deadline, "the child did not exit");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_seed_exchange_runs_in_separate_processes() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let name = format!(r"Local\{}", unique_name("seed"));
    let mut cmd = procwire();
    cmd.args([
        "shm",
        "create",
        &name,
        "--size",
        "4096",
        "--write",
        SEED_MESSAGE,
        "--hold",
    ]);
    let mut server = Held::spawn(cmd);
    let created = server.wait_for("created");
    let shm = Mapping::shm_name_of(name.as_str()).unwrap();
    assert!(created.contains(&format!("/dev/shm/{shm}")), "{created}");
    server.wait_for("holding");

    // The client is another process: `procwire shm read`.
    let out = ok(cli(&["shm", "read", &name]));
    assert_eq!(out, format!("{SEED_MESSAGE}\n"));

    // And this one, through the library, read-only.
    let mapping = Mapping::open(name.as_str(), Access::Read).unwrap();
    assert_eq!(mapping.size(), 4096);
    assert_eq!(mapping.lifetime(), Lifetime::RemoveOnDrop);
    let view = mapping.view(0, 4096).unwrap();
    assert!(!view.is_writable());
    let mut bytes = vec![0u8; SEED_MESSAGE.len() + 1];
    view.read_at(0, &mut bytes).unwrap();
    assert_eq!(&bytes[..SEED_MESSAGE.len()], SEED_MESSAGE.as_bytes());
    assert_eq!(bytes[SEED_MESSAGE.len()], 0, "written as a C string");

    // The server closes: the name goes with it, while our view lives on.
    server.finish();
    fails_with(cli(&["shm", "read", &name]), "no mapping named");
    assert!(!Mapping::exists(name.as_str()).unwrap());
    assert_eq!(view.read_vec(0, 7).unwrap(), b"Message");
}

#[test]
fn a_file_backed_mapping_outlives_both_processes_and_its_file_holds_the_data() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let name = unique_name("file");
    let dir = std::env::temp_dir().join(unique_name("file-dir"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("backing.bin");
    let path_str = path.to_str().unwrap();

    // Process 1 creates it on a new file and writes; process 2 opens it by name and writes.
    let out = ok(cli(&[
        "shm", "create", &name, "--file", path_str, "--size", "8K", "--write", "first",
    ]));
    assert!(
        out.contains(&format!("8192 bytes of the file {path_str}")),
        "{out}"
    );
    ok(cli(&["shm", "write", &name, "second", "--offset", "4096"]));

    // Both have exited; the mapping is still there by name, and the file holds the data.
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(bytes.len(), 8192);
    assert_eq!(&bytes[..6], b"first\0");
    assert_eq!(&bytes[4096..4103], b"second\0");
    let mapping = Mapping::open(name.as_str(), Access::ReadWrite).unwrap();
    assert_eq!(mapping.file_path(), Some(path.as_path()));
    assert_eq!(mapping.shm_name(), None);
    assert_eq!(
        ok(cli(&["shm", "read", &name, "--offset", "4096"])),
        "second\n"
    );

    // A write through a view reaches the file once flushed.
    let view = mapping.view(100, 10).unwrap();
    view.write_at(0, b"flushed").unwrap();
    view.flush().unwrap();
    assert_eq!(&std::fs::read(&path).unwrap()[100..107], b"flushed");

    // Removing the name keeps the user's file.
    ok(cli(&["shm", "rm", &name]));
    assert!(path.exists());
    let e = Mapping::open(name.as_str(), Access::Read).unwrap_err();
    assert!(matches!(e, MappingError::NotFound { .. }), "{e}");

    // An existing file without a size gives its length; an empty one is refused.
    let m = MappingOptions::new()
        .backed_by_file(&path)
        .create(name.as_str())
        .unwrap();
    assert_eq!(m.size(), 8192);
    drop(m);
    let empty = dir.join("empty.bin");
    std::fs::write(&empty, b"").unwrap();
    let e = MappingOptions::new()
        .backed_by_file(&empty)
        .create(name.as_str())
        .unwrap_err();
    assert!(matches!(e, MappingError::InvalidSize { .. }), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The interop script: opens the procwire mapping by its /dev/shm name with Python's
/// standard library, checks what procwire wrote, and writes an answer.
const PYTHON_INTEROP: &str = r#"
import struct, sys
from multiprocessing import shared_memory, resource_tracker

shm_name, expected = sys.argv[1], sys.argv[2].encode()
shm = shared_memory.SharedMemory(name=shm_name)
# Python < 3.13 registers even shared memory it only opened, and unlinks it at exit.
resource_tracker.unregister(shm._name, "shared_memory")
got = bytes(shm.buf[:len(expected)])
if got != expected:
    sys.exit(f"read {got!r}, expected {expected!r}")
print(f"size {shm.size}")
answer = b"Reply from Python\0"
shm.buf[100:100 + len(answer)] = answer
struct.pack_into("=Q", shm.buf, 512, 0x0102030405060708)
shm.close()
print("OK")
"#;

fn python(args: &[&str]) -> Output {
    let mut cmd = Command::new("python3");
    cmd.args(["-c", PYTHON_INTEROP]).args(args);
    run(cmd, b"", LIMIT)
}

#[test]
fn python_reads_what_procwire_wrote_and_procwire_reads_what_python_wrote() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    for name in [
        unique_name("py"),
        format!(r"Global\{}", unique_name("py-global")),
    ] {
        let out = ok(cli(&[
            "shm",
            "create",
            &name,
            "--size",
            "4096",
            "--write",
            SEED_MESSAGE,
        ]));
        let shm = Mapping::shm_name_of(name.as_str()).unwrap();
        assert!(
            out.contains(&format!("SharedMemory(name=\"{shm}\")")),
            "{out}"
        );

        let py = python(&[&shm, SEED_MESSAGE]);
        assert!(
            py.status.success() && stdout(&py).contains("OK"),
            "python failed: {}{}",
            stdout(&py),
            stderr(&py)
        );
        assert!(stdout(&py).contains("size 4096"), "{}", stdout(&py));

        // Python's writes, seen by another procwire process and by the library.
        assert_eq!(
            ok(cli(&["shm", "read", &name, "--offset", "100"])),
            "Reply from Python\n"
        );
        let mapping = Mapping::open(name.as_str(), Access::ReadWrite).unwrap();
        let view = mapping.view(0, 4096).unwrap();
        assert_eq!(
            view.atomic_u64(512)
                .unwrap()
                .load(std::sync::atomic::Ordering::Acquire),
            0x0102030405060708
        );
        // Python exiting did not remove the mapping.
        assert!(Mapping::exists(name.as_str()).unwrap());
        ok(cli(&["shm", "rm", &name]));
        assert!(!std::path::Path::new(&format!("/dev/shm/{shm}")).exists());
    }
}

#[test]
fn bad_input_ends_in_clear_errors() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let name = unique_name("bad");

    // A missing name.
    fails_with(
        cli(&["shm", "read", &name]),
        &format!(r"no mapping named `Local\{name}`: nothing of that name exists"),
    );
    fails_with(cli(&["shm", "rm", &name]), "no mapping named");

    // A name of another kind.
    let mutex = NamedMutex::create(name.as_str()).unwrap();
    fails_with(
        cli(&["shm", "read", &name]),
        &format!(r"`Local\{name}` is a mutex, not a mapping"),
    );
    fails_with(
        cli(&["shm", "create", &name, "--size", "10"]),
        "is a mutex, not a mapping",
    );
    fails_with(cli(&["shm", "rm", &name]), "is a mutex, not a mapping");
    assert!(
        NamedMutex::exists(name.as_str()).unwrap(),
        "rm left it alone"
    );
    drop(mutex);

    // A zero size, a name too long, a pipe name.
    fails_with(
        cli(&["shm", "create", &name, "--size", "0"]),
        "invalid size: a size of zero bytes",
    );
    fails_with(
        cli(&["shm", "create", &"n".repeat(65), "--size", "1"]),
        "is too long: the object part is 65 bytes, at most 64",
    );
    fails_with(
        cli(&["shm", "create", &format!(r"\\.\pipe\{name}"), "--size", "1"]),
        "is a pipe name, but a mapping was asked for",
    );

    // A view past the end, and an existing name.
    ok(cli(&["shm", "create", &name, "--size", "4096"]));
    fails_with(
        cli(&["shm", "read", &name, "--offset", "4000", "--len", "200"]),
        "200 bytes at offset 4000 reach past the end of the mapping (4096 bytes)",
    );
    fails_with(
        cli(&["shm", "read", &name, "--offset", "5000"]),
        "offset 5000 is past the end",
    );
    fails_with(
        cli(&["shm", "create", &name, "--size", "1"]),
        "a mapping of that name exists",
    );
    ok(cli(&["shm", "rm", &name]));

    // /dev/shm memory that no entry claims is neither taken over nor removed: it may be
    // in use through another registry (another XDG_RUNTIME_DIR).
    let shm = Mapping::shm_name_of(name.as_str()).unwrap();
    let shm_path = format!("/dev/shm/{shm}");
    std::fs::write(&shm_path, b"someone else's").unwrap();
    fails_with(
        cli(&["shm", "create", &name, "--size", "10"]),
        &format!(
            "belongs to uid {}, and no procwire object claims it",
            procwire::security::AccessList::owner_only().owner()
        ),
    );
    fails_with(cli(&["shm", "rm", &name]), "so it is left alone");
    assert_eq!(std::fs::read(&shm_path).unwrap(), b"someone else's");
    std::fs::remove_file(&shm_path).unwrap();
    ok(cli(&["shm", "create", &name, "--size", "10"]));
    ok(cli(&["shm", "rm", &name]));
}

#[test]
#[ignore = "needs root: drops to `nobody`"]
fn access_is_enforced_against_another_user() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let as_nobody = |args: &[&str]| {
        use std::os::unix::process::CommandExt;
        let mut cmd = procwire_for_others();
        cmd.args(args).uid(65534).gid(65534);
        run(cmd, b"", LIMIT)
    };

    // Owner only (the default): refused, with who asked and what the object grants.
    let name = format!(r"Global\{}", unique_name("acl-default"));
    ok(cli(&[
        "shm", "create", &name, "--size", "64", "--write", "secret",
    ]));
    let out = as_nobody(&["shm", "read", &name]);
    fails_with(out, "access to mapping");
    let out = as_nobody(&["shm", "read", &name]);
    let err = stderr(&out);
    assert!(
        err.contains("uid 65534 asked for read access")
            && err.contains("grants other users no access"),
        "{err}"
    );
    // Nor may another user remove it.
    fails_with(
        as_nobody(&["shm", "rm", &name]),
        "only that user (or root) can remove it",
    );
    ok(cli(&["shm", "rm", &name]));

    // Everyone read: reading works, writing is refused.
    let name = format!(r"Global\{}", unique_name("acl-read"));
    ok(cli(&[
        "shm",
        "create",
        &name,
        "--size",
        "64",
        "--write",
        "news",
        "--everyone",
        "read",
    ]));
    assert_eq!(ok(as_nobody(&["shm", "read", &name])), "news\n");
    fails_with(
        as_nobody(&["shm", "write", &name, "graffiti"]),
        "asked for read-write access",
    );
    assert_eq!(ok(cli(&["shm", "read", &name])), "news\n");
    ok(cli(&["shm", "rm", &name]));

    // Everyone read-write: the other user writes, the owner reads it.
    let name = format!(r"Global\{}", unique_name("acl-rw"));
    ok(cli(&[
        "shm",
        "create",
        &name,
        "--size",
        "64",
        "--everyone",
        "readwrite",
    ]));
    ok(as_nobody(&["shm", "write", &name, "hello from nobody"]));
    assert_eq!(ok(cli(&["shm", "read", &name])), "hello from nobody\n");
    ok(cli(&["shm", "rm", &name]));

    // A mapping is backed only by a file of its creator's: here root is given a file that
    // belongs to nobody (which nobody could read or change under it) and refuses it; a link
    // planted at the path is not followed either.
    let name = format!(r"Global\{}", unique_name("acl-file"));
    let path = std::env::temp_dir().join(unique_name("acl-file"));
    std::fs::write(&path, b"nobody's data").unwrap();
    std::os::unix::fs::chown(&path, Some(65534), Some(65534)).unwrap();
    fails_with(
        cli(&["shm", "create", &name, "--file", path.to_str().unwrap()]),
        "belongs to uid 65534; a mapping is backed only by a file of the user who creates it",
    );
    let link = std::env::temp_dir().join(unique_name("acl-link"));
    std::os::unix::fs::symlink(&path, &link).unwrap();
    fails_with(
        cli(&[
            "shm",
            "create",
            &name,
            "--file",
            link.to_str().unwrap(),
            "--size",
            "64",
        ]),
        "is a symbolic link",
    );
    assert_eq!(std::fs::read(&path).unwrap(), b"nobody's data");
    std::fs::remove_file(&link).unwrap();
    assert!(
        !cli(&["shm", "rm", &name]).status.success(),
        "nothing was made"
    );
    let _ = std::fs::remove_file(&path);

    // Local is private: another user's Local is another namespace altogether.
    let name = unique_name("local");
    ok(cli(&[
        "shm",
        "create",
        &name,
        "--size",
        "64",
        "--everyone",
        "readwrite",
    ]));
    fails_with(as_nobody(&["shm", "read", &name]), "no mapping named");
    ok(cli(&["shm", "rm", &name]));
}

#[test]
fn demo_shows_the_file_mapping_exchange_between_processes() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let out = ok(cli(&["demo"]));
    let section: Vec<&str> = out
        .lines()
        .skip_while(|l| !l.starts_with("== File mapping:"))
        .take_while(|l| !l.starts_with("== File mapping: done"))
        .collect();
    let read = section
        .iter()
        .find(|l| l.ends_with(&format!("] {SEED_MESSAGE}")))
        .unwrap_or_else(|| panic!("no client read the message: {out}"));
    let server = section
        .iter()
        .find(|l| l.contains("] created"))
        .unwrap_or_else(|| panic!("no server created the mapping: {out}"));
    let pid = |line: &str| {
        line.split(']')
            .next()
            .unwrap()
            .rsplit(' ')
            .next()
            .unwrap()
            .to_owned()
    };
    assert!(read.starts_with("[client pid"), "{read}");
    assert_ne!(pid(read), pid(server), "two processes");
    assert!(
        section.iter().any(|l| l.contains("no mapping named")),
        "the name went with the server: {out}"
    );
}
