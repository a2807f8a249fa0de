//! Access rights, access lists and peer credentials.
//!
//! Every procwire object has an [`AccessList`]. By default it grants nothing to anyone but
//! the user who created the object (the owner, who always has [`Access::ReadWrite`]); wider
//! access is granted explicitly, to everyone, a group, a user, or clients that come over the
//! network. Servers check each client's kernel-verified [`PeerCredentials`] (`SO_PEERCRED`)
//! against the list and against the access the client asked for.

use std::fmt;

/// What a client may do with an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Access {
    /// Receive from the object (read a pipe, read shared memory).
    Read,
    /// Send to the object (write a pipe or a mailslot, write shared memory).
    Write,
    /// Both.
    ReadWrite,
}

impl Access {
    const READ: u8 = 1;
    const WRITE: u8 = 2;

    /// The access as bits: 1 = read, 2 = write, 3 = both (the wire encoding).
    pub fn bits(self) -> u8 {
        match self {
            Access::Read => Self::READ,
            Access::Write => Self::WRITE,
            Access::ReadWrite => Self::READ | Self::WRITE,
        }
    }

    /// The access for `bits` (1, 2 or 3); `None` for anything else.
    pub fn from_bits(bits: u8) -> Option<Access> {
        match bits {
            Self::READ => Some(Access::Read),
            Self::WRITE => Some(Access::Write),
            3 => Some(Access::ReadWrite),
            _ => None,
        }
    }

    /// Whether holding `self` permits `wanted`.
    pub fn contains(self, wanted: Access) -> bool {
        self.bits() & wanted.bits() == wanted.bits()
    }

    /// Whether it includes reading.
    pub fn can_read(self) -> bool {
        self.contains(Access::Read)
    }

    /// Whether it includes writing.
    pub fn can_write(self) -> bool {
        self.contains(Access::Write)
    }

    fn union(a: Option<Access>, b: Access) -> Access {
        match a {
            None => b,
            Some(a) => Access::from_bits(a.bits() | b.bits()).unwrap_or(Access::ReadWrite),
        }
    }
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Access::Read => "read",
            Access::Write => "write",
            Access::ReadWrite => "read-write",
        })
    }
}

/// Who an access-list entry grants to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Principal {
    /// Every local user.
    Everyone,
    /// Every process whose primary or supplementary groups include this gid.
    Group(u32),
    /// Every process running as this uid.
    User(u32),
    /// Clients that come over the network (TCP), whose identity the kernel cannot vouch
    /// for.
    Network,
}

/// The kernel-verified identity of a peer process, as `SO_PEERCRED` reports it: the
/// credentials it had when it connected.
///
/// The equivalent of `GetNamedPipeClientProcessId` and friends on Windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PeerCredentials {
    /// The peer's process id.
    pub pid: u32,
    /// The peer's effective user id.
    pub uid: u32,
    /// The peer's effective group id.
    pub gid: u32,
}

/// Who may open an object, and for what.
///
/// # Examples
///
/// ```
/// use procwire::security::{Access, AccessList, Principal};
///
/// // The owner, plus read-only for everyone else.
/// let acl = AccessList::owner_only().everyone(Access::Read);
/// assert_eq!(acl.grants().len(), 1);
/// let acl = acl.grant(Principal::Group(100), Access::ReadWrite);
/// assert_eq!(acl.grants().len(), 2);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessList {
    owner: u32,
    grants: Vec<(Principal, Access)>,
}

impl Default for AccessList {
    fn default() -> Self {
        AccessList::owner_only()
    }
}

impl AccessList {
    /// Only the current user (the owner) may open the object.
    pub fn owner_only() -> AccessList {
        AccessList {
            owner: crate::sys::current_user().0,
            grants: Vec::new(),
        }
    }

    /// Grants `access` to `principal`, in addition to what the list already grants.
    pub fn grant(mut self, principal: Principal, access: Access) -> AccessList {
        self.grants.push((principal, access));
        self
    }

    /// Grants `access` to every local user.
    pub fn everyone(self, access: Access) -> AccessList {
        self.grant(Principal::Everyone, access)
    }

    /// The owner's uid.
    pub fn owner(&self) -> u32 {
        self.owner
    }

    /// The grants beyond the owner's.
    pub fn grants(&self) -> &[(Principal, Access)] {
        &self.grants
    }

    /// Whether the list has an entry for `principal`.
    pub fn mentions(&self, principal: Principal) -> bool {
        self.grants.iter().any(|(p, _)| *p == principal)
    }

