//! Passing open objects to the peer of a local pipe connection, as Windows'
//! `DuplicateHandle` does: [`PipeConnection::send_handle`] and
//! [`PipeConnection::recv_handle`].
//!
//! A handle travels as a handle frame (a record saying what the object is, with what
//! access, under what name; `docs/protocol.md`) with the object's descriptor beside it
//! (`SCM_RIGHTS`). Only local, message-type pipe connections that carry their data on the
//! socket can pass handles: TCP cannot carry descriptors, and a shared-memory connection's
//! data does not travel on the socket.
//!
//! The rules of who may receive what are on [`HandleRef`].

use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use super::connection::PipeConnection;
use super::info::Info;
use super::stream::{FdLedger, Stream};
use super::PipeError;
use crate::mapping::Mapping;
use crate::name::Namespace;
use crate::security::{mode_grants, Access, PeerCredentials};
use crate::sync::{NamedEvent, NamedMutex, NamedSemaphore};
use crate::sys::fs::{Descriptor, DescriptorType};
use crate::wire::{self, HandleKind, HandleRecord, PipeFacts, PipeMode, FRAME_HEADER_LEN};

/// An open object to pass to the peer of a connection: what
/// [`send_handle`](PipeConnection::send_handle) takes, made from a `&Mapping`, a `&File`, a
/// `&PipeConnection`, a `&NamedMutex`, a `&NamedSemaphore` or a `&NamedEvent` with `.into()`
/// (or implicitly).
///
/// A handle travels as a handle frame with the object's descriptor beside it
/// (`SCM_RIGHTS`; docs/protocol.md section 5.2). Only local, message-type pipe connections
/// that carry their data on the socket can pass handles: TCP cannot carry descriptors, and
/// a shared-memory connection's data does not travel on the socket. A received mapping or
/// sync object has the sender's name but holds no claim on it and removes nothing.
///
/// # Who may receive what
///
/// The sender checks the peer's kernel-verified credentials before anything is sent, and
/// refuses with [`PipeError::AccessDenied`] what the peer could not have opened itself:
///
/// - a [`Mapping`], a [`File`] or a sync object ([`NamedMutex`], [`NamedSemaphore`],
///   [`NamedEvent`], always passed read-write): the peer must be granted the access passed
///   by the object's file mode, as opening it by name would be (owner bits for its owner,
///   group bits for a member of its group, the other bits for everyone else; root is granted
///   everything). An object in the **Local** namespace is private to its user: it passes
///   only to that user (or root), whatever its mode.
/// - a [`PipeConnection`]: the pipe's server checked who connected; the connection passes
///   only to the same user as this process (or root).
///
/// The receiver gets no more access than the sender passes, and the sender passes no more
/// than it holds: passing less (`send_handle_with_access`) passes a descriptor opened anew
/// with only that access, for mappings and files; a pipe connection's access is kept in its
/// record.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum HandleRef<'a> {
    /// A mapping: the peer gets a [`Mapping`] on the same memory.
    Mapping(&'a Mapping),
    /// A regular file: the peer gets a [`File`] sharing its offset (unless passed with less
    /// access, which opens the file anew).
    File(&'a File),
    /// A local pipe connection: the peer gets a [`PipeConnection`] that talks to the same
    /// other end. Let one process use it: two that both read split the messages.
    Pipe(&'a PipeConnection),
    /// A mutex: the peer gets a [`NamedMutex`] on the same state (locking it there excludes
    /// holders here).
    Mutex(&'a NamedMutex),
    /// A semaphore: the peer gets a [`NamedSemaphore`] on the same count.
    Semaphore(&'a NamedSemaphore),
    /// An event: the peer gets a [`NamedEvent`] on the same state.
    Event(&'a NamedEvent),
}

impl<'a> From<&'a NamedMutex> for HandleRef<'a> {
    fn from(m: &'a NamedMutex) -> Self {
        HandleRef::Mutex(m)
    }
}

impl<'a> From<&'a NamedSemaphore> for HandleRef<'a> {
    fn from(s: &'a NamedSemaphore) -> Self {
        HandleRef::Semaphore(s)
    }
}

impl<'a> From<&'a NamedEvent> for HandleRef<'a> {
    fn from(e: &'a NamedEvent) -> Self {
        HandleRef::Event(e)
    }
}

impl<'a> From<&'a Mapping> for HandleRef<'a> {
    fn from(m: &'a Mapping) -> Self {
        HandleRef::Mapping(m)
    }
}

impl<'a> From<&'a File> for HandleRef<'a> {
    fn from(f: &'a File) -> Self {
        HandleRef::File(f)
    }
}

