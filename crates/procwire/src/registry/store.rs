//! The entry files: reading them as untrusted bytes, taking a name, letting it go.

use std::io::{self, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::name::Namespace;
use crate::sys::fs::{self as sysfs, FileId};
use crate::sys::thread::{self, Liveness, ThreadId};
use crate::wire::{Backing, KindClass, Lifetime, RegistryEntry, MAX_REGISTRY_ENTRY_LEN};

/// `ROOT/registry/CLASS`, without creating anything.
pub(crate) fn class_dir_path(ns: Namespace, class: KindClass) -> PathBuf {
    ns.root().join("registry").join(class.as_str())
}

/// `ROOT/registry/CLASS`, created if missing and checked: private to the user in Local,
/// shared with the sticky bit (and owned by root or this user) in Global.
pub(crate) fn class_dir(ns: Namespace, class: KindClass) -> io::Result<PathBuf> {
    let root = ns.root();
    let registry = root.join("registry");
    let dir = registry.join(class.as_str());
    match ns {
        Namespace::Local => {
            for d in [&root, &registry, &dir] {
                crate::sys::ensure_private_dir(d)?;
            }
        }
        Namespace::Global => ensure_global_tree()?,
    }
    Ok(dir)
}

/// Makes (or checks) every shared directory of the Global namespace at once: the root,
/// `pipe`, `mailslot`, `registry` and its three classes. Made together by the first user
/// of Global, they leave no folder for another user to create first (a folder of another
/// user is refused, and would shut its owner's neighbours out).
pub(crate) fn ensure_global_tree() -> io::Result<()> {
    let root = Namespace::Global.root();
    let registry = root.join("registry");
    let mut dirs = vec![
        root.clone(),
        root.join("pipe"),
        root.join("mailslot"),
        registry.clone(),
    ];
    dirs.extend(KindClass::ALL.iter().map(|c| registry.join(c.as_str())));
    for d in &dirs {
        crate::sys::ensure_shared_dir(d)?;
    }
    Ok(())
}

/// How temporary entries start: with a backslash, which no object name can contain, so a
/// temporary entry is never taken for an object. `PID-N` follows.
const TEMP_PREFIX: &str = ".new\\";

/// Whether a file name in a registry directory is a create or a removal in progress.
pub(crate) fn is_temporary(file_name: &str) -> bool {
    file_name.starts_with(TEMP_PREFIX) || file_name.starts_with(sysfs::REMOVING_PREFIX)
}

/// A trusted entry, as found on disk.
#[derive(Debug)]
pub(crate) struct Found {
    /// What it says.
    pub(crate) entry: RegistryEntry,
    /// Who owns the entry file: the owner of the name.
    pub(crate) owner_uid: u32,
    /// Which file it is.
    pub(crate) id: FileId,
    /// Where it is.
    pub(crate) path: PathBuf,
}

/// What is at a name in the registry.
#[derive(Debug)]
pub(crate) enum Lookup {
    /// Nothing.
    Missing,
    /// A trusted entry (live or stale: ask [`Found::stale_reason`]).
    Found(Found),
    /// Something that is not a trusted entry: what, and whose, in words.
    Untrusted(String),
}

/// Reads what is at `object` in the registry of `class`, without creating anything and
/// without following links or blocking.
///
/// # Errors
///
/// An I/O error other than "not there" (such as a registry this user cannot read).
pub(crate) fn read(ns: Namespace, class: KindClass, object: &str) -> io::Result<Lookup> {
    let path = class_dir_path(ns, class).join(object);
    let file = match sysfs::open_nofollow(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Lookup::Missing),
        Err(e) if sysfs::is_symlink_error(&e) => {
            let owner = std::fs::symlink_metadata(&path)
                .map(|m| format!(" of uid {}", m.uid()))
                .unwrap_or_default();
            return Ok(Lookup::Untrusted(format!(
                "a symbolic link{owner} ({})",
                path.display()
            )));
        }
        Err(e) => return Err(e),
    };
    let meta = file.metadata()?;
    let uid = meta.uid();
    let untrusted = |what: &str| {
        Ok(Lookup::Untrusted(format!(
            "{what} of uid {uid} ({})",
            path.display()
        )))
    };
    if !meta.is_file() {
        return untrusted(if meta.is_dir() {
            "a directory"
        } else {
            "a special file"
        });
    }
    if meta.mode() & 0o022 != 0 {
        return untrusted("a file that others may write, which procwire did not write,");
    }
    let mut bytes = Vec::new();
    (&file)
        .take(MAX_REGISTRY_ENTRY_LEN as u64 + 1)
        .read_to_end(&mut bytes)?;
    match RegistryEntry::decode(&bytes) {
        Some(entry) if entry.name == object && entry.kind.class() == class => {
            Ok(Lookup::Found(Found {
                entry,
                owner_uid: uid,
                id: FileId::of(&meta),
                path,
            }))
        }
        Some(_) => untrusted("an entry made for another name"),
        None => untrusted("a file procwire did not write"),
    }
}

