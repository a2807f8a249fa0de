//! Proxies on NATS: a [`Transport`] that sends each request frame as a NATS request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use procwire_remoting::service::BoxFuture;
use procwire_remoting::transport::{FrameRecv, FrameSend, Split};
use procwire_remoting::wire::{self, Op, Request, Response};
use procwire_remoting::{
    client::DEFAULT_DEADLINE, Connection, Peer, Proxy, RemoteError, RemoteErrorKind, RemotingError,
    Transport,
};
use serde::Serialize;
use tokio::sync::mpsc;

use super::{service_subject, INSTANCE_HEADER};
use crate::NatsOptions;

/// How much longer than a call's deadline its NATS request waits for the reply (the proxy
/// itself gives up half a second after the deadline).
const REQUEST_GRACE: Duration = Duration::from_secs(1);

/// The transport of NATS proxies: every request frame goes out as one NATS request (to
/// the service's queue-group subject, or to the instance subject of the process that holds
/// the object it names), and each reply is a response frame. Requests run concurrently.
///
/// Failures of the NATS layer come back as response frames carrying a [`RemoteError`]:
/// no responders on a service subject is [`RemoteErrorKind::UnknownService`] ("no
/// server answers …"); no responders on an instance subject (its process is gone) is
/// [`RemoteErrorKind::ObjectDisconnected`].
#[derive(Debug)]
pub struct NatsTransport {
    shared: Arc<Shared>,
    rx: mpsc::UnboundedReceiver<Vec<u8>>,
}

#[derive(Debug)]
struct Shared {
    client: async_nats::Client,
    base: String,
    /// The instance subject of each client-activated object this transport created.
    objects: Mutex<HashMap<u64, String>>,
    tx: mpsc::UnboundedSender<Vec<u8>>,
    max: usize,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl NatsTransport {
    /// A transport on `client`; `base` (`nats://HOST:PORT`) names the server in errors,
    /// `max` is the largest response frame accepted.
    pub fn new(client: async_nats::Client, base: impl Into<String>, max: usize) -> NatsTransport {
        let (tx, rx) = mpsc::unbounded_channel();
        NatsTransport {
            shared: Arc::new(Shared {
                client,
                base: base.into(),
                objects: Mutex::default(),
                tx,
                max,
            }),
            rx,
        }
    }
}

impl Shared {
    /// Starts the NATS request for one frame; its answer arrives on `tx`.
    fn dispatch(self: &Arc<Self>, frame: &[u8]) -> Result<(), RemotingError> {
        let request = wire::decode_request(frame, usize::MAX)?;
        let frame = Bytes::copy_from_slice(frame);
        tokio::spawn(Arc::clone(self).exchange(request, frame));
        Ok(())
    }

    async fn exchange(self: Arc<Self>, request: Request, frame: Bytes) {
        let id = request.id;
        let answer = match self.route(&request.op) {
            Ok((subject, direct)) => self.send(&request, frame, subject, direct).await,
            Err(e) => Err(e),
        };
        let frame = match answer {
            Ok(frame) => frame,
            Err(error) => {
                let response = Response {
                    id,
                    outcome: Err(error),
                };
                match wire::encode_response(&response, usize::MAX) {
                    Ok(f) => f,
                    Err(_) => return,
                }
            }
        };
        let _ = self.tx.send(frame);
    }

    /// Where a request goes: the instance subject of its object when this transport knows
    /// it (`true`), or the service's queue-group subject.
    fn route(&self, op: &Op) -> Result<(String, bool), RemoteError> {
        let object = match op {
            Op::Call { object, .. } => *object,
            Op::Renew { object, .. } | Op::Release { object } => Some(*object),
            Op::Activate { .. } => None,
        };
        if let Some(object) = object {
            if let Some(subject) = lock(&self.objects).get(&object) {
                return Ok((subject.clone(), true));
            }
        }
        match op {
            Op::Call { service, .. } | Op::Activate { service } => {
                Ok((service_subject(service), false))
            }
            // An object this proxy never created: as the server would answer.
            Op::Renew { object, .. } | Op::Release { object } => Err(RemoteError::new(
                RemoteErrorKind::ObjectDisconnected,
                format!("object {object:x} is disconnected"),
            )),
        }
    }

