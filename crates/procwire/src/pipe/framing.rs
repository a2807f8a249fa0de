//! Message framing state, shared by the blocking and the tokio API.
//!
//! [`FrameReader`] and [`FrameWriter`] keep every byte of protocol state, and do their I/O
//! through a closure the caller passes in: a blocking `read`, or tokio's `try_read` that
//! may fail with `WouldBlock`. Any I/O error leaves the state consistent, so a timeout or a
//! not-yet-readable socket never loses a byte: the next call carries on where this one
//! stopped.

use std::io::{self, IoSlice};

use super::info::PeekInfo;
use crate::wire::{self, FrameHeader, ProtocolError, FRAME_HEADER_LEN};

/// Why a receive did not produce a message.
#[derive(Debug)]
pub(crate) enum RecvError {
    /// The I/O closure failed (including `WouldBlock` and `TimedOut`).
    Io(io::Error),
    /// The peer closed the connection. `detail` says where it was in the stream.
    Eof { detail: String, clean: bool },
    /// The peer sent a close frame with this reason.
    Closed(String),
    /// The peer sent bytes that break the protocol.
    Protocol(ProtocolError),
    /// The next frame is not what the receive asked for (a handle where a message was
    /// awaited, or the other way round); nothing was taken.
    Unexpected(&'static str),
}

impl From<io::Error> for RecvError {
    fn from(e: io::Error) -> Self {
        RecvError::Io(e)
    }
}

#[derive(Debug, Clone, Copy)]
enum State {
    /// Between messages: the next bytes are a header.
    Header,
    /// Inside a message of `total` bytes, `remaining` of which are still to come.
    Payload { total: usize, remaining: usize },
}

/// The receiving half of a message-type connection.
#[derive(Debug)]
pub(crate) struct FrameReader {
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    max: u32,
    state: State,
    /// The part of a message that [`FrameReader::recv_message`] has received so far.
    pending: Vec<u8>,
    /// The last message was large: read the next header alone, so that no payload of a
    /// large message passes through `buf`.
    exact_headers: bool,
}

fn is_retryable(e: &RecvError) -> bool {
    matches!(e, RecvError::Io(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted))
}

/// An end of stream: the next read finds it again, so bytes received before it can be
/// delivered first.
fn is_eof(e: &RecvError) -> bool {
    matches!(e, RecvError::Eof { .. })
}

impl FrameReader {
    /// A reader for messages of at most `max` bytes, buffering up to `buffer` bytes.
    pub(crate) fn new(max: u32, buffer: usize) -> FrameReader {
        FrameReader {
            buf: vec![0; buffer.max(FRAME_HEADER_LEN + wire::MAX_CLOSE_REASON as usize)]
                .into_boxed_slice(),
            start: 0,
            end: 0,
            max,
            state: State::Header,
            pending: Vec::new(),
            exact_headers: false,
        }
    }

    fn buffered(&self) -> usize {
        self.end - self.start
    }

    /// Whether bytes that arrived are waiting in the buffer.
    pub(crate) fn has_buffered(&self) -> bool {
        self.buffered() > 0
    }

    /// Whether a message has been started but not yet fully delivered.
    pub(crate) fn in_message(&self) -> bool {
        matches!(self.state, State::Payload { .. })
    }

    /// Whether bytes have been received from the peer and not yet handed out (or a message
    /// is under way): what a transaction must not mistake for its answer.
    pub(crate) fn has_unread(&self) -> bool {
        self.buffered() > 0 || self.in_message() || !self.pending.is_empty()
    }

    /// What is waiting, without taking anything: the bytes in this reader followed by
    /// `queued`, the bytes still in the kernel (copied with `MSG_PEEK`). Walks the frame
    /// headers; stops at a close frame, at bytes that break the protocol (the receive that
    /// reaches them reports it) and where the bytes end.
    pub(crate) fn peek(&self, queued: &[u8]) -> PeekInfo {
        let buffered = &self.buf[self.start..self.end];
        let len = buffered.len() + queued.len();
        let byte_at = |i: usize| match buffered.get(i) {
            Some(b) => *b,
            None => queued[i - buffered.len()],
        };
        let mut info = PeekInfo {
            bytes_available: self.pending.len(),
            ..PeekInfo::default()
        };
        let mut pos = 0;
        if let State::Payload { total, remaining } = self.state {
            info.bytes_available += remaining.min(len);
            info.message_len = Some(total);
            info.bytes_left_in_message = self.pending.len() + remaining;
            pos = remaining;
        }
        while pos + FRAME_HEADER_LEN <= len {
            let header = std::array::from_fn(|i| byte_at(pos + i));
            let Ok(FrameHeader::Message(n)) = FrameHeader::decode(header, self.max) else {
                break;
            };
            let n = n as usize;
            if info.message_len.is_none() {
                info.message_len = Some(n);
                info.bytes_left_in_message = n;
            }
            pos += FRAME_HEADER_LEN;
            info.bytes_available += n.min(len - pos);
            pos += n;
        }
        info
    }

