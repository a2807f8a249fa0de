//! File mappings: named shared memory and named mappings of files, each handle with one
//! view of the whole mapping.

use std::ffi::c_char;

use procwire::mapping::{Lifetime, Mapping, MappingOptions, View};
use procwire::security::Access;

use crate::args::{bytes, bytes_mut, free_handle, give_handle, handle, text, Out};
use crate::pipe::{access, access_list};
use crate::status::{run, run_value, Failure, ProcwireStatus};

/// How to create a mapping: `CreateFileMapping`'s arguments. Fill it with
/// `procwire_mapping_options_init`, then change what you need.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ProcwireMappingOptions {
    /// Back the mapping with this file (created if missing) instead of memory; NULL (the
    /// default) for memory. Borrowed for the create call only.
    pub file_path: *const c_char,
    /// A `ProcwireAccess` granted to every local user besides the owner (read or read-write);
    /// none by default.
    pub everyone: u32,
    /// A group id granted `group_access` (ignored while `group_access` is none).
    pub group_id: u32,
    /// A `ProcwireAccess` granted to the group `group_id`; none by default.
    pub group_access: u32,
    /// Keep the name after every handle is closed (until removed); false (the default)
    /// removes it when the creating handle is freed or its process dies.
    pub persistent: bool,
}

/// A mapping (opaque), with a view of all of it.
pub struct ProcwireMapping {
    // Declared first, so dropped (unmapped) before the mapping it views.
    view: View,
    pub(crate) mapping: Mapping,
}

impl ProcwireMapping {
    /// The handle of `mapping`, with its view of all of it.
    pub(crate) fn new(mapping: Mapping) -> Result<ProcwireMapping, Failure> {
        Ok(ProcwireMapping {
            view: mapping.view_all()?,
            mapping,
        })
    }
}

/// Fills `options` with the defaults: memory-backed, owner only, removed with its creator.
///
/// # Safety
///
/// `options` is NULL or valid for writing a `ProcwireMappingOptions`.
#[no_mangle]
pub unsafe extern "C" fn procwire_mapping_options_init(
    options: *mut ProcwireMappingOptions,
) -> ProcwireStatus {
    run(|| {
        let out = Out::new(options, "options")?;
        let value = ProcwireMappingOptions {
            file_path: std::ptr::null(),
            everyone: 0,
            group_id: 0,
            group_access: 0,
            persistent: false,
        };
        // SAFETY: the caller promises `options` is valid for a write.
        unsafe { out.put(value) };
        Ok(())
    })
}

/// # Safety
///
/// `options` is NULL or a valid options struct whose `file_path` is NULL or a
/// NUL-terminated string.
unsafe fn builder(
    size: u64,
    options: *const ProcwireMappingOptions,
) -> Result<MappingOptions, Failure> {
    let mut builder = MappingOptions::new();
    if size > 0 {
        builder = builder.size(size);
    }
    // SAFETY: the caller promises NULL or a valid options struct.
    if let Some(o) = unsafe { options.as_ref() } {
        builder = builder.access_list(access_list(o.everyone, Some((o.group_id, o.group_access)))?);
        if o.persistent {
            builder = builder.lifetime(Lifetime::Persistent);
        }
        if !o.file_path.is_null() {
            // SAFETY: not NULL, and the caller promises a NUL-terminated string.
            builder = builder.backed_by_file(unsafe { text(o.file_path, "file_path") }?);
        }
    }
    Ok(builder)
}

