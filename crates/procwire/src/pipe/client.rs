//! Connecting to a pipe, blocking: `CreateFile` plus `WaitNamedPipe`.

use std::io;
use std::net::{TcpStream, ToSocketAddrs};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use super::endpoint::{self, Endpoint, Target};
use super::handshake;
use super::info::Info;
use super::stream::Stream;
use super::{ClientOptions, PipeConnection, PipeError};
use crate::name::Name;
use crate::wire::{Request, Response, Status};

/// Sleeps between attempts while a pipe is busy: short at first, then longer.
#[derive(Debug)]
pub(crate) struct Backoff(Duration);

impl Backoff {
    pub(crate) fn new() -> Backoff {
        Backoff(Duration::from_millis(1))
    }

    /// The next pause, or `None` when it would pass the deadline.
    pub(crate) fn next(&mut self, deadline: Instant) -> Option<Duration> {
        let pause = self.0;
        self.0 = (self.0 * 2).min(Duration::from_millis(50));
        let left = deadline.saturating_duration_since(Instant::now());
        (!left.is_zero()).then_some(pause.min(left))
    }
}

impl ClientOptions {
    /// Connects to the pipe `name` (`CreateFile`), waiting while every instance is busy
    /// (`WaitNamedPipe`) for up to the [timeout](Self::timeout).
    ///
    /// # Errors
    ///
    /// [`PipeError::NotFound`] when no server has the name (or its server died);
    /// [`PipeError::Busy`] when every instance stayed in use until the timeout;
    /// [`PipeError::AccessDenied`] when the pipe's access list or direction refuses the
    /// access asked for; [`PipeError::ModeMismatch`] for message read mode on a byte-type
    /// pipe; [`PipeError::WrongKind`] when the name is not a pipe; [`PipeError::Timeout`]
    /// when the server does not answer in time.
    pub fn open<N>(&self, name: N) -> Result<PipeConnection, PipeError>
    where
        N: TryInto<Name>,
        N::Error: Into<PipeError>,
    {
        let endpoint = endpoint::resolve(name)?;
        let deadline = Instant::now() + self.timeout;
        let mut backoff = Backoff::new();
        let mut busy = None;
        // Shared memory is asked of local servers only; one that does not know the request
        // flag refuses the handshake, and is asked again without it.
        let mut ask_memory = self.shared_memory && matches!(endpoint.target, Target::Unix(_));
        loop {
            let attempt = connect(&endpoint, deadline)
                .and_then(|stream| {
                    let server = stream.peer_credentials().unwrap_or(None);
                    endpoint::check_owner(&endpoint.display, &self.owners, server)?;
                    Ok(stream)
                })
                .and_then(|stream| self.secure(&endpoint, stream, deadline))
                .and_then(|stream| {
                    let response = self.exchange(&endpoint, &stream, deadline, ask_memory)?;
                    Ok((response, stream))
                });
            let (response, stream) = match (attempt, busy.take()) {
                (Ok(done), _) => done,
                // Time ran out while waiting for a free instance: the pipe is still busy.
                (Err(PipeError::Timeout { .. }), Some(busy)) => return Err(busy),
                (Err(e), _) => return Err(e),
            };
            match self.interpret(&endpoint, response) {
                Ok(info) => {
                    let peer = stream.peer_credentials().unwrap_or(None);
                    let link = match (&stream, ask_memory) {
                        (Stream::Unix(socket), true) => take_offer(&endpoint, socket, &info)?,
                        _ => None,
                    };
                    stream
                        .set_timeouts(None)
                        .map_err(|e| PipeError::io(&endpoint.display, "cannot set up", e))?;
                    let info = Info { peer, ..info };
                    return Ok(PipeConnection::with_link(stream, info, link));
                }
                Err(PipeError::Protocol { .. }) if ask_memory => ask_memory = false,
                Err(e @ PipeError::Busy { .. }) => match backoff.next(deadline) {
                    Some(pause) => {
                        std::thread::sleep(pause);
                        busy = Some(e);
                    }
                    None => return Err(e),
                },
                Err(e) => return Err(e),
            }
        }
    }

