//! `procwire clipboard` between processes, under an X server (Xvfb) of each test's own.

mod util;

use std::time::Duration;

use procwire_clipboard::xvfb::Xvfb;
use util::{procwire, run, Proc, Watchdog};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn xvfb() -> Xvfb {
    Xvfb::start().unwrap_or_else(|e| panic!("{e}"))
}

/// `procwire clipboard ARGS...` on `x`'s display.
fn clipboard(x: &Xvfb, args: &[&str]) -> std::process::Command {
    let mut cmd = procwire();
    cmd.arg("clipboard")
        .args(args)
        .env("DISPLAY", x.display())
        .env_remove("WAYLAND_DISPLAY");
    cmd
}

const LIMIT: Duration = Duration::from_secs(30);

#[test]
fn copy_leaves_a_server_behind_and_paste_reads_it_in_another_process() {
    let _wd = Watchdog::new(Duration::from_secs(90));
    let x = xvfb();
    let out = run(clipboard(&x, &["copy", "Hello from the CLI"]), b"", LIMIT);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    assert!(
        said.contains("copied 18 bytes as text; background process"),
        "{said}"
    );
    let out = run(clipboard(&x, &["paste"]), b"", LIMIT);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "Hello from the CLI");
    let out = run(clipboard(&x, &["paste", "--list"]), b"", LIMIT);
    assert!(text(&out.stdout).lines().any(|l| l == "UTF8_STRING"));

    // Bytes under a custom format, from standard input, large enough for INCR.
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 253) as u8).collect();
    let out = run(
        clipboard(&x, &["copy", "--format", "application/x-procwire-cli", "-"]),
        &data,
        LIMIT,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = run(
        clipboard(&x, &["paste", "--format", "application/x-procwire-cli"]),
        b"",
        LIMIT,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(out.stdout == data, "{} bytes differ", out.stdout.len());
    // The text is gone: the new owner offers only its own format.
    let out = run(clipboard(&x, &["paste"]), b"", LIMIT);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("has no `text"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn copy_serve_ends_when_another_copy_replaces_it() {
    let _wd = Watchdog::new(Duration::from_secs(90));
    let x = xvfb();
    let mut first = Proc::spawn(clipboard(&x, &["copy", "--serve", "first"]));
    first.wait_for_within("serving 5 bytes as text", LIMIT);
    let out = run(clipboard(&x, &["paste"]), b"", LIMIT);
    assert_eq!(text(&out.stdout), "first");
    let out = run(clipboard(&x, &["copy", "second"]), b"", LIMIT);
    assert!(out.status.success(), "{}", text(&out.stderr));
    first.wait_for_within("replaced by another copy", LIMIT);
    let status = first
        .exit_within(LIMIT)
        .expect("copy --serve exits once replaced");
    assert!(status.success());
    let out = run(clipboard(&x, &["paste"]), b"", LIMIT);
    assert_eq!(text(&out.stdout), "second");
}

#[test]
fn watch_prints_each_copy() {
    let _wd = Watchdog::new(Duration::from_secs(90));
    let x = xvfb();
    let mut watch = Proc::spawn(clipboard(&x, &["watch", "--count", "3"]));
    watch.wait_for_within("watching the clipboard", LIMIT);
    for i in 1..=3 {
        let out = run(clipboard(&x, &["copy", &format!("copy {i}")]), b"", LIMIT);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let line = watch.wait_for_within(&format!("change {i}:"), LIMIT);
        assert!(line.contains("new owner 0x"), "{line}");
    }
    assert!(watch
        .exit_within(LIMIT)
        .expect("watch --count 3 ends")
        .success());
}

#[test]
fn a_png_must_be_a_png_and_round_trips() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let x = xvfb();
    let out = run(clipboard(&x, &["copy", "--png", "-"]), b"GIF89a", LIMIT);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("not a PNG"),
        "{}",
        text(&out.stderr)
    );
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(std::iter::repeat_n(7u8, 1000));
    let out = run(clipboard(&x, &["copy", "--png", "-"]), &png, LIMIT);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = run(clipboard(&x, &["paste", "--png"]), b"", LIMIT);
    assert!(out.stdout == png);
    let out = run(clipboard(&x, &["paste", "--list"]), b"", LIMIT);
    assert_eq!(text(&out.stdout), "image/png\n");
}

#[test]
fn without_a_display_every_subcommand_fails_at_once_naming_both_variables() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    for args in [&["paste"][..], &["copy", "x"], &["watch"]] {
        let mut cmd = procwire();
        cmd.arg("clipboard")
            .args(args)
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY");
        let out = run(cmd, b"", LIMIT);
        assert!(!out.status.success());
        let err = text(&out.stderr);
        assert!(
            err.contains("DISPLAY (X11)") && err.contains("WAYLAND_DISPLAY"),
            "{err}"
        );
    }
}