    async fn send(
        &self,
        request: &Request,
        frame: Bytes,
        subject: String,
        direct: bool,
    ) -> Result<Vec<u8>, RemoteError> {
        let deadline = request
            .deadline_ms
            .map_or(DEFAULT_DEADLINE, Duration::from_millis);
        let nats_request = async_nats::Request::new()
            .payload(frame)
            .timeout(Some(deadline + REQUEST_GRACE));
        let reply = self
            .client
            .send_request(subject.clone(), nats_request)
            .await
            .map_err(|e| self.request_failed(&request.op, &subject, direct, deadline, e))?;
        if let Some(status) = reply
            .headers
            .as_ref()
            .and_then(|h| h.get(async_nats::service::NATS_SERVICE_ERROR))
        {
            return Err(RemoteError::new(
                RemoteErrorKind::Protocol,
                format!("the server on `{subject}` refused the request: {status}"),
            ));
        }
        // Anyone who may answer on the subject can answer anything: only a response frame to
        // this request, within this side's limit, goes on to the proxies' connection (which
        // ends on a frame it cannot read).
        match wire::decode_response(&reply.payload, self.max) {
            Ok(response) if response.id == request.id => {
                // An object its server no longer has: forget its route.
                if let (
                    Err(e),
                    Op::Call {
                        object: Some(object),
                        ..
                    },
                ) = (&response.outcome, &request.op)
                {
                    if e.kind == RemoteErrorKind::ObjectDisconnected {
                        lock(&self.objects).remove(object);
                    }
                }
            }
            Ok(response) => {
                return Err(RemoteError::new(
                    RemoteErrorKind::Protocol,
                    format!(
                        "the answer on `{subject}` is for another call ({:x}, not {:x})",
                        response.id, request.id
                    ),
                ))
            }
            Err(_) if reply.payload.len() > self.max => {
                return Err(RemoteError::new(
                    RemoteErrorKind::MessageTooLarge,
                    format!(
                    "the answer on `{subject}` is {} bytes, over this client's maximum of {} bytes",
                    reply.payload.len(),
                    self.max
                ),
                ))
            }
            Err(e) => {
                return Err(RemoteError::new(
                    RemoteErrorKind::Protocol,
                    format!("the answer on `{subject}` is not a response frame: {e}"),
                ))
            }
        }
        match &request.op {
            Op::Activate { .. } => self.remember(&reply),
            Op::Release { object } => {
                lock(&self.objects).remove(object);
            }
            _ => {}
        }
        Ok(reply.payload.to_vec())
    }

    /// Records the instance subject of a newly activated object.
    fn remember(&self, reply: &async_nats::Message) {
        let Some(instance) = reply.headers.as_ref().and_then(|h| h.get(INSTANCE_HEADER)) else {
            return;
        };
        let Ok(Response {
            outcome: Ok(body), ..
        }) = wire::decode_response(&reply.payload, self.max)
        else {
            return;
        };
        if let Ok(object) = postcard::from_bytes::<u64>(&body) {
            lock(&self.objects).insert(object, instance.as_str().to_owned());
        }
    }

