//! [`Xvfb`]: a headless X server of one's own, for tests, CI and demos.

use std::io::{self, BufRead, BufReader};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A virtual X server (`Xvfb`) started for this process on a free display number and
/// killed when dropped. It listens on its Unix socket only (`-nolisten tcp`); the number is
/// the one the server picked itself (`-displayfd`), so that servers started side by side
/// never collide.
///
/// # Examples
/// ```no_run
/// use procwire_clipboard::{xvfb::Xvfb, ClipboardOptions, Content};
///
/// let xvfb = Xvfb::start()?;
/// let clipboard = ClipboardOptions::new().display(xvfb.display()).connect()?;
/// clipboard.copy(Content::text("hi"))?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Xvfb {
    child: Child,
    display: String,
    // Held open: the server's stdout, where it wrote its display number.
    _stdout: Option<BufReader<ChildStdout>>,
}

impl Xvfb {
    /// Starts `Xvfb` and waits (at most 30 s) until it accepts connections.
    ///
    /// # Errors
    /// `NotFound` with "Xvfb must be installed (apt-get install xvfb)" when there is no
    /// `Xvfb`; an error when it does not come up.
    pub fn start() -> io::Result<Xvfb> {
        let mut child = Command::new("Xvfb")
            .args([
                "-displayfd",
                "1",
                "-nolisten",
                "tcp",
                "-screen",
                "0",
                "320x200x24",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| match e.kind() {
                io::ErrorKind::NotFound => io::Error::new(
                    io::ErrorKind::NotFound,
                    "Xvfb must be installed (apt-get install xvfb)",
                ),
                _ => e,
            })?;
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let read = reader.read_line(&mut line);
            let _ = tx.send((read, line, reader));
        });
        let failed = |child: &mut Child, why: String| {
            let _ = child.kill();
            let _ = child.wait();
            io::Error::other(why)
        };
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok((Ok(_), line, reader)) => match line.trim().parse::<u32>() {
                Ok(n) => Ok(Xvfb {
                    child,
                    display: format!(":{n}"),
                    _stdout: Some(reader),
                }),
                Err(_) => Err(failed(
                    &mut child,
                    format!("Xvfb did not report a display number (it said {line:?})"),
                )),
            },
            Ok((Err(e), _, _)) => Err(failed(
                &mut child,
                format!("reading Xvfb's display number: {e}"),
            )),
            Err(_) => Err(failed(&mut child, "Xvfb did not start within 30 s".into())),
        }
    }

    /// The display name, such as `:3`, for `DISPLAY` or [`ClipboardOptions::display`](crate::ClipboardOptions::display).
    pub fn display(&self) -> &str {
        &self.display
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
