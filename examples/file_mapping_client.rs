//! The file mapping client of the classic sample: opens the named shared memory
//! `Local\HelloWorld` by name, maps a read-only view, and prints the message the server
//! wrote.
//!
//! Start `cargo run --example file_mapping_server` first. A mapping name may be given as
//! the first argument.

use procwire::mapping::{Mapping, MappingError};
use procwire::security::Access;

const VIEW_OFFSET: u64 = 0;
const VIEW_SIZE: usize = 1024;

fn main() -> Result<(), MappingError> {
    let name = std::env::args()
        .nth(1)
        .unwrap_or_else(|| r"Local\HelloWorld".into());
    let mapping = Mapping::open(name.as_str(), Access::Read)?;
    println!("The file mapping ({}) is opened", mapping.name());
    let view = mapping.view(VIEW_OFFSET, VIEW_SIZE)?;
    println!("The file view is mapped");

    // A copy out of shared memory, up to the C string's NUL.
    let bytes = view.read_vec(0, VIEW_SIZE)?;
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    println!(
        "Read from the file mapping:\n\"{}\"",
        String::from_utf8_lossy(&bytes[..end])
    );
    Ok(())
}