impl<'a> From<&'a PipeConnection> for HandleRef<'a> {
    fn from(p: &'a PipeConnection) -> Self {
        HandleRef::Pipe(p)
    }
}

/// A handle the peer passed: take the object out with [`into_mapping`](Self::into_mapping),
/// [`into_file`](Self::into_file), [`into_pipe`](Self::into_pipe),
/// [`into_mutex`](Self::into_mutex), [`into_semaphore`](Self::into_semaphore) or
/// [`into_event`](Self::into_event). Dropping it closes the descriptor.
#[derive(Debug)]
pub struct PassedHandle {
    name: String,
    access: Access,
    object: Passed,
}

#[derive(Debug)]
enum Passed {
    Mapping(Mapping),
    File(File),
    Pipe(Box<PipeConnection>),
    Mutex(NamedMutex),
    Semaphore(NamedSemaphore),
    Event(NamedEvent),
}

impl PassedHandle {
    /// What kind of object it is.
    pub fn kind(&self) -> HandleKind {
        match self.object {
            Passed::Mapping(_) => HandleKind::Mapping,
            Passed::File(_) => HandleKind::File,
            Passed::Pipe(_) => HandleKind::Pipe,
            Passed::Mutex(_) => HandleKind::Mutex,
            Passed::Semaphore(_) => HandleKind::Semaphore,
            Passed::Event(_) => HandleKind::Event,
        }
    }

    /// The object's name as the sender knows it (a file's is empty).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What the receiver may do with it.
    pub fn access(&self) -> Access {
        self.access
    }

    fn wrong(self, wanted: HandleKind) -> PipeError {
        PipeError::BadHandle {
            name: self.name.clone(),
            detail: format!(
                "is {}, not {} (it is closed)",
                self.kind().with_article(),
                wanted.with_article()
            ),
        }
    }

    /// The mapping passed.
    ///
    /// # Errors
    ///
    /// [`PipeError::BadHandle`] when it is another kind of object (which is then closed).
    pub fn into_mapping(self) -> Result<Mapping, PipeError> {
        match self.object {
            Passed::Mapping(m) => Ok(m),
            _ => Err(self.wrong(HandleKind::Mapping)),
        }
    }

    /// The file passed.
    ///
    /// # Errors
    ///
    /// [`PipeError::BadHandle`] when it is another kind of object (which is then closed).
    pub fn into_file(self) -> Result<File, PipeError> {
        match self.object {
            Passed::File(f) => Ok(f),
            _ => Err(self.wrong(HandleKind::File)),
        }
    }

    /// The pipe connection passed.
    ///
    /// # Errors
    ///
    /// [`PipeError::BadHandle`] when it is another kind of object (which is then closed).
    pub fn into_pipe(self) -> Result<PipeConnection, PipeError> {
        match self.object {
            Passed::Pipe(p) => Ok(*p),
            _ => Err(self.wrong(HandleKind::Pipe)),
        }
    }

