//! procwire's benchmark cases: each technique, and the raw kernel primitive beneath it,
//! as code that any harness can time.
//!
//! A [`Case`] is one measurement — a technique (pipe, shared-memory pipe, mapping, sync
//! objects, mailslot, remoting), a measure (round-trip latency or one-way throughput), a
//! message size, and whether it is procwire or its floor (the raw primitive). Starting a
//! case gives a [`Session`]: the peer process started and connected, ready to run one
//! [`Session::iter`] after another. `procwire bench` times sessions with its own loop;
//! `benches/cases.rs` hands the same sessions to divan. There is one implementation of
//! each case.
//!
//! Peers are separate processes: the current executable started again as
//! `EXE bench-peer ROLE ADDR` ([`peer`]), so every binary that starts cases must hand that
//! command line to [`peer::serve`] first (`procwire` has a hidden `bench-peer` subcommand;
//! the divan binaries check their arguments before divan sees them).
//!
//! Comparisons with other IPC libraries sit behind features, so that building or testing
//! the workspace never compiles those libraries.
//!
//! # Organization
//!
//! - [`cases`]: the list of cases and their sessions.
//! - [`peer`]: the peer processes and their roles.
//! - [`placement`]: which CPUs the two processes run on (`same`, `split`, `none`).
//! - [`raw`]: the floors that need the C library (a robust pthread mutex) or futex
//!   calls.
//! - `benches/cases.rs`: every case through divan. `benches/shm_compare.rs` (feature
//!   `iceoryx2`): two-process round trips through shared memory — the floor, iceoryx2's
//!   publish/subscribe, the procwire socket pipe and the shared-memory pipe. Results are in
//!   `docs/performance.md`.

pub mod cases;
pub mod peer;
pub mod placement;
pub mod raw;

pub use cases::{all_cases, find_case, Case, Measure, Session, Technique};
pub use placement::Placement;
