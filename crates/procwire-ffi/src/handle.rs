//! Handle passing (`DuplicateHandle`): sending an open mapping, file, pipe connection,
//! mutex, semaphore or event to the process at the other end of a local pipe connection,
//! and receiving one.
//!
//! A send takes the object's handle, borrowed for the call; the sender keeps it. A receive
//! gives a [`ProcwirePassedHandle`]: ask its kind, then take the object out of it as the
//! matching C handle (`procwire_passed_handle_into_mapping` and the rest), and free it.
//! Only local, message-type pipe connections that carry their data on the socket can pass
//! handles (not TCP, not shared memory); the sender refuses a peer whose user could not
//! open the object itself (docs/security.md).

use std::ffi::{c_char, c_int, CString};
use std::fs::File;
use std::mem::ManuallyDrop;
use std::os::fd::{FromRawFd, IntoRawFd};

use procwire::pipe::{HandleRef, PassedHandle, PipeConnection};
use procwire::wire::HandleKind;

use crate::args::{free_handle, give_handle, handle, handle_mut, timeout, Out};
use crate::mapping::ProcwireMapping;
use crate::pipe::{access, c_name, ProcwireAccess, ProcwirePipeConnection};
use crate::status::{run, run_value, Failure, ProcwireStatus};
use crate::sync::{ProcwireEvent, ProcwireMutex, ProcwireSemaphore};

/// What kind of object a passed handle holds.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcwireHandleKind {
    /// No object: a NULL handle, one whose object was already taken out, or a kind this
    /// version of the C ABI does not know.
    None = 0,
    /// A mapping: take it with `procwire_passed_handle_into_mapping`.
    Mapping = 1,
    /// A regular file: take its descriptor with `procwire_passed_handle_into_file`.
    File = 2,
    /// A pipe connection: take it with `procwire_passed_handle_into_pipe`.
    Pipe = 3,
    /// A named mutex: take it with `procwire_passed_handle_into_mutex`.
    Mutex = 4,
    /// A named semaphore: take it with `procwire_passed_handle_into_semaphore`.
    Semaphore = 5,
    /// A named event: take it with `procwire_passed_handle_into_event`.
    Event = 6,
}

impl From<HandleKind> for ProcwireHandleKind {
    fn from(kind: HandleKind) -> ProcwireHandleKind {
        match kind {
            HandleKind::Mapping => ProcwireHandleKind::Mapping,
            HandleKind::File => ProcwireHandleKind::File,
            HandleKind::Pipe => ProcwireHandleKind::Pipe,
            HandleKind::Mutex => ProcwireHandleKind::Mutex,
            HandleKind::Semaphore => ProcwireHandleKind::Semaphore,
            HandleKind::Event => ProcwireHandleKind::Event,
            _ => ProcwireHandleKind::None,
        }
    }
}

/// A handle the peer passed (opaque), from `procwire_pipe_recv_handle`: the object until
/// it is taken out, its name and the access it came with.
pub struct ProcwirePassedHandle {
    passed: Option<PassedHandle>,
    name: CString,
}

/// Sends `object` over `c` with `access_wanted` (a `ProcwireAccess`; none for the access
/// the object's handle has).
fn pass(c: &mut PipeConnection, object: HandleRef<'_>, access_wanted: u32) -> Result<(), Failure> {
    match access(access_wanted, "access")? {
        None => c.send_handle(object)?,
        Some(a) => c.send_handle_with_access(object, a)?,
    }
    Ok(())
}

