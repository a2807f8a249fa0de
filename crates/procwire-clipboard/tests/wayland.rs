//! The Wayland clipboard (feature `wayland`) between real processes, under a headless sway
//! (a wlroots compositor with the data-control protocol) that each test starts with a
//! runtime directory of its own.
//!
//! `cargo test -p procwire-clipboard --features wayland --test wayland`; sway refuses to run
//! as root, so as root the compositor runs as `nobody`.

#![cfg(feature = "wayland")]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use procwire_clipboard::{ChangeReason, Clipboard, Content};
use procwire_testkit::{helper_command, helper_role, say, unique_name, Proc, Watchdog};

/// A headless sway, killed (and its runtime directory removed) when dropped.
struct Sway {
    child: Child,
    runtime: PathBuf,
    socket: String,
}

impl Sway {
    fn start() -> Sway {
        use std::os::unix::fs::PermissionsExt;
        use std::os::unix::process::CommandExt;
        let runtime = std::env::temp_dir().join(unique_name("sway"));
        std::fs::create_dir(&runtime).unwrap();
        std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700)).unwrap();
        let config = runtime.join("config");
        // Without input devices sway makes no seat unless told to; the clipboard needs one.
        std::fs::write(&config, "seat seat0 fallback true\n").unwrap();
        std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
        let mut cmd = Command::new("sway");
        cmd.arg("-c")
            .arg(&config)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &runtime)
            .env("XDG_RUNTIME_DIR", &runtime)
            .env("WLR_BACKENDS", "headless")
            .env("WLR_RENDERER", "pixman")
            .env("WLR_LIBINPUT_NO_DEVICES", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if rustix::process::getuid().is_root() {
            // sway will not run as root; `nobody` owns the runtime directory.
            let (uid, gid) = (id("-u"), id("-g"));
            std::os::unix::fs::chown(&runtime, Some(uid), Some(gid)).unwrap();
            cmd.uid(uid).gid(gid);
        }
        let child = cmd.spawn().unwrap_or_else(|e| {
            panic!("sway must be installed for the Wayland tests (apt-get install sway): {e}")
        });
        let mut sway = Sway {
            child,
            runtime,
            socket: String::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let socket = std::fs::read_dir(&sway.runtime)
                .unwrap()
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .find(|n| n.starts_with("wayland-") && !n.ends_with(".lock"));
            if let Some(socket) = socket {
                sway.socket = socket;
                return sway;
            }
            if let Some(status) = sway.child.try_wait().unwrap() {
                panic!("sway exited ({status}) before it listened");
            }
            assert!(Instant::now() < deadline, "sway did not listen within 20 s");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A helper process that is a client of this compositor only.
    fn helper(&self, role: &str, vars: &[(&str, &str)]) -> Proc {
        let mut cmd = helper_command(std::env::current_exe().unwrap(), role, vars);
        cmd.env_remove("DISPLAY")
            .env("WAYLAND_DISPLAY", &self.socket)
            .env("XDG_RUNTIME_DIR", &self.runtime);
        Proc::spawn(cmd)
    }

    /// `wl-paste ARGS...` (from wl-clipboard, a tool nobody here wrote) against it.
    fn wl_paste(&self, args: &[&str]) -> std::process::Output {
        let mut cmd = Command::new("wl-paste");
        cmd.args(args)
            .env_remove("DISPLAY")
            .env("WAYLAND_DISPLAY", &self.socket)
            .env("XDG_RUNTIME_DIR", &self.runtime);
        procwire_testkit::run(cmd, b"", Duration::from_secs(30))
    }
}

/// `id FLAG nobody`: the uid or gid of `nobody`.
fn id(flag: &str) -> u32 {
    let out = Command::new("id").args([flag, "nobody"]).output().unwrap();
    assert!(out.status.success(), "there is no user nobody");
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

impl Drop for Sway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.runtime);
    }
}

fn pattern(size: usize) -> Vec<u8> {
    (0..size)
        .map(|i| (i * 31 + 7) as u8 ^ (i >> 12) as u8)
        .collect()
}

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"))
}

