//! The named pipe client of the classic sample: connects to `\\.\pipe\HelloWorld` in
//! message read mode, sends "Default request from client" and prints the answer.

use std::time::Duration;

use procwire::pipe::{ClientOptions, PipeError};
use procwire::security::Access;
use procwire::wire::PipeMode;

fn main() -> Result<(), PipeError> {
    let name = std::env::args()
        .nth(1)
        .unwrap_or_else(|| r"\\.\pipe\HelloWorld".into());
    let mut pipe = ClientOptions::new()
        .access(Access::ReadWrite)
        .read_mode(PipeMode::Message)
        .timeout(Duration::from_secs(5))
        .open(name.as_str())?;
    println!("The named pipe ({}) is connected.", pipe.name());
    let request = b"Default request from client";
    pipe.send(request)?;
    println!(
        "Send {} bytes to server: \"{}\"",
        request.len(),
        String::from_utf8_lossy(request)
    );
    let response = pipe.recv()?;
    println!(
        "Receive {} bytes from server: \"{}\"",
        response.len(),
        String::from_utf8_lossy(&response)
    );
    Ok(())
}
