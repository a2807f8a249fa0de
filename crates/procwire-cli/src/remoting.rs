//! `procwire remoting serve`, `procwire remoting call` and `procwire remoting ls`.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::duration::parse_duration;
use crate::nats::{is_nats, NatsArgs};
use crate::shutdown::{StopSignals, Stopped};
use crate::tls::{client_tls, server_tls};
use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use procwire_remoting::{
    sample, server::Limits, Format, Lease, PipeChannel, Proxy, RemoteUrl, RemotingError,
    RemotingServer, Scheme, TcpChannel,
};

#[derive(Debug, Subcommand)]
pub(crate) enum RemotingCommand {
    /// Run the sample server: application `RemotingService` with SingleCallService,
    /// SingletonService and the client-activated type ClientActivatedObject.
    Serve(ServeArgs),
    /// Call METHOD on the object at URL with JSON arguments, and print the JSON result.
    Call(CallArgs),
    /// List the procwire services and their server processes on a NATS server
    /// (`nats://HOST:PORT`), from the NATS Services API.
    Ls(LsArgs),
}

#[derive(Debug, Args)]
pub(crate) struct LsArgs {
    /// `nats://HOST:PORT` (or `tls://HOST:PORT`).
    url: String,
    /// One JSON object per instance instead of the table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    nats: NatsArgs,
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
    /// Also serve on this NATS server (`nats://HOST:PORT`), in the queue group of the
    /// application.
    #[arg(long)]
    nats: Option<String>,
    #[command(flatten)]
    nats_args: NatsArgs,
    /// Listen on all interfaces in plaintext instead of loopback only.
    #[arg(long)]
    allow_plaintext_network: bool,
    /// The initial lease of client-activated objects (`5m`, `300ms`).
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    lease: Duration,
    /// The least lease left after each call.
    #[arg(long, default_value = "2m", value_parser = parse_duration)]
    renew: Duration,
    /// The largest message, in bytes.
    #[arg(long)]
    max_message: Option<usize>,
    /// How long a frame (or an HTTP request head or body) may take to arrive whole from
    /// its first byte before the connection is closed.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    frame_timeout: Duration,
    /// How many bytes of partial frames over 64 KiB all connections may hold together.
    #[arg(long, default_value_t = 64 << 20)]
    buffered_bytes: usize,
    /// Speak TLS on --tcp and --http with this PEM certificate chain (needs --tls-key).
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct CallArgs {
    /// `tcp://host:port/App/Service`, `pipe://Name/App/Service`,
    /// `http://host:port/App/Service`, `https://host:port/App/Service` or
    /// `nats://host:port/App/Service`.
    pub(crate) url: String,
    /// The method.
    pub(crate) method: String,
    /// The arguments as a JSON object by name, such as `{"name":"Ann"}`.
    #[arg(default_value = "{}")]
    pub(crate) args: String,
    /// Activate a client-activated object first, with these constructor arguments (a
    /// JSON array, such as `["mine"]`).
    #[arg(long)]
    pub(crate) activate: Option<String>,
    /// Call this many times (on the same object), one result per line.
    #[arg(long, default_value_t = 1)]
    pub(crate) repeat: u32,
    /// Wait this long between repeated calls (`20ms`, `1s`).
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    sleep: Duration,
    /// Keep the activated object alive: this often, renew its lease to ten times as long.
    #[arg(long, value_parser = parse_duration)]
    pub(crate) sponsor: Option<Duration>,
    /// The per-call deadline.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub(crate) deadline: Duration,
    /// Connect to a tcp:// server over TLS, or to an https:// one, trusting the PEM
    /// certificates in this file.
    #[arg(long)]
    pub(crate) ca: Option<PathBuf>,
    #[command(flatten)]
    nats: NatsArgs,
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
        RemotingCommand::Ls(args) => rt.block_on(ls(args)),
    }
}

