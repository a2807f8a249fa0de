//! Registry entries are files another user can write in the Global namespace: decoding any
//! bytes must not panic, and whatever decodes must encode to the very same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use procwire::wire::RegistryEntry;

fuzz_target!(|data: &[u8]| {
    if let Some(entry) = RegistryEntry::decode(data) {
        assert_eq!(entry.encode(), data);
    }
});
