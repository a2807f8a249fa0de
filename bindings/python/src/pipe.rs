//! `procwire.PipeServer` and `procwire.PipeConnection`.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::marker::PhantomData;
use std::mem::MaybeUninit;
use std::time::Duration;

use procwire::pipe::{
    ClientOptions, Direction, PipeConnection, PipeError, PipeOptions, PipeServer,
};
use procwire::security::{Access, AccessList};
use procwire::wire::PipeMode;
use pyo3::buffer::PyBuffer;
use pyo3::exceptions::{PyBufferError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::errors::{closed, raise, Disconnected, IoError, Timeout};
use crate::in_executor;

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyPipeServer>()?;
    m.add_class::<PyPipeConnection>()?;
    Ok(())
}

fn mode(text: &str) -> PyResult<PipeMode> {
    match text {
        "message" => Ok(PipeMode::Message),
        "byte" => Ok(PipeMode::Byte),
        other => Err(PyValueError::new_err(format!(
            "mode {other:?} is neither \"message\" nor \"byte\""
        ))),
    }
}

/// An access right from its Python spelling.
pub(crate) fn access(text: &str) -> PyResult<Access> {
    match text {
        "read" | "r" => Ok(Access::Read),
        "write" | "w" => Ok(Access::Write),
        "readwrite" | "rw" => Ok(Access::ReadWrite),
        other => Err(PyValueError::new_err(format!(
            "access {other:?} is none of \"read\", \"write\", \"readwrite\""
        ))),
    }
}

/// The owner-only access list, plus `everyone` when given.
pub(crate) fn access_list(everyone: Option<&str>) -> PyResult<AccessList> {
    let list = AccessList::owner_only();
    Ok(match everyone {
        Some(a) => list.everyone(access(a)?),
        None => list,
    })
}

/// Up to this many bytes of a buffer other than `bytes` are copied onto the stack for a
/// send; longer ones into a vector.
const SMALL_COPY: usize = 512;

/// Calls `f` with the bytes of a buffer-protocol object: a `bytes` object's own bytes, a
/// copy of any other buffer's (a `bytearray` or `memoryview` may change under a call that
/// released the GIL). Small buffers are copied onto the stack, so that sending a
/// `memoryview` slice costs no allocation.
pub(crate) fn with_bytes<R>(data: &Bound<'_, PyAny>, f: impl FnOnce(&[u8]) -> R) -> PyResult<R> {
    if let Ok(bytes) = data.downcast::<PyBytes>() {
        return Ok(f(bytes.as_bytes()));
    }
    let mut slot = ExportSlot::uninit();
    if let Some(export) = Export::simple(data, false, &mut slot) {
        let n = export.len();
        if n <= SMALL_COPY {
            let mut copy = [0u8; SMALL_COPY];
            // SAFETY: the GIL is held and nothing else writes the buffer meanwhile.
            copy[..n].copy_from_slice(unsafe { export.bytes() });
            drop(export);
            return Ok(f(&copy[..n]));
        }
        // SAFETY: as above.
        let copy = unsafe { export.bytes() }.to_vec();
        drop(export);
        return Ok(f(&copy));
    }
    // Not one contiguous run of bytes (a strided memoryview, say): PyBuffer copies it, or
    // says why it cannot.
    let buffer = PyBuffer::<u8>::get(data)?;
    let copy = buffer.to_vec(data.py())?;
    Ok(f(&copy))
}

/// Where an [`Export`] lives: a `Py_buffer` of the caller's, which stays in place while
/// the export lasts (an exporter may keep pointers into it).
pub(crate) type ExportSlot = MaybeUninit<ffi::Py_buffer>;

/// A simple export of an object's bytes (`PyObject_GetBuffer` with `PyBUF_SIMPLE`: one
/// contiguous run, no format), released when dropped. The cheap path that CPython's own
/// `socket.send` and `recv_into` take; it needs no allocation, unlike `PyBuffer`.
///
/// It is neither `Send` nor `Ungil`, so it cannot be taken into `allow_threads`: it is
/// dropped, and released, with the GIL held.
pub(crate) struct Export<'a> {
    view: &'a mut ffi::Py_buffer,
    _not_send: PhantomData<*mut ()>,
}

