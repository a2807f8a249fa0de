//! The tokio API of mailslots: await the next message.

use super::server::Shared;
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
        self.wait_async(Shared::try_read).await
    }

    /// Waits for the next message without blocking the runtime, as
    /// [`peek`](Self::peek) does, and returns a copy of it, leaving it next. Cancelling
    /// the future takes nothing.
    ///
    /// # Errors
    ///
    /// [`MailslotError::Timeout`] when the read timeout passes first.
    pub async fn peek_async(&self) -> Result<Vec<u8>, MailslotError> {
        self.wait_async(Shared::try_peek).await
    }

    /// Waits until `look` finds a message, or the read timeout passes.
    async fn wait_async(
        &self,
        look: fn(&Shared) -> Option<Vec<u8>>,
    ) -> Result<Vec<u8>, MailslotError> {
        let shared = &self.shared;
        let wait = async {
            loop {
                let notified = shared.notify.notified();
                ::tokio::pin!(notified);
                notified.as_mut().enable();
                if let Some(message) = look(shared) {
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
