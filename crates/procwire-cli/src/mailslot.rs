//! `procwire mailslot serve` and `procwire mailslot send`, for local and UDP slots and
//! for slots on a NATS server (`nats://HOST:PORT/mailslot/Name`).

use std::io::{self, Write};
use std::net::SocketAddr;
use std::time::Duration;

use crate::duration::parse_duration;
use crate::nats::{is_nats, NatsArgs};
use crate::shutdown::Shutdown;

use anyhow::Context;
use clap::{Args, Subcommand};
use procwire::mailslot::{MailslotOptions, ReadTimeout, WriterOptions};
use procwire::security::{Access, AccessList};

#[derive(Debug, Subcommand)]
pub(crate) enum MailslotCommand {
    /// Create a mailslot; every --every, print how many messages wait and read them.
    Serve(ServeArgs),
    /// Write each TEXT as one message to a mailslot.
    Send(SendArgs),
}

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// The slot's name, such as `HelloWorld`, `Global\Box`, `\\.\mailslot\HelloWorld`,
    /// `nats://HOST:PORT/mailslot/Name` (stored on a NATS server) or
    /// `nats://HOST:PORT/mailslot/*/Name` (its broadcasts).
    name: String,
    /// How often to check the slot, such as `5s`, `500ms` or `1s 500ms`.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    every: Duration,
    /// Stop after reading this many messages.
    #[arg(long)]
    messages: Option<usize>,
    /// The largest message, in bytes.
    #[arg(long)]
    max_message: Option<usize>,
    /// Also receive UDP datagrams at this address (loopback unless
    /// --allow-plaintext-network; `0.0.0.0:PORT` receives broadcasts).
    #[arg(long)]
    udp: Option<SocketAddr>,
    /// Allow a non-loopback --udp address.
    #[arg(long)]
    allow_plaintext_network: bool,
    /// Let every local user write (Global slots only).
    #[arg(long)]
    everyone: bool,
    #[command(flatten)]
    nats: NatsArgs,
}

#[derive(Debug, Args)]
pub(crate) struct SendArgs {
    /// The slot's name: `HelloWorld`, `\\host:port\mailslot\Name`, `\\*\mailslot\Name`,
    /// `nats://HOST:PORT/mailslot/Name` or `nats://HOST:PORT/mailslot/*/Name`.
    name: String,
    /// The messages, one per argument.
    #[arg(required = true)]
    texts: Vec<String>,
    /// How long to wait while the slot is full (`5s`, `500ms`).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    timeout: Duration,
    /// Where `\\*\mailslot\Name` broadcasts go (default 255.255.255.255).
    #[arg(long)]
    broadcast_addr: Option<std::net::IpAddr>,
    /// Deliver whoever serves the slot. By default a slot on this machine must be served by
    /// this user or by root: in Global, another user could have taken the name first.
    #[arg(long)]
    any_owner: bool,
    /// For a slot on NATS: create it if no reader ever did (64 KiB messages), so that the
    /// messages wait for one.
    #[arg(long)]
    create: bool,
    #[command(flatten)]
    nats: NatsArgs,
}

pub(crate) fn run(cmd: MailslotCommand) -> anyhow::Result<()> {
    match cmd {
        MailslotCommand::Serve(args) => serve(args),
        MailslotCommand::Send(args) => send(args),
    }
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    if is_nats(&args.name) {
        return serve_nats(args);
    }
    let mut options = MailslotOptions::new().read_timeout(ReadTimeout::Immediate);
    if let Some(max) = args.max_message {
        options = options.max_message_size(max);
    }
    if let Some(addr) = args.udp {
        options = options.listen_udp(addr);
    }
    if args.allow_plaintext_network {
        options = options.allow_plaintext_network();
    }
    if args.everyone {
        options = options.access_list(AccessList::owner_only().everyone(Access::Write));
    }
    let shutdown = Shutdown::install()?;
    let slot = options.create(args.name.as_str())?;
    let mut out = io::stdout().lock();
    match slot.udp_addr() {
        Some(addr) => writeln!(out, "listening on {} and udp {addr}", slot.name())?,
        None => writeln!(out, "listening on {}", slot.name())?,
    }
    out.flush()?;
    report(
        &mut out,
        &shutdown,
        &args,
        || Ok(slot.info()?.waiting),
        || Ok(slot.read()?),
    )?;
    let dropped = slot.dropped();
    if dropped != Default::default() {
        writeln!(out, "dropped network datagrams: {dropped:?}")?;
    }
    Ok(())
}

