//! Writing to a mailslot: on this machine through its socket, or to one host or the whole
//! network by UDP.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use super::options::{WriterOptions, DEFAULT_UDP_PORT};
use super::server::display_name;
use super::MailslotError;
use crate::name::{Location, Name, NameClass};
use crate::registry::{self, KindClass};
use crate::security::PeerCredentials;
use crate::wire::{SlotDatagram, MAILSLOT_HEADER_LEN, MAX_UDP_PAYLOAD};

#[derive(Debug)]
enum Target {
    Local(UnixDatagram),
    Network {
        socket: UdpSocket,
        to: SocketAddr,
        object: String,
    },
}

/// A writer of one mailslot (`CreateFile` on `\\.\mailslot\Name`).
///
/// Each [`write`](Self::write) sends one whole message. On this machine nothing is lost: a
/// message over the slot's maximum is refused here with
/// [`MailslotError::MessageTooLarge`], and a full slot makes the write wait up to the
/// [timeout](WriterOptions::timeout), then fail with [`MailslotError::Full`] — the message
/// stays with the caller. Over the network (`\\host\mailslot\Name`, `\\*\mailslot\Name`)
/// writes are UDP datagrams: they may be lost, and nobody says so.
///
/// # Examples
///
/// ```no_run
/// use procwire::mailslot::MailslotWriter;
///
/// let slot = MailslotWriter::open(r"\\.\mailslot\HelloWorld")?;
/// slot.write(b"Hello from a writer")?;
/// # Ok::<(), procwire::mailslot::MailslotError>(())
/// ```
#[derive(Debug)]
pub struct MailslotWriter {
    name: String,
    target: Target,
    max_message: usize,
    timeout: Duration,
    /// Who serves a local slot.
    server: Option<PeerCredentials>,
}

impl MailslotWriter {
    /// Opens the slot `name` with default [`WriterOptions`].
    ///
    /// # Errors
    ///
    /// As [`WriterOptions::open`].
    pub fn open<N>(name: N) -> Result<MailslotWriter, MailslotError>
    where
        N: TryInto<Name>,
        N::Error: Into<MailslotError>,
    {
        WriterOptions::new().open(name)
    }

    /// The slot's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The largest message this writer may send: the slot's maximum on this machine, what
    /// fits a UDP datagram over the network.
    pub fn max_message_size(&self) -> usize {
        self.max_message
    }

    /// Who serves a slot on this machine: the uid that owns its registry entry and socket
    /// (from the kernel's file ownership), with the server's pid and the socket's group as
    /// that user's entry records them; `None` for a slot on the network.
    #[doc(alias = "GetNamedPipeServerProcessId")]
    pub fn server_credentials(&self) -> Option<PeerCredentials> {
        self.server
    }

    /// Sends one message.
    ///
    /// # Errors
    ///
    /// [`MailslotError::MessageTooLarge`] before sending anything;
    /// [`MailslotError::Full`] when the slot stayed full for the whole timeout;
    /// [`MailslotError::Disconnected`] when the slot's server is gone.
    pub fn write(&self, message: &[u8]) -> Result<(), MailslotError> {
        if message.len() > self.max_message {
            return Err(MailslotError::MessageTooLarge {
                name: self.name.clone(),
                len: message.len(),
                max: self.max_message,
            });
        }
        let result = match &self.target {
            Target::Local(socket) => socket.send(message).map(drop),
            Target::Network { socket, to, object } => SlotDatagram {
                slot: object,
                message,
            }
            .encode()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
            .and_then(|datagram| socket.send_to(&datagram, to).map(drop)),
        };
        result.map_err(|e| self.write_error(e))
    }

    fn write_error(&self, e: io::Error) -> MailslotError {
        let name = self.name.clone();
        match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => MailslotError::Full {
                name,
                waited: self.timeout,
            },
            io::ErrorKind::ConnectionRefused | io::ErrorKind::NotFound => {
                MailslotError::Disconnected {
                    name,
                    detail: "its server is gone; the message was not delivered".into(),
                }
            }
            _ => MailslotError::io(&self.name, "write failed", e),
        }
    }
}

