//! The client of `file_mapping_chat_server`: writes a few messages into the shared slot,
//! each under the `NamedMutex`, signals the server's event, and waits on its own for the
//! answer.
//!
//! Start `cargo run --example file_mapping_chat_server` first. The same base name may be
//! given as the first argument, and the number of messages as the second (default 3).

use std::time::Duration;

use procwire::mapping::{Mapping, View};
use procwire::security::Access;
use procwire::sync::{LockError, NamedEvent, NamedMutex};

const SLOT_SIZE: usize = 4096;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let base = args.next().unwrap_or_else(|| r"Local\Chat".into());
    let count: usize = args.next().map_or(Ok(3), |n| n.parse())?;
    let mapping = Mapping::open(base.as_str(), Access::ReadWrite)?;
    let slot = mapping.view(0, SLOT_SIZE)?;
    let lock = NamedMutex::open(format!("{base}-lock").as_str())?;
    let to_server = NamedEvent::open(format!("{base}-to-server").as_str())?;
    let to_client = NamedEvent::open(format!("{base}-to-client").as_str())?;
    println!("Connected to the chat on {}", mapping.name());

    let messages = (1..=count)
        .map(|i| format!("ping {i} from pid {}", std::process::id()))
        .chain(["bye".to_owned()]);
    for message in messages {
        {
            let _guard = locked(&lock, &slot)?;
            write_message(&slot, &message)?;
        }
        println!("Sent \"{message}\"");
        to_server.set()?;
        to_client.wait_timeout(Duration::from_secs(10))?;
        let reply = {
            let _guard = locked(&lock, &slot)?;
            read_message(&slot)?
        };
        println!("The server answered: \"{reply}\"");
    }
    Ok(())
}

/// Locks the slot; if a process died holding the lock, empty the slot and mark it repaired.
fn locked<'a>(
    lock: &'a NamedMutex,
    slot: &View,
) -> Result<procwire::sync::NamedMutexGuard<'a>, Box<dyn std::error::Error>> {
    match lock.lock_timeout(Duration::from_secs(10)) {
        Ok(guard) => Ok(guard),
        Err(LockError::Abandoned(mut guard)) => {
            eprintln!("The other side died holding the lock; clearing the slot");
            slot.write_at(0, &0u32.to_ne_bytes())?;
            guard.mark_repaired();
            Ok(guard)
        }
        Err(LockError::Failed(e)) => Err(e.into()),
    }
}

/// Reads the message in the slot: a 4-byte length, then its bytes.
fn read_message(slot: &View) -> Result<String, Box<dyn std::error::Error>> {
    let mut len = [0u8; 4];
    slot.read_at(0, &mut len)?;
    let len = (u32::from_ne_bytes(len) as usize).min(SLOT_SIZE - 4);
    Ok(String::from_utf8_lossy(&slot.read_vec(4, len)?).into_owned())
}

/// Writes a message into the slot.
fn write_message(slot: &View, text: &str) -> Result<(), Box<dyn std::error::Error>> {
    let bytes = &text.as_bytes()[..text.len().min(SLOT_SIZE - 4)];
    slot.write_at(4, bytes)?;
    slot.write_at(0, &(bytes.len() as u32).to_ne_bytes())?;
    Ok(())
}
