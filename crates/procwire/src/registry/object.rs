//! Named objects with bytes: mappings, mutexes, semaphores and events share one namespace
//! per Local/Global, as on Windows.
//!
//! The entry is in the registry (`ROOT/registry/object/NAME`); the bytes are elsewhere:
//! - memory-backed objects (mappings and every sync object) in `/dev/shm/procwire-UID-NAME`
//!   (Local) or `/dev/shm/procwire-global-NAME` (Global): raw, from offset 0, so that any
//!   POSIX `shm_open` user (Python's `multiprocessing.shared_memory`) sees the same bytes;
//! - file-backed mappings in the user's own file, whose path the entry records.
//!
//! Creating a memory-backed object makes its memory first (exclusively: `O_EXCL`), prepares
//! it, and only then takes the name, so nobody can open an object whose bytes are not ready
//! and nobody can take a fresh object for a stale one. Memory is removed only by the
//! holder of the name, or together with a stale entry of the same owner.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use rustix::fs::{Mode, OFlags};

use super::store::{self, Claim, ClaimError, Found, Lookup};
use crate::name::{Name, NameError, Namespace};
use crate::security::AccessList;
use crate::sys::fs::{self as sysfs, FileId};
use crate::sys::shm;
use crate::wire::{Backing, KindClass, Lifetime, ObjectKind};

/// What went wrong with a named object, before the mapping or sync layer names it.
#[derive(Debug)]
pub(crate) enum ObjectError {
    InvalidName(NameError),
    NotFound(String),
    AlreadyExists(String),
    /// What the name is instead: `a mutex`, `a directory`, …
    WrongKind(String),
    AccessDenied(String),
    NotPermitted(String),
    InvalidSize(String),
    /// The object's files disagree with each other.
    Corrupt(String),
    Io(String, io::Error),
}

impl From<NameError> for ObjectError {
    fn from(e: NameError) -> Self {
        ObjectError::InvalidName(e)
    }
}

fn io_error(context: impl Into<String>) -> impl FnOnce(io::Error) -> ObjectError {
    let context = context.into();
    move |e| ObjectError::Io(context, e)
}

/// The namespace and object part of a name that can name a shared-memory object: a local
/// name without a `\\.\pipe\` or `\\.\mailslot\` prefix.
pub(crate) fn local_object(name: &Name, kind: ObjectKind) -> Result<(Namespace, &str), NameError> {
    match (name.class(), name.namespace()) {
        (None, Some(ns)) => Ok((ns, name.object())),
        (Some(class), _) => Err(NameError::WrongClass {
            name: name.to_string(),
            found: class.as_str(),
            expected: kind.noun(),
        }),
        (None, None) => unreachable!("names without a class are always local"),
    }
}

/// The `/dev/shm` name of a memory-backed object: what `shm_open` (with a leading `/`) and
/// Python's `SharedMemory(name=...)` (without one) open.
pub(crate) fn shm_name(ns: Namespace, object: &str) -> String {
    match ns {
        Namespace::Local => format!("procwire-{}-{object}", crate::sys::current_user().0),
        Namespace::Global => format!("procwire-global-{object}"),
    }
}

/// The path of a memory-backed object's bytes.
pub(crate) fn memory_path(ns: Namespace, object: &str) -> PathBuf {
    Path::new(shm::SHM_DIR).join(shm_name(ns, object))
}

/// How to create an object.
#[derive(Debug)]
pub(crate) struct CreateSpec<'a> {
    pub(crate) kind: ObjectKind,
    pub(crate) lifetime: Lifetime,
    /// The size in bytes; `None` for a file-backed mapping that takes its file's size.
    pub(crate) size: Option<u64>,
    /// `None`: memory; `Some(path)`: that file.
    pub(crate) file: Option<&'a Path>,
    pub(crate) access: &'a AccessList,
}

/// An open named object: its entry and its bytes. Dropping the creating handle of a
/// [`Lifetime::RemoveOnDrop`] object removes the name.
#[derive(Debug)]
pub(crate) struct Object {
    ns: Namespace,
    object: String,
    lifetime: Lifetime,
    file: Option<PathBuf>,
    size: u64,
    data: OwnedFd,
    writable: bool,
    /// The creator's hold on the name (`RemoveOnDrop` only).
    claim: Option<Claim>,
    created: bool,
    /// Received from another process (a passed handle): the name is the sender's, and not
    /// one this process could open.
    passed: bool,
}

