//! Whom the CLI's clients trust to serve a name: this user and root, unless told otherwise.

use procwire::name::Name;

/// This user and root.
pub(crate) fn trusted() -> Vec<u32> {
    let me = rustix::process::geteuid().as_raw();
    if me == 0 {
        vec![0]
    } else {
        vec![me, 0]
    }
}

/// Whether `name` names an object on this machine (its server's user can be checked).
pub(crate) fn is_local(name: &str) -> bool {
    Name::parse(name).is_ok_and(|n| !n.is_remote())
}