    /// Reads more bytes into the buffer. An end of stream becomes [`RecvError::Eof`].
    fn fill<F>(&mut self, read: &mut F) -> Result<(), RecvError>
    where
        F: FnMut(&mut [u8]) -> io::Result<usize>,
    {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.end == self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let n = read(&mut self.buf[self.end..])?;
        if n == 0 {
            return Err(self.eof());
        }
        self.end += n;
        Ok(())
    }

    /// Reads at most `n` more bytes into the buffer.
    fn fill_exact<F>(&mut self, n: usize, read: &mut F) -> Result<(), RecvError>
    where
        F: FnMut(&mut [u8]) -> io::Result<usize>,
    {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.end + n > self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let got = read(&mut self.buf[self.end..self.end + n])?;
        if got == 0 {
            return Err(self.eof());
        }
        self.end += got;
        Ok(())
    }

    /// Whether the buffer holds the whole header of a next message (not of a close frame,
    /// nor bytes that break the protocol).
    fn message_header_buffered(&self) -> bool {
        let Some(header) = self.buf[self.start..self.end].first_chunk::<FRAME_HEADER_LEN>() else {
            return false;
        };
        matches!(
            FrameHeader::decode(*header, self.max),
            Ok(FrameHeader::Message(_))
        )
    }

    fn is_large(&self, len: usize) -> bool {
        len >= self.buf.len() / 2
    }

    fn eof(&self) -> RecvError {
        let (detail, clean) = match self.state {
            State::Header if self.buffered() == 0 => ("the peer closed the pipe".to_owned(), true),
            State::Header => (
                format!(
                    "the peer closed the pipe in the middle of a frame header ({} of 4 bytes)",
                    self.buffered()
                ),
                false,
            ),
            State::Payload { total, remaining } => (
                format!(
                    "the peer closed the pipe in the middle of a message ({} of {total} bytes received)",
                    total - remaining
                ),
                false,
            ),
        };
        RecvError::Eof { detail, clean }
    }

    /// Makes sure a message is under way and returns how much of it is still to come.
    fn begin<F>(&mut self, read: &mut F) -> Result<usize, RecvError>
    where
        F: FnMut(&mut [u8]) -> io::Result<usize>,
    {
        if let State::Payload { remaining, .. } = self.state {
            return Ok(remaining);
        }
        match self.next_header(read)? {
            FrameHeader::Message(len) => {
                self.start += FRAME_HEADER_LEN;
                let len = len as usize;
                self.exact_headers = self.is_large(len);
                self.state = State::Payload {
                    total: len,
                    remaining: len,
                };
                Ok(len)
            }
            FrameHeader::Handle(_) => Err(RecvError::Unexpected(
                "the next frame is a passed handle, not a message; receive it with recv_handle",
            )),
            FrameHeader::Close(_) => unreachable!("next_header reports close frames"),
        }
    }

    /// Between frames: reads until the next header is buffered and decodes it, taking
    /// nothing; a close frame is read whole and reported as [`RecvError::Closed`].
    fn next_header<F>(&mut self, read: &mut F) -> Result<FrameHeader, RecvError>
    where
        F: FnMut(&mut [u8]) -> io::Result<usize>,
    {
        loop {
            if self.buffered() < FRAME_HEADER_LEN {
                if self.exact_headers {
                    self.fill_exact(FRAME_HEADER_LEN - self.buffered(), read)?;
                } else {
                    self.fill(read)?;
                }
                continue;
            }
            let mut header = [0; FRAME_HEADER_LEN];
            header.copy_from_slice(&self.buf[self.start..self.start + FRAME_HEADER_LEN]);
            let decoded = FrameHeader::decode(header, self.max).map_err(RecvError::Protocol)?;
            let FrameHeader::Close(len) = decoded else {
                return Ok(decoded);
            };
            let end = self.start + FRAME_HEADER_LEN + len as usize;
            if self.end < end {
                self.fill(read)?;
                continue;
            }
            let reason =
                String::from_utf8_lossy(&self.buf[self.start + FRAME_HEADER_LEN..end]).into_owned();
            self.start = end;
            return Err(RecvError::Closed(reason));
        }
    }