impl<'a> Export<'a> {
    /// Exports `object`'s bytes into `slot`, writable ones if `writable`. `None` (the
    /// Python error cleared) when the object cannot give them so: not a buffer,
    /// read-only while `writable` is asked, or not contiguous.
    pub(crate) fn simple(
        object: &Bound<'_, PyAny>,
        writable: bool,
        slot: &'a mut ExportSlot,
    ) -> Option<Export<'a>> {
        let flags = if writable {
            ffi::PyBUF_WRITABLE
        } else {
            ffi::PyBUF_SIMPLE
        };
        // SAFETY: the GIL is held (`object` is bound to it); `slot` is valid for writing a
        // `Py_buffer`.
        let status = unsafe { ffi::PyObject_GetBuffer(object.as_ptr(), slot.as_mut_ptr(), flags) };
        if status != 0 {
            drop(PyErr::take(object.py()));
            return None;
        }
        Some(Export {
            // SAFETY: the successful call filled the `Py_buffer`.
            view: unsafe { slot.assume_init_mut() },
            _not_send: PhantomData,
        })
    }

    /// The length in bytes.
    pub(crate) fn len(&self) -> usize {
        usize::try_from(self.view.len).unwrap_or(0)
    }

    /// The exported bytes.
    ///
    /// # Safety
    ///
    /// Nothing writes them while the slice lives (the GIL is held, or the Python code
    /// that passed the object does not touch it from another thread meanwhile).
    pub(crate) unsafe fn bytes(&self) -> &[u8] {
        let len = self.len();
        if len == 0 || self.view.buf.is_null() {
            return &[];
        }
        // SAFETY: the export keeps `len` contiguous bytes at `buf` alive and in place
        // while it lasts; the caller promises nothing writes them meanwhile.
        unsafe { std::slice::from_raw_parts(self.view.buf.cast::<u8>(), len) }
    }

    /// The exported bytes, writable (an export made with `writable`).
    ///
    /// # Safety
    ///
    /// As [`Export::bytes`], and nothing else reads them either while the slice lives.
    unsafe fn bytes_mut(&mut self) -> &mut [u8] {
        let len = self.len();
        if len == 0 || self.view.buf.is_null() || self.view.readonly != 0 {
            return &mut [];
        }
        // SAFETY: a writable export of `len` contiguous bytes, alive and in place while it
        // lasts; the caller promises exclusive use meanwhile.
        unsafe { std::slice::from_raw_parts_mut(self.view.buf.cast::<u8>(), len) }
    }
}

impl Drop for Export<'_> {
    fn drop(&mut self) {
        // SAFETY: a live export made by `PyObject_GetBuffer`, released once; the GIL is
        // held (an `Export` never leaves the thread and cannot enter `allow_threads`).
        unsafe { ffi::PyBuffer_Release(self.view) };
    }
}

/// A writable, contiguous byte buffer of the caller's (`bytearray`, writable
/// `memoryview`), for a receive into it.
pub(crate) enum Writable<'a> {
    /// The simple export, as `socket.recv_into` takes it.
    Simple(Export<'a>),
    /// A buffer that refused the simple export but is writable and C-contiguous.
    Full(PyBuffer<u8>),
}

impl<'a> Writable<'a> {
    /// Exports `target` for writing, into `slot`.
    pub(crate) fn get(
        target: &Bound<'_, PyAny>,
        slot: &'a mut ExportSlot,
    ) -> PyResult<Writable<'a>> {
        if let Some(export) = Export::simple(target, true, slot) {
            return Ok(Writable::Simple(export));
        }
        // The slow path, for the few exporters that refuse a simple request, and for the
        // errors: not a buffer, read-only, not contiguous.
        let buffer = PyBuffer::<u8>::get(target)?;
        if buffer.readonly() {
            return Err(PyBufferError::new_err(
                "the buffer is read-only; pass a bytearray or a writable memoryview",
            ));
        }
        if !buffer.is_c_contiguous() {
            return Err(PyBufferError::new_err("the buffer is not contiguous"));
        }
        Ok(Writable::Full(buffer))
    }

    /// The buffer's bytes.
    ///
    /// # Safety
    ///
    /// Nothing else reads or writes the buffer's memory while the slice lives: the caller
    /// holds the export (`self`), which keeps the object from resizing or freeing it, and
    /// the Python code that passed it must not touch it from another thread meanwhile (as
    /// with `socket.recv_into`).
    pub(crate) unsafe fn slice(&mut self) -> &mut [u8] {
        match self {
            // SAFETY: the caller's promise, passed on.
            Writable::Simple(export) => unsafe { export.bytes_mut() },
            Writable::Full(buffer) => {
                let len = buffer.len_bytes();
                if len == 0 {
                    return &mut [];
                }
                // SAFETY: the export keeps `len` writable, contiguous bytes at `buf_ptr`
                // alive and in place while `self` lives; the caller promises exclusive use
                // meanwhile.
                unsafe { std::slice::from_raw_parts_mut(buffer.buf_ptr().cast::<u8>(), len) }
            }
        }
    }
}

