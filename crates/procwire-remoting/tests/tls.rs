//! TLS on the tcp and http channels, with a self-signed certificate made for the test.

#![cfg(feature = "tls")]

use std::sync::Arc;

use procwire_remoting::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use procwire_remoting::rustls::{self, ClientConfig, RootCertStore, ServerConfig};
use procwire_remoting::sample::{self, SampleObjectClient};
use procwire_remoting::{Lease, Proxy, RemotingError, RemotingServer, TcpChannel};

struct Certs {
    server: Arc<ServerConfig>,
    client: Arc<ClientConfig>,
    pem: String,
}

fn certs() -> Certs {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let key =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let der: CertificateDer<'static> = key.cert.der().clone();
    let private = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.signing_key.serialize_der()));
    let server = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![der.clone()], private)
        .unwrap();
    let mut roots = RootCertStore::empty();
    roots.add(der).unwrap();
    let client = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Certs {
        server: Arc::new(server),
        client: Arc::new(client),
        pem: key.cert.pem(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_over_tls_and_plaintext_clients_are_refused() {
    let c = certs();
    let server = RemotingServer::new(sample::registry(Lease::default()));
    let tls = server
        .listen_tcp(TcpChannel::loopback(0).tls(Arc::clone(&c.server)))
        .unwrap();
    let port = tls.local().rsplit(':').next().unwrap().to_owned();
    let url = format!("tcp://localhost:{port}/RemotingService/SingletonService");
    let client = SampleObjectClient::new(
        Proxy::connect_tls(&url, Arc::clone(&c.client))
            .await
            .unwrap(),
    );
    assert_eq!(client.count().await.unwrap(), 1);
    assert_eq!(client.count().await.unwrap(), 2);

    // A plaintext client gets no answer, only a closed connection.
    let plain = Proxy::connect(&url).await.unwrap();
    let e = SampleObjectClient::new(plain.with_deadline(std::time::Duration::from_secs(3)))
        .count()
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            RemotingError::Disconnected { .. } | RemotingError::Timeout { .. }
        ),
        "{e}"
    );
    // A client that does not trust the certificate cannot connect.
    let untrusting = certs().client;
    assert!(Proxy::connect_tls(&url, untrusting).await.is_err());
    assert_eq!(client.count().await.unwrap(), 3, "the server goes on");
}

#[test]
fn tls_listeners_may_use_any_address() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let c = certs();
    rt.block_on(async {
        let server = RemotingServer::new(sample::registry(Lease::default()));
        let l = server
            .listen_tcp(TcpChannel::new("0.0.0.0:0".parse().unwrap()).tls(c.server))
            .unwrap();
        assert!(l.local().starts_with("tcp://0.0.0.0:"));
    });
}

#[test]
fn curl_calls_over_https() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let c = certs();
    let server = RemotingServer::new(sample::registry(Lease::default()));
    let https = rt
        .block_on(async { server.listen_http(TcpChannel::loopback(0).tls(c.server)) })
        .unwrap();
    assert!(https.local().starts_with("https://"));
    let port = https.local().rsplit(':').next().unwrap().to_owned();
    let dir = std::env::temp_dir().join(format!("procwire-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, &c.pem).unwrap();
    let out = std::process::Command::new("curl")
        .args(["-sS", "--max-time", "20", "--cacert"])
        .arg(&ca)
        .args(["-d", r#"{"name":"tls"}"#])
        .arg(format!(
            "https://localhost:{port}/RemotingService/SingletonService/hello"
        ))
        .output()
        .expect("curl must be installed");
    let _ = std::fs::remove_dir_all(&dir);
    let body: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert!(body.as_str().unwrap().starts_with("Hello tls,"), "{body}");
}
