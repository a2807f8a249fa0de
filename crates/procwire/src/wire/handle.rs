//! The record of a handle frame: what kind of object a passed descriptor is, with what
//! access, under what name.
//!
//! ```text
//! offset size field
//!      0    1 version        1
//!      1    1 kind           1 = mapping, 2 = file, 3 = pipe connection, 4 = mutex,
//!                            5 = semaphore, 6 = event
//!      2    1 access         1 = read, 2 = write, 3 = read-write
//!      3    1 descriptors    how many descriptors came with the frame (always 1)
//!      4    8 size           a mapping's (or sync object's state file's) size in bytes,
//!                            big-endian; 0 for other kinds
//!     12    1 pipe type      1 = byte, 2 = message (pipe connections; 0 otherwise)
//!     13    1 read mode      1 = byte, 2 = message (pipe connections; 0 otherwise)
//!     14    4 max message    big-endian (pipe connections; 0 otherwise)
//!     18    1 flags          bit 0: the pipe end is a client's (pipe connections)
//!     19    2 name length    big-endian, then that many bytes of UTF-8 name
//! ```

use super::{PipeMode, ProtocolError};
use crate::security::Access;

/// The version of the handle record this crate writes and reads.
pub const HANDLE_VERSION: u8 = 1;

/// The bytes of a handle record before its name.
pub const HANDLE_RECORD_HEADER_LEN: usize = 21;

/// What kind of object a handle frame passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HandleKind {
    /// A [`Mapping`](crate::mapping::Mapping): its shared-memory (or backing) file.
    Mapping,
    /// An open file ([`std::fs::File`]).
    File,
    /// A local [`PipeConnection`](crate::pipe::PipeConnection): its Unix socket.
    Pipe,
    /// A [`NamedMutex`](crate::sync::NamedMutex): its state file.
    Mutex,
    /// A [`NamedSemaphore`](crate::sync::NamedSemaphore): its state file.
    Semaphore,
    /// A [`NamedEvent`](crate::sync::NamedEvent): its state file.
    Event,
}

impl HandleKind {
    /// The wire byte.
    pub fn to_byte(self) -> u8 {
        match self {
            HandleKind::Mapping => 1,
            HandleKind::File => 2,
            HandleKind::Pipe => 3,
            HandleKind::Mutex => 4,
            HandleKind::Semaphore => 5,
            HandleKind::Event => 6,
        }
    }

    /// The kind for a wire byte; `None` for an unknown one.
    pub fn from_byte(b: u8) -> Option<HandleKind> {
        match b {
            1 => Some(HandleKind::Mapping),
            2 => Some(HandleKind::File),
            3 => Some(HandleKind::Pipe),
            4 => Some(HandleKind::Mutex),
            5 => Some(HandleKind::Semaphore),
            6 => Some(HandleKind::Event),
            _ => None,
        }
    }

    /// The kind with an article, for messages (`a mapping`).
    pub fn with_article(self) -> &'static str {
        match self {
            HandleKind::Mapping => "a mapping",
            HandleKind::File => "a file",
            HandleKind::Pipe => "a pipe connection",
            HandleKind::Mutex => "a mutex",
            HandleKind::Semaphore => "a semaphore",
            HandleKind::Event => "an event",
        }
    }
}

/// The facts of a passed pipe connection that its socket does not carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PipeFacts {
    /// Byte- or message-type.
    pub pipe_type: PipeMode,
    /// How reads behave.
    pub read_mode: PipeMode,
    /// The largest message either end may send.
    pub max_message: u32,
    /// Whether the end passed is a client's.
    pub is_client: bool,
}

/// The record a handle frame carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandleRecord {
    /// What the descriptor is.
    pub kind: HandleKind,
    /// What the receiver may do with it: never more than the descriptor allows.
    pub access: Access,
    /// The object's name, for messages and for [`name`](crate::mapping::Mapping::name).
    pub name: String,
    /// A mapping's size; 0 for other kinds.
    pub size: u64,
    /// A pipe connection's facts; `None` for other kinds.
    pub pipe: Option<PipeFacts>,
}

impl HandleRecord {
    /// The record's bytes (without the frame header).
    ///
    /// # Errors
    ///
    /// [`ProtocolError::BadField`] when the name is too long for a record of
    /// [`MAX_HANDLE_RECORD`](super::MAX_HANDLE_RECORD) bytes.
    pub fn encode(&self) -> Result<Vec<u8>, ProtocolError> {
        let room = super::MAX_HANDLE_RECORD as usize - HANDLE_RECORD_HEADER_LEN;
        if self.name.len() > room {
            return Err(ProtocolError::BadField {
                field: "handle name length",
                problem: format!("{} bytes is over the limit of {room}", self.name.len()),
            });
        }
        let mut out = Vec::with_capacity(HANDLE_RECORD_HEADER_LEN + self.name.len());
        out.extend_from_slice(&[HANDLE_VERSION, self.kind.to_byte(), self.access.bits(), 1]);
        out.extend_from_slice(&self.size.to_be_bytes());
        let (pipe_type, read_mode, max, flags) = match self.pipe {
            Some(p) => (
                p.pipe_type.to_byte(),
                p.read_mode.to_byte(),
                p.max_message,
                u8::from(p.is_client),
            ),
            None => (0, 0, 0, 0),
        };
        out.extend_from_slice(&[pipe_type, read_mode]);
        out.extend_from_slice(&max.to_be_bytes());
        out.push(flags);
        out.extend_from_slice(&(self.name.len() as u16).to_be_bytes());
        out.extend_from_slice(self.name.as_bytes());
        Ok(out)
    }

