//! Remoting over the pipe channel's shared-memory path, across real processes: a server in
//! a helper process (this test binary re-executed), calls from here.

use std::time::Duration;

use procwire_remoting::sample::{self, SampleObjectClient};
use procwire_remoting::{Lease, PipeChannel, Proxy, RemotingServer};
use procwire_testkit::{helper, helper_role, say, unique_name, Proc, Watchdog};

fn server(name: &str, offer: bool) -> Proc {
    let offer = if offer { "yes" } else { "no" };
    let mut server = helper("server", &[("PIPE", name), ("OFFER", offer)]);
    server.wait_for("READY");
    server
}

/// Shared-memory regions of pipes among this process's descriptors.
fn regions() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|entry| std::fs::read_link(entry.unwrap().path()).ok())
        .filter(|target| target.to_string_lossy().starts_with("/memfd:procwire-pipe"))
        .count()
}

async fn client(name: &str) -> SampleObjectClient {
    let url = format!("pipe://{name}/{}/SingletonService", sample::APP);
    SampleObjectClient::new(Proxy::connect(&url).await.unwrap())
}

// One test, so that no other test's connections change this process's descriptors.
#[test]
fn pipe_channel_calls_travel_through_shared_memory_when_offered() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let name = unique_name("remoting-shm");
        let _server = server(&name, true);
        assert_eq!(regions(), 0);
        let c = client(&name).await;
        for expected in 1..=100 {
            assert_eq!(c.count().await.unwrap(), expected);
        }
        assert_eq!(
            regions(),
            1,
            "the connection's data path is a shared region"
        );
        assert_eq!(c.caller_pid().await.unwrap(), Some(std::process::id()));
        // Large arguments and results stream through the 1 MiB rings.
        let long = "x".repeat(3 << 20);
        let answer = c.hello(long.clone()).await.unwrap();
        assert!(answer.contains(&long), "a 3 MiB greeting comes back whole");
        // Many calls in flight on one connection.
        let calls: Vec<_> = (0..32).map(|_| c.slow(20)).collect();
        for done in futures::future::join_all(calls).await {
            assert_eq!(done.unwrap(), 20);
        }
        let e = c.fail("on purpose".into()).await.unwrap_err();
        assert!(e.to_string().contains("on purpose"), "{e}");
        drop(c);
        // The connection's task lets the region go once it sees the proxy gone.
        for _ in 0..200 {
            if regions() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(regions(), 0, "the region goes with its connection");

        let name = unique_name("remoting-socket");
        let _server = server(&name, false);
        let c = client(&name).await;
        assert_eq!(c.count().await.unwrap(), 1);
        assert_eq!(
            regions(),
            0,
            "a server that does not offer keeps the socket"
        );
    });
}

/// Not a test of its own: the body of the helper processes above.
#[test]
fn helper_process() {
    let Some(role) = helper_role() else {
        return;
    };
    assert_eq!(role, "server");
    let name = std::env::var("PIPE").unwrap();
    let offer = std::env::var("OFFER").unwrap() == "yes";
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let server = RemotingServer::new(sample::registry(Lease::default()));
        let _listener = server
            .listen_pipe(PipeChannel::new(&name).shared_memory(offer))
            .unwrap();
        say("READY");
        std::future::pending::<()>().await;
    });
}
