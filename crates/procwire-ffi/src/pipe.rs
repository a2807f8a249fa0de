//! Named pipes: servers, clients and connections.

use std::ffi::{c_char, CString};
use std::io::{Read, Write};
use std::time::Duration;

use procwire::pipe::{ClientOptions, Direction, PipeConnection, PipeOptions, PipeServer};
use procwire::security::{Access, AccessList, Principal};
use procwire::wire::PipeMode;

use crate::args::{
    bytes, bytes_mut, free_handle, give_bytes, give_handle, handle, handle_mut, put_optional, text,
    timeout, Out,
};
use crate::status::{run, run_value, Failure, ProcwireStatus};

/// Which way a pipe's data flows (`PIPE_ACCESS_*`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcwireDirection {
    /// Clients write, the server reads.
    Inbound = 1,
    /// The server writes, clients read.
    Outbound = 2,
    /// Both ways.
    Duplex = 3,
}

/// A pipe's type, or a client's read mode (`PIPE_TYPE_*`, `PIPE_READMODE_*`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcwirePipeMode {
    /// A stream of bytes.
    Byte = 0,
    /// Whole messages.
    Message = 1,
}

/// An access right (`PROCWIRE_ACCESS_NONE` grants nothing).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcwireAccess {
    /// Nothing.
    None = 0,
    /// Read only.
    Read = 1,
    /// Write only.
    Write = 2,
    /// Read and write.
    ReadWrite = 3,
}

/// How to create a pipe server: `CreateNamedPipe`'s arguments. Fill it with
/// `procwire_pipe_options_init`, then change what you need. Enumerated fields hold the
/// values of the enum named in their comment.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ProcwirePipeOptions {
    /// A `ProcwireDirection`; duplex by default.
    pub direction: u32,
    /// A `ProcwirePipeMode`: the pipe's type; message by default.
    pub mode: u32,
    /// The most clients connected at once; 0 (the default) for no limit.
    pub max_instances: u16,
    /// The kernel's receive buffer of each connection in bytes; 0 for the kernel's default.
    pub in_buffer_size: usize,
    /// The kernel's send buffer of each connection in bytes; 0 for the kernel's default.
    pub out_buffer_size: usize,
    /// The largest message either side may send (16 MiB by default).
    pub max_message_size: u32,
    /// A `ProcwireAccess` granted to every local user besides the owner; none by default.
    pub everyone: u32,
    /// A group id granted `group_access` (ignored while `group_access` is none).
    pub group_id: u32,
    /// A `ProcwireAccess` granted to the group `group_id`; none by default.
    pub group_access: u32,
    /// Offers local clients that ask for it the shared-memory data path.
    pub shared_memory: bool,
    /// The ring size of the shared-memory path in bytes; 0 for the default.
    pub shared_memory_ring_size: usize,
    /// Also listen on TCP at this address (`"127.0.0.1:4455"`); NULL (the default) not to.
    /// Borrowed for the create call only.
    pub listen_tcp: *const c_char,
    /// Allows a non-loopback `listen_tcp` without encryption (anyone on the network can
    /// read and forge the traffic).
    pub allow_plaintext_network: bool,
    /// How long a connecting client has to send its handshake, in milliseconds (5000).
    pub handshake_timeout_ms: u32,
}

/// How to connect to a pipe: `CreateFile` and `WaitNamedPipe`. Fill it with
/// `procwire_client_options_init`, then change what you need.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ProcwireClientOptions {
    /// A `ProcwireAccess`: what this client will do; read-write by default.
    pub access: u32,
    /// A `ProcwirePipeMode`: how reads behave; byte by default.
    pub read_mode: u32,
    /// How long the open may take in all, waiting while every instance is busy, in
    /// milliseconds (5000 by default; 0 fails at once when busy).
    pub timeout_ms: u32,
    /// The largest message this client accepts (16 MiB by default).
    pub max_message_size: u32,
    /// Asks a local server for the shared-memory data path.
    pub shared_memory: bool,
    /// Accept only a server run by this uid; -1 (the default) accepts any.
    pub require_owner: i64,
}

