//! Named pipes: a named, duplex (or one-way), byte- or message-type channel between a
//! server with many instances and its clients, on this machine or across machines.
//!
//! The Windows concepts map as follows:
//!
//! | Windows | procwire |
//! |---|---|
//! | `CreateNamedPipe` | [`PipeOptions::create`] → [`PipeServer`] |
//! | `ConnectNamedPipe` | [`PipeServer::accept`] |
//! | `CreateFile` + `WaitNamedPipe` | [`ClientOptions::open`] (waits while busy) |
//! | `PIPE_ACCESS_INBOUND` / `OUTBOUND` / `DUPLEX` | [`Direction`] |
//! | `PIPE_TYPE_BYTE` / `MESSAGE`, `PIPE_READMODE_*` | [`PipeMode`](crate::wire::PipeMode) |
//! | `ReadFile` / `WriteFile` | [`PipeConnection::recv`] / [`PipeConnection::send`], or `Read`/`Write` |
//! | `ERROR_MORE_DATA` | [`PipeConnection::recv_into`] returning an incomplete [`MessagePart`] |
//! | `TransactNamedPipe` | [`PipeConnection::transact`] |
//! | `CallNamedPipe` | [`call`], [`ClientOptions::call`] |
//! | `PeekNamedPipe` | [`PipeConnection::peek`] → [`PeekInfo`] |
//! | `SetNamedPipeHandleState` | [`PipeConnection::set_read_mode`], [`PipeConnection::set_nonblocking`] |
//! | `DisconnectNamedPipe` | [`PipeConnection::disconnect`] |
//! | `GetNamedPipeClientProcessId` | [`PipeConnection::peer_credentials`] |
//! | `GetNamedPipeServerProcessId` | [`PipeConnection::server_credentials`] |
//! | `GetNamedPipeClientComputerName` | [`PipeConnection::peer_addr`] |
//! | `DuplicateHandle` into the peer's process | [`PipeConnection::send_handle`] / [`PipeConnection::recv_handle`] → [`PassedHandle`] |
//!
//! Under the hood a local pipe is a Unix stream socket in the namespace's `pipe/`
//! directory; a remote one is a TCP connection. Both start with the handshake of
//! [`crate::wire`] and are documented in `docs/protocol.md`. A local connection may then
//! move its data to shared memory ([`PipeOptions::shared_memory`],
//! [`ClientOptions::shared_memory`]): one ring per direction in a sealed region only the two
//! processes hold, with [`PipeConnection::loan`] and [`PipeConnection::recv_borrowed`] to
//! send and receive without copying.
//!
//! A socket file left by a crashed server is reclaimed by the next server of that name: a
//! live server holds a lock on the name, which the kernel releases when it dies.

mod admission;
mod call;
mod client;
mod connection;
mod endpoint;
mod error;
mod framing;
mod handle;
// The frame reader, the handshake assembler and the shm ring, for the fuzz targets (`cargo
// fuzz` sets the cfg).
#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzzing;
mod handshake;
mod info;
mod options;
mod server;
pub(crate) mod shm;
mod stream;
#[cfg(feature = "tls")]
mod tls;
#[cfg(feature = "tokio")]
pub mod tokio;
mod zero_copy;

pub use call::call;
pub use connection::PipeConnection;
pub use endpoint::{exists, list};
pub use error::PipeError;
pub use handle::{HandleRef, PassedHandle};
pub use info::{MessagePart, PeekInfo};
pub use options::{ClientOptions, Direction, PipeOptions, DEFAULT_MAX_MESSAGE, DEFAULT_TCP_PORT};
pub use server::PipeServer;
pub use shm::{DEFAULT_RING_SIZE, RING_SIZES};
pub use zero_copy::{Loan, Received};
