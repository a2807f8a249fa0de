//! The `procwire` command as a newcomer uses it.

mod util;

use std::time::Duration;

use util::{procwire, run, serve, unique_name, Watchdog};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn demo_runs_the_samples_as_separate_processes() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let mut cmd = procwire();
    cmd.arg("demo");
    let out = run(cmd, b"", Duration::from_secs(50));
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(
        stdout.contains(r#"received "Default response from server""#),
        "{stdout}"
    );
    assert!(
        stdout.contains(r#"received "Default request from client""#),
        "{stdout}"
    );
    assert!(stdout.contains("== Remoting: done"), "{stdout}");
    assert!(
        stdout.contains("Hello demo, from ClientActivatedObject `mine`"),
        "{stdout}"
    );
    // Two different processes took part.
    let pids: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix('[')?.split(']').next())
        .collect();
    assert!(pids.iter().any(|p| p.starts_with("server pid")), "{stdout}");
    assert!(pids.iter().any(|p| p.starts_with("client pid")), "{stdout}");
}

#[test]
fn ls_lists_live_pipes_only() {
    let _wd = Watchdog::new(Duration::from_secs(30));
    let name = unique_name("ls");
    let mut server = serve(&name, &[]);
    let mut cmd = procwire();
    cmd.arg("ls");
    let out = run(cmd, b"", Duration::from_secs(10));
    assert!(out.status.success());
    assert!(text(&out.stdout).contains(&format!("pipe\tLocal\\{name}")));
    server.kill();
    let mut cmd = procwire();
    cmd.arg("ls");
    let out = run(cmd, b"", Duration::from_secs(10));
    assert!(
        !text(&out.stdout).contains(&name),
        "a dead server's pipe is not listed"
    );
}

#[test]
fn ls_lists_mappings_and_sync_objects_by_kind() {
    let name = unique_name("ls-objects");
    let mapping = procwire::mapping::Mapping::create(format!("{name}-map").as_str(), 4096).unwrap();
    let mutex = procwire::sync::NamedMutex::create(format!("{name}-mutex").as_str()).unwrap();
    let mut cmd = procwire();
    cmd.arg("ls");
    let out = run(cmd, b"", Duration::from_secs(10));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(&format!("mapping\tLocal\\{name}-map")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("mutex\tLocal\\{name}-mutex")),
        "{stdout}"
    );
    drop((mapping, mutex));
}

