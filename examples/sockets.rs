//! What the four socket samples share (`socket_server`, `socket_client` and their `_async`
//! twins): the command lines, the line protocol, the listening sockets (with explicit
//! dual-stack control) and, for the blocking server, SIGINT/SIGTERM as something `poll` can
//! wait on.
//!
//! # The protocol
//!
//! TCP: a request is one line of text ending in `\n` (a `\r` before it is dropped too); the
//! server answers each with one line, `echo: ` and the request. A client may send many lines
//! on one connection; when it has sent all it shuts down its sending side, reads the answers
//! until the server closes, and the server closes once it has answered the last line. Lines
//! are at most [`MAX_LINE`] bytes. UDP: one datagram is one request (a trailing newline is
//! optional) and the answer is one datagram, `echo: ` and the request and `\n`. So
//! `socat - TCP:127.0.0.1:27015`, `nc 127.0.0.1 27015` or `socat - UDP:127.0.0.1:27015` can
//! talk to the servers, and the clients to any line-echo server.
//!
//! See docs/sockets.md for the Winsock calls beside what these samples do.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustix::net::{sockopt, AddressFamily, SocketFlags, SocketType};

/// The Winsock sample's `DEFAULT_PORT`.
pub const DEFAULT_PORT: u16 = 27015;

/// The longest request line a server accepts, in bytes (without the `\n`); longer lines are
/// refused with an error line and the connection is closed.
pub const MAX_LINE: usize = 64 * 1024;

/// The largest UDP datagram the samples read.
pub const MAX_DATAGRAM: usize = 65_507;

/// The request the client sends when given none (the Winsock sample's `sendbuf`).
pub const DEFAULT_REQUEST: &str = "this is a test";

/// Parses a duration the way the `procwire` command line does: `250ms`, `5s`, `1m`.
fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("{e} (write it as 250ms, 5s or 1m)"))
}

/// The servers' command line.
#[derive(Debug, clap::Parser)]
#[command(
    about = "The Winsock sample server on Linux sockets: answers each request line with \
             \"echo: LINE\" (TCP: one line per request; UDP: one datagram per request)",
    after_help = "Listens on loopback unless told otherwise. `--bind ::` listens on every \
                  interface, IPv6 and (dual-stack) IPv4; `--ipv6-only` keeps IPv4 out. Stops \
                  on SIGINT/SIGTERM or after --clients: closes the listener first, then waits \
                  for the clients in flight."
)]
pub struct ServerArgs {
    /// The address to listen on: 127.0.0.1, ::1, 0.0.0.0, or :: (all interfaces, dual-stack).
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: IpAddr,
    /// The port; 0 lets the system pick a free one (the server prints it).
    #[arg(long, short, default_value_t = DEFAULT_PORT)]
    pub port: u16,
    /// UDP instead of TCP.
    #[arg(long)]
    pub udp: bool,
    /// With `--bind ::`: IPv6 clients only (IPV6_V6ONLY, the Windows default).
    #[arg(long)]
    pub ipv6_only: bool,
    /// Stop after this many clients (TCP connections; UDP requests); default: serve until
    /// SIGINT or SIGTERM.
    #[arg(long)]
    pub clients: Option<usize>,
    /// How long a TCP client may stay silent (and how long a write may block) before the
    /// server drops it.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub timeout: Duration,
}

impl ServerArgs {
    /// The address to listen on.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(self.bind, self.port)
    }
}

/// The clients' command line.
#[derive(Debug, clap::Parser)]
#[command(
    about = "The Winsock sample client on Linux sockets: sends each MESSAGE as a request \
             line, shuts down its sending side and prints the answers (UDP: one datagram \
             each)"
)]
pub struct ClientArgs {
    /// The server's host name or address; every address it resolves to is tried in turn.
    #[arg(long, default_value = "localhost")]
    pub host: String,
    /// The server's port.
    #[arg(long, short, default_value_t = DEFAULT_PORT)]
    pub port: u16,
    /// UDP instead of TCP.
    #[arg(long)]
    pub udp: bool,
    /// How long to wait for a TCP connection to one address.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub connect_timeout: Duration,
    /// How long to wait for each answer (and for a write to go out).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// The requests, one line (or datagram) each.
    #[arg(default_values_t = [DEFAULT_REQUEST.to_owned()])]
    pub messages: Vec<String>,
}

/// What a server read from a TCP client, split by the line protocol.
#[derive(Debug, PartialEq, Eq)]
pub enum Request<'a> {
    /// A complete request line, without its `\n` (or `\r\n`).
    Line(&'a [u8]),
    /// The client shut down its sending side between requests: the clean end.
    End,
    /// The client shut down (or vanished) after this many bytes of an unfinished line.
    Unfinished(usize),
    /// More than [`MAX_LINE`] bytes without a `\n`.
    TooLong,
}

