//! Serving a [`RemotingServer`] on NATS.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use async_nats::service::Request;
use async_nats::service::ServiceExt;
use futures::StreamExt;
use procwire_remoting::server::{Mode, MAX_IN_FLIGHT};
use procwire_remoting::wire::{self, Op, Response};
use procwire_remoting::{Peer, RemoteError, RemoteErrorKind, RemotingError, RemotingServer};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;

use super::{instance_subject, is_token, nats_service_name, service_subject, INSTANCE_HEADER};
use crate::NatsOptions;

/// The Services API error code of a request that is not a valid request frame.
const BAD_FRAME: usize = 400;

/// How many requests of one endpoint wait for a call slot while all [`MAX_IN_FLIGHT`] are
/// taken. Beyond them a request is answered [`RemoteErrorKind::Busy`] at once: a flood
/// costs the server bounded memory (the NATS client's subscription would otherwise hold
/// 65,536 requests of up to `max_payload` each) and its callers a precise error.
pub const MAX_WAITING: usize = 1024;

/// A [`RemotingServer`] served on NATS; dropping it stops serving (its services leave the
/// queue groups and the Services API).
#[derive(Debug)]
pub struct NatsListener {
    /// The tasks that read the endpoints; they end (unsubscribing) when `stopping` says.
    tasks: Vec<JoinHandle<()>>,
    sweeper: Option<JoinHandle<()>>,
    stopping: tokio::sync::watch::Sender<bool>,
    services: Vec<async_nats::service::Service>,
    instances: Vec<String>,
    local: String,
    client: async_nats::Client,
}

impl NatsListener {
    /// Where it serves: `nats://HOST:PORT`.
    pub fn local(&self) -> &str {
        &self.local
    }

    /// The instance subject of each service of this process, in the registry's order.
    pub fn instance_subjects(&self) -> &[String] {
        &self.instances
    }

    /// The NATS client it serves with.
    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    /// Stops serving, and returns once the NATS server knows: a call made next goes to
    /// another process of the queue group, or finds no server. (Dropping the listener
    /// stops it too, without waiting.) Calls that are running are abandoned.
    ///
    /// # Errors
    ///
    /// [`RemotingError::Disconnected`] when the NATS server cannot be told now (it then
    /// forgets the subscriptions when the connection ends).
    pub async fn stop(mut self) -> Result<(), RemotingError> {
        self.shut();
        for task in self.tasks.drain(..) {
            // Each unsubscribes before it ends.
            let _ = task.await;
        }
        self.client
            .flush()
            .await
            .map_err(|e| RemotingError::Disconnected {
                reason: format!(
                    "cannot tell the NATS server at {} that the services stopped: {e}",
                    self.local
                ),
            })
    }

    fn shut(&mut self) {
        let _ = self.stopping.send(true);
        if let Some(sweeper) = self.sweeper.take() {
            sweeper.abort();
        }
        for service in self.services.drain(..) {
            // `stop` only signals the endpoints and aborts the service's task: it is ready
            // at once.
            let _ = futures::FutureExt::now_or_never(service.stop());
        }
    }
}

impl Drop for NatsListener {
    fn drop(&mut self) {
        self.shut();
    }
}

fn connect_error(target: &str, e: impl std::fmt::Display) -> RemotingError {
    RemotingError::Connect {
        target: target.to_owned(),
        source: std::io::Error::other(e.to_string()),
    }
}

/// Serves every service and client-activated type of `server` on the NATS server at `url`
/// (`nats://HOST:PORT`; a path after it is ignored), beside whatever other channels it
/// has. Must be called within a tokio runtime.
///
/// # Errors
///
/// [`RemotingError::Connect`] when the NATS server cannot be reached or refuses the
/// services, [`RemotingError::InvalidUrl`] for a bad URL or an application or service
/// name that cannot be a subject token (letters, digits, `-`, `_`).
///
/// # Examples
///
/// See the [module documentation](super).
pub async fn serve(
    server: &RemotingServer,
    url: &str,
    options: &NatsOptions,
) -> Result<NatsListener, RemotingError> {
    let client = options
        .connect(url)
        .await
        .map_err(|e| crate::remoting_error(url, e))?;
    let base = crate::NatsUrl::parse(url)
        .map_err(|e| crate::remoting_error(url, e))?
        .base();
    serve_client(server, client, &base).await
}

