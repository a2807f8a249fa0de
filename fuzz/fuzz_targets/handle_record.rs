//! Handle records come from the peer of a local pipe, beside a descriptor it chose:
//! decoding any bytes must not panic, and whatever decodes must encode to a record that
//! decodes to the same (bytes a kind ignores, such as a mapping's pipe fields, may differ).
#![no_main]

use libfuzzer_sys::fuzz_target;
use procwire::wire::HandleRecord;

fuzz_target!(|data: &[u8]| {
    if let Ok((record, fds)) = HandleRecord::decode(data) {
        assert_eq!(fds, 1);
        let bytes = record.encode().expect("a decoded record fits a record");
        let (again, _) = HandleRecord::decode(&bytes).expect("an encoded record decodes");
        assert_eq!(again, record);
    }
});
