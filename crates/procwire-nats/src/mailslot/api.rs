//! The few JetStream API requests a stored slot makes, as plain NATS requests with JSON
//! bodies (the subjects and fields are listed in docs/protocol.md), each with its own
//! timeout, and one place that sorts their failures.

use std::time::{Duration, Instant};

use async_nats::{Client, HeaderMap};
use base64::Engine as _;
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::name::SlotName;
use super::NatsMailslotError;

/// Bytes a stream's maximum message size holds beyond the slot's maximum, for the
/// `Nats-Msg-Id` header procwire's writers add (about 70 bytes).
pub const HEADER_ROOM: usize = 128;

/// The longest one request waits for its answer before it is tried again.
const ATTEMPT: Duration = Duration::from_secs(2);
/// The shortest: a call with little or no time left still gets one real try.
const MIN_ATTEMPT: Duration = Duration::from_millis(250);
/// How long to wait between two tries while the server does not answer.
const RETRY_PAUSE: Duration = Duration::from_millis(100);

/// JetStream error codes this crate tells apart.
pub(crate) mod code {
    pub const STREAM_NOT_FOUND: u64 = 10059;
    pub const NO_MESSAGE_FOUND: u64 = 10037;
    pub const MESSAGE_TOO_LARGE: u64 = 10054;
    pub const STORE_FAILED: u64 = 10077;
    pub const INSUFFICIENT_RESOURCES: u64 = 10023;
    pub const STORAGE_EXCEEDED: u64 = 10047;
    pub const NAME_IN_USE: u64 = 10058;
    pub const SUBJECT_OVERLAP: u64 = 10065;
    pub const SEQUENCE_NOT_FOUND: u64 = 10043;
}

/// Why a request failed.
#[derive(Debug)]
pub(crate) enum Failure {
    /// No answer (server down or restarting, JetStream not ready): worth retrying.
    Transient(String),
    /// JetStream answered with an error.
    Refused { err_code: u64, description: String },
}

impl Failure {
    pub(crate) fn is(&self, wanted: u64) -> bool {
        matches!(self, Failure::Refused { err_code, .. } if *err_code == wanted)
    }

    pub(crate) fn detail(&self) -> String {
        match self {
            Failure::Transient(why) => why.clone(),
            Failure::Refused {
                err_code,
                description,
            } => format!("{description} (JetStream error {err_code})"),
        }
    }
}

#[derive(Deserialize)]
struct ApiError {
    #[serde(default)]
    err_code: u64,
    #[serde(default)]
    description: String,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Response<T> {
    Err { error: ApiError },
    Ok(T),
}

/// What `STREAM.INFO` says about a stream (the fields this crate reads).
#[derive(Debug, Deserialize)]
pub(crate) struct StreamInfo {
    pub(crate) config: StreamConfig,
    pub(crate) state: StreamState,
    /// When the stream was made: another value means it was removed and made anew.
    #[serde(default)]
    pub(crate) created: String,
}

/// A stream's configuration (the fields this crate reads).
#[derive(Debug, Deserialize)]
pub(crate) struct StreamConfig {
    #[serde(default)]
    pub(crate) subjects: Vec<String>,
    #[serde(default)]
    pub(crate) retention: String,
    #[serde(default)]
    pub(crate) max_msg_size: i64,
}

/// A stream's state (the fields this crate reads).
#[derive(Debug, Deserialize)]
pub(crate) struct StreamState {
    pub(crate) messages: u64,
    #[serde(default)]
    pub(crate) first_seq: u64,
}

#[derive(Deserialize)]
struct GotMessage {
    message: RawMessage,
}

#[derive(Deserialize)]
struct RawMessage {
    seq: u64,
    #[serde(default)]
    data: Option<String>,
    /// The headers, base64 of `NATS/1.0\r\nKey: Value\r\n...`.
    #[serde(default)]
    hdrs: Option<String>,
}

/// A message read from a slot's stream.
#[derive(Debug)]
pub(crate) struct StoredMessage {
    /// Its stream sequence.
    pub(crate) seq: u64,
    pub(crate) payload: Bytes,
    /// Its `Nats-Msg-Id` (procwire's writers give every message one; the tries of one
    /// write share it), when it has one of at most [`MAX_MESSAGE_ID`] bytes.
    pub(crate) id: Option<String>,
}

/// The longest message id a reader keeps (procwire's are about 40 bytes).
pub(crate) const MAX_MESSAGE_ID: usize = 256;

/// The `Nats-Msg-Id` in base64 headers as `STREAM.MSG.GET` returns them; `None` when
/// there is none, or it is too long, or the headers are not what NATS writes.
fn message_id(hdrs: &str) -> Option<String> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(hdrs.as_bytes())
        .ok()?;
    let text = std::str::from_utf8(&raw).ok()?;
    text.split("\r\n").skip(1).find_map(|line| {
        let (key, value) = line.split_once(':')?;
        let value = value.trim();
        (key.trim().eq_ignore_ascii_case("Nats-Msg-Id")
            && !value.is_empty()
            && value.len() <= MAX_MESSAGE_ID)
            .then(|| value.to_owned())
    })
}

