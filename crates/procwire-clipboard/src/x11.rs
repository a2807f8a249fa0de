//! The X11 side: a connection with a window of its own, waits with deadlines, the
//! requestor's half of a selection transfer (with INCR) and the owner's serve loop.
//!
//! # References
//! - ICCCM §2 "Peer-to-Peer Communication by Means of Selections" (the TARGETS, TIMESTAMP and
//!   INCR conventions), <https://x.org/releases/X11R7.7/doc/xorg-docs/icccm/icccm.html>
//! - The XFIXES extension, `SelectSelectionInput`

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec};
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{
    Atom, AtomEnum, ChangeWindowAttributesAux, ConnectionExt as _, CreateWindowAux, EventMask,
    PropMode, Property, SelectionNotifyEvent, SelectionRequestEvent, Window, WindowClass,
    SELECTION_NOTIFY_EVENT,
};
use x11rb::protocol::Event;
use x11rb::rust_connection::RustConnection;
use x11rb::wrapper::ConnectionExt as _;
use x11rb::{COPY_DEPTH_FROM_PARENT, CURRENT_TIME, NONE};

use crate::ClipboardError;

x11rb::atom_manager! {
    /// The atoms every connection needs.
    pub(crate) Atoms: AtomsCookie {
        CLIPBOARD,
        TARGETS,
        TIMESTAMP,
        INCR,
        UTF8_STRING,
        TEXT,
        TEXT_PLAIN_UTF8: b"text/plain;charset=utf-8",
        IMAGE_PNG: b"image/png",
        PROCWIRE_PASTE,
        PROCWIRE_STAMP,
    }
}

/// Data of one format in a copy: pieces larger than this go by INCR. Well below any X
/// server's request limit (Xvfb's is 256 KiB without BIG-REQUESTS).
pub(crate) const INCR_CHUNK: usize = 64 * 1024;

/// The most that an INCR transfer reserves up front for the size its owner announces (the
/// owner's word; more is read as it comes, up to the paste's limit).
const PREALLOCATE_MAX: usize = 16 << 20;

/// One connection to the X server with an input-only window of its own, which receives the
/// property changes of transfers.
pub(crate) struct X {
    pub conn: RustConnection,
    pub window: Window,
    pub atoms: Atoms,
    /// The property of our window that the next paste uses; `None` when the last paste
    /// was abandoned, and so needs a fresh one.
    paste_property: Option<Atom>,
    /// How many properties abandoned pastes have retired.
    retired: u64,
}

impl std::fmt::Debug for X {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("X").field("window", &self.window).finish()
    }
}

impl X {
    /// Connects to `display`, waiting at most `timeout` for the server's greeting.
    pub fn connect(display: &str, timeout: Duration) -> Result<X, ClipboardError> {
        let (tx, rx) = std::sync::mpsc::channel();
        let name = display.to_owned();
        // RustConnection::connect has no timeout of its own: a server that accepts and never
        // greets would hang it. The thread is left behind in that case (and ends with the
        // process or when the server answers).
        std::thread::spawn(move || {
            let _ = tx.send(RustConnection::connect(Some(&name)));
        });
        let (conn, screen) = match rx.recv_timeout(timeout) {
            Ok(Ok(connected)) => connected,
            Ok(Err(source)) => {
                return Err(ClipboardError::Connect {
                    display: display.to_owned(),
                    source,
                })
            }
            Err(_) => {
                return Err(ClipboardError::Timeout {
                    waiting_for: "the X server's greeting",
                    waited: timeout,
                    format: None,
                    received: 0,
                })
            }
        };
        let root = conn.setup().roots[screen].root;
        let window = conn.generate_id()?;
        conn.create_window(
            COPY_DEPTH_FROM_PARENT,
            window,
            root,
            0,
            0,
            1,
            1,
            0,
            WindowClass::INPUT_ONLY,
            0,
            &CreateWindowAux::new().event_mask(EventMask::PROPERTY_CHANGE),
        )?;
        let atoms = Atoms::new(&conn)?.reply()?;
        conn.flush()?;
        Ok(X {
            conn,
            window,
            paste_property: Some(atoms.PROCWIRE_PASTE),
            retired: 0,
            atoms,
        })
    }

