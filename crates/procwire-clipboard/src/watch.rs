//! [`Watcher`]: one event each time the clipboard changes hands (XFIXES selection events).

use std::time::{Duration, Instant};

use x11rb::connection::{Connection, RequestConnection};
use x11rb::protocol::xfixes::{self, ConnectionExt as _, SelectionEvent, SelectionEventMask};
use x11rb::protocol::xproto::ConnectionExt as _;
use x11rb::protocol::Event;
use x11rb::NONE;

use crate::x11::X;
use crate::ClipboardError;

/// Why the clipboard changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChangeReason {
    /// A client copied: it now owns the clipboard.
    NewOwner,
    /// The owner's connection closed (the copying process exited): the clipboard is empty,
    /// unless a clipboard manager takes over.
    OwnerClosed,
    /// The owner's window was destroyed: the clipboard is empty.
    OwnerWindowDestroyed,
    /// A client emptied the clipboard (X11: set no owner; Wayland: a null selection, as when
    /// the owner exits).
    Cleared,
}

/// One change of the clipboard, as a [`Watcher`] reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClipboardEvent {
    /// What happened.
    pub reason: ChangeReason,
    /// The X window that owns the clipboard now (`None`: nobody, and always `None` on
    /// Wayland, which does not say who owns it).
    pub owner: Option<u32>,
    /// The time of the change, in milliseconds: the X server's clock on X11; since the
    /// watcher started on Wayland.
    pub timestamp: u32,
}

/// Reports each change of the clipboard's owner: every copy by any client, and the end of
/// an owner. The equivalent of `AddClipboardFormatListener` (the window then receives
/// `WM_CLIPBOARDUPDATE`); here the events come from the XFIXES extension's
/// `SelectSelectionInput` on the CLIPBOARD selection, over a connection of the watcher's own.
///
/// # Examples
/// ```no_run
/// use procwire_clipboard::Clipboard;
///
/// let clipboard = Clipboard::connect()?;
/// let mut watcher = clipboard.watch()?;
/// loop {
///     let change = watcher.recv()?;
///     println!("{:?}: formats {:?}", change.reason, clipboard.formats());
/// }
/// # Ok::<(), procwire_clipboard::ClipboardError>(())
/// ```
///
/// # References
/// - `AddClipboardFormatListener`:
///   <https://learn.microsoft.com/en-us/windows/win32/api/winuser/nf-winuser-addclipboardformatlistener>
/// - XFIXES protocol, `SelectSelectionInput`
#[derive(Debug)]
pub struct Watcher {
    inner: Inner,
}

#[derive(Debug)]
enum Inner {
    X11(Box<X>),
    #[cfg(feature = "wayland")]
    Wayland(crate::wayland::WaylandWatcher),
}

impl Watcher {
    pub(crate) fn new(display: &str, timeout: Duration) -> Result<Watcher, ClipboardError> {
        let x = X::connect(display, timeout)?;
        if x.conn
            .extension_information(xfixes::X11_EXTENSION_NAME)?
            .is_none()
        {
            return Err(ClipboardError::Unsupported(format!(
                "the X server of display `{display}` has no XFIXES extension, which watching \
                 the clipboard needs"
            )));
        }
        // The extension must be told our version before anything else.
        x.conn.xfixes_query_version(5, 0)?.reply()?;
        x.conn.xfixes_select_selection_input(
            x.window,
            x.atoms.CLIPBOARD,
            SelectionEventMask::SET_SELECTION_OWNER
                | SelectionEventMask::SELECTION_WINDOW_DESTROY
                | SelectionEventMask::SELECTION_CLIENT_CLOSE,
        )?;
        // Make sure the selection is in place before the caller is told we watch.
        x.conn.get_input_focus()?.reply()?;
        x.conn.flush()?;
        Ok(Watcher {
            inner: Inner::X11(Box::new(x)),
        })
    }

    #[cfg(feature = "wayland")]
    pub(crate) fn wayland() -> Result<Watcher, ClipboardError> {
        Ok(Watcher {
            inner: Inner::Wayland(crate::wayland::WaylandWatcher::new()?),
        })
    }

    /// The next change, waiting as long as it takes.
    ///
    /// # Errors
    /// Connection errors (the X server exited).
    pub fn recv(&mut self) -> Result<ClipboardEvent, ClipboardError> {
        loop {
            if let Some(event) = self.recv_timeout(Duration::from_secs(3600))? {
                return Ok(event);
            }
        }
    }

    /// The next change, waiting at most `limit` (`None` when none came).
    ///
    /// # Errors
    /// As [`recv`](Self::recv).
    pub fn recv_timeout(
        &mut self,
        limit: Duration,
    ) -> Result<Option<ClipboardEvent>, ClipboardError> {
        // Without the `wayland` feature there is one variant.
        #[allow(clippy::infallible_destructuring_match)]
        let x = match &mut self.inner {
            Inner::X11(x) => x,
            #[cfg(feature = "wayland")]
            Inner::Wayland(w) => return w.recv_timeout(limit),
        };
        let deadline = Instant::now() + limit;
        loop {
            let Some(event) = x.next_event(deadline)? else {
                return Ok(None);
            };
            if let Event::XfixesSelectionNotify(e) = event {
                if e.selection != x.atoms.CLIPBOARD {
                    continue;
                }
                let reason = match e.subtype {
                    SelectionEvent::SELECTION_CLIENT_CLOSE => ChangeReason::OwnerClosed,
                    SelectionEvent::SELECTION_WINDOW_DESTROY => ChangeReason::OwnerWindowDestroyed,
                    _ if e.owner == NONE => ChangeReason::Cleared,
                    _ => ChangeReason::NewOwner,
                };
                let owner = (reason == ChangeReason::NewOwner).then_some(e.owner);
                return Ok(Some(ClipboardEvent {
                    reason,
                    owner,
                    timestamp: e.timestamp,
                }));
            }
        }
    }

    /// A change that has already happened, without waiting (`None`: none).
    ///
    /// # Errors
    /// As [`recv`](Self::recv).
    pub fn try_recv(&mut self) -> Result<Option<ClipboardEvent>, ClipboardError> {
        self.recv_timeout(Duration::ZERO)
    }
}