    /// The pipe connection passed, for tokio. Must be called within a tokio runtime.
    ///
    /// The socket becomes nonblocking, and the sender's handle shares that state (a passed
    /// descriptor is the same open socket): a sender should drop its own connection once it
    /// has passed it, as it would after `DuplicateHandle` with `DUPLICATE_CLOSE_SOURCE`.
    ///
    /// # Errors
    ///
    /// [`PipeError::BadHandle`] when it is another kind of object (which is then closed);
    /// [`PipeError::Io`] when the socket cannot join the runtime.
    #[cfg(feature = "tokio")]
    pub fn into_async_pipe(self) -> Result<super::tokio::PipeConnection, PipeError> {
        let name = self.name.clone();
        let pipe = self.into_pipe()?;
        pipe.into_async()
            .map_err(|e| PipeError::io(&name, "cannot register the passed connection", e))
    }

    /// The mutex passed.
    ///
    /// # Errors
    ///
    /// [`PipeError::BadHandle`] when it is another kind of object (which is then closed).
    pub fn into_mutex(self) -> Result<NamedMutex, PipeError> {
        match self.object {
            Passed::Mutex(m) => Ok(m),
            _ => Err(self.wrong(HandleKind::Mutex)),
        }
    }

    /// The semaphore passed.
    ///
    /// # Errors
    ///
    /// [`PipeError::BadHandle`] when it is another kind of object (which is then closed).
    pub fn into_semaphore(self) -> Result<NamedSemaphore, PipeError> {
        match self.object {
            Passed::Semaphore(s) => Ok(s),
            _ => Err(self.wrong(HandleKind::Semaphore)),
        }
    }

    /// The event passed.
    ///
    /// # Errors
    ///
    /// [`PipeError::BadHandle`] when it is another kind of object (which is then closed).
    pub fn into_event(self) -> Result<NamedEvent, PipeError> {
        match self.object {
            Passed::Event(e) => Ok(e),
            _ => Err(self.wrong(HandleKind::Event)),
        }
    }
}

/// A descriptor to send: the object's own, or one opened anew with less access.
pub(crate) enum Fd<'a> {
    Own(BorrowedFd<'a>),
    Reopened(OwnedFd),
}

impl Fd<'_> {
    pub(crate) fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Fd::Own(fd) => *fd,
            Fd::Reopened(fd) => fd.as_fd(),
        }
    }
}

fn access_of(d: &Descriptor) -> Option<Access> {
    match (d.readable, d.writable) {
        (true, true) => Some(Access::ReadWrite),
        (true, false) => Some(Access::Read),
        (false, true) => Some(Access::Write),
        (false, false) => None,
    }
}

fn open_as(d: &Descriptor) -> &'static str {
    match access_of(d) {
        Some(Access::ReadWrite) => "read-write",
        Some(Access::Read) => "read-only",
        Some(Access::Write) => "write-only",
        None => "for neither reading nor writing",
    }
}

