//! `procwire pipe serve --shm` and `procwire pipe connect --shm`, as separate processes: the
//! shared-memory data path when both ask for it, the socket when either does not (another
//! `procwire`, a Python client written from docs/protocol.md), and which one was taken.

mod util;

use std::process::Output;
use std::time::Duration;

use util::{procwire, run, serve, unique_name, Watchdog};

/// The Python client of docs/protocol.md, which knows nothing of shared memory.
const PYTHON_CLIENT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/python/pipe_client.py"
);

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `procwire -v pipe connect NAME ARGS...` fed `input`, to the end.
fn connect(name: &str, args: &[&str], input: &[u8]) -> Output {
    let mut cmd = procwire();
    cmd.args(["-v", "pipe", "connect", name]).args(args);
    let out = run(cmd, input, Duration::from_secs(20));
    assert!(
        out.status.success(),
        "connect failed: {}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    out
}

/// Lines that each travel as one message, one of them longer than a 4 KiB ring.
fn messages() -> Vec<String> {
    let long: String = (0..10_000)
        .map(|i| (b'a' + (i % 26) as u8) as char)
        .collect();
    vec![
        "hello".into(),
        "over shared memory".into(),
        long,
        "bye".into(),
    ]
}

fn input(lines: &[String]) -> Vec<u8> {
    lines
        .iter()
        .flat_map(|l| format!("{l}\n").into_bytes())
        .collect()
}

fn echoed(out: &Output) -> Vec<String> {
    text(&out.stdout).lines().map(str::to_owned).collect()
}

#[test]
fn serve_shm_and_connect_shm_round_trip_messages_longer_than_the_ring() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let name = unique_name("cli-shm");
    let mut server = serve(&name, &["--shm", "--ring-size", "4KiB", "--echo"]);
    let lines = messages();
    let out = connect(&name, &["--shm"], &input(&lines));
    assert_eq!(echoed(&out), lines);
    let stderr = text(&out.stderr);
    assert!(stderr.contains("over shared memory"), "{stderr}");
    let line = server.wait_for_within("connected", Duration::from_secs(10));
    assert!(
        line.contains("(read-write access, shared memory)"),
        "{line}"
    );
}

#[test]
fn a_shm_server_serves_a_plain_connect_and_a_python_client_over_the_socket() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let name = unique_name("cli-shm-plain");
    let mut server = serve(&name, &["--shm", "--echo"]);
    let lines = messages();
    let out = connect(&name, &[], &input(&lines));
    assert_eq!(echoed(&out), lines);
    let stderr = text(&out.stderr);
    assert!(stderr.contains("over the socket"), "{stderr}");
    let line = server.wait_for_within("connected", Duration::from_secs(10));
    assert!(line.contains("(read-write access, socket)"), "{line}");

    let mut python = std::process::Command::new("python3");
    python.args([PYTHON_CLIENT, &name, "message"]);
    let out = run(python, b"", Duration::from_secs(20));
    assert!(
        out.status.success() && text(&out.stdout).contains("OK message"),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

#[test]
fn connect_shm_to_a_plain_server_goes_over_the_socket() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let name = unique_name("cli-noshm");
    let mut server = serve(&name, &["--echo"]);
    let lines = messages();
    let out = connect(&name, &["--shm"], &input(&lines));
    assert_eq!(echoed(&out), lines);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("over the socket (the server offers no shared memory)"),
        "{stderr}"
    );
    let line = server.wait_for_within("connected", Duration::from_secs(10));
    assert!(line.contains("(read-write access)"), "{line}");
}

#[test]
fn ring_sizes_that_cannot_be_offered_are_refused_before_serving() {
    let _wd = Watchdog::new(Duration::from_secs(30));
    let name = unique_name("cli-shm-size");
    for (args, expect) in [
        (&["--shm", "--ring-size", "5000"][..], "power of two"),
        (&["--shm", "--ring-size", "2KiB"][..], "power of two"),
        (&["--shm", "--ring-size", "lots"][..], "not a size"),
        (&["--ring-size", "64KiB"][..], "--shm"),
    ] {
        let mut cmd = procwire();
        cmd.args(["pipe", "serve", &name]).args(args);
        let out = run(cmd, b"", Duration::from_secs(10));
        let stderr = text(&out.stderr);
        assert!(!out.status.success(), "{args:?} was accepted");
        assert!(stderr.contains(expect), "{args:?}: {stderr}");
    }
}
