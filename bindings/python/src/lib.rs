//! The `procwire` Python package's native module, `procwire._procwire`: named pipes,
//! mailslots, file mappings and named mutexes, semaphores and events, over the procwire
//! library.
//!
//! # Organization
//!
//! - [`errors`]: `procwire.Error` and one subclass per failure kind of the library.
//! - [`pipe`], [`mailslot`], [`mapping`], [`sync`]: the classes, one module per technique.
//!
//! Every call that can block releases the GIL while it waits. Timeouts are float seconds,
//! `None` waiting as long as it takes. The `a`-prefixed methods run the blocking call on the
//! running asyncio loop's default executor; `arecv` and `aread` do it in short slices, so
//! that a cancelled one takes nothing (`procwire/_aio.py`).

use std::time::Duration;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

mod errors;
mod mailslot;
mod mapping;
mod pipe;
mod sync;

/// A timeout in float seconds as a duration; `None` stays `None` (no limit).
pub(crate) fn timeout(seconds: Option<f64>) -> PyResult<Option<Duration>> {
    match seconds {
        None => Ok(None),
        Some(s) => Duration::try_from_secs_f64(s)
            .map(Some)
            .map_err(|_| PyValueError::new_err(format!("timeout {s} is not a number of seconds >= 0; pass None to wait as long as it takes"))),
    }
}

/// What stands for "no limit" where the library needs a duration: 136 years.
pub(crate) const FOREVER: Duration = Duration::from_secs(u32::MAX as u64);

/// Runs `object.method(timeout)` on the running asyncio loop's default executor: the
/// future of a blocking call that releases the GIL while it waits.
pub(crate) fn in_executor<'py>(
    object: &Bound<'py, PyAny>,
    method: &str,
    timeout: Option<f64>,
) -> PyResult<Bound<'py, PyAny>> {
    let py = object.py();
    let call = object.getattr(method)?;
    let running = py.import("asyncio")?.call_method0("get_running_loop")?;
    running.call_method1("run_in_executor", (py.None(), call, timeout))
}

/// The cancel-safe asyncio receive of `object` (see `procwire/_aio.py`): a coroutine that
/// awaits `object._take_for(slice)` until it gives something or `timeout` runs out.
pub(crate) fn cancel_safe<'py>(
    object: &Bound<'py, PyAny>,
    timeout: Option<f64>,
    what: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let take = object.py().import("procwire._aio")?.getattr("take")?;
    take.call1((object, timeout, what))
}

#[pymodule]
fn _procwire(m: &Bound<'_, PyModule>) -> PyResult<()> {
    errors::register(m)?;
    pipe::register(m)?;
    mailslot::register(m)?;
    mapping::register(m)?;
    sync::register(m)?;
    Ok(())
}
