//! Exclusive lock files that say "a live process owns this name".

use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use rustix::fs::FlockOperation;

/// An exclusive `flock` on a file, held for the life of this value.
///
/// The kernel drops the lock when the holding process dies, so a lock that can be taken
/// means the previous owner is gone, whatever files it left behind. On drop the file is
/// unlinked while still locked; [`LockFile::try_lock`] re-checks that the file it locked is
/// still the one at the path, so the unlink cannot race a new owner.
#[derive(Debug)]
pub(crate) struct LockFile {
    file: File,
    path: PathBuf,
}

impl LockFile {
    /// Takes the lock at `path`, creating the file with `mode`. `Ok(None)` when a live
    /// process holds it.
    ///
    /// # References
    /// - [`flock(2)`](https://man7.org/linux/man-pages/man2/flock.2.html)
    pub(crate) fn try_lock(path: &Path, mode: u32) -> io::Result<Option<LockFile>> {
        use std::os::unix::fs::OpenOptionsExt;
        // `is_held` takes a shared lock for an instant; a few retries keep it from looking
        // like a live owner.
        let mut contended = 0;
        loop {
            let file = File::options()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(mode)
                .open(path)?;
            match rustix::fs::flock(&file, FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => {}
                Err(rustix::io::Errno::WOULDBLOCK) if contended < 5 => {
                    contended += 1;
                    std::thread::sleep(std::time::Duration::from_millis(2));
                    continue;
                }
                Err(rustix::io::Errno::WOULDBLOCK) => return Ok(None),
                Err(e) => return Err(e.into()),
            }
            // The previous owner may have unlinked the file between our open and our lock:
            // then we hold a lock on a file nobody else will ever open. Try again.
            let locked = file.metadata()?;
            match std::fs::symlink_metadata(path) {
                Ok(now) if now.ino() == locked.ino() && now.dev() == locked.dev() => {
                    return Ok(Some(LockFile {
                        file,
                        path: path.to_owned(),
                    }))
                }
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Replaces the lock file's content with `note` (what openers of the name need to know,
    /// such as a size limit).
    pub(crate) fn write_note(&self, note: &str) -> io::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::FileExt;
        self.file.set_len(0)?;
        self.file.write_all_at(note.as_bytes(), 0)?;
        (&self.file).flush()
    }

    /// Whether a live process holds the lock at `path` (without taking it for long).
    pub(crate) fn is_held(path: &Path) -> bool {
        let Ok(file) = File::open(path) else {
            return false;
        };
        match rustix::fs::flock(&file, FlockOperation::NonBlockingLockShared) {
            Ok(()) => false,
            Err(_) => true,
        }
    }
}

impl Drop for LockFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        let _ = rustix::fs::flock(&self.file, FlockOperation::Unlock);
    }
}
