//! TLS under the tokio API (features `tokio` and `tls`), with tokio-rustls.
//!
//! A tokio connection reads and writes its stream through a shared reference
//! (`try_read`, `try_write`, readiness), which a TLS session cannot offer: its state
//! changes on every read and write. So the session runs in a task of its own, which copies
//! between it and one end of a local socket pair; the connection uses the other end as it
//! uses any local stream, and reports the TCP peer's address, never the pair's
//! credentials (which would be this process's own).
//!
//! The bridge keeps the pipe's semantics: bytes the connection wrote before it closed are
//! still encrypted and sent, a half close becomes the session's close_notify, and the peer's
//! close is the end of the stream on the connection's side. A broken session (the TCP
//! stream ended without close_notify, was reset, or carried a TLS alert) is not: the bridge
//! marks it before it ends the local stream, and the connection's read of that end is then
//! an error (`ConnectionAborted`), so a peer cut off mid-conversation is never taken for
//! one that finished. The peer, likewise, sees a session cut without close_notify when
//! this side's stream broke.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};
use tokio::sync::oneshot;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::{ClientConfig, ServerConfig};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::stream::AsyncStream;

/// The connection's end of a bridged TLS session.
#[derive(Debug)]
pub(crate) struct TlsEnd {
    /// The local socket the connection reads and writes in plaintext.
    pub(crate) plain: UnixStream,
    /// The TCP peer.
    pub(crate) peer: SocketAddr,
    /// Set by the bridge, before it ends `plain`, when the session from the peer broke.
    broken: Arc<AtomicBool>,
    /// Dropped with the connection: the bridge then stops reading from the peer.
    _gone: oneshot::Sender<()>,
}

impl TlsEnd {
    /// A read of `plain`, with the end of the stream after a broken session made an error.
    pub(crate) fn checked(&self, read: io::Result<usize>) -> io::Result<usize> {
        match read {
            Ok(0) if self.broken.load(Ordering::Acquire) => Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "the TLS session broke (it ended without close_notify, was reset or got an \
                 alert): what the peer sent may be cut short",
            )),
            read => read,
        }
    }
}

/// The server side: runs the TLS handshake on `tcp`, then bridges the session.
pub(crate) async fn accept(tcp: TcpStream, config: Arc<ServerConfig>) -> io::Result<AsyncStream> {
    let peer = tcp.peer_addr()?;
    let session = TlsAcceptor::from(config).accept(tcp).await?;
    bridge(session, peer)
}

/// The client side: runs the TLS handshake, checking the server's certificate for `host`.
pub(crate) async fn connect(
    tcp: TcpStream,
    config: Arc<ClientConfig>,
    host: &str,
) -> io::Result<AsyncStream> {
    let peer = tcp.peer_addr()?;
    let name = ServerName::try_from(host.to_owned())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("`{host}`: {e}")))?;
    let session = TlsConnector::from(config).connect(name, tcp).await?;
    bridge(session, peer)
}

/// Starts the task that copies between `session` and a new socket pair.
fn bridge<S>(session: S, peer: SocketAddr) -> io::Result<AsyncStream>
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (plain, far) = UnixStream::pair()?;
    let (gone, dropped) = oneshot::channel();
    let broken = Arc::new(AtomicBool::new(false));
    tokio::spawn(pump(session, far, dropped, Arc::clone(&broken)));
    Ok(AsyncStream::Tls(TlsEnd {
        plain,
        peer,
        broken,
        _gone: gone,
    }))
}

/// How long the bridge keeps sending what the connection wrote after the connection is
/// gone: a peer that does not take it in that time loses the rest (a stalled peer must not
/// keep the session alive for ever).
const LINGER: Duration = Duration::from_secs(30);

/// Copies both ways until each direction is done.
///
/// Outbound (connection → peer) runs until the connection stops sending, by a half close or
/// by closing, and then ends the session with close_notify: what was written before is
/// never cut off (for at most [`LINGER`] once the connection is gone). Inbound (peer →
/// connection) runs until the peer stops sending, or until the connection is gone, so that
/// a peer that never closes cannot keep the task alive.
async fn pump<S>(
    session: S,
    far: UnixStream,
    dropped: oneshot::Receiver<()>,
    broken: Arc<AtomicBool>,
) where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (from_peer, to_peer) = tokio::io::split(session);
    let (from_conn, to_conn) = far.into_split();
    let outbound = forward(from_conn, to_peer, "to the peer", None);
    let inbound = forward(from_peer, to_conn, "from the peer", Some(&broken));
    tokio::pin!(outbound, inbound);
    tokio::select! {
        _ = async { tokio::join!(&mut outbound, &mut inbound) } => return,
        _ = dropped => {}
    }
    let _ = tokio::time::timeout(LINGER, outbound).await;
}

/// Moves bytes from `from` to `to`, each read written whole before the next read, then
/// ends `to`: in order (a shutdown, close_notify on the session) when `from` ended in
/// order, abruptly (dropped, so that the other side sees the stream cut) when it broke.
/// `broken` is the session's mark, for the inbound direction: set before `to` ends when
/// `from` (the session) broke; there a reset is a break too.
async fn forward<R, W>(mut from: R, mut to: W, what: &str, broken: Option<&AtomicBool>)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => n,
            // A connection that closes with bytes from the peer unread is reported as a
            // reset after its own data: for the bridge that is its end.
            Err(e) if broken.is_none() && e.kind() == io::ErrorKind::ConnectionReset => break,
            Err(e) => {
                tracing::debug!("TLS bridge: the stream {what} broke: {e}");
                if let Some(broken) = broken {
                    broken.store(true, Ordering::Release);
                }
                return;
            }
        };
        if let Err(e) = to.write_all(&buf[..n]).await {
            tracing::debug!("TLS bridge: sending {what} failed: {e}");
            return;
        }
    }
    let _ = to.shutdown().await;
}
