//! `procwire.PipeServer` and `procwire.PipeConnection`.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{Read, Write};
use std::marker::PhantomData;
use std::mem::{ManuallyDrop, MaybeUninit};
use std::os::fd::{FromRawFd, IntoRawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use procwire::pipe::{
    ClientOptions, Direction, HandleRef, PassedHandle, PipeConnection, PipeError, PipeOptions,
    PipeServer,
};
use procwire::security::{Access, AccessList};
use procwire::wire::{HandleKind, PipeMode};
use pyo3::buffer::PyBuffer;
use pyo3::exceptions::{PyBufferError, PyTypeError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::errors::{closed, raise, BadHandle, Disconnected, IoError, Timeout, WrongFrame};
use crate::in_executor;
use crate::mapping::PyMapping;
use crate::sync::{PyEvent, PyMutex, PySemaphore};

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
        PyPipeConnection::new(conn)
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

/// The receiving side of a connection: the library's handle that reads, and the messages
/// a cancelled `arecv` gave back.
struct Receiver {
    conn: PipeConnection,
    /// Messages a cancelled `arecv` took in its last slice: received first.
    given_back: VecDeque<Vec<u8>>,
}

impl Receiver {
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
}

/// One connected end of a pipe, from `PipeServer.accept` or `PipeConnection.open`.
///
/// It holds two handles on the connection (`try_clone`), each behind its own lock: one
/// receives (`recv`, `recv_into`, `read`, `recv_handle`, the slices of `arecv`), the other
/// sends (`send`, `write`, `send_handle`, `finish_sending`). So a send from one thread
/// never waits for a receive under way in another (or on the executor, for `arecv`), and
/// `close` wakes a receive under way instead of failing. The class is frozen: no call
/// takes a borrow of the Python object that another could collide with.
#[pyclass(name = "PipeConnection", module = "procwire", frozen)]
pub(crate) struct PyPipeConnection {
    receiver: Mutex<Option<Receiver>>,
    sender: Mutex<Option<PipeConnection>>,
    /// Set by `close`: a receive under way drops its handle when it ends.
    closed: AtomicBool,
    /// Set once `send_handle` passed this connection to a peer: the socket is shared with
    /// that process now, so `close` only closes this process's handles on it.
    passed: AtomicBool,
    name: String,
    shared_memory: bool,
    peer: Option<(u32, u32, u32)>,
}

/// Locks `m`, whatever a panic elsewhere left in it (the handles stay consistent: the
/// library keeps its own state, and a broken connection says so itself).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl PyPipeConnection {
    /// Wraps `conn` (which receives), with a second handle on it (`try_clone`) to send.
    pub(crate) fn new(conn: PipeConnection) -> PyResult<PyPipeConnection> {
        let sender = conn.try_clone().map_err(raise)?;
        Ok(PyPipeConnection {
            name: conn.name().to_owned(),
            shared_memory: conn.is_shared_memory(),
            peer: conn.peer_credentials().map(|p| (p.pid, p.uid, p.gid)),
            receiver: Mutex::new(Some(Receiver {
                conn,
                given_back: VecDeque::new(),
            })),
            sender: Mutex::new(Some(sender)),
            closed: AtomicBool::new(false),
            passed: AtomicBool::new(false),
        })
    }

    fn check_open(&self) -> PyResult<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(closed("pipe connection"));
        }
        Ok(())
    }

    /// Runs `f` on the receiving handle, locked; call it with the GIL released (a receive
    /// under way in another thread holds the lock while it waits). A connection closed
    /// meanwhile gives up its handle here.
    fn receiving<T>(&self, f: impl FnOnce(&mut Receiver) -> PyResult<T>) -> PyResult<T> {
        let mut guard = lock(&self.receiver);
        let Some(receiver) = guard.as_mut() else {
            return Err(closed("pipe connection"));
        };
        let result = f(receiver);
        if self.closed.load(Ordering::Acquire) {
            *guard = None;
        }
        result
    }

    /// Runs `f` on the sending handle, locked; call it with the GIL released.
    fn sending<T>(&self, f: impl FnOnce(&mut PipeConnection) -> PyResult<T>) -> PyResult<T> {
        let mut guard = lock(&self.sender);
        match guard.as_mut() {
            Some(conn) => f(conn),
            None => Err(closed("pipe connection")),
        }
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
        PyPipeConnection::new(conn)
    }

    /// The pipe's name.
    #[getter]
    fn name(&self) -> PyResult<String> {
        self.check_open()?;
        Ok(self.name.clone())
    }

    /// Whether the data travels through shared memory.
    #[getter]
    fn is_shared_memory(&self) -> PyResult<bool> {
        self.check_open()?;
        Ok(self.shared_memory)
    }

    /// The peer's `(pid, uid, gid)` as the kernel reports it, or None (a peer over TCP).
    #[getter]
    fn peer_credentials(&self) -> PyResult<Option<(u32, u32, u32)>> {
        self.check_open()?;
        Ok(self.peer)
    }

    /// Sends `data` (any bytes-like object) as one message, or as bytes on a byte pipe.
    /// It does not wait for a receive under way in another thread (or an `arecv`).
    fn send(&self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<()> {
        with_bytes(data, |bytes| {
            py.allow_threads(|| self.sending(|conn| conn.send(bytes).map_err(raise)))
        })?
    }

    /// The next whole message, waiting up to `timeout` seconds (None: as long as it
    /// takes). Raises `Timeout` (nothing lost), `Disconnected` when the peer closed, or
    /// `WrongFrame` when the next frame is a passed handle (take it with `recv_handle`).
    #[pyo3(signature = (timeout = None))]
    fn recv<'py>(&self, py: Python<'py>, timeout: Option<f64>) -> PyResult<Bound<'py, PyBytes>> {
        let wait = crate::timeout(timeout)?;
        let message = py.allow_threads(|| {
            self.receiving(|r| {
                if let Some(message) = r.given_back.pop_front() {
                    return Ok(message);
                }
                match wait {
                    None => r.conn.recv(),
                    Some(t) => r.conn.recv_timeout(t),
                }
                .map_err(raise)
            })
        })?;
        Ok(PyBytes::new(py, &message))
    }

    /// The next whole message if one is there already, else None.
    fn try_recv<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let message = py.allow_threads(|| {
            self.receiving(|r| match r.given_back.pop_front() {
                Some(message) => Ok(Some(message)),
                None => r.conn.try_recv().map_err(raise),
            })
        })?;
        Ok(message.map(|m| PyBytes::new(py, &m)))
    }

    /// Receives into `buffer` (a bytearray or writable memoryview): the next message, or
    /// the rest of one a previous call could not fit. Returns `(nbytes, complete)`;
    /// `complete` is False when the message goes on (`ERROR_MORE_DATA`).
    fn recv_into(&self, py: Python<'_>, buffer: &Bound<'_, PyAny>) -> PyResult<(usize, bool)> {
        let mut slot = ExportSlot::uninit();
        let mut target = Writable::get(buffer, &mut slot)?;
        // SAFETY: `target` holds the export for the call; the caller does not touch the
        // buffer from another thread meanwhile (as with `socket.recv_into`).
        let slice = unsafe { target.slice() };
        py.allow_threads(|| {
            self.receiving(|r| {
                if let Some(part) = r.give_out_into(slice) {
                    return Ok(part);
                }
                let part = r.conn.recv_into(slice).map_err(raise)?;
                Ok((part.len, part.complete))
            })
        })
    }

    /// Reads at most `n` bytes, waiting for at least one; b"" when the peer closed the
    /// pipe. On a message pipe in message read mode a read stops at a message's end.
    fn read<'py>(&self, py: Python<'py>, n: usize) -> PyResult<Bound<'py, PyBytes>> {
        let mut buf = vec![0u8; n];
        let got = py.allow_threads(|| {
            self.receiving(|r| {
                if let Some((got, _)) = r.give_out_into(&mut buf) {
                    return Ok(got);
                }
                r.conn.read(&mut buf).map_err(io_error)
            })
        })?;
        Ok(PyBytes::new(py, &buf[..got]))
    }

    /// Writes bytes; returns how many were written (all of them on a message pipe).
    fn write(&self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<usize> {
        with_bytes(data, |bytes| {
            py.allow_threads(|| self.sending(|conn| conn.write(bytes).map_err(io_error)))
        })?
    }

    /// Says that this side will send no more; the peer's reads then end.
    fn finish_sending(&self, py: Python<'_>) -> PyResult<()> {
        py.allow_threads(|| self.sending(|conn| conn.finish_sending().map_err(raise)))
    }

    /// Passes an open object to the process at the other end (`DuplicateHandle`), which
    /// receives it with `recv_handle`, in order among the messages: a `Mapping`, a
    /// `PipeConnection` (another one: it then talks to its other end from there; close it
    /// here), a `Mutex`, `Semaphore` or `Event`, or a regular file as a file object or an
    /// int file descriptor (which stays open and yours). `access` ("read", "write",
    /// "readwrite"; None for the access this handle has) passes less: a mapping or a file
    /// as a descriptor opened anew with only that access. This end keeps its object. A
    /// `PipeConnection` is passed between messages: this waits for a receive under way on
    /// it (in another thread), and refuses one with messages received and not yet taken.
    ///
    /// Raises `AccessDenied` before anything is sent when the peer's user could not open
    /// the object itself, `NotPermitted` for more access than this handle has, `BadHandle`
    /// when this connection cannot carry handles (TCP, shared memory) or the object cannot
    /// be passed, `ModeMismatch` on a byte pipe, `TypeError` for another kind of object.
    #[pyo3(signature = (obj, *, access = None))]
    fn send_handle(
        &self,
        py: Python<'_>,
        obj: &Bound<'_, PyAny>,
        access: Option<&str>,
    ) -> PyResult<()> {
        let access = access.map(self::access).transpose()?;
        let pass = |conn: &mut PipeConnection, handle: HandleRef<'_>| {
            match access {
                None => conn.send_handle(handle),
                Some(a) => conn.send_handle_with_access(handle, a),
            }
            .map_err(raise)
        };
        if let Ok(mapping) = obj.downcast::<PyMapping>() {
            let mapping = mapping.try_borrow()?;
            let m = mapping.mapping.as_ref().ok_or_else(|| closed("mapping"))?;
            return py.allow_threads(|| self.sending(|c| pass(c, HandleRef::Mapping(m))));
        }
        if let Ok(other) = obj.downcast::<PyPipeConnection>() {
            let other = other.get();
            if std::ptr::eq(other, self) {
                return Err(PyValueError::new_err(
                    "a connection cannot pass itself; pass another connection",
                ));
            }
            return py.allow_threads(|| {
                self.sending(|c| {
                    other.receiving(|r| {
                        if !r.given_back.is_empty() {
                            return Err(BadHandle::new_err(
                                "the connection to pass holds messages a cancelled arecv \
                                 received and nobody took yet; receive them first",
                            ));
                        }
                        pass(c, HandleRef::Pipe(&r.conn))?;
                        other.passed.store(true, Ordering::Release);
                        Ok(())
                    })
                })
            });
        }
        if let Ok(mutex) = obj.downcast::<PyMutex>() {
            let mutex = mutex.try_borrow()?;
            let m = mutex.mutex.as_deref().ok_or_else(|| closed("mutex"))?;
            return py.allow_threads(|| self.sending(|c| pass(c, HandleRef::Mutex(m))));
        }
        if let Ok(semaphore) = obj.downcast::<PySemaphore>() {
            let semaphore = semaphore.try_borrow()?;
            let s = semaphore
                .semaphore
                .as_ref()
                .ok_or_else(|| closed("semaphore"))?;
            return py.allow_threads(|| self.sending(|c| pass(c, HandleRef::Semaphore(s))));
        }
        if let Ok(event) = obj.downcast::<PyEvent>() {
            let event = event.try_borrow()?;
            let e = event.event.as_ref().ok_or_else(|| closed("event"))?;
            return py.allow_threads(|| self.sending(|c| pass(c, HandleRef::Event(e))));
        }
        // A file: an int descriptor, or an object with `fileno()`, which it keeps open
        // while `obj` lives (and `obj` lives through the call).
        let fd: i32 = match obj.extract::<i32>() {
            Ok(fd) => fd,
            Err(_) if obj.hasattr("fileno")? => obj.call_method0("fileno")?.extract()?,
            Err(_) => {
                return Err(PyTypeError::new_err(format!(
                    "cannot pass a {}: pass a Mapping, PipeConnection, Mutex, Semaphore, \
                     Event, a file object or an int file descriptor",
                    obj.get_type().name()?
                )))
            }
        };
        if fd < 0 {
            return Err(PyValueError::new_err(format!(
                "file descriptor {fd} is not an open descriptor"
            )));
        }
        // A descriptor that is not open would be another process's bug, not this one's:
        // refuse it before treating it as a file.
        std::fs::metadata(format!("/proc/self/fd/{fd}"))
            .map_err(|e| PyValueError::new_err(format!("file descriptor {fd} is not open: {e}")))?;
        // SAFETY: `fd` is open (checked just now) and stays open for the call: the caller
        // owns it (or `obj`, alive meanwhile, does). The `File` only borrows it:
        // `ManuallyDrop` never drops it, so the descriptor is not closed and stays theirs.
        let file = ManuallyDrop::new(unsafe { File::from_raw_fd(fd) });
        py.allow_threads(|| self.sending(|c| pass(c, HandleRef::File(&file))))
    }

    /// Receives the next frame as a passed handle, waiting up to `timeout` seconds (None:
    /// as long as it takes), as the object it is: a `Mapping`, a binary file object (open
    /// for the access it came with), a `PipeConnection`, a `Mutex`, a `Semaphore` or an
    /// `Event`.
    ///
    /// Raises `WrongFrame` when the next frame is a message (nothing is taken: receive it
    /// with `recv`), `BadHandle` when the peer announced a handle and passed something else
    /// (what came is closed; the connection stays usable) or this connection cannot carry
    /// handles, `Timeout` (nothing lost), `Disconnected`.
    #[pyo3(signature = (timeout = None))]
    fn recv_handle(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<PyObject> {
        let wait = crate::timeout(timeout)?;
        let passed = py.allow_threads(|| {
            self.receiving(|r| {
                if !r.given_back.is_empty() {
                    return Err(WrongFrame::new_err(format!(
                        "pipe `{}`: the next frame is a message (a cancelled arecv received \
                         it); receive it with recv",
                        self.name
                    )));
                }
                match wait {
                    None => r.conn.recv_handle(),
                    Some(t) => r.conn.recv_handle_timeout(t),
                }
                .map_err(raise)
            })
        })?;
        passed_object(py, passed)
    }

    /// `recv` for asyncio: `await conn.arecv(timeout)`. It waits on the loop's executor in
    /// short slices; cancelled, it takes nothing: a message its last slice received is
    /// kept and returned first by the next receive. `send` and `close` work while it
    /// waits (`close` ends it with `Disconnected` or `NotPermitted`).
    #[pyo3(signature = (timeout = None))]
    fn arecv<'py>(slf: &Bound<'py, Self>, timeout: Option<f64>) -> PyResult<Bound<'py, PyAny>> {
        crate::timeout(timeout)?;
        crate::cancel_safe(slf.as_any(), timeout, "receiving a message")
    }

    /// One slice of `arecv`: the next message within `seconds`, or None.
    fn _take_for<'py>(
        &self,
        py: Python<'py>,
        seconds: f64,
    ) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let wait = crate::timeout(Some(seconds))?.unwrap_or_default();
        let message = py.allow_threads(|| {
            self.receiving(|r| {
                if let Some(message) = r.given_back.pop_front() {
                    return Ok(Some(message));
                }
                match r.conn.recv_timeout(wait) {
                    Ok(message) => Ok(Some(message)),
                    Err(PipeError::Timeout { .. }) => Ok(None),
                    Err(e) => Err(raise(e)),
                }
            })
        })?;
        Ok(message.map(|m| PyBytes::new(py, &m)))
    }

    /// Takes back what a cancelled `arecv` received: it comes first. Dropped when the
    /// connection was closed meanwhile.
    fn _give_back(&self, py: Python<'_>, message: Vec<u8>) {
        let _ = py.allow_threads(|| {
            self.receiving(|r| {
                r.given_back.push_front(message);
                Ok(())
            })
        });
    }

    /// Disconnects. A receive under way in another thread (or an `arecv`) ends with
    /// `Disconnected` (or whatever came first); later calls raise `NotPermitted`. It waits
    /// only for a send under way. A connection this process passed to another with
    /// `send_handle` is not disconnected (the other process talks on it now): only this
    /// process's handles on it are closed, as `CloseHandle` after `DuplicateHandle`.
    fn close(&self, py: Python<'_>) {
        self.closed.store(true, Ordering::Release);
        let passed = self.passed.load(Ordering::Acquire);
        py.allow_threads(|| {
            if let Some(sender) = lock(&self.sender).take() {
                // Shuts the socket (and shared memory) down for both handles: a receive
                // under way wakes.
                if !passed {
                    sender.disconnect();
                }
            }
            // A receive under way holds its handle; it drops it when it ends.
            if let Ok(mut receiver) = self.receiver.try_lock() {
                if let Some(r) = receiver.take() {
                    if !passed {
                        r.conn.disconnect();
                    }
                }
            }
        });
    }

    fn __enter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, pyo3::types::PyTuple>) {
        self.close(py);
    }
}