/// As [`serve`], on a NATS client already connected; `base` (`nats://HOST:PORT`) is what
/// [`NatsListener::local`] says.
///
/// # Errors
///
/// As [`serve`].
pub async fn serve_client(
    server: &RemotingServer,
    client: async_nats::Client,
    base: &str,
) -> Result<NatsListener, RemotingError> {
    let registry = server.registry();
    let app = registry.app().to_owned();
    let bad_name = |name: &str| RemotingError::InvalidUrl {
        url: format!("{base}/{app}/{name}"),
        reason: format!(
            "`{name}` cannot be a NATS subject token: use letters, digits, `-` and `_`"
        ),
    };
    if !is_token(&app) {
        return Err(bad_name(&app));
    }
    let max = server
        .max_message()
        .min(client.server_info().max_payload.max(1));
    let mut listener = NatsListener {
        tasks: Vec::new(),
        sweeper: None,
        stopping: tokio::sync::watch::Sender::new(false),
        services: Vec::new(),
        instances: Vec::new(),
        local: base.to_owned(),
        client: client.clone(),
    };
    let host = hostname();
    for entry in registry.listing() {
        if !is_token(&entry.uri) {
            return Err(bad_name(&entry.uri));
        }
        let path = format!("{app}/{}", entry.uri);
        let mode = match entry.mode {
            Mode::SingleCall => "single_call",
            Mode::Singleton => "singleton",
            Mode::ClientActivated => "client_activated",
        };
        let methods: Vec<&str> = entry.interface.methods.iter().map(|m| m.name).collect();
        let metadata = HashMap::from([
            ("procwire.app".to_owned(), app.clone()),
            ("procwire.service".to_owned(), entry.uri.clone()),
            ("procwire.mode".to_owned(), mode.to_owned()),
            (
                "procwire.interface".to_owned(),
                entry.interface.name.to_owned(),
            ),
            ("procwire.methods".to_owned(), methods.join(",")),
            (
                "procwire.interface_json".to_owned(),
                serde_json::to_string(&entry.interface).unwrap_or_default(),
            ),
            ("procwire.pid".to_owned(), std::process::id().to_string()),
            ("procwire.host".to_owned(), host.clone()),
        ]);
        let failed = |e| connect_error(base, format!("cannot add the service `{path}`: {e}"));
        let service = client
            .service_builder()
            .description(format!("procwire remoting: {mode} `{path}`"))
            .metadata(metadata)
            .queue_group(&app)
            .start(nats_service_name(&path), super::SERVICE_VERSION.to_owned())
            .await
            .map_err(failed)?;
        let id = service.info().await.id;
        let instance = instance_subject(&path, &id);
        let calls = service
            .endpoint_builder()
            .name("call")
            .add(service_subject(&path))
            .await
            .map_err(failed)?;
        let direct = service
            .endpoint_builder()
            .name("instance")
            .metadata(HashMap::from([(
                "procwire.instance".to_owned(),
                "calls on this process's client-activated objects".to_owned(),
            )]))
            .add(instance.clone())
            .await
            .map_err(failed)?;
        let answerer = Arc::new(Answerer {
            server: server.clone(),
            client: client.clone(),
            instance: instance.clone(),
            max,
            slots: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
        });
        for endpoint in [calls, direct] {
            listener.tasks.push(tokio::spawn(
                Arc::clone(&answerer).run(endpoint, listener.stopping.subscribe()),
            ));
        }
        listener.services.push(service);
        listener.instances.push(instance);
    }
    listener.sweeper = Some(sweeper(server));
    // The subscriptions are at the NATS server when this returns: a call made next
    // reaches this process.
    client
        .flush()
        .await
        .map_err(|e| connect_error(base, format!("cannot reach the NATS server: {e}")))?;
    Ok(listener)
}

/// Drops expired client-activated objects, as the tcp and pipe listeners do.
fn sweeper(server: &RemotingServer) -> JoinHandle<()> {
    let server = server.clone();
    tokio::spawn(async move {
        let every = server.registry().sweep_interval();
        loop {
            tokio::time::sleep(every).await;
            server.registry().sweep(Instant::now());
        }
    })
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_default()
}

/// Answers the requests of one service (both its endpoints).
struct Answerer {
    server: RemotingServer,
    client: async_nats::Client,
    instance: String,
    max: usize,
    /// At most [`MAX_IN_FLIGHT`] calls of the service run at once in this process; beyond
    /// them up to [`MAX_WAITING`] requests of each endpoint wait for one to end, and the
    /// rest are answered [`RemoteErrorKind::Busy`].
    slots: Arc<Semaphore>,
}

