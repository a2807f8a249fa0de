//! The registry: an application's well-known services, client-activated types and their
//! live instances with leases.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{RemoteError, RemoteErrorKind};
use crate::service::{InterfaceDescription, ServiceObject};
use crate::wire::{decode_value, Format};

/// How a well-known service is activated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Mode {
    /// A new object for every call: no state survives a call.
    SingleCall,
    /// One object shared by every client and called concurrently.
    Singleton,
    /// An instance per activation, owned by the client that created it, kept by a lease.
    ClientActivated,
}

/// The lease of client-activated instances (and leased singletons).
///
/// An instance lives `initial` after its creation; each call extends it to at least
/// `renew_on_call` from then; a client (a sponsor) can extend it explicitly. When the
/// time is up the instance is dropped, and calls on it get
/// [`RemoteErrorKind::ObjectDisconnected`]. As in .NET: 5 minutes and 2 minutes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    /// The lifetime of a new instance.
    pub initial: Duration,
    /// The least time left after each call.
    pub renew_on_call: Duration,
}

impl Default for Lease {
    fn default() -> Self {
        Lease {
            initial: Duration::from_secs(300),
            renew_on_call: Duration::from_secs(120),
        }
    }
}

impl Lease {
    /// A lease of `initial`, renewed to `renew_on_call` by calls.
    pub fn new(initial: Duration, renew_on_call: Duration) -> Lease {
        Lease {
            initial,
            renew_on_call,
        }
    }
}

type Factory = Arc<dyn Fn() -> Arc<dyn ServiceObject> + Send + Sync>;
type Constructor =
    Arc<dyn Fn(Format, &[u8]) -> Result<Arc<dyn ServiceObject>, RemoteError> + Send + Sync>;

struct Leased {
    object: Arc<dyn ServiceObject>,
    expires: Instant,
}

enum Service {
    SingleCall {
        factory: Factory,
    },
    Singleton {
        factory: Factory,
        lease: Option<Lease>,
        slot: Mutex<Option<Leased>>,
    },
}

struct ActivatedType {
    constructor: Constructor,
    lease: Lease,
}

struct Instance {
    type_name: String,
    leased: Leased,
    lease: Lease,
}

/// The description of one registered service or type, for listings.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceListing {
    /// The URI under the application.
    pub uri: String,
    /// How it is activated.
    pub mode: Mode,
    /// Its interface.
    pub interface: InterfaceDescription,
}

/// Builds a [`Registry`]: the application name and what it serves. See the crate
/// example.
pub struct RegistryBuilder {
    app: String,
    services: HashMap<String, Service>,
    types: HashMap<String, ActivatedType>,
    listing: Vec<ServiceListing>,
}

impl std::fmt::Debug for RegistryBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryBuilder")
            .field("app", &self.app)
            .field("services", &self.listing)
            .finish()
    }
}

impl RegistryBuilder {
    /// An empty application called `app`.
    pub fn new(app: impl Into<String>) -> RegistryBuilder {
        RegistryBuilder {
            app: app.into(),
            services: HashMap::new(),
            types: HashMap::new(),
            listing: Vec::new(),
        }
    }

    fn list(&mut self, uri: &str, mode: Mode, interface: InterfaceDescription) {
        self.listing.push(ServiceListing {
            uri: uri.to_owned(),
            mode,
            interface,
        });
    }

    /// Registers a well-known SingleCall service: `factory` makes a new object per call.
    pub fn single_call<S, F>(mut self, uri: &str, factory: F) -> Self
    where
        S: ServiceObject,
        F: Fn() -> S + Send + Sync + 'static,
    {
        self.list(uri, Mode::SingleCall, S::describe());
        let factory: Factory = Arc::new(move || Arc::new(factory()));
        self.services
            .insert(uri.to_owned(), Service::SingleCall { factory });
        self
    }

    /// Registers a well-known Singleton service with an infinite lease: one object,
    /// made by `factory` on the first call, shared by every client. Its methods run
    /// concurrently (they take `&self`): the type protects its own state.
    pub fn singleton<S, F>(self, uri: &str, factory: F) -> Self
    where
        S: ServiceObject,
        F: Fn() -> S + Send + Sync + 'static,
    {
        self.singleton_inner(uri, None, factory)
    }

    /// As [`singleton`](Self::singleton), with a lease: when unused for the lease time,
    /// the object is dropped and the next call gets a fresh one.
    pub fn leased_singleton<S, F>(self, uri: &str, lease: Lease, factory: F) -> Self
    where
        S: ServiceObject,
        F: Fn() -> S + Send + Sync + 'static,
    {
        self.singleton_inner(uri, Some(lease), factory)
    }