#[test]
fn bad_names_and_missing_pipes_get_clear_errors() {
    let mut cmd = procwire();
    cmd.args(["pipe", "connect", r"Session\X"]);
    let out = run(cmd, b"", Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("unknown namespace `Session\\`"), "{err}");

    let mut cmd = procwire();
    cmd.args(["pipe", "connect", &unique_name("nobody-home")]);
    let out = run(cmd, b"", Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("no pipe named") && err.contains("no server has created it"),
        "{err}"
    );

    let mut cmd = procwire();
    cmd.args(["pipe", "serve", r"\\.\mailslot\X"]);
    let out = run(cmd, b"", Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("mailslot name"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn verbose_flag_turns_on_logs() {
    let _wd = Watchdog::new(Duration::from_secs(30));
    let name = unique_name("verbose");
    let mut cmd = procwire();
    cmd.args(["-v", "pipe", "serve", &name, "--clients", "1", "--echo"]);
    let mut server = util::Proc::spawn(cmd);
    server.wait_for("listening on");
    let mut client = procwire();
    client.args(["pipe", "connect", &name]);
    let out = run(client, b"hi\n", Duration::from_secs(10));
    assert_eq!(text(&out.stdout), "hi\n");
    let status = server.child.wait().unwrap();
    assert!(status.success());
    let mut err = String::new();
    use std::io::Read;
    server
        .child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(err.contains("pipe server listening"), "{err}");
}

/// Every file under the Local namespace's directory (where the children of this test
/// process keep their names too) whose file name holds `name`.
fn files_named(name: &str) -> Vec<std::path::PathBuf> {
    fn walk(dir: &std::path::Path, name: &str, found: &mut Vec<std::path::PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if entry.file_name().to_string_lossy().contains(name) {
                found.push(path.clone());
            }
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                walk(&path, name, found);
            }
        }
    }
    let mut found = Vec::new();
    walk(&procwire::name::Namespace::Local.root(), name, &mut found);
    walk(std::path::Path::new("/dev/shm"), name, &mut found);
    found
}

/// Sends `signal` to the child.
fn send_signal(p: &util::Proc, signal: rustix::process::Signal) {
    let pid = rustix::process::Pid::from_raw(p.pid() as i32).unwrap();
    rustix::process::kill_process(pid, signal).unwrap();
}

/// One server command of the CLI: how to start it on a name, the line it prints once the
/// name is taken, and whether it keeps its name only while its standard input is open.
struct ServerCommand {
    what: &'static str,
    args: fn(&str) -> Vec<String>,
    ready: &'static str,
    holds_stdin: bool,
}

const SERVERS: &[ServerCommand] = &[
    ServerCommand {
        what: "pipe serve",
        args: |name| vec!["pipe".into(), "serve".into(), name.into(), "--echo".into()],
        ready: "listening on",
        holds_stdin: false,
    },
    ServerCommand {
        what: "mailslot serve",
        args: |name| {
            let every = "1h".to_owned();
            vec![
                "mailslot".into(),
                "serve".into(),
                name.into(),
                "--every".into(),
                every,
            ]
        },
        ready: "listening on",
        holds_stdin: false,
    },
    ServerCommand {
        what: "remoting serve",
        args: |name| {
            let pipe = ["--no-tcp", "--pipe", name].map(String::from);
            [vec!["remoting".into(), "serve".into()], pipe.to_vec()].concat()
        },
        ready: "ready (pid",
        holds_stdin: false,
    },
    ServerCommand {
        what: "shm create --hold",
        args: |name| {
            let rest = [name, "--size", "4096", "--hold"].map(String::from);
            [vec!["shm".into(), "create".into()], rest.to_vec()].concat()
        },
        ready: "holding",
        holds_stdin: true,
    },
];

fn start_server(server: &ServerCommand, name: &str) -> util::Proc {
    let mut cmd = procwire();
    cmd.args((server.args)(name));
    let mut p = if server.holds_stdin {
        util::Proc::spawn_with_stdin(cmd)
    } else {
        util::Proc::spawn(cmd)
    };
    p.wait_for_within(server.ready, Duration::from_secs(20));
    p
}

/// Issue 9, item 5: a server of the CLI stopped by SIGINT or SIGTERM removes its name (the
/// socket and the registry entry, or the mapping) as a clean exit does, reports the signal
/// in its exit status, and a new server can take the name at once.
#[test]
fn regression_9_servers_stopped_by_sigint_or_sigterm_remove_their_names() {
    use rustix::process::Signal;
    let _wd = Watchdog::new(Duration::from_secs(120));
    for server in SERVERS {
        for (signal, status) in [(Signal::TERM, 143), (Signal::INT, 130)] {
            let what = format!("{} stopped by {signal:?}", server.what);
            let name = unique_name("signalled");
            let mut first = start_server(server, &name);
            assert!(
                !files_named(&name).is_empty(),
                "{what}: no file holds the name"
            );
            send_signal(&first, signal);
            let exit = first
                .exit_within(Duration::from_secs(10))
                .unwrap_or_else(|| panic!("{what}: still running 10 s later"));
            let err = first.stderr();
            assert_eq!(exit.code(), Some(status), "{what}: {err}");
            assert!(err.contains("stopped by SIG"), "{what}: {err}");
            let left = files_named(&name);
            assert!(left.is_empty(), "{what}: left behind {left:?}");
            // The name is free: a new server takes it.
            let mut second = start_server(server, &name);
            second.kill();
        }
    }
}

/// A server killed with SIGKILL cannot clean up; the next server on the name takes it over
/// all the same (the registry sees the dead owner).
#[test]
fn a_server_killed_with_sigkill_leaves_a_name_the_next_server_takes_over() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    for server in SERVERS {
        let name = unique_name("sigkilled");
        let mut first = start_server(server, &name);
        first.kill();
        let mut second = start_server(server, &name);
        second.kill();
    }
}
