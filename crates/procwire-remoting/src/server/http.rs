//! The HTTP channel: JSON over HTTP/1.1 and HTTP/2 (hyper), for curl and friends.
//!
//! - `POST /App/Service/METHOD` with the arguments as a JSON object by name (an empty
//!   body for none) answers `200` with the JSON result.
//! - `POST /App/Type` with the constructor's arguments as a JSON array (an empty body for
//!   a constructor taking `()`) activates a client-activated type and answers
//!   `{"object":"ID"}`; `POST /App/Type/METHOD?object=ID` calls that instance.
//! - `GET /App` lists the services, their modes, methods and argument types.
//! - Failures answer `4xx`/`5xx` with `{"error":{"kind":"…","message":"…"}}`.
//!
//! hyper parses the requests: ambiguous or malformed `Content-Length` headers are `400`,
//! heads over 16 KiB `431`, and `Expect: 100-continue` and chunked bodies work.

use std::convert::Infallible;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::{Body, Bytes, Incoming};
use hyper::header::{HeaderValue, ALLOW, CONTENT_TYPE};
use hyper::{Method, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use serde_json::json;

use super::{Listener, RemotingServer, TcpChannel, SHED_IDLE};
use crate::error::{RemoteError, RemoteErrorKind, RemotingError};
use crate::transport::{BoxedStream, Peer, UNBUDGETED_FRAME};
use crate::wire::{Format, Op, Request};

/// The largest request head: over it the answer is `431`.
pub const MAX_HEAD: usize = 16 * 1024;

type Answer = hyper::Response<Full<Bytes>>;

fn json_answer(status: StatusCode, body: Vec<u8>) -> Answer {
    let mut a = hyper::Response::new(Full::new(Bytes::from(body)));
    *a.status_mut() = status;
    a.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    a
}

fn error_answer(status: StatusCode, kind: &str, message: &str) -> Answer {
    let body = json!({ "error": { "kind": kind, "message": message } });
    json_answer(status, body.to_string().into_bytes())
}

fn not_allowed(method: &Method, allow: &'static str, hint: &str) -> Answer {
    let mut a = error_answer(
        StatusCode::METHOD_NOT_ALLOWED,
        "protocol",
        &format!("method {method} is not allowed here (allowed: {allow}); {hint}"),
    );
    a.headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allow));
    a
}

/// The status of an error the server answers.
pub(crate) fn status_of(kind: RemoteErrorKind) -> StatusCode {
    match kind {
        RemoteErrorKind::UnknownService | RemoteErrorKind::UnknownMethod => StatusCode::NOT_FOUND,
        RemoteErrorKind::BadArguments | RemoteErrorKind::Protocol => StatusCode::BAD_REQUEST,
        RemoteErrorKind::ObjectDisconnected => StatusCode::GONE,
        RemoteErrorKind::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        RemoteErrorKind::MessageTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        RemoteErrorKind::Busy => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn remote_answer(e: &RemoteError) -> Answer {
    error_answer(status_of(e.kind), e.kind.as_str(), &e.message)
}

/// Requests in flight on one connection, and when the last one ended.
#[derive(Debug)]
struct Activity {
    in_flight: AtomicUsize,
    last: Mutex<Instant>,
}

impl Activity {
    fn is_idle(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) == 0
            && self.last.lock().map(|t| t.elapsed()).unwrap_or_default() > SHED_IDLE
    }
}

struct Busy<'a>(&'a Activity);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        if let Ok(mut t) = self.0.last.lock() {
            *t = Instant::now();
        }
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

impl RemotingServer {
    /// Listens for HTTP (JSON; HTTP/1.1 and HTTP/2) on `channel`'s address, loopback
    /// unless told otherwise. Must be called within a tokio runtime.
    ///
    /// # Errors
    ///
    /// As [`listen_tcp`](Self::listen_tcp).
    pub fn listen_http(&self, channel: TcpChannel) -> Result<Listener, RemotingError> {
        let listener = channel.bind_checked()?;
        let local = listener
            .local_addr()
            .map_err(|source| RemotingError::Bind {
                target: channel.addr.to_string(),
                source,
            })?;
        let scheme = if channel.is_tls() { "https" } else { "http" };
        let task = self.accept_loop(listener, &channel, "http");
        Ok(Listener {
            task,
            sweeper: Some(self.sweeper()),
            local: format!("{scheme}://{local}"),
        })
    }

