//! `procwire.Mapping`: named shared memory and named mappings of files, with one view of
//! all of it.

use std::ffi::{c_int, c_void};
use std::sync::atomic::{AtomicUsize, Ordering};

use procwire::mapping::{Lifetime, Mapping, MappingOptions, View};
use procwire::security::Access;
use pyo3::exceptions::{PyBufferError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyMemoryView};

use crate::errors::{closed, raise};
use crate::pipe::{access_list, with_bytes};

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyMapping>()?;
    Ok(())
}

/// A mapping with a view of all of it. Created with `Mapping.create`, opened with
/// `Mapping.open`. A memory-backed mapping exports its memory through the buffer protocol
/// (`memoryview(mapping)`, `mapping.memoryview()`); a file-backed one only copies
/// (`read`, `write`), because another program that may write the file could shrink it and
/// a view past its end would crash the interpreter.
#[pyclass(name = "Mapping", module = "procwire")]
pub(crate) struct PyMapping {
    // Declared first, so dropped (unmapped) before the mapping.
    view: Option<View>,
    pub(crate) mapping: Option<Mapping>,
    exports: AtomicUsize,
}

impl PyMapping {
    /// The handle of `mapping`, with its view of all of it.
    pub(crate) fn new(mapping: Mapping) -> PyResult<PyMapping> {
        Ok(PyMapping {
            view: Some(mapping.view_all().map_err(raise)?),
            mapping: Some(mapping),
            exports: AtomicUsize::new(0),
        })
    }

    fn view(&self) -> PyResult<&View> {
        self.view.as_ref().ok_or_else(|| closed("mapping"))
    }
}

#[pymethods]
impl PyMapping {
    /// Creates the mapping `name` of `size` bytes, zero-filled, backed by memory or by
    /// the file at `file` (created if missing; `size` 0 takes the file's length).
    #[staticmethod]
    #[pyo3(signature = (name, size, *, file = None, persistent = false, everyone = None))]
    fn create(
        py: Python<'_>,
        name: &str,
        size: u64,
        file: Option<std::path::PathBuf>,
        persistent: bool,
        everyone: Option<&str>,
    ) -> PyResult<PyMapping> {
        let options = options(size, file, persistent, everyone)?;
        PyMapping::new(py.allow_threads(|| options.create(name)).map_err(raise)?)
    }

    /// Opens the mapping `name`, or creates it as `create` does.
    #[staticmethod]
    #[pyo3(signature = (name, size, *, file = None, persistent = false, everyone = None))]
    fn open_or_create(
        py: Python<'_>,
        name: &str,
        size: u64,
        file: Option<std::path::PathBuf>,
        persistent: bool,
        everyone: Option<&str>,
    ) -> PyResult<PyMapping> {
        let options = options(size, file, persistent, everyone)?;
        PyMapping::new(
            py.allow_threads(|| options.open_or_create(name))
                .map_err(raise)?,
        )
    }

    /// Opens the mapping `name` for reading, or reading and writing with `writable=True`.
    #[staticmethod]
    #[pyo3(signature = (name, *, writable = false))]
    fn open(py: Python<'_>, name: &str, writable: bool) -> PyResult<PyMapping> {
        let access = if writable {
            Access::ReadWrite
        } else {
            Access::Read
        };
        PyMapping::new(
            py.allow_threads(|| Mapping::open(name, access))
                .map_err(raise)?,
        )
    }

    /// The mapping's name.
    #[getter]
    fn name(&self) -> PyResult<String> {
        Ok(self.view()?.mapping_name().to_owned())
    }

    /// Whether this handle may write.
    #[getter]
    fn writable(&self) -> PyResult<bool> {
        Ok(self.view()?.is_writable())
    }

    /// The file behind the mapping, or None for memory.
    #[getter]
    fn file(&self) -> PyResult<Option<std::path::PathBuf>> {
        let mapping = self.mapping.as_ref().ok_or_else(|| closed("mapping"))?;
        Ok(mapping.file_path().map(|p| p.to_owned()))
    }

    fn __len__(&self) -> PyResult<usize> {
        Ok(self.view()?.len())
    }