impl Found {
    /// Why the object is gone although its entry is still here: its owner's process ended
    /// (for objects removed with their owner), or its memory was removed. `None` while it
    /// lives.
    pub(crate) fn stale_reason(&self, ns: Namespace) -> Option<String> {
        let e = &self.entry;
        if e.lifetime == Lifetime::RemoveOnDrop {
            let owner = ThreadId {
                tid: e.owner_pid,
                start: e.owner_start,
            };
            if thread::liveness(owner) == Liveness::Dead {
                return Some(format!(
                    "its owner (pid {}) has exited, which removes the name",
                    e.owner_pid
                ));
            }
            // A pid that runs is the owner only if it runs as the entry's user: a forged
            // entry naming someone else's process (pid 1, say) names no owner at all.
            if let Some(uids) = thread::process_uids(e.owner_pid) {
                if !uids.contains(&self.owner_uid) {
                    return Some(format!(
                        "pid {} runs as uid {}, not as the entry's owner (uid {})",
                        e.owner_pid, uids[1], self.owner_uid
                    ));
                }
            }
            if e.owner_start == 0 && thread::current_process().start != 0 {
                return Some("it records no start time for its owner, as every entry made where /proc is readable does".into());
            }
        }
        if e.backing == Backing::Memory {
            let path = super::object::memory_path(ns, &e.name);
            if let Ok(None) = sysfs::id_at(&path) {
                return Some(format!("its memory ({}) has been removed", path.display()));
            }
        }
        None
    }

    /// Removes the entry if it is still this file. `Ok(false)` when it was replaced or
    /// removed meanwhile.
    ///
    /// # Errors
    ///
    /// `PermissionDenied` when this user may not remove it (another user's entry in a
    /// sticky directory).
    pub(crate) fn remove(&self) -> io::Result<bool> {
        sysfs::unlink_if_same(&self.path, self.id)
    }

    /// Whether the entry at its path is still this file.
    pub(crate) fn is_current(&self) -> bool {
        matches!(sysfs::id_at(&self.path), Ok(Some((id, _))) if id == self.id)
    }
}

/// A name this process holds: its entry is in place. Dropping it removes the entry if it
/// is still ours.
#[derive(Debug)]
pub(crate) struct Claim {
    path: PathBuf,
    id: FileId,
    released: bool,
}

impl Claim {
    /// Lets go of the name now (as drop does).
    pub(crate) fn release(mut self) {
        self.release_now();
    }

    fn release_now(&mut self) {
        if !self.released {
            self.released = true;
            if let Err(e) = sysfs::unlink_if_same(&self.path, self.id) {
                tracing::warn!("cannot remove the entry {}: {e}", self.path.display());
            }
        }
    }

    /// Leaves the entry in place for good: the name outlives this process
    /// ([`Lifetime::Persistent`]).
    pub(crate) fn keep(mut self) {
        self.released = true;
    }

    /// Whether the entry at its path is still ours.
    pub(crate) fn is_current(&self) -> bool {
        matches!(sysfs::id_at(&self.path), Ok(Some((id, _))) if id == self.id)
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.release_now();
    }
}

