//! `procwire clipboard copy`, `procwire clipboard paste` and `procwire clipboard watch`.
//!
//! On X11 the clipboard's data lives in the process that copied it. So `copy` without
//! `--serve` does what xclip does: it starts a background copy of itself that owns the
//! clipboard and serves the data until another copy replaces it, waits until that process
//! owns the clipboard, says so and exits. `copy --serve` serves in the foreground instead and
//! exits when replaced.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use procwire_clipboard::{ChangeReason, ClipboardOptions, Content};

use crate::duration::parse_duration;

/// The line a serving copy prints once it owns the clipboard.
const SERVING: &str = "serving";

#[derive(Debug, Subcommand)]
pub(crate) enum ClipboardCommand {
    /// Put text, a PNG image or bytes under a format name on the clipboard.
    #[command(
        after_help = "On X11 the clipboard keeps no data of its own: the process that \
        copies serves it to every paste, and when that process exits the data is gone (unless \
        a clipboard manager took it). So by default `copy` leaves a background process \
        (detached, like xclip's) that serves the data until another copy replaces it, and \
        prints its pid; with --serve it serves in the foreground instead and exits when \
        replaced."
    )]
    Copy(CopyArgs),
    /// Write what is on the clipboard to standard output, as is (text unless --format or
    /// --png; no newline is added).
    Paste(PasteArgs),
    /// Print a line each time the clipboard changes hands (a copy, or its owner's exit).
    Watch(WatchArgs),
}

#[derive(Debug, Args)]
pub(crate) struct CopyArgs {
    /// Copy the data under this format name (an X atom name or a MIME type such as
    /// application/x-myapp) instead of as text.
    #[arg(long, conflicts_with = "png")]
    format: Option<String>,
    /// Copy a PNG image (image/png): the argument is then a PNG file's path, or `-`.
    #[arg(long)]
    png: bool,
    /// The text to copy, or `-` to read the data from standard input.
    #[arg(default_value = "-", value_name = "TEXT|-")]
    data: String,
    /// Serve in the foreground until another copy replaces this one, then exit.
    #[arg(long)]
    serve: bool,
    /// How long to wait for the X server, and for a paste in the middle of a large transfer
    /// (`5s`, `500ms`).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    timeout: Duration,
    /// The background server that `copy` without --serve starts.
    #[arg(long, hide = true)]
    background: bool,
}

#[derive(Debug, Args)]
pub(crate) struct PasteArgs {
    /// Paste the data of this format (an X atom name or MIME type) instead of text.
    #[arg(long, conflicts_with = "png")]
    format: Option<String>,
    /// Paste a PNG image (image/png).
    #[arg(long)]
    png: bool,
    /// Print the formats on offer, one per line, instead of the data.
    #[arg(long, conflicts_with_all = ["format", "png"])]
    list: bool,
    /// The deadline of the whole paste: the owner's answer and every piece of a large
    /// transfer must arrive within it (`5s`, `500ms`).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    timeout: Duration,
}

#[derive(Debug, Args)]
pub(crate) struct WatchArgs {
    /// Stop after this many changes.
    #[arg(long)]
    count: Option<usize>,
    /// How long to wait for the formats of each new owner (`5s`, `500ms`).
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    timeout: Duration,
}

pub(crate) fn run(cmd: ClipboardCommand) -> anyhow::Result<()> {
    match cmd {
        ClipboardCommand::Copy(args) => copy(args),
        ClipboardCommand::Paste(args) => paste(args),
        ClipboardCommand::Watch(args) => watch(args),
    }
}

fn copy(args: CopyArgs) -> anyhow::Result<()> {
    let data = if args.data == "-" {
        let mut data = Vec::new();
        io::stdin()
            .lock()
            .read_to_end(&mut data)
            .context("reading the data from standard input")?;
        data
    } else if args.png {
        std::fs::read(&args.data).with_context(|| format!("reading the PNG file {}", args.data))?
    } else {
        args.data.clone().into_bytes()
    };
    let (content, what) = if args.png {
        (Content::Png(data), "image/png".to_owned())
    } else if let Some(format) = &args.format {
        (Content::bytes(format.clone(), data), format.clone())
    } else {
        let text = String::from_utf8(data)
            .context("the text is not UTF-8; copy bytes with --format NAME instead")?;
        (Content::Text(text), "text".to_owned())
    };
    if args.serve || args.background {
        return serve(&args, content, &what);
    }
    // Check the content and the display here, where the error can be seen.
    let clipboard = ClipboardOptions::new().timeout(args.timeout).connect()?;
    drop(clipboard);
    spawn_background(&args, content, &what)
}