impl<'a> Request<'a> {
    /// Splits what one `read_until(b'\n')` of at most `MAX_LINE + 2` bytes returned.
    pub fn parse(read: &'a [u8]) -> Request<'a> {
        if read.is_empty() {
            return Request::End;
        }
        match read.strip_suffix(b"\n") {
            Some(line) => {
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                if line.len() > MAX_LINE {
                    Request::TooLong
                } else {
                    Request::Line(line)
                }
            }
            None if read.len() > MAX_LINE => Request::TooLong,
            None => Request::Unfinished(read.len()),
        }
    }
}

/// How many bytes one request read may take: a full line, its `\r\n`, and no more.
pub const READ_LIMIT: u64 = MAX_LINE as u64 + 2;

/// The answer to a request (a line or a datagram's text): `echo: REQUEST\n`.
pub fn answer(request: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(request.len() + 7);
    out.extend_from_slice(b"echo: ");
    out.extend_from_slice(request);
    out.push(b'\n');
    out
}

/// The text of a datagram: without one trailing `\n` (or `\r\n`).
pub fn datagram_text(datagram: &[u8]) -> &[u8] {
    let text = datagram.strip_suffix(b"\n").unwrap_or(datagram);
    text.strip_suffix(b"\r").unwrap_or(text)
}

/// How many bytes of a request or answer the samples print; the rest is elided.
const SHOWN: usize = 60;

/// Bytes as the samples print them: lossy UTF-8, without a trailing newline, and cut to
/// the first 60 bytes and `...` when longer.
pub fn show(bytes: &[u8]) -> String {
    let text = datagram_text(bytes);
    if text.len() <= SHOWN {
        String::from_utf8_lossy(text).into_owned()
    } else {
        format!("{}...", String::from_utf8_lossy(&text[..SHOWN]))
    }
}

/// The error text the line protocol sends before it closes a connection whose line is
/// too long.
pub fn too_long() -> Vec<u8> {
    format!("error: request line longer than {MAX_LINE} bytes\n").into_bytes()
}

/// A socket bound to an address, and what it says about the address families it serves.
#[derive(Debug)]
pub struct Bound<S> {
    /// The listening TCP socket or the bound UDP socket.
    pub socket: S,
    /// The address it is bound to (with the port the system picked for port 0).
    pub addr: SocketAddr,
    /// Whether IPv4 clients reach it too (an IPv6 socket on `::` without IPV6_V6ONLY).
    pub dual_stack: bool,
}

impl<S> Bound<S> {
    /// Prints the server's first line, `Listening on ADDR (PROTOCOL, FAMILIES).` (the tests
    /// read the address from it), and a warning when the address is not a loopback one.
    pub fn announce(&self, protocol: &str) {
        println!("Listening on {} ({}).", self.addr, self.describe(protocol));
        if !self.addr.ip().is_loopback() {
            println!(
                "Not on loopback: anyone who can reach this port can talk to the server, \
                 and nothing is encrypted."
            );
        }
    }

    /// "TCP, IPv4", "TCP, IPv6 only", "UDP, dual-stack: IPv4 clients too".
    pub fn describe(&self, protocol: &str) -> String {
        let families = match self.addr {
            SocketAddr::V4(_) => "IPv4",
            SocketAddr::V6(_) if self.dual_stack => "dual-stack: IPv4 clients too",
            SocketAddr::V6(_) => "IPv6 only",
        };
        format!("{protocol}, {families}")
    }
}

/// The `socket`, `setsockopt`, `bind` (and `listen`) of a server socket, with SO_REUSEADDR
/// on TCP (a restarted server can bind while old connections sit in TIME_WAIT) and, on an IPv6
/// wildcard address, IPV6_V6ONLY set explicitly rather than left to the system's default
/// (`net.ipv6.bindv6only`; Windows defaults to on). When `::` cannot be used because the
/// system has no IPv6 (and IPv6-only was not asked for), binds 0.0.0.0 instead and says so
/// on stdout.
fn bind_socket(addr: SocketAddr, kind: SocketType, ipv6_only: bool) -> io::Result<(OwnedFd, bool)> {
    let attempt = |addr: SocketAddr| -> io::Result<(OwnedFd, bool)> {
        let family = match addr {
            SocketAddr::V4(_) => AddressFamily::INET,
            SocketAddr::V6(_) => AddressFamily::INET6,
        };
        let fd = rustix::net::socket_with(family, kind, SocketFlags::CLOEXEC, None)?;
        if kind == SocketType::STREAM {
            // Not on UDP: there it would let another socket bind the same port and take
            // the datagrams meant for this one.
            sockopt::set_socket_reuseaddr(&fd, true)?;
        }
        let mut dual_stack = false;
        if addr.is_ipv6() {
            // Only the wildcard can take IPv4 traffic; on ::1 the option changes nothing.
            let want_dual = addr.ip().is_unspecified() && !ipv6_only;
            sockopt::set_ipv6_v6only(&fd, !want_dual)?;
            dual_stack = want_dual && !sockopt::ipv6_v6only(&fd)?;
        }
        rustix::net::bind(&fd, &addr)?;
        if kind == SocketType::STREAM {
            rustix::net::listen(&fd, 128)?;
        }
        Ok((fd, dual_stack))
    };
    match attempt(addr) {
        Err(e)
            if addr.is_ipv6()
                && addr.ip().is_unspecified()
                && !ipv6_only
                && matches!(
                    rustix::io::Errno::from_io_error(&e),
                    Some(rustix::io::Errno::AFNOSUPPORT | rustix::io::Errno::ADDRNOTAVAIL)
                ) =>
        {
            let v4 = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), addr.port());
            println!("IPv6 is not available here ({e}); falling back to {v4} (IPv4 only).");
            attempt(v4)
        }
        other => other,
    }
}

