//! procwire: inter-process communication for Rust on Linux, after the classic Windows
//! techniques.
//!
//! This crate is the local layer and the wire format. It needs no async runtime; the
//! `tokio` feature adds async versions of the pipe API.
//!
//! # Organization
//!
//! - [`name`]: one syntax for every object name (`HelloWorld`, `Global\X`,
//!   `\\.\pipe\X`, `\\host:port\pipe\X`) and the namespace directories behind them.
//! - [`security`]: access rights, access lists and peer credentials.
//! - [`wire`]: the handshake and frames, as pure encode/decode.
//! - [`pipe`]: named pipes, blocking, and with `tokio` in [`pipe::tokio`].
//! - [`mapping`]: file mapping: named shared memory and named mappings of files, with views.
//! - [`sync`]: named sync objects: a robust mutex, a semaphore and an event.
//! - [`mailslot`]: mailslots, local and over UDP.
//! - [`registry`]: names on disk for every kind of object: ownership, liveness, the stale
//!   sweep and one listing of everything; the [`NamedObject`](registry::NamedObject) trait.
//!
//! Remoting lives in its own crate.
//!
//! # Examples
//!
//! ```no_run
//! use procwire::pipe::{PipeConnection, PipeServer};
//!
//! // In the server process:
//! let server = PipeServer::create(r"\\.\pipe\HelloWorld")?;
//! let mut client = server.accept()?;
//! let request = client.recv()?;
//! client.send(b"Default response from server")?;
//!
//! // In the client process:
//! let mut pipe = PipeConnection::open(r"\\.\pipe\HelloWorld")?;
//! pipe.send(b"Default request from client")?;
//! let response = pipe.recv()?;
//! # Ok::<(), procwire::pipe::PipeError>(())
//! ```

#![deny(missing_docs)]
// The loom build (`--cfg loom`) runs only the models of the shared-memory protocols; parts
// of the crate that the models do not reach are compiled there without a user.
#![cfg_attr(loom, allow(dead_code, unused_imports))]

pub mod mailslot;
pub mod mapping;
pub mod name;
pub mod pipe;
pub mod registry;
pub mod security;
#[cfg(feature = "tls")]
pub use rustls;
pub mod sync;
pub mod wire;

mod shim;
mod sys;
