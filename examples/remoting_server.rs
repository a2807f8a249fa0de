//! The remoting sample server: application `RemotingService` on TCP port 6100 with the
//! three classic types — SingleCallObject (a new object per call), SingletonObject (one
//! object shared by every client) and ClientActivatedObject (an instance per client,
//! kept alive by a lease).
//!
//! ```text
//! cargo run -p procwire-examples --example remoting_server [PORT]
//! ```

use std::time::Duration;

use procwire_remoting::{sample, Lease, RemotingServer, TcpChannel};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port = match std::env::args().nth(1) {
        Some(p) => p.parse()?,
        None => sample::TCP_PORT,
    };
    // ChannelServices.RegisterChannel(new TcpChannel(6100)) and the three registrations.
    let lease = Lease::new(Duration::from_secs(300), Duration::from_secs(120));
    let server = RemotingServer::new(sample::registry(lease));
    let listener = server.listen_tcp(TcpChannel::loopback(port))?;
    println!("listening on {}/{}", listener.local(), sample::APP);
    println!("  SingleCallService      SingleCall       SingleCallObject");
    println!("  SingletonService       Singleton        SingletonObject");
    println!("  ClientActivatedObject  client-activated ClientActivatedObject");
    println!("Press Ctrl+C to stop.");
    tokio::signal::ctrl_c().await?;
    Ok(())
}
