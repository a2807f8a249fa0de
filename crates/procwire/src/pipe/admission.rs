//! Deciding whether a client gets in: one implementation for the blocking and the tokio
//! server. Pure logic over a decoded request, the client's credentials and the instance
//! count.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

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
}

/// The most handshakes a server runs at once; clients beyond that are dropped unanswered,
/// so a flood of silent connections cannot exhaust threads or tasks.
pub(crate) const MAX_PENDING_HANDSHAKES: usize = 256;

/// A handshake under way; dropping it frees its place.
#[derive(Debug)]
pub(crate) struct HandshakeTicket(Arc<ServerCore>);

impl Drop for HandshakeTicket {
    fn drop(&mut self) {
        self.0.handshakes.fetch_sub(1, Ordering::AcqRel);
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
        }
    }

    /// A place for one more handshake, unless [`MAX_PENDING_HANDSHAKES`] are under way.
    pub(crate) fn begin_handshake(self: &Arc<Self>) -> Option<HandshakeTicket> {
        self.handshakes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < MAX_PENDING_HANDSHAKES).then_some(n + 1)
            })
            .ok()
            .map(|_| HandshakeTicket(Arc::clone(self)))
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
