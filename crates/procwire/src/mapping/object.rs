//! The mapping handle: `CreateFileMapping` / `OpenFileMapping`.

use std::os::fd::AsFd;
use std::path::Path;
use std::sync::Arc;

use super::{MappingError, MappingOptions, View};
use crate::name::Name;
use crate::registry::object::{self, Object};
use crate::security::Access;
use crate::sys::shm::{self, Region};
use crate::wire::{Lifetime, ObjectKind};

/// A named file mapping: shared memory (or a file) that processes open by name and map
/// [`View`]s of.
///
/// A mapping is backed either by memory (`/dev/shm`, the Windows "paging file" case of
/// `CreateFileMapping(INVALID_HANDLE_VALUE, …)`) or by a file of the user's
/// ([`MappingOptions::backed_by_file`]). It lives in the same namespace as
/// [`NamedMutex`](crate::sync::NamedMutex), [`NamedSemaphore`](crate::sync::NamedSemaphore)
/// and [`NamedEvent`](crate::sync::NamedEvent): a name is one of them at a time.
///
/// Who removes the name is the creator's [`Lifetime`] choice:
/// [`RemoveOnDrop`](Lifetime::RemoveOnDrop) (the default) when this creating handle is
/// dropped or its process dies, [`Persistent`](Lifetime::Persistent) never by itself. Handles
/// from [`open`](Self::open) never remove the name. Views outlive both.
///
/// # Examples
///
/// The seed's exchange, one process each:
///
/// ```no_run
/// use procwire::mapping::Mapping;
/// use procwire::security::Access;
///
/// // First process: create, write, keep the mapping while the second one reads.
/// let mapping = Mapping::create(r"Local\HelloWorld", 65536)?;
/// mapping.view(0, 4096)?.write_at(0, b"Message from the first process\0")?;
///
/// // Second process: open by name, map a read-only view, read.
/// let mapping = Mapping::open(r"Local\HelloWorld", Access::Read)?;
/// let text = mapping.view(0, 4096)?.read_vec(0, 30)?;
/// assert_eq!(text, b"Message from the first process");
/// # Ok::<(), procwire::mapping::MappingError>(())
/// ```
///
/// # References
/// - [`CreateFileMappingW`](https://learn.microsoft.com/en-us/windows/win32/api/winbase/nf-winbase-createfilemappingw),
///   [`OpenFileMappingW`](https://learn.microsoft.com/en-us/windows/win32/api/memoryapi/nf-memoryapi-openfilemappingw)
/// - [`shm_open(3)`](https://man7.org/linux/man-pages/man3/shm_open.3.html),
///   [`mmap(2)`](https://man7.org/linux/man-pages/man2/mmap.2.html)
#[derive(Debug)]
pub struct Mapping {
    object: Object,
    name: Arc<str>,
    access: Access,
}

pub(crate) fn parse<N>(name: N) -> Result<(Name, String), MappingError>
where
    N: TryInto<Name>,
    N::Error: Into<MappingError>,
{
    let name: Name = name.try_into().map_err(Into::into)?;
    object::local_object(&name, ObjectKind::Mapping)?;
    let display = name.to_string();
    Ok((name, display))
}

impl Mapping {
    pub(crate) fn from_object(object: Object, name: String, access: Access) -> Mapping {
        Mapping {
            object,
            name: name.into(),
            access,
        }
    }

    /// A mapping on a data file received from another process (a passed handle).
    pub(crate) fn from_passed(
        data: std::os::fd::OwnedFd,
        name: String,
        size: u64,
        access: Access,
    ) -> Mapping {
        let object = Object::passed(data, size, access.can_write());
        Mapping::from_object(object, name, access)
    }

    /// The open file that holds the bytes, and the namespace it was opened in: what passing
    /// the handle sends and checks.
    pub(crate) fn data(&self) -> (std::os::fd::BorrowedFd<'_>, crate::name::Namespace) {
        (self.object.data(), self.object.namespace())
    }

    /// Creates a memory-backed mapping of `size` bytes, zero-filled, with the default
    /// [`MappingOptions`] (owner only, [`Lifetime::RemoveOnDrop`]).
    ///
    /// # Errors
    ///
    /// As [`MappingOptions::create`].
    pub fn create<N>(name: N, size: u64) -> Result<Mapping, MappingError>
    where
        N: TryInto<Name>,
        N::Error: Into<MappingError>,
    {
        MappingOptions::new().size(size).create(name)
    }

