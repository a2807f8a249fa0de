//! Mailslot throughput between processes: procwire against raw Unix datagram sockets, in the
//! same run.
//!
//! Each iteration tells writer processes (this binary, re-executed with a role) to send a
//! batch of messages, and the reader here receives the whole batch: messages per second from
//! one writer and from four, at 64 B and 4 KiB.
//!
//! Run: `cargo bench -p procwire --bench mailslot`

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};

use divan::counter::ItemsCount;
use divan::Bencher;
use procwire::mailslot::{MailslotOptions, MailslotServer, MailslotWriter};

const BATCH: usize = 20_000;
const SIZES: [usize; 2] = [64, 4096];

fn main() {
    if let Ok(role) = std::env::var("PROCWIRE_BENCH_ROLE") {
        let target = std::env::var("PROCWIRE_BENCH_TARGET").expect("target");
        writer_process(&role, &target);
        return;
    }
    divan::main();
}

/// A writer process: for every line `N SIZE` on stdin, writes N messages of SIZE bytes,
/// then prints `done`.
fn writer_process(role: &str, target: &str) {
    enum Sink {
        Procwire(MailslotWriter),
        Raw(UnixDatagram),
    }
    let sink = match role {
        "procwire" => Sink::Procwire(MailslotWriter::open(target).expect("open the slot")),
        _ => {
            let s = UnixDatagram::unbound().unwrap();
            s.connect(target).unwrap();
            Sink::Raw(s)
        }
    };
    let stdout = std::io::stdout();
    for line in std::io::stdin().lock().lines() {
        let line = line.unwrap();
        let (n, size) = line.split_once(' ').unwrap();
        let (n, size): (usize, usize) = (n.parse().unwrap(), size.parse().unwrap());
        let message = vec![0x5a; size];
        for _ in 0..n {
            match &sink {
                Sink::Procwire(w) => w.write(&message).unwrap(),
                Sink::Raw(s) => {
                    s.send(&message).unwrap();
                }
            }
        }
        writeln!(stdout.lock(), "done").unwrap();
    }
}

struct Writers {
    children: Vec<(Child, ChildStdin, BufReader<std::process::ChildStdout>)>,
}

impl Writers {
    fn spawn(count: usize, role: &str, target: &str) -> Writers {
        let children = (0..count)
            .map(|_| {
                let mut child = Command::new(std::env::current_exe().unwrap())
                    .env("PROCWIRE_BENCH_ROLE", role)
                    .env("PROCWIRE_BENCH_TARGET", target)
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .spawn()
                    .unwrap();
                let stdin = child.stdin.take().unwrap();
                let stdout = BufReader::new(child.stdout.take().unwrap());
                (child, stdin, stdout)
            })
            .collect();
        Writers { children }
    }

    fn go(&mut self, each: usize, size: usize) {
        for (_, stdin, _) in &mut self.children {
            writeln!(stdin, "{each} {size}").unwrap();
            stdin.flush().unwrap();
        }
    }

    fn wait(&mut self) {
        for (_, _, stdout) in &mut self.children {
            let mut line = String::new();
            stdout.read_line(&mut line).unwrap();
        }
    }
}

impl Drop for Writers {
    fn drop(&mut self) {
        for (child, _, _) in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn unique(tag: &str) -> String {
    format!("bench-{tag}-{}", std::process::id())
}

fn bench_procwire(bencher: Bencher<'_, '_>, writers: usize, size: usize, into: bool) {
    let name = unique(&format!("slot-{writers}-{size}-{into}"));
    let slot = MailslotOptions::new().create(name.as_str()).unwrap();
    let mut procs = Writers::spawn(writers, "procwire", &name);
    let mut buf = vec![0u8; 64 * 1024 + 1];
    bencher.counter(ItemsCount::new(BATCH)).bench_local(|| {
        procs.go(BATCH / writers, size);
        for _ in 0..BATCH {
            if into {
                let n = slot.read_into(&mut buf).unwrap();
                divan::black_box(&buf[..n]);
            } else {
                divan::black_box(slot.read().unwrap());
            }
        }
        procs.wait();
    });
    drop(procs);
    drop::<MailslotServer>(slot);
}

fn bench_raw(bencher: Bencher<'_, '_>, writers: usize, size: usize) {
    let path: PathBuf = std::env::temp_dir().join(unique(&format!("raw-{writers}-{size}")));
    let _ = std::fs::remove_file(&path);
    let socket = UnixDatagram::bind(&path).unwrap();
    let mut procs = Writers::spawn(writers, "raw", path.to_str().unwrap());
    let mut buf = vec![0u8; 64 * 1024];
    bencher.counter(ItemsCount::new(BATCH)).bench_local(|| {
        procs.go(BATCH / writers, size);
        for _ in 0..BATCH {
            let n = socket.recv(&mut buf).unwrap();
            divan::black_box(&buf[..n]);
        }
        procs.wait();
    });
    drop(procs);
    let _ = std::fs::remove_file(&path);
}

#[divan::bench(args = SIZES, sample_count = 10, sample_size = 1)]
fn one_writer_procwire(bencher: Bencher<'_, '_>, size: usize) {
    bench_procwire(bencher, 1, size, false);
}

#[divan::bench(args = SIZES, sample_count = 10, sample_size = 1)]
fn one_writer_procwire_read_into(bencher: Bencher<'_, '_>, size: usize) {
    bench_procwire(bencher, 1, size, true);
}

#[divan::bench(args = SIZES, sample_count = 10, sample_size = 1)]
fn one_writer_raw_unix_dgram(bencher: Bencher<'_, '_>, size: usize) {
    bench_raw(bencher, 1, size);
}

#[divan::bench(args = SIZES, sample_count = 10, sample_size = 1)]
fn four_writers_procwire(bencher: Bencher<'_, '_>, size: usize) {
    bench_procwire(bencher, 4, size, false);
}

#[divan::bench(args = SIZES, sample_count = 10, sample_size = 1)]
fn four_writers_procwire_read_into(bencher: Bencher<'_, '_>, size: usize) {
    bench_procwire(bencher, 4, size, true);
}

#[divan::bench(args = SIZES, sample_count = 10, sample_size = 1)]
fn four_writers_raw_unix_dgram(bencher: Bencher<'_, '_>, size: usize) {
    bench_raw(bencher, 4, size);
}