/// A pipe server: `PipeServer(name, *, mode="message", direction="duplex", ...)`.
#[pyclass(name = "PipeServer", module = "procwire")]
pub(crate) struct PyPipeServer {
    server: Option<PipeServer>,
}

impl PyPipeServer {
    fn get(&self) -> PyResult<&PipeServer> {
        self.server.as_ref().ok_or_else(|| closed("pipe server"))
    }
}

#[pymethods]
impl PyPipeServer {
    // The keyword arguments of a Python constructor, one per option.
    #[allow(clippy::too_many_arguments)]
    #[new]
    #[pyo3(signature = (name, *, mode = "message", direction = "duplex", max_instances = None,
        max_message_size = None, everyone = None, shared_memory = false))]
    fn new(
        py: Python<'_>,
        name: &str,
        mode: &str,
        direction: &str,
        max_instances: Option<u16>,
        max_message_size: Option<u32>,
        everyone: Option<&str>,
        shared_memory: bool,
    ) -> PyResult<PyPipeServer> {
        let direction = match direction {
            "duplex" => Direction::Duplex,
            "inbound" => Direction::Inbound,
            "outbound" => Direction::Outbound,
            other => {
                return Err(PyValueError::new_err(format!(
                    "direction {other:?} is none of \"duplex\", \"inbound\", \"outbound\""
                )))
            }
        };
        let mut options = PipeOptions::new()
            .mode(self::mode(mode)?)
            .direction(direction)
            .access_list(access_list(everyone)?)
            .shared_memory(shared_memory);
        if let Some(max) = max_instances {
            options = options.max_instances(max);
        }
        if let Some(max) = max_message_size {
            options = options.max_message_size(max);
        }
        let server = py.allow_threads(|| options.create(name)).map_err(raise)?;
        Ok(PyPipeServer {
            server: Some(server),
        })
    }

    /// The pipe's name.
    #[getter]
    fn name(&self) -> PyResult<String> {
        Ok(self.get()?.name().to_owned())
    }

    /// Waits up to `timeout` seconds (None: as long as it takes) for the next client.
    #[pyo3(signature = (timeout = None))]
    fn accept(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<PyPipeConnection> {
        let server = self.get()?;
        let wait = crate::timeout(timeout)?;
        let conn = py
            .allow_threads(|| match wait {
                None => server.accept(),
                Some(t) => server.accept_timeout(t),
            })
            .map_err(raise)?;
        Ok(PyPipeConnection::new(conn))
    }

    /// `accept` on the running asyncio loop's executor.
    #[pyo3(signature = (timeout = None))]
    fn aaccept<'py>(slf: &Bound<'py, Self>, timeout: Option<f64>) -> PyResult<Bound<'py, PyAny>> {
        in_executor(slf.as_any(), "accept", timeout)
    }

    /// Stops the server and removes its name.
    fn close(&mut self) {
        self.server = None;
    }

    fn __enter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&mut self, _args: &Bound<'_, pyo3::types::PyTuple>) {
        self.close();
    }
}

/// One connected end of a pipe, from `PipeServer.accept` or `PipeConnection.open`.
#[pyclass(name = "PipeConnection", module = "procwire")]
pub(crate) struct PyPipeConnection {
    conn: Option<PipeConnection>,
    /// Messages a cancelled `arecv` took in its last slice: received first.
    given_back: VecDeque<Vec<u8>>,
}