impl Answerer {
    async fn run(
        self: Arc<Self>,
        mut endpoint: async_nats::service::endpoint::Endpoint,
        mut stopping: tokio::sync::watch::Receiver<bool>,
    ) {
        // Requests taken from the subscription while every call slot is busy, oldest first.
        let mut waiting = VecDeque::new();
        loop {
            tokio::select! {
                biased;
                // `true` is the only change; a dropped sender means stop too. Neither a
                // wait for a slot nor a flood of requests holds up a stop.
                _ = stopping.changed() => {
                    let _ = endpoint.stop().await;
                    return;
                }
                slot = Arc::clone(&self.slots).acquire_owned(), if !waiting.is_empty() => {
                    let Ok(slot) = slot else { return };
                    if let Some(request) = waiting.pop_front() {
                        Arc::clone(&self).start(request, slot);
                    }
                }
                request = endpoint.next() => {
                    let Some(request) = request else {
                        // The service was stopped under the endpoint: unsubscribe now, in
                        // order before the listener's flush (dropping the subscription
                        // would tell the server later, and a call could still be routed
                        // here meanwhile).
                        let _ = endpoint.stop().await;
                        return;
                    };
                    let free = if waiting.is_empty() {
                        Arc::clone(&self.slots).try_acquire_owned().ok()
                    } else {
                        None
                    };
                    match free {
                        Some(slot) => Arc::clone(&self).start(request, slot),
                        None if waiting.len() < MAX_WAITING => waiting.push_back(request),
                        None => self.refuse_busy(request).await,
                    }
                }
            }
        }
    }

    /// Runs the call of `request` in a task of its own (a slow call holds up no other),
    /// holding `slot` until it is answered.
    fn start(self: Arc<Self>, request: Request, slot: OwnedSemaphorePermit) {
        tokio::spawn(async move {
            self.answer(request).await;
            drop(slot);
        });
    }

    /// Answers `request` [`RemoteErrorKind::Busy`] without running it: every call slot is
    /// taken and [`MAX_WAITING`] more requests wait for one.
    async fn refuse_busy(&self, request: Request) {
        let decoded = match wire::decode_request(&request.message.payload, self.max) {
            Ok(r) => r,
            Err(e) => return refuse_bad_frame(request, e).await,
        };
        let busy = RemoteError::new(
            RemoteErrorKind::Busy,
            format!(
                "the server runs {MAX_IN_FLIGHT} calls of this service and {MAX_WAITING} more \
                 wait; retry later"
            ),
        );
        let frame = encode_answer(
            Response {
                id: decoded.id,
                outcome: Err(busy),
            },
            self.max,
        );
        if let Err(e) = request.respond(Ok(frame.into())).await {
            tracing::debug!("nats: cannot send a busy answer: {e}");
        }
    }

    async fn answer(&self, request: Request) {
        let Some(reply) = request.message.reply.clone() else {
            tracing::debug!("nats: ignoring a request without a reply subject");
            return;
        };
        let decoded = match wire::decode_request(&request.message.payload, self.max) {
            Ok(r) => r,
            Err(e) => return refuse_bad_frame(request, e).await,
        };
        let activation = matches!(decoded.op, Op::Activate { .. });
        let id = decoded.id;
        let peer = Peer {
            channel: "nats",
            ..Peer::default()
        };
        let outcome = self.server.handle(decoded, peer).await;
        let activated = activation && outcome.is_ok();
        let frame = encode_answer(Response { id, outcome }, self.max);
        let sent = if activated {
            // The proxy sends every later request on this object to this process.
            let mut headers = async_nats::HeaderMap::new();
            headers.insert(INSTANCE_HEADER, self.instance.as_str());
            self.client
                .publish_with_headers(reply, headers, frame.into())
                .await
        } else {
            request.respond(Ok(frame.into())).await
        };
        if let Err(e) = sent {
            tracing::debug!("nats: cannot send an answer: {e}");
        }
    }
}

/// Answers a request that is not a procwire request frame with the Services API's error
/// [`BAD_FRAME`].
async fn refuse_bad_frame(request: Request, e: impl std::fmt::Display) {
    tracing::warn!(subject = %request.message.subject, "nats: not a request frame: {e}");
    let error = async_nats::service::error::Error {
        status: format!("not a procwire request frame: {e}"),
        code: BAD_FRAME,
    };
    let _ = request.respond(Err(error)).await;
}

/// The response frame, or a `MessageTooLarge` error in its place when it does not fit.
fn encode_answer(response: Response, max: usize) -> Vec<u8> {
    match wire::encode_response(&response, max) {
        Ok(f) => f,
        Err(e) => {
            let err = Response {
                id: response.id,
                outcome: Err(RemoteError::new(
                    RemoteErrorKind::MessageTooLarge,
                    format!("the result is too large: {e} (the NATS server's max_payload or the server's max_message)"),
                )),
            };
            wire::encode_response(&err, max).expect("a short error always fits")
        }
    }
}
