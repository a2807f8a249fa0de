//! The blocking pipe server.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::admission::{Gate, ServerCore};
use super::endpoint::{self, Binding};
use super::handshake;
use super::stream::Stream;
use super::{PipeConnection, PipeError, PipeOptions};
use crate::name::Name;

/// A named pipe server: the equivalent of a `CreateNamedPipe` handle family.
///
/// Creating it claims the name; a background thread accepts connections and runs each
/// handshake on its own thread, so a slow or hostile client never holds up the others.
/// [`accept`](Self::accept) hands out the clients that got in, one
/// [`PipeConnection`] (one instance) each. Dropping the server stops accepting and removes
/// the name; connections already accepted live on.
///
/// # Examples
///
/// ```no_run
/// use procwire::pipe::PipeServer;
///
/// let server = PipeServer::create(r"\\.\pipe\HelloWorld")?;
/// loop {
///     let mut client = server.accept()?;
///     std::thread::spawn(move || {
///         while let Ok(request) = client.recv() {
///             if client.send(b"Default response from server").is_err() {
///                 break;
///             }
///         }
///     });
/// }
/// # Ok::<(), procwire::pipe::PipeError>(())
/// ```
#[derive(Debug)]
pub struct PipeServer {
    core: Arc<ServerCore>,
    incoming: Mutex<mpsc::Receiver<PipeConnection>>,
    stopping: Arc<AtomicBool>,
    wakers: Vec<OwnedFd>,
    acceptors: Vec<JoinHandle<()>>,
    tcp_addr: Option<SocketAddr>,
    _binding: Binding,
}

impl PipeServer {
    /// Creates a pipe with default [`PipeOptions`].
    ///
    /// # Errors
    ///
    /// As [`PipeOptions::create`].
    pub fn create<N>(name: N) -> Result<PipeServer, PipeError>
    where
        N: TryInto<Name>,
        N::Error: Into<PipeError>,
    {
        PipeOptions::new().create(name)
    }

    /// The pipe's name.
    pub fn name(&self) -> &str {
        &self.core.display
    }

    /// The TCP address the server listens on, when it does.
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.tcp_addr
    }

    /// Instances in use now: accepted connections still open, and those waiting to be
    /// accepted.
    pub fn instances(&self) -> usize {
        self.core.instances()
    }

    /// Waits for the next client that got in.
    ///
    /// # Errors
    ///
    /// [`PipeError::Disconnected`] when the server's listener has stopped.
    pub fn accept(&self) -> Result<PipeConnection, PipeError> {
        self.incoming
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .recv()
            .map_err(|_| self.stopped())
    }

    /// Waits at most `timeout` for the next client.
    ///
    /// # Errors
    ///
    /// [`PipeError::Timeout`], or as [`accept`](Self::accept).
    pub fn accept_timeout(&self, timeout: Duration) -> Result<PipeConnection, PipeError> {
        let incoming = self.incoming.lock().unwrap_or_else(|e| e.into_inner());
        match incoming.recv_timeout(timeout) {
            Ok(c) => Ok(c),
            Err(mpsc::RecvTimeoutError::Timeout) => Err(PipeError::Timeout {
                name: self.core.display.clone(),
                what: "waiting for a client",
                after: timeout,
            }),
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(self.stopped()),
        }
    }

    /// The next client, if one is waiting.
    ///
    /// # Errors
    ///
    /// As [`accept`](Self::accept).
    pub fn try_accept(&self) -> Result<Option<PipeConnection>, PipeError> {
        let incoming = self.incoming.lock().unwrap_or_else(|e| e.into_inner());
        match incoming.try_recv() {
            Ok(c) => Ok(Some(c)),
            Err(mpsc::TryRecvError::Empty) => Ok(None),
            Err(mpsc::TryRecvError::Disconnected) => Err(self.stopped()),
        }
    }

    fn stopped(&self) -> PipeError {
        PipeError::Disconnected {
            name: self.core.display.clone(),
            detail: "the server's listener has stopped".into(),
        }
    }
}

impl Drop for PipeServer {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::Release);
        for fd in &self.wakers {
            // Wakes a thread blocked in accept(2) on this socket (it fails with EINVAL).
            let _ = rustix::net::shutdown(fd, rustix::net::Shutdown::Both);
        }
        for thread in self.acceptors.drain(..) {
            let _ = thread.join();
        }
    }
}