    /// Receives the next frame as a handle frame and returns its record. Nothing is taken
    /// when the next frame is a message ([`RecvError::Unexpected`]) or a message is partly
    /// received. After it returns, the frame's header was at `FRAME_HEADER_LEN +
    /// record.len() + buffered` bytes before the end of what was read (see
    /// [`FrameReader::buffered_len`]).
    pub(crate) fn recv_handle<F>(&mut self, read: &mut F) -> Result<Vec<u8>, RecvError>
    where
        F: FnMut(&mut [u8]) -> io::Result<usize>,
    {
        if self.in_message() || !self.pending.is_empty() {
            return Err(RecvError::Unexpected(
                "a message is partly received; receive the rest of it before a handle",
            ));
        }
        let len = match self.next_header(read)? {
            FrameHeader::Handle(len) => len as usize,
            FrameHeader::Message(_) => {
                return Err(RecvError::Unexpected(
                    "the next frame is a message, not a passed handle; receive it with recv",
                ))
            }
            FrameHeader::Close(_) => unreachable!("next_header reports close frames"),
        };
        while self.buffered() < FRAME_HEADER_LEN + len {
            self.fill(read)?;
        }
        let at = self.start + FRAME_HEADER_LEN;
        let record = self.buf[at..at + len].to_vec();
        self.start = at + len;
        Ok(record)
    }

    /// Bytes read from the peer and still in the buffer.
    pub(crate) fn buffered_len(&self) -> usize {
        self.buffered()
    }

    fn advance(&mut self, n: usize) {
        if let State::Payload { remaining, .. } = &mut self.state {
            *remaining -= n;
        }
    }

    fn finish_if_done(&mut self) -> bool {
        match self.state {
            State::Payload { remaining: 0, .. } => {
                self.state = State::Header;
                true
            }
            State::Payload { .. } => false,
            State::Header => true,
        }
    }

