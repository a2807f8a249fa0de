//! Builders for pipe servers and clients.

use std::net::SocketAddr;
use std::time::Duration;

use crate::security::{Access, AccessList};
use crate::wire::PipeMode;

/// The default largest message of a message-type pipe: 16 MiB.
pub const DEFAULT_MAX_MESSAGE: u32 = 16 << 20;

/// The TCP port a `\\host\pipe\Name` client uses when the name gives none.
pub const DEFAULT_TCP_PORT: u16 = 4455;

/// Which way data flows between server and clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Direction {
    /// Clients write, the server reads (`PIPE_ACCESS_INBOUND`).
    Inbound,
    /// The server writes, clients read (`PIPE_ACCESS_OUTBOUND`).
    Outbound,
    /// Both ways (`PIPE_ACCESS_DUPLEX`).
    #[default]
    Duplex,
}

impl Direction {
    /// The access a client may have on a pipe of this direction.
    pub fn client_access(self) -> Access {
        match self {
            Direction::Inbound => Access::Write,
            Direction::Outbound => Access::Read,
            Direction::Duplex => Access::ReadWrite,
        }
    }
}

/// How to create a pipe server: the equivalent of `CreateNamedPipe`'s arguments.
///
/// # Examples
///
/// ```no_run
/// use procwire::pipe::{Direction, PipeOptions};
/// use procwire::wire::PipeMode;
///
/// let server = PipeOptions::new()
///     .direction(Direction::Duplex)
///     .mode(PipeMode::Message)
///     .max_instances(4)
///     .create(r"\\.\pipe\HelloWorld")?;
/// # Ok::<(), procwire::pipe::PipeError>(())
/// ```
#[derive(Debug, Clone)]
pub struct PipeOptions {
    pub(crate) direction: Direction,
    pub(crate) mode: PipeMode,
    pub(crate) max_instances: Option<u16>,
    pub(crate) in_buffer: Option<usize>,
    pub(crate) out_buffer: Option<usize>,
    pub(crate) max_message: u32,
    pub(crate) access: AccessList,
    pub(crate) tcp: Option<SocketAddr>,
    pub(crate) plaintext_network: bool,
    pub(crate) handshake_timeout: Duration,
    /// The ring size offered to local clients that ask for shared memory; `None`: not offered.
    pub(crate) shared_memory: Option<usize>,
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<std::sync::Arc<rustls::ServerConfig>>,
}

impl Default for PipeOptions {
    fn default() -> Self {
        PipeOptions::new()
    }
}

impl PipeOptions {
    /// A duplex, message-type pipe with unlimited instances, 16 MiB messages, the kernel's
    /// default buffers and access for the owner only.
    pub fn new() -> PipeOptions {
        PipeOptions {
            direction: Direction::Duplex,
            mode: PipeMode::Message,
            max_instances: None,
            in_buffer: None,
            out_buffer: None,
            max_message: DEFAULT_MAX_MESSAGE,
            access: AccessList::owner_only(),
            tcp: None,
            plaintext_network: false,
            handshake_timeout: Duration::from_secs(5),
            shared_memory: None,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    /// Offers local clients that ask for it ([`ClientOptions::shared_memory`]) the
    /// shared-memory data path: after the handshake on the socket, each such connection
    /// gets its own sealed memory region with one ring of
    /// [`DEFAULT_RING_SIZE`](super::DEFAULT_RING_SIZE) bytes per direction, and messages
    /// travel through it without a system call while both sides are busy. Clients that do
    /// not ask (an older one, a Python script, TCP) use the socket as before. Blocking API.
    pub fn shared_memory(mut self, offer: bool) -> Self {
        self.shared_memory = offer.then_some(super::DEFAULT_RING_SIZE);
        self
    }

    /// Offers shared memory (as [`shared_memory`](Self::shared_memory)) with rings of
    /// `bytes` each, rounded up to a power of two within
    /// [`RING_SIZES`](super::RING_SIZES). Larger rings let long messages stream with fewer
    /// waits; each connection's region takes `4 KiB + 2 x bytes` of memory once used.
    ///
    /// The size trades latency for bandwidth. Measured across two CPUs
    /// (docs/performance.md): rings of 4 KiB give the shortest small-message round trip
    /// (64 B: about 1.3x a bare atomic ping-pong, against about 1.6x with the default
    /// 1 MiB), but a message of 1 MiB then streams through them at well under 1 GB/s
    /// (the default: 18-20 GB/s). Choose 4 KiB for a pipe of short requests and answers,
    /// the default for bulk data.
    pub fn shared_memory_ring_size(mut self, bytes: usize) -> Self {
        let sizes = super::RING_SIZES;
        let size = bytes
            .clamp(*sizes.start(), *sizes.end())
            .next_power_of_two();
        self.shared_memory = Some(size);
        self
    }

    /// Which way data flows.
    pub fn direction(mut self, direction: Direction) -> Self {
        self.direction = direction;
        self
    }

    /// Byte or message type.
    pub fn mode(mut self, mode: PipeMode) -> Self {
        self.mode = mode;
        self
    }

    /// The most clients connected at once (`nMaxInstances`); more get `Busy` until one
    /// leaves. Unlimited by default.
    pub fn max_instances(mut self, max: u16) -> Self {
        self.max_instances = Some(max.max(1));
        self
    }

    /// The kernel's socket buffer sizes for each connection, in bytes
    /// (`nInBufferSize`, `nOutBufferSize`); the kernel caps them at its maximum.
    pub fn buffer_sizes(mut self, inbound: usize, outbound: usize) -> Self {
        self.in_buffer = Some(inbound);
        self.out_buffer = Some(outbound);
        self
    }

    /// The largest message either side may send, in bytes (at most 2 GiB - 1).
    pub fn max_message_size(mut self, max: u32) -> Self {
        self.max_message = max.min(crate::wire::MAX_FRAME_LEN);
        self
    }

    /// Who may connect, and for what. Owner only by default.
    pub fn access_list(mut self, access: AccessList) -> Self {
        self.access = access;
        self
    }

    /// Also listens on TCP at `addr`. Without [`allow_plaintext_network`] the address must
    /// be a loopback one. Network clients get the access the list grants to
    /// [`Principal::Network`](crate::security::Principal::Network); when the list does not
    /// mention it, read-write (listening on TCP is the explicit opt-in).
    ///
    /// [`allow_plaintext_network`]: PipeOptions::allow_plaintext_network
    pub fn listen_tcp(mut self, addr: SocketAddr) -> Self {
        self.tcp = Some(addr);
        self
    }

    /// Allows listening on a non-loopback address without encryption: anyone on the
    /// network can then read and forge the traffic.
    pub fn allow_plaintext_network(mut self) -> Self {
        self.plaintext_network = true;
        self
    }

    /// Serves TCP clients over TLS with this configuration (blocking and tokio API; feature
    /// `tls`).
    /// With TLS the listener may use any address.
    #[cfg(feature = "tls")]
    pub fn tls(mut self, config: std::sync::Arc<rustls::ServerConfig>) -> Self {
        self.tls = Some(config);
        self
    }

    /// How long a connecting client has to send its handshake (5 s by default).
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }
}

/// How to connect to a pipe: the equivalent of `CreateFile`, `WaitNamedPipe` and
/// `SetNamedPipeHandleState`.
///
/// # Examples
///
/// ```no_run
/// use std::time::Duration;
/// use procwire::pipe::ClientOptions;
/// use procwire::security::Access;
/// use procwire::wire::PipeMode;
///
/// let mut pipe = ClientOptions::new()
///     .access(Access::ReadWrite)
///     .read_mode(PipeMode::Message)
///     .timeout(Duration::from_secs(2))
///     .open(r"\\.\pipe\HelloWorld")?;
/// pipe.send(b"Default request from client")?;
/// let answer = pipe.recv()?;
/// # Ok::<(), procwire::pipe::PipeError>(())
/// ```
#[derive(Debug, Clone)]
pub struct ClientOptions {
    pub(crate) access: Access,
    pub(crate) read_mode: PipeMode,
    pub(crate) timeout: Duration,
    pub(crate) max_message: u32,
    pub(crate) owners: Vec<u32>,
    pub(crate) shared_memory: bool,
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<std::sync::Arc<rustls::ClientConfig>>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions::new()
    }
}