    fn exchange(
        &self,
        endpoint: &Endpoint,
        stream: &Stream,
        deadline: Instant,
        ask_memory: bool,
    ) -> Result<Response, PipeError> {
        let display = &endpoint.display;
        let left = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1));
        stream
            .set_timeouts(Some(left))
            .map_err(|e| PipeError::io(display, "cannot set the timeout", e))?;
        let timeout = |e: io::Error, what| match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => PipeError::Timeout {
                name: display.clone(),
                what,
                after: self.timeout,
            },
            _ => PipeError::Disconnected {
                name: display.clone(),
                detail: format!("the server hung up during the handshake ({e})"),
            },
        };
        // A server that refuses this user at once may have answered and closed before the
        // request went out: then the write fails, and the answer is still there to read.
        let sent = stream.write_all(&self.request(endpoint, ask_memory).encode());
        if let Err(e) = &sent {
            if !handshake::answered_early(e) {
                return Err(timeout(sent.unwrap_err(), "sending the handshake"));
            }
        }
        let answer = handshake::read_blocking(|b| stream.read_by(b, deadline), handshake::RESPONSE);
        match (answer, sent) {
            (Err(_), Err(e)) => return Err(timeout(e, "sending the handshake")),
            (Err(e), Ok(())) => return Err(timeout(e, "waiting for the server's answer")),
            (Ok(answer), _) => answer,
        }
        .map_err(|source| PipeError::Protocol {
            name: display.clone(),
            source,
        })
    }

    /// Wraps a TCP connection in TLS when the options ask for it.
    fn secure(
        &self,
        endpoint: &Endpoint,
        stream: Stream,
        deadline: Instant,
    ) -> Result<Stream, PipeError> {
        #[cfg(feature = "tls")]
        if let (Stream::Tcp(tcp), Some(config), Target::Tcp { host, .. }) =
            (&stream, &self.tls, &endpoint.target)
        {
            let left = deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1));
            let tcp = tcp
                .try_clone()
                .and_then(|t| {
                    t.set_read_timeout(Some(left))?;
                    t.set_write_timeout(Some(left))?;
                    Ok(t)
                })
                .map_err(|e| PipeError::io(&endpoint.display, "cannot set up TLS", e))?;
            drop(stream);
            return super::tls::TlsStream::connect(tcp, std::sync::Arc::clone(config), host)
                .map(|tls| Stream::Tls(std::sync::Arc::new(tls)))
                .map_err(|e| PipeError::Protocol {
                    name: endpoint.display.clone(),
                    source: crate::wire::ProtocolError::BadField {
                        field: "TLS handshake",
                        problem: e.to_string(),
                    },
                });
        }
        let _ = (endpoint, deadline);
        Ok(stream)
    }

    pub(crate) fn request(&self, endpoint: &Endpoint, shared_memory: bool) -> Request {
        Request {
            access: self.access,
            mode: self.read_mode,
            pipe: endpoint.object.clone(),
            shared_memory,
        }
    }

    /// Turns the server's answer into the connection's facts or the matching error; shared
    /// with the tokio client.
    pub(crate) fn interpret(
        &self,
        endpoint: &Endpoint,
        response: Response,
    ) -> Result<Info, PipeError> {
        let name = endpoint.display.clone();
        let detail = response.detail;
        match response.status {
            Status::Ok => Ok(Info {
                is_client: true,
                name,
                pipe_type: response.pipe_type,
                read_mode: self.read_mode,
                access: response.access.unwrap_or(self.access),
                max_message: response.max_message.min(self.max_message),
                peer: None,
                _slot: None,
            }),
            Status::Busy => Err(PipeError::Busy {
                name,
                in_use: response.instances,
                max: response.max_instances,
            }),
            Status::NotFound => Err(PipeError::NotFound { name, detail }),
            Status::AccessDenied => Err(PipeError::AccessDenied { name, detail }),
            Status::ModeMismatch => Err(PipeError::ModeMismatch { name, detail }),
            Status::UnsupportedVersion | Status::BadRequest => Err(PipeError::Protocol {
                name,
                source: crate::wire::ProtocolError::BadField {
                    field: "handshake",
                    problem: format!("the server refused it: {detail}"),
                },
            }),
        }
    }
}

/// Reads the server's answer about the data path after an accepting response to a request
/// that asked for shared memory.
fn take_offer(
    endpoint: &Endpoint,
    socket: &UnixStream,
    info: &Info,
) -> Result<Option<super::shm::Link>, PipeError> {
    let limit = super::shm::limit_for(info.pipe_type, info.max_message);
    let taken = super::shm::receive_offer(socket.as_fd())
        .map_err(super::shm::offer_failed)
        .and_then(|record| super::shm::take_offer(socket.as_fd(), record, limit));
    match taken {
        Ok(parts) => Ok(parts.map(super::shm::Parts::into_link)),
        Err(e) => Err(offer_error(&endpoint.display, e)),
    }
}

/// The client's error when the server's answer about the data path is unusable.
pub(crate) fn offer_error(name: &str, e: super::shm::OfferError) -> PipeError {
    match e {
        super::shm::OfferError::Protocol(source) => PipeError::Protocol {
            name: name.to_owned(),
            source,
        },
        super::shm::OfferError::Io(e) => match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => PipeError::Timeout {
                name: name.to_owned(),
                what: "waiting for the server's data path",
                after: Duration::ZERO,
            },
            _ => PipeError::io(name, "cannot set up shared memory", e),
        },
    }
}

fn connect(endpoint: &Endpoint, deadline: Instant) -> Result<Stream, PipeError> {
    let display = &endpoint.display;
    match &endpoint.target {
        Target::Unix(path) => UnixStream::connect(path)
            .map(Stream::unix)
            .map_err(|e| endpoint::connect_error(display, path, e)),
        Target::Tcp { host, port } => {
            let addrs = (host.as_str(), *port)
                .to_socket_addrs()
                .map_err(|e| PipeError::io(display, format!("cannot resolve host `{host}`"), e))?;
            let mut last = None;
            for addr in addrs {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                match TcpStream::connect_timeout(&addr, left) {
                    Ok(s) => {
                        s.set_nodelay(true)
                            .map_err(|e| PipeError::io(display, "cannot set TCP_NODELAY", e))?;
                        return Ok(Stream::Tcp(s));
                    }
                    Err(e) => last = Some((addr, e)),
                }
            }
            Err(match last {
                Some((addr, e)) if e.kind() == io::ErrorKind::ConnectionRefused => {
                    PipeError::NotFound {
                        name: display.clone(),
                        detail: format!("nothing listens on {addr}"),
                    }
                }
                Some((addr, e)) => PipeError::io(display, format!("cannot connect to {addr}"), e),
                None => PipeError::Timeout {
                    name: display.clone(),
                    what: "connecting",
                    after: Duration::ZERO,
                },
            })
        }
    }
}
