//! The seed's three remotable types, shared by the examples, the CLI and the tests.
//!
//! Application `RemotingService`, with `SingleCallService` ([`SingleCallObject`], a new
//! object per call), `SingletonService` ([`SingletonObject`], one object for everyone)
//! and the client-activated type `ClientActivatedObject` ([`ClientActivatedObject`],
//! constructed with a name).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::server::{Lease, Registry, RegistryBuilder};
use crate::{remote, CallContext, RemoteError};

/// The application name of the samples.
pub const APP: &str = "RemotingService";
/// The default TCP port of the samples.
pub const TCP_PORT: u16 = 6100;

/// What the three sample types can do.
#[remote]
pub trait SampleObject {
    /// Counts this call on the object; returns the count so far. A SingleCall object
    /// always answers 1.
    async fn count(&self) -> u64;
    /// A greeting naming the object's type and the server process.
    async fn hello(&self, name: String) -> String;
    /// Waits `ms` milliseconds, then returns them.
    async fn slow(&self, ms: u64) -> u64;
    /// The caller's process id, when the channel knows it (pipe).
    async fn caller_pid(&self) -> Option<u32>;
    /// Fails with an application error saying `message`.
    async fn fail(&self, message: String) -> Result<u64, RemoteError>;
}

async fn slow(ms: u64) -> u64 {
    tokio::time::sleep(Duration::from_millis(ms)).await;
    ms
}

fn caller_pid() -> Option<u32> {
    CallContext::current()
        .and_then(|c| c.peer.credentials)
        .map(|c| c.pid)
}

macro_rules! sample_impl {
    ($ty:ident, $what:expr) => {
        impl SampleObject for $ty {
            async fn count(&self) -> u64 {
                self.count.fetch_add(1, Ordering::SeqCst) + 1
            }
            async fn hello(&self, name: String) -> String {
                let what: String = $what(self);
                let what = if what.is_empty() {
                    stringify!($ty).to_owned()
                } else {
                    format!("{} {what}", stringify!($ty))
                };
                format!(
                    "Hello {name}, from {what} in process {}",
                    std::process::id()
                )
            }
            async fn slow(&self, ms: u64) -> u64 {
                slow(ms).await
            }
            async fn caller_pid(&self) -> Option<u32> {
                caller_pid()
            }
            async fn fail(&self, message: String) -> Result<u64, RemoteError> {
                Err(RemoteError::application(message))
            }
        }
    };
}

/// A SingleCall object: made for one call and dropped.
#[derive(Debug, Default)]
pub struct SingleCallObject {
    count: AtomicU64,
}

/// The Singleton object: one for every client, called concurrently; its state is an
/// atomic counter.
#[derive(Debug, Default)]
pub struct SingletonObject {
    count: AtomicU64,
}

/// A client-activated object: each activation makes one, with its own name and count.
#[derive(Debug)]
pub struct ClientActivatedObject {
    name: String,
    count: AtomicU64,
}

impl ClientActivatedObject {
    /// A new instance called `name`.
    pub fn new(name: String) -> ClientActivatedObject {
        ClientActivatedObject {
            name,
            count: AtomicU64::new(0),
        }
    }
}

sample_impl!(SingleCallObject, |_| String::new());
sample_impl!(SingletonObject, |_| String::new());
sample_impl!(ClientActivatedObject, |s: &ClientActivatedObject| format!(
    "`{}`",
    s.name
));

/// The sample registry: the three types under [`APP`], client-activated ones with
/// `lease`.
pub fn registry(lease: Lease) -> Registry {
    RegistryBuilder::new(APP)
        .single_call("SingleCallService", || {
            SampleObjectServer::new(SingleCallObject::default())
        })
        .singleton("SingletonService", || {
            SampleObjectServer::new(SingletonObject::default())
        })
        .client_activated("ClientActivatedObject", lease, |(name,): (String,)| {
            Ok(SampleObjectServer::new(ClientActivatedObject::new(name)))
        })
        .build()
}
