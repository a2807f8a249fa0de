//! The remoting wire format: pure encode and decode, no I/O, no clock.
//!
//! Every message is one frame (a pipe message, or a length-prefixed TCP frame). A frame
//! is one version byte ([`WIRE_VERSION`]) followed by a [postcard] encoding of a
//! [`Request`] (client to server) or a [`Response`] (server to client). The arguments and
//! results inside are opaque bytes, encoded in the request's [`Format`]: postcard (the
//! arguments as a tuple, in declaration order) or JSON (an object by argument name). No
//! type name ever travels: the server decodes only the argument types its service
//! declares. See docs/protocol.md.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{RemoteError, RemoteErrorKind, RemotingError};

/// The version byte that starts every frame.
pub const WIRE_VERSION: u8 = 1;

/// The largest frame accepted by default: 4 MiB.
pub const DEFAULT_MAX_MESSAGE: usize = 4 << 20;

/// The preamble a TCP client sends first: `PWRM` and the version.
pub const TCP_PREAMBLE: [u8; 5] = [b'P', b'W', b'R', b'M', WIRE_VERSION];

/// How arguments and results are encoded (the formatter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum Format {
    /// postcard: compact binary, arguments as a tuple.
    #[default]
    Binary,
    /// JSON: arguments as an object by name.
    Json,
}

/// What a request asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// Calls `method` on `service` (`App/Service`); `object` names a client-activated
    /// instance of that type.
    Call {
        /// `App/Service` (or `App/Type` with `object`).
        service: String,
        /// The client-activated instance, if any.
        object: Option<u64>,
        /// The method name.
        method: String,
    },
    /// Creates an instance of the client-activated type `App/Type`; `body` holds the
    /// constructor arguments. The answer is the instance id (postcard `u64`).
    Activate {
        /// `App/Type`.
        service: String,
    },
    /// Extends the lease of an instance to at least `extend_ms` from now. The answer is
    /// the time left in milliseconds (postcard `u64`).
    Renew {
        /// The instance.
        object: u64,
        /// Milliseconds.
        extend_ms: u64,
    },
    /// Drops an instance now.
    Release {
        /// The instance.
        object: u64,
    },
}

/// A request: client to server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// Chosen by the client; the response carries it back. Many may be in flight.
    pub id: u64,
    /// How long the server may work on it, in milliseconds.
    pub deadline_ms: Option<u64>,
    /// How `body` and the result are encoded.
    pub format: Format,
    /// What to do.
    pub op: Op,
    /// The arguments, encoded in `format`.
    pub body: Vec<u8>,
}

/// A response: server to client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    /// The request's id.
    pub id: u64,
    /// The result, encoded in the request's format, or the error.
    pub outcome: Result<Vec<u8>, RemoteError>,
}

fn protocol(reason: impl Into<String>) -> RemotingError {
    RemotingError::Protocol {
        reason: reason.into(),
    }
}

fn encode_frame<T: Serialize>(value: &T, max: usize) -> Result<Vec<u8>, RemotingError> {
    let mut out = vec![WIRE_VERSION];
    out = postcard::to_extend(value, out).map_err(|e| RemotingError::Codec {
        reason: e.to_string(),
    })?;
    if out.len() > max {
        return Err(RemotingError::MessageTooLarge {
            size: out.len(),
            max,
        });
    }
    Ok(out)
}

fn decode_frame<T: DeserializeOwned>(frame: &[u8], max: usize) -> Result<T, RemotingError> {
    if frame.len() > max {
        return Err(RemotingError::MessageTooLarge {
            size: frame.len(),
            max,
        });
    }
    match frame.first() {
        None => return Err(protocol("empty frame")),
        Some(&WIRE_VERSION) => {}
        Some(v) => {
            return Err(protocol(format!(
                "unsupported wire version {v} (this side speaks {WIRE_VERSION})"
            )))
        }
    }
    let (value, rest) =
        postcard::take_from_bytes(&frame[1..]).map_err(|e| protocol(format!("bad frame: {e}")))?;
    if !rest.is_empty() {
        return Err(protocol(format!(
            "{} stray bytes after the message",
            rest.len()
        )));
    }
    Ok(value)
}

/// Encodes a request into one frame.
///
/// # Errors
///
/// [`RemotingError::MessageTooLarge`] over `max` bytes.
pub fn encode_request(request: &Request, max: usize) -> Result<Vec<u8>, RemotingError> {
    encode_frame(request, max)
}

/// Decodes one frame as a request.
///
/// # Errors
///
/// [`RemotingError::Protocol`] for anything that is not a valid request,
/// [`RemotingError::MessageTooLarge`] over `max` bytes.
pub fn decode_request(frame: &[u8], max: usize) -> Result<Request, RemotingError> {
    decode_frame(frame, max)
}