#[derive(Deserialize)]
struct Deleted {
    #[serde(default)]
    success: bool,
}

/// A publish acknowledgement: the message is stored (`duplicate` when an earlier try of
/// the same message id already was).
#[derive(Debug, Deserialize)]
pub(crate) struct PubAck {
    /// The stream that stored the message: anyone who may subscribe to the slot's subject
    /// could answer a publish, so a writer takes only its own slot's stream's word.
    pub(crate) stream: String,
    #[allow(dead_code)]
    pub(crate) seq: u64,
    #[serde(default)]
    #[allow(dead_code)]
    pub(crate) duplicate: bool,
}

/// The time one try may take when `deadline` is the call's.
pub(crate) fn attempt_limit(deadline: Option<Instant>) -> Duration {
    match deadline {
        None => ATTEMPT,
        Some(d) => d
            .saturating_duration_since(Instant::now())
            .clamp(MIN_ATTEMPT, ATTEMPT),
    }
}

/// Whether the call's time is up.
pub(crate) fn past(deadline: Option<Instant>) -> bool {
    deadline.is_some_and(|d| Instant::now() >= d)
}

/// Waits a little before the next try (never past the deadline).
pub(crate) async fn pause(deadline: Option<Instant>) {
    let mut wait = RETRY_PAUSE;
    if let Some(d) = deadline {
        wait = wait.min(d.saturating_duration_since(Instant::now()));
    }
    tokio::time::sleep(wait).await;
}

/// Sends one request and reads the JSON answer.
pub(crate) async fn request<V: DeserializeOwned>(
    client: &Client,
    subject: String,
    headers: Option<HeaderMap>,
    body: Bytes,
    limit: Duration,
) -> Result<V, Failure> {
    let mut request = async_nats::Request::new()
        .payload(body)
        .timeout(Some(limit));
    if let Some(headers) = headers {
        request = request.headers(headers);
    }
    let answer = tokio::time::timeout(limit, client.send_request(subject, request)).await;
    let message = match answer {
        Err(_) => return Err(Failure::Transient(format!("no answer within {limit:?}"))),
        Ok(Err(e)) => {
            return Err(Failure::Transient(match e.kind() {
                async_nats::RequestErrorKind::NoResponders => {
                    "nobody answered (JetStream is not running there, or not yet)".into()
                }
                async_nats::RequestErrorKind::TimedOut => format!("no answer within {limit:?}"),
                async_nats::RequestErrorKind::Other => format!("the request failed: {e}"),
            }))
        }
        Ok(Ok(message)) => message,
    };
    match serde_json::from_slice::<Response<V>>(&message.payload) {
        Ok(Response::Ok(v)) => Ok(v),
        Ok(Response::Err { error }) => Err(Failure::Refused {
            err_code: error.err_code,
            description: error.description,
        }),
        Err(e) => Err(Failure::Refused {
            err_code: 0,
            description: format!(
                "an answer that is not JetStream's ({e}): {:?}",
                String::from_utf8_lossy(&message.payload)
            ),
        }),
    }
}

/// Runs `once` until it succeeds, fails for good, or the deadline passes (then the last
/// transient failure becomes [`NatsMailslotError::Disconnected`]).
pub(crate) async fn retry<V, F, Fut>(
    name: &SlotName,
    what: &str,
    deadline: Option<Instant>,
    mut once: F,
) -> Result<V, Failure>
where
    F: FnMut(Duration) -> Fut,
    Fut: std::future::Future<Output = Result<V, Failure>>,
{
    loop {
        match once(attempt_limit(deadline)).await {
            Err(Failure::Transient(why)) if !past(deadline) => {
                tracing::debug!(slot = %name.full, %what, %why, "retrying");
                pause(deadline).await;
            }
            other => return other,
        }
    }
}

