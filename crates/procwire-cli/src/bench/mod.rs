//! `procwire bench`: every technique against the raw kernel primitive beneath it, in one
//! run, each against a peer in another process; a table, and on request JSON, Markdown
//! and a plot.
//!
//! The cases are `procwire_bench`'s, the same code as the divan benchmarks
//! (`crates/procwire-bench/benches/cases.rs`); this module only times them, repeats them
//! and reports. The peers are this binary again, as the hidden `procwire bench-peer`.
//!
//! A procwire case and its floor are measured in turns: a repetition of the floor, one of
//! each procwire case compared to it, and again, each with a session (and a peer) of its
//! own, so that no idle peer spins beside the one measured. A shared host changes speed
//! every few seconds (two vCPUs can be twice as far apart one minute as the next): the
//! ratio is the median over the repetitions of each one's ratio to the floor's repetition
//! just before it, which compares the two under the same conditions, where the medians of
//! two whole runs one after the other compare two moments.

mod plot;
mod report;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::builder::PossibleValuesParser;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use procwire_bench::placement::{self, Pinning};
use procwire_bench::{all_cases, peer, Case, Measure, Placement, Technique};

/// The arguments of `procwire bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// The technique to measure, or `all`.
    #[arg(
        default_value = "all",
        value_parser = PossibleValuesParser::new(["pipe", "shm-pipe", "mapping", "sync", "mailslot", "remoting", "all"])
    )]
    technique: String,
    /// Where the benchmark and its peer run: `same` (one CPU), `split` (one CPU each) or
    /// `none` (no pinning). Default: split with two CPUs or more, else same.
    #[arg(long, value_name = "same|split|none")]
    cpus: Option<Placement>,
    /// Repetitions of each case (the spread is over their medians).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1000))]
    reps: u32,
    /// A short run (under 30 s for everything): fewer repetitions, less time per case.
    #[arg(long)]
    quick: bool,
    /// Also write the results as JSON, one object per case.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Also draw latency and throughput by message size (`.svg` or `.png`).
    #[arg(long, value_name = "FILE.svg|FILE.png")]
    plot: Option<PathBuf>,
    /// Print the tables as Markdown (the tables of docs/performance.md).
    #[arg(long)]
    markdown: bool,
    /// Run only the cases whose label (as the table shows it, `pipe latency 64 B: unix
    /// socket`) contains this text; a procwire case without its floor gets no ratio.
    #[arg(long, value_name = "TEXT")]
    only: Option<String>,
    /// Time per case in milliseconds (for tests; overrides the default and --quick).
    #[arg(long, hide = true)]
    budget_ms: Option<u64>,
}

/// What one case measured.
pub(crate) struct Outcome {
    /// The case.
    pub case: Case,
    /// Nanoseconds per iteration, every sample of every repetition.
    pub samples: Vec<f64>,
    /// The median of each repetition (a case's `k`-th ran just after its floor's `k`-th).
    pub rep_medians: Vec<f64>,
    /// Bytes per iteration (0 for latency).
    pub bytes: u64,
}

impl Outcome {
    /// The median time per iteration, in nanoseconds.
    pub fn median(&self) -> f64 {
        percentile(&self.samples, 0.5)
    }

    /// The 99th percentile of the time per iteration, in nanoseconds.
    pub fn p99(&self) -> f64 {
        percentile(&self.samples, 0.99)
    }

    /// The lowest and highest median of a repetition.
    pub fn spread(&self) -> (f64, f64) {
        let lo = self
            .rep_medians
            .iter()
            .copied()
            .fold(f64::INFINITY, f64::min);
        let hi = self.rep_medians.iter().copied().fold(0.0, f64::max);
        (lo, hi)
    }

    /// Bytes per second at `ns` per iteration.
    pub fn rate(&self, ns: f64) -> f64 {
        self.bytes as f64 / (ns / 1e9)
    }
}

