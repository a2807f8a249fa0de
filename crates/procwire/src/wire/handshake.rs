//! The handshake: one [`Request`] from the client, one [`Response`] from the server.

use super::{PipeMode, ProtocolError, MAGIC, VERSION};
use crate::security::Access;

/// The longest pipe name a request may carry, in bytes.
pub const MAX_PIPE_NAME_LEN: usize = 255;

/// The longest detail text a response may carry, in bytes.
pub const MAX_DETAIL_LEN: usize = 1024;

/// The length of a request before its name.
pub const REQUEST_HEADER_LEN: usize = 10;
/// The length of a response before its detail text.
pub const RESPONSE_HEADER_LEN: usize = 18;

/// What a client asks for when it connects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// What the client will do: read, write or both.
    pub access: Access,
    /// The read mode the client wants: [`PipeMode::Message`] needs a message-type pipe;
    /// [`PipeMode::Byte`] works on both types.
    pub mode: PipeMode,
    /// The pipe's object name (`HelloWorld`), which the server checks.
    pub pipe: String,
    /// Whether the client asks for the shared-memory data path (flag
    /// [`REQUEST_FLAG_SHARED_MEMORY`]); the server's [`DataPath`] record says which path
    /// the connection takes.
    pub shared_memory: bool,
}

/// The request flag by which a client asks for the shared-memory data path.
pub const REQUEST_FLAG_SHARED_MEMORY: u8 = 0x01;

/// How the server answers a [`Request`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Connected; data follows.
    Ok,
    /// The server has no pipe of that name.
    NotFound,
    /// Every instance is in use.
    Busy,
    /// The client may not have the access it asked for.
    AccessDenied,
    /// The client asked for message mode on a byte-type pipe.
    ModeMismatch,
    /// The server does not speak the client's version.
    UnsupportedVersion,
    /// The request could not be decoded.
    BadRequest,
}

impl Status {
    /// The wire encoding (0 to 6).
    pub fn to_byte(self) -> u8 {
        match self {
            Status::Ok => 0,
            Status::NotFound => 1,
            Status::Busy => 2,
            Status::AccessDenied => 3,
            Status::ModeMismatch => 4,
            Status::UnsupportedVersion => 5,
            Status::BadRequest => 6,
        }
    }

    /// The status for a wire byte; `None` for an unknown value.
    pub fn from_byte(b: u8) -> Option<Status> {
        Some(match b {
            0 => Status::Ok,
            1 => Status::NotFound,
            2 => Status::Busy,
            3 => Status::AccessDenied,
            4 => Status::ModeMismatch,
            5 => Status::UnsupportedVersion,
            6 => Status::BadRequest,
            _ => return None,
        })
    }
}

/// The server's answer to a [`Request`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Accepted, or why not.
    pub status: Status,
    /// The pipe's type: how data flows after the handshake.
    pub pipe_type: PipeMode,
    /// The access granted (`None` when refused).
    pub access: Option<Access>,
    /// The largest message either side may send, in bytes (message-type pipes; 0 for
    /// byte-type).
    pub max_message: u32,
    /// Instances in use, counting this one when accepted (saturates at 65535).
    pub instances: u16,
    /// The maximum number of instances; 0 means unlimited.
    pub max_instances: u16,
    /// A human-readable reason for a refusal (empty when accepted).
    pub detail: String,
}

fn check_magic_and_version(buf: &[u8]) -> Result<bool, ProtocolError> {
    let have = buf.len().min(4);
    if buf[..have] != MAGIC[..have] {
        let mut found = [0; 4];
        found[..have].copy_from_slice(&buf[..have]);
        return Err(ProtocolError::BadMagic { found });
    }
    match buf.get(4) {
        None => Ok(false),
        Some(&VERSION) => Ok(true),
        Some(&found) => Err(ProtocolError::UnsupportedVersion { found }),
    }
}

fn text_field(field: &'static str, bytes: &[u8]) -> Result<String, ProtocolError> {
    String::from_utf8(bytes.to_vec()).map_err(|e| ProtocolError::BadField {
        field,
        problem: format!("not UTF-8 ({e})"),
    })
}