    /// The next event, or `None` once `deadline` has passed.
    pub fn next_event(&self, deadline: Instant) -> Result<Option<Event>, ClipboardError> {
        self.conn.flush()?;
        loop {
            if let Some(event) = self.conn.poll_for_event()? {
                return Ok(Some(event));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            let timeout = Timespec {
                tv_sec: left.as_secs() as _,
                tv_nsec: left.subsec_nanos() as _,
            };
            let mut fds = [PollFd::new(self.conn.stream(), PollFlags::IN)];
            match rustix::event::poll(&mut fds, Some(&timeout)) {
                Ok(_) | Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(ClipboardError::Io(e.into())),
            }
        }
    }

    /// Interns `name` (creating the atom unless `only_if_exists`; then `None` if no client
    /// ever named it).
    pub fn atom(&self, name: &str, only_if_exists: bool) -> Result<Option<Atom>, ClipboardError> {
        if name.is_empty() || name.contains('\0') {
            return Err(ClipboardError::InvalidFormat(name.to_owned()));
        }
        let atom = self
            .conn
            .intern_atom(only_if_exists, name.as_bytes())?
            .reply()?
            .atom;
        Ok((atom != NONE).then_some(atom))
    }

    /// The names of `atoms`, in one round trip.
    pub fn atom_names(&self, atoms: &[Atom]) -> Result<Vec<String>, ClipboardError> {
        let cookies = atoms
            .iter()
            .map(|&atom| self.conn.get_atom_name(atom))
            .collect::<Result<Vec<_>, _>>()?;
        cookies
            .into_iter()
            .map(|cookie| Ok(String::from_utf8_lossy(&cookie.reply()?.name).into_owned()))
            .collect()
    }

    /// A server timestamp: appends nothing to a property of our window and reads the time
    /// of the PropertyNotify that follows (ICCCM §2.1: never own a selection at CurrentTime).
    fn timestamp(&self, timeout: Duration) -> Result<u32, ClipboardError> {
        self.server_time(Instant::now() + timeout)?
            .ok_or(ClipboardError::Timeout {
                waiting_for: "the X server's timestamp",
                waited: timeout,
                format: None,
                received: 0,
            })
    }

    /// As [`timestamp`](Self::timestamp), by `deadline`: `None` once it has passed.
    fn server_time(&self, deadline: Instant) -> Result<Option<u32>, ClipboardError> {
        self.conn.change_property8(
            PropMode::APPEND,
            self.window,
            self.atoms.PROCWIRE_STAMP,
            AtomEnum::STRING,
            &[],
        )?;
        self.wait_for(deadline, |event| match event {
            Event::PropertyNotify(e)
                if e.window == self.window && e.atom == self.atoms.PROCWIRE_STAMP =>
            {
                Some(e.time)
            }
            _ => None,
        })
    }

    /// The window that owns the CLIPBOARD selection, if any.
    pub fn owner(&self) -> Result<Option<Window>, ClipboardError> {
        let owner = self
            .conn
            .get_selection_owner(self.atoms.CLIPBOARD)?
            .reply()?
            .owner;
        Ok((owner != NONE).then_some(owner))
    }

    /// Asks the CLIPBOARD's owner for `target` and reads the answer, through INCR when the
    /// owner sends it in pieces. The whole paste — the server's timestamp, the owner's answer
    /// and every piece — must be done within `timeout` of the call: each wait uses the time
    /// left, so an owner that trickles its pieces cannot stretch it.
    ///
    /// The answer must come in a property that no earlier, unfinished transfer of this
    /// connection used (see [`X::paste_property`]), in a SelectionNotify that names this
    /// request's selection, target, property and time: a late answer to a paste that timed
    /// out, or a late piece of it, is never taken for this one's.
    pub fn convert(
        &mut self,
        target: Atom,
        format: &str,
        timeout: Duration,
        max_size: usize,
    ) -> Result<Vec<u8>, ClipboardError> {
        let deadline = Instant::now() + timeout;
        if self.owner()?.is_none() {
            return Err(ClipboardError::Empty);
        }
        // Events left from an earlier transfer (a late piece of one that timed out); an
        // owner that floods them cannot hold this loop past the deadline.
        while self.conn.poll_for_event()?.is_some() && Instant::now() < deadline {}
        let property = self.paste_property()?;
        let request = Request {
            property,
            target,
            format,
            deadline,
            timeout,
            max_size,
        };
        let result = self.transfer(&request);
        match &result {
            // Finished (the owner has nothing more to send): the property may serve again.
            Ok(_) | Err(ClipboardError::Empty | ClipboardError::FormatUnavailable { .. }) => {
                self.paste_property = Some(property);
            }
            // Abandoned: the owner may still write there, so the property is never used
            // again by this connection. Deleting it frees what was written so far.
            Err(_) => {
                tracing::debug!(format, "paste abandoned; its property is retired");
                let _ = self.conn.delete_property(self.window, property);
                let _ = self.conn.flush();
            }
        }
        result
    }

    /// The property the next paste uses: the last one, if the transfer that used it
    /// finished; else a fresh one (`PROCWIRE_PASTE_1`, `_2`, ...: one more atom each time
    /// a paste is abandoned, and none while pastes finish, so the X server's atom table,
    /// which never shrinks, does not grow with every paste).
    fn paste_property(&mut self) -> Result<Atom, ClipboardError> {
        if let Some(property) = self.paste_property.take() {
            return Ok(property);
        }
        self.retired += 1;
        let name = format!("PROCWIRE_PASTE_{}", self.retired);
        Ok(self.atom(&name, false)?.expect("interned atoms exist"))
    }

    /// The first event that `pick` takes before `deadline`; `None` once the deadline has
    /// passed. Events that `pick` refuses are dropped, and do not hold the deadline off (a
    /// flood of them still ends the wait in time).
    fn wait_for<T>(
        &self,
        deadline: Instant,
        mut pick: impl FnMut(Event) -> Option<T>,
    ) -> Result<Option<T>, ClipboardError> {
        loop {
            let Some(event) = self.next_event(deadline)? else {
                return Ok(None);
            };
            if let Some(picked) = pick(event) {
                return Ok(Some(picked));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
        }
    }

    /// The requestor's half of one transfer, `convert` without the bookkeeping.
    fn transfer(&self, request: &Request<'_>) -> Result<Vec<u8>, ClipboardError> {
        let &Request {
            property,
            target,
            format,
            deadline,
            timeout,
            max_size,
        } = request;
        let timed_out = |waiting_for, received| ClipboardError::Timeout {
            waiting_for,
            waited: timeout,
            format: Some(format.to_owned()),
            received,
        };
        // A time of our own for the request (ICCCM §2.2: not CurrentTime); the owner puts it
        // into its SelectionNotify, which tells this request's answer from a late one's.
        let time = self
            .server_time(deadline)?
            .ok_or_else(|| timed_out("the X server's timestamp", 0))?;
        self.conn.delete_property(self.window, property)?;
        self.conn
            .convert_selection(self.window, self.atoms.CLIPBOARD, target, property, time)?;
        let notify = self
            .wait_for(deadline, |event| match event {
                // (An owner that gives CurrentTime instead of the request's is believed.)
                Event::SelectionNotify(e)
                    if e.requestor == self.window
                        && e.selection == self.atoms.CLIPBOARD
                        && e.target == target
                        && (e.property == property || e.property == NONE)
                        && (e.time == time || e.time == CURRENT_TIME) =>
                {
                    Some(e)
                }
                _ => None,
            })?
            .ok_or_else(|| timed_out("its answer to the paste request", 0))?;
        if notify.property == NONE {
            // Refused; or the owner went away between our two requests.
            if self.owner()?.is_none() {
                return Err(ClipboardError::Empty);
            }
            return Err(ClipboardError::FormatUnavailable {
                format: format.to_owned(),
            });
        }
        // Read at most max_size bytes (+1 word, to notice more).
        let words = u32::try_from(max_size / 4 + 1).unwrap_or(u32::MAX);
        let reply = self
            .conn
            .get_property(true, self.window, property, AtomEnum::ANY, 0, words)?
            .reply()?;
        if reply.type_ != self.atoms.INCR {
            if reply.bytes_after > 0 || reply.value.len() > max_size {
                return Err(ClipboardError::TooLarge { limit: max_size });
            }
            return Ok(reply.value);
        }
        // INCR (ICCCM §2.7.2): the owner announced a lower bound of the size; our delete
        // of the property (above) asks for the first piece; each piece comes as a new value
        // of the property, which we delete to ask for the next; an empty piece ends it. The
        // owner's word reserves no more than PREALLOCATE_MAX; max_size bounds what is kept.
        let announced = reply.value32().and_then(|mut v| v.next()).unwrap_or(0);
        let announced = usize::try_from(announced).unwrap_or(usize::MAX);
        let mut data = Vec::with_capacity(announced.min(max_size).min(PREALLOCATE_MAX));
        loop {
            self.wait_for(deadline, |event| match event {
                Event::PropertyNotify(e)
                    if e.window == self.window
                        && e.atom == property
                        && e.state == Property::NEW_VALUE =>
                {
                    Some(())
                }
                _ => None,
            })?
            .ok_or_else(|| {
                timed_out(
                    "the next piece of an incremental (INCR) transfer",
                    data.len(),
                )
            })?;
            let left = max_size.saturating_sub(data.len());
            let words = u32::try_from(left / 4 + 1).unwrap_or(u32::MAX);
            let piece = self
                .conn
                .get_property(true, self.window, property, AtomEnum::ANY, 0, words)?
                .reply()?;
            if piece.value.is_empty() && piece.bytes_after == 0 {
                return Ok(data);
            }
            if piece.bytes_after > 0 || piece.value.len() > left {
                return Err(ClipboardError::TooLarge { limit: max_size });
            }
            data.extend_from_slice(&piece.value);
        }
    }

    /// Takes the CLIPBOARD selection for this connection's window; returns the timestamp of
    /// the take.
    pub fn take_selection(&self, timeout: Duration) -> Result<u32, ClipboardError> {
        let time = self.timestamp(timeout)?;
        self.conn
            .set_selection_owner(self.window, self.atoms.CLIPBOARD, time)?;
        if self.owner()? != Some(self.window) {
            return Err(ClipboardError::Lost);
        }
        Ok(time)
    }
}

/// One paste: what is asked for, where the answer goes, by when, and how much is accepted.
struct Request<'a> {
    property: Atom,
    target: Atom,
    format: &'a str,
    deadline: Instant,
    /// The paste's whole timeout, for the error.
    timeout: Duration,
    max_size: usize,
}

/// What a copy offers: each format's atom and data.
#[derive(Debug, Clone)]
pub(crate) struct Offer {
    pub formats: Vec<(Atom, Arc<[u8]>)>,
}

/// How a serve loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// Another client took the selection (SelectionClear).
    Replaced,
    /// The clipboard asked it to stop.
    Stopped,
}

