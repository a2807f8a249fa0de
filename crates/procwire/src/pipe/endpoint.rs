//! Where a pipe lives: names resolved to socket paths or TCP addresses, and the listening
//! socket created with its ownership lock. Shared by the blocking and the tokio API.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use super::PipeError;
use crate::name::{Location, Name, NameClass, Namespace};
use crate::registry::{self, Claim, ClaimError, KindClass, ObjectKind};
use crate::security::PeerCredentials;
use crate::sys::fs::FileId;

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

/// A bound pipe socket and the registry entry that makes the name ours. Dropping it removes
/// the socket file (if it is still ours) and releases the name.
#[derive(Debug)]
pub(crate) struct Binding {
    pub(crate) listener: UnixListener,
    pub(crate) path: PathBuf,
    socket: Option<FileId>,
    _claim: Claim,
}

impl Drop for Binding {
    fn drop(&mut self) {
        if let Some(id) = self.socket {
            let _ = crate::sys::fs::unlink_if_same(&self.path, id);
        }
    }
}

/// Creates the listening socket for `name`: takes the name in the registry (a live owner
/// makes this `AlreadyExists`, a file that is not a trusted entry `WrongKind`), removes a
/// socket a dead server left behind, binds, and sets the socket file's mode (owner only in
/// Local, everyone in Global where the server checks the access list itself).
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
    let entry = registry::store_entry(ObjectKind::Pipe, object);
    let claim = registry::claim(*ns, &entry).map_err(|e| claim_error(display, "pipe", e))?;
    registry::replace_stale_socket(&path).map_err(|e| match e {
        registry::StaleSocket::NotASocket(found) => PipeError::WrongKind {
            name: display.to_owned(),
            found: format!("{found} ({})", path.display()),
        },
        registry::StaleSocket::Io(e) => PipeError::io(display, "cannot remove a stale socket", e),
    })?;
    let listener = UnixListener::bind(&path)
        .map_err(|e| PipeError::io(display, format!("cannot bind {}", path.display()), e))?;
    let socket = crate::sys::fs::id_at(&path)
        .ok()
        .flatten()
        .map(|(id, _)| id);
    let mode = match ns {
        Namespace::Local => 0o600,
        Namespace::Global => 0o666,
    };
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| PipeError::io(display, "cannot set the socket's mode", e))?;
    Ok(Binding {
        listener,
        path,
        socket,
        _claim: claim,
    })
}

/// The error for a name that could not be taken, for a pipe or a mailslot (`noun`).
pub(crate) fn claim_error(display: &str, noun: &str, e: ClaimError) -> PipeError {
    let name = display.to_owned();
    match e {
        ClaimError::Taken(found) if found.entry.kind == ObjectKind::Pipe => {
            PipeError::AlreadyExists {
                name,
                owner: format!("uid {}, pid {}", found.owner_uid, found.entry.owner_pid),
            }
        }
        ClaimError::Taken(found) => PipeError::WrongKind {
            name,
            found: found.entry.kind.with_article().into(),
        },
        ClaimError::Untrusted(what) => PipeError::WrongKind {
            name,
            found: format!(
                "held by {what}, not by a {noun} server's entry; its owner (or root) can remove it"
            ),
        },
        ClaimError::StaleOfOther(found) => PipeError::AccessDenied {
            name,
            detail: format!(
                "a stale entry of uid {} holds the name (its server, pid {}, has exited); only \
                 that user or root can clear it",
                found.owner_uid, found.entry.owner_pid
            ),
        },
        ClaimError::Io(e) => PipeError::io(display, "cannot take the name in the registry", e),
    }
}

/// Refuses a server whose user is not one the client requires (none required: any).
pub(crate) fn check_owner(
    display: &str,
    required: &[u32],
    server: Option<PeerCredentials>,
) -> Result<(), PipeError> {
    crate::security::check_server_owner(required, server.map(|s| (s.uid, s.pid))).map_err(
        |detail| PipeError::UntrustedServer {
            name: display.to_owned(),
            detail,
        },
    )
}

/// Turns a failed connect to a socket file into the error a user can act on.
pub(crate) fn connect_error(display: &str, path: &Path, e: io::Error) -> PipeError {
    if let Some(found) = registry::describe_non_socket(path) {
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

/// Whether a live server has the pipe `name` on this machine (its registry entry is
/// trusted and its server's process runs; a socket file a dead server left behind does not
/// count).
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
    Ok(registry::is_live(*ns, KindClass::Pipe, name.object()))
}

/// The names of the live pipes in a namespace.
///
/// # Errors
///
/// An I/O error when the namespace's registry cannot be read.
pub fn list(ns: Namespace) -> io::Result<Vec<String>> {
    Ok(registry::list_class(ns, KindClass::Pipe)?
        .into_iter()
        .map(|l| l.name)
        .collect())
}
