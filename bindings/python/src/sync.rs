//! `procwire.Mutex`, `procwire.Semaphore` and `procwire.Event`.

use std::sync::Mutex;
use std::thread::ThreadId;

use procwire::sync::{
    EventReset, LockError, NamedEvent, NamedMutex, NamedMutexGuard, NamedSemaphore, SyncError,
};
use pyo3::prelude::*;

use crate::errors::{closed, raise, Abandoned, NotPermitted};

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyMutex>()?;
    m.add_class::<PySemaphore>()?;
    m.add_class::<PyEvent>()?;
    Ok(())
}

/// True when a wait ran out (a `False` result in Python, as `threading` does), the
/// exception of any other failure.
fn timed_out(e: SyncError) -> PyResult<bool> {
    match e {
        SyncError::Timeout { .. } => Ok(false),
        e => Err(raise(e)),
    }
}

/// The lock one thread took through a handle.
struct Held {
    guard: NamedMutexGuard<'static>,
    thread: ThreadId,
}

// SAFETY: a guard is not `Send` because the lock belongs to the thread that took it (its
// TID is what other processes check). `Held` sits in the handle's `Mutex` only; releasing
// and marking repaired check `thread` first and refuse on another thread. Dropping the
// handle while locked unlocks by the recorded TID, which the library's unlock supports from
// any thread.
unsafe impl Send for Held {}

/// A lock result carried out of a GIL-free section: it is made and used on this same
/// thread (`allow_threads` runs its closure on the calling thread), never sent anywhere.
struct SameThread<T>(T);

// SAFETY: see the type's comment: the value never leaves the thread that made it.
unsafe impl<T> Send for SameThread<T> {}

/// A named mutex (`Mutex.create`, `Mutex.open`, `Mutex.open_or_create`), robust: when its
/// holder dies, the next `acquire` raises `Abandoned` WITH THE LOCK HELD; repair the
/// data, call `mark_repaired()`, then `release()`. A context manager (`with mutex:`).
#[pyclass(name = "Mutex", module = "procwire")]
pub(crate) struct PyMutex {
    // Declared first, so that a held guard is dropped (unlocked) before the mutex.
    held: Mutex<Option<Held>>,
    pub(crate) mutex: Option<Box<NamedMutex>>,
}

impl PyMutex {
    /// The handle of `mutex`, holding no lock.
    pub(crate) fn wrap(mutex: NamedMutex) -> PyMutex {
        PyMutex {
            held: Mutex::new(None),
            mutex: Some(Box::new(mutex)),
        }
    }

    fn held(&self) -> std::sync::MutexGuard<'_, Option<Held>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn not_held(&self) -> PyErr {
        NotPermitted::new_err("this thread does not hold the mutex through this handle")
    }
}

#[pymethods]
impl PyMutex {
    /// Creates the named mutex `name`, unlocked.
    #[staticmethod]
    fn create(py: Python<'_>, name: &str) -> PyResult<PyMutex> {
        Ok(PyMutex::wrap(
            py.allow_threads(|| NamedMutex::create(name))
                .map_err(raise)?,
        ))
    }

    /// Opens the named mutex `name`.
    #[staticmethod]
    fn open(py: Python<'_>, name: &str) -> PyResult<PyMutex> {
        Ok(PyMutex::wrap(
            py.allow_threads(|| NamedMutex::open(name)).map_err(raise)?,
        ))
    }

    /// Opens the named mutex `name`, creating it when no live one has the name.
    #[staticmethod]
    fn open_or_create(py: Python<'_>, name: &str) -> PyResult<PyMutex> {
        Ok(PyMutex::wrap(
            py.allow_threads(|| NamedMutex::open_or_create(name))
                .map_err(raise)?,
        ))
    }

    /// Locks, waiting up to `timeout` seconds (None: as long as it takes); returns False
    /// when the time ran out. Raises `Abandoned` with the lock held when its previous
    /// holder died holding it.
    #[pyo3(signature = (timeout = None))]
    fn acquire(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<bool> {
        let boxed = self.mutex.as_ref().ok_or_else(|| closed("mutex"))?;
        // SAFETY: the boxed mutex stays at its address until the handle drops it, and the
        // guard made from this reference is kept in `held`, dropped before the box (field
        // order, and `close` clears `held` first), so it never outlives the mutex.
        let target: &'static NamedMutex = unsafe { &*(&**boxed as *const NamedMutex) };
        let wait = crate::timeout(timeout)?;
        let SameThread(locked) = py.allow_threads(|| {
            SameThread(match wait {
                None => target.lock(),
                Some(t) => target.lock_timeout(t),
            })
        });
        let (guard, abandoned) = match locked {
            Ok(guard) => (guard, None),
            Err(LockError::Abandoned(guard)) => {
                let previous = guard.previous_owner();
                (guard, Some(previous))
            }
            Err(LockError::Failed(e)) => return timed_out(e),
        };
        *self.held() = Some(Held {
            guard,
            thread: std::thread::current().id(),
        });
        match abandoned {
            None => Ok(true),
            Some(previous) => Err(Abandoned::new_err(format!(
                "mutex `{}` was abandoned: thread {previous} died while holding it; this \
                 thread now holds it: repair the data, call mark_repaired(), then release()",
                target.name()
            ))),
        }
    }

    /// Unlocks; only the thread that locked it may.
    fn release(&self) -> PyResult<()> {
        let mut held = self.held();
        match held.take() {
            Some(h) if h.thread == std::thread::current().id() => Ok(()),
            other => {
                *held = other;
                Err(self.not_held())
            }
        }
    }

    /// Declares the guarded data consistent again after `Abandoned`.
    fn mark_repaired(&self) -> PyResult<()> {
        let mut held = self.held();
        match held.as_mut() {
            Some(h) if h.thread == std::thread::current().id() => {
                h.guard.mark_repaired();
                Ok(())
            }
            _ => Err(self.not_held()),
        }
    }

    /// Closes the handle (a lock still held through it is released).
    fn close(&mut self) {
        *self.held() = None;
        self.mutex = None;
    }

    fn __enter__<'py>(slf: PyRef<'py, Self>) -> PyResult<PyRef<'py, Self>> {
        slf.acquire(slf.py(), None)?;
        Ok(slf)
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, _args: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<()> {
        self.release()
    }
}

