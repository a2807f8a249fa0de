//! What the `#[remote]` macro implements: [`ServiceObject`], plus descriptions of
//! interfaces and the call context.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde::Serialize;

use crate::error::RemoteError;
use crate::transport::Peer;
use crate::wire::Format;

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The future of one dispatched call: the encoded result or an error.
pub type CallFuture = BoxFuture<'static, Result<Vec<u8>, RemoteError>>;

/// A remotable object: decodes the declared arguments of a method, runs it, encodes the
/// result. Implemented by the `XxxServer` wrapper that `#[remote]` generates.
pub trait ServiceObject: Send + Sync + 'static {
    /// Decodes `args` for `method` in `format` and returns the call to run.
    ///
    /// # Errors
    ///
    /// [`RemoteErrorKind::UnknownMethod`](crate::RemoteErrorKind::UnknownMethod) or
    /// [`RemoteErrorKind::BadArguments`](crate::RemoteErrorKind::BadArguments).
    fn dispatch(
        self: Arc<Self>,
        method: &str,
        format: Format,
        args: &[u8],
    ) -> Result<CallFuture, RemoteError>;

    /// The interface this object serves.
    fn interface(&self) -> InterfaceDescription;

    /// The interface objects of this type serve.
    fn describe() -> InterfaceDescription
    where
        Self: Sized;
}

/// One argument of a method, as GET on the HTTP channel lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArgDescription {
    /// The argument's name (the JSON key).
    pub name: &'static str,
    /// Its Rust type, as written in the trait.
    #[serde(rename = "type")]
    pub ty: &'static str,
}

/// One method of an interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MethodDescription {
    /// The method name.
    pub name: &'static str,
    /// Its arguments, in order.
    pub args: Vec<ArgDescription>,
    /// Its result type.
    pub returns: &'static str,
}

/// A remote interface: its trait name and methods.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InterfaceDescription {
    /// The trait's name.
    pub name: &'static str,
    /// Its methods.
    pub methods: Vec<MethodDescription>,
}

/// Facts about the call being served, readable from inside a method with
/// [`CallContext::current`].
#[derive(Debug, Clone, Default)]
pub struct CallContext {
    /// Who called.
    pub peer: Peer,
    /// The client-activated instance called, if any.
    pub object: Option<u64>,
}

tokio::task_local! {
    static CONTEXT: CallContext;
}

impl CallContext {
    /// The context of the call running on this task; `None` outside a remote call.
    ///
    /// # Examples
    ///
    /// ```
    /// // Inside a method of a service served on the pipe channel:
    /// if let Some(ctx) = procwire_remoting::CallContext::current() {
    ///     println!("called by {:?}", ctx.peer.credentials);
    /// }
    /// ```
    pub fn current() -> Option<CallContext> {
        CONTEXT.try_with(Clone::clone).ok()
    }

    pub(crate) async fn scope<F: Future>(self, f: F) -> F::Output {
        CONTEXT.scope(self, f).await
    }
}