/// The error for a request that could not be made in time, or was refused.
pub(crate) fn failed(
    name: &SlotName,
    what: &str,
    started: Instant,
    failure: Failure,
) -> NatsMailslotError {
    match failure {
        Failure::Transient(why) => NatsMailslotError::Disconnected {
            name: name.full.clone(),
            detail: format!(
                "could not {what}: the NATS server at {} did not answer for {:?} ({why}); it may be down or restarting, retry later",
                name.server,
                started.elapsed()
            ),
        },
        Failure::Refused { err_code, .. } if err_code == code::STREAM_NOT_FOUND => {
            not_found(name)
        }
        refused => NatsMailslotError::Server {
            name: name.full.clone(),
            what: what.to_owned(),
            detail: refused.detail(),
        },
    }
}

/// The error for a slot whose stream is not on the server.
pub(crate) fn not_found(name: &SlotName) -> NatsMailslotError {
    NatsMailslotError::NotFound {
        name: name.full.clone(),
        detail: format!(
            "the server at {} has no JetStream stream `{}`; a reader creates it \
             (NatsMailslotOptions::create), or a writer opened with \
             NatsWriterOptions::open_or_create",
            name.server,
            name.stream()
        ),
    }
}

/// `STREAM.INFO`.
pub(crate) async fn stream_info(
    client: &Client,
    name: &SlotName,
    limit: Duration,
) -> Result<StreamInfo, Failure> {
    request(
        client,
        format!("$JS.API.STREAM.INFO.{}", name.stream()),
        None,
        Bytes::new(),
        limit,
    )
    .await
}

/// `STREAM.CREATE` of the slot's stream: work-queue retention, file storage, one subject,
/// new messages refused when `max_waiting` are stored.
pub(crate) async fn create_stream(
    client: &Client,
    name: &SlotName,
    max_message: usize,
    max_waiting: usize,
    limit: Duration,
) -> Result<StreamInfo, Failure> {
    let config = serde_json::json!({
        "name": name.stream(),
        "description": format!("procwire mailslot {}: messages of at most {max_message} bytes, kept until read", name.slot),
        "subjects": [name.subject()],
        "retention": "workqueue",
        "storage": "file",
        "discard": "new",
        "max_msg_size": max_message + HEADER_ROOM,
        // No byte limit: see NatsMailslotOptions::max_waiting.
        "max_bytes": -1,
        "max_msgs": max_waiting,
        "max_age": 0,
        "num_replicas": 1,
        "duplicate_window": 120_000_000_000u64,
    });
    request(
        client,
        format!("$JS.API.STREAM.CREATE.{}", name.stream()),
        None,
        Bytes::from(config.to_string()),
        limit,
    )
    .await
}

/// `STREAM.DELETE`.
pub(crate) async fn delete_stream(
    client: &Client,
    name: &SlotName,
    limit: Duration,
) -> Result<(), Failure> {
    let done: Deleted = request(
        client,
        format!("$JS.API.STREAM.DELETE.{}", name.stream()),
        None,
        Bytes::new(),
        limit,
    )
    .await?;
    refused_unless(done.success, "the stream was not deleted")
}

/// `STREAM.MSG.GET` of the first message at or after `from`; `None` when there is none.
pub(crate) async fn first_message(
    client: &Client,
    name: &SlotName,
    from: u64,
    limit: Duration,
) -> Result<Option<StoredMessage>, Failure> {
    let body = serde_json::json!({ "seq": from.max(1), "next_by_subj": name.subject() });
    let got: Result<GotMessage, Failure> = request(
        client,
        format!("$JS.API.STREAM.MSG.GET.{}", name.stream()),
        None,
        Bytes::from(body.to_string()),
        limit,
    )
    .await;
    match got {
        Ok(got) => {
            let data = match got.message.data {
                None => Bytes::new(),
                Some(b64) => Bytes::from(
                    base64::engine::general_purpose::STANDARD
                        .decode(b64.as_bytes())
                        .map_err(|e| Failure::Refused {
                            err_code: 0,
                            description: format!("a stored message that is not base64: {e}"),
                        })?,
                ),
            };
            Ok(Some(StoredMessage {
                seq: got.message.seq,
                payload: data,
                id: got.message.hdrs.as_deref().and_then(message_id),
            }))
        }
        Err(f) if f.is(code::NO_MESSAGE_FOUND) => Ok(None),
        Err(f) => Err(f),
    }
}

