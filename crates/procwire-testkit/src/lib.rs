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
//! and starts helpers with [`helper`] (or [`helper_on_cpu`], [`helper_as_user`], or
//! [`helper_command`] for a command to change first). Benchmarks that run a peer process
//! use [`bench`](mod@bench); the tests of procwire-nats start a real `nats-server` with [`nats`].

pub mod bench;
pub mod nats;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, OnceLock};
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
/// instead of stalling CI. Before it does, it kills every process the test process
/// started (and theirs): `exit` runs no destructor, and a child left running would keep
/// the descriptors it inherited (a build lock, the output pipe of the test run) open.
pub struct Watchdog(Option<mpsc::Sender<()>>);

impl Watchdog {
    /// Starts watching the current test for `limit`.
    pub fn new(limit: Duration) -> Watchdog {
        let (tx, rx) = mpsc::channel::<()>();
        let test = std::thread::current().name().unwrap_or("a test").to_owned();
        std::thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(limit) {
                eprintln!("watchdog: {test} still running after {limit:?}; aborting");
                let killed = kill_descendants();
                if killed > 0 {
                    eprintln!("watchdog: killed {killed} child process(es)");
                }
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

/// Kills (SIGKILL) every living descendant of this process, children first found by
/// scanning `/proc` for their parent pid; returns how many.
pub fn kill_descendants() -> usize {
    use rustix::process::{kill_process, Pid, Signal};
    let mut parents = vec![std::process::id()];
    let mut killed = 0;
    // A few passes: a child may have started one of its own while we looked.
    for _ in 0..3 {
        let children: Vec<u32> = processes()
            .into_iter()
            .filter(|&(pid, ppid)| parents.contains(&ppid) && !parents.contains(&pid))
            .map(|(pid, _)| pid)
            .collect();
        if children.is_empty() {
            break;
        }
        for &pid in &children {
            let pid = Pid::from_raw(pid as i32).expect("a pid from /proc is positive");
            if kill_process(pid, Signal::KILL).is_ok() {
                killed += 1;
            }
        }
        parents.extend(children);
    }
    killed
}

/// Every process as (pid, parent pid), from `/proc/PID/stat`.
fn processes() -> Vec<(u32, u32)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|entry| {
        let pid: u32 = entry.ok()?.file_name().to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // `pid (comm) state ppid ...`; comm may hold spaces and parentheses.
        let after = &stat[stat.rfind(')')? + 1..];
        let ppid = after.split_whitespace().nth(1)?.parse().ok()?;
        Some((pid, ppid))
    })
    .collect()
}

/// The environment variable that tells a helper process which process started it.
pub const PARENT_VAR: &str = "PROCWIRE_TEST_PARENT";

/// In a helper process: exits as soon as the test process that started it is gone (killed
/// from outside, say, where neither its watchdog nor its destructors ran), so that no
/// helper outlives its test.
pub fn exit_with_parent() {
    let parent = std::env::var(PARENT_VAR)
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(std::os::unix::process::parent_id);
    std::thread::spawn(move || loop {
        if std::os::unix::process::parent_id() != parent {
            std::process::exit(102);
        }
        std::thread::sleep(Duration::from_millis(100));
    });
}

/// A child process killed (SIGKILL) and reaped when dropped. Its stdout is drained by a
/// thread, so a chatty child never blocks on a full pipe.
pub struct Proc {
    /// The child.
    pub child: Child,
    lines: mpsc::Receiver<String>,
    /// The child's standard input, when it was started with [`Proc::spawn_with_stdin`].
    pub stdin: Option<std::process::ChildStdin>,
}

impl Proc {
    /// Starts `cmd` with piped stdout.
    pub fn spawn(cmd: Command) -> Proc {
        Proc::start(cmd, Stdio::null())
    }

    /// Starts `cmd` with piped stdout and a standard input that stays open until
    /// [`stdin`](Self::stdin) is dropped.
    pub fn spawn_with_stdin(cmd: Command) -> Proc {
        let mut p = Proc::start(cmd, Stdio::piped());
        p.stdin = p.child.stdin.take();
        p
    }

    fn start(mut cmd: Command, stdin: Stdio) -> Proc {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(stdin)
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
        Proc {
            child,
            lines,
            stdin: None,
        }
    }

