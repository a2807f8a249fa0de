//! `procwire ls`: the live objects of each namespace.

use std::io::Write;

use procwire::name::Namespace;

pub(crate) fn run() -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    for (ns, prefix) in [(Namespace::Local, "Local"), (Namespace::Global, "Global")] {
        for pipe in procwire::pipe::list(ns)? {
            writeln!(out, "pipe\t{prefix}\\{pipe}")?;
        }
        for slot in procwire::mailslot::list(ns)? {
            writeln!(out, "mailslot\t{prefix}\\{slot}")?;
        }
    }
    Ok(())
}
