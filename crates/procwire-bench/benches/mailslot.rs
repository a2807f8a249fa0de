//! Mailslot throughput between processes: procwire against raw Unix datagram sockets, in the
//! same run.
//!
//! Each iteration tells writer processes (this binary, re-executed as
//! `mailslot bench-peer ROLE ADDR`) to send a batch of messages, and the reader here
//! receives the whole batch (about 512 KiB): messages per second from one writer and from
//! four, at 64 B and 4 KiB. The cases are `procwire bench`'s
//! (`procwire_bench::cases::datagram_batch`), one implementation for both.
//!
//! Run: `cargo bench -p procwire-bench --bench mailslot`

use std::process::ExitCode;

use divan::counter::ItemsCount;
use divan::Bencher;
use procwire_bench::cases::{datagram_batch, Reader};
use procwire_bench::peer;

const SIZES: [usize; 2] = [64, 4096];

fn main() -> ExitCode {
    if let Some((role, addr)) = peer::peer_args() {
        return match peer::serve(&role, &addr) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("bench peer {role}: {e}");
                ExitCode::FAILURE
            }
        };
    }
    divan::main();
    ExitCode::SUCCESS
}

fn bench(bencher: Bencher<'_, '_>, writers: usize, size: usize, reader: Reader) {
    let mut s = datagram_batch(writers, size, reader).expect("start the case");
    let messages = s.bytes() as usize / size;
    bencher
        .counter(ItemsCount::new(messages))
        .bench_local(|| s.iter());
}

#[divan::bench(args = SIZES, sample_count = 10, sample_size = 1)]
fn one_writer_procwire(bencher: Bencher<'_, '_>, size: usize) {
    bench(bencher, 1, size, Reader::Read);
}

#[divan::bench(args = SIZES, sample_count = 10, sample_size = 1)]
fn one_writer_procwire_read_into(bencher: Bencher<'_, '_>, size: usize) {
    bench(bencher, 1, size, Reader::ReadInto);
}

#[divan::bench(args = SIZES, sample_count = 10, sample_size = 1)]
fn one_writer_raw_unix_dgram(bencher: Bencher<'_, '_>, size: usize) {
    bench(bencher, 1, size, Reader::Raw);
}

#[divan::bench(args = SIZES, sample_count = 10, sample_size = 1)]
fn four_writers_procwire(bencher: Bencher<'_, '_>, size: usize) {
    bench(bencher, 4, size, Reader::Read);
}

#[divan::bench(args = SIZES, sample_count = 10, sample_size = 1)]
fn four_writers_procwire_read_into(bencher: Bencher<'_, '_>, size: usize) {
    bench(bencher, 4, size, Reader::ReadInto);
}

#[divan::bench(args = SIZES, sample_count = 10, sample_size = 1)]
fn four_writers_raw_unix_dgram(bencher: Bencher<'_, '_>, size: usize) {
    bench(bencher, 4, size, Reader::Raw);
}