    /// Opens the mapping `name` for `access`: [`Access::Read`] or [`Access::ReadWrite`]
    /// (`OpenFileMapping` with `FILE_MAP_READ` or `FILE_MAP_ALL_ACCESS`).
    ///
    /// # Errors
    ///
    /// [`MappingError::NotFound`] when no mapping has the name (or its creator has exited
    /// and it was [`RemoveOnDrop`](Lifetime::RemoveOnDrop)); [`MappingError::WrongKind`] when
    /// the name is a mutex, semaphore or event; [`MappingError::AccessDenied`] when this user
    /// may not have `access`; [`MappingError::NotPermitted`] for [`Access::Write`] (a
    /// writable mapping is readable too); [`MappingError::InvalidName`].
    pub fn open<N>(name: N, access: Access) -> Result<Mapping, MappingError>
    where
        N: TryInto<Name>,
        N::Error: Into<MappingError>,
    {
        let (name, display) = parse(name)?;
        if access == Access::Write {
            return Err(MappingError::NotPermitted {
                name: display,
                detail: "a mapping cannot be opened write-only; ask for ReadWrite".into(),
            });
        }
        let object = object::open(&name, ObjectKind::Mapping, access.can_write())
            .map_err(|e| MappingError::from_object(&display, e))?;
        Ok(Mapping::from_object(object, display, access))
    }

    /// Opens the mapping `name` read-write, or creates it with `size` bytes if nothing has
    /// the name. An existing mapping keeps its size: check [`size`](Self::size), and
    /// [`created`](Self::created) to know which happened.
    ///
    /// # Errors
    ///
    /// As [`create`](Self::create) and [`open`](Self::open).
    pub fn open_or_create<N>(name: N, size: u64) -> Result<Mapping, MappingError>
    where
        N: TryInto<Name>,
        N::Error: Into<MappingError>,
    {
        MappingOptions::new().size(size).open_or_create(name)
    }

    /// The `/dev/shm` name that a memory-backed mapping `name` has: what Python's
    /// `multiprocessing.shared_memory.SharedMemory(name=...)` opens, and what C's
    /// `shm_open` opens with a `/` in front. `procwire-UID-OBJECT` in Local,
    /// `procwire-global-OBJECT` in Global.
    ///
    /// # Errors
    ///
    /// [`MappingError::InvalidName`].
    pub fn shm_name_of<N>(name: N) -> Result<String, MappingError>
    where
        N: TryInto<Name>,
        N::Error: Into<MappingError>,
    {
        let (name, _) = parse(name)?;
        let (ns, object) = object::local_object(&name, ObjectKind::Mapping)?;
        Ok(object::shm_name(ns, object))
    }

    /// The mapping's name, in canonical form (`Local\HelloWorld`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The mapping's size in bytes, fixed at creation.
    pub fn size(&self) -> u64 {
        self.object.size()
    }

    /// What this handle may do: [`Access::Read`] or [`Access::ReadWrite`].
    pub fn access(&self) -> Access {
        self.access
    }

    /// How long the name lives, as its creator chose.
    pub fn lifetime(&self) -> Lifetime {
        self.object.lifetime()
    }

    /// Whether this handle created the mapping (and so, for
    /// [`RemoveOnDrop`](Lifetime::RemoveOnDrop), removes the name when dropped).
    pub fn created(&self) -> bool {
        self.object.created()
    }

    /// For a memory-backed mapping, its `/dev/shm` name (see
    /// [`shm_name_of`](Self::shm_name_of)); `None` when backed by a file.
    pub fn shm_name(&self) -> Option<String> {
        self.object.shm_name()
    }

    /// For a file-backed mapping, the file's absolute path.
    pub fn file_path(&self) -> Option<&Path> {
        self.object.file_path()
    }

    /// Maps `len` bytes from `offset` with this handle's access (`MapViewOfFile`). The
    /// offset needs no alignment.
    ///
    /// # Errors
    ///
    /// [`MappingError::OutOfRange`] when the range reaches past the end of the mapping;
    /// [`MappingError::InvalidSize`] for `len == 0`; [`MappingError::Io`] when the kernel
    /// cannot map it.
    pub fn view(&self, offset: u64, len: usize) -> Result<View, MappingError> {
        self.map(offset, len, self.access.can_write())
    }

    /// Maps `len` bytes from `offset` read-only, whatever this handle's access.
    ///
    /// # Errors
    ///
    /// As [`view`](Self::view).
    pub fn read_only_view(&self, offset: u64, len: usize) -> Result<View, MappingError> {
        self.map(offset, len, false)
    }

