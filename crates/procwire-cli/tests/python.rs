//! The pipe protocol as `docs/protocol.md` states it: `tests/python/pipe_client.py`, a client
//! written from that page alone with Python's standard library, against the real
//! `procwire pipe serve` binary. When these fail and the Rust tests pass, the page and the
//! code disagree.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use procwire::name::Namespace;

/// The client under test.
const CLIENT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/python/pipe_client.py"
);

/// How long the server may take to start and the client to finish before the test fails.
const LIMIT: Duration = Duration::from_secs(20);

/// A pipe name no other test (or test run) uses.
fn unique_name(tag: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "py-{tag}-{}-{}-{nanos:x}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Reads a child's output to the end on a thread of its own, so the child never blocks on
/// a full pipe.
fn drain(mut from: impl Read + Send + 'static) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = from.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// A `procwire pipe serve NAME --echo` process, killed and reaped when dropped.
struct Server {
    child: Child,
    stderr: Arc<Mutex<String>>,
}

impl Server {
    /// Starts the server and waits until it says it is listening.
    fn start(name: &str, mode: &str) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_procwire"))
            .args(["pipe", "serve", name, "--echo", "--mode", mode])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start `procwire pipe serve`");
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr_pipe = child.stderr.take().expect("piped stderr");
        let stderr = Arc::new(Mutex::new(String::new()));
        let server = Server {
            child,
            stderr: Arc::clone(&stderr),
        };
        std::thread::spawn(move || {
            for line in BufReader::new(stderr_pipe).lines() {
                let Ok(line) = line else { break };
                let mut all = stderr.lock().unwrap_or_else(|e| e.into_inner());
                all.push_str(&line);
                all.push('\n');
            }
        });
        let (ready_tx, ready_rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut stdout = BufReader::new(stdout);
            let mut first = String::new();
            let _ = stdout.read_line(&mut first);
            let _ = ready_tx.send(first);
            // The server prints every message it receives (100 kB in one test): keep reading
            // so that it never stalls on a full stdout.
            let _ = std::io::copy(&mut stdout, &mut std::io::sink());
        });
        let first = ready_rx.recv_timeout(LIMIT).unwrap_or_else(|_| {
            panic!(
                "the server did not say it was listening within {LIMIT:?}; stderr:\n{}",
                server.stderr()
            )
        });
        assert!(
            first.starts_with("listening on "),
            "the server's first line is {first:?}, not \"listening on ...\"; stderr:\n{}",
            server.stderr()
        );
        server
    }

    fn stderr(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the Python client did.
#[derive(Debug)]
struct Run {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Run {
    /// Fails the test unless the client exited 0 and printed `expected`.
    fn assert_ok(&self, expected: &str, server: &Server) {
        assert!(
            self.status.success() && self.stdout.lines().any(|l| l == expected),
            "the Python client failed ({}), expected the line {expected:?}\n\
             stdout:\n{}\nstderr:\n{}\nserver stderr:\n{}",
            self.status,
            self.stdout,
            self.stderr,
            server.stderr()
        );
    }
}

/// Runs `pipe_client.py TARGET MODE`, killing it and failing the test after [`LIMIT`].
fn python(target: &str, mode: &str) -> Run {
    let mut child = Command::new("python3")
        .arg(CLIENT)
        .args([target, mode])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run python3 (is it installed?): {e}"));
    let stdout = drain(child.stdout.take().expect("piped stdout"));
    let stderr = drain(child.stderr.take().expect("piped stderr"));
    let deadline = Instant::now() + LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("poll the Python client") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the Python client `{mode}` did not finish within {LIMIT:?}\n\
                 stdout:\n{}\nstderr:\n{}",
                stdout.join().unwrap_or_default(),
                stderr.join().unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Run {
        status,
        stdout: stdout.join().expect("read the client's stdout"),
        stderr: stderr.join().expect("read the client's stderr"),
    }
}

#[test]
fn python_client_exchanges_messages_with_a_message_type_pipe() {
    let name = unique_name("message");
    let server = Server::start(&name, "message");
    python(&name, "message").assert_ok("OK message", &server);
}

#[test]
fn python_client_streams_bytes_over_a_byte_type_pipe() {
    let name = unique_name("byte");
    let server = Server::start(&name, "byte");
    python(&name, "byte").assert_ok("OK byte", &server);
}

#[test]
fn message_read_mode_on_a_byte_type_pipe_is_refused_with_status_4() {
    let name = unique_name("mismatch");
    let server = Server::start(&name, "byte");
    let run = python(&name, "message");
    assert!(
        !run.status.success() && run.stderr.contains("status 4 (ModeMismatch)"),
        "expected a ModeMismatch refusal: {run:?}"
    );
    // The refusal leaves the server serving.
    python(&name, "byte").assert_ok("OK byte", &server);
}

#[test]
fn garbage_handshake_gets_bad_request_and_the_server_keeps_serving() {
    let name = unique_name("garbage");
    let server = Server::start(&name, "message");
    // By socket path this time, as the Rust side resolves it: the Python resolution of bare
    // names is covered by the other tests.
    let socket = Namespace::Local.root().join("pipe").join(&name);
    let socket = socket.to_str().expect("a UTF-8 socket path");
    let run = python(socket, "garbage");
    run.assert_ok("OK garbage", &server);
    let answer = run
        .stdout
        .lines()
        .find(|l| l.starts_with("status="))
        .unwrap_or_else(|| panic!("no status line: {run:?}"));
    assert!(answer.starts_with("status=6 "), "{answer}");
    assert!(answer.contains("magic"), "{answer}");
    python(&name, "message").assert_ok("OK message", &server);
}