impl PipeConnection {
    /// Passes an open object to the process at the other end (`DuplicateHandle` into the
    /// peer's process), with the access this handle has. The peer receives it with
    /// [`recv_handle`](Self::recv_handle), in order among the messages. This end keeps its
    /// own handle.
    ///
    /// # Errors
    ///
    /// [`PipeError::AccessDenied`] before anything is sent when the peer's user could not
    /// open the object itself (see [`HandleRef`](HandleRef#who-may-receive-what) for
    /// the rule); [`PipeError::BadHandle`] when this connection cannot carry handles (TCP, shared
    /// memory) or the object cannot be passed (a file that is not a regular file, a pipe
    /// connection with data unread); [`PipeError::ModeMismatch`] on a byte-type pipe;
    /// otherwise as [`send`](Self::send).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use procwire::mapping::Mapping;
    /// use procwire::pipe::PipeConnection;
    ///
    /// let mut pipe = PipeConnection::open(r"\\.\pipe\Worker")?;
    /// let mapping = Mapping::create(r"Local\Frame", 1 << 20)?;
    /// pipe.send_handle(&mapping)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # References
    /// - [`DuplicateHandle`](https://learn.microsoft.com/en-us/windows/win32/api/handleapi/nf-handleapi-duplicatehandle)
    /// - [`unix(7)`](https://man7.org/linux/man-pages/man7/unix.7.html), `SCM_RIGHTS`
    #[doc(alias = "DuplicateHandle")]
    pub fn send_handle<'a>(&mut self, handle: impl Into<HandleRef<'a>>) -> Result<(), PipeError> {
        self.send_handle_as(handle.into(), None)
    }

    /// [`send_handle`](Self::send_handle) with less access than this handle has (or the
    /// same): `DuplicateHandle` with a narrower `dwDesiredAccess`. A mapping or a file is
    /// passed as a descriptor opened anew with only `access`, so the peer cannot use more.
    ///
    /// # Errors
    ///
    /// [`PipeError::NotPermitted`] when `access` is more than this handle has (or
    /// write-only for a mapping); otherwise as [`send_handle`](Self::send_handle).
    pub fn send_handle_with_access<'a>(
        &mut self,
        handle: impl Into<HandleRef<'a>>,
        access: Access,
    ) -> Result<(), PipeError> {
        self.send_handle_as(handle.into(), Some(access))
    }

    fn send_handle_as(
        &mut self,
        handle: HandleRef<'_>,
        wanted: Option<Access>,
    ) -> Result<(), PipeError> {
        self.check_sendable()?;
        self.info.check_can_write()?;
        self.info.check_messages()?;
        let peer = self.handle_peer()?;
        if self.writer.is_mid_frame() {
            return Err(bad(
                &self.info,
                "cannot be sent: a message's send was left half done".into(),
            ));
        }
        let (record, fd) = outgoing(&self.info, handle, wanted, &peer)?;
        let frame = handle_frame(&self.info, &record)?;
        let result = crate::sys::send_with_fds(&self.stream, &frame, &[fd.as_fd()]);
        result.map_err(|e| {
            if e.kind() == std::io::ErrorKind::WriteZero {
                self.broken = Some("a handle frame was sent only in part".into());
            }
            self.info.io_failure("sending a handle failed", e)
        })
    }

    /// The peer's credentials, when this connection can carry descriptors.
    fn handle_peer(&self) -> Result<PeerCredentials, PipeError> {
        let local = matches!(self.stream, Stream::Unix(_));
        handle_peer(&self.info, local, self.shm.is_some())
    }

    /// Receives the next frame as a passed handle, waiting as long as it takes (in
    /// nonblocking mode, [`set_nonblocking`](Self::set_nonblocking): not at all).
    ///
    /// # Errors
    ///
    /// [`PipeError::WrongFrame`] when the next frame is a message (nothing is taken: receive
    /// it with [`recv`](Self::recv)); [`PipeError::BadHandle`] when the peer announced a
    /// handle and passed no descriptor, or a descriptor of another kind or with less access
    /// than announced, or a record that does not decode (the frame is taken, what came with
    /// it is closed, and the connection stays usable), or when this connection cannot carry
    /// handles; otherwise as [`recv`](Self::recv).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use procwire::pipe::PipeServer;
    ///
    /// let server = PipeServer::create(r"\\.\pipe\Worker")?;
    /// let mut pipe = server.accept()?;
    /// let mapping = pipe.recv_handle()?.into_mapping()?;
    /// let view = mapping.view(0, 16)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn recv_handle(&mut self) -> Result<PassedHandle, PipeError> {
        self.recv_handle_until(None)
    }

    /// [`recv_handle`](Self::recv_handle), waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`PipeError::Timeout`] (nothing lost), or as [`recv_handle`](Self::recv_handle).
    pub fn recv_handle_timeout(&mut self, timeout: Duration) -> Result<PassedHandle, PipeError> {
        self.recv_handle_until(Some(timeout))
    }

    fn recv_handle_until(&mut self, timeout: Option<Duration>) -> Result<PassedHandle, PipeError> {
        self.check_usable()?;
        self.info.check_messages()?;
        self.info.check_can_read()?;
        self.handle_peer()?;
        let now = timeout.is_none() && self.is_nonblocking();
        let timeout = if now { Some(Duration::ZERO) } else { timeout };
        let deadline = timeout.map(|t| Instant::now() + t);
        let stream = &self.stream;
        let mut read = |b: &mut [u8]| stream.read_until(b, deadline);
        let record = match self.reader.recv_handle(&mut read) {
            Ok(record) => record,
            Err(e) if now => {
                let e = self.fail(e, timeout);
                return Err(self.would_block(e));
            }
            Err(e) => return Err(self.fail(e, timeout)),
        };
        let Stream::Unix(local) = &self.stream else {
            unreachable!("handle_peer accepts only Unix sockets");
        };
        let fds = claim_fds(
            &self.info,
            local.ledger(),
            self.reader.buffered_len(),
            &record,
        );
        adopt(&self.info, &record, fds)
    }
}