impl Object {
    /// An object whose open data file came from another process (a passed handle): it
    /// holds no claim on any name and removes nothing.
    pub(crate) fn passed(data: OwnedFd, size: u64, writable: bool) -> Object {
        Object {
            ns: Namespace::Local,
            object: String::new(),
            lifetime: Lifetime::Persistent,
            file: None,
            size,
            data,
            writable,
            claim: None,
            created: false,
            passed: true,
        }
    }

    /// The namespace it was opened in (for a passed object: [`Namespace::Local`], which
    /// passing it on treats as private).
    pub(crate) fn namespace(&self) -> Namespace {
        self.ns
    }

    /// Its size in bytes.
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// How long it lives.
    pub(crate) fn lifetime(&self) -> Lifetime {
        self.lifetime
    }

    /// The file that holds its bytes, for a file-backed mapping.
    pub(crate) fn file_path(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// The `/dev/shm` name, for a memory-backed object.
    pub(crate) fn shm_name(&self) -> Option<String> {
        (self.file.is_none() && !self.passed).then(|| shm_name(self.ns, &self.object))
    }

    /// The open file that holds the bytes.
    pub(crate) fn data(&self) -> BorrowedFd<'_> {
        self.data.as_fd()
    }

    /// Whether the data was opened for writing.
    pub(crate) fn writable(&self) -> bool {
        self.writable
    }

    /// Whether this handle created the object.
    pub(crate) fn created(&self) -> bool {
        self.created
    }
}

impl Drop for Object {
    fn drop(&mut self) {
        let Some(claim) = self.claim.take() else {
            return;
        };
        // Only our own entry and bytes: the name may have been removed and created anew.
        if claim.is_current() && self.file.is_none() {
            if let Ok(meta) = rustix::fs::fstat(&self.data) {
                let ours = FileId {
                    dev: meta.st_dev,
                    ino: meta.st_ino,
                };
                let _ = sysfs::unlink_if_same(&memory_path(self.ns, &self.object), ours);
            }
        }
        claim.release();
    }
}

/// Turns a failed claim into the error a caller can act on.
fn claim_error(kind: ObjectKind, e: ClaimError) -> ObjectError {
    match e {
        ClaimError::Taken(found) if found.entry.kind == kind => {
            ObjectError::AlreadyExists(format!(
                "{} of that name exists (created by pid {}, uid {}); open it, or remove it first",
                found.entry.kind.with_article(),
                found.entry.owner_pid,
                found.owner_uid
            ))
        }
        ClaimError::Taken(found) => ObjectError::WrongKind(found.entry.kind.with_article().into()),
        ClaimError::Untrusted(what) => ObjectError::WrongKind(what),
        ClaimError::StaleOfOther(found) => ObjectError::AccessDenied(format!(
            "a stale {} of uid {} holds the name (its creator, pid {}, has exited); only that \
             user or root can clear it away",
            found.entry.kind.noun(),
            found.owner_uid,
            found.entry.owner_pid
        )),
        ClaimError::Io(e) => ObjectError::Io("cannot take the name in the registry".into(), e),
    }
}

/// Removes the memory of a stale or removed object, if it is the memory of the entry's
/// owner; memory of anyone else is left alone.
fn remove_memory_of(ns: Namespace, found: &Found) -> io::Result<()> {
    if found.entry.backing != Backing::Memory {
        return Ok(());
    }
    let path = memory_path(ns, &found.entry.name);
    if let Some((id, meta)) = sysfs::id_at(&path)? {
        if meta.uid() == found.owner_uid && found.is_current() {
            sysfs::unlink_if_same(&path, id)?;
        }
    }
    Ok(())
}

