//! The thin layer over Linux calls.
//!
//! Everything in procwire that talks to the kernel directly goes through here, so that the
//! rest of the crate can stay free of raw calls. This module provides:
//!
//! - [`peer_credentials`] and [`supplementary_groups`]: who is on the other end of a Unix
//!   socket (`SO_PEERCRED`, `/proc/PID/status`).
//! - [`current_user`]: the effective uid and gid of this process.
//! - [`LockFile`]: an exclusive `flock` that marks a name as owned by a live process and is
//!   released by the kernel when that process dies.
//! - [`ensure_private_dir`] and [`ensure_shared_dir`]: the namespace directories, created
//!   with the right mode and checked for the right owner.
//! - [`set_socket_buffers`] and [`wait_readable`]: socket tuning and waiting with a timeout.
//! - [`object`]: the registry of named shared-memory objects (mappings, mutexes, semaphores,
//!   events), one namespace per Local/Global, and [`Lifetime`](object::Lifetime).
//! - [`shm`]: `/dev/shm` files and [`shm::Region`], a shared mapping reached only through
//!   copies, atomics and raw pointers.
//! - [`futex`]: process-shared futex wait and wake.
//! - [`thread`]: thread identities (TID and start time) and whether a thread still runs.
//!
//! The `unsafe` here is the mapping of memory (`mmap`, `munmap`, `msync`, `madvise`) and the
//! references to atomics inside it, each with its `// SAFETY:` argument.

mod dir;
pub(crate) mod futex;
mod lock;
pub(crate) mod object;
pub(crate) mod shm;
mod socket;
pub(crate) mod thread;

pub(crate) use dir::{ensure_private_dir, ensure_shared_dir};
pub(crate) use lock::LockFile;
#[cfg(feature = "tokio")]
pub(crate) use socket::shutdown_write;
pub(crate) use socket::{
    current_user, peer_credentials, read_into_spare, recv_now, set_socket_buffers,
    supplementary_groups, wait_readable, wait_readable_any,
};