    /// Copies up to `out.len()` bytes of the current message into `out`, reading from the
    /// peer when the buffer is empty. Returns the bytes copied and whether that was the end
    /// of the message. When some bytes were copied and the closure then fails with a
    /// retryable error, or the stream ends, returns the bytes so far as an incomplete read
    /// (the next call reports the end).
    pub(crate) fn recv_into<F>(
        &mut self,
        out: &mut [u8],
        read: &mut F,
    ) -> Result<(usize, bool), RecvError>
    where
        F: FnMut(&mut [u8]) -> io::Result<usize>,
    {
        self.begin(read)?;
        // First what a `recv_message` that stopped early received of this message.
        let mut copied = self.pending.len().min(out.len());
        out[..copied].copy_from_slice(&self.pending[..copied]);
        self.pending.drain(..copied);
        if !self.pending.is_empty() {
            return Ok((copied, false));
        }
        loop {
            let State::Payload { total, remaining } = self.state else {
                unreachable!("begin leaves a message under way");
            };
            if remaining == 0 {
                self.state = State::Header;
                return Ok((copied, true));
            }
            if copied == out.len() {
                return Ok((copied, false));
            }
            let want = remaining.min(out.len() - copied);
            let step = if self.buffered() > 0 {
                let n = want.min(self.buffered());
                out[copied..copied + n].copy_from_slice(&self.buf[self.start..self.start + n]);
                self.start += n;
                Ok(n)
            } else if want >= self.buf.len() / 2 || (self.is_large(total) && want == remaining) {
                // Large reads go straight to the caller's buffer.
                match read(&mut out[copied..copied + want]) {
                    Ok(0) => Err(self.eof()),
                    Ok(n) => Ok(n),
                    Err(e) => Err(RecvError::Io(e)),
                }
            } else {
                self.fill(read).map(|()| 0)
            };
            match step {
                Ok(n) => {
                    copied += n;
                    self.advance(n);
                }
                Err(e) if copied > 0 && (is_retryable(&e) || is_eof(&e)) => {
                    return Ok((copied, false))
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Receives the rest of the current message, or the next one, whole. What arrived
    /// before a retryable error is kept for the next call (of this or of
    /// [`FrameReader::recv_into`], which delivers it first). `read_spare` reads into a
    /// vector's spare capacity, so that a large message lands in its own allocation with
    /// no copy and no zero-filling.
    pub(crate) fn recv_message<F, G>(
        &mut self,
        read: &mut F,
        read_spare: &mut G,
    ) -> Result<Vec<u8>, RecvError>
    where
        F: FnMut(&mut [u8]) -> io::Result<usize>,
        G: FnMut(&mut Vec<u8>) -> io::Result<usize>,
    {
        let remaining = self.begin(read)?;
        let State::Payload { total, .. } = self.state else {
            unreachable!("begin leaves a message under way");
        };
        if self.pending.is_empty() && self.is_large(total) {
            // Exactly the message's size: reads into the spare capacity stop at its end.
            self.pending = Vec::with_capacity(remaining);
        } else if self.pending.capacity() < self.pending.len() + remaining {
            self.pending.reserve_exact(remaining);
        }
        let from_buffer = remaining.min(self.buffered());
        self.pending
            .extend_from_slice(&self.buf[self.start..self.start + from_buffer]);
        self.start += from_buffer;
        self.advance(from_buffer);
        loop {
            let State::Payload { total, remaining } = self.state else {
                unreachable!("begin leaves a message under way");
            };
            if remaining == 0 {
                break;
            }
            if !self.is_large(total) {
                // Small messages go through the buffer, which may pick up the next ones too.
                self.fill(read)?;
                let n = remaining.min(self.buffered());
                self.pending
                    .extend_from_slice(&self.buf[self.start..self.start + n]);
                self.start += n;
                self.advance(n);
            } else if self.pending.capacity() - self.pending.len() == remaining {
                match read_spare(&mut self.pending) {
                    Ok(0) => return Err(self.eof()),
                    Ok(n) => self.advance(n),
                    Err(e) => return Err(RecvError::Io(e)),
                }
            } else {
                // `pending` holds only bytes received: it grows by what each read gives.
                let have = self.pending.len();
                self.pending.resize(have + remaining, 0);
                let got = read(&mut self.pending[have..]);
                self.pending.truncate(have + *got.as_ref().unwrap_or(&0));
                match got {
                    Ok(0) => return Err(self.eof()),
                    Ok(n) => self.advance(n),
                    Err(e) => return Err(RecvError::Io(e)),
                }
            }
        }
        self.finish_if_done();
        Ok(std::mem::take(&mut self.pending))
    }

    /// Reads message payload as a byte stream: up to `out.len()` bytes, stopping at the
    /// end of a message when `stop_at_boundary` is set. Empty messages are skipped. Returns
    /// 0 only when the peer closed the pipe between messages.
    pub(crate) fn read_bytes<F>(
        &mut self,
        out: &mut [u8],
        stop_at_boundary: bool,
        read: &mut F,
    ) -> Result<usize, RecvError>
    where
        F: FnMut(&mut [u8]) -> io::Result<usize>,
    {
        if out.is_empty() {
            return Ok(0);
        }
        let mut total = 0;
        loop {
            let step = if total > 0 && !self.in_message() && !self.message_header_buffered() {
                // Do not block for the next message once some bytes are ready, and deliver
                // them before a close frame or bad bytes that follow is reported.
                return Ok(total);
            } else {
                self.recv_into(&mut out[total..], read)
            };
            match step {
                Ok((n, complete)) => {
                    total += n;
                    if total == out.len() || (complete && stop_at_boundary && total > 0) {
                        return Ok(total);
                    }
                    if !complete {
                        return Ok(total);
                    }
                }
                Err(RecvError::Eof { clean: true, .. }) => return Ok(total),
                Err(e) if total > 0 && (is_retryable(&e) || is_eof(&e)) => return Ok(total),
                Err(e) => return Err(e),
            }
        }
    }
}

/// The sending half of a message-type connection.
#[derive(Debug, Default)]
pub(crate) struct FrameWriter {
    /// A frame whose bytes are partly written: its header and how many bytes are out.
    in_flight: Option<([u8; FRAME_HEADER_LEN], usize)>,
}

impl FrameWriter {
    /// Whether a frame was left half-written (its send was abandoned).
    pub(crate) fn is_mid_frame(&self) -> bool {
        self.in_flight.is_some()
    }

    /// Writes `payload` as one frame, continuing a frame of the same payload that an
    /// earlier call left half-written after a retryable error.
    pub(crate) fn send<F>(&mut self, payload: &[u8], max: u32, write: &mut F) -> io::Result<()>
    where
        F: FnMut(&[IoSlice<'_>]) -> io::Result<usize>,
    {
        let (header, mut written) = match self.in_flight {
            Some(state) => state,
            None => {
                let header = wire::encode_message_header(payload.len(), max)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
                (header, 0)
            }
        };
        let total = FRAME_HEADER_LEN + payload.len();
        while written < total {
            let n = if written < FRAME_HEADER_LEN {
                write(&[IoSlice::new(&header[written..]), IoSlice::new(payload)])
            } else {
                write(&[IoSlice::new(&payload[written - FRAME_HEADER_LEN..])])
            };
            match n {
                Ok(0) => {
                    self.in_flight = Some((header, written));
                    return Err(io::ErrorKind::WriteZero.into());
                }
                Ok(n) => written += n,
                Err(e) => {
                    self.in_flight = Some((header, written));
                    return Err(e);
                }
            }
        }
        self.in_flight = None;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A peer that hands out `data` in chunks of at most `chunk` bytes, then an error
    /// after every `stall` reads, then end of stream.
    struct Script {
        data: Vec<u8>,
        pos: usize,
        chunk: usize,
        stall_every: usize,
        reads: usize,
    }

    impl Script {
        fn new(data: Vec<u8>, chunk: usize, stall_every: usize) -> Script {
            Script {
                data,
                pos: 0,
                chunk,
                stall_every,
                reads: 0,
            }
        }

        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.reads += 1;
            if self.stall_every > 0 && self.reads % self.stall_every == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let n = buf.len().min(self.chunk).min(self.data.len() - self.pos);
            buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
            self.pos += n;
            Ok(n)
        }
    }

    fn frames(messages: &[Vec<u8>]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut writer = FrameWriter::default();
        for m in messages {
            writer
                .send(m, u32::MAX >> 1, &mut |bufs: &[IoSlice<'_>]| {
                    let n = bufs[0].len().min(3);
                    out.extend_from_slice(&bufs[0][..n]);
                    Ok(n)
                })
                .unwrap();
        }
        out
    }

    fn recv_msg(reader: &mut FrameReader, peer: &mut Script) -> Result<Vec<u8>, RecvError> {
        let peer = std::cell::RefCell::new(peer);
        reader.recv_message(
            &mut |b: &mut [u8]| peer.borrow_mut().read(b),
            &mut |v: &mut Vec<u8>| {
                let mut tmp = vec![0; v.capacity() - v.len()];
                let n = peer.borrow_mut().read(&mut tmp)?;
                v.extend_from_slice(&tmp[..n]);
                Ok(n)
            },
        )
    }

    fn messages() -> Vec<Vec<u8>> {
        vec![
            vec![],
            vec![1],
            (0..5_000).map(|i| i as u8).collect(),
            b"hello".to_vec(),
            vec![],
            (0..300).map(|i| (i * 7) as u8).collect(),
        ]
    }

    #[test]
    fn peek_sees_message_sizes_across_the_buffer_and_the_kernel_without_taking_them() {
        let all = frames(&[vec![5; 10], vec![], vec![6; 3000]]);
        for split in [0, 2, 4, 9, 14, 16, 20, all.len()] {
            // A buffer that holds every frame, so that each split is all in it.
            let mut reader = FrameReader::new(1 << 20, 4096);
            let mut first = Script::new(all[..split].to_vec(), 10_000, 0);
            if split > 0 {
                reader.fill(&mut |b: &mut [u8]| first.read(b)).unwrap();
            }
            let peeked = reader.peek(&all[split..]);
            assert_eq!(peeked.message_len, Some(10), "split {split}");
            assert_eq!(peeked.bytes_left_in_message, 10);
            assert_eq!(peeked.bytes_available, 3010, "split {split}");
        }
        // Mid-message: the rest of the current one, then the next.
        let mut peer = Script::new(all.clone(), 10_000, 0);
        let mut reader = FrameReader::new(1 << 20, 1024);
        let mut read = |b: &mut [u8]| peer.read(b);
        let mut part = [0u8; 4];
        assert_eq!(reader.recv_into(&mut part, &mut read).unwrap(), (4, false));
        let peeked = reader.peek(&[]);
        assert_eq!(peeked.message_len, Some(10));
        assert_eq!(peeked.bytes_left_in_message, 6);
        assert!(reader.has_unread());
        // A close frame ends the walk.
        let mut data = frames(&[vec![1; 7]]);
        data.extend_from_slice(&wire::encode_close_frame("bye"));
        data.extend_from_slice(&frames(&[vec![2; 9]]));
        let reader = FrameReader::new(1 << 20, 1024);
        assert_eq!(reader.peek(&data).bytes_available, 7);
        assert!(!reader.has_unread());
        assert!(reader.peek(&[]).is_empty());
    }

    #[test]
    fn messages_survive_any_chunking_and_stalls() {
        for chunk in [1, 3, 4, 5, 1000, 100_000] {
            for stall in [0, 2, 3] {
                let mut peer = Script::new(frames(&messages()), chunk, stall);
                let mut reader = FrameReader::new(1 << 20, 1024);
                let mut got = Vec::new();
                while got.len() < messages().len() {
                    match recv_msg(&mut reader, &mut peer) {
                        Ok(m) => got.push(m),
                        Err(RecvError::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {}
                        Err(e) => panic!("chunk {chunk} stall {stall}: {e:?}"),
                    }
                }
                assert_eq!(got, messages(), "chunk {chunk} stall {stall}");
                let end = recv_msg(&mut reader, &mut peer);
                assert!(
                    matches!(
                        end,
                        Err(RecvError::Eof { clean: true, .. }) | Err(RecvError::Io(_))
                    ),
                    "{end:?}"
                );
            }
        }
    }

    #[test]
    fn small_buffers_get_long_messages_in_parts() {
        let mut peer = Script::new(frames(&messages()), 7, 0);
        let mut reader = FrameReader::new(1 << 20, 1024);
        let mut read = |b: &mut [u8]| peer.read(b);
        for expected in messages() {
            let mut got = Vec::new();
            let mut part = [0u8; 100];
            loop {
                let (n, complete) = reader.recv_into(&mut part, &mut read).unwrap();
                got.extend_from_slice(&part[..n]);
                if complete {
                    break;
                }
                assert_eq!(n, 100, "an incomplete read fills the buffer");
            }
            assert_eq!(got, expected);
        }
    }

    #[test]
    fn byte_reads_span_or_stop_at_messages() {
        let all: Vec<u8> = messages().concat();
        for stop in [false, true] {
            let mut peer = Script::new(frames(&messages()), 10_000, 0);
            let mut reader = FrameReader::new(1 << 20, 1024);
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                let n = reader
                    .read_bytes(&mut buf, stop, &mut |b: &mut [u8]| peer.read(b))
                    .unwrap();
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
            assert_eq!(got, all);
        }
    }

    #[test]
    fn truncation_oversize_and_close_are_reported() {
        let mut data = frames(&[vec![9; 100]]);
        data.truncate(50);
        let mut peer = Script::new(data, 1000, 0);
        let mut reader = FrameReader::new(1 << 20, 1024);
        let e = recv_msg(&mut reader, &mut peer).unwrap_err();
        assert!(
            matches!(&e, RecvError::Eof { clean: false, detail } if detail.contains("46 of 100")),
            "{e:?}"
        );

        let mut peer = Script::new(1000u32.to_be_bytes().to_vec(), 1000, 0);
        let mut reader = FrameReader::new(999, 1024);
        let e = recv_msg(&mut reader, &mut peer).unwrap_err();
        assert!(matches!(
            e,
            RecvError::Protocol(ProtocolError::FrameTooLarge {
                len: 1000,
                max: 999
            })
        ));

        let mut peer = Script::new(wire::encode_close_frame("too big"), 2, 0);
        let mut reader = FrameReader::new(999, 1024);
        let e = recv_msg(&mut reader, &mut peer).unwrap_err();
        assert!(matches!(e, RecvError::Closed(r) if r == "too big"));
    }

    #[test]
    fn byte_reads_deliver_a_message_before_a_close_frame_or_bad_bytes_behind_it() {
        // Seen while writing the model of the `pipe_frames` fuzz target: the message and
        // the close frame came in one read, and the byte read reported the close and lost
        // the message.
        for tail in [
            wire::encode_close_frame("bye"),
            (1u32 << 20).to_be_bytes().to_vec(),
        ] {
            let mut data = frames(&[b"last words".to_vec()]);
            data.extend_from_slice(&tail);
            let mut peer = Script::new(data, 10_000, 0);
            let mut reader = FrameReader::new(1000, 1024);
            let mut buf = [0u8; 4096];
            let mut read = |b: &mut [u8]| peer.read(b);
            let n = reader.read_bytes(&mut buf, false, &mut read).unwrap();
            assert_eq!(&buf[..n], b"last words");
            let e = reader.read_bytes(&mut buf, false, &mut read).unwrap_err();
            assert!(
                matches!(e, RecvError::Closed(ref r) if r == "bye")
                    || matches!(e, RecvError::Protocol(ProtocolError::FrameTooLarge { .. })),
                "{e:?}"
            );
        }
    }

    #[test]
    fn bytes_before_an_end_of_stream_are_delivered_before_it() {
        // Found by the `pipe_frames` fuzz target: the peer died in the middle of a
        // message, and the bytes of it that had come were lost with the error.
        let mut data = frames(&[vec![7; 100]]);
        data.truncate(4 + 30);
        for stop in [false, true] {
            let mut peer = Script::new(data.clone(), 10_000, 0);
            let mut reader = FrameReader::new(1000, 1024);
            let mut buf = [0u8; 4096];
            let mut read = |b: &mut [u8]| peer.read(b);
            assert_eq!(reader.read_bytes(&mut buf, stop, &mut read).unwrap(), 30);
            let e = reader.read_bytes(&mut buf, stop, &mut read).unwrap_err();
            assert!(matches!(e, RecvError::Eof { clean: false, .. }), "{e:?}");
        }
        let mut peer = Script::new(data, 10_000, 0);
        let mut reader = FrameReader::new(1000, 1024);
        let mut buf = [0u8; 4096];
        let mut read = |b: &mut [u8]| peer.read(b);
        assert_eq!(reader.recv_into(&mut buf, &mut read).unwrap(), (30, false));
        let e = reader.recv_into(&mut buf, &mut read).unwrap_err();
        assert!(matches!(e, RecvError::Eof { clean: false, .. }), "{e:?}");
    }

    #[test]
    fn recv_into_after_a_stalled_recv_message_starts_with_what_it_received() {
        // Found by the `pipe_frames` fuzz target: a whole-message receive that timed out
        // kept the bytes it had, and a `recv_into` after it skipped them.
        let message: Vec<u8> = (0..5_000).map(|i| (i % 251) as u8).collect();
        for (chunk, stall) in [(1000, 3), (7, 5), (600, 2)] {
            let mut peer = Script::new(frames(std::slice::from_ref(&message)), chunk, stall);
            let mut reader = FrameReader::new(1 << 20, 1024);
            let e = recv_msg(&mut reader, &mut peer).unwrap_err();
            assert!(matches!(e, RecvError::Io(_)), "{e:?}");
            let mut got = Vec::new();
            let mut part = [0u8; 700];
            loop {
                // Alternate the two kinds of receive until the message is whole.
                let result = if got.len() % 2 == 0 {
                    reader
                        .recv_into(&mut part, &mut |b: &mut [u8]| peer.read(b))
                        .map(|(n, complete)| (part[..n].to_vec(), complete))
                } else {
                    recv_msg(&mut reader, &mut peer).map(|rest| (rest, true))
                };
                match result {
                    Ok((bytes, complete)) => {
                        got.extend_from_slice(&bytes);
                        if complete {
                            break;
                        }
                    }
                    Err(RecvError::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => panic!("chunk {chunk} stall {stall}: {e:?}"),
                }
            }
            assert!(got == message, "chunk {chunk} stall {stall}");
        }
    }
}
