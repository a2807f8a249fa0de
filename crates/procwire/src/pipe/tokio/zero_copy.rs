//! Sending and receiving without copying on the tokio API, as the blocking API does
//! ([`crate::pipe::Loan`], [`crate::pipe::Received`]): room lent in the ring and messages
//! read in place on a shared-memory connection; memory of their own and one copy on a
//! socket, or for a message too long for one piece of the ring.

use std::ops::{Deref, DerefMut};

use super::connection::{shm_failure, PipeRecvHalf, PipeSendHalf};
use super::PipeConnection;
use crate::pipe::shm::{self, Borrowed};
use crate::pipe::PipeError;

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
    Ring(shm::Loan<&'a mut shm::Sender>),
    Copy {
        half: &'a mut PipeSendHalf,
        buf: Vec<u8>,
    },
}

impl Loan<'_> {
    /// Sends the message.
    ///
    /// # Errors
    ///
    /// As [`PipeConnection::send`] (a loan in the ring cannot fail any more: its room is
    /// already taken).
    pub async fn send(self) -> Result<(), PipeError> {
        match self.inner {
            LoanInner::Ring(loan) => {
                loan.commit();
                Ok(())
            }
            LoanInner::Copy { half, buf } => half.send(&buf).await,
        }
    }
}

impl Deref for Loan<'_> {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match &self.inner {
            LoanInner::Ring(loan) => loan.bytes(),
            LoanInner::Copy { buf, .. } => buf,
        }
    }
}

impl DerefMut for Loan<'_> {
    fn deref_mut(&mut self) -> &mut [u8] {
        match &mut self.inner {
            LoanInner::Ring(loan) => loan.bytes_mut(),
            LoanInner::Copy { buf, .. } => buf,
        }
    }
}

/// A message received by [`PipeConnection::recv_borrowed`]: it dereferences to the
/// message's bytes, which on a shared-memory connection stay in the ring (no copy) until
/// this is dropped; the half receives nothing else meanwhile.
///
/// The bytes in the ring are shared with the peer: parse them as the untrusted input they
/// are, as with the blocking [`crate::pipe::Received`].
#[derive(Debug)]
pub struct Received<'a> {
    inner: ReceivedInner<'a>,
}

#[derive(Debug)]
enum ReceivedInner<'a> {
    Ring(Borrowed<&'a mut shm::Receiver>),
    Owned(Vec<u8>),
}

impl Received<'_> {
    /// Whether the bytes are read in place in the ring (not copied).
    pub fn is_in_place(&self) -> bool {
        matches!(self.inner, ReceivedInner::Ring(Borrowed::InPlace { .. }))
    }
}

impl Deref for Received<'_> {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match &self.inner {
            ReceivedInner::Ring(borrowed) => borrowed.bytes(),
            ReceivedInner::Owned(message) => message,
        }
    }
}

impl PipeConnection {
    /// Lends room for a message of `len` bytes, as the blocking
    /// [`loan`](crate::pipe::PipeConnection::loan) does: write it in place, then
    /// [`Loan::send`]. Waits while the ring is full; cancel-safe (nothing is taken before
    /// the room is).
    ///
    /// # Errors
    ///
    /// As [`send`](Self::send): [`PipeError::MessageTooLarge`] before anything is lent.
    pub async fn loan(&mut self, len: usize) -> Result<Loan<'_>, PipeError> {
        self.send.loan(len).await
    }

    /// Receives the next whole message and lends it in place, as the blocking
    /// [`recv_borrowed`](crate::pipe::PipeConnection::recv_borrowed) does. Cancel-safe.
    ///
    /// # Errors
    ///
    /// As [`recv`](Self::recv).
    pub async fn recv_borrowed(&mut self) -> Result<Received<'_>, PipeError> {
        self.recv.recv_borrowed().await
    }
}

impl PipeSendHalf {
    /// As [`PipeConnection::loan`].
    ///
    /// # Errors
    ///
    /// As [`PipeConnection::loan`].
    pub async fn loan(&mut self, len: usize) -> Result<Loan<'_>, PipeError> {
        self.check_sendable([len])?;
        let in_ring = self.shm.as_ref().is_some_and(|shm| len <= shm.max_loan());
        if !in_ring {
            return Ok(Loan {
                inner: LoanInner::Copy {
                    half: self,
                    buf: vec![0; len],
                },
            });
        }
        let PipeSendHalf {
            shm, info, broken, ..
        } = self;
        let shm = shm.as_mut().expect("a shared-memory connection");
        match shm.loan(len).await {
            Ok(loan) => Ok(Loan {
                inner: LoanInner::Ring(loan),
            }),
            // The sender already ended the connection if the peer broke the ring.
            Err(e) => Err(shm_failure(info, broken, e, || {})),
        }
    }
}

impl PipeRecvHalf {
    /// As [`PipeConnection::recv_borrowed`].
    ///
    /// # Errors
    ///
    /// As [`PipeConnection::recv_borrowed`].
    pub async fn recv_borrowed(&mut self) -> Result<Received<'_>, PipeError> {
        self.prepare()?;
        if self.shm.is_none() {
            let message = self.recv().await?;
            return Ok(Received {
                inner: ReceivedInner::Owned(message),
            });
        }
        let PipeRecvHalf {
            shm, info, broken, ..
        } = self;
        let shm = shm.as_mut().expect("a shared-memory connection");
        match shm.recv_borrowed().await {
            Ok(borrowed) => Ok(Received {
                inner: ReceivedInner::Ring(borrowed),
            }),
            // The receiver already ended the connection if the peer broke the ring.
            Err(e) => Err(shm_failure(info, broken, e, || {})),
        }
    }
}
