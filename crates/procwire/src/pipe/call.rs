//! One request and its answer in one call: `CallNamedPipe`.

use std::time::{Duration, Instant};

use super::{ClientOptions, PipeError};
use crate::name::Name;
use crate::security::Access;
use crate::wire::PipeMode;

/// Connects to the message pipe `name` (waiting while every instance is busy), sends
/// `request`, receives the answer and closes (`CallNamedPipe`), all within `timeout`.
/// Uses [`ClientOptions::new`]; [`ClientOptions::call`] takes other options (shared memory,
/// a required owner, TLS).
///
/// # Errors
///
/// As [`ClientOptions::call`].
///
/// # Examples
///
/// ```no_run
/// use std::time::Duration;
///
/// let answer = procwire::pipe::call(r"\\.\pipe\Calculator", b"2 + 2", Duration::from_secs(2))?;
/// # Ok::<(), procwire::pipe::PipeError>(())
/// ```
///
/// # References
/// - [`CallNamedPipe`](https://learn.microsoft.com/en-us/windows/win32/api/winbase/nf-winbase-callnamedpipea)
#[doc(alias = "CallNamedPipe")]
pub fn call<N>(name: N, request: &[u8], timeout: Duration) -> Result<Vec<u8>, PipeError>
where
    N: TryInto<Name>,
    N::Error: Into<PipeError>,
{
    ClientOptions::new().call(name, request, timeout)
}

impl ClientOptions {
    /// The options of one call: these, in message read mode with read-write access, and
    /// `timeout` for connecting.
    pub(crate) fn for_call(&self, timeout: Duration) -> ClientOptions {
        self.clone()
            .read_mode(PipeMode::Message)
            .access(Access::ReadWrite)
            .timeout(timeout)
    }

    /// Connects to the message pipe `name` with these options (in message read mode and
    /// read-write access whatever they say), waiting while every instance is busy; sends
    /// `request`; receives the answer; closes (`CallNamedPipe`). `timeout` bounds all of
    /// it: connecting, waiting for a free instance and waiting for the answer; this
    /// options' own [`timeout`](Self::timeout) is not used.
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open) (including [`PipeError::Busy`] when every instance stayed in
    /// use) and [`PipeConnection::transact`](super::PipeConnection::transact);
    /// [`PipeError::Timeout`] when the answer did not come within what was left of
    /// `timeout`; [`PipeError::ModeMismatch`] on a byte-type pipe.
    #[doc(alias = "CallNamedPipe")]
    pub fn call<N>(&self, name: N, request: &[u8], timeout: Duration) -> Result<Vec<u8>, PipeError>
    where
        N: TryInto<Name>,
        N::Error: Into<PipeError>,
    {
        let deadline = Instant::now() + timeout;
        let mut pipe = self.for_call(timeout).open(name)?;
        let left = deadline.saturating_duration_since(Instant::now());
        let answer = pipe
            .transact_timeout(request, left)
            .map_err(|e| call_timeout(e, timeout))?;
        pipe.disconnect();
        Ok(answer)
    }
}

/// A call's timeout says the whole time allowed.
pub(crate) fn call_timeout(e: PipeError, timeout: Duration) -> PipeError {
    match e {
        PipeError::Timeout { name, what, .. } => PipeError::Timeout {
            name,
            what,
            after: timeout,
        },
        e => e,
    }
}