/// Passes the mapping to the process at the other end of `connection`
/// (`DuplicateHandle`), which receives it with `procwire_pipe_recv_handle`, in order among
/// the messages. `access` is PROCWIRE_ACCESS_NONE to pass the access this handle has, or
/// PROCWIRE_ACCESS_READ to pass less (a descriptor opened anew, read-only).
///
/// Ownership: `mapping` stays the caller's, and usable. Thread safety: as
/// `procwire_pipe_send` for the connection; the mapping may be used by other threads.
///
/// Errors: ACCESS_DENIED before anything is sent when the peer's user could not open the
/// mapping itself; NOT_PERMITTED for more access than this handle has (or write-only);
/// BAD_HANDLE when the connection cannot carry handles (TCP, shared memory);
/// MODE_MISMATCH on a byte-type pipe; INVALID_ARGUMENT for an `access` that is no
/// `ProcwireAccess`; otherwise as `procwire_pipe_send`.
///
/// # Safety
///
/// `connection` is NULL or a live connection; `mapping` is NULL or a live mapping.
#[no_mangle]
pub unsafe extern "C" fn procwire_pipe_send_mapping(
    connection: *mut ProcwirePipeConnection,
    mapping: *const ProcwireMapping,
    access: u32,
) -> ProcwireStatus {
    run(|| {
        // SAFETY: the caller promises NULL or a live connection used by this thread alone.
        let c = unsafe { handle_mut(connection, "connection") }?;
        // SAFETY: the caller promises NULL or a live mapping.
        let m = unsafe { handle(mapping, "mapping") }?;
        pass(&mut c.conn, HandleRef::Mapping(&m.mapping), access)
    })
}

/// Passes the open regular file `fd` as `procwire_pipe_send_mapping` passes a mapping: the
/// peer gets a descriptor of the same open file (sharing its offset), or with `access`
/// PROCWIRE_ACCESS_READ or PROCWIRE_ACCESS_WRITE one opened anew with only that access.
///
/// Ownership: `fd` stays the caller's, open. Thread safety: as `procwire_pipe_send`.
///
/// Errors: BAD_HANDLE when `fd` is not a regular file (or as for a mapping);
/// INVALID_ARGUMENT for a negative `fd`; NOT_PERMITTED for more access than `fd` is open
/// with; otherwise as `procwire_pipe_send_mapping`.
///
/// # Safety
///
/// `connection` is NULL or a live connection; `fd` is negative or an open descriptor that
/// stays open for the call.
#[no_mangle]
pub unsafe extern "C" fn procwire_pipe_send_file(
    connection: *mut ProcwirePipeConnection,
    fd: c_int,
    access: u32,
) -> ProcwireStatus {
    run(|| {
        // SAFETY: the caller promises NULL or a live connection used by this thread alone.
        let c = unsafe { handle_mut(connection, "connection") }?;
        if fd < 0 {
            return Err(Failure::new(
                ProcwireStatus::InvalidArgument,
                format!("the argument `fd` is {fd}; pass an open file descriptor"),
            ));
        }
        // SAFETY: the caller promises `fd` is an open descriptor for the call. The `File`
        // only borrows it: `ManuallyDrop` never drops it, so the descriptor is not closed
        // and stays the caller's.
        let file = ManuallyDrop::new(unsafe { File::from_raw_fd(fd) });
        pass(&mut c.conn, HandleRef::File(&file), access)
    })
}

/// Passes the pipe connection `passed` over `connection`: the peer gets a connection that
/// talks to the same other end. `access` is PROCWIRE_ACCESS_NONE for the access `passed`
/// has, or less (PROCWIRE_ACCESS_READ, PROCWIRE_ACCESS_WRITE), kept in what is sent. Let
/// one process use the connection afterwards: two that both read split the messages;
/// free `passed` once it is sent, as after `DuplicateHandle` with `DUPLICATE_CLOSE_SOURCE`.
///
/// Ownership: `passed` stays the caller's. Thread safety: as `procwire_pipe_send`, for
/// both connections.
///
/// Errors: INVALID_ARGUMENT when `passed` is `connection` itself; BAD_HANDLE when `passed`
/// is not a local connection on its socket, or has data received and not yet taken;
/// ACCESS_DENIED when the peer is another user (a connection passes only to its own user
/// or root); otherwise as `procwire_pipe_send_mapping`.
///
/// # Safety
///
/// `connection` and `passed` are each NULL or a live connection.
#[no_mangle]
pub unsafe extern "C" fn procwire_pipe_send_pipe(
    connection: *mut ProcwirePipeConnection,
    passed: *const ProcwirePipeConnection,
    access: u32,
) -> ProcwireStatus {
    run(|| {
        if std::ptr::eq(connection, passed) && !connection.is_null() {
            return Err(Failure::new(
                ProcwireStatus::InvalidArgument,
                "the arguments `connection` and `passed` are the same connection; a \
                 connection cannot pass itself",
            ));
        }
        // SAFETY: the caller promises NULL or a live connection used by this thread alone;
        // it is not `passed` (checked above), so the two references do not alias.
        let c = unsafe { handle_mut(connection, "connection") }?;
        // SAFETY: the caller promises NULL or a live connection.
        let p = unsafe { handle(passed, "passed") }?;
        pass(&mut c.conn, HandleRef::Pipe(&p.conn), access)
    })
}

