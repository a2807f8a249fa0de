//! The shared-memory data path of local pipes.
//!
//! The handshake runs on the socket as always (access check, credentials). A client that
//! asks for shared memory ([`crate::wire::REQUEST_FLAG_SHARED_MEMORY`]) gets a
//! [`DataPath`] record after the accepting response; a server that offers it attaches two
//! descriptors: an anonymous memory file, sealed so that its size can never change (no name
//! anywhere that another user could plant, squat or truncate), and one end of a fresh
//! socket pair. The region holds one ring per direction ([`ring`]); the connection's socket
//! and the pair are the doorbells of the two rings ([`wait`]), and their end-of-file is how
//! each side learns that the other closed or died.
//!
//! docs/protocol.md, section 13, describes the negotiation and the layout byte by byte.

mod link;
mod region;
pub(crate) mod ring;
mod wait;

#[cfg(all(loom, test))]
mod loom_tests;

use std::io;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;

use link::End;
pub(crate) use link::{Borrowed, Link, LinkError, Loan};
use region::SharedRegion;

use crate::wire::{DataPath, ProtocolError, DATA_PATH_LEN};

/// The size of each ring a server offers unless told otherwise: 1 MiB.
pub const DEFAULT_RING_SIZE: usize = 1 << 20;

/// The ring sizes a server may offer: powers of two from 4 KiB to 1 GiB.
pub const RING_SIZES: std::ops::RangeInclusive<usize> = ring::MIN_CAPACITY..=ring::MAX_CAPACITY;

/// Server side, after the accepting response: creates the region and the second doorbell,
/// passes them to the client with the [`DataPath::SharedMemory`] record, and returns this
/// side of the link. `limit` is the largest message a client may send (0 on a byte pipe).
///
/// # Errors
///
/// When the region or the socket pair cannot be made (the caller may then still send
/// [`DataPath::Socket`]), or the record cannot be sent.
pub(crate) fn offer(stream: &UnixStream, capacity: usize, limit: u32) -> io::Result<Link> {
    let (region, memory) = SharedRegion::create(capacity)?;
    let (ours, theirs) = UnixStream::pair()?;
    let rx_bell = stream.try_clone()?;
    crate::sys::send_with_fds(
        stream,
        &DataPath::SharedMemory.encode(),
        &[memory.as_fd(), theirs.as_fd()],
    )?;
    Link::new(region, End::Server, ours, rx_bell, limit)
}

/// Why a client could not take the server's answer about the data path.
#[derive(Debug)]
pub(crate) enum OfferError {
    /// The record or the descriptors were wrong.
    Protocol(ProtocolError),
    /// The socket failed or the region could not be mapped.
    Io(io::Error),
}

/// Client side, after the accepting response to a request that asked for shared memory:
/// reads the [`DataPath`] record; `Some` link when the server offered shared memory.
/// `limit` is the largest message the server may send (0 on a byte pipe).
pub(crate) fn take_offer(stream: &UnixStream, limit: u32) -> Result<Option<Link>, OfferError> {
    let bad = |problem: String| {
        OfferError::Protocol(ProtocolError::BadField {
            field: "shared-memory offer",
            problem,
        })
    };
    let mut record = [0u8; DATA_PATH_LEN];
    let mut fds = crate::sys::recv_with_fds(stream, &mut record).map_err(|e| {
        if e.kind() == io::ErrorKind::InvalidData {
            bad(e.to_string())
        } else {
            OfferError::Io(e)
        }
    })?;
    let path = DataPath::decode(&record).map_err(OfferError::Protocol)?;
    match (path, fds.len()) {
        (DataPath::Socket, 0) => Ok(None),
        (DataPath::SharedMemory, 2) => {
            let bell = fds.pop().expect("two descriptors");
            let memory = fds.pop().expect("two descriptors");
            let stream_type = rustix::net::sockopt::socket_type(&bell);
            if stream_type.ok() != Some(rustix::net::SocketType::STREAM) {
                return Err(bad("the doorbell is not a stream socket".into()));
            }
            let region = SharedRegion::open(memory)
                .map_err(|e| bad(format!("the memory region is unusable: {e}")))?;
            Link::new(
                region,
                End::Client,
                stream.try_clone().map_err(OfferError::Io)?,
                UnixStream::from(bell),
                limit,
            )
            .map(Some)
            .map_err(OfferError::Io)
        }
        (_, n) => Err(bad(format!("{n} descriptors came with a {path:?} record"))),
    }
}
