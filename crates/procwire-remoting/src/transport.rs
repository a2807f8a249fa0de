//! The [`Transport`] trait and the channels' transports: TCP, pipe and in-memory.

use std::future::Future;
use std::net::SocketAddr;

use procwire::pipe::tokio::PipeConnection;
use procwire::security::PeerCredentials;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

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
    buf: Vec<u8>,
    max: usize,
    peer: Peer,
}

/// The TCP channel's transport.
pub type TcpTransport = StreamTransport<TcpStream>;

impl<S> StreamTransport<S> {
    /// Wraps a connected stream (after the preamble) whose peer is `peer`.
    pub fn with_peer(stream: S, max: usize, peer: Peer) -> StreamTransport<S> {
        StreamTransport {
            stream,
            buf: Vec::new(),
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

/// Cancel-safe: the bytes read so far stay in `buf`.
async fn read_frame<R: AsyncRead + Unpin>(
    r: &mut R,
    buf: &mut Vec<u8>,
    max: usize,
) -> Result<Option<Vec<u8>>, RemotingError> {
    loop {
        if let Some(frame) = wire::take_length_prefixed(buf, max)? {
            return Ok(Some(frame));
        }
        buf.reserve(64 * 1024);
        let n = r.read_buf(buf).await.map_err(|source| RemotingError::Io {
            what: "receive failed".into(),
            source,
        })?;
        if n == 0 {
            if buf.is_empty() {
                return Ok(None);
            }
            return Err(RemotingError::Protocol {
                reason: format!("connection closed inside a frame ({} bytes)", buf.len()),
            });
        }
    }
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
        read_frame(&mut self.stream, &mut self.buf, self.max).await
    }

    fn peer(&self) -> Peer {
        self.peer.clone()
    }

    fn split(self) -> Split<Self> {
        let (r, w) = tokio::io::split(self.stream);
        Split::Halves(
            Box::new(StreamRecv {
                r,
                buf: self.buf,
                max: self.max,
            }),
            Box::new(StreamSend { w, max: self.max }),
        )
    }
}

struct StreamRecv<S> {
    r: ReadHalf<S>,
    buf: Vec<u8>,
    max: usize,
}

struct StreamSend<S> {
    w: WriteHalf<S>,
    max: usize,
}

impl<S: AsyncRead + AsyncWrite + Send + 'static> FrameRecv for StreamRecv<S> {
    fn recv(&mut self) -> BoxFuture<'_, Result<Option<Vec<u8>>, RemotingError>> {
        Box::pin(read_frame(&mut self.r, &mut self.buf, self.max))
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
