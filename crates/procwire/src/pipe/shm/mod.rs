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
#[cfg(feature = "tokio")]
pub(crate) mod reactor;
mod region;
pub(crate) mod ring;
mod wait;

#[cfg(all(loom, test))]
mod loom_tests;

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;

use link::End;
pub(crate) use link::{Borrowed, Link, LinkError, Loan, Receiver, Sender};
use region::SharedRegion;

use crate::wire::{DataPath, ProtocolError, DATA_PATH_LEN};

/// The size of each ring a server offers unless told otherwise: 1 MiB.
pub const DEFAULT_RING_SIZE: usize = 1 << 20;

/// The ring sizes a server may offer: powers of two from 4 KiB to 1 GiB.
pub const RING_SIZES: std::ops::RangeInclusive<usize> = ring::MIN_CAPACITY..=ring::MAX_CAPACITY;

/// The largest message a side takes from the ring on a pipe of type `mode` whose messages
/// are at most `max_message` (0, "the ring's size", on a byte pipe, whose records are
/// stream bytes).
pub(crate) fn limit_for(mode: crate::wire::PipeMode, max_message: u32) -> u32 {
    match mode {
        crate::wire::PipeMode::Message => max_message,
        crate::wire::PipeMode::Byte => 0,
    }
}

/// This side of a shared-memory connection before it is put to use: the region and the
/// two doorbells.
#[derive(Debug)]
pub(crate) struct Parts {
    region: SharedRegion,
    end: End,
    tx_bell: UnixStream,
    rx_bell: UnixStream,
    limit: u32,
}

impl Parts {
    /// For the blocking API, whose handles share the connection.
    pub(crate) fn into_link(self) -> Link {
        Link::new(
            self.region,
            self.end,
            self.tx_bell,
            self.rx_bell,
            self.limit,
        )
    }

    /// For the tokio API, whose halves each own one side.
    #[cfg(feature = "tokio")]
    pub(crate) fn into_halves(self) -> (link::Sender, link::Receiver) {
        link::halves(
            self.region,
            self.end,
            self.tx_bell,
            self.rx_bell,
            self.limit,
        )
    }
}

/// A second descriptor of the connection's socket, as a doorbell.
fn bell_of(stream: BorrowedFd<'_>) -> io::Result<UnixStream> {
    Ok(UnixStream::from(stream.try_clone_to_owned()?))
}

/// Server side, after the accepting response: creates the region and the second doorbell,
/// passes them to the client on the connection's socket `stream` with the
/// [`DataPath::SharedMemory`] record, and returns this side. `limit` is the largest message
/// a client may send (0 on a byte pipe).
///
/// # Errors
///
/// When the region or the socket pair cannot be made (the caller may then still send
/// [`DataPath::Socket`]), or the record cannot be sent (`WouldBlock` on a non-blocking
/// socket whose buffer is full: nothing was sent).
pub(crate) fn offer(stream: BorrowedFd<'_>, capacity: usize, limit: u32) -> io::Result<Parts> {
    let (region, memory) = SharedRegion::create(capacity)?;
    let (ours, theirs) = UnixStream::pair()?;
    let rx_bell = bell_of(stream)?;
    crate::sys::send_with_fds(
        stream,
        &DataPath::SharedMemory.encode(),
        &[memory.as_fd(), theirs.as_fd()],
    )?;
    Ok(Parts {
        region,
        end: End::Server,
        tx_bell: ours,
        rx_bell,
        limit,
    })
}

/// Why a client could not take the server's answer about the data path.
#[derive(Debug)]
pub(crate) enum OfferError {
    /// The record or the descriptors were wrong.
    Protocol(ProtocolError),
    /// The socket failed or the region could not be mapped.
    Io(io::Error),
}

fn bad_offer(problem: String) -> OfferError {
    OfferError::Protocol(ProtocolError::BadField {
        field: "shared-memory offer",
        problem,
    })
}

/// The server's [`DataPath`] record and the descriptors that came with it.
pub(crate) type OfferRecord = ([u8; DATA_PATH_LEN], Vec<OwnedFd>);

/// Client side: reads the [`DataPath`] record (as [`crate::sys::recv_with_fds`] does:
/// `WouldBlock` on a non-blocking socket with nothing to read yet).
///
/// # Errors
///
/// As [`crate::sys::recv_with_fds`].
pub(crate) fn receive_offer(stream: BorrowedFd<'_>) -> io::Result<OfferRecord> {
    let mut record = [0u8; DATA_PATH_LEN];
    let fds = crate::sys::recv_with_fds(stream, &mut record)?;
    Ok((record, fds))
}

/// Client side: what a failure to read the record means.
pub(crate) fn offer_failed(e: io::Error) -> OfferError {
    if e.kind() == io::ErrorKind::InvalidData {
        bad_offer(e.to_string())
    } else {
        OfferError::Io(e)
    }
}

/// Client side, after the accepting response to a request that asked for shared memory and
/// the record read by [`receive_offer`]: `Some` parts when the server offered shared
/// memory, checked before use. `limit` is the largest message the server may send (0 on a
/// byte pipe).
pub(crate) fn take_offer(
    stream: BorrowedFd<'_>,
    (record, mut fds): OfferRecord,
    limit: u32,
) -> Result<Option<Parts>, OfferError> {
    let path = DataPath::decode(&record).map_err(OfferError::Protocol)?;
    match (path, fds.len()) {
        (DataPath::Socket, 0) => Ok(None),
        (DataPath::SharedMemory, 2) => {
            let bell = fds.pop().expect("two descriptors");
            let memory = fds.pop().expect("two descriptors");
            let stream_type = rustix::net::sockopt::socket_type(&bell);
            if stream_type.ok() != Some(rustix::net::SocketType::STREAM) {
                return Err(bad_offer("the doorbell is not a stream socket".into()));
            }
            let region = SharedRegion::open(memory)
                .map_err(|e| bad_offer(format!("the memory region is unusable: {e}")))?;
            Ok(Some(Parts {
                region,
                end: End::Client,
                tx_bell: bell_of(stream).map_err(OfferError::Io)?,
                rx_bell: UnixStream::from(bell),
                limit,
            }))
        }
        (_, n) => Err(bad_offer(format!(
            "{n} descriptors came with a {path:?} record"
        ))),
    }
}
