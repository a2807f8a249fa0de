//! Models of the shared-memory pipe ring ([`super::ring`]), checked by loom over every
//! interleaving within the preemption bound: the ring's own code on loom's atomics, ring
//! data made of loom atomics written and read with `Relaxed` (so a missing `Release` or
//! `Acquire` shows as stale bytes), and a doorbell modelled as a level-triggered token count
//! on the model futex (what the socket doorbell is: bytes stay until read).
//!
//! Each side waits as `link.rs` does: look; if nothing, announce the sleep
//! (`prepare_sleep`); if still nothing, sleep on the doorbell; clear the waiting word; look
//! again. A lost wake-up leaves a side asleep for good, which loom reports as a deadlock.
//!
//! Run with `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=3 cargo test -p procwire --release
//! --lib loom`.

use loom::sync::Arc;
use loom::thread;

use super::ring::{Consumer, Producer, RingControl, RingData};
use crate::shim::{futex, AtomicU32, Ordering};

/// A ring small enough to wrap within a few messages: records of at most 8 bytes.
const CAPACITY: usize = 64;

struct Words(Vec<AtomicU32>);

impl RingData for Words {
    fn header(&self, offset: usize) -> (&AtomicU32, &AtomicU32) {
        (&self.0[offset / 4], &self.0[offset / 4 + 1])
    }
    fn copy_in(&self, offset: usize, data: &[u8]) {
        for (i, chunk) in data.chunks(4).enumerate() {
            let mut word = [0u8; 4];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0[offset / 4 + i].store(u32::from_le_bytes(word), Ordering::Relaxed);
        }
    }
    fn copy_out(&self, offset: usize, buf: &mut [u8]) {
        for (i, chunk) in buf.chunks_mut(4).enumerate() {
            let word = self.0[offset / 4 + i].load(Ordering::Relaxed).to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
    }
}

/// A doorbell: rings are counted and stay until the sleeper takes them.
#[derive(Default)]
struct Bell(AtomicU32);

impl Bell {
    fn ring(&self) {
        self.0.fetch_add(1, Ordering::Release);
        futex::wake_all(&self.0);
    }

    fn sleep(&self) {
        loop {
            if self.0.swap(0, Ordering::Acquire) > 0 {
                return;
            }
            futex::wait(&self.0, 0, None).unwrap();
        }
    }
}

struct Shared {
    ctl: RingControl,
    data: Words,
    /// Rung by the producer for the consumer.
    data_bell: Bell,
    /// Rung by the consumer for the producer.
    space_bell: Bell,
}

fn shared() -> Arc<Shared> {
    Arc::new(Shared {
        ctl: RingControl::new(),
        data: Words((0..CAPACITY / 4).map(|_| AtomicU32::new(0)).collect()),
        data_bell: Bell::default(),
        space_bell: Bell::default(),
    })
}

/// Sends `message` in records, sleeping while the ring is full.
fn send(p: &mut Producer, s: &Shared, message: &[u8]) {
    let mut sent = 0;
    loop {
        let want = (message.len() - sent).min(p.max_record());
        let slot = loop {
            if let Some(slot) = p.reserve(&s.ctl, &s.data, want, want).unwrap() {
                break slot;
            }
            if p.prepare_sleep(&s.ctl, want).unwrap() {
                s.space_bell.sleep();
                s.ctl.producer_waiting.store(0, Ordering::Relaxed);
            }
        };
        s.data.copy_in(slot.payload(), &message[sent..sent + want]);
        if p.commit(&s.ctl, &s.data, slot, want, message.len() as u32) {
            s.data_bell.ring();
        }
        sent += want;
        if sent == message.len() {
            return;
        }
    }
}

/// Receives one whole message, sleeping while the ring is empty.
fn recv(c: &mut Consumer, s: &Shared) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let record = loop {
            if let Some(record) = c.peek(&s.ctl, &s.data).unwrap() {
                break record;
            }
            if c.prepare_sleep(&s.ctl) {
                s.data_bell.sleep();
                s.ctl.consumer_waiting.store(0, Ordering::Relaxed);
            }
        };
        let at = out.len();
        out.resize(at + record.len, 0);
        s.data.copy_out(record.offset, &mut out[at..]);
        if c.consume(&s.ctl, record) {
            s.space_bell.ring();
        }
        if record.last {
            return out;
        }
    }
}

/// The `m`th message of the first model.
fn message(m: u8) -> Vec<u8> {
    let len = if m == 1 { 0 } else { 12 };
    (0..len).map(|i| m * 16 + i).collect()
}

/// Messages of 12, 0 and 12 bytes (two records, one, two: 72 bytes with headers, so the
/// 64-byte ring wraps with padding and the producer must wait for space): every byte
/// arrives, in order, with its boundaries, and neither side sleeps for good.
#[test]
fn loom_ring_delivers_every_message_and_loses_no_wake_up() {
    loom::model(|| {
        let s = shared();
        let producer = {
            let s = Arc::clone(&s);
            thread::spawn(move || {
                let mut p = Producer::new(CAPACITY);
                for m in 0..3u8 {
                    send(&mut p, &s, &message(m));
                }
            })
        };
        let mut c = Consumer::new(CAPACITY, 100);
        for m in 0..3u8 {
            assert_eq!(recv(&mut c, &s), message(m));
        }
        producer.join().unwrap();
        assert!(!c.mid_message());
    });
}

/// A consumer that starts waiting before anything is sent, and a producer whose one record
/// lands while the consumer announces its sleep: the record is seen or the doorbell rung.
#[test]
fn loom_consumer_sleeping_on_an_empty_ring_is_woken() {
    loom::model(|| {
        let s = shared();
        let producer = {
            let s = Arc::clone(&s);
            thread::spawn(move || send(&mut Producer::new(CAPACITY), &s, b"ping"))
        };
        let mut c = Consumer::new(CAPACITY, 100);
        assert_eq!(recv(&mut c, &s), b"ping");
        producer.join().unwrap();
    });
}
