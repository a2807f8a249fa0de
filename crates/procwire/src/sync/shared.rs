//! What every named sync object has: a page of shared state in `/dev/shm`, a header that
//! says what it is, and the common create/open/remove logic.
//!
//! The page starts with a 16-byte header, then the object's words from offset 64:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | magic `pwsync\0\0` |
//! | 8 | 4 | layout version (1), native endian |
//! | 12 | 4 | kind: 2 mutex, 3 semaphore, 4 event |
//! | 64.. | | the object's atomics (see each type) |

use std::os::fd::AsFd;
use std::sync::atomic::{AtomicU32, AtomicU64};

use super::SyncError;
use crate::name::Name;
use crate::registry::object::{self, CreateSpec, Object};
use crate::security::{Access, AccessList};
use crate::sys::shm::Region;
use crate::wire::{Lifetime, ObjectKind};

/// The size of a sync object's shared state.
const STATE_LEN: usize = 4096;
const MAGIC: &[u8; 8] = b"pwsync\0\0";
const LAYOUT_VERSION: u32 = 1;
/// Where the object's own words start.
pub(crate) const BODY: usize = 64;

/// The settings every sync object has at creation.
#[derive(Debug, Clone, Default)]
pub(crate) struct Common {
    pub(crate) access: AccessList,
    pub(crate) lifetime: Lifetime,
}

/// An open sync object: its registry object and its mapped state.
#[derive(Debug)]
pub(crate) struct Shared {
    region: Region,
    name: String,
    kind: ObjectKind,
    object: Object,
}

fn kind_code(kind: ObjectKind) -> u32 {
    match kind {
        ObjectKind::Mapping => 1,
        ObjectKind::Mutex => 2,
        ObjectKind::Semaphore => 3,
        ObjectKind::Event => 4,
        _ => 0,
    }
}

/// What each sync type tells the shared code: its kind.
pub(crate) trait SyncType {
    const KIND: ObjectKind;
}

impl<T: SyncType> crate::registry::NamedObject for T {
    const KIND: ObjectKind = <T as SyncType>::KIND;
    type Error = SyncError;

    fn exists<N>(name: N) -> Result<bool, SyncError>
    where
        N: TryInto<Name>,
        N::Error: Into<SyncError>,
    {
        let (name, display) = parse(name, <T as SyncType>::KIND)?;
        Shared::exists(&name, &display, <T as SyncType>::KIND)
    }

    fn remove<N>(name: N) -> Result<(), SyncError>
    where
        N: TryInto<Name>,
        N::Error: Into<SyncError>,
    {
        let (name, display) = parse(name, <T as SyncType>::KIND)?;
        Shared::remove(&name, &display, <T as SyncType>::KIND)
    }
}

/// Parses a name for a sync object of `kind`.
pub(crate) fn parse<N>(name: N, kind: ObjectKind) -> Result<(Name, String), SyncError>
where
    N: TryInto<Name>,
    N::Error: Into<SyncError>,
{
    let name: Name = name.try_into().map_err(Into::into)?;
    object::local_object(&name, kind)?;
    let display = name.to_string();
    Ok((name, display))
}

impl Shared {
    /// Creates the object; `init` sets its words before any other process can open it.
    pub(crate) fn create(
        name: &Name,
        display: String,
        kind: ObjectKind,
        common: &Common,
        init: impl FnOnce(&Region),
    ) -> Result<Shared, SyncError> {
        let noun = kind.noun();
        if let Some((_, access)) = common
            .access
            .grants()
            .iter()
            .find(|(_, a)| *a != Access::ReadWrite)
        {
            return Err(SyncError::InvalidArgument {
                name: display,
                kind: noun,
                detail: format!(
                    "the access list grants {access} access, but every use of a {noun} writes \
                     its shared state: grant ReadWrite, or nothing"
                ),
            });
        }
        let spec = CreateSpec {
            kind,
            lifetime: common.lifetime,
            size: Some(STATE_LEN as u64),
            file: None,
            access: &common.access,
        };
        let (object, region) = object::create(name, &spec, |fd| {
            let region = Region::map(fd.as_fd(), 0, STATE_LEN, true)
                .map_err(|e| object::ObjectError::Io("cannot map the shared state".into(), e))?;
            let mut header = [0u8; 16];
            header[..8].copy_from_slice(MAGIC);
            header[8..12].copy_from_slice(&LAYOUT_VERSION.to_ne_bytes());
            header[12..16].copy_from_slice(&kind_code(kind).to_ne_bytes());
            region.write(0, &header);
            init(&region);
            Ok(region)
        })
        .map_err(|e| SyncError::from_object(&display, kind, e))?;
        Ok(Shared {
            region,
            name: display,
            kind,
            object,
        })
    }

    /// Opens the object, checking that its state is a procwire object of `kind`.
    pub(crate) fn open(
        name: &Name,
        display: String,
        kind: ObjectKind,
    ) -> Result<Shared, SyncError> {
        let noun = kind.noun();
        let object = object::open(name, kind, true)
            .map_err(|e| SyncError::from_object(&display, kind, e))?;
        // `object::open` checked the memory is as long as the entry says; the entry (which
        // another user may have written, in Global) must say a whole state page, or mapping
        // it would fault on the first touch (SIGBUS).
        if object.size() < STATE_LEN as u64 {
            return Err(SyncError::Corrupt {
                name: display,
                kind: noun,
                detail: format!(
                    "its shared state is {} bytes, less than the {STATE_LEN} of a procwire                      {noun}; remove it and create it again",
                    object.size()
                ),
            });
        }
        let region =
            Region::map(object.data(), 0, STATE_LEN, true).map_err(|source| SyncError::Io {
                name: display.clone(),
                kind: noun,
                context: "cannot map the shared state".into(),
                source,
            })?;
        let mut header = [0u8; 16];
        region.read(0, &mut header);
        let version = u32::from_ne_bytes(header[8..12].try_into().unwrap_or_default());
        let found = u32::from_ne_bytes(header[12..16].try_into().unwrap_or_default());
        if &header[..8] != MAGIC || version != LAYOUT_VERSION || found != kind_code(kind) {
            return Err(SyncError::Corrupt {
                name: display,
                kind: noun,
                detail: format!(
                    "its shared state has header {:02x?}, not that of a version \
                     {LAYOUT_VERSION} procwire {noun}",
                    &header
                ),
            });
        }
        Ok(Shared {
            region,
            name: display,
            kind,
            object,
        })
    }

