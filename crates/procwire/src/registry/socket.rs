//! The socket files of pipes and mailslots, beside their registry entries.

use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

/// What kind of file sits at `path`, in words, when it is not a socket.
pub(crate) fn describe_non_socket(path: &Path) -> Option<String> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    let ft = meta.file_type();
    if ft.is_socket() {
        return None;
    }
    Some(
        if ft.is_dir() {
            "a directory"
        } else if ft.is_symlink() {
            "a symbolic link"
        } else if ft.is_fifo() {
            "a FIFO"
        } else if ft.is_file() {
            "a regular file"
        } else {
            "a device or other special file"
        }
        .to_owned(),
    )
}

/// Why the socket path of a name just taken could not be cleared.
pub(crate) enum StaleSocket {
    /// Something other than a socket is there: what, in words.
    NotASocket(String),
    Io(io::Error),
}

/// Clears the socket path of a name this process now holds: a socket there was left by a
/// server that died (the name's entry was stale or gone) and is removed; anything else is
/// refused. Removal never follows a link and removes only the socket that was checked.
pub(crate) fn replace_stale_socket(path: &Path) -> Result<(), StaleSocket> {
    if let Some(found) = describe_non_socket(path) {
        return Err(StaleSocket::NotASocket(found));
    }
    match crate::sys::fs::id_at(path).map_err(StaleSocket::Io)? {
        None => Ok(()),
        Some((id, meta)) => match crate::sys::fs::unlink_if_same(path, id) {
            Ok(_) => {
                tracing::info!(
                    "reclaimed the socket {} of a dead server (uid {})",
                    path.display(),
                    meta.uid()
                );
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                Err(StaleSocket::Io(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    format!(
                        "{} is a socket of uid {}, left with no live owner; only that user \
                             or root can remove it",
                        path.display(),
                        meta.uid()
                    ),
                )))
            }
            Err(e) => Err(StaleSocket::Io(e)),
        },
    }
}