impl PyPipeConnection {
    fn new(conn: PipeConnection) -> PyPipeConnection {
        PyPipeConnection {
            conn: Some(conn),
            given_back: VecDeque::new(),
        }
    }

    /// Copies as much of the first given-back message as fits into `buf`; `None` when
    /// there is none. Returns `(nbytes, complete)` as `recv_into` does.
    fn give_out_into(&mut self, buf: &mut [u8]) -> Option<(usize, bool)> {
        let first = self.given_back.front_mut()?;
        let n = first.len().min(buf.len());
        buf[..n].copy_from_slice(&first[..n]);
        if n == first.len() {
            self.given_back.pop_front();
            Some((n, true))
        } else {
            first.drain(..n);
            Some((n, false))
        }
    }
    fn get(&mut self) -> PyResult<&mut PipeConnection> {
        self.conn.as_mut().ok_or_else(|| closed("pipe connection"))
    }
}

/// The Python exception for an `io::Error` from `Read`/`Write` on a connection.
fn io_error(e: std::io::Error) -> PyErr {
    let kind = e.kind();
    match e
        .into_inner()
        .map(|inner| inner.downcast::<procwire::pipe::PipeError>())
    {
        Some(Ok(pipe)) => raise(*pipe),
        Some(Err(other)) => IoError::new_err(other.to_string()),
        None if kind == std::io::ErrorKind::TimedOut => Timeout::new_err(kind.to_string()),
        None if kind == std::io::ErrorKind::BrokenPipe => Disconnected::new_err(kind.to_string()),
        None => IoError::new_err(kind.to_string()),
    }
}