    /// Waits at most `limit` for the child to exit.
    pub fn exit_within(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("poll the child") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// What the child wrote to stderr (call once it has exited).
    pub fn stderr(&mut self) -> String {
        let mut err = String::new();
        if let Some(e) = self.child.stderr.as_mut() {
            let _ = e.read_to_string(&mut err);
        }
        err
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
        self.wait_for_within(needle, Duration::from_secs(3600))
    }

    /// As [`wait_for`](Self::wait_for), panicking if no such line came within `limit`.
    pub fn wait_for_within(&mut self, needle: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Some(line) = self.line_timeout(left) else {
                panic!(
                    "child {} did not print {needle:?} within {limit:?}",
                    self.pid()
                );
            };
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

/// The executable of the example `name` of the workspace, which `cargo test` builds next to
/// the test binary that calls this (in `target/<profile>/examples/`).
///
/// # Panics
///
/// When it is not built, with the command that builds it.
pub fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let path = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("the test binary sits in target/<profile>/deps")
        .join("examples")
        .join(name);
    assert!(
        path.exists(),
        "{} is not built: `cargo test --workspace` (or `cargo build --examples`) builds it",
        path.display()
    );
    path
}

/// A copy of `program` where every user can run it (the build tree may sit in a private,
/// 0700 home directory), made once per test process and per program name, in
/// [`shared_dir`].
pub fn copy_for_others(program: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dir = shared_dir();
    let copy = dir.join(program.file_name().expect("a program file"));
    if !copy.exists() {
        let temp = dir.join(format!("{}.part", unique_name("copy")));
        std::fs::copy(program, &temp).unwrap();
        std::fs::set_permissions(&temp, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::rename(&temp, &copy).unwrap();
    }
    copy
}

/// How the directories of [`shared_dir`] are named: this, the test process's id, a dash.
const SHARED_DIR_PREFIX: &str = "procwire-test-";

/// A directory of this test process in the system's temporary directory that every user
/// can read and enter (for the programs a test runs as another user), and only this user
/// can write. It is always made here, never one found in place: another user may have
/// planted a directory of the name, or a link. The directories that test processes now
/// gone left behind (a test process ends without running destructors) are removed first,
/// so that runs do not pile up copies of test binaries.
pub fn shared_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        use std::os::unix::fs::PermissionsExt;
        remove_left_behind_shared_dirs();
        loop {
            let dir = std::env::temp_dir().join(format!(
                "{SHARED_DIR_PREFIX}{}",
                unique_name("dir").trim_start_matches("t-dir-")
            ));
            match std::fs::create_dir(&dir) {
                Ok(()) => {
                    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
                    return dir;
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => panic!("cannot make a directory in {}: {e}", dir.display()),
            }
        }
    })
}

/// Removes the [`shared_dir`]s of this user whose test process is gone.
fn remove_left_behind_shared_dirs() {
    use rustix::process::{test_kill_process, Pid};
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    let me = rustix::process::geteuid().as_raw();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(SHARED_DIR_PREFIX))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<i32>().ok())
            .and_then(Pid::from_raw)
        else {
            continue;
        };
        let Ok(meta) = entry.path().symlink_metadata() else {
            continue;
        };
        // Another user's, or a process that still runs (EPERM: someone else's): not ours
        // to remove.
        let gone = matches!(test_kill_process(pid), Err(rustix::io::Errno::SRCH));
        if meta.is_dir() && meta.uid() == me && gone {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// In a helper process: prints `line` on a line of its own (the test harness may have
/// printed `test helper_process ... ` before it) and flushes it, for the test to wait for.
pub fn say(line: &str) {
    use std::io::Write;
    println!("\n{line}");
    std::io::stdout().flush().unwrap();
}

/// The role this process was started in by [`helper`], or `None` in a normal test run. In a
/// helper it also starts [`exit_with_parent`], so that the helper ends with its test.
pub fn helper_role() -> Option<String> {
    let role = std::env::var(ROLE_VAR).ok()?;
    exit_with_parent();
    Some(role)
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
    add_helper_args(&mut cmd, role, vars);
    cmd
}

/// As [`helper`], pinned to CPU `cpu` through `taskset` when the machine has both (unpinned
/// otherwise), so that two helpers on two CPUs wake each other across CPUs.
pub fn helper_on_cpu(cpu: usize, role: &str, vars: &[(&str, &str)]) -> Proc {
    let exe = std::env::current_exe().unwrap();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let taskset = Path::new("/usr/bin/taskset");
    let mut cmd = if cpus > cpu && taskset.exists() {
        let mut cmd = Command::new(taskset);
        cmd.arg("-c").arg(cpu.to_string()).arg(exe);
        cmd
    } else {
        Command::new(exe)
    };
    add_helper_args(&mut cmd, role, vars);
    Proc::spawn(cmd)
}

/// As [`helper`], run as the user and group `id` (which needs root) from a copy of this
/// test binary that every user can run ([`copy_for_others`]), in `/` (the test's own
/// directory may be closed to that user).
pub fn helper_as_user(id: u32, role: &str, vars: &[(&str, &str)]) -> Proc {
    use std::os::unix::process::CommandExt;
    let exe = copy_for_others(&std::env::current_exe().unwrap());
    let mut cmd = helper_command(exe, role, vars);
    cmd.uid(id).gid(id).current_dir("/");
    Proc::spawn(cmd)
}

/// The arguments and variables that make a test binary run only `helper_process`, in
/// `role`, with `vars`.
fn add_helper_args(cmd: &mut Command, role: &str, vars: &[(&str, &str)]) {
    cmd.args([
        "--exact",
        "helper_process",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(ROLE_VAR, role)
    .env(PARENT_VAR, std::process::id().to_string());
    for (key, value) in vars {
        cmd.env(key, value);
    }
}

/// Raises this process's soft limit on open descriptors to its hard limit, for a test that
/// holds hundreds of connections itself (an ordinary user's soft limit is often 1024, which
/// the tests running beside it in the same process share).
pub fn raise_open_file_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        limit.current = limit.maximum;
        let _ = setrlimit(Resource::Nofile, limit);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shared_dir_is_fresh_and_open_to_all_and_only_dead_processes_dirs_are_swept() {
        use std::os::unix::fs::PermissionsExt;
        let dir = shared_dir();
        let mode = dir.metadata().unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o755, "{}", dir.display());

        let mut gone = Command::new("true").spawn().unwrap();
        let gone_pid = gone.id();
        gone.wait().unwrap();
        let tmp = std::env::temp_dir();
        let left = tmp.join(format!("{SHARED_DIR_PREFIX}{gone_pid}-0-left"));
        let live = tmp.join(format!("{SHARED_DIR_PREFIX}{}-0-live", std::process::id()));
        for d in [&left, &live] {
            std::fs::create_dir(d).unwrap();
            std::fs::write(d.join("program"), b"x").unwrap();
        }
        remove_left_behind_shared_dirs();
        let (left_exists, live_exists) = (left.exists(), live.exists());
        let _ = std::fs::remove_dir_all(&live);
        assert!(!left_exists, "a dead process's directory stays");
        assert!(live_exists, "a running process's directory was removed");
        assert!(dir.exists(), "this process's own directory was removed");
    }
}