impl Request {
    /// Encodes the request.
    ///
    /// # Panics
    ///
    /// When `pipe` is longer than [`MAX_PIPE_NAME_LEN`]; names from [`crate::name`] never are.
    pub fn encode(&self) -> Vec<u8> {
        assert!(self.pipe.len() <= MAX_PIPE_NAME_LEN, "pipe name too long");
        let mut out = Vec::with_capacity(REQUEST_HEADER_LEN + self.pipe.len());
        out.extend_from_slice(&MAGIC);
        out.push(VERSION);
        out.push(self.access.bits());
        out.push(self.mode.to_byte());
        out.push(if self.shared_memory {
            REQUEST_FLAG_SHARED_MEMORY
        } else {
            0
        });
        out.extend_from_slice(&(self.pipe.len() as u16).to_be_bytes());
        out.extend_from_slice(self.pipe.as_bytes());
        out
    }

    /// How many bytes the request that starts `prefix` takes in all, as far as `prefix`
    /// tells: the header length until the header is complete. Reading exactly this many
    /// bytes never reads past the request.
    pub fn wanted_len(prefix: &[u8]) -> usize {
        match prefix.get(8..10) {
            Some(len) => REQUEST_HEADER_LEN + usize::from(u16::from_be_bytes([len[0], len[1]])),
            None => REQUEST_HEADER_LEN,
        }
    }

    /// Decodes a request from the start of `buf`: `Ok(Some((request, bytes used)))`, or
    /// `Ok(None)` when more bytes are needed. Errors are reported as early as the bytes
    /// allow, so a peer that sends garbage is told at once.
    ///
    /// # Errors
    ///
    /// A [`ProtocolError`] naming the first bad field.
    pub fn decode(buf: &[u8]) -> Result<Option<(Request, usize)>, ProtocolError> {
        if !check_magic_and_version(buf)? {
            return Ok(None);
        }
        let access = match buf.get(5) {
            None => return Ok(None),
            Some(&b) => Access::from_bits(b).ok_or_else(|| ProtocolError::BadField {
                field: "access",
                problem: format!("{b} is not 1 (read), 2 (write) or 3 (duplex)"),
            })?,
        };
        let mode = match buf.get(6) {
            None => return Ok(None),
            Some(&b) => PipeMode::from_byte(b).ok_or_else(|| ProtocolError::BadField {
                field: "mode",
                problem: format!("{b} is not 1 (byte) or 2 (message)"),
            })?,
        };
        let shared_memory = match buf.get(7) {
            None => return Ok(None),
            Some(&b) if b & !REQUEST_FLAG_SHARED_MEMORY == 0 => b != 0,
            Some(&b) => {
                return Err(ProtocolError::BadField {
                    field: "flags",
                    problem: format!(
                        "{b:#04x} has unknown bits; only {REQUEST_FLAG_SHARED_MEMORY:#04x} \
                         (shared memory) is defined"
                    ),
                })
            }
        };
        if buf.len() < REQUEST_HEADER_LEN {
            return Ok(None);
        }
        let name_len = usize::from(u16::from_be_bytes([buf[8], buf[9]]));
        if name_len == 0 || name_len > MAX_PIPE_NAME_LEN {
            return Err(ProtocolError::BadField {
                field: "name length",
                problem: format!("{name_len} is not between 1 and {MAX_PIPE_NAME_LEN}"),
            });
        }
        let end = REQUEST_HEADER_LEN + name_len;
        if buf.len() < end {
            return Ok(None);
        }
        let pipe = text_field("name", &buf[REQUEST_HEADER_LEN..end])?;
        let request = Request {
            access,
            mode,
            pipe,
            shared_memory,
        };
        Ok(Some((request, end)))
    }
}

impl Response {
    /// Encodes the response; a detail longer than [`MAX_DETAIL_LEN`] is cut at a character
    /// boundary.
    pub fn encode(&self) -> Vec<u8> {
        let mut detail = self.detail.as_str();
        if detail.len() > MAX_DETAIL_LEN {
            let mut cut = MAX_DETAIL_LEN;
            while !detail.is_char_boundary(cut) {
                cut -= 1;
            }
            detail = &detail[..cut];
        }
        let mut out = Vec::with_capacity(RESPONSE_HEADER_LEN + detail.len());
        out.extend_from_slice(&MAGIC);
        out.push(VERSION);
        out.push(self.status.to_byte());
        out.push(self.pipe_type.to_byte());
        out.push(self.access.map_or(0, Access::bits));
        out.extend_from_slice(&self.max_message.to_be_bytes());
        out.extend_from_slice(&self.instances.to_be_bytes());
        out.extend_from_slice(&self.max_instances.to_be_bytes());
        out.extend_from_slice(&(detail.len() as u16).to_be_bytes());
        out.extend_from_slice(detail.as_bytes());
        out
    }

