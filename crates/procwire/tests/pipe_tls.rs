//! TLS pipes over TCP through the tokio API, across real processes: a tokio server and a
//! blocking server (helper processes: this test binary re-executed) that echo every
//! message, met by tokio and blocking clients that trust the test's certificate.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use procwire::name::Name;
use procwire::pipe::{ClientOptions, PipeError, PipeOptions};
use procwire::rustls::pki_types::pem::PemObject;
use procwire::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use procwire::rustls::{self, ClientConfig, RootCertStore, ServerConfig};
use procwire::wire::PipeMode;
use procwire_testkit::{helper, helper_role, say, unique_name, Proc, Watchdog};

/// A self-signed certificate for `localhost`, as PEM: (certificate, private key).
fn certificate() -> (String, String) {
    let key = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    (key.cert.pem(), key.signing_key.serialize_pem())
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn client_config(cert_pem: &str) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(cert_pem.as_bytes()).unwrap())
        .unwrap();
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

fn server_config(cert_pem: &str, key_pem: &str) -> Arc<ServerConfig> {
    let chain = vec![CertificateDer::from_pem_slice(cert_pem.as_bytes()).unwrap()];
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap();
    let config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    Arc::new(config)
}

/// Starts an echo server helper (`tokio` or `blocking`) with TLS on a loopback port; returns
/// it and the pipe's TCP name.
fn server(kind: &str, cert: &(String, String)) -> (Proc, String) {
    let name = unique_name("tls");
    let mut server = helper(
        kind,
        &[("PIPE", &name), ("CERT", &cert.0), ("KEY", &cert.1)],
    );
    let line = server.wait_for("READY");
    let port: u16 = line.trim().rsplit(' ').next().unwrap().parse().unwrap();
    let remote = Name::tcp_pipe(SocketAddr::from(([127, 0, 0, 1], port)), &name)
        .unwrap()
        .to_string()
        .replace("127.0.0.1", "localhost");
    (server, remote)
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

const SIZES: [usize; 4] = [0, 1, 64 << 10, 1 << 20];

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn tokio_client(cert_pem: &str) -> ClientOptions {
    ClientOptions::new()
        .read_mode(PipeMode::Message)
        .timeout(Duration::from_secs(20))
        .tls(client_config(cert_pem))
}

#[test]
fn tokio_clients_and_servers_talk_over_tls_and_keep_every_message() {
    let _wd = Watchdog::new(Duration::from_secs(90));
    let cert = certificate();
    for server_kind in ["tokio", "blocking"] {
        let (_server, remote) = server(server_kind, &cert);
        runtime().block_on(async {
            let mut pipe = tokio_client(&cert.0)
                .open_async(remote.as_str())
                .await
                .unwrap_or_else(|e| panic!("{server_kind} server: {e}"));
            assert!(!pipe.is_shared_memory());
            assert_eq!(
                pipe.server_credentials(),
                None,
                "a TCP peer has no credentials"
            );
            for (i, len) in SIZES.into_iter().enumerate() {
                let message = pattern(len, i as u8);
                pipe.send(&message).await.unwrap();
                let echo = pipe.recv().await.unwrap();
                assert!(echo == message, "{server_kind}: the {len}-byte echo");
            }
            // What the server saw of its client: the TCP address, no local credentials.
            pipe.send(b"who").await.unwrap();
            let seen = String::from_utf8(pipe.recv().await.unwrap()).unwrap();
            assert!(seen.starts_with("addr 127.0.0.1:"), "{server_kind}: {seen}");
            assert!(seen.ends_with("creds none"), "{server_kind}: {seen}");
            // A half close: every message sent before it is echoed, then the server's own
            // word, then the end.
            pipe.send(b"one").await.unwrap();
            pipe.send(b"two").await.unwrap();
            pipe.finish_sending().await.unwrap();
            assert_eq!(pipe.recv().await.unwrap(), b"one");
            assert_eq!(pipe.recv().await.unwrap(), b"two");
            assert_eq!(pipe.recv().await.unwrap(), b"saw the end");
            let end = pipe.recv().await.unwrap_err();
            assert!(matches!(end, PipeError::Disconnected { .. }), "{end}");
        });
    }
}

#[test]
fn a_reply_sent_just_before_the_server_closes_still_arrives() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let cert = certificate();
    let (_server, remote) = server("tokio", &cert);
    runtime().block_on(async {
        for round in 0..6 {
            let mut pipe = tokio_client(&cert.0)
                .open_async(remote.as_str())
                .await
                .unwrap();
            // Larger than the socket buffers on the way: the bridge is still sending it when
            // the server's side is gone.
            let big = pattern(3 << 20, round);
            pipe.send(b"bye").await.unwrap();
            pipe.send(&big).await.unwrap();
            // Left unread by the server: its side closes with them queued.
            for _ in 0..8 {
                pipe.send(b"never read").await.unwrap();
            }
            // The server answers `bye` with the next message and drops the connection.
            tokio::time::sleep(Duration::from_millis(300)).await;
            assert!(pipe.recv().await.unwrap() == big, "round {round}");
            let end = pipe.recv().await.unwrap_err();
            assert!(matches!(end, PipeError::Disconnected { .. }), "{end}");
        }
    });
}

