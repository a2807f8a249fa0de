//! The Winsock sample server with tokio: the same protocol, command line and output as
//! `socket_server`, with a task per TCP client instead of a thread.
//!
//! The accept loop waits in one `select!` on a new client, SIGINT/SIGTERM and the end of a
//! client task; on a signal or after `--clients` it closes the listener, then waits for the
//! tasks in flight.

use std::io;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use procwire_examples::sockets::{self, Request, ServerArgs};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::task::JoinSet;
use tokio::time::timeout;

#[tokio::main]
async fn main() -> ExitCode {
    let args = ServerArgs::parse();
    let result = async {
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        if args.udp {
            serve_udp(&args, &mut interrupt, &mut terminate).await
        } else {
            serve_tcp(&args, &mut interrupt, &mut terminate).await
        }
    }
    .await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("socket_server_async: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Accepts clients until a signal or `--clients`, a task each; then closes the listener and
/// waits for the tasks still serving.
async fn serve_tcp(
    args: &ServerArgs,
    interrupt: &mut Signal,
    terminate: &mut Signal,
) -> io::Result<()> {
    let bound = sockets::tcp_listener(args.addr(), args.ipv6_only)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {}: {e}", args.addr())))?;
    bound.socket.set_nonblocking(true)?;
    bound.announce("TCP");
    let listener = TcpListener::from_std(bound.socket)?;
    let mut in_flight = JoinSet::new();
    let mut accepted = 0;
    loop {
        if args.clients.is_some_and(|n| accepted >= n) {
            println!("Served {accepted} client(s) as asked; stopping.");
            break;
        }
        tokio::select! {
            client = listener.accept() => match client {
                Ok((stream, peer)) => {
                    accepted += 1;
                    in_flight.spawn(serve_client(stream, peer, accepted, args.timeout));
                }
                Err(e) => {
                    eprintln!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            name = sockets::next_signal(interrupt, terminate) => {
                println!("{name} received; stopping.");
                break;
            }
            // Reaps the tasks that are done, so that the set stays small.
            Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
        }
    }
    drop(listener);
    println!(
        "The listener is closed; waiting for {} client(s) in flight.",
        in_flight.len()
    );
    while in_flight.join_next().await.is_some() {}
    println!("Server stopped after {accepted} client(s).");
    Ok(())
}

/// One client, as `socket_server`'s thread serves it.
async fn serve_client(stream: TcpStream, peer: SocketAddr, id: usize, limit: Duration) {
    println!("Client {id} connected from {peer}.");
    let (reader, mut writer) = stream.into_split();
    let mut reader = BufReader::new(reader);
    let mut answered = 0;
    let mut read = Vec::new();
    loop {
        read.clear();
        let mut limited = (&mut reader).take(sockets::READ_LIMIT);
        match timeout(limit, limited.read_until(b'\n', &mut read)).await {
            Err(_) => {
                println!(
                    "Client {id}: no request within {}; closing.",
                    humantime::format_duration(limit)
                );
                break;
            }
            Ok(Err(e)) => {
                println!("Client {id}: receive failed ({e}); closing.");
                break;
            }
            Ok(Ok(_)) => {}
        }
        match Request::parse(&read) {
            Request::End => {
                println!("Client {id} shut down its sending side after {answered} request(s).");
                break;
            }
            Request::Unfinished(bytes) => {
                println!("Client {id} left mid-request ({bytes} byte(s) without end of line).");
                break;
            }
            Request::TooLong => {
                println!("Client {id}: request line too long; closing.");
                let _ = timeout(limit, writer.write_all(&sockets::too_long())).await;
                // As socket_server: shut down our side, then drain until the client closes.
                let _ = writer.shutdown().await;
                let _ = timeout(limit, tokio::io::copy(&mut reader, &mut tokio::io::sink())).await;
                break;
            }
            Request::Line(line) => {
                println!(
                    "Client {id}: receive {} bytes: \"{}\"",
                    read.len(),
                    sockets::show(line)
                );
                let answer = sockets::answer(line);
                match timeout(limit, writer.write_all(&answer)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        println!("Client {id}: send failed ({e}); closing.");
                        break;
                    }
                    Err(_) => {
                        println!(
                            "Client {id}: send blocked for {}; closing.",
                            humantime::format_duration(limit)
                        );
                        break;
                    }
                }
                println!(
                    "Client {id}: send {} bytes: \"{}\"",
                    answer.len(),
                    sockets::show(&answer)
                );
                answered += 1;
            }
        }
    }
    // shutdown(SD_SEND), then the halves drop and close the socket.
    let _ = writer.shutdown().await;
    println!("Client {id} disconnected.");
}

/// Answers datagrams until a signal or `--clients` requests.
async fn serve_udp(
    args: &ServerArgs,
    interrupt: &mut Signal,
    terminate: &mut Signal,
) -> io::Result<()> {
    let bound = sockets::udp_socket(args.addr(), args.ipv6_only)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot bind {}: {e}", args.addr())))?;
    bound.socket.set_nonblocking(true)?;
    bound.announce("UDP");
    let socket = UdpSocket::from_std(bound.socket)?;
    let mut buf = vec![0; sockets::MAX_DATAGRAM];
    let mut served = 0;
    loop {
        if args.clients.is_some_and(|n| served >= n) {
            println!("Served {served} request(s) as asked; stopping.");
            break;
        }
        let (len, peer) = tokio::select! {
            got = socket.recv_from(&mut buf) => match got {
                Ok(got) => got,
                Err(e) => {
                    eprintln!("receive failed: {e}");
                    continue;
                }
            },
            name = sockets::next_signal(interrupt, terminate) => {
                println!("{name} received; stopping.");
                break;
            }
        };
        served += 1;
        let request = sockets::datagram_text(&buf[..len]);
        println!(
            "Receive {len} bytes from {peer}: \"{}\"",
            sockets::show(request)
        );
        let answer = sockets::answer(request);
        match socket.send_to(&answer, peer).await {
            Ok(_) => println!(
                "Send {} bytes to {peer}: \"{}\"",
                answer.len(),
                sockets::show(&answer)
            ),
            Err(e) => println!("Send to {peer} failed: {e}"),
        }
    }
    println!("Server stopped after {served} request(s).");
    Ok(())
}
