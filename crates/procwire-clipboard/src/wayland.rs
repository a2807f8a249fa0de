//! The Wayland side (feature `wayland`): the data-control protocol (wlr-data-control,
//! ext-data-control) through wl-clipboard-rs, for compositors that offer it (sway and other
//! wlroots compositors, KDE; not GNOME's Mutter).
//!
//! # References
//! - wlr-data-control-unstable-v1, ext-data-control-v1 (wayland-protocols)

use std::io::Read;
use std::sync::{mpsc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec};
use wl_clipboard_rs::{copy, paste, watch};

use crate::{ChangeReason, ClipboardError, ClipboardEvent};

/// The clipboard of a Wayland compositor.
#[derive(Debug, Default)]
pub(crate) struct Wayland {
    serving: Mutex<Option<Serving>>,
}

/// The serve thread of one copy. wl-clipboard-rs's serve loop cannot be stopped from outside:
/// it ends when another client copies (and, with the process, at exit).
#[derive(Debug)]
struct Serving {
    done: mpsc::Receiver<Result<(), ClipboardError>>,
    thread: JoinHandle<()>,
}

/// A wl-clipboard-rs error as ours.
fn paste_error(e: paste::Error, format: &str) -> ClipboardError {
    match e {
        paste::Error::ClipboardEmpty | paste::Error::NoSeats => ClipboardError::Empty,
        paste::Error::NoMimeType => ClipboardError::FormatUnavailable {
            format: format.to_owned(),
        },
        paste::Error::MissingProtocol { name, version } => missing(name, version),
        e => ClipboardError::Wayland(Box::new(e)),
    }
}

fn copy_error(e: copy::Error) -> ClipboardError {
    match e {
        copy::Error::MissingProtocol { name, version } => missing(name, version),
        e => ClipboardError::Wayland(Box::new(e)),
    }
}

fn missing(name: &str, version: u32) -> ClipboardError {
    ClipboardError::Unsupported(format!(
        "the Wayland compositor does not offer the data-control protocol ({name} version \
         {version}) that a clipboard client outside a window needs (GNOME's does not); use \
         XWayland by setting DISPLAY"
    ))
}

/// Whether `offered` holds the (sorted) `names`, in any order.
fn same_set(offered: &[String], names: &[String]) -> bool {
    let mut offered = offered.to_vec();
    offered.sort();
    offered == names
}

impl Wayland {
    /// Checks that the compositor can be reached and offers data-control.
    pub fn connect(display: &str) -> Result<Wayland, ClipboardError> {
        match paste::get_mime_types_ordered(paste::ClipboardType::Regular, paste::Seat::Unspecified)
        {
            Ok(_) | Err(paste::Error::ClipboardEmpty) => Ok(Wayland::default()),
            Err(e @ (paste::Error::WaylandConnection(_) | paste::Error::SocketOpenError(_))) => {
                Err(ClipboardError::WaylandConnect {
                    display: display.to_owned(),
                    source: Box::new(e),
                })
            }
            Err(e) => Err(paste_error(e, "TARGETS")),
        }
    }