/// Creates the mapping `name` of `size` bytes, zero-filled (or with the file's contents;
/// a file-backed mapping may pass 0 for the file's length). `options` may be NULL for the
/// defaults.
///
/// Ownership: `*mapping` is the caller's; free it with `procwire_mapping_free`.
/// Thread safety: any thread.
///
/// Errors: ALREADY_EXISTS, WRONG_KIND (a mutex, semaphore or event has the name),
/// INVALID_SIZE, NOT_PERMITTED (an access list file modes cannot express), INVALID_NAME,
/// IO.
///
/// # Safety
///
/// `name` is a NUL-terminated string; `options` is NULL or a valid options struct;
/// `mapping` is valid for a write.
#[no_mangle]
pub unsafe extern "C" fn procwire_mapping_create(
    name: *const c_char,
    size: u64,
    options: *const ProcwireMappingOptions,
    mapping: *mut *mut ProcwireMapping,
) -> ProcwireStatus {
    run(|| {
        // SAFETY: the caller promises a NUL-terminated string.
        let name = unsafe { text(name, "name") }?;
        let out = Out::new(mapping, "mapping")?;
        // SAFETY: the caller promises NULL or a valid options struct.
        let created = unsafe { builder(size, options) }?.create(name)?;
        // SAFETY: `mapping` is valid for a write (the caller's promise).
        unsafe { give_handle(out, ProcwireMapping::new(created)?) };
        Ok(())
    })
}

/// Opens the mapping `name`, or creates it as `procwire_mapping_create` does when no live
/// mapping has the name.
///
/// Ownership and thread safety: as `procwire_mapping_create`.
///
/// # Safety
///
/// As `procwire_mapping_create`.
#[no_mangle]
pub unsafe extern "C" fn procwire_mapping_open_or_create(
    name: *const c_char,
    size: u64,
    options: *const ProcwireMappingOptions,
    mapping: *mut *mut ProcwireMapping,
) -> ProcwireStatus {
    run(|| {
        // SAFETY: the caller promises a NUL-terminated string.
        let name = unsafe { text(name, "name") }?;
        let out = Out::new(mapping, "mapping")?;
        // SAFETY: the caller promises NULL or a valid options struct.
        let opened = unsafe { builder(size, options) }?.open_or_create(name)?;
        // SAFETY: `mapping` is valid for a write (the caller's promise).
        unsafe { give_handle(out, ProcwireMapping::new(opened)?) };
        Ok(())
    })
}

/// Opens the mapping `name` for `access`, PROCWIRE_ACCESS_READ or
/// PROCWIRE_ACCESS_READ_WRITE (`OpenFileMapping`), and maps all of it.
///
/// Ownership: `*mapping` is the caller's; free it with `procwire_mapping_free`.
/// Thread safety: any thread.
///
/// Errors: NOT_FOUND, WRONG_KIND, ACCESS_DENIED, NOT_PERMITTED (write-only access),
/// INVALID_NAME, CORRUPT, IO.
///
/// # Safety
///
/// `name` is a NUL-terminated string; `mapping` is valid for a write.
#[no_mangle]
pub unsafe extern "C" fn procwire_mapping_open(
    name: *const c_char,
    access_wanted: u32,
    mapping: *mut *mut ProcwireMapping,
) -> ProcwireStatus {
    run(|| {
        // SAFETY: the caller promises a NUL-terminated string.
        let name = unsafe { text(name, "name") }?;
        let out = Out::new(mapping, "mapping")?;
        let wanted = access(access_wanted, "access_wanted")?.unwrap_or(Access::Read);
        let opened = Mapping::open(name, wanted)?;
        // SAFETY: `mapping` is valid for a write (the caller's promise).
        unsafe { give_handle(out, ProcwireMapping::new(opened)?) };
        Ok(())
    })
}

/// The mapping's first byte, for C callers that work on the memory directly. Valid for
/// `procwire_mapping_len` bytes until `procwire_mapping_free`; writable only if
/// `procwire_mapping_is_writable`. Other processes may change the bytes at any time:
/// coordinate with a named mutex, or use atomics. NULL when `mapping` is NULL.
///
/// Thread safety: any thread.
///
/// # Safety
///
/// `mapping` is NULL or a live mapping.
#[no_mangle]
pub unsafe extern "C" fn procwire_mapping_ptr(mapping: *const ProcwireMapping) -> *mut u8 {
    run_value(std::ptr::null_mut(), || {
        // SAFETY: the caller promises NULL or a live handle.
        Ok(unsafe { handle(mapping, "mapping") }?.view.as_ptr())
    })
}