/// A listening TCP socket on `addr` (see [`ServerArgs`] for the dual-stack rules).
///
/// # Errors
///
/// When the socket cannot be made or bound (the port is taken, the address is not local).
pub fn tcp_listener(addr: SocketAddr, ipv6_only: bool) -> io::Result<Bound<TcpListener>> {
    let (fd, dual_stack) = bind_socket(addr, SocketType::STREAM, ipv6_only)?;
    let socket = TcpListener::from(fd);
    Ok(Bound {
        addr: socket.local_addr()?,
        socket,
        dual_stack,
    })
}

/// A bound UDP socket on `addr`, as [`tcp_listener`].
///
/// # Errors
///
/// When the socket cannot be made or bound.
pub fn udp_socket(addr: SocketAddr, ipv6_only: bool) -> io::Result<Bound<UdpSocket>> {
    let (fd, dual_stack) = bind_socket(addr, SocketType::DGRAM, ipv6_only)?;
    let socket = UdpSocket::from(fd);
    Ok(Bound {
        addr: socket.local_addr()?,
        socket,
        dual_stack,
    })
}

/// SIGINT and SIGTERM, caught by a thread and turned into a readable socket, so that a
/// blocking server can `poll` its listener and the request to stop at once (the
/// `WSAEventSelect` / `WSAWaitForMultipleEvents` pattern). A second signal exits at once.
#[derive(Debug)]
pub struct StopSignals {
    wake: UnixStream,
    caught: Arc<Mutex<Option<&'static str>>>,
}

impl StopSignals {
    /// Catches both signals from when this returns.
    ///
    /// # Errors
    ///
    /// When the signal handlers or the thread cannot be set up.
    pub fn catch() -> io::Result<StopSignals> {
        use tokio::signal::unix::{signal, SignalKind};
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()?;
        let (mut interrupt, mut terminate) = runtime.block_on(async {
            Ok::<_, io::Error>((
                signal(SignalKind::interrupt())?,
                signal(SignalKind::terminate())?,
            ))
        })?;
        let (wake, mut waker) = UnixStream::pair()?;
        let caught = Arc::new(Mutex::new(None));
        let record = Arc::clone(&caught);
        std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                runtime.block_on(async {
                    let first = next_signal(&mut interrupt, &mut terminate).await;
                    *record.lock().unwrap_or_else(|e| e.into_inner()) = Some(first);
                    let _ = io::Write::write_all(&mut waker, b"!");
                    let second = next_signal(&mut interrupt, &mut terminate).await;
                    eprintln!("{second} again; exiting at once");
                    std::process::exit(1);
                });
            })?;
        Ok(StopSignals { wake, caught })
    }

    /// The signal that asked to stop, if one came.
    pub fn caught(&self) -> Option<&'static str> {
        *self.caught.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The name of the next of the two signals to come (`"SIGINT"` or `"SIGTERM"`), for the async
/// server's `select!`.
pub async fn next_signal(
    interrupt: &mut tokio::signal::unix::Signal,
    terminate: &mut tokio::signal::unix::Signal,
) -> &'static str {
    tokio::select! {
        _ = interrupt.recv() => "SIGINT",
        _ = terminate.recv() => "SIGTERM",
    }
}

impl AsFd for StopSignals {
    /// Readable once a signal asked to stop.
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.wake.as_fd()
    }
}

/// Waits until `socket` is readable (`true`) or `stop` is (`false`): the `select` /
/// `WSAPoll` of the blocking server.
///
/// # Errors
///
/// When `poll` fails (it is restarted after EINTR).
pub fn wait_readable(socket: &impl AsFd, stop: &StopSignals) -> io::Result<bool> {
    use rustix::event::{poll, PollFd, PollFlags};
    loop {
        let mut fds = [
            PollFd::new(socket, PollFlags::IN),
            PollFd::new(stop, PollFlags::IN),
        ];
        match poll(&mut fds, None) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
        if !fds[1].revents().is_empty() {
            return Ok(false);
        }
        if !fds[0].revents().is_empty() {
            return Ok(true);
        }
    }
}

/// Whether an I/O error is a timeout (`SO_RCVTIMEO`/`SO_SNDTIMEO` report EAGAIN).
pub fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}