    pub fn copy(
        &self,
        formats: Vec<(String, Vec<u8>)>,
        timeout: Duration,
    ) -> Result<(), ClipboardError> {
        let mut names: Vec<String> = formats.iter().map(|(n, _)| n.clone()).collect();
        names.sort();
        let sources = formats
            .into_iter()
            .map(|(name, data)| copy::MimeSource {
                source: copy::Source::Bytes(data.into_boxed_slice()),
                mime_type: copy::MimeType::Specific(name),
            })
            .collect();
        let mut options = copy::Options::new();
        options
            .omit_additional_text_mime_types(true)
            .foreground(true);
        let prepared = options.prepare_copy_multi(sources).map_err(copy_error)?;
        let (tx, done) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("procwire-clipboard-wayland-owner".into())
            .spawn(move || {
                let _ = tx.send(prepared.serve().map_err(copy_error));
            })?;
        *self.serving.lock().unwrap() = Some(Serving { done, thread });
        // The selection is set by the serve loop's first flush: wait until the compositor
        // offers exactly our formats (in any order), so that a paste right after `copy` sees them.
        let deadline = Instant::now() + timeout;
        loop {
            match paste::get_mime_types_ordered(
                paste::ClipboardType::Regular,
                paste::Seat::Unspecified,
            ) {
                Ok(offered) if same_set(&offered, &names) => return Ok(()),
                Ok(_) | Err(paste::Error::ClipboardEmpty) => {}
                Err(e) => return Err(paste_error(e, "TARGETS")),
            }
            if Instant::now() >= deadline {
                return Err(ClipboardError::Timeout {
                    waiting_for: "the compositor to take the copy",
                    waited: timeout,
                    format: None,
                    received: 0,
                });
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    pub fn is_serving(&self) -> bool {
        let serving = self.serving.lock().unwrap();
        serving.as_ref().is_some_and(|s| !s.thread.is_finished())
    }

    pub fn serve_until_replaced_timeout(&self, limit: Duration) -> Result<bool, ClipboardError> {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let mut serving = self.serving.lock().unwrap();
            let Some(current) = serving.as_mut() else {
                return Ok(true);
            };
            let end = match current
                .done
                .recv_timeout(left.min(Duration::from_millis(100)))
            {
                Ok(end) => end,
                Err(mpsc::RecvTimeoutError::Disconnected) => Ok(()),
                Err(mpsc::RecvTimeoutError::Timeout) if left.is_zero() => return Ok(false),
                Err(mpsc::RecvTimeoutError::Timeout) => continue,
            };
            *serving = None;
            return end.map(|()| true);
        }
    }

    pub fn paste(
        &self,
        format: &str,
        timeout: Duration,
        max_size: usize,
    ) -> Result<Vec<u8>, ClipboardError> {
        let (mut pipe, _) = paste::get_contents(
            paste::ClipboardType::Regular,
            paste::Seat::Unspecified,
            paste::MimeType::Specific(format),
        )
        .map_err(|e| paste_error(e, format))?;
        let mut data = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        // The whole read must be done within `timeout`: each wait for the owner's next
        // bytes uses the time left, so an owner that trickles them cannot stretch it.
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let timed_out = || ClipboardError::Timeout {
                waiting_for: "the data of the paste",
                waited: timeout,
                format: Some(format.to_owned()),
                received: data.len(),
            };
            if left.is_zero() {
                return Err(timed_out());
            }
            let mut fds = [PollFd::new(&pipe, PollFlags::IN)];
            let ts = Timespec {
                tv_sec: left.as_secs() as _,
                tv_nsec: left.subsec_nanos() as _,
            };
            match rustix::event::poll(&mut fds, Some(&ts)) {
                Ok(0) => return Err(timed_out()),
                Ok(_) | Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(ClipboardError::Io(e.into())),
            }
            let n = pipe.read(&mut buf)?;
            if n == 0 {
                return Ok(data);
            }
            if data.len() + n > max_size {
                return Err(ClipboardError::TooLarge { limit: max_size });
            }
            data.extend_from_slice(&buf[..n]);
        }
    }

    pub fn formats(&self) -> Result<Vec<String>, ClipboardError> {
        paste::get_mime_types_ordered(paste::ClipboardType::Regular, paste::Seat::Unspecified)
            .map_err(|e| paste_error(e, "TARGETS"))
    }

    pub fn has_owner(&self) -> Result<bool, ClipboardError> {
        match self.formats() {
            Ok(_) => Ok(true),
            Err(ClipboardError::Empty) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// A Wayland clipboard watcher: wl-clipboard-rs's, on a thread of its own, its events sent
/// over a channel (so that waits can have deadlines).
pub(crate) struct WaylandWatcher {
    // In a Mutex only to make the watcher Sync, as the X11 one is.
    events: Mutex<mpsc::Receiver<Result<ClipboardEvent, ClipboardError>>>,
    cancel: watch::CancelHandle,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for WaylandWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WaylandWatcher").finish_non_exhaustive()
    }
}

impl WaylandWatcher {
    pub fn new() -> Result<WaylandWatcher, ClipboardError> {
        let mut watcher =
            watch::Watcher::new(watch::ClipboardType::Regular, paste::Seat::Unspecified)
                .map_err(|e| paste_error(e, "TARGETS"))?;
        let cancel = watcher.cancel_handle();
        let (tx, events) = mpsc::channel();
        let start = Instant::now();
        let thread = std::thread::Builder::new()
            .name("procwire-clipboard-wayland-watch".into())
            .spawn(move || {
                // The device reports the selection it starts with; X11 does not, and only
                // changes are events here.
                if !matches!(watcher.next_event(), Ok(Some(_))) {
                    return;
                }
                loop {
                    let event = match watcher.next_event() {
                        Ok(None) => return,
                        Ok(Some(watch::ClipboardEvent::Changed { .. })) => {
                            Ok(ChangeReason::NewOwner)
                        }
                        Ok(Some(_)) => Ok(ChangeReason::Cleared),
                        Err(e) => Err(paste_error(e, "TARGETS")),
                    };
                    let failed = event.is_err();
                    let sent = tx.send(event.map(|reason| ClipboardEvent {
                        reason,
                        owner: None,
                        timestamp: start.elapsed().as_millis() as u32,
                    }));
                    if failed || sent.is_err() {
                        return;
                    }
                }
            })?;
        Ok(WaylandWatcher {
            events: Mutex::new(events),
            cancel,
            thread: Some(thread),
        })
    }

    pub fn recv_timeout(
        &mut self,
        limit: Duration,
    ) -> Result<Option<ClipboardEvent>, ClipboardError> {
        match self.events.get_mut().unwrap().recv_timeout(limit) {
            Ok(event) => event.map(Some),
            Err(mpsc::RecvTimeoutError::Timeout) => Ok(None),
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(ClipboardError::Io(
                std::io::Error::other("the Wayland watcher ended"),
            )),
        }
    }
}

impl Drop for WaylandWatcher {
    fn drop(&mut self) {
        self.cancel.cancel();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