/// The mapping's length in bytes; 0 when `mapping` is NULL.
///
/// # Safety
///
/// `mapping` is NULL or a live mapping.
#[no_mangle]
pub unsafe extern "C" fn procwire_mapping_len(mapping: *const ProcwireMapping) -> usize {
    run_value(0, || {
        // SAFETY: the caller promises NULL or a live handle.
        Ok(unsafe { handle(mapping, "mapping") }?.view.len())
    })
}

/// Whether the mapping may be written through this handle; false when `mapping` is NULL.
///
/// # Safety
///
/// `mapping` is NULL or a live mapping.
#[no_mangle]
pub unsafe extern "C" fn procwire_mapping_is_writable(mapping: *const ProcwireMapping) -> bool {
    run_value(false, || {
        // SAFETY: the caller promises NULL or a live handle.
        Ok(unsafe { handle(mapping, "mapping") }?.view.is_writable())
    })
}

/// Copies `len` bytes from `offset` into `buf`. Bytes other processes write meanwhile may
/// arrive half old, half new.
///
/// Thread safety: any thread.
///
/// Errors: OUT_OF_RANGE.
///
/// # Safety
///
/// `mapping` is NULL or a live mapping; `buf` is valid for writing `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn procwire_mapping_read(
    mapping: *const ProcwireMapping,
    offset: usize,
    buf: *mut u8,
    len: usize,
) -> ProcwireStatus {
    run(|| {
        // SAFETY: the caller promises NULL or a live handle.
        let m = unsafe { handle(mapping, "mapping") }?;
        // SAFETY: the caller promises `len` writable bytes at `buf`.
        let buf = unsafe { bytes_mut(buf, len, "buf") }?;
        m.view.read_at(offset, buf)?;
        Ok(())
    })
}

/// Copies `len` bytes of `data` to `offset`.
///
/// Thread safety: any thread.
///
/// Errors: OUT_OF_RANGE, NOT_PERMITTED on a read-only handle.
///
/// # Safety
///
/// `mapping` is NULL or a live mapping; `data` is valid for reading `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn procwire_mapping_write(
    mapping: *const ProcwireMapping,
    offset: usize,
    data: *const u8,
    len: usize,
) -> ProcwireStatus {
    run(|| {
        // SAFETY: the caller promises NULL or a live handle.
        let m = unsafe { handle(mapping, "mapping") }?;
        // SAFETY: the caller promises `len` readable bytes at `data`.
        let data = unsafe { bytes(data, len, "data") }?;
        m.view.write_at(offset, data)?;
        Ok(())
    })
}

/// Writes a file-backed mapping's changes back to its file and waits for it
/// (`FlushViewOfFile`); does nothing for memory.
///
/// # Safety
///
/// `mapping` is NULL or a live mapping.
#[no_mangle]
pub unsafe extern "C" fn procwire_mapping_flush(mapping: *const ProcwireMapping) -> ProcwireStatus {
    run(|| {
        // SAFETY: the caller promises NULL or a live handle.
        unsafe { handle(mapping, "mapping") }?.view.flush()?;
        Ok(())
    })
}

/// Unmaps and closes the mapping; a non-persistent mapping's name goes when its creator's
/// handle is freed. NULL is ignored.
///
/// Ownership: takes the handle; the pointer from `procwire_mapping_ptr` is invalid from
/// now on. Thread safety: no other thread may use it during or after.
///
/// # Safety
///
/// `mapping` is NULL or a live mapping, not used again.
#[no_mangle]
pub unsafe extern "C" fn procwire_mapping_free(mapping: *mut ProcwireMapping) -> ProcwireStatus {
    // SAFETY: the caller's promise, passed on.
    unsafe { free_handle(mapping) }
}