/// The `q` quantile of `values` (nearest rank).
fn percentile(values: &[f64], q: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// The run as a whole, for the reports.
pub(crate) struct Run {
    pub outcomes: Vec<Outcome>,
    pub pinning: Pinning,
    pub reps: u32,
    pub machine: String,
    pub command: String,
}

impl Run {
    /// The floor's outcome for `o` (itself for a raw case).
    pub fn floor(&self, o: &Outcome) -> Option<&Outcome> {
        let cases: Vec<Case> = self.outcomes.iter().map(|o| o.case).collect();
        let floor = o.case.floor(&cases)?;
        self.outcomes
            .iter()
            .find(|f| f.case.label() == floor.label())
    }

    /// procwire's cost over the floor's (time per round trip, or per byte): 1.0 is the
    /// floor, 2.0 twice its cost: the median of each repetition's ratio to the floor's
    /// repetition just before it.
    pub fn ratio(&self, o: &Outcome) -> Option<f64> {
        let floor = self.floor(o)?;
        let ratios: Vec<f64> = o
            .rep_medians
            .iter()
            .zip(&floor.rep_medians)
            .map(|(case, floor)| case / floor)
            .collect();
        (!ratios.is_empty()).then(|| percentile(&ratios, 0.5))
    }
}

/// The hidden `procwire bench-peer ROLE ADDR`: a peer process of a case.
pub fn peer(role: &str, addr: &str) -> anyhow::Result<()> {
    peer::serve(role, addr).map_err(|e| anyhow::anyhow!("bench peer {role}: {e}"))
}

/// Runs `procwire bench`.
pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    let placement = args.cpus.unwrap_or_else(placement::default_placement);
    let pinning = placement::resolve(placement).map_err(anyhow::Error::msg)?;
    if let Some(path) = &args.plot {
        plot::check_path(path)?;
    }
    // Before pinning, which narrows what this process sees.
    let machine = placement::machine();
    if let Some(cpu) = pinning.bench_cpu {
        placement::pin_current_thread(cpu).map_err(anyhow::Error::msg)?;
    }
    peer::set_peer_cpu(pinning.peer_cpu);
    let reps = if args.quick {
        args.reps.min(3)
    } else {
        args.reps
    };
    let budget =
        Duration::from_millis(
            args.budget_ms
                .unwrap_or(if args.quick { 400 } else { 2000 }),
        );
    let cases: Vec<Case> = all_cases()
        .into_iter()
        .filter(|c| {
            args.technique == "all" || Technique::from_name(&args.technique) == Some(c.technique)
        })
        .filter(|c| {
            args.only
                .as_ref()
                .is_none_or(|only| c.label().contains(only.as_str()))
        })
        .collect();
    if cases.is_empty() {
        bail!(
            "no case of `{}` matches --only {:?}",
            args.technique,
            args.only.as_deref().unwrap_or("")
        );
    }
    // Status on stderr: stdout carries only the report (`--markdown > page.md`).
    eprintln!(
        "procwire bench {}: {} cases, {reps} repetitions each; CPUs {}",
        args.technique,
        cases.len(),
        pinning.describe()
    );
    let mut outcomes = Vec::new();
    for group in floor_groups(&cases) {
        outcomes.extend(measure(&group, reps, budget)?);
    }
    let run = Run {
        outcomes,
        pinning,
        reps,
        machine,
        // The program as `procwire`, not the path it was run from.
        command: std::iter::once("procwire".to_owned())
            .chain(std::env::args().skip(1))
            .collect::<Vec<_>>()
            .join(" "),
    };
    if args.markdown {
        print!("{}", report::markdown(&run));
    } else {
        print!("{}", report::table(&run));
    }
    if let Some(path) = &args.json {
        let json = report::json(&run);
        std::fs::write(path, serde_json::to_string_pretty(&json)? + "\n")
            .with_context(|| format!("write {}", path.display()))?;
    }
    if let Some(path) = &args.plot {
        plot::draw(&run, path)?;
    }
    Ok(())
}

/// The cases measured together: each floor with the procwire cases compared to it (the
/// floor first), and alone a case whose floor is not selected.
fn floor_groups(cases: &[Case]) -> Vec<Vec<Case>> {
    let mut groups: Vec<Vec<Case>> = Vec::new();
    for &case in cases {
        let floor = case.floor(cases).map(Case::label);
        let joins = floor
            .filter(|_| !case.raw)
            .and_then(|floor| groups.iter_mut().find(|g| g[0].label() == floor));
        match joins {
            Some(group) => group.push(case),
            None => groups.push(vec![case]),
        }
    }
    groups
}

