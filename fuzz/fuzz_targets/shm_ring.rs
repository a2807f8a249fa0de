//! The shared-memory ring's consumer and producer (`pipe/shm/ring.rs`) against a hostile
//! peer: the input is a program of writes the peer makes to the ring's control words
//! (`head`, `tail`, the waiting words) and data (record headers, padding, raw bytes),
//! interleaved with what a connection does: peek, read and consume records, take whole
//! messages across records, reserve and commit records, announce sleeps.
//!
//! Whatever the peer writes: no panic, no access outside the ring (the ring memory checks
//! every access as the mapped region does), no record handed out that lies outside what was
//! published, no message over the limit and none assembled wrong (records of one message
//! carry its length, their lengths add up to it, first and last are right), no reserved
//! room that overwrites what the consumer has not freed, and every loop ends.
#![no_main]

use libfuzzer_sys::fuzz_target;
use procwire::pipe::fuzzing::{RingConsumer, RingProducer};

/// Reads the program.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }
    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes([self.byte()?, self.byte()?]))
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes([
            self.byte()?,
            self.byte()?,
            self.byte()?,
            self.byte()?,
        ]))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from(self.u32()?) | u64::from(self.u32()?) << 32)
    }
}

fn record_size(len: usize) -> u64 {
    8 + len.next_multiple_of(8) as u64
}

/// What the consumer side has taken so far: the message being assembled.
struct Taking {
    limit: u32,
    /// The message being taken: its length and the bytes taken so far.
    current: Option<(u32, usize)>,
}

impl Taking {
    /// Peeks, checks the record against what was published and the message being taken.
    fn peek(&mut self, rx: &mut RingConsumer) -> Option<procwire::pipe::fuzzing::RecordView> {
        let record = rx.peek().ok()??;
        let capacity = rx.ring().capacity();
        let tail = rx.tail();
        // The consumer loads `head` only when what it last saw is taken: what it reads is
        // bounded by the last `head` it loaded (and checked).
        let published = rx.head_seen().wrapping_sub(tail);
        assert!(published <= capacity as u64, "a record outside the ring");
        assert!(
            record_size(record.len) <= published,
            "a record of {} bytes with {published} published",
            record.len
        );
        assert_eq!(record.offset, (tail % capacity as u64) as usize + 8);
        assert!(record.offset + record.len <= capacity);
        assert!(record.message_len <= self.limit, "a message over the limit");
        assert!(record.len as u64 <= u64::from(record.message_len));
        let left = match &self.current {
            None => {
                assert!(record.first, "a continuation with no message begun");
                record.message_len as usize
            }
            Some((len, got)) => {
                assert!(!record.first, "a new message in the middle of one");
                assert_eq!(*len, record.message_len, "a record of another message");
                assert!(record.len > 0, "an empty continuation");
                *len as usize - got
            }
        };
        assert!(
            record.len <= left,
            "a record longer than its message's rest"
        );
        assert_eq!(record.last, record.len == left);
        assert_eq!(rx.mid_message(), self.current.is_some());
        Some(record)
    }

