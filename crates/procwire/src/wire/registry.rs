//! Registry entries: the small file that says who owns a name and what it is.
//!
//! Every named object on this machine (pipe, mailslot, mapping, mutex, semaphore, event)
//! has one entry file in its namespace's registry. In the Global namespace other users can
//! write beside it, so the entry is decoded as untrusted bytes: anything that is not exactly
//! what [`RegistryEntry::encode`] writes is refused.
//!
//! The layout, all integers little endian:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | magic `procwire` |
//! | 8 | 1 | version, 2 |
//! | 9 | 1 | kind: 1 mapping, 2 mutex, 3 semaphore, 4 event, 5 pipe, 6 mailslot |
//! | 10 | 1 | lifetime: 1 removed with its owner, 2 persistent |
//! | 11 | 1 | backing: 0 none (a socket), 1 memory, 2 a file |
//! | 12 | 4 | owner's pid |
//! | 16 | 8 | owner's start time (clock ticks since boot, plus one; 0 unknown) |
//! | 24 | 8 | size in bytes (mappings and sync objects; else 0) |
//! | 32 | 8 | largest message (mailslots; else 0) |
//! | 40 | 8 | the backing file's device (backing 2; else 0) |
//! | 48 | 8 | the backing file's inode (backing 2; else 0) |
//! | 56 | 4 | length of the object name, 1..=255 |
//! | 60 | 4 | length of the backing file's path (0 unless backing is 2) |
//! | 64 | | the object name, then the path |

/// What a named object is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum ObjectKind {
    /// A named pipe.
    Pipe,
    /// A mailslot.
    Mailslot,
    /// A file mapping (named shared memory, or a named mapping of a file).
    Mapping,
    /// A named mutex.
    Mutex,
    /// A named semaphore.
    Semaphore,
    /// A named event.
    Event,
}

/// Which names an object shares: pipes and mailslots each have their own; mappings and the
/// sync objects share one, as on Windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum KindClass {
    /// Pipes.
    Pipe,
    /// Mailslots.
    Mailslot,
    /// Mappings, mutexes, semaphores and events.
    Object,
}

impl KindClass {
    /// Every class, in the order listings show them.
    pub const ALL: [KindClass; 3] = [KindClass::Pipe, KindClass::Mailslot, KindClass::Object];

    /// The registry folder of the class: `pipe`, `mailslot`, `object`.
    pub fn as_str(self) -> &'static str {
        match self {
            KindClass::Pipe => "pipe",
            KindClass::Mailslot => "mailslot",
            KindClass::Object => "object",
        }
    }
}

impl ObjectKind {
    fn code(self) -> u8 {
        match self {
            ObjectKind::Mapping => 1,
            ObjectKind::Mutex => 2,
            ObjectKind::Semaphore => 3,
            ObjectKind::Event => 4,
            ObjectKind::Pipe => 5,
            ObjectKind::Mailslot => 6,
        }
    }

    fn from_code(code: u8) -> Option<ObjectKind> {
        Some(match code {
            1 => ObjectKind::Mapping,
            2 => ObjectKind::Mutex,
            3 => ObjectKind::Semaphore,
            4 => ObjectKind::Event,
            5 => ObjectKind::Pipe,
            6 => ObjectKind::Mailslot,
            _ => return None,
        })
    }

    /// The names this kind shares.
    pub fn class(self) -> KindClass {
        match self {
            ObjectKind::Pipe => KindClass::Pipe,
            ObjectKind::Mailslot => KindClass::Mailslot,
            _ => KindClass::Object,
        }
    }

    /// `pipe`, `mailslot`, `mapping`, `mutex`, `semaphore`, `event`.
    pub fn noun(self) -> &'static str {
        match self {
            ObjectKind::Pipe => "pipe",
            ObjectKind::Mailslot => "mailslot",
            ObjectKind::Mapping => "mapping",
            ObjectKind::Mutex => "mutex",
            ObjectKind::Semaphore => "semaphore",
            ObjectKind::Event => "event",
        }
    }

    /// `a pipe`, `an event`, …
    pub fn with_article(self) -> &'static str {
        match self {
            ObjectKind::Pipe => "a pipe",
            ObjectKind::Mailslot => "a mailslot",
            ObjectKind::Mapping => "a mapping",
            ObjectKind::Mutex => "a mutex",
            ObjectKind::Semaphore => "a semaphore",
            ObjectKind::Event => "an event",
        }
    }
}

impl std::fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.noun())
    }
}

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

/// Where an object's bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backing {
    /// Nothing but a socket (pipes and mailslots).
    Socket,
    /// Shared memory.
    Memory,
    /// A file: its absolute path (bytes as the system gives them), and its device and
    /// inode, so that a file put at the path later is not taken for it.
    File {
        /// The absolute path.
        path: Vec<u8>,
        /// The file's device number.
        dev: u64,
        /// The file's inode number.
        ino: u64,
    },
}

