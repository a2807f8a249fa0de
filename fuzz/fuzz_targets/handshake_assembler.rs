//! The handshake assembler (how both connection APIs read a request or a response) fed any
//! bytes, cut into reads of any size with failures in between, and the blocking read loop
//! around it.
//!
//! It must agree with a one-shot decode of the same bytes: the same message or the same
//! protocol error, an end-of-stream error when the bytes stop short, and it must never read
//! a byte past the message (what follows belongs to the frames). No panic, no empty read.
#![no_main]

use std::io;

use libfuzzer_sys::fuzz_target;
use procwire::pipe::fuzzing::{read_request, read_response, Assembler};
use procwire::wire::{ProtocolError, Request, Response};

struct Peer<'a> {
    stream: &'a [u8],
    pos: usize,
    control: &'a [u8],
    reads: usize,
}

impl Peer<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        assert!(!buf.is_empty(), "the assembler read into an empty buffer");
        self.reads += 1;
        let c = match self.control {
            [] => 255,
            c => c[self.reads % c.len()],
        };
        let chunk = match c {
            0 if self.reads < 1000 => return Err(io::ErrorKind::Interrupted.into()),
            1 if self.reads < 1000 => return Err(io::ErrorKind::WouldBlock.into()),
            0..=1 | 255 => usize::MAX,
            c => usize::from(c - 1),
        };
        let n = buf.len().min(chunk).min(self.stream.len() - self.pos);
        buf[..n].copy_from_slice(&self.stream[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// The error seen after `pos` bytes is the one-shot decode's. A bad magic is reported as
/// soon as a byte of it is wrong, with the bytes received so far (padded with zeros).
fn same_error(got: &ProtocolError, whole: &ProtocolError, pos: usize) {
    match (got, whole) {
        (ProtocolError::BadMagic { found }, ProtocolError::BadMagic { found: all }) => {
            let have = pos.min(4);
            assert_eq!(found[..have], all[..have]);
            assert!(found[have..].iter().all(|&b| b == 0));
        }
        _ => assert_eq!(got, whole),
    }
}

type Decoded<T> = Result<Option<(T, usize)>, ProtocolError>;

/// Drives `assembler` as the tokio loop does (a failed read is retried); checks it against
/// the one-shot decode `whole` of the stream.
fn check<T: PartialEq + std::fmt::Debug>(
    mut assembler: Assembler<T>,
    peer: &mut Peer<'_>,
    whole: &Decoded<T>,
) {
    let result = loop {
        let spare = assembler.spare();
        assert!(!spare.is_empty());
        let n = match peer.read(spare) {
            Ok(0) => break None,
            Ok(n) => n,
            Err(_) => continue,
        };
        if let Some(result) = assembler.filled(n) {
            break Some(result);
        }
    };
    match (whole, result) {
        (Ok(Some((value, used))), Some(Ok(got))) => {
            assert_eq!(&got, value);
            assert_eq!(peer.pos, *used, "read past the message");
        }
        (Err(e), Some(Err(got))) => same_error(&got, e, peer.pos),
        (Ok(None), None) => assert_eq!(peer.pos, peer.stream.len()),
        (whole, got) => panic!("one-shot decode {whole:?}, assembler {got:?}"),
    }
}

/// The blocking loop: retries `Interrupted`, returns other errors.
fn check_blocking<T: PartialEq + std::fmt::Debug>(
    got: io::Result<Result<T, ProtocolError>>,
    pos: usize,
    whole: &Decoded<T>,
) {
    match (whole, got) {
        (_, Err(e)) if e.kind() == io::ErrorKind::WouldBlock => {}
        (Ok(Some((value, used))), Ok(Ok(got))) => {
            assert_eq!(&got, value);
            assert_eq!(pos, *used, "read past the message");
        }
        (Err(e), Ok(Err(got))) => same_error(&got, e, pos),
        (Ok(None), Err(e)) => assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof),
        (whole, got) => panic!("one-shot decode {whole:?}, blocking read {got:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&control_len, rest)) = data.split_first() else {
        return;
    };
    let control_len = usize::from(control_len).min(rest.len());
    let (control, stream) = rest.split_at(control_len);
    let peer = |stream| Peer {
        stream,
        pos: 0,
        control,
        reads: 0,
    };

    let whole = Request::decode(stream);
    check(Assembler::request(), &mut peer(stream), &whole);
    let mut p = peer(stream);
    let got = read_request(|b| p.read(b));
    check_blocking(got, p.pos, &whole);

    let whole = Response::decode(stream);
    check(Assembler::response(), &mut peer(stream), &whole);
    let mut p = peer(stream);
    let got = read_response(|b| p.read(b));
    check_blocking(got, p.pos, &whole);
});