/// Creates the object `name` as `spec` says; `init` prepares its bytes (given the open,
/// sized data file) before anyone else can open it.
pub(crate) fn create<T>(
    name: &Name,
    spec: &CreateSpec<'_>,
    init: impl FnOnce(&OwnedFd) -> Result<T, ObjectError>,
) -> Result<(Object, T), ObjectError> {
    let (ns, object) = local_object(name, spec.kind)?;
    let (mode, gid) = spec.access.file_mode().map_err(ObjectError::NotPermitted)?;
    if spec.size == Some(0) {
        return Err(ObjectError::InvalidSize(
            "a size of zero bytes; give at least 1 byte".into(),
        ));
    }
    let dir = store::class_dir(ns, KindClass::Object)
        .map_err(io_error("cannot use the namespace's registry"))?;
    sweep_once(&dir, ns);

    let (data, size, file, memory) = match spec.file {
        None => {
            let size = spec.size.unwrap_or(0);
            let data = create_memory(ns, object, spec.kind)?;
            let memory = MemoryCleanup(Some(memory_path(ns, object)), fd_id(&data));
            shm::allocate(data.as_fd(), size).map_err(|e| {
                ObjectError::Io(
                    format!(
                        "cannot give {} {size} bytes",
                        memory_path(ns, object).display()
                    ),
                    e,
                )
            })?;
            if let Some(gid) = gid {
                rustix::fs::fchown(&data, None, Some(rustix::fs::Gid::from_raw(gid))).map_err(
                    |e| {
                        ObjectError::NotPermitted(format!(
                            "cannot give the object to group {gid} ({e}); a user can only grant \
                             to groups they belong to"
                        ))
                    },
                )?;
            }
            // Owner only until it belongs to the right group (above): created with its final
            // mode, it would be open for a moment to the creator's primary group.
            rustix::fs::fchmod(&data, Mode::from_raw_mode(mode)).map_err(|e| {
                ObjectError::Io(
                    format!("cannot set the mode of the object's memory to {mode:03o}"),
                    e.into(),
                )
            })?;
            (data, size, None, memory)
        }
        Some(file) => {
            let (data, size, absolute) = open_backing_file(file, spec.size, mode)?;
            (data, size, Some(absolute), MemoryCleanup(None, None))
        }
    };
    let extra = init(&data)?;

    let mut entry = store::entry_for(spec.kind, object);
    entry.lifetime = spec.lifetime;
    entry.size = size;
    entry.backing = match &file {
        None => Backing::Memory,
        Some(path) => {
            let id = fd_id(&data).unwrap_or(FileId { dev: 0, ino: 0 });
            Backing::File {
                path: path.as_os_str().as_bytes().to_vec(),
                dev: id.dev,
                ino: id.ino,
            }
        }
    };
    // Memory in place before the entry: a stale entry found now cannot own it (it is ours,
    // just made), so clearing one away removes only the entry.
    let claim = store::claim(ns, &entry).map_err(|e| claim_error(spec.kind, e))?;
    memory.disarm();
    let claim = match spec.lifetime {
        Lifetime::RemoveOnDrop => Some(claim),
        Lifetime::Persistent => {
            claim.keep();
            None
        }
    };
    Ok((
        Object {
            ns,
            object: object.to_owned(),
            lifetime: spec.lifetime,
            file,
            size,
            data,
            writable: true,
            claim,
            created: true,
            passed: false,
        },
        extra,
    ))
}

fn fd_id(fd: &OwnedFd) -> Option<FileId> {
    rustix::fs::fstat(fd).ok().map(|s| FileId {
        dev: s.st_dev,
        ino: s.st_ino,
    })
}

/// Makes the memory of a new object, exclusively. Memory already there is the leftover of
/// a stale object of the same owner (cleared, with its entry, and made anew), or belongs to
/// something else: then the error says whose it is.
fn create_memory(ns: Namespace, object: &str, kind: ObjectKind) -> Result<OwnedFd, ObjectError> {
    let shm = shm_name(ns, object);
    let path = memory_path(ns, object);
    // Memory with no entry yet may be another create in progress (it makes the memory,
    // then the entry): give it a moment before calling the memory unclaimed.
    let mut unclaimed_looks = 0;
    for _ in 0..64 {
        match shm::create(&shm, 0o600) {
            Ok(data) => return Ok(data),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(ObjectError::Io(
                    format!("cannot create {}", path.display()),
                    e,
                ))
            }
        }
        let Some((id, meta)) =
            sysfs::id_at(&path).map_err(io_error(format!("cannot stat {}", path.display())))?
        else {
            continue;
        };
        let found = match store::read(ns, KindClass::Object, object)
            .map_err(io_error("cannot read its entry"))?
        {
            Lookup::Found(found) => found,
            Lookup::Untrusted(what) => return Err(ObjectError::WrongKind(what)),
            Lookup::Missing if unclaimed_looks < 50 => {
                unclaimed_looks += 1;
                std::thread::sleep(std::time::Duration::from_millis(2));
                continue;
            }
            Lookup::Missing => {
                return Err(ObjectError::AlreadyExists(format!(
                    "{} exists, belongs to uid {}, and no procwire object claims it (made by \
                     another program, by a crash of an older procwire, or by a procwire \
                     process with another XDG_RUNTIME_DIR); if nothing uses it, its owner can \
                     delete that file",
                    path.display(),
                    meta.uid()
                )))
            }
        };
        if found.stale_reason(ns).is_none() {
            return Err(claim_error(kind, ClaimError::Taken(Box::new(found))));
        }
        if meta.uid() != found.owner_uid {
            return Err(ObjectError::AlreadyExists(format!(
                "{} belongs to uid {}, but the stale entry of the name to uid {}; it is left \
                 alone",
                path.display(),
                meta.uid(),
                found.owner_uid
            )));
        }
        let denied = |e: io::Error| match e.kind() {
            io::ErrorKind::PermissionDenied => ObjectError::AccessDenied(format!(
                "a stale object of uid {} holds the name; only that user or root can clear it",
                found.owner_uid
            )),
            _ => ObjectError::Io("cannot clear away a stale object".into(), e),
        };
        if found.is_current() {
            sysfs::unlink_if_same(&path, id).map_err(denied)?;
            found.remove().map_err(denied)?;
            tracing::info!(object, "cleared away a stale object");
        }
    }
    Err(ObjectError::AlreadyExists(format!(
        "{} keeps reappearing; another process is creating the name",
        path.display()
    )))
}

