//! The server: a [`Registry`] served on any number of channels at once.

mod http;
mod registry;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use procwire::pipe::PipeOptions;
use procwire::security::AccessList;
use procwire::wire::PipeMode;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;

pub use registry::{Lease, Mode, Registry, RegistryBuilder, ServiceListing};

use crate::error::{RemoteError, RemoteErrorKind, RemotingError};
use crate::service::CallContext;
use crate::transport::{
    tcp_peer, Peer, PipeTransport, ReadLimits, Split, StreamTransport, Transport,
};
use crate::wire::{self, Op, Request, Response};

/// An answer to write, with the slot its call holds until then.
type Answer = (Response, Option<OwnedSemaphorePermit>);

/// The most bytes of ready answers gathered into one write.
const BATCH_BYTES: usize = 256 * 1024;

/// Most calls in flight on one connection (running, or answered and not yet written).
/// Beyond it a tcp or pipe connection is not read until an answer is written; a
/// transport that does not split answers [`RemoteErrorKind::Busy`].
pub const MAX_IN_FLIGHT: usize = 1024;

/// A remoting server: one registry, served on tcp, pipe and http channels at once (the
/// equivalent of `ChannelServices.RegisterChannel` plus `RegisterWellKnownServiceType`).
///
/// Clone it freely: clones share the registry. Listeners stop when their
/// [`Listener`] handle is dropped.
#[derive(Debug, Clone)]
pub struct RemotingServer {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    registry: Registry,
    limits: Limits,
    /// The bytes of partial frames over [`crate::transport::UNBUDGETED_FRAME`] that all
    /// connections together may hold.
    budget: Arc<Semaphore>,
    /// Woken when an accept loop runs out of file descriptors: connections idle for
    /// longer than [`SHED_IDLE`] then close, to make room.
    pressure: Notify,
}

/// Under descriptor pressure, connections idle (no call in flight, no partial frame or
/// request) for longer than this are closed.
pub const SHED_IDLE: Duration = Duration::from_millis(500);

/// The listen backlog of the tcp and http channels.
const LISTEN_BACKLOG: u32 = 1024;

/// The longest pause of an accept loop after a failed accept (it doubles from 10 ms).
const MAX_ACCEPT_BACKOFF: Duration = Duration::from_millis(250);

/// The limits of a server against slow, idle and hostile clients.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use procwire_remoting::server::Limits;
/// let limits = Limits::new()
///     .max_message(1 << 20)
///     .frame_timeout(Duration::from_secs(5))
///     .buffered_bytes(32 << 20);
/// assert_eq!(limits.get_max_message(), 1 << 20);
/// ```
#[derive(Debug, Clone)]
pub struct Limits {
    max_message: usize,
    default_deadline: Option<Duration>,
    preamble_timeout: Duration,
    frame_timeout: Duration,
    buffered_bytes: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits::new()
    }
}

impl Limits {
    /// 4 MiB messages, no default call deadline, 5 s for the preamble (and TLS
    /// handshake), 10 s for a frame (or an HTTP request head or body) to arrive whole
    /// from its first byte, and 64 MiB of partial frames over 64 KiB per server.
    pub fn new() -> Limits {
        Limits {
            max_message: wire::DEFAULT_MAX_MESSAGE,
            default_deadline: None,
            preamble_timeout: Duration::from_secs(5),
            frame_timeout: Duration::from_secs(10),
            buffered_bytes: 64 << 20,
        }
    }

    /// The largest message (frame or HTTP body) accepted.
    pub fn max_message(mut self, bytes: usize) -> Self {
        self.max_message = bytes;
        self
    }

    /// The deadline of calls that bring none.
    pub fn default_deadline(mut self, deadline: Option<Duration>) -> Self {
        self.default_deadline = deadline;
        self
    }

    /// How long a new tcp connection may take to send its preamble (and finish its TLS
    /// handshake).
    pub fn preamble_timeout(mut self, timeout: Duration) -> Self {
        self.preamble_timeout = timeout;
        self
    }