    /// Opens the object, or creates it if nothing has the name.
    pub(crate) fn open_or_create(
        name: &Name,
        display: String,
        kind: ObjectKind,
        common: &Common,
        init: impl Fn(&Region),
    ) -> Result<Shared, SyncError> {
        let mut last = None;
        for _ in 0..8 {
            match Shared::create(name, display.clone(), kind, common, &init) {
                Err(e @ SyncError::AlreadyExists { .. }) => last = Some(e),
                result => return result,
            }
            match Shared::open(name, display.clone(), kind) {
                Err(SyncError::NotFound { .. }) => {}
                result => return result,
            }
        }
        Err(last.expect("the loop ran"))
    }

    /// Removes the object `name` of `kind`.
    pub(crate) fn remove(name: &Name, display: &str, kind: ObjectKind) -> Result<(), SyncError> {
        object::remove(name, kind).map_err(|e| SyncError::from_object(display, kind, e))
    }

    /// Whether a live object of `kind` has the name.
    pub(crate) fn exists(name: &Name, display: &str, kind: ObjectKind) -> Result<bool, SyncError> {
        match object::kind_of(name, kind) {
            Ok(None) => Ok(false),
            Ok(Some(found)) if found == kind => Ok(true),
            Ok(Some(found)) => Err(SyncError::WrongKind {
                name: display.to_owned(),
                expected: kind.with_article(),
                found: found.with_article().into(),
            }),
            Err(e) => Err(SyncError::from_object(display, kind, e)),
        }
    }

    /// The object's name, in canonical form.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The 4-byte word at `offset` of the state.
    #[inline]
    pub(crate) fn u32_at(&self, offset: usize) -> &AtomicU32 {
        // The state is a writable, page-aligned mapping of STATE_LEN bytes and the offsets
        // are constants of this module's layout: this cannot fail.
        self.region
            .atomic_u32(offset)
            .expect("sync state layout: a 4-aligned word inside the writable state page")
    }

    /// The 8-byte word at `offset` of the state.
    #[inline]
    pub(crate) fn u64_at(&self, offset: usize) -> &AtomicU64 {
        self.region
            .atomic_u64(offset)
            .expect("sync state layout: an 8-aligned word inside the writable state page")
    }

    /// A [`SyncError::Io`] about this object.
    pub(crate) fn io_error(&self, context: &str, source: std::io::Error) -> SyncError {
        SyncError::Io {
            name: self.name.clone(),
            kind: self.kind.noun(),
            context: context.into(),
            source,
        }
    }

    /// A [`SyncError::Timeout`] about this object.
    pub(crate) fn timeout(&self, after: std::time::Duration) -> SyncError {
        SyncError::Timeout {
            name: self.name.clone(),
            kind: self.kind.noun(),
            after,
        }
    }

    /// Whether this handle created the object.
    pub(crate) fn created(&self) -> bool {
        self.object.created()
    }

    /// How long the name lives.
    pub(crate) fn lifetime(&self) -> Lifetime {
        self.object.lifetime()
    }
}

/// A wait's deadline: the instant and the duration it was asked as (for the error).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadline {
    pub(crate) at: Option<std::time::Instant>,
    pub(crate) asked: std::time::Duration,
}

impl Deadline {
    /// No deadline.
    pub(crate) fn never() -> Deadline {
        Deadline {
            at: None,
            asked: std::time::Duration::MAX,
        }
    }

    /// `timeout` from now (a timeout too long to represent is no deadline).
    pub(crate) fn after(timeout: std::time::Duration) -> Deadline {
        Deadline {
            at: std::time::Instant::now().checked_add(timeout),
            asked: timeout,
        }
    }

    /// The time left: `None` for no deadline, zero once it has passed.
    pub(crate) fn left(&self) -> Option<std::time::Duration> {
        self.at
            .map(|at| at.saturating_duration_since(std::time::Instant::now()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::name::Namespace;
    use crate::registry::NamedObject;
    use crate::sync::NamedMutex;

    #[test]
    fn a_state_shorter_than_a_page_is_refused_not_mapped() {
        // What another user could plant in Global: a valid entry for an empty memory file.
        let object = format!("unit-sync-short-{}", std::process::id());
        let dir = Namespace::Local.root().join("registry").join("object");
        std::fs::create_dir_all(&dir).unwrap();
        let entry = object::test_entry(ObjectKind::Mutex, &object, 0);
        std::fs::write(dir.join(&object), entry.encode()).unwrap();
        let shm = format!(
            "{}/{}",
            crate::sys::shm::SHM_DIR,
            object::shm_name(Namespace::Local, &object)
        );
        std::fs::write(&shm, b"").unwrap();
        let e = NamedMutex::open(object.as_str()).unwrap_err();
        assert!(matches!(e, SyncError::Corrupt { .. }), "{e}");
        assert!(e.to_string().contains("0 bytes"), "{e}");
        NamedMutex::remove(object.as_str()).unwrap();
        assert!(!std::path::Path::new(&shm).exists());
    }
}
