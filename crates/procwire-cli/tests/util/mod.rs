//! Helpers for tests that run real processes: unique names, a watchdog, and child
//! processes that are killed when the test ends.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The `procwire` binary under test.
pub fn procwire() -> Command {
    Command::new(env!("CARGO_BIN_EXE_procwire"))
}

/// The `procwire` binary copied where every user can run it, for tests that run it as
/// another user: the build tree may sit in a private (0700) home directory.
pub fn procwire_for_others() -> Command {
    use std::os::unix::fs::PermissionsExt;
    static COPY: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    let path = COPY.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("procwire-bin-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let copy = dir.join("procwire");
        std::fs::copy(env!("CARGO_BIN_EXE_procwire"), &copy).unwrap();
        std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
        copy
    });
    Command::new(path)
}

/// A pipe name no other test (or test run) uses.
pub fn unique_name(tag: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "t-{tag}-{}-{}-{nanos:x}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Ends the whole test process if the test is not done in time, so that a hang fails
/// instead of stalling CI.
pub struct Watchdog(Option<mpsc::Sender<()>>);

impl Watchdog {
    pub fn new(limit: Duration) -> Watchdog {
        let (tx, rx) = mpsc::channel::<()>();
        let test = std::thread::current().name().unwrap_or("a test").to_owned();
        std::thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(limit) {
                eprintln!("watchdog: {test} still running after {limit:?}; aborting");
                std::process::exit(101);
            }
        });
        Watchdog(Some(tx))
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(());
        }
    }
}

/// A child process killed (SIGKILL) and reaped when dropped. Its stdout is drained by a
/// thread, so a chatty child never blocks on a full pipe.
pub struct Proc {
    pub child: Child,
    lines: mpsc::Receiver<String>,
}

impl Proc {
    /// Starts `cmd` with piped stdout.
    pub fn spawn(mut cmd: Command) -> Proc {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(Stdio::null())
            .spawn()
            .expect("start child process");
        let stdout: ChildStdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line + "\n").is_err() {
                    break;
                }
            }
        });
        Proc { child, lines }
    }

    /// The next line of the child's stdout (empty at end of stream).
    pub fn line(&mut self) -> String {
        self.lines.recv().unwrap_or_default()
    }

    /// The next line of the child's stdout, waiting at most `limit` (`None` when none came;
    /// empty at end of stream).
    pub fn line_timeout(&mut self, limit: Duration) -> Option<String> {
        match self.lines.recv_timeout(limit) {
            Ok(line) => Some(line),
            Err(mpsc::RecvTimeoutError::Disconnected) => Some(String::new()),
            Err(mpsc::RecvTimeoutError::Timeout) => None,
        }
    }

    /// Discards the lines printed so far; returns them.
    pub fn drain(&mut self) -> Vec<String> {
        self.lines.try_iter().collect()
    }

    /// Reads stdout lines until one contains `needle`; returns it. Panics at end of stream.
    pub fn wait_for(&mut self, needle: &str) -> String {
        loop {
            let line = self.line();
            if line.is_empty() {
                let mut err = String::new();
                if let Some(e) = self.child.stderr.as_mut() {
                    let _ = e.read_to_string(&mut err);
                }
                panic!("child ended without printing {needle:?}; stderr: {err}");
            }
            if line.contains(needle) {
                return line;
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the child with SIGKILL and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `procwire pipe serve NAME ARGS...`, waited for until it listens.
pub fn serve(name: &str, args: &[&str]) -> Proc {
    let mut cmd = procwire();
    cmd.args(["pipe", "serve", name]).args(args);
    let mut server = Proc::spawn(cmd);
    server.wait_for("listening on");
    server
}

/// Runs `cmd` to the end with `input` on stdin, killing it after `limit`.
pub fn run(mut cmd: Command, input: &[u8], limit: Duration) -> Output {
    use std::io::Write;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start child process");
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let out = child.wait_with_output();
        let _ = tx.send(());
        out
    });
    let start = Instant::now();
    if rx.recv_timeout(limit).is_err() {
        let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        panic!("child {pid} did not finish in {:?}", start.elapsed());
    }
    let _ = writer.join();
    waiter.join().unwrap().expect("child output")
}
