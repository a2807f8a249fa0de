//! Mailslots: servers that store messages and writers that send them.

use std::ffi::c_char;
use std::time::Duration;

use procwire::mailslot::{
    MailslotOptions, MailslotServer, MailslotWriter, ReadTimeout, WriterOptions,
};

use crate::args::{
    bytes, bytes_mut, free_handle, give_bytes, give_handle, handle, text, timeout, Out,
};
use crate::pipe::access_list;
use crate::status::{run, Failure, ProcwireStatus};

/// How to create a mailslot: `CreateMailslot`'s arguments. Fill it with
/// `procwire_mailslot_options_init`, then change what you need.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ProcwireMailslotOptions {
    /// The largest message writers may send (64 KiB by default, at most about 4 MB).
    pub max_message_size: usize,
    /// How long `procwire_mailslot_read` with PROCWIRE_SLOT_TIMEOUT waits, in
    /// milliseconds (`lReadTimeout`); PROCWIRE_WAIT_FOREVER (the default) or >= 0.
    pub read_timeout_ms: i64,
    /// How many bytes of unread messages are stored before writers wait (64 MiB).
    pub capacity: usize,
    /// Lets every local user write (the slot must be in the Global namespace for them to
    /// reach it); false by default.
    pub everyone_may_write: bool,
}

/// What `procwire_mailslot_info` reports (`GetMailslotInfo`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcwireMailslotInfo {
    /// Messages waiting to be read.
    pub waiting: usize,
    /// Whether a message waits (then `next_size` is its size).
    pub has_next: bool,
    /// The size of the next message, 0 when none waits.
    pub next_size: usize,
    /// The largest message writers may send.
    pub max_message_size: usize,
    /// The read timeout in milliseconds, or PROCWIRE_WAIT_FOREVER.
    pub read_timeout_ms: i64,
}

/// Wait as the slot's own read timeout says: the `timeout_ms` of `procwire_mailslot_read`
/// that uses `read_timeout_ms` of the options.
pub const PROCWIRE_SLOT_TIMEOUT: i64 = -2;

/// What stands for "forever" where the library takes a duration: 136 years.
const FOREVER: Duration = Duration::from_secs(u32::MAX as u64);

/// A mailslot server (opaque): reads what writers send to its name.
pub struct ProcwireMailslot {
    slot: MailslotServer,
}

/// A mailslot writer (opaque).
pub struct ProcwireMailslotWriter {
    writer: MailslotWriter,
}

fn read_timeout(ms: i64) -> Result<ReadTimeout, Failure> {
    Ok(match timeout(ms, "read_timeout_ms")? {
        None => ReadTimeout::Forever,
        Some(d) if d.is_zero() => ReadTimeout::Immediate,
        Some(d) => ReadTimeout::After(d),
    })
}

