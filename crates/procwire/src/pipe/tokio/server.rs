//! The tokio pipe server.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::sync::Arc;

use tokio::io::Interest;
use tokio::sync::{mpsc, Mutex};
use tokio::task::JoinHandle;

use super::stream::{read_handshake, AsyncStream};
use super::PipeConnection;
use crate::name::Name;
use crate::pipe::admission::{Gate, ServerCore};
use crate::pipe::endpoint::Binding;
use crate::pipe::{handshake, shm};
use crate::pipe::{PipeError, PipeOptions};

/// A named pipe server for tokio: the async twin of [`crate::pipe::PipeServer`].
///
/// Handshakes run in their own tasks; [`accept`](Self::accept) hands out the clients that
/// got in. Dropping the server stops accepting and removes the name.
#[derive(Debug)]
pub struct PipeServer {
    core: Arc<ServerCore>,
    incoming: Mutex<mpsc::Receiver<PipeConnection>>,
    tasks: Vec<JoinHandle<()>>,
    tcp_addr: Option<SocketAddr>,
    _binding: Binding,
}

impl PipeOptions {
    /// Creates the pipe server `name` for tokio. Must be called within a tokio runtime.
    ///
    /// # Errors
    ///
    /// As [`create`](Self::create).
    pub fn create_async<N>(&self, name: N) -> Result<PipeServer, PipeError>
    where
        N: TryInto<Name>,
        N::Error: Into<PipeError>,
    {
        let (core, binding, tcp) = self.prepare(name)?;
        let core = Arc::new(core);
        let setup = |e: io::Error| PipeError::io(&core.display, "cannot set up the listener", e);
        let (tx, rx) = mpsc::channel(64);
        let mut tasks = Vec::new();

        let unix = binding.listener.try_clone().map_err(setup)?;
        unix.set_nonblocking(true).map_err(setup)?;
        let unix = tokio::net::UnixListener::from_std(unix).map_err(setup)?;
        let (c, t) = (Arc::clone(&core), tx.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                match unix.accept().await {
                    Ok((s, _)) => spawn_handshake(&c, &t, AsyncStream::unix(s)),
                    Err(e) => backoff_after(&c, e).await,
                }
            }
        }));

        let mut tcp_addr = None;
        if let Some(listener) = tcp {
            tcp_addr = listener.local_addr().ok();
            listener.set_nonblocking(true).map_err(setup)?;
            let listener = tokio::net::TcpListener::from_std(listener).map_err(setup)?;
            let c = Arc::clone(&core);
            tasks.push(tokio::spawn(async move {
                loop {
                    match listener.accept().await {
                        Ok((s, _)) => {
                            let _ = s.set_nodelay(true);
                            spawn_handshake(&c, &tx, AsyncStream::Tcp(s));
                        }
                        Err(e) => backoff_after(&c, e).await,
                    }
                }
            }));
        }
        Ok(PipeServer {
            core,
            incoming: Mutex::new(rx),
            tasks,
            tcp_addr,
            _binding: binding,
        })
    }
}

async fn backoff_after(core: &ServerCore, e: io::Error) {
    tracing::warn!(pipe = %core.display, "accept failed: {e}");
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
}

fn spawn_handshake(core: &Arc<ServerCore>, tx: &mpsc::Sender<PipeConnection>, stream: AsyncStream) {
    let peer = stream.peer_credentials().ok().flatten();
    let ticket = match core.gate(peer.as_ref(), stream.peer_ip()) {
        Gate::Handshake(ticket) => ticket,
        Gate::Refuse(answer) => {
            core.log_turned_away(peer.as_ref(), &answer.detail);
            stream.refuse_now(&answer.encode(), core.plaintext());
            return;
        }
    };
    let (core, tx) = (Arc::clone(core), tx.clone());
    tokio::spawn(async move {
        let limit = core.options.handshake_timeout;
        let served = tokio::time::timeout(limit, async {
            let stream = secure(&core, stream).await?;
            serve_handshake(&core, stream).await
        })
        .await;
        drop(ticket);
        match served {
            Ok(Some(conn)) => {
                let _ = tx.send(conn).await;
            }
            Ok(None) => {}
            Err(_) => tracing::info!(pipe = %core.display, "client sent no handshake in {limit:?}"),
        }
    });
}

/// Runs the TLS handshake on a TCP client when the server serves TLS; `None` if it fails.
async fn secure(core: &ServerCore, stream: AsyncStream) -> Option<AsyncStream> {
    #[cfg(feature = "tls")]
    let stream = match (&core.options.tls, stream) {
        (Some(config), AsyncStream::Tcp(tcp)) => {
            return match super::tls::accept(tcp, Arc::clone(config)).await {
                Ok(secured) => Some(secured),
                Err(e) => {
                    tracing::info!(pipe = %core.display, "TLS handshake with a client failed: {e}");
                    None
                }
            };
        }
        (_, stream) => stream,
    };
    let _ = core;
    Some(stream)
}

