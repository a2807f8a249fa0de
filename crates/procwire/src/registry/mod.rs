//! Names on disk, for every kind of object: who owns a name, whether the owner is alive,
//! what is stale, and what is there.
//!
//! Each named object (pipe, mailslot, mapping, mutex, semaphore, event) has one *entry* in
//! its namespace's registry, `ROOT/registry/CLASS/NAME`, where `ROOT` is
//! [`Namespace::root`] and `CLASS` is `pipe`, `mailslot` or `object` (mappings and the sync
//! objects share names, as on Windows). The entry's bytes are
//! [`RegistryEntry`](crate::wire::RegistryEntry): the kind, the lifetime, the owning
//! process (pid and start time), sizes and limits, and the name itself.
//!
//! # Ownership
//!
//! A name is taken by linking a fully written entry into place (`link(2)` fails if anything
//! is there), so nobody ever reads half an entry and two creators cannot both win. The
//! process that linked it *holds* the name; it removes the entry (and only its own entry,
//! checked by inode) when it lets go.
//!
//! # Trust
//!
//! In the Global namespace every user can create files beside the entries. An entry is
//! believed only if it is opened without following links or blocking, is a regular file
//! writable by nobody but its owner, decodes exactly, and carries the
//! name it is found under. Its owner is the file's owner as the kernel reports it:
//! nothing another user writes can claim to be someone else's entry. Anything else at a
//! name is reported, with its owner, and left alone.
//!
//! # Liveness
//!
//! The owner is alive while its process runs: the pid and start time in the entry are
//! checked against `/proc` (the same test the robust mutex uses for its owner). Nothing
//! another user can open, lock or write changes that answer. An entry whose owner is gone
//! (or whose memory was removed) is *stale*: it is not listed, opening it says why, and the
//! next process to take the name clears it away — removing an object's memory only when the
//! memory belongs to the stale entry's owner.

pub(crate) mod object;
mod socket;
mod store;

pub use crate::wire::{KindClass, Lifetime, ObjectKind};
pub(crate) use socket::{describe_non_socket, replace_stale_socket, StaleSocket};
pub(crate) use store::{
    claim, ensure_global_tree, entry_for as store_entry, read, Claim, ClaimError, Lookup,
};

use std::io;

use crate::name::{Name, Namespace};

/// One live named object, as [`list`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Listing {
    /// The namespace it lives in.
    pub namespace: Namespace,
    /// Its name within the namespace.
    pub name: String,
    /// What it is.
    pub kind: ObjectKind,
    /// The uid that owns its name (the owner of its registry entry, as the kernel says).
    pub owner_uid: u32,
    /// The process that created it.
    pub owner_pid: u32,
}

impl Listing {
    /// The name as every API accepts it: `\\.\pipe\X`, `Global\X`, `\\.\mailslot\X`, …
    pub fn full_name(&self) -> String {
        let ns = match self.namespace {
            Namespace::Local => "",
            Namespace::Global => "Global\\",
        };
        match self.kind {
            ObjectKind::Pipe => format!(r"\\.\pipe\{ns}{}", self.name),
            ObjectKind::Mailslot => format!(r"\\.\mailslot\{ns}{}", self.name),
            _ => format!("{ns}{}", self.name),
        }
    }
}

/// Every live named object of a namespace, of every kind, sorted by kind and name.
///
/// Stale entries (their owner is gone) and files that are not trusted entries are left
/// out.
///
/// # Errors
///
/// An I/O error when a registry directory exists but cannot be read.
///
/// # Examples
///
/// ```no_run
/// use procwire::name::Namespace;
///
/// for object in procwire::registry::list(Namespace::Global)? {
///     println!("{:<10} {} (uid {})", object.kind, object.full_name(), object.owner_uid);
/// }
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn list(ns: Namespace) -> io::Result<Vec<Listing>> {
    let mut found = Vec::new();
    for class in KindClass::ALL {
        found.extend(list_class(ns, class)?);
    }
    found.sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
    Ok(found)
}

/// The live objects of one class.
pub(crate) fn list_class(ns: Namespace, class: KindClass) -> io::Result<Vec<Listing>> {
    let dir = store::class_dir_path(ns, class);
    let items = match std::fs::read_dir(&dir) {
        Ok(items) => items,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut found = Vec::new();
    for item in items {
        let Ok(object) = item?.file_name().into_string() else {
            continue;
        };
        if store::is_temporary(&object) {
            continue;
        }
        if let Ok(Lookup::Found(entry)) = read(ns, class, &object) {
            if entry.stale_reason(ns).is_none() {
                found.push(Listing {
                    namespace: ns,
                    name: object,
                    kind: entry.entry.kind,
                    owner_uid: entry.owner_uid,
                    owner_pid: entry.entry.owner_pid,
                });
            }
        }
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}

/// Whether a live owner holds the name `object` of `class` in `ns` with a trusted entry.
pub(crate) fn is_live(ns: Namespace, class: KindClass, object: &str) -> bool {
    matches!(read(ns, class, object), Ok(Lookup::Found(f)) if f.stale_reason(ns).is_none())
}

/// What every named object with bytes can be asked without opening it: whether it
/// exists, how to remove its name, which ones there are, and what kind it is.
///
/// Implemented by [`Mapping`](crate::mapping::Mapping) and the three sync objects
/// ([`NamedMutex`](crate::sync::NamedMutex), [`NamedSemaphore`](crate::sync::NamedSemaphore),
/// [`NamedEvent`](crate::sync::NamedEvent)), which share one namespace. Pipes and mailslots
/// live as long as their server and answer the same questions through
/// [`pipe::exists`](crate::pipe::exists) and [`mailslot::exists`](crate::mailslot::exists);
/// [`list`] lists every kind at once, as `procwire ls` does.
///
/// # Examples
///
/// ```no_run
/// use procwire::registry::NamedObject;
/// use procwire::sync::NamedEvent;
///
/// if NamedEvent::exists(r"Global\Ready")? {
///     NamedEvent::remove(r"Global\Ready")?;
/// }
/// # Ok::<(), procwire::sync::SyncError>(())
/// ```
pub trait NamedObject {
    /// What this type is in the registry.
    const KIND: ObjectKind;
    /// The error of this type's operations.
    type Error;

    /// Whether a live object of this kind has the name (`Mutex::OpenExisting` without the
    /// open).
    ///
    /// # Errors
    ///
    /// A malformed name, or a name that another kind of object has (`WrongKind`).
    fn exists<N>(name: N) -> Result<bool, Self::Error>
    where
        N: TryInto<Name>,
        N::Error: Into<Self::Error>;

    /// Removes the name, as its owner (or root) may; handles already open keep working.
    ///
    /// # Errors
    ///
    /// `NotFound`, `WrongKind`, or `AccessDenied` for another user's name.
    fn remove<N>(name: N) -> Result<(), Self::Error>
    where
        N: TryInto<Name>,
        N::Error: Into<Self::Error>;

    /// The live objects of this kind in a namespace, sorted by name.
    ///
    /// # Errors
    ///
    /// An I/O error when the registry cannot be read.
    fn list(ns: Namespace) -> io::Result<Vec<String>> {
        Ok(list_class(ns, Self::KIND.class())?
            .into_iter()
            .filter(|l| l.kind == Self::KIND)
            .map(|l| l.name)
            .collect())
    }
}