#[test]
fn helper_process() {
    let Some(role) = helper_role() else { return };
    match role.as_str() {
        // Copies CLIP_TEXT and CLIP_SIZE bytes of `pattern` under CLIP_FORMAT; serves until
        // replaced, or exits at once with CLIP_EXIT.
        "copy" => {
            let size: usize = var("CLIP_SIZE").parse().unwrap();
            let clipboard = Clipboard::connect().unwrap();
            clipboard
                .copy_all([
                    Content::text(var("CLIP_TEXT")),
                    Content::bytes(var("CLIP_FORMAT"), pattern(size)),
                ])
                .unwrap();
            say(&format!("copied on {}", clipboard.display()));
            if std::env::var_os("CLIP_EXIT").is_some() {
                return;
            }
            clipboard.serve_until_replaced().unwrap();
            say("replaced");
        }
        // Pastes the text, the formats and CLIP_FORMAT, compared with `pattern(CLIP_SIZE)`.
        "paste" => {
            let size: usize = var("CLIP_SIZE").parse().unwrap();
            let clipboard = Clipboard::connect().unwrap();
            match clipboard.paste_text() {
                Ok(text) => say(&format!("text: {text}")),
                Err(e) => say(&format!("text error: {e} ({e:?})")),
            }
            match clipboard.formats() {
                Ok(formats) => say(&format!("formats: {}", formats.join(" "))),
                Err(e) => say(&format!("formats error: {e}")),
            }
            match clipboard.paste(&var("CLIP_FORMAT")) {
                Ok(data) => say(&format!(
                    "bytes: {} exact {}",
                    data.len(),
                    data == pattern(size)
                )),
                Err(e) => say(&format!("bytes error: {e}")),
            }
            say("done");
        }
        "watch" => {
            let n: usize = var("CLIP_CHANGES").parse().unwrap();
            let clipboard = Clipboard::connect().unwrap();
            let mut watcher = clipboard.watch().unwrap();
            say("watching");
            for i in 1..=n {
                let change = watcher
                    .recv_timeout(Duration::from_secs(30))
                    .unwrap()
                    .expect("a change within 30 s");
                let reason = match change.reason {
                    ChangeReason::NewOwner => "new owner",
                    _ => "emptied",
                };
                say(&format!("change {i}: {reason}"));
            }
        }
        other => panic!("unknown role {other}"),
    }
}

const READY: Duration = Duration::from_secs(20);

#[test]
fn text_and_ten_mib_copied_by_one_process_are_pasted_by_another() {
    let _wd = Watchdog::new(Duration::from_secs(120));
    let sway = Sway::start();
    let size = (10 << 20).to_string();
    let vars = [
        ("CLIP_TEXT", "Hello, Wayland"),
        ("CLIP_SIZE", size.as_str()),
        ("CLIP_FORMAT", "application/x-procwire-wl"),
    ];
    let mut owner = sway.helper("copy", &vars);
    let line = owner.wait_for_within("copied on", READY);
    assert!(line.contains("wayland-"), "{line}");
    let mut paster = sway.helper("paste", &vars);
    assert_eq!(
        paster.wait_for_within("text", READY),
        "text: Hello, Wayland\n"
    );
    let formats = paster.wait_for_within("formats", READY);
    assert!(
        formats.contains("UTF8_STRING") && formats.contains("application/x-procwire-wl"),
        "{formats}"
    );
    let bytes = paster.wait_for_within("bytes", READY);
    assert_eq!(bytes, format!("bytes: {size} exact true\n"));
    // wl-paste reads the custom format too.
    let out = sway.wl_paste(&["-t", "application/x-procwire-wl"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout == pattern(10 << 20));
}

#[test]
fn a_second_process_sees_every_copy_and_the_owner_exiting_empties_the_clipboard() {
    let _wd = Watchdog::new(Duration::from_secs(120));
    let sway = Sway::start();
    let mut watcher = sway.helper("watch", &[("CLIP_CHANGES", "3")]);
    watcher.wait_for_within("watching", READY);
    let mut first = sway.helper(
        "copy",
        &[
            ("CLIP_TEXT", "one"),
            ("CLIP_SIZE", "10"),
            ("CLIP_FORMAT", "x/one"),
        ],
    );
    first.wait_for_within("copied", READY);
    assert_eq!(
        watcher.wait_for_within("change 1", READY),
        "change 1: new owner\n"
    );
    // A second copy replaces the first, whose serve_until_replaced returns.
    let mut second = sway.helper(
        "copy",
        &[
            ("CLIP_TEXT", "two"),
            ("CLIP_SIZE", "10"),
            ("CLIP_FORMAT", "x/two"),
            ("CLIP_EXIT", "1"),
        ],
    );
    second.wait_for_within("copied", READY);
    first.wait_for_within("replaced", READY);
    assert!(first
        .exit_within(READY)
        .expect("the first owner ends")
        .success());
    assert_eq!(
        watcher.wait_for_within("change 2", READY),
        "change 2: new owner\n"
    );
    // The second exits at once: the clipboard empties.
    assert!(second
        .exit_within(READY)
        .expect("the second owner exits")
        .success());
    assert_eq!(
        watcher.wait_for_within("change 3", READY),
        "change 3: emptied\n"
    );
    let mut paster = sway.helper("paste", &[("CLIP_SIZE", "10"), ("CLIP_FORMAT", "x/two")]);
    let text = paster.wait_for_within("text", READY);
    assert!(text.contains("Empty"), "{text}");
}