    /// A copy of `length` bytes from `offset` (to the end when `length` is None).
    #[pyo3(signature = (offset = 0, length = None))]
    fn read<'py>(
        &self,
        py: Python<'py>,
        offset: usize,
        length: Option<usize>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let view = self.view()?;
        let length = match length {
            Some(n) => n,
            None => view.len().checked_sub(offset).ok_or_else(|| {
                PyValueError::new_err(format!(
                    "offset {offset} is past the end ({} bytes)",
                    view.len()
                ))
            })?,
        };
        let bytes = view.read_vec(offset, length).map_err(raise)?;
        Ok(PyBytes::new(py, &bytes))
    }

    /// Copies `data` (any bytes-like object) to `offset`.
    fn write(&self, offset: usize, data: &Bound<'_, PyAny>) -> PyResult<()> {
        let view = self.view()?;
        with_bytes(data, |bytes| view.write_at(offset, bytes))?.map_err(raise)
    }

    /// Writes a file-backed mapping's changes back to its file.
    fn flush(&self, py: Python<'_>) -> PyResult<()> {
        let view = self.view()?;
        py.allow_threads(|| view.flush()).map_err(raise)
    }

    /// A memoryview of the mapping's memory (memory-backed mappings only; read-only unless
    /// the handle is writable). Other processes may change the bytes at any time.
    fn memoryview<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyMemoryView>> {
        PyMemoryView::from(slf.as_any())
    }

    /// Unmaps and closes; raises BufferError while a memoryview of it is alive.
    fn close(&mut self) -> PyResult<()> {
        if self.exports.load(Ordering::Acquire) > 0 {
            return Err(PyBufferError::new_err(
                "a memoryview of the mapping is still alive; release it first",
            ));
        }
        self.view = None;
        self.mapping = None;
        Ok(())
    }

    fn __enter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&mut self, _args: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<()> {
        self.close()
    }

    unsafe fn __getbuffer__(
        slf: Bound<'_, Self>,
        buffer: *mut ffi::Py_buffer,
        flags: c_int,
    ) -> PyResult<()> {
        let this = slf.borrow();
        let view = this.view()?;
        if this
            .mapping
            .as_ref()
            .is_some_and(|m| m.file_path().is_some())
        {
            return Err(PyBufferError::new_err(
                "a file-backed mapping exports no memory (another program could shrink the \
                 file under it); use read() and write(), which copy",
            ));
        }
        let readonly = !view.is_writable();
        if readonly && (flags & ffi::PyBUF_WRITABLE) != 0 {
            return Err(PyBufferError::new_err("the mapping is open read-only"));
        }
        let len = isize::try_from(view.len())
            .map_err(|_| PyBufferError::new_err("the mapping is too large to export"))?;
        // SAFETY: `buffer` is the Py_buffer the interpreter asks us to fill; the memory is
        // valid for `len` bytes while the view lives, and the view lives while an export
        // exists: the buffer keeps a reference to `slf` (FillInfo takes one), and `close`
        // refuses while `exports` is not zero.
        let filled = unsafe {
            ffi::PyBuffer_FillInfo(
                buffer,
                slf.as_ptr(),
                view.as_ptr().cast::<c_void>(),
                len,
                c_int::from(readonly),
                flags,
            )
        };
        if filled == -1 {
            return Err(PyErr::fetch(slf.py()));
        }
        this.exports.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    unsafe fn __releasebuffer__(&self, _buffer: *mut ffi::Py_buffer) {
        self.exports.fetch_sub(1, Ordering::AcqRel);
    }
}

fn options(
    size: u64,
    file: Option<std::path::PathBuf>,
    persistent: bool,
    everyone: Option<&str>,
) -> PyResult<MappingOptions> {
    let mut options = MappingOptions::new().access_list(access_list(everyone)?);
    if size > 0 {
        options = options.size(size);
    }
    if let Some(path) = file {
        options = options.backed_by_file(path);
    }
    if persistent {
        options = options.lifetime(Lifetime::Persistent);
    }
    Ok(options)
}