/// A passed handle as the Python object of its kind.
fn passed_object(py: Python<'_>, passed: PassedHandle) -> PyResult<PyObject> {
    Ok(match passed.kind() {
        HandleKind::Mapping => {
            let mapping = passed.into_mapping().map_err(raise)?;
            Py::new(py, PyMapping::new(mapping)?)?.into_any()
        }
        HandleKind::File => {
            let mode = match passed.access() {
                Access::Read => "rb",
                Access::Write => "wb",
                _ => "r+b",
            };
            let fd = passed.into_file().map_err(raise)?.into_raw_fd();
            // `open` takes the descriptor over; should it refuse, close it here.
            match py.import("io")?.call_method1("open", (fd, mode)) {
                Ok(file) => file.unbind(),
                Err(e) => {
                    let _ = py.import("os")?.call_method1("close", (fd,));
                    return Err(e);
                }
            }
        }
        HandleKind::Pipe => {
            let conn = passed.into_pipe().map_err(raise)?;
            Py::new(py, PyPipeConnection::new(conn)?)?.into_any()
        }
        HandleKind::Mutex => {
            let mutex = passed.into_mutex().map_err(raise)?;
            Py::new(py, PyMutex::wrap(mutex))?.into_any()
        }
        HandleKind::Semaphore => {
            let semaphore = passed.into_semaphore().map_err(raise)?;
            Py::new(
                py,
                PySemaphore {
                    semaphore: Some(semaphore),
                },
            )?
            .into_any()
        }
        HandleKind::Event => {
            let event = passed.into_event().map_err(raise)?;
            Py::new(py, PyEvent { event: Some(event) })?.into_any()
        }
        other => {
            return Err(BadHandle::new_err(format!(
                "the peer passed {}, which this version cannot take (it is closed)",
                other.with_article()
            )))
        }
    })
}
