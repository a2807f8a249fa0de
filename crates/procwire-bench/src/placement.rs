//! Where the benchmark and its peer run: on one CPU, on two, or wherever the scheduler
//! puts them. On a virtual machine this decides the numbers (a wake-up on another CPU
//! costs tens of microseconds), so every report says which it was.

use std::fmt;
use std::str::FromStr;

use rustix::thread::{sched_getaffinity, sched_setaffinity, CpuSet};

/// The placement of the two processes of a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Both processes pinned to the first CPU this process may use.
    Same,
    /// The benchmark pinned to the first allowed CPU, the peer to the second.
    Split,
    /// No pinning: the scheduler decides.
    None,
}

impl FromStr for Placement {
    type Err = String;

    fn from_str(s: &str) -> Result<Placement, String> {
        match s {
            "same" => Ok(Placement::Same),
            "split" => Ok(Placement::Split),
            "none" => Ok(Placement::None),
            other => Err(format!(
                "unknown CPU placement `{other}`: use `same` (both processes on one CPU), \
                 `split` (one CPU each) or `none` (no pinning)"
            )),
        }
    }
}

impl fmt::Display for Placement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Placement::Same => "same",
            Placement::Split => "split",
            Placement::None => "none",
        })
    }
}

/// A placement made concrete: the CPU of the benchmark process and of its peers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pinning {
    /// What was asked for.
    pub placement: Placement,
    /// The benchmark's CPU (`None`: not pinned).
    pub bench_cpu: Option<usize>,
    /// The peers' CPU (`None`: not pinned).
    pub peer_cpu: Option<usize>,
}

impl Pinning {
    /// Describes the pinning for a report: `split (bench on CPU 0, peer on CPU 1)`.
    pub fn describe(&self) -> String {
        match (self.bench_cpu, self.peer_cpu) {
            (Some(b), Some(p)) if b == p => format!("{} (both on CPU {b})", self.placement),
            (Some(b), Some(p)) => {
                format!("{} (bench on CPU {b}, peer on CPU {p})", self.placement)
            }
            _ => format!("{} (not pinned)", self.placement),
        }
    }
}

/// The CPUs this process may run on (its affinity mask), in order.
///
/// # Errors
///
/// When `sched_getaffinity` fails.
pub fn allowed_cpus() -> Result<Vec<usize>, String> {
    let set = sched_getaffinity(None).map_err(|e| format!("sched_getaffinity: {e}"))?;
    Ok((0..CpuSet::MAX_CPU).filter(|&c| set.is_set(c)).collect())
}

/// The default placement: `split` when this process may use two CPUs or more, `same`
/// otherwise.
pub fn default_placement() -> Placement {
    match allowed_cpus() {
        Ok(cpus) if cpus.len() >= 2 => Placement::Split,
        _ => Placement::Same,
    }
}

/// Chooses the CPUs for `placement` among those this process may use.
///
/// # Errors
///
/// `split` when the affinity mask holds a single CPU, or when it cannot be read.
pub fn resolve(placement: Placement) -> Result<Pinning, String> {
    let cpus = allowed_cpus()?;
    let (bench_cpu, peer_cpu) = match placement {
        Placement::None => (None, None),
        Placement::Same => (cpus.first().copied(), cpus.first().copied()),
        Placement::Split => {
            if cpus.len() < 2 {
                return Err(format!(
                    "--cpus split needs two CPUs, but this process may only run on CPU {} \
                     (its affinity mask); use --cpus same or --cpus none",
                    cpus.first().map_or("?".to_owned(), |c| c.to_string())
                ));
            }
            (Some(cpus[0]), Some(cpus[1]))
        }
    };
    Ok(Pinning {
        placement,
        bench_cpu,
        peer_cpu,
    })
}

/// Pins the calling thread (and the threads it starts afterwards) to `cpu`.
///
/// # Errors
///
/// When `sched_setaffinity` fails (a CPU outside the mask, say).
pub fn pin_current_thread(cpu: usize) -> Result<(), String> {
    let mut set = CpuSet::new();
    set.set(cpu);
    sched_setaffinity(None, &set).map_err(|e| format!("pin to CPU {cpu}: {e}"))
}

/// One line about the machine for reports: the CPU model, the CPUs, the kernel.
pub fn machine() -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let uname = rustix::system::uname();
    format!(
        "{model}, {cpus} CPUs available, Linux {}",
        uname.release().to_string_lossy()
    )
}
