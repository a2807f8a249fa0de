//! Mailslots across real processes and real networks (network namespaces): the `procwire
//! mailslot` commands on one side.

mod util;

use std::io::Write;
use std::process::Command;
use std::time::Duration;

use procwire::mailslot::{
    MailslotError, MailslotOptions, MailslotServer, MailslotWriter, ReadTimeout,
};
use util::{procwire, procwire_for_others, run, unique_name, Proc, Watchdog};

#[test]
fn one_server_per_name_and_a_dead_servers_name_is_reclaimed() {
    let _wd = Watchdog::new(Duration::from_secs(30));
    let name = unique_name("owner");
    let mut cmd = procwire();
    cmd.args(["mailslot", "serve", &name, "--every", "100ms"]);
    let mut first = Proc::spawn(cmd);
    first.wait_for("listening on");
    let e = MailslotServer::create(name.as_str()).unwrap_err();
    assert!(matches!(e, MailslotError::AlreadyExists { .. }), "{e}");

    let writer = MailslotWriter::open(name.as_str()).unwrap();
    writer.write(b"before").unwrap();
    first.wait_for("message #1: before");
    first.kill();
    let e = writer.write(b"into the void").unwrap_err();
    assert!(matches!(e, MailslotError::Disconnected { .. }), "{e}");
    let e = MailslotWriter::open(name.as_str()).unwrap_err();
    assert!(
        matches!(&e, MailslotError::NotFound { detail, .. } if detail.contains("server is gone")),
        "{e}"
    );

    let slot = MailslotServer::create(name.as_str()).unwrap();
    MailslotWriter::open(name.as_str())
        .unwrap()
        .write(b"after restart")
        .unwrap();
    assert_eq!(slot.read().unwrap(), b"after restart");
}

#[test]
#[ignore = "needs root: drops to `nobody`"]
fn another_user_may_write_only_where_the_slot_allows() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let as_nobody = |name: &str| {
        use std::os::unix::process::CommandExt;
        let mut cmd = procwire_for_others();
        cmd.args(["mailslot", "send", name, "from nobody", "--timeout", "2s"])
            .uid(65534)
            .gid(65534);
        run(cmd, b"", Duration::from_secs(20))
    };
    let closed = format!(r"Global\{}", unique_name("acl-closed"));
    let slot = MailslotOptions::new()
        .read_timeout(ReadTimeout::Immediate)
        .create(closed.as_str())
        .unwrap();
    let out = as_nobody(&closed);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("access to mailslot") && err.contains("denied"),
        "{err}"
    );
    assert!(slot.try_read().is_none(), "nothing got in");

    let open = format!(r"Global\{}", unique_name("acl-open"));
    let slot = MailslotOptions::new()
        .read_timeout(ReadTimeout::After(Duration::from_secs(5)))
        .access_list(
            procwire::security::AccessList::owner_only()
                .everyone(procwire::security::Access::Write),
        )
        .create(open.as_str())
        .unwrap();
    let out = as_nobody(&open);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(slot.read().unwrap(), b"from nobody");

    let e = MailslotOptions::new()
        .access_list(procwire::security::AccessList::owner_only().grant(
            procwire::security::Principal::User(1234),
            procwire::security::Access::Write,
        ))
        .create(unique_name("acl-user").as_str())
        .unwrap_err();
    assert!(e.to_string().contains("single user"), "{e}");
}

/// Three hosts on one Ethernet segment: network namespaces joined by a bridge.
struct Lan {
    tag: String,
}

impl Lan {
    fn ns(&self, host: &str) -> String {
        format!("pw{host}{}", self.tag)
    }

    fn up() -> Option<Lan> {
        let tag = format!("{}", std::process::id() % 100_000);
        let lan = Lan { tag };
        let hub = lan.ns("H");
        let ip = |args: &[&str]| {
            Command::new("ip")
                .args(args)
                .status()
                .is_ok_and(|s| s.success())
        };
        if !ip(&["netns", "add", &hub]) {
            return None;
        }
        let ok = ip(&["-n", &hub, "link", "add", "br0", "type", "bridge"])
            && ip(&["-n", &hub, "link", "set", "br0", "up"])
            && ["A", "B", "C"].iter().enumerate().all(|(i, host)| {
                let ns = lan.ns(host);
                let port = format!("p{host}");
                let addr = format!("10.77.{}.{}/24", lan.subnet(), i + 1);
                ip(&["netns", "add", &ns])
                    && ip(&[
                        "link", "add", "eth0", "netns", &ns, "type", "veth", "peer", "name", &port,
                        "netns", &hub,
                    ])
                    && ip(&["-n", &hub, "link", "set", &port, "master", "br0", "up"])
                    && ip(&["-n", &ns, "addr", "add", &addr, "dev", "eth0"])
                    && ip(&["-n", &ns, "link", "set", "eth0", "up"])
                    && ip(&["-n", &ns, "link", "set", "lo", "up"])
            });
        ok.then_some(lan)
    }

