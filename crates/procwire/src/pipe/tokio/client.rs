//! Connecting to a pipe, async.

use std::io;
use std::os::fd::AsFd;

use tokio::io::Interest;
use tokio::net::{TcpStream, UnixStream};
use tokio::time::Instant;

use super::stream::{read_handshake, AsyncStream};
use super::PipeConnection;
use crate::name::Name;
use crate::pipe::client::{offer_error, Backoff};
use crate::pipe::endpoint::{self, Endpoint, Target};
use crate::pipe::info::Info;
use crate::pipe::{handshake, shm};
use crate::pipe::{ClientOptions, PipeError};

impl ClientOptions {
    /// Connects to the pipe `name`, as [`open`](Self::open) does, without blocking the
    /// runtime.
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open).
    pub async fn open_async<N>(&self, name: N) -> Result<PipeConnection, PipeError>
    where
        N: TryInto<Name>,
        N::Error: Into<PipeError>,
    {
        let endpoint = endpoint::resolve(name)?;
        let deadline = std::time::Instant::now() + self.timeout;
        let mut backoff = Backoff::new();
        let mut busy = None;
        // As in the blocking client: shared memory is asked of local servers only, and a
        // server that does not know the request flag is asked again without it.
        let mut ask_memory = self.shared_memory && matches!(endpoint.target, Target::Unix(_));
        loop {
            let mut flag_refused = false;
            let attempt = self.attempt(&endpoint, ask_memory, &mut flag_refused);
            let attempt = tokio::time::timeout_at(Instant::from_std(deadline), attempt)
                .await
                .unwrap_or_else(|_| {
                    Err(PipeError::Timeout {
                        name: endpoint.display.clone(),
                        what: "connecting",
                        after: self.timeout,
                    })
                });
            match (attempt, busy.take()) {
                (Ok(conn), _) => return Ok(conn),
                (Err(PipeError::Protocol { .. }), _) if flag_refused => ask_memory = false,
                (Err(e @ PipeError::Busy { .. }), _) => match backoff.next(deadline) {
                    Some(pause) => {
                        tokio::time::sleep(pause).await;
                        busy = Some(e);
                    }
                    None => return Err(e),
                },
                // Time ran out while waiting for a free instance: the pipe is still busy.
                (Err(PipeError::Timeout { .. }), Some(e)) => return Err(e),
                (Err(e), _) => return Err(e),
            }
        }
    }

    /// One connection and handshake; `flag_refused` is set when the server refused a request
    /// that asked for shared memory as malformed (a server that predates the flag).
    async fn attempt(
        &self,
        endpoint: &Endpoint,
        ask_memory: bool,
        flag_refused: &mut bool,
    ) -> Result<PipeConnection, PipeError> {
        let display = &endpoint.display;
        let mut stream = match &endpoint.target {
            Target::Unix(path) => UnixStream::connect(path)
                .await
                .map(AsyncStream::unix)
                .map_err(|e| endpoint::connect_error(display, path, e))?,
            Target::Tcp { host, port } => {
                let s = TcpStream::connect((host.as_str(), *port))
                    .await
                    .map_err(|e| match e.kind() {
                        io::ErrorKind::ConnectionRefused => PipeError::NotFound {
                            name: display.clone(),
                            detail: format!("nothing listens on {host}:{port}"),
                        },
                        _ => PipeError::io(display, format!("cannot connect to {host}:{port}"), e),
                    })?;
                s.set_nodelay(true)
                    .map_err(|e| PipeError::io(display, "cannot set TCP_NODELAY", e))?;
                self.secure_async(display, s, host).await?
            }
        };
        let server = stream.peer_credentials().unwrap_or(None);
        endpoint::check_owner(display, &self.owners, server)?;
        let hung_up = |e: io::Error| PipeError::Disconnected {
            name: display.clone(),
            detail: format!("the server hung up during the handshake ({e})"),
        };
        // As in the blocking client: a refusal may already be waiting when the write fails.
        let sent = stream
            .write_all(&self.request(endpoint, ask_memory).encode())
            .await;
        if let Err(e) = &sent {
            if !handshake::answered_early(e) {
                return Err(hung_up(sent.unwrap_err()));
            }
        }
        let response = match (read_handshake(&mut stream, handshake::RESPONSE).await, sent) {
            (Err(_), Err(e)) | (Err(e), Ok(())) => return Err(hung_up(e)),
            (Ok(answer), _) => answer,
        }
        .map_err(|source| PipeError::Protocol {
            name: display.clone(),
            source,
        })?;
        let info = self.interpret(endpoint, response).inspect_err(|e| {
            *flag_refused = ask_memory && matches!(e, PipeError::Protocol { .. });
        })?;
        let parts = match &stream {
            AsyncStream::Unix(socket) if ask_memory => take_offer(display, socket, &info).await?,
            _ => None,
        };
        let peer = stream.peer_credentials().unwrap_or(None);
        PipeConnection::with_shm(stream, Info { peer, ..info }, parts)
            .map_err(|e| PipeError::io(display, "cannot set up shared memory", e))
    }

    /// Wraps a TCP connection in TLS when the options ask for it, as the blocking client does.
    async fn secure_async(
        &self,
        display: &str,
        tcp: TcpStream,
        host: &str,
    ) -> Result<AsyncStream, PipeError> {
        #[cfg(feature = "tls")]
        if let Some(config) = &self.tls {
            return super::tls::connect(tcp, std::sync::Arc::clone(config), host)
                .await
                .map_err(|e| PipeError::Protocol {
                    name: display.to_owned(),
                    source: crate::wire::ProtocolError::BadField {
                        field: "TLS handshake",
                        problem: e.to_string(),
                    },
                });
        }
        let _ = (display, host);
        Ok(AsyncStream::Tcp(tcp))
    }
}

/// Reads the server's answer about the data path, as the blocking client does.
async fn take_offer(
    name: &str,
    socket: &UnixStream,
    info: &Info,
) -> Result<Option<shm::Parts>, PipeError> {
    let limit = shm::limit_for(info.pipe_type, info.max_message);
    let record = loop {
        let ready = socket.readable().await;
        let got = ready.and_then(|()| {
            socket.try_io(Interest::READABLE, || shm::receive_offer(socket.as_fd()))
        });
        match got {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            got => break got,
        }
    };
    record
        .map_err(shm::offer_failed)
        .and_then(|record| shm::take_offer(socket.as_fd(), record, limit))
        .map_err(|e| offer_error(name, e))
}