    fn request_failed(
        &self,
        op: &Op,
        subject: &str,
        direct: bool,
        deadline: Duration,
        e: async_nats::RequestError,
    ) -> RemoteError {
        use async_nats::RequestErrorKind as K;
        match e.kind() {
            K::NoResponders if direct => {
                let object = match op {
                    Op::Call { object, .. } => object.unwrap_or_default(),
                    Op::Renew { object, .. } | Op::Release { object } => *object,
                    Op::Activate { .. } => 0,
                };
                RemoteError::new(
                    RemoteErrorKind::ObjectDisconnected,
                    format!(
                        "object {object:x} is disconnected: the server process that held it no longer answers on `{subject}`"
                    ),
                )
            }
            K::NoResponders => {
                let path = match op {
                    Op::Call { service, .. } | Op::Activate { service } => service.as_str(),
                    _ => "?",
                };
                RemoteError::new(
                    RemoteErrorKind::UnknownService,
                    format!(
                        "no server answers `{path}` on {}: nobody serves the subject `{subject}`; start a server or check the application and service names",
                        self.base
                    ),
                )
            }
            K::TimedOut => RemoteError::new(
                RemoteErrorKind::DeadlineExceeded,
                format!("no answer on `{subject}` within the deadline of {deadline:?}"),
            ),
            _ => RemoteError::new(
                RemoteErrorKind::Internal,
                format!(
                    "the NATS request on `{subject}` to {} failed: {e}",
                    self.base
                ),
            ),
        }
    }
}

fn peer() -> Peer {
    Peer {
        channel: "nats",
        ..Peer::default()
    }
}

impl Transport for NatsTransport {
    async fn send(&mut self, frame: &[u8]) -> Result<(), RemotingError> {
        self.shared.dispatch(frame)
    }

    async fn recv(&mut self) -> Result<Option<Vec<u8>>, RemotingError> {
        Ok(self.rx.recv().await)
    }

    fn peer(&self) -> Peer {
        peer()
    }

    fn split(self) -> Split<Self> {
        Split::Halves(Box::new(Replies(self.rx)), Box::new(Requests(self.shared)))
    }
}

struct Replies(mpsc::UnboundedReceiver<Vec<u8>>);

struct Requests(Arc<Shared>);

impl FrameRecv for Replies {
    fn recv(&mut self) -> BoxFuture<'_, Result<Option<Vec<u8>>, RemotingError>> {
        Box::pin(async move { Ok(self.0.recv().await) })
    }
}

impl FrameSend for Requests {
    fn send_many<'a>(
        &'a mut self,
        frames: &'a [Vec<u8>],
    ) -> BoxFuture<'a, Result<(), RemotingError>> {
        Box::pin(async move {
            for frame in frames {
                self.0.dispatch(frame)?;
            }
            Ok(())
        })
    }
}

/// A remoting [`Connection`] over `client`: proxies made from it (with
/// [`Connection::proxy`]) share the one NATS client. `base` is `nats://HOST:PORT`. The
/// largest message is the NATS server's `max_payload` (or procwire's default maximum,
/// if smaller). Must be called within a tokio runtime.
pub fn connection(client: async_nats::Client, base: &str) -> Connection {
    let max = wire::DEFAULT_MAX_MESSAGE.min(client.server_info().max_payload.max(1));
    Connection::over(NatsTransport::new(client, base, max), base.to_owned(), max)
}

/// Connects a proxy to the well-known service at `nats://HOST:PORT/App/Service`. The
/// typed clients of `#[remote]` wrap it: `CounterClient::new(proxy)`.
///
/// # Errors
///
/// [`RemotingError::InvalidUrl`] for a bad URL, [`RemotingError::Connect`] when the NATS
/// server cannot be reached. A service nobody serves is found at the first call.
pub async fn connect(url: &str, options: &NatsOptions) -> Result<Proxy, RemotingError> {
    let parsed = crate::NatsUrl::parse(url).map_err(|e| crate::remoting_error(url, e))?;
    if parsed.path.split('/').count() != 2 {
        return Err(RemotingError::InvalidUrl {
            url: url.to_owned(),
            reason: "expected nats://HOST:PORT/App/Service".into(),
        });
    }
    let client = options
        .connect(url)
        .await
        .map_err(|e| crate::remoting_error(url, e))?;
    Ok(connection(client, &parsed.base()).proxy(&parsed.path))
}

/// Activates the client-activated type at `nats://HOST:PORT/App/Type` with constructor
/// arguments `args`; the proxy is bound to the new object, in the process that created
/// it.
///
/// # Errors
///
/// As [`connect`], and the server's refusal.
pub async fn activate<A: Serialize>(
    url: &str,
    args: &A,
    options: &NatsOptions,
) -> Result<Proxy, RemotingError> {
    connect(url, options).await?.activate_here(args).await
}
