//! A 64 B pipe round trip driven from C against the same round trip driven from Rust, in
//! one run (issue 14's target: C costs at most 1.05x Rust).
//!
//! The C client is `benches/round_trip.c`, built here with gcc against this build's
//! `libprocwire_ffi.a`; the Rust client is this binary started again as
//! `round_trip rust-client …`, the same loop through `procwire` itself. Both connect to
//! the same echo server, `procwire bench`'s `pipe-echo` peer (`procwire_bench::peer`,
//! this binary started again as `round_trip bench-peer pipe-echo NAME`), each client run
//! with a fresh one. A client does a warm-up, then batches of round trips (`send`, then
//! `recv_into` a reused buffer), and prints the nanoseconds per round trip of each batch;
//! the median of its batches is the figure of that run.
//!
//! Beside them, for scale, the floor: a Rust client writing and reading a raw Unix stream
//! socket to `procwire bench`'s `raw-echo` peer, as `procwire bench pipe` does.
//!
//! The runs rotate C, Rust, floor, then floor, Rust, C, … (so that drift on a shared
//! machine falls on all alike), for `--reps` rounds, in two placements: `split` (the
//! client pinned to the first CPU this process may use, the server to the second) and
//! `same` (both on the first). The report gives, per placement and client, the median of
//! the runs' figures and their spread, the ratio of the medians (C over Rust) and the
//! median of the ratios of the C and Rust runs of each round.
//!
//! ```sh
//! cargo bench -p procwire-ffi --bench round_trip                 # 7 rounds, both placements
//! cargo bench -p procwire-ffi --bench round_trip -- --reps 11 --cpus same --size 64
//! ```
//!
//! gcc is needed only when the benchmark runs, not to build it. Results are in
//! `docs/performance.md`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::process::{Command, ExitCode};
use std::time::Instant;

use procwire::pipe::ClientOptions;
use procwire::wire::PipeMode;
use procwire_bench::peer::{self, Peer};
use procwire_bench::placement::{allowed_cpus, machine};
use procwire_testkit::bench::bench_name;

/// The first argument that makes this binary the Rust client.
const RUST_CLIENT: &str = "rust-client";
/// The first argument that makes this binary the raw socket client (the floor).
const RAW_CLIENT: &str = "raw-client";

/// What one run of the benchmark does.
struct Settings {
    /// Message size in bytes.
    size: usize,
    /// Rounds of client runs (one C, one Rust, one floor) per placement.
    reps: usize,
    /// Untimed round trips before the first batch.
    warmup: usize,
    /// Timed batches per client run.
    batches: usize,
    /// Round trips per batch.
    per_batch: usize,
    /// Placements to run: `split`, `same`.
    placements: Vec<&'static str>,
}

fn main() -> ExitCode {
    if let Some((role, addr)) = peer::peer_args() {
        return exit(peer::serve(&role, &addr), &role);
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some(RUST_CLIENT) => return exit(client(&args[1..], pipe_round_trip), RUST_CLIENT),
        Some(RAW_CLIENT) => return exit(client(&args[1..], raw_round_trip), RAW_CLIENT),
        _ => {}
    }
    match parse(&args).and_then(|settings| run(&settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("round_trip: {e}");
            ExitCode::FAILURE
        }
    }
}

