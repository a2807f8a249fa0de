//! `CallNamedPipe`, async.

use std::time::Duration;

use crate::name::Name;
use crate::pipe::{ClientOptions, PipeError};

/// Connects, sends `request`, receives the answer and closes, within `timeout`, as
/// [`crate::pipe::call`] does, without blocking the runtime.
///
/// # Errors
///
/// As [`crate::pipe::call`].
///
/// # Examples
///
/// ```no_run
/// use std::time::Duration;
///
/// # async fn run() -> Result<(), procwire::pipe::PipeError> {
/// let answer =
///     procwire::pipe::tokio::call(r"\\.\pipe\Calculator", b"2 + 2", Duration::from_secs(2))
///         .await?;
/// # Ok(()) }
/// ```
#[doc(alias = "CallNamedPipe")]
pub async fn call<N>(name: N, request: &[u8], timeout: Duration) -> Result<Vec<u8>, PipeError>
where
    N: TryInto<Name>,
    N::Error: Into<PipeError>,
{
    ClientOptions::new()
        .call_async(name, request, timeout)
        .await
}

impl ClientOptions {
    /// [`call`](Self::call), async: connects, transacts and closes within `timeout`.
    ///
    /// # Errors
    ///
    /// As [`call`](Self::call).
    #[doc(alias = "CallNamedPipe")]
    pub async fn call_async<N>(
        &self,
        name: N,
        request: &[u8],
        timeout: Duration,
    ) -> Result<Vec<u8>, PipeError>
    where
        N: TryInto<Name>,
        N::Error: Into<PipeError>,
    {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut pipe = self.for_call(timeout).open_async(name).await?;
        let name = pipe.name().to_owned();
        let answer = tokio::time::timeout_at(deadline, pipe.transact(request))
            .await
            .map_err(|_| PipeError::Timeout {
                name,
                what: "waiting for the answer",
                after: timeout,
            })??;
        Ok(answer)
    }
}
