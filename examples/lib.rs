//! The classic samples, one server/client pair per technique. Run them with
//! `cargo run --example NAME`; see each file for what it shows.

pub mod sockets;