/// An INCR transfer in progress to one requestor.
struct Transfer {
    requestor: Window,
    property: Atom,
    target: Atom,
    data: Arc<[u8]>,
    offset: usize,
    /// When the requestor last asked for a piece.
    last: Instant,
}

/// Answers every SelectionRequest for the CLIPBOARD until another client takes the selection
/// (then finishes the INCR transfers in flight) or `stop` is set. A requestor that stops
/// taking pieces for `timeout` is dropped.
pub(crate) fn serve(
    x: &X,
    offer: &Offer,
    time: u32,
    stop: &AtomicBool,
    timeout: Duration,
) -> Result<End, ClipboardError> {
    let atoms = &x.atoms;
    let mut transfers: Vec<Transfer> = Vec::new();
    let mut replaced = false;
    loop {
        if stop.load(Ordering::Acquire) {
            return Ok(End::Stopped);
        }
        if replaced && transfers.is_empty() {
            return Ok(End::Replaced);
        }
        let now = Instant::now();
        transfers.retain(|t| {
            let alive = now.duration_since(t.last) < timeout;
            if !alive {
                tracing::debug!(
                    requestor = t.requestor,
                    "INCR requestor gone quiet; dropped"
                );
            }
            alive
        });
        let Some(event) = x.next_event(now + Duration::from_millis(100))? else {
            continue;
        };
        match event {
            Event::SelectionRequest(req) => {
                let property = if replaced {
                    None
                } else {
                    answer(x, offer, time, &req, &mut transfers)?
                };
                let notify = SelectionNotifyEvent {
                    response_type: SELECTION_NOTIFY_EVENT,
                    sequence: 0,
                    time: req.time,
                    requestor: req.requestor,
                    selection: req.selection,
                    target: req.target,
                    property: property.unwrap_or(NONE),
                };
                x.conn
                    .send_event(false, req.requestor, EventMask::NO_EVENT, notify)?;
                x.conn.flush()?;
            }
            Event::SelectionClear(e) if e.selection == atoms.CLIPBOARD => {
                tracing::debug!(owner = e.owner, "clipboard taken by another client");
                replaced = true;
            }
            Event::PropertyNotify(e) if e.state == Property::DELETE => {
                let Some(i) = transfers
                    .iter()
                    .position(|t| t.requestor == e.window && t.property == e.atom)
                else {
                    continue;
                };
                let t = &mut transfers[i];
                let end = (t.offset + INCR_CHUNK).min(t.data.len());
                x.conn.change_property8(
                    PropMode::REPLACE,
                    t.requestor,
                    t.property,
                    t.target,
                    &t.data[t.offset..end],
                )?;
                let finished = t.offset == end;
                t.offset = end;
                t.last = Instant::now();
                if finished {
                    let t = transfers.swap_remove(i);
                    if !transfers.iter().any(|o| o.requestor == t.requestor) {
                        x.conn.change_window_attributes(
                            t.requestor,
                            &ChangeWindowAttributesAux::new().event_mask(EventMask::NO_EVENT),
                        )?;
                    }
                }
                x.conn.flush()?;
            }
            Event::Error(e) => {
                // Most likely a requestor window that vanished mid-transfer.
                tracing::debug!(error = ?e, "X error while serving the clipboard");
                transfers.retain(|t| t.requestor != e.bad_value);
            }
            _ => {}
        }
    }
}

