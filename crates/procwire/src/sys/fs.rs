//! Files in directories that other users can write: opened without following symbolic
//! links and without blocking, created only where nothing is, and removed only when they
//! are still the file that was checked.
//!
//! In a sticky, world-writable directory (`/tmp/procwire-global/...`, `/dev/shm`) another
//! user can plant a symbolic link, a FIFO or a file of their own at any free name. The
//! functions here never follow a link at the last component, never wait for a FIFO's other
//! end, and never remove a file by name without first making sure (by device and inode) that
//! it is the one the caller judged.

use std::fs::File;
use std::io;

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use rustix::fs::{Mode, OFlags, RenameFlags};
use rustix::io::Errno;

/// The identity of a file: its device and inode numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileId {
    pub(crate) dev: u64,
    pub(crate) ino: u64,
}

impl FileId {
    /// The identity of an open file's metadata.
    pub(crate) fn of(meta: &std::fs::Metadata) -> FileId {
        FileId {
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }
}

/// Opens `path` for reading without following a symbolic link at its last component and
/// without blocking (a FIFO opens at once instead of waiting for a writer). The caller
/// checks what kind of file it got; a symbolic link fails with `ELOOP`.
///
/// # References
/// - [`open(2)`](https://man7.org/linux/man-pages/man2/open.2.html), `O_NOFOLLOW`,
///   `O_NONBLOCK`
pub(crate) fn open_nofollow(path: &Path) -> io::Result<File> {
    let fd = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    Ok(File::from(fd))
}

/// Creates a new file at `path` for reading and writing with exactly `mode` (the umask is
/// undone), failing with `AlreadyExists` if anything is there, a symbolic link included.
pub(crate) fn create_new(path: &Path, mode: u32) -> io::Result<File> {
    let fd = rustix::fs::open(
        path,
        OFlags::RDWR | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(mode),
    )?;
    rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode))?;
    Ok(File::from(fd))
}

/// Gives `from` the second name `to`, failing with `AlreadyExists` if anything is at `to`.
///
/// # References
/// - [`link(2)`](https://man7.org/linux/man-pages/man2/link.2.html)
pub(crate) fn link(from: &Path, to: &Path) -> io::Result<()> {
    std::fs::hard_link(from, to)
}

/// The identity of whatever is at `path`, without following a symbolic link; `None` when
/// nothing is there.
pub(crate) fn id_at(path: &Path) -> io::Result<Option<(FileId, std::fs::Metadata)>> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) => Ok(Some((FileId::of(&meta), meta))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// A name no other process can guess: `PREFIX` then 16 hex digits from the system's
/// randomness (through std's per-process hash keys), so that another user cannot plant
/// files at the names this process will use.
pub(crate) fn unguessable(prefix: &str) -> String {
    use std::hash::{BuildHasher, Hasher};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_usize(NEXT.fetch_add(1, Ordering::Relaxed));
    hasher.write_u32(std::process::id());
    format!("{prefix}{:016x}", hasher.finish())
}

/// Removes the file at `path` only if it is still the file `expected`; `Ok(false)` when
/// something else (or nothing) is there now, which is then left in place.
///
/// Linux cannot unlink by descriptor, and a name checked and then unlinked may have been
/// replaced in between. So the file is first renamed (without replacing anything) to a
/// private name in the same directory, checked there, and unlinked only if it is the one
/// expected; otherwise it is renamed back. In a sticky directory only the file's owner (or
/// root) can rename it, exactly as only they can unlink it.
///
/// # References
/// - [`rename(2)`](https://man7.org/linux/man-pages/man2/rename.2.html), `RENAME_NOREPLACE`
pub(crate) fn unlink_if_same(path: &Path, expected: FileId) -> io::Result<bool> {
    let Some(dir) = path.parent() else {
        return Err(io::ErrorKind::InvalidInput.into());
    };
    let mut attempts = 0;
    let aside = loop {
        let aside = dir.join(unguessable(REMOVING_PREFIX));
        match rename_noreplace(path, &aside) {
            Ok(()) => break aside,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempts < 16 => attempts += 1,
            Err(e) => return Err(e),
        }
    };
    match id_at(&aside)? {
        Some((id, _)) if id == expected => {
            std::fs::remove_file(&aside)?;
            Ok(true)
        }
        _ => {
            // Someone replaced the file between the caller's check and the rename: put
            // theirs back. If yet another file took the name meanwhile, theirs stays aside
            // under a name that says what it is, rather than replacing a newer one.
            if let Err(e) = rename_noreplace(&aside, path) {
                tracing::warn!(
                    "cannot put {} back at {}: {e}",
                    aside.display(),
                    path.display()
                );
            }
            Ok(false)
        }
    }
}

/// What names set aside by [`unlink_if_same`] start with: a backslash, which no procwire
/// object name contains, so nothing takes them for an object.
pub(crate) const REMOVING_PREFIX: &str = ".gone\\";

fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    rustix::fs::renameat_with(
        rustix::fs::CWD,
        from,
        rustix::fs::CWD,
        to,
        RenameFlags::NOREPLACE,
    )
    .map_err(io::Error::from)
}

