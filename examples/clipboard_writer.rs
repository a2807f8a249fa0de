//! The clipboard writer of the classic sample: puts a text and a record under a custom
//! format name (the `RegisterClipboardFormat` of Win32) on the system clipboard, and serves
//! them until another program copies something else.
//!
//! Run it on an X display, then `cargo run --example clipboard_reader` in another terminal
//! (or paste into any application). A text may be given as the first argument. On X11 the
//! clipboard keeps no data of its own: when this process exits, what it copied is gone.

use procwire_clipboard::{Clipboard, ClipboardError, Content};

/// The custom format the reader looks for.
const FORMAT: &str = "application/x-procwire-sample";

fn main() -> Result<(), ClipboardError> {
    let text = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "Hello from the clipboard writer".into());
    let clipboard = Clipboard::connect()?;
    println!(
        "The clipboard of display {} is opened.",
        clipboard.display()
    );
    let record = format!("pid={};len={}", std::process::id(), text.len());
    clipboard.copy_all([
        Content::text(text.clone()),
        Content::bytes(FORMAT, record.clone().into_bytes()),
    ])?;
    println!("Copied \"{text}\" as text and \"{record}\" as {FORMAT}.");
    println!("Serving them until another program copies something...");
    clipboard.serve_until_replaced()?;
    println!("Another program took the clipboard; the writer is closing.");
    Ok(())
}
