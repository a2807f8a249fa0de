//! Listing the procwire services on a NATS server, from the NATS Services API.

use std::collections::HashMap;
use std::time::Duration;

use futures::StreamExt;
use procwire_remoting::RemotingError;

use crate::NatsOptions;

/// How long [`list`] waits for more answers after the last one.
const QUIET: Duration = Duration::from_millis(300);

/// One server process's instance of a procwire service, as the Services API describes it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ServiceInstance {
    /// The application.
    pub app: String,
    /// The service or client-activated type.
    pub service: String,
    /// `single_call`, `singleton` or `client_activated`.
    pub mode: String,
    /// The interface (trait) name.
    pub interface: String,
    /// The method names.
    pub methods: Vec<String>,
    /// The NATS service id of this instance.
    pub id: String,
    /// The version the instance reports.
    pub version: String,
    /// The queue-group subject of the service.
    pub subject: String,
    /// The subject of this instance (where its client-activated objects are called).
    pub instance_subject: String,
    /// The server process's pid.
    pub pid: u32,
    /// The server's host name.
    pub host: String,
    /// Requests this instance has answered (Services API STATS).
    pub requests: u64,
}

/// Sends `$SRV.<verb>` and gathers every answer until none came for [`QUIET`].
async fn gather(
    client: &async_nats::Client,
    verb: &str,
    limit: Duration,
) -> Result<Vec<serde_json::Value>, String> {
    let inbox = client.new_inbox();
    let mut replies = client
        .subscribe(inbox.clone())
        .await
        .map_err(|e| e.to_string())?;
    client
        .publish_with_reply(format!("$SRV.{verb}"), inbox, "".into())
        .await
        .map_err(|e| e.to_string())?;
    client.flush().await.map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    let end = tokio::time::Instant::now() + limit;
    loop {
        let wait = QUIET.min(end.saturating_duration_since(tokio::time::Instant::now()));
        match tokio::time::timeout(wait, replies.next()).await {
            Ok(Some(message)) => {
                if let Ok(value) = serde_json::from_slice(&message.payload) {
                    out.push(value);
                }
            }
            _ => break,
        }
    }
    Ok(out)
}

fn text(v: &serde_json::Value, key: &str) -> String {
    v.get(key)
        .and_then(|s| s.as_str())
        .unwrap_or_default()
        .to_owned()
}

/// Lists the procwire services and their instances on the NATS server at `url`
/// (`nats://HOST:PORT`), from `$SRV.INFO` and `$SRV.STATS`, sorted by application,
/// service and pid. Services that are not procwire's are left out.
///
/// # Errors
///
/// [`RemotingError::Connect`] when the server cannot be reached.
pub async fn list(url: &str, options: &NatsOptions) -> Result<Vec<ServiceInstance>, RemotingError> {
    let client = options
        .connect(url)
        .await
        .map_err(|e| crate::remoting_error(url, e))?;
    let failed = |e: String| RemotingError::Connect {
        target: url.to_owned(),
        source: std::io::Error::other(e),
    };
    let limit = Duration::from_secs(5);
    let infos = gather(&client, "INFO", limit).await.map_err(failed)?;
    let stats = gather(&client, "STATS", limit).await.map_err(failed)?;
    let requests: HashMap<String, u64> = stats
        .iter()
        .map(|s| {
            let n = s
                .get("endpoints")
                .and_then(|e| e.as_array())
                .map_or(0, |eps| {
                    eps.iter()
                        .filter_map(|e| e.get("num_requests").and_then(|n| n.as_u64()))
                        .sum()
                });
            (text(s, "id"), n)
        })
        .collect();
    let mut out: Vec<ServiceInstance> = infos
        .iter()
        .filter_map(|info| {
            let meta = info.get("metadata")?;
            let app = meta.get("procwire.app")?.as_str()?.to_owned();
            let endpoint = |name: &str| {
                info.get("endpoints")
                    .and_then(|e| e.as_array())
                    .and_then(|eps| eps.iter().find(|e| text(e, "name") == name))
                    .map(|e| text(e, "subject"))
                    .unwrap_or_default()
            };
            let id = text(info, "id");
            Some(ServiceInstance {
                app,
                service: text(meta, "procwire.service"),
                mode: text(meta, "procwire.mode"),
                interface: text(meta, "procwire.interface"),
                methods: text(meta, "procwire.methods")
                    .split(',')
                    .filter(|m| !m.is_empty())
                    .map(str::to_owned)
                    .collect(),
                version: text(info, "version"),
                subject: endpoint("call"),
                instance_subject: endpoint("instance"),
                pid: text(meta, "procwire.pid").parse().unwrap_or(0),
                host: text(meta, "procwire.host"),
                requests: requests.get(&id).copied().unwrap_or(0),
                id,
            })
        })
        .collect();
    out.sort_by(|a, b| (&a.app, &a.service, a.pid, &a.id).cmp(&(&b.app, &b.service, b.pid, &b.id)));
    Ok(out)
}
