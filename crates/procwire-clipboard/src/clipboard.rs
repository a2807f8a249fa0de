//! [`Clipboard`] and [`ClipboardOptions`]: connect, copy, paste, list formats, serve.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::x11::{self, End, Offer, X};
use crate::{ClipboardError, Content, Watcher};

/// How long a wait for the X server or the clipboard's owner lasts by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest paste by default: 256 MiB.
pub const DEFAULT_MAX_SIZE: usize = 256 << 20;

/// The most formats [`Clipboard::formats`] reads from an owner's list (TARGETS); a longer
/// list is refused as too large.
const MAX_TARGETS: usize = 4096;

/// Options for [`Clipboard`]: which display, how long to wait, how much to accept.
///
/// # Examples
/// ```no_run
/// use std::time::Duration;
/// use procwire_clipboard::ClipboardOptions;
///
/// let clipboard = ClipboardOptions::new()
///     .timeout(Duration::from_secs(1))
///     .connect()?;
/// println!("{:?}", clipboard.formats()?);
/// # Ok::<(), procwire_clipboard::ClipboardError>(())
/// ```
#[derive(Debug, Clone)]
pub struct ClipboardOptions {
    display: Option<String>,
    timeout: Duration,
    max_size: usize,
}

impl Default for ClipboardOptions {
    fn default() -> Self {
        ClipboardOptions::new()
    }
}

impl ClipboardOptions {
    /// The defaults: the display from the environment, [`DEFAULT_TIMEOUT`],
    /// [`DEFAULT_MAX_SIZE`].
    pub fn new() -> ClipboardOptions {
        ClipboardOptions {
            display: None,
            timeout: DEFAULT_TIMEOUT,
            max_size: DEFAULT_MAX_SIZE,
        }
    }

    /// An X display name such as `:0` instead of `DISPLAY`.
    pub fn display(mut self, display: impl Into<String>) -> ClipboardOptions {
        self.display = Some(display.into());
        self
    }

    /// The deadline of each operation: connecting (the X server's greeting), and each paste
    /// as a whole — the owner's answer and every piece of a large (INCR) transfer must all
    /// have arrived within `timeout` of the call, however the owner paces them, else the
    /// paste ends in [`ClipboardError::Timeout`], which names the format and how many bytes
    /// had arrived. When serving, it is how long a requestor may pause in the middle of a
    /// transfer before it is dropped. Give large pastes from slow owners a longer one.
    pub fn timeout(mut self, timeout: Duration) -> ClipboardOptions {
        self.timeout = timeout;
        self
    }

    /// The largest paste accepted, in bytes; a larger one ends in
    /// [`ClipboardError::TooLarge`].
    pub fn max_size(mut self, bytes: usize) -> ClipboardOptions {
        self.max_size = bytes;
        self
    }

    /// Connects to the display's clipboard.
    ///
    /// The display is the one given to [`display`](Self::display), else `DISPLAY` (X11, and
    /// XWayland in a Wayland session), else `WAYLAND_DISPLAY` with the cargo feature
    /// `wayland` (the data-control protocol); without the feature, a Wayland session without
    /// `DISPLAY` is refused.
    ///
    /// # Errors
    /// [`ClipboardError::NoDisplay`] at once when neither `DISPLAY` nor `WAYLAND_DISPLAY` is
    /// set; [`ClipboardError::Unsupported`] for Wayland alone without the feature `wayland`, or
    /// a compositor without data-control; [`ClipboardError::Connect`]
    /// when the X server cannot be reached; [`ClipboardError::Timeout`] when it does not
    /// greet.
    pub fn connect(self) -> Result<Clipboard, ClipboardError> {
        let target = match self.display.clone() {
            Some(display) => Target::X11(display),
            None => display_from_env()?,
        };
        match target {
            Target::X11(display) => {
                let main = X::connect(&display, self.timeout)?;
                Ok(Clipboard {
                    options: self,
                    display,
                    main: Some(Mutex::new(main)),
                    serving: Mutex::new(None),
                    #[cfg(feature = "wayland")]
                    wayland: None,
                })
            }
            #[cfg(feature = "wayland")]
            Target::Wayland(display) => Ok(Clipboard {
                wayland: Some(crate::wayland::Wayland::connect(&display)?),
                options: self,
                display,
                main: None,
                serving: Mutex::new(None),
            }),
        }
    }
}

/// Which display a clipboard is on.
enum Target {
    /// An X display name, such as `:0`.
    X11(String),
    /// A Wayland socket name, such as `wayland-0`.
    #[cfg(feature = "wayland")]
    Wayland(String),
}