/// One decoded registry entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryEntry {
    /// What the object is.
    pub kind: ObjectKind,
    /// How long it lives.
    pub lifetime: Lifetime,
    /// Where its bytes are.
    pub backing: Backing,
    /// The process that owns the name.
    pub owner_pid: u32,
    /// That process's start time in clock ticks since boot, plus one (0: unknown), so that a
    /// pid the kernel has handed out again is not taken for the owner.
    pub owner_start: u64,
    /// The object's size in bytes (mappings and sync objects).
    pub size: u64,
    /// The largest message (mailslots).
    pub max_message: u64,
    /// The object's name within its namespace, which must match the entry's file name: an
    /// entry linked under another name is refused.
    pub name: String,
}

/// The magic that starts every entry.
pub const REGISTRY_MAGIC: &[u8; 8] = b"procwire";
/// The entry format's version.
pub const REGISTRY_VERSION: u8 = 2;
/// The length of the fixed part of an entry.
pub const REGISTRY_HEADER_LEN: usize = 64;
/// The longest entry: the header, a name of 255 bytes and a path of 4096.
pub const MAX_REGISTRY_ENTRY_LEN: usize = REGISTRY_HEADER_LEN + 255 + 4096;

impl RegistryEntry {
    /// The entry's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let (path, dev, ino): (&[u8], u64, u64) = match &self.backing {
            Backing::File { path, dev, ino } => (path, *dev, *ino),
            _ => (&[], 0, 0),
        };
        let mut out = Vec::with_capacity(REGISTRY_HEADER_LEN + self.name.len() + path.len());
        out.extend_from_slice(REGISTRY_MAGIC);
        out.push(REGISTRY_VERSION);
        out.push(self.kind.code());
        out.push(match self.lifetime {
            Lifetime::RemoveOnDrop => 1,
            Lifetime::Persistent => 2,
        });
        out.push(match self.backing {
            Backing::Socket => 0,
            Backing::Memory => 1,
            Backing::File { .. } => 2,
        });
        out.extend_from_slice(&self.owner_pid.to_le_bytes());
        out.extend_from_slice(&self.owner_start.to_le_bytes());
        out.extend_from_slice(&self.size.to_le_bytes());
        out.extend_from_slice(&self.max_message.to_le_bytes());
        out.extend_from_slice(&dev.to_le_bytes());
        out.extend_from_slice(&ino.to_le_bytes());
        out.extend_from_slice(&(self.name.len() as u32).to_le_bytes());
        out.extend_from_slice(&(path.len() as u32).to_le_bytes());
        out.extend_from_slice(self.name.as_bytes());
        out.extend_from_slice(path);
        out
    }

    /// Decodes an entry; `None` for anything [`encode`](Self::encode) would not write: a
    /// wrong magic or version, an unknown code, lengths that do not add up, a name that is
    /// empty, too long, not UTF-8 or holds a `/`, `\` or NUL, a relative path or one with a
    /// NUL, or a backing its kind cannot have.
    pub fn decode(bytes: &[u8]) -> Option<RegistryEntry> {
        let header = bytes.get(..REGISTRY_HEADER_LEN)?;
        if &header[..8] != REGISTRY_MAGIC || header[8] != REGISTRY_VERSION {
            return None;
        }
        let kind = ObjectKind::from_code(header[9])?;
        let lifetime = match header[10] {
            1 => Lifetime::RemoveOnDrop,
            2 => Lifetime::Persistent,
            _ => return None,
        };
        let u32_at = |at: usize| u32::from_le_bytes(header[at..at + 4].try_into().unwrap());
        let u64_at = |at: usize| u64::from_le_bytes(header[at..at + 8].try_into().unwrap());
        let owner_pid = u32_at(12);
        let owner_start = u64_at(16);
        let size = u64_at(24);
        let max_message = u64_at(32);
        let dev = u64_at(40);
        let ino = u64_at(48);
        let name_len = u32_at(56) as usize;
        let path_len = u32_at(60) as usize;
        if name_len == 0 || name_len > 255 || path_len > 4096 {
            return None;
        }
        let rest = &bytes[REGISTRY_HEADER_LEN..];
        if rest.len() != name_len + path_len {
            return None;
        }
        let (name, path) = rest.split_at(name_len);
        let name = std::str::from_utf8(name).ok()?;
        if name.contains(['/', '\\']) || name.chars().any(char::is_control) {
            return None;
        }
        let backing = match header[11] {
            0 if path.is_empty() && dev == 0 && ino == 0 => Backing::Socket,
            1 if path.is_empty() && dev == 0 && ino == 0 => Backing::Memory,
            2 if path.first() == Some(&b'/') && !path.contains(&0) => Backing::File {
                path: path.to_vec(),
                dev,
                ino,
            },
            _ => return None,
        };
        let fits = match kind {
            ObjectKind::Pipe | ObjectKind::Mailslot => {
                backing == Backing::Socket && lifetime == Lifetime::RemoveOnDrop && size == 0
            }
            ObjectKind::Mapping => backing != Backing::Socket && max_message == 0,
            _ => backing == Backing::Memory && max_message == 0,
        };
        if !fits || (kind != ObjectKind::Mailslot && max_message != 0) {
            return None;
        }
        Some(RegistryEntry {
            kind,
            lifetime,
            backing,
            owner_pid,
            owner_start,
            size,
            max_message,
            name: name.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn mapping(backing: Backing) -> RegistryEntry {
        RegistryEntry {
            kind: ObjectKind::Mapping,
            lifetime: Lifetime::Persistent,
            backing,
            owner_pid: 4242,
            owner_start: 77,
            size: 1 << 40,
            max_message: 0,
            name: "HelloWorld".into(),
        }
    }

    fn slot() -> RegistryEntry {
        RegistryEntry {
            kind: ObjectKind::Mailslot,
            lifetime: Lifetime::RemoveOnDrop,
            backing: Backing::Socket,
            size: 0,
            max_message: 424,
            ..mapping(Backing::Socket)
        }
    }

    #[test]
    fn entries_round_trip() {
        for e in [
            mapping(Backing::Memory),
            mapping(Backing::File {
                path: b"/home/u/data bin".to_vec(),
                dev: 2049,
                ino: 77,
            }),
            RegistryEntry {
                kind: ObjectKind::Event,
                lifetime: Lifetime::RemoveOnDrop,
                ..mapping(Backing::Memory)
            },
            slot(),
            RegistryEntry {
                kind: ObjectKind::Pipe,
                max_message: 0,
                ..slot()
            },
        ] {
            assert_eq!(RegistryEntry::decode(&e.encode()), Some(e));
        }
    }

    #[test]
    fn bad_entries_are_refused() {
        let good = mapping(Backing::File {
            path: b"/x".to_vec(),
            dev: 1,
            ino: 2,
        })
        .encode();
        let decode = RegistryEntry::decode;
        assert!(decode(&good[..good.len() - 1]).is_none(), "truncated");
        let mut long = good.clone();
        long.push(b'y');
        assert!(decode(&long).is_none(), "trailing bytes");
        for (at, value, what) in [
            (9, 9, "unknown kind"),
            (8, 1, "old version"),
            (10, 0, "unknown lifetime"),
            (11, 7, "unknown backing"),
        ] {
            let mut bad = good.clone();
            bad[at] = value;
            assert!(decode(&bad).is_none(), "{what}");
        }
        let relative = mapping(Backing::File {
            path: b"x".to_vec(),
            dev: 1,
            ino: 2,
        })
        .encode();
        assert!(decode(&relative).is_none(), "relative path");
        let mutex_on_file = RegistryEntry {
            kind: ObjectKind::Mutex,
            ..mapping(Backing::File {
                path: b"/x".to_vec(),
                dev: 1,
                ino: 2,
            })
        };
        assert!(decode(&mutex_on_file.encode()).is_none());
        let persistent_pipe = RegistryEntry {
            kind: ObjectKind::Pipe,
            lifetime: Lifetime::Persistent,
            ..slot()
        };
        assert!(decode(&persistent_pipe.encode()).is_none());
        for name in ["", "a/b", "a\\b", "a\0b", "a\tb", "a\x1b[8m"] {
            let e = RegistryEntry {
                name: name.into(),
                ..slot()
            };
            assert!(decode(&e.encode()).is_none(), "name {name:?}");
        }
    }

    /// The example of docs/protocol.md, section 12.
    #[test]
    fn the_documented_example_encodes_as_shown() {
        let entry = RegistryEntry {
            kind: ObjectKind::Pipe,
            lifetime: Lifetime::RemoveOnDrop,
            backing: Backing::Socket,
            owner_pid: 4242,
            owner_start: 1001,
            size: 0,
            max_message: 0,
            name: "Jobs".into(),
        };
        let page = include_str!("../../../../docs/protocol.md");
        let section = &page[page.find("## 12. Registry entries").unwrap()..];
        let hex = section
            .split("```")
            .nth(1)
            .unwrap()
            .split_whitespace()
            .map(|b| u8::from_str_radix(b, 16).unwrap())
            .collect::<Vec<u8>>();
        assert_eq!(entry.encode(), hex);
        assert_eq!(RegistryEntry::decode(&hex), Some(entry));
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = RegistryEntry::decode(&bytes);
        }

        #[test]
        fn whatever_decodes_encodes_to_the_same_bytes(at in 0usize..100, byte in any::<u8>()) {
            let mut bytes = mapping(Backing::File { path: b"/some/file".to_vec(), dev: 1, ino: 2 }).encode();
            let at = at % bytes.len();
            bytes[at] = byte;
            if let Some(e) = RegistryEntry::decode(&bytes) {
                prop_assert_eq!(e.encode(), bytes);
            }
        }
    }
}