/// Times the cases of `group` in turns: `reps` times, each case for `budget / reps` (at
/// least three samples) with a session of its own, after a warm-up of a tenth of that; a
/// progress bar on a terminal.
fn measure(group: &[Case], reps: u32, budget: Duration) -> anyhow::Result<Vec<Outcome>> {
    let bar = ProgressBar::with_draw_target(Some(u64::from(reps)), ProgressDrawTarget::stdout());
    bar.set_style(
        ProgressStyle::with_template("{prefix:48} [{bar:30}] {pos}/{len} repetitions")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    let labels: Vec<String> = group.iter().map(Case::label).collect();
    bar.set_prefix(labels.join(" | "));
    // The case being measured, for the message of a failure.
    let mut at = 0;
    let result = catch_unwind(AssertUnwindSafe(|| -> Result<Vec<Outcome>, String> {
        let mut outcomes: Vec<Outcome> = group
            .iter()
            .map(|&case| Outcome {
                case,
                samples: Vec::new(),
                rep_medians: Vec::new(),
                bytes: 0,
            })
            .collect();
        let per_rep = budget / reps;
        for _ in 0..reps {
            for (i, outcome) in outcomes.iter_mut().enumerate() {
                at = i;
                let (rep, bytes) = repetition(outcome.case, per_rep)?;
                let median = percentile(&rep, 0.5);
                outcome.rep_medians.push(median);
                outcome.samples.extend(rep);
                outcome.bytes = bytes;
            }
            bar.inc(1);
        }
        Ok(outcomes)
    }));
    bar.finish_and_clear();
    let case = &labels[at];
    match result {
        Ok(Ok(outcomes)) => Ok(outcomes),
        Ok(Err(e)) => bail!("{case}: {e}"),
        Err(_) => bail!("{case}: the case failed (see the message above)"),
    }
}

/// One repetition of `case` in a session of its own: a warm-up of a tenth of `time`, then
/// samples (each the time of one iteration over a batch) for `time`, at least three;
/// with the bytes of an iteration.
fn repetition(case: Case, time: Duration) -> Result<(Vec<f64>, u64), String> {
    let mut session = case.start()?;
    let warm_up = Instant::now();
    while warm_up.elapsed() < time / 10 {
        session.iter();
    }
    let start = Instant::now();
    let mut rep = Vec::new();
    while rep.len() < 3 || start.elapsed() < time {
        let t = Instant::now();
        for _ in 0..case.batch {
            session.iter();
        }
        rep.push(t.elapsed().as_nanos() as f64 / f64::from(case.batch));
    }
    Ok((rep, session.bytes()))
}

/// Whether the outcome is a latency.
pub(crate) fn is_latency(o: &Outcome) -> bool {
    o.case.measure == Measure::Latency
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_procwire_case_is_measured_in_turns_with_its_floor() {
        let cases = all_cases();
        let groups = floor_groups(&cases);
        assert_eq!(groups.iter().map(Vec::len).sum::<usize>(), cases.len());
        for group in &groups {
            let floor = group[0];
            assert!(floor.raw, "{} leads a group", floor.label());
            for case in &group[1..] {
                assert!(!case.raw, "{} is a second floor", case.label());
                assert_eq!(case.floor(&cases).map(Case::label), Some(floor.label()));
            }
        }
        // Each latency technique compares at least one procwire case with its floor.
        assert!(groups.iter().filter(|g| g.len() > 1).count() >= 6);
    }

    #[test]
    fn a_case_without_its_floor_is_measured_alone() {
        let cases: Vec<Case> = all_cases().into_iter().filter(|c| !c.raw).collect();
        let groups = floor_groups(&cases);
        assert_eq!(groups.len(), cases.len());
        assert!(groups.iter().all(|g| g.len() == 1));
    }

    #[test]
    fn the_ratio_pairs_each_repetition_with_the_floors_before_it() {
        let cases = all_cases();
        let floor = *cases.iter().find(|c| c.raw).expect("a floor");
        let case = *cases
            .iter()
            .find(|c| !c.raw && c.floor(&cases).map(Case::label) == Some(floor.label()))
            .expect("a case with that floor");
        // The host slows down from one repetition to the next, and both feel it; the
        // medians of all samples (here: 100 and 600 ns) would give 6x.
        let outcome = |case, samples: Vec<f64>, rep_medians: Vec<f64>| Outcome {
            case,
            samples,
            rep_medians,
            bytes: 0,
        };
        let run = Run {
            outcomes: vec![
                outcome(
                    floor,
                    vec![100.0, 100.0, 100.0, 200.0, 400.0],
                    vec![100.0, 200.0, 400.0],
                ),
                outcome(
                    case,
                    vec![150.0, 300.0, 600.0, 600.0, 600.0],
                    vec![150.0, 300.0, 600.0],
                ),
            ],
            pinning: placement::Pinning {
                placement: Placement::None,
                bench_cpu: None,
                peer_cpu: None,
            },
            reps: 3,
            machine: String::new(),
            command: String::new(),
        };
        assert_eq!(run.ratio(&run.outcomes[0]), Some(1.0));
        assert_eq!(run.ratio(&run.outcomes[1]), Some(1.5));
    }
}
