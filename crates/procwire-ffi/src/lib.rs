//! The C ABI of procwire: named pipes (over sockets or shared memory), mailslots, file
//! mappings and named mutexes, semaphores and events, for C, C++ and P/Invoke callers.
//!
//! The header `include/procwire.h` is generated from this crate by cbindgen and checked in
//! (`tests/header.rs` fails when it is stale). The crate builds a shared library
//! (`libprocwire_ffi.so`) and a static one (`libprocwire_ffi.a`).
//!
//! # Organization
//!
//! - [`status`]: the status codes, one per failure kind of the Rust library, and the
//!   thread's last error message.
//! - [`pipe`], [`mailslot`], [`mapping`], [`sync`]: one module per technique, each with its
//!   opaque handles and their `_free` functions.
//! - [`handle`]: handle passing (`DuplicateHandle`): any of those objects, or a file, sent
//!   to the peer of a local pipe connection, and received there as the same kind.
//!
//! # Rules every entry point keeps
//!
//! - No panic crosses the boundary: each body runs inside `catch_unwind` and a panic
//!   becomes [`ProcwireStatus::Panic`](status::ProcwireStatus::Panic).
//! - Every pointer argument is checked for NULL before use.
//! - Output parameters are written only on success.
//!
//! What the crate does not do: the tokio API, TLS configuration and zero-copy loans are not
//! bound (C callers get copies into their buffers).

pub mod args;
pub mod handle;
pub mod mailslot;
pub mod mapping;
pub mod pipe;
pub mod status;
pub mod sync;
