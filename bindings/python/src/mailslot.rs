//! `procwire.Mailslot`, `procwire.MailslotWriter` and `procwire.MailslotInfo`.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use procwire::mailslot::{
    MailslotError, MailslotOptions, MailslotServer, MailslotWriter, ReadTimeout, WriterOptions,
};
use procwire::security::Access;
use procwire::security::AccessList;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::errors::{closed, raise};
use crate::pipe::{with_bytes, ExportSlot, Writable};
use crate::{timeout, FOREVER};

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyMailslot>()?;
    m.add_class::<PyMailslotWriter>()?;
    m.add_class::<PyMailslotInfo>()?;
    Ok(())
}

/// What `Mailslot.info()` reports (`GetMailslotInfo`).
#[pyclass(name = "MailslotInfo", module = "procwire", frozen, get_all)]
pub(crate) struct PyMailslotInfo {
    /// Messages waiting to be read.
    waiting: usize,
    /// The size of the next message, or None.
    next_size: Option<usize>,
    /// The largest message writers may send.
    max_message_size: usize,
    /// How long reads wait, in seconds; None: as long as it takes.
    read_timeout: Option<f64>,
}

#[pymethods]
impl PyMailslotInfo {
    fn __repr__(&self) -> String {
        format!(
            "MailslotInfo(waiting={}, next_size={:?}, max_message_size={}, read_timeout={:?})",
            self.waiting, self.next_size, self.max_message_size, self.read_timeout
        )
    }
}

/// A mailslot server: `Mailslot(name, *, max_message_size=65536, read_timeout=None)`.
///
/// Frozen: a read holds its own reference to the slot for as long as it waits, so `close`
/// from another thread (or while an `aread` waits) never collides with it; the slot goes
/// when the last read under way ends.
#[pyclass(name = "Mailslot", module = "procwire", frozen)]
pub(crate) struct PyMailslot {
    slot: Mutex<Option<Arc<MailslotServer>>>,
    /// Messages a cancelled `aread` took in its last slice: read first, and counted by
    /// `info()`.
    given_back: Mutex<VecDeque<Vec<u8>>>,
}

impl PyMailslot {
    /// The slot, for one call (the lock is held only to clone the reference).
    fn get(&self) -> PyResult<Arc<MailslotServer>> {
        let slot = self.slot.lock().unwrap_or_else(|e| e.into_inner());
        slot.clone().ok_or_else(|| closed("mailslot"))
    }

