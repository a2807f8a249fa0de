//! The clipboard sample trio as separate processes under an X server of the test's own:
//! the viewer watches, the writer copies, the reader pastes.

use std::process::Command;
use std::time::Duration;

use procwire_clipboard::xvfb::Xvfb;
use procwire_testkit::{example, Proc, Watchdog};

fn on(x: &Xvfb, name: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(example(name));
    cmd.args(args)
        .env("DISPLAY", x.display())
        .env_remove("WAYLAND_DISPLAY");
    cmd
}

#[test]
fn the_viewer_sees_the_writer_and_the_reader_pastes_what_it_wrote() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let limit = Duration::from_secs(20);
    let x = Xvfb::start().unwrap_or_else(|e| panic!("{e}"));
    let mut viewer = Proc::spawn(on(&x, "clipboard_viewer", &["2"]));
    viewer.wait_for_within("Watching the clipboard", limit);
    let mut writer = Proc::spawn(on(&x, "clipboard_writer", &["Hello, reader"]));
    writer.wait_for_within("Serving them", limit);
    let line = viewer.wait_for_within("Change 1:", limit);
    assert!(line.contains("application/x-procwire-sample"), "{line}");
    viewer.wait_for_within("text: \"Hello, reader\"", limit);

    let reader = on(&x, "clipboard_reader", &[]).output().unwrap();
    let said = String::from_utf8_lossy(&reader.stdout);
    assert!(
        reader.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&reader.stderr)
    );
    assert!(said.contains("Text: \"Hello, reader\""), "{said}");
    assert!(
        said.contains("application/x-procwire-sample: \"pid="),
        "{said}"
    );

    // A second writer replaces the first, which says so and ends.
    let mut second = Proc::spawn(on(&x, "clipboard_writer", &["Second"]));
    second.wait_for_within("Serving them", limit);
    writer.wait_for_within("Another program took the clipboard", limit);
    assert!(writer
        .exit_within(limit)
        .expect("the first writer ends")
        .success());
    viewer.wait_for_within("Change 2:", limit);
    viewer.wait_for_within("has seen 2 change(s)", limit);
}
