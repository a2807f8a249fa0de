//! Remote objects for procwire, after .NET Remoting: a server registers objects under an
//! application name, and clients call them through typed proxies as if they were local.
//!
//! - Activation modes: well-known **SingleCall** (a new object per call) and
//!   **Singleton** (one object shared by all clients, called concurrently: its methods
//!   take `&self`, so it protects its own state with atomics or locks), and
//!   **client-activated** types whose instances a client creates with constructor
//!   arguments and keeps alive with a [`Lease`].
//! - Channels, several at once on one server: `tcp` (loopback unless told otherwise),
//!   `pipe` (a procwire message-mode pipe; services can read the caller's kernel-verified
//!   credentials with [`CallContext::current`]) and `http` (JSON, for curl).
//! - Formatters: postcard (binary) and JSON. No type name ever travels: the server
//!   decodes only the argument types its services declare.
//! - Many calls in flight per connection (request ids), per-call deadlines, a maximum
//!   message size, and failures as a typed [`RemoteError`] (kind and message).
//!
//! It does not do: callbacks from server to client, marshal-by-reference arguments, or
//! distributed garbage collection beyond leases.
//!
//! # Organization
//!
//! - [`wire`]: the envelope, pure encode/decode.
//! - [`transport`]: the [`Transport`] trait; tcp, pipe and in-memory transports.
//! - [`server`]: the registry, leases and the server with its channels.
//! - [`client`]: connections, proxies, sponsors, blocking proxies.
//! - [`remote`]: the attribute that turns a trait into a server dispatch and clients.
//!
//! # Examples
//!
//! ```
//! use std::sync::atomic::{AtomicU64, Ordering};
//! use procwire_remoting::{remote, RegistryBuilder, RemotingServer, TcpChannel, Proxy};
//!
//! #[remote]
//! pub trait Counter {
//!     async fn add(&self, n: u64) -> u64;
//! }
//!
//! #[derive(Default)]
//! struct Shared(AtomicU64);
//!
//! impl Counter for Shared {
//!     async fn add(&self, n: u64) -> u64 {
//!         self.0.fetch_add(n, Ordering::SeqCst) + n
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), procwire_remoting::RemotingError> {
//! let registry = RegistryBuilder::new("App")
//!     .singleton("Counter", || CounterServer::new(Shared::default()))
//!     .build();
//! let server = RemotingServer::new(registry);
//! let listener = server.listen_tcp(TcpChannel::loopback(0))?;
//! let url = format!("{}/App/Counter", listener.local());
//! let counter = CounterClient::new(Proxy::connect(&url).await?);
//! assert_eq!(counter.add(2).await?, 2);
//! assert_eq!(counter.add(3).await?, 5);
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

// Lets `#[remote]` (which names `::procwire_remoting`) be used inside this crate.
extern crate self as procwire_remoting;

pub mod client;
pub mod error;
pub mod sample;
pub mod server;
pub mod service;
pub mod transport;
pub mod url;
pub mod wire;

pub use client::{BlockingProxy, Connection, Proxy, Sponsor};
pub use error::{RemoteError, RemoteErrorKind, RemotingError};
pub use procwire_macros::remote;
pub use server::{
    Lease, Listener, Mode, PipeChannel, Registry, RegistryBuilder, RemotingServer, TcpChannel,
};
pub use service::{CallContext, InterfaceDescription, ServiceObject};
pub use transport::{Peer, Transport};
pub use url::{RemoteUrl, Scheme};
pub use wire::Format;

/// rustls, as used by the TLS channels (feature `tls`, on by default).
#[cfg(feature = "tls")]
pub use tokio_rustls::rustls;

#[doc(hidden)]
pub mod __private {
    pub use serde;
    pub use serde_json;
}