    /// Maps the whole mapping with this handle's access.
    ///
    /// # Errors
    ///
    /// As [`view`](Self::view); also [`MappingError::OutOfRange`] when the mapping is larger
    /// than this process's address space can take.
    pub fn view_all(&self) -> Result<View, MappingError> {
        let len = usize::try_from(self.size()).map_err(|_| self.out_of_range(0, self.size()))?;
        self.view(0, len)
    }

    fn out_of_range(&self, offset: u64, len: u64) -> MappingError {
        MappingError::OutOfRange {
            name: self.name.to_string(),
            what: "mapping",
            offset,
            len,
            size: self.size(),
        }
    }

    fn map(&self, offset: u64, len: usize, writable: bool) -> Result<View, MappingError> {
        if len == 0 {
            return Err(MappingError::InvalidSize {
                name: self.name.to_string(),
                detail: "a view of zero bytes; ask for at least 1 byte".into(),
            });
        }
        let end = offset.checked_add(len as u64);
        if end.is_none_or(|end| end > self.size()) {
            return Err(self.out_of_range(offset, len as u64));
        }
        if writable && !self.object.writable() {
            return Err(MappingError::NotPermitted {
                name: self.name.to_string(),
                detail: "a writable view needs a handle opened with ReadWrite access".into(),
            });
        }
        let page = shm::page_size() as u64;
        let start = offset % page;
        let map_len = usize::try_from(start)
            .ok()
            .and_then(|s| s.checked_add(len))
            .ok_or_else(|| self.out_of_range(offset, len as u64))?;
        let region = Region::map(
            self.object.data().as_fd(),
            offset - start,
            map_len,
            writable,
        )
        .map_err(|source| MappingError::Io {
            name: self.name.to_string(),
            context: format!("cannot map {len} bytes at offset {offset}"),
            source,
        })?;
        Ok(View::new(
            region,
            start as usize,
            len,
            offset,
            Arc::clone(&self.name),
        ))
    }
}

impl crate::registry::NamedObject for Mapping {
    const KIND: ObjectKind = ObjectKind::Mapping;
    type Error = MappingError;

    fn exists<N>(name: N) -> Result<bool, MappingError>
    where
        N: TryInto<Name>,
        N::Error: Into<MappingError>,
    {
        let (name, display) = parse(name)?;
        match object::kind_of(&name, ObjectKind::Mapping) {
            Ok(None) => Ok(false),
            Ok(Some(ObjectKind::Mapping)) => Ok(true),
            Ok(Some(other)) => Err(MappingError::WrongKind {
                name: display,
                found: other.with_article().into(),
            }),
            Err(e) => Err(MappingError::from_object(&display, e)),
        }
    }

