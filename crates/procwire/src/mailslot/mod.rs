//! Mailslots: one-way messages from many writers to one reader that stores them until
//! read, with a count of waiting messages; on this machine, or by UDP to one host or the
//! whole local network.
//!
//! | Windows | procwire |
//! |---|---|
//! | `CreateMailslot` | [`MailslotOptions::create`] → [`MailslotServer`] |
//! | `GetMailslotInfo` | [`MailslotServer::info`] → [`MailslotInfo`] |
//! | `SetMailslotInfo` | [`MailslotServer::set_read_timeout`] |
//! | `ReadFile` | [`MailslotServer::read`] |
//! | `CreateFile` + `WriteFile` | [`MailslotWriter::open`] + [`MailslotWriter::write`] |
//! | `\\*\mailslot\Name` | a UDP broadcast |
//!
//! # What is promised
//!
//! **On this machine nothing is lost.** A slot is a Unix datagram socket in the namespace's
//! `mailslot/` directory. A message over the slot's maximum is refused at the writer; a
//! message that was written is stored until read, in order per writer; when the slot's
//! store is full, writers wait (up to their timeout) instead of dropping anything.
//!
//! **Over the network, datagrams can be lost**, duplicated or reordered, as UDP can, and a
//! message must fit one datagram (65,507 bytes with its header). The server drops
//! datagrams that are empty, garbled, oversize or for another slot, and counts them
//! ([`MailslotServer::dropped`]). See `docs/protocol.md` for both datagram formats.

mod error;
mod options;
mod server;
#[cfg(feature = "tokio")]
mod tokio;
mod writer;

pub use error::MailslotError;
pub use options::{
    MailslotOptions, ReadTimeout, WriterOptions, DEFAULT_MAX_MESSAGE, DEFAULT_UDP_PORT,
    MAX_LOCAL_MESSAGE,
};
pub use server::{DroppedCounts, MailslotInfo, MailslotServer};
pub use writer::MailslotWriter;

use crate::name::{Name, NameClass, Namespace};

/// The names of the live mailslots in a namespace.
///
/// # Errors
///
/// An I/O error when the namespace's lock directory cannot be read.
pub fn list(ns: Namespace) -> std::io::Result<Vec<String>> {
    Ok(
        crate::registry::list_class(ns, crate::registry::KindClass::Mailslot)?
            .into_iter()
            .map(|l| l.name)
            .collect(),
    )
}

/// Whether a live server has the mailslot `name` on this machine.
///
/// # Errors
///
/// [`MailslotError::InvalidName`] for a malformed name, [`MailslotError::NotPermitted`]
/// for a name on another machine.
pub fn exists<N>(name: N) -> Result<bool, MailslotError>
where
    N: TryInto<Name>,
    N::Error: Into<MailslotError>,
{
    let name: Name = name.try_into().map_err(Into::into)?;
    name.expect_class(NameClass::Mailslot)?;
    match name.namespace() {
        Some(ns) => Ok(crate::registry::is_live(
            ns,
            crate::registry::KindClass::Mailslot,
            name.object(),
        )),
        None => Err(MailslotError::NotPermitted {
            name: name.to_string(),
            detail: "only mailslots on this machine can be tested for existence".into(),
        }),
    }
}