/// Unlinks a half-made `/dev/shm` object unless disarmed.
struct MemoryCleanup(Option<PathBuf>, Option<FileId>);

impl MemoryCleanup {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for MemoryCleanup {
    fn drop(&mut self) {
        if let (Some(path), Some(id)) = (self.0.take(), self.1) {
            let _ = sysfs::unlink_if_same(&path, id);
        }
    }
}

/// Clears away, once per process and namespace, the objects whose `RemoveOnDrop` creator
/// died (their memory would otherwise stay in `/dev/shm` until the name is created again)
/// and temporary entries left by a process that died mid-create. Only entries this user may
/// remove go, and memory only with an entry of the same owner.
fn sweep_once(dir: &Path, ns: Namespace) {
    static SWEPT: [AtomicBool; 2] = [AtomicBool::new(false), AtomicBool::new(false)];
    let index = match ns {
        Namespace::Local => 0,
        Namespace::Global => 1,
    };
    if SWEPT[index].swap(true, Ordering::Relaxed) {
        return;
    }
    sweep(dir, ns);
}

/// The work of [`sweep_once`].
pub(crate) fn sweep(dir: &Path, ns: Namespace) {
    store::sweep_temporaries(dir);
    let Ok(items) = std::fs::read_dir(dir) else {
        return;
    };
    let me = crate::sys::current_user().0;
    for item in items.flatten() {
        let Ok(object) = item.file_name().into_string() else {
            continue;
        };
        if store::is_temporary(&object) {
            continue;
        }
        let Ok(Lookup::Found(found)) = store::read(ns, KindClass::Object, &object) else {
            continue;
        };
        if me != 0 && found.owner_uid != me {
            continue;
        }
        if let Some(reason) = found.stale_reason(ns) {
            if remove_memory_of(ns, &found).is_ok() && found.remove().is_ok() {
                tracing::info!(object, "cleared away a stale object: {reason}");
            }
        }
    }
}

/// Checks, before opening it, that the file at `path` is the regular file of `owner` that
/// the mapping was made with.
fn check_backing_file(path: &Path, owner: u32, made: FileId) -> Result<(), ObjectError> {
    let shown = path.display();
    let (id, meta) = match sysfs::id_at(path) {
        Ok(Some(found)) => found,
        Ok(None) => {
            return Err(ObjectError::NotFound(format!(
                "its file {shown} has been removed"
            )))
        }
        Err(e) => return Err(ObjectError::Io(format!("cannot stat {shown}"), e)),
    };
    let kind = rustix::fs::FileType::from_raw_mode(meta.mode());
    if kind != rustix::fs::FileType::RegularFile {
        return Err(ObjectError::Corrupt(format!(
            "its file {shown} is not a regular file but a {kind:?}; refusing to map it"
        )));
    }
    if meta.uid() != owner {
        return Err(ObjectError::Corrupt(format!(
            "its file {shown} belongs to uid {} but the mapping was made by uid {owner}; \
             refusing to use another user's file or memory through a shared name",
            meta.uid()
        )));
    }
    if id != made {
        return Err(ObjectError::Corrupt(format!(
            "its file {shown} is not the file the mapping was made with (it was replaced); \
             refusing to map it"
        )));
    }
    Ok(())
}

/// Opens (or creates) the user's file that backs a mapping and gives it at least `size`
/// bytes; returns the file, the mapping's size and the file's absolute path.
fn open_backing_file(
    path: &Path,
    size: Option<u64>,
    mode: u32,
) -> Result<(OwnedFd, u64, PathBuf), ObjectError> {
    let shown = path.display();
    let file = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(mode)
        .custom_flags((OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY).bits() as i32)
        .open(path)
        .map_err(|e| match e.kind() {
            io::ErrorKind::PermissionDenied => {
                ObjectError::AccessDenied(format!("cannot open its file {shown} for writing: {e}"))
            }
            _ if sysfs::is_symlink_error(&e) => ObjectError::NotPermitted(format!(
                "{shown} is a symbolic link; give the path of the file itself"
            )),
            _ => ObjectError::Io(format!("cannot open its file {shown}"), e),
        })?;
    let meta = file
        .metadata()
        .map_err(io_error(format!("cannot stat {shown}")))?;
    if !meta.is_file() {
        return Err(ObjectError::NotPermitted(format!(
            "{shown} is not a regular file"
        )));
    }
    let me = crate::sys::current_user().0;
    if meta.uid() != me {
        return Err(ObjectError::NotPermitted(format!(
            "{shown} belongs to uid {}; a mapping is backed only by a file of the user who \
             creates it (uid {me}), so that nobody else can read or change what it holds",
            meta.uid()
        )));
    }
    let size = match size {
        Some(size) => {
            if meta.len() < size {
                file.set_len(size)
                    .map_err(io_error(format!("cannot extend {shown} to {size} bytes")))?;
            }
            size
        }
        None if meta.len() == 0 => {
            return Err(ObjectError::InvalidSize(format!(
                "{shown} is empty and no size was given; give a size to extend it"
            )))
        }
        None => meta.len(),
    };
    let absolute = std::fs::canonicalize(path)
        .map_err(io_error(format!("cannot resolve the path {shown}")))?;
    Ok((file.into(), size, absolute))
}

/// Opens the object `name`, which must be of `kind`, for reading or for reading and
/// writing.
///
/// Opening takes no lock, so the name can be removed and created anew between reading the
/// entry and opening the bytes; the entry is checked again afterwards, and the open starts
/// over if it changed (the old entry with the new bytes would mix two objects).
pub(crate) fn open(name: &Name, kind: ObjectKind, writable: bool) -> Result<Object, ObjectError> {
    let (ns, object) = local_object(name, kind)?;
    for _ in 0..8 {
        if let Some(opened) = open_once(ns, object, kind, writable)? {
            return Ok(opened);
        }
    }
    Err(ObjectError::NotFound(
        "it was removed and created again while being opened, 8 times in a row; retry".into(),
    ))
}

/// Reads the trusted entry of `object`, or says what is there instead.
fn read_found(ns: Namespace, object: &str) -> Result<Option<Found>, ObjectError> {
    match store::read(ns, KindClass::Object, object).map_err(|e| match e.kind() {
        io::ErrorKind::PermissionDenied => {
            ObjectError::AccessDenied(format!("its entry cannot be read: {e}"))
        }
        _ => ObjectError::Io("cannot read its entry".into(), e),
    })? {
        Lookup::Missing => Ok(None),
        Lookup::Found(found) => Ok(Some(found)),
        Lookup::Untrusted(what) => Err(ObjectError::WrongKind(what)),
    }
}

/// One attempt of [`open`]: `None` when the entry changed while the bytes were opened.
fn open_once(
    ns: Namespace,
    object: &str,
    kind: ObjectKind,
    writable: bool,
) -> Result<Option<Object>, ObjectError> {
    let Some(found) = read_found(ns, object)? else {
        return Err(ObjectError::NotFound(
            "nothing of that name exists; create it first".into(),
        ));
    };
    let entry = &found.entry;
    if entry.kind != kind {
        return Err(ObjectError::WrongKind(entry.kind.with_article().into()));
    }
    if let Some(reason) = found.stale_reason(ns) {
        return Err(ObjectError::NotFound(reason));
    }
    let access_word = if writable { "read-write" } else { "read" };
    let (data, data_path, file) = match &entry.backing {
        Backing::Memory => {
            let data_path = memory_path(ns, object);
            let data = shm::open(&shm_name(ns, object), writable).map_err(|e| match e.kind() {
                io::ErrorKind::NotFound => ObjectError::NotFound(format!(
                    "its memory ({}) has been removed",
                    data_path.display()
                )),
                io::ErrorKind::PermissionDenied => {
                    ObjectError::AccessDenied(denied_detail(&data_path, access_word))
                }
                io::ErrorKind::InvalidData => ObjectError::Corrupt(format!(
                    "{} is {e}; refusing to use it (remove it: `procwire shm rm NAME`)",
                    data_path.display()
                )),
                _ => ObjectError::Io(format!("cannot open {}", data_path.display()), e),
            })?;
            (data, data_path, None)
        }
        Backing::File { path, dev, ino } => {
            let file = PathBuf::from(std::ffi::OsStr::from_bytes(path));
            // Looked at before it is opened: opening a device or a FIFO can have effects of
            // its own, and the path may have been replaced since the mapping was made.
            check_backing_file(
                &file,
                found.owner_uid,
                FileId {
                    dev: *dev,
                    ino: *ino,
                },
            )?;
            // Without following a link or blocking, and never as a controlling terminal.
            let data = File::options()
                .read(true)
                .write(writable)
                .custom_flags((OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY).bits() as i32)
                .open(&file)
                .map_err(|e| match e.kind() {
                    io::ErrorKind::NotFound => ObjectError::NotFound(format!(
                        "its file {} has been removed",
                        file.display()
                    )),
                    io::ErrorKind::PermissionDenied => {
                        ObjectError::AccessDenied(denied_detail(&file, access_word))
                    }
                    _ => ObjectError::Io(format!("cannot open {}", file.display()), e),
                })?;
            shm::check_regular(data.as_fd()).map_err(|e| match e.kind() {
                io::ErrorKind::InvalidData => ObjectError::Corrupt(format!(
                    "its file {} is {e}; refusing to map it",
                    file.display()
                )),
                _ => ObjectError::Io(format!("cannot stat {}", file.display()), e),
            })?;
            let data = OwnedFd::from(data);
            if fd_id(&data)
                != Some(FileId {
                    dev: *dev,
                    ino: *ino,
                })
            {
                return Err(ObjectError::Corrupt(format!(
                    "its file {} was replaced while being opened; refusing to map it",
                    file.display()
                )));
            }
            (data, file.clone(), Some(file))
        }
        Backing::Socket => return Err(ObjectError::WrongKind(entry.kind.with_article().into())),
    };
    let stat = rustix::fs::fstat(&data)
        .map_err(|e| ObjectError::Io(format!("cannot stat {}", data_path.display()), e.into()))?;
    // The bytes must belong to whoever made the entry: otherwise any user could point
    // another user's process at memory or a file of that process's own.
    if stat.st_uid != found.owner_uid && (file.is_none() || ns == Namespace::Global) {
        return Err(ObjectError::Corrupt(format!(
            "{} belongs to uid {} but the object was made by uid {}; refusing to use another \
             user's file or memory through a shared name",
            data_path.display(),
            stat.st_uid,
            found.owner_uid
        )));
    }
    if !found.is_current() {
        // Removed (and perhaps created anew) since the entry was read: the bytes may be the
        // new object's.
        return Ok(None);
    }
    if (stat.st_size as u64) < entry.size {
        return Err(ObjectError::Corrupt(format!(
            "{} has been truncated to {} bytes, smaller than the object's {} bytes",
            data_path.display(),
            stat.st_size,
            entry.size
        )));
    }
    Ok(Some(Object {
        ns,
        object: object.to_owned(),
        lifetime: entry.lifetime,
        file,
        size: entry.size,
        data,
        writable,
        claim: None,
        created: false,
        passed: false,
    }))
}

/// Why this user may not open `path` for `access`, in words.
fn denied_detail(path: &Path, access: &str) -> String {
    let me = crate::sys::current_user().0;
    match std::fs::metadata(path) {
        Ok(meta) => {
            let mode = meta.mode() & 0o777;
            let others = match mode & 0o7 {
                0 => "grants other users no access",
                4 | 5 => "grants other users read access only",
                _ => "grants other users some access",
            };
            format!(
                "uid {me} asked for {access} access; it belongs to uid {} and {others} \
                 (mode {mode:03o}); ask its creator to grant access",
                meta.uid()
            )
        }
        Err(_) => format!("uid {me} asked for {access} access to {}", path.display()),
    }
}

/// Removes the object `name`, which must be of `kind`: its entry, and for memory-backed
/// objects its bytes if they belong to the entry's owner (a file-backed mapping's file is
/// left alone). A `/dev/shm` object of the name that no entry claims is left alone:
/// `NotFound`, which says so.
pub(crate) fn remove(name: &Name, kind: ObjectKind) -> Result<(), ObjectError> {
    let (ns, object) = local_object(name, kind)?;
    let Some(found) = read_found(ns, object)? else {
        // Memory that no entry here claims is left alone: it may be in use through
        // another registry (processes with another XDG_RUNTIME_DIR share /dev/shm names
        // but not the registry), or belong to another program.
        let path = memory_path(ns, object);
        return Err(ObjectError::NotFound(match sysfs::id_at(&path) {
            Ok(Some((_, meta))) => format!(
                "no entry of that name; {} (uid {}) exists but no entry claims it, so it is \
                 left alone (it may be in use by a process whose XDG_RUNTIME_DIR differs, or \
                 by another program); if nothing uses it, delete that file",
                path.display(),
                meta.uid()
            ),
            _ => "nothing of that name exists".into(),
        }));
    };
    if found.entry.kind != kind {
        return Err(ObjectError::WrongKind(
            found.entry.kind.with_article().into(),
        ));
    }
    let denied = |what: &str| {
        ObjectError::AccessDenied(format!(
            "its {what} belongs to uid {}; only that user (or root) can remove it",
            found.owner_uid
        ))
    };
    remove_memory_of(ns, &found).map_err(|e| match e.kind() {
        io::ErrorKind::PermissionDenied => denied("memory"),
        _ => ObjectError::Io("cannot remove its memory".into(), e),
    })?;
    match found.remove() {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => Err(denied("entry")),
        Err(e) => Err(ObjectError::Io("cannot remove its entry".into(), e)),
    }
}

/// What the name `name` is now: `Ok(None)` when nothing (or only a stale object) has it.
pub(crate) fn kind_of(name: &Name, asked: ObjectKind) -> Result<Option<ObjectKind>, ObjectError> {
    let (ns, object) = local_object(name, asked)?;
    Ok(read_found(ns, object)?
        .filter(|found| found.stale_reason(ns).is_none())
        .map(|found| found.entry.kind))
}

/// The live objects of a namespace, sorted by name.
pub(crate) fn list(ns: Namespace) -> io::Result<Vec<(String, ObjectKind)>> {
    Ok(super::list_class(ns, KindClass::Object)?
        .into_iter()
        .map(|l| (l.name, l.kind))
        .collect())
}

/// The registry entry of an object, as the tests plant them.
#[cfg(test)]
pub(crate) fn test_entry(kind: ObjectKind, name: &str, size: u64) -> crate::wire::RegistryEntry {
    let mut entry = store::entry_for(kind, name);
    entry.lifetime = Lifetime::Persistent;
    entry.backing = Backing::Memory;
    entry.size = size;
    entry
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Runs `f` on a thread of its own; fails the test if it takes more than 5 s (it is
    /// left blocked).
    fn within_5s<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(f());
        });
        rx.recv_timeout(Duration::from_secs(5))
            .expect("blocked opening a FIFO")
    }

    fn mkfifo(path: &Path) {
        rustix::fs::mknodat(
            rustix::fs::CWD,
            path,
            rustix::fs::FileType::Fifo,
            Mode::from_raw_mode(0o666),
            0,
        )
        .unwrap();
    }

    fn plant(dir: &Path, entry: &crate::wire::RegistryEntry) {
        let path = dir.join(&entry.name);
        std::fs::write(&path, entry.encode()).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
    }

    #[test]
    fn fifos_planted_in_shared_places_are_refused_without_blocking() {
        let ns = Namespace::Local;
        let dir = store::class_dir(ns, KindClass::Object).unwrap();
        let pid = std::process::id();

        // As an entry.
        let object = format!("unit-fifo-entry-{pid}");
        let name: Name = object.parse().unwrap();
        mkfifo(&dir.join(&object));
        let e = within_5s(move || open(&name, ObjectKind::Mapping, false).unwrap_err());
        assert!(
            matches!(&e, ObjectError::WrongKind(what) if what.starts_with("a special file")),
            "{e:?}"
        );
        std::fs::remove_file(dir.join(&object)).unwrap();

        // As the memory of a valid entry.
        let object = format!("unit-fifo-memory-{pid}");
        let name: Name = object.parse().unwrap();
        plant(&dir, &test_entry(ObjectKind::Mapping, &object, 0));
        let shm = memory_path(ns, &object);
        mkfifo(&shm);
        let e = within_5s(move || open(&name, ObjectKind::Mapping, false).unwrap_err());
        assert!(
            matches!(&e, ObjectError::Corrupt(d) if d.contains("Fifo")),
            "{e:?}"
        );
        std::fs::remove_file(dir.join(&object)).unwrap();
        std::fs::remove_file(&shm).unwrap();

        // As the file of a file-backed mapping.
        let object = format!("unit-fifo-file-{pid}");
        let name: Name = object.parse().unwrap();
        let fifo = std::env::temp_dir().join(format!("procwire-unit-fifo-{pid}"));
        mkfifo(&fifo);
        let mut file = test_entry(ObjectKind::Mapping, &object, 0);
        file.backing = Backing::File {
            path: fifo.as_os_str().as_bytes().to_vec(),
            dev: 0,
            ino: 0,
        };
        plant(&dir, &file);
        let e = within_5s(move || open(&name, ObjectKind::Mapping, false).unwrap_err());
        assert!(
            matches!(&e, ObjectError::Corrupt(d) if d.contains("Fifo")),
            "{e:?}"
        );
        std::fs::remove_file(dir.join(&object)).unwrap();
        std::fs::remove_file(&fifo).unwrap();
    }

    #[test]
    fn the_sweep_leaves_objects_named_like_old_temporary_entries_alone() {
        let ns = Namespace::Local;
        let dir = store::class_dir(ns, KindClass::Object).unwrap();
        let object = format!(".new-999999999-{}", std::process::id());
        let name: Name = object.parse().unwrap();
        let spec = CreateSpec {
            kind: ObjectKind::Event,
            lifetime: Lifetime::Persistent,
            size: Some(64),
            file: None,
            access: &AccessList::owner_only(),
        };
        create(&name, &spec, |_| Ok(())).unwrap();
        // A real leftover temporary entry of a dead process goes.
        let leftover = dir.join(format!(".new\\leftover-{}", std::process::id()));
        std::fs::write(&leftover, b"half").unwrap();
        let an_hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
        File::options()
            .write(true)
            .open(&leftover)
            .unwrap()
            .set_modified(an_hour_ago)
            .unwrap();
        sweep(&dir, ns);
        assert!(!leftover.exists(), "an old temporary entry");
        assert_eq!(
            kind_of(&name, ObjectKind::Event).unwrap(),
            Some(ObjectKind::Event)
        );
        assert!(list(ns)
            .unwrap()
            .contains(&(object.clone(), ObjectKind::Event)));
        remove(&name, ObjectKind::Event).unwrap();
    }

    #[test]
    fn a_stale_object_is_cleared_and_its_name_taken_anew() {
        let ns = Namespace::Local;
        let dir = store::class_dir(ns, KindClass::Object).unwrap();
        let object = format!("unit-stale-{}", std::process::id());
        let name: Name = object.parse().unwrap();
        // An entry of a process that has exited, with its memory.
        let mut dead = test_entry(ObjectKind::Mutex, &object, 4096);
        dead.lifetime = Lifetime::RemoveOnDrop;
        dead.owner_pid = 999_999_999;
        plant(&dir, &dead);
        drop(shm::create(&shm_name(ns, &object), 0o600).unwrap());
        assert_eq!(kind_of(&name, ObjectKind::Mapping).unwrap(), None);
        let spec = CreateSpec {
            kind: ObjectKind::Mapping,
            lifetime: Lifetime::RemoveOnDrop,
            size: Some(64),
            file: None,
            access: &AccessList::owner_only(),
        };
        let (created, ()) = create(&name, &spec, |_| Ok(())).unwrap();
        assert_eq!(
            kind_of(&name, ObjectKind::Mapping).unwrap(),
            Some(ObjectKind::Mapping)
        );
        drop(created);
        assert_eq!(kind_of(&name, ObjectKind::Mapping).unwrap(), None);
        assert!(sysfs::id_at(&memory_path(ns, &object)).unwrap().is_none());
    }

    #[test]
    fn memory_ends_with_the_access_lists_mode_and_group() {
        use crate::security::{Access, Principal};
        let (_, gid) = crate::sys::current_user();
        let acl = AccessList::owner_only().grant(Principal::Group(gid), Access::ReadWrite);
        let object = format!("unit-mode-{}", std::process::id());
        let name: Name = object.parse().unwrap();
        let spec = CreateSpec {
            kind: ObjectKind::Mapping,
            lifetime: Lifetime::RemoveOnDrop,
            size: Some(64),
            file: None,
            access: &acl,
        };
        let (created, ()) = create(&name, &spec, |_| Ok(())).unwrap();
        let meta = std::fs::metadata(memory_path(Namespace::Local, &object)).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o660);
        assert_eq!(meta.gid(), gid);
        drop(created);
    }
}
