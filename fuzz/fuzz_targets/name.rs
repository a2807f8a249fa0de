//! Any string: the name parser never panics, and a parsed name prints to a form that parses
//! back to the same name.
#![no_main]

use libfuzzer_sys::fuzz_target;
use procwire::name::Name;

fuzz_target!(|s: &str| {
    if let Ok(name) = Name::parse(s) {
        let again = Name::parse(&name.to_string()).expect("a printed name parses");
        assert_eq!(again, name);
    }
});
