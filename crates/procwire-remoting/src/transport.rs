//! The [`Transport`] trait and the channels' transports: TCP, pipe and in-memory.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use procwire::pipe::tokio::PipeConnection;
use procwire::security::PeerCredentials;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

use crate::error::RemotingError;
use crate::service::BoxFuture;
use crate::wire;

/// Who is at the other end of a connection, as far as the channel knows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Peer {
    /// The channel: `"tcp"`, `"tls"`, `"pipe"`, `"http"`, `"https"` or `"memory"`.
    pub channel: &'static str,
    /// The kernel-verified credentials of the peer process (local pipes only).
    pub credentials: Option<PeerCredentials>,
    /// The peer's network address (tcp and http).
    pub addr: Option<SocketAddr>,
}

/// A connection that moves whole frames both ways. The channels implement it; tests may
/// add their own.
pub trait Transport: Send + 'static {
    /// Sends one frame.
    fn send(&mut self, frame: &[u8]) -> impl Future<Output = Result<(), RemotingError>> + Send;
    /// Sends several frames, in order; transports that can, write them at once.
    fn send_many(
        &mut self,
        frames: &[Vec<u8>],
    ) -> impl Future<Output = Result<(), RemotingError>> + Send {
        async move {
            for frame in frames {
                self.send(frame).await?;
            }
            Ok(())
        }
    }
    /// Receives the next frame; `Ok(None)` when the peer closed cleanly. Must be
    /// cancel-safe: dropping the future loses nothing.
    fn recv(&mut self) -> impl Future<Output = Result<Option<Vec<u8>>, RemotingError>> + Send;
    /// Who the peer is.
    fn peer(&self) -> Peer;
    /// Splits the transport into a receiving and a sending half, so that one task can
    /// read while another writes (no deadlock when both sides send large messages at
    /// once). Transports that cannot split return themselves whole.
    fn split(self) -> Split<Self>
    where
        Self: Sized,
    {
        Split::Whole(self)
    }
}

/// The receiving half of a split transport.
pub trait FrameRecv: Send + 'static {
    /// As [`Transport::recv`]; cancel-safe.
    fn recv(&mut self) -> BoxFuture<'_, Result<Option<Vec<u8>>, RemotingError>>;
    /// Whether no part of a frame is waiting to be completed, so that closing now loses
    /// nothing the peer sent. Halves that cannot tell answer `false`.
    fn is_between_frames(&self) -> bool {
        false
    }
}

/// The sending half of a split transport.
pub trait FrameSend: Send + 'static {
    /// As [`Transport::send_many`].
    fn send_many<'a>(
        &'a mut self,
        frames: &'a [Vec<u8>],
    ) -> BoxFuture<'a, Result<(), RemotingError>>;
}

/// A transport, whole or in halves: what [`Transport::split`] returns.
pub enum Split<T> {
    /// It cannot split: one task reads and writes.
    Whole(T),
    /// Its halves.
    Halves(Box<dyn FrameRecv>, Box<dyn FrameSend>),
}

impl<T> std::fmt::Debug for Split<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Split::Whole(_) => "Split::Whole",
            Split::Halves(..) => "Split::Halves",
        })
    }
}

/// A byte stream carrying length-prefixed frames: TCP, or TLS over TCP.
#[derive(Debug)]
pub struct StreamTransport<S> {
    stream: S,
    reader: FrameBuffer,
    max: usize,
    peer: Peer,
}

/// Frames of at most this many bytes are read without taking from a server's shared
/// budget of buffered bytes.
pub const UNBUDGETED_FRAME: usize = 64 * 1024;

/// What limits the reading of frames on a server's connection.
#[derive(Debug, Clone, Default)]
pub(crate) struct ReadLimits {
    /// A frame must arrive whole within this time of its first byte.
    pub(crate) frame_timeout: Option<Duration>,
    /// Bytes of partial frames over [`UNBUDGETED_FRAME`] are taken from here first.
    pub(crate) budget: Option<Arc<Semaphore>>,
}

