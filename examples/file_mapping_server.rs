//! The file mapping server of the classic sample: creates the named shared memory
//! `Local\HelloWorld` backed by memory (the "paging file" case), maps a view, writes
//! "Message from the first process" into it, and keeps the mapping until ENTER is pressed
//! (or standard input closes), when the name goes away with it.
//!
//! Run it, then `cargo run --example file_mapping_client` in another terminal. A mapping
//! name may be given as the first argument.

use std::io::BufRead;

use procwire::mapping::{Mapping, MappingError};

/// The mapping's size, and the view's offset and size, as in the seed.
const MAP_SIZE: u64 = 65536;
const VIEW_OFFSET: u64 = 0;
const VIEW_SIZE: usize = 1024;

fn main() -> Result<(), MappingError> {
    let name = std::env::args()
        .nth(1)
        .unwrap_or_else(|| r"Local\HelloWorld".into());
    // Memory-backed; removed when this handle is dropped (or this process dies).
    let mapping = Mapping::create(name.as_str(), MAP_SIZE)?;
    println!("The file mapping ({}) is created", mapping.name());
    if let Some(shm) = mapping.shm_name() {
        println!("(it is /dev/shm/{shm} to other POSIX programs)");
    }
    let view = mapping.view(VIEW_OFFSET, VIEW_SIZE)?;
    println!("The file view is mapped");

    let message = "Message from the first process";
    // Written as a C string, as the seed does: the bytes and a NUL.
    view.write_at(0, message.as_bytes())?;
    view.write_at(message.len(), &[0])?;
    println!("This message is written to the view:\n\"{message}\"");

    println!("Press ENTER to clean up resources and quit");
    let _ = std::io::stdin().lock().read_line(&mut String::new());
    drop(view);
    drop(mapping);
    println!("The file view is unmapped and the file mapping is closed");
    Ok(())
}
