//! The Python package (bindings/python, installed with `pip install ./bindings/python`)
//! against Rust in other processes.

use std::process::Command;
use std::time::Duration;

use procwire::mailslot::MailslotServer;
use procwire::mapping::Mapping;
use procwire::pipe::{ClientOptions, PipeServer};
use procwire::security::Access;
use procwire::wire::PipeMode;
use procwire_testkit::{run, unique_name, Proc, Watchdog};

fn python(script: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new("python3");
    cmd.arg("-c").arg(script).args(args);
    cmd
}

#[test]
#[ignore = "needs the Python package: pip install ./bindings/python"]
fn python_mailslot_writer_rust_reader_counts_exactly() {
    let _watchdog = Watchdog::new(Duration::from_secs(120));
    let name = format!(r"\\.\mailslot\{}", unique_name("py-slot"));
    let slot = MailslotServer::create(name.as_str()).unwrap();
    let script = "import sys, procwire\n\
                  with procwire.MailslotWriter(sys.argv[1]) as w:\n\
                  \x20   for i in range(int(sys.argv[2])):\n\
                  \x20       w.write(b'message %d' % i)\n";
    let count = 2000;
    let out = run(
        python(script, &[name.as_str(), &count.to_string()]),
        b"",
        Duration::from_secs(60),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut got = 0;
    while let Some(message) = slot.try_read() {
        assert_eq!(message, format!("message {got}").into_bytes());
        got += 1;
    }
    assert_eq!(got, count);
}

#[test]
#[ignore = "needs the Python package: pip install ./bindings/python"]
fn rust_passes_a_mapping_and_a_pipe_connection_to_python() {
    let _watchdog = Watchdog::new(Duration::from_secs(120));
    let step = Duration::from_secs(30);
    let pipe = format!(r"\\.\pipe\{}", unique_name("py-pass"));
    let echo = format!(r"\\.\pipe\{}", unique_name("py-pass-echo"));
    let mapping = Mapping::create(format!(r"Local\{}", unique_name("py-pass-map")), 4096).unwrap();
    mapping
        .view(0, 64)
        .unwrap()
        .write_at(0, b"from rust")
        .unwrap();
    let server = PipeServer::create(pipe.as_str()).unwrap();
    let echo_server = PipeServer::create(echo.as_str()).unwrap();
    let to_echo = ClientOptions::new()
        .read_mode(PipeMode::Message)
        .open(echo.as_str())
        .unwrap();
    let mut echo_end = echo_server.accept_timeout(step).unwrap();
    let script = "import sys, procwire\n\
                  conn = procwire.PipeConnection.open(sys.argv[1])\n\
                  m = conn.recv_handle(30.0)\n\
                  print(type(m).__name__, m.writable, m.read(0, 9))\n\
                  m.write(32, b'from python')\n\
                  ro = conn.recv_handle(30.0)\n\
                  print(type(ro).__name__, ro.writable)\n\
                  p = conn.recv_handle(30.0)\n\
                  p.send(b'on a passed connection')\n\
                  print(type(p).__name__, p.recv(30.0))\n\
                  conn.send(b'done')\n";
    let mut python = Proc::spawn(python(script, &[pipe.as_str()]));
    let mut conn = server.accept_timeout(step).unwrap();
    conn.send_handle(&mapping).unwrap();
    conn.send_handle_with_access(&mapping, Access::Read)
        .unwrap();
    conn.send_handle(&to_echo).unwrap();
    // The connection this process opened carries what the Python process sent on it.
    assert_eq!(
        echo_end.recv_timeout(step).unwrap(),
        b"on a passed connection"
    );
    echo_end.send(b"answer").unwrap();
    assert_eq!(conn.recv_timeout(step).unwrap(), b"done");
    assert_eq!(
        mapping.view(0, 64).unwrap().read_vec(32, 11).unwrap(),
        b"from python"
    );
    assert_eq!(python.line(), "Mapping True b'from rust'\n");
    assert_eq!(python.line(), "Mapping False\n");
    assert_eq!(python.line(), "PipeConnection b'answer'\n");
    let status = python.exit_within(step).expect("python exits");
    assert!(status.success(), "{}", python.stderr());
}