#[pymethods]
impl PyPipeConnection {
    /// Connects to the pipe `name`, waiting up to `timeout` seconds while it is busy.
    #[staticmethod]
    #[pyo3(signature = (name, *, mode = "message", access = "readwrite", timeout = 5.0,
        shared_memory = false, require_owner = None))]
    fn open(
        py: Python<'_>,
        name: &str,
        mode: &str,
        access: &str,
        timeout: f64,
        shared_memory: bool,
        require_owner: Option<u32>,
    ) -> PyResult<PyPipeConnection> {
        let wait = crate::timeout(Some(timeout))?.unwrap_or(Duration::ZERO);
        let mut options = ClientOptions::new()
            .read_mode(self::mode(mode)?)
            .access(self::access(access)?)
            .timeout(wait)
            .shared_memory(shared_memory);
        if let Some(uid) = require_owner {
            options = options.require_owner(uid);
        }
        let conn = py.allow_threads(|| options.open(name)).map_err(raise)?;
        Ok(PyPipeConnection::new(conn))
    }

    /// The pipe's name.
    #[getter]
    fn name(&mut self) -> PyResult<String> {
        Ok(self.get()?.name().to_owned())
    }

    /// Whether the data travels through shared memory.
    #[getter]
    fn is_shared_memory(&mut self) -> PyResult<bool> {
        Ok(self.get()?.is_shared_memory())
    }

    /// The peer's `(pid, uid, gid)` as the kernel reports it, or None (a peer over TCP).
    #[getter]
    fn peer_credentials(&mut self) -> PyResult<Option<(u32, u32, u32)>> {
        Ok(self
            .get()?
            .peer_credentials()
            .map(|p| (p.pid, p.uid, p.gid)))
    }

    /// Sends `data` (any bytes-like object) as one message, or as bytes on a byte pipe.
    fn send(&mut self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<()> {
        let conn = self.get()?;
        with_bytes(data, |bytes| py.allow_threads(|| conn.send(bytes)))?.map_err(raise)
    }

    /// The next whole message, waiting up to `timeout` seconds (None: as long as it
    /// takes). Raises `Timeout` (nothing lost) or `Disconnected` when the peer closed.
    #[pyo3(signature = (timeout = None))]
    fn recv<'py>(
        &mut self,
        py: Python<'py>,
        timeout: Option<f64>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let wait = crate::timeout(timeout)?;
        if let Some(message) = self.given_back.pop_front() {
            return Ok(PyBytes::new(py, &message));
        }
        let conn = self.get()?;
        let message = py
            .allow_threads(|| match wait {
                None => conn.recv(),
                Some(t) => conn.recv_timeout(t),
            })
            .map_err(raise)?;
        Ok(PyBytes::new(py, &message))
    }

    /// The next whole message if one is there already, else None.
    fn try_recv<'py>(&mut self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyBytes>>> {
        if let Some(message) = self.given_back.pop_front() {
            return Ok(Some(PyBytes::new(py, &message)));
        }
        let message = self.get()?.try_recv().map_err(raise)?;
        Ok(message.map(|m| PyBytes::new(py, &m)))
    }

    /// Receives into `buffer` (a bytearray or writable memoryview): the next message, or
    /// the rest of one a previous call could not fit. Returns `(nbytes, complete)`;
    /// `complete` is False when the message goes on (`ERROR_MORE_DATA`).
    fn recv_into(&mut self, py: Python<'_>, buffer: &Bound<'_, PyAny>) -> PyResult<(usize, bool)> {
        let mut slot = ExportSlot::uninit();
        let mut target = Writable::get(buffer, &mut slot)?;
        // SAFETY: `target` holds the export for the call; the caller does not touch the
        // buffer from another thread meanwhile (as with `socket.recv_into`).
        let slice = unsafe { target.slice() };
        if let Some(part) = self.give_out_into(slice) {
            return Ok(part);
        }
        let conn = self.get()?;
        let part = py.allow_threads(|| conn.recv_into(slice)).map_err(raise)?;
        Ok((part.len, part.complete))
    }

    /// Reads at most `n` bytes, waiting for at least one; b"" when the peer closed the
    /// pipe. On a message pipe in message read mode a read stops at a message's end.
    fn read<'py>(&mut self, py: Python<'py>, n: usize) -> PyResult<Bound<'py, PyBytes>> {
        let mut buf = vec![0u8; n];
        if let Some((got, _)) = self.give_out_into(&mut buf) {
            return Ok(PyBytes::new(py, &buf[..got]));
        }
        let conn = self.get()?;
        let got = py.allow_threads(|| conn.read(&mut buf)).map_err(io_error)?;
        Ok(PyBytes::new(py, &buf[..got]))
    }

    /// Writes bytes; returns how many were written (all of them on a message pipe).
    fn write(&mut self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<usize> {
        let conn = self.get()?;
        with_bytes(data, |bytes| py.allow_threads(|| conn.write(bytes)))?.map_err(io_error)
    }

    /// Says that this side will send no more; the peer's reads then end.
    fn finish_sending(&mut self) -> PyResult<()> {
        self.get()?.finish_sending().map_err(raise)
    }

    /// `recv` for asyncio: `await conn.arecv(timeout)`. It waits on the loop's executor in
    /// short slices; cancelled, it takes nothing: a message its last slice received is
    /// kept and returned first by the next receive.
    #[pyo3(signature = (timeout = None))]
    fn arecv<'py>(slf: &Bound<'py, Self>, timeout: Option<f64>) -> PyResult<Bound<'py, PyAny>> {
        crate::timeout(timeout)?;
        crate::cancel_safe(slf.as_any(), timeout, "receiving a message")
    }

    /// One slice of `arecv`: the next message within `seconds`, or None.
    fn _take_for<'py>(
        &mut self,
        py: Python<'py>,
        seconds: f64,
    ) -> PyResult<Option<Bound<'py, PyBytes>>> {
        if let Some(message) = self.given_back.pop_front() {
            return Ok(Some(PyBytes::new(py, &message)));
        }
        let wait = crate::timeout(Some(seconds))?.unwrap_or_default();
        let conn = self.get()?;
        match py.allow_threads(|| conn.recv_timeout(wait)) {
            Ok(message) => Ok(Some(PyBytes::new(py, &message))),
            Err(PipeError::Timeout { .. }) => Ok(None),
            Err(e) => Err(raise(e)),
        }
    }

    /// Takes back what a cancelled `arecv` received: it comes first.
    fn _give_back(&mut self, message: Vec<u8>) {
        self.given_back.push_front(message);
    }

    /// Disconnects.
    fn close(&mut self) {
        if let Some(conn) = self.conn.take() {
            conn.disconnect();
        }
    }

    fn __enter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&mut self, _args: &Bound<'_, pyo3::types::PyTuple>) {
        self.close();
    }
}
