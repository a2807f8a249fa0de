//! The builder for creating mappings.

use std::path::{Path, PathBuf};

use super::object::parse;
use super::{Mapping, MappingError};
use crate::name::Name;
use crate::registry::object::{self, CreateSpec};
use crate::security::{Access, AccessList};
use crate::wire::{Lifetime, ObjectKind};

/// How to create a mapping: the equivalent of `CreateFileMapping`'s arguments. Everything
/// here is fixed at creation; [`Mapping::open`] takes only the access it wants.
///
/// # Examples
///
/// ```no_run
/// use procwire::mapping::{Lifetime, MappingOptions};
/// use procwire::security::{Access, AccessList};
///
/// // Memory-backed, readable by every user, kept until removed.
/// let mapping = MappingOptions::new()
///     .size(1 << 20)
///     .access_list(AccessList::owner_only().everyone(Access::Read))
///     .lifetime(Lifetime::Persistent)
///     .create(r"Global\Telemetry")?;
///
/// // Backed by a file that keeps the data after every process is gone.
/// let journal = MappingOptions::new()
///     .size(4096)
///     .backed_by_file("/var/tmp/journal.bin")
///     .create("Journal")?;
/// # Ok::<(), procwire::mapping::MappingError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct MappingOptions {
    size: Option<u64>,
    file: Option<PathBuf>,
    access: AccessList,
    lifetime: Lifetime,
}

impl MappingOptions {
    /// Memory-backed, no size yet, owner only, [`Lifetime::RemoveOnDrop`].
    pub fn new() -> MappingOptions {
        MappingOptions::default()
    }

    /// The size in bytes (`dwMaximumSize`). Required for memory-backed mappings; for a
    /// file-backed one the file is extended to it if shorter, and it defaults to the file's
    /// length.
    pub fn size(mut self, size: u64) -> Self {
        self.size = Some(size);
        self
    }

    /// Backs the mapping with the file at `path` (created if missing) instead of memory: the
    /// data is the file's, and stays in it after every process is gone. Other processes open
    /// the mapping by name, as for memory; they need the file's own permission.
    pub fn backed_by_file(mut self, path: impl AsRef<Path>) -> Self {
        self.file = Some(path.as_ref().to_owned());
        self
    }

    /// Who may open the mapping, and for what (owner only by default). It becomes the
    /// memory's file mode: [`Principal::Everyone`](crate::security::Principal::Everyone)
    /// with [`Access::Read`] or [`Access::ReadWrite`] and one
    /// [`Principal::Group`](crate::security::Principal::Group) can be expressed; other
    /// grants make `create` fail with [`MappingError::NotPermitted`]. A file-backed mapping
    /// keeps its existing file's mode; a file it creates gets this one.
    pub fn access_list(mut self, access: AccessList) -> Self {
        self.access = access;
        self
    }

    /// Who removes the name, and when. [`Lifetime::RemoveOnDrop`] by default.
    pub fn lifetime(mut self, lifetime: Lifetime) -> Self {
        self.lifetime = lifetime;
        self
    }

    /// Creates the mapping `name`, zero-filled (or with the file's contents).
    ///
    /// # Errors
    ///
    /// [`MappingError::AlreadyExists`] when a live mapping has the name;
    /// [`MappingError::WrongKind`] when a mutex, semaphore or event has it;
    /// [`MappingError::InvalidSize`] for a zero size, or no size for memory or an empty
    /// file; [`MappingError::NotPermitted`] for an access list file modes cannot express;
    /// [`MappingError::InvalidName`] for a malformed, pipe, mailslot or remote name, or one
    /// longer than [`MAX_OBJECT_LEN`](crate::name::MAX_OBJECT_LEN);
    /// [`MappingError::Io`] when memory runs out (`ENOSPC` on `/dev/shm`) or a file cannot
    /// be made.
    pub fn create<N>(&self, name: N) -> Result<Mapping, MappingError>
    where
        N: TryInto<Name>,
        N::Error: Into<MappingError>,
    {
        let (name, display) = parse(name)?;
        if self.file.is_none() && self.size.is_none() {
            return Err(MappingError::InvalidSize {
                name: display,
                detail: "a memory-backed mapping needs a size".into(),
            });
        }
        let spec = CreateSpec {
            kind: ObjectKind::Mapping,
            lifetime: self.lifetime,
            size: self.size,
            file: self.file.as_deref(),
            access: &self.access,
        };
        let (object, ()) = object::create(&name, &spec, |_| Ok(()))
            .map_err(|e| MappingError::from_object(&display, e))?;
        Ok(Mapping::from_object(object, display, Access::ReadWrite))
    }

    /// Opens the mapping `name` read-write if it exists, else creates it with these options.
    /// An existing mapping keeps its own size, backing and lifetime.
    ///
    /// # Errors
    ///
    /// As [`create`](Self::create) and [`Mapping::open`].
    pub fn open_or_create<N>(&self, name: N) -> Result<Mapping, MappingError>
    where
        N: TryInto<Name>,
        N::Error: Into<MappingError>,
    {
        let (name, _) = parse(name)?;
        // A create and an open can each lose a race with a remove or a create elsewhere;
        // a few rounds settle it.
        let mut last = None;
        for _ in 0..8 {
            match self.create(&name) {
                Err(e @ MappingError::AlreadyExists { .. }) => last = Some(e),
                result => return result,
            }
            match Mapping::open(&name, Access::ReadWrite) {
                Err(MappingError::NotFound { .. }) => {}
                result => return result,
            }
        }
        // Still "exists" to create and "not found" to open: something in /dev/shm that no
        // entry claims. The create error says so.
        Err(last.expect("the loop ran"))
    }
}
