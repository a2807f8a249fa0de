//! The wire formats: the pipe handshake and frames, network mailslot datagrams, and the
//! registry's entry files, as pure encode and decode.
//!
//! Nothing here does I/O or reads a clock: bytes go in, values and decisions come out. The
//! same format runs over Unix sockets and TCP; `docs/protocol.md` describes it byte by byte.
//!
//! A connection starts with a [`Request`] from the client and a [`Response`] from the
//! server. After an accepting response, a byte-type pipe is a plain byte stream; a
//! message-type pipe carries frames: a 4-byte big-endian header, then the payload. A header
//! with the top bit set is a close frame carrying a reason, one with the top two bits set a
//! handle frame carrying a passed object's [`HandleRecord`] (see [`FrameHeader`]).

#![forbid(unsafe_code)]

mod frame;
mod handle;
mod handshake;
mod mailslot;
mod registry;

pub use frame::{
    encode_close_frame, encode_handle_header, encode_message_header, FrameHeader, CLOSE_BIT,
    FRAME_HEADER_LEN, HANDLE_BITS, MAX_CLOSE_REASON, MAX_FRAME_LEN, MAX_HANDLE_RECORD,
};
pub use handle::{HandleKind, HandleRecord, PipeFacts, HANDLE_RECORD_HEADER_LEN, HANDLE_VERSION};
pub use handshake::{
    DataPath, Request, Response, Status, DATA_PATH_LEN, DATA_PATH_MAGIC, MAX_DETAIL_LEN,
    MAX_PIPE_NAME_LEN, REQUEST_FLAG_SHARED_MEMORY, REQUEST_HEADER_LEN, RESPONSE_HEADER_LEN,
};
pub use mailslot::{SlotDatagram, MAILSLOT_HEADER_LEN, MAILSLOT_MAGIC, MAX_UDP_PAYLOAD};
pub use registry::{
    Backing, KindClass, Lifetime, ObjectKind, RegistryEntry, MAX_REGISTRY_ENTRY_LEN,
    REGISTRY_HEADER_LEN, REGISTRY_MAGIC, REGISTRY_VERSION,
};

/// The first four bytes of every handshake message.
pub const MAGIC: [u8; 4] = *b"PWIR";

/// The protocol version this crate speaks.
pub const VERSION: u8 = 1;

/// How a pipe carries data after the handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PipeMode {
    /// A plain byte stream, like a TCP connection.
    Byte,
    /// Whole messages with their boundaries kept.
    Message,
}

impl PipeMode {
    /// The wire encoding: 1 = byte, 2 = message.
    pub fn to_byte(self) -> u8 {
        match self {
            PipeMode::Byte => 1,
            PipeMode::Message => 2,
        }
    }

    /// The mode for a wire byte; `None` for an unknown value.
    pub fn from_byte(b: u8) -> Option<PipeMode> {
        match b {
            1 => Some(PipeMode::Byte),
            2 => Some(PipeMode::Message),
            _ => None,
        }
    }
}

impl std::fmt::Display for PipeMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PipeMode::Byte => "byte",
            PipeMode::Message => "message",
        })
    }
}

/// Bytes that break the protocol.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// The first four bytes are not [`MAGIC`]: the peer does not speak this protocol.
    #[error("bad magic {found:02x?}: the peer does not speak the procwire pipe protocol (expected \"PWIR\")")]
    BadMagic {
        /// The four bytes received.
        found: [u8; 4],
    },
    /// The peer speaks another version.
    #[error("protocol version {found} is not supported (this side speaks version {VERSION})")]
    UnsupportedVersion {
        /// The version the peer sent.
        found: u8,
    },
    /// A field holds a value the format does not allow.
    #[error("bad {field}: {problem}")]
    BadField {
        /// The field's name, as in docs/protocol.md.
        field: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// A frame announces more bytes than the pipe's maximum message size.
    #[error("frame of {len} bytes exceeds the maximum message size of {max} bytes")]
    FrameTooLarge {
        /// The length in the header.
        len: u64,
        /// The maximum in force.
        max: u32,
    },
}

#[cfg(test)]
mod proptests;
