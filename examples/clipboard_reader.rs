//! The clipboard reader of the classic sample: lists the formats on the system clipboard,
//! pastes its text and, if the writer put it there, the record under the custom format.
//!
//! Run `cargo run --example clipboard_writer` first, in another terminal.

use std::time::Duration;

use procwire_clipboard::{ClipboardError, ClipboardOptions};

/// The custom format of the writer.
const FORMAT: &str = "application/x-procwire-sample";

fn main() -> Result<(), ClipboardError> {
    let clipboard = ClipboardOptions::new()
        .timeout(Duration::from_secs(5))
        .connect()?;
    println!(
        "The clipboard of display {} is opened.",
        clipboard.display()
    );
    let formats = clipboard.formats()?;
    println!(
        "It offers {} format(s): {}",
        formats.len(),
        formats.join(", ")
    );
    match clipboard.paste_text() {
        Ok(text) => println!("Text: \"{text}\""),
        Err(ClipboardError::FormatUnavailable { .. }) => println!("No text on the clipboard."),
        Err(e) => return Err(e),
    }
    match clipboard.paste(FORMAT) {
        Ok(record) => println!("{FORMAT}: \"{}\"", String::from_utf8_lossy(&record)),
        Err(ClipboardError::FormatUnavailable { .. }) => println!("No {FORMAT} on the clipboard."),
        Err(e) => return Err(e),
    }
    Ok(())
}
