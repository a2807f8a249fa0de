//! The remoting sample client: calls the three types served by `remoting_server` and
//! shows how their state behaves.
//!
//! ```text
//! cargo run -p procwire-examples --example remoting_client [tcp://localhost:6100]
//! ```

use procwire_remoting::sample::{SampleObjectClient, APP};
use procwire_remoting::Proxy;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let base = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "tcp://127.0.0.1:6100".to_owned());

    let single =
        SampleObjectClient::new(Proxy::connect(&format!("{base}/{APP}/SingleCallService")).await?);
    println!("{}", single.hello("client".into()).await?);
    for _ in 0..3 {
        println!(
            "SingleCallObject count: {} (a new object every call)",
            single.count().await?
        );
    }

    let singleton =
        SampleObjectClient::new(Proxy::connect(&format!("{base}/{APP}/SingletonService")).await?);
    println!("{}", singleton.hello("client".into()).await?);
    for _ in 0..3 {
        println!(
            "SingletonObject count: {} (shared by every client)",
            singleton.count().await?
        );
    }

    let url = format!("{base}/{APP}/ClientActivatedObject");
    let mine = SampleObjectClient::new(Proxy::activate(&url, &("mine",)).await?);
    let other = SampleObjectClient::new(Proxy::activate(&url, &("other",)).await?);
    println!("{}", mine.hello("client".into()).await?);
    for _ in 0..2 {
        println!(
            "ClientActivatedObject `mine` count: {}",
            mine.count().await?
        );
    }
    println!(
        "ClientActivatedObject `other` count: {} (its own state)",
        other.count().await?
    );
    Ok(())
}