/// The display named by the environment (`DISPLAY` first), or why there is none.
fn display_from_env() -> Result<Target, ClipboardError> {
    let var = |name| std::env::var(name).ok().filter(|v| !v.is_empty());
    match (var("DISPLAY"), var("WAYLAND_DISPLAY")) {
        (Some(display), _) => Ok(Target::X11(display)),
        #[cfg(feature = "wayland")]
        (None, Some(wayland)) => Ok(Target::Wayland(wayland)),
        #[cfg(not(feature = "wayland"))]
        (None, Some(wayland)) => Err(ClipboardError::Unsupported(format!(
            "WAYLAND_DISPLAY is set (`{wayland}`) but DISPLAY is not: this build of \
             procwire-clipboard speaks X11 only (Wayland's data-control protocol is behind the \
             cargo feature `wayland`); run with XWayland and set DISPLAY"
        ))),
        (None, None) => Err(ClipboardError::NoDisplay),
    }
}

/// The system clipboard (the X11 CLIPBOARD selection): copy text, PNG images and bytes under
/// any format name, paste them in another process, list the formats, watch for changes.
///
/// On X11 nothing stores the clipboard: the process that copies *owns* the selection and
/// hands the data to each process that pastes. A [`copy`](Self::copy) therefore starts a
/// thread that serves the data (with its own connection to the X server) until another
/// client copies, or until this `Clipboard` is dropped: **then the data is gone** — unless a
/// clipboard manager took a copy, as desktop sessions usually run one. A program that copies
/// and then exits should call [`serve_until_replaced`](Self::serve_until_replaced) first
/// (this is what `procwire clipboard copy` does in the background).
///
/// # Examples
/// ```no_run
/// use procwire_clipboard::{Clipboard, Content};
///
/// // One process copies and serves...
/// let clipboard = Clipboard::connect()?;
/// clipboard.copy(Content::text("Hello from procwire"))?;
/// clipboard.copy(Content::bytes("application/x-procwire", vec![1, 2, 3]))?;
/// clipboard.serve_until_replaced()?;
///
/// // ...another pastes.
/// let clipboard = Clipboard::connect()?;
/// println!("{}", clipboard.paste_text()?);
/// # Ok::<(), procwire_clipboard::ClipboardError>(())
/// ```
///
/// # References
/// - `OpenClipboard`, `SetClipboardData`, `GetClipboardData`:
///   <https://learn.microsoft.com/en-us/windows/win32/dataxchg/clipboard>
/// - ICCCM §2, selections: <https://x.org/releases/X11R7.7/doc/xorg-docs/icccm/icccm.html>
#[derive(Debug)]
pub struct Clipboard {
    options: ClipboardOptions,
    display: String,
    /// The connection that pastes (one paste at a time: its events are the transfer's);
    /// `None` on Wayland.
    main: Option<Mutex<X>>,
    /// The thread serving the latest copy.
    serving: Mutex<Option<Serving>>,
    /// The Wayland clipboard, when on Wayland.
    #[cfg(feature = "wayland")]
    wayland: Option<crate::wayland::Wayland>,
}

/// The serve thread of one copy.
#[derive(Debug)]
struct Serving {
    stop: Arc<AtomicBool>,
    done: mpsc::Receiver<Result<End, ClipboardError>>,
    thread: Option<JoinHandle<()>>,
}

impl Serving {
    /// Lets the thread end by itself: it has lost the selection and ends once the INCR
    /// transfers it has in flight are done (or their requestors time out).
    fn detach(mut self) {
        self.thread.take();
    }
}

impl Drop for Serving {
    /// Stops the thread (transfers in flight end with it) and waits for it.
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            self.stop.store(true, Ordering::Release);
            let _ = thread.join();
        }
    }
}

impl Clipboard {
    /// Connects with the default [`ClipboardOptions`].
    ///
    /// # Errors
    /// As [`ClipboardOptions::connect`].
    pub fn connect() -> Result<Clipboard, ClipboardError> {
        ClipboardOptions::new().connect()
    }

    /// The display this clipboard is on: an X display such as `:0`, or a Wayland socket
    /// such as `wayland-0`.
    pub fn display(&self) -> &str {
        &self.display
    }