/// Whether an error is the `ELOOP` that `O_NOFOLLOW` gives for a symbolic link.
pub(crate) fn is_symlink_error(e: &io::Error) -> bool {
    e.raw_os_error() == Some(Errno::LOOP.raw_os_error())
}

/// What kind of file an open descriptor is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DescriptorType {
    /// A regular file (shared memory in `/dev/shm` is one too).
    Regular,
    /// A socket.
    Socket,
    /// A FIFO.
    Fifo,
    /// A directory, a device or a link.
    Other(&'static str),
}

impl DescriptorType {
    /// The type with an article, for messages.
    pub(crate) fn with_article(self) -> &'static str {
        match self {
            DescriptorType::Regular => "a regular file",
            DescriptorType::Socket => "a socket",
            DescriptorType::Fifo => "a FIFO",
            DescriptorType::Other(what) => what,
        }
    }
}

/// The facts of an open descriptor that passing it on depends on.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Descriptor {
    pub(crate) kind: DescriptorType,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    /// The permission bits (`0o777`).
    pub(crate) mode: u32,
    pub(crate) size: u64,
    /// Whether it was opened for reading and for writing (`O_ACCMODE`).
    pub(crate) readable: bool,
    pub(crate) writable: bool,
}

/// What `fd` is, who owns it, and how it was opened.
///
/// # References
/// - [`fstat(2)`](https://man7.org/linux/man-pages/man2/fstat.2.html),
///   [`fcntl(2)`](https://man7.org/linux/man-pages/man2/fcntl.2.html) `F_GETFL`
pub(crate) fn describe(fd: std::os::fd::BorrowedFd<'_>) -> io::Result<Descriptor> {
    use rustix::fs::FileType;
    let stat = rustix::fs::fstat(fd)?;
    let kind = match FileType::from_raw_mode(stat.st_mode) {
        FileType::RegularFile => DescriptorType::Regular,
        FileType::Socket => DescriptorType::Socket,
        FileType::Fifo => DescriptorType::Fifo,
        FileType::Directory => DescriptorType::Other("a directory"),
        FileType::CharacterDevice | FileType::BlockDevice => DescriptorType::Other("a device"),
        _ => DescriptorType::Other("a file of an unknown type"),
    };
    let flags = rustix::fs::fcntl_getfl(fd)?;
    let (readable, writable) = match flags & OFlags::RWMODE {
        f if f == OFlags::RDWR => (true, true),
        f if f == OFlags::WRONLY => (false, true),
        _ => (!flags.contains(OFlags::PATH), false),
    };
    Ok(Descriptor {
        kind,
        uid: stat.st_uid,
        gid: stat.st_gid,
        mode: stat.st_mode & 0o777,
        size: stat.st_size as u64,
        readable,
        writable,
    })
}

/// A new open file description of the file `fd` has open, for `readable` and `writable`
/// (close-on-exec, never following a link): what a handle passed with less access than its
/// own is, so that the receiver cannot use more. The kernel checks this process's right to
/// the file again.
///
/// # References
/// - [`proc_pid_fd(5)`](https://man7.org/linux/man-pages/man5/proc_pid_fd.5.html)
pub(crate) fn reopen(
    fd: std::os::fd::BorrowedFd<'_>,
    readable: bool,
    writable: bool,
) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::AsRawFd;
    let access = match (readable, writable) {
        (true, true) => OFlags::RDWR,
        (false, true) => OFlags::WRONLY,
        _ => OFlags::RDONLY,
    };
    let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
    Ok(rustix::fs::open(
        path.as_str(),
        access | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(tag: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("procwire-fstest-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn unlink_if_same_removes_only_the_checked_file() {
        let dir = scratch("unlink");
        let path = dir.join("x");
        std::fs::write(&path, b"first").unwrap();
        let (first, _) = id_at(&path).unwrap().unwrap();
        // Made while the first still exists, so that it cannot reuse its inode.
        std::fs::write(dir.join("keep"), b"second").unwrap();
        std::fs::rename(dir.join("keep"), &path).unwrap();
        assert!(
            !unlink_if_same(&path, first).unwrap(),
            "a newer file is left"
        );
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        let (second, _) = id_at(&path).unwrap().unwrap();
        assert!(unlink_if_same(&path, second).unwrap());
        assert!(id_at(&path).unwrap().is_none());
        assert!(!unlink_if_same(&path, second).unwrap(), "nothing there");
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            0,
            "nothing left aside"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn planted_links_are_neither_followed_nor_replaced() {
        let dir = scratch("links");
        let target = dir.join("target");
        let link_path = dir.join("link");
        std::os::unix::fs::symlink(&target, &link_path).unwrap();
        let e = open_nofollow(&link_path).unwrap_err();
        assert!(is_symlink_error(&e), "{e}");
        let e = create_new(&link_path, 0o600).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        assert!(!target.exists(), "nothing was created through the link");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
