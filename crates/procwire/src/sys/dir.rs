//! Namespace directories: created with the right mode, checked for the right owner.

use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::Path;

/// Creates `path` (and missing parents) as a directory only its owner can enter, or checks
/// that an existing one is a real directory owned by this user with no access for others.
///
/// A directory owned by someone else is refused with `PermissionDenied`; one of ours with
/// loose permissions is tightened to `0700`.
pub(crate) fn ensure_private_dir(path: &Path) -> io::Result<()> {
    create_dir(path, 0o700)?;
    let meta = std::fs::symlink_metadata(path)?;
    let (uid, _) = super::current_user();
    if !meta.file_type().is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} exists and is not a directory", path.display()),
        ));
    }
    if meta.uid() != uid {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "{} belongs to uid {}, not to this user (uid {uid}); refusing to use it",
                path.display(),
                meta.uid()
            ),
        ));
    }
    if meta.mode() & 0o077 != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Creates `path` as a directory every user can write but only an entry's owner can delete
/// from (`1777`, like `/tmp`), or checks that an existing one is such a directory owned by
/// root or by this user.
pub(crate) fn ensure_shared_dir(path: &Path) -> io::Result<()> {
    if create_dir(path, 0o1777)? {
        // mkdir applies the umask; the mode must be exact.
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o1777))?;
    }
    let meta = std::fs::symlink_metadata(path)?;
    let (uid, _) = super::current_user();
    if !meta.file_type().is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} exists and is not a directory", path.display()),
        ));
    }
    if meta.uid() != 0 && meta.uid() != uid {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "{} belongs to uid {}, neither root nor this user; refusing to use it",
                path.display(),
                meta.uid()
            ),
        ));
    }
    if meta.mode() & 0o1000 == 0 && meta.mode() & 0o022 != 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "{} is writable by others without the sticky bit; refusing to use it",
                path.display()
            ),
        ));
    }
    Ok(())
}

/// Creates the directory and its parents; `true` if this call created `path` itself.
fn create_dir(path: &Path, mode: u32) -> io::Result<bool> {
    if let Some(parent) = path.parent() {
        if !parent.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(parent)?;
        }
    }
    match std::fs::DirBuilder::new().mode(mode).create(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(tag: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("procwire-dirtest-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn private_dirs_are_created_0700_and_tightened() {
        let dir = scratch("private");
        ensure_private_dir(&dir).unwrap();
        let mode = std::fs::metadata(&dir).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o700);
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        ensure_private_dir(&dir).unwrap();
        assert_eq!(std::fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    #[ignore = "needs root: gives a directory to another user"]
    fn a_private_dir_of_another_user_is_refused() {
        let dir = scratch("foreign");
        std::fs::create_dir(&dir).unwrap();
        std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).unwrap();
        let e = ensure_private_dir(&dir).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
        assert!(e.to_string().contains("belongs to uid 65534"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn shared_dirs_are_sticky_and_world_writable() {
        let dir = scratch("shared");
        ensure_shared_dir(&dir).unwrap();
        assert_eq!(std::fs::metadata(&dir).unwrap().mode() & 0o7777, 0o1777);
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = ensure_shared_dir(&dir).unwrap_err();
        assert!(e.to_string().contains("without the sticky bit"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
