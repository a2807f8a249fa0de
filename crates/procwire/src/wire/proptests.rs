//! Property tests: every encoding round-trips, and any byte string either decodes or gives
//! a [`ProtocolError`], never a panic.

use proptest::prelude::*;

use super::*;
use crate::security::Access;

fn access() -> impl Strategy<Value = Access> {
    prop_oneof![
        Just(Access::Read),
        Just(Access::Write),
        Just(Access::ReadWrite)
    ]
}

fn mode() -> impl Strategy<Value = PipeMode> {
    prop_oneof![Just(PipeMode::Byte), Just(PipeMode::Message)]
}

fn status() -> impl Strategy<Value = Status> {
    (0u8..7).prop_map(|b| Status::from_byte(b).unwrap())
}

proptest! {
    #[test]
    fn request_round_trips(
        access in access(), mode in mode(), pipe in "[^\\\\/]{1,80}", shared_memory in proptest::bool::ANY,
    ) {
        let request = Request { access, mode, pipe, shared_memory };
        let bytes = request.encode();
        prop_assert_eq!(Request::decode(&bytes), Ok(Some((request, bytes.len()))));
    }

    #[test]
    fn response_round_trips(
        status in status(), pipe_type in mode(), access in access(),
        max_message in any::<u32>(), instances in any::<u16>(), max_instances in any::<u16>(),
        detail in ".{0,200}",
    ) {
        let access = (status == Status::Ok).then_some(access);
        let response = Response { status, pipe_type, access, max_message, instances, max_instances, detail };
        let bytes = response.encode();
        prop_assert_eq!(Response::decode(&bytes), Ok(Some((response, bytes.len()))));
    }

    #[test]
    fn any_bytes_decode_or_error(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        if let Ok(Some((_, used))) = Request::decode(&bytes) {
            prop_assert!(used <= bytes.len());
        }
        if let Ok(Some((_, used))) = Response::decode(&bytes) {
            prop_assert!(used <= bytes.len());
        }
    }

    #[test]
    fn prefixed_garbage_decodes_or_errors(tail in proptest::collection::vec(any::<u8>(), 0..300)) {
        let mut bytes = b"PWIR\x01".to_vec();
        bytes.extend_from_slice(&tail);
        let _ = Request::decode(&bytes);
        let _ = Response::decode(&bytes);
    }

    #[test]
    fn any_header_decodes_or_errors(word in any::<u32>(), max in any::<u32>()) {
        match FrameHeader::decode(word.to_be_bytes(), max) {
            Ok(FrameHeader::Message(len)) => prop_assert!(len <= max),
            Ok(FrameHeader::Close(len)) => prop_assert!(len <= MAX_CLOSE_REASON),
            Ok(FrameHeader::Handle(len)) => prop_assert!(len <= crate::wire::MAX_HANDLE_RECORD),
            Err(_) => {}
        }
    }
}
