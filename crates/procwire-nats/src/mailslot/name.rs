//! NATS mailslot names: pure parsing, and the JetStream stream and subjects a name maps to.

use super::NatsMailslotError;

/// The longest slot name, so that the stream name (with its prefix) stays a short file
/// name in the server's store.
pub const MAX_NAME_LEN: usize = 200;

/// The prefix of a stored slot's JetStream stream: `PROCWIRE_MAILSLOT_Name`.
pub const STREAM_PREFIX: &str = "PROCWIRE_MAILSLOT_";

/// The prefix of a stored slot's subject: `procwire.mailslot.Name`.
pub const SUBJECT_PREFIX: &str = "procwire.mailslot.";

/// The prefix of a broadcast slot's subject: `procwire.broadcast.Name`.
pub const BROADCAST_PREFIX: &str = "procwire.broadcast.";

/// A parsed `nats://HOST:PORT/mailslot/Name` (stored) or `nats://HOST:PORT/mailslot/*/Name`
/// (broadcast).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SlotName {
    /// The whole name as given.
    pub(crate) full: String,
    /// What the client connects to: `nats://HOST:PORT` (or `tls://`).
    pub(crate) server: String,
    /// The slot's own name.
    pub(crate) slot: String,
    /// The `*` form: every reader listening, nothing stored.
    pub(crate) broadcast: bool,
}

impl SlotName {
    pub(crate) fn parse(name: &str) -> Result<SlotName, NatsMailslotError> {
        let invalid = |detail: String| NatsMailslotError::InvalidName {
            name: name.to_owned(),
            detail,
        };
        let url = crate::NatsUrl::parse(name).map_err(|e| {
            let hint = if name.contains("://") {
                ""
            } else {
                " (a local or UDP slot's name: open it with procwire::mailslot)"
            };
            match e {
                crate::ConnectError::InvalidUrl { reason, .. } => invalid(format!(
                    "{reason}; expected nats://HOST:PORT/mailslot/Name{hint}"
                )),
                other => invalid(other.to_string()),
            }
        })?;
        let parts: Vec<&str> = url.path.split('/').collect();
        let (slot, broadcast) = match parts.as_slice() {
            ["mailslot"] | ["mailslot", "*"] => {
                return Err(invalid("the slot name is empty".into()))
            }
            ["mailslot", slot] => (*slot, false),
            ["mailslot", "*", slot] => (*slot, true),
            ["mailslot", ..] => {
                return Err(invalid(
                    "expected /mailslot/Name (stored) or /mailslot/*/Name (broadcast) after the server"
                        .into(),
                ))
            }
            [""] => {
                return Err(invalid(
                    "no slot: expected nats://HOST:PORT/mailslot/Name".into(),
                ))
            }
            ["pipe", ..] => {
                return Err(NatsMailslotError::WrongKind {
                    name: name.to_owned(),
                    found: "a pipe name (procwire does not carry pipes on NATS)".into(),
                })
            }
            [app, service] => {
                return Err(NatsMailslotError::WrongKind {
                    name: name.to_owned(),
                    found: format!(
                        "a remoting service URL (application `{app}`, service `{service}`; see procwire_nats::remoting)"
                    ),
                })
            }
            _ => {
                return Err(invalid(
                    "expected nats://HOST:PORT/mailslot/Name or nats://HOST:PORT/mailslot/*/Name"
                        .into(),
                ))
            }
        };
        check_slot(slot).map_err(invalid)?;
        Ok(SlotName {
            full: name.to_owned(),
            server: url.base(),
            slot: slot.to_owned(),
            broadcast,
        })
    }

    /// Connects to the slot's server.
    pub(crate) async fn connect(
        &self,
        nats: &crate::NatsOptions,
    ) -> Result<async_nats::Client, NatsMailslotError> {
        nats.connect(&self.server).await.map_err(|e| match e {
            crate::ConnectError::InvalidUrl { reason, .. } => NatsMailslotError::InvalidName {
                name: self.full.clone(),
                detail: reason,
            },
            e @ crate::ConnectError::PlaintextNetwork { .. } => NatsMailslotError::NotPermitted {
                name: self.full.clone(),
                detail: e.to_string(),
            },
            e => NatsMailslotError::Connect {
                name: self.full.clone(),
                server: self.server.clone(),
                source: Box::new(e),
            },
        })
    }

    /// The JetStream stream that stores the slot.
    pub(crate) fn stream(&self) -> String {
        format!("{STREAM_PREFIX}{}", self.slot)
    }

    /// The subject writers publish on: the stream's only subject, or the broadcast one.
    pub(crate) fn subject(&self) -> String {
        if self.broadcast {
            format!("{BROADCAST_PREFIX}{}", self.slot)
        } else {
            format!("{SUBJECT_PREFIX}{}", self.slot)
        }
    }
}

/// A slot name is 1 to 200 ASCII letters, digits, `-` and `_`: one subject token, and a
/// valid stream name.
fn check_slot(slot: &str) -> Result<(), String> {
    if slot.is_empty() {
        return Err("the slot name is empty".into());
    }
    if slot.len() > MAX_NAME_LEN {
        return Err(format!(
            "the slot name is {} bytes long; at most {MAX_NAME_LEN} are allowed",
            slot.len()
        ));
    }
    if let Some(c) = slot
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
    {
        return Err(format!(
            "the slot name holds {c:?}; only ASCII letters, digits, `-` and `_` are allowed (a slot name is one NATS subject token and a stream name)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_and_broadcast_names() {
        let n = SlotName::parse("nats://127.0.0.1:4222/mailslot/Jobs").unwrap();
        assert_eq!(n.server, "nats://127.0.0.1:4222");
        assert_eq!(n.slot, "Jobs");
        assert!(!n.broadcast);
        assert_eq!(n.stream(), "PROCWIRE_MAILSLOT_Jobs");
        assert_eq!(n.subject(), "procwire.mailslot.Jobs");
        let b = SlotName::parse("tls://host:4222/mailslot/*/News").unwrap();
        assert_eq!(b.server, "tls://host:4222");
        assert!(b.broadcast);
        assert_eq!(b.subject(), "procwire.broadcast.News");
    }

    #[test]
    fn bad_names_say_why() {
        for (name, needle) in [
            (r"\\.\mailslot\Jobs", "procwire::mailslot"),
            ("http://h:1/mailslot/Jobs", "unknown scheme `http`"),
            ("nats:///mailslot/Jobs", "no host"),
            ("nats://h:1/pipe/Jobs", "pipe name"),
            ("nats://h:1/mailslot/a.b", "'.'"),
            ("nats://h:1/mailslot/a*", "'*'"),
            ("nats://h:1/mailslot/", "empty"),
            ("nats://h:1/mailslot/a/b", "/mailslot/*/Name"),
            ("nats://h:1", "no slot"),
            ("nats://h:1/mailslot/*/", "empty"),
        ] {
            let e = SlotName::parse(name).unwrap_err().to_string();
            assert!(e.contains(needle), "{name}: {e}");
        }
        let long = format!("nats://h:1/mailslot/{}", "x".repeat(MAX_NAME_LEN + 1));
        assert!(SlotName::parse(&long)
            .unwrap_err()
            .to_string()
            .contains("at most 200"));
        let e = SlotName::parse("nats://h:1/App/Service").unwrap_err();
        assert!(matches!(e, NatsMailslotError::WrongKind { .. }), "{e}");
        assert!(e.to_string().contains("remoting service"), "{e}");
    }
}