/// Passes the named mutex over `connection`, read-write (locking it there excludes
/// holders here). A lock held through `mutex` stays held by this thread.
///
/// Ownership: `mutex` stays the caller's. Thread safety: as `procwire_pipe_send` for the
/// connection; the mutex may be used by other threads.
///
/// Errors: as `procwire_pipe_send_mapping`.
///
/// # Safety
///
/// `connection` is NULL or a live connection; `mutex` is NULL or a live mutex handle.
#[no_mangle]
pub unsafe extern "C" fn procwire_pipe_send_mutex(
    connection: *mut ProcwirePipeConnection,
    mutex: *const ProcwireMutex,
) -> ProcwireStatus {
    run(|| {
        // SAFETY: the caller promises NULL or a live connection used by this thread alone.
        let c = unsafe { handle_mut(connection, "connection") }?;
        // SAFETY: the caller promises NULL or a live mutex handle.
        let m = unsafe { handle(mutex, "mutex") }?;
        pass(&mut c.conn, HandleRef::Mutex(&m.mutex), 0)
    })
}

/// Passes the named semaphore over `connection`, read-write (the peer takes and releases
/// units of the same count).
///
/// Ownership, thread safety and errors: as `procwire_pipe_send_mutex`.
///
/// # Safety
///
/// `connection` is NULL or a live connection; `semaphore` is NULL or a live semaphore
/// handle.
#[no_mangle]
pub unsafe extern "C" fn procwire_pipe_send_semaphore(
    connection: *mut ProcwirePipeConnection,
    semaphore: *const ProcwireSemaphore,
) -> ProcwireStatus {
    run(|| {
        // SAFETY: the caller promises NULL or a live connection used by this thread alone.
        let c = unsafe { handle_mut(connection, "connection") }?;
        // SAFETY: the caller promises NULL or a live semaphore handle.
        let s = unsafe { handle(semaphore, "semaphore") }?;
        pass(&mut c.conn, HandleRef::Semaphore(&s.semaphore), 0)
    })
}

/// Passes the named event over `connection`, read-write (the peer sets, resets and waits
/// on the same state).
///
/// Ownership, thread safety and errors: as `procwire_pipe_send_mutex`.
///
/// # Safety
///
/// `connection` is NULL or a live connection; `event` is NULL or a live event handle.
#[no_mangle]
pub unsafe extern "C" fn procwire_pipe_send_event(
    connection: *mut ProcwirePipeConnection,
    event: *const ProcwireEvent,
) -> ProcwireStatus {
    run(|| {
        // SAFETY: the caller promises NULL or a live connection used by this thread alone.
        let c = unsafe { handle_mut(connection, "connection") }?;
        // SAFETY: the caller promises NULL or a live event handle.
        let e = unsafe { handle(event, "event") }?;
        pass(&mut c.conn, HandleRef::Event(&e.event), 0)
    })
}