/// Who the peer process is, as the kernel reports it (`SO_PEERCRED`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcwirePeerCredentials {
    /// The peer's process id.
    pub pid: u32,
    /// The peer's effective user id.
    pub uid: u32,
    /// The peer's effective group id.
    pub gid: u32,
}

/// A pipe server (opaque): one name, many client connections.
pub struct ProcwirePipeServer {
    server: PipeServer,
    name: CString,
}

/// One connected end of a pipe (opaque), from `procwire_pipe_server_accept` or
/// `procwire_pipe_open`.
pub struct ProcwirePipeConnection {
    pub(crate) conn: PipeConnection,
    pub(crate) name: CString,
}

/// A name as a C string (a NUL inside, which no valid name has, is dropped).
pub(crate) fn c_name(name: &str) -> CString {
    CString::new(name.replace('\0', "")).unwrap_or_default()
}

fn invalid(argument: &str, value: u32, what: &str) -> Failure {
    Failure::new(
        ProcwireStatus::InvalidArgument,
        format!("the field `{argument}` is {value}, which is no {what}"),
    )
}

fn direction(value: u32) -> Result<Direction, Failure> {
    match value {
        1 => Ok(Direction::Inbound),
        2 => Ok(Direction::Outbound),
        3 => Ok(Direction::Duplex),
        v => Err(invalid("direction", v, "ProcwireDirection")),
    }
}

fn mode(value: u32, argument: &str) -> Result<PipeMode, Failure> {
    match value {
        0 => Ok(PipeMode::Byte),
        1 => Ok(PipeMode::Message),
        v => Err(invalid(argument, v, "ProcwirePipeMode")),
    }
}

/// An access right, or `None` for `PROCWIRE_ACCESS_NONE`.
pub(crate) fn access(value: u32, argument: &str) -> Result<Option<Access>, Failure> {
    match value {
        0 => Ok(None),
        1 => Ok(Some(Access::Read)),
        2 => Ok(Some(Access::Write)),
        3 => Ok(Some(Access::ReadWrite)),
        v => Err(invalid(argument, v, "ProcwireAccess")),
    }
}

/// The owner-only list plus what `everyone` and the group are granted.
pub(crate) fn access_list(everyone: u32, group: Option<(u32, u32)>) -> Result<AccessList, Failure> {
    let mut list = AccessList::owner_only();
    if let Some(a) = access(everyone, "everyone")? {
        list = list.everyone(a);
    }
    if let Some((gid, group_access)) = group {
        if let Some(a) = access(group_access, "group_access")? {
            list = list.grant(Principal::Group(gid), a);
        }
    }
    Ok(list)
}

/// Fills `options` with the defaults: duplex, message type, unlimited instances, 16 MiB
/// messages, owner-only access, no shared memory, no TCP.
///
/// Thread safety: any thread.
///
/// # Safety
///
/// `options` is NULL or valid for writing a `ProcwirePipeOptions`.
#[no_mangle]
pub unsafe extern "C" fn procwire_pipe_options_init(
    options: *mut ProcwirePipeOptions,
) -> ProcwireStatus {
    run(|| {
        let out = Out::new(options, "options")?;
        let value = ProcwirePipeOptions {
            direction: ProcwireDirection::Duplex as u32,
            mode: ProcwirePipeMode::Message as u32,
            max_instances: 0,
            in_buffer_size: 0,
            out_buffer_size: 0,
            max_message_size: procwire::pipe::DEFAULT_MAX_MESSAGE,
            everyone: ProcwireAccess::None as u32,
            group_id: 0,
            group_access: ProcwireAccess::None as u32,
            shared_memory: false,
            shared_memory_ring_size: 0,
            listen_tcp: std::ptr::null(),
            allow_plaintext_network: false,
            handshake_timeout_ms: 5000,
        };
        // SAFETY: the caller promises `options` is valid for a write.
        unsafe { out.put(value) };
        Ok(())
    })
}