    fn given_back(&self) -> MutexGuard<'_, VecDeque<Vec<u8>>> {
        self.given_back.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[pymethods]
impl PyMailslot {
    #[new]
    #[pyo3(signature = (name, *, max_message_size = None, read_timeout = None,
        everyone_may_write = false))]
    fn new(
        py: Python<'_>,
        name: &str,
        max_message_size: Option<usize>,
        read_timeout: Option<f64>,
        everyone_may_write: bool,
    ) -> PyResult<PyMailslot> {
        let mut options = MailslotOptions::new().read_timeout(match timeout(read_timeout)? {
            None => ReadTimeout::Forever,
            Some(d) if d.is_zero() => ReadTimeout::Immediate,
            Some(d) => ReadTimeout::After(d),
        });
        if let Some(max) = max_message_size {
            options = options.max_message_size(max);
        }
        if everyone_may_write {
            options = options.access_list(AccessList::owner_only().everyone(Access::Write));
        }
        let slot = py.allow_threads(|| options.create(name)).map_err(raise)?;
        Ok(PyMailslot {
            slot: Mutex::new(Some(Arc::new(slot))),
            given_back: Mutex::default(),
        })
    }

    /// The slot's name.
    #[getter]
    fn name(&self) -> PyResult<String> {
        Ok(self.get()?.name().to_owned())
    }

    /// The next message, waiting up to `timeout` seconds (None: the slot's read timeout).
    /// Raises `Timeout` when none came.
    #[pyo3(signature = (timeout = None))]
    fn read<'py>(&self, py: Python<'py>, timeout: Option<f64>) -> PyResult<Bound<'py, PyBytes>> {
        let slot = self.get()?;
        let wait = crate::timeout(timeout)?;
        if let Some(message) = self.given_back().pop_front() {
            return Ok(PyBytes::new(py, &message));
        }
        let message = py
            .allow_threads(|| match wait {
                None => slot.read(),
                Some(t) => slot.read_timeout(t),
            })
            .map_err(raise)?;
        Ok(PyBytes::new(py, &message))
    }

    /// The next message if one waits, else None.
    fn try_read<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyBytes>>> {
        if let Some(message) = self.given_back().pop_front() {
            return Ok(Some(PyBytes::new(py, &message)));
        }
        Ok(self.get()?.try_read().map(|m| PyBytes::new(py, &m)))
    }

    /// Reads the next message into `buffer` (a bytearray or writable memoryview), waiting
    /// as the slot's read timeout says; returns its size. Raises `BufferTooSmall` when it
    /// does not fit (it stays next).
    fn read_into(&self, py: Python<'_>, buffer: &Bound<'_, PyAny>) -> PyResult<usize> {
        let mut export = ExportSlot::uninit();
        let mut target = Writable::get(buffer, &mut export)?;
        let slot = self.get()?;
        // SAFETY: `target` holds the export for the call; the caller does not touch the
        // buffer from another thread meanwhile.
        let slice = unsafe { target.slice() };
        let mut given_back = self.given_back();
        if let Some(first) = given_back.front() {
            if first.len() > slice.len() {
                return Err(raise(MailslotError::BufferTooSmall {
                    name: slot.name().to_owned(),
                    needed: first.len(),
                    given: slice.len(),
                }));
            }
            slice[..first.len()].copy_from_slice(first);
            return Ok(given_back.pop_front().map_or(0, |m| m.len()));
        }
        drop(given_back);
        py.allow_threads(|| slot.read_into(slice)).map_err(raise)
    }

    /// How many messages wait, the next one's size, the maximum size and the read timeout.
    fn info(&self) -> PyResult<PyMailslotInfo> {
        let info = self.get()?.info().map_err(raise)?;
        let given_back = self.given_back();
        Ok(PyMailslotInfo {
            waiting: info.waiting + given_back.len(),
            next_size: given_back.front().map(Vec::len).or(info.next_size),
            max_message_size: info.max_message,
            read_timeout: match info.read_timeout {
                ReadTimeout::Forever => None,
                ReadTimeout::Immediate => Some(0.0),
                ReadTimeout::After(d) => Some(d.as_secs_f64()),
            },
        })
    }

    /// `read` for asyncio: `await slot.aread(timeout)`. With no timeout it waits as long
    /// as it takes, whatever the slot's read timeout. It waits on the loop's executor in
    /// short slices; cancelled, it takes nothing: a message its last slice read is kept,
    /// counted by `info()` and read first.
    #[pyo3(signature = (timeout = None))]
    fn aread<'py>(slf: &Bound<'py, Self>, timeout: Option<f64>) -> PyResult<Bound<'py, PyAny>> {
        crate::timeout(timeout)?;
        crate::cancel_safe(slf.as_any(), timeout, "reading a mailslot message")
    }

    /// One slice of `aread`: the next message within `seconds`, or None.
    fn _take_for<'py>(
        &self,
        py: Python<'py>,
        seconds: f64,
    ) -> PyResult<Option<Bound<'py, PyBytes>>> {
        if let Some(message) = self.given_back().pop_front() {
            return Ok(Some(PyBytes::new(py, &message)));
        }
        let wait = timeout(Some(seconds))?.unwrap_or_default();
        let slot = self.get()?;
        match py.allow_threads(|| slot.read_timeout(wait)) {
            Ok(message) => Ok(Some(PyBytes::new(py, &message))),
            Err(MailslotError::Timeout { .. }) => Ok(None),
            Err(e) => Err(raise(e)),
        }
    }

    /// Takes back what a cancelled `aread` read: it comes first.
    fn _give_back(&self, message: Vec<u8>) {
        self.given_back().push_front(message);
    }

    /// Closes the slot and removes its name; unread messages are lost. A read under way
    /// (a blocking `read` in another thread, or the slice of an `aread`, at most
    /// `procwire._aio.SLICE` seconds) keeps the slot until it ends; later calls raise
    /// `NotPermitted`.
    fn close(&self) {
        let taken = self.slot.lock().unwrap_or_else(|e| e.into_inner()).take();
        drop(taken);
    }

    fn __enter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, _args: &Bound<'_, pyo3::types::PyTuple>) {
        self.close();
    }
}

/// A mailslot writer: `MailslotWriter(name, *, timeout=5.0)`; a write waits up to
/// `timeout` seconds while the slot is full.
#[pyclass(name = "MailslotWriter", module = "procwire")]
pub(crate) struct PyMailslotWriter {
    writer: Option<MailslotWriter>,
}

#[pymethods]
impl PyMailslotWriter {
    #[new]
    #[pyo3(signature = (name, *, timeout = 5.0))]
    fn new(py: Python<'_>, name: &str, timeout: Option<f64>) -> PyResult<PyMailslotWriter> {
        let wait = crate::timeout(timeout)?.unwrap_or(FOREVER);
        let writer = py
            .allow_threads(|| WriterOptions::new().timeout(wait).open(name))
            .map_err(raise)?;
        Ok(PyMailslotWriter {
            writer: Some(writer),
        })
    }

    /// The largest message the slot accepts.
    #[getter]
    fn max_message_size(&self) -> PyResult<usize> {
        Ok(self
            .writer
            .as_ref()
            .ok_or_else(|| closed("mailslot writer"))?
            .max_message_size())
    }

    /// Sends one message (any bytes-like object).
    fn write(&self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<()> {
        let writer = self
            .writer
            .as_ref()
            .ok_or_else(|| closed("mailslot writer"))?;
        with_bytes(data, |bytes| py.allow_threads(|| writer.write(bytes)))?.map_err(raise)
    }

    /// Closes the writer.
    fn close(&mut self) {
        self.writer = None;
    }

    fn __enter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&mut self, _args: &Bound<'_, pyo3::types::PyTuple>) {
        self.close();
    }
}
