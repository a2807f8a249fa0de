//! Any UDP datagram: the mailslot decoder never panics, and what it decodes re-encodes to the
//! same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use procwire::wire::SlotDatagram;

fuzz_target!(|data: &[u8]| {
    if let Ok(datagram) = SlotDatagram::decode(data) {
        assert_eq!(datagram.encode().expect("a decoded datagram encodes"), data);
    }
});