/// Creates the pipe server `name` (`"HelloWorld"`, `"\\\\.\\pipe\\HelloWorld"`,
/// `"Global\\Jobs"`) and starts accepting clients in the background.
///
/// `options` may be NULL for the defaults of `procwire_pipe_options_init`.
/// Ownership: `*server` is the caller's; free it with `procwire_pipe_server_free`, which
/// removes the name. Thread safety: any thread.
///
/// Errors: ALREADY_EXISTS when a live server has the name, INVALID_NAME, WRONG_KIND,
/// INVALID_ARGUMENT for a field out of range, IO.
///
/// # Safety
///
/// `name` is a NUL-terminated string; `options` is NULL or a valid options struct whose
/// `listen_tcp` is NULL or a NUL-terminated string; `server` is valid for a write.
#[no_mangle]
pub unsafe extern "C" fn procwire_pipe_server_create(
    name: *const c_char,
    options: *const ProcwirePipeOptions,
    server: *mut *mut ProcwirePipeServer,
) -> ProcwireStatus {
    run(|| {
        // SAFETY: the caller promises a NUL-terminated string.
        let name = unsafe { text(name, "name") }?;
        let out = Out::new(server, "server")?;
        let mut builder = PipeOptions::new();
        // SAFETY: the caller promises NULL or a valid options struct.
        if let Some(o) = unsafe { options.as_ref() } {
            builder = builder
                .direction(direction(o.direction)?)
                .mode(mode(o.mode, "mode")?)
                .max_message_size(o.max_message_size)
                .access_list(access_list(o.everyone, Some((o.group_id, o.group_access)))?)
                .handshake_timeout(Duration::from_millis(o.handshake_timeout_ms.into()));
            if o.max_instances > 0 {
                builder = builder.max_instances(o.max_instances);
            }
            if o.in_buffer_size > 0 || o.out_buffer_size > 0 {
                builder = builder.buffer_sizes(o.in_buffer_size, o.out_buffer_size);
            }
            if o.shared_memory {
                builder = match o.shared_memory_ring_size {
                    0 => builder.shared_memory(true),
                    size => builder.shared_memory_ring_size(size),
                };
            }
            if !o.listen_tcp.is_null() {
                // SAFETY: not NULL, and the caller promises a NUL-terminated string.
                let addr = unsafe { text(o.listen_tcp, "listen_tcp") }?;
                let addr = addr.parse().map_err(|e| {
                    Failure::new(
                        ProcwireStatus::InvalidArgument,
                        format!("`listen_tcp` is `{addr}`, not an address and port: {e}"),
                    )
                })?;
                builder = builder.listen_tcp(addr);
            }
            if o.allow_plaintext_network {
                builder = builder.allow_plaintext_network();
            }
        }
        let created = builder.create(name)?;
        let name = c_name(created.name());
        // SAFETY: `server` is valid for a write (the caller's promise).
        unsafe {
            give_handle(
                out,
                ProcwirePipeServer {
                    server: created,
                    name,
                },
            )
        };
        Ok(())
    })
}

/// The server's pipe name, as the library spells it.
///
/// Ownership: the string belongs to the server and lives as long as it. NULL when
/// `server` is NULL. Thread safety: any thread.
///
/// # Safety
///
/// `server` is NULL or a live server handle.
#[no_mangle]
pub unsafe extern "C" fn procwire_pipe_server_name(
    server: *const ProcwirePipeServer,
) -> *const c_char {
    run_value(std::ptr::null(), || {
        // SAFETY: the caller promises NULL or a live handle.
        Ok(unsafe { handle(server, "server") }?.name.as_ptr())
    })
}