/// Bytes read towards the next frames, and the limits on them. Cancel-safe: everything
/// read so far stays here.
#[derive(Debug)]
struct FrameBuffer {
    buf: Vec<u8>,
    limits: ReadLimits,
    /// When the first byte of the frame being read arrived.
    started: Option<Instant>,
    /// The budget held for the frame being read.
    held: Option<OwnedSemaphorePermit>,
}

impl FrameBuffer {
    fn new(limits: ReadLimits) -> FrameBuffer {
        FrameBuffer {
            buf: Vec::new(),
            limits,
            started: None,
            held: None,
        }
    }

    fn timed_out(&self, what: &str, after: Duration) -> RemotingError {
        RemotingError::Io {
            what: format!(
                "{what}: a frame did not arrive whole within {after:?} of its first byte ({} bytes came); closing the connection",
                self.buf.len()
            ),
            source: std::io::ErrorKind::TimedOut.into(),
        }
    }

    /// Reads the next frame from `r`.
    async fn read<R: AsyncRead + Unpin>(
        &mut self,
        r: &mut R,
        max: usize,
    ) -> Result<Option<Vec<u8>>, RemotingError> {
        loop {
            if let Some(frame) = wire::take_length_prefixed(&mut self.buf, max)? {
                self.held = None;
                self.started = (!self.buf.is_empty()).then(Instant::now);
                if self.buf.capacity() > UNBUDGETED_FRAME {
                    // An idle connection keeps no large buffer.
                    self.buf.shrink_to(UNBUDGETED_FRAME);
                }
                return Ok(Some(frame));
            }
            let deadline = match (self.started, self.limits.frame_timeout) {
                (Some(t), Some(d)) => Some((t + d, d)),
                _ => None,
            };
            if self.buf.len() >= 4 && self.held.is_none() {
                let len = u32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]])
                    as usize;
                if len > UNBUDGETED_FRAME {
                    if let Some(budget) = &self.limits.budget {
                        // Wait for room in the server's budget before reading on: the
                        // peer's bytes stay in the kernel meanwhile.
                        let n = u32::try_from(len).unwrap_or(u32::MAX);
                        let acquire = Arc::clone(budget).acquire_many_owned(n);
                        let permit = match deadline {
                            Some((at, d)) => tokio::time::timeout_at(at.into(), acquire)
                                .await
                                .map_err(|_| self.timed_out("waiting for buffer room", d))?,
                            None => acquire.await,
                        };
                        self.held = permit.ok();
                    }
                }
                self.buf
                    .reserve_exact((4 + len).saturating_sub(self.buf.len()));
            } else {
                self.buf
                    .reserve(if self.buf.is_empty() { 4096 } else { 64 * 1024 });
            }
            let read = r.read_buf(&mut self.buf);
            let n = match deadline {
                Some((at, d)) => tokio::time::timeout_at(at.into(), read)
                    .await
                    .map_err(|_| self.timed_out("receive failed", d))?,
                None => read.await,
            }
            .map_err(|source| RemotingError::Io {
                what: "receive failed".into(),
                source,
            })?;
            if n == 0 {
                if self.buf.is_empty() {
                    return Ok(None);
                }
                return Err(RemotingError::Protocol {
                    reason: format!(
                        "connection closed inside a frame ({} bytes)",
                        self.buf.len()
                    ),
                });
            }
            if self.started.is_none() {
                self.started = Some(Instant::now());
            }
        }
    }
}

/// A byte stream of any kind (TCP, or TLS over TCP), as the accept loop hands it on.
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send + 'static {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Io for T {}

/// A boxed [`Io`].
pub(crate) type BoxedStream = Box<dyn Io>;

/// The TCP channel's transport.
pub type TcpTransport = StreamTransport<TcpStream>;

impl<S> StreamTransport<S> {
    /// Wraps a connected stream (after the preamble) whose peer is `peer`.
    pub fn with_peer(stream: S, max: usize, peer: Peer) -> StreamTransport<S> {
        StreamTransport::with_limits(stream, max, peer, ReadLimits::default())
    }

    pub(crate) fn with_limits(
        stream: S,
        max: usize,
        peer: Peer,
        limits: ReadLimits,
    ) -> StreamTransport<S> {
        StreamTransport {
            stream,
            reader: FrameBuffer::new(limits),
            max,
            peer,
        }
    }
}

