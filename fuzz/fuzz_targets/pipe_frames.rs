//! The pipe frame reader (message-type pipes) fed any bytes, cut into reads of any size with
//! `WouldBlock`, `TimedOut`, `Interrupted` and fatal errors in between, in message read mode
//! (`recv`, `recv_into`, both mixed) and byte read mode (`Read`, spanning or stopping at
//! message ends), with small message limits and buffers.
//!
//! A model decodes the same bytes in one go; the reader must agree with it: the same
//! messages in the same order, none over the maximum, no byte lost or invented, and at the
//! end the same close reason, protocol error or end of stream. No panic, no read into an
//! empty buffer, no loop without progress.
#![no_main]

use std::io;

use libfuzzer_sys::fuzz_target;
use procwire::pipe::fuzzing::{FrameReader, RecvError};
use procwire::wire::{FrameHeader, ProtocolError, FRAME_HEADER_LEN};

/// How the model says the stream ends.
#[derive(Debug, PartialEq)]
enum End {
    Eof { clean: bool },
    Closed(String),
    Protocol(ProtocolError),
    /// A handle frame: the reader stops before it, taking nothing.
    Handle,
}

struct Model {
    messages: Vec<Vec<u8>>,
    /// The bytes of a message cut short by the end of the stream.
    partial: Vec<u8>,
    end: End,
}

fn model(stream: &[u8], max: u32) -> Model {
    let mut messages = Vec::new();
    let mut pos = 0;
    loop {
        let rest = &stream[pos..];
        if rest.len() < FRAME_HEADER_LEN {
            let end = End::Eof {
                clean: rest.is_empty(),
            };
            return Model {
                messages,
                partial: Vec::new(),
                end,
            };
        }
        let header = [rest[0], rest[1], rest[2], rest[3]];
        let body = &rest[FRAME_HEADER_LEN..];
        match FrameHeader::decode(header, max) {
            Err(e) => {
                return Model {
                    messages,
                    partial: Vec::new(),
                    end: End::Protocol(e),
                }
            }
            Ok(FrameHeader::Close(len)) => {
                let end = match body.get(..len as usize) {
                    Some(reason) => End::Closed(String::from_utf8_lossy(reason).into_owned()),
                    None => End::Eof { clean: false },
                };
                return Model {
                    messages,
                    partial: Vec::new(),
                    end,
                };
            }
            Ok(FrameHeader::Handle(_)) => {
                return Model {
                    messages,
                    partial: Vec::new(),
                    end: End::Handle,
                }
            }
            Ok(FrameHeader::Message(len)) => match body.get(..len as usize) {
                Some(m) => {
                    messages.push(m.to_vec());
                    pos += FRAME_HEADER_LEN + len as usize;
                }
                None => {
                    return Model {
                        messages,
                        partial: body.to_vec(),
                        end: End::Eof { clean: false },
                    }
                }
            },
        }
    }
}

/// The peer: hands out `stream` in reads whose sizes and failures the control bytes say.
struct Peer<'a> {
    stream: &'a [u8],
    pos: usize,
    control: &'a [u8],
    reads: usize,
}

/// After this many reads, no more failures: every input ends.
const STALL_BUDGET: usize = 20_000;

