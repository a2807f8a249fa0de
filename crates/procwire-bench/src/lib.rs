//! Benchmarks of procwire beside other IPC libraries. The crate has no API: its
//! benchmarks live in `benches/`, each behind the feature that brings the library it
//! compares with, so that building or testing the workspace never compiles those
//! libraries.
//!
//! # Organization
//!
//! - `benches/shm_compare.rs` (feature `iceoryx2`): two-process round trips of 64 B and
//!   4 KiB through shared memory — the floor (an atomic ping-pong in a mapping), iceoryx2's
//!   publish/subscribe, the procwire socket pipe and the shared-memory pipe (copying and
//!   zero-copy). The procwire cases are the ones of `procwire`'s own `pipe` benchmark,
//!   included from there; results are in `docs/performance.md`.