/// A [`PipeError::BadHandle`] of the connection `info` describes.
pub(crate) fn bad(info: &Info, detail: String) -> PipeError {
    PipeError::BadHandle {
        name: info.name.clone(),
        detail,
    }
}

/// What is sent for `handle` on the connection `info` describes: its record and descriptor
/// (reopened with `wanted` access when less is passed), checked against the peer's user.
pub(crate) fn outgoing<'a>(
    info: &Info,
    handle: HandleRef<'a>,
    wanted: Option<Access>,
    peer: &PeerCredentials,
) -> Result<(HandleRecord, Fd<'a>), PipeError> {
    let me = crate::sys::current_user().0;
    let who = format!("uid {} (pid {})", peer.uid, peer.pid);
    let denied = |detail: String| PipeError::AccessDenied {
        name: info.name.clone(),
        detail,
    };
    let not_permitted = |detail: String| PipeError::NotPermitted {
        name: info.name.clone(),
        detail,
    };
    let describe = |fd: BorrowedFd<'_>| {
        crate::sys::fs::describe(fd)
            .map_err(|e| PipeError::io(&info.name, "cannot look at the handle to pass", e))
    };
    let narrow = |own: Access, what: &str| -> Result<Access, PipeError> {
        let want = wanted.unwrap_or(own);
        if !own.contains(want) {
            return Err(not_permitted(format!(
                "{what} is held with {own} access; it cannot be passed with {want} access"
            )));
        }
        Ok(want)
    };
    // The descriptor to pass for `want`: the own one when it has exactly that access.
    let fd_for = |fd: BorrowedFd<'a>, d: &Descriptor, want: Access| -> Result<Fd<'a>, PipeError> {
        if access_of(d) == Some(want) {
            return Ok(Fd::Own(fd));
        }
        crate::sys::fs::reopen(fd, want.can_read(), want.can_write())
            .map(Fd::Reopened)
            .map_err(|e| {
                PipeError::io(
                    &info.name,
                    format!("cannot open the handle anew with {want} access"),
                    e,
                )
            })
    };
    let check_mode = |d: &Descriptor, want: Access, what: &str| {
        let granted = mode_grants(d.uid, d.gid, d.mode, peer);
        if granted.is_some_and(|g| g.contains(want)) {
            return Ok(());
        }
        Err(denied(format!(
            "{who} could not open {what} for {want} access itself (file mode {:o}, owner \
             uid {}, group {}): it is not passed; grant that user access to the object, or \
             pass less access",
            d.mode, d.uid, d.gid
        )))
    };
    match handle {
        HandleRef::Mapping(m) => {
            let what = format!("mapping `{}`", m.name());
            let want = narrow(m.access(), &what)?;
            if want == Access::Write {
                return Err(not_permitted(
                    "a mapping cannot be passed write-only; pass ReadWrite".into(),
                ));
            }
            let (fd, ns) = m.data();
            if ns == Namespace::Local && peer.uid != me && peer.uid != 0 {
                return Err(denied(format!(
                    "{what} is in the Local namespace of uid {me}, which no other user can \
                     open; {who} may not receive it (create it in Global with an access \
                     list that grants that user)"
                )));
            }
            let d = describe(fd)?;
            check_mode(&d, want, &what)?;
            let record = HandleRecord {
                kind: HandleKind::Mapping,
                access: want,
                name: m.name().to_owned(),
                size: m.size(),
                pipe: None,
            };
            Ok((record, fd_for(fd, &d, want)?))
        }
        HandleRef::File(f) => {
            let d = describe(f.as_fd())?;
            if d.kind != DescriptorType::Regular {
                return Err(bad(
                    info,
                    format!(
                        "cannot be sent: only regular files pass as files; this is {}",
                        d.kind.with_article()
                    ),
                ));
            }
            let own = access_of(&d).ok_or_else(|| {
                bad(
                    info,
                    "cannot be sent: the file is open for neither reading nor writing".into(),
                )
            })?;
            let want = narrow(own, "the file")?;
            check_mode(&d, want, "the file")?;
            let record = HandleRecord {
                kind: HandleKind::File,
                access: want,
                name: String::new(),
                size: 0,
                pipe: None,
            };
            Ok((record, fd_for(f.as_fd(), &d, want)?))
        }
        HandleRef::Mutex(m) => outgoing_sync(info, m.shared(), HandleKind::Mutex, wanted, peer),
        HandleRef::Semaphore(s) => {
            outgoing_sync(info, s.shared(), HandleKind::Semaphore, wanted, peer)
        }
        HandleRef::Event(e) => outgoing_sync(info, e.shared(), HandleKind::Event, wanted, peer),
        HandleRef::Pipe(p) => {
            let what = format!("the connection of pipe `{}`", p.info.name);
            if !matches!(p.stream, Stream::Unix(_)) || p.shm.is_some() {
                return Err(bad(
                    info,
                    format!(
                        "cannot be sent: {what} is not a local connection on its socket (TCP \
                     or shared memory)"
                    ),
                ));
            }
            if p.reader.has_unread()
                || p.writer.is_mid_frame()
                || p.broken.is_some()
                || p.ended.is_some()
            {
                return Err(bad(
                    info,
                    format!(
                        "cannot be sent: {what} has data received and not yet taken, a send \
                     left half done, or is broken; pass it between messages"
                    ),
                ));
            }
            let want = narrow(p.info.access, &what)?;
            if peer.uid != me && peer.uid != 0 {
                return Err(denied(format!(
                    "{what} passes only to its own user (uid {me}) or root; {who} may not \
                     receive it"
                )));
            }
            let record = HandleRecord {
                kind: HandleKind::Pipe,
                access: want,
                name: p.info.name.clone(),
                size: 0,
                pipe: Some(PipeFacts {
                    pipe_type: p.info.pipe_type,
                    read_mode: p.info.read_mode,
                    max_message: p.info.max_message,
                    is_client: p.info.is_client,
                }),
            };
            Ok((record, Fd::Own(p.stream.as_fd())))
        }
    }
}

