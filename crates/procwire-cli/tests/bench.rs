//! `procwire bench`: every technique runs against its floor, in real peer processes, and
//! the reports come out whole. A test of the command, not of the numbers.

mod util;

use std::time::Duration;

use procwire_bench::all_cases;
use serde_json::Value;
use util::{procwire, run, unique_name, Watchdog};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A path in the temp dir for this test's output.
fn temp_file(tag: &str, ext: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("{}.{ext}", unique_name(tag)))
}

/// The quick run, with a few milliseconds per case (the hidden test knob).
fn quick(args: &[&str]) -> std::process::Output {
    let mut cmd = procwire();
    cmd.args(["bench", "--quick", "--budget-ms", "30", "--cpus", "none"])
        .args(args);
    run(cmd, b"", Duration::from_secs(100))
}

#[test]
fn quick_json_has_every_case_with_a_positive_ratio() {
    let _wd = Watchdog::new(Duration::from_secs(120));
    let path = temp_file("bench", "json");
    let out = quick(&["--json", path.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(stdout.contains("ratio"), "{stdout}");
    let json: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let _ = std::fs::remove_file(&path);
    let objects = json.as_array().expect("an array of cases");
    let expected = all_cases();
    assert_eq!(objects.len(), expected.len(), "{json:#}");
    for case in &expected {
        let found = objects
            .iter()
            .find(|o| {
                o["technique"] == case.technique.name()
                    && o["measure"] == case.measure.name()
                    && o["case"] == case.name
                    && o["size"] == case.size
            })
            .unwrap_or_else(|| panic!("{} missing from {json:#}", case.label()));
        let ratio = found["ratio"].as_f64().expect("a ratio");
        assert!(ratio > 0.0 && ratio.is_finite(), "{found}");
        assert!(found["median_ns"].as_f64().unwrap() > 0.0, "{found}");
        assert!(found["p99_ns"].as_f64().unwrap() >= found["median_ns"].as_f64().unwrap());
        assert_eq!(found["placement"], "none");
        assert!(found["reps"].as_u64().unwrap() >= 1);
        assert!(!found["machine"].as_str().unwrap().is_empty());
    }
    for technique in [
        "pipe", "shm-pipe", "mapping", "sync", "mailslot", "remoting",
    ] {
        assert!(
            objects.iter().any(|o| o["technique"] == technique),
            "{technique}"
        );
    }
}

#[test]
fn plot_writes_an_svg_that_opens() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let path = temp_file("bench-plot", "svg");
    let out = quick(&["pipe", "--plot", path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let svg = std::fs::read_to_string(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(200)]);
    assert!(svg.trim_end().ends_with("</svg>"));
    assert!(svg.len() > 5_000, "{} bytes", svg.len());
    assert!(svg.contains("unix socket"), "the legend names the floor");
}

#[test]
fn plot_writes_a_png() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let path = temp_file("bench-plot", "png");
    let out = quick(&["sync", "--plot", path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let png = std::fs::read(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
    assert!(png.len() > 5_000, "{} bytes", png.len());
}

#[test]
fn markdown_prints_tables() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let out = quick(&["mapping", "--markdown"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(stdout.contains("| case | size | median |"), "{stdout}");
    assert!(stdout.contains("| procwire view | 4 KiB |"), "{stdout}");
}

#[test]
fn an_unknown_technique_is_refused() {
    let _wd = Watchdog::new(Duration::from_secs(30));
    let mut cmd = procwire();
    cmd.args(["bench", "carrier-pigeon"]);
    let out = run(cmd, b"", Duration::from_secs(20));
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("carrier-pigeon"), "{stderr}");
    assert!(
        stderr.contains("shm-pipe"),
        "the error lists the techniques: {stderr}"
    );
}

#[test]
fn a_bad_cpus_value_is_refused() {
    let _wd = Watchdog::new(Duration::from_secs(30));
    let mut cmd = procwire();
    cmd.args(["bench", "--cpus", "both", "pipe"]);
    let out = run(cmd, b"", Duration::from_secs(20));
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("unknown CPU placement `both`"), "{stderr}");
}

#[test]
fn split_on_one_cpu_is_refused() {
    let _wd = Watchdog::new(Duration::from_secs(30));
    let mut cmd = std::process::Command::new("taskset");
    cmd.args(["-c", "0", env!("CARGO_BIN_EXE_procwire")])
        .args(["bench", "--cpus", "split", "pipe"]);
    let out = run(cmd, b"", Duration::from_secs(20));
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "{}", text(&out.stdout));
    assert!(stderr.contains("--cpus split needs two CPUs"), "{stderr}");
    assert!(text(&out.stdout).is_empty(), "nothing ran");
}

#[test]
fn a_plot_that_is_neither_svg_nor_png_is_refused_before_the_run() {
    let _wd = Watchdog::new(Duration::from_secs(30));
    let mut cmd = procwire();
    cmd.args(["bench", "pipe", "--plot", "out.gif"]);
    let out = run(cmd, b"", Duration::from_secs(20));
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains(".svg or .png"));
}
