//! A real `nats-server` for the tests and benchmarks of procwire-nats: started on a free
//! loopback port with JetStream and a store of its own in a temporary directory, restarted
//! on the same port and store, killed when dropped.
//!
//! ```ignore
//! let server = procwire_testkit::nats::NatsServer::start();
//! let url = server.url(); // "nats://127.0.0.1:PORT"
//! ```

use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long [`NatsServer::start`] and [`NatsServer::restart`] wait for the server to accept.
const START_LIMIT: Duration = Duration::from_secs(20);

/// A `nats-server` child process with JetStream, listening on a loopback port. Dropping it
/// kills the server and removes its store.
pub struct NatsServer {
    child: Option<Child>,
    port: u16,
    store: PathBuf,
    extra: Vec<String>,
    /// The server name it is started with: the greeting of a server on the port must
    /// carry it (another test's server may have taken the port meanwhile).
    name: String,
}

impl NatsServer {
    /// Starts a server on a free loopback port, with JetStream and its store in a new
    /// temporary directory, and waits until it accepts clients.
    ///
    /// # Panics
    ///
    /// When `nats-server` is not installed, or does not accept within 20 seconds.
    pub fn start() -> NatsServer {
        NatsServer::start_with_args(&[])
    }

    /// As [`start`](Self::start), with more command-line arguments for `nats-server`
    /// (`--max_payload`, `--user`, ...), kept for [`restart`](Self::restart).
    pub fn start_with_args(args: &[&str]) -> NatsServer {
        let store = std::env::temp_dir().join(crate::unique_name("nats-store"));
        std::fs::create_dir_all(&store).expect("create the nats-server store directory");
        let mut server = NatsServer {
            child: None,
            port: free_port(),
            store,
            extra: args.iter().map(|a| a.to_string()).collect(),
            name: crate::unique_name("nats"),
        };
        // Another process may take the free port before the server binds it: then try
        // another one.
        for _ in 0..4 {
            match server.spawn() {
                Ok(()) => return server,
                Err(e) => {
                    eprintln!(
                        "nats-server on port {}: {e}; trying another port",
                        server.port
                    );
                    server.port = free_port();
                }
            }
        }
        if let Err(e) = server.spawn() {
            panic!("{e}");
        }
        server
    }

    /// The URL clients connect to: `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The loopback port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The JetStream store directory.
    pub fn store(&self) -> &Path {
        &self.store
    }

    /// The server's pid, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the server (SIGKILL) and reaps it; the store stays for [`restart`](Self::restart).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills the server if it runs, and starts it again on the same port with the same
    /// store; waits until it accepts clients.
    ///
    /// # Panics
    ///
    /// When the server does not start again (say, another process took the port).
    pub fn restart(&mut self) {
        self.kill();
        if let Err(e) = self.spawn() {
            panic!("{e}");
        }
    }

    /// Starts the server and waits until it accepts; `Err` when it exits first (its
    /// stderr in the text). Panics when nats-server is not installed or is too slow.
    fn spawn(&mut self) -> Result<(), String> {
        let mut cmd = Command::new(binary());
        cmd.args([
            "-a",
            "127.0.0.1",
            "-p",
            &self.port.to_string(),
            "--server_name",
            &self.name,
            "-js",
            "-sd",
        ])
        .arg(&self.store)
        .args(&self.extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
        let mut child = match cmd.spawn() {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                panic!("nats-server must be installed (apt-get install nats-server)")
            }
            Err(e) => panic!("cannot start nats-server: {e}"),
        };
        let deadline = Instant::now() + START_LIMIT;
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        loop {
            if let Some(status) = child.try_wait().expect("poll nats-server") {
                let mut err = String::new();
                if let Some(e) = child.stderr.as_mut() {
                    let _ = e.read_to_string(&mut err);
                }
                return Err(format!(
                    "nats-server exited ({status}) before accepting clients: {err}"
                ));
            }
            if accepts(addr, &self.name) {
                break;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("nats-server did not accept clients on {addr} within {START_LIMIT:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // Its log goes to stderr; drain it so that a chatty server never blocks.
        if let Some(mut err) = child.stderr.take() {
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut err, &mut std::io::sink());
            });
        }
        self.child = Some(child);
        Ok(())
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.store);
    }
}

impl std::fmt::Debug for NatsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsServer")
            .field("url", &self.url())
            .field("pid", &self.pid())
            .field("store", &self.store)
            .finish()
    }
}

/// A loopback port nobody listens on now, outside the kernel's ephemeral range (so that
/// no outgoing connection takes it while the server restarts), falling back to the
/// kernel's pick for port 0.
fn free_port() -> u16 {
    use std::hash::{BuildHasher, RandomState};
    let (low, _) = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| {
            let mut it = r.split_whitespace().map(|n| n.parse::<u16>().ok());
            Some((it.next()??, it.next()??))
        })
        .unwrap_or((32768, 60999));
    let first = 10_000u16;
    if low > first + 1000 {
        let state = RandomState::new();
        for attempt in 0..64u32 {
            let pick = first
                + (state.hash_one((std::process::id(), attempt)) % u64::from(low - first)) as u16;
            if TcpListener::bind((Ipv4Addr::LOCALHOST, pick)).is_ok() {
                return pick;
            }
        }
    }
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("bind a loopback port")
        .port()
}

/// Whether the server named `name` accepts at `addr`: its greeting is an `INFO` line with
/// that `server_name`.
fn accepts(addr: SocketAddr, name: &str) -> bool {
    use std::io::BufRead;
    let Ok(stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let mut greeting = String::new();
    let read = std::io::BufReader::new(stream.take(64 * 1024)).read_line(&mut greeting);
    read.is_ok()
        && greeting.starts_with("INFO ")
        && greeting.contains(&format!("\"server_name\":\"{name}\""))
}

/// The nats-server to run: the one on `PATH`, else Debian's `/usr/sbin/nats-server` (not on
/// an ordinary user's `PATH`).
fn binary() -> std::path::PathBuf {
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("nats-server"))
            .find(|candidate| candidate.is_file())
    });
    on_path.unwrap_or_else(|| std::path::PathBuf::from("/usr/sbin/nats-server"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_restarts_on_the_same_port_and_kills() {
        let mut server = NatsServer::start();
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, server.port()));
        assert!(accepts(addr, &server.name));
        assert!(!accepts(addr, "another"));
        let first = server.pid().unwrap();
        server.restart();
        assert!(accepts(addr, &server.name));
        assert_ne!(server.pid().unwrap(), first);
        server.kill();
        assert!(!accepts(addr, &server.name));
        let store = server.store().to_path_buf();
        drop(server);
        assert!(!store.exists());
    }
}
