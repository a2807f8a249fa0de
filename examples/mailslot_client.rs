//! The mailslot client of the classic sample: opens `\\.\mailslot\HelloWorld` and writes
//! three messages. A name such as `\\*\mailslot\HelloWorld` broadcasts them instead.

use procwire::mailslot::{MailslotError, MailslotWriter};

fn main() -> Result<(), MailslotError> {
    let name = std::env::args()
        .nth(1)
        .unwrap_or_else(|| r"\\.\mailslot\HelloWorld".into());
    let slot = MailslotWriter::open(name.as_str())?;
    println!("The mailslot ({}) is opened.", slot.name());
    for message in [
        "Message one for mailslot",
        "Message two for mailslot",
        "Message three for mailslot",
    ] {
        slot.write(message.as_bytes())?;
        println!("The message \"{message}\" is written to the slot.");
    }
    Ok(())
}