impl Peer<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        assert!(!buf.is_empty(), "the reader read into an empty buffer");
        self.reads += 1;
        let c = if self.control.is_empty() || self.reads > STALL_BUDGET {
            255
        } else {
            self.control[self.reads % self.control.len()]
        };
        let chunk = match c {
            0 => return Err(io::ErrorKind::WouldBlock.into()),
            1 => return Err(io::ErrorKind::TimedOut.into()),
            2 => return Err(io::ErrorKind::Interrupted.into()),
            3 => return Err(io::ErrorKind::ConnectionReset.into()),
            255 => usize::MAX,
            c => usize::from(c - 3),
        };
        let n = buf.len().min(chunk).min(self.stream.len() - self.pos);
        buf[..n].copy_from_slice(&self.stream[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

fn retryable(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

/// Checks a final error against the model's end. Returns false for an injected fatal I/O
/// error (nothing more to check).
fn check_end(e: RecvError, m: &Model) -> bool {
    let got = match e {
        RecvError::Io(e) => {
            assert_eq!(e.kind(), io::ErrorKind::ConnectionReset, "{e}");
            return false;
        }
        RecvError::Eof { clean, .. } => End::Eof { clean },
        RecvError::Closed(reason) => End::Closed(reason),
        RecvError::Protocol(e) => End::Protocol(e),
        RecvError::Unexpected(_) => End::Handle,
    };
    assert_eq!(got, m.end);
    true
}

const TABLE: [u32; 8] = [0, 1, 4, 100, 1023, 1024, 4096, 1 << 20];

fuzz_target!(|data: &[u8]| {
    if data.len() < 7 {
        return;
    }
    let mode = data[0] % 5;
    let max = if data[1] & 1 == 0 {
        u32::from(u16::from_be_bytes([data[2], data[3]]))
    } else {
        TABLE[usize::from(data[1] >> 1) % TABLE.len()]
    };
    let buffer = usize::from(data[4]) * 32;
    let out_len = usize::from(data[5]) * 16 + 1;
    let control_len = usize::from(data[6]).min(data.len() - 7);
    let control = &data[7..7 + control_len];
    let stream = &data[7 + control_len..];

    let m = model(stream, max);
    let peer = std::cell::RefCell::new(Peer {
        stream,
        pos: 0,
        control,
        reads: 0,
    });
    let mut read = |b: &mut [u8]| peer.borrow_mut().read(b);
    let mut read_spare = |v: &mut Vec<u8>| {
        let room = v.capacity() - v.len();
        assert!(room > 0, "read_spare called with no spare capacity");
        let mut tmp = vec![0; room];
        let n = peer.borrow_mut().read(&mut tmp)?;
        v.extend_from_slice(&tmp[..n]);
        Ok(n)
    };
    let mut reader = FrameReader::new(max, buffer);
    let mut out = vec![0u8; out_len];
    let mut calls = 0usize;
    let mut progress = || {
        calls += 1;
        assert!(calls < 1_000_000, "the reader makes no progress");
    };

    match mode {
        // Message read mode: recv, recv_into, or both in turn.
        0 | 1 | 2 => {
            let mut idx = 0;
            let mut cur: Vec<u8> = Vec::new();
            let mut turn = 0usize;
            loop {
                progress();
                turn += 1;
                let whole = match mode {
                    0 => true,
                    1 => false,
                    _ => control
                        .get(turn % control.len().max(1))
                        .is_some_and(|c| c & 0x80 != 0),
                };
                let result = if whole {
                    reader.recv_message(&mut read, &mut read_spare).map(|rest| {
                        cur.extend_from_slice(&rest);
                        true
                    })
                } else {
                    reader.recv_into(&mut out, &mut read).map(|(n, complete)| {
                        assert!(n <= out.len());
                        assert!(n > 0 || complete, "an empty incomplete part");
                        cur.extend_from_slice(&out[..n]);
                        complete
                    })
                };
                match result {
                    Ok(complete) => {
                        assert!(
                            cur.len() as u64 <= u64::from(max),
                            "a message over the maximum"
                        );
                        let expected = m.messages.get(idx).unwrap_or(&m.partial);
                        assert!(expected.starts_with(&cur), "bytes that were not sent");
                        if complete {
                            assert!(idx < m.messages.len(), "a message that was not sent");
                            assert_eq!(&cur, expected);
                            idx += 1;
                            cur.clear();
                        }
                        assert_eq!(reader.in_message(), !complete);
                    }
                    Err(RecvError::Io(e)) if retryable(&e) => {}
                    Err(e) => {
                        if check_end(e, &m) {
                            assert_eq!(idx, m.messages.len(), "messages lost");
                        }
                        return;
                    }
                }
            }
        }
        // Byte read mode, spanning messages or stopping at their ends.
        _ => {
            let stop = mode == 4;
            let all: Vec<u8> = m.messages.concat();
            let mut ends = Vec::new();
            let mut at = 0;
            for msg in &m.messages {
                at += msg.len();
                ends.push(at);
            }
            let mut got: Vec<u8> = Vec::new();
            loop {
                progress();
                match reader.read_bytes(&mut out, stop, &mut read) {
                    Ok(0) => {
                        assert_eq!(m.end, End::Eof { clean: true }, "0 before the end");
                        assert_eq!(got, all, "bytes lost");
                        return;
                    }
                    Ok(n) => {
                        assert!(n <= out.len());
                        let from = got.len();
                        got.extend_from_slice(&out[..n]);
                        let sent = [all.as_slice(), &m.partial].concat();
                        assert!(sent.starts_with(&got), "bytes that were not sent");
                        if stop {
                            assert!(
                                !ends.iter().any(|&e| from < e && e < got.len()),
                                "a read spans the end of a message"
                            );
                        }
                    }
                    Err(RecvError::Io(e)) if retryable(&e) => {}
                    Err(e) => {
                        if check_end(e, &m) {
                            let sent = [all.as_slice(), &m.partial].concat();
                            assert_eq!(got, sent, "bytes lost before the end");
                        }
                        return;
                    }
                }
            }
        }
    }
});
