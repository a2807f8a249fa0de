//! The Winsock sample client with tokio: the same command line, protocol and output as
//! `socket_client`; every wait is a `tokio::time::timeout` around the future.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use procwire_examples::sockets::{self, ClientArgs};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::timeout;

#[tokio::main]
async fn main() -> ExitCode {
    let args = ClientArgs::parse();
    let result = async {
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((args.host.as_str(), args.port))
            .await
            .map_err(|e| io::Error::new(e.kind(), format!("cannot resolve {}: {e}", args.host)))?
            .collect();
        if args.udp {
            run_udp(&args, &addrs).await
        } else {
            run_tcp(&args, &addrs).await
        }
    }
    .await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("socket_client_async: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A timeout as an error that says what did not happen in time.
fn timed_out(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, what)
}

/// The duration as the samples print it (`500ms`, `5s`).
fn show(d: Duration) -> humantime::FormattedDuration {
    humantime::format_duration(d)
}

/// Connects to the first address that answers, sends the lines, shuts down the sending side
/// and reads the answers to the end.
async fn run_tcp(args: &ClientArgs, addrs: &[SocketAddr]) -> io::Result<()> {
    let mut last = None;
    let mut connected = None;
    for addr in addrs {
        let e = match timeout(args.connect_timeout, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => {
                connected = Some(stream);
                break;
            }
            Ok(Err(e)) => io::Error::new(e.kind(), format!("cannot connect to {addr}: {e}")),
            Err(_) => timed_out(format!(
                "no connection to {addr} within {}",
                show(args.connect_timeout)
            )),
        };
        println!("{e}");
        last = Some(e);
    }
    let Some(stream) = connected else {
        return Err(last.unwrap_or_else(|| io::Error::other("no address to connect to")));
    };
    println!(
        "Connected to {} from {}.",
        stream.peer_addr()?,
        stream.local_addr()?
    );
    let (reader, mut writer) = stream.into_split();
    for message in &args.messages {
        let line = format!("{message}\n");
        timeout(args.timeout, writer.write_all(line.as_bytes()))
            .await
            .map_err(|_| {
                timed_out(format!(
                    "the request did not go out within {}",
                    show(args.timeout)
                ))
            })??;
        println!(
            "Send {} bytes to server: \"{}\"",
            line.len(),
            sockets::show(line.as_bytes())
        );
    }
    writer.shutdown().await?;
    println!("Shut down the sending side; reading the answers.");
    let mut reader = BufReader::new(reader);
    let mut answers = 0;
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = timeout(args.timeout, reader.read_until(b'\n', &mut line))
            .await
            .map_err(|_| {
                timed_out(format!(
                    "no answer from the server within {} ({answers} of {} received)",
                    show(args.timeout),
                    args.messages.len()
                ))
            })??;
        if n == 0 {
            break;
        }
        answers += 1;
        println!(
            "Receive {n} bytes from server: \"{}\"",
            sockets::show(&line)
        );
    }
    println!("The server closed the connection after {answers} answer(s).");
    Ok(())
}

/// Sends each message as a datagram and waits for its answer, trying the next address while
/// the first request is refused.
async fn run_udp(args: &ClientArgs, addrs: &[SocketAddr]) -> io::Result<()> {
    for (i, &addr) in addrs.iter().enumerate() {
        let local: SocketAddr = match addr {
            SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
            SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let socket = UdpSocket::bind(local).await?;
        socket.connect(addr).await?;
        println!("Sending to {addr} from {} (UDP).", socket.local_addr()?);
        match udp_exchange(args, &socket, addr).await {
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused && i + 1 < addrs.len() => {
                println!("No UDP server at {addr} ({e}); trying the next address.");
            }
            other => return other,
        }
    }
    Err(io::Error::other("no address to send to"))
}

/// The requests and answers with one server address.
async fn udp_exchange(args: &ClientArgs, socket: &UdpSocket, addr: SocketAddr) -> io::Result<()> {
    let mut buf = vec![0; sockets::MAX_DATAGRAM];
    for message in &args.messages {
        let datagram = format!("{message}\n");
        socket.send(datagram.as_bytes()).await?;
        println!(
            "Send {} bytes to server: \"{}\"",
            datagram.len(),
            sockets::show(datagram.as_bytes())
        );
        let n = match timeout(args.timeout, socket.recv(&mut buf)).await {
            Ok(Ok(n)) => n,
            Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionRefused => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("no UDP server at {addr}: {e}"),
                ))
            }
            Ok(Err(e)) => return Err(e),
            Err(_) => {
                return Err(timed_out(format!(
                    "no answer from the server within {} (UDP does not resend)",
                    show(args.timeout)
                )))
            }
        };
        println!(
            "Receive {n} bytes from server: \"{}\"",
            sockets::show(&buf[..n])
        );
    }
    Ok(())
}