    /// Removes the mapping `name`: new opens fail from now on, while open handles and views
    /// keep working (`shm_unlink`). A file-backed mapping's file is left alone; only the
    /// name goes.
    fn remove<N>(name: N) -> Result<(), MappingError>
    where
        N: TryInto<Name>,
        N::Error: Into<MappingError>,
    {
        let (name, display) = parse(name)?;
        object::remove(&name, ObjectKind::Mapping)
            .map_err(|e| MappingError::from_object(&display, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::name::Namespace;
    use crate::registry::NamedObject;
    use crate::sync::NamedMutex;
    use std::sync::atomic::Ordering;

    fn unique(tag: &str) -> String {
        use std::sync::atomic::AtomicUsize;
        static N: AtomicUsize = AtomicUsize::new(0);
        format!(
            "unit-map-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        )
    }

    #[test]
    fn create_write_open_read_and_remove_on_drop() {
        let name = unique("basic");
        let mapping = Mapping::create(name.as_str(), 10_000).unwrap();
        assert_eq!(mapping.size(), 10_000);
        assert_eq!(mapping.name(), format!(r"Local\{name}"));
        assert!(mapping.created());
        let shm = mapping.shm_name().unwrap();
        assert_eq!(shm, Mapping::shm_name_of(name.as_str()).unwrap());
        let meta = std::fs::metadata(format!("/dev/shm/{shm}")).unwrap();
        assert_eq!(
            meta.len(),
            10_000,
            "the /dev/shm file is exactly the mapping"
        );

        let view = mapping.view(4000, 6000).unwrap();
        view.write_at(5, b"hello").unwrap();
        let other = Mapping::open(name.as_str(), Access::Read).unwrap();
        assert!(!other.created());
        let ro = other.view(4005, 5).unwrap();
        assert!(!ro.is_writable());
        assert_eq!(ro.read_vec(0, 5).unwrap(), b"hello");
        assert!(matches!(
            ro.write_at(0, b"x"),
            Err(MappingError::NotPermitted { .. })
        ));
        assert!(matches!(
            other.view(0, 10),
            Ok(v) if !v.is_writable()
        ));
        let counter = view.atomic_u64(4096 - 4000).unwrap();
        counter.fetch_add(3, Ordering::AcqRel);
        assert_eq!(
            other.view(4096, 8).unwrap().read_vec(0, 8).unwrap(),
            3u64.to_ne_bytes()
        );
        assert!(matches!(
            view.atomic_u32(1),
            Err(MappingError::Misaligned { align: 4, .. })
        ));
        assert!(matches!(
            mapping.view(9_999, 2),
            Err(MappingError::OutOfRange { .. })
        ));
        assert!(matches!(
            view.read_vec(5_999, 2),
            Err(MappingError::OutOfRange { .. })
        ));

        assert!(Mapping::exists(name.as_str()).unwrap());
        drop(mapping);
        assert!(!Mapping::exists(name.as_str()).unwrap());
        let e = Mapping::open(name.as_str(), Access::Read).unwrap_err();
        assert!(matches!(e, MappingError::NotFound { .. }), "{e}");
        // Views outlive the name.
        assert_eq!(ro.read_vec(0, 5).unwrap(), b"hello");
        assert!(crate::mapping::list(Namespace::Local).is_ok());
    }

    #[test]
    fn kinds_share_one_namespace() {
        let name = unique("kind");
        let _mutex = NamedMutex::create(name.as_str()).unwrap();
        let e = Mapping::open(name.as_str(), Access::Read).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(r"`Local\{name}` is a mutex, not a mapping")
        );
        let e = Mapping::create(name.as_str(), 1).unwrap_err();
        assert!(matches!(e, MappingError::WrongKind { .. }), "{e}");
        let e = Mapping::exists(name.as_str()).unwrap_err();
        assert!(matches!(e, MappingError::WrongKind { .. }), "{e}");
    }

    #[test]
    fn bad_sizes_and_names_are_refused() {
        let name = unique("bad");
        let e = Mapping::create(name.as_str(), 0).unwrap_err();
        assert!(matches!(e, MappingError::InvalidSize { .. }), "{e}");
        let e = Mapping::create("x".repeat(65).as_str(), 1).unwrap_err();
        assert!(matches!(e, MappingError::InvalidName(_)), "{e}");
        let e = Mapping::create(format!(r"\\.\pipe\{name}").as_str(), 1).unwrap_err();
        assert!(e.to_string().contains("pipe name, but a mapping"), "{e}");
        let e = Mapping::open(name.as_str(), Access::Write).unwrap_err();
        assert!(matches!(e, MappingError::NotPermitted { .. }), "{e}");
        let m = Mapping::create(name.as_str(), 1).unwrap();
        let e = m.view(0, 0).unwrap_err();
        assert!(matches!(e, MappingError::InvalidSize { .. }), "{e}");
        let e = Mapping::create(name.as_str(), 1).unwrap_err();
        assert!(matches!(e, MappingError::AlreadyExists { .. }), "{e}");
    }

    #[test]
    fn open_or_create_creates_once_then_opens() {
        let name = unique("ooc");
        let first = Mapping::open_or_create(name.as_str(), 100).unwrap();
        assert!(first.created());
        let second = Mapping::open_or_create(name.as_str(), 5000).unwrap();
        assert!(!second.created());
        assert_eq!(second.size(), 100, "an existing mapping keeps its size");
        assert_eq!(second.access(), Access::ReadWrite);
        first.view(0, 1).unwrap().write_at(0, b"x").unwrap();
        assert_eq!(second.view(0, 1).unwrap().read_vec(0, 1).unwrap(), b"x");
        let persistent = MappingOptions::new()
            .size(10)
            .lifetime(Lifetime::Persistent)
            .create(format!("{name}-p").as_str())
            .unwrap();
        drop(persistent);
        assert!(Mapping::exists(format!("{name}-p").as_str()).unwrap());
        Mapping::remove(format!("{name}-p").as_str()).unwrap();
        assert!(!Mapping::exists(format!("{name}-p").as_str()).unwrap());
    }

    #[test]
    fn mappings_are_send_and_sync() {
        fn check<T: Send + Sync + std::fmt::Debug>() {}
        check::<Mapping>();
        check::<View>();
        check::<MappingError>();
    }
}