/// A server killed mid-session ends the TCP stream without close_notify: the tokio client
/// reports a broken session, never the clean end of a peer that finished (which is what a
/// truncation would pass for), while a server that closes in order still reads as its end.
#[test]
fn a_server_killed_mid_session_is_a_broken_session_not_a_clean_end() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let cert = certificate();
    for kind in ["tokio", "blocking"] {
        let (mut server, remote) = server(kind, &cert);
        runtime().block_on(async {
            let mut pipe = tokio_client(&cert.0)
                .open_async(remote.as_str())
                .await
                .unwrap();
            pipe.send(b"hello").await.unwrap();
            assert_eq!(pipe.recv().await.unwrap(), b"hello");
            let mut blocking = ClientOptions::new()
                .tls(client_config(&cert.0))
                .timeout(Duration::from_secs(10))
                .open(remote.as_str())
                .unwrap();
            blocking.send(b"hello").unwrap();
            assert_eq!(blocking.recv().unwrap(), b"hello");
            server.kill();
            let end = pipe.recv().await.unwrap_err();
            assert!(
                matches!(&end, PipeError::Disconnected { .. })
                    && end.to_string().contains("TLS session broke"),
                "{kind}: {end}"
            );
            // The blocking API says so in rustls's words.
            let end = blocking.recv().unwrap_err();
            assert!(
                matches!(&end, PipeError::Disconnected { .. })
                    && end.to_string().contains("close_notify"),
                "{kind}, blocking: {end}"
            );
        });
    }
    // The clean case: the server answers `bye` with the next message and closes in order.
    let (_server, remote) = server("tokio", &cert);
    runtime().block_on(async {
        let mut pipe = tokio_client(&cert.0)
            .open_async(remote.as_str())
            .await
            .unwrap();
        pipe.send(b"bye").await.unwrap();
        pipe.send(b"last").await.unwrap();
        assert_eq!(pipe.recv().await.unwrap(), b"last");
        let end = pipe.recv().await.unwrap_err();
        assert!(
            matches!(&end, PipeError::Disconnected { .. })
                && !end.to_string().contains("TLS session broke"),
            "{end}"
        );
    });
}

#[test]
fn a_blocking_client_meets_the_tokio_tls_server() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let cert = certificate();
    let (_server, remote) = server("tokio", &cert);
    let mut pipe = tokio_client(&cert.0).open(remote.as_str()).unwrap();
    for (i, len) in SIZES.into_iter().enumerate() {
        let message = pattern(len, i as u8);
        pipe.send(&message).unwrap();
        assert!(pipe.recv().unwrap() == message, "the {len}-byte echo");
    }
}

