//! Named objects in shared memory: mappings, mutexes, semaphores and events share one
//! namespace per Local/Global, as on Windows.
//!
//! # The registry
//!
//! Each object has an *entry*: a small file `ROOT/objects/NAME` (where `ROOT` is
//! [`Namespace::root`]) that says what kind of object the name is, how long it lives, and
//! where its bytes are. The entry is written to a temporary file and published with
//! `link(2)`, so nobody ever reads half an entry, and a name is taken by one kind of object
//! at a time: asking for the wrong kind is an error that names the right one.
//!
//! The bytes are elsewhere:
//! - memory-backed objects (mappings and every sync object) in `/dev/shm/procwire-UID-NAME`
//!   (Local) or `/dev/shm/procwire-global-NAME` (Global): raw, from offset 0, so that any
//!   POSIX `shm_open` user (Python's `multiprocessing.shared_memory`) sees the same bytes;
//! - file-backed mappings in the user's own file, whose path the entry records.
//!
//! Creating and removing take an exclusive `flock` on the `objects` directory for a few
//! system calls, so that the entry and its bytes appear and vanish together; opening takes
//! no lock.
//!
//! # Lifetime
//!
//! With [`Lifetime::RemoveOnDrop`] the creating handle holds an exclusive `flock` on the
//! entry for as long as it lives, and removes the name when dropped. The kernel drops the
//! lock when the creator dies, so an entry whose lock is free names an object whose creator
//! is gone: opening it says so, and the next create of the name clears it away (the first
//! create in each process also sweeps the whole namespace for such leftovers once).
//! [`Lifetime::Persistent`] objects stay until removed.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rustix::fs::{FlockOperation, Mode, OFlags};
use rustix::io::Errno;

use super::shm;
use crate::name::{Name, NameError, Namespace};
use crate::security::{Access, AccessList, Principal};

/// How long a named object lives: the creator's choice, made once at creation.
///
/// Whatever the choice, handles and views already open keep working after the name is
/// removed; removal only stops new opens (as `shm_unlink` does).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Lifetime {
    /// The name is removed when the creating handle is dropped, or when the creating process
    /// dies: the object belongs to its creator, as in iceoryx2. The default.
    #[default]
    RemoveOnDrop,
    /// The name stays, after every process has closed it, until something removes it
    /// (`remove`, `procwire shm rm`) or, for memory-backed objects, the machine restarts; as
    /// Boost.Interprocess's `shared_memory_object`.
    Persistent,
}

/// What a named object is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum ObjectKind {
    Mapping,
    Mutex,
    Semaphore,
    Event,
}

impl ObjectKind {
    fn code(self) -> u8 {
        match self {
            ObjectKind::Mapping => 1,
            ObjectKind::Mutex => 2,
            ObjectKind::Semaphore => 3,
            ObjectKind::Event => 4,
        }
    }

    fn from_code(code: u8) -> Option<ObjectKind> {
        Some(match code {
            1 => ObjectKind::Mapping,
            2 => ObjectKind::Mutex,
            3 => ObjectKind::Semaphore,
            4 => ObjectKind::Event,
            _ => return None,
        })
    }

    /// `mapping`, `mutex`, `semaphore`, `event`.
    pub(crate) fn noun(self) -> &'static str {
        match self {
            ObjectKind::Mapping => "mapping",
            ObjectKind::Mutex => "mutex",
            ObjectKind::Semaphore => "semaphore",
            ObjectKind::Event => "event",
        }
    }

    /// `a mapping`, `an event`, …
    pub(crate) fn with_article(self) -> &'static str {
        match self {
            ObjectKind::Mapping => "a mapping",
            ObjectKind::Mutex => "a mutex",
            ObjectKind::Semaphore => "a semaphore",
            ObjectKind::Event => "an event",
        }
    }
}

/// Where an object's bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Backing {
    /// `/dev/shm/` + [`shm_name`].
    Memory,
    /// A file of the user's, by absolute path.
    File(PathBuf),
}

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
        Namespace::Local => format!("procwire-{}-{object}", super::current_user().0),
        Namespace::Global => format!("procwire-global-{object}"),
    }
}

