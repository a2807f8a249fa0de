//! The tokio API of named pipes (feature `tokio`).
//!
//! The same pipes, handshake and framing as the blocking API — the protocol logic is
//! shared, only the I/O differs: [`PipeOptions::create_async`](crate::pipe::PipeOptions::create_async)
//! gives a [`PipeServer`] whose [`accept`](PipeServer::accept) is awaited, and
//! [`ClientOptions::open_async`](crate::pipe::ClientOptions::open_async) a
//! [`PipeConnection`] with `send(..).await` and `recv().await`, plus `AsyncRead` and
//! `AsyncWrite`.
//!
//! # Examples
//!
//! ```no_run
//! use procwire::pipe::ClientOptions;
//!
//! # async fn run() -> Result<(), procwire::pipe::PipeError> {
//! let mut pipe = ClientOptions::new().open_async(r"\\.\pipe\HelloWorld").await?;
//! pipe.send(b"Default request from client").await?;
//! let answer = pipe.recv().await?;
//! # Ok(()) }
//! ```

mod call;
mod client;
mod connection;
mod handle;
mod server;
mod stream;
#[cfg(feature = "tls")]
mod tls;

pub use call::call;
pub use connection::{PipeConnection, PipeRecvHalf, PipeSendHalf};
pub use server::PipeServer;
