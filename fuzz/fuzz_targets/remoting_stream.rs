//! The TCP channel's frame reader (`StreamTransport::recv`, after the preamble, on both the
//! server and the client side) fed any bytes, cut into reads of any size, with reads that
//! are not ready yet and receive futures dropped in the middle (it must be cancel-safe).
//!
//! It must agree with `wire::take_length_prefixed` run over the whole stream: the same
//! frames, none over the maximum, then a clean end, `MessageTooLarge` or an error for a
//! stream cut inside a frame. No panic, no loop without progress.
#![no_main]

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use libfuzzer_sys::fuzz_target;
use procwire_remoting::transport::StreamTransport;
use procwire_remoting::wire::take_length_prefixed;
use procwire_remoting::{Peer, RemotingError, Transport};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The peer: hands out `stream` in reads whose sizes the control bytes say; 0 is "not
/// ready yet" (it wakes the task at once, as a socket that becomes readable would).
struct Stream {
    data: Vec<u8>,
    pos: usize,
    control: Vec<u8>,
    reads: usize,
}

impl AsyncRead for Stream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let s = &mut *self;
        s.reads += 1;
        let c = match s.control.as_slice() {
            [] => 255,
            _ if s.reads > 20_000 => 255,
            c => c[s.reads % c.len()],
        };
        if c == 0 {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let chunk = if c == 255 {
            usize::MAX
        } else {
            usize::from(c) * 97
        };
        let n = buf.remaining().min(chunk).min(s.data.len() - s.pos);
        buf.put_slice(&s.data[s.pos..s.pos + n]);
        s.pos += n;
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

const MAX: [usize; 6] = [0, 1, 16, 4096, 65_536, 1 << 20];

fuzz_target!(|data: &[u8]| {
    let [mode, control_len, rest @ ..] = data else {
        return;
    };
    let max = MAX[usize::from(mode & 0x7f) % MAX.len()];
    // With the top bit set, a receive that is not ready is dropped and started again.
    let cancel = mode & 0x80 != 0;
    let control_len = usize::from(*control_len).min(rest.len());
    let (control, stream) = rest.split_at(control_len);

    // The model: the whole stream, split in one go.
    let mut buf = stream.to_vec();
    let mut frames = Vec::new();
    let end = loop {
        match take_length_prefixed(&mut buf, max) {
            Ok(Some(frame)) => frames.push(frame),
            Ok(None) => break Ok(buf.is_empty()),
            Err(e) => break Err(e),
        }
    };

    let mut transport = StreamTransport::with_peer(
        Stream {
            data: stream.to_vec(),
            pos: 0,
            control: control.to_vec(),
            reads: 0,
        },
        max,
        Peer::default(),
    );
    let mut cx = Context::from_waker(Waker::noop());
    let mut got = Vec::new();
    let mut polls = 0usize;
    let result = 'outer: loop {
        let mut recv = Box::pin(transport.recv());
        loop {
            polls += 1;
            assert!(polls < 1_000_000, "the reader makes no progress");
            match recv.as_mut().poll(&mut cx) {
                Poll::Ready(Ok(Some(frame))) => {
                    assert!(frame.len() <= max, "a frame over the maximum");
                    got.push(frame);
                    continue 'outer;
                }
                Poll::Ready(Ok(None)) => break 'outer Ok(()),
                Poll::Ready(Err(e)) => break 'outer Err(e),
                Poll::Pending if cancel => continue 'outer,
                Poll::Pending => {}
            }
        }
    };
    assert_eq!(got, frames);
    match (end, result) {
        (Ok(true), Ok(())) => {}
        (Ok(false), Err(RemotingError::Protocol { .. })) => {}
        (
            Err(RemotingError::MessageTooLarge { size, max: m }),
            Err(RemotingError::MessageTooLarge { size: s, max: n }),
        ) => {
            assert_eq!((size, m), (s, n));
        }
        (end, result) => panic!("model {end:?}, reader {result:?}"),
    }
});
