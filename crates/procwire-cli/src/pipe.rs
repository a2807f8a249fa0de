//! `procwire pipe serve`, `procwire pipe connect` and `procwire pipe call`.

use std::io::{self, BufRead, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Subcommand, ValueEnum};
use procwire::pipe::{ClientOptions, Direction, PipeConnection, PipeError, PipeOptions};
use procwire::security::{Access, AccessList};
use procwire::wire::PipeMode;

use crate::shutdown::Shutdown;

#[derive(Debug, Subcommand)]
pub(crate) enum PipeCommand {
    /// Create a pipe and serve its clients: print what they send, and answer with --echo or
    /// --reply.
    Serve(ServeArgs),
    /// Connect to a pipe: standard input goes to the pipe, the pipe goes to standard output.
    Connect(ConnectArgs),
    /// Send one message to a message pipe and print its answer, then close
    /// (`CallNamedPipe`): connect (waiting while busy), transact, disconnect, all within
    /// --timeout.
    Call(CallArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum ModeArg {
    Byte,
    Message,
}

impl From<ModeArg> for PipeMode {
    fn from(m: ModeArg) -> PipeMode {
        match m {
            ModeArg::Byte => PipeMode::Byte,
            ModeArg::Message => PipeMode::Message,
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum DirectionArg {
    Duplex,
    Inbound,
    Outbound,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum GrantArg {
    Read,
    Readwrite,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum AccessArg {
    Read,
    Write,
    Duplex,
}

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// The pipe's name, such as `HelloWorld`, `Global\Jobs` or `\\.\pipe\HelloWorld`.
    name: String,
    /// Byte stream or whole messages.
    #[arg(long, value_enum, default_value = "message")]
    mode: ModeArg,
    /// Which way data flows, seen from the clients.
    #[arg(long, value_enum, default_value = "duplex")]
    access: DirectionArg,
    /// The most clients at once (default: unlimited).
    #[arg(long)]
    max_instances: Option<u16>,
    /// Also let every other local user connect, reading or reading and writing.
    #[arg(long, value_enum)]
    everyone: Option<GrantArg>,
    /// Send every message (or chunk of bytes) back to its sender.
    #[arg(long, conflicts_with = "reply")]
    echo: bool,
    /// Answer every message with this text.
    #[arg(long)]
    reply: Option<String>,
    /// On an outbound pipe, send this text to each client, then disconnect it.
    #[arg(long)]
    send: Option<String>,
    /// Stop after serving this many clients.
    #[arg(long)]
    clients: Option<usize>,
    /// Also listen on TCP at this address (loopback unless --allow-plaintext-network).
    #[arg(long)]
    tcp: Option<SocketAddr>,
    /// Allow a non-loopback --tcp address without encryption.
    #[arg(long)]
    allow_plaintext_network: bool,
    /// Serve --tcp clients over TLS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<std::path::PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,
    /// The largest message, in bytes.
    #[arg(long)]
    max_message: Option<u32>,
    /// Offer local clients that ask for it (`connect --shm`) the shared-memory data path:
    /// each such connection gets a sealed memory region of its own, one ring per direction.
    /// Other clients (Python, TCP, an older procwire) are served over the socket as before.
    #[arg(long)]
    shm: bool,
    /// The size of each shared-memory ring: a power of two from 4KiB to 1GiB, such as
    /// `64KiB` or `1MiB` (default: 1MiB).
    #[arg(long, requires = "shm", value_parser = parse_ring_size)]
    ring_size: Option<usize>,
    /// Print only the listening line and errors: nothing per client or message (for
    /// measurements, where printing would take longer than the exchange).
    #[arg(long)]
    quiet: bool,
}

/// A `--ring-size`: a size the library takes as it is (a power of two in `RING_SIZES`).
fn parse_ring_size(s: &str) -> Result<usize, String> {
    let size = crate::size::parse_size(s)?;
    let sizes = procwire::pipe::RING_SIZES;
    match usize::try_from(size) {
        Ok(size) if size.is_power_of_two() && sizes.contains(&size) => Ok(size),
        _ => Err(format!(
            "a ring of {size} bytes is not offered; write a power of two from 4KiB to 1GiB, \
             such as 64KiB or 1MiB"
        )),
    }
}

#[derive(Debug, Args)]
pub(crate) struct ConnectArgs {
    /// The pipe's name, such as `HelloWorld` or `\\127.0.0.1:4455\pipe\HelloWorld`.
    name: String,
    /// Read mode: `message` sends each input line as one message and prints each message
    /// received on a line of its own; `byte` copies bytes both ways.
    #[arg(long, value_enum, default_value = "message")]
    mode: ModeArg,
    /// What to ask for: read, write or both.
    #[arg(long, value_enum, default_value = "duplex")]
    access: AccessArg,
    /// How long to wait while the pipe is busy (`5s`, `500ms`).
    #[arg(long, default_value = "5s", value_parser = crate::duration::parse_duration)]
    timeout: Duration,
    /// Speak TLS to a pipe on another machine, trusting the certificates in this PEM file.
    #[arg(long)]
    ca: Option<std::path::PathBuf>,
    /// Talk to the pipe whoever serves it. By default a pipe on this machine must be served
    /// by this user or by root: in Global, another user could have taken the name first.
    #[arg(long)]
    any_owner: bool,
    /// Ask for the shared-memory data path (a server started with `--shm` offers it);
    /// otherwise, and on another machine, data goes over the socket. With -v, says which
    /// path was taken.
    #[arg(long)]
    shm: bool,
}

#[derive(Debug, Args)]
pub(crate) struct CallArgs {
    /// The pipe's name, such as `HelloWorld` or `\\127.0.0.1:4455\pipe\HelloWorld`.
    name: String,
    /// The message to send (as it is, without a line end).
    message: String,
    /// How long the whole call may take: connecting, waiting while the pipe is busy and
    /// waiting for the answer (`5s`, `500ms`).
    #[arg(long, default_value = "5s", value_parser = crate::duration::parse_duration)]
    timeout: Duration,
    /// Speak TLS to a pipe on another machine, trusting the certificates in this PEM file.
    #[arg(long)]
    ca: Option<std::path::PathBuf>,
    /// Talk to the pipe whoever serves it (see `connect --any-owner`).
    #[arg(long)]
    any_owner: bool,
    /// Ask for the shared-memory data path (a server started with `--shm` offers it).
    #[arg(long)]
    shm: bool,
}

pub(crate) fn run(cmd: PipeCommand) -> anyhow::Result<()> {
    match cmd {
        PipeCommand::Serve(args) => serve(args),
        PipeCommand::Connect(args) => connect(args),
        PipeCommand::Call(args) => call(args),
    }
}

/// The client options that `connect` and `call` share: the owners trusted and TLS.
fn client_options(
    name: &str,
    any_owner: bool,
    ca: Option<&std::path::Path>,
) -> anyhow::Result<ClientOptions> {
    let mut options = ClientOptions::new();
    if !any_owner && crate::owner::is_local(name) {
        for uid in crate::owner::trusted() {
            options = options.require_owner(uid);
        }
    }
    if let Some(ca) = ca {
        options = options.tls(crate::tls::client_tls(ca)?);
    }
    Ok(options)
}

fn call(args: CallArgs) -> anyhow::Result<()> {
    let answer = client_options(&args.name, args.any_owner, args.ca.as_deref())?
        .shared_memory(args.shm)
        .call(args.name.as_str(), args.message.as_bytes(), args.timeout)?;
    let mut out = io::stdout().lock();
    out.write_all(&answer)?;
    out.write_all(b"\n")?;
    out.flush()?;
    Ok(())
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let mut acl = AccessList::owner_only();
    match args.everyone {
        Some(GrantArg::Read) => acl = acl.everyone(Access::Read),
        Some(GrantArg::Readwrite) => acl = acl.everyone(Access::ReadWrite),
        None => {}
    }
    let mut options = PipeOptions::new()
        .mode(args.mode.into())
        .direction(match args.access {
            DirectionArg::Duplex => Direction::Duplex,
            DirectionArg::Inbound => Direction::Inbound,
            DirectionArg::Outbound => Direction::Outbound,
        })
        .access_list(acl);
    if let Some(n) = args.max_instances {
        options = options.max_instances(n);
    }
    if let Some(n) = args.max_message {
        options = options.max_message_size(n);
    }
    if let Some(addr) = args.tcp {
        options = options.listen_tcp(addr);
    }
    if args.allow_plaintext_network {
        options = options.allow_plaintext_network();
    }
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        options = options.tls(crate::tls::server_tls(cert, key)?);
    }
    let ring_size = args.ring_size.unwrap_or(procwire::pipe::DEFAULT_RING_SIZE);
    if args.shm {
        options = options.shared_memory_ring_size(ring_size);
    }
    let shutdown = Shutdown::install()?;
    let server = options.create(args.name.as_str())?;
    let offer = if args.shm {
        format!(" (shared memory offered, rings of {ring_size} bytes)")
    } else {
        String::new()
    };
    match server.tcp_addr() {
        Some(addr) => println!("listening on {} and tcp {addr}{offer}", server.name()),
        None => println!("listening on {}{offer}", server.name()),
    }
    io::stdout().flush()?;
    let answer = Arc::new(Answer {
        echo: args.echo,
        reply: args.reply,
        send: args.send,
        shm: args.shm,
        quiet: args.quiet,
    });
    let mut served = 0;
    let mut workers = Vec::new();
    while args.clients.is_none_or(|n| served < n) {
        let client = match server.accept_timeout(SIGNAL_CHECK) {
            Ok(client) => client,
            Err(PipeError::Timeout { .. }) => {
                shutdown.check()?;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        served += 1;
        let answer = Arc::clone(&answer);
        let worker = std::thread::spawn(move || {
            let who = describe(&client);
            if let Err(e) = serve_client(client, &answer) {
                println!("{who}: {e}");
            }
        });
        if args.clients.is_some() {
            workers.push(worker);
        }
    }
    // No more clients will be accepted: the name goes now, while the last ones finish.
    drop(server);
    for worker in workers {
        while !worker.is_finished() {
            shutdown.sleep(SIGNAL_CHECK)?;
        }
        let _ = worker.join();
    }
    Ok(())
}

/// How often a blocked server looks whether SIGINT or SIGTERM asked it to stop.
const SIGNAL_CHECK: Duration = Duration::from_millis(100);

struct Answer {
    echo: bool,
    reply: Option<String>,
    send: Option<String>,
    /// Whether shared memory is offered: then each connection says which path it took.
    shm: bool,
    /// Print nothing per client or message.
    quiet: bool,
}

impl Answer {
    /// Prints a line of the server's log, unless told to be quiet.
    fn log(&self, line: std::fmt::Arguments<'_>) {
        if !self.quiet {
            println!("{line}");
        }
    }
}

/// The data path of a connection, in words.
fn data_path(pipe: &PipeConnection) -> &'static str {
    if pipe.is_shared_memory() {
        "shared memory"
    } else {
        "socket"
    }
}

fn describe(client: &PipeConnection) -> String {
    match client.peer_credentials() {
        Some(p) => format!("client pid {} uid {}", p.pid, p.uid),
        None => "network client".to_owned(),
    }
}

fn serve_client(mut client: PipeConnection, answer: &Answer) -> Result<(), PipeError> {
    let who = describe(&client);
    if answer.shm {
        let path = data_path(&client);
        answer.log(format_args!(
            "{who} connected ({} access, {path})",
            client.access()
        ));
    } else {
        answer.log(format_args!("{who} connected ({} access)", client.access()));
    }
    if let Some(text) = &answer.send {
        client.send(text.as_bytes())?;
        answer.log(format_args!("{who}: sent {text:?}"));
        client.disconnect();
        return Ok(());
    }
    if !client.access().can_read() {
        return Ok(());
    }
    if client.pipe_type() == PipeMode::Byte {
        let mut buf = vec![0; 64 * 1024];
        loop {
            let n = client.read(&mut buf).map_err(|e| io_to_pipe(&client, e))?;
            if n == 0 {
                answer.log(format_args!("{who} disconnected"));
                return Ok(());
            }
            if !answer.quiet {
                print!("{}", String::from_utf8_lossy(&buf[..n]));
            }
            if answer.echo {
                client.send(&buf[..n])?;
            }
        }
    }
    loop {
        let message = match client.recv() {
            Ok(m) => m,
            Err(PipeError::Disconnected { detail, .. }) => {
                answer.log(format_args!("{who} disconnected: {detail}"));
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        answer.log(format_args!("{who}: received {}", preview(&message)));
        if answer.echo {
            client.send(&message)?;
        } else if let Some(reply) = &answer.reply {
            client.send(reply.as_bytes())?;
            answer.log(format_args!("{who}: sent {reply:?}"));
        }
        io::stdout().flush().ok();
    }
}

/// A message as printed in the log: quoted, cut after 80 bytes.
fn preview(message: &[u8]) -> String {
    const SHOWN: usize = 80;
    let text = format!(
        "{:?}",
        String::from_utf8_lossy(&message[..message.len().min(SHOWN)])
    );
    if message.len() > SHOWN {
        format!("{text}... ({} bytes)", message.len())
    } else {
        text
    }
}

fn io_to_pipe(client: &PipeConnection, e: io::Error) -> PipeError {
    PipeError::Disconnected {
        name: client.name().to_owned(),
        detail: e.to_string(),
    }
}

fn connect(args: ConnectArgs) -> anyhow::Result<()> {
    let mode: PipeMode = args.mode.into();
    let pipe = client_options(&args.name, args.any_owner, args.ca.as_deref())?
        .access(match args.access {
            AccessArg::Read => Access::Read,
            AccessArg::Write => Access::Write,
            AccessArg::Duplex => Access::ReadWrite,
        })
        .read_mode(mode)
        .timeout(args.timeout)
        .shared_memory(args.shm)
        .open(args.name.as_str())?;
    let name = pipe.name().to_owned();
    match (args.shm, pipe.is_shared_memory()) {
        (_, true) => tracing::info!("connected to pipe `{name}` over shared memory"),
        (true, false) => tracing::info!(
            "connected to pipe `{name}` over the socket (the server offers no shared memory)"
        ),
        (false, false) => tracing::info!("connected to pipe `{name}` over the socket"),
    }
    // Set once standard input has ended, before the half close that tells the server so.
    let input_done = Arc::new(AtomicBool::new(false));
    let sender = if pipe.access().can_write() {
        let mut writer = pipe.try_clone()?;
        let input_done = Arc::clone(&input_done);
        Some(std::thread::spawn(move || -> anyhow::Result<()> {
            let stdin = io::stdin().lock();
            if mode == PipeMode::Message {
                for line in stdin.lines() {
                    writer.send(line?.as_bytes())?;
                }
            } else {
                io::copy(&mut stdin.take(u64::MAX), &mut writer)?;
            }
            input_done.store(true, Ordering::Release);
            writer.finish_sending()?;
            Ok(())
        }))
    } else {
        None
    };
    if pipe.access().can_read() {
        receive_to_stdout(pipe, mode)?;
        // The server closed the connection. If standard input has not ended, the sending
        // thread may be blocked reading it for ever: stop here rather than wait for it.
        if sender.is_some() && !input_done.load(Ordering::Acquire) {
            bail!(
                "pipe `{name}` disconnected: the server closed the connection while standard \
                 input was still open; what followed was not sent"
            );
        }
    }
    if let Some(sender) = sender {
        sender
            .join()
            .map_err(|_| anyhow::anyhow!("the sending thread panicked"))??;
    }
    Ok(())
}

fn receive_to_stdout(mut pipe: PipeConnection, mode: PipeMode) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    if mode == PipeMode::Byte {
        io::copy(&mut pipe, &mut out).context("copying the pipe to stdout")?;
        return Ok(());
    }
    loop {
        match pipe.recv() {
            Ok(message) => {
                out.write_all(&message)?;
                out.write_all(b"\n")?;
                out.flush()?;
            }
            Err(PipeError::Disconnected { detail, .. }) if detail.contains("closed the pipe") => {
                return Ok(())
            }
            Err(e) => return Err(e.into()),
        }
    }
}