/// `STREAM.MSG.DELETE` of message `seq`; a message already gone counts as deleted.
pub(crate) async fn delete_message(
    client: &Client,
    name: &SlotName,
    seq: u64,
    limit: Duration,
) -> Result<(), Failure> {
    let body = serde_json::json!({ "seq": seq, "no_erase": true });
    let done: Result<Deleted, Failure> = request(
        client,
        format!("$JS.API.STREAM.MSG.DELETE.{}", name.stream()),
        None,
        Bytes::from(body.to_string()),
        limit,
    )
    .await;
    match done {
        Ok(done) => refused_unless(done.success, "the message was not deleted"),
        Err(f) if f.is(code::NO_MESSAGE_FOUND) || f.is(code::SEQUENCE_NOT_FOUND) => Ok(()),
        Err(Failure::Refused { description, .. })
            if description.contains("no message found")
                || description.contains("not found") && !description.contains("stream") =>
        {
            Ok(())
        }
        Err(f) => Err(f),
    }
}

fn refused_unless(success: bool, what: &str) -> Result<(), Failure> {
    if success {
        Ok(())
    } else {
        Err(Failure::Refused {
            err_code: 0,
            description: what.to_owned(),
        })
    }
}

#[derive(Deserialize)]
struct Purged {
    #[serde(default)]
    success: bool,
}

/// `STREAM.PURGE` of every message before `seq`: the message handed out last, and any
/// older one a server that was killed (not stopped) brought back because it had not
/// written the removal to its store yet.
pub(crate) async fn purge_before(
    client: &Client,
    name: &SlotName,
    seq: u64,
    limit: Duration,
) -> Result<(), Failure> {
    let body = serde_json::json!({ "seq": seq });
    let done: Purged = request(
        client,
        format!("$JS.API.STREAM.PURGE.{}", name.stream()),
        None,
        Bytes::from(body.to_string()),
        limit,
    )
    .await?;
    refused_unless(done.success, "the messages were not purged")
}

/// Whether the stream is a procwire mailslot's; what it is instead when not.
pub(crate) fn check_kind(name: &SlotName, info: &StreamInfo) -> Result<usize, NatsMailslotError> {
    let c = &info.config;
    if c.subjects != [name.subject()] || c.retention != "workqueue" {
        return Err(NatsMailslotError::WrongKind {
            name: name.full.clone(),
            found: format!(
                "a JetStream stream `{}` that is not a procwire mailslot (subjects {:?}, retention `{}`; a slot's stream has the one subject `{}` and work-queue retention)",
                name.stream(),
                c.subjects,
                c.retention,
                name.subject()
            ),
        });
    }
    if c.max_msg_size <= 0 {
        // No limit on the stream: the server's own maximum payload applies.
        return Ok(usize::MAX);
    }
    Ok((c.max_msg_size as usize).saturating_sub(HEADER_ROOM))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(headers: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(headers)
    }

    #[test]
    fn the_message_id_is_read_from_the_headers_nats_returns() {
        let hdrs = encoded("NATS/1.0\r\nFoo: bar\r\nNats-Msg-Id: ab12-7\r\n\r\n");
        assert_eq!(message_id(&hdrs).as_deref(), Some("ab12-7"));
        let lower = encoded("NATS/1.0\r\nnats-msg-id:x\r\n\r\n");
        assert_eq!(message_id(&lower).as_deref(), Some("x"));
    }

    #[test]
    fn headers_without_a_usable_id_give_none() {
        assert_eq!(message_id(&encoded("NATS/1.0\r\nFoo: bar\r\n\r\n")), None);
        assert_eq!(
            message_id(&encoded("NATS/1.0\r\nNats-Msg-Id: \r\n\r\n")),
            None
        );
        let long = format!("NATS/1.0\r\nNats-Msg-Id: {}\r\n\r\n", "x".repeat(300));
        assert_eq!(message_id(&encoded(&long)), None);
        // The status line is not a header, whatever it holds.
        assert_eq!(message_id(&encoded("Nats-Msg-Id: a\r\n\r\n")), None);
        assert_eq!(message_id("not base64!"), None);
    }
}