/// The file mode and group that carry an access list: the owner always reads and writes;
/// `Everyone` sets the bits for others (and the group); one `Group` sets the group bits and
/// becomes the file's group.
///
/// # Errors
///
/// A sentence, for what file modes cannot say: write-only access (a writable mapping needs
/// read access too), grants to single users other than the owner, more than one group, and
/// network clients.
pub(crate) fn mode_for(acl: &AccessList) -> Result<(u32, Option<u32>), String> {
    let bits = |a: Access| match a {
        Access::Read => Ok(4),
        Access::ReadWrite => Ok(6),
        Access::Write => Err(
            "write-only access cannot be granted on shared memory (mapping it writable needs \
             read access too); grant ReadWrite"
                .to_owned(),
        ),
    };
    let (mut group, mut other, mut gid) = (0u32, 0u32, None);
    for (principal, access) in acl.grants() {
        match *principal {
            Principal::Everyone => {
                let b = bits(*access)?;
                other |= b;
                group |= b;
            }
            Principal::Group(g) => {
                if gid.is_some_and(|old| old != g) {
                    return Err(
                        "the access list grants to two groups; a file mode can carry \
                                one group only"
                            .into(),
                    );
                }
                gid = Some(g);
                group |= bits(*access)?;
            }
            Principal::User(uid) if uid == acl.owner() => {}
            Principal::User(uid) => {
                return Err(format!(
                    "the access list grants to user {uid}; shared memory is guarded by its file \
                     mode, which has no room for single users: grant to a group or to everyone"
                ))
            }
            Principal::Network => {
                return Err("shared memory cannot be reached over the network".into());
            }
        }
    }
    Ok((0o600 | group << 3 | other, gid))
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
    backing: Backing,
    size: u64,
    /// The entry, kept open; the creator of a `RemoveOnDrop` object holds its lock.
    entry: File,
    data: OwnedFd,
    writable: bool,
    created: bool,
}

impl Object {
    /// Its size in bytes.
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// How long it lives.
    pub(crate) fn lifetime(&self) -> Lifetime {
        self.lifetime
    }

    /// Where its bytes are.
    pub(crate) fn backing(&self) -> &Backing {
        &self.backing
    }

    /// The `/dev/shm` name, for a memory-backed object.
    pub(crate) fn shm_name(&self) -> Option<String> {
        match self.backing {
            Backing::Memory => Some(shm_name(self.ns, &self.object)),
            Backing::File(_) => None,
        }
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
        if !self.created || self.lifetime != Lifetime::RemoveOnDrop {
            return;
        }
        let Ok(dir) = objects_dir(self.ns) else {
            return;
        };
        let lock = match lock_namespace(&dir, DROP_LOCK_WAIT) {
            Ok(lock) => lock,
            Err(e) => {
                tracing::warn!(object = %self.object, "cannot remove the name on drop: {e:?}");
                return;
            }
        };
        // Only our own entry and bytes: the name may have been removed and created anew.
        let path = dir.join(&self.object);
        if same_file(&path, self.entry.as_fd()) {
            if self.backing == Backing::Memory {
                if let Ok(data_path) = shm::shm_path(&shm_name(self.ns, &self.object)) {
                    if same_file(Path::new(&data_path), self.data.as_fd()) {
                        let _ = std::fs::remove_file(&data_path);
                    }
                }
            }
            let _ = std::fs::remove_file(&path);
        }
        drop(lock);
    }
}

/// Whether `path` is (still) the file open as `fd`.
fn same_file(path: &Path, fd: BorrowedFd<'_>) -> bool {
    match (std::fs::symlink_metadata(path), rustix::fs::fstat(fd)) {
        (Ok(meta), Ok(stat)) => meta.ino() == stat.st_ino && meta.dev() == stat.st_dev,
        _ => false,
    }
}

/// `ROOT/objects`, created if missing and checked: private to the user in Local, shared
/// with the sticky bit in Global.
fn objects_dir(ns: Namespace) -> Result<PathBuf, ObjectError> {
    let root = ns.root();
    let dir = root.join("objects");
    let ensure = |d: &Path| match ns {
        Namespace::Local => super::ensure_private_dir(d),
        Namespace::Global => super::ensure_shared_dir(d),
    };
    ensure(&root)
        .and_then(|()| ensure(&dir))
        .map_err(io_error(format!(
            "cannot use the namespace directory {}",
            dir.display()
        )))?;
    Ok(dir)
}

/// An exclusive `flock` on the `objects` directory, held while an object is created or
/// removed.
struct NamespaceLock(File);

/// How long to wait for another process's create or remove.
const NAMESPACE_LOCK_WAIT: Duration = Duration::from_secs(10);
/// How long a handle's drop waits for it before leaving the name in place.
const DROP_LOCK_WAIT: Duration = Duration::from_secs(2);

fn lock_namespace(dir: &Path, wait: Duration) -> Result<NamespaceLock, ObjectError> {
    let file = File::open(dir).map_err(io_error(format!("cannot open {}", dir.display())))?;
    let deadline = Instant::now() + wait;
    loop {
        match rustix::fs::flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => return Ok(NamespaceLock(file)),
            Err(Errno::WOULDBLOCK) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(Errno::WOULDBLOCK) => {
                return Err(ObjectError::Io(
                    format!(
                        "another process has held the lock on {} for {wait:?}",
                        dir.display()
                    ),
                    io::ErrorKind::TimedOut.into(),
                ))
            }
            Err(e) => {
                return Err(ObjectError::Io(
                    format!("cannot lock {}", dir.display()),
                    e.into(),
                ))
            }
        }
    }
}