    /// How long a frame (or an HTTP request's head, or its body) may take to arrive whole
    /// once its first byte came; a connection that is slower is closed.
    pub fn frame_timeout(mut self, timeout: Duration) -> Self {
        self.frame_timeout = timeout;
        self
    }

    /// How many bytes of partial frames larger than 64 KiB all connections of the
    /// server may hold together; a connection whose frame does not fit waits (without
    /// reading) until there is room or its frame timeout ends. Each connection holds at
    /// most one partial frame, of at most the maximum message size.
    pub fn buffered_bytes(mut self, bytes: usize) -> Self {
        self.buffered_bytes = bytes;
        self
    }

    /// The largest message accepted.
    pub fn get_max_message(&self) -> usize {
        self.max_message
    }
}

/// A running listener; dropping it stops accepting (connections already open go on).
#[derive(Debug)]
pub struct Listener {
    task: JoinHandle<()>,
    sweeper: Option<JoinHandle<()>>,
    local: String,
}

impl Listener {
    /// Where it listens: `tcp://127.0.0.1:6100`, `pipe://Name` or `http://…`.
    pub fn local(&self) -> &str {
        &self.local
    }

    /// Waits until the listener ends (it runs until dropped or aborted).
    pub async fn join(mut self) {
        let _ = (&mut self.task).await;
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
        if let Some(s) = &self.sweeper {
            s.abort();
        }
    }
}

/// Options of the TCP channel (and of the HTTP channel, which also listens on TCP).
#[derive(Debug, Clone)]
pub struct TcpChannel {
    addr: SocketAddr,
    plaintext_network: bool,
    #[cfg(feature = "tls")]
    tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
}

impl TcpChannel {
    /// Listens on `addr`; it must be a loopback address unless
    /// [`allow_plaintext_network`](Self::allow_plaintext_network) is called.
    pub fn new(addr: SocketAddr) -> TcpChannel {
        TcpChannel {
            addr,
            plaintext_network: false,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    /// Listens on `127.0.0.1:port`.
    pub fn loopback(port: u16) -> TcpChannel {
        TcpChannel::new(SocketAddr::from(([127, 0, 0, 1], port)))
    }

    /// Allows a non-loopback address without encryption: anyone on the network can then
    /// read and forge the calls.
    pub fn allow_plaintext_network(mut self) -> Self {
        self.plaintext_network = true;
        self
    }

    /// Speaks TLS with `config` (clients connect with
    /// [`Proxy::connect_tls`](crate::Proxy::connect_tls), or `https://` for HTTP). A TLS
    /// listener may use any address.
    #[cfg(feature = "tls")]
    pub fn tls(mut self, config: Arc<tokio_rustls::rustls::ServerConfig>) -> Self {
        self.tls = Some(config);
        self
    }

    fn is_tls(&self) -> bool {
        #[cfg(feature = "tls")]
        return self.tls.is_some();
        #[cfg(not(feature = "tls"))]
        false
    }

    #[cfg(feature = "tls")]
    fn acceptor(&self) -> Option<tokio_rustls::TlsAcceptor> {
        self.tls.clone().map(tokio_rustls::TlsAcceptor::from)
    }

    #[cfg(not(feature = "tls"))]
    fn acceptor(&self) -> Option<std::convert::Infallible> {
        None
    }

    /// Binds the address, with a listen backlog of [`LISTEN_BACKLOG`]: connections that
    /// arrive while the server is out of descriptors wait there instead of having their
    /// SYNs dropped (which costs a client a second or more of retransmission).
    pub(crate) fn bind_checked(&self) -> Result<TcpListener, RemotingError> {
        if !self.addr.ip().is_loopback() && !self.plaintext_network && !self.is_tls() {
            return Err(RemotingError::PlaintextNetwork {
                addr: self.addr.to_string(),
            });
        }
        let bind = |source| RemotingError::Bind {
            target: self.addr.to_string(),
            source,
        };
        let socket = if self.addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()
        } else {
            tokio::net::TcpSocket::new_v6()
        }
        .map_err(bind)?;
        socket.set_reuseaddr(true).map_err(bind)?;
        socket.bind(self.addr).map_err(bind)?;
        socket.listen(LISTEN_BACKLOG).map_err(bind)
    }
}

/// Options of the pipe channel: a message-mode procwire pipe.
#[derive(Debug, Clone)]
pub struct PipeChannel {
    name: String,
    access: AccessList,
    shared_memory: bool,
}

impl PipeChannel {
    /// Serves on the pipe `name` (any procwire pipe name), for the owner only.
    pub fn new(name: impl Into<String>) -> PipeChannel {
        PipeChannel {
            name: name.into(),
            access: AccessList::owner_only(),
            shared_memory: true,
        }
    }