/// Waits up to `timeout_ms` for the next client (`ConnectNamedPipe`).
///
/// Ownership: `*connection` is the caller's; free it with `procwire_pipe_connection_free`.
/// Thread safety: several threads may accept on one server at once; each client goes to
/// one of them.
///
/// Errors: TIMEOUT, DISCONNECTED when the server's listener has stopped.
///
/// # Safety
///
/// `server` is NULL or a live server handle; `connection` is valid for a write.
#[no_mangle]
pub unsafe extern "C" fn procwire_pipe_server_accept(
    server: *const ProcwirePipeServer,
    timeout_ms: i64,
    connection: *mut *mut ProcwirePipeConnection,
) -> ProcwireStatus {
    run(|| {
        // SAFETY: the caller promises NULL or a live handle.
        let server = unsafe { handle(server, "server") }?;
        let out = Out::new(connection, "connection")?;
        let wait = timeout(timeout_ms, "timeout_ms")?;
        let conn = match wait {
            None => server.server.accept()?,
            Some(t) => server.server.accept_timeout(t)?,
        };
        let name = c_name(conn.name());
        // SAFETY: `connection` is valid for a write (the caller's promise).
        unsafe { give_handle(out, ProcwirePipeConnection { conn, name }) };
        Ok(())
    })
}

/// Stops the server and removes its name. Connections already accepted stay usable.
/// NULL is ignored.
///
/// Ownership: takes the handle; it is not used again. Thread safety: no other thread may
/// use the server during or after the call.
///
/// # Safety
///
/// `server` is NULL or a live server handle, not used again.
#[no_mangle]
pub unsafe extern "C" fn procwire_pipe_server_free(
    server: *mut ProcwirePipeServer,
) -> ProcwireStatus {
    // SAFETY: the caller's promise, passed on.
    unsafe { free_handle(server) }
}

/// Fills `options` with the client defaults: read-write access, byte read mode, a 5 s
/// timeout, 16 MiB messages, no shared memory, any owner.
///
/// Thread safety: any thread.
///
/// # Safety
///
/// `options` is NULL or valid for writing a `ProcwireClientOptions`.
#[no_mangle]
pub unsafe extern "C" fn procwire_client_options_init(
    options: *mut ProcwireClientOptions,
) -> ProcwireStatus {
    run(|| {
        let out = Out::new(options, "options")?;
        let value = ProcwireClientOptions {
            access: ProcwireAccess::ReadWrite as u32,
            read_mode: ProcwirePipeMode::Byte as u32,
            timeout_ms: 5000,
            max_message_size: procwire::pipe::DEFAULT_MAX_MESSAGE,
            shared_memory: false,
            require_owner: -1,
        };
        // SAFETY: the caller promises `options` is valid for a write.
        unsafe { out.put(value) };
        Ok(())
    })
}

/// Connects to the pipe `name` (`CreateFile`), waiting while every instance is busy for
/// up to the options' timeout (`WaitNamedPipe`). `options` may be NULL for the defaults of
/// `procwire_client_options_init`.
///
/// Ownership: `*connection` is the caller's; free it with `procwire_pipe_connection_free`.
/// Thread safety: any thread.
///
/// Errors: NOT_FOUND, BUSY (still busy at the timeout), ACCESS_DENIED, MODE_MISMATCH,
/// UNTRUSTED_SERVER, WRONG_KIND, INVALID_NAME, TIMEOUT, PROTOCOL, IO.
///
/// # Safety
///
/// `name` is a NUL-terminated string; `options` is NULL or a valid options struct;
/// `connection` is valid for a write.
#[no_mangle]
pub unsafe extern "C" fn procwire_pipe_open(
    name: *const c_char,
    options: *const ProcwireClientOptions,
    connection: *mut *mut ProcwirePipeConnection,
) -> ProcwireStatus {
    run(|| {
        // SAFETY: the caller promises a NUL-terminated string.
        let name = unsafe { text(name, "name") }?;
        let out = Out::new(connection, "connection")?;
        let mut builder = ClientOptions::new();
        // SAFETY: the caller promises NULL or a valid options struct.
        if let Some(o) = unsafe { options.as_ref() } {
            let wanted = access(o.access, "access")?.ok_or_else(|| {
                Failure::new(
                    ProcwireStatus::InvalidArgument,
                    "the field `access` is PROCWIRE_ACCESS_NONE; a client reads, writes or both",
                )
            })?;
            builder = builder
                .access(wanted)
                .read_mode(mode(o.read_mode, "read_mode")?)
                .timeout(Duration::from_millis(o.timeout_ms.into()))
                .max_message_size(o.max_message_size)
                .shared_memory(o.shared_memory);
            if o.require_owner >= 0 {
                let uid = u32::try_from(o.require_owner).map_err(|_| {
                    Failure::new(
                        ProcwireStatus::InvalidArgument,
                        format!(
                            "the field `require_owner` is {}, not a uid",
                            o.require_owner
                        ),
                    )
                })?;
                builder = builder.require_owner(uid);
            }
        }
        let conn = builder.open(name)?;
        let name = c_name(conn.name());
        // SAFETY: `connection` is valid for a write (the caller's promise).
        unsafe { give_handle(out, ProcwirePipeConnection { conn, name }) };
        Ok(())
    })
}