    /// The X connection (present unless on Wayland).
    fn x(&self) -> std::sync::MutexGuard<'_, X> {
        self.main
            .as_ref()
            .expect("an X11 clipboard has its connection")
            .lock()
            .unwrap()
    }

    /// Puts `content` on the clipboard (the `EmptyClipboard` + `SetClipboardData` of Win32):
    /// takes the CLIPBOARD selection and serves it from a background thread until another
    /// client copies or this `Clipboard` is dropped.
    ///
    /// # Errors
    /// [`ClipboardError::NotPng`], [`ClipboardError::InvalidFormat`] for bad content;
    /// [`ClipboardError::Lost`] when another client took the selection at the same moment;
    /// connection errors.
    pub fn copy(&self, content: Content) -> Result<(), ClipboardError> {
        self.copy_all([content])
    }

    /// Puts several contents on the clipboard at once, as one owner offering all their
    /// formats (text and an image of it, say), as several `SetClipboardData` calls between
    /// one `OpenClipboard` and `CloseClipboard` do on Windows.
    ///
    /// # Errors
    /// As [`copy`](Self::copy).
    pub fn copy_all(
        &self,
        contents: impl IntoIterator<Item = Content>,
    ) -> Result<(), ClipboardError> {
        let mut named = Vec::new();
        for content in contents {
            named.extend(content.into_formats()?);
        }
        #[cfg(feature = "wayland")]
        if let Some(wayland) = &self.wayland {
            return wayland.copy(named, self.options.timeout);
        }
        let x = X::connect(&self.display, self.options.timeout)?;
        let mut offer = Offer {
            formats: Vec::new(),
        };
        for (name, data) in named {
            let atom = x.atom(&name, false)?.expect("interned atoms exist");
            offer.formats.retain(|(a, _)| *a != atom);
            offer.formats.push((atom, data.into()));
        }
        let time = x.take_selection(self.options.timeout)?;
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, done) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("procwire-clipboard-owner".into())
            .spawn({
                let stop = Arc::clone(&stop);
                let timeout = self.options.timeout;
                move || {
                    let end = x11::serve(&x, &offer, time, &stop, timeout);
                    if let Err(e) = &end {
                        tracing::warn!("serving the clipboard failed: {e}");
                    }
                    let _ = tx.send(end);
                }
            })?;
        let previous = self.serving.lock().unwrap().replace(Serving {
            stop,
            done,
            thread: Some(thread),
        });
        // The previous copy's thread saw our take as a SelectionClear.
        if let Some(previous) = previous {
            previous.detach();
        }
        Ok(())
    }

    /// Whether this clipboard's latest copy is still the clipboard's content (no other
    /// client has copied since).
    pub fn is_serving(&self) -> bool {
        #[cfg(feature = "wayland")]
        if let Some(wayland) = &self.wayland {
            return wayland.is_serving();
        }
        let serving = self.serving.lock().unwrap();
        serving
            .as_ref()
            .is_some_and(|s| s.thread.as_ref().is_some_and(|t| !t.is_finished()))
    }

    /// Serves the latest copy until another client takes the clipboard (X11's
    /// SelectionClear), then returns. Returns at once if nothing was copied or the copy was
    /// already replaced.
    ///
    /// # Errors
    /// A failure of the connection to the X server while serving.
    pub fn serve_until_replaced(&self) -> Result<(), ClipboardError> {
        loop {
            if self.serve_until_replaced_timeout(Duration::from_secs(3600))? {
                return Ok(());
            }
        }
    }

    /// As [`serve_until_replaced`](Self::serve_until_replaced), for at most `limit`: `true`
    /// if the copy was replaced, `false` if it is still being served.
    ///
    /// # Errors
    /// As [`serve_until_replaced`](Self::serve_until_replaced).
    pub fn serve_until_replaced_timeout(&self, limit: Duration) -> Result<bool, ClipboardError> {
        #[cfg(feature = "wayland")]
        if let Some(wayland) = &self.wayland {
            return wayland.serve_until_replaced_timeout(limit);
        }
        let deadline = std::time::Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            // Short steps, with the lock released between them, so that another thread may
            // copy (or ask is_serving) meanwhile.
            let step = left.min(Duration::from_millis(100));
            let mut serving = self.serving.lock().unwrap();
            let Some(current) = serving.as_mut() else {
                return Ok(true);
            };
            let end = match current.done.recv_timeout(step) {
                Ok(end) => end,
                Err(mpsc::RecvTimeoutError::Disconnected) => Ok(End::Stopped),
                Err(mpsc::RecvTimeoutError::Timeout) if left.is_zero() => return Ok(false),
                Err(mpsc::RecvTimeoutError::Timeout) => continue,
            };
            *serving = None;
            return end.map(|_| true);
        }
    }

    /// Pastes the data of `format` (an X atom name or MIME type such as `image/png`, or
    /// [`TEXT`](crate::TEXT)): the `GetClipboardData` of Win32.
    ///
    /// # Errors
    /// [`ClipboardError::Empty`] when no client owns the clipboard (the copying process
    /// exited); [`ClipboardError::FormatUnavailable`] when the owner has no such format;
    /// [`ClipboardError::Timeout`] when the owner has not answered in full within
    /// [`ClipboardOptions::timeout`] (one deadline for the whole paste);
    /// [`ClipboardError::TooLarge`] as soon as more than [`ClipboardOptions::max_size`] has
    /// arrived (an owner that sends pieces without end is cut off there).
    pub fn paste(&self, format: &str) -> Result<Vec<u8>, ClipboardError> {
        #[cfg(feature = "wayland")]
        if let Some(wayland) = &self.wayland {
            return wayland.paste(format, self.options.timeout, self.options.max_size);
        }
        let mut x = self.x();
        let Some(atom) = x.atom(format, true)? else {
            // No client ever named this format, so nobody offers it.
            if x.owner()?.is_none() {
                return Err(ClipboardError::Empty);
            }
            return Err(ClipboardError::FormatUnavailable {
                format: format.to_owned(),
            });
        };
        x.convert(atom, format, self.options.timeout, self.options.max_size)
    }

    /// Pastes text: `UTF8_STRING`, else `text/plain;charset=utf-8`, else `STRING` (Latin-1).
    ///
    /// # Errors
    /// As [`paste`](Self::paste); [`ClipboardError::NotUtf8`] for text that is not UTF-8.
    pub fn paste_text(&self) -> Result<String, ClipboardError> {
        for format in [crate::TEXT, "text/plain;charset=utf-8"] {
            match self.paste(format) {
                Ok(bytes) => return String::from_utf8(bytes).map_err(ClipboardError::NotUtf8),
                Err(ClipboardError::FormatUnavailable { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        match self.paste("STRING") {
            Ok(latin1) => Ok(latin1.into_iter().map(char::from).collect()),
            Err(ClipboardError::FormatUnavailable { .. }) => {
                Err(ClipboardError::FormatUnavailable {
                    format: "text (UTF8_STRING, text/plain;charset=utf-8 or STRING)".into(),
                })
            }
            Err(e) => Err(e),
        }
    }

    /// Pastes a PNG image (`image/png`).
    ///
    /// # Errors
    /// As [`paste`](Self::paste).
    pub fn paste_png(&self) -> Result<Vec<u8>, ClipboardError> {
        self.paste(crate::PNG)
    }

    /// The formats the clipboard's owner offers (its TARGETS), such as `UTF8_STRING`,
    /// `image/png` or a custom name; the `EnumClipboardFormats` of Win32. The X conventions
    /// `TARGETS`, `TIMESTAMP`, `MULTIPLE` and `SAVE_TARGETS` are left out.
    ///
    /// # Errors
    /// As [`paste`](Self::paste).
    pub fn formats(&self) -> Result<Vec<String>, ClipboardError> {
        #[cfg(feature = "wayland")]
        if let Some(wayland) = &self.wayland {
            let mut names = wayland.formats()?;
            names.retain(|n| !is_convention(n));
            return Ok(names);
        }
        let mut x = self.x();
        // The owner's list is its word: at most MAX_TARGETS formats are read, each named
        // in the same round trip (an owner cannot make this side ask for millions).
        let targets = x.atoms.TARGETS;
        let bytes = x.convert(
            targets,
            "TARGETS",
            self.options.timeout,
            self.options.max_size.min(4 * MAX_TARGETS),
        )?;
        let atoms: Vec<u32> = bytes
            .chunks_exact(4)
            .map(|w| u32::from_ne_bytes([w[0], w[1], w[2], w[3]]))
            .collect();
        let mut names = x.atom_names(&atoms)?;
        names.retain(|n| !is_convention(n));
        Ok(names)
    }

    /// Whether any client owns the clipboard (has copied and is still serving).
    ///
    /// # Errors
    /// Connection errors.
    pub fn has_owner(&self) -> Result<bool, ClipboardError> {
        #[cfg(feature = "wayland")]
        if let Some(wayland) = &self.wayland {
            return wayland.has_owner();
        }
        Ok(self.x().owner()?.is_some())
    }

    /// Starts watching the clipboard: the [`Watcher`] reports each change of owner, the
    /// equivalent of `AddClipboardFormatListener` and `WM_CLIPBOARDUPDATE`.
    ///
    /// # Errors
    /// Connection errors; [`ClipboardError::Unsupported`] when the X server has no XFIXES
    /// extension.
    pub fn watch(&self) -> Result<Watcher, ClipboardError> {
        #[cfg(feature = "wayland")]
        if self.wayland.is_some() {
            return Watcher::wayland();
        }
        Watcher::new(&self.display, self.options.timeout)
    }
}

/// The X conventions that are targets but not formats.
fn is_convention(name: &str) -> bool {
    matches!(name, "TARGETS" | "TIMESTAMP" | "MULTIPLE" | "SAVE_TARGETS")
}
