//! The thin layer over Linux calls.
//!
//! Everything in procwire that talks to the kernel directly goes through here, so that the
//! rest of the crate can stay free of raw calls. This module provides:
//!
//! - [`peer_credentials`] and [`supplementary_groups`]: who is on the other end of a Unix
//!   socket (`SO_PEERCRED`, `/proc/PID/status`).
//! - [`current_user`]: the effective uid and gid of this process.
//! - [`fs`]: files in directories other users can write: opened without following links or
//!   blocking, created only where nothing is, removed only if still the file checked.
//! - [`ensure_private_dir`] and [`ensure_shared_dir`]: the namespace directories, created
//!   with the right mode and checked for the right owner.
//! - [`send_with_fds`], [`send_some_with_fds`], [`recv_with_fds`] and
//!   [`recv_some_with_fds`]: descriptors passed beside bytes (`SCM_RIGHTS`), for the shared-memory handshake and passed handles;
//!   [`fs::describe`] and [`fs::reopen`] for what a passed descriptor is and how to pass
//!   less access than one holds.
//! - [`set_socket_buffers`] and [`wait_readable`]: socket tuning and waiting with a timeout.
//! - [`shm`]: `/dev/shm` files and [`shm::Region`], a shared mapping reached only through
//!   copies, atomics and raw pointers.
//! - [`futex`]: process-shared futex wait and wake, on one word or many (`futex_waitv`).
//! - [`ready`]: readiness of descriptor-based objects (`poll`, `eventfd`), for waits that mix
//!   them with futex words.
//! - [`thread`]: thread identities (TID and start time) and whether a thread still runs.
//!
//! The `unsafe` here is the mapping of memory (`mmap`, `munmap`, `msync`, `madvise`) and the
//! references to atomics inside it, each with its `// SAFETY:` argument.

mod dir;
pub(crate) mod fs;
pub(crate) mod futex;
pub(crate) mod ready;
pub(crate) mod shm;
mod socket;
pub(crate) mod thread;

pub(crate) use dir::{ensure_private_dir, ensure_shared_dir};
pub(crate) use socket::{
    answer_now, current_user, is_stream_socket, peek_now, peer_credentials, queued,
    read_into_spare, recv_now, recv_some_with_fds, recv_with_fds, send_now, send_with_fds,
    set_socket_buffers, supplementary_groups, wait_readable, wait_readable_any,
};
#[cfg(feature = "tokio")]
pub(crate) use socket::{send_some_with_fds, shutdown_write};