    /// What the list grants a local peer (`Some(credentials)`) or a network client
    /// (`None`): the union of every matching entry, or `None` for nothing.
    pub fn access_for(&self, peer: Option<&PeerCredentials>) -> Option<Access> {
        let mut granted = None;
        let Some(peer) = peer else {
            for (principal, access) in &self.grants {
                if *principal == Principal::Network {
                    granted = Some(Access::union(granted, *access));
                }
            }
            return granted;
        };
        if peer.uid == self.owner {
            return Some(Access::ReadWrite);
        }
        let mut groups: Option<Vec<u32>> = None;
        for (principal, access) in &self.grants {
            let matches = match *principal {
                Principal::Everyone => true,
                Principal::User(uid) => peer.uid == uid,
                Principal::Group(gid) => {
                    peer.gid == gid
                        || groups
                            .get_or_insert_with(|| crate::sys::supplementary_groups(peer.pid))
                            .contains(&gid)
                }
                Principal::Network => false,
            };
            if matches {
                granted = Some(Access::union(granted, *access));
            }
        }
        granted
    }

    /// Checks that a peer may have `wanted`.
    ///
    /// # Errors
    ///
    /// A sentence saying what the peer asked for and what it is granted.
    pub fn check(&self, peer: Option<&PeerCredentials>, wanted: Access) -> Result<(), String> {
        let who = match peer {
            Some(p) => format!("uid {} (pid {})", p.uid, p.pid),
            None => "a network client".to_owned(),
        };
        match self.access_for(peer) {
            Some(granted) if granted.contains(wanted) => Ok(()),
            Some(granted) => Err(format!(
                "{who} asked for {wanted} access but is granted only {granted}"
            )),
            None => Err(format!(
                "{who} is granted no access (the owner is uid {})",
                self.owner
            )),
        }
    }

    /// The file mode and group that carry this list on a file in the file system (shared
    /// memory, a socket): the owner always reads and writes; `Everyone` sets the bits for
    /// others (and the group); one `Group` sets the group bits and becomes the file's group.
    ///
    /// # Errors
    ///
    /// A sentence, for what file modes cannot say: write-only access (a writable mapping
    /// needs read access too), grants to single users other than the owner, more than one
    /// group, and network clients.
    ///
    /// # Examples
    ///
    /// ```
    /// use procwire::security::{Access, AccessList, Principal};
    ///
    /// let acl = AccessList::owner_only().grant(Principal::Group(10), Access::ReadWrite);
    /// assert_eq!(acl.file_mode(), Ok((0o660, Some(10))));
    /// ```
    pub fn file_mode(&self) -> Result<(u32, Option<u32>), String> {
        let bits = |a: Access| match a {
            Access::Read => Ok(4),
            Access::ReadWrite => Ok(6),
            Access::Write => Err(
                "write-only access cannot be granted on shared memory (mapping it writable \
                 needs read access too); grant ReadWrite"
                    .to_owned(),
            ),
        };
        let (mut group, mut other, mut gid) = (0u32, 0u32, None);
        for (principal, access) in &self.grants {
            match *principal {
                Principal::Everyone => {
                    let b = bits(*access)?;
                    other |= b;
                    group |= b;
                }
                Principal::Group(g) => {
                    if gid.is_some_and(|old| old != g) {
                        return Err("the access list grants to two groups; a file mode can \
                                    carry one group only"
                            .into());
                    }
                    gid = Some(g);
                    group |= bits(*access)?;
                }
                Principal::User(uid) if uid == self.owner => {}
                Principal::User(uid) => {
                    return Err(format!(
                        "the access list grants to user {uid}; shared memory is guarded by its \
                         file mode, which has no room for single users: grant to a group or to \
                         everyone"
                    ))
                }
                Principal::Network => {
                    return Err("shared memory cannot be reached over the network".into());
                }
            }
        }
        Ok((0o600 | group << 3 | other, gid))
    }
}

/// What the kernel's permission check would let `peer` open a file of owner `uid`, group
/// `gid` and permission bits `mode` for, as opening it by name would: the owner bits when
/// the peer is the owner, else the group bits when the peer is in the group (its primary
/// or a supplementary group), else the bits for others; everything for root. `None` for
/// nothing.
pub(crate) fn mode_grants(uid: u32, gid: u32, mode: u32, peer: &PeerCredentials) -> Option<Access> {
    if peer.uid == 0 {
        return Some(Access::ReadWrite);
    }
    let bits = if peer.uid == uid {
        mode >> 6
    } else if peer.gid == gid || crate::sys::supplementary_groups(peer.pid).contains(&gid) {
        mode >> 3
    } else {
        mode
    };
    match (bits & 4 != 0, bits & 2 != 0) {
        (true, true) => Some(Access::ReadWrite),
        (true, false) => Some(Access::Read),
        (false, true) => Some(Access::Write),
        (false, false) => None,
    }
}