    fn singleton_inner<S, F>(mut self, uri: &str, lease: Option<Lease>, factory: F) -> Self
    where
        S: ServiceObject,
        F: Fn() -> S + Send + Sync + 'static,
    {
        self.list(uri, Mode::Singleton, S::describe());
        let factory: Factory = Arc::new(move || Arc::new(factory()));
        let slot = Mutex::new(None);
        self.services.insert(
            uri.to_owned(),
            Service::Singleton {
                factory,
                lease,
                slot,
            },
        );
        self
    }

    /// Registers a client-activated type: each activation decodes constructor arguments
    /// of type `A` (declared here, never named on the wire) and makes an instance kept
    /// alive by `lease`.
    pub fn client_activated<A, S, F>(mut self, name: &str, lease: Lease, constructor: F) -> Self
    where
        A: DeserializeOwned,
        S: ServiceObject,
        F: Fn(A) -> Result<S, RemoteError> + Send + Sync + 'static,
    {
        self.list(name, Mode::ClientActivated, S::describe());
        let constructor: Constructor = Arc::new(move |format, bytes| {
            let args: A = decode_value(format, bytes)?;
            Ok(Arc::new(constructor(args)?) as Arc<dyn ServiceObject>)
        });
        self.types
            .insert(name.to_owned(), ActivatedType { constructor, lease });
        self
    }

    /// The finished registry.
    pub fn build(self) -> Registry {
        let seed = RandomState::new().hash_one(std::process::id());
        Registry {
            app: self.app,
            services: self.services,
            types: self.types,
            listing: self.listing,
            instances: Mutex::new(HashMap::new()),
            next: AtomicU64::new(1),
            ids: RandomState::new(),
            seed,
        }
    }
}