/// Receives the next frame as a passed handle, waiting up to `timeout_ms`. `*kind` (may be
/// NULL) gets what kind of object it holds; take it out with the matching
/// `procwire_passed_handle_into_*`.
///
/// Ownership: `*handle` is the caller's; free it with `procwire_passed_handle_free`
/// (which closes an object not taken out). Thread safety: as `procwire_pipe_send`.
///
/// Errors: WRONG_FRAME when the next frame is a message (nothing is taken: receive it with
/// `procwire_pipe_recv`); BAD_HANDLE when the peer announced a handle and passed no
/// descriptor, another kind of one or less access than announced (the frame is taken, what
/// came is closed, the connection stays usable), or when the connection cannot carry
/// handles; TIMEOUT; otherwise as `procwire_pipe_recv`.
///
/// # Safety
///
/// `connection` is NULL or a live connection; `kind` is NULL or valid for a write;
/// `handle` is valid for a write.
#[no_mangle]
pub unsafe extern "C" fn procwire_pipe_recv_handle(
    connection: *mut ProcwirePipeConnection,
    timeout_ms: i64,
    kind: *mut ProcwireHandleKind,
    handle: *mut *mut ProcwirePassedHandle,
) -> ProcwireStatus {
    run(|| {
        // SAFETY: the caller promises NULL or a live connection used by this thread alone.
        let c = unsafe { handle_mut(connection, "connection") }?;
        let out = Out::new(handle, "handle")?;
        let passed = match timeout(timeout_ms, "timeout_ms")? {
            None => c.conn.recv_handle()?,
            Some(t) => c.conn.recv_handle_timeout(t)?,
        };
        let what = ProcwireHandleKind::from(passed.kind());
        let name = c_name(passed.name());
        // SAFETY: `kind` is NULL or valid for a write, `handle` valid for a write (the
        // caller's promise).
        unsafe {
            crate::args::put_optional(kind, what);
            give_handle(
                out,
                ProcwirePassedHandle {
                    passed: Some(passed),
                    name,
                },
            );
        }
        Ok(())
    })
}

/// What kind of object the passed handle holds; PROCWIRE_HANDLE_KIND_NONE when `handle` is
/// NULL or its object was taken out.
///
/// # Safety
///
/// `handle` is NULL or a live passed handle.
#[no_mangle]
pub unsafe extern "C" fn procwire_passed_handle_kind(
    handle: *const ProcwirePassedHandle,
) -> ProcwireHandleKind {
    run_value(ProcwireHandleKind::None, || {
        // SAFETY: the caller promises NULL or a live handle.
        let h = unsafe { crate::args::handle(handle, "handle") }?;
        Ok(h.passed
            .as_ref()
            .map_or(ProcwireHandleKind::None, |p| p.kind().into()))
    })
}

/// The object's name as the sender knows it ("" for a file). Ownership: belongs to the
/// passed handle and lives as long as it; NULL when `handle` is NULL.
///
/// # Safety
///
/// `handle` is NULL or a live passed handle.
#[no_mangle]
pub unsafe extern "C" fn procwire_passed_handle_name(
    handle: *const ProcwirePassedHandle,
) -> *const c_char {
    run_value(std::ptr::null(), || {
        // SAFETY: the caller promises NULL or a live handle.
        Ok(unsafe { crate::args::handle(handle, "handle") }?
            .name
            .as_ptr())
    })
}

/// The access the object came with (what the receiver may do with it);
/// PROCWIRE_ACCESS_NONE when `handle` is NULL or its object was taken out.
///
/// # Safety
///
/// `handle` is NULL or a live passed handle.
#[no_mangle]
pub unsafe extern "C" fn procwire_passed_handle_access(
    handle: *const ProcwirePassedHandle,
) -> ProcwireAccess {
    run_value(ProcwireAccess::None, || {
        // SAFETY: the caller promises NULL or a live handle.
        let h = unsafe { crate::args::handle(handle, "handle") }?;
        Ok(match h.passed.as_ref().map(|p| p.access()) {
            None => ProcwireAccess::None,
            Some(procwire::security::Access::Read) => ProcwireAccess::Read,
            Some(procwire::security::Access::Write) => ProcwireAccess::Write,
            Some(_) => ProcwireAccess::ReadWrite,
        })
    })
}

/// The object out of the passed handle, when it is of the kind `wanted` (which
/// `function` takes); otherwise the handle is left as it was.
///
/// # Safety
///
/// `handle` is NULL or a live passed handle, used by this thread alone.
unsafe fn take(
    handle: *mut ProcwirePassedHandle,
    wanted: HandleKind,
    function: &str,
) -> Result<PassedHandle, Failure> {
    // SAFETY: the caller's promise, passed on.
    let h = unsafe { handle_mut(handle, "handle") }?;
    let Some(passed) = h.passed.as_ref() else {
        return Err(Failure::new(
            ProcwireStatus::InvalidArgument,
            "the passed handle's object was already taken out; free the handle with \
             procwire_passed_handle_free",
        ));
    };
    let kind = passed.kind();
    if kind != wanted {
        let named = match passed.name() {
            "" => String::new(),
            name => format!(" `{name}`"),
        };
        let right = match kind {
            HandleKind::Mapping => "procwire_passed_handle_into_mapping",
            HandleKind::File => "procwire_passed_handle_into_file",
            HandleKind::Pipe => "procwire_passed_handle_into_pipe",
            HandleKind::Mutex => "procwire_passed_handle_into_mutex",
            HandleKind::Semaphore => "procwire_passed_handle_into_semaphore",
            HandleKind::Event => "procwire_passed_handle_into_event",
            _ => "procwire_passed_handle_free",
        };
        return Err(Failure::new(
            ProcwireStatus::WrongKind,
            format!(
                "{function}: the passed handle is {}{named}, not {}; take it with {right} \
                 (the handle is unchanged)",
                kind.with_article(),
                wanted.with_article()
            ),
        ));
    }
    Ok(h.passed.take().expect("checked above"))
}

