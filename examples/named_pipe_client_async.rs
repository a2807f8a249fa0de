//! The named pipe client of the classic sample, with tokio.

use procwire::pipe::{ClientOptions, PipeError};
use procwire::wire::PipeMode;

#[tokio::main]
async fn main() -> Result<(), PipeError> {
    let name = std::env::args()
        .nth(1)
        .unwrap_or_else(|| r"\\.\pipe\HelloWorldAsync".into());
    let mut pipe = ClientOptions::new()
        .read_mode(PipeMode::Message)
        .open_async(name.as_str())
        .await?;
    pipe.send(b"Default request from client").await?;
    println!("Send: \"Default request from client\"");
    let response = pipe.recv().await?;
    println!("Receive: \"{}\"", String::from_utf8_lossy(&response));
    Ok(())
}