fn millis(timeout: ReadTimeout) -> i64 {
    match timeout {
        ReadTimeout::Immediate => 0,
        ReadTimeout::Forever => crate::args::PROCWIRE_WAIT_FOREVER,
        ReadTimeout::After(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
    }
}

/// Fills `options` with the defaults: 64 KiB messages, reads that wait forever, 64 MiB of
/// storage, owner-only access.
///
/// # Safety
///
/// `options` is NULL or valid for writing a `ProcwireMailslotOptions`.
#[no_mangle]
pub unsafe extern "C" fn procwire_mailslot_options_init(
    options: *mut ProcwireMailslotOptions,
) -> ProcwireStatus {
    run(|| {
        let out = Out::new(options, "options")?;
        let value = ProcwireMailslotOptions {
            max_message_size: procwire::mailslot::DEFAULT_MAX_MESSAGE,
            read_timeout_ms: crate::args::PROCWIRE_WAIT_FOREVER,
            capacity: 64 << 20,
            everyone_may_write: false,
        };
        // SAFETY: the caller promises `options` is valid for a write.
        unsafe { out.put(value) };
        Ok(())
    })
}

/// Creates the mailslot `name` (`"\\\\.\\mailslot\\HelloWorld"`, `"HelloWorld"`).
/// `options` may be NULL for the defaults.
///
/// Ownership: `*slot` is the caller's; free it with `procwire_mailslot_free`, which removes
/// the name (unread messages are lost). Thread safety: any thread.
///
/// Errors: ALREADY_EXISTS, INVALID_NAME, WRONG_KIND, NOT_PERMITTED, INVALID_ARGUMENT, IO.
///
/// # Safety
///
/// `name` is a NUL-terminated string; `options` is NULL or a valid options struct; `slot`
/// is valid for a write.
#[no_mangle]
pub unsafe extern "C" fn procwire_mailslot_create(
    name: *const c_char,
    options: *const ProcwireMailslotOptions,
    slot: *mut *mut ProcwireMailslot,
) -> ProcwireStatus {
    run(|| {
        // SAFETY: the caller promises a NUL-terminated string.
        let name = unsafe { text(name, "name") }?;
        let out = Out::new(slot, "slot")?;
        let mut builder = MailslotOptions::new();
        // SAFETY: the caller promises NULL or a valid options struct.
        if let Some(o) = unsafe { options.as_ref() } {
            let everyone = if o.everyone_may_write { 2 } else { 0 };
            builder = builder
                .max_message_size(o.max_message_size)
                .read_timeout(read_timeout(o.read_timeout_ms)?)
                .capacity(o.capacity)
                .access_list(access_list(everyone, None)?);
        }
        let created = builder.create(name)?;
        // SAFETY: `slot` is valid for a write (the caller's promise).
        unsafe { give_handle(out, ProcwireMailslot { slot: created }) };
        Ok(())
    })
}

/// Reads the next whole message, in arrival order, waiting up to `timeout_ms`
/// (PROCWIRE_SLOT_TIMEOUT: the slot's read timeout).
///
/// Ownership: `*data` (`*len` bytes) is the caller's; free it with `procwire_bytes_free`.
/// Thread safety: any thread; several readers of one slot each get different messages.
///
/// Errors: TIMEOUT when no message came in time.
///
/// # Safety
///
/// `slot` is NULL or a live mailslot; `data` and `len` are valid for a write.
#[no_mangle]
pub unsafe extern "C" fn procwire_mailslot_read(
    slot: *const ProcwireMailslot,
    timeout_ms: i64,
    data: *mut *mut u8,
    len: *mut usize,
) -> ProcwireStatus {
    run(|| {
        // SAFETY: the caller promises NULL or a live handle.
        let s = unsafe { handle(slot, "slot") }?;
        let out_data = Out::new(data, "data")?;
        let out_len = Out::new(len, "len")?;
        let message = match timeout_ms {
            PROCWIRE_SLOT_TIMEOUT => s.slot.read()?,
            ms => match timeout(ms, "timeout_ms")? {
                Some(t) => s.slot.read_timeout(t)?,
                None => s.slot.read_timeout(FOREVER)?,
            },
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

/// Reads the next message into the caller's buffer (`ReadFile`), waiting as the slot's
/// read timeout says; `*len` gets its size.
///
/// Thread safety: as `procwire_mailslot_read`.
///
/// Errors: BUFFER_TOO_SMALL when it does not fit (it stays next; see
/// `procwire_mailslot_info` for its size), TIMEOUT.
///
/// # Safety
///
/// `slot` is NULL or a live mailslot; `buf` is valid for writing `capacity` bytes; `len`
/// is valid for a write.
#[no_mangle]
pub unsafe extern "C" fn procwire_mailslot_read_into(
    slot: *const ProcwireMailslot,
    buf: *mut u8,
    capacity: usize,
    len: *mut usize,
) -> ProcwireStatus {
    run(|| {
        // SAFETY: the caller promises NULL or a live handle.
        let s = unsafe { handle(slot, "slot") }?;
        // SAFETY: the caller promises `capacity` writable bytes at `buf`.
        let buf = unsafe { bytes_mut(buf, capacity, "buf") }?;
        let out_len = Out::new(len, "len")?;
        let n = s.slot.read_into(buf)?;
        // SAFETY: `len` is valid for a write (the caller's promise).
        unsafe { out_len.put(n) };
        Ok(())
    })
}

/// How many messages wait, the next one's size, the maximum size and the read timeout
/// (`GetMailslotInfo`).
///
/// Thread safety: any thread.
///
/// # Safety
///
/// `slot` is NULL or a live mailslot; `info` is valid for a write.
#[no_mangle]
pub unsafe extern "C" fn procwire_mailslot_info(
    slot: *const ProcwireMailslot,
    info: *mut ProcwireMailslotInfo,
) -> ProcwireStatus {
    run(|| {
        // SAFETY: the caller promises NULL or a live handle.
        let s = unsafe { handle(slot, "slot") }?;
        let out = Out::new(info, "info")?;
        let i = s.slot.info()?;
        let value = ProcwireMailslotInfo {
            waiting: i.waiting,
            has_next: i.next_size.is_some(),
            next_size: i.next_size.unwrap_or(0),
            max_message_size: i.max_message,
            read_timeout_ms: millis(i.read_timeout),
        };
        // SAFETY: `info` is valid for a write (the caller's promise).
        unsafe { out.put(value) };
        Ok(())
    })
}

/// Changes how long reads with PROCWIRE_SLOT_TIMEOUT wait (`SetMailslotInfo`).
///
/// Thread safety: any thread.
///
/// # Safety
///
/// `slot` is NULL or a live mailslot.
#[no_mangle]
pub unsafe extern "C" fn procwire_mailslot_set_read_timeout(
    slot: *const ProcwireMailslot,
    timeout_ms: i64,
) -> ProcwireStatus {
    run(|| {
        // SAFETY: the caller promises NULL or a live handle.
        let s = unsafe { handle(slot, "slot") }?;
        s.slot.set_read_timeout(read_timeout(timeout_ms)?);
        Ok(())
    })
}

/// Closes the slot and removes its name. NULL is ignored.
///
/// Ownership: takes the handle. Thread safety: no other thread may use it during or after.
///
/// # Safety
///
/// `slot` is NULL or a live mailslot, not used again.
#[no_mangle]
pub unsafe extern "C" fn procwire_mailslot_free(slot: *mut ProcwireMailslot) -> ProcwireStatus {
    // SAFETY: the caller's promise, passed on.
    unsafe { free_handle(slot) }
}

/// Opens the mailslot `name` for writing (`CreateFile`). A write waits up to `timeout_ms`
/// while the slot is full.
///
/// Ownership: `*writer` is the caller's; free it with `procwire_mailslot_writer_free`.
/// Thread safety: any thread.
///
/// Errors: NOT_FOUND, ACCESS_DENIED, WRONG_KIND, UNTRUSTED_SERVER, INVALID_NAME, IO.
///
/// # Safety
///
/// `name` is a NUL-terminated string; `writer` is valid for a write.
#[no_mangle]
pub unsafe extern "C" fn procwire_mailslot_writer_open(
    name: *const c_char,
    timeout_ms: i64,
    writer: *mut *mut ProcwireMailslotWriter,
) -> ProcwireStatus {
    run(|| {
        // SAFETY: the caller promises a NUL-terminated string.
        let name = unsafe { text(name, "name") }?;
        let out = Out::new(writer, "writer")?;
        let wait = timeout(timeout_ms, "timeout_ms")?.unwrap_or(FOREVER);
        let opened = WriterOptions::new().timeout(wait).open(name)?;
        // SAFETY: `writer` is valid for a write (the caller's promise).
        unsafe { give_handle(out, ProcwireMailslotWriter { writer: opened }) };
        Ok(())
    })
}

/// Sends one message (`WriteFile`).
///
/// Thread safety: any thread; several threads may write through one writer.
///
/// Errors: MESSAGE_TOO_LARGE (nothing sent), FULL (the slot stayed full for the writer's
/// timeout), DISCONNECTED (the slot is gone), IO.
///
/// # Safety
///
/// `writer` is NULL or a live writer; `data` is valid for reading `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn procwire_mailslot_write(
    writer: *const ProcwireMailslotWriter,
    data: *const u8,
    len: usize,
) -> ProcwireStatus {
    run(|| {
        // SAFETY: the caller promises NULL or a live handle.
        let w = unsafe { handle(writer, "writer") }?;
        // SAFETY: the caller promises `len` readable bytes at `data`.
        let data = unsafe { bytes(data, len, "data") }?;
        w.writer.write(data)?;
        Ok(())
    })
}

/// Closes the writer. NULL is ignored.
///
/// Ownership: takes the handle. Thread safety: no other thread may use it during or after.
///
/// # Safety
///
/// `writer` is NULL or a live writer, not used again.
#[no_mangle]
pub unsafe extern "C" fn procwire_mailslot_writer_free(
    writer: *mut ProcwireMailslotWriter,
) -> ProcwireStatus {
    // SAFETY: the caller's promise, passed on.
    unsafe { free_handle(writer) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_timeouts_round_trip() {
        for ms in [crate::args::PROCWIRE_WAIT_FOREVER, 0, 250] {
            assert_eq!(millis(read_timeout(ms).unwrap()), ms);
        }
        assert_eq!(
            read_timeout(-7).unwrap_err().status,
            ProcwireStatus::InvalidArgument
        );
    }
}
