//! Stopping on SIGINT and SIGTERM as a clean exit does.
//!
//! A server killed by the default action of a signal runs no destructor, and so leaves its
//! name behind (the socket and the registry entry, which the library removes on drop).
//! Commands that hold a name catch both signals instead: a blocking command asks
//! [`Shutdown`] between waits, an async one awaits [`StopSignals::recv`], and either
//! returns [`Stopped`], which unwinds the command's frames (dropping, and so removing, what
//! it created) and becomes exit status 128 + the signal's number, as the shell reports a
//! process killed by it. A second signal while the first is being handled exits at once.

use std::fmt;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use anyhow::Context;
use tokio::signal::unix::{signal, Signal, SignalKind};

/// The signals that stop a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StopSignal {
    Interrupt,
    Terminate,
}

impl StopSignal {
    /// The signal's number.
    fn number(self) -> u8 {
        match self {
            StopSignal::Interrupt => 2,
            StopSignal::Terminate => 15,
        }
    }

    /// The exit status of a process stopped by this signal: 128 + its number.
    pub(crate) fn exit_status(self) -> u8 {
        128 + self.number()
    }
}

impl fmt::Display for StopSignal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StopSignal::Interrupt => "SIGINT",
            StopSignal::Terminate => "SIGTERM",
        })
    }
}

/// The error a command returns when a signal stopped it (after its names were removed).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stopped(pub(crate) StopSignal);

impl fmt::Display for Stopped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "stopped by {}", self.0)
    }
}

impl std::error::Error for Stopped {}

/// SIGINT and SIGTERM, caught from the moment this is made (inside a tokio runtime with
/// I/O enabled).
pub(crate) struct StopSignals {
    interrupt: Signal,
    terminate: Signal,
}

impl StopSignals {
    /// Catches both signals from now on.
    pub(crate) fn new() -> anyhow::Result<StopSignals> {
        Ok(StopSignals {
            interrupt: signal(SignalKind::interrupt()).context("cannot catch SIGINT")?,
            terminate: signal(SignalKind::terminate()).context("cannot catch SIGTERM")?,
        })
    }

    /// Waits for the next of the two signals.
    pub(crate) async fn recv(&mut self) -> StopSignal {
        tokio::select! {
            _ = self.interrupt.recv() => StopSignal::Interrupt,
            _ = self.terminate.recv() => StopSignal::Terminate,
        }
    }
}

/// For blocking commands: a thread that catches SIGINT and SIGTERM and records the first.
#[derive(Clone)]
pub(crate) struct Shutdown {
    state: Arc<(Mutex<Option<StopSignal>>, Condvar)>,
}

impl Shutdown {
    /// Catches both signals from when this returns.
    ///
    /// # Errors
    ///
    /// When the thread or the signal handlers cannot be set up.
    pub(crate) fn install() -> anyhow::Result<Shutdown> {
        let shutdown = Shutdown {
            state: Arc::new((Mutex::new(None), Condvar::new())),
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .context("cannot start the signal thread's runtime")?;
        let mut signals = runtime.block_on(async { StopSignals::new() })?;
        let state = Arc::clone(&shutdown.state);
        std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                runtime.block_on(async {
                    let first = signals.recv().await;
                    let (lock, wake) = &*state;
                    *lock.lock().unwrap_or_else(|e| e.into_inner()) = Some(first);
                    wake.notify_all();
                    // Asked twice: stop now, whatever the command is doing.
                    let second = signals.recv().await;
                    eprintln!("procwire: {second} again; exiting at once");
                    std::process::exit(i32::from(second.exit_status()));
                });
            })
            .context("cannot start the signal thread")?;
        Ok(shutdown)
    }

    /// The signal that asked to stop, if one came.
    pub(crate) fn requested(&self) -> Option<StopSignal> {
        *self.state.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Fails with [`Stopped`] if a signal asked to stop.
    pub(crate) fn check(&self) -> Result<(), Stopped> {
        match self.requested() {
            Some(signal) => Err(Stopped(signal)),
            None => Ok(()),
        }
    }

    /// Waits up to `timeout` for a signal; fails with [`Stopped`] when one came.
    pub(crate) fn sleep(&self, timeout: Duration) -> Result<(), Stopped> {
        let (lock, wake) = &*self.state;
        let guard = lock.lock().unwrap_or_else(|e| e.into_inner());
        let (guard, _) = wake
            .wait_timeout_while(guard, timeout, |got| got.is_none())
            .unwrap_or_else(|e| e.into_inner());
        match *guard {
            Some(signal) => Err(Stopped(signal)),
            None => Ok(()),
        }
    }
}