/// A sync object's record and descriptor: always read-write (waiting on one writes its
/// state), checked as a mapping is.
fn outgoing_sync<'a>(
    info: &Info,
    shared: &'a crate::sync::shared::Shared,
    kind: HandleKind,
    wanted: Option<Access>,
    peer: &PeerCredentials,
) -> Result<(HandleRecord, Fd<'a>), PipeError> {
    let what = format!("{} `{}`", kind.with_article(), shared.name());
    if wanted.is_some_and(|w| w != Access::ReadWrite) {
        return Err(PipeError::NotPermitted {
            name: info.name.clone(),
            detail: format!("{what} passes only read-write: using it writes its state"),
        });
    }
    let me = crate::sys::current_user().0;
    let (fd, ns) = shared.data();
    let denied = |detail: String| PipeError::AccessDenied {
        name: info.name.clone(),
        detail: format!("uid {} (pid {}) {detail}", peer.uid, peer.pid),
    };
    if ns == Namespace::Local && peer.uid != me && peer.uid != 0 {
        return Err(denied(format!(
            "may not receive {what}: it is in the Local namespace of uid {me}, which no other \
             user can open (create it in Global with an access list that grants that user)"
        )));
    }
    let d = crate::sys::fs::describe(fd)
        .map_err(|e| PipeError::io(&info.name, "cannot look at the handle to pass", e))?;
    if !mode_grants(d.uid, d.gid, d.mode, peer).is_some_and(|g| g == Access::ReadWrite) {
        return Err(denied(format!(
            "could not open {what} for read-write access itself (file mode {:o}, owner uid \
             {}, group {}): it is not passed; grant that user access to the object",
            d.mode, d.uid, d.gid
        )));
    }
    let record = HandleRecord {
        kind,
        access: Access::ReadWrite,
        name: shared.name().to_owned(),
        size: shared.size(),
        pipe: None,
    };
    Ok((record, Fd::Own(fd)))
}

