//! Remoting on NATS: a `nats://HOST:PORT/App/Service` channel for procwire-remoting's
//! servers and proxies.
//!
//! Each service of a [`RemotingServer`](procwire_remoting::RemotingServer) answers on the
//! request/reply subject `procwire.App.Service`, in the queue group `App`: several server
//! processes (on several hosts) serving the same application share the calls, NATS
//! handing each request to one of them. The payload of a request is the same request
//! frame the tcp channel carries (without its length prefix), and the reply is the
//! response frame (docs/protocol.md, section "Remoting on NATS").
//!
//! - **SingleCall** services behave as on one host.
//! - A **Singleton** is one object *per server process*: with three processes in the
//!   group there are three singletons, and consecutive calls may reach different ones.
//!   State that must be shared belongs in a store all of them reach.
//! - **Client-activated** objects live in the process that created them: that process
//!   answers the activation with its own instance subject (`procwire.App.Service.ID`,
//!   header [`INSTANCE_HEADER`]), and the proxy sends every later call, renewal and
//!   release of that object there, not to the queue group. Leases work as on tcp; when
//!   the process is gone, calls on its objects get
//!   [`ObjectDisconnected`](procwire_remoting::RemoteErrorKind::ObjectDisconnected).
//!
//! Every procwire service is also a service of the NATS Services API (`$SRV.PING`,
//! `$SRV.INFO`, `$SRV.STATS`), named `App-Service`, with its mode, methods and instance
//! subject in its metadata: a NATS operator's tools (`nats micro ls`) see it, and
//! [`list`] (`procwire remoting ls nats://…`) reads it.
//!
//! Deadlines, sizes and errors are those of the other channels: a call ends at its
//! deadline (with [`RemotingError::Timeout`](procwire_remoting::RemotingError::Timeout))
//! when its server is slow or dies meanwhile; a call nobody serves fails at once with
//! [`UnknownService`](procwire_remoting::RemoteErrorKind::UnknownService) ("no server
//! answers …"); a request larger than the smaller of the proxy's maximum and the NATS
//! server's `max_payload` fails with
//! [`MessageTooLarge`](procwire_remoting::RemotingError::MessageTooLarge) before it is
//! sent.
//!
//! # Examples
//!
//! ```no_run
//! use procwire_nats::{remoting, NatsOptions};
//! use procwire_remoting::sample::{self, SampleObjectClient};
//! use procwire_remoting::{Lease, RemotingServer};
//!
//! # async fn run() -> Result<(), procwire_remoting::RemotingError> {
//! let options = NatsOptions::new();
//! let server = RemotingServer::new(sample::registry(Lease::default()));
//! let _listener = remoting::serve(&server, "nats://127.0.0.1:4222", &options).await?;
//!
//! let url = "nats://127.0.0.1:4222/RemotingService/SingletonService";
//! let service = SampleObjectClient::new(remoting::connect(url, &options).await?);
//! let greeting = service.hello("NATS".into()).await?;
//! # let _ = greeting; Ok(()) }
//! ```

mod client;
mod listing;
mod server;

pub use client::{activate, connect, connection, NatsTransport};
pub use listing::{list, ServiceInstance};
pub use server::{serve, serve_client, NatsListener, MAX_WAITING};

/// The first token of every procwire subject.
pub const SUBJECT_PREFIX: &str = "procwire";

/// The header of an activation's reply that names the instance subject of the process
/// that holds the new object.
pub const INSTANCE_HEADER: &str = "Procwire-Instance";

/// The version every procwire service gives the NATS Services API: this crate's.
pub const SERVICE_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The request/reply subject of the well-known service (or client-activated type)
/// `App/Service`: `procwire.App.Service`.
///
/// # Examples
///
/// ```
/// assert_eq!(procwire_nats::remoting::service_subject("App/Counter"), "procwire.App.Counter");
/// ```
pub fn service_subject(path: &str) -> String {
    format!("{SUBJECT_PREFIX}.{}", path.replace('/', "."))
}

/// The subject of one server process's instance of `App/Service`:
/// `procwire.App.Service.ID`, where ID is its NATS service id.
pub fn instance_subject(path: &str, id: &str) -> String {
    format!("{}.{id}", service_subject(path))
}

/// The NATS Services API name of `App/Service`: `App-Service`.
pub fn nats_service_name(path: &str) -> String {
    path.replace('/', "-")
}

/// Whether `name` may be an application or service name on NATS: one subject token of
/// letters, digits, `-` and `_` (the Services API's alphabet).
pub(crate) fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}