/// Encodes a response into one frame.
///
/// # Errors
///
/// [`RemotingError::MessageTooLarge`] over `max` bytes.
pub fn encode_response(response: &Response, max: usize) -> Result<Vec<u8>, RemotingError> {
    encode_frame(response, max)
}

/// Decodes one frame as a response.
///
/// # Errors
///
/// As [`decode_request`].
pub fn decode_response(frame: &[u8], max: usize) -> Result<Response, RemotingError> {
    decode_frame(frame, max)
}

/// Encodes a value (arguments or a result) in `format`.
///
/// # Errors
///
/// [`RemoteError`] of kind [`RemoteErrorKind::Internal`] when serde refuses the value.
pub fn encode_value<T: Serialize + ?Sized>(
    format: Format,
    value: &T,
) -> Result<Vec<u8>, RemoteError> {
    let result = match format {
        Format::Binary => postcard::to_allocvec(value).map_err(|e| e.to_string()),
        Format::Json => serde_json::to_vec(value).map_err(|e| e.to_string()),
    };
    result.map_err(|e| RemoteError::new(RemoteErrorKind::Internal, format!("cannot encode: {e}")))
}

/// Decodes a value (arguments or a result) in `format`; the whole input must be used.
///
/// # Errors
///
/// [`RemoteError`] of kind [`RemoteErrorKind::BadArguments`].
pub fn decode_value<T: DeserializeOwned>(format: Format, bytes: &[u8]) -> Result<T, RemoteError> {
    let bad = |e: String| RemoteError::new(RemoteErrorKind::BadArguments, e);
    match format {
        Format::Binary => {
            let (value, rest) = postcard::take_from_bytes(bytes).map_err(|e| bad(e.to_string()))?;
            if !rest.is_empty() {
                return Err(bad(format!("{} stray bytes after the value", rest.len())));
            }
            Ok(value)
        }
        Format::Json => {
            let bytes = if bytes.iter().all(u8::is_ascii_whitespace) {
                b"{}".as_slice()
            } else {
                bytes
            };
            serde_json::from_slice(bytes).map_err(|e| bad(format!("malformed JSON: {e}")))
        }
    }
}

/// Splits length-prefixed frames (`u32` big-endian length, then the frame) off the
/// front of a byte stream buffer; used by the TCP channel.
///
/// Returns `Ok(None)` while the buffer holds no whole frame.
///
/// # Errors
///
/// [`RemotingError::MessageTooLarge`] when the prefix announces more than `max` bytes:
/// the stream cannot be resynchronised and must be closed.
pub fn take_length_prefixed(
    buf: &mut Vec<u8>,
    max: usize,
) -> Result<Option<Vec<u8>>, RemotingError> {
    let Some(head) = buf.get(..4) else {
        return Ok(None);
    };
    let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
    if len > max {
        return Err(RemotingError::MessageTooLarge { size: len, max });
    }
    if buf.len() < 4 + len {
        return Ok(None);
    }
    let frame = buf[4..4 + len].to_vec();
    buf.drain(..4 + len);
    Ok(Some(frame))
}

