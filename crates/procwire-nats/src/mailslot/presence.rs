//! One live reader per stored slot: the reader answers on `procwire.reader.Name`, and a
//! second reader that gets an answer refuses to start.

use std::time::{Duration, Instant};

use async_nats::Client;
use futures::StreamExt as _;

use super::name::SlotName;
use super::NatsMailslotError;

/// The prefix of the subject a stored slot's live reader answers on.
pub const READER_PREFIX: &str = "procwire.reader.";

/// How long a new reader waits for a reader that was just killed to vanish (the server
/// drops a dead connection's subscriptions as soon as it sees the socket close).
const VANISH_TIME: Duration = Duration::from_secs(2);

/// The answering task of a live reader; aborted when the reader goes.
#[derive(Debug)]
pub(crate) struct Presence(tokio::task::JoinHandle<()>);

impl Drop for Presence {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Who this reader is, as it answers: `pid PID on HOST`.
fn whoami() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "this host".into());
    format!("pid {} on {host}", std::process::id())
}

/// Refuses to start when another reader of the slot answers; otherwise answers from now
/// on. Two readers starting in the same instant can both pass: the check is a courtesy
/// against a second reader by mistake, not a lock.
pub(crate) async fn claim(client: &Client, name: &SlotName) -> Result<Presence, NatsMailslotError> {
    let subject = format!("{READER_PREFIX}{}", name.slot);
    let deadline = Instant::now() + VANISH_TIME;
    loop {
        let ask = client.send_request(
            subject.clone(),
            async_nats::Request::new().timeout(Some(Duration::from_millis(500))),
        );
        match tokio::time::timeout(Duration::from_millis(600), ask).await {
            Ok(Err(e)) if e.kind() == async_nats::RequestErrorKind::NoResponders => break,
            Ok(Ok(answer)) if Instant::now() >= deadline => {
                return Err(NatsMailslotError::AlreadyExists {
                    name: name.full.clone(),
                    owner: String::from_utf8_lossy(&answer.payload).into_owned(),
                })
            }
            // A reader that answers may be one just killed, not yet gone: ask again.
            Ok(Ok(_)) => tokio::time::sleep(Duration::from_millis(100)).await,
            // No answer: the server is slow or restarting; a reader that cannot answer
            // cannot be told from none.
            _ => break,
        }
    }
    let mut sub = client
        .subscribe(subject)
        .await
        .map_err(|e| NatsMailslotError::Connect {
            name: name.full.clone(),
            server: name.server.clone(),
            source: Box::new(e),
        })?;
    let _ = tokio::time::timeout(VANISH_TIME, client.flush()).await;
    let client = client.clone();
    let me = whoami();
    Ok(Presence(tokio::spawn(async move {
        while let Some(ask) = sub.next().await {
            if let Some(reply) = ask.reply {
                let _ = client.publish(reply, me.clone().into()).await;
            }
        }
    })))
}
