//! [`ClipboardError`]: everything that can go wrong with the clipboard, by meaning.

use std::io;
use std::time::Duration;

/// An error of the clipboard: no display, no owner, no such format, an owner that does not
/// answer, or a failed X connection. Each message says what happened and what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClipboardError {
    /// Neither `DISPLAY` nor `WAYLAND_DISPLAY` is set: there is no display whose clipboard
    /// could be used (a service, an ssh session without X forwarding, CI).
    #[error(
        "no display to reach a clipboard: neither DISPLAY (X11) nor WAYLAND_DISPLAY (Wayland) \
         is set; run inside a desktop session, or set DISPLAY (for example DISPLAY=:0)"
    )]
    NoDisplay,
    /// The display is of a kind this build cannot use (a Wayland session without `DISPLAY`:
    /// the Wayland data-control protocol is not implemented).
    #[error("{0}")]
    Unsupported(String),
    /// The X server at `display` could not be reached.
    #[error(
        "cannot connect to the X display `{display}`: {source}; is an X server running there, \
         and may this user use it?"
    )]
    Connect {
        /// The display name, such as `:0`.
        display: String,
        /// Why the connection failed.
        #[source]
        source: x11rb::errors::ConnectError,
    },
    /// The connection to the X server broke (the server exited, or sent garbage).
    #[error("the connection to the X server failed: {0}")]
    Connection(#[from] x11rb::errors::ConnectionError),
    /// The X server refused a request.
    #[error("the X server refused a request: {0}")]
    Request(#[source] x11rb::errors::ReplyError),
    /// No client owns the CLIPBOARD selection. On X11 the data lives in the process that
    /// copied it: it is gone once that process exits, unless a clipboard manager took it.
    #[error(
        "the clipboard is empty: no client owns the CLIPBOARD selection (on X11 the data \
         lives in the process that copied it and is gone once that process exits, unless a \
         clipboard manager kept it)"
    )]
    Empty,
    /// The clipboard's owner does not offer this format.
    #[error(
        "the clipboard has no `{format}` data; Clipboard::formats (`procwire clipboard paste \
         --list`) shows the formats it offers"
    )]
    FormatUnavailable {
        /// The format asked for (an X atom name or MIME type).
        format: String,
    },
    /// The clipboard's owner (or the X server) did not answer in time. For a paste,
    /// `waited` is the paste's whole deadline ([`ClipboardOptions::timeout`]), which covers
    /// every piece of a large transfer: an owner that answers, but too slowly, ends here too.
    ///
    /// [`ClipboardOptions::timeout`]: crate::ClipboardOptions::timeout
    #[error(
        "the clipboard owner did not answer within {waited:?} (waiting for {waiting_for}{}); \
         it may be hung or too slow: retry, raise ClipboardOptions::timeout for large data, or \
         copy something new to replace it",
        paste_progress(.format.as_deref(), *.received)
    )]
    #[non_exhaustive]
    Timeout {
        /// What was awaited when the time was up.
        waiting_for: &'static str,
        /// How long: the whole deadline of the paste (or of the connect or copy).
        waited: Duration,
        /// The format being pasted, when the wait was part of a paste.
        format: Option<String>,
        /// How many bytes of the paste had arrived by then (0 before the owner's first
        /// piece, and outside a paste).
        received: usize,
    },
    /// The data is larger than [`ClipboardOptions::max_size`](crate::ClipboardOptions::max_size).
    #[error("the clipboard data is larger than the limit of {limit} bytes; raise ClipboardOptions::max_size")]
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The text on the clipboard is not UTF-8.
    #[error("the clipboard text is not UTF-8; paste it as bytes (Clipboard::paste) instead")]
    NotUtf8(#[source] std::string::FromUtf8Error),
    /// [`Content::Png`](crate::Content::Png) data that is not a PNG image.
    #[error("not a PNG image: the data does not start with the PNG signature")]
    NotPng,
    /// A format name that cannot name a format (empty, or with a NUL byte).
    #[error("`{0}` is not a format name: give an X atom name or MIME type such as image/png")]
    InvalidFormat(String),
    /// Another client took the selection before this one could serve it.
    #[error("another client took the clipboard at the same moment; copy again")]
    Lost,
    /// The Wayland compositor at `display` could not be reached (feature `wayland`).
    #[error(
        "cannot connect to the Wayland compositor `{display}`: {source}; is it running, and \
         is XDG_RUNTIME_DIR the one of its session?"
    )]
    WaylandConnect {
        /// The socket name, such as `wayland-0`.
        display: String,
        /// Why the connection failed.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The Wayland compositor failed a request (feature `wayland`).
    #[error("the Wayland clipboard failed: {0}")]
    Wayland(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A system call failed while waiting for the X server.
    #[error("waiting for the X server failed: {0}")]
    Io(#[from] io::Error),
}

/// The part of a timeout's message that says which paste, and how far it got.
fn paste_progress(format: Option<&str>, received: usize) -> String {
    match format {
        Some(format) => format!("; the paste of `{format}` had received {received} bytes"),
        None => String::new(),
    }
}

impl From<x11rb::errors::ReplyError> for ClipboardError {
    fn from(e: x11rb::errors::ReplyError) -> ClipboardError {
        match e {
            x11rb::errors::ReplyError::ConnectionError(e) => ClipboardError::Connection(e),
            e => ClipboardError::Request(e),
        }
    }
}

impl From<x11rb::errors::ReplyOrIdError> for ClipboardError {
    fn from(e: x11rb::errors::ReplyOrIdError) -> ClipboardError {
        match e {
            x11rb::errors::ReplyOrIdError::ConnectionError(e) => ClipboardError::Connection(e),
            x11rb::errors::ReplyOrIdError::X11Error(e) => {
                ClipboardError::Request(x11rb::errors::ReplyError::X11Error(e))
            }
            x11rb::errors::ReplyOrIdError::IdsExhausted => {
                ClipboardError::Connection(x11rb::errors::ConnectionError::UnknownError)
            }
        }
    }
}