/// Owns the clipboard and serves `content` until another copy replaces it.
fn serve(args: &CopyArgs, content: Content, what: &str) -> anyhow::Result<()> {
    let size = content_len(&content);
    let clipboard = ClipboardOptions::new().timeout(args.timeout).connect()?;
    clipboard.copy(content)?;
    let mut out = io::stdout().lock();
    writeln!(
        out,
        "{SERVING} {size} bytes as {what} on display {} until another copy replaces them",
        clipboard.display()
    )?;
    out.flush()?;
    if args.background {
        // Nobody reads our output any more once the starting process has exited.
        drop(out);
        return Ok(clipboard.serve_until_replaced()?);
    }
    clipboard.serve_until_replaced()?;
    writeln!(out, "replaced by another copy; exiting")?;
    Ok(())
}

/// Starts `procwire clipboard copy --background` with the data on its standard input, and
/// returns once it serves.
fn spawn_background(args: &CopyArgs, content: Content, what: &str) -> anyhow::Result<()> {
    use std::os::unix::process::CommandExt;
    let size = content_len(&content);
    let (format, data) = match content {
        Content::Text(text) => (None, text.into_bytes()),
        Content::Png(data) => (Some("--png".to_owned()), data),
        Content::Bytes { format, data } => (Some(format), data),
        _ => bail!("this kind of content cannot be copied in the background; use --serve"),
    };
    let mut cmd = Command::new(std::env::current_exe().context("finding the procwire binary")?);
    cmd.args(["clipboard", "copy", "--background", "--timeout"])
        .arg(format!("{}ms", args.timeout.as_millis()));
    match format.as_deref() {
        Some("--png") => {
            cmd.arg("--png");
        }
        Some(name) => {
            cmd.arg("--format").arg(name);
        }
        None => {}
    }
    cmd.arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group: a Ctrl-C meant for the shell's job does not end it.
        .process_group(0);
    let mut child = cmd.spawn().context("starting the background copy")?;
    let mut stdin = child.stdin.take().expect("piped stdin");
    let writer = std::thread::spawn(move || stdin.write_all(&data));
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let limit = args.timeout * 2 + Duration::from_secs(5);
    let line = rx.recv_timeout(limit).unwrap_or_default();
    let _ = writer.join();
    if !line.starts_with(SERVING) {
        let _ = child.kill();
        let _ = child.wait();
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        let err = err.trim().trim_start_matches("procwire: ");
        if err.is_empty() {
            bail!("the background copy did not start serving within {limit:?}");
        }
        bail!("{err}");
    }
    println!(
        "copied {size} bytes as {what}; background process {} serves them until another copy \
         replaces them (the clipboard keeps no copy of its own)",
        child.id()
    );
    Ok(())
}

fn content_len(content: &Content) -> usize {
    match content {
        Content::Text(text) => text.len(),
        Content::Png(data) | Content::Bytes { data, .. } => data.len(),
        _ => 0,
    }
}

fn paste(args: PasteArgs) -> anyhow::Result<()> {
    let clipboard = ClipboardOptions::new().timeout(args.timeout).connect()?;
    let mut out = io::stdout().lock();
    if args.list {
        for format in clipboard.formats()? {
            writeln!(out, "{format}")?;
        }
    } else {
        let data = if args.png {
            clipboard.paste_png()?
        } else if let Some(format) = &args.format {
            clipboard.paste(format)?
        } else {
            clipboard.paste_text()?.into_bytes()
        };
        out.write_all(&data)?;
    }
    out.flush()?;
    Ok(())
}

fn watch(args: WatchArgs) -> anyhow::Result<()> {
    let clipboard = ClipboardOptions::new().timeout(args.timeout).connect()?;
    let mut watcher = clipboard.watch()?;
    let mut out = io::stdout().lock();
    writeln!(
        out,
        "watching the clipboard on display {}",
        clipboard.display()
    )?;
    out.flush()?;
    let mut n = 0usize;
    while args.count.is_none_or(|count| n < count) {
        let change = watcher.recv()?;
        n += 1;
        match change.reason {
            ChangeReason::NewOwner => {
                let owner = change
                    .owner
                    .map(|w| format!(" 0x{w:08x}"))
                    .unwrap_or_default();
                let formats = match clipboard.formats() {
                    Ok(formats) => formats.join(", "),
                    Err(e) => format!("unavailable ({e})"),
                };
                writeln!(out, "change {n}: new owner{owner}; formats: {formats}")?;
            }
            ChangeReason::Cleared => writeln!(out, "change {n}: cleared")?,
            _ => writeln!(out, "change {n}: the owner exited; the clipboard is empty")?,
        }
        out.flush()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_len_counts_bytes() {
        assert_eq!(content_len(&Content::text("héllo")), 6);
        assert_eq!(content_len(&Content::bytes("x", vec![0; 3])), 3);
    }
}
