//! Which stored slots a server has: list, exists.

use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::Deserialize;

use super::api;
use super::name::{SlotName, STREAM_PREFIX, SUBJECT_PREFIX};
use super::reader::runtime;
use super::{NatsMailslotError, NatsOptions};

/// How long a listing may try while the server does not answer.
const LIST_TIME: Duration = Duration::from_secs(10);

#[derive(Deserialize)]
struct NamesPage {
    #[serde(default)]
    total: usize,
    #[serde(default)]
    streams: Option<Vec<String>>,
}

/// The names (`Name`) of the stored slots on the NATS server `server`
/// (`nats://HOST:PORT`), sorted: the streams `PROCWIRE_MAILSLOT_Name` that store the
/// subject `procwire.mailslot.Name`. Broadcast slots are not stored, so not listed.
/// Blocking: call [`list_async`] inside a tokio runtime.
///
/// # Errors
///
/// [`NatsMailslotError::InvalidName`] for a URL that is not `nats://HOST:PORT`;
/// [`NatsMailslotError::Connect`]; [`NatsMailslotError::Disconnected`] when the server did
/// not answer for 10 s.
pub fn list(server: &str, nats: &NatsOptions) -> Result<Vec<String>, NatsMailslotError> {
    let rt = runtime(server)?;
    rt.block_on(list_async(server, nats))
}

/// As [`list`], on the caller's tokio runtime.
///
/// # Errors
///
/// As [`list`].
pub async fn list_async(
    server: &str,
    nats: &NatsOptions,
) -> Result<Vec<String>, NatsMailslotError> {
    let url = crate::NatsUrl::parse(server).map_err(|e| NatsMailslotError::InvalidName {
        name: server.to_owned(),
        detail: e.to_string(),
    })?;
    let at = SlotName {
        full: server.to_owned(),
        server: url.base(),
        slot: String::new(),
        broadcast: false,
    };
    let client = at.connect(nats).await?;
    let started = Instant::now();
    let deadline = Some(started + LIST_TIME);
    let mut names = Vec::new();
    let mut offset = 0;
    loop {
        let body = serde_json::json!({ "offset": offset, "subject": format!("{SUBJECT_PREFIX}*") });
        let page: NamesPage = api::retry(&at, "list the slots", deadline, |limit| {
            api::request(
                &client,
                "$JS.API.STREAM.NAMES".to_owned(),
                None,
                Bytes::from(body.to_string()),
                limit,
            )
        })
        .await
        .map_err(|f| api::failed(&at, "list the slots", started, f))?;
        let streams = page.streams.unwrap_or_default();
        let got = streams.len();
        offset += got;
        names.extend(
            streams
                .into_iter()
                .filter_map(|s| s.strip_prefix(STREAM_PREFIX).map(str::to_owned)),
        );
        if got == 0 || offset >= page.total {
            break;
        }
    }
    names.sort();
    Ok(names)
}

/// Whether the server stores the slot `name` (`nats://HOST:PORT/mailslot/Name`); always
/// true for a broadcast slot, which needs nothing on the server. Blocking: call
/// [`exists_async`] inside a tokio runtime.
///
/// # Errors
///
/// [`NatsMailslotError::InvalidName`]; [`NatsMailslotError::WrongKind`] when the stream of
/// that name is not a slot's; [`NatsMailslotError::Connect`];
/// [`NatsMailslotError::Disconnected`].
pub fn exists(name: &str, nats: &NatsOptions) -> Result<bool, NatsMailslotError> {
    let rt = runtime(name)?;
    rt.block_on(exists_async(name, nats))
}

/// As [`exists`], on the caller's tokio runtime.
///
/// # Errors
///
/// As [`exists`].
pub async fn exists_async(name: &str, nats: &NatsOptions) -> Result<bool, NatsMailslotError> {
    let name = SlotName::parse(name)?;
    if name.broadcast {
        return Ok(true);
    }
    let client = name.connect(nats).await?;
    let started = Instant::now();
    let info = api::retry(
        &name,
        "look up the slot",
        Some(started + LIST_TIME),
        |limit| api::stream_info(&client, &name, limit),
    )
    .await;
    match info {
        Ok(info) => api::check_kind(&name, &info).map(|_| true),
        Err(f) if f.is(api::code::STREAM_NOT_FOUND) => Ok(false),
        Err(f) => Err(api::failed(&name, "look up the slot", started, f)),
    }
}
