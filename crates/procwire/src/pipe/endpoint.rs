//! Where a pipe lives: names resolved to socket paths or TCP addresses, and the listening
//! socket created with its ownership lock. Shared by the blocking and the tokio API.

use std::io;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use super::PipeError;
use crate::name::{Location, Name, NameClass, Namespace};
use crate::sys::LockFile;

/// Where a client connects.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    /// A socket file on this machine.
    Unix(PathBuf),
    /// A TCP listener, local or remote.
    Tcp { host: String, port: u16 },
}

/// A name resolved for a pipe: what to show in messages, what to send in the handshake, and
/// where to connect.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    pub(crate) display: String,
    pub(crate) object: String,
    pub(crate) target: Target,
}

/// Parses a pipe name and finds where it lives.
pub(crate) fn resolve<N>(name: N) -> Result<Endpoint, PipeError>
where
    N: TryInto<Name>,
    N::Error: Into<PipeError>,
{
    let name: Name = name.try_into().map_err(Into::into)?;
    name.expect_class(NameClass::Pipe)?;
    let display = name.to_string();
    let object = name.object().to_owned();
    let target = match name.location() {
        Location::Here(ns) => Target::Unix(socket_path(*ns, &object, &display)?),
        Location::Remote { host, port } => Target::Tcp {
            host: host.clone(),
            port: port.unwrap_or(super::DEFAULT_TCP_PORT),
        },
        Location::Broadcast { .. } => unreachable!("the name parser allows `*` for mailslots only"),
    };
    Ok(Endpoint {
        display,
        object,
        target,
    })
}

fn socket_path(ns: Namespace, object: &str, display: &str) -> Result<PathBuf, PipeError> {
    let dir = ns
        .directory(NameClass::Pipe)
        .map_err(|e| PipeError::io(display, "cannot use the namespace directory", e))?;
    Ok(dir.join(object))
}

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

/// A bound pipe socket and the lock that makes it ours. Dropping it removes the socket file
/// (if it is still ours) and releases the name.
#[derive(Debug)]
pub(crate) struct Binding {
    pub(crate) listener: UnixListener,
    pub(crate) path: PathBuf,
    _lock: LockFile,
}

impl Drop for Binding {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Creates the listening socket for `name`: takes the name's lock (a live owner makes this
/// `AlreadyExists`), removes a socket file a dead server left behind, binds, and sets the
/// socket file's mode (owner only in Local, everyone in Global where the server checks the
/// access list itself).
pub(crate) fn bind(name: &Name, display: &str) -> Result<Binding, PipeError> {
    let Location::Here(ns) = name.location() else {
        return Err(PipeError::NotPermitted {
            name: display.to_owned(),
            detail: "a server can only create pipes on this machine; use listen_tcp to accept \
                     network clients"
                .into(),
        });
    };
    let object = name.object();
    let path = socket_path(*ns, object, display)?;
    let lock_mode = match ns {
        Namespace::Local => 0o600,
        Namespace::Global => 0o644,
    };
    let lock_path = ns
        .ensure_lock_path(NameClass::Pipe, object)
        .map_err(|e| PipeError::io(display, "cannot use the lock directory", e))?;
    let lock = LockFile::try_lock(&lock_path, lock_mode)
        .map_err(|e| PipeError::io(display, "cannot take the name's lock", e))?
        .ok_or_else(|| PipeError::AlreadyExists {
            name: display.to_owned(),
        })?;
    if let Some(found) = describe_non_socket(&path) {
        return Err(PipeError::WrongKind {
            name: display.to_owned(),
            found: format!("{found} ({})", path.display()),
        });
    }
    match std::fs::remove_file(&path) {
        Ok(()) => tracing::info!(pipe = %name, "reclaimed the socket of a dead server"),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(PipeError::io(display, "cannot remove a stale socket", e)),
    }
    let listener = UnixListener::bind(&path)
        .map_err(|e| PipeError::io(display, format!("cannot bind {}", path.display()), e))?;
    let mode = match ns {
        Namespace::Local => 0o600,
        Namespace::Global => 0o666,
    };
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| PipeError::io(display, "cannot set the socket's mode", e))?;
    Ok(Binding {
        listener,
        path,
        _lock: lock,
    })
}

/// Turns a failed connect to a socket file into the error a user can act on.
pub(crate) fn connect_error(display: &str, path: &Path, e: io::Error) -> PipeError {
    if let Some(found) = describe_non_socket(path) {
        return PipeError::WrongKind {
            name: display.to_owned(),
            found,
        };
    }
    match e.kind() {
        io::ErrorKind::NotFound => PipeError::NotFound {
            name: display.to_owned(),
            detail: format!(
                "no server has created it ({} does not exist)",
                path.display()
            ),
        },
        io::ErrorKind::ConnectionRefused => PipeError::NotFound {
            name: display.to_owned(),
            detail: format!(
                "its server is gone ({} is left from a server that died)",
                path.display()
            ),
        },
        io::ErrorKind::PermissionDenied => PipeError::AccessDenied {
            name: display.to_owned(),
            detail: format!(
                "the socket file {} is not open to this user",
                path.display()
            ),
        },
        _ => PipeError::io(display, format!("cannot connect to {}", path.display()), e),
    }
}

/// Whether a live server has the pipe `name` on this machine (its server holds the name's
/// lock; a socket file a dead server left behind does not count).
///
/// # Errors
///
/// [`PipeError::InvalidName`] for a malformed name, [`PipeError::NotPermitted`] for a
/// name on another machine.
pub fn exists<N>(name: N) -> Result<bool, PipeError>
where
    N: TryInto<Name>,
    N::Error: Into<PipeError>,
{
    let name: Name = name.try_into().map_err(Into::into)?;
    name.expect_class(NameClass::Pipe)?;
    let Location::Here(ns) = name.location() else {
        return Err(PipeError::NotPermitted {
            name: name.to_string(),
            detail: "only pipes on this machine can be tested for existence".into(),
        });
    };
    Ok(ns.is_live(NameClass::Pipe, name.object()))
}

/// The names of the live pipes in a namespace (a server holds each one's lock).
///
/// # Errors
///
/// An I/O error when the namespace's lock directory cannot be read.
pub fn list(ns: Namespace) -> io::Result<Vec<String>> {
    ns.live_objects(NameClass::Pipe)
}