    pub(super) async fn serve_http(&self, stream: BoxedStream, peer: Peer) {
        let limits = &self.inner.limits;
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.frame_timeout)
            .max_buf_size(MAX_HEAD);
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_header_list_size(MAX_HEAD as u32)
            .max_concurrent_streams(super::MAX_IN_FLIGHT as u32);
        let activity = Arc::new(Activity {
            in_flight: AtomicUsize::new(0),
            last: Mutex::new(Instant::now()),
        });
        let service = {
            let activity = Arc::clone(&activity);
            let server = self.clone();
            hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                let server = server.clone();
                let peer = peer.clone();
                let activity = Arc::clone(&activity);
                let answer: crate::service::BoxFuture<'static, Result<Answer, Infallible>> =
                    Box::pin(async move {
                        activity.in_flight.fetch_add(1, Ordering::AcqRel);
                        let _busy = Busy(&activity);
                        Ok(server.http_request(req, peer).await)
                    });
                answer
            })
        };
        let mut conn = pin!(builder.serve_connection(TokioIo::new(stream), service));
        let mut shutting_down = false;
        loop {
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!("http connection ended: {e}");
                    }
                    return;
                }
                () = self.inner.pressure.notified(), if !shutting_down => {
                    if activity.is_idle() {
                        tracing::info!("closing an idle http connection: out of file descriptors");
                        conn.as_mut().graceful_shutdown();
                        shutting_down = true;
                    }
                }
            }
        }
    }

    async fn http_request(&self, req: hyper::Request<Incoming>, peer: Peer) -> Answer {
        let max = self.inner.limits.max_message;
        let (parts, body) = req.into_parts();
        let target = &parts.uri;
        let segments: Vec<&str> = target.path().split('/').filter(|s| !s.is_empty()).collect();
        let query = target.query().unwrap_or("");
        let registry = &self.inner.registry;
        let method = &parts.method;
        // Which methods each kind of path takes.
        let (allow, hint) = match segments.len() {
            0 | 1 => ("GET", "GET /App lists the services"),
            2 | 3 => (
                "POST",
                "POST /App/Service/METHOD with the arguments as a JSON object",
            ),
            _ => {
                return error_answer(
                    StatusCode::NOT_FOUND,
                    "unknown_service",
                    "no such path; POST /App/Service/METHOD, or GET /App for the services",
                )
            }
        };
        if method != allow {
            return not_allowed(method, allow, hint);
        }
        if let Some(app) = segments.first() {
            if *app != registry.app() {
                return error_answer(
                    StatusCode::NOT_FOUND,
                    "unknown_service",
                    &format!(
                        "no application `{app}` here (this server serves `{}`)",
                        registry.app()
                    ),
                );
            }
        }
        if segments.len() <= 1 {
            let listing = json!({
                "application": registry.app(),
                "services": registry.listing(),
            });
            return json_answer(StatusCode::OK, listing.to_string().into_bytes());
        }
        // A body announced over the maximum is refused before it is read (and before
        // `100 Continue`).
        let too_large = |len: u64| {
            error_answer(
                StatusCode::PAYLOAD_TOO_LARGE,
                "message_too_large",
                &format!("a body of {len} bytes is over the maximum of {max}"),
            )
        };
        if let Some(len) = body.size_hint().exact().filter(|&n| n > max as u64) {
            return too_large(len);
        }
        // A body over 64 KiB takes room from the server's budget of partial messages
        // first (a body of unknown size, as much as the largest), within the frame time.
        let frame_timeout = self.inner.limits.frame_timeout;
        let started = tokio::time::Instant::now();
        let need = body.size_hint().exact().unwrap_or(max as u64) as usize;
        let _room = if need > UNBUDGETED_FRAME {
            let n = u32::try_from(need).unwrap_or(u32::MAX);
            let acquire = Arc::clone(&self.inner.budget).acquire_many_owned(n);
            match tokio::time::timeout(frame_timeout, acquire).await {
                Ok(permit) => permit.ok(),
                Err(_) => {
                    return error_answer(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "busy",
                        &format!(
                        "no room for a body of {need} bytes within {frame_timeout:?}; retry later"
                    ),
                    )
                }
            }
        } else {
            None
        };
        let read = Limited::new(body, max).collect();
        let body = match tokio::time::timeout_at(started + frame_timeout, read).await {
            Ok(Ok(b)) => b.to_bytes().to_vec(),
            Ok(Err(e)) if e.is::<LengthLimitError>() => {
                return error_answer(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "message_too_large",
                    &format!("the body is over the maximum of {max} bytes"),
                )
            }
            Ok(Err(e)) => {
                return error_answer(
                    StatusCode::BAD_REQUEST,
                    "protocol",
                    &format!("cannot read the body: {e}"),
                )
            }
            Err(_) => {
                return error_answer(
                    StatusCode::REQUEST_TIMEOUT,
                    "protocol",
                    &format!("the body did not arrive within {frame_timeout:?}"),
                )
            }
        };
        match segments.as_slice() {
            [app, service, method] => {
                let mut object = None;
                for pair in query.split('&').filter(|p| !p.is_empty()) {
                    if let Some(v) = pair.strip_prefix("object=") {
                        match u64::from_str_radix(v, 16) {
                            Ok(id) => object = Some(id),
                            Err(_) => {
                                return error_answer(
                                    StatusCode::BAD_REQUEST,
                                    "protocol",
                                    "object= takes a hex id",
                                )
                            }
                        }
                    }
                }
                let request = Request {
                    id: 0,
                    deadline_ms: None,
                    format: Format::Json,
                    op: Op::Call {
                        service: format!("{app}/{service}"),
                        object,
                        method: (*method).to_owned(),
                    },
                    body,
                };
                match self.handle(request, peer).await {
                    Ok(result) => json_answer(StatusCode::OK, result),
                    Err(e) => remote_answer(&e),
                }
            }
            [app, ty] => {
                // Activation of a client-activated type: the body is the constructor's
                // arguments as a JSON array (an empty body is `null`, for `()`).
                let request = Request {
                    id: 0,
                    deadline_ms: None,
                    format: Format::Json,
                    op: Op::Activate {
                        service: format!("{app}/{ty}"),
                    },
                    body: if body.iter().all(u8::is_ascii_whitespace) {
                        b"null".to_vec()
                    } else {
                        body
                    },
                };
                match self.handle(request, peer).await {
                    Ok(id) => match postcard::from_bytes::<u64>(&id) {
                        Ok(id) => json_answer(
                            StatusCode::OK,
                            json!({ "object": format!("{id:x}") })
                                .to_string()
                                .into_bytes(),
                        ),
                        Err(_) => error_answer(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            "internal",
                            "bad activation answer",
                        ),
                    },
                    Err(e) => remote_answer(&e),
                }
            }
            _ => error_answer(StatusCode::NOT_FOUND, "unknown_service", "no such path"),
        }
    }
}