    /// Who may connect.
    pub fn access_list(mut self, access: AccessList) -> Self {
        self.access = access;
        self
    }

    /// Whether calls from local clients travel through shared memory rather than the
    /// socket after the handshake (on by default; procwire's clients ask for it, others
    /// stay on the socket).
    pub fn shared_memory(mut self, offer: bool) -> Self {
        self.shared_memory = offer;
        self
    }
}

impl RemotingServer {
    /// A server for `registry`, with 4 MiB messages and no default deadline.
    pub fn new(registry: Registry) -> RemotingServer {
        RemotingServer::with_limits(registry, wire::DEFAULT_MAX_MESSAGE, None)
    }

    /// A server with a maximum message size and a deadline for calls that bring none.
    pub fn with_limits(
        registry: Registry,
        max_message: usize,
        default_deadline: Option<Duration>,
    ) -> RemotingServer {
        let limits = Limits::new()
            .max_message(max_message)
            .default_deadline(default_deadline);
        RemotingServer::with_options(registry, limits)
    }

    /// A server with all of `limits`.
    pub fn with_options(registry: Registry, limits: Limits) -> RemotingServer {
        // The budget holds at least one largest frame, and fits a semaphore.
        let budget = limits
            .buffered_bytes
            .max(limits.max_message)
            .min(Semaphore::MAX_PERMITS)
            .min(u32::MAX as usize);
        RemotingServer {
            inner: Arc::new(Inner {
                registry,
                budget: Arc::new(Semaphore::new(budget)),
                limits,
                pressure: Notify::new(),
            }),
        }
    }

    /// The limits.
    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// The registry.
    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    /// The largest message accepted.
    pub fn max_message(&self) -> usize {
        self.inner.limits.max_message
    }