fn exit(result: Result<(), String>, what: &str) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("round_trip {what}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Parses `--reps N`, `--size N`, `--batches N`, `--per-batch N`, `--warmup N` and
/// `--cpus split|same|both`; ignores the `--bench` that `cargo bench` passes.
fn parse(args: &[String]) -> Result<Settings, String> {
    let mut settings = Settings {
        size: 64,
        reps: 7,
        warmup: 2000,
        batches: 10,
        per_batch: 2000,
        placements: vec!["split", "same"],
    };
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        if flag == "--bench" {
            continue;
        }
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = || {
            value
                .parse::<usize>()
                .map_err(|_| format!("{flag} {value}: not a number"))
        };
        match flag.as_str() {
            "--size" => settings.size = number()?,
            "--reps" => settings.reps = number()?.max(1),
            "--warmup" => settings.warmup = number()?,
            "--batches" => settings.batches = number()?.max(1),
            "--per-batch" => settings.per_batch = number()?.max(1),
            "--cpus" => {
                settings.placements = match value.as_str() {
                    "split" => vec!["split"],
                    "same" => vec!["same"],
                    "both" => vec!["split", "same"],
                    other => return Err(format!("--cpus {other}: use split, same or both")),
                }
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(settings)
}

/// What a Rust client does once per round trip, given the address: set up, then one
/// round trip of `size` bytes per call.
type RoundTrip = fn(&str, usize) -> Result<Box<dyn FnMut() -> Result<(), String>>, String>;

/// Through procwire: `send`, then `recv_into` a reused buffer, as `round_trip.c` does.
fn pipe_round_trip(
    name: &str,
    size: usize,
) -> Result<Box<dyn FnMut() -> Result<(), String>>, String> {
    let mut conn = ClientOptions::new()
        .read_mode(PipeMode::Message)
        .open(name)
        .map_err(|e| e.to_string())?;
    let message = vec![7u8; size];
    let mut answer = vec![0u8; size + 1];
    Ok(Box::new(move || {
        conn.send(&message).map_err(|e| e.to_string())?;
        let part = conn.recv_into(&mut answer).map_err(|e| e.to_string())?;
        if part.len != size || !part.complete {
            return Err(format!("the echo was {} bytes, not {size}", part.len));
        }
        Ok(())
    }))
}

/// The floor: `write_all`, then `read_exact` on a Unix stream socket.
fn raw_round_trip(
    path: &str,
    size: usize,
) -> Result<Box<dyn FnMut() -> Result<(), String>>, String> {
    let mut conn = UnixStream::connect(path).map_err(|e| format!("connect {path}: {e}"))?;
    let message = vec![7u8; size];
    let mut answer = vec![0u8; size];
    Ok(Box::new(move || {
        conn.write_all(&message).map_err(|e| e.to_string())?;
        conn.read_exact(&mut answer).map_err(|e| e.to_string())
    }))
}

/// A Rust client: `rust-client|raw-client ADDR SIZE WARMUP BATCHES PER_BATCH`, as
/// `round_trip.c` does it.
fn client(args: &[String], start: RoundTrip) -> Result<(), String> {
    let [addr, size, warmup, batches, per_batch] = args else {
        return Err("usage: rust-client|raw-client ADDR SIZE WARMUP BATCHES PER_BATCH".into());
    };
    let number = |s: &String| s.parse::<usize>().map_err(|_| format!("{s}: not a number"));
    let (size, warmup, batches, per_batch) = (
        number(size)?,
        number(warmup)?,
        number(batches)?,
        number(per_batch)?.max(1),
    );
    let mut round_trip = start(addr, size)?;
    for _ in 0..warmup {
        round_trip()?;
    }
    let mut lines = String::new();
    for _ in 0..batches {
        let start = Instant::now();
        for _ in 0..per_batch {
            round_trip()?;
        }
        let ns = start.elapsed().as_nanos() as f64 / per_batch as f64;
        lines.push_str(&format!("{ns:.1}\n"));
    }
    // Printed at the end, as the C client's buffered stdout is.
    print!("{lines}");
    Ok(())
}

/// Which client a run uses.
#[derive(Clone, Copy, PartialEq)]
enum Client {
    C,
    Rust,
    Raw,
}

/// One client run against a fresh echo server: the median of its batches, in ns per
/// round trip.
fn run_client(
    client: Client,
    c_program: &std::path::Path,
    settings: &Settings,
    client_cpu: usize,
    server_cpu: usize,
) -> Result<f64, String> {
    peer::set_peer_cpu(Some(server_cpu));
    let (name, _server) = if client == Client::Raw {
        let path = std::env::temp_dir().join(format!("{}.sock", bench_name("ffi-raw")));
        let path = path.to_str().ok_or("the temp dir is not UTF-8")?.to_owned();
        let mut server = Peer::spawn("raw-echo", &path)?;
        server.remove_on_drop(path.clone().into());
        (path, server)
    } else {
        let name = format!(r"\\.\pipe\{}", bench_name("ffi-round-trip"));
        let server = Peer::spawn("pipe-echo", &name)?;
        (name, server)
    };
    let exe = || std::env::current_exe().map_err(|e| e.to_string());
    let mut command = Command::new("taskset");
    command.arg("-c").arg(client_cpu.to_string());
    match client {
        Client::C => command.arg(c_program),
        Client::Rust => command.arg(exe()?).arg(RUST_CLIENT),
        Client::Raw => command.arg(exe()?).arg(RAW_CLIENT),
    };
    command.args([
        name.clone(),
        settings.size.to_string(),
        settings.warmup.to_string(),
        settings.batches.to_string(),
        settings.per_batch.to_string(),
    ]);
    let output = command
        .output()
        .map_err(|e| format!("run the client (is taskset installed?): {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "the {} client failed: {}",
            label(client),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let mut batches = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| {
            l.trim()
                .parse::<f64>()
                .map_err(|_| format!("bad line {l:?}"))
        })
        .collect::<Result<Vec<f64>, String>>()?;
    if batches.is_empty() {
        return Err(format!("the {} client printed nothing", label(client)));
    }
    Ok(median(&mut batches))
}

fn label(client: Client) -> &'static str {
    match client {
        Client::C => "C",
        Client::Rust => "Rust",
        Client::Raw => "raw socket",
    }
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

fn micros(ns: f64) -> String {
    format!("{:.2} µs", ns / 1000.0)
}

fn run(settings: &Settings) -> Result<(), String> {
    let source = common::crate_dir().join("benches/round_trip.c");
    let c_program = common::build_file(
        "gcc",
        &source,
        &[
            "-std=c11",
            "-D_POSIX_C_SOURCE=200809L",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-pedantic",
            "-O2",
        ],
    );
    let cpus = allowed_cpus()?;
    println!(
        "{}; {} B round trips, {} rounds of runs (C, Rust, floor, then floor, Rust, C, …), \
         each run {} batches of {} after {} to warm up; the figure of a run is the median \
         of its batches.",
        machine(),
        settings.size,
        settings.reps,
        settings.batches,
        settings.per_batch,
        settings.warmup
    );
    for placement in &settings.placements {
        let (client_cpu, server_cpu) = match (*placement, cpus.as_slice()) {
            ("split", [a, b, ..]) => (*a, *b),
            ("split", _) => {
                println!("\nsplit: skipped, this process may use only one CPU");
                continue;
            }
            (_, [a, ..]) => (*a, *a),
            (_, []) => return Err("no CPU in the affinity mask".into()),
        };
        let mut c = Vec::new();
        let mut rust = Vec::new();
        let mut raw = Vec::new();
        let mut ratios = Vec::new();
        for rep in 0..settings.reps {
            let mut order = [Client::C, Client::Rust, Client::Raw];
            if rep % 2 == 1 {
                order.reverse();
            }
            let mut round = [0.0; 3];
            for client in order {
                let ns = run_client(client, &c_program, settings, client_cpu, server_cpu)?;
                round[client as usize] = ns;
            }
            c.push(round[0]);
            rust.push(round[1]);
            raw.push(round[2]);
            ratios.push(round[0] / round[1]);
        }
        let spread = |v: &[f64]| {
            let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = v.iter().copied().fold(0.0, f64::max);
            format!("{} – {}", micros(lo), micros(hi))
        };
        let runs = |v: &[f64]| {
            v.iter()
                .map(|ns| format!("{:.2}", ns / 1000.0))
                .collect::<Vec<_>>()
                .join(" ")
        };
        println!(
            "\n{placement}: client on CPU {client_cpu}, server on CPU {server_cpu}\n\n\
             | client | median | spread of runs | runs (µs) |\n| --- | --- | --- | --- |"
        );
        println!(
            "| C (procwire.h) | {} | {} | {} |",
            micros(median(&mut c.clone())),
            spread(&c),
            runs(&c)
        );
        println!(
            "| Rust (procwire) | {} | {} | {} |",
            micros(median(&mut rust.clone())),
            spread(&rust),
            runs(&rust)
        );
        println!(
            "| raw socket, Rust (floor) | {} | {} | {} |",
            micros(median(&mut raw.clone())),
            spread(&raw),
            runs(&raw)
        );
        println!(
            "\nratio C / Rust: {:.3} of the medians; {:.3} the median of the rounds' ratios \
             (rounds: {}); Rust / floor: {:.3} of the medians",
            median(&mut c.clone()) / median(&mut rust.clone()),
            median(&mut ratios.clone()),
            ratios
                .iter()
                .map(|r| format!("{r:.3}"))
                .collect::<Vec<_>>()
                .join(" "),
            median(&mut rust.clone()) / median(&mut raw.clone()),
        );
    }
    Ok(())
}
