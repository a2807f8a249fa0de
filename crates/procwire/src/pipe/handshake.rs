//! Reading a handshake message without reading past it. The blocking loop lives here; the
//! tokio one in `tokio/`; both decode with [`crate::wire`].

use std::io;

use crate::wire::ProtocolError;

/// How a handshake message is measured and decoded ([`crate::wire::Request`] or
/// [`crate::wire::Response`]).
pub(crate) struct Shape<T> {
    pub(crate) wanted_len: fn(&[u8]) -> usize,
    pub(crate) decode: Decoder<T>,
}

/// A decoder of one handshake message: `Ok(None)` while more bytes are needed.
pub(crate) type Decoder<T> = fn(&[u8]) -> Result<Option<(T, usize)>, ProtocolError>;

/// The shape of a request.
pub(crate) const REQUEST: Shape<crate::wire::Request> = Shape {
    wanted_len: crate::wire::Request::wanted_len,
    decode: crate::wire::Request::decode,
};

/// The shape of a response.
pub(crate) const RESPONSE: Shape<crate::wire::Response> = Shape {
    wanted_len: crate::wire::Response::wanted_len,
    decode: crate::wire::Response::decode,
};

/// Accumulates a handshake message: says how many bytes to read next and decodes what has
/// arrived, reporting bad bytes as soon as they are seen.
pub(crate) struct Assembler<T> {
    shape: Shape<T>,
    buf: Vec<u8>,
    have: usize,
}

impl<T> Assembler<T> {
    pub(crate) fn new(shape: Shape<T>) -> Self {
        Assembler {
            shape,
            buf: Vec::with_capacity(64),
            have: 0,
        }
    }

    /// Where to read the next bytes: exactly as many as the message still needs, so that
    /// nothing after it is consumed.
    pub(crate) fn spare(&mut self) -> &mut [u8] {
        let want = (self.shape.wanted_len)(&self.buf[..self.have]).max(self.have + 1);
        self.buf.resize(want, 0);
        &mut self.buf[self.have..]
    }

    /// Records that `n` bytes were read into [`Assembler::spare`]; returns the message once
    /// complete, or the protocol error as soon as the bytes show one.
    pub(crate) fn filled(&mut self, n: usize) -> Option<Result<T, ProtocolError>> {
        self.have += n;
        match (self.shape.decode)(&self.buf[..self.have]) {
            Ok(None) => None,
            Ok(Some((value, _))) => Some(Ok(value)),
            Err(e) => Some(Err(e)),
        }
    }

    /// The error for an end of stream before the message was complete.
    pub(crate) fn eof_error(&self) -> io::Error {
        io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!(
                "the peer closed the connection after {} bytes of handshake",
                self.have
            ),
        )
    }
}

/// Reads one handshake message with `read`. An end of stream before the message is
/// complete is `UnexpectedEof`.
pub(crate) fn read_blocking<T>(
    mut read: impl FnMut(&mut [u8]) -> io::Result<usize>,
    shape: Shape<T>,
) -> io::Result<Result<T, ProtocolError>> {
    let mut assembler = Assembler::new(shape);
    loop {
        let n = match read(assembler.spare()) {
            Ok(0) => return Err(assembler.eof_error()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if let Some(result) = assembler.filled(n) {
            return Ok(result);
        }
    }
}

/// Whether a failed write of the request may mean the server already answered and closed
/// (it refuses a client the access list grants nothing without reading its request): the
/// answer is then still there to read.
pub(crate) fn answered_early(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
    )
}
