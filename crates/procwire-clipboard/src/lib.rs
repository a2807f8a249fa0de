//! The system clipboard for procwire: copy text, PNG images and bytes under any format name
//! in one process, paste them in another, list the formats on offer and watch for changes —
//! the Win32 clipboard API (`SetClipboardData`, `GetClipboardData`,
//! `RegisterClipboardFormat`, `AddClipboardFormatListener`) on Linux's X11 selections.
//!
//! This crate stands apart from `procwire` so that the core library never links a display
//! library. It speaks the X11 protocol itself through [`x11rb`] (pure Rust, no libX11).
//!
//! | Win32 | X11 (ICCCM) | procwire-clipboard |
//! |---|---|---|
//! | `OpenClipboard` + `EmptyClipboard` + `SetClipboardData` | `SetSelectionOwner(CLIPBOARD)`, then answer `SelectionRequest`s | [`Clipboard::copy`], [`Clipboard::copy_all`] |
//! | `GetClipboardData` | `ConvertSelection`, `SelectionNotify`, `GetProperty` (INCR for large data) | [`Clipboard::paste`], [`Clipboard::paste_text`], [`Clipboard::paste_png`] |
//! | `EnumClipboardFormats` | the `TARGETS` target | [`Clipboard::formats`] |
//! | `RegisterClipboardFormat("name")` | `InternAtom("name")` | [`Content::Bytes`] with any format name |
//! | `CF_UNICODETEXT`, `CF_TEXT` | `UTF8_STRING`, `STRING` | [`Content::Text`], [`TEXT`] |
//! | `CF_DIB` / the "PNG" format | `image/png` | [`Content::Png`], [`PNG`] |
//! | `AddClipboardFormatListener` / `WM_CLIPBOARDUPDATE` | XFIXES `SelectSelectionInput` | [`Clipboard::watch`], [`Watcher`] |
//!
//! # Ownership: who keeps the data
//! On Windows the system keeps what was copied. On X11 nobody does: the copying process owns
//! the selection and answers every paste itself. When it exits — or drops its
//! [`Clipboard`] — the selection has no owner and the data is gone (a paste then fails with
//! [`ClipboardError::Empty`]), unless a clipboard manager, as desktop sessions run one, took
//! a copy first. [`Clipboard::serve_until_replaced`] keeps serving until another client
//! copies (X11's `SelectionClear`).
//!
//! # What it does not do
//! - Wayland without the cargo feature `wayland`: a Wayland session is then used through
//!   XWayland (`DISPLAY`); with only `WAYLAND_DISPLAY` set, [`Clipboard::connect`] fails with
//!   [`ClipboardError::Unsupported`]. With the feature, such a session is used through the
//!   data-control protocol (wl-clipboard-rs), where the compositor offers it (wlroots
//!   compositors such as sway, KDE; not GNOME): copy, paste, formats and watch, with these
//!   differences: a [`ClipboardEvent`] names no owner, a copy's serving thread cannot be
//!   stopped before another client copies (it outlives a dropped `Clipboard`, until the process
//!   exits), and a requestor that never reads a large copy holds it up. When both variables
//!   are set, X11 is used.
//! - The PRIMARY selection (middle-click paste), the `MULTIPLE` target, and conversions
//!   between formats (a PNG is not turned into a bitmap; text is served as the same UTF-8
//!   bytes under each text name).
//!
//! On X11 every wait has a deadline ([`ClipboardOptions::timeout`]), and a paste has one for
//! the whole transfer: a paste from an owner that never answers, or that trickles its pieces,
//! ends with [`ClipboardError::Timeout`] when the time is up; one that sends without end is
//! cut off at [`ClipboardOptions::max_size`]; with no display at all,
//! [`ClipboardError::NoDisplay`] comes at once and names `DISPLAY` and `WAYLAND_DISPLAY`.
//!
//! # Organization
//! - [`Clipboard`], [`ClipboardOptions`] (`clipboard.rs`): connect, copy, paste, formats, serve.
//! - [`Content`] (`content.rs`): what a copy offers, under which format names.
//! - [`Watcher`], [`ClipboardEvent`] (`watch.rs`): change notification.
//! - [`ClipboardError`] (`error.rs`).
//! - `x11.rs` (private): the selection protocol — transfers with INCR, the owner's serve loop.
//! - `wayland.rs` (private, feature `wayland`): the data-control protocol through
//!   wl-clipboard-rs.
//! - [`xvfb::Xvfb`]: a headless X server for tests and demos.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod clipboard;
mod content;
mod error;
mod watch;
#[cfg(feature = "wayland")]
mod wayland;
mod x11;
pub mod xvfb;

pub use clipboard::{Clipboard, ClipboardOptions, DEFAULT_MAX_SIZE, DEFAULT_TIMEOUT};
pub use content::{Content, PNG, TEXT};
pub use error::ClipboardError;
pub use watch::{ChangeReason, ClipboardEvent, Watcher};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_types_are_send_sync_and_debug() {
        fn check<T: Send + Sync + std::fmt::Debug>() {}
        check::<Clipboard>();
        check::<ClipboardOptions>();
        check::<Content>();
        check::<ClipboardError>();
        check::<Watcher>();
        check::<ClipboardEvent>();
        check::<xvfb::Xvfb>();
    }
}
