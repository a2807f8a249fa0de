//! The Winsock sample server on Linux sockets: listens on port 27015 (TCP, or UDP with
//! `--udp`), serves many clients at once (a thread per TCP client) and answers each request
//! line with "echo: LINE".
//!
//! Run it, then `cargo run --example socket_client` in another terminal (or
//! `socat - TCP:127.0.0.1:27015`). `--port 0` picks a free port, `--bind ::` listens on every
//! interface, IPv6 and IPv4 (dual-stack), `--clients N` stops after N clients; SIGINT or
//! SIGTERM stops it too. Either way it closes the listener first and then waits for the
//! clients in flight. The protocol is in `procwire_examples::sockets`; the Winsock calls beside
//! these are in docs/sockets.md.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::ExitCode;
use std::thread::JoinHandle;
use std::time::Duration;

use clap::Parser;
use procwire_examples::sockets::{self, Request, ServerArgs, StopSignals};

fn main() -> ExitCode {
    let args = ServerArgs::parse();
    let result = if args.udp {
        serve_udp(&args)
    } else {
        serve_tcp(&args)
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("socket_server: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Accepts clients until a signal or `--clients`, a thread each; then closes the listener
/// and joins the threads still serving.
fn serve_tcp(args: &ServerArgs) -> io::Result<()> {
    let stop = StopSignals::catch()?;
    let bound = sockets::tcp_listener(args.addr(), args.ipv6_only)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {}: {e}", args.addr())))?;
    bound.announce("TCP");
    let listener: TcpListener = bound.socket;
    let mut in_flight: Vec<JoinHandle<()>> = Vec::new();
    let mut accepted = 0;
    loop {
        if args.clients.is_some_and(|n| accepted >= n) {
            println!("Served {accepted} client(s) as asked; stopping.");
            break;
        }
        if !sockets::wait_readable(&listener, &stop)? {
            println!(
                "{} received; stopping.",
                stop.caught().unwrap_or("A signal")
            );
            break;
        }
        match listener.accept() {
            Ok((stream, peer)) => {
                accepted += 1;
                let id = accepted;
                let timeout = args.timeout;
                in_flight.push(std::thread::spawn(move || {
                    serve_client(stream, peer, id, timeout)
                }));
            }
            // A client that gave up before we accepted it, or no descriptors left (EMFILE):
            // keep serving the others, pausing so that a lasting error does not spin.
            Err(e) => {
                eprintln!("accept failed: {e}");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        in_flight.retain(|client| !client.is_finished());
    }
    drop(listener);
    in_flight.retain(|client| !client.is_finished());
    println!(
        "The listener is closed; waiting for {} client(s) in flight.",
        in_flight.len()
    );
    for client in in_flight {
        let _ = client.join();
    }
    println!("Server stopped after {accepted} client(s).");
    Ok(())
}

/// One client: answers its lines until it shuts down its sending side, stays silent for
/// `timeout`, or breaks the protocol; then shuts down our side and closes.
fn serve_client(stream: TcpStream, peer: SocketAddr, id: usize, timeout: Duration) {
    println!("Client {id} connected from {peer}.");
    if let Err(e) = stream
        .set_read_timeout(Some(timeout))
        .and_then(|()| stream.set_write_timeout(Some(timeout)))
    {
        println!("Client {id}: cannot set its timeouts ({e}); closing.");
        return;
    }
    let mut reader = BufReader::new(&stream);
    let mut writer = &stream;
    let mut answered = 0;
    let mut read = Vec::new();
    loop {
        read.clear();
        if let Err(e) = (&mut reader)
            .take(sockets::READ_LIMIT)
            .read_until(b'\n', &mut read)
        {
            if sockets::is_timeout(&e) {
                println!(
                    "Client {id}: no request within {}; closing.",
                    humantime::format_duration(timeout)
                );
            } else {
                println!("Client {id}: receive failed ({e}); closing.");
            }
            break;
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
                let _ = writer.write_all(&sockets::too_long());
                // Closing with unread bytes would reset the connection and could destroy
                // the error line before the client reads it: shut down our side, then
                // drain what the client still sends until it closes (or `timeout`).
                let _ = stream.shutdown(Shutdown::Write);
                let _ = io::copy(&mut reader, &mut io::sink());
                break;
            }
            Request::Line(line) => {
                println!(
                    "Client {id}: receive {} bytes: \"{}\"",
                    read.len(),
                    sockets::show(line)
                );
                let answer = sockets::answer(line);
                if let Err(e) = writer.write_all(&answer) {
                    if sockets::is_timeout(&e) {
                        // The client does not read its answers: SO_SNDTIMEO ran out.
                        println!(
                            "Client {id}: send blocked for {}; closing.",
                            humantime::format_duration(timeout)
                        );
                    } else {
                        println!("Client {id}: send failed ({e}); closing.");
                    }
                    break;
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
    // The Winsock sample's shutdown(SD_SEND): the client reads to the end and sees it.
    let _ = stream.shutdown(Shutdown::Write);
    println!("Client {id} disconnected.");
}

/// Answers datagrams until a signal or `--clients` requests.
fn serve_udp(args: &ServerArgs) -> io::Result<()> {
    let stop = StopSignals::catch()?;
    let bound = sockets::udp_socket(args.addr(), args.ipv6_only)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot bind {}: {e}", args.addr())))?;
    bound.announce("UDP");
    let socket: UdpSocket = bound.socket;
    let mut buf = vec![0; sockets::MAX_DATAGRAM];
    let mut served = 0;
    loop {
        if args.clients.is_some_and(|n| served >= n) {
            println!("Served {served} request(s) as asked; stopping.");
            break;
        }
        if !sockets::wait_readable(&socket, &stop)? {
            println!(
                "{} received; stopping.",
                stop.caught().unwrap_or("A signal")
            );
            break;
        }
        let (len, peer) = match socket.recv_from(&mut buf) {
            Ok(got) => got,
            // An ICMP error for an earlier answer (the client had gone): not ours to stop on.
            Err(e) => {
                eprintln!("receive failed: {e}");
                continue;
            }
        };
        served += 1;
        let request = sockets::datagram_text(&buf[..len]);
        println!(
            "Receive {} bytes from {peer}: \"{}\"",
            len,
            sockets::show(request)
        );
        let answer = sockets::answer(request);
        match socket.send_to(&answer, peer) {
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
