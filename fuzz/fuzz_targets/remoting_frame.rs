//! Any bytes as a remoting request or response frame, and as a TCP byte stream: decoding
//! never panics, and whatever decodes survives a round trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use procwire_remoting::wire::{
    decode_request, decode_response, encode_request, encode_response, take_length_prefixed,
};

fuzz_target!(|data: &[u8]| {
    let max = 1 << 20;
    if let Ok(request) = decode_request(data, max) {
        let again = encode_request(&request, max).unwrap();
        assert_eq!(decode_request(&again, max).unwrap(), request);
    }
    if let Ok(response) = decode_response(data, max) {
        let again = encode_response(&response, max).unwrap();
        assert_eq!(decode_response(&again, max).unwrap(), response);
    }
    let mut buf = data.to_vec();
    while let Ok(Some(frame)) = take_length_prefixed(&mut buf, 4096) {
        assert!(frame.len() <= 4096);
    }
});
