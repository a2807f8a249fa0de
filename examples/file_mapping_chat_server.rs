//! Two processes hand messages back and forth through one mapping: this server and
//! `file_mapping_chat_client`. The message slot is guarded by a `NamedMutex`; two
//! auto-reset `NamedEvent`s say whose turn it is.
//!
//! Run it, then `cargo run --example file_mapping_chat_client` in another terminal. A base
//! name may be given as the first argument (default `Local\Chat`); the objects are
//! `BASE` (the mapping), `BASE-lock`, `BASE-to-server` and `BASE-to-client`.
//!
//! The slot's layout: a 4-byte length at offset 0, then that many bytes of text.

use std::time::Duration;

use procwire::mapping::{Mapping, View};
use procwire::sync::{EventReset, LockError, NamedEvent, NamedMutex};

const SLOT_SIZE: usize = 4096;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let base = std::env::args()
        .nth(1)
        .unwrap_or_else(|| r"Local\Chat".into());
    let mapping = Mapping::create(base.as_str(), SLOT_SIZE as u64)?;
    let slot = mapping.view(0, SLOT_SIZE)?;
    let lock = NamedMutex::create(format!("{base}-lock").as_str())?;
    let to_server = NamedEvent::create(
        format!("{base}-to-server").as_str(),
        EventReset::Auto,
        false,
    )?;
    let to_client = NamedEvent::create(
        format!("{base}-to-client").as_str(),
        EventReset::Auto,
        false,
    )?;
    println!("Chat server on {}: waiting for the client", mapping.name());

    let mut answered = 0;
    loop {
        // Give up after a minute of silence.
        to_server.wait_timeout(Duration::from_secs(60))?;
        let message = {
            let _guard = locked(&lock, &slot)?;
            let message = read_message(&slot)?;
            let reply = if message == "bye" {
                "bye".to_owned()
            } else {
                format!("pong for \"{message}\"")
            };
            write_message(&slot, &reply)?;
            message
        };
        println!("Received from the client: \"{message}\"");
        to_client.set()?;
        answered += 1;
        if message == "bye" {
            break;
        }
    }
    println!("The client said bye after {answered} messages; closing");
    Ok(())
}

/// Locks the slot; if a process died holding the lock, the message it was writing may be
/// half done: empty the slot, and mark it repaired.
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

/// Reads the message in the slot: its length, then its bytes.
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
