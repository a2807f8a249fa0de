//! Any bytes from a peer: the request and response decoders never panic, never claim to
//! have used more bytes than they were given, and what they decode re-encodes to the same
//! prefix.
#![no_main]

use libfuzzer_sys::fuzz_target;
use procwire::wire::{Request, Response};

fuzz_target!(|data: &[u8]| {
    if let Ok(Some((request, used))) = Request::decode(data) {
        assert!(used <= data.len());
        assert_eq!(request.encode(), &data[..used]);
    }
    assert!(Request::wanted_len(data) >= 10);
    if let Ok(Some((response, used))) = Response::decode(data) {
        assert!(used <= data.len());
        assert_eq!(response.encode(), &data[..used]);
    }
    assert!(Response::wanted_len(data) >= 18);
});