async fn ls(args: LsArgs) -> anyhow::Result<()> {
    if !is_nats(&args.url) {
        bail!("`procwire remoting ls` lists the services on a NATS server: give nats://HOST:PORT (for an http:// server, GET /App lists its services)");
    }
    let instances = procwire_nats::remoting::list(&args.url, &args.nats.options()).await?;
    let mut out = std::io::stdout().lock();
    if args.json {
        for i in &instances {
            writeln!(out, "{}", serde_json::to_string(i)?)?;
        }
        return Ok(());
    }
    let mut last = None;
    for i in &instances {
        let path = format!("{}/{}", i.app, i.service);
        if last.as_ref() != Some(&path) {
            let n = instances
                .iter()
                .filter(|j| j.app == i.app && j.service == i.service)
                .count();
            writeln!(
                out,
                "{path}\t{}\t{}\t{n} instance(s)\tsubject {}\tmethods {}",
                i.mode,
                i.interface,
                i.subject,
                i.methods.join(",")
            )?;
            last = Some(path);
        }
        writeln!(
            out,
            "\tpid {}\thost {}\tid {}\tversion {}\trequests {}\tsubject {}",
            i.pid, i.host, i.id, i.version, i.requests, i.instance_subject
        )?;
    }
    Ok(())
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let mut signals = StopSignals::new()?;
    let lease = Lease::new(args.lease, args.renew);
    let max = args
        .max_message
        .unwrap_or(procwire_remoting::wire::DEFAULT_MAX_MESSAGE);
    let limits = Limits::new()
        .max_message(max)
        .frame_timeout(args.frame_timeout)
        .buffered_bytes(args.buffered_bytes);
    let server = RemotingServer::with_options(sample::registry(lease), limits);
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
    let nats = match &args.nats {
        Some(url) => {
            Some(procwire_nats::remoting::serve(&server, url, &args.nats_args.options()).await?)
        }
        None => None,
    };
    if listeners.is_empty() && nats.is_none() {
        bail!("no channel: give --tcp, --http, --pipe or --nats");
    }
    let mut out = std::io::stdout();
    for l in &listeners {
        writeln!(out, "listening on {}/{}", l.local(), sample::APP)?;
    }
    if let Some(n) = &nats {
        writeln!(out, "listening on {}/{}", n.local(), sample::APP)?;
    }
    writeln!(out, "ready (pid {})", std::process::id())?;
    out.flush()?;
    let signal = signals.recv().await;
    // The listeners go first (a pipe channel's name with them), then the server.
    drop(listeners);
    if let Some(nats) = nats {
        // Out of the queue group before exiting: the next calls go to the other servers.
        let _ = nats.stop().await;
    }
    Err(Stopped(signal).into())
}

async fn call(args: CallArgs) -> anyhow::Result<()> {
    let lower = args.url.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        return crate::http_client::call(&args).await;
    }
    let body: serde_json::Value =
        serde_json::from_str(&args.args).context("the arguments are not valid JSON")?;
    let deadline = args.deadline;
    let proxy = if is_nats(&args.url) {
        procwire_nats::remoting::connect(&args.url, &args.nats.options()).await?
    } else {
        let url = RemoteUrl::parse(&args.url)?;
        if url.scheme == Scheme::Http {
            bail!("cannot call {url}");
        }
        match &args.ca {
            Some(ca) => Proxy::connect_tls(&args.url, client_tls(ca)?).await?,
            None => Proxy::connect(&args.url).await?,
        }
    };
    let mut proxy = proxy.with_format(Format::Json).with_deadline(deadline);
    if let Some(ctor) = &args.activate {
        let ctor: serde_json::Value =
            serde_json::from_str(ctor).context("--activate takes a JSON array")?;
        proxy = proxy.activate_here(&ctor).await?;
        println!("activated object {:x}", proxy.object().unwrap_or_default());
    }
    let _sponsor = args.sponsor.map(|every| proxy.sponsor(every, every * 10));
    let body = serde_json::to_vec(&body)?;
    let mut failed = false;
    for i in 0..args.repeat {
        if i > 0 && !args.sleep.is_zero() {
            tokio::time::sleep(args.sleep).await;
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
