//! The tokio API of mailslots: await the next message.

use super::{MailslotError, MailslotServer};

impl MailslotServer {
    /// Waits for the next message without blocking the runtime, as
    /// [`read`](Self::read) does (honouring the slot's read timeout). Needs the `tokio`
    /// feature.
    ///
    /// # Errors
    ///
    /// [`MailslotError::Timeout`] when the read timeout passes first.
    pub async fn read_async(&self) -> Result<Vec<u8>, MailslotError> {
        let shared = &self.shared;
        let wait = async {
            loop {
                let notified = shared.notify.notified();
                ::tokio::pin!(notified);
                notified.as_mut().enable();
                if let Some(message) = shared.try_read() {
                    return message;
                }
                // The receiving thread notifies on arrival; a periodic look covers a
                // datagram that arrived between its polls.
                let _ =
                    ::tokio::time::timeout(std::time::Duration::from_millis(50), notified).await;
            }
        };
        match shared.read_timeout().as_duration() {
            None => Ok(wait.await),
            Some(limit) => {
                ::tokio::time::timeout(limit, wait)
                    .await
                    .map_err(|_| MailslotError::Timeout {
                        name: shared.name.clone(),
                        after: limit,
                    })
            }
        }
    }
}
