//! Remoting on NATS, against a real nats-server (procwire_testkit::nats) and real server
//! processes (this test binary re-executed in the role `server`).

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use procwire_nats::{remoting, NatsOptions};
use procwire_remoting::wire::{Format, Op};
use procwire_remoting::{
    remote, Lease, RegistryBuilder, RemoteErrorKind, RemotingError, RemotingServer, TcpChannel,
};
use procwire_testkit::nats::NatsServer;
use procwire_testkit::{helper, helper_role, say, unique_name, Proc, Watchdog};

/// What the test services do.
#[remote]
pub trait Probe {
    /// The server's pid.
    async fn pid(&self) -> u32;
    /// `data`, back.
    async fn echo(&self, data: Vec<u8>) -> Vec<u8>;
    /// `n` zero bytes.
    async fn zeros(&self, n: u64) -> Vec<u8>;
    /// Sleeps `ms`, then says the pid.
    async fn sleep(&self, ms: u64) -> u32;
    /// Adds `n` to this object's count; the new count and the pid.
    async fn add(&self, n: u64) -> (u64, u32);
}

#[derive(Default)]
struct Probing(AtomicU64);

impl Probe for Probing {
    async fn pid(&self) -> u32 {
        std::process::id()
    }
    async fn echo(&self, data: Vec<u8>) -> Vec<u8> {
        data
    }
    async fn zeros(&self, n: u64) -> Vec<u8> {
        vec![0; n as usize]
    }
    async fn sleep(&self, ms: u64) -> u32 {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        std::process::id()
    }
    async fn add(&self, n: u64) -> (u64, u32) {
        (
            self.0.fetch_add(n, Ordering::SeqCst) + n,
            std::process::id(),
        )
    }
}

/// `Probe` (SingleCall), `Shared` (Singleton) and `Tally` (client-activated, with a lease
/// of `lease`) under `app`.
fn registry(app: &str, lease: Duration) -> procwire_remoting::Registry {
    RegistryBuilder::new(app)
        .single_call("Probe", || ProbeServer::new(Probing::default()))
        .singleton("Shared", || ProbeServer::new(Probing::default()))
        .client_activated("Tally", Lease::new(lease, lease), |(start,): (u64,)| {
            Ok(ProbeServer::new(Probing(AtomicU64::new(start))))
        })
        .build()
}

#[test]
fn helper_process() {
    let Some(role) = helper_role() else { return };
    assert_eq!(role, "server");
    let url = std::env::var("PW_NATS").unwrap();
    let app = std::env::var("PW_APP").unwrap();
    let lease = Duration::from_millis(std::env::var("PW_LEASE_MS").unwrap().parse().unwrap());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let server = RemotingServer::new(registry(&app, lease));
        let _listener = remoting::serve(&server, &url, &NatsOptions::new())
            .await
            .unwrap();
        say("READY");
        std::future::pending::<()>().await;
    });
}