impl Drop for NamespaceLock {
    fn drop(&mut self) {
        let _ = rustix::fs::flock(&self.0, FlockOperation::Unlock);
    }
}

/// The decoded contents of an entry file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) kind: ObjectKind,
    pub(crate) lifetime: Lifetime,
    pub(crate) backing: Backing,
    pub(crate) size: u64,
    pub(crate) creator_pid: u32,
}

const MAGIC: &[u8; 8] = b"procwire";
const VERSION: u8 = 1;
const HEADER_LEN: usize = 28;
/// The largest entry read: the header and a path of up to `PATH_MAX`.
const MAX_ENTRY_LEN: usize = HEADER_LEN + 4096;

impl Entry {
    /// `procwire` (8 bytes), version 1, kind, lifetime, backing (1 byte each), creator pid
    /// (u32), size (u64), path length (u32), then the path of a file backing; all little
    /// endian.
    pub(crate) fn encode(&self) -> Vec<u8> {
        use std::os::unix::ffi::OsStrExt;
        let path: &[u8] = match &self.backing {
            Backing::Memory => &[],
            Backing::File(p) => p.as_os_str().as_bytes(),
        };
        let mut out = Vec::with_capacity(HEADER_LEN + path.len());
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        out.push(self.kind.code());
        out.push(match self.lifetime {
            Lifetime::RemoveOnDrop => 1,
            Lifetime::Persistent => 2,
        });
        out.push(match self.backing {
            Backing::Memory => 1,
            Backing::File(_) => 2,
        });
        out.extend_from_slice(&self.creator_pid.to_le_bytes());
        out.extend_from_slice(&self.size.to_le_bytes());
        out.extend_from_slice(&(path.len() as u32).to_le_bytes());
        out.extend_from_slice(path);
        out
    }

    /// Decodes an entry; `None` for anything [`encode`](Self::encode) did not write.
    pub(crate) fn decode(bytes: &[u8]) -> Option<Entry> {
        use std::os::unix::ffi::OsStrExt;
        let header = bytes.get(..HEADER_LEN)?;
        if &header[..8] != MAGIC || header[8] != VERSION {
            return None;
        }
        let kind = ObjectKind::from_code(header[9])?;
        let lifetime = match header[10] {
            1 => Lifetime::RemoveOnDrop,
            2 => Lifetime::Persistent,
            _ => return None,
        };
        let creator_pid = u32::from_le_bytes(header[12..16].try_into().ok()?);
        let size = u64::from_le_bytes(header[16..24].try_into().ok()?);
        let path_len = u32::from_le_bytes(header[24..28].try_into().ok()?) as usize;
        let path = bytes.get(HEADER_LEN..)?;
        if path.len() != path_len {
            return None;
        }
        let backing = match header[11] {
            1 if path.is_empty() => Backing::Memory,
            2 if !path.is_empty() && path[0] == b'/' && !path.contains(&0) => {
                Backing::File(PathBuf::from(std::ffi::OsStr::from_bytes(path)))
            }
            _ => return None,
        };
        if kind != ObjectKind::Mapping && backing != Backing::Memory {
            return None;
        }
        Some(Entry {
            kind,
            lifetime,
            backing,
            size,
            creator_pid,
        })
    }
}

/// Why an entry could not be read.
enum ReadError {
    Missing,
    /// Something else sits at the entry's path: what, in words.
    Foreign(String),
    Denied(io::Error),
    Io(io::Error),
}

/// Reads the entry at `path`, keeping it open. The open never blocks (a FIFO planted in a
/// shared `objects` directory would otherwise wait for a writer forever), and anything but
/// a regular file is refused before it is read.
fn read_entry(path: &Path) -> Result<(Entry, File), ReadError> {
    let file = match File::options()
        .read(true)
        .custom_flags((OFlags::NOFOLLOW | OFlags::NONBLOCK).bits() as i32)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(ReadError::Missing),
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => return Err(ReadError::Denied(e)),
        Err(e) if e.raw_os_error() == Some(Errno::LOOP.raw_os_error()) => {
            return Err(ReadError::Foreign("a symbolic link".into()))
        }
        Err(e) => return Err(ReadError::Io(e)),
    };
    let meta = file.metadata().map_err(ReadError::Io)?;
    if !meta.is_file() {
        return Err(ReadError::Foreign(
            if meta.is_dir() {
                "a directory"
            } else {
                "a special file"
            }
            .into(),
        ));
    }
    let mut bytes = Vec::new();
    (&file)
        .take(MAX_ENTRY_LEN as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(ReadError::Io)?;
    match Entry::decode(&bytes) {
        Some(entry) => Ok((entry, file)),
        None => Err(ReadError::Foreign(format!(
            "a file procwire did not write ({})",
            path.display()
        ))),
    }
}

