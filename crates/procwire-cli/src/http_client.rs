//! `procwire remoting call http(s)://…`: one POST through hyper, over TLS (rustls) for
//! `https://`.

use anyhow::{bail, Context};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::header::{CONTENT_TYPE, HOST};
use hyper::Uri;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::remoting::CallArgs;
use crate::tls::client_tls;

/// POSTs the arguments to `URL/METHOD` and prints the answer's body; an answer other than
/// 200 is an error.
pub(crate) async fn call(args: &CallArgs) -> anyhow::Result<()> {
    if args.activate.is_some() || args.sponsor.is_some() || args.repeat != 1 {
        bail!("--activate, --sponsor and --repeat are for tcp:// and pipe:// URLs; over http, POST to /App/Type to activate");
    }
    let base = args.url.trim_end_matches('/');
    let uri: Uri = format!("{base}/{}", args.method)
        .parse()
        .with_context(|| format!("`{}` is not a URL", args.url))?;
    let https = uri.scheme_str() == Some("https");
    let host = uri.host().context("the URL has no host")?.to_owned();
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let authority = uri
        .authority()
        .map(|a| a.as_str().to_owned())
        .unwrap_or_else(|| host.clone());
    let exchange = async {
        let tcp = TcpStream::connect((host.as_str(), port))
            .await
            .with_context(|| format!("cannot connect to {host}:{port}; is the server running?"))?;
        let _ = tcp.set_nodelay(true);
        let request = hyper::Request::post(uri.path_and_query().map_or("/", |p| p.as_str()))
            .header(HOST, authority)
            .header(CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(args.args.clone())))?;
        let response = if https {
            let config = match &args.ca {
                Some(ca) => client_tls(ca)?,
                None => bail!("https:// needs --ca FILE: the certificates to trust"),
            };
            let name = tokio_rustls::rustls::pki_types::ServerName::try_from(host.clone())
                .with_context(|| format!("`{host}` is not a server name"))?;
            let tls = tokio_rustls::TlsConnector::from(config)
                .connect(name, tcp)
                .await
                .with_context(|| format!("TLS with {host}:{port} failed"))?;
            send(TokioIo::new(tls), request).await?
        } else {
            send(TokioIo::new(tcp), request).await?
        };
        anyhow::Ok(response)
    };
    let (status, body) = tokio::time::timeout(args.deadline, exchange)
        .await
        .with_context(|| format!("no answer within {:?}", args.deadline))??;
    println!("{}", String::from_utf8_lossy(&body));
    if status != hyper::StatusCode::OK {
        bail!("HTTP status {}", status.as_u16());
    }
    Ok(())
}

async fn send<I>(
    io: I,
    request: hyper::Request<Full<Bytes>>,
) -> anyhow::Result<(hyper::StatusCode, Bytes)>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .context("HTTP handshake failed")?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!("http connection ended: {e}");
        }
    });
    let response = sender
        .send_request(request)
        .await
        .context("the HTTP request failed")?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .context("cannot read the answer")?
        .to_bytes();
    Ok((status, body))
}
