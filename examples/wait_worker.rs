//! A worker that waits on three things at once, as a Windows worker does with
//! `WaitForMultipleObjects`: a "work ready" event (auto-reset), a "quit" event (manual) and
//! its pipe to the driver. Each work-ready does one unit of work and reports it on the pipe;
//! each message on the pipe gets an answer; quit (or the driver leaving) ends it.
//!
//! Run it, then `cargo run --example wait_driver` in another terminal. A base name may be
//! given as the first argument (default `Worker`): the objects are `Local\NAME-work`,
//! `Local\NAME-quit` and `\\.\pipe\NAME`.

use std::error::Error;

use procwire::pipe::{PipeError, PipeOptions};
use procwire::sync::{EventReset, NamedEvent, WaitSet};
use procwire::wire::PipeMode;

fn main() -> Result<(), Box<dyn Error>> {
    let base = std::env::args().nth(1).unwrap_or_else(|| "Worker".into());
    let work = NamedEvent::create(
        format!(r"Local\{base}-work").as_str(),
        EventReset::Auto,
        false,
    )?;
    let quit = NamedEvent::create(
        format!(r"Local\{base}-quit").as_str(),
        EventReset::Manual,
        false,
    )?;
    let server = PipeOptions::new()
        .mode(PipeMode::Message)
        .max_instances(1)
        .create(format!(r"\\.\pipe\{base}").as_str())?;
    println!("Worker ready: waiting for a driver on {}.", server.name());
    let mut pipe = server.accept()?;
    println!("Driver connected.");
    let mut done = 0u32;
    loop {
        // The index says which object ended the wait, as WAIT_OBJECT_0 + i.
        let which = WaitSet::new()
            .with(&work)
            .with(&quit)
            .with(&pipe)
            .wait_any()?
            .index();
        match which {
            0 => {
                done += 1;
                println!("Work item {done} done.");
                pipe.send(format!("done {done}").as_bytes())?;
            }
            1 => {
                println!("Quit event set: {done} work item(s) done, leaving.");
                return Ok(());
            }
            _ => match pipe.recv() {
                Ok(message) => {
                    let message = String::from_utf8_lossy(&message).into_owned();
                    println!("Message from the driver: \"{message}\"");
                    pipe.send(format!("worker heard \"{message}\"").as_bytes())?;
                }
                Err(PipeError::Disconnected { .. }) => {
                    println!("The driver left: {done} work item(s) done, leaving.");
                    return Ok(());
                }
                Err(e) => return Err(e.into()),
            },
        }
    }
}
