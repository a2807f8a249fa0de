//! The named pipe server of the classic sample, with tokio: serves any number of clients at
//! once, answering each message with "Default response from server".
//!
//! Stops after the number of clients given as the second argument (default: serve forever).

use procwire::pipe::{PipeError, PipeOptions};

#[tokio::main]
async fn main() -> Result<(), PipeError> {
    let mut args = std::env::args().skip(1);
    let name = args
        .next()
        .unwrap_or_else(|| r"\\.\pipe\HelloWorldAsync".into());
    let clients: Option<usize> = args.next().and_then(|n| n.parse().ok());
    let server = PipeOptions::new().create_async(name.as_str())?;
    println!("The named pipe ({}) is created.", server.name());
    let mut handles = Vec::new();
    let mut served = 0;
    while clients.is_none_or(|n| served < n) {
        let mut client = server.accept().await?;
        served += 1;
        handles.push(tokio::spawn(async move {
            while let Ok(request) = client.recv().await {
                println!("Receive: \"{}\"", String::from_utf8_lossy(&request));
                if client.send(b"Default response from server").await.is_err() {
                    break;
                }
            }
        }));
    }
    for handle in handles {
        let _ = handle.await;
    }
    Ok(())
}
