//! Mailslot datagrams on the network (UDP): a small header naming the slot, then the
//! message. Local mailslot datagrams carry the bare message, with no header.

use super::ProtocolError;

/// The first four bytes of every network mailslot datagram.
pub const MAILSLOT_MAGIC: [u8; 4] = *b"PWMS";

/// The length of the header before the slot name.
pub const MAILSLOT_HEADER_LEN: usize = 6;

/// The largest UDP payload (IPv4): 65,535 - 8 (UDP) - 20 (IP).
pub const MAX_UDP_PAYLOAD: usize = 65_507;

/// A decoded network datagram: which slot it is for, and the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotDatagram<'a> {
    /// The slot's object name (`HelloWorld`).
    pub slot: &'a str,
    /// The message.
    pub message: &'a [u8],
}

impl<'a> SlotDatagram<'a> {
    /// Encodes a datagram for `slot` carrying `message`.
    ///
    /// # Errors
    ///
    /// [`ProtocolError::BadField`] when the slot name is empty or over 255 bytes, and
    /// [`ProtocolError::FrameTooLarge`] when the datagram would not fit in UDP.
    pub fn encode(&self) -> Result<Vec<u8>, ProtocolError> {
        let name = self.slot.as_bytes();
        if name.is_empty() || name.len() > 255 {
            return Err(ProtocolError::BadField {
                field: "slot name length",
                problem: format!("{} is not between 1 and 255", name.len()),
            });
        }
        let len = MAILSLOT_HEADER_LEN + name.len() + self.message.len();
        if len > MAX_UDP_PAYLOAD {
            return Err(ProtocolError::FrameTooLarge {
                len: len as u64,
                max: MAX_UDP_PAYLOAD as u32,
            });
        }
        let mut out = Vec::with_capacity(len);
        out.extend_from_slice(&MAILSLOT_MAGIC);
        out.push(super::VERSION);
        out.push(name.len() as u8);
        out.extend_from_slice(name);
        out.extend_from_slice(self.message);
        Ok(out)
    }

    /// Decodes a whole datagram.
    ///
    /// # Errors
    ///
    /// A [`ProtocolError`] naming what is wrong: magic, version, name length or name.
    pub fn decode(datagram: &'a [u8]) -> Result<SlotDatagram<'a>, ProtocolError> {
        if datagram.len() < MAILSLOT_HEADER_LEN {
            let mut found = [0; 4];
            let n = datagram.len().min(4);
            found[..n].copy_from_slice(&datagram[..n]);
            if datagram[..n] != MAILSLOT_MAGIC[..n] {
                return Err(ProtocolError::BadMagic { found });
            }
            return Err(ProtocolError::BadField {
                field: "datagram length",
                problem: format!("{} bytes is shorter than the header", datagram.len()),
            });
        }
        let mut magic = [0; 4];
        magic.copy_from_slice(&datagram[..4]);
        if magic != MAILSLOT_MAGIC {
            return Err(ProtocolError::BadMagic { found: magic });
        }
        if datagram[4] != super::VERSION {
            return Err(ProtocolError::UnsupportedVersion { found: datagram[4] });
        }
        let name_len = usize::from(datagram[5]);
        let end = MAILSLOT_HEADER_LEN + name_len;
        if name_len == 0 || datagram.len() < end {
            return Err(ProtocolError::BadField {
                field: "slot name length",
                problem: format!(
                    "{name_len} does not fit a datagram of {} bytes",
                    datagram.len()
                ),
            });
        }
        let slot = std::str::from_utf8(&datagram[MAILSLOT_HEADER_LEN..end]).map_err(|e| {
            ProtocolError::BadField {
                field: "slot name",
                problem: format!("not UTF-8 ({e})"),
            }
        })?;
        Ok(SlotDatagram {
            slot,
            message: &datagram[end..],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn layout_is_as_documented() {
        let d = SlotDatagram {
            slot: "Box",
            message: b"hi",
        };
        assert_eq!(d.encode().unwrap(), b"PWMS\x01\x03Boxhi");
        assert_eq!(SlotDatagram::decode(b"PWMS\x01\x03Boxhi").unwrap(), d);
    }

    #[test]
    fn bad_datagrams_say_why() {
        assert!(matches!(
            SlotDatagram::decode(b""),
            Err(ProtocolError::BadField { .. })
        ));
        assert!(matches!(
            SlotDatagram::decode(b"hello world"),
            Err(ProtocolError::BadMagic { .. })
        ));
        assert!(matches!(
            SlotDatagram::decode(b"PWMS\x02\x01a"),
            Err(ProtocolError::UnsupportedVersion { found: 2 })
        ));
        assert!(matches!(
            SlotDatagram::decode(b"PWMS\x01\x09ab"),
            Err(ProtocolError::BadField { .. })
        ));
        let big = vec![0u8; MAX_UDP_PAYLOAD];
        let d = SlotDatagram {
            slot: "a",
            message: &big,
        };
        assert!(matches!(
            d.encode(),
            Err(ProtocolError::FrameTooLarge { .. })
        ));
    }

    proptest! {
        #[test]
        fn round_trips(slot in "[a-zA-Z0-9]{1,64}", message in proptest::collection::vec(any::<u8>(), 0..2000)) {
            let d = SlotDatagram { slot: &slot, message: &message };
            let bytes = d.encode().unwrap();
            prop_assert_eq!(SlotDatagram::decode(&bytes).unwrap(), d);
        }

        #[test]
        fn any_bytes_decode_or_error(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            if let Ok(d) = SlotDatagram::decode(&bytes) {
                prop_assert!(d.slot.len() + d.message.len() + MAILSLOT_HEADER_LEN == bytes.len());
            }
        }
    }
}
