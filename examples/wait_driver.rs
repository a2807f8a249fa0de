//! The driver of `wait_worker`: sets the worker's "work ready" event three times (waiting
//! for each report on the pipe), sends it a message and reads the answer, then sets the
//! "quit" event and waits for the worker to close the pipe.
//!
//! Start `cargo run --example wait_worker` first. The same base name may be given as the
//! first argument (default `Worker`).

use std::error::Error;
use std::time::Duration;

use procwire::pipe::{ClientOptions, PipeError};
use procwire::sync::NamedEvent;
use procwire::wire::PipeMode;

fn main() -> Result<(), Box<dyn Error>> {
    let base = std::env::args().nth(1).unwrap_or_else(|| "Worker".into());
    let mut pipe = ClientOptions::new()
        .read_mode(PipeMode::Message)
        .timeout(Duration::from_secs(10))
        .open(format!(r"\\.\pipe\{base}").as_str())?;
    let work = NamedEvent::open(format!(r"Local\{base}-work").as_str())?;
    let quit = NamedEvent::open(format!(r"Local\{base}-quit").as_str())?;
    for _ in 0..3 {
        work.set()?;
        let report = pipe.recv()?;
        println!("Worker reports: {}", String::from_utf8_lossy(&report));
    }
    let answer = pipe.transact(b"hello from the driver")?;
    println!("Worker answers: {}", String::from_utf8_lossy(&answer));
    quit.set()?;
    match pipe.recv() {
        Err(PipeError::Disconnected { .. }) => println!("The worker has quit."),
        Ok(extra) => println!("Unexpected: {}", String::from_utf8_lossy(&extra)),
        Err(e) => return Err(e.into()),
    }
    Ok(())
}
