//! The Winsock sample client on Linux sockets: resolves the server's name, tries each of its
//! addresses until one connects (within `--connect-timeout`), sends each message as a request
//! line, shuts down its sending side and prints the answers until the server closes.
//!
//! With `--udp` each message is one datagram and each answer one datagram back (waiting at
//! most `--timeout`). Start `cargo run --example socket_server` first; the protocol is in
//! `procwire_examples::sockets`.

use std::io::{self, BufRead, BufReader, Write};
use std::net::{Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use procwire_examples::sockets::{self, ClientArgs};

fn main() -> ExitCode {
    let args = ClientArgs::parse();
    let result = resolve(&args).and_then(|addrs| {
        if args.udp {
            run_udp(&args, &addrs)
        } else {
            run_tcp(&args, &addrs)
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("socket_client: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The Winsock sample's `getaddrinfo`: every address of the server's name.
fn resolve(args: &ClientArgs) -> io::Result<Vec<SocketAddr>> {
    let addrs: Vec<SocketAddr> = (args.host.as_str(), args.port)
        .to_socket_addrs()
        .map_err(|e| io::Error::new(e.kind(), format!("cannot resolve {}: {e}", args.host)))?
        .collect();
    if addrs.is_empty() {
        return Err(io::Error::other(format!("{} has no address", args.host)));
    }
    Ok(addrs)
}

/// The duration as the samples print it (`500ms`, `5s`).
fn show(d: Duration) -> humantime::FormattedDuration {
    humantime::format_duration(d)
}

/// Connects to the first address that answers, sends the lines, shuts down the sending side
/// and reads the answers to the end.
fn run_tcp(args: &ClientArgs, addrs: &[SocketAddr]) -> io::Result<()> {
    let mut last = None;
    let mut connected = None;
    for addr in addrs {
        match TcpStream::connect_timeout(addr, args.connect_timeout) {
            Ok(stream) => {
                connected = Some(stream);
                break;
            }
            Err(e) => {
                let e = if sockets::is_timeout(&e) {
                    io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!(
                            "no connection to {addr} within {}",
                            show(args.connect_timeout)
                        ),
                    )
                } else {
                    io::Error::new(e.kind(), format!("cannot connect to {addr}: {e}"))
                };
                println!("{e}");
                last = Some(e);
            }
        }
    }
    let Some(stream) = connected else {
        return Err(last.unwrap_or_else(|| io::Error::other("no address to connect to")));
    };
    println!(
        "Connected to {} from {}.",
        stream.peer_addr()?,
        stream.local_addr()?
    );
    stream.set_read_timeout(Some(args.timeout))?;
    stream.set_write_timeout(Some(args.timeout))?;
    let mut writer = &stream;
    for message in &args.messages {
        let line = format!("{message}\n");
        writer.write_all(line.as_bytes())?;
        println!(
            "Send {} bytes to server: \"{}\"",
            line.len(),
            sockets::show(line.as_bytes())
        );
    }
    // shutdown(SD_SEND): no more requests; the server answers what it has and closes.
    stream.shutdown(Shutdown::Write)?;
    println!("Shut down the sending side; reading the answers.");
    let mut reader = BufReader::new(&stream);
    let mut answers = 0;
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) => break,
            Ok(n) => {
                answers += 1;
                println!(
                    "Receive {n} bytes from server: \"{}\"",
                    sockets::show(&line)
                );
            }
            Err(e) if sockets::is_timeout(&e) => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "no answer from the server within {} ({answers} of {} received)",
                        show(args.timeout),
                        args.messages.len()
                    ),
                ));
            }
            Err(e) => return Err(e),
        }
    }
    println!("The server closed the connection after {answers} answer(s).");
    Ok(())
}

/// Sends each message as a datagram and waits for its answer. Tries the server's addresses
/// in turn while the first request is refused (no server on that address).
fn run_udp(args: &ClientArgs, addrs: &[SocketAddr]) -> io::Result<()> {
    for (i, addr) in addrs.iter().enumerate() {
        let local: SocketAddr = match addr {
            SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
            SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let socket = UdpSocket::bind(local)?;
        // A connected UDP socket takes datagrams from the server only, and reports an ICMP
        // "port unreachable" as ECONNREFUSED.
        socket.connect(addr)?;
        socket.set_read_timeout(Some(args.timeout))?;
        socket.set_write_timeout(Some(args.timeout))?;
        println!("Sending to {addr} from {} (UDP).", socket.local_addr()?);
        match udp_exchange(args, &socket, *addr) {
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused && i + 1 < addrs.len() => {
                println!("No UDP server at {addr} ({e}); trying the next address.");
            }
            other => return other,
        }
    }
    Err(io::Error::other("no address to send to"))
}

/// The requests and answers with one server address.
fn udp_exchange(args: &ClientArgs, socket: &UdpSocket, addr: SocketAddr) -> io::Result<()> {
    let mut buf = vec![0; sockets::MAX_DATAGRAM];
    for message in &args.messages {
        let datagram = format!("{message}\n");
        socket.send(datagram.as_bytes())?;
        println!(
            "Send {} bytes to server: \"{}\"",
            datagram.len(),
            sockets::show(datagram.as_bytes())
        );
        let n = socket.recv(&mut buf).map_err(|e| {
            if sockets::is_timeout(&e) {
                io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "no answer from the server within {} (UDP does not resend)",
                        show(args.timeout)
                    ),
                )
            } else if e.kind() == io::ErrorKind::ConnectionRefused {
                io::Error::new(e.kind(), format!("no UDP server at {addr}: {e}"))
            } else {
                e
            }
        })?;
        println!(
            "Receive {n} bytes from server: \"{}\"",
            sockets::show(&buf[..n])
        );
    }
    Ok(())
}