/// Whether the creator of a `RemoveOnDrop` object still holds its entry's lock.
fn creator_alive(entry: &File) -> bool {
    // A shared lock is refused only while someone holds the exclusive one: the creator.
    // Other probers take shared locks too, so they never make each other see a creator.
    match rustix::fs::flock(entry, FlockOperation::NonBlockingLockShared) {
        Ok(()) => {
            let _ = rustix::fs::flock(entry, FlockOperation::Unlock);
            false
        }
        Err(_) => true,
    }
}

/// Whether an entry names an object that is gone: its `RemoveOnDrop` creator died, or its
/// memory was removed.
fn stale_reason(entry: &Entry, file: &File, ns: Namespace, object: &str) -> Option<String> {
    if entry.lifetime == Lifetime::RemoveOnDrop && !creator_alive(file) {
        return Some(format!(
            "its creator (pid {}) has exited, which removes the name",
            entry.creator_pid
        ));
    }
    if entry.backing == Backing::Memory {
        let path = shm::shm_path(&shm_name(ns, object)).ok()?;
        if let Err(e) = std::fs::symlink_metadata(&path) {
            if e.kind() == io::ErrorKind::NotFound {
                return Some(format!("its memory ({path}) has been removed"));
            }
        }
    }
    None
}

/// Removes an entry and, for memory-backed objects, its bytes. The caller holds the
/// namespace lock.
fn remove_files(
    dir: &Path,
    ns: Namespace,
    object: &str,
    entry: &Entry,
    owner: u32,
) -> Result<(), ObjectError> {
    let denied = |what: &str| {
        ObjectError::AccessDenied(format!(
            "its {what} belongs to uid {owner}; only that user (or root) can remove it"
        ))
    };
    if entry.backing == Backing::Memory {
        match shm::unlink(&shm_name(ns, object)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => return Err(denied("memory")),
            Err(e) => return Err(ObjectError::Io("cannot remove its memory".into(), e)),
        }
    }
    match std::fs::remove_file(dir.join(object)) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => Err(denied("entry")),
        Err(e) => Err(ObjectError::Io("cannot remove its entry".into(), e)),
    }
}

/// Creates the object `name` as `spec` says; `init` prepares its bytes (given the open,
/// sized data file) before anyone else can open it.
pub(crate) fn create<T>(
    name: &Name,
    spec: &CreateSpec<'_>,
    init: impl FnOnce(&OwnedFd) -> Result<T, ObjectError>,
) -> Result<(Object, T), ObjectError> {
    let (ns, object) = local_object(name, spec.kind)?;
    let (mode, gid) = mode_for(spec.access).map_err(ObjectError::NotPermitted)?;
    if spec.size == Some(0) {
        return Err(ObjectError::InvalidSize(
            "a size of zero bytes; give at least 1 byte".into(),
        ));
    }
    let dir = objects_dir(ns)?;
    let lock = lock_namespace(&dir, NAMESPACE_LOCK_WAIT)?;
    sweep_once(&dir, ns);
    let path = dir.join(object);
    match read_entry(&path) {
        Err(ReadError::Missing) => {}
        Ok((entry, file)) => match stale_reason(&entry, &file, ns, object) {
            Some(reason) => {
                tracing::info!(object, "clearing away a stale object: {reason}");
                let owner = file.metadata().map(|m| m.uid()).unwrap_or(0);
                remove_files(&dir, ns, object, &entry, owner)?;
            }
            None if entry.kind == spec.kind => {
                return Err(ObjectError::AlreadyExists(format!(
                    "{} of that name exists (created by pid {}); open it, or remove it first",
                    entry.kind.with_article(),
                    entry.creator_pid
                )))
            }
            None => return Err(ObjectError::WrongKind(entry.kind.with_article().into())),
        },
        Err(ReadError::Foreign(what)) => return Err(ObjectError::WrongKind(what)),
        Err(ReadError::Denied(e)) => {
            return Err(ObjectError::AccessDenied(format!(
                "its entry {} cannot be read: {e}",
                path.display()
            )))
        }
        Err(ReadError::Io(e)) => return Err(ObjectError::Io("cannot read its entry".into(), e)),
    }

    let (data, size, backing, data_cleanup) = match spec.file {
        None => {
            let size = spec.size.unwrap_or(0);
            let shm = shm_name(ns, object);
            // Owner only until it belongs to the right group (below): created with its final
            // mode, it would be open for a moment to the creator's primary group.
            let data = shm::create(&shm, 0o600).map_err(|e| match e.kind() {
                io::ErrorKind::AlreadyExists => ObjectError::AlreadyExists(format!(
                    "{}/{shm} exists but no procwire object claims it (left by a crash, made \
                     by another program, or by a procwire process with another \
                     XDG_RUNTIME_DIR); if nothing uses it, delete that file and retry",
                    shm::SHM_DIR
                )),
                _ => ObjectError::Io(format!("cannot create {}/{shm}", shm::SHM_DIR), e),
            })?;
            let cleanup = Cleanup(Some(shm.clone()));
            shm::allocate(data.as_fd(), size).map_err(|e| {
                ObjectError::Io(
                    format!("cannot give {}/{shm} {size} bytes", shm::SHM_DIR),
                    e,
                )
            })?;
            (data, size, Backing::Memory, cleanup)
        }
        Some(file) => {
            let (data, size, absolute) = open_backing_file(file, spec.size, mode)?;
            (data, size, Backing::File(absolute), Cleanup(None))
        }
    };
    if spec.file.is_none() {
        if let Some(gid) = gid {
            rustix::fs::fchown(&data, None, Some(rustix::fs::Gid::from_raw(gid))).map_err(|e| {
                ObjectError::NotPermitted(format!(
                    "cannot give the object to group {gid} ({e}); a user can only grant to \
                         groups they belong to"
                ))
            })?;
        }
        rustix::fs::fchmod(&data, Mode::from_raw_mode(mode)).map_err(|e| {
            ObjectError::Io(
                format!("cannot set the mode of the object's memory to {mode:03o}"),
                e.into(),
            )
        })?;
    }
    let extra = init(&data)?;

    let entry = Entry {
        kind: spec.kind,
        lifetime: spec.lifetime,
        backing: backing.clone(),
        size,
        creator_pid: std::process::id(),
    };
    let entry_file = publish(&dir, object, &entry, ns, spec.lifetime)?;
    data_cleanup.disarm();
    drop(lock);
    Ok((
        Object {
            ns,
            object: object.to_owned(),
            lifetime: spec.lifetime,
            backing,
            size,
            entry: entry_file,
            data,
            writable: true,
            created: true,
        },
        extra,
    ))
}