async fn serve_handshake(
    core: &Arc<ServerCore>,
    mut stream: AsyncStream,
) -> Option<PipeConnection> {
    let pipe_name = &core.display;
    let peer = match stream.peer_credentials() {
        Ok(peer) => peer,
        Err(e) => {
            tracing::warn!(pipe = %pipe_name, "cannot read a client's credentials: {e}");
            return None;
        }
    };
    let request = match read_handshake(&mut stream, handshake::REQUEST).await {
        Ok(request) => request,
        Err(e) => {
            tracing::info!(pipe = %pipe_name, ?peer, "client left during the handshake: {e}");
            return None;
        }
    };
    let asked_for_memory = matches!(&request, Ok(r) if r.shared_memory);
    let (response, admitted) = core.admit(request, peer.as_ref());
    let options = &core.options;
    let offer = match (&stream, options.shared_memory) {
        (AsyncStream::Unix(_), Some(capacity)) if asked_for_memory => Some(capacity),
        _ => None,
    };
    let mut answer = response.encode();
    if asked_for_memory && admitted.is_some() && offer.is_none() {
        answer.extend_from_slice(&crate::wire::DataPath::Socket.encode());
    }
    if let Err(e) = stream.write_all(&answer).await {
        tracing::info!(pipe = %pipe_name, ?peer, "cannot answer a client: {e}");
        return None;
    }
    let Some(admitted) = admitted else {
        tracing::info!(pipe = %pipe_name, ?peer, status = ?response.status, "refused a client: {}", response.detail);
        stream.linger_and_close().await;
        return None;
    };
    let parts = match offer {
        Some(capacity) => {
            let limit = shm::limit_for(options.mode, options.max_message);
            match offer_shared_memory(pipe_name, &mut stream, capacity, limit).await {
                Ok(parts) => parts,
                Err(e) => {
                    tracing::info!(pipe = %pipe_name, ?peer, "cannot set up the data path: {e}");
                    return None;
                }
            }
        }
        None => None,
    };
    let fd_ok = match &stream {
        AsyncStream::Unix(s) => {
            crate::sys::set_socket_buffers(s, options.in_buffer, options.out_buffer)
        }
        AsyncStream::Tcp(s) => {
            crate::sys::set_socket_buffers(s, options.in_buffer, options.out_buffer)
        }
        // The bridge's copies are bounded by its own buffers.
        #[cfg(feature = "tls")]
        AsyncStream::Tls(_) => Ok(()),
    };
    if let Err(e) = fd_ok {
        tracing::warn!(pipe = %pipe_name, "cannot set buffer sizes: {e}");
    }
    tracing::debug!(pipe = %pipe_name, ?peer, access = %admitted.client_access, shared_memory = parts.is_some(), "client connected");
    let info = core.connection_info(admitted, peer);
    match PipeConnection::with_shm(stream, info, parts) {
        Ok(conn) => Some(conn),
        Err(e) => {
            tracing::warn!(pipe = %pipe_name, "cannot register the shared-memory doorbells: {e}");
            None
        }
    }
}

/// Offers a local client that asked for it the shared-memory data path, or (when no region
/// can be made) answers that the data stays on the socket.
async fn offer_shared_memory(
    pipe_name: &str,
    stream: &mut AsyncStream,
    capacity: usize,
    limit: u32,
) -> io::Result<Option<shm::Parts>> {
    let AsyncStream::Unix(socket) = &*stream else {
        unreachable!("shared memory is offered on local sockets only")
    };
    let offered = loop {
        socket.writable().await?;
        match socket.try_io(Interest::WRITABLE, || {
            shm::offer(socket.as_fd(), capacity, limit)
        }) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            done => break done,
        }
    };
    match offered {
        Ok(parts) => Ok(Some(parts)),
        Err(e) => {
            tracing::warn!(pipe = %pipe_name, "serving a client over the socket: {e}");
            let socket_path = crate::wire::DataPath::Socket.encode();
            stream.write_all(&socket_path).await.map(|()| None)
        }
    }
}

impl PipeServer {
    /// The pipe's name.
    pub fn name(&self) -> &str {
        &self.core.display
    }

    /// The TCP address the server listens on, when it does.
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.tcp_addr
    }

    /// Instances in use now.
    pub fn instances(&self) -> usize {
        self.core.instances()
    }

    /// Waits for the next client that got in.
    ///
    /// # Errors
    ///
    /// [`PipeError::Disconnected`] when the listener tasks have stopped.
    pub async fn accept(&self) -> Result<PipeConnection, PipeError> {
        self.incoming
            .lock()
            .await
            .recv()
            .await
            .ok_or_else(|| PipeError::Disconnected {
                name: self.core.display.clone(),
                detail: "the server's listener has stopped".into(),
            })
    }
}

impl Drop for PipeServer {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}