/// The loop of `serve`, for either kind of slot: every `--every`, say how many messages
/// wait and read exactly those, until `--messages` were read (or a signal stops it).
fn report(
    out: &mut impl Write,
    shutdown: &Shutdown,
    args: &ServeArgs,
    mut waiting: impl FnMut() -> anyhow::Result<usize>,
    mut read_one: impl FnMut() -> anyhow::Result<Vec<u8>>,
) -> anyhow::Result<()> {
    let mut read = 0usize;
    let mut check = 0u64;
    loop {
        shutdown.sleep(args.every)?;
        check += 1;
        let waiting = waiting()?;
        writeln!(out, "check {check}: {waiting} message(s) waiting")?;
        for _ in 0..waiting {
            let message = read_one().context("reading a counted message")?;
            read += 1;
            writeln!(
                out,
                "message #{read}: {}",
                String::from_utf8_lossy(&message)
            )?;
        }
        out.flush()?;
        if args.messages.is_some_and(|n| read >= n) {
            return Ok(());
        }
    }
}

/// `serve` for a slot on NATS: the same loop; the slot and its messages stay on the server
/// when it stops.
fn serve_nats(args: ServeArgs) -> anyhow::Result<()> {
    use procwire_nats::mailslot::NatsMailslotOptions;
    if args.udp.is_some() || args.allow_plaintext_network || args.everyone {
        anyhow::bail!("--udp, --allow-plaintext-network and --everyone are for local slots; a slot on NATS takes --nats-* options");
    }
    let mut options = NatsMailslotOptions::new()
        .read_timeout(ReadTimeout::Immediate)
        .nats(args.nats.options());
    if let Some(max) = args.max_message {
        options = options.max_message_size(max);
    }
    let shutdown = Shutdown::install()?;
    let slot = options.create(&args.name)?;
    let mut out = io::stdout().lock();
    writeln!(out, "listening on {}", slot.name())?;
    out.flush()?;
    report(
        &mut out,
        &shutdown,
        &args,
        || Ok(slot.info()?.waiting),
        || Ok(slot.read()?),
    )?;
    if slot.dropped_oversize() > 0 {
        writeln!(
            out,
            "dropped oversize messages: {}",
            slot.dropped_oversize()
        )?;
    }
    slot.close()?;
    Ok(())
}

fn send(args: SendArgs) -> anyhow::Result<()> {
    if is_nats(&args.name) {
        let options = procwire_nats::mailslot::NatsWriterOptions::new()
            .timeout(args.timeout)
            .nats(args.nats.options());
        let slot = if args.create {
            options.open_or_create(&args.name)?
        } else {
            options.open(&args.name)?
        };
        for text in &args.texts {
            slot.write(text.as_bytes())?;
        }
        return Ok(());
    }
    if args.create {
        anyhow::bail!("--create is for slots on NATS: a local slot is created by its server");
    }
    let mut options = WriterOptions::new().timeout(args.timeout);
    if let Some(addr) = args.broadcast_addr {
        options = options.broadcast_addr(addr);
    }
    if !args.any_owner && crate::owner::is_local(&args.name) {
        for uid in crate::owner::trusted() {
            options = options.require_owner(uid);
        }
    }
    let slot = options.open(args.name.as_str())?;
    for text in &args.texts {
        slot.write(text.as_bytes())?;
    }
    Ok(())
}