impl WriterOptions {
    /// Opens the slot `name` for writing: on this machine (`\\.\mailslot\Name`, `Name`,
    /// `Global\Name`), on one host (`\\host[:port]\mailslot\Name`) or on every host of the
    /// local network (`\\*[:port]\mailslot\Name`).
    ///
    /// # Errors
    ///
    /// [`MailslotError::NotFound`] when no live server has the slot on this machine;
    /// [`MailslotError::AccessDenied`] when the slot's socket is not open to this user;
    /// [`MailslotError::WrongKind`] when the name is not a mailslot's.
    pub fn open<N>(&self, name: N) -> Result<MailslotWriter, MailslotError>
    where
        N: TryInto<Name>,
        N::Error: Into<MailslotError>,
    {
        let name: Name = name.try_into().map_err(Into::into)?;
        name.expect_class(NameClass::Mailslot)?;
        let display = display_name(&name);
        let io = |context: &'static str| {
            let display = display.clone();
            move |e| MailslotError::io(&display, context, e)
        };
        let (host, port, broadcast) = match name.location() {
            Location::Here(ns) => return self.open_local(*ns, name.object(), display),
            Location::Remote { host, port } => (host.clone(), *port, false),
            Location::Broadcast { port } => (self.broadcast.to_string(), *port, true),
        };
        let port = port.unwrap_or(DEFAULT_UDP_PORT);
        let to = (host.as_str(), port)
            .to_socket_addrs()
            .map_err(io("cannot resolve the host"))?
            .next()
            .ok_or_else(|| MailslotError::NotFound {
                name: display.clone(),
                detail: format!("host `{host}` has no address"),
            })?;
        let bind: SocketAddr = if to.is_ipv4() {
            "0.0.0.0:0".parse().expect("a valid address")
        } else {
            "[::]:0".parse().expect("a valid address")
        };
        let socket = UdpSocket::bind(bind).map_err(io("cannot open a UDP socket"))?;
        socket
            .set_broadcast(broadcast)
            .map_err(io("cannot enable broadcast"))?;
        Ok(MailslotWriter {
            max_message: MAX_UDP_PAYLOAD - MAILSLOT_HEADER_LEN - name.object().len(),
            name: display,
            target: Target::Network {
                socket,
                to,
                object: name.object().to_owned(),
            },
            timeout: self.timeout,
            server: None,
        })
    }

    fn open_local(
        &self,
        ns: crate::name::Namespace,
        object: &str,
        display: String,
    ) -> Result<MailslotWriter, MailslotError> {
        let path = ns.root().join(NameClass::Mailslot.as_str()).join(object);
        let gone = |detail: String| MailslotError::NotFound {
            name: display.clone(),
            detail,
        };
        // A server takes its name, then binds its socket: give one that is starting a moment
        // to bind.
        let mut attempt = 0;
        let (found, socket, server) = loop {
            let found = match registry::read(ns, KindClass::Mailslot, object)
                .map_err(|e| MailslotError::io(&display, "cannot read the slot's entry", e))?
            {
                registry::Lookup::Found(found) => found,
                registry::Lookup::Missing if path.exists() => {
                    return Err(gone(format!(
                        "its server is gone ({} is left from a server that died)",
                        path.display()
                    )))
                }
                registry::Lookup::Missing => {
                    return Err(gone(format!(
                        "no server has created it ({} does not exist)",
                        path.display()
                    )))
                }
                registry::Lookup::Untrusted(what) => {
                    return Err(MailslotError::WrongKind {
                        name: display,
                        found: format!("held by {what}, not by a mailslot server's entry"),
                    })
                }
            };
            if let Some(reason) = found.stale_reason(ns) {
                return Err(gone(format!("its server is gone: {reason}")));
            }
            check_owner(
                &display,
                &self.owners,
                found.owner_uid,
                found.entry.owner_pid,
            )?;
            match connect_checked(&path, found.owner_uid) {
                Ok((socket, gid)) => {
                    let server = PeerCredentials {
                        pid: found.entry.owner_pid,
                        uid: found.owner_uid,
                        gid,
                    };
                    break (found, socket, server);
                }
                Err(Connect::NotYet) if attempt < 50 => {
                    attempt += 1;
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err(Connect::NotYet) => return Err(gone("its server is gone".into())),
                Err(Connect::Denied) => {
                    return Err(MailslotError::AccessDenied {
                        name: display,
                        detail: format!(
                            "the slot's socket {} is not open to this user",
                            path.display()
                        ),
                    })
                }
                Err(Connect::Foreign(what)) => {
                    return Err(MailslotError::UntrustedServer {
                        name: display,
                        detail: format!(
                            "its entry belongs to uid {} but {what}; refusing to deliver to it",
                            found.owner_uid
                        ),
                    })
                }
                Err(Connect::Io(e)) => {
                    return Err(MailslotError::io(&display, "cannot connect", e))
                }
            }
        };
        // No server makes a slot beyond MAX_LOCAL_MESSAGE: anything larger is not a limit
        // to trust.
        let max_message = usize::try_from(found.entry.max_message)
            .unwrap_or(usize::MAX)
            .min(super::MAX_LOCAL_MESSAGE);
        let setup = |e| MailslotError::io(&display, "cannot set up the socket", e);
        if max_message > 128 * 1024 {
            crate::sys::set_socket_buffers(&socket, None, Some(max_message.saturating_add(4096)))
                .map_err(setup)?;
        }
        socket
            .set_write_timeout(Some(self.timeout.max(Duration::from_micros(1))))
            .map_err(setup)?;
        Ok(MailslotWriter {
            name: display,
            target: Target::Local(socket),
            max_message,
            timeout: self.timeout,
            server: Some(server),
        })
    }
}

