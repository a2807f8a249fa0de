//! The HTTP channel: a small HTTP/1.1 server that takes JSON, for curl and friends.
//!
//! - `POST /App/Service/METHOD` with the arguments as a JSON object by name (an empty
//!   body for none) answers `200` with the JSON result.
//! - `POST /App/Type` with the constructor's arguments as a JSON array (an empty body for
//!   a constructor taking `()`) activates a
//!   client-activated type and answers `{"object":"ID"}`; `POST
//!   /App/Type/METHOD?object=ID` calls that instance.
//! - `GET /App` lists the services, their modes, methods and argument types.
//! - Failures answer `4xx`/`5xx` with `{"error":{"kind":"…","message":"…"}}`.
//!
//! Only `Content-Length` bodies are taken (no chunked requests); keep-alive is honoured.

use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

use super::{Listener, RemotingServer, TcpChannel};
use crate::error::{RemoteError, RemoteErrorKind, RemotingError};
use crate::transport::{tcp_peer, Peer};
use crate::wire::{Format, Op, Request};

const MAX_HEAD: usize = 16 * 1024;

struct Head {
    method: String,
    target: String,
    content_length: usize,
    keep_alive: bool,
    chunked: bool,
}

struct Answer {
    status: u16,
    body: Vec<u8>,
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        410 => "Gone",
        411 => "Length Required",
        413 => "Payload Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Error",
    }
}

fn error_answer(status: u16, kind: &str, message: &str) -> Answer {
    let body = json!({ "error": { "kind": kind, "message": message } });
    Answer {
        status,
        body: body.to_string().into_bytes(),
    }
}

fn remote_answer(e: &RemoteError) -> Answer {
    let status = match e.kind {
        RemoteErrorKind::UnknownService | RemoteErrorKind::UnknownMethod => 404,
        RemoteErrorKind::BadArguments | RemoteErrorKind::Protocol => 400,
        RemoteErrorKind::ObjectDisconnected => 410,
        RemoteErrorKind::DeadlineExceeded => 504,
        RemoteErrorKind::MessageTooLarge => 413,
        RemoteErrorKind::Busy => 503,
        _ => 500,
    };
    error_answer(status, e.kind.as_str(), &e.message)
}

fn parse_head(head: &[u8]) -> Result<Head, String> {
    let text = std::str::from_utf8(head).map_err(|_| "the request head is not UTF-8")?;
    let mut lines = text.split("\r\n");
    let line = lines.next().unwrap_or_default();
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(format!("bad request line `{line}`"));
    };
    let mut keep_alive = match version {
        "HTTP/1.1" => true,
        "HTTP/1.0" => false,
        _ => return Err(format!("unsupported version `{version}`")),
    };
    let mut content_length = 0;
    let mut chunked = false;
    for header in lines.filter(|l| !l.is_empty()) {
        let (name, value) = header
            .split_once(':')
            .ok_or_else(|| format!("bad header line `{header}`"))?;
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => {
                content_length = value
                    .parse()
                    .map_err(|_| format!("bad Content-Length `{value}`"))?
            }
            "transfer-encoding" => chunked = !value.eq_ignore_ascii_case("identity"),
            "connection" => {
                if value.eq_ignore_ascii_case("close") {
                    keep_alive = false;
                } else if value.eq_ignore_ascii_case("keep-alive") {
                    keep_alive = true;
                }
            }
            _ => {}
        }
    }
    Ok(Head {
        method: method.to_owned(),
        target: target.to_owned(),
        content_length,
        keep_alive,
        chunked,
    })
}

impl RemotingServer {
    /// Listens for HTTP (JSON) on `channel`'s address, loopback unless told otherwise.
    /// Must be called within a tokio runtime.
    ///
    /// # Errors
    ///
    /// As [`listen_tcp`](Self::listen_tcp).
    pub fn listen_http(&self, channel: TcpChannel) -> Result<Listener, RemotingError> {
        let std_listener = channel.bind_checked()?;
        let bind = |source| RemotingError::Bind {
            target: channel.addr.to_string(),
            source,
        };
        let local = std_listener.local_addr().map_err(bind)?;
        let listener = TcpListener::from_std(std_listener).map_err(bind)?;
        let server = self.clone();
        let tls = channel.acceptor();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let task = tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((stream, _)) => {
                        let server = server.clone();
                        let tls = tls.clone();
                        tokio::spawn(async move {
                            let peer = tcp_peer(&stream, "http");
                            match tls {
                                None => server.serve_http(stream, peer).await,
                                #[cfg(feature = "tls")]
                                Some(acceptor) => {
                                    let peer = Peer {
                                        channel: "https",
                                        ..peer
                                    };
                                    let hs = tokio::time::timeout(
                                        Duration::from_secs(5),
                                        acceptor.accept(stream),
                                    );
                                    if let Ok(Ok(s)) = hs.await {
                                        server.serve_http(s, peer).await;
                                    }
                                }
                                #[cfg(not(feature = "tls"))]
                                Some(never) => match never {},
                            }
                        });
                    }
                    Err(e) => {
                        tracing::warn!("http accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
        });
        Ok(Listener {
            task,
            sweeper: Some(self.sweeper()),
            local: format!("{scheme}://{local}"),
        })
    }