/// Sends one message (message-type pipe) or these bytes (byte-type pipe), all of it.
///
/// Thread safety: a connection is used by one thread at a time (this holds for every
/// function taking a connection, except `procwire_pipe_connection_name`).
///
/// Errors: MESSAGE_TOO_LARGE before anything is sent, NOT_PERMITTED on a read-only end,
/// DISCONNECTED.
///
/// # Safety
///
/// `connection` is NULL or a live connection; `data` is valid for reading `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn procwire_pipe_send(
    connection: *mut ProcwirePipeConnection,
    data: *const u8,
    len: usize,
) -> ProcwireStatus {
    run(|| {
        // SAFETY: the caller promises NULL or a live connection used by this thread alone.
        let c = unsafe { handle_mut(connection, "connection") }?;
        // SAFETY: the caller promises `len` readable bytes at `data`.
        let data = unsafe { bytes(data, len, "data") }?;
        c.conn.send(data)?;
        Ok(())
    })
}

/// Receives the next whole message, waiting up to `timeout_ms`. On a timeout nothing is
/// lost.
///
/// Ownership: `*data` (`*len` bytes) is the caller's; free it with `procwire_bytes_free`.
/// Thread safety: as `procwire_pipe_send`.
///
/// Errors: TIMEOUT, DISCONNECTED when the peer closed the pipe, MESSAGE_TOO_LARGE when the
/// peer announced a message over the maximum, MODE_MISMATCH on a byte-type pipe.
///
/// # Safety
///
/// `connection` is NULL or a live connection; `data` and `len` are valid for a write.
#[no_mangle]
pub unsafe extern "C" fn procwire_pipe_recv(
    connection: *mut ProcwirePipeConnection,
    timeout_ms: i64,
    data: *mut *mut u8,
    len: *mut usize,
) -> ProcwireStatus {
    run(|| {
        // SAFETY: the caller promises NULL or a live connection used by this thread alone.
        let c = unsafe { handle_mut(connection, "connection") }?;
        let out_data = Out::new(data, "data")?;
        let out_len = Out::new(len, "len")?;
        let message = match timeout(timeout_ms, "timeout_ms")? {
            None => c.conn.recv()?,
            Some(t) => c.conn.recv_timeout(t)?,
        };
        let (ptr, n) = give_bytes(message);
        // SAFETY: both are valid for a write (the caller's promise).
        unsafe {
            out_data.put(ptr);
            out_len.put(n);
        }
        Ok(())
    })
}

