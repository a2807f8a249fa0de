//! A 64 B pipe round trip driven from C against the same round trip driven from Rust, in
//! one run (issue 14's target: C costs at most 1.05x Rust).
//!
//! Three clients, each a process of its own pinned to the same CPU, each talking to its
//! own server process pinned to the other CPU (or to the same one, `--cpus same`):
//!
//! - **C**: `benches/round_trip.c`, built here with gcc against this build's
//!   `libprocwire_ffi.a`, calling `procwire_pipe_send` and `procwire_pipe_recv_into`;
//! - **Rust**: this binary started again as `round_trip rust-client …`, the same loop
//!   through `procwire` itself (`send`, then `recv_into` a reused buffer);
//! - **floor**: this binary as `round_trip raw-client …`, `write_all` and `read_exact` on
//!   a raw Unix stream socket, as `procwire bench pipe` measures it.
//!
//! The servers are `procwire bench`'s own peers (`procwire_bench::peer`: this binary
//! started again as `round_trip bench-peer pipe-echo NAME` or `… raw-echo PATH`). Each
//! client connects, warms up and says `ready`; then it times one batch of round trips for
//! each line the runner writes it, and answers with the nanoseconds per round trip. The
//! runner asks for batches in turn, C, Rust, floor, then floor, Rust, C, …, so that a batch
//! of each client lies within milliseconds of the others and load from elsewhere on the
//! machine falls on all alike. A run (fresh processes) gives, per client, the median of
//! its batches, and the median of the ratios C / Rust of its rounds of batches; `--reps`
//! runs are made in each placement, and the report gives their medians and spread.
//!
//! ```sh
//! cargo bench -p procwire-ffi --bench round_trip                 # 5 runs, both placements
//! cargo bench -p procwire-ffi --bench round_trip -- --reps 9 --cpus same --batches 40
//! ```
//!
//! gcc is needed only when the benchmark runs, not to build it. Results are in
//! `docs/performance.md`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitCode, Stdio};
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
    /// Runs (fresh processes) per placement.
    reps: usize,
    /// Untimed round trips before the first batch.
    warmup: usize,
    /// Timed batches per client and run.
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
    exit(parse(&args).and_then(|settings| run(&settings)), "runner")
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
        reps: 5,
        warmup: 2000,
        batches: 20,
        per_batch: 1000,
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

// --- the Rust clients ---

/// One round trip of a Rust client, set up for an address and a size.
type RoundTrip = Box<dyn FnMut() -> Result<(), String>>;

/// Through procwire: `send`, then `recv_into` a reused buffer, as `round_trip.c` does.
fn pipe_round_trip(name: &str, size: usize) -> Result<RoundTrip, String> {
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
fn raw_round_trip(path: &str, size: usize) -> Result<RoundTrip, String> {
    let mut conn = UnixStream::connect(path).map_err(|e| format!("connect {path}: {e}"))?;
    let message = vec![7u8; size];
    let mut answer = vec![0u8; size];
    Ok(Box::new(move || {
        conn.write_all(&message).map_err(|e| e.to_string())?;
        conn.read_exact(&mut answer).map_err(|e| e.to_string())
    }))
}

/// A Rust client, `rust-client|raw-client ADDR SIZE WARMUP PER_BATCH`, speaking as
/// `round_trip.c` does: `ready` after the warm-up, then one batch per input line.
fn client(
    args: &[String],
    start: fn(&str, usize) -> Result<RoundTrip, String>,
) -> Result<(), String> {
    let [addr, size, warmup, per_batch] = args else {
        return Err("usage: rust-client|raw-client ADDR SIZE WARMUP PER_BATCH".into());
    };
    let number = |s: &String| s.parse::<usize>().map_err(|_| format!("{s}: not a number"));
    let (size, warmup, per_batch) = (number(size)?, number(warmup)?, number(per_batch)?.max(1));
    let mut round_trip = start(addr, size)?;
    for _ in 0..warmup {
        round_trip()?;
    }
    let mut out = std::io::stdout().lock();
    let say = |out: &mut std::io::StdoutLock<'_>, line: &str| {
        writeln!(out, "{line}")
            .and_then(|()| out.flush())
            .map_err(|e| e.to_string())
    };
    say(&mut out, "ready")?;
    for line in std::io::stdin().lock().lines() {
        line.map_err(|e| e.to_string())?;
        let start = Instant::now();
        for _ in 0..per_batch {
            round_trip()?;
        }
        let ns = start.elapsed().as_nanos() as f64 / per_batch as f64;
        say(&mut out, &format!("{ns:.1}"))?;
    }
    Ok(())
}

// --- the runner ---

/// Which client a process is.
#[derive(Clone, Copy, PartialEq)]
enum Client {
    C,
    Rust,
    Raw,
}