#[test]
fn wrong_certificates_plaintext_and_silent_clients_are_turned_away_and_the_server_goes_on() {
    let _wd = Watchdog::new(Duration::from_secs(90));
    let cert = certificate();
    let (_server, remote) = server("tokio", &cert);
    let port: u16 = remote
        .trim_start_matches(r"\\localhost:")
        .split('\\')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    runtime().block_on(async {
        // Clients that hold the connection without a word: the server must not wait on them.
        let silent: Vec<TcpStream> = (0..8)
            .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
            .collect();

        // A client that trusts another certificate refuses the server's.
        let other = certificate();
        let started = Instant::now();
        let e = tokio_client(&other.0)
            .open_async(remote.as_str())
            .await
            .unwrap_err();
        assert!(
            matches!(&e, PipeError::Protocol { .. }) && e.to_string().contains("TLS"),
            "{e}"
        );
        assert!(started.elapsed() < Duration::from_secs(10));

        // A plaintext client gets no pipe (the server only speaks TLS).
        let e = ClientOptions::new()
            .timeout(Duration::from_secs(5))
            .open_async(remote.as_str())
            .await
            .unwrap_err();
        assert!(
            matches!(
                e,
                PipeError::Protocol { .. } | PipeError::Disconnected { .. }
            ),
            "{e}"
        );

        // Garbage where a TLS hello belongs.
        let mut raw = TcpStream::connect(("127.0.0.1", port)).unwrap();
        raw.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        raw.write_all(&[0xFF; 512]).unwrap();
        let mut sink = Vec::new();
        let _ = raw.read_to_end(&mut sink);

        // And a good client still gets in and is served.
        let mut pipe = tokio_client(&cert.0)
            .open_async(remote.as_str())
            .await
            .unwrap();
        pipe.send(b"still here").await.unwrap();
        assert_eq!(pipe.recv().await.unwrap(), b"still here");
        drop(silent);
    });
}

/// Not a test of its own: the body of the helper processes above.
#[test]
fn helper_process() {
    let Some(role) = helper_role() else {
        return;
    };
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    let options = PipeOptions::new()
        .mode(PipeMode::Message)
        .max_message_size(4 << 20)
        .listen_tcp(SocketAddr::from(([127, 0, 0, 1], 0)))
        .handshake_timeout(Duration::from_secs(2))
        .tls(server_config(&var("CERT"), &var("KEY")));
    match role.as_str() {
        "tokio" => tokio_echo(options, &var("PIPE")),
        "blocking" => blocking_echo(options, &var("PIPE")),
        other => panic!("unknown role {other}"),
    }
}

/// The answer to `who`: what the server knows of its client.
fn who(addr: Option<SocketAddr>, creds: bool) -> Vec<u8> {
    let addr = addr.map_or("none".to_owned(), |a| a.to_string());
    let creds = if creds { "some" } else { "none" };
    format!("addr {addr} creds {creds}").into_bytes()
}

/// Echoes every message; answers `who`; after `bye`, echoes one more message and closes;
/// at the client's half close, says so and closes.
fn tokio_echo(options: PipeOptions, name: &str) {
    runtime().block_on(async {
        let server = options.create_async(name).unwrap();
        say(&format!("READY {}", server.tcp_addr().unwrap().port()));
        loop {
            let mut conn = server.accept().await.unwrap();
            tokio::spawn(async move {
                loop {
                    let message = match conn.recv().await {
                        Ok(message) => message,
                        Err(PipeError::Disconnected { .. }) => {
                            let _ = conn.send(b"saw the end").await;
                            return;
                        }
                        Err(_) => return,
                    };
                    let answer = match &message[..] {
                        b"who" => who(conn.peer_addr(), conn.peer_credentials().is_some()),
                        b"bye" => {
                            let last = conn.recv().await.unwrap();
                            conn.send(&last).await.unwrap();
                            return;
                        }
                        _ => message,
                    };
                    if conn.send(&answer).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
}

/// The blocking server's twin of [`tokio_echo`].
fn blocking_echo(options: PipeOptions, name: &str) {
    let server = options.create(name).unwrap();
    say(&format!("READY {}", server.tcp_addr().unwrap().port()));
    loop {
        let mut conn = server.accept().unwrap();
        std::thread::spawn(move || loop {
            let message = match conn.recv() {
                Ok(message) => message,
                Err(PipeError::Disconnected { .. }) => {
                    let _ = conn.send(b"saw the end");
                    return;
                }
                Err(_) => return,
            };
            let answer = match &message[..] {
                b"who" => who(conn.peer_addr(), conn.peer_credentials().is_some()),
                _ => message,
            };
            if conn.send(&answer).is_err() {
                return;
            }
        });
    }
}
