//! The named pipe server of the classic sample: creates `\\.\pipe\HelloWorld`, waits for a
//! client, reads its message and answers "Default response from server".
//!
//! Run it, then `cargo run --example named_pipe_client` in another terminal. A pipe name may
//! be given as the first argument.

use procwire::pipe::{PipeError, PipeOptions};
use procwire::wire::PipeMode;

fn main() -> Result<(), PipeError> {
    let name = std::env::args()
        .nth(1)
        .unwrap_or_else(|| r"\\.\pipe\HelloWorld".into());
    let server = PipeOptions::new()
        .mode(PipeMode::Message)
        .max_instances(4)
        .create(name.as_str())?;
    println!("The named pipe ({}) is created.", server.name());
    println!("Waiting for the client's connection...");
    let mut client = server.accept()?;
    if let Some(peer) = client.peer_credentials() {
        println!("Client connected: pid {}, uid {}.", peer.pid, peer.uid);
    }
    let request = client.recv()?;
    println!(
        "Receive {} bytes from client: \"{}\"",
        request.len(),
        String::from_utf8_lossy(&request)
    );
    let response = b"Default response from server";
    client.send(response)?;
    println!(
        "Send {} bytes to client: \"{}\"",
        response.len(),
        String::from_utf8_lossy(response)
    );
    client.disconnect();
    println!("The client is disconnected; the server is closing the pipe.");
    Ok(())
}
