//! The client: connections, proxies, sponsors, and the blocking flavour.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use procwire::pipe::ClientOptions;
use procwire::wire::PipeMode;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::error::{RemoteErrorKind, RemotingError};
use crate::transport::{PipeTransport, Split, TcpTransport, Transport};
use crate::url::{RemoteUrl, Scheme};
use crate::wire::{self, Format, Op, Request, Response};

/// The deadline of calls unless a proxy says otherwise: 30 s.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(30);

/// The most bytes of queued frames gathered into one write.
const BATCH_BYTES: usize = 256 * 1024;

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Response>>>>;

/// One client connection to a server: many calls may be in flight at once, each with
/// its own request id. Cheap to clone; the connection closes when the last clone (and
/// every proxy on it) is dropped.
#[derive(Debug, Clone)]
pub struct Connection {
    inner: Arc<ConnInner>,
}

#[derive(Debug)]
struct ConnInner {
    base: String,
    tx: mpsc::UnboundedSender<Vec<u8>>,
    pending: Pending,
    next: AtomicU64,
    max: usize,
    driver: JoinHandle<()>,
}

impl Drop for ConnInner {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

impl Connection {
    /// Connects to `tcp://host:port` or `pipe://Name` (a path after it is ignored).
    ///
    /// # Errors
    ///
    /// [`RemotingError::InvalidUrl`], [`RemotingError::Connect`] or
    /// [`RemotingError::Pipe`].
    pub async fn connect(url: &str) -> Result<Connection, RemotingError> {
        let parsed = RemoteUrl::parse(url)?;
        let max = wire::DEFAULT_MAX_MESSAGE;
        match parsed.scheme {
            Scheme::Tcp => {
                let t = TcpTransport::connect(&parsed.authority, max).await?;
                Ok(Connection::over(t, parsed.base(), max))
            }
            Scheme::Pipe => {
                let pipe = ClientOptions::new()
                    .read_mode(PipeMode::Message)
                    .max_message_size(max as u32)
                    .shared_memory(true)
                    .open_async(parsed.authority.as_str())
                    .await?;
                Ok(Connection::over(PipeTransport::new(pipe), parsed.base(), max))
            }
            Scheme::Http => Err(RemotingError::InvalidUrl {
                url: url.to_owned(),
                reason: "the http channel is for JSON clients such as curl; proxies use tcp:// or pipe://".into(),
            }),
        }
    }