impl PipeOptions {
    /// Creates the pipe server `name` (`CreateNamedPipe`).
    ///
    /// # Errors
    ///
    /// [`PipeError::InvalidName`] for a malformed or remote name;
    /// [`PipeError::AlreadyExists`] when a live server owns the name;
    /// [`PipeError::WrongKind`] when something other than a socket sits at its path;
    /// [`PipeError::NotPermitted`] for a non-loopback TCP address without
    /// [`allow_plaintext_network`](Self::allow_plaintext_network); [`PipeError::Io`] when a
    /// socket cannot be created.
    pub fn create<N>(&self, name: N) -> Result<PipeServer, PipeError>
    where
        N: TryInto<Name>,
        N::Error: Into<PipeError>,
    {
        let (core, binding, tcp) = self.prepare(name)?;
        let core = Arc::new(core);
        let stopping = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel();
        let mut wakers = Vec::new();
        let mut acceptors = Vec::new();
        let waker = |fd: io::Result<OwnedFd>| {
            fd.map_err(|e| PipeError::io(&core.display, "cannot duplicate the listener", e))
        };

        let unix = binding
            .listener
            .try_clone()
            .map_err(|e| PipeError::io(&core.display, "cannot duplicate the listener", e))?;
        wakers.push(waker(binding.listener.try_clone().map(OwnedFd::from))?);
        let (c, t, s) = (Arc::clone(&core), tx.clone(), Arc::clone(&stopping));
        acceptors.push(spawn_acceptor(&core.display, move || {
            accept_loop(&c, &t, &s, || unix.accept().map(|(s, _)| Stream::unix(s)))
        })?);

        let tcp_addr = match tcp {
            None => None,
            Some(listener) => {
                let addr = listener.local_addr().ok();
                wakers.push(waker(listener.try_clone().map(OwnedFd::from))?);
                let (c, s) = (Arc::clone(&core), Arc::clone(&stopping));
                acceptors.push(spawn_acceptor(&core.display, move || {
                    accept_loop(&c, &tx, &s, || {
                        let (stream, _) = listener.accept()?;
                        stream.set_nodelay(true)?;
                        Ok(Stream::Tcp(stream))
                    })
                })?);
                addr
            }
        };
        tracing::info!(pipe = %core.display, ?tcp_addr, "pipe server listening");
        Ok(PipeServer {
            core,
            incoming: Mutex::new(rx),
            stopping,
            wakers,
            acceptors,
            tcp_addr,
            _binding: binding,
        })
    }

    /// Validates the options, claims the name and opens the listeners: everything about
    /// creating a server that does not depend on the I/O style.
    pub(crate) fn prepare<N>(
        &self,
        name: N,
    ) -> Result<(ServerCore, Binding, Option<TcpListener>), PipeError>
    where
        N: TryInto<Name>,
        N::Error: Into<PipeError>,
    {
        let name: Name = name.try_into().map_err(Into::into)?;
        name.expect_class(crate::name::NameClass::Pipe)?;
        let display = name.to_string();
        if let Some(addr) = self.tcp {
            if !addr.ip().is_loopback() && !self.plaintext_network && !self.uses_tls() {
                return Err(PipeError::NotPermitted {
                    name: display,
                    detail: format!(
                        "refusing to listen on non-loopback address {addr} without \
                         encryption; serve it with tls(..), or call allow_plaintext_network() to \
                         accept that anyone on the network can read and forge this pipe's traffic"
                    ),
                });
            }
        }
        let binding = endpoint::bind(&name, &display)?;
        let tcp =
            match self.tcp {
                None => None,
                Some(addr) => Some(TcpListener::bind(addr).map_err(|e| {
                    PipeError::io(&display, format!("cannot listen on TCP {addr}"), e)
                })?),
            };
        let core = ServerCore::new(display, name.object().to_owned(), self.clone());
        Ok((core, binding, tcp))
    }
}

impl PipeOptions {
    /// Whether TCP clients are served over TLS.
    pub(crate) fn uses_tls(&self) -> bool {
        #[cfg(feature = "tls")]
        return self.tls.is_some();
        #[cfg(not(feature = "tls"))]
        false
    }
}

fn spawn_acceptor(
    display: &str,
    f: impl FnOnce() + Send + 'static,
) -> Result<JoinHandle<()>, PipeError> {
    std::thread::Builder::new()
        .name("procwire-accept".into())
        .spawn(f)
        .map_err(|e| PipeError::io(display, "cannot start the accept thread", e))
}

