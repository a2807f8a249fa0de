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
        for mapping in procwire::mapping::list(ns)? {
            writeln!(out, "mapping\t{prefix}\\{mapping}")?;
        }
        for (name, kind) in procwire::sync::list(ns)? {
            let kind = match kind {
                procwire::sync::SyncKind::Mutex => "mutex",
                procwire::sync::SyncKind::Semaphore => "semaphore",
                procwire::sync::SyncKind::Event => "event",
                _ => "sync",
            };
            writeln!(out, "{kind}\t{prefix}\\{name}")?;
        }
    }
    Ok(())
}
