//! Builders for mailslot servers and writers.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use crate::security::AccessList;

/// The default largest message: 64 KiB.
pub const DEFAULT_MAX_MESSAGE: usize = 64 * 1024;

/// The most a local message may be: the kernel's datagram limit with the largest socket
/// buffers this machine allows (about 4 MiB, less headroom).
pub const MAX_LOCAL_MESSAGE: usize = 4_000_000;

/// The default UDP port of network mailslots.
pub const DEFAULT_UDP_PORT: u16 = 4456;

/// How long [`read`](super::MailslotServer::read) waits for a message (`lReadTimeout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReadTimeout {
    /// Return at once when the slot is empty (timeout 0).
    Immediate,
    /// Wait as long as it takes (`MAILSLOT_WAIT_FOREVER`).
    #[default]
    Forever,
    /// Wait at most this long.
    After(Duration),
}

impl ReadTimeout {
    pub(crate) fn as_duration(self) -> Option<Duration> {
        match self {
            ReadTimeout::Immediate => Some(Duration::ZERO),
            ReadTimeout::Forever => None,
            ReadTimeout::After(d) => Some(d),
        }
    }
}

/// How to create a mailslot server: the arguments of `CreateMailslot`.
///
/// # Examples
///
/// ```no_run
/// use std::time::Duration;
/// use procwire::mailslot::{MailslotOptions, ReadTimeout};
///
/// let slot = MailslotOptions::new()
///     .max_message_size(424)
///     .read_timeout(ReadTimeout::Immediate)
///     .create(r"\\.\mailslot\HelloWorld")?;
/// let info = slot.info()?;
/// println!("{} messages waiting", info.waiting);
/// # Ok::<(), procwire::mailslot::MailslotError>(())
/// ```
#[derive(Debug, Clone)]
pub struct MailslotOptions {
    pub(crate) max_message: usize,
    pub(crate) read_timeout: ReadTimeout,
    pub(crate) capacity: usize,
    pub(crate) access: AccessList,
    pub(crate) udp: Option<SocketAddr>,
    pub(crate) plaintext_network: bool,
}

impl Default for MailslotOptions {
    fn default() -> Self {
        MailslotOptions::new()
    }
}

impl MailslotOptions {
    /// 64 KiB messages, reads that wait forever, 64 MiB of storage, owner-only access, no
    /// network.
    pub fn new() -> MailslotOptions {
        MailslotOptions {
            max_message: DEFAULT_MAX_MESSAGE,
            read_timeout: ReadTimeout::Forever,
            capacity: 64 << 20,
            access: AccessList::owner_only(),
            udp: None,
            plaintext_network: false,
        }
    }

    /// The largest message writers may send, in bytes (`nMaxMessageSize`), at most
    /// [`MAX_LOCAL_MESSAGE`].
    pub fn max_message_size(mut self, max: usize) -> Self {
        self.max_message = max.min(MAX_LOCAL_MESSAGE);
        self
    }

    /// How long reads wait (`lReadTimeout`); can be changed later with
    /// [`set_read_timeout`](super::MailslotServer::set_read_timeout).
    pub fn read_timeout(mut self, timeout: ReadTimeout) -> Self {
        self.read_timeout = timeout;
        self
    }

    /// How many bytes of unread messages the slot stores before writers have to wait.
    pub fn capacity(mut self, bytes: usize) -> Self {
        self.capacity = bytes.max(1);
        self
    }

    /// Who may write. Access is enforced by the socket file's mode, so a list may grant
    /// write access to everyone and to one group; grants to single users are refused.
    /// Other users can only reach a slot in the Global namespace.
    pub fn access_list(mut self, access: AccessList) -> Self {
        self.access = access;
        self
    }

    /// Also receives network datagrams on UDP at `addr`. Without
    /// [`allow_plaintext_network`](Self::allow_plaintext_network) it must be a loopback
    /// address; receiving broadcasts needs the unspecified address (`0.0.0.0`).
    pub fn listen_udp(mut self, addr: SocketAddr) -> Self {
        self.udp = Some(addr);
        self
    }

    /// Allows a non-loopback UDP address: anyone on the network can then write to the
    /// slot, and nothing is encrypted.
    pub fn allow_plaintext_network(mut self) -> Self {
        self.plaintext_network = true;
        self
    }
}

/// How to open a mailslot for writing: the `CreateFile` side.
#[derive(Debug, Clone)]
pub struct WriterOptions {
    pub(crate) timeout: Duration,
    pub(crate) broadcast: IpAddr,
    pub(crate) owners: Vec<u32>,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions::new()
    }
}

impl WriterOptions {
    /// Writes wait up to 5 s while the slot is full; broadcasts go to 255.255.255.255.
    pub fn new() -> WriterOptions {
        WriterOptions {
            timeout: Duration::from_secs(5),
            broadcast: IpAddr::V4(Ipv4Addr::BROADCAST),
            owners: Vec::new(),
        }
    }

    /// Delivers only to a slot served by `uid` (call again to accept several users): the
    /// writer checks who owns the slot's registry entry and socket before it sends
    /// anything, and refuses anyone else with
    /// [`MailslotError::UntrustedServer`](super::MailslotError::UntrustedServer). In the
    /// Global namespace any user can take a free name first. Applies to slots on this
    /// machine; a network slot's server has no user to check.
    pub fn require_owner(mut self, uid: u32) -> Self {
        self.owners.push(uid);
        self
    }

    /// How long a write waits while the slot is full before failing with
    /// [`MailslotError::Full`](super::MailslotError::Full).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The address `\\*\mailslot\Name` sends to (a subnet's broadcast address, say).
    pub fn broadcast_addr(mut self, addr: IpAddr) -> Self {
        self.broadcast = addr;
        self
    }
}
