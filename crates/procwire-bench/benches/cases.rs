//! Every case of `procwire bench` (`procwire_bench::cases`), through divan: each technique
//! and the raw primitive beneath it, in the same run, with the same code as the command.
//!
//! The peers are this binary, started again as `cases bench-peer ROLE ADDR`
//! (`procwire_bench::peer`); `main` hands that command line to the peer before divan sees
//! it. Run with `cargo bench -p procwire-bench --bench cases`, and pick cases with divan's
//! filters (`-- latency`, `-- 'pipe throughput'`). Pin with `taskset -c 0` (both on one
//! CPU); `procwire bench --cpus split` pins one process per CPU.

use std::process::ExitCode;

use divan::counter::BytesCount;
use divan::Bencher;
use procwire_bench::{all_cases, peer, Case, Measure};

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

/// The labels of the cases of `measure` (as `procwire bench` prints them); `short` picks
/// those timed many iterations at a time.
fn cases(measure: Measure, short: bool) -> Vec<String> {
    all_cases()
        .into_iter()
        .filter(|c| c.measure == measure && (c.batch >= 1000) == short)
        .map(|c| c.label())
        .collect()
}

fn run(bencher: Bencher<'_, '_>, label: &str) {
    let case: Case = all_cases()
        .into_iter()
        .find(|c| c.label() == label)
        .expect("a case of that label");
    let mut session = case.start().expect("start the case");
    let bytes = session.bytes();
    if bytes > 0 {
        bencher
            .counter(BytesCount::new(bytes))
            .bench_local(|| session.iter());
    } else {
        bencher.bench_local(|| session.iter());
    }
}

/// Round trips (64 B, or a bare wake-up), one per iteration.
#[divan::bench(args = cases(Measure::Latency, false), sample_count = 2000, sample_size = 10)]
fn latency(bencher: Bencher<'_, '_>, label: &str) {
    run(bencher, label);
}

/// Operations of a few nanoseconds (an uncontended lock and unlock).
#[divan::bench(args = cases(Measure::Latency, true), sample_count = 1000, sample_size = 1000)]
fn latency_short(bencher: Bencher<'_, '_>, label: &str) {
    run(bencher, label);
}

/// One-way bandwidth: a batch of messages, then one acknowledgement.
#[divan::bench(args = cases(Measure::Throughput, false), sample_count = 30, sample_size = 1)]
fn throughput(bencher: Bencher<'_, '_>, label: &str) {
    run(bencher, label);
}