    fn sweeper(&self) -> JoinHandle<()> {
        let inner = Arc::downgrade(&self.inner);
        let every = self.inner.registry.sweep_interval();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(inner) = inner.upgrade() else { return };
                inner.registry.sweep(Instant::now());
            }
        })
    }

    /// Listens on TCP. Must be called within a tokio runtime.
    ///
    /// # Errors
    ///
    /// [`RemotingError::PlaintextNetwork`] for a non-loopback address without the
    /// opt-out, [`RemotingError::Bind`] when the address is taken.
    pub fn listen_tcp(&self, channel: TcpChannel) -> Result<Listener, RemotingError> {
        let listener = channel.bind_checked()?;
        let local = listener
            .local_addr()
            .map_err(|source| RemotingError::Bind {
                target: channel.addr.to_string(),
                source,
            })?;
        let task = self.accept_loop(listener, &channel, "tcp");
        Ok(Listener {
            task,
            sweeper: Some(self.sweeper()),
            local: format!("tcp://{local}"),
        })
    }

    /// The accept loop of the tcp and http channels: each connection (after its TLS
    /// handshake, if any) is served in a task of its own. Out of file descriptors,
    /// it wakes idle connections to close, and backs off (up to [`MAX_ACCEPT_BACKOFF`]) until
    /// descriptors are free again.
    fn accept_loop(
        &self,
        listener: TcpListener,
        channel: &TcpChannel,
        name: &'static str,
    ) -> JoinHandle<()> {
        let server = self.clone();
        let tls = channel.acceptor();
        tokio::spawn(async move {
            let mut backoff = Duration::ZERO;
            loop {
                let stream = match listener.accept().await {
                    Ok((stream, _)) => {
                        backoff = Duration::ZERO;
                        stream
                    }
                    Err(e) => {
                        let out_of_fds = matches!(
                            e.raw_os_error(),
                            Some(code) if code == EMFILE || code == ENFILE
                        );
                        if out_of_fds {
                            server.inner.pressure.notify_waiters();
                        }
                        backoff =
                            (backoff * 2).clamp(Duration::from_millis(10), MAX_ACCEPT_BACKOFF);
                        tracing::warn!("{name} accept failed: {e}; retrying in {backoff:?}");
                        tokio::time::sleep(backoff).await;
                        continue;
                    }
                };
                let server = server.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    let peer = tcp_peer(&stream, name);
                    match tls {
                        None => server.serve_accepted(name, Box::new(stream), peer).await,
                        #[cfg(feature = "tls")]
                        Some(acceptor) => {
                            let peer = Peer {
                                channel: if name == "http" { "https" } else { "tls" },
                                ..peer
                            };
                            let hs = tokio::time::timeout(
                                server.inner.limits.preamble_timeout,
                                acceptor.accept(stream),
                            );
                            match hs.await {
                                Ok(Ok(s)) => server.serve_accepted(name, Box::new(s), peer).await,
                                Ok(Err(e)) => tracing::warn!("tls handshake failed: {e}"),
                                Err(_) => tracing::warn!("tls handshake timed out"),
                            }
                        }
                        #[cfg(not(feature = "tls"))]
                        Some(never) => match never {},
                    }
                });
            }
        })
    }

    /// Serves an accepted connection of the channel `name` ("tcp" or "http").
    async fn serve_accepted(&self, name: &str, stream: crate::transport::BoxedStream, peer: Peer) {
        // Boxed: the compiler cannot prove these futures `Send` for every lifetime when
        // they are nested unboxed in the spawned task.
        if name == "http" {
            let serve: crate::service::BoxFuture<'_, ()> = Box::pin(self.serve_http(stream, peer));
            serve.await;
        } else {
            let serve: crate::service::BoxFuture<'_, ()> =
                Box::pin(self.accept_stream(stream, peer));
            serve.await;
        }
    }

    /// Reads the preamble, then serves the connection.
    async fn accept_stream<S>(&self, mut stream: S, peer: Peer)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let mut preamble = [0u8; 5];
        let read = tokio::time::timeout(
            self.inner.limits.preamble_timeout,
            stream.read_exact(&mut preamble),
        );
        if !matches!(read.await, Ok(Ok(_))) || preamble != wire::TCP_PREAMBLE {
            tracing::warn!(
                "{}: dropping a client that sent no valid preamble",
                peer.channel
            );
            return;
        }
        let limits = ReadLimits {
            frame_timeout: Some(self.inner.limits.frame_timeout),
            budget: Some(Arc::clone(&self.inner.budget)),
        };
        let t = StreamTransport::with_limits(stream, self.inner.limits.max_message, peer, limits);
        self.serve_connection(t).await;
    }

    /// Listens on a message-mode pipe. Must be called within a tokio runtime.
    ///
    /// # Errors
    ///
    /// [`RemotingError::Pipe`] when the pipe cannot be created.
    pub fn listen_pipe(&self, channel: PipeChannel) -> Result<Listener, RemotingError> {
        let pipe = PipeOptions::new()
            .mode(PipeMode::Message)
            .max_message_size(self.inner.limits.max_message.min(u32::MAX as usize) as u32)
            .access_list(channel.access.clone())
            .shared_memory(channel.shared_memory)
            .create_async(channel.name.as_str())?;
        let server = self.clone();
        let task = tokio::spawn(async move {
            loop {
                match pipe.accept().await {
                    Ok(conn) => {
                        let server = server.clone();
                        tokio::spawn(async move {
                            server.serve_connection(PipeTransport::new(conn)).await;
                        });
                    }
                    Err(e) => {
                        tracing::warn!("pipe accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
        });
        Ok(Listener {
            task,
            sweeper: Some(self.sweeper()),
            local: format!("pipe://{}", channel.name),
        })
    }

    /// Serves one connection until it closes: every request runs in its own task, so a
    /// slow call does not hold up the others; answers go back as they finish. A transport
    /// that splits is read and written by two tasks.
    pub async fn serve_connection<T: Transport>(&self, transport: T) {
        let peer = transport.peer();
        // Each answer carries its call's slot until it is written: at most MAX_IN_FLIGHT
        // calls run or wait to be written, even for a client that never reads.
        let (tx, mut rx) = mpsc::unbounded_channel::<Answer>();
        let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
        let mut transport = match transport.split() {
            Split::Whole(t) => t,
            Split::Halves(mut r, mut w) => {
                let server = self.clone();
                let writer = tokio::spawn(async move {
                    while let Some(first) = rx.recv().await {
                        let (frames, _slots) = server.gather(first, &mut rx);
                        if let Err(e) = w.send_many(&frames).await {
                            tracing::debug!("client gone while answering: {e}");
                            return;
                        }
                    }
                });
                let mut last_frame = Instant::now();
                loop {
                    let received = tokio::select! {
                        received = r.recv() => received,
                        () = self.inner.pressure.notified() => {
                            let idle = slots.available_permits() == MAX_IN_FLIGHT
                                && r.is_between_frames()
                                && last_frame.elapsed() > SHED_IDLE;
                            if idle {
                                tracing::info!(channel = peer.channel, "closing an idle connection: out of file descriptors");
                                break;
                            }
                            continue;
                        }
                    };
                    last_frame = Instant::now();
                    match received {
                        Ok(Some(frame)) => {
                            // Reading waits for a free slot: back-pressure on the client.
                            let permit = Arc::clone(&slots).acquire_owned().await.ok();
                            if !self.on_frame(&frame, &tx, permit, &peer) {
                                break;
                            }
                        }
                        Ok(None) => break,
                        Err(e) => {
                            tracing::warn!(channel = peer.channel, "closing a connection: {e}");
                            break;
                        }
                    }
                }
                writer.abort();
                return;
            }
        };
        enum Event {
            In(Result<Option<Vec<u8>>, RemotingError>),
            Out(Answer),
        }
        loop {
            let event = tokio::select! {
                frame = transport.recv() => Event::In(frame),
                Some(out) = rx.recv() => Event::Out(out),
            };
            match event {
                Event::Out(answer) => {
                    let (frames, _slots) = self.gather(answer, &mut rx);
                    if let Err(e) = transport.send_many(&frames).await {
                        tracing::debug!("client gone while answering: {e}");
                        return;
                    }
                }
                Event::In(Ok(None)) => return,
                Event::In(Err(e)) => {
                    tracing::warn!(channel = peer.channel, "closing a connection: {e}");
                    return;
                }
                Event::In(Ok(Some(frame))) => {
                    // One task reads and writes here: waiting for a slot could wait for
                    // ever, so a full connection is answered Busy instead.
                    let permit = Arc::clone(&slots).try_acquire_owned().ok();
                    if !self.on_frame(&frame, &tx, permit, &peer) {
                        return;
                    }
                }
            }
        }
    }

    /// Encodes `first` and whatever other answers are ready, up to a batch; returns the
    /// frames and the slots to free once they are written.
    fn gather(
        &self,
        first: Answer,
        rx: &mut mpsc::UnboundedReceiver<Answer>,
    ) -> (Vec<Vec<u8>>, Vec<OwnedSemaphorePermit>) {
        let mut frames = Vec::new();
        let mut slots = Vec::new();
        let mut bytes = 0;
        let mut next = Some(first);
        while let Some((response, slot)) = next.take() {
            let f = self.encode_answer(response);
            bytes += f.len();
            frames.push(f);
            slots.extend(slot);
            if bytes < BATCH_BYTES {
                next = rx.try_recv().ok();
            }
        }
        (frames, slots)
    }

    /// Starts the request in `frame`; false when the frame is not a valid request and the
    /// connection must close.
    fn on_frame(
        &self,
        frame: &[u8],
        tx: &mpsc::UnboundedSender<Answer>,
        permit: Option<OwnedSemaphorePermit>,
        peer: &Peer,
    ) -> bool {
        let request = match wire::decode_request(frame, self.inner.limits.max_message) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(channel = peer.channel, "closing a connection: {e}");
                return false;
            }
        };
        let Some(permit) = permit else {
            let busy = Response {
                id: request.id,
                outcome: Err(RemoteError::new(
                    RemoteErrorKind::Busy,
                    format!("more than {MAX_IN_FLIGHT} calls in flight on one connection; wait for some answers"),
                )),
            };
            let _ = tx.send((busy, None));
            return true;
        };
        let server = self.clone();
        let tx = tx.clone();
        let peer = peer.clone();
        tokio::spawn(async move {
            let id = request.id;
            let outcome = server.handle(request, peer).await;
            let _ = tx.send((Response { id, outcome }, Some(permit)));
        });
        true
    }

    fn encode_answer(&self, response: Response) -> Vec<u8> {
        let max = self.inner.limits.max_message;
        match wire::encode_response(&response, max) {
            Ok(f) => f,
            Err(e) => {
                let err = Response {
                    id: response.id,
                    outcome: Err(RemoteError::new(
                        RemoteErrorKind::MessageTooLarge,
                        format!("the result is too large: {e}"),
                    )),
                };
                wire::encode_response(&err, max).expect("a short error always fits")
            }
        }
    }

    /// Runs one request to its outcome: activation, lease renewal, release or a call
    /// (with its deadline, and panics caught).
    pub async fn handle(&self, request: Request, peer: Peer) -> Result<Vec<u8>, RemoteError> {
        let registry = &self.inner.registry;
        let now = Instant::now();
        let internal =
            |e: postcard::Error| RemoteError::new(RemoteErrorKind::Internal, e.to_string());
        match request.op {
            Op::Activate { service } => {
                let id = registry.activate(&service, request.format, &request.body, now)?;
                postcard::to_allocvec(&id).map_err(internal)
            }
            Op::Renew { object, extend_ms } => {
                let left = registry.renew(object, Duration::from_millis(extend_ms), now)?;
                postcard::to_allocvec(&(left.as_millis() as u64)).map_err(internal)
            }
            Op::Release { object } => {
                postcard::to_allocvec(&registry.release(object)).map_err(internal)
            }
            Op::Call {
                service,
                object,
                method,
            } => {
                let target = registry.resolve(&service, object, now)?;
                let call = target.dispatch(&method, request.format, &request.body)?;
                let context = CallContext { peer, object };
                let call = CatchUnwind(Box::pin(context.scope(call)));
                let deadline = request
                    .deadline_ms
                    .map(Duration::from_millis)
                    .or(self.inner.limits.default_deadline);
                let joined = match deadline {
                    Some(d) => match tokio::time::timeout(d, call).await {
                        Ok(j) => j,
                        Err(_) => {
                            return Err(RemoteError::new(
                                RemoteErrorKind::DeadlineExceeded,
                                format!("`{method}` did not finish within its deadline of {d:?}"),
                            ));
                        }
                    },
                    None => call.await,
                };
                joined.unwrap_or_else(|()| {
                    Err(RemoteError::new(
                        RemoteErrorKind::Panicked,
                        format!("`{method}` panicked on the server"),
                    ))
                })
            }
        }
    }
}

const EMFILE: i32 = 24;
const ENFILE: i32 = 23;

/// Turns a panic while polling the call into `Err(())`, without a task of its own.
struct CatchUnwind<F>(std::pin::Pin<Box<F>>);

impl<F: std::future::Future> std::future::Future for CatchUnwind<F> {
    type Output = Result<F::Output, ()>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let fut = self.0.as_mut();
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| fut.poll(cx))) {
            Ok(std::task::Poll::Ready(v)) => std::task::Poll::Ready(Ok(v)),
            Ok(std::task::Poll::Pending) => std::task::Poll::Pending,
            Err(_) => std::task::Poll::Ready(Err(())),
        }
    }
}
