//! Checked conversions of the arguments C callers pass: strings, handles, byte ranges,
//! timeouts, output parameters, and the byte buffers the library hands out.

use std::ffi::{c_char, CStr};
use std::time::Duration;

use crate::status::{run, Failure, ProcwireStatus};

/// Wait as long as it takes: the timeout argument that never runs out.
pub const PROCWIRE_WAIT_FOREVER: i64 = -1;

/// A NUL-terminated UTF-8 string argument.
///
/// # Safety
///
/// `ptr` is NULL or points to a NUL-terminated string that stays valid and unchanged for
/// the call.
pub(crate) unsafe fn text<'a>(ptr: *const c_char, argument: &str) -> Result<&'a str, Failure> {
    if ptr.is_null() {
        return Err(Failure::null(argument));
    }
    // SAFETY: not NULL, and the caller promises a NUL-terminated string valid for the call.
    let c = unsafe { CStr::from_ptr(ptr) };
    c.to_str().map_err(|e| {
        Failure::new(
            ProcwireStatus::InvalidUtf8,
            format!("the argument `{argument}` is not valid UTF-8: {e}"),
        )
    })
}

/// A handle argument, shared.
///
/// # Safety
///
/// `ptr` is NULL or a live handle of type `T` from this library, not freed meanwhile.
pub(crate) unsafe fn handle<'a, T>(ptr: *const T, argument: &str) -> Result<&'a T, Failure> {
    // SAFETY: the caller promises a live handle or NULL; `as_ref` maps NULL to None.
    unsafe { ptr.as_ref() }.ok_or_else(|| Failure::null(argument))
}

/// A handle argument, exclusive.
///
/// # Safety
///
/// As [`handle`], and no other thread uses the handle during the call.
pub(crate) unsafe fn handle_mut<'a, T>(ptr: *mut T, argument: &str) -> Result<&'a mut T, Failure> {
    // SAFETY: the caller promises a live handle or NULL, used by this thread alone.
    unsafe { ptr.as_mut() }.ok_or_else(|| Failure::null(argument))
}

/// `len` bytes at `ptr` to read (NULL allowed when `len` is 0).
///
/// # Safety
///
/// `ptr` is NULL or valid for reading `len` bytes for the call.
pub(crate) unsafe fn bytes<'a>(
    ptr: *const u8,
    len: usize,
    argument: &str,
) -> Result<&'a [u8], Failure> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(Failure::null(argument));
    }
    // SAFETY: not NULL, and the caller promises `len` readable bytes for the call.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// `len` bytes at `ptr` to write into (NULL allowed when `len` is 0).
///
/// # Safety
///
/// `ptr` is NULL or valid for writing `len` bytes for the call, and nothing else reads or
/// writes them meanwhile.
pub(crate) unsafe fn bytes_mut<'a>(
    ptr: *mut u8,
    len: usize,
    argument: &str,
) -> Result<&'a mut [u8], Failure> {
    if len == 0 {
        return Ok(&mut []);
    }
    if ptr.is_null() {
        return Err(Failure::null(argument));
    }
    // SAFETY: not NULL, and the caller promises `len` writable bytes, exclusively, for the
    // call.
    Ok(unsafe { std::slice::from_raw_parts_mut(ptr, len) })
}

/// An output parameter, checked before any work is done.
pub(crate) struct Out<T>(*mut T);

impl<T> Out<T> {
    /// Checks `ptr`.
    pub(crate) fn new(ptr: *mut T, argument: &str) -> Result<Out<T>, Failure> {
        if ptr.is_null() {
            return Err(Failure::null(argument));
        }
        Ok(Out(ptr))
    }

    /// Stores `value`.
    ///
    /// # Safety
    ///
    /// The pointer given to [`new`](Self::new) is valid for writing a `T`.
    pub(crate) unsafe fn put(self, value: T) {
        // SAFETY: checked not NULL; the caller promises it is valid for a write. `write`
        // does not drop the (maybe uninitialized) old value.
        unsafe { self.0.write(value) }
    }
}

/// An optional output parameter (NULL: the caller does not want the value).
///
/// # Safety
///
/// `ptr` is NULL or valid for writing a `T`.
pub(crate) unsafe fn put_optional<T>(ptr: *mut T, value: T) {
    if !ptr.is_null() {
        // SAFETY: not NULL, and the caller promises it is valid for a write.
        unsafe { ptr.write(value) }
    }
}

/// A timeout argument: `None` waits forever.
pub(crate) fn timeout(ms: i64, argument: &str) -> Result<Option<Duration>, Failure> {
    match ms {
        PROCWIRE_WAIT_FOREVER => Ok(None),
        ms if ms >= 0 => Ok(Some(Duration::from_millis(ms as u64))),
        ms => Err(Failure::new(
            ProcwireStatus::InvalidArgument,
            format!("the argument `{argument}` is {ms}; pass milliseconds >= 0, or PROCWIRE_WAIT_FOREVER"),
        )),
    }
}

/// Moves a byte vector to the caller: its pointer and length, freed with
/// [`procwire_bytes_free`].
pub(crate) fn give_bytes(bytes: Vec<u8>) -> (*mut u8, usize) {
    let boxed = bytes.into_boxed_slice();
    let len = boxed.len();
    (Box::into_raw(boxed).cast::<u8>(), len)
}

/// Frees a byte buffer the library returned (from `procwire_pipe_recv`,
/// `procwire_mailslot_read`). NULL is ignored.
///
/// Ownership: takes the buffer back; `data` and `len` must be exactly what the library
/// returned, and the buffer is not used afterwards. Thread safety: any thread.
///
/// # Safety
///
/// `data` is NULL or a buffer of `len` bytes returned by this library and not yet freed.
#[no_mangle]
pub unsafe extern "C" fn procwire_bytes_free(data: *mut u8, len: usize) {
    run(|| {
        if !data.is_null() {
            let slice = std::ptr::slice_from_raw_parts_mut(data, len);
            // SAFETY: the caller passes back a buffer `give_bytes` made from a boxed slice
            // of exactly `len` bytes, once.
            drop(unsafe { Box::from_raw(slice) });
        }
        Ok(())
    });
}

/// Frees a handle made by `Box::into_raw` (NULL is ignored).
///
/// # Safety
///
/// `ptr` is NULL or came from `Box::into_raw` of a `Box<T>` and is not used again.
pub(crate) unsafe fn free_handle<T>(ptr: *mut T) -> ProcwireStatus {
    run(|| {
        if !ptr.is_null() {
            // SAFETY: the caller promises a handle this library made with `Box::into_raw`,
            // freed once.
            drop(unsafe { Box::from_raw(ptr) });
        }
        Ok(())
    })
}

/// Stores a new handle in an output parameter.
///
/// # Safety
///
/// As [`Out::put`].
pub(crate) unsafe fn give_handle<T>(out: Out<*mut T>, value: T) {
    // SAFETY: the caller's promise, passed on.
    unsafe { out.put(Box::into_raw(Box::new(value))) }
}