/// Receives into the caller's buffer: the next message, or the rest of one a previous call
/// could not fit (`ERROR_MORE_DATA`). Waits as long as it takes. `*len` gets the bytes
/// written; `*complete` (may be NULL) whether that was the end of the message.
///
/// Thread safety: as `procwire_pipe_send`.
///
/// # Safety
///
/// `connection` is NULL or a live connection; `buf` is valid for writing `capacity`
/// bytes; `len` is valid for a write; `complete` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn procwire_pipe_recv_into(
    connection: *mut ProcwirePipeConnection,
    buf: *mut u8,
    capacity: usize,
    len: *mut usize,
    complete: *mut bool,
) -> ProcwireStatus {
    run(|| {
        // SAFETY: the caller promises NULL or a live connection used by this thread alone.
        let c = unsafe { handle_mut(connection, "connection") }?;
        // SAFETY: the caller promises `capacity` writable bytes at `buf`.
        let buf = unsafe { bytes_mut(buf, capacity, "buf") }?;
        let out_len = Out::new(len, "len")?;
        let part = c.conn.recv_into(buf)?;
        // SAFETY: `len` is valid for a write, `complete` NULL or valid (the caller's
        // promise).
        unsafe {
            out_len.put(part.len);
            put_optional(complete, part.complete);
        }
        Ok(())
    })
}

/// Reads bytes as `ReadFile` does on a byte stream: at least one, at most `capacity`,
/// waiting for them; `*len` is 0 when the peer closed the pipe. On a message-type pipe in
/// message read mode a read stops at the end of a message.
///
/// Thread safety: as `procwire_pipe_send`.
///
/// # Safety
///
/// As `procwire_pipe_recv_into`.
#[no_mangle]
pub unsafe extern "C" fn procwire_pipe_read(
    connection: *mut ProcwirePipeConnection,
    buf: *mut u8,
    capacity: usize,
    len: *mut usize,
) -> ProcwireStatus {
    run(|| {
        // SAFETY: the caller promises NULL or a live connection used by this thread alone.
        let c = unsafe { handle_mut(connection, "connection") }?;
        // SAFETY: the caller promises `capacity` writable bytes at `buf`.
        let buf = unsafe { bytes_mut(buf, capacity, "buf") }?;
        let out_len = Out::new(len, "len")?;
        let n = c.conn.read(buf).map_err(|e| io_failure(&c.conn, e))?;
        // SAFETY: `len` is valid for a write (the caller's promise).
        unsafe { out_len.put(n) };
        Ok(())
    })
}

/// Writes bytes as `WriteFile` does: on a byte-type pipe some of them (`*written` says how
/// many, at least one), on a message-type pipe all of them as one message.
///
/// Thread safety: as `procwire_pipe_send`.
///
/// # Safety
///
/// `connection` is NULL or a live connection; `data` is valid for reading `len` bytes;
/// `written` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn procwire_pipe_write(
    connection: *mut ProcwirePipeConnection,
    data: *const u8,
    len: usize,
    written: *mut usize,
) -> ProcwireStatus {
    run(|| {
        // SAFETY: the caller promises NULL or a live connection used by this thread alone.
        let c = unsafe { handle_mut(connection, "connection") }?;
        // SAFETY: the caller promises `len` readable bytes at `data`.
        let data = unsafe { bytes(data, len, "data") }?;
        let n = c.conn.write(data).map_err(|e| io_failure(&c.conn, e))?;
        // SAFETY: `written` is NULL or valid for a write (the caller's promise).
        unsafe { put_optional(written, n) };
        Ok(())
    })
}

/// The failure behind an `io::Error` from `Read`/`Write`: the pipe error it carries, or an
/// I/O failure.
fn io_failure(conn: &PipeConnection, e: std::io::Error) -> Failure {
    let kind = e.kind();
    match e
        .into_inner()
        .map(|inner| inner.downcast::<procwire::pipe::PipeError>())
    {
        Some(Ok(pipe)) => Failure::from(*pipe),
        Some(Err(other)) => Failure::new(
            ProcwireStatus::Io,
            format!("pipe `{}`: {other}", conn.name()),
        ),
        None => Failure::new(
            if kind == std::io::ErrorKind::TimedOut {
                ProcwireStatus::Timeout
            } else {
                ProcwireStatus::Io
            },
            format!("pipe `{}`: {kind}", conn.name()),
        ),
    }
}