/// Checks that a server (`Some(uid, pid)`, or `None` when it has no user to check) is run by
/// one of the `required` users; none required accepts any.
///
/// # Errors
///
/// A sentence saying who serves the name and who was required.
pub(crate) fn check_server_owner(
    required: &[u32],
    server: Option<(u32, u32)>,
) -> Result<(), String> {
    if required.is_empty() {
        return Ok(());
    }
    let expected = required
        .iter()
        .map(|u| u.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    match server {
        Some((uid, _)) if required.contains(&uid) => Ok(()),
        Some((uid, pid)) => Err(format!(
            "it is served by uid {uid} (pid {pid}), not by a required owner (uid \
             {expected}); someone else may have taken the name first"
        )),
        None => Err(format!(
            "its server has no user this client can check (required: uid {expected}); \
             authenticate a network server with TLS instead"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(uid: u32, gid: u32) -> PeerCredentials {
        PeerCredentials {
            pid: std::process::id(),
            uid,
            gid,
        }
    }

    #[test]
    fn access_bits_round_trip() {
        for a in [Access::Read, Access::Write, Access::ReadWrite] {
            assert_eq!(Access::from_bits(a.bits()), Some(a));
        }
        assert_eq!(Access::from_bits(0), None);
        assert_eq!(Access::from_bits(4), None);
        assert!(Access::ReadWrite.contains(Access::Write));
        assert!(!Access::Read.contains(Access::Write));
    }

    #[test]
    fn owner_only_refuses_others() {
        let acl = AccessList {
            owner: 1000,
            grants: vec![],
        };
        assert_eq!(
            acl.access_for(Some(&peer(1000, 1))),
            Some(Access::ReadWrite)
        );
        assert_eq!(acl.access_for(Some(&peer(1001, 1))), None);
        assert_eq!(acl.access_for(None), None);
        let e = acl.check(Some(&peer(1001, 1)), Access::Read).unwrap_err();
        assert!(e.contains("uid 1001"), "{e}");
    }

    #[test]
    fn grants_combine() {
        let acl = AccessList {
            owner: 0,
            grants: vec![],
        }
        .everyone(Access::Read)
        .grant(Principal::User(7), Access::Write)
        .grant(Principal::Group(50), Access::Write)
        .grant(Principal::Network, Access::Read);
        assert_eq!(acl.access_for(Some(&peer(7, 1))), Some(Access::ReadWrite));
        assert_eq!(acl.access_for(Some(&peer(8, 1))), Some(Access::Read));
        assert_eq!(acl.access_for(Some(&peer(8, 50))), Some(Access::ReadWrite));
        assert_eq!(acl.access_for(None), Some(Access::Read));
        assert!(acl.check(Some(&peer(8, 1)), Access::Write).is_err());
        assert!(acl.check(Some(&peer(8, 1)), Access::Read).is_ok());
    }

    #[test]
    fn access_lists_become_file_modes() {
        let acl = AccessList::owner_only();
        assert_eq!(acl.file_mode(), Ok((0o600, None)));
        assert_eq!(
            acl.clone().everyone(Access::Read).file_mode(),
            Ok((0o644, None))
        );
        assert_eq!(
            acl.clone().everyone(Access::ReadWrite).file_mode(),
            Ok((0o666, None))
        );
        assert_eq!(
            acl.clone()
                .grant(Principal::Group(10), Access::ReadWrite)
                .everyone(Access::Read)
                .file_mode(),
            Ok((0o664, Some(10)))
        );
        assert!(acl.clone().everyone(Access::Write).file_mode().is_err());
        assert!(acl
            .clone()
            .grant(Principal::User(12345), Access::Read)
            .file_mode()
            .is_err());
        assert!(acl
            .clone()
            .grant(Principal::Network, Access::Read)
            .file_mode()
            .is_err());
        assert!(acl
            .grant(Principal::Group(1), Access::Read)
            .grant(Principal::Group(2), Access::Read)
            .file_mode()
            .is_err());
    }
}
