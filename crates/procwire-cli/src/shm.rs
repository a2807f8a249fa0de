//! `procwire shm create`, `read`, `write` and `rm`: named shared memory from the shell.

use std::io::{self, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Subcommand, ValueEnum};
use procwire::mapping::{Lifetime, Mapping, MappingOptions};
use procwire::registry::NamedObject;
use procwire::security::{Access, AccessList};

use crate::shutdown::Shutdown;

#[derive(Debug, Subcommand)]
pub(crate) enum ShmCommand {
    /// Create a named mapping, optionally filled with text or a file's bytes. It stays until
    /// `procwire shm rm`, unless --hold.
    Create(CreateArgs),
    /// Print a mapping's bytes: up to the first NUL as a line of text, or exactly --len raw
    /// bytes.
    Read(ReadArgs),
    /// Write text into a mapping at an offset.
    Write(WriteArgs),
    /// Remove a mapping's name (a file-backed mapping's file is kept).
    Rm(RmArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum GrantArg {
    Read,
    Readwrite,
}

#[derive(Debug, Args)]
pub(crate) struct CreateArgs {
    /// The mapping's name, such as `HelloWorld`, `Local\HelloWorld` or `Global\Telemetry`.
    name: String,
    /// The size in bytes, or with a suffix: `64K` or `64KiB`, `1M` or `1MiB`, `1G` or `1GiB`. Defaults to the length
    /// of --from or of --file.
    #[arg(long, value_parser = crate::size::parse_size)]
    size: Option<u64>,
    /// Write this text at offset 0 (followed by a NUL, as a C string).
    #[arg(long, conflicts_with = "from")]
    write: Option<String>,
    /// Copy this file's bytes in at offset 0.
    #[arg(long)]
    from: Option<PathBuf>,
    /// Back the mapping with this file (created if missing) instead of memory.
    #[arg(long)]
    file: Option<PathBuf>,
    /// Also let every other local user open it, reading or reading and writing.
    #[arg(long, value_enum)]
    everyone: Option<GrantArg>,
    /// Keep the mapping only while this process runs: wait until standard input closes,
    /// then remove the name (as the seed's server does when it exits).
    #[arg(long)]
    hold: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ReadArgs {
    /// The mapping's name.
    name: String,
    /// Where to start reading.
    #[arg(long, default_value = "0", value_parser = crate::size::parse_size)]
    offset: u64,
    /// How many bytes to print, raw and without a newline. Without it, the text from
    /// --offset up to the first NUL is printed as one line.
    #[arg(long, value_parser = crate::size::parse_size)]
    len: Option<u64>,
}

#[derive(Debug, Args)]
pub(crate) struct WriteArgs {
    /// The mapping's name.
    name: String,
    /// The text to write (followed by a NUL unless --no-nul).
    text: String,
    /// Where to write it.
    #[arg(long, default_value = "0", value_parser = crate::size::parse_size)]
    offset: u64,
    /// Do not add a NUL after the text.
    #[arg(long)]
    no_nul: bool,
}

#[derive(Debug, Args)]
pub(crate) struct RmArgs {
    /// The mapping's name.
    name: String,
}

pub(crate) fn run(cmd: ShmCommand) -> anyhow::Result<()> {
    match cmd {
        ShmCommand::Create(args) => create(args),
        ShmCommand::Read(args) => read(args),
        ShmCommand::Write(args) => write(args),
        ShmCommand::Rm(args) => {
            Mapping::remove(args.name.as_str())?;
            Ok(())
        }
    }
}

fn create(args: CreateArgs) -> anyhow::Result<()> {
    let content = match (&args.write, &args.from) {
        (Some(text), _) => Some([text.as_bytes(), b"\0"].concat()),
        (None, Some(path)) => {
            Some(std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?)
        }
        (None, None) => None,
    };
    let size = match (args.size, &content) {
        (Some(size), _) => Some(size),
        (None, Some(bytes)) if args.file.is_none() => Some(bytes.len() as u64),
        (None, _) => None,
    };
    if let (Some(size), Some(bytes)) = (size, &content) {
        if bytes.len() as u64 > size {
            bail!(
                "the content is {} bytes, more than the mapping's {size}; raise --size",
                bytes.len()
            );
        }
    }
    let mut acl = AccessList::owner_only();
    match args.everyone {
        Some(GrantArg::Read) => acl = acl.everyone(Access::Read),
        Some(GrantArg::Readwrite) => acl = acl.everyone(Access::ReadWrite),
        None => {}
    }
    let mut options = MappingOptions::new()
        .access_list(acl)
        .lifetime(if args.hold {
            Lifetime::RemoveOnDrop
        } else {
            Lifetime::Persistent
        });
    if let Some(size) = size {
        options = options.size(size);
    }
    if let Some(file) = &args.file {
        options = options.backed_by_file(file);
    }
    let shutdown = if args.hold {
        Some(Shutdown::install()?)
    } else {
        None
    };
    let mapping = options.create(args.name.as_str())?;
    if let Some(bytes) = &content {
        if !bytes.is_empty() {
            let view = mapping.view(0, bytes.len())?;
            view.write_at(0, bytes)?;
            view.flush()?;
        }
    }
    let mut out = io::stdout().lock();
    match (mapping.shm_name(), mapping.file_path()) {
        (Some(shm), _) => writeln!(
            out,
            "created {}: {} bytes of memory in /dev/shm/{shm} (Python: SharedMemory(name=\"{shm}\"))",
            mapping.name(),
            mapping.size()
        )?,
        (None, Some(path)) => writeln!(
            out,
            "created {}: {} bytes of the file {}",
            mapping.name(),
            mapping.size(),
            path.display()
        )?,
        (None, None) => writeln!(out, "created {}", mapping.name())?,
    }
    if let Some(shutdown) = shutdown {
        writeln!(
            out,
            "holding {} until standard input closes",
            mapping.name()
        )?;
        out.flush()?;
        drop(out);
        let stdin = std::thread::spawn(|| io::copy(&mut io::stdin().lock(), &mut io::sink()));
        while !stdin.is_finished() {
            // On a signal the mapping is dropped as the error unwinds: the name goes too.
            shutdown.sleep(Duration::from_millis(100))?;
        }
        drop(mapping);
        println!("closed; the name is removed");
    } else {
        writeln!(out, "it stays until `procwire shm rm {}`", args.name)?;
    }
    Ok(())
}

fn read(args: ReadArgs) -> anyhow::Result<()> {
    let mapping = Mapping::open(args.name.as_str(), Access::Read)?;
    let size = mapping.size();
    if args.offset >= size {
        bail!(
            "offset {} is past the end of mapping `{}` ({size} bytes)",
            args.offset,
            mapping.name()
        );
    }
    let len = args.len.unwrap_or(size - args.offset);
    let len = usize::try_from(len).context("the length does not fit in memory")?;
    let view = mapping.view(args.offset, len)?;
    let mut out = io::stdout().lock();
    match args.len {
        Some(_) => {
            // Raw bytes, in chunks so that a large mapping needs no large buffer.
            let mut buf = vec![0u8; len.min(1 << 20)];
            let mut at = 0;
            while at < len {
                let n = buf.len().min(len - at);
                view.read_at(at, &mut buf[..n])?;
                out.write_all(&buf[..n])?;
                at += n;
            }
        }
        None => {
            let bytes = view.read_vec(0, len)?;
            let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
            out.write_all(&bytes[..end])?;
            out.write_all(b"\n")?;
        }
    }
    out.flush()?;
    Ok(())
}

fn write(args: WriteArgs) -> anyhow::Result<()> {
    let mapping = Mapping::open(args.name.as_str(), Access::ReadWrite)?;
    let mut bytes = args.text.into_bytes();
    if !args.no_nul {
        bytes.push(0);
    }
    if bytes.is_empty() {
        return Ok(());
    }
    let view = mapping.view(args.offset, bytes.len())?;
    view.write_at(0, &bytes)?;
    view.flush()?;
    Ok(())
}
