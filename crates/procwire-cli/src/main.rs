//! The `procwire` command: try procwire's techniques from the shell.

#![forbid(unsafe_code)]

mod bench;
mod clipboard;
mod demo;
mod duration;
mod http_client;
mod ls;
mod mailslot;
mod nats;
mod owner;
mod pipe;
mod remoting;
mod shm;
mod shutdown;
mod size;
mod tls;

use std::io;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// procwire: named pipes and more, for processes that need to talk.
#[derive(Debug, Parser)]
#[command(name = "procwire", version, about)]
struct Cli {
    /// More log output on stderr (-v: info, -vv: debug, -vvv: trace).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the samples end to end, as separate processes, and print the transcript.
    Demo,
    /// Serve or connect to a named pipe.
    #[command(subcommand)]
    Pipe(pipe::PipeCommand),
    /// Serve or write to a mailslot.
    #[command(subcommand)]
    Mailslot(mailslot::MailslotCommand),
    /// Serve the remoting sample or call a remote object.
    #[command(subcommand)]
    Remoting(remoting::RemotingCommand),
    /// List the live objects in the Local and Global namespaces.
    Ls,
    /// Create, read, write and remove named shared memory (file mappings).
    #[command(subcommand)]
    Shm(shm::ShmCommand),
    /// Copy to, paste from and watch the system clipboard (X11).
    #[command(subcommand)]
    Clipboard(clipboard::ClipboardCommand),
    /// Measure every technique against the raw kernel primitive beneath it.
    Bench(bench::BenchArgs),
    /// A peer process of `procwire bench` (started by it, not by hand).
    #[command(hide = true, name = "bench-peer")]
    BenchPeer {
        /// The peer's role.
        role: String,
        /// The address it serves.
        addr: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let level = match cli.verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level)),
        )
        .with_writer(io::stderr)
        .init();
    let result = match cli.command {
        Command::Demo => demo::run(),
        Command::Pipe(cmd) => pipe::run(cmd),
        Command::Mailslot(cmd) => mailslot::run(cmd),
        Command::Remoting(cmd) => remoting::run(cmd),
        Command::Ls => ls::run(),
        Command::Shm(cmd) => shm::run(cmd),
        Command::Clipboard(cmd) => clipboard::run(cmd),
        Command::Bench(args) => bench::run(args),
        Command::BenchPeer { role, addr } => bench::peer(&role, &addr),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) if e.downcast_ref::<shutdown::Stopped>().is_some() => {
            let shutdown::Stopped(signal) = *e.downcast_ref().expect("checked above");
            eprintln!("procwire: {e}");
            ExitCode::from(signal.exit_status())
        }
        Err(e) => {
            eprintln!("procwire: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Whether the error is our stdout being closed (as by `| head`), which is not a failure.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}