/// Makes the object a handle frame announced; every descriptor is closed on error.
pub(crate) fn adopt(
    info: &Info,
    bytes: &[u8],
    mut fds: Vec<OwnedFd>,
) -> Result<PassedHandle, PipeError> {
    let (record, count) = HandleRecord::decode(bytes).map_err(|e| {
        bad(
            info,
            format!(
                "record refused: {e} ({} descriptors that came with it are closed)",
                fds.len()
            ),
        )
    })?;
    let what = format!("{} `{}`", record.kind.with_article(), record.name);
    let fd = match fds.len() {
        0 => {
            return Err(bad(
                info,
                format!("refused: the peer announced {what} but passed no descriptor with it"),
            ))
        }
        n if n != count => {
            return Err(bad(
                info,
                format!(
                    "refused: the peer announced {what} with {count} descriptor but passed {n} \
                 (all are closed)"
                ),
            ))
        }
        _ => fds.pop().expect("one descriptor"),
    };
    let d = crate::sys::fs::describe(fd.as_fd())
        .map_err(|e| PipeError::io(&info.name, "cannot look at a passed descriptor", e))?;
    let wrong_type = |expected: DescriptorType| {
        if d.kind == expected {
            return Ok(());
        }
        Err(bad(
            info,
            format!(
                "refused: the peer announced {what} but passed {} (it is closed)",
                d.kind.with_article()
            ),
        ))
    };
    wrong_type(match record.kind {
        HandleKind::Pipe => DescriptorType::Socket,
        _ => DescriptorType::Regular,
    })?;
    let access = record.access;
    if (access.can_read() && !d.readable) || (access.can_write() && !d.writable) {
        return Err(bad(
            info,
            format!(
                "refused: the peer announced {what} with {access} access but passed a descriptor \
             open {} (it is closed)",
                open_as(&d)
            ),
        ));
    }
    let object = match record.kind {
        HandleKind::Mapping => {
            if access == Access::Write {
                return Err(bad(
                    info,
                    format!(
                        "refused: the peer announced {what} write-only, which a mapping cannot be"
                    ),
                ));
            }
            if d.size < record.size {
                return Err(bad(
                    info,
                    format!(
                        "refused: the peer announced {what} of {} bytes but the file holds {}",
                        record.size, d.size
                    ),
                ));
            }
            Passed::Mapping(Mapping::from_passed(
                fd,
                record.name.clone(),
                record.size,
                access,
            ))
        }
        HandleKind::File => Passed::File(File::from(fd)),
        HandleKind::Mutex | HandleKind::Semaphore | HandleKind::Event => {
            if access != Access::ReadWrite || d.size < record.size {
                return Err(bad(
                    info,
                    format!(
                        "refused: the peer announced {what} with {access} access and {} bytes of \
                     state; a sync object passes read-write with its whole state ({} bytes \
                     came)",
                        record.size, d.size
                    ),
                ));
            }
            let (name, size) = (record.name.clone(), record.size);
            let refused = |e: crate::sync::SyncError| {
                bad(
                    info,
                    format!("refused: the peer passed {what} that is not one: {e}"),
                )
            };
            match record.kind {
                HandleKind::Mutex => {
                    Passed::Mutex(NamedMutex::from_passed(fd, size, name).map_err(refused)?)
                }
                HandleKind::Semaphore => {
                    Passed::Semaphore(NamedSemaphore::from_passed(fd, size, name).map_err(refused)?)
                }
                _ => Passed::Event(NamedEvent::from_passed(fd, size, name).map_err(refused)?),
            }
        }
        HandleKind::Pipe => {
            let peer = match crate::sys::is_stream_socket(&fd) {
                Ok(true) => crate::sys::peer_credentials(&fd).ok(),
                _ => None,
            };
            let (Some(peer), Some(facts)) = (peer, record.pipe) else {
                return Err(bad(
                    info,
                    format!(
                        "refused: the peer announced {what} but passed a socket that is not a \
                     connected Unix stream (it is closed)"
                    ),
                ));
            };
            let info = Info {
                name: record.name.clone(),
                pipe_type: facts.pipe_type,
                read_mode: match facts.pipe_type {
                    PipeMode::Byte => PipeMode::Byte,
                    PipeMode::Message => facts.read_mode,
                },
                access,
                max_message: facts.max_message,
                peer: Some(peer),
                is_client: facts.is_client,
                _slot: None,
            };
            let stream = Stream::unix(UnixStream::from(fd));
            Passed::Pipe(Box::new(PipeConnection::new(stream, info)))
        }
    };
    Ok(PassedHandle {
        name: record.name,
        access,
        object,
    })
}

