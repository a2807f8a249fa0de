//! File mapping: named shared memory, and named mappings of files, with views.
//!
//! The Windows concepts map as follows:
//!
//! | Windows | procwire |
//! |---|---|
//! | `CreateFileMapping(INVALID_HANDLE_VALUE, …, name)` (paging-file backed) | [`Mapping::create`], [`MappingOptions::create`] |
//! | `CreateFileMapping(hFile, …, name)` | [`MappingOptions::backed_by_file`] |
//! | `OpenFileMapping(FILE_MAP_READ / FILE_MAP_ALL_ACCESS, …, name)` | [`Mapping::open`] with [`Access::Read`](crate::security::Access::Read) / [`Access::ReadWrite`](crate::security::Access::ReadWrite) |
//! | `MapViewOfFile(h, access, offset, bytes)` | [`Mapping::view`], [`Mapping::read_only_view`] |
//! | `UnmapViewOfFile` | dropping the [`View`] |
//! | `FlushViewOfFile` | [`View::flush`] |
//! | `CloseHandle` of the last handle | dropping the creating [`Mapping`] ([`Lifetime::RemoveOnDrop`]), or [`Mapping::remove`] ([`Lifetime::Persistent`]) |
//! | `SECURITY_ATTRIBUTES` | [`MappingOptions::access_list`] |
//!
//! # Where the bytes are
//!
//! A memory-backed mapping is a file in `/dev/shm` holding exactly the mapping's bytes from
//! offset 0, named `procwire-UID-NAME` for `Local\NAME` and `procwire-global-NAME` for
//! `Global\NAME` ([`Mapping::shm_name_of`]). Anything that speaks POSIX shared memory reads
//! and writes the same bytes: C's `shm_open("/procwire-1000-HelloWorld", …)`, or Python's
//!
//! ```python
//! from multiprocessing import shared_memory
//! shm = shared_memory.SharedMemory(name="procwire-1000-HelloWorld")
//! ```
//!
//! (On Python before 3.13, also call
//! `multiprocessing.resource_tracker.unregister(shm._name, "shared_memory")`, or Python
//! removes the mapping when it exits; see `docs/mapping.md`.)
//!
//! Mappings share one namespace with the [named sync objects](crate::sync): a small entry
//! per name under the namespace directory records what kind of object the name is. The
//! design, lifetime rules and access rules are in `docs/mapping.md`.
//!
//! # Examples
//!
//! ```no_run
//! use procwire::mapping::{Mapping, MappingOptions};
//! use procwire::security::Access;
//!
//! let mapping = Mapping::create(r"Local\HelloWorld", 4096)?;
//! let view = mapping.view(0, 4096)?;
//! view.write_at(0, b"Message from the first process\0")?;
//!
//! // In another process:
//! let mapping = Mapping::open(r"Local\HelloWorld", Access::Read)?;
//! let view = mapping.view(0, 4096)?;
//! let message = view.read_vec(0, 30)?;
//! # Ok::<(), procwire::mapping::MappingError>(())
//! ```

mod error;
mod object;
mod options;
mod view;

pub use crate::wire::Lifetime;
pub use error::MappingError;
pub use object::Mapping;
pub use options::MappingOptions;
pub use view::View;

use crate::name::Namespace;
use crate::wire::ObjectKind;

/// The names of the live mappings in a namespace, sorted.
///
/// # Errors
///
/// An I/O error when the namespace directory cannot be read.
pub fn list(ns: Namespace) -> std::io::Result<Vec<String>> {
    Ok(crate::registry::object::list(ns)?
        .into_iter()
        .filter(|(_, kind)| *kind == ObjectKind::Mapping)
        .map(|(name, _)| name)
        .collect())
}
