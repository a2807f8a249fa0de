//! The mailslot server of the classic sample: creates `\\.\mailslot\HelloWorld` and every
//! five seconds asks how many messages wait (`GetMailslotInfo`) and reads them one by one.
//!
//! Arguments: the slot name, the period in seconds (default 5) and the number of checks
//! (default: forever). Write to it with `cargo run --example mailslot_client`.

use std::time::Duration;

use procwire::mailslot::{MailslotError, MailslotOptions, ReadTimeout};

fn main() -> Result<(), MailslotError> {
    let mut args = std::env::args().skip(1);
    let name = args
        .next()
        .unwrap_or_else(|| r"\\.\mailslot\HelloWorld".into());
    let every: f64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(5.0);
    let checks: Option<u64> = args.next().and_then(|s| s.parse().ok());
    let slot = MailslotOptions::new()
        .read_timeout(ReadTimeout::Immediate)
        .create(name.as_str())?;
    println!("The mailslot ({}) is created.", slot.name());
    let mut check = 0;
    while checks.is_none_or(|n| check < n) {
        std::thread::sleep(Duration::from_secs_f64(every));
        check += 1;
        let info = slot.info()?;
        println!("Check {check}: {} message(s) waiting", info.waiting);
        for i in 1..=info.waiting {
            let message = slot.read()?;
            println!(
                "Message #{i}: \"{}\" ({} bytes)",
                String::from_utf8_lossy(&message),
                message.len()
            );
        }
    }
    Ok(())
}
