//! The `wait_worker` / `wait_driver` sample pair, run as two processes: the worker waits on
//! a work event, a quit event and its pipe at once, and the driver uses all three.

use std::process::Command;
use std::time::Duration;

use procwire_testkit::{example, unique_name, Proc, Watchdog};

#[test]
fn a_worker_waits_on_two_events_and_its_pipe_at_once() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let base = unique_name("worker");
    let mut worker = Proc::spawn({
        let mut cmd = Command::new(example("wait_worker"));
        cmd.arg(&base);
        cmd
    });
    worker.wait_for_within("Worker ready", Duration::from_secs(20));
    let driver = Command::new(example("wait_driver"))
        .arg(&base)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&driver.stdout);
    assert!(
        driver.status.success(),
        "driver: {said}{}",
        String::from_utf8_lossy(&driver.stderr)
    );
    for n in 1..=3 {
        assert!(
            said.contains(&format!("Worker reports: done {n}")),
            "{said}"
        );
    }
    assert!(
        said.contains("Worker answers: worker heard \"hello from the driver\""),
        "{said}"
    );
    assert!(said.contains("The worker has quit."), "{said}");
    // The worker saw each object for what it is, and ended on the quit event.
    let status = worker
        .exit_within(Duration::from_secs(20))
        .expect("the worker exits");
    assert!(status.success());
    let mut lines = String::new();
    while let Some(line) = worker.line_timeout(Duration::from_secs(10)) {
        if line.is_empty() {
            break;
        }
        lines += &line;
    }
    assert!(lines.contains("Work item 3 done."), "{lines}");
    assert!(
        lines.contains("Message from the driver: \"hello from the driver\""),
        "{lines}"
    );
    assert!(
        lines.contains("Quit event set: 3 work item(s) done, leaving."),
        "{lines}"
    );
}