    async fn serve_http<S>(&self, mut stream: S, peer: Peer)
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let mut buf: Vec<u8> = Vec::new();
        loop {
            // The head: up to the blank line.
            let end = loop {
                if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    break i;
                }
                if buf.len() > MAX_HEAD {
                    let a = error_answer(431, "protocol", "the request head is too large");
                    let _ = write_answer(&mut stream, &a, false).await;
                    return;
                }
                buf.reserve(4096);
                let read = tokio::time::timeout(Duration::from_secs(30), stream.read_buf(&mut buf));
                match read.await {
                    Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return,
                    Ok(Ok(_)) => {}
                }
            };
            let head = match parse_head(&buf[..end]) {
                Ok(h) => h,
                Err(why) => {
                    let _ = write_answer(&mut stream, &error_answer(400, "protocol", &why), false)
                        .await;
                    return;
                }
            };
            buf.drain(..end + 4);
            if head.chunked {
                let a = error_answer(411, "protocol", "send the body with a Content-Length");
                let _ = write_answer(&mut stream, &a, false).await;
                return;
            }
            if head.content_length > self.inner.max_message {
                let a = error_answer(
                    413,
                    "message_too_large",
                    &format!(
                        "a body of {} bytes is over the maximum of {}",
                        head.content_length, self.inner.max_message
                    ),
                );
                let _ = write_answer(&mut stream, &a, false).await;
                return;
            }
            while buf.len() < head.content_length {
                buf.reserve(head.content_length - buf.len());
                let read = tokio::time::timeout(Duration::from_secs(30), stream.read_buf(&mut buf));
                match read.await {
                    Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return,
                    Ok(Ok(_)) => {}
                }
            }
            let body: Vec<u8> = buf.drain(..head.content_length).collect();
            let answer = self.http_answer(&head, body, peer.clone()).await;
            if write_answer(&mut stream, &answer, head.keep_alive)
                .await
                .is_err()
                || !head.keep_alive
            {
                return;
            }
        }
    }

    async fn http_answer(&self, head: &Head, body: Vec<u8>, peer: Peer) -> Answer {
        let (path, query) = head.target.split_once('?').unwrap_or((&head.target, ""));
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let registry = &self.inner.registry;
        match (head.method.as_str(), segments.as_slice()) {
            ("GET", [] | [_]) => {
                if let [app] = segments.as_slice() {
                    if *app != registry.app() {
                        return error_answer(
                            404,
                            "unknown_service",
                            &format!(
                                "no application `{app}` here (this server serves `{}`)",
                                registry.app()
                            ),
                        );
                    }
                }
                let listing = json!({
                    "application": registry.app(),
                    "services": registry.listing(),
                });
                Answer {
                    status: 200,
                    body: listing.to_string().into_bytes(),
                }
            }
            ("POST", [app, service, method]) => {
                let mut object = None;
                for pair in query.split('&').filter(|p| !p.is_empty()) {
                    if let Some(v) = pair.strip_prefix("object=") {
                        match u64::from_str_radix(v, 16) {
                            Ok(id) => object = Some(id),
                            Err(_) => {
                                return error_answer(400, "protocol", "object= takes a hex id")
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
                    Ok(result) => Answer {
                        status: 200,
                        body: result,
                    },
                    Err(e) => remote_answer(&e),
                }
            }
            ("POST", [app, ty]) => {
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
                        Ok(id) => Answer {
                            status: 200,
                            body: json!({ "object": format!("{id:x}") })
                                .to_string()
                                .into_bytes(),
                        },
                        Err(_) => error_answer(500, "internal", "bad activation answer"),
                    },
                    Err(e) => remote_answer(&e),
                }
            }
            ("POST", _) => error_answer(
                404,
                "unknown_service",
                "POST to /App/Service/METHOD with the arguments as a JSON object",
            ),
            ("GET", _) => error_answer(404, "unknown_service", "GET /App lists the services"),
            (other, _) => error_answer(
                405,
                "protocol",
                &format!("method {other} is not allowed; use GET /App or POST /App/Service/METHOD"),
            ),
        }
    }
}

async fn write_answer<S: AsyncWrite + Unpin>(
    stream: &mut S,
    a: &Answer,
    keep_alive: bool,
) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: {}\r\n\r\n",
        a.status,
        reason(a.status),
        a.body.len(),
        if keep_alive { "keep-alive" } else { "close" }
    );
    let mut out = head.into_bytes();
    out.extend_from_slice(&a.body);
    stream.write_all(&out).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_heads() {
        let h = parse_head(b"POST /A/S/m HTTP/1.1\r\nContent-Length: 12\r\nHost: x").unwrap();
        assert_eq!(
            (
                h.method.as_str(),
                h.target.as_str(),
                h.content_length,
                h.keep_alive
            ),
            ("POST", "/A/S/m", 12, true)
        );
        let h = parse_head(b"GET /A HTTP/1.0").unwrap();
        assert!(!h.keep_alive);
        assert!(parse_head(b"GARBAGE").is_err());
        assert!(parse_head(b"GET / HTTP/1.1\r\nContent-Length: x").is_err());
        assert!(parse_head(b"GET / HTTP/9").is_err());
        let h = parse_head(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked").unwrap();
        assert!(h.chunked);
    }
}
