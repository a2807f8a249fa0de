//! `procwire remoting serve` and `procwire remoting call`.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::tls::{client_tls, server_tls};
use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use procwire_remoting::{
    sample, Format, Lease, PipeChannel, Proxy, RemoteUrl, RemotingError, RemotingServer, Scheme,
    TcpChannel,
};

#[derive(Debug, Subcommand)]
pub(crate) enum RemotingCommand {
    /// Run the sample server: application `RemotingService` with SingleCallService,
    /// SingletonService and the client-activated type ClientActivatedObject.
    Serve(ServeArgs),
    /// Call METHOD on the object at URL with JSON arguments, and print the JSON result.
    Call(CallArgs),
}

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// The TCP port (0: any free port).
    #[arg(long, default_value_t = sample::TCP_PORT)]
    tcp: u16,
    /// Do not listen on TCP.
    #[arg(long)]
    no_tcp: bool,
    /// Also serve HTTP (JSON) on this port (0: any free port).
    #[arg(long)]
    http: Option<u16>,
    /// Also serve on this pipe name.
    #[arg(long)]
    pipe: Option<String>,
    /// Listen on all interfaces in plaintext instead of loopback only.
    #[arg(long)]
    allow_plaintext_network: bool,
    /// The initial lease of client-activated objects, in milliseconds.
    #[arg(long, default_value_t = 300_000)]
    lease_ms: u64,
    /// The least lease left after each call, in milliseconds.
    #[arg(long, default_value_t = 120_000)]
    renew_ms: u64,
    /// The largest message, in bytes.
    #[arg(long)]
    max_message: Option<usize>,
    /// Speak TLS on --tcp and --http with this PEM certificate chain (needs --tls-key).
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct CallArgs {
    /// `tcp://host:port/App/Service`, `pipe://Name/App/Service` or `http://host:port/App/Service`.
    url: String,
    /// The method.
    method: String,
    /// The arguments as a JSON object by name, such as `{"name":"Ann"}`.
    #[arg(default_value = "{}")]
    args: String,
    /// Activate a client-activated object first, with these constructor arguments (a
    /// JSON array, such as `["mine"]`).
    #[arg(long)]
    activate: Option<String>,
    /// Call this many times (on the same object), one result per line.
    #[arg(long, default_value_t = 1)]
    repeat: u32,
    /// Wait this long between repeated calls, in milliseconds.
    #[arg(long, default_value_t = 0)]
    sleep_ms: u64,
    /// Keep the activated object alive: every this many milliseconds, renew its lease to
    /// ten times as long.
    #[arg(long)]
    sponsor_ms: Option<u64>,
    /// The per-call deadline, in milliseconds.
    #[arg(long, default_value_t = 30_000)]
    deadline_ms: u64,
    /// Connect to a tcp:// server over TLS, trusting the PEM certificates in this file.
    #[arg(long)]
    ca: Option<PathBuf>,
}

pub(crate) fn run(cmd: RemotingCommand) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    match cmd {
        RemotingCommand::Serve(args) => rt.block_on(serve(args)),
        RemotingCommand::Call(args) => rt.block_on(call(args)),
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let lease = Lease::new(
        Duration::from_millis(args.lease_ms),
        Duration::from_millis(args.renew_ms),
    );
    let max = args
        .max_message
        .unwrap_or(procwire_remoting::wire::DEFAULT_MAX_MESSAGE);
    let server = RemotingServer::with_limits(sample::registry(lease), max, None);
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(server_tls(cert, key)?),
        _ => None,
    };
    let channel = |port: u16| {
        let mut channel = if args.allow_plaintext_network {
            TcpChannel::new(([0, 0, 0, 0], port).into()).allow_plaintext_network()
        } else {
            TcpChannel::loopback(port)
        };
        if let Some(tls) = &tls {
            channel = channel.tls(Arc::clone(tls));
        }
        channel
    };
    let mut listeners = Vec::new();
    if !args.no_tcp {
        listeners.push(server.listen_tcp(channel(args.tcp))?);
    }
    if let Some(port) = args.http {
        listeners.push(server.listen_http(channel(port))?);
    }
    if let Some(name) = &args.pipe {
        listeners.push(server.listen_pipe(PipeChannel::new(name))?);
    }
    if listeners.is_empty() {
        bail!("no channel: give --tcp, --http or --pipe");
    }
    let mut out = std::io::stdout();
    for l in &listeners {
        writeln!(out, "listening on {}/{}", l.local(), sample::APP)?;
    }
    writeln!(out, "ready (pid {})", std::process::id())?;
    out.flush()?;
    tokio::signal::ctrl_c().await.ok();
    Ok(())
}

async fn call(args: CallArgs) -> anyhow::Result<()> {
    let url = RemoteUrl::parse(&args.url)?;
    if url.scheme == Scheme::Http {
        return call_http(&url, &args);
    }
    let body: serde_json::Value =
        serde_json::from_str(&args.args).context("the arguments are not valid JSON")?;
    let deadline = Duration::from_millis(args.deadline_ms);
    let proxy = match &args.ca {
        Some(ca) => Proxy::connect_tls(&args.url, client_tls(ca)?).await?,
        None => Proxy::connect(&args.url).await?,
    };
    let mut proxy = proxy.with_format(Format::Json).with_deadline(deadline);
    if let Some(ctor) = &args.activate {
        let ctor: serde_json::Value =
            serde_json::from_str(ctor).context("--activate takes a JSON array")?;
        proxy = proxy.activate_here(&ctor).await?;
        println!("activated object {:x}", proxy.object().unwrap_or_default());
    }
    let _sponsor = args.sponsor_ms.map(|ms| {
        let every = Duration::from_millis(ms);
        proxy.sponsor(every, every * 10)
    });
    let body = serde_json::to_vec(&body)?;
    let mut failed = false;
    for i in 0..args.repeat {
        if i > 0 && args.sleep_ms > 0 {
            tokio::time::sleep(Duration::from_millis(args.sleep_ms)).await;
        }
        match proxy.call_raw(&args.method, body.clone()).await {
            Ok(result) => println!("{}", String::from_utf8_lossy(&result)),
            Err(RemotingError::Remote(e)) => {
                failed = true;
                println!("error {}: {}", e.kind, e.message);
            }
            Err(e) => return Err(e.into()),
        }
        std::io::stdout().flush()?;
    }
    if failed {
        bail!("the server answered with an error");
    }
    Ok(())
}

/// A tiny HTTP/1.1 client, enough for `procwire remoting call http://…`.
fn call_http(url: &RemoteUrl, args: &CallArgs) -> anyhow::Result<()> {
    let mut stream = std::net::TcpStream::connect(&url.authority)
        .with_context(|| format!("cannot connect to {}", url.base()))?;
    let request = format!(
        "POST /{}/{} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
        url.path,
        args.method,
        url.authority,
        args.args.len(),
        args.args
    );
    stream.write_all(request.as_bytes())?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head.split(' ').nth(1).unwrap_or("?");
    println!("{body}");
    if status != "200" {
        bail!("HTTP status {status}");
    }
    Ok(())
}
