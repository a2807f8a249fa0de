//! The pipe layer's stateful decoders of peer bytes, for the fuzz targets under `fuzz/`.
//!
//! Built only with `--cfg fuzzing` (which `cargo fuzz` sets): this is not part of the API.
//! It wraps the frame reader and the handshake assembler that the blocking and the tokio
//! connections use, unchanged, so that a target can drive them with any bytes, cut into
//! any reads, with any errors in between.

use std::io;

use super::{framing, handshake};
use crate::wire::{ProtocolError, Request, Response};

/// Why a receive did not produce a message (the reader's own error, made public).
#[derive(Debug)]
pub enum RecvError {
    /// The read closure failed (including `WouldBlock` and `TimedOut`).
    Io(io::Error),
    /// The peer closed the connection; `clean` when that was between frames.
    Eof {
        /// Where in the stream it was.
        detail: String,
        /// Whether no frame was left unfinished.
        clean: bool,
    },
    /// The peer sent a close frame with this reason.
    Closed(String),
    /// The peer sent bytes that break the protocol.
    Protocol(ProtocolError),
}

impl From<framing::RecvError> for RecvError {
    fn from(e: framing::RecvError) -> RecvError {
        match e {
            framing::RecvError::Io(e) => RecvError::Io(e),
            framing::RecvError::Eof { detail, clean } => RecvError::Eof { detail, clean },
            framing::RecvError::Closed(reason) => RecvError::Closed(reason),
            framing::RecvError::Protocol(e) => RecvError::Protocol(e),
        }
    }
}

/// The receiving half of a message-type connection, as the connections use it.
#[derive(Debug)]
pub struct FrameReader(framing::FrameReader);

impl FrameReader {
    /// A reader for messages of at most `max` bytes, buffering up to `buffer` bytes (at
    /// least a close frame's worth).
    pub fn new(max: u32, buffer: usize) -> FrameReader {
        FrameReader(framing::FrameReader::new(max, buffer))
    }

    /// Whether a message has been started but not yet fully delivered.
    pub fn in_message(&self) -> bool {
        self.0.in_message()
    }

    /// Copies up to `out.len()` bytes of the current message into `out`: the bytes
    /// copied and whether that was the end of the message (`recv_into` of a connection).
    ///
    /// # Errors
    ///
    /// A [`RecvError`]; a retryable one leaves the reader ready to go on.
    pub fn recv_into<F>(&mut self, out: &mut [u8], read: &mut F) -> Result<(usize, bool), RecvError>
    where
        F: FnMut(&mut [u8]) -> io::Result<usize>,
    {
        self.0.recv_into(out, read).map_err(RecvError::from)
    }

    /// Receives the rest of the current message, or the next one, whole (`recv` of a
    /// connection). `read_spare` must append at most `v.capacity() - v.len()` bytes to
    /// `v` and return how many it appended.
    ///
    /// # Errors
    ///
    /// As [`FrameReader::recv_into`].
    pub fn recv_message<F, G>(
        &mut self,
        read: &mut F,
        read_spare: &mut G,
    ) -> Result<Vec<u8>, RecvError>
    where
        F: FnMut(&mut [u8]) -> io::Result<usize>,
        G: FnMut(&mut Vec<u8>) -> io::Result<usize>,
    {
        self.0
            .recv_message(read, read_spare)
            .map_err(RecvError::from)
    }

    /// Reads message payload as a byte stream (`Read` of a connection in byte read mode):
    /// up to `out.len()` bytes, stopping at the end of a message when `stop_at_boundary`
    /// is set. Returns 0 only when the peer closed the pipe between messages.
    ///
    /// # Errors
    ///
    /// As [`FrameReader::recv_into`].
    pub fn read_bytes<F>(
        &mut self,
        out: &mut [u8],
        stop_at_boundary: bool,
        read: &mut F,
    ) -> Result<usize, RecvError>
    where
        F: FnMut(&mut [u8]) -> io::Result<usize>,
    {
        self.0
            .read_bytes(out, stop_at_boundary, read)
            .map_err(RecvError::from)
    }
}

/// Accumulates one handshake message, as both connection APIs read it.
pub struct Assembler<T>(handshake::Assembler<T>);

impl<T> std::fmt::Debug for Assembler<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Assembler")
    }
}

impl Assembler<Request> {
    /// An assembler of the client's [`Request`] (the server side).
    pub fn request() -> Assembler<Request> {
        Assembler(handshake::Assembler::new(handshake::REQUEST))
    }
}

impl Assembler<Response> {
    /// An assembler of the server's [`Response`] (the client side).
    pub fn response() -> Assembler<Response> {
        Assembler(handshake::Assembler::new(handshake::RESPONSE))
    }
}

impl<T> Assembler<T> {
    /// Where to read the next bytes: exactly as many as the message still needs.
    pub fn spare(&mut self) -> &mut [u8] {
        self.0.spare()
    }

    /// Records that `n` bytes were read into [`Assembler::spare`]; the message once
    /// complete, or the protocol error as soon as the bytes show one.
    pub fn filled(&mut self, n: usize) -> Option<Result<T, ProtocolError>> {
        self.0.filled(n)
    }
}

/// Reads a [`Request`] with `read`, as a blocking server does.
///
/// # Errors
///
/// The closure's error, or `UnexpectedEof` before the request is complete.
pub fn read_request(
    read: impl FnMut(&mut [u8]) -> io::Result<usize>,
) -> io::Result<Result<Request, ProtocolError>> {
    handshake::read_blocking(read, handshake::REQUEST)
}

/// Reads a [`Response`] with `read`, as a blocking client does.
///
/// # Errors
///
/// As [`read_request`].
pub fn read_response(
    read: impl FnMut(&mut [u8]) -> io::Result<usize>,
) -> io::Result<Result<Response, ProtocolError>> {
    handshake::read_blocking(read, handshake::RESPONSE)
}