    /// Decodes a record, and says how many descriptors it announces.
    ///
    /// # Errors
    ///
    /// [`ProtocolError::UnsupportedVersion`] or [`ProtocolError::BadField`] naming the
    /// field that is wrong.
    pub fn decode(bytes: &[u8]) -> Result<(HandleRecord, usize), ProtocolError> {
        let bad = |field: &'static str, problem: String| ProtocolError::BadField { field, problem };
        let Some(head) = bytes.first_chunk::<HANDLE_RECORD_HEADER_LEN>() else {
            return Err(bad(
                "handle record",
                format!(
                    "{} bytes is shorter than the {HANDLE_RECORD_HEADER_LEN}-byte header",
                    bytes.len()
                ),
            ));
        };
        if head[0] != HANDLE_VERSION {
            return Err(ProtocolError::UnsupportedVersion { found: head[0] });
        }
        let kind = HandleKind::from_byte(head[1])
            .ok_or_else(|| bad("handle kind", format!("unknown kind {}", head[1])))?;
        let access = Access::from_bits(head[2])
            .ok_or_else(|| bad("handle access", format!("unknown access bits {}", head[2])))?;
        let fds = usize::from(head[3]);
        if fds != 1 {
            return Err(bad(
                "handle descriptor count",
                format!("{fds}; a handle carries exactly 1 descriptor"),
            ));
        }
        let size = u64::from_be_bytes(head[4..12].try_into().expect("8 bytes"));
        let max_message = u32::from_be_bytes(head[14..18].try_into().expect("4 bytes"));
        let name_len = usize::from(u16::from_be_bytes([head[19], head[20]]));
        let rest = &bytes[HANDLE_RECORD_HEADER_LEN..];
        if rest.len() != name_len {
            return Err(bad(
                "handle name length",
                format!("{name_len} announced, {} bytes follow", rest.len()),
            ));
        }
        let name = std::str::from_utf8(rest)
            .map_err(|_| bad("handle name", "not UTF-8".into()))?
            .to_owned();
        let pipe = match kind {
            HandleKind::Pipe => {
                let mode = |b: u8, field| {
                    PipeMode::from_byte(b).ok_or_else(|| bad(field, format!("unknown mode {b}")))
                };
                Some(PipeFacts {
                    pipe_type: mode(head[12], "handle pipe type")?,
                    read_mode: mode(head[13], "handle read mode")?,
                    max_message,
                    is_client: head[18] & 1 != 0,
                })
            }
            _ => None,
        };
        Ok((
            HandleRecord {
                kind,
                access,
                name,
                size,
                pipe,
            },
            fds,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let records = [
            HandleRecord {
                kind: HandleKind::Mapping,
                access: Access::Read,
                name: r"Local\HelloWorld".into(),
                size: 65536,
                pipe: None,
            },
            HandleRecord {
                kind: HandleKind::Pipe,
                access: Access::ReadWrite,
                name: r"\\.\pipe\x".into(),
                size: 0,
                pipe: Some(PipeFacts {
                    pipe_type: PipeMode::Message,
                    read_mode: PipeMode::Byte,
                    max_message: 1 << 20,
                    is_client: true,
                }),
            },
        ];
        for record in records {
            let bytes = record.encode().unwrap();
            assert_eq!(HandleRecord::decode(&bytes), Ok((record, 1)));
        }
    }

    #[test]
    fn bad_records_name_their_field() {
        let good = HandleRecord {
            kind: HandleKind::File,
            access: Access::Write,
            name: "f".into(),
            size: 0,
            pipe: None,
        }
        .encode()
        .unwrap();
        let field_of = |bytes: &[u8]| match HandleRecord::decode(bytes) {
            Err(ProtocolError::BadField { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(field_of(&good[..5]), "handle record");
        let mut b = good.clone();
        b[1] = 9;
        assert_eq!(field_of(&b), "handle kind");
        let mut b = good.clone();
        b[2] = 0;
        assert_eq!(field_of(&b), "handle access");
        let mut b = good.clone();
        b[3] = 2;
        assert_eq!(field_of(&b), "handle descriptor count");
        assert_eq!(field_of(&good[..good.len() - 1]), "handle name length");
        let mut b = good;
        b[0] = 7;
        assert_eq!(
            HandleRecord::decode(&b),
            Err(ProtocolError::UnsupportedVersion { found: 7 })
        );
    }
}
