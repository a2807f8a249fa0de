//! The clipboard viewer of the classic sample: prints each change of the system clipboard
//! (the `AddClipboardFormatListener` / `WM_CLIPBOARDUPDATE` of Win32) with the formats on
//! offer and the start of its text.
//!
//! Run it, then copy something (`cargo run --example clipboard_writer`, or in any
//! application). It stops after the number of changes given as the first argument, if any.

use procwire_clipboard::{ChangeReason, Clipboard, ClipboardError};

fn main() -> Result<(), ClipboardError> {
    let count: Option<usize> = std::env::args().nth(1).and_then(|n| n.parse().ok());
    let clipboard = Clipboard::connect()?;
    let mut watcher = clipboard.watch()?;
    println!(
        "Watching the clipboard of display {}...",
        clipboard.display()
    );
    let mut seen = 0usize;
    while count.is_none_or(|n| seen < n) {
        let change = watcher.recv()?;
        seen += 1;
        if change.reason != ChangeReason::NewOwner {
            println!(
                "Change {seen}: the clipboard is empty ({:?}).",
                change.reason
            );
            continue;
        }
        let formats = clipboard.formats().unwrap_or_default();
        println!(
            "Change {seen}: {} format(s): {}",
            formats.len(),
            formats.join(", ")
        );
        if let Ok(text) = clipboard.paste_text() {
            let start: String = text.chars().take(60).collect();
            println!("  text: \"{start}\"");
        }
    }
    println!("The viewer has seen {seen} change(s) and is closing.");
    Ok(())
}
