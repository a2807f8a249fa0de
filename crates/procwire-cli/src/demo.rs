//! `procwire demo`: the samples end to end, as separate processes, with their transcript.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use procwire::pipe::{ClientOptions, MessagePart};
use procwire::wire::PipeMode;

pub(crate) fn run() -> anyhow::Result<()> {
    named_pipe()?;
    println!();
    data_paths()?;
    println!();
    file_mapping()?;
    println!();
    mailslot()?;
    println!();
    remoting()
}

/// Starts `procwire ARGS...` as a server process with its standard output piped, and prints
/// the first line it writes (that it listens); fails if it exits before writing one.
fn start_server(exe: &Path, args: &[&str]) -> anyhow::Result<(Child, BufReader<ChildStdout>)> {
    let mut server = Command::new(exe)
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot start the server process")?;
    let mut out = BufReader::new(server.stdout.take().context("no server stdout")?);
    let mut line = String::new();
    out.read_line(&mut line)?;
    if line.is_empty() {
        let _ = server.wait();
        bail!("the server process exited before listening");
    }
    print!("[server pid {}] {line}", server.id());
    Ok((server, out))
}

/// The named-pipe sample: a server process answers a client process.
fn named_pipe() -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("cannot find the procwire executable")?;
    let name = format!(r"\\.\pipe\HelloWorld-demo-{}", std::process::id());
    println!("== Named pipe: {name}");
    println!("$ procwire pipe serve {name} --reply \"Default response from server\" --clients 1 &");
    let (mut server, server_out) = start_server(
        &exe,
        &[
            "pipe",
            "serve",
            &name,
            "--reply",
            "Default response from server",
            "--clients",
            "1",
        ],
    )?;

    println!("$ echo \"Default request from client\" | procwire pipe connect {name}");
    let mut client = Command::new(&exe)
        .args(["pipe", "connect", &name])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot start the client process")?;
    let client_pid = client.id();
    client
        .stdin
        .take()
        .context("no client stdin")?
        .write_all(b"Default request from client\n")?;
    let output = client.wait_with_output()?;
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        println!("[client pid {client_pid}] received {line:?}");
    }
    if !output.status.success() {
        bail!("the client process failed: {}", output.status);
    }
    for line in server_out.lines() {
        println!("[server pid {}] {}", server.id(), line?);
    }
    let status = server.wait()?;
    if !status.success() {
        bail!("the server process failed: {status}");
    }
    println!("== Named pipe: done (two processes, one request, one response)");
    Ok(())
}

/// How many round trips the data-path comparison times, after `WARM_UP` untimed ones.
const ROUND_TRIPS: usize = 3000;
const WARM_UP: usize = 300;
/// The size of its messages.
const MESSAGE: usize = 64;

/// The two data paths of a local pipe: a server process echoes; this process sends it the
/// same messages over the socket, then over shared memory, and times each round trip.
fn data_paths() -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("cannot find the procwire executable")?;
    let name = format!(r"\\.\pipe\DataPaths-demo-{}", std::process::id());
    println!("== Pipe data paths: the socket and shared memory, {name}");
    println!("$ procwire pipe serve {name} --shm --ring-size 64KiB --echo --quiet --clients 2 &");
    let (mut server, server_out) = start_server(
        &exe,
        &[
            "pipe",
            "serve",
            &name,
            "--shm",
            "--ring-size",
            "64KiB",
            "--echo",
            "--quiet",
            "--clients",
            "2",
        ],
    )?;
    let pid = server.id();
    let result = (|| -> anyhow::Result<()> {
        println!(
            "(this process, pid {}, sends {ROUND_TRIPS} messages of {MESSAGE} bytes and waits \
             for each echo)",
            std::process::id()
        );
        let socket = median_round_trip(&name, false)?;
        println!("  over the socket:      median round trip {socket:.1?}");
        let shared = median_round_trip(&name, true)?;
        let ratio = socket.as_secs_f64() / shared.as_secs_f64().max(1e-9);
        println!(
            "  over shared memory:   median round trip {shared:.1?} (the socket takes {ratio:.1}x as long)"
        );
        Ok(())
    })();
    if result.is_err() {
        let _ = server.kill();
    }
    for line in server_out.lines().map_while(Result::ok) {
        println!("[server pid {pid}] {line}");
    }
    let status = server.wait()?;
    result?;
    if !status.success() {
        bail!("the server process failed: {status}");
    }
    println!(
        "== Pipe data paths: done (same API, same handshake; shared memory skips the kernel \
         while both sides are busy)"
    );
    Ok(())
}

/// Connects to the echo server `name` (asking for shared memory or not) and returns the
/// median of `ROUND_TRIPS` round trips of one `MESSAGE`-byte message.
fn median_round_trip(name: &str, shared_memory: bool) -> anyhow::Result<Duration> {
    let mut options = ClientOptions::new()
        .read_mode(PipeMode::Message)
        .shared_memory(shared_memory)
        .timeout(Duration::from_secs(5));
    for uid in crate::owner::trusted() {
        options = options.require_owner(uid);
    }
    let mut pipe = options.open(name)?;
    if pipe.is_shared_memory() != shared_memory {
        bail!("pipe `{name}`: the server did not take the data path asked for");
    }
    let message = [b'x'; MESSAGE];
    let mut echo = [0u8; MESSAGE];
    let mut times = Vec::with_capacity(ROUND_TRIPS);
    for i in 0..WARM_UP + ROUND_TRIPS {
        let start = Instant::now();
        pipe.send(&message)?;
        let part = pipe.recv_into(&mut echo)?;
        let elapsed = start.elapsed();
        if part
            != (MessagePart {
                len: MESSAGE,
                complete: true,
            })
            || echo != message
        {
            bail!("pipe `{name}`: the echo differs from the message sent");
        }
        if i >= WARM_UP {
            times.push(elapsed);
        }
    }
    pipe.disconnect();
    times.sort_unstable();
    Ok(times[times.len() / 2])
}