/// Starts `n` server processes for `app` on `nats`, and waits until each serves.
fn servers(nats: &NatsServer, app: &str, n: usize, lease: Duration) -> Vec<Proc> {
    let lease = lease.as_millis().to_string();
    let url = nats.url();
    let mut procs: Vec<Proc> = (0..n)
        .map(|_| {
            helper(
                "server",
                &[("PW_NATS", &url), ("PW_APP", app), ("PW_LEASE_MS", &lease)],
            )
        })
        .collect();
    for p in &mut procs {
        p.wait_for_within("READY", Duration::from_secs(30));
    }
    procs
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn three_servers_in_one_queue_group_share_a_thousand_calls() {
    let _w = Watchdog::new(Duration::from_secs(120));
    let nats = NatsServer::start();
    let app = unique_name("app");
    let procs = servers(&nats, &app, 3, Duration::from_secs(60));
    let expected: HashSet<u32> = procs.iter().map(Proc::pid).collect();
    runtime().block_on(async {
        let url = format!("{}/{app}/Probe", nats.url());
        let probe = ProbeClient::new(remoting::connect(&url, &NatsOptions::new()).await.unwrap());
        let pids: Vec<u32> = futures::stream::iter(0..1000)
            .map(|_| {
                let probe = probe.clone();
                async move { probe.pid().await.unwrap() }
            })
            .buffer_unordered(32)
            .collect()
            .await;
        assert_eq!(pids.len(), 1000);
        let mut per_pid = BTreeMap::new();
        for pid in pids {
            *per_pid.entry(pid).or_insert(0) += 1;
        }
        let seen: HashSet<u32> = per_pid.keys().copied().collect();
        assert_eq!(seen, expected, "every server takes some calls: {per_pid:?}");
    });
}

#[test]
fn a_server_killed_mid_run_leaves_every_call_answered_or_failed_by_its_deadline() {
    let _w = Watchdog::new(Duration::from_secs(120));
    let nats = NatsServer::start();
    let app = unique_name("app");
    let mut procs = servers(&nats, &app, 3, Duration::from_secs(60));
    let victim = procs.remove(0);
    let victim_pid = victim.pid();
    let deadline = Duration::from_secs(2);
    runtime().block_on(async {
        let url = format!("{}/{app}/Probe", nats.url());
        let proxy = remoting::connect(&url, &NatsOptions::new())
            .await
            .unwrap()
            .with_deadline(deadline);
        let probe = ProbeClient::new(proxy);
        let done = std::sync::Arc::new(AtomicU64::new(0));
        let killer = {
            let done = std::sync::Arc::clone(&done);
            tokio::spawn(async move {
                let mut victim = victim;
                while done.load(Ordering::SeqCst) < 200 {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                victim.kill();
            })
        };
        let outcomes: Vec<(Result<u32, RemotingError>, Duration)> = futures::stream::iter(0..1000)
            .map(|_| {
                let probe = probe.clone();
                let done = std::sync::Arc::clone(&done);
                async move {
                    let start = Instant::now();
                    let r = probe.sleep(5).await;
                    done.fetch_add(1, Ordering::SeqCst);
                    (r, start.elapsed())
                }
            })
            .buffer_unordered(32)
            .collect()
            .await;
        killer.await.unwrap();
        let mut answered = 0;
        let mut failed = Vec::new();
        for (outcome, took) in &outcomes {
            // The proxy gives up half a second after the deadline; allow for scheduling.
            assert!(
                *took < deadline + Duration::from_secs(2),
                "a call took {took:?}, past its deadline of {deadline:?}: {outcome:?}"
            );
            match outcome {
                Ok(_) => answered += 1,
                Err(e) => failed.push(e.to_string()),
            }
        }
        for e in &failed {
            assert!(
                e.contains("timed out") || e.contains("no server answers"),
                "a clear error: {e}"
            );
        }
        assert_eq!(outcomes.len(), 1000);
        eprintln!(
            "{answered} answered, {} failed: {:?}",
            failed.len(),
            failed.first()
        );
        assert!(answered >= 900, "{answered} answered; failures: {failed:?}");
        // After the kill, the other two take everything.
        for _ in 0..50 {
            let pid = probe.pid().await.unwrap();
            assert_ne!(pid, victim_pid);
        }
    });
}

#[test]
fn a_client_activated_object_keeps_its_state_across_100_calls() {
    let _w = Watchdog::new(Duration::from_secs(120));
    let nats = NatsServer::start();
    let app = unique_name("app");
    let procs = servers(&nats, &app, 2, Duration::from_secs(60));
    let pids: HashSet<u32> = procs.iter().map(Proc::pid).collect();
    runtime().block_on(async {
        let url = format!("{}/{app}/Tally", nats.url());
        let tally = remoting::activate(&url, &(1000u64,), &NatsOptions::new())
            .await
            .unwrap();
        assert!(tally.object().is_some());
        let tally = ProbeClient::new(tally);
        let (first, home) = tally.add(1).await.unwrap();
        assert_eq!(first, 1001);
        assert!(pids.contains(&home));
        for i in 2..=100 {
            let (count, pid) = tally.add(1).await.unwrap();
            assert_eq!((count, pid), (1000 + i, home), "call {i}");
        }
        // A second object may live in the other process; each keeps its own count.
        let mut homes = HashSet::new();
        for _ in 0..20 {
            let other = ProbeClient::new(
                remoting::activate(&url, &(0u64,), &NatsOptions::new())
                    .await
                    .unwrap(),
            );
            let (count, pid) = other.add(5).await.unwrap();
            assert_eq!(count, 5);
            homes.insert(pid);
        }
        assert_eq!(homes, pids, "activations are shared by the queue group");
        assert_eq!(tally.add(0).await.unwrap(), (1100, home));
    });
}

/// The error of a call on an object whose lease ended, of a renewal of it, and of a call
/// on an object that never was, on a channel.
async fn lease_errors(tally: procwire_remoting::Proxy) -> Vec<(Option<RemoteErrorKind>, String)> {
    let conn_probe = ProbeClient::new(tally.clone());
    conn_probe.add(1).await.unwrap();
    tokio::time::sleep(Duration::from_millis(900)).await;
    let call = conn_probe.add(1).await.unwrap_err();
    let renew = tally.renew(Duration::from_secs(5)).await.unwrap_err();
    let strip = |e: RemotingError| {
        let kind = e.remote_kind();
        // Object ids differ between runs: compare the words only.
        let text: String = e
            .to_string()
            .split(' ')
            .filter(|w| !w.chars().all(|c| c.is_ascii_hexdigit()))
            .collect::<Vec<_>>()
            .join(" ");
        (kind, text)
    };
    vec![strip(call), strip(renew)]
}

#[test]
fn leases_end_and_unknown_objects_fail_as_on_tcp() {
    let _w = Watchdog::new(Duration::from_secs(60));
    let nats = NatsServer::start();
    let app = unique_name("app");
    runtime().block_on(async {
        // One server on both channels, with a short lease.
        let server = RemotingServer::new(registry(&app, Duration::from_millis(300)));
        let tcp = server.listen_tcp(TcpChannel::loopback(0)).unwrap();
        let _nats = remoting::serve(&server, &nats.url(), &NatsOptions::new())
            .await
            .unwrap();
        let on_tcp =
            procwire_remoting::Proxy::activate(&format!("{}/{app}/Tally", tcp.local()), &(0u64,))
                .await
                .unwrap();
        let tcp_errors = lease_errors(on_tcp).await;
        let on_nats = remoting::activate(
            &format!("{}/{app}/Tally", nats.url()),
            &(0u64,),
            &NatsOptions::new(),
        )
        .await
        .unwrap();
        let nats_errors = lease_errors(on_nats).await;
        assert_eq!(
            tcp_errors[0].0,
            Some(RemoteErrorKind::ObjectDisconnected),
            "{tcp_errors:?}"
        );
        assert_eq!(nats_errors, tcp_errors);

        // An object nobody created.
        let unknown = |conn: procwire_remoting::Connection| {
            let service = format!("{app}/Tally");
            async move {
                let op = Op::Call {
                    service,
                    object: Some(0x1234_5677),
                    method: "add".into(),
                };
                let body = procwire_remoting::wire::encode_value(Format::Binary, &(1u64,)).unwrap();
                conn.request(op, Format::Binary, body, Duration::from_secs(5))
                    .await
                    .unwrap_err()
                    .to_string()
            }
        };
        let tcp_conn = procwire_remoting::Connection::connect(tcp.local())
            .await
            .unwrap();
        let client = NatsOptions::new().connect(&nats.url()).await.unwrap();
        let nats_conn = remoting::connection(client, &nats.url());
        let on_tcp = unknown(tcp_conn).await;
        assert!(
            on_tcp.contains("object_disconnected") || on_tcp.contains("disconnected"),
            "{on_tcp}"
        );
        assert_eq!(unknown(nats_conn).await, on_tcp);
    });
}

#[test]
fn clients_reconnect_after_the_nats_server_restarts_mid_run() {
    let _w = Watchdog::new(Duration::from_secs(120));
    let mut nats = NatsServer::start();
    let app = unique_name("app");
    let _procs = servers(&nats, &app, 2, Duration::from_secs(60));
    let rt = runtime();
    let deadline = Duration::from_secs(1);
    let url = format!("{}/{app}/Probe", nats.url());
    let probe = ProbeClient::new(
        rt.block_on(remoting::connect(&url, &NatsOptions::new()))
            .unwrap()
            .with_deadline(deadline),
    );
    let answered = std::sync::Arc::new(AtomicU64::new(0));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Calls one after another, all through the restart.
    let caller = {
        let (answered, stop) = (answered.clone(), stop.clone());
        rt.spawn(async move {
            let mut outcomes = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                let start = Instant::now();
                let outcome = probe.pid().await;
                let took = start.elapsed();
                if outcome.is_ok() {
                    answered.fetch_add(1, Ordering::SeqCst);
                } else {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                outcomes.push((outcome.map_err(|e| e.to_string()), took));
            }
            outcomes
        })
    };
    let wait_for = |n: u64| {
        let start = Instant::now();
        while answered.load(Ordering::SeqCst) < n {
            if start.elapsed() > Duration::from_secs(30) {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        true
    };
    assert!(wait_for(100));
    nats.restart();
    let before = answered.load(Ordering::SeqCst);
    // Clients and servers reconnect; calls after the restart succeed.
    let reconnected = wait_for(before + 100);
    stop.store(true, Ordering::SeqCst);
    let outcomes = rt.block_on(caller).unwrap();
    assert!(
        reconnected,
        "only {} calls answered; the last outcomes: {:?}",
        answered.load(Ordering::SeqCst),
        &outcomes[outcomes.len().saturating_sub(5)..]
    );
    let failed: Vec<&String> = outcomes
        .iter()
        .filter_map(|(o, _)| o.as_ref().err())
        .collect();
    eprintln!(
        "{} calls, {} failed: {:?}",
        outcomes.len(),
        failed.len(),
        failed.first()
    );
    for (outcome, took) in &outcomes {
        assert!(
            *took < deadline + Duration::from_secs(2),
            "a call took {took:?}, past its deadline of {deadline:?}: {outcome:?}"
        );
        if let Err(e) = outcome {
            assert!(
                e.contains("timed out")
                    || e.contains("no server answers")
                    || e.contains("NATS request"),
                "a clear error: {e}"
            );
        }
    }
    // The last calls all succeeded.
    assert!(outcomes[outcomes.len() - 50..]
        .iter()
        .all(|(o, _)| o.is_ok()));
}

#[test]
fn a_forged_answer_fails_its_call_alone_and_the_proxy_goes_on() {
    let _w = Watchdog::new(Duration::from_secs(90));
    let nats = NatsServer::start();
    let app = unique_name("app");
    runtime().block_on(async {
        // A stranger on the service subject answers garbage, then another call's frame.
        let raw = async_nats::connect(nats.url()).await.unwrap();
        let mut requests = raw
            .subscribe(format!("procwire.{app}.Probe"))
            .await
            .unwrap();
        let url = format!("{}/{app}/Probe", nats.url());
        let proxy = remoting::connect(&url, &NatsOptions::new())
            .await
            .unwrap()
            .with_deadline(Duration::from_secs(10));
        let probe = ProbeClient::new(proxy);
        let forger = tokio::spawn(async move {
            for answer in [b"not a frame".to_vec(), Vec::new()] {
                let request = requests.next().await.unwrap();
                let payload = if answer.is_empty() {
                    // A well-formed response, to a call with another id.
                    let response = procwire_remoting::wire::Response {
                        id: u64::MAX,
                        outcome: Ok(postcard::to_allocvec(&7u32).unwrap()),
                    };
                    procwire_remoting::wire::encode_response(&response, usize::MAX).unwrap()
                } else {
                    answer
                };
                raw.publish(request.reply.unwrap(), payload.into())
                    .await
                    .unwrap();
                raw.flush().await.unwrap();
            }
        });
        for what in ["garbage", "another call's answer"] {
            let err = probe.pid().await.unwrap_err();
            assert_eq!(
                err.remote_kind(),
                Some(RemoteErrorKind::Protocol),
                "{what}: {err}"
            );
        }
        forger.await.unwrap();
        // The proxy's connection is still there: a real server answers its next call.
        let procs = servers(&nats, &app, 1, Duration::from_secs(60));
        assert_eq!(probe.pid().await.unwrap(), procs[0].pid());
    });
}

#[test]
fn a_call_nobody_serves_fails_at_once_with_no_server() {
    let _w = Watchdog::new(Duration::from_secs(60));
    let nats = NatsServer::start();
    let app = unique_name("app");
    runtime().block_on(async {
        let url = format!("{}/{app}/Probe", nats.url());
        let deadline = Duration::from_secs(20);
        let proxy = remoting::connect(&url, &NatsOptions::new())
            .await
            .unwrap()
            .with_deadline(deadline);
        let start = Instant::now();
        let err = ProbeClient::new(proxy).pid().await.unwrap_err();
        assert!(
            start.elapsed() < deadline,
            "it did not wait for the deadline"
        );
        assert_eq!(err.remote_kind(), Some(RemoteErrorKind::UnknownService));
        let text = err.to_string();
        assert!(text.contains("no server answers"), "{text}");
        assert!(text.contains(&format!("procwire.{app}.Probe")), "{text}");
    });
}

#[test]
fn a_stopped_listener_leaves_the_queue_group() {
    let _w = Watchdog::new(Duration::from_secs(60));
    let nats = NatsServer::start();
    let app = unique_name("app");
    runtime().block_on(async {
        let server = RemotingServer::new(registry(&app, Duration::from_secs(60)));
        let listener = remoting::serve(&server, &nats.url(), &NatsOptions::new())
            .await
            .unwrap();
        let url = format!("{}/{app}/Probe", nats.url());
        let probe = ProbeClient::new(remoting::connect(&url, &NatsOptions::new()).await.unwrap());
        probe.pid().await.unwrap();
        listener.stop().await.unwrap();
        // Nothing answers any more. Mostly the next call finds nobody at once; about one
        // run in fifteen under load, the first call after the stop is still routed to the
        // endpoint that stopped and ends at its deadline (not understood yet: the UNSUB is
        // sent and flushed before `stop` returns). The call after it finds nobody.
        let probe = ProbeClient::new(
            remoting::connect(&url, &NatsOptions::new())
                .await
                .unwrap()
                .with_deadline(Duration::from_secs(2)),
        );
        let first = probe.pid().await.unwrap_err();
        assert!(
            matches!(
                first.remote_kind(),
                Some(RemoteErrorKind::UnknownService) | None
            ),
            "{first}"
        );
        let err = probe.pid().await.unwrap_err();
        assert_eq!(
            err.remote_kind(),
            Some(RemoteErrorKind::UnknownService),
            "{err}"
        );
    });
}

#[test]
fn deadlines_end_slow_calls() {
    let _w = Watchdog::new(Duration::from_secs(60));
    let nats = NatsServer::start();
    let app = unique_name("app");
    let _procs = servers(&nats, &app, 1, Duration::from_secs(60));
    runtime().block_on(async {
        let url = format!("{}/{app}/Probe", nats.url());
        let deadline = Duration::from_millis(300);
        let proxy = remoting::connect(&url, &NatsOptions::new())
            .await
            .unwrap()
            .with_deadline(deadline);
        let start = Instant::now();
        let err = ProbeClient::new(proxy).sleep(5_000).await.unwrap_err();
        assert!(start.elapsed() >= deadline);
        assert_eq!(
            err.remote_kind(),
            Some(RemoteErrorKind::DeadlineExceeded),
            "{err}"
        );
    });
}

#[test]
fn requests_and_results_above_max_payload_fail_precisely() {
    let _w = Watchdog::new(Duration::from_secs(60));
    let conf = std::env::temp_dir().join(format!("{}.conf", unique_name("nats")));
    std::fs::write(&conf, "max_payload: 65536\n").unwrap();
    let nats = NatsServer::start_with_args(&["-c", conf.to_str().unwrap()]);
    let app = unique_name("app");
    let _procs = servers(&nats, &app, 1, Duration::from_secs(60));
    runtime().block_on(async {
        let url = format!("{}/{app}/Probe", nats.url());
        let probe = ProbeClient::new(remoting::connect(&url, &NatsOptions::new()).await.unwrap());
        assert_eq!(probe.echo(vec![7; 60_000]).await.unwrap().len(), 60_000);
        match probe.echo(vec![7; 70_000]).await {
            Err(RemotingError::MessageTooLarge { size, max }) => {
                assert!(size > 70_000, "{size}");
                assert_eq!(max, 65536);
            }
            other => panic!("expected MessageTooLarge, got {other:?}"),
        }
        let err = probe.zeros(70_000).await.unwrap_err();
        assert_eq!(
            err.remote_kind(),
            Some(RemoteErrorKind::MessageTooLarge),
            "{err}"
        );
        // The proxy still works.
        assert_eq!(probe.zeros(10).await.unwrap(), vec![0; 10]);
    });
    let _ = std::fs::remove_file(conf);
}

#[test]
fn credentials_are_required_and_accepted() {
    let _w = Watchdog::new(Duration::from_secs(60));
    let nats = NatsServer::start_with_args(&["--user", "app", "--pass", "s3cret"]);
    runtime().block_on(async {
        let err = NatsOptions::new().connect(&nats.url()).await.unwrap_err();
        assert!(err.to_string().contains("cannot connect"), "{err}");
        let app = unique_name("app");
        let options = NatsOptions::new().user_password("app", "s3cret");
        let server = RemotingServer::new(registry(&app, Duration::from_secs(60)));
        let _listener = remoting::serve(&server, &nats.url(), &options)
            .await
            .unwrap();
        let url = format!("{}/{app}/Probe", nats.url());
        let probe = ProbeClient::new(remoting::connect(&url, &options).await.unwrap());
        assert_eq!(probe.pid().await.unwrap(), std::process::id());
    });
    let nats = NatsServer::start_with_args(&["--auth", "t0ken"]);
    runtime().block_on(async {
        assert!(NatsOptions::new().connect(&nats.url()).await.is_err());
        NatsOptions::new()
            .token("t0ken")
            .connect(&nats.url())
            .await
            .unwrap();
    });
}

#[test]
fn a_missing_credentials_file_is_named_and_secrets_are_not_printed() {
    runtime().block_on(async {
        let err = NatsOptions::new()
            .credentials_file("/nonexistent/user.creds")
            .connect("nats://127.0.0.1:4222")
            .await
            .unwrap_err();
        assert!(
            matches!(err, procwire_nats::ConnectError::Credentials { .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("/nonexistent/user.creds"), "{err}");
    });
    let shown = format!(
        "{:?} {:?}",
        NatsOptions::new().user_password("u", "hunter2"),
        NatsOptions::new().token("t0psecret")
    );
    assert!(
        !shown.contains("hunter2") && !shown.contains("t0psecret"),
        "{shown}"
    );
}

#[test]
fn plaintext_to_another_host_is_refused_unless_allowed() {
    runtime().block_on(async {
        let err = NatsOptions::new()
            .connect("nats://192.0.2.1:4222")
            .await
            .unwrap_err();
        assert!(err.to_string().contains("allow_plaintext_network"), "{err}");
    });
}

#[test]
fn list_shows_every_instance_from_the_services_api() {
    let _w = Watchdog::new(Duration::from_secs(60));
    let nats = NatsServer::start();
    let app = unique_name("app");
    let procs = servers(&nats, &app, 2, Duration::from_secs(60));
    let pids: HashSet<u32> = procs.iter().map(Proc::pid).collect();
    runtime().block_on(async {
        let all = remoting::list(&nats.url(), &NatsOptions::new())
            .await
            .unwrap();
        assert_eq!(all.len(), 6, "3 services in 2 processes: {all:#?}");
        for service in ["Probe", "Shared", "Tally"] {
            let instances: Vec<_> = all.iter().filter(|i| i.service == service).collect();
            let seen: HashSet<u32> = instances.iter().map(|i| i.pid).collect();
            assert_eq!(seen, pids);
            for i in instances {
                assert_eq!(i.app, app);
                assert_eq!(i.subject, format!("procwire.{app}.{service}"));
                assert_eq!(
                    i.instance_subject,
                    format!("procwire.{app}.{service}.{}", i.id)
                );
                assert!(i.methods.contains(&"pid".to_owned()), "{i:?}");
            }
        }
        let modes: HashSet<&str> = all.iter().map(|i| i.mode.as_str()).collect();
        assert_eq!(
            modes,
            HashSet::from(["single_call", "singleton", "client_activated"])
        );
    });
}

// --- A client written with async-nats alone, from docs/protocol.md. -------------------

/// postcard's varint of `n`.
fn varint(mut n: u64, out: &mut Vec<u8>) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// postcard's string or byte string: its length, then its bytes.
fn bytes(b: &[u8], out: &mut Vec<u8>) {
    varint(b.len() as u64, out);
    out.extend_from_slice(b);
}

/// A request frame, by hand: version 1, id, deadline (Some), format 0 (binary), the op,
/// the body.
fn request_frame(id: u64, deadline_ms: u64, op: &[u8], body: &[u8]) -> Vec<u8> {
    let mut f = vec![1];
    varint(id, &mut f);
    f.push(1);
    varint(deadline_ms, &mut f);
    f.push(0);
    f.extend_from_slice(op);
    bytes(body, &mut f);
    f
}

/// Op::Call (variant 0): service, object (None, or Some(id)), method.
fn call_op(service: &str, object: Option<u64>, method: &str) -> Vec<u8> {
    let mut op = vec![0];
    bytes(service.as_bytes(), &mut op);
    match object {
        None => op.push(0),
        Some(id) => {
            op.push(1);
            varint(id, &mut op);
        }
    }
    bytes(method.as_bytes(), &mut op);
    op
}

/// The result bytes of an `Ok` response frame with request id `id`.
fn ok_result(frame: &[u8], id: u64) -> Vec<u8> {
    let mut head = vec![1];
    varint(id, &mut head);
    assert!(frame.starts_with(&head), "response {frame:?}");
    let rest = &frame[head.len()..];
    assert_eq!(rest[0], 0, "an Ok outcome: {frame:?}");
    // Ok(Vec<u8>): the length, then the result bytes.
    let (mut len, mut i) = (0u64, 1);
    loop {
        let b = rest[i];
        len |= u64::from(b & 0x7f) << (7 * (i - 1));
        i += 1;
        if b & 0x80 == 0 {
            break;
        }
    }
    rest[i..i + len as usize].to_vec()
}

fn read_varint(b: &[u8]) -> u64 {
    let mut n = 0;
    for (i, byte) in b.iter().enumerate() {
        n |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            break;
        }
    }
    n
}

#[test]
fn a_plain_async_nats_client_calls_a_procwire_service_on_the_documented_subjects() {
    let _w = Watchdog::new(Duration::from_secs(60));
    let nats = NatsServer::start();
    let app = unique_name("app");
    let procs = servers(&nats, &app, 1, Duration::from_secs(60));
    let pid = procs[0].pid();
    runtime().block_on(async {
        let client = async_nats::connect(nats.url()).await.unwrap();

        // echo(data: Vec<u8>): the body is the tuple (data,), the result a Vec<u8>.
        let mut body = Vec::new();
        bytes(b"hello", &mut body);
        let frame = request_frame(
            7,
            5000,
            &call_op(&format!("{app}/Probe"), None, "echo"),
            &body,
        );
        let reply = client
            .request(format!("procwire.{app}.Probe"), frame.into())
            .await
            .unwrap();
        let result = ok_result(&reply.payload, 7);
        let mut expected = Vec::new();
        bytes(b"hello", &mut expected);
        assert_eq!(result, expected);

        // Activate (variant 1) the client-activated type `Tally` with (40,), then call its
        // instance on the subject the reply names.
        let mut op = vec![1];
        bytes(format!("{app}/Tally").as_bytes(), &mut op);
        let mut args = Vec::new();
        varint(40, &mut args);
        let reply = client
            .request(
                format!("procwire.{app}.Tally"),
                request_frame(8, 5000, &op, &args).into(),
            )
            .await
            .unwrap();
        let instance = reply
            .headers
            .as_ref()
            .and_then(|h| h.get("Procwire-Instance"))
            .expect("the instance subject")
            .as_str()
            .to_owned();
        assert!(
            instance.starts_with(&format!("procwire.{app}.Tally.")),
            "{instance}"
        );
        let object = read_varint(&ok_result(&reply.payload, 8));
        let mut args = Vec::new();
        varint(2, &mut args);
        let frame = request_frame(
            9,
            5000,
            &call_op(&format!("{app}/Tally"), Some(object), "add"),
            &args,
        );
        let reply = client.request(instance, frame.into()).await.unwrap();
        // (u64, u32): 42, then the pid.
        let mut expected = Vec::new();
        varint(42, &mut expected);
        varint(u64::from(pid), &mut expected);
        assert_eq!(ok_result(&reply.payload, 9), expected);

        // The Services API sees the services.
        let name = format!("{app}-Probe");
        let ping = client
            .request(format!("$SRV.PING.{name}"), "".into())
            .await
            .unwrap();
        let ping: serde_json::Value = serde_json::from_slice(&ping.payload).unwrap();
        assert_eq!(ping["name"], name.as_str());
        assert_eq!(ping["type"], "io.nats.micro.v1.ping_response");
        let info = client
            .request(format!("$SRV.INFO.{name}"), "".into())
            .await
            .unwrap();
        let info: serde_json::Value = serde_json::from_slice(&info.payload).unwrap();
        assert_eq!(info["metadata"]["procwire.app"], app.as_str());
        assert_eq!(info["metadata"]["procwire.mode"], "single_call");
        assert_eq!(info["metadata"]["procwire.pid"], pid.to_string().as_str());
        let subjects: Vec<&str> = info["endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["subject"].as_str().unwrap())
            .collect();
        assert!(
            subjects.contains(&format!("procwire.{app}.Probe").as_str()),
            "{subjects:?}"
        );
        let groups: HashSet<&str> = info["endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["queue_group"].as_str().unwrap())
            .collect();
        assert_eq!(groups, HashSet::from([app.as_str()]));

        // Garbage gets a Services API error, not silence.
        let reply = client
            .request(format!("procwire.{app}.Probe"), "garbage".into())
            .await
            .unwrap();
        let status = reply
            .headers
            .as_ref()
            .and_then(|h| h.get("Nats-Service-Error-Code"));
        assert_eq!(
            status.map(|s| s.as_str().to_owned()).as_deref(),
            Some("400")
        );
    });
}

#[test]
fn the_hand_built_frames_match_the_library() {
    let frame = request_frame(7, 5000, &call_op("App/Probe", Some(300), "add"), &[5]);
    let library = procwire_remoting::wire::encode_request(
        &procwire_remoting::wire::Request {
            id: 7,
            deadline_ms: Some(5000),
            format: Format::Binary,
            op: Op::Call {
                service: "App/Probe".into(),
                object: Some(300),
                method: "add".into(),
            },
            body: vec![5],
        },
        1 << 20,
    )
    .unwrap();
    assert_eq!(frame, library);
}

#[test]
fn tls_to_the_nats_server_with_a_trusted_ca() {
    let _w = Watchdog::new(Duration::from_secs(60));
    let key =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let dir = std::env::temp_dir().join(unique_name("nats-tls"));
    std::fs::create_dir_all(&dir).unwrap();
    let cert = dir.join("cert.pem");
    let private = dir.join("key.pem");
    std::fs::write(&cert, key.cert.pem()).unwrap();
    std::fs::write(&private, key.signing_key.serialize_pem()).unwrap();
    let nats = NatsServer::start_with_args(&[
        "--tls",
        "--tlscert",
        cert.to_str().unwrap(),
        "--tlskey",
        private.to_str().unwrap(),
    ]);
    runtime().block_on(async {
        assert!(NatsOptions::new().connect(&nats.url()).await.is_err());
        let options = NatsOptions::new().root_certificates(&cert);
        let app = unique_name("app");
        let server = RemotingServer::new(registry(&app, Duration::from_secs(60)));
        let _listener = remoting::serve(&server, &nats.url(), &options)
            .await
            .unwrap();
        let url = format!("{}/{app}/Probe", nats.url());
        let probe = ProbeClient::new(remoting::connect(&url, &options).await.unwrap());
        assert_eq!(probe.echo(b"secret".to_vec()).await.unwrap(), b"secret");
    });
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_sponsor_keeps_an_object_alive_in_its_process_and_release_ends_it() {
    let _w = Watchdog::new(Duration::from_secs(60));
    let nats = NatsServer::start();
    let app = unique_name("app");
    let _procs = servers(&nats, &app, 2, Duration::from_millis(300));
    runtime().block_on(async {
        let url = format!("{}/{app}/Tally", nats.url());
        let proxy = remoting::activate(&url, &(0u64,), &NatsOptions::new())
            .await
            .unwrap();
        let tally = ProbeClient::new(proxy.clone());
        let (_, home) = tally.add(1).await.unwrap();
        {
            // Renewals reach the object's process: it outlives its 300 ms lease.
            let _sponsor = proxy.sponsor(Duration::from_millis(50), Duration::from_millis(500));
            tokio::time::sleep(Duration::from_millis(1200)).await;
            assert_eq!(tally.add(1).await.unwrap(), (2, home));
        }
        proxy.release().await.unwrap();
        let err = tally.add(1).await.unwrap_err();
        assert_eq!(
            err.remote_kind(),
            Some(RemoteErrorKind::ObjectDisconnected),
            "{err}"
        );
    });
}

#[test]
fn an_object_whose_process_is_gone_is_disconnected() {
    let _w = Watchdog::new(Duration::from_secs(60));
    let nats = NatsServer::start();
    let app = unique_name("app");
    let mut procs = servers(&nats, &app, 2, Duration::from_secs(60));
    let victim = procs[0].pid();
    runtime().block_on(async {
        let url = format!("{}/{app}/Tally", nats.url());
        // Activate until an object lives in the victim.
        let mut doomed = None;
        for _ in 0..50 {
            let proxy = remoting::activate(&url, &(0u64,), &NatsOptions::new())
                .await
                .unwrap();
            let tally = ProbeClient::new(proxy.clone());
            if tally.add(1).await.unwrap().1 == victim {
                doomed = Some(proxy);
                break;
            }
        }
        let doomed = doomed.expect("an activation reached each process");
        let instance = remoting::list(&nats.url(), &NatsOptions::new())
            .await
            .unwrap()
            .into_iter()
            .find(|i| i.pid == victim && i.service == "Tally")
            .expect("the victim's Tally instance")
            .instance_subject;
        procs[0].kill();
        // A request that reaches the NATS server before it has seen the process go is
        // routed to the dead subscription and never answered: wait until the server
        // answers no-responders on the instance subject, as it will for the call below.
        let raw = async_nats::connect(nats.url()).await.unwrap();
        let gone_by = Instant::now() + Duration::from_secs(20);
        loop {
            let asked = tokio::time::timeout(
                Duration::from_millis(500),
                raw.request(instance.clone(), "".into()),
            )
            .await;
            if let Ok(Err(e)) = &asked {
                if e.kind() == async_nats::RequestErrorKind::NoResponders {
                    break;
                }
            }
            assert!(
                Instant::now() < gone_by,
                "the NATS server still routes to the dead process"
            );
        }
        let tally = ProbeClient::new(doomed.clone().with_deadline(Duration::from_secs(10)));
        let start = Instant::now();
        let err = tally.add(1).await.unwrap_err();
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no wait for the deadline"
        );
        assert_eq!(
            err.remote_kind(),
            Some(RemoteErrorKind::ObjectDisconnected),
            "{err}"
        );
        assert!(err.to_string().contains("no longer answers"), "{err}");
        let err = doomed.renew(Duration::from_secs(5)).await.unwrap_err();
        assert_eq!(
            err.remote_kind(),
            Some(RemoteErrorKind::ObjectDisconnected),
            "{err}"
        );
    });
}

#[test]
fn the_worked_example_of_protocol_md_is_what_the_library_sends() {
    const PAGE: &str = include_str!("../../../docs/protocol.md");
    let start = PAGE
        .find("### 11.6 Remoting on NATS")
        .expect("section 11.6");
    let section = &PAGE[start..];
    let block = section.split("```\n").nth(1).expect("the worked example");
    // Each line: hex bytes, then an optional "quoted string", then a comment.
    let mut from_page = Vec::new();
    for line in block.lines() {
        for word in line.split_whitespace() {
            if let Some(text) = word.strip_prefix('"') {
                from_page.extend_from_slice(text.trim_end_matches('"').as_bytes());
            } else if word.len() == 2 && u8::from_str_radix(word, 16).is_ok() {
                from_page.push(u8::from_str_radix(word, 16).unwrap());
            } else {
                break;
            }
        }
    }
    let body =
        procwire_remoting::wire::encode_value(Format::Binary, &(b"hello".to_vec(),)).unwrap();
    let library = procwire_remoting::wire::encode_request(
        &procwire_remoting::wire::Request {
            id: 7,
            deadline_ms: Some(5000),
            format: Format::Binary,
            op: Op::Call {
                service: "App/Probe".into(),
                object: None,
                method: "echo".into(),
            },
            body,
        },
        1 << 20,
    )
    .unwrap();
    assert_eq!(from_page, library);
    let result = procwire_remoting::wire::encode_value(Format::Binary, &b"hello".to_vec()).unwrap();
    let reply = procwire_remoting::wire::encode_response(
        &procwire_remoting::wire::Response {
            id: 7,
            outcome: Ok(result),
        },
        1 << 20,
    )
    .unwrap();
    assert!(
        section.contains("`01 07 00 06 05 68 65 6c 6c 6f`"),
        "the page shows the reply"
    );
    assert_eq!(reply, [1, 7, 0, 6, 5, b'h', b'e', b'l', b'l', b'o']);
}

#[test]
fn public_types_are_send_sync_and_debug() {
    fn send_sync_debug<T: Send + Sync + std::fmt::Debug>() {}
    fn send_debug<T: Send + std::fmt::Debug>() {}
    send_sync_debug::<NatsOptions>();
    send_sync_debug::<procwire_nats::NatsUrl>();
    send_sync_debug::<procwire_nats::ConnectError>();
    send_sync_debug::<remoting::NatsListener>();
    send_sync_debug::<remoting::ServiceInstance>();
    send_debug::<remoting::NatsTransport>();
    send_sync_debug::<NatsServer>();
}

#[test]
fn a_flood_beyond_the_waiting_requests_is_answered_busy_and_the_rest_are_served() {
    let _w = Watchdog::new(Duration::from_secs(180));
    let nats = NatsServer::start();
    let app = unique_name("app");
    let _procs = servers(&nats, &app, 1, Duration::from_secs(60));
    let capacity = procwire_remoting::server::MAX_IN_FLIGHT + remoting::MAX_WAITING;
    let extra = 300;
    runtime().block_on(async {
        let url = format!("{}/{app}/Probe", nats.url());
        let proxy = remoting::connect(&url, &NatsOptions::new())
            .await
            .unwrap()
            .with_deadline(Duration::from_secs(60));
        let probe = ProbeClient::new(proxy);
        let start = Instant::now();
        // Every call sleeps 2 s: the server runs as many as it has slots for, keeps as
        // many again waiting, and refuses the rest at once.
        let outcomes = futures::future::join_all((0..capacity + extra).map(|_| {
            let probe = probe.clone();
            async move {
                let outcome = probe.sleep(2_000).await;
                (outcome.map_err(|e| e.remote_kind()), start.elapsed())
            }
        }))
        .await;
        let served: Vec<Duration> = outcomes
            .iter()
            .filter(|(o, _)| o.is_ok())
            .map(|(_, t)| *t)
            .collect();
        let busy: Vec<Duration> = outcomes
            .iter()
            .filter(|(o, _)| *o == Err(Some(RemoteErrorKind::Busy)))
            .map(|(_, t)| *t)
            .collect();
        assert_eq!(
            served.len() + busy.len(),
            outcomes.len(),
            "every call is served or refused as busy: {:?}",
            outcomes
                .iter()
                .find(|(o, _)| !matches!(o, Ok(_) | Err(Some(RemoteErrorKind::Busy))))
        );
        assert!(served.len() >= capacity, "{} served", served.len());
        assert!(!busy.is_empty(), "none refused");
        // The refusals come at once, before any call could end.
        let first_served = served.iter().min().unwrap();
        let last_busy = busy.iter().max().unwrap();
        assert!(
            last_busy < first_served,
            "busy by {last_busy:?}, first served at {first_served:?}"
        );
    });
}