impl ClientOptions {
    /// Read-write access, byte read mode, a 5 s timeout.
    pub fn new() -> ClientOptions {
        ClientOptions {
            access: Access::ReadWrite,
            read_mode: PipeMode::Byte,
            timeout: Duration::from_secs(5),
            max_message: DEFAULT_MAX_MESSAGE,
            owners: Vec::new(),
            shared_memory: false,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    /// Asks a local server for the shared-memory data path
    /// ([`PipeOptions::shared_memory`]); a server that does not offer it (or a pipe on
    /// another machine) serves the connection over the socket as usual, which
    /// [`PipeConnection::is_shared_memory`](super::PipeConnection::is_shared_memory) tells.
    /// Blocking API.
    pub fn shared_memory(mut self, ask: bool) -> Self {
        self.shared_memory = ask;
        self
    }

    /// Accepts only a server run by `uid` (call again to accept several users): after
    /// connecting, and before sending anything, the client checks who serves the name
    /// (`SO_PEERCRED`, from the kernel) and refuses anyone else with
    /// [`PipeError::UntrustedServer`](super::PipeError::UntrustedServer). In the Global
    /// namespace any user can take a free name first; this is how a client makes sure its
    /// data goes to the server it means. Network pipes have no checkable user: with an
    /// owner required they are refused (authenticate them with TLS).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use procwire::pipe::ClientOptions;
    ///
    /// // Only a server run by root.
    /// let pipe = ClientOptions::new().require_owner(0).open(r"\\.\pipe\Jobs")?;
    /// # Ok::<(), procwire::pipe::PipeError>(())
    /// ```
    pub fn require_owner(mut self, uid: u32) -> Self {
        self.owners.push(uid);
        self
    }

    /// What this client will do: read, write or both.
    pub fn access(mut self, access: Access) -> Self {
        self.access = access;
        self
    }

    /// How reads behave: [`PipeMode::Message`] (one message per read; needs a
    /// message-type pipe) or [`PipeMode::Byte`] (a stream; the default).
    pub fn read_mode(mut self, mode: PipeMode) -> Self {
        self.read_mode = mode;
        self
    }

    /// How long `open` may take in all, including waiting while every instance is busy
    /// (as `WaitNamedPipe` does). 5 s by default; zero fails at once when busy.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Speaks TLS to pipes on other machines (`\\host:port\pipe\Name`), checking the
    /// server's certificate against this configuration (blocking and tokio API; feature `tls`).
    #[cfg(feature = "tls")]
    pub fn tls(mut self, config: std::sync::Arc<rustls::ClientConfig>) -> Self {
        self.tls = Some(config);
        self
    }

    /// The largest message this client accepts, whatever the server allows.
    pub fn max_message_size(mut self, max: u32) -> Self {
        self.max_message = max.min(crate::wire::MAX_FRAME_LEN);
        self
    }
}