/// The file-mapping sample: a server process creates `Local\HelloWorld…` and writes the
/// message, a client process opens it by name and reads it; the name goes when the server
/// does.
fn file_mapping() -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("cannot find the procwire executable")?;
    let name = format!(r"Local\HelloWorld-demo-{}", std::process::id());
    let message = "Message from the first process";
    println!("== File mapping: {name}");
    println!("$ procwire shm create {name} --size 65536 --write \"{message}\" --hold &");
    let mut server = Command::new(&exe)
        .args([
            "shm", "create", &name, "--size", "65536", "--write", message,
        ])
        .arg("--hold")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot start the server process")?;
    let server_pid = server.id();
    let server_in = server.stdin.take().context("no server stdin")?;
    let mut server_out = BufReader::new(server.stdout.take().context("no server stdout")?);
    loop {
        let mut line = String::new();
        if server_out.read_line(&mut line)? == 0 {
            bail!("the server process exited before creating the mapping");
        }
        print!("[server pid {server_pid}] {line}");
        if line.starts_with("holding") {
            break;
        }
    }

    let read = |expect_success: bool| -> anyhow::Result<()> {
        println!("$ procwire shm read {name}");
        let client = Command::new(&exe)
            .args(["shm", "read", &name])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot start the client process")?;
        let client_pid = client.id();
        let output = client.wait_with_output()?;
        for line in String::from_utf8_lossy(&output.stdout)
            .lines()
            .chain(String::from_utf8_lossy(&output.stderr).lines())
        {
            println!("[client pid {client_pid}] {line}");
        }
        if output.status.success() != expect_success {
            bail!("the client process ended unexpectedly: {}", output.status);
        }
        Ok(())
    };
    read(true)?;

    println!("(the server's standard input closes: it drops the mapping and exits)");
    drop(server_in);
    for line in server_out.lines() {
        println!("[server pid {server_pid}] {}", line?);
    }
    let status = server.wait()?;
    if !status.success() {
        bail!("the server process failed: {status}");
    }
    read(false)?;
    println!("== File mapping: done (two processes, one mapping; it went away with its creator)");
    Ok(())
}

/// The mailslot sample: a server process checks its slot every second; a client process
/// writes three messages.
fn mailslot() -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("cannot find the procwire executable")?;
    let name = format!(r"\\.\mailslot\HelloWorld-demo-{}", std::process::id());
    println!("== Mailslot: {name}");
    println!("$ procwire mailslot serve {name} --every 1s --messages 3 &");
    let (mut server, server_out) = start_server(
        &exe,
        &[
            "mailslot",
            "serve",
            &name,
            "--every",
            "1s",
            "--messages",
            "3",
        ],
    )?;
    let messages = [
        "Message one for mailslot",
        "Message two for mailslot",
        "Message three for mailslot",
    ];
    println!(
        "$ procwire mailslot send {name} {}",
        messages.map(|m| format!("{m:?}")).join(" ")
    );
    let status = Command::new(&exe)
        .args(["mailslot", "send", &name])
        .args(messages)
        .status()
        .context("cannot start the client process")?;
    if !status.success() {
        bail!("the mailslot client failed: {status}");
    }
    for line in server_out.lines() {
        println!("[server pid {}] {}", server.id(), line?);
    }
    let status = server.wait()?;
    if !status.success() {
        bail!("the mailslot server failed: {status}");
    }
    println!("== Mailslot: done (one reader, one writer process, three messages kept until read)");
    Ok(())
}

/// The remoting sample: a server process with the three types; client processes call them.
fn remoting() -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("cannot find the procwire executable")?;
    println!("== Remoting: application RemotingService over TCP (any free port, loopback)");
    println!("$ procwire remoting serve --tcp 0 &");
    let mut server = Command::new(&exe)
        .args(["remoting", "serve", "--tcp", "0"])
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot start the remoting server process")?;
    let pid = server.id();
    let result = (|| {
        let mut out = BufReader::new(server.stdout.take().context("no server stdout")?);
        let mut line = String::new();
        out.read_line(&mut line)?;
        let Some(base) = line.split_whitespace().nth(2).map(str::to_owned) else {
            bail!("the remoting server exited before listening");
        };
        print!("[server pid {pid}] {line}");
        let call = |service: &str, method: &str, extra: &[&str]| -> anyhow::Result<()> {
            let url = format!("{base}/{service}");
            println!(
                "$ procwire remoting call {url} {method} {}",
                extra.join(" ")
            );
            let output = Command::new(&exe)
                .args(["remoting", "call", &url, method])
                .args(extra)
                .output()
                .context("cannot start a client process")?;
            for line in String::from_utf8_lossy(&output.stdout).lines() {
                println!("  {line}");
            }
            if !output.status.success() {
                bail!(
                    "the client failed: {}",
                    String::from_utf8_lossy(&output.stderr)
                );
            }
            Ok(())
        };
        call("SingleCallService", "count", &["--repeat", "2"])?;
        call("SingletonService", "count", &["--repeat", "2"])?;
        call("SingletonService", "count", &[])?;
        call(
            "ClientActivatedObject",
            "hello",
            &["{\"name\":\"demo\"}", "--activate", "[\"mine\"]"],
        )?;
        Ok(())
    })();
    let _ = server.kill();
    let _ = server.wait();
    result?;
    println!("== Remoting: done (SingleCall forgets, the Singleton is shared by client processes, a client-activated object is its creator's)");
    Ok(())
}