    /// Reads and consumes the record `peek` returned.
    fn consume(&mut self, rx: &mut RingConsumer, record: procwire::pipe::fuzzing::RecordView) {
        let payload = rx.payload();
        assert_eq!(payload.len(), record.len);
        let tail = rx.tail();
        let (len, got) = self.current.take().unwrap_or((record.message_len, 0));
        let got = got + payload.len();
        rx.consume();
        assert_eq!(rx.tail(), tail + record_size(record.len));
        assert_eq!(
            rx.ring().tail(),
            rx.tail(),
            "the consumer publishes its tail"
        );
        if record.last {
            assert_eq!(got, len as usize, "a message of the wrong length");
            assert!(got <= self.limit as usize, "a message over the limit");
        } else {
            self.current = Some((len, got));
        }
        assert_eq!(rx.mid_message(), self.current.is_some());
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let (Some(shape), Some(limit_kind)) = (input.byte(), input.byte()) else {
        return;
    };
    let capacity = 4096 << (shape & 1);
    let limit = match limit_kind % 4 {
        0 => input.u32().unwrap_or(0),
        1 => u32::from(limit_kind / 4) * 16,
        2 => capacity as u32,
        _ => u32::MAX,
    };
    let mut rx = RingConsumer::new(capacity, limit);
    let mut tx = RingProducer::new(capacity);
    let mut taking = Taking {
        limit: limit.min(u32::MAX - 1),
        current: None,
    };
    // The hostile producer's own idea of its head.
    let mut peer_head = 0u64;
    // A record peeked and not yet consumed stays valid whatever the peer writes meanwhile
    // (its bounds were checked), as a connection holds one across reads.
    let mut peeked = None;
    let mut ops = 0;
    while let Some(op) = input.byte() {
        ops += 1;
        if ops > 256 {
            break;
        }
        match op % 16 {
            0 => {
                let Some(head) = input.u64() else { break };
                rx.ring().set_head(head);
            }
            1 => {
                let Some(delta) = input.byte() else { break };
                peer_head = rx.tail() + u64::from(delta) * 8;
                rx.ring().set_head(peer_head);
            }
            2 => {
                // A record at the peer's head: any length, the message's length chosen.
                let (Some(len), Some(kind)) = (input.u16(), input.byte()) else {
                    break;
                };
                let len = u32::from(len) % (capacity as u32 / 2);
                let message_len = match kind % 4 {
                    0 => len,
                    1 => taking.current.as_ref().map_or(len, |(l, _)| *l),
                    2 => len.saturating_mul(u32::from(kind / 4) + 1),
                    _ => input.u32().unwrap_or(u32::MAX),
                };
                rx.ring().write_header(peer_head, len, message_len);
                peer_head += record_size(len as usize);
                rx.ring().set_head(peer_head);
            }
            3 => {
                // Padding from the peer's head to the end (or a wrong length).
                let Some(skew) = input.byte() else { break };
                let to_end = capacity as u64 - peer_head % capacity as u64;
                let len = (to_end as u32 - 8).wrapping_add(u32::from(skew % 4) * 8);
                rx.ring().write_header(peer_head, len, u32::MAX);
                peer_head += to_end;
                rx.ring().set_head(peer_head);
            }
            4 => {
                let (Some(offset), Some(n)) = (input.u16(), input.byte()) else {
                    break;
                };
                let bytes: Vec<u8> = (0..n % 32).map_while(|_| input.byte()).collect();
                rx.ring().write(offset as usize, &bytes);
                tx.ring().write(offset as usize, &bytes);
            }
            5 => peeked = taking.peek(&mut rx),
            6 => {
                if let Some(record) = peeked.take() {
                    taking.consume(&mut rx, record);
                }
            }
            7 => {
                let sleep = rx.prepare_sleep();
                assert_eq!(sleep, rx.ring().head() == rx.tail());
            }
            8 => {
                // A whole receive, as `recv` does: records until the message ends. The peer
                // does not write meanwhile, so it must end within the ring's records.
                let mut records = 0;
                while let Some(record) = taking.peek(&mut rx) {
                    records += 1;
                    assert!(records <= capacity / 8 + 1, "a receive that does not end");
                    let last = record.last;
                    taking.consume(&mut rx, record);
                    if last {
                        break;
                    }
                }
                peeked = None;
            }
            9 => {
                let Some(tail) = input.u64() else { break };
                tx.ring().set_tail(tail);
            }
            10 => {
                // The hostile consumer frees some of what was published, or claims more.
                let Some(delta) = input.byte() else { break };
                let head = tx.ring().head();
                let tail = tx.ring().tail();
                let tail = if delta & 1 == 0 {
                    tail.saturating_add(u64::from(delta) * 4).min(head)
                } else {
                    head.wrapping_add(u64::from(delta) * 4)
                };
                tx.ring().set_tail(tail);
            }
            11 => {
                let (Some(a), Some(b), Some(c)) = (input.u16(), input.u16(), input.byte()) else {
                    break;
                };
                let max = tx.max_record();
                let want = a as usize % (max + 1);
                let min = b as usize % (want + 1);
                let before = tx.head();
                let Ok(Some(slot)) = tx.reserve(min, want) else {
                    continue;
                };
                // The producer reads `tail` only when the room it knew of runs short: what
                // it reserves is bounded by the last `tail` it loaded (and checked).
                let tail = tx.tail_seen();
                let head = tx.head();
                assert!(head >= before && head - before < capacity as u64);
                assert_eq!(slot.payload, (head % capacity as u64) as usize + 8);
                assert!(slot.room >= min && slot.room <= want.next_multiple_of(8));
                assert!(slot.payload + slot.room <= capacity, "room past the end");
                let end = head + record_size(slot.room);
                assert!(
                    end.wrapping_sub(tail) <= capacity as u64,
                    "room over bytes the consumer has not freed (tail {tail}, end {end})"
                );
                if c & 1 == 0 {
                    let n = slot.room.min(want);
                    tx.fill(&vec![c; n]);
                    tx.commit(n, n as u32);
                    assert_eq!(tx.ring().head(), tx.head(), "the producer publishes");
                    assert_eq!(tx.head(), head + record_size(n));
                }
            }
            12 => {
                let Some(min) = input.u16() else { break };
                let min = min as usize % (tx.max_record() + 1);
                let _ = tx.prepare_sleep(min);
            }
            13 => {
                let (Some(p), Some(c)) = (input.u32(), input.u32()) else {
                    break;
                };
                rx.ring().set_waiting(p, c);
                tx.ring().set_waiting(p, c);
            }
            14 => {
                // An honest consumer: everything published is freed.
                let head = tx.ring().head();
                tx.ring().set_tail(head);
            }
            _ => {
                // A header written where the consumer reads next.
                let (Some(len), Some(message_len)) = (input.u32(), input.u32()) else {
                    break;
                };
                rx.ring().write_header(rx.tail(), len, message_len);
            }
        }
    }
});