    fn subnet(&self) -> u32 {
        self.tag.parse::<u32>().unwrap_or(0) % 250
    }

    fn addr(&self, host: usize) -> String {
        format!("10.77.{}.{host}", self.subnet())
    }

    /// `procwire ARGS` inside host `host`, with a private Local namespace of its own.
    fn procwire(&self, host: &str, runtime: &std::path::Path, args: &[&str]) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args([
            "netns",
            "exec",
            &self.ns(host),
            env!("CARGO_BIN_EXE_procwire"),
        ])
        .args(args)
        .env("XDG_RUNTIME_DIR", runtime);
        cmd
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        for host in ["A", "B", "C", "H"] {
            let _ = Command::new("ip")
                .args(["netns", "del", &self.ns(host)])
                .status();
        }
    }
}

#[test]
#[ignore = "needs root: makes network namespaces with `ip netns`"]
fn broadcast_reaches_every_host_and_unicast_only_one() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let lan = Lan::up().expect("network namespaces can be made here (`ip netns`, as root)");
    let runtime = |host: &str| {
        let dir = std::env::temp_dir().join(format!("pw-rt-{host}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .unwrap();
        dir
    };
    let (rt_b, rt_c, rt_a) = (runtime("B"), runtime("C"), runtime("A"));
    let serve = |host: &str, rt: &std::path::Path| {
        let mut server = Proc::spawn(lan.procwire(
            host,
            rt,
            &[
                "mailslot",
                "serve",
                "Lan",
                "--every",
                "100ms",
                "--udp",
                "0.0.0.0:4456",
                "--allow-plaintext-network",
            ],
        ));
        server.wait_for("listening on");
        server
    };
    let mut b = serve("B", &rt_b);
    let mut c = serve("C", &rt_c);

    let broadcast = lan.addr(255);
    let out = run(
        lan.procwire(
            "A",
            &rt_a,
            &[
                "mailslot",
                "send",
                r"\\*\mailslot\Lan",
                "to everyone",
                "--broadcast-addr",
                &broadcast,
            ],
        ),
        b"",
        Duration::from_secs(20),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    b.wait_for("message #1: to everyone");
    c.wait_for("message #1: to everyone");

    let to_b = format!(r"\\{}\mailslot\Lan", lan.addr(2));
    let out = run(
        lan.procwire("A", &rt_a, &["mailslot", "send", &to_b, "only for B"]),
        b"",
        Duration::from_secs(20),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    b.wait_for("message #2: only for B");
    // C keeps checking and finds nothing: several empty checks after B got its message.
    let earlier = c.drain();
    assert!(
        !earlier.iter().any(|l| l.contains("only for B")),
        "{earlier:?}"
    );
    for _ in 0..5 {
        let line = c.wait_for("check");
        assert!(
            line.contains(": 0 message(s) waiting"),
            "C received a unicast for B: {line}"
        );
    }
    drop((b, c));
    for dir in [rt_a, rt_b, rt_c] {
        let _ = std::fs::remove_dir_all(dir);
    }
    std::io::stdout().flush().unwrap();
}

#[test]
fn nats_slots_keep_what_send_wrote_until_serve_reads_it() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let server = procwire_testkit::nats::NatsServer::start();
    let slot = format!("{}/mailslot/{}", server.url(), unique_name("cli-nats"));
    // No reader ever ran: without --create the writer says how to make the slot.
    let mut cmd = procwire();
    cmd.args(["mailslot", "send", &slot, "lost?"]);
    let out = run(cmd, b"", Duration::from_secs(30));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no mailslot") && err.contains("open_or_create"),
        "{err}"
    );
    let mut cmd = procwire();
    cmd.args(["mailslot", "send", &slot, "first", "second", "--create"]);
    let out = run(cmd, b"", Duration::from_secs(30));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The reader starts after the writer has gone, and finds both.
    let mut cmd = procwire();
    cmd.args([
        "mailslot",
        "serve",
        &slot,
        "--every",
        "100ms",
        "--messages",
        "3",
    ]);
    let mut serve = Proc::spawn(cmd);
    serve.wait_for_within("listening on", Duration::from_secs(20));
    serve.wait_for_within("check 1: 2 message(s) waiting", Duration::from_secs(20));
    serve.wait_for_within("message #1: first", Duration::from_secs(5));
    serve.wait_for_within("message #2: second", Duration::from_secs(5));
    let mut cmd = procwire();
    cmd.args(["mailslot", "send", &slot, "third"]);
    assert!(run(cmd, b"", Duration::from_secs(30)).status.success());
    serve.wait_for_within("message #3: third", Duration::from_secs(20));
    assert!(serve
        .exit_within(Duration::from_secs(10))
        .is_some_and(|s| s.success()));
    // Local-only options are refused for a NATS slot.
    let mut cmd = procwire();
    cmd.args(["mailslot", "serve", &slot, "--everyone"]);
    let out = run(cmd, b"", Duration::from_secs(30));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("for local slots"));
}