/// The peer of a TCP connection.
pub(crate) fn tcp_peer(stream: &TcpStream, channel: &'static str) -> Peer {
    let _ = stream.set_nodelay(true);
    Peer {
        channel,
        credentials: None,
        addr: stream.peer_addr().ok(),
    }
}

impl StreamTransport<TcpStream> {
    /// Wraps a connected TCP stream (after the preamble).
    pub fn new(stream: TcpStream, max: usize) -> TcpTransport {
        let peer = tcp_peer(&stream, "tcp");
        StreamTransport::with_peer(stream, max, peer)
    }

    /// Connects to `addr` and sends the preamble.
    ///
    /// # Errors
    ///
    /// [`RemotingError::Connect`] when the server cannot be reached.
    pub async fn connect(addr: &str, max: usize) -> Result<TcpTransport, RemotingError> {
        let connect = |source| RemotingError::Connect {
            target: format!("tcp://{addr}"),
            source,
        };
        let mut stream = TcpStream::connect(addr).await.map_err(connect)?;
        stream
            .write_all(&wire::TCP_PREAMBLE)
            .await
            .map_err(connect)?;
        Ok(TcpTransport::new(stream, max))
    }
}

async fn write_frames<W: AsyncWrite + Unpin>(
    w: &mut W,
    frames: &[&[u8]],
    max: usize,
) -> Result<(), RemotingError> {
    let mut data = Vec::with_capacity(frames.iter().map(|f| f.len() + 4).sum());
    for frame in frames {
        if frame.len() > max {
            return Err(RemotingError::MessageTooLarge {
                size: frame.len(),
                max,
            });
        }
        data.extend_from_slice(&(frame.len() as u32).to_be_bytes());
        data.extend_from_slice(frame);
    }
    w.write_all(&data)
        .await
        .map_err(|source| RemotingError::Io {
            what: "send failed".into(),
            source,
        })
}

impl<S> Transport for StreamTransport<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    async fn send(&mut self, frame: &[u8]) -> Result<(), RemotingError> {
        write_frames(&mut self.stream, &[frame], self.max).await
    }

    async fn send_many(&mut self, frames: &[Vec<u8>]) -> Result<(), RemotingError> {
        let frames: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
        write_frames(&mut self.stream, &frames, self.max).await
    }

    async fn recv(&mut self) -> Result<Option<Vec<u8>>, RemotingError> {
        self.reader.read(&mut self.stream, self.max).await
    }

    fn peer(&self) -> Peer {
        self.peer.clone()
    }

    fn split(self) -> Split<Self> {
        let (r, w) = tokio::io::split(self.stream);
        Split::Halves(
            Box::new(StreamRecv {
                r,
                reader: self.reader,
                max: self.max,
            }),
            Box::new(StreamSend { w, max: self.max }),
        )
    }
}

struct StreamRecv<S> {
    r: ReadHalf<S>,
    reader: FrameBuffer,
    max: usize,
}

struct StreamSend<S> {
    w: WriteHalf<S>,
    max: usize,
}

impl<S: AsyncRead + AsyncWrite + Send + 'static> FrameRecv for StreamRecv<S> {
    fn recv(&mut self) -> BoxFuture<'_, Result<Option<Vec<u8>>, RemotingError>> {
        Box::pin(self.reader.read(&mut self.r, self.max))
    }

    fn is_between_frames(&self) -> bool {
        self.reader.buf.is_empty()
    }
}

impl<S: AsyncRead + AsyncWrite + Send + 'static> FrameSend for StreamSend<S> {
    fn send_many<'a>(
        &'a mut self,
        frames: &'a [Vec<u8>],
    ) -> BoxFuture<'a, Result<(), RemotingError>> {
        Box::pin(async move {
            let frames: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
            write_frames(&mut self.w, &frames, self.max).await
        })
    }
}

/// A message-mode pipe connection: one pipe message per frame. It splits into a receiving
/// and a sending half, so that large messages can flow both ways at once.
#[derive(Debug)]
pub struct PipeTransport {
    pipe: PipeConnection,
}

