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
        })
    }

    fn open_local(
        &self,
        ns: crate::name::Namespace,
        object: &str,
        display: String,
    ) -> Result<MailslotWriter, MailslotError> {
        let lock = ns.lock_path(NameClass::Mailslot, object);
        let path = ns.root().join(NameClass::Mailslot.as_str()).join(object);
        if !ns.is_live(NameClass::Mailslot, object) {
            let detail = if path.exists() {
                format!(
                    "its server is gone ({} is left from a server that died)",
                    path.display()
                )
            } else {
                format!(
                    "no server has created it ({} does not exist)",
                    path.display()
                )
            };
            return Err(MailslotError::NotFound {
                name: display,
                detail,
            });
        }
        // A server writes its limits just after taking the lock: give one that is starting
        // a moment to do so.
        let read_limit = || {
            std::fs::read_to_string(&lock).ok().and_then(|note| {
                note.lines()
                    .find_map(|l| l.strip_prefix("max_message="))
                    .and_then(|n| n.trim().parse::<usize>().ok())
            })
        };
        let max_message = (0..50)
            .find_map(|attempt| {
                if attempt > 0 {
                    std::thread::sleep(Duration::from_millis(2));
                }
                read_limit()
            })
            .ok_or_else(|| MailslotError::Disconnected {
                name: display.clone(),
                detail: "the slot's limits cannot be read; its server may be starting or gone"
                    .into(),
            })?;
        let socket = UnixDatagram::unbound()
            .map_err(|e| MailslotError::io(&display, "cannot open a socket", e))?;
        if let Err(e) = socket.connect(&path) {
            return Err(match e.kind() {
                io::ErrorKind::PermissionDenied => MailslotError::AccessDenied {
                    name: display,
                    detail: format!(
                        "the slot's socket {} is not open to this user",
                        path.display()
                    ),
                },
                io::ErrorKind::ConnectionRefused if !path_is_socket(&path) => {
                    MailslotError::WrongKind {
                        name: display,
                        found: format!("a file that is not a socket ({})", path.display()),
                    }
                }
                io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => {
                    MailslotError::NotFound {
                        name: display,
                        detail: "its server is gone".into(),
                    }
                }
                _ => MailslotError::io(&display, "cannot connect", e),
            });
        }
        let setup = |e| MailslotError::io(&display, "cannot set up the socket", e);
        if max_message > 128 * 1024 {
            crate::sys::set_socket_buffers(&socket, None, Some(max_message + 4096))
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
        })
    }
}

fn path_is_socket(path: &std::path::Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket())
}
