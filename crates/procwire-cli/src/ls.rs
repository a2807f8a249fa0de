//! `procwire ls`: the live objects of each namespace, of every kind, with their owners.

use std::io::Write;

use procwire::name::Namespace;

pub(crate) fn run() -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    for (ns, prefix) in [(Namespace::Local, "Local"), (Namespace::Global, "Global")] {
        for object in procwire::registry::list(ns)? {
            writeln!(
                out,
                "{}\t{prefix}\\{}\tuid {}\tpid {}",
                object.kind, object.name, object.owner_uid, object.owner_pid
            )?;
        }
    }
    Ok(())
}