/// Why a checked connect failed.
enum Connect {
    /// Nothing listens there yet (or any more).
    NotYet,
    /// The socket is not open to this user.
    Denied,
    /// The socket is not the entry owner's: what it is, in words.
    Foreign(String),
    Io(io::Error),
}

/// Connects to the slot's socket at `path` only if it is a socket owned by `owner` before
/// and after the connect (the same file both times), so that a socket another user bound
/// at a free moment never receives the messages; returns the socket's group too.
fn connect_checked(path: &std::path::Path, owner: u32) -> Result<(UnixDatagram, u32), Connect> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let check = || match crate::sys::fs::id_at(path) {
        Ok(None) => Err(Connect::NotYet),
        Ok(Some((_, meta))) if !meta.file_type().is_socket() => Err(Connect::Foreign(format!(
            "{} is not a socket",
            path.display()
        ))),
        Ok(Some((_, meta))) if meta.uid() != owner => Err(Connect::Foreign(format!(
            "its socket {} belongs to uid {}",
            path.display(),
            meta.uid()
        ))),
        Ok(Some((id, meta))) => Ok((id, meta.gid())),
        Err(e) => Err(Connect::Io(e)),
    };
    let (before, gid) = check()?;
    let socket = UnixDatagram::unbound().map_err(Connect::Io)?;
    socket.connect(path).map_err(|e| match e.kind() {
        io::ErrorKind::PermissionDenied => Connect::Denied,
        io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => Connect::NotYet,
        _ => Connect::Io(e),
    })?;
    let (after, _) = check()?;
    if before != after {
        return Err(Connect::Foreign(format!(
            "its socket {} was replaced while connecting",
            path.display()
        )));
    }
    Ok((socket, gid))
}

/// Refuses a slot whose owner is not one the writer requires (none required: any).
fn check_owner(display: &str, required: &[u32], uid: u32, pid: u32) -> Result<(), MailslotError> {
    crate::security::check_server_owner(required, Some((uid, pid))).map_err(|detail| {
        MailslotError::UntrustedServer {
            name: display.to_owned(),
            detail,
        }
    })
}
