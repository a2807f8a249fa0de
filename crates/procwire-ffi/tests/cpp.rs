//! The C++ samples of examples/cpp/, built with the system's g++ against the library,
//! talking to Rust servers and clients, and to Python.

mod common;

use std::io::{Read, Write};
use std::process::Command;
use std::time::Duration;

use procwire::mailslot::MailslotWriter;
use procwire::mapping::Mapping;
use procwire::pipe::{ClientOptions, PipeOptions};
use procwire::wire::PipeMode;
use procwire_testkit::{run, unique_name, Proc, Watchdog};

const REQUEST: &[u8] = b"Default request from client";
const RESPONSE: &[u8] = b"Default response from server";

fn mode_arg(mode: PipeMode) -> &'static str {
    match mode {
        PipeMode::Byte => "byte",
        PipeMode::Message => "message",
    }
}

/// The C++ client against a Rust server: the request arrives whole, the answer too.
fn cpp_client_with_rust_server(mode: PipeMode) {
    let _watchdog = Watchdog::new(Duration::from_secs(120));
    let client = common::cpp("named_pipe_client");
    let name = format!(r"\\.\pipe\{}", unique_name("cpp-client"));
    let server = PipeOptions::new().mode(mode).create(name.as_str()).unwrap();
    let serving = std::thread::spawn(move || {
        let mut conn = server.accept_timeout(Duration::from_secs(30)).unwrap();
        let request = match mode {
            PipeMode::Message => conn.recv().unwrap(),
            PipeMode::Byte => {
                let mut all = Vec::new();
                conn.read_to_end(&mut all).unwrap();
                all
            }
        };
        conn.send(RESPONSE).unwrap();
        conn.disconnect();
        request
    });
    let mut cmd = Command::new(client);
    cmd.args([name.as_str(), mode_arg(mode)]);
    let out = run(cmd, b"", Duration::from_secs(30));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "client failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(serving.join().unwrap(), REQUEST);
    assert!(
        stdout.contains("Receive 28 bytes from server: \"Default response from server\""),
        "{stdout}"
    );
}

#[test]
fn cpp_pipe_client_with_rust_server_in_message_mode() {
    cpp_client_with_rust_server(PipeMode::Message);
}

#[test]
fn cpp_pipe_client_with_rust_server_in_byte_mode() {
    cpp_client_with_rust_server(PipeMode::Byte);
}

/// A Rust client against the C++ server.
fn rust_client_with_cpp_server(mode: PipeMode) {
    let _watchdog = Watchdog::new(Duration::from_secs(120));
    let server = common::cpp("named_pipe_server");
    let name = format!(r"\\.\pipe\{}", unique_name("cpp-server"));
    let mut cmd = Command::new(server);
    cmd.args([name.as_str(), mode_arg(mode)]);
    let mut server = Proc::spawn(cmd);
    server.wait_for_within("is created", Duration::from_secs(30));
    let mut pipe = ClientOptions::new()
        .read_mode(mode)
        .open(name.as_str())
        .unwrap();
    let response = match mode {
        PipeMode::Message => {
            pipe.send(REQUEST).unwrap();
            pipe.recv().unwrap()
        }
        PipeMode::Byte => {
            pipe.write_all(REQUEST).unwrap();
            pipe.finish_sending().unwrap();
            let mut all = Vec::new();
            pipe.read_to_end(&mut all).unwrap();
            all
        }
    };
    assert_eq!(response, RESPONSE);
    let status = server
        .exit_within(Duration::from_secs(10))
        .expect("the server exits");
    let said = server.drain().concat();
    assert!(status.success(), "{said}{}", server.stderr());
    assert!(
        said.contains("Receive 27 bytes from client: \"Default request from client\""),
        "{said}"
    );
}

#[test]
fn rust_pipe_client_with_cpp_server_in_message_mode() {
    rust_client_with_cpp_server(PipeMode::Message);
}

#[test]
fn rust_pipe_client_with_cpp_server_in_byte_mode() {
    rust_client_with_cpp_server(PipeMode::Byte);
}

/// The C++ mapping server writes; Python's standard library and the C++ client read.
#[test]
fn cpp_mapping_writer_python_and_cpp_readers() {
    let _watchdog = Watchdog::new(Duration::from_secs(120));
    let writer = common::cpp("file_mapping_server");
    let reader = common::cpp("file_mapping_client");
    let name = format!(r"Local\{}", unique_name("cpp-map"));
    let message = "Message from the C++ process";
    let mut cmd = Command::new(writer);
    cmd.args([name.as_str(), message]);
    let mut server = Proc::spawn_with_stdin(cmd);
    server.wait_for_within("is written", Duration::from_secs(30));

    let shm = Mapping::shm_name_of(name.as_str()).unwrap();
    let script = "import mmap, os, sys\n\
                  fd = os.open('/dev/shm/' + sys.argv[1], os.O_RDONLY)\n\
                  view = mmap.mmap(fd, 1024, prot=mmap.PROT_READ)\n\
                  sys.stdout.write(view[:1024].split(b'\\0')[0].decode())\n";
    let mut python = Command::new("python3");
    python.args(["-c", script, shm.as_str()]);
    let out = run(python, b"", Duration::from_secs(30));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), message);

    let mut client = Command::new(reader);
    client.arg(name.as_str());
    let out = run(client, b"", Duration::from_secs(30));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(&format!("\"{message}\"")), "{stdout}");

    drop(server.stdin.take());
    let status = server
        .exit_within(Duration::from_secs(10))
        .expect("the server exits");
    assert!(status.success());
    assert!(matches!(
        Mapping::open(name.as_str(), procwire::security::Access::Read),
        Err(procwire::mapping::MappingError::NotFound { .. })
    ));
}

/// The C++ mailslot client's three messages reach a Rust reader, exactly three; a Rust
/// writer's reach the C++ server.
#[test]
fn cpp_mailslot_samples_with_rust() {
    let _watchdog = Watchdog::new(Duration::from_secs(120));
    let writer = common::cpp("mailslot_client");
    let server = common::cpp("mailslot_server");

    let name = format!(r"\\.\mailslot\{}", unique_name("cpp-slot"));
    let slot = procwire::mailslot::MailslotServer::create(name.as_str()).unwrap();
    let mut cmd = Command::new(writer);
    cmd.arg(name.as_str());
    let out = run(cmd, b"", Duration::from_secs(30));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut got = Vec::new();
    while let Some(m) = slot.try_read() {
        got.push(String::from_utf8(m).unwrap());
    }
    assert_eq!(
        got,
        [
            "Message one for mailslot",
            "Message two for mailslot",
            "Message three for mailslot"
        ]
    );

    let name = format!(r"\\.\mailslot\{}", unique_name("cpp-slot"));
    let mut cmd = Command::new(server);
    cmd.args([name.as_str(), "100", "300"]);
    let mut server = Proc::spawn(cmd);
    server.wait_for_within("is created", Duration::from_secs(30));
    let writer = MailslotWriter::open(name.as_str()).unwrap();
    for m in ["first", "second", "third"] {
        writer.write(m.as_bytes()).unwrap();
    }
    server.wait_for_within("\"first\" (5 bytes)", Duration::from_secs(30));
    server.wait_for_within("\"second\" (6 bytes)", Duration::from_secs(30));
    server.wait_for_within("\"third\" (5 bytes)", Duration::from_secs(30));
}
