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