/// Clears away, once per process and namespace, the objects whose `RemoveOnDrop` creator
/// died (their memory would otherwise stay in `/dev/shm` until the name is created again)
/// and temporary entries left by a process that died mid-create. Objects of other users
/// that cannot be removed are left alone. The caller holds the namespace lock.
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
fn sweep(dir: &Path, ns: Namespace) {
    let Ok(items) = std::fs::read_dir(dir) else {
        return;
    };
    for item in items.flatten() {
        let Ok(object) = item.file_name().into_string() else {
            continue;
        };
        if let Some(temp) = object.strip_prefix(TEMP_PREFIX) {
            let pid = temp.split('-').next().and_then(|p| p.parse::<u32>().ok());
            if pid.is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists()) {
                let _ = std::fs::remove_file(item.path());
            }
            continue;
        }
        if let Ok((entry, file)) = read_entry(&item.path()) {
            if let Some(reason) = stale_reason(&entry, &file, ns, &object) {
                let owner = file.metadata().map(|m| m.uid()).unwrap_or(0);
                if remove_files(dir, ns, &object, &entry, owner).is_ok() {
                    tracing::info!(object, "cleared away a stale object: {reason}");
                }
            }
        }
    }
}

/// Unlinks a half-made `/dev/shm` object unless disarmed.
struct Cleanup(Option<String>);

