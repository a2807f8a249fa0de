//! What procwire's multi-process tests share: names no other test uses, a watchdog that
//! fails a hung test instead of stalling CI, child processes that are killed when a test
//! ends, and helpers that re-execute the test binary in another role.
//!
//! A test file declares its helper body once:
//!
//! ```ignore
//! #[test]
//! fn helper_process() {
//!     let Some(role) = procwire_testkit::helper_role() else { return };
//!     match role.as_str() { "server" => { /* ... */ } other => panic!("{other}") }
//! }
//! ```
//!
//! and starts helpers with [`helper`].

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The environment variable that carries a helper's role.
pub const ROLE_VAR: &str = "PROCWIRE_TEST_ROLE";

/// A name no other test (or test run) uses.
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
#[derive(Debug)]
pub struct Watchdog(Option<mpsc::Sender<()>>);

impl Watchdog {
    /// Starts watching the current test for `limit`.
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
#[derive(Debug)]
pub struct Proc {
    /// The child.
    pub child: Child,
    lines: mpsc::Receiver<String>,
}

impl Proc {
    /// Starts `cmd` with piped stdout and stderr and no stdin.
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

    /// Reads stdout lines until one contains `needle`; returns it. Panics at end of stream,
    /// with the child's stderr.
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

    /// The child's pid.
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

/// Runs `cmd` to the end with `input` on stdin, killing it after `limit` (then panics).
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

/// A copy of `program` where every user can run it (the build tree may sit in a private,
/// 0700 home directory), made once per test process and per program name.
pub fn copy_for_others(program: &std::path::Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("procwire-bin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let copy = dir.join(program.file_name().expect("a program file"));
    if !copy.exists() {
        let temp = dir.join(format!("{}.part", unique_name("copy")));
        std::fs::copy(program, &temp).unwrap();
        std::fs::set_permissions(&temp, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::rename(&temp, &copy).unwrap();
    }
    copy
}

/// The role this process was started in by [`helper`], or `None` in a normal test run.
pub fn helper_role() -> Option<String> {
    std::env::var(ROLE_VAR).ok()
}

/// Re-executes this test binary as a helper: it runs only the test `helper_process`, whose
/// body reads [`helper_role`] and the variables `vars`.
pub fn helper(role: &str, vars: &[(&str, &str)]) -> Proc {
    Proc::spawn(helper_command(std::env::current_exe().unwrap(), role, vars))
}

/// The command [`helper`] runs, for a caller that changes it first (another user, a copy of
/// the binary from [`copy_for_others`]).
pub fn helper_command(exe: PathBuf, role: &str, vars: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(exe);
    cmd.args([
        "--exact",
        "helper_process",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(ROLE_VAR, role);
    for (key, value) in vars {
        cmd.env(key, value);
    }
    cmd
}