/// The peer's credentials, when a connection can carry descriptors: a `local` one (a Unix
/// socket) whose data is not on `shared_memory`.
pub(crate) fn handle_peer(
    info: &Info,
    local: bool,
    shared_memory: bool,
) -> Result<PeerCredentials, PipeError> {
    if shared_memory {
        return Err(bad(
            info,
            "passing needs a connection whose data travels on the socket; this one uses \
             shared memory (open it without shared_memory)"
                .into(),
        ));
    }
    match (local, info.peer) {
        (true, Some(peer)) => Ok(peer),
        _ => Err(bad(
            info,
            "passing needs a local pipe (a Unix socket); a network connection cannot carry \
             descriptors"
                .into(),
        )),
    }
}

/// The handle frame (header and record) that announces `record`.
pub(crate) fn handle_frame(info: &Info, record: &HandleRecord) -> Result<Vec<u8>, PipeError> {
    let bytes = record
        .encode()
        .map_err(|e| bad(info, format!("cannot be sent: {e}")))?;
    let mut frame = wire::encode_handle_header(bytes.len())
        .map_err(|e| bad(info, format!("cannot be sent: {e}")))?
        .to_vec();
    frame.extend_from_slice(&bytes);
    Ok(frame)
}

/// The descriptors of the handle frame whose `record` was just taken from a reader that
/// still holds `buffered` bytes, out of `ledger`; those the peer attached to earlier
/// messages are closed (and logged).
pub(crate) fn claim_fds(
    info: &Info,
    ledger: &FdLedger,
    buffered: usize,
    record: &[u8],
) -> Vec<OwnedFd> {
    let len = (FRAME_HEADER_LEN + record.len()) as u64;
    let at = ledger.received() - buffered as u64 - len;
    let (fds, stray) = ledger.claim(at, len);
    if stray > 0 {
        tracing::warn!(
            pipe = %info.name,
            "closed {stray} descriptors the peer passed beside messages rather than handles"
        );
    }
    fds
}