/// A named semaphore (`Semaphore.create(name, initial, maximum)`, `Semaphore.open`). As a
/// context manager it takes one unit and gives it back.
#[pyclass(name = "Semaphore", module = "procwire")]
pub(crate) struct PySemaphore {
    pub(crate) semaphore: Option<NamedSemaphore>,
}

impl PySemaphore {
    fn get(&self) -> PyResult<&NamedSemaphore> {
        self.semaphore.as_ref().ok_or_else(|| closed("semaphore"))
    }
}

#[pymethods]
impl PySemaphore {
    /// Creates the named semaphore `name` with `initial` units of at most `maximum`.
    #[staticmethod]
    fn create(py: Python<'_>, name: &str, initial: u32, maximum: u32) -> PyResult<PySemaphore> {
        let s = py
            .allow_threads(|| NamedSemaphore::create(name, initial, maximum))
            .map_err(raise)?;
        Ok(PySemaphore { semaphore: Some(s) })
    }

    /// Opens the named semaphore `name`.
    #[staticmethod]
    fn open(py: Python<'_>, name: &str) -> PyResult<PySemaphore> {
        let s = py
            .allow_threads(|| NamedSemaphore::open(name))
            .map_err(raise)?;
        Ok(PySemaphore { semaphore: Some(s) })
    }

    /// Takes one unit, waiting up to `timeout` seconds; False when the time ran out.
    #[pyo3(signature = (timeout = None))]
    fn acquire(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<bool> {
        let s = self.get()?;
        let wait = crate::timeout(timeout)?;
        let result = py.allow_threads(|| match wait {
            None => s.wait(),
            Some(t) => s.wait_timeout(t),
        });
        result.map(|()| true).or_else(timed_out)
    }

    /// Gives back `n` units; returns the count before. Raises `OverRelease` (nothing
    /// released) when the count would go above the maximum.
    #[pyo3(signature = (n = 1))]
    fn release(&self, n: u32) -> PyResult<u32> {
        self.get()?.release(n).map_err(raise)
    }

    /// The units free now (a snapshot).
    #[getter]
    fn count(&self) -> PyResult<u32> {
        Ok(self.get()?.count())
    }

    /// The maximum count.
    #[getter]
    fn maximum(&self) -> PyResult<u32> {
        Ok(self.get()?.max())
    }

    /// Closes the handle.
    fn close(&mut self) {
        self.semaphore = None;
    }

    fn __enter__<'py>(slf: PyRef<'py, Self>) -> PyResult<PyRef<'py, Self>> {
        slf.acquire(slf.py(), None)?;
        Ok(slf)
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, _args: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<()> {
        self.release(1).map(|_| ())
    }
}

/// A named event (`Event.create(name, manual_reset=False, initially_set=False)`,
/// `Event.open`).
#[pyclass(name = "Event", module = "procwire")]
pub(crate) struct PyEvent {
    pub(crate) event: Option<NamedEvent>,
}

impl PyEvent {
    fn get(&self) -> PyResult<&NamedEvent> {
        self.event.as_ref().ok_or_else(|| closed("event"))
    }
}

#[pymethods]
impl PyEvent {
    /// Creates the named event `name`: manual-reset (stays set until reset) or auto-reset
    /// (each set releases one waiter).
    #[staticmethod]
    #[pyo3(signature = (name, *, manual_reset = false, initially_set = false))]
    fn create(
        py: Python<'_>,
        name: &str,
        manual_reset: bool,
        initially_set: bool,
    ) -> PyResult<PyEvent> {
        let reset = if manual_reset {
            EventReset::Manual
        } else {
            EventReset::Auto
        };
        let e = py
            .allow_threads(|| NamedEvent::create(name, reset, initially_set))
            .map_err(raise)?;
        Ok(PyEvent { event: Some(e) })
    }

    /// Opens the named event `name`.
    #[staticmethod]
    fn open(py: Python<'_>, name: &str) -> PyResult<PyEvent> {
        let e = py.allow_threads(|| NamedEvent::open(name)).map_err(raise)?;
        Ok(PyEvent { event: Some(e) })
    }

    /// Sets the event.
    fn set(&self) -> PyResult<()> {
        self.get()?.set().map_err(raise)
    }

    /// Resets the event.
    fn reset(&self) -> PyResult<()> {
        self.get()?.reset().map_err(raise)
    }

    /// Whether the event is set now (a snapshot).
    fn is_set(&self) -> PyResult<bool> {
        Ok(self.get()?.is_set())
    }

    /// Waits up to `timeout` seconds for the event; False when the time ran out.
    #[pyo3(signature = (timeout = None))]
    fn wait(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<bool> {
        let e = self.get()?;
        let wait = crate::timeout(timeout)?;
        let result = py.allow_threads(|| match wait {
            None => e.wait(),
            Some(t) => e.wait_timeout(t),
        });
        result.map(|()| true).or_else(timed_out)
    }

    /// Closes the handle.
    fn close(&mut self) {
        self.event = None;
    }
}
