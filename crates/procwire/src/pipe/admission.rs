//! Deciding whether a client gets in: one implementation for the blocking and the tokio
//! server. Pure logic over a decoded request, the client's credentials and the instance
//! count.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::info::Info;
use super::options::PipeOptions;
use crate::security::{Access, PeerCredentials, Principal};
use crate::wire::{PipeMode, ProtocolError, Request, Response, Status};

/// What every connection of one server shares.
#[derive(Debug)]
pub(crate) struct ServerCore {
    pub(crate) display: String,
    pub(crate) object: String,
    pub(crate) options: PipeOptions,
    in_use: AtomicUsize,
    handshakes: AtomicUsize,
    /// Handshakes under way per origin.
    origins: Mutex<HashMap<Origin, usize>>,
    /// Clients dropped or refused at the door, and when that was last logged as a warning.
    turned_away: Mutex<(u64, Option<std::time::Instant>)>,
}

/// The most handshakes a server runs at once; clients beyond that are dropped unanswered,
/// so a flood of silent connections cannot exhaust threads or tasks.
pub(crate) const MAX_PENDING_HANDSHAKES: usize = 256;

/// The most handshakes one origin (a local user, or a network address) may have under way
/// at once: a flood from one origin leaves three quarters of the places to everyone else.
pub(crate) const MAX_HANDSHAKES_PER_ORIGIN: usize = MAX_PENDING_HANDSHAKES / 4;

/// Whom a handshake counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Origin {
    /// A local client, by its uid (from `SO_PEERCRED`).
    User(u32),
    /// A network client, by its address.
    Address(IpAddr),
}

/// What to do with a client that just connected, before reading anything from it.
#[derive(Debug)]
pub(crate) enum Gate {
    /// Run its handshake, holding this place.
    Handshake(HandshakeTicket),
    /// Answer this at once and close, taking no place: `AccessDenied` when the access
    /// list grants the client nothing, `Busy` (which clients retry within their timeout,
    /// as for busy instances) when its origin or the server has too many handshakes under
    /// way.
    Refuse(Response),
}

/// A handshake under way; dropping it frees its place.
#[derive(Debug)]
pub(crate) struct HandshakeTicket(Arc<ServerCore>, Origin);

impl Drop for HandshakeTicket {
    fn drop(&mut self) {
        self.0.handshakes.fetch_sub(1, Ordering::AcqRel);
        let mut origins = self.0.origins.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = origins.get_mut(&self.1) {
            *n -= 1;
            if *n == 0 {
                origins.remove(&self.1);
            }
        }
    }
}

/// One instance in use; dropping it frees the instance.
#[derive(Debug)]
pub(crate) struct InstanceSlot(Arc<ServerCore>);

