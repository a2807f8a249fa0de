//! The C# samples of examples/csharp/, calling the library through P/Invoke under Mono,
//! against Rust servers.

mod common;

use std::time::Duration;

use procwire::mapping::Mapping;
use procwire::pipe::PipeOptions;
use procwire_testkit::{run, unique_name, Watchdog};

#[test]
fn csharp_pipe_client_exchanges_messages_with_rust_server() {
    let _watchdog = Watchdog::new(Duration::from_secs(120));
    let client = common::csharp("PipeClient");
    let name = format!(r"\\.\pipe\{}", unique_name("cs-pipe"));
    let server = PipeOptions::new().create(name.as_str()).unwrap();
    let serving = std::thread::spawn(move || {
        let mut conn = server.accept_timeout(Duration::from_secs(60)).unwrap();
        let mut requests = Vec::new();
        for i in 1..=3 {
            requests.push(String::from_utf8(conn.recv().unwrap()).unwrap());
            conn.send(format!("Default response from server #{i}").as_bytes())
                .unwrap();
        }
        requests
    });
    let mut cmd = common::mono(&client);
    cmd.args([name.as_str(), "3"]);
    let out = run(cmd, b"", Duration::from_secs(60));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        serving.join().unwrap(),
        (1..=3)
            .map(|i| format!("Default request from client #{i}"))
            .collect::<Vec<_>>()
    );
    for i in 1..=3 {
        assert!(
            stdout.contains(&format!(
                "Receive 31 bytes from server: \"Default response from server #{i}\""
            )),
            "{stdout}"
        );
    }
}

#[test]
fn csharp_mapping_client_reads_what_rust_wrote() {
    let _watchdog = Watchdog::new(Duration::from_secs(120));
    let client = common::csharp("FileMappingClient");
    let name = format!(r"Local\{}", unique_name("cs-map"));
    let mapping = Mapping::create(name.as_str(), 65536).unwrap();
    let view = mapping.view(0, 1024).unwrap();
    let message = "Message from the Rust process";
    view.write_at(0, message.as_bytes()).unwrap();
    view.write_at(message.len(), &[0]).unwrap();

    let mut cmd = common::mono(&client);
    cmd.arg(name.as_str());
    let out = run(cmd, b"", Duration::from_secs(60));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("(65536 bytes)"), "{stdout}");
    assert!(
        stdout.contains(&format!("Read from the file mapping:\n\"{message}\"")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("Through the pointer: \"{message}\"")),
        "{stdout}"
    );
}