/// Takes the mapping out of the passed handle, mapped whole (writable only if it came
/// read-write).
///
/// Ownership: `*mapping` is the caller's; free it with `procwire_mapping_free`. The passed
/// handle stays the caller's too, now empty: free it with `procwire_passed_handle_free`.
/// On failure nothing changes. Thread safety: one thread at a time per passed handle.
///
/// Errors: WRONG_KIND when the handle holds another kind of object (the message names
/// it); INVALID_ARGUMENT when its object was already taken out; IO when it cannot be
/// mapped.
///
/// # Safety
///
/// `handle` is NULL or a live passed handle; `mapping` is valid for a write.
#[no_mangle]
pub unsafe extern "C" fn procwire_passed_handle_into_mapping(
    handle: *mut ProcwirePassedHandle,
    mapping: *mut *mut ProcwireMapping,
) -> ProcwireStatus {
    run(|| {
        let out = Out::new(mapping, "mapping")?;
        // SAFETY: the caller promises NULL or a live handle used by this thread alone.
        let passed = unsafe {
            take(
                handle,
                HandleKind::Mapping,
                "procwire_passed_handle_into_mapping",
            )
        }?;
        let m = ProcwireMapping::new(passed.into_mapping()?)?;
        // SAFETY: `mapping` is valid for a write (the caller's promise).
        unsafe { give_handle(out, m) };
        Ok(())
    })
}

/// Takes the file out of the passed handle: `*fd` gets its descriptor, close-on-exec,
/// open for the access the handle came with.
///
/// Ownership: `*fd` is the caller's; close it with `close`. The passed handle stays the
/// caller's, now empty. On failure nothing changes. Thread safety and errors: as
/// `procwire_passed_handle_into_mapping`.
///
/// # Safety
///
/// `handle` is NULL or a live passed handle; `fd` is valid for a write.
#[no_mangle]
pub unsafe extern "C" fn procwire_passed_handle_into_file(
    handle: *mut ProcwirePassedHandle,
    fd: *mut c_int,
) -> ProcwireStatus {
    run(|| {
        let out = Out::new(fd, "fd")?;
        // SAFETY: the caller promises NULL or a live handle used by this thread alone.
        let passed = unsafe { take(handle, HandleKind::File, "procwire_passed_handle_into_file") }?;
        let file = passed.into_file()?;
        // SAFETY: `fd` is valid for a write (the caller's promise).
        unsafe { out.put(file.into_raw_fd()) };
        Ok(())
    })
}

/// Takes the pipe connection out of the passed handle: it talks to the same other end as
/// the sender's did.
///
/// Ownership: `*connection` is the caller's; free it with `procwire_pipe_connection_free`.
/// The passed handle stays the caller's, now empty. On failure nothing changes. Thread
/// safety and errors: as `procwire_passed_handle_into_mapping`.
///
/// # Safety
///
/// `handle` is NULL or a live passed handle; `connection` is valid for a write.
#[no_mangle]
pub unsafe extern "C" fn procwire_passed_handle_into_pipe(
    handle: *mut ProcwirePassedHandle,
    connection: *mut *mut ProcwirePipeConnection,
) -> ProcwireStatus {
    run(|| {
        let out = Out::new(connection, "connection")?;
        // SAFETY: the caller promises NULL or a live handle used by this thread alone.
        let passed = unsafe { take(handle, HandleKind::Pipe, "procwire_passed_handle_into_pipe") }?;
        let conn = passed.into_pipe()?;
        let name = c_name(conn.name());
        // SAFETY: `connection` is valid for a write (the caller's promise).
        unsafe { give_handle(out, ProcwirePipeConnection { conn, name }) };
        Ok(())
    })
}

