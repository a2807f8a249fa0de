//! Passing handles over a tokio pipe connection (`DuplicateHandle`), as the blocking API
//! does ([`crate::pipe::PipeConnection::send_handle`]): the same handle frame, record,
//! access checks and adoption; only the waiting differs.

use std::io;
use std::sync::atomic::Ordering;

use tokio::io::Interest;

use super::connection::{check_usable, would_block, PipeRecvHalf, PipeSendHalf};
use super::stream::AsyncStream;
use super::PipeConnection;
use crate::pipe::handle::{adopt, bad, claim_fds, handle_frame, handle_peer, outgoing};
use crate::pipe::{HandleRef, PassedHandle, PipeError};
use crate::security::{Access, PeerCredentials};

impl PipeConnection {
    /// Passes an open object to the process at the other end, as the blocking
    /// [`send_handle`](crate::pipe::PipeConnection::send_handle) does.
    ///
    /// # Errors
    ///
    /// As the blocking [`send_handle`](crate::pipe::PipeConnection::send_handle).
    pub async fn send_handle<'a>(
        &mut self,
        handle: impl Into<HandleRef<'a>>,
    ) -> Result<(), PipeError> {
        self.send.send_handle(handle).await
    }

    /// Passes an open object with less access than this handle has, as the blocking
    /// [`send_handle_with_access`](crate::pipe::PipeConnection::send_handle_with_access)
    /// does.
    ///
    /// # Errors
    ///
    /// As [`send_handle`](Self::send_handle), and [`PipeError::AccessDenied`] when
    /// `access` is more than this handle has.
    pub async fn send_handle_with_access<'a>(
        &mut self,
        handle: impl Into<HandleRef<'a>>,
        access: Access,
    ) -> Result<(), PipeError> {
        self.send.send_handle_with_access(handle, access).await
    }

    /// Receives the next frame as a passed handle, as the blocking
    /// [`recv_handle`](crate::pipe::PipeConnection::recv_handle) does. Cancel-safe: a
    /// dropped future takes nothing.
    ///
    /// # Errors
    ///
    /// As the blocking [`recv_handle`](crate::pipe::PipeConnection::recv_handle):
    /// [`PipeError::WrongFrame`] when the next frame is a message (nothing is taken).
    pub async fn recv_handle(&mut self) -> Result<PassedHandle, PipeError> {
        let mid_frame = self.send.writer.is_mid_frame();
        self.recv.recv_handle_with(mid_frame).await
    }
}

impl PipeSendHalf {
    /// As [`PipeConnection::send_handle`].
    ///
    /// # Errors
    ///
    /// As [`PipeConnection::send_handle`].
    pub async fn send_handle<'a>(
        &mut self,
        handle: impl Into<HandleRef<'a>>,
    ) -> Result<(), PipeError> {
        self.send_handle_as(handle.into(), None).await
    }

    /// As [`PipeConnection::send_handle_with_access`].
    ///
    /// # Errors
    ///
    /// As [`PipeConnection::send_handle_with_access`].
    pub async fn send_handle_with_access<'a>(
        &mut self,
        handle: impl Into<HandleRef<'a>>,
        access: Access,
    ) -> Result<(), PipeError> {
        self.send_handle_as(handle.into(), Some(access)).await
    }

    fn handle_peer(&self) -> Result<PeerCredentials, PipeError> {
        let local = matches!(*self.stream, AsyncStream::Unix(_));
        handle_peer(&self.info, local, self.shm.is_some())
    }

    async fn send_handle_as(
        &mut self,
        handle: HandleRef<'_>,
        wanted: Option<Access>,
    ) -> Result<(), PipeError> {
        check_usable(&self.info, &self.broken)?;
        self.info.check_can_write()?;
        self.info.check_messages()?;
        let peer = self.handle_peer()?;
        if self.writer.is_mid_frame() {
            return Err(bad(
                &self.info,
                "cannot be sent: a message's send was left half done".into(),
            ));
        }
        let (record, fd) = outgoing(&self.info, handle, wanted, &peer)?;
        let frame = handle_frame(&self.info, &record)?;
        let AsyncStream::Unix(local) = &*self.stream else {
            unreachable!("handle_peer accepts only Unix sockets");
        };
        let failed = |e: io::Error| self.info.io_failure("sending a handle failed", e);
        let sending = std::sync::Arc::clone(&self.sending);
        let _guard = sending.lock.lock().await;
        // The descriptor goes with the frame's first bytes; what the socket did not take
        // follows as plain bytes.
        let sent = loop {
            local.writable().await.map_err(failed)?;
            let tried = local.try_io(Interest::WRITABLE, || {
                crate::sys::send_some_with_fds(&**local, &frame, &[fd.as_fd()])
            });
            match tried {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(failed(e)),
            }
        };
        if sent < frame.len() {
            // Stays set if this future is dropped inside the frame.
            sending.mid_frame.store(true, Ordering::Release);
            self.broken = Some("a handle frame was sent only in part".into());
            self.stream
                .send_all(&frame[sent..])
                .await
                .map_err(|e| self.info.io_failure("sending a handle failed", e))?;
            self.broken = None;
            sending.mid_frame.store(false, Ordering::Release);
        }
        Ok(())
    }
}

impl PipeRecvHalf {
    /// As [`PipeConnection::recv_handle`].
    ///
    /// # Errors
    ///
    /// As [`PipeConnection::recv_handle`].
    pub async fn recv_handle(&mut self) -> Result<PassedHandle, PipeError> {
        self.recv_handle_with(false).await
    }

    /// `sender_mid_frame`: whether a close frame now would cut into a message being sent.
    pub(super) async fn recv_handle_with(
        &mut self,
        sender_mid_frame: bool,
    ) -> Result<PassedHandle, PipeError> {
        self.prepare()?;
        let local = matches!(*self.stream, AsyncStream::Unix(_));
        handle_peer(&self.info, local, self.shm.is_some())?;
        let record = loop {
            let stream = &self.stream;
            match self
                .reader
                .recv_handle(&mut |b: &mut [u8]| stream.try_read(b))
            {
                Ok(record) => break record,
                Err(e) if would_block(&e) => self.wait_readable().await?,
                Err(e) => return Err(self.fail(e, sender_mid_frame).await),
            }
        };
        let AsyncStream::Unix(local) = &*self.stream else {
            unreachable!("handle_peer accepts only Unix sockets");
        };
        let fds = claim_fds(
            &self.info,
            local.ledger(),
            self.reader.buffered_len(),
            &record,
        );
        adopt(&self.info, &record, fds)
    }
}