/// Says that this side will send no more (the peer's reads then end); receiving goes on.
///
/// Thread safety: as `procwire_pipe_send`.
///
/// # Safety
///
/// `connection` is NULL or a live connection.
#[no_mangle]
pub unsafe extern "C" fn procwire_pipe_finish_sending(
    connection: *mut ProcwirePipeConnection,
) -> ProcwireStatus {
    run(|| {
        // SAFETY: the caller promises NULL or a live connection.
        let c = unsafe { handle(connection, "connection") }?;
        c.conn.finish_sending()?;
        Ok(())
    })
}

/// The peer's credentials (`GetNamedPipeClientProcessId`). Returns false (and leaves
/// `*credentials` alone) when they are unknown: a peer over TCP, or a NULL argument.
///
/// Thread safety: as `procwire_pipe_send`.
///
/// # Safety
///
/// `connection` is NULL or a live connection; `credentials` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn procwire_pipe_peer_credentials(
    connection: *const ProcwirePipeConnection,
    credentials: *mut ProcwirePeerCredentials,
) -> bool {
    run_value(false, || {
        // SAFETY: the caller promises NULL or a live connection.
        let c = unsafe { handle(connection, "connection") }?;
        let out = Out::new(credentials, "credentials")?;
        let Some(peer) = c.conn.peer_credentials() else {
            return Ok(false);
        };
        // SAFETY: `credentials` is valid for a write (the caller's promise).
        unsafe {
            out.put(ProcwirePeerCredentials {
                pid: peer.pid,
                uid: peer.uid,
                gid: peer.gid,
            })
        };
        Ok(true)
    })
}

/// Whether the connection's data travels through shared memory. False for NULL.
///
/// # Safety
///
/// `connection` is NULL or a live connection.
#[no_mangle]
pub unsafe extern "C" fn procwire_pipe_is_shared_memory(
    connection: *const ProcwirePipeConnection,
) -> bool {
    run_value(false, || {
        // SAFETY: the caller promises NULL or a live connection.
        Ok(unsafe { handle(connection, "connection") }?
            .conn
            .is_shared_memory())
    })
}

/// The connection's pipe name. Ownership: belongs to the connection and lives as long as
/// it; NULL when `connection` is NULL. Thread safety: any thread.
///
/// # Safety
///
/// `connection` is NULL or a live connection.
#[no_mangle]
pub unsafe extern "C" fn procwire_pipe_connection_name(
    connection: *const ProcwirePipeConnection,
) -> *const c_char {
    run_value(std::ptr::null(), || {
        // SAFETY: the caller promises NULL or a live connection.
        Ok(unsafe { handle(connection, "connection") }?.name.as_ptr())
    })
}

/// Disconnects (`DisconnectNamedPipe`/`CloseHandle`) and frees the connection; the peer's
/// next receive reports DISCONNECTED after what was sent. NULL is ignored.
///
/// Ownership: takes the handle. Thread safety: no other thread may use it during or after.
///
/// # Safety
///
/// `connection` is NULL or a live connection, not used again.
#[no_mangle]
pub unsafe extern "C" fn procwire_pipe_connection_free(
    connection: *mut ProcwirePipeConnection,
) -> ProcwireStatus {
    // SAFETY: the caller's promise, passed on.
    unsafe { free_handle(connection) }
}

/// Whether a live server has the pipe `name` on this machine.
///
/// Thread safety: any thread.
///
/// # Safety
///
/// `name` is a NUL-terminated string; `exists` is valid for a write.
#[no_mangle]
pub unsafe extern "C" fn procwire_pipe_exists(
    name: *const c_char,
    exists: *mut bool,
) -> ProcwireStatus {
    run(|| {
        // SAFETY: the caller promises a NUL-terminated string.
        let name = unsafe { text(name, "name") }?;
        let out = Out::new(exists, "exists")?;
        let found = procwire::pipe::exists(name)?;
        // SAFETY: `exists` is valid for a write (the caller's promise).
        unsafe { out.put(found) };
        Ok(())
    })
}