    /// How many bytes the response that starts `prefix` takes in all, as far as `prefix`
    /// tells (see [`Request::wanted_len`]).
    pub fn wanted_len(prefix: &[u8]) -> usize {
        match prefix.get(16..18) {
            Some(len) => RESPONSE_HEADER_LEN + usize::from(u16::from_be_bytes([len[0], len[1]])),
            None => RESPONSE_HEADER_LEN,
        }
    }

    /// Decodes a response from the start of `buf`, as [`Request::decode`] does.
    ///
    /// # Errors
    ///
    /// A [`ProtocolError`] naming the first bad field.
    pub fn decode(buf: &[u8]) -> Result<Option<(Response, usize)>, ProtocolError> {
        if !check_magic_and_version(buf)? || buf.len() < RESPONSE_HEADER_LEN {
            return Ok(None);
        }
        let status = Status::from_byte(buf[5]).ok_or_else(|| ProtocolError::BadField {
            field: "status",
            problem: format!("{} is not a known status (0 to 6)", buf[5]),
        })?;
        let pipe_type = PipeMode::from_byte(buf[6]).ok_or_else(|| ProtocolError::BadField {
            field: "pipe type",
            problem: format!("{} is not 1 (byte) or 2 (message)", buf[6]),
        })?;
        let access = match buf[7] {
            0 => None,
            b => Some(Access::from_bits(b).ok_or_else(|| ProtocolError::BadField {
                field: "granted access",
                problem: format!("{b} is not 0, 1, 2 or 3"),
            })?),
        };
        if (status == Status::Ok) != access.is_some() {
            return Err(ProtocolError::BadField {
                field: "granted access",
                problem: "must be non-zero exactly when the status is 0 (ok)".into(),
            });
        }
        let max_message = u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]);
        let instances = u16::from_be_bytes([buf[12], buf[13]]);
        let max_instances = u16::from_be_bytes([buf[14], buf[15]]);
        let detail_len = usize::from(u16::from_be_bytes([buf[16], buf[17]]));
        if detail_len > MAX_DETAIL_LEN {
            return Err(ProtocolError::BadField {
                field: "detail length",
                problem: format!("{detail_len} is over the limit of {MAX_DETAIL_LEN}"),
            });
        }
        let end = RESPONSE_HEADER_LEN + detail_len;
        if buf.len() < end {
            return Ok(None);
        }
        let detail = text_field("detail", &buf[RESPONSE_HEADER_LEN..end])?;
        let response = Response {
            status,
            pipe_type,
            access,
            max_message,
            instances,
            max_instances,
            detail,
        };
        Ok(Some((response, end)))
    }
}

/// The length of a [`DataPath`] record.
pub const DATA_PATH_LEN: usize = 8;

/// The first four bytes of a [`DataPath`] record.
pub const DATA_PATH_MAGIC: [u8; 4] = *b"PWDP";

/// What follows an accepting [`Response`] when the request asked for shared memory: which
/// path the connection's data takes. A record saying [`DataPath::SharedMemory`] carries two
/// descriptors (`SCM_RIGHTS`): the sealed memory region and the client's end of the second
/// doorbell socket (docs/protocol.md, section 13).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataPath {
    /// Frames on the socket, as for a client that did not ask.
    Socket,
    /// The rings of the shared-memory region.
    SharedMemory,
}

impl DataPath {
    /// Encodes the record: the magic, the path (0 socket, 1 shared memory), three zeros.
    pub fn encode(self) -> [u8; DATA_PATH_LEN] {
        let path = match self {
            DataPath::Socket => 0,
            DataPath::SharedMemory => 1,
        };
        let m = DATA_PATH_MAGIC;
        [m[0], m[1], m[2], m[3], path, 0, 0, 0]
    }

