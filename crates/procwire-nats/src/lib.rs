//! procwire across many hosts, on NATS: remoting services answered by server processes in
//! a queue group, described by the NATS Services API.
//!
//! procwire's own tcp and udp channels join two hosts; when services run on many, NATS
//! gives what they need and a home-made broker would not: load spread over server
//! processes, discovery, and an operator's tools. This crate is the bridge, on the
//! official async-nats client; nothing else in procwire depends on it, and
//! procwire-remoting knows nothing of NATS (this crate uses its public
//! [`Transport`](procwire_remoting::Transport) and
//! [`RemotingServer::handle`](procwire_remoting::RemotingServer::handle)).
//!
//! It does not run a NATS server, and it does not carry pipes.
//!
//! # Organization
//!
//! - [`NatsOptions`]: how to reach a NATS server (credentials, TLS).
//! - [`NatsUrl`]: `nats://HOST:PORT/…` URLs.
//! - [`mailslot`]: `nats://HOST:PORT/mailslot/Name` slots whose messages JetStream
//!   stores until their reader takes them, and `nats://HOST:PORT/mailslot/*/Name`
//!   broadcasts to every reader listening.
//! - [`remoting`]: the `nats://HOST:PORT/App/Service` channel for remoting servers and
//!   proxies, and [`remoting::list`] from the Services API.
//!
//! The subjects and payloads are in docs/protocol.md ("Remoting on NATS"), enough for a
//! client in any language.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod mailslot;
mod options;
pub mod remoting;
mod url;

pub use options::{ConnectError, NatsOptions};
pub use url::NatsUrl;

/// async-nats, as this crate uses it.
pub use async_nats;

/// A connection failure as the remoting error of the same meaning.
pub(crate) fn remoting_error(url: &str, e: ConnectError) -> procwire_remoting::RemotingError {
    use procwire_remoting::RemotingError;
    match e {
        ConnectError::InvalidUrl { url, reason } => RemotingError::InvalidUrl { url, reason },
        ConnectError::PlaintextNetwork { server } => {
            RemotingError::PlaintextNetwork { addr: server }
        }
        ConnectError::Credentials { source, .. } => RemotingError::Connect {
            target: url.to_owned(),
            source,
        },
        other => RemotingError::Connect {
            target: url.to_owned(),
            source: std::io::Error::other(other.to_string()),
        },
    }
}