/// Writes the answer to `req` into the requestor's property; returns the property, or
/// `None` to refuse.
fn answer(
    x: &X,
    offer: &Offer,
    time: u32,
    req: &SelectionRequestEvent,
    transfers: &mut Vec<Transfer>,
) -> Result<Option<Atom>, ClipboardError> {
    let atoms = &x.atoms;
    if req.selection != atoms.CLIPBOARD {
        return Ok(None);
    }
    // ICCCM: an obsolete client may give no property; use the target's name.
    let property = if req.property == NONE {
        req.target
    } else {
        req.property
    };
    if req.target == atoms.TARGETS {
        let mut targets = vec![atoms.TARGETS, atoms.TIMESTAMP];
        targets.extend(offer.formats.iter().map(|(atom, _)| *atom));
        x.conn.change_property32(
            PropMode::REPLACE,
            req.requestor,
            property,
            AtomEnum::ATOM,
            &targets,
        )?;
        return Ok(Some(property));
    }
    if req.target == atoms.TIMESTAMP {
        x.conn.change_property32(
            PropMode::REPLACE,
            req.requestor,
            property,
            AtomEnum::INTEGER,
            &[time],
        )?;
        return Ok(Some(property));
    }
    let Some((_, data)) = offer.formats.iter().find(|(atom, _)| *atom == req.target) else {
        // MULTIPLE and every format we do not have.
        return Ok(None);
    };
    if data.len() <= INCR_CHUNK {
        x.conn
            .change_property8(PropMode::REPLACE, req.requestor, property, req.target, data)?;
        return Ok(Some(property));
    }
    // INCR: watch the requestor's properties first (its deletes ask for the pieces), then
    // announce the size.
    x.conn.change_window_attributes(
        req.requestor,
        &ChangeWindowAttributesAux::new().event_mask(EventMask::PROPERTY_CHANGE),
    )?;
    x.conn.change_property32(
        PropMode::REPLACE,
        req.requestor,
        property,
        atoms.INCR,
        &[u32::try_from(data.len()).unwrap_or(u32::MAX)],
    )?;
    transfers.retain(|t| !(t.requestor == req.requestor && t.property == property));
    transfers.push(Transfer {
        requestor: req.requestor,
        property,
        target: req.target,
        data: Arc::clone(data),
        offset: 0,
        last: Instant::now(),
    });
    Ok(Some(property))
}