    /// Connects to `tcp://host:port` over TLS, checking the server's certificate
    /// against `config` (for the host name in the URL).
    ///
    /// # Errors
    ///
    /// [`RemotingError::InvalidUrl`] for another scheme or a bad host name,
    /// [`RemotingError::Connect`] when the server cannot be reached or the TLS handshake
    /// fails.
    #[cfg(feature = "tls")]
    pub async fn connect_tls(
        url: &str,
        config: Arc<tokio_rustls::rustls::ClientConfig>,
    ) -> Result<Connection, RemotingError> {
        use tokio::io::AsyncWriteExt;
        let parsed = RemoteUrl::parse(url)?;
        let bad = |reason: &str| RemotingError::InvalidUrl {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        if parsed.scheme != Scheme::Tcp {
            return Err(bad("TLS proxies take tcp://host:port/… URLs"));
        }
        let host = parsed
            .authority
            .rsplit_once(':')
            .map_or(parsed.authority.as_str(), |(h, _)| h)
            .trim_start_matches('[')
            .trim_end_matches(']');
        let name = tokio_rustls::rustls::pki_types::ServerName::try_from(host.to_owned())
            .map_err(|_| bad("the host is not a valid TLS server name"))?;
        let connect = |source| RemotingError::Connect {
            target: url.to_owned(),
            source,
        };
        let tcp = tokio::net::TcpStream::connect(&parsed.authority)
            .await
            .map_err(connect)?;
        let peer = crate::transport::tcp_peer(&tcp, "tls");
        let mut tls = tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .map_err(connect)?;
        tls.write_all(&wire::TCP_PREAMBLE).await.map_err(connect)?;
        let max = wire::DEFAULT_MAX_MESSAGE;
        let t = crate::transport::StreamTransport::with_peer(tls, max, peer);
        Ok(Connection::over(t, parsed.base(), max))
    }

    /// A connection over any transport (spawns its driver on the current runtime).
    pub fn over<T: Transport>(transport: T, base: String, max: usize) -> Connection {
        let (tx, rx) = mpsc::unbounded_channel();
        let pending: Pending = Arc::default();
        let driver = tokio::spawn(drive(transport, rx, Arc::clone(&pending), max));
        Connection {
            inner: Arc::new(ConnInner {
                base,
                tx,
                pending,
                next: AtomicU64::new(1),
                max,
                driver,
            }),
        }
    }

    /// A proxy for the well-known service `App/Service` on this connection.
    pub fn proxy(&self, path: &str) -> Proxy {
        Proxy {
            conn: self.clone(),
            path: path.to_owned(),
            object: None,
            format: Format::Binary,
            deadline: DEFAULT_DEADLINE,
        }
    }

    /// Sends one request and waits for its response, at most `deadline` (plus a little
    /// for the network).
    ///
    /// # Errors
    ///
    /// [`RemotingError::Remote`] from the server, [`RemotingError::Timeout`],
    /// [`RemotingError::Disconnected`], [`RemotingError::MessageTooLarge`].
    pub async fn request(
        &self,
        op: Op,
        format: Format,
        body: Vec<u8>,
        deadline: Duration,
    ) -> Result<Vec<u8>, RemotingError> {
        let id = self.inner.next.fetch_add(1, Ordering::Relaxed);
        let what = match &op {
            Op::Call { method, .. } => method.clone(),
            Op::Activate { .. } => "activate".to_owned(),
            Op::Renew { .. } => "renew".to_owned(),
            Op::Release { .. } => "release".to_owned(),
        };
        let request = Request {
            id,
            deadline_ms: Some(deadline.as_millis() as u64),
            format,
            op,
            body,
        };
        let frame = wire::encode_request(&request, self.inner.max)?;
        let (tx, rx) = oneshot::channel();
        lock(&self.inner.pending).insert(id, tx);
        let gone = || RemotingError::Disconnected {
            reason: format!("the connection to {} closed", self.inner.base),
        };
        if self.inner.tx.send(frame).is_err() {
            lock(&self.inner.pending).remove(&id);
            return Err(gone());
        }
        let grace = deadline + Duration::from_millis(500);
        match tokio::time::timeout(grace, rx).await {
            Ok(Ok(response)) => Ok(response.outcome?),
            Ok(Err(_)) => Err(gone()),
            Err(_) => {
                lock(&self.inner.pending).remove(&id);
                Err(RemotingError::Timeout {
                    method: what,
                    after: deadline,
                })
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Takes `first` and whatever else is queued, up to a batch.
fn gather(first: Vec<u8>, rx: &mut mpsc::UnboundedReceiver<Vec<u8>>) -> Vec<Vec<u8>> {
    let mut bytes = first.len();
    let mut frames = vec![first];
    while bytes < BATCH_BYTES {
        match rx.try_recv() {
            Ok(f) => {
                bytes += f.len();
                frames.push(f);
            }
            Err(_) => break,
        }
    }
    frames
}

/// Hands a response to its caller; false when the bytes are not a valid response.
fn deliver(frame: &[u8], pending: &Pending, max: usize) -> bool {
    match wire::decode_response(frame, max) {
        Ok(response) => {
            if let Some(tx) = lock(pending).remove(&response.id) {
                let _ = tx.send(response);
            }
            true
        }
        Err(e) => {
            tracing::warn!("bad response from the server, closing: {e}");
            false
        }
    }
}

async fn drive<T: Transport>(
    transport: T,
    mut rx: mpsc::UnboundedReceiver<Vec<u8>>,
    pending: Pending,
    max: usize,
) {
    let mut transport = match transport.split() {
        Split::Whole(t) => t,
        Split::Halves(mut r, mut w) => {
            let writer_pending = Arc::clone(&pending);
            let writer = tokio::spawn(async move {
                while let Some(first) = rx.recv().await {
                    let frames = gather(first, &mut rx);
                    if let Err(e) = w.send_many(&frames).await {
                        tracing::debug!("remoting connection lost: {e}");
                        break;
                    }
                }
                lock(&writer_pending).clear();
            });
            loop {
                match r.recv().await {
                    Ok(Some(frame)) => {
                        if !deliver(&frame, &pending, max) {
                            break;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::debug!("remoting connection lost: {e}");
                        break;
                    }
                }
            }
            writer.abort();
            lock(&pending).clear();
            return;
        }
    };
    enum Event {
        In(Result<Option<Vec<u8>>, RemotingError>),
        Out(Option<Vec<u8>>),
    }
    loop {
        let event = tokio::select! {
            frame = transport.recv() => Event::In(frame),
            out = rx.recv() => Event::Out(out),
        };
        match event {
            Event::Out(Some(frame)) => {
                let frames = gather(frame, &mut rx);
                if let Err(e) = transport.send_many(&frames).await {
                    tracing::debug!("remoting connection lost: {e}");
                    break;
                }
            }
            Event::Out(None) => break,
            Event::In(Ok(Some(frame))) => {
                if !deliver(&frame, &pending, max) {
                    break;
                }
            }
            Event::In(Ok(None)) => break,
            Event::In(Err(e)) => {
                tracing::debug!("remoting connection lost: {e}");
                break;
            }
        }
    }
    // Dropping the senders fails every call in flight with Disconnected.
    lock(&pending).clear();
}

/// A proxy: calls on one remote object (a well-known service, or a client-activated
/// instance). The `#[remote]` macro wraps it in a typed client.
#[derive(Debug, Clone)]
pub struct Proxy {
    conn: Connection,
    path: String,
    object: Option<u64>,
    format: Format,
    deadline: Duration,
}

impl Proxy {
    /// Connects to a well-known service: `tcp://host:port/App/Service` or
    /// `pipe://Name/App/Service`.
    ///
    /// # Errors
    ///
    /// As [`Connection::connect`].
    pub async fn connect(url: &str) -> Result<Proxy, RemotingError> {
        let parsed = RemoteUrl::parse(url)?;
        let conn = Connection::connect(url).await?;
        Ok(conn.proxy(&parsed.path))
    }

    /// As [`connect`](Self::connect), over TLS: see [`Connection::connect_tls`].
    ///
    /// # Errors
    ///
    /// As [`Connection::connect_tls`].
    #[cfg(feature = "tls")]
    pub async fn connect_tls(
        url: &str,
        config: Arc<tokio_rustls::rustls::ClientConfig>,
    ) -> Result<Proxy, RemotingError> {
        let parsed = RemoteUrl::parse(url)?;
        let conn = Connection::connect_tls(url, config).await?;
        Ok(conn.proxy(&parsed.path))
    }

    /// Activates the client-activated type at `url` (`…/App/TypeName`) with constructor
    /// arguments `args`, and returns a proxy bound to the new instance.
    ///
    /// # Errors
    ///
    /// As [`Connection::connect`], and the server's refusal.
    pub async fn activate<A: Serialize>(url: &str, args: &A) -> Result<Proxy, RemotingError> {
        let parsed = RemoteUrl::parse(url)?;
        let conn = Connection::connect(url).await?;
        conn.proxy(&parsed.path).activate_here(args).await
    }

    /// Activates a new instance of this proxy's type on the same connection.
    ///
    /// # Errors
    ///
    /// The server's refusal or a connection failure.
    pub async fn activate_here<A: Serialize>(&self, args: &A) -> Result<Proxy, RemotingError> {
        let body = wire::encode_value(self.format, args)?;
        let op = Op::Activate {
            service: self.path.clone(),
        };
        let id = self
            .conn
            .request(op, self.format, body, self.deadline)
            .await?;
        let id: u64 = postcard::from_bytes(&id).map_err(|e| RemotingError::Protocol {
            reason: format!("bad activation answer: {e}"),
        })?;
        let mut proxy = self.clone();
        proxy.object = Some(id);
        Ok(proxy)
    }

    /// The same proxy with another formatter (binary by default).
    pub fn with_format(mut self, format: Format) -> Self {
        self.format = format;
        self
    }

    /// The same proxy with another per-call deadline (30 s by default).
    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// The formatter.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The client-activated instance this proxy is bound to.
    pub fn object(&self) -> Option<u64> {
        self.object
    }

    /// `App/Service`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Calls `method` with already-encoded arguments; returns the encoded result.
    ///
    /// # Errors
    ///
    /// As [`Connection::request`].
    pub async fn call_raw(&self, method: &str, args: Vec<u8>) -> Result<Vec<u8>, RemotingError> {
        let op = Op::Call {
            service: self.path.clone(),
            object: self.object,
            method: method.to_owned(),
        };
        self.conn
            .request(op, self.format, args, self.deadline)
            .await
    }

    /// Calls `method` with `args` (a struct or tuple of the arguments) and decodes the
    /// result as `R`.
    ///
    /// # Errors
    ///
    /// As [`Connection::request`], and [`RemotingError::Codec`] when the result does not
    /// decode.
    pub async fn call<A: Serialize + ?Sized, R: DeserializeOwned>(
        &self,
        method: &str,
        args: &A,
    ) -> Result<R, RemotingError> {
        let body = wire::encode_value(self.format, args)?;
        let result = self.call_raw(method, body).await?;
        wire::decode_value(self.format, &result).map_err(|e| RemotingError::Codec {
            reason: format!("the result of `{method}` does not decode: {}", e.message),
        })
    }

    /// Extends the lease of this client-activated instance to at least `extend` from now;
    /// returns the time left.
    ///
    /// # Errors
    ///
    /// [`RemoteErrorKind::ObjectDisconnected`] when it is already gone.
    pub async fn renew(&self, extend: Duration) -> Result<Duration, RemotingError> {
        let Some(object) = self.object else {
            return Ok(Duration::MAX);
        };
        let op = Op::Renew {
            object,
            extend_ms: extend.as_millis() as u64,
        };
        let left = self
            .conn
            .request(op, self.format, Vec::new(), self.deadline)
            .await?;
        let ms: u64 = postcard::from_bytes(&left).map_err(|e| RemotingError::Protocol {
            reason: format!("bad renew answer: {e}"),
        })?;
        Ok(Duration::from_millis(ms))
    }

    /// Drops this client-activated instance on the server now.
    ///
    /// # Errors
    ///
    /// A connection failure.
    pub async fn release(&self) -> Result<(), RemotingError> {
        if let Some(object) = self.object {
            let op = Op::Release { object };
            self.conn
                .request(op, self.format, Vec::new(), self.deadline)
                .await?;
        }
        Ok(())
    }

    /// Keeps this instance alive: renews its lease to `extend` every `every` until the
    /// returned [`Sponsor`] is dropped (the sponsor lives in the client, as the client
    /// owns the instance).
    pub fn sponsor(&self, every: Duration, extend: Duration) -> Sponsor {
        let proxy = self.clone();
        Sponsor {
            task: tokio::spawn(async move {
                loop {
                    match proxy.renew(extend).await {
                        Err(e) if e.remote_kind() == Some(RemoteErrorKind::ObjectDisconnected) => {
                            return
                        }
                        _ => tokio::time::sleep(every).await,
                    }
                }
            }),
        }
    }
}

/// Renews a lease periodically; stops when dropped.
#[derive(Debug)]
pub struct Sponsor {
    task: JoinHandle<()>,
}

impl Drop for Sponsor {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A proxy for blocking code: owns a small tokio runtime and waits on it.
#[derive(Debug, Clone)]
pub struct BlockingProxy {
    proxy: Proxy,
    runtime: Arc<tokio::runtime::Runtime>,
}

fn runtime() -> Result<tokio::runtime::Runtime, RemotingError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|source| RemotingError::Io {
            what: "cannot start the client runtime".into(),
            source,
        })
}

impl BlockingProxy {
    /// As [`Proxy::connect`], blocking. Must not be called inside a tokio runtime.
    ///
    /// # Errors
    ///
    /// As [`Proxy::connect`].
    pub fn connect(url: &str) -> Result<BlockingProxy, RemotingError> {
        let runtime = Arc::new(runtime()?);
        let proxy = runtime.block_on(Proxy::connect(url))?;
        Ok(BlockingProxy { proxy, runtime })
    }

    /// As [`Proxy::activate`], blocking.
    ///
    /// # Errors
    ///
    /// As [`Proxy::activate`].
    pub fn activate<A: Serialize>(url: &str, args: &A) -> Result<BlockingProxy, RemotingError> {
        let runtime = Arc::new(runtime()?);
        let proxy = runtime.block_on(Proxy::activate(url, args))?;
        Ok(BlockingProxy { proxy, runtime })
    }

    /// The async proxy inside.
    pub fn proxy(&self) -> &Proxy {
        &self.proxy
    }

    /// Runs `future` to completion on this proxy's runtime.
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// As [`Proxy::renew`], blocking.
    ///
    /// # Errors
    ///
    /// As [`Proxy::renew`].
    pub fn renew(&self, extend: Duration) -> Result<Duration, RemotingError> {
        self.block_on(self.proxy.renew(extend))
    }

    /// As [`Proxy::sponsor`].
    pub fn sponsor(&self, every: Duration, extend: Duration) -> Sponsor {
        let _guard = self.runtime.enter();
        self.proxy.sponsor(every, extend)
    }
}
