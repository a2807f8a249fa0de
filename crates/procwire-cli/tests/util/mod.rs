//! Helpers for the CLI's tests: the `procwire` binary under test, on top of
//! `procwire-testkit` (unique names, watchdogs, child processes).

#![allow(dead_code)]

use std::process::Command;

pub use procwire_testkit::*;

/// The `procwire` binary under test.
pub fn procwire() -> Command {
    Command::new(env!("CARGO_BIN_EXE_procwire"))
}

/// The `procwire` binary copied where every user can run it, for tests that run it as
/// another user: the build tree may sit in a private (0700) home directory.
pub fn procwire_for_others() -> Command {
    static COPY: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    Command::new(COPY.get_or_init(|| copy_for_others(env!("CARGO_BIN_EXE_procwire").as_ref())))
}

/// `procwire pipe serve NAME ARGS...`, waited for until it listens.
pub fn serve(name: &str, args: &[&str]) -> Proc {
    let mut cmd = procwire();
    cmd.args(["pipe", "serve", name]).args(args);
    let mut server = Proc::spawn(cmd);
    server.wait_for("listening on");
    server
}
