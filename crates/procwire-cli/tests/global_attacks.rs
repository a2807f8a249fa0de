//! Another user (uid 65534) attacks what root makes in the Global namespace: each attack of
//! docs/security.md, "The Global namespace", with the proof that it now fails harmlessly.
//!
//! These tests need root (they drop to `nobody` in child processes): `.ci/run` runs them
//! with `--ignored`.

mod util;

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use util::{procwire_for_others, run, unique_name, Proc, Watchdog};

const G: &str = "/tmp/procwire-global";
const LIMIT: Duration = Duration::from_secs(20);

fn as_root(args: &[&str]) -> Command {
    let mut cmd = procwire_for_others();
    cmd.args(args);
    cmd
}

fn as_nobody(args: &[&str]) -> Command {
    let mut cmd = procwire_for_others();
    cmd.args(args)
        .uid(65534)
        .gid(65534)
        .env_remove("XDG_RUNTIME_DIR");
    cmd
}

/// A shell command run as `nobody`; asserts that it succeeded.
fn nobody_sh(script: &str) {
    let out = Command::new("sh")
        .args(["-c", script])
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "as nobody: {script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A shell command run as `nobody` that must fail (the attack is refused by the kernel).
fn nobody_sh_fails(script: &str) {
    let out = Command::new("sh")
        .args(["-c", script])
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    assert!(!out.status.success(), "as nobody, this worked: {script}");
}

fn cli(cmd: Command) -> Output {
    run(cmd, b"", LIMIT)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn fails_with(out: &Output, needle: &str) {
    assert!(!out.status.success(), "succeeded: {}", stdout(out));
    assert!(
        stderr(out).contains(needle),
        "expected {needle:?} in: {}",
        stderr(out)
    );
}

/// Makes the Global registry's folders exist, as any earlier use would.
fn global_dirs() {
    let pipe = procwire::pipe::PipeServer::create(format!(r"Global\{}", unique_name("warm")));
    drop(pipe.unwrap());
    let slot =
        procwire::mailslot::MailslotServer::create(format!(r"Global\{}", unique_name("warm")));
    drop(slot.unwrap());
    let mapping =
        procwire::mapping::Mapping::create(format!(r"Global\{}", unique_name("warm")).as_str(), 64);
    drop(mapping.unwrap());
}

fn pipe_server(name: &str, args: &[&str]) -> Proc {
    let mut cmd = as_root(&["pipe", "serve", name]);
    cmd.args(args);
    let mut server = Proc::spawn(cmd);
    server.wait_for("listening on");
    server
}

fn slot_server(name: &str, args: &[&str]) -> Proc {
    let mut cmd = as_root(&["mailslot", "serve", name, "--every", "100ms"]);
    cmd.args(args);
    let mut server = Proc::spawn(cmd);
    server.wait_for("listening on");
    server
}

/// A folder only root can write, for the target of a planted link.
fn root_only_dir() -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(unique_name("root-only"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    dir
}

#[test]
#[ignore = "needs root: attacks run as another user"]
fn a_planted_symlink_is_never_followed() {
    let _dog = Watchdog::new(Duration::from_secs(60));
    global_dirs();
    let target_dir = root_only_dir();
    for class in ["pipe", "mailslot"] {
        let object = unique_name("symlink");
        let target = target_dir.join(format!("pwned-{class}"));
        nobody_sh(&format!(
            "ln -s {} {G}/registry/{class}/{object}",
            target.display()
        ));
        let start = Instant::now();
        let out = cli(as_root(&[class, "serve", &format!(r"Global\{object}")]));
        fails_with(&out, "a symbolic link of uid 65534");
        assert!(start.elapsed() < Duration::from_secs(5), "no spinning");
        assert!(!target.exists(), "nothing was created through the link");
    }
    std::fs::remove_dir_all(&target_dir).unwrap();
}

#[test]
#[ignore = "needs root: attacks run as another user"]
fn another_user_cannot_set_a_slots_limit_and_no_acknowledged_message_is_lost() {
    let _dog = Watchdog::new(Duration::from_secs(60));
    global_dirs();
    // A file planted before the server starts is refused, not adopted.
    let object = unique_name("limit-planted");
    let entry = format!("{G}/registry/mailslot/{object}");
    nobody_sh(&format!(": > {entry}; chmod 666 {entry}"));
    let out = cli(as_root(&[
        "mailslot",
        "serve",
        &format!(r"Global\{object}"),
    ]));
    fails_with(&out, "others may write");

    // A live server's entry cannot be rewritten or removed by another user.
    let object = unique_name("limit");
    let name = format!(r"Global\{object}");
    let mut server = slot_server(&name, &["--max-message", "100"]);
    let entry = format!("{G}/registry/mailslot/{object}");
    nobody_sh_fails(&format!("echo max_message=1000000 > {entry}"));
    nobody_sh_fails(&format!("rm -f {entry}"));
    // The writer knows the real limit: an oversize message is refused to the sender, and a
    // message that fits arrives.
    let big = "B".repeat(1000);
    fails_with(
        &cli(as_root(&["mailslot", "send", &name, &big])),
        "is larger than the maximum of 100 bytes",
    );
    let out = cli(as_root(&["mailslot", "send", &name, "fits"]));
    assert!(out.status.success(), "{}", stderr(&out));
    server.wait_for("message #1: fits");
}

#[test]
#[ignore = "needs root: attacks run as another user"]
fn a_planted_fifo_hangs_nothing() {
    let _dog = Watchdog::new(Duration::from_secs(60));
    global_dirs();
    let object = unique_name("fifo");
    for class in ["pipe", "mailslot", "object"] {
        nobody_sh(&format!("mkfifo {G}/registry/{class}/{object}"));
    }
    let start = Instant::now();
    let out = cli(as_root(&["ls"]));
    assert!(out.status.success(), "{}", stderr(&out));
    let out = cli(as_root(&[
        "mailslot",
        "send",
        &format!(r"Global\{object}"),
        "x",
        "--timeout",
        "1s",
    ]));
    fails_with(&out, "a special file of uid 65534");
    let out = cli(as_root(&["pipe", "connect", &format!(r"Global\{object}")]));
    assert!(!out.status.success());
    assert!(start.elapsed() < Duration::from_secs(10), "nothing hung");
    for class in ["pipe", "mailslot", "object"] {
        let _ = std::fs::remove_file(format!("{G}/registry/{class}/{object}"));
    }
}

#[test]
#[ignore = "needs root: attacks run as another user"]
fn another_user_cannot_pin_a_dead_owner_alive() {
    let _dog = Watchdog::new(Duration::from_secs(60));
    global_dirs();
    let object = unique_name("pinned");
    let name = format!(r"Global\{object}");
    let mut server = pipe_server(&name, &["--echo"]);
    // Whatever nobody locks, liveness is the owner's process, not a lock.
    let mut pin = Proc::spawn({
        let mut cmd = Command::new("flock");
        cmd.args(["-x", &format!("{G}/registry/pipe/{object}"), "sleep", "30"])
            .uid(65534)
            .gid(65534);
        cmd
    });
    let mut pin_dir = Proc::spawn({
        let mut cmd = Command::new("flock");
        cmd.args(["-x", &format!("{G}/registry/object"), "sleep", "30"])
            .uid(65534)
            .gid(65534);
        cmd
    });
    std::thread::sleep(Duration::from_millis(200));
    server.kill();
    let ls = stdout(&cli(as_root(&["ls"])));
    assert!(!ls.contains(&object), "a dead pipe is not listed: {ls}");
    let _restarted = pipe_server(&name, &["--echo"]);
    let out = run(as_root(&["pipe", "connect", &name]), b"hello\n", LIMIT);
    assert_eq!(stdout(&out), "hello\n", "{}", stderr(&out));
    // Global objects can still be made and removed while nobody locks the registry.
    let mapping = format!(r"Global\{}", unique_name("pinned-map"));
    let out = cli(as_root(&["shm", "create", &mapping, "--size", "4096"]));
    assert!(out.status.success(), "{}", stderr(&out));
    let out = cli(as_root(&["shm", "rm", &mapping]));
    assert!(out.status.success(), "{}", stderr(&out));
    pin.kill();
    pin_dir.kill();
}

#[test]
#[ignore = "needs root: attacks run as another user"]
fn a_precreated_entry_is_refused_and_a_live_one_cannot_be_removed() {
    let _dog = Watchdog::new(Duration::from_secs(60));
    global_dirs();
    let object = unique_name("precreated");
    nobody_sh(&format!("touch {G}/registry/pipe/{object}"));
    fails_with(
        &cli(as_root(&["pipe", "serve", &format!(r"Global\{object}")])),
        "a file procwire did not write of uid 65534",
    );

    let object = unique_name("live");
    let name = format!(r"Global\{object}");
    let _server = pipe_server(&name, &["--echo"]);
    nobody_sh_fails(&format!("rm -f {G}/registry/pipe/{object}"));
    nobody_sh_fails(&format!("rm -f {G}/pipe/{object}"));
    assert!(
        stdout(&cli(as_root(&["ls"]))).contains(&object),
        "still listed"
    );
    fails_with(
        &cli(as_root(&["pipe", "serve", &name])),
        "already exists and its server",
    );
    let out = run(as_root(&["pipe", "connect", &name]), b"still mine\n", LIMIT);
    assert_eq!(stdout(&out), "still mine\n", "{}", stderr(&out));
}

#[test]
#[ignore = "needs root: attacks run as another user"]
fn clients_do_not_hand_data_to_a_squatter() {
    let _dog = Watchdog::new(Duration::from_secs(60));
    global_dirs();
    // nobody takes a pipe name and a slot name first.
    let object = unique_name("squat");
    let name = format!(r"Global\{object}");
    let mut squatter = Proc::spawn({
        let mut cmd = as_nobody(&["pipe", "serve", &name, "--everyone", "readwrite"]);
        cmd.arg("--echo");
        cmd
    });
    squatter.wait_for("listening on");
    fails_with(&cli(as_root(&["pipe", "serve", &name])), "uid 65534");
    let out = run(as_root(&["pipe", "connect", &name]), b"secret\n", LIMIT);
    fails_with(&out, "served by uid 65534");
    assert!(!squatter.drain().iter().any(|l| l.contains("secret")));
    // Asked for, any owner is accepted; the library tells who it is.
    let out = run(
        as_root(&["pipe", "connect", &name, "--any-owner"]),
        b"public\n",
        LIMIT,
    );
    assert_eq!(stdout(&out), "public\n", "{}", stderr(&out));
    let pipe = procwire::pipe::PipeConnection::open(name.as_str()).unwrap();
    assert_eq!(pipe.server_credentials().map(|c| c.uid), Some(65534));
    let e = procwire::pipe::ClientOptions::new()
        .require_owner(0)
        .open(name.as_str())
        .unwrap_err();
    assert!(
        matches!(e, procwire::pipe::PipeError::UntrustedServer { .. }),
        "{e}"
    );

    let slot = format!(r"Global\{}", unique_name("squat-slot"));
    let mut squatter = Proc::spawn(as_nobody(&[
        "mailslot",
        "serve",
        &slot,
        "--everyone",
        "--every",
        "100ms",
    ]));
    squatter.wait_for("listening on");
    fails_with(
        &cli(as_root(&["mailslot", "send", &slot, "secret"])),
        "served by uid 65534",
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(!squatter.drain().iter().any(|l| l.contains("secret")));
    let writer = procwire::mailslot::MailslotWriter::open(slot.as_str()).unwrap();
    assert_eq!(writer.server_credentials().map(|c| c.uid), Some(65534));
}

/// A forged entry, as `nobody` writes it: a mapping of `name` whose creator has exited.
fn forged_entry_script(name: &str) -> String {
    format!(
        "python3 -c 'import struct,sys;n=sys.argv[1].encode();\
         open(\"{G}/registry/object/\"+sys.argv[1],\"wb\").write(\
         struct.pack(\"<8sBBBBIQQQQQII\",b\"procwire\",2,1,1,1,999999999,0,4096,0,0,0,len(n),0)+n)' {name}"
    )
}

#[test]
#[ignore = "needs root: attacks run as another user"]
fn a_forged_stale_entry_deletes_nothing() {
    let _dog = Watchdog::new(Duration::from_secs(60));
    global_dirs();
    let object = unique_name("forged");
    let memory = Path::new("/dev/shm").join(format!("procwire-global-{object}"));
    std::fs::write(&memory, b"root's, made by other means").unwrap();
    nobody_sh(&forged_entry_script(&object));
    // A create in a fresh process sweeps the namespace: the memory stays.
    let other = format!(r"Global\{}", unique_name("other"));
    let out = cli(as_root(&["shm", "create", &other, "--size", "4096"]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        memory.exists(),
        "memory no entry of its owner claims is left alone"
    );
    // The sweep cleared the stale forged entry away, not the memory; taking the name now
    // leaves the memory alone too, and says whose it is.
    fails_with(
        &cli(as_root(&[
            "shm",
            "create",
            &format!(r"Global\{object}"),
            "--size",
            "4096",
        ])),
        "belongs to uid 0, and no procwire object claims it",
    );
    assert_eq!(
        std::fs::read(&memory).unwrap(),
        b"root's, made by other means"
    );
    std::fs::remove_file(&memory).unwrap();
    let _ = std::fs::remove_file(format!("{G}/registry/object/{object}"));
    assert!(cli(as_root(&["shm", "rm", &other])).status.success());
}

#[test]
#[ignore = "needs root: attacks run as another user"]
fn a_squatted_local_memory_name_says_who_holds_it() {
    let _dog = Watchdog::new(Duration::from_secs(60));
    let object = unique_name("local-squat");
    let memory = format!("/dev/shm/procwire-0-{object}");
    nobody_sh(&format!("touch {memory}"));
    fails_with(
        &cli(as_root(&["shm", "create", &object, "--size", "4096"])),
        "belongs to uid 65534",
    );
    let _ = std::fs::remove_file(&memory);
}

#[test]
#[ignore = "needs root: attacks run as another user"]
fn a_backing_file_replaced_by_a_link_is_not_followed() {
    let _dog = Watchdog::new(Duration::from_secs(60));
    global_dirs();
    let target_dir = root_only_dir();
    let victim = target_dir.join("conf");
    std::fs::write(&victim, b"root's own file").unwrap();
    // Made by root over a file of root's in /tmp; then the file goes, and nobody puts a
    // link to another root file at its path.
    let data = std::env::temp_dir().join(unique_name("backing"));
    let name = format!(r"Global\{}", unique_name("backing"));
    let out = cli(as_root(&[
        "shm",
        "create",
        &name,
        "--file",
        data.to_str().unwrap(),
        "--size",
        "64",
    ]));
    assert!(out.status.success(), "{}", stderr(&out));
    std::fs::remove_file(&data).unwrap();
    nobody_sh(&format!("ln -s {} {}", victim.display(), data.display()));
    fails_with(
        &cli(as_root(&["shm", "write", &name, "PWNED"])),
        "not a regular file",
    );
    assert_eq!(std::fs::read(&victim).unwrap(), b"root's own file");
    // A file planted at a mapping's path before it is made is refused, not written.
    let planted = std::env::temp_dir().join(unique_name("planted"));
    nobody_sh(&format!(": > {0}; chmod 666 {0}", planted.display()));
    fails_with(
        &cli(as_root(&[
            "shm",
            "create",
            &format!(r"Global\{}", unique_name("planted")),
            "--file",
            planted.to_str().unwrap(),
            "--size",
            "64",
            "--write",
            "root's secret",
        ])),
        "belongs to uid 65534",
    );
    assert_eq!(std::fs::read(&planted).unwrap(), b"");
    let _ = std::fs::remove_file(&data);
    let _ = std::fs::remove_file(&planted);
    let _ = cli(as_root(&["shm", "rm", &name]));
    std::fs::remove_dir_all(&target_dir).unwrap();
}

/// As `nobody`, writes a pipe entry for `name` naming a live process of someone else's:
/// pid 1, with its real start time.
fn forge_live_pipe_entry(name: &str) {
    nobody_sh(&format!(
        "/usr/bin/python3 -c 'import struct,sys;n=sys.argv[1].encode();\
         st=int(open(\"/proc/1/stat\").read().rsplit(\")\",1)[1].split()[19])+1;\
         open(\"{G}/registry/pipe/\"+sys.argv[1],\"wb\").write(\
         struct.pack(\"<8sBBBBIQQQQQII\",b\"procwire\",2,5,1,0,1,st,0,0,0,0,len(n),0)+n)' '{name}'"
    ));
}

#[test]
#[ignore = "needs root: attacks run as another user"]
fn an_entry_naming_another_users_process_holds_no_name() {
    let _dog = Watchdog::new(Duration::from_secs(60));
    global_dirs();
    let object = unique_name("pid1");
    forge_live_pipe_entry(&object);
    assert!(
        !stdout(&cli(as_root(&["ls"]))).contains(&object),
        "pid 1 runs as root, not as uid 65534: the entry is stale"
    );
    let name = format!(r"Global\{object}");
    let _server = pipe_server(&name, &["--echo"]);
    let out = run(as_root(&["pipe", "connect", &name]), b"mine\n", LIMIT);
    assert_eq!(stdout(&out), "mine\n", "{}", stderr(&out));
    // A name with control characters (to disguise a line of `ls`) is not an entry.
    let disguised = format!("{object}-x\tuid 0\x1b[8m");
    forge_live_pipe_entry(&disguised);
    let ls = stdout(&cli(as_root(&["ls"])));
    assert!(!ls.contains("\x1b[8m"), "{ls}");
    let _ = std::fs::remove_file(format!("{G}/registry/pipe/{disguised}"));
}