impl PipeTransport {
    /// Wraps a message-mode pipe connection.
    pub fn new(pipe: PipeConnection) -> PipeTransport {
        PipeTransport { pipe }
    }
}

impl Transport for PipeTransport {
    async fn send(&mut self, frame: &[u8]) -> Result<(), RemotingError> {
        Ok(self.pipe.send(frame).await?)
    }

    async fn recv(&mut self) -> Result<Option<Vec<u8>>, RemotingError> {
        match self.pipe.recv().await {
            Ok(frame) => Ok(Some(frame)),
            Err(procwire::pipe::PipeError::Disconnected { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn peer(&self) -> Peer {
        Peer {
            channel: "pipe",
            credentials: self.pipe.peer_credentials(),
            addr: None,
        }
    }

    fn split(self) -> Split<Self> {
        let (recv, send) = self.pipe.into_split();
        Split::Halves(Box::new(PipeRecv(recv)), Box::new(PipeSend(send)))
    }
}

struct PipeRecv(procwire::pipe::tokio::PipeRecvHalf);

struct PipeSend(procwire::pipe::tokio::PipeSendHalf);

impl FrameRecv for PipeRecv {
    fn recv(&mut self) -> BoxFuture<'_, Result<Option<Vec<u8>>, RemotingError>> {
        Box::pin(async move {
            match self.0.recv().await {
                Ok(frame) => Ok(Some(frame)),
                Err(procwire::pipe::PipeError::Disconnected { .. }) => Ok(None),
                Err(e) => Err(e.into()),
            }
        })
    }
}

impl FrameSend for PipeSend {
    fn send_many<'a>(
        &'a mut self,
        frames: &'a [Vec<u8>],
    ) -> BoxFuture<'a, Result<(), RemotingError>> {
        Box::pin(async move {
            for frame in frames {
                self.0.send(frame).await?;
            }
            Ok(())
        })
    }
}

/// One end of an in-memory transport, for tests.
#[derive(Debug)]
pub struct MemoryTransport {
    tx: mpsc::UnboundedSender<Vec<u8>>,
    rx: mpsc::UnboundedReceiver<Vec<u8>>,
}

impl MemoryTransport {
    /// Two connected ends.
    pub fn pair() -> (MemoryTransport, MemoryTransport) {
        let (atx, arx) = mpsc::unbounded_channel();
        let (btx, brx) = mpsc::unbounded_channel();
        (
            MemoryTransport { tx: atx, rx: brx },
            MemoryTransport { tx: btx, rx: arx },
        )
    }
}

impl Transport for MemoryTransport {
    async fn send(&mut self, frame: &[u8]) -> Result<(), RemotingError> {
        self.tx
            .send(frame.to_vec())
            .map_err(|_| RemotingError::Disconnected {
                reason: "the other end is gone".into(),
            })
    }

    async fn recv(&mut self) -> Result<Option<Vec<u8>>, RemotingError> {
        Ok(self.rx.recv().await)
    }

    fn peer(&self) -> Peer {
        Peer {
            channel: "memory",
            ..Peer::default()
        }
    }

    fn split(self) -> Split<Self> {
        Split::Halves(Box::new(MemoryRecv(self.rx)), Box::new(MemorySend(self.tx)))
    }
}

struct MemoryRecv(mpsc::UnboundedReceiver<Vec<u8>>);
struct MemorySend(mpsc::UnboundedSender<Vec<u8>>);

impl FrameRecv for MemoryRecv {
    fn recv(&mut self) -> BoxFuture<'_, Result<Option<Vec<u8>>, RemotingError>> {
        Box::pin(async move { Ok(self.0.recv().await) })
    }
}

impl FrameSend for MemorySend {
    fn send_many<'a>(
        &'a mut self,
        frames: &'a [Vec<u8>],
    ) -> BoxFuture<'a, Result<(), RemotingError>> {
        Box::pin(async move {
            for frame in frames {
                self.0
                    .send(frame.clone())
                    .map_err(|_| RemotingError::Disconnected {
                        reason: "the other end is gone".into(),
                    })?;
            }
            Ok(())
        })
    }
}