    /// Decodes a whole record.
    ///
    /// # Errors
    ///
    /// A [`ProtocolError`] for a wrong magic, an unknown path or non-zero reserved bytes.
    pub fn decode(buf: &[u8; DATA_PATH_LEN]) -> Result<DataPath, ProtocolError> {
        if buf[..4] != DATA_PATH_MAGIC {
            return Err(ProtocolError::BadMagic {
                found: [buf[0], buf[1], buf[2], buf[3]],
            });
        }
        if buf[5..] != [0, 0, 0] {
            return Err(ProtocolError::BadField {
                field: "data path reserved bytes",
                problem: "must be zero".into(),
            });
        }
        match buf[4] {
            0 => Ok(DataPath::Socket),
            1 => Ok(DataPath::SharedMemory),
            b => Err(ProtocolError::BadField {
                field: "data path",
                problem: format!("{b} is not 0 (socket) or 1 (shared memory)"),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> Request {
        Request {
            access: Access::ReadWrite,
            mode: PipeMode::Message,
            pipe: "HelloWorld".into(),
            shared_memory: false,
        }
    }

    #[test]
    fn request_layout_is_as_documented() {
        let bytes = request().encode();
        assert_eq!(&bytes[..4], b"PWIR");
        assert_eq!(bytes[4..10], [1, 3, 2, 0, 0, 10]);
        assert_eq!(&bytes[10..], b"HelloWorld");
    }

    #[test]
    fn request_needs_every_byte() {
        let bytes = request().encode();
        for cut in 0..bytes.len() {
            assert_eq!(Request::decode(&bytes[..cut]), Ok(None), "cut at {cut}");
        }
        assert_eq!(Request::decode(&bytes), Ok(Some((request(), bytes.len()))));
    }

    #[test]
    fn garbage_is_refused_at_the_first_byte() {
        assert!(matches!(
            Request::decode(b"G"),
            Err(ProtocolError::BadMagic { .. })
        ));
        assert!(matches!(
            Request::decode(b"GET / HTTP/1.1\r\n"),
            Err(ProtocolError::BadMagic { .. })
        ));
        assert_eq!(
            Request::decode(b"PWIR\x09"),
            Err(ProtocolError::UnsupportedVersion { found: 9 })
        );
        let mut bad = request().encode();
        bad[5] = 0;
        assert!(matches!(
            Request::decode(&bad),
            Err(ProtocolError::BadField {
                field: "access",
                ..
            })
        ));
    }

    #[test]
    fn the_shared_memory_flag_round_trips_and_unknown_flags_are_refused() {
        let asking = Request {
            shared_memory: true,
            ..request()
        };
        let bytes = asking.encode();
        assert_eq!(bytes[7], REQUEST_FLAG_SHARED_MEMORY);
        assert_eq!(Request::decode(&bytes), Ok(Some((asking, bytes.len()))));
        let mut bad = bytes.clone();
        bad[7] = 0x02;
        assert!(matches!(
            Request::decode(&bad),
            Err(ProtocolError::BadField { field: "flags", .. })
        ));
    }

    #[test]
    fn data_path_records_round_trip_and_garbage_is_refused() {
        for path in [DataPath::Socket, DataPath::SharedMemory] {
            assert_eq!(DataPath::decode(&path.encode()), Ok(path));
        }
        assert_eq!(&DataPath::SharedMemory.encode(), b"PWDP\x01\0\0\0");
        assert!(DataPath::decode(b"PWDP\x02\0\0\0").is_err());
        assert!(DataPath::decode(b"PWDP\x01\0\x01\0").is_err());
        assert!(DataPath::decode(b"PWIR\x01\0\0\0").is_err());
    }

    #[test]
    fn response_round_trips() {
        let response = Response {
            status: Status::Busy,
            pipe_type: PipeMode::Byte,
            access: None,
            max_message: 0,
            instances: 4,
            max_instances: 4,
            detail: "busy".into(),
        };
        let bytes = response.encode();
        assert_eq!(bytes.len(), 18 + 4);
        assert_eq!(Response::decode(&bytes), Ok(Some((response, 22))));
    }
}