/// Takes the named mutex out of the passed handle, unlocked by this handle.
///
/// Ownership: `*mutex` is the caller's; free it with `procwire_mutex_free`. The passed
/// handle stays the caller's, now empty. On failure nothing changes. Thread safety and
/// errors: as `procwire_passed_handle_into_mapping`.
///
/// # Safety
///
/// `handle` is NULL or a live passed handle; `mutex` is valid for a write.
#[no_mangle]
pub unsafe extern "C" fn procwire_passed_handle_into_mutex(
    handle: *mut ProcwirePassedHandle,
    mutex: *mut *mut ProcwireMutex,
) -> ProcwireStatus {
    run(|| {
        let out = Out::new(mutex, "mutex")?;
        // SAFETY: the caller promises NULL or a live handle used by this thread alone.
        let passed = unsafe {
            take(
                handle,
                HandleKind::Mutex,
                "procwire_passed_handle_into_mutex",
            )
        }?;
        let m = passed.into_mutex()?;
        // SAFETY: `mutex` is valid for a write (the caller's promise).
        unsafe { give_handle(out, ProcwireMutex::new(m)) };
        Ok(())
    })
}

/// Takes the named semaphore out of the passed handle.
///
/// Ownership: `*semaphore` is the caller's; free it with `procwire_semaphore_free`. The
/// passed handle stays the caller's, now empty. On failure nothing changes. Thread safety
/// and errors: as `procwire_passed_handle_into_mapping`.
///
/// # Safety
///
/// `handle` is NULL or a live passed handle; `semaphore` is valid for a write.
#[no_mangle]
pub unsafe extern "C" fn procwire_passed_handle_into_semaphore(
    handle: *mut ProcwirePassedHandle,
    semaphore: *mut *mut ProcwireSemaphore,
) -> ProcwireStatus {
    run(|| {
        let out = Out::new(semaphore, "semaphore")?;
        // SAFETY: the caller promises NULL or a live handle used by this thread alone.
        let passed = unsafe {
            take(
                handle,
                HandleKind::Semaphore,
                "procwire_passed_handle_into_semaphore",
            )
        }?;
        let semaphore = passed.into_semaphore()?;
        // SAFETY: `semaphore` is valid for a write (the caller's promise).
        unsafe { give_handle(out, ProcwireSemaphore { semaphore }) };
        Ok(())
    })
}

/// Takes the named event out of the passed handle.
///
/// Ownership: `*event` is the caller's; free it with `procwire_event_free`. The passed
/// handle stays the caller's, now empty. On failure nothing changes. Thread safety and
/// errors: as `procwire_passed_handle_into_mapping`.
///
/// # Safety
///
/// `handle` is NULL or a live passed handle; `event` is valid for a write.
#[no_mangle]
pub unsafe extern "C" fn procwire_passed_handle_into_event(
    handle: *mut ProcwirePassedHandle,
    event: *mut *mut ProcwireEvent,
) -> ProcwireStatus {
    run(|| {
        let out = Out::new(event, "event")?;
        // SAFETY: the caller promises NULL or a live handle used by this thread alone.
        let passed = unsafe {
            take(
                handle,
                HandleKind::Event,
                "procwire_passed_handle_into_event",
            )
        }?;
        let event = passed.into_event()?;
        // SAFETY: `event` is valid for a write (the caller's promise).
        unsafe { give_handle(out, ProcwireEvent { event }) };
        Ok(())
    })
}

/// Frees the passed handle, closing its object if it was not taken out. NULL is ignored.
///
/// Ownership: takes the handle; objects taken out of it stay the caller's. Thread safety:
/// no other thread may use it during or after.
///
/// # Safety
///
/// `handle` is NULL or a live passed handle, not used again.
#[no_mangle]
pub unsafe extern "C" fn procwire_passed_handle_free(
    handle: *mut ProcwirePassedHandle,
) -> ProcwireStatus {
    // SAFETY: the caller's promise, passed on.
    unsafe { free_handle(handle) }
}
