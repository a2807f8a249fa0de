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
//!
//! So far everything here is reachable through `rustix`, so this module needs no `unsafe`.

mod dir;
mod lock;
mod socket;

pub(crate) use dir::{ensure_private_dir, ensure_shared_dir};
pub(crate) use lock::LockFile;
pub(crate) use socket::{
    current_user, peer_credentials, read_into_spare, recv_now, set_socket_buffers,
    supplementary_groups, wait_readable, wait_readable_any,
};