fn far_future(after: Option<Duration>) -> Instant {
    let now = Instant::now();
    match after {
        Some(d) => now + d,
        None => now + Duration::from_secs(100 * 365 * 24 * 3600),
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// An application's services, types and live instances. Shared by all channels of a
/// server.
pub struct Registry {
    app: String,
    services: HashMap<String, Service>,
    types: HashMap<String, ActivatedType>,
    listing: Vec<ServiceListing>,
    instances: Mutex<HashMap<u64, Instance>>,
    next: AtomicU64,
    ids: RandomState,
    seed: u64,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("app", &self.app)
            .field("services", &self.listing)
            .finish()
    }
}

fn unknown(what: &str) -> RemoteError {
    RemoteError::new(RemoteErrorKind::UnknownService, what)
}

impl Registry {
    /// The application name.
    pub fn app(&self) -> &str {
        &self.app
    }

    /// What the application serves.
    pub fn listing(&self) -> &[ServiceListing] {
        &self.listing
    }

    /// Splits `App/Service`, checking the application.
    fn local_uri<'a>(&self, uri: &'a str) -> Result<&'a str, RemoteError> {
        match uri.split_once('/') {
            Some((app, rest)) if app == self.app => Ok(rest),
            Some((app, _)) => Err(unknown(&format!(
                "no application `{app}` here (this server serves `{}`)",
                self.app
            ))),
            None => Err(unknown(&format!("`{uri}` is not of the form App/Service"))),
        }
    }

    /// The object that serves a call on `uri` (and `object`, for client-activated ones).
    ///
    /// # Errors
    ///
    /// [`RemoteErrorKind::UnknownService`] or [`RemoteErrorKind::ObjectDisconnected`].
    pub fn resolve(
        &self,
        uri: &str,
        object: Option<u64>,
        now: Instant,
    ) -> Result<Arc<dyn ServiceObject>, RemoteError> {
        let name = self.local_uri(uri)?;
        if let Some(id) = object {
            let mut instances = lock(&self.instances);
            let disconnected = || {
                RemoteError::new(
                    RemoteErrorKind::ObjectDisconnected,
                    format!("object {id:x} of `{uri}` is disconnected: its lease ended or it was released; activate a new one"),
                )
            };
            let Some(inst) = instances.get_mut(&id) else {
                return Err(disconnected());
            };
            if inst.type_name != name {
                return Err(disconnected());
            }
            if inst.leased.expires <= now {
                instances.remove(&id);
                return Err(disconnected());
            }
            inst.leased.expires = inst.leased.expires.max(now + inst.lease.renew_on_call);
            return Ok(Arc::clone(&inst.leased.object));
        }
        match self.services.get(name) {
            Some(Service::SingleCall { factory }) => Ok(factory()),
            Some(Service::Singleton {
                factory,
                lease,
                slot,
            }) => {
                let mut slot = lock(slot);
                let live = slot.as_ref().is_some_and(|l| l.expires > now);
                if !live {
                    *slot = Some(Leased {
                        object: factory(),
                        expires: far_future(lease.map(|l| l.initial)),
                    });
                }
                let leased = slot.as_mut().expect("just filled");
                if let Some(lease) = lease {
                    leased.expires = leased.expires.max(now + lease.renew_on_call);
                }
                Ok(Arc::clone(&leased.object))
            }
            None if self.types.contains_key(name) => Err(unknown(&format!(
                "`{uri}` is a client-activated type: activate it first"
            ))),
            None => Err(unknown(&format!("no service `{name}` in `{}`", self.app))),
        }
    }

    /// Creates an instance of the client-activated type `uri`; returns its id.
    ///
    /// # Errors
    ///
    /// [`RemoteErrorKind::UnknownService`], [`RemoteErrorKind::BadArguments`] or the
    /// constructor's own error.
    pub fn activate(
        &self,
        uri: &str,
        format: Format,
        args: &[u8],
        now: Instant,
    ) -> Result<u64, RemoteError> {
        let name = self.local_uri(uri)?;
        let Some(ty) = self.types.get(name) else {
            return Err(unknown(&format!(
                "no client-activated type `{name}` in `{}`",
                self.app
            )));
        };
        let object = (ty.constructor)(format, args)?;
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        // Ids are hard to guess (but they are not a security boundary).
        let id = self.ids.hash_one((self.seed, n)) | 1;
        lock(&self.instances).insert(
            id,
            Instance {
                type_name: name.to_owned(),
                leased: Leased {
                    object,
                    expires: now + ty.lease.initial,
                },
                lease: ty.lease,
            },
        );
        Ok(id)
    }

    /// Extends the lease of instance `id` to at least `extend` from `now`; returns the
    /// time left.
    ///
    /// # Errors
    ///
    /// [`RemoteErrorKind::ObjectDisconnected`] when it is gone.
    pub fn renew(&self, id: u64, extend: Duration, now: Instant) -> Result<Duration, RemoteError> {
        let mut instances = lock(&self.instances);
        match instances.get_mut(&id) {
            Some(inst) if inst.leased.expires > now => {
                inst.leased.expires = inst.leased.expires.max(now + extend);
                Ok(inst.leased.expires - now)
            }
            Some(_) => {
                instances.remove(&id);
                Err(RemoteError::new(
                    RemoteErrorKind::ObjectDisconnected,
                    format!("object {id:x} is disconnected: its lease ended"),
                ))
            }
            None => Err(RemoteError::new(
                RemoteErrorKind::ObjectDisconnected,
                format!("object {id:x} is disconnected"),
            )),
        }
    }

    /// Drops instance `id` now; returns whether it was there.
    pub fn release(&self, id: u64) -> bool {
        lock(&self.instances).remove(&id).is_some()
    }

    /// Drops every expired instance and leased singleton; returns how many instances
    /// remain.
    pub fn sweep(&self, now: Instant) -> usize {
        let dropped: Vec<Instance>;
        let left;
        {
            let mut instances = lock(&self.instances);
            let dead: Vec<u64> = instances
                .iter()
                .filter(|(_, i)| i.leased.expires <= now)
                .map(|(id, _)| *id)
                .collect();
            dropped = dead.iter().filter_map(|id| instances.remove(id)).collect();
            left = instances.len();
        }
        if !dropped.is_empty() {
            tracing::debug!(count = dropped.len(), "leases ended");
        }
        drop(dropped);
        for service in self.services.values() {
            if let Service::Singleton {
                lease: Some(_),
                slot,
                ..
            } = service
            {
                let mut slot = lock(slot);
                if slot.as_ref().is_some_and(|l| l.expires <= now) {
                    slot.take();
                }
            }
        }
        left
    }

    /// How often [`sweep`](Self::sweep) should run: a quarter of the shortest lease,
    /// between 10 ms and 1 s.
    pub fn sweep_interval(&self) -> Duration {
        let shortest = self
            .types
            .values()
            .map(|t| t.lease.initial.min(t.lease.renew_on_call))
            .min()
            .unwrap_or(Duration::from_secs(4));
        (shortest / 4).clamp(Duration::from_millis(10), Duration::from_secs(1))
    }
}
