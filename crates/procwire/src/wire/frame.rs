//! Frames of a message-type pipe: a 4-byte big-endian header, then the payload.

use super::ProtocolError;

/// The length of a frame header in bytes.
pub const FRAME_HEADER_LEN: usize = 4;

/// The header bit that marks a close frame.
pub const CLOSE_BIT: u32 = 1 << 31;

/// The largest payload a message frame can announce (2 GiB - 1).
pub const MAX_FRAME_LEN: u32 = CLOSE_BIT - 1;

/// The longest reason a close frame may carry, in bytes.
pub const MAX_CLOSE_REASON: u32 = 1024;

/// The header bits (the close bit and the next one) that mark a handle frame: a record of
/// a passed object (see [`HandleRecord`](super::HandleRecord)) whose descriptor travels
/// beside the bytes (`SCM_RIGHTS`). A valid close frame never has the second bit set, so
/// a peer that does not know handle frames refuses one as a bad close reason length.
pub const HANDLE_BITS: u32 = 0b11 << 30;

/// The longest record a handle frame may carry, in bytes.
pub const MAX_HANDLE_RECORD: u32 = 1024;

/// A decoded frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameHeader {
    /// A message of this many bytes follows.
    Message(u32),
    /// The sender is closing the connection; a UTF-8 reason of this many bytes follows.
    Close(u32),
    /// The sender passes an object: a [`HandleRecord`](super::HandleRecord) of this many
    /// bytes follows, and its descriptors came with the frame's first byte.
    Handle(u32),
}

impl FrameHeader {
    /// Decodes a header, checking a message's length against `max`.
    ///
    /// # Errors
    ///
    /// [`ProtocolError::FrameTooLarge`] for a message over `max`, or
    /// [`ProtocolError::BadField`] for a close reason over [`MAX_CLOSE_REASON`] or a handle
    /// record over [`MAX_HANDLE_RECORD`].
    pub fn decode(bytes: [u8; FRAME_HEADER_LEN], max: u32) -> Result<FrameHeader, ProtocolError> {
        let word = u32::from_be_bytes(bytes);
        if word & HANDLE_BITS == HANDLE_BITS {
            let len = word & !HANDLE_BITS;
            if len > MAX_HANDLE_RECORD {
                return Err(ProtocolError::BadField {
                    field: "handle record length",
                    problem: format!("{len} is over the limit of {MAX_HANDLE_RECORD}"),
                });
            }
            return Ok(FrameHeader::Handle(len));
        }
        if word & CLOSE_BIT != 0 {
            let len = word & !CLOSE_BIT;
            if len > MAX_CLOSE_REASON {
                return Err(ProtocolError::BadField {
                    field: "close reason length",
                    problem: format!("{len} is over the limit of {MAX_CLOSE_REASON}"),
                });
            }
            return Ok(FrameHeader::Close(len));
        }
        if word > max {
            return Err(ProtocolError::FrameTooLarge {
                len: u64::from(word),
                max,
            });
        }
        Ok(FrameHeader::Message(word))
    }
}

/// The header of a message of `len` bytes.
///
/// # Errors
///
/// [`ProtocolError::FrameTooLarge`] when `len` is over `max` (or over [`MAX_FRAME_LEN`]).
pub fn encode_message_header(len: usize, max: u32) -> Result<[u8; 4], ProtocolError> {
    let max = max.min(MAX_FRAME_LEN);
    match u32::try_from(len) {
        Ok(n) if n <= max => Ok(n.to_be_bytes()),
        _ => Err(ProtocolError::FrameTooLarge {
            len: len as u64,
            max,
        }),
    }
}

/// A whole close frame with `reason` (cut to [`MAX_CLOSE_REASON`] bytes).
pub fn encode_close_frame(reason: &str) -> Vec<u8> {
    let mut cut = reason.len().min(MAX_CLOSE_REASON as usize);
    while !reason.is_char_boundary(cut) {
        cut -= 1;
    }
    let mut out = ((cut as u32) | CLOSE_BIT).to_be_bytes().to_vec();
    out.extend_from_slice(&reason.as_bytes()[..cut]);
    out
}

/// The header of a handle frame carrying a record of `len` bytes.
///
/// # Errors
///
/// [`ProtocolError::BadField`] when `len` is over [`MAX_HANDLE_RECORD`].
pub fn encode_handle_header(len: usize) -> Result<[u8; 4], ProtocolError> {
    match u32::try_from(len) {
        Ok(n) if n <= MAX_HANDLE_RECORD => Ok((n | HANDLE_BITS).to_be_bytes()),
        _ => Err(ProtocolError::BadField {
            field: "handle record length",
            problem: format!("{len} is over the limit of {MAX_HANDLE_RECORD}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip() {
        for len in [0usize, 1, 65536, 8 << 20] {
            let h = encode_message_header(len, 16 << 20).unwrap();
            assert_eq!(
                FrameHeader::decode(h, 16 << 20),
                Ok(FrameHeader::Message(len as u32))
            );
        }
    }

    #[test]
    fn oversize_is_refused_both_ways() {
        assert!(encode_message_header(11, 10).is_err());
        assert_eq!(
            FrameHeader::decode(11u32.to_be_bytes(), 10),
            Err(ProtocolError::FrameTooLarge { len: 11, max: 10 })
        );
    }

    #[test]
    fn close_frames_carry_reasons() {
        let frame = encode_close_frame("bye");
        assert_eq!(frame, [0x80, 0, 0, 3, b'b', b'y', b'e']);
        assert_eq!(
            FrameHeader::decode([0x80, 0, 0, 3], 0),
            Ok(FrameHeader::Close(3))
        );
        let long = "é".repeat(1000);
        assert!(encode_close_frame(&long).len() <= 4 + MAX_CLOSE_REASON as usize);
    }

    #[test]
    fn handle_headers_round_trip_and_stay_apart_from_close_frames() {
        let h = encode_handle_header(21).unwrap();
        assert_eq!(h, [0xc0, 0, 0, 21]);
        assert_eq!(FrameHeader::decode(h, 0), Ok(FrameHeader::Handle(21)));
        assert!(encode_handle_header(MAX_HANDLE_RECORD as usize + 1).is_err());
        assert!(FrameHeader::decode([0xc0, 0, 4, 1], u32::MAX).is_err());
        // Every valid close frame is still a close frame.
        assert_eq!(
            FrameHeader::decode(encode_close_frame("x")[..4].try_into().unwrap(), 0),
            Ok(FrameHeader::Close(1))
        );
    }
}
