//! A client asking for shared memory, handed a forged data path by a hostile server:
//! `tests/python/forged_shm_server.py`, a separate process written from docs/protocol.md
//! with Python's standard library, answers the handshake and then passes a region that is
//! unsealed, the wrong size, a wrong header, a plain file or a pipe, or the wrong number of
//! descriptors. The client must refuse each at once with a protocol error that says what
//! was wrong, and keep neither a descriptor nor a mapping of what it refused; a correct
//! region from the same script must be taken (so that the refusals are the forgeries').

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use procwire::name::{NameClass, Namespace};
use procwire::pipe::{ClientOptions, PipeConnection, PipeError};
use procwire::wire::PipeMode;
use procwire_testkit::{unique_name, Proc, Watchdog};

/// The hostile server.
const SERVER: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/python/forged_shm_server.py"
);

/// How long a client waits for the server's answers.
const TIMEOUT: Duration = Duration::from_secs(5);

/// A forged server for `case`, listening where the pipe `name` lives; its socket file is
/// removed when it is dropped.
struct Forger {
    name: String,
    socket: PathBuf,
    _server: Proc,
}

impl Forger {
    fn start(case: &str) -> Forger {
        let name = unique_name(&format!("forged-{}", case.replace('_', "-")));
        let socket = Namespace::Local
            .directory(NameClass::Pipe)
            .expect("the Local pipe directory")
            .join(&name);
        let mut cmd = Command::new("python3");
        cmd.arg(SERVER).arg(&socket).arg(case);
        let mut server = Proc::spawn(cmd);
        server.wait_for_within("READY", Duration::from_secs(20));
        Forger {
            name,
            socket,
            _server: server,
        }
    }

    fn open(&self) -> Result<PipeConnection, PipeError> {
        ClientOptions::new()
            .read_mode(PipeMode::Message)
            .shared_memory(true)
            .timeout(TIMEOUT)
            .open(self.name.as_str())
    }
}

impl Drop for Forger {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// This process's descriptors and mappings of the forged files of `case` (the script names
/// them `forged-CASE`).
fn kept(case: &str) -> Vec<String> {
    let tag = format!("forged-{case}");
    let mut found: Vec<String> = std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .map(|target| target.to_string_lossy().into_owned())
        .filter(|target| target.contains(&tag))
        .map(|target| format!("descriptor {target}"))
        .collect();
    let maps = std::fs::read_to_string("/proc/self/maps").expect("/proc/self/maps");
    found.extend(
        maps.lines()
            .filter(|l| l.contains(&tag))
            .map(|l| format!("mapping {l}")),
    );
    found
}

#[test]
fn a_correct_region_from_the_same_script_is_taken() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let forger = Forger::start("valid");
    let pipe = forger.open().expect("a correct offer is taken");
    assert!(pipe.is_shared_memory());
    assert!(!kept("valid").is_empty(), "the region is mapped");
    drop(pipe);
    assert_eq!(kept("valid"), Vec::<String>::new(), "dropped with the pipe");
}

#[test]
fn forged_regions_and_descriptors_are_refused_with_a_clear_error() {
    let _wd = Watchdog::new(Duration::from_secs(120));
    let cases = [
        (
            "unsealed",
            "not sealed against shrinking, growing and unsealing",
        ),
        (
            "partly_sealed",
            "not sealed against shrinking, growing and unsealing",
        ),
        ("write_sealed", "the memory region is unusable"),
        ("too_small", "a region of 4096 bytes"),
        ("too_large", "a region of 2147491840 bytes"),
        ("size_mismatch", "rings of 4096 bytes in a region of 20480"),
        ("bad_magic", "magic [88, 88, 88, 88], not PWSR"),
        ("bad_version", "layout version 2"),
        ("bad_capacity", "rings of 6144 bytes"),
        ("plain_file", "the memory region is unusable"),
        ("pipe", "a region of 0 bytes"),
        ("pipe_bell", "the doorbell is not a stream socket"),
        ("no_fds", "0 descriptors came with a SharedMemory record"),
        ("one_fd", "1 descriptors came with a SharedMemory record"),
        ("too_many_fds", "more descriptors than expected"),
        ("fds_with_socket", "2 descriptors came with a Socket record"),
        ("bad_record", "magic"),
    ];
    let mut wrong = Vec::new();
    for (case, expect) in cases {
        let forger = Forger::start(case);
        match forger.open() {
            Ok(_) => wrong.push(format!("{case}: the client took the forged offer")),
            Err(e @ PipeError::Protocol { .. }) => {
                let text = e.to_string();
                if !text.contains(expect) {
                    wrong.push(format!("{case}: `{text}` does not say {expect:?}"));
                }
            }
            Err(e) => wrong.push(format!("{case}: not a protocol error: {e}")),
        }
        let kept = kept(case);
        if !kept.is_empty() {
            wrong.push(format!("{case}: the client kept {kept:?}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn a_server_that_never_sends_the_data_path_makes_the_client_time_out() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let forger = Forger::start("silence");
    let started = std::time::Instant::now();
    match forger.open() {
        Err(PipeError::Timeout { .. }) => {}
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(started.elapsed() >= TIMEOUT / 2, "it waited for the server");
}

#[test]
fn a_region_scribbled_after_the_handshake_fails_the_first_receive() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let forger = Forger::start("scribble");
    let mut pipe = forger.open().expect("the offer itself is correct");
    assert!(pipe.is_shared_memory());
    match pipe.recv() {
        Err(e @ PipeError::Protocol { .. }) => {
            assert!(e.to_string().contains("shared-memory ring"), "{e}")
        }
        other => panic!("expected a protocol error, got {other:?}"),
    }
}
