//! Any 4-byte header and any limit: a message length never exceeds the limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use procwire::wire::{FrameHeader, MAX_CLOSE_REASON};

fuzz_target!(|input: ([u8; 4], u32)| {
    let (bytes, max) = input;
    match FrameHeader::decode(bytes, max) {
        Ok(FrameHeader::Message(len)) => assert!(len <= max),
        Ok(FrameHeader::Close(len)) => assert!(len <= MAX_CLOSE_REASON),
        Ok(FrameHeader::Handle(len)) => assert!(len <= procwire::wire::MAX_HANDLE_RECORD),
        Err(_) => {}
    }
});