impl Drop for InstanceSlot {
    fn drop(&mut self) {
        self.0.in_use.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A client that got in.
#[derive(Debug)]
pub(crate) struct Admitted {
    pub(crate) slot: InstanceSlot,
    pub(crate) client_access: Access,
}

/// The access the server side has when the client has `client`: the mirror image.
fn server_side_access(client: Access) -> Access {
    match client {
        Access::Read => Access::Write,
        Access::Write => Access::Read,
        Access::ReadWrite => Access::ReadWrite,
    }
}

impl ServerCore {
    pub(crate) fn new(display: String, object: String, mut options: PipeOptions) -> ServerCore {
        if options.tcp.is_some() && !options.access.mentions(Principal::Network) {
            options.access = options
                .access
                .clone()
                .grant(Principal::Network, Access::ReadWrite);
        }
        ServerCore {
            display,
            object,
            options,
            in_use: AtomicUsize::new(0),
            handshakes: AtomicUsize::new(0),
            origins: Mutex::new(HashMap::new()),
            turned_away: Mutex::new((0, None)),
        }
    }

    /// Whether network clients speak the handshake in the clear (no TLS): then a refusal
    /// can be written to them before anything is read.
    pub(crate) fn plaintext(&self) -> bool {
        #[cfg(feature = "tls")]
        return self.options.tls.is_none();
        #[cfg(not(feature = "tls"))]
        true
    }

    /// Logs a client turned away at the door: every one at debug level, and a warning at
    /// most every 10 s with the count, so that a flood of connections cannot become a flood
    /// of log lines (which, written to a full pipe, would stall the accept loop).
    pub(crate) fn log_turned_away(&self, peer: Option<&PeerCredentials>, why: &str) {
        tracing::debug!(pipe = %self.display, ?peer, "turned a client away: {why}");
        let mut turned = self.turned_away.lock().unwrap_or_else(|e| e.into_inner());
        turned.0 += 1;
        let now = std::time::Instant::now();
        if turned
            .1
            .is_none_or(|at| now.duration_since(at) >= std::time::Duration::from_secs(10))
        {
            tracing::warn!(
                pipe = %self.display,
                "turning clients away: {why} ({} so far)",
                turned.0
            );
            turned.1 = Some(now);
        }
    }

    /// Decides on a client that just connected, before anything is read from it: a local
    /// client the access list grants nothing is refused at once (a local peer's
    /// credentials are known at accept); others get a place for their handshake unless
    /// their origin has [`MAX_HANDSHAKES_PER_ORIGIN`] under way, or the server
    /// [`MAX_PENDING_HANDSHAKES`].
    pub(crate) fn gate(
        self: &Arc<Self>,
        peer: Option<&PeerCredentials>,
        address: Option<IpAddr>,
    ) -> Gate {
        let origin = match (peer, address) {
            (Some(peer), _) => {
                if self.options.access.access_for(Some(peer)).is_none() {
                    let detail = self
                        .options
                        .access
                        .check(Some(peer), Access::Read)
                        .err()
                        .unwrap_or_default();
                    return Gate::Refuse(self.response(Status::AccessDenied, None, detail));
                }
                Origin::User(peer.uid)
            }
            (None, Some(address)) => Origin::Address(address),
            (None, None) => Origin::Address(IpAddr::from([0, 0, 0, 0])),
        };
        let mut origins = self.origins.lock().unwrap_or_else(|e| e.into_inner());
        let mine = origins.entry(origin).or_insert(0);
        let busy = |detail: String| Gate::Refuse(self.response(Status::Busy, None, detail));
        if *mine >= MAX_HANDSHAKES_PER_ORIGIN {
            let who = match origin {
                Origin::User(uid) => format!("uid {uid}"),
                Origin::Address(ip) => format!("address {ip}"),
            };
            return busy(format!(
                "{who} already has {MAX_HANDSHAKES_PER_ORIGIN} handshakes under way; retry"
            ));
        }
        let took = self
            .handshakes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < MAX_PENDING_HANDSHAKES).then_some(n + 1)
            });
        if took.is_err() {
            return busy(format!(
                "{MAX_PENDING_HANDSHAKES} handshakes are under way; retry"
            ));
        }
        *mine += 1;
        Gate::Handshake(HandshakeTicket(Arc::clone(self), origin))
    }

    /// The facts of the server's end of an admitted client's connection.
    pub(crate) fn connection_info(
        &self,
        admitted: Admitted,
        peer: Option<PeerCredentials>,
    ) -> Info {
        Info {
            name: self.display.clone(),
            pipe_type: self.options.mode,
            read_mode: self.options.mode,
            access: server_side_access(admitted.client_access),
            max_message: self.options.max_message,
            peer,
            is_client: false,
            _slot: Some(admitted.slot),
        }
    }

    /// Instances in use now.
    pub(crate) fn instances(&self) -> usize {
        self.in_use.load(Ordering::Acquire)
    }

    fn response(&self, status: Status, access: Option<Access>, detail: String) -> Response {
        // Only clients that got in, or that may get in once an instance is free, learn how
        // busy the pipe is.
        let shows_load = matches!(status, Status::Ok | Status::Busy);
        Response {
            status,
            pipe_type: self.options.mode,
            access,
            max_message: match self.options.mode {
                PipeMode::Message => self.options.max_message,
                PipeMode::Byte => 0,
            },
            instances: match shows_load {
                true => u16::try_from(self.instances()).unwrap_or(u16::MAX),
                false => 0,
            },
            max_instances: match shows_load {
                true => self.options.max_instances.unwrap_or(0),
                false => 0,
            },
            detail,
        }
    }

    /// Decides on a request: the response to send, and the instance when accepted. The
    /// checks run in this order: decoding, name, direction, access list, mode, instances;
    /// only an accepted or a busy answer carries the instance counts, so a client that may
    /// not connect never learns how busy the pipe is.
    pub(crate) fn admit(
        self: &Arc<Self>,
        request: Result<Request, ProtocolError>,
        peer: Option<&PeerCredentials>,
    ) -> (Response, Option<Admitted>) {
        let request = match request {
            Ok(request) => request,
            Err(e @ ProtocolError::UnsupportedVersion { .. }) => {
                return (
                    self.response(Status::UnsupportedVersion, None, e.to_string()),
                    None,
                )
            }
            Err(e) => {
                return (
                    self.response(Status::BadRequest, None, format!("bad handshake: {e}")),
                    None,
                )
            }
        };
        let refuse = |status, detail: String| (self.response(status, None, detail), None);
        if request.pipe != self.object {
            return refuse(
                Status::NotFound,
                format!("this server has no pipe `{}`", request.pipe),
            );
        }
        let allowed = self.options.direction.client_access();
        if !allowed.contains(request.access) {
            return refuse(
                Status::AccessDenied,
                format!(
                    "the pipe is {:?}: clients may have {allowed} access, not {}",
                    self.options.direction, request.access
                ),
            );
        }
        if let Err(detail) = self.options.access.check(peer, request.access) {
            return refuse(Status::AccessDenied, detail);
        }
        if request.mode == PipeMode::Message && self.options.mode == PipeMode::Byte {
            return refuse(
                Status::ModeMismatch,
                "message read mode was asked for, but this is a byte-type pipe".into(),
            );
        }
        let max = self.options.max_instances.map_or(usize::MAX, usize::from);
        let took = self
            .in_use
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            });
        if took.is_err() {
            return refuse(
                Status::Busy,
                format!("all {max} instances are in use; retry or raise max_instances"),
            );
        }
        let admitted = Admitted {
            slot: InstanceSlot(Arc::clone(self)),
            client_access: request.access,
        };
        (
            self.response(Status::Ok, Some(request.access), String::new()),
            Some(admitted),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipe::Direction;
    use crate::security::AccessList;

    fn core(options: PipeOptions) -> Arc<ServerCore> {
        Arc::new(ServerCore::new("P".into(), "P".into(), options))
    }

    fn request(access: Access, mode: PipeMode) -> Result<Request, ProtocolError> {
        Ok(Request {
            access,
            mode,
            pipe: "P".into(),
            shared_memory: false,
        })
    }

    fn me() -> PeerCredentials {
        let (uid, gid) = crate::sys::current_user();
        PeerCredentials {
            pid: std::process::id(),
            uid,
            gid,
        }
    }

    #[test]
    fn instances_are_counted_and_freed() {
        let core = core(PipeOptions::new().max_instances(1));
        let (r, first) = core.admit(request(Access::ReadWrite, PipeMode::Byte), Some(&me()));
        assert_eq!(r.status, Status::Ok);
        let (r, second) = core.admit(request(Access::ReadWrite, PipeMode::Byte), Some(&me()));
        assert_eq!(
            (r.status, r.instances, r.max_instances),
            (Status::Busy, 1, 1)
        );
        assert!(second.is_none());
        drop(first);
        let (r, _third) = core.admit(request(Access::ReadWrite, PipeMode::Byte), Some(&me()));
        assert_eq!(r.status, Status::Ok);
    }

    #[test]
    fn refusals_say_why() {
        let inbound = core(PipeOptions::new().direction(Direction::Inbound));
        let (r, _) = inbound.admit(request(Access::Read, PipeMode::Byte), Some(&me()));
        assert_eq!(r.status, Status::AccessDenied);
        assert!(r.detail.contains("Inbound"), "{}", r.detail);

        let byte = core(PipeOptions::new().mode(PipeMode::Byte));
        let (r, _) = byte.admit(request(Access::ReadWrite, PipeMode::Message), Some(&me()));
        assert_eq!(r.status, Status::ModeMismatch);

        let stranger = PeerCredentials {
            uid: me().uid + 1,
            ..me()
        };
        let owner_only = core(PipeOptions::new());
        let (r, _) = owner_only.admit(request(Access::Read, PipeMode::Byte), Some(&stranger));
        assert_eq!(r.status, Status::AccessDenied);

        let readable =
            core(PipeOptions::new().access_list(AccessList::owner_only().everyone(Access::Read)));
        let (r, _) = readable.admit(request(Access::Read, PipeMode::Byte), Some(&stranger));
        assert_eq!(r.status, Status::Ok);
        let (r, _) = readable.admit(request(Access::Write, PipeMode::Byte), Some(&stranger));
        assert_eq!(r.status, Status::AccessDenied);

        let (r, _) = owner_only.admit(
            Err(ProtocolError::BadMagic { found: *b"GET " }),
            Some(&me()),
        );
        assert_eq!(r.status, Status::BadRequest);
    }
}