/// Why a name could not be taken.
#[derive(Debug)]
pub(crate) enum ClaimError {
    /// A live owner holds it.
    Taken(Box<Found>),
    /// Something that is not a trusted entry is at the name (in words, with its owner).
    Untrusted(String),
    /// A stale entry of another user is at the name and this user may not remove it.
    StaleOfOther(Box<Found>),
    /// The registry itself failed.
    Io(io::Error),
}

impl From<io::Error> for ClaimError {
    fn from(e: io::Error) -> Self {
        ClaimError::Io(e)
    }
}

/// Takes the name `entry.name` in the registry of its kind, for this process.
///
/// A stale entry at the name is cleared away (only the entry: whatever else the stale
/// object left is the caller's to judge), and the name is taken anew.
///
/// # Errors
///
/// As [`ClaimError`] says.
pub(crate) fn claim(ns: Namespace, entry: &RegistryEntry) -> Result<Claim, ClaimError> {
    let class = entry.kind.class();
    let dir = class_dir(ns, class)?;
    let path = dir.join(&entry.name);
    let mode = match ns {
        Namespace::Local => 0o600,
        Namespace::Global => 0o644,
    };
    // In Global another user can create a file at the name we would pick: pick another.
    let mut attempts = 0;
    let (temp, mut file) = loop {
        let temp = dir.join(sysfs::unguessable(TEMP_PREFIX));
        match sysfs::create_new(&temp, mode) {
            Ok(file) => break (temp, file),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempts < 16 => attempts += 1,
            Err(e) => return Err(e.into()),
        }
    };
    let result = (|| {
        file.write_all(&entry.encode())?;
        let id = FileId::of(&file.metadata()?);
        // A stale entry is cleared at most a few times: more means others keep recreating
        // the name, and one of them has it.
        for _ in 0..8 {
            match sysfs::link(&temp, &path) {
                Ok(()) => {
                    return Ok(Claim {
                        path: path.clone(),
                        id,
                        released: false,
                    })
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e.into()),
            }
            match read(ns, class, &entry.name)? {
                Lookup::Missing => continue,
                Lookup::Untrusted(what) => return Err(ClaimError::Untrusted(what)),
                Lookup::Found(found) => {
                    let Some(reason) = found.stale_reason(ns) else {
                        return Err(ClaimError::Taken(Box::new(found)));
                    };
                    match found.remove() {
                        Ok(_) => {
                            tracing::info!(object = %entry.name, "cleared away a stale name: {reason}")
                        }
                        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                            return Err(ClaimError::StaleOfOther(Box::new(found)))
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        }
        Err(ClaimError::Io(io::Error::new(
            io::ErrorKind::WouldBlock,
            "the name was taken and given up again 8 times while this process tried to take it",
        )))
    })();
    drop(file);
    let _ = std::fs::remove_file(&temp);
    result
}

/// Removes temporary entries (and files set aside for removal) that this user left in a
/// registry directory more than a minute ago: a crash between writing an entry and linking
/// it, or between setting a file aside and unlinking it. Their names are unguessable, so
/// age is what tells a leftover from work in progress.
pub(crate) fn sweep_temporaries(dir: &Path) {
    let Ok(items) = std::fs::read_dir(dir) else {
        return;
    };
    let me = crate::sys::current_user().0;
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(60);
    for item in items.flatten() {
        let Ok(name) = item.file_name().into_string() else {
            continue;
        };
        if !is_temporary(&name) {
            continue;
        }
        let Ok(meta) = item.metadata() else {
            continue;
        };
        let ours = meta.uid() == me || me == 0;
        if ours && meta.modified().is_ok_and(|at| at < old) {
            let _ = std::fs::remove_file(item.path());
        }
    }
}

/// The entry of this process for an object: kind, name, owner (this process).
pub(crate) fn entry_for(kind: crate::wire::ObjectKind, name: &str) -> RegistryEntry {
    let me = thread::current_process();
    RegistryEntry {
        kind,
        lifetime: Lifetime::RemoveOnDrop,
        backing: Backing::Socket,
        owner_pid: me.tid,
        owner_start: me.start,
        size: 0,
        max_message: 0,
        name: name.to_owned(),
    }
}
