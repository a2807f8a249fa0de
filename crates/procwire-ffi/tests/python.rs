//! The Python package (bindings/python, installed with `pip install ./bindings/python`)
//! against Rust in other processes.

use std::process::Command;
use std::time::Duration;

use procwire::mailslot::MailslotServer;
use procwire_testkit::{run, unique_name, Watchdog};

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
