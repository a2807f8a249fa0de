//! Sending and receiving without copying: room lent in the ring ([`Loan`]) and messages
//! read in place ([`Received`]). On a socket connection, or for a message too long for one
//! piece of the ring, both fall back to memory of their own and one copy, so code written
//! for them works on every pipe.

use std::ops::{Deref, DerefMut};
use std::sync::MutexGuard;

use super::shm;
use super::{PipeConnection, PipeError};

/// Room for one message, lent by [`PipeConnection::loan`]: write the message into it (it
/// dereferences to `&mut [u8]` of the asked length), then [`send`](Self::send) it. On a
/// shared-memory connection the bytes are written straight into the ring and `send`
/// publishes them without a copy; dropping the loan sends nothing.
#[derive(Debug)]
pub struct Loan<'a> {
    inner: LoanInner<'a>,
}

#[derive(Debug)]
enum LoanInner<'a> {
    Ring(shm::Loan<MutexGuard<'a, shm::Sender>>),
    Copy {
        conn: &'a mut PipeConnection,
        buf: Vec<u8>,
    },
}

impl<'a> Loan<'a> {
    #[inline]
    pub(crate) fn in_ring(loan: shm::Loan<MutexGuard<'a, shm::Sender>>) -> Loan<'a> {
        Loan {
            inner: LoanInner::Ring(loan),
        }
    }

    pub(crate) fn copied(conn: &'a mut PipeConnection, len: usize) -> Loan<'a> {
        Loan {
            inner: LoanInner::Copy {
                conn,
                buf: vec![0; len],
            },
        }
    }

    /// Sends the message.
    ///
    /// # Errors
    ///
    /// As [`PipeConnection::send`] (a loan in the ring cannot fail any more: its room is
    /// already taken).
    #[inline]
    pub fn send(self) -> Result<(), PipeError> {
        match self.inner {
            LoanInner::Ring(loan) => {
                loan.commit();
                Ok(())
            }
            LoanInner::Copy { conn, buf } => conn.send(&buf),
        }
    }
}

impl Deref for Loan<'_> {
    type Target = [u8];

    #[inline]
    fn deref(&self) -> &[u8] {
        match &self.inner {
            LoanInner::Ring(loan) => loan.bytes(),
            LoanInner::Copy { buf, .. } => buf,
        }
    }
}

impl DerefMut for Loan<'_> {
    #[inline]
    fn deref_mut(&mut self) -> &mut [u8] {
        match &mut self.inner {
            LoanInner::Ring(loan) => loan.bytes_mut(),
            LoanInner::Copy { buf, .. } => buf,
        }
    }
}

/// A message received by [`PipeConnection::recv_borrowed`]: it dereferences to the
/// message's bytes, which on a shared-memory connection stay in the ring (no copy) until
/// this is dropped; the connection receives nothing else meanwhile.
///
/// The bytes in the ring are shared with the peer. A peer that keeps the protocol never
/// touches them until they are dropped; one that does not could change them while you read,
/// so parse them as the untrusted input they are (and copy what must stay stable).
#[derive(Debug)]
pub struct Received<'a> {
    inner: ReceivedInner<'a>,
}

#[derive(Debug)]
enum ReceivedInner<'a> {
    Ring(shm::Borrowed<MutexGuard<'a, shm::Receiver>>),
    Owned(Vec<u8>),
}

impl<'a> Received<'a> {
    #[inline]
    pub(crate) fn in_ring(borrowed: shm::Borrowed<MutexGuard<'a, shm::Receiver>>) -> Received<'a> {
        Received {
            inner: ReceivedInner::Ring(borrowed),
        }
    }

    pub(crate) fn owned(message: Vec<u8>) -> Received<'a> {
        Received {
            inner: ReceivedInner::Owned(message),
        }
    }

    /// Whether the message is read in place in shared memory (no copy was made).
    pub fn is_in_place(&self) -> bool {
        matches!(
            &self.inner,
            ReceivedInner::Ring(shm::Borrowed::InPlace { .. })
        )
    }
}

impl Deref for Received<'_> {
    type Target = [u8];

    #[inline]
    fn deref(&self) -> &[u8] {
        match &self.inner {
            ReceivedInner::Ring(b) => b.bytes(),
            ReceivedInner::Owned(v) => v,
        }
    }
}