impl Cleanup {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(name) = self.0.take() {
            let _ = shm::unlink(&name);
        }
    }
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
        .open(path)
        .map_err(|e| match e.kind() {
            io::ErrorKind::PermissionDenied => {
                ObjectError::AccessDenied(format!("cannot open its file {shown} for writing: {e}"))
            }
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

/// How temporary entries start: with a backslash, which no object name can contain, so a
/// temporary entry is never taken for an object (nor an object for a leftover temporary).
/// `PID-N` follows.
const TEMP_PREFIX: &str = ".new\\";

/// Writes the entry to a temporary file and links it into place; returns it open (and
/// locked by us for `RemoveOnDrop`). The caller holds the namespace lock.
fn publish(
    dir: &Path,
    object: &str,
    entry: &Entry,
    ns: Namespace,
    lifetime: Lifetime,
) -> Result<File, ObjectError> {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let mode = match ns {
        Namespace::Local => 0o600,
        Namespace::Global => 0o644,
    };
    // In Global another user can create a file at the name we would pick: pick another.
    let mut attempts = 0;
    let (temp, mut file) = loop {
        let temp = dir.join(format!(
            "{TEMP_PREFIX}{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        match File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&temp)
        {
            Ok(file) => break (temp, file),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempts < 16 => attempts += 1,
            Err(e) => return Err(io_error("cannot write the object's entry")(e)),
        }
    };
    let result = (|| {
        rustix::fs::fchmod(&file, Mode::from_raw_mode(mode))?;
        file.write_all(&entry.encode())?;
        if lifetime == Lifetime::RemoveOnDrop {
            // Locked before it is published: nobody can see the entry without its creator.
            rustix::fs::flock(&file, FlockOperation::NonBlockingLockExclusive)?;
        }
        std::fs::hard_link(&temp, dir.join(object))?;
        Ok(file)
    })();
    let _ = std::fs::remove_file(&temp);
    result.map_err(io_error("cannot publish the object's entry"))
}

/// Opens the object `name`, which must be of `kind`, for reading or for reading and
/// writing.
///
/// Opening takes no lock, so the name can be removed and created anew between reading the
/// entry and opening the bytes; the entry is checked again afterwards, and the open starts
/// over if it changed (the old entry with the new bytes would mix two objects).
pub(crate) fn open(name: &Name, kind: ObjectKind, writable: bool) -> Result<Object, ObjectError> {
    let (ns, object) = local_object(name, kind)?;
    let dir = objects_dir(ns)?;
    for _ in 0..8 {
        if let Some(opened) = open_once(&dir, ns, object, kind, writable)? {
            return Ok(opened);
        }
    }
    Err(ObjectError::NotFound(
        "it was removed and created again while being opened, 8 times in a row; retry".into(),
    ))
}

/// One attempt of [`open`]: `None` when the entry changed while the bytes were opened.
fn open_once(
    dir: &Path,
    ns: Namespace,
    object: &str,
    kind: ObjectKind,
    writable: bool,
) -> Result<Option<Object>, ObjectError> {
    let path = dir.join(object);
    let (entry, entry_file) = match read_entry(&path) {
        Ok(found) => found,
        Err(ReadError::Missing) => {
            return Err(ObjectError::NotFound(
                "nothing of that name exists; create it first".into(),
            ))
        }
        Err(ReadError::Foreign(what)) => return Err(ObjectError::WrongKind(what)),
        Err(ReadError::Denied(e)) => {
            return Err(ObjectError::AccessDenied(format!(
                "its entry {} cannot be read: {e}",
                path.display()
            )))
        }
        Err(ReadError::Io(e)) => return Err(ObjectError::Io("cannot read its entry".into(), e)),
    };
    if entry.kind != kind {
        return Err(ObjectError::WrongKind(entry.kind.with_article().into()));
    }
    if let Some(reason) = stale_reason(&entry, &entry_file, ns, object) {
        return Err(ObjectError::NotFound(reason));
    }
    let entry_meta = entry_file
        .metadata()
        .map_err(io_error("cannot stat its entry"))?;
    let access_word = if writable { "read-write" } else { "read" };
    let (data, data_path) = match &entry.backing {
        Backing::Memory => {
            let shm = shm_name(ns, object);
            let data_path = format!("{}/{shm}", shm::SHM_DIR);
            let data = shm::open(&shm, writable).map_err(|e| match e.kind() {
                io::ErrorKind::NotFound => {
                    ObjectError::NotFound(format!("its memory ({data_path}) has been removed"))
                }
                io::ErrorKind::PermissionDenied => {
                    ObjectError::AccessDenied(denied_detail(Path::new(&data_path), access_word))
                }
                io::ErrorKind::InvalidData => ObjectError::Corrupt(format!(
                    "{data_path} is {e}; refusing to use it (remove it: `procwire shm rm NAME`)"
                )),
                _ => ObjectError::Io(format!("cannot open {data_path}"), e),
            })?;
            (data, PathBuf::from(data_path))
        }
        Backing::File(file) => {
            // Without blocking: a FIFO at the path would wait for a writer forever.
            let data = File::options()
                .read(true)
                .write(writable)
                .custom_flags(OFlags::NONBLOCK.bits() as i32)
                .open(file)
                .map_err(|e| match e.kind() {
                    io::ErrorKind::NotFound => ObjectError::NotFound(format!(
                        "its file {} has been removed",
                        file.display()
                    )),
                    io::ErrorKind::PermissionDenied => {
                        ObjectError::AccessDenied(denied_detail(file, access_word))
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
            (OwnedFd::from(data), file.clone())
        }
    };
    let stat = rustix::fs::fstat(&data)
        .map_err(|e| ObjectError::Io(format!("cannot stat {}", data_path.display()), e.into()))?;
    if entry.backing == Backing::Memory && stat.st_uid != entry_meta.uid() {
        return Err(ObjectError::Corrupt(format!(
            "its memory {} belongs to uid {} but its entry to uid {}; refusing to use it",
            data_path.display(),
            stat.st_uid,
            entry_meta.uid()
        )));
    }
    if let (Backing::File(file), Namespace::Global) = (&entry.backing, ns) {
        // A Global entry is written by whoever created it; without this, any user could
        // point another user's process at a file of that process's own.
        if stat.st_uid != entry_meta.uid() {
            return Err(ObjectError::Corrupt(format!(
                "its file {} belongs to uid {} but the mapping was made by uid {}; refusing \
                 to map another user's file through a shared name",
                file.display(),
                stat.st_uid,
                entry_meta.uid()
            )));
        }
    }
    if !same_file(&path, entry_file.as_fd()) {
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
        backing: entry.backing,
        size: entry.size,
        entry: entry_file,
        data,
        writable,
        created: false,
    }))
}

/// Why this user may not open `path` for `access`, in words.
fn denied_detail(path: &Path, access: &str) -> String {
    let me = super::current_user().0;
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
/// objects its bytes (a file-backed mapping's file is left alone). A `/dev/shm` object of
/// the name that no entry claims is left alone: `NotFound`, which says so.
pub(crate) fn remove(name: &Name, kind: ObjectKind) -> Result<(), ObjectError> {
    let (ns, object) = local_object(name, kind)?;
    let dir = objects_dir(ns)?;
    let lock = lock_namespace(&dir, NAMESPACE_LOCK_WAIT)?;
    let path = dir.join(object);
    let result = match read_entry(&path) {
        Ok((entry, _)) if entry.kind != kind => {
            Err(ObjectError::WrongKind(entry.kind.with_article().into()))
        }
        Ok((entry, file)) => {
            let owner = file.metadata().map(|m| m.uid()).unwrap_or(0);
            remove_files(&dir, ns, object, &entry, owner)
        }
        Err(ReadError::Missing) => {
            // Memory that no entry here claims is left alone: it may be in use through
            // another registry (processes with another XDG_RUNTIME_DIR share /dev/shm names
            // but not the registry), or belong to another program.
            let shm = shm_name(ns, object);
            let leftover = shm::shm_path(&shm)
                .ok()
                .filter(|p| std::fs::symlink_metadata(p).is_ok());
            Err(ObjectError::NotFound(match leftover {
                None => "nothing of that name exists".into(),
                Some(path) => format!(
                    "no entry of that name in {}; {path} exists but no entry here claims it, \
                     so it is left alone (it may be in use by a process whose \
                     XDG_RUNTIME_DIR differs, or by another program); if nothing uses it, \
                     delete that file",
                    dir.display()
                ),
            }))
        }
        Err(ReadError::Foreign(what)) => Err(ObjectError::WrongKind(what)),
        Err(ReadError::Denied(e)) => Err(ObjectError::AccessDenied(format!(
            "its entry cannot be read: {e}"
        ))),
        Err(ReadError::Io(e)) => Err(ObjectError::Io("cannot read its entry".into(), e)),
    };
    drop(lock);
    result
}

/// What the name `name` is now: `Ok(None)` when nothing (or only a stale object) has it.
pub(crate) fn kind_of(name: &Name, asked: ObjectKind) -> Result<Option<ObjectKind>, ObjectError> {
    let (ns, object) = local_object(name, asked)?;
    let path = ns.root().join("objects").join(object);
    match read_entry(&path) {
        Ok((entry, file)) => Ok(stale_reason(&entry, &file, ns, object)
            .is_none()
            .then_some(entry.kind)),
        Err(ReadError::Missing) => Ok(None),
        Err(ReadError::Foreign(what)) => Err(ObjectError::WrongKind(what)),
        Err(ReadError::Denied(e)) => Err(ObjectError::AccessDenied(format!(
            "its entry cannot be read: {e}"
        ))),
        Err(ReadError::Io(e)) => Err(ObjectError::Io("cannot read its entry".into(), e)),
    }
}

/// The live objects of a namespace, sorted by name.
pub(crate) fn list(ns: Namespace) -> io::Result<Vec<(String, ObjectKind)>> {
    let dir = ns.root().join("objects");
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut found = Vec::new();
    for item in entries {
        let item = item?;
        let Ok(object) = item.file_name().into_string() else {
            continue;
        };
        if object.starts_with(TEMP_PREFIX) {
            // A create in progress (or a crashed one): not an object.
            continue;
        }
        if let Ok((entry, file)) = read_entry(&item.path()) {
            if stale_reason(&entry, &file, ns, &object).is_none() {
                found.push((object, entry.kind));
            }
        }
    }
    found.sort();
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn entry(backing: Backing) -> Entry {
        Entry {
            kind: ObjectKind::Mapping,
            lifetime: Lifetime::Persistent,
            backing,
            size: 1 << 40,
            creator_pid: 4242,
        }
    }

    #[test]
    fn entries_round_trip() {
        for e in [
            entry(Backing::Memory),
            entry(Backing::File("/home/u/data bin".into())),
            Entry {
                kind: ObjectKind::Event,
                lifetime: Lifetime::RemoveOnDrop,
                ..entry(Backing::Memory)
            },
        ] {
            assert_eq!(Entry::decode(&e.encode()), Some(e));
        }
    }

    #[test]
    fn bad_entries_are_refused() {
        let good = entry(Backing::File("/x".into())).encode();
        assert!(
            Entry::decode(&good[..good.len() - 1]).is_none(),
            "truncated"
        );
        let mut long = good.clone();
        long.push(b'y');
        assert!(Entry::decode(&long).is_none(), "trailing bytes");
        let mut bad = good.clone();
        bad[9] = 9;
        assert!(Entry::decode(&bad).is_none(), "unknown kind");
        let mut bad = good.clone();
        bad[8] = 2;
        assert!(Entry::decode(&bad).is_none(), "unknown version");
        let relative = entry(Backing::File("x".into())).encode();
        assert!(Entry::decode(&relative).is_none(), "relative path");
        let mutex_on_file = Entry {
            kind: ObjectKind::Mutex,
            ..entry(Backing::File("/x".into()))
        };
        assert!(Entry::decode(&mutex_on_file.encode()).is_none());
    }

    #[test]
    fn access_lists_become_modes() {
        let acl = AccessList::owner_only();
        assert_eq!(mode_for(&acl), Ok((0o600, None)));
        assert_eq!(
            mode_for(&acl.clone().everyone(Access::Read)),
            Ok((0o644, None))
        );
        assert_eq!(
            mode_for(&acl.clone().everyone(Access::ReadWrite)),
            Ok((0o666, None))
        );
        assert_eq!(
            mode_for(
                &acl.clone()
                    .grant(Principal::Group(10), Access::ReadWrite)
                    .everyone(Access::Read)
            ),
            Ok((0o664, Some(10)))
        );
        assert!(mode_for(&acl.clone().everyone(Access::Write)).is_err());
        assert!(mode_for(&acl.clone().grant(Principal::User(12345), Access::Read)).is_err());
        assert!(mode_for(&acl.clone().grant(Principal::Network, Access::Read)).is_err());
        assert!(mode_for(
            &acl.grant(Principal::Group(1), Access::Read)
                .grant(Principal::Group(2), Access::Read)
        )
        .is_err());
    }

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

    #[test]
    fn fifos_planted_in_shared_places_are_refused_without_blocking() {
        let ns = Namespace::Local;
        let dir = objects_dir(ns).unwrap();
        let pid = std::process::id();

        // As an entry.
        let object = format!("unit-fifo-entry-{pid}");
        let name: Name = object.parse().unwrap();
        mkfifo(&dir.join(&object));
        let e = within_5s(move || open(&name, ObjectKind::Mapping, false).unwrap_err());
        assert!(
            matches!(&e, ObjectError::WrongKind(what) if what == "a special file"),
            "{e:?}"
        );
        std::fs::remove_file(dir.join(&object)).unwrap();

        // As the memory of a valid entry.
        let object = format!("unit-fifo-memory-{pid}");
        let name: Name = object.parse().unwrap();
        let memory = Entry {
            kind: ObjectKind::Mapping,
            lifetime: Lifetime::Persistent,
            backing: Backing::Memory,
            size: 0,
            creator_pid: pid,
        };
        std::fs::write(dir.join(&object), memory.encode()).unwrap();
        let shm = shm::shm_path(&shm_name(ns, &object)).unwrap();
        mkfifo(Path::new(&shm));
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
        let file = Entry {
            backing: Backing::File(fifo.clone()),
            ..memory
        };
        std::fs::write(dir.join(&object), file.encode()).unwrap();
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
        let dir = objects_dir(ns).unwrap();
        // Shaped like a temporary entry of a process that no longer exists (pids stop far
        // below 999999999), but a user's object.
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
        let leftover = dir.join(format!("{TEMP_PREFIX}999999999-{}", std::process::id()));
        std::fs::write(&leftover, b"half").unwrap();
        sweep(&dir, ns);
        assert!(!leftover.exists(), "a dead process's temporary entry");
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
    fn memory_ends_with_the_access_lists_mode_and_group() {
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
        let meta = std::fs::metadata(shm::shm_path(&shm_name(Namespace::Local, &object)).unwrap())
            .unwrap();
        assert_eq!(meta.mode() & 0o777, 0o660);
        assert_eq!(meta.gid(), gid);
        drop(created);
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = Entry::decode(&bytes);
        }

        #[test]
        fn decoding_corrupted_entries_never_panics(
            at in 0usize..40,
            byte in any::<u8>(),
        ) {
            let mut bytes = entry(Backing::File("/some/file".into())).encode();
            let at = at % bytes.len();
            bytes[at] = byte;
            if let Some(e) = Entry::decode(&bytes) {
                prop_assert_eq!(Entry::decode(&e.encode()), Some(e));
            }
        }
    }
}