/// Prefixes `frame` with its length, for the TCP channel.
pub fn length_prefixed(frame: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(frame.len() + 4);
    out.extend_from_slice(&(frame.len() as u32).to_be_bytes());
    out.extend_from_slice(frame);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn call(id: u64) -> Request {
        Request {
            id,
            deadline_ms: Some(5000),
            format: Format::Binary,
            op: Op::Call {
                service: "RemotingService/SingletonService".into(),
                object: None,
                method: "count".into(),
            },
            body: vec![1, 2, 3],
        }
    }

    #[test]
    fn request_round_trip() {
        let frame = encode_request(&call(7), DEFAULT_MAX_MESSAGE).unwrap();
        assert_eq!(frame[0], WIRE_VERSION);
        assert_eq!(
            decode_request(&frame, DEFAULT_MAX_MESSAGE).unwrap(),
            call(7)
        );
    }

    #[test]
    fn response_round_trip_with_error() {
        let r = Response {
            id: 3,
            outcome: Err(RemoteError::new(
                RemoteErrorKind::ObjectDisconnected,
                "gone",
            )),
        };
        let frame = encode_response(&r, 100).unwrap();
        assert_eq!(decode_response(&frame, 100).unwrap(), r);
    }

    #[test]
    fn rejects_bad_frames() {
        let frame = encode_request(&call(1), 1000).unwrap();
        assert!(matches!(
            decode_request(&[], 1000),
            Err(RemotingError::Protocol { .. })
        ));
        assert!(matches!(
            decode_request(&[9, 0, 0], 1000),
            Err(RemotingError::Protocol { .. })
        ));
        assert!(matches!(
            decode_request(&frame[..frame.len() - 1], 1000),
            Err(RemotingError::Protocol { .. })
        ));
        let mut long = frame.clone();
        long.push(0);
        assert!(matches!(
            decode_request(&long, 1000),
            Err(RemotingError::Protocol { .. })
        ));
        assert!(matches!(
            decode_request(&frame, 4),
            Err(RemotingError::MessageTooLarge { .. })
        ));
        assert!(matches!(
            encode_request(&call(1), 4),
            Err(RemotingError::MessageTooLarge { .. })
        ));
    }

    #[test]
    fn values_in_both_formats() {
        let b = encode_value(Format::Binary, &(5u32, "x")).unwrap();
        assert_eq!(
            decode_value::<(u32, String)>(Format::Binary, &b).unwrap().0,
            5
        );
        let e = decode_value::<(u32, String)>(Format::Binary, &b[..1]).unwrap_err();
        assert_eq!(e.kind, RemoteErrorKind::BadArguments);
        let j = encode_value(Format::Json, &[1, 2]).unwrap();
        assert_eq!(j, b"[1,2]");
        let e = decode_value::<u32>(Format::Json, b"{oops").unwrap_err();
        assert_eq!(e.kind, RemoteErrorKind::BadArguments);
    }

    #[test]
    fn length_prefix_splitting() {
        let mut buf = length_prefixed(b"hello");
        buf.extend_from_slice(&length_prefixed(b"")[..3]);
        assert_eq!(
            take_length_prefixed(&mut buf, 10).unwrap().unwrap(),
            b"hello"
        );
        assert_eq!(take_length_prefixed(&mut buf, 10).unwrap(), None);
        buf.push(0);
        assert_eq!(take_length_prefixed(&mut buf, 10).unwrap().unwrap(), b"");
        let mut big = 11u32.to_be_bytes().to_vec();
        assert!(take_length_prefixed(&mut big, 10).is_err());
    }

    /// The worked example of docs/protocol.md, section 11.1.
    #[test]
    fn worked_example_of_the_protocol_page() {
        let request = Request {
            id: 1,
            deadline_ms: Some(30000),
            format: Format::Binary,
            op: Op::Call {
                service: "RemotingService/SingletonService".into(),
                object: None,
                method: "count".into(),
            },
            body: Vec::new(),
        };
        let mut want = vec![1, 1, 1, 0xb0, 0xea, 0x01, 0, 0, 32];
        want.extend_from_slice(b"RemotingService/SingletonService");
        want.extend_from_slice(&[0, 5]);
        want.extend_from_slice(b"count");
        want.push(0);
        let frame = encode_request(&request, 100).unwrap();
        assert_eq!(frame, want);
        assert_eq!(&length_prefixed(&frame)[..4], &[0, 0, 0, 49]);
        let response = Response {
            id: 1,
            outcome: Ok(encode_value(Format::Binary, &3u64).unwrap()),
        };
        assert_eq!(encode_response(&response, 100).unwrap(), [1, 1, 0, 1, 3]);
    }

    proptest! {
        #[test]
        fn any_request_round_trips(id in any::<u64>(), deadline in any::<Option<u64>>(),
                                   json in any::<bool>(), service in ".{0,40}",
                                   object in any::<Option<u64>>(), method in ".{0,20}",
                                   body in proptest::collection::vec(any::<u8>(), 0..300)) {
            let r = Request {
                id, deadline_ms: deadline,
                format: if json { Format::Json } else { Format::Binary },
                op: Op::Call { service, object, method },
                body,
            };
            let frame = encode_request(&r, DEFAULT_MAX_MESSAGE).unwrap();
            prop_assert_eq!(decode_request(&frame, DEFAULT_MAX_MESSAGE).unwrap(), r);
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode_request(&bytes, DEFAULT_MAX_MESSAGE);
            let _ = decode_response(&bytes, DEFAULT_MAX_MESSAGE);
            let mut buf = bytes.clone();
            while let Ok(Some(_)) = take_length_prefixed(&mut buf, 64) {}
        }

        #[test]
        fn truncated_requests_fail_cleanly(cut in 0usize..60) {
            let frame = encode_request(&call(42), DEFAULT_MAX_MESSAGE).unwrap();
            let cut = cut.min(frame.len() - 1);
            prop_assert!(decode_request(&frame[..cut], DEFAULT_MAX_MESSAGE).is_err());
        }
    }
}