impl Client {
    const ALL: [Client; 3] = [Client::C, Client::Rust, Client::Raw];

    fn label(self) -> &'static str {
        match self {
            Client::C => "C (procwire.h)",
            Client::Rust => "Rust (procwire)",
            Client::Raw => "raw socket, Rust (floor)",
        }
    }
}

/// A client process, ready for batches, and its server.
struct Running {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    client: Client,
    _server: Peer,
}

impl Running {
    /// Starts `client` pinned to `client_cpu` against a fresh server on `server_cpu`, and
    /// waits for its warm-up.
    fn start(
        client: Client,
        c_program: &Path,
        settings: &Settings,
        client_cpu: usize,
        server_cpu: usize,
    ) -> Result<Running, String> {
        peer::set_peer_cpu(Some(server_cpu));
        let (addr, server) = if client == Client::Raw {
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
        let mut child = command
            .args([
                addr,
                settings.size.to_string(),
                settings.warmup.to_string(),
                settings.per_batch.to_string(),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("start the {} client (taskset?): {e}", client.label()))?;
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut running = Running {
            child,
            stdin,
            stdout,
            client,
            _server: server,
        };
        let line = running.read_line()?;
        if line != "ready" {
            return Err(format!("the {} client said {line:?}", client.label()));
        }
        Ok(running)
    }

    fn read_line(&mut self) -> Result<String, String> {
        let mut line = String::new();
        let n = self
            .stdout
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        if n == 0 {
            return Err(format!("the {} client stopped", self.client.label()));
        }
        Ok(line.trim().to_owned())
    }

    /// Has the client time one batch: ns per round trip.
    fn batch(&mut self) -> Result<f64, String> {
        let stdin = self.stdin.as_mut().expect("client stdin");
        writeln!(stdin, "go")
            .and_then(|()| stdin.flush())
            .map_err(|e| e.to_string())?;
        let line = self.read_line()?;
        line.parse()
            .map_err(|_| format!("the {} client said {line:?}", self.client.label()))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

/// One run: the three clients afresh, their batches in turn. Per client the median
/// batch, and the median of the rounds' ratios C / Rust.
fn one_run(
    c_program: &Path,
    settings: &Settings,
    client_cpu: usize,
    server_cpu: usize,
) -> Result<([f64; 3], f64), String> {
    let mut clients = Client::ALL
        .iter()
        .map(|&c| Running::start(c, c_program, settings, client_cpu, server_cpu))
        .collect::<Result<Vec<_>, String>>()?;
    let mut figures: [Vec<f64>; 3] = Default::default();
    let mut ratios = Vec::new();
    for b in 0..settings.batches {
        let mut order = [0, 1, 2];
        if b % 2 == 1 {
            order.reverse();
        }
        let mut round = [0.0; 3];
        for i in order {
            round[i] = clients[i].batch()?;
            figures[i].push(round[i]);
        }
        ratios.push(round[0] / round[1]);
    }
    clients.clear();
    let medians = figures.map(|mut f| median(&mut f));
    Ok((medians, median(&mut ratios)))
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
        "{}; {} B round trips; {} runs, each of {} batches of {} round trips per client \
         after {} to warm up, the clients' batches in turn (C, Rust, floor, then floor, \
         Rust, C, …); the figure of a run is the median of its batches.",
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
        let mut runs: [Vec<f64>; 3] = Default::default();
        let mut ratios = Vec::new();
        for _ in 0..settings.reps {
            let (medians, ratio) = one_run(&c_program, settings, client_cpu, server_cpu)?;
            for (i, ns) in medians.into_iter().enumerate() {
                runs[i].push(ns);
            }
            ratios.push(ratio);
        }
        println!(
            "\n{placement}: clients on CPU {client_cpu}, servers on CPU {server_cpu}\n\n\
             | client | median | spread of runs | runs (µs) |\n| --- | --- | --- | --- |"
        );
        for (client, values) in Client::ALL.iter().zip(&runs) {
            let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = values.iter().copied().fold(0.0, f64::max);
            let each: Vec<String> = values
                .iter()
                .map(|ns| format!("{:.2}", ns / 1000.0))
                .collect();
            println!(
                "| {} | {} | {} – {} | {} |",
                client.label(),
                micros(median(&mut values.clone())),
                micros(lo),
                micros(hi),
                each.join(" ")
            );
        }
        let [c, rust, raw] = runs.map(|mut v| median(&mut v));
        let each: Vec<String> = ratios.iter().map(|r| format!("{r:.3}")).collect();
        println!(
            "\nratio C / Rust: {:.3} of the medians; {:.3} the median of the runs' ratios \
             (runs: {}); Rust / floor: {:.3} of the medians",
            c / rust,
            median(&mut ratios.clone()),
            each.join(" "),
            rust / raw,
        );
    }
    Ok(())
}
