//! Servers under hostile load: floods of silent connections must not lock legitimate
//! clients out of a pipe.

mod util;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::{Duration, Instant};

use util::{procwire, procwire_for_others, run, unique_name, Proc, Watchdog};

/// A python3 process that keeps `count` silent connections open to the socket at `path`,
/// reconnecting every `seconds`, until killed.
fn silent_unix_flood(path: &str, count: usize, seconds: f64, as_nobody: bool) -> Proc {
    let script = format!(
        "import socket,time\n\
         while True:\n\
         \x20   S=[]\n\
         \x20   for _ in range({count}):\n\
         \x20       s=socket.socket(socket.AF_UNIX)\n\
         \x20       try: s.connect({path:?}); S.append(s)\n\
         \x20       except OSError: pass\n\
         \x20   print('flooding', len(S), flush=True)\n\
         \x20   time.sleep({seconds})\n\
         \x20   [s.close() for s in S]\n"
    );
    let mut cmd = Command::new("/usr/bin/python3");
    cmd.args(["-c", &script]);
    if as_nobody {
        cmd.uid(65534).gid(65534);
    }
    let mut flood = Proc::spawn(cmd);
    flood.wait_for("flooding");
    flood
}

/// Connects `rounds` times with `procwire pipe connect`, each an echo that must come back;
/// returns the slowest round.
fn served_every_time(name: &str, rounds: usize) -> Duration {
    let mut slowest = Duration::ZERO;
    for round in 0..rounds {
        let start = Instant::now();
        let mut cmd = procwire();
        cmd.args(["pipe", "connect", name, "--any-owner"]);
        let out = run(cmd, b"hi\n", Duration::from_secs(20));
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "hi\n",
            "round {round}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        slowest = slowest.max(start.elapsed());
    }
    slowest
}

#[test]
#[ignore = "needs root: the flood runs as `nobody`"]
fn a_refused_users_silent_connections_take_no_handshake_place() {
    let _dog = Watchdog::new(Duration::from_secs(120));
    let object = unique_name("flood-refused");
    let name = format!(r"Global\{object}");
    let mut server = Proc::spawn({
        let mut cmd = procwire_for_others();
        cmd.args(["pipe", "serve", &name, "--echo"]);
        cmd
    });
    server.wait_for("listening on");
    let path = format!("/tmp/procwire-global/pipe/{object}");
    let _flood = silent_unix_flood(&path, 256, 4.0, true);
    // Generous: a served client answers in milliseconds; the bound only catches a client
    // that waited for the flood's handshake deadlines.
    let slowest = served_every_time(&name, 20);
    assert!(slowest < Duration::from_secs(5), "slowest {slowest:?}");
}

#[test]
#[ignore = "needs root: the flood runs as `nobody`"]
fn one_users_silent_connections_leave_room_for_others() {
    let _dog = Watchdog::new(Duration::from_secs(120));
    let object = unique_name("flood-allowed");
    let name = format!(r"Global\{object}");
    let mut server = Proc::spawn({
        let mut cmd = procwire_for_others();
        cmd.args(["pipe", "serve", &name, "--echo", "--everyone", "readwrite"]);
        cmd
    });
    server.wait_for("listening on");
    let path = format!("/tmp/procwire-global/pipe/{object}");
    let _flood = silent_unix_flood(&path, 300, 4.0, true);
    let slowest = served_every_time(&name, 20);
    assert!(slowest < Duration::from_secs(5), "slowest {slowest:?}");
}

#[test]
fn one_addresss_silent_tcp_connections_leave_room_for_others() {
    let _dog = Watchdog::new(Duration::from_secs(120));
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let object = unique_name("flood-tcp");
    let mut server = Proc::spawn({
        let mut cmd = procwire();
        cmd.args([
            "pipe",
            "serve",
            &object,
            "--echo",
            "--tcp",
            &format!("127.0.0.1:{port}"),
        ]);
        cmd
    });
    server.wait_for("listening on");
    // 300 silent connections from 127.0.0.2, all on loopback.
    let server_addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut silent = Vec::new();
    for _ in 0..300 {
        let socket = socket_from("127.0.0.2", server_addr);
        silent.extend(socket);
    }
    assert!(silent.len() > 250, "only {} connected", silent.len());
    let name = format!(r"\\127.0.0.1:{port}\pipe\{object}");
    let slowest = served_every_time(&name, 20);
    assert!(slowest < Duration::from_secs(5), "slowest {slowest:?}");
    drop(silent);
}

/// A TCP connection to `to` from the local address `from`.
fn socket_from(from: &str, to: SocketAddr) -> Option<TcpStream> {
    let fd = rustix::net::socket(
        rustix::net::AddressFamily::INET,
        rustix::net::SocketType::STREAM,
        None,
    )
    .ok()?;
    let local: SocketAddr = format!("{from}:0").parse().ok()?;
    rustix::net::bind(&fd, &local).ok()?;
    rustix::net::connect(&fd, &to).ok()?;
    Some(TcpStream::from(fd))
}
