//! What can go wrong with a mapping or a view.

use std::io;

use crate::name::NameError;
use crate::registry::object::ObjectError;

/// An error from a file mapping or one of its views.
///
/// Each variant says what happened in terms of the mapping; the underlying `io::Error`, when
/// there is one, is kept as the [source](std::error::Error::source).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MappingError {
    /// The name is not a valid mapping name.
    #[error(transparent)]
    InvalidName(#[from] NameError),
    /// No mapping has that name.
    #[error("no mapping named `{name}`: {detail}")]
    NotFound {
        /// The mapping's name.
        name: String,
        /// Why not (nothing of that name, its creator exited, its memory was removed).
        detail: String,
    },
    /// A mapping of that name exists already.
    #[error("cannot create mapping `{name}`: {detail}")]
    AlreadyExists {
        /// The mapping's name.
        name: String,
        /// What exists.
        detail: String,
    },
    /// The name belongs to an object of another kind (mappings, mutexes, semaphores and
    /// events share one namespace).
    #[error("`{name}` is {found}, not a mapping")]
    WrongKind {
        /// The name.
        name: String,
        /// What the name is: `a mutex`, `an event`, `a directory`, …
        found: String,
    },
    /// This user may not open the mapping with the access asked for.
    #[error("access to mapping `{name}` denied: {detail}")]
    AccessDenied {
        /// The mapping's name.
        name: String,
        /// Who asked for what, and what is granted.
        detail: String,
    },
    /// A size of zero, or a file-backed mapping of an empty file without a size.
    #[error("mapping `{name}`: invalid size: {detail}")]
    InvalidSize {
        /// The mapping's name.
        name: String,
        /// What is wrong with the size.
        detail: String,
    },
    /// A view, read or write reaches past the end of the mapping or view.
    #[error("mapping `{name}`: {len} bytes at offset {offset} reach past the end of the {what} ({size} bytes)")]
    OutOfRange {
        /// The mapping's name.
        name: String,
        /// `mapping` or `view`.
        what: &'static str,
        /// The offset asked for.
        offset: u64,
        /// The length asked for.
        len: u64,
        /// The size of the mapping or view.
        size: u64,
    },
    /// An atomic was asked for at an offset that is not aligned for it.
    #[error("mapping `{name}`: offset {offset} is not aligned to {align} bytes in memory, as a {align}-byte atomic must be")]
    Misaligned {
        /// The mapping's name.
        name: String,
        /// The offset in the view.
        offset: usize,
        /// The alignment needed.
        align: usize,
    },
    /// Something this handle or view may not do: writing through a read-only view, an
    /// access list that file modes cannot express, …
    #[error("mapping `{name}`: {detail}")]
    NotPermitted {
        /// The mapping's name.
        name: String,
        /// What was tried.
        detail: String,
    },
    /// The mapping's files disagree: its memory belongs to another user than its entry, or
    /// its file was truncated below the mapping's size.
    #[error("mapping `{name}` is damaged: {detail}")]
    Corrupt {
        /// The mapping's name.
        name: String,
        /// What is wrong.
        detail: String,
    },
    /// A system call failed.
    #[error("mapping `{name}`: {context}: {source}")]
    Io {
        /// The mapping's name.
        name: String,
        /// What was being done.
        context: String,
        /// The system's error.
        #[source]
        source: io::Error,
    },
}

impl MappingError {
    pub(crate) fn from_object(name: &str, e: ObjectError) -> MappingError {
        let name = name.to_owned();
        match e {
            ObjectError::InvalidName(e) => MappingError::InvalidName(e),
            ObjectError::NotFound(detail) => MappingError::NotFound { name, detail },
            ObjectError::AlreadyExists(detail) => MappingError::AlreadyExists { name, detail },
            ObjectError::WrongKind(found) => MappingError::WrongKind { name, found },
            ObjectError::AccessDenied(detail) => MappingError::AccessDenied { name, detail },
            ObjectError::NotPermitted(detail) => MappingError::NotPermitted { name, detail },
            ObjectError::InvalidSize(detail) => MappingError::InvalidSize { name, detail },
            ObjectError::Corrupt(detail) => MappingError::Corrupt { name, detail },
            ObjectError::Io(context, source) => MappingError::Io {
                name,
                context,
                source,
            },
        }
    }
}