fn accept_loop(
    core: &Arc<ServerCore>,
    tx: &mpsc::Sender<PipeConnection>,
    stopping: &AtomicBool,
    mut accept: impl FnMut() -> io::Result<Stream>,
) {
    loop {
        let result = accept();
        if stopping.load(Ordering::Acquire) {
            return;
        }
        match result {
            Ok(stream) => {
                let peer = stream.peer_credentials().ok().flatten();
                let ticket = match core.gate(peer.as_ref(), stream.peer_ip()) {
                    Gate::Handshake(ticket) => ticket,
                    Gate::Refuse(answer) => {
                        core.log_turned_away(peer.as_ref(), &answer.detail);
                        stream.refuse_now(&answer.encode(), core.plaintext());
                        continue;
                    }
                };
                let (shared, tx) = (Arc::clone(core), tx.clone());
                let spawned = std::thread::Builder::new()
                    .name("procwire-handshake".into())
                    .stack_size(128 * 1024)
                    .spawn(move || {
                        let conn = serve_handshake(&shared, stream);
                        drop(ticket);
                        if let Some(conn) = conn {
                            let _ = tx.send(conn);
                        }
                    });
                if let Err(e) = spawned {
                    tracing::warn!(pipe = %core.display, "dropping a client: cannot start a thread: {e}");
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => {}
            Err(e) => {
                // Out of descriptors or memory: back off instead of spinning.
                tracing::warn!(pipe = %core.display, "accept failed: {e}");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

/// Runs the server side of one handshake; returns the connection if the client got in.
fn serve_handshake(core: &Arc<ServerCore>, stream: Stream) -> Option<PipeConnection> {
    let pipe_name = &core.display;
    let peer = match stream.peer_credentials() {
        Ok(peer) => peer,
        Err(e) => {
            tracing::warn!(pipe = %pipe_name, "cannot read a client's credentials: {e}");
            return None;
        }
    };
    let deadline = Instant::now() + core.options.handshake_timeout;
    #[cfg(feature = "tls")]
    let stream = match (stream, &core.options.tls) {
        (Stream::Tcp(tcp), Some(config)) => {
            let secured = tcp
                .set_read_timeout(Some(core.options.handshake_timeout))
                .and_then(|()| tcp.set_write_timeout(Some(core.options.handshake_timeout)))
                .and_then(|()| super::tls::TlsStream::accept(tcp, std::sync::Arc::clone(config)));
            match secured {
                Ok(tls) => Stream::Tls(std::sync::Arc::new(tls)),
                Err(e) => {
                    tracing::info!(pipe = %pipe_name, "TLS handshake with a client failed: {e}");
                    return None;
                }
            }
        }
        (stream, _) => stream,
    };
    let request = handshake::read_blocking(|b| stream.read_by(b, deadline), handshake::REQUEST);
    let request = match request {
        Ok(request) => request,
        Err(e) => {
            tracing::info!(pipe = %pipe_name, ?peer, "client left during the handshake: {e}");
            return None;
        }
    };
    let asked_for_memory = matches!(&request, Ok(r) if r.shared_memory);
    let (response, admitted) = core.admit(request, peer.as_ref());
    if let Err(e) = stream.write_all(&response.encode()) {
        tracing::info!(pipe = %pipe_name, ?peer, "cannot answer a client: {e}");
        return None;
    }
    let Some(admitted) = admitted else {
        tracing::info!(pipe = %pipe_name, ?peer, status = ?response.status, "refused a client: {}", response.detail);
        stream.linger_and_close();
        return None;
    };
    let options = &core.options;
    let ready = stream.set_timeouts(None).and_then(|()| {
        crate::sys::set_socket_buffers(&stream, options.in_buffer, options.out_buffer)
    });
    if let Err(e) = ready {
        tracing::warn!(pipe = %pipe_name, "cannot set up a connection: {e}");
        return None;
    }
    let link = match asked_for_memory {
        false => None,
        true => match data_path(core, &stream) {
            Ok(link) => link,
            Err(e) => {
                tracing::info!(pipe = %pipe_name, ?peer, "cannot tell a client its data path: {e}");
                return None;
            }
        },
    };
    tracing::debug!(pipe = %pipe_name, ?peer, access = %admitted.client_access, shared_memory = link.is_some(), "client connected");
    Some(PipeConnection::with_link(
        stream,
        core.connection_info(admitted, peer),
        link,
    ))
}

/// Answers a client that asked for shared memory: the region and its doorbell when this
/// server offers it to a local client, otherwise (or when no region can be made) the record
/// that keeps the data on the socket.
fn data_path(core: &ServerCore, stream: &Stream) -> io::Result<Option<super::shm::Link>> {
    let options = &core.options;
    if let (Stream::Unix(socket), Some(capacity)) = (stream, options.shared_memory) {
        let limit = super::shm::limit_for(options.mode, options.max_message);
        match super::shm::offer(socket.as_fd(), capacity, limit) {
            Ok(parts) => return Ok(Some(parts.into_link())),
            Err(e) => tracing::warn!(pipe = %core.display, "serving a client over the socket: {e}"),
        }
    }
    stream
        .write_all(&crate::wire::DataPath::Socket.encode())
        .map(|()| None)
}
