//! How to reach a NATS server: its URL, TLS, and credentials.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Everything that can go wrong while connecting to a NATS server.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The URL is not `nats://HOST:PORT[/…]`.
    #[error("invalid NATS URL `{url}`: {reason}")]
    InvalidUrl {
        /// The URL.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A server that is not on this machine, without TLS and without the explicit opt-out.
    #[error("refusing to talk to the NATS server `{server}` in plaintext: it is not a loopback address; require TLS or call allow_plaintext_network()")]
    PlaintextNetwork {
        /// `host:port`.
        server: String,
    },
    /// The credentials file could not be read or parsed.
    #[error("cannot read the NATS credentials file `{}`: {source}", path.display())]
    Credentials {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The server could not be reached, refused the credentials or the TLS handshake.
    #[error(
        "cannot connect to the NATS server `{server}`: {source}; is nats-server running there?"
    )]
    Connect {
        /// `host:port`.
        server: String,
        /// The cause.
        source: async_nats::ConnectError,
    },
}

/// How this client proves who it is to the NATS server.
#[derive(Clone, Default)]
enum Auth {
    #[default]
    None,
    UserPassword(String, String),
    Token(String),
    NKey(String),
    CredentialsFile(PathBuf),
}

impl std::fmt::Debug for Auth {
    // Never prints a secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Auth::None => "None",
            Auth::UserPassword(..) => "UserPassword(..)",
            Auth::Token(_) => "Token(..)",
            Auth::NKey(_) => "NKey(..)",
            Auth::CredentialsFile(_) => "CredentialsFile(..)",
        })
    }
}

/// Options of a connection to a NATS server: credentials (user and password, token, nkey
/// seed or a `.creds` file), TLS, and the client's name.
///
/// A server that is not on a loopback address must be reached over TLS
/// ([`require_tls`](Self::require_tls), or a `tls://` URL) unless
/// [`allow_plaintext_network`](Self::allow_plaintext_network) says otherwise.
///
/// # Examples
///
/// ```
/// use procwire_nats::NatsOptions;
/// let options = NatsOptions::new()
///     .user_password("app", "secret")
///     .name("billing-server");
/// # let _ = options;
/// ```
#[derive(Debug, Clone)]
pub struct NatsOptions {
    auth: Auth,
    name: Option<String>,
    require_tls: bool,
    root_certificates: Vec<PathBuf>,
    client_certificate: Option<(PathBuf, PathBuf)>,
    tls_config: Option<Arc<async_nats::rustls::ClientConfig>>,
    plaintext_network: bool,
    connect_timeout: Duration,
    max_reconnect_delay: Duration,
}

impl Default for NatsOptions {
    fn default() -> NatsOptions {
        NatsOptions::new()
    }
}

impl NatsOptions {
    /// No credentials, no TLS (loopback servers only), a 5 s connect timeout, reconnects
    /// at most 500 ms apart.
    pub fn new() -> NatsOptions {
        NatsOptions {
            auth: Auth::None,
            name: None,
            require_tls: false,
            root_certificates: Vec::new(),
            client_certificate: None,
            tls_config: None,
            plaintext_network: false,
            connect_timeout: Duration::from_secs(5),
            max_reconnect_delay: Duration::from_millis(500),
        }
    }

    /// The longest pause between two attempts to reconnect to a server that went away
    /// (they start at once and double from 10 ms). The client's own default grows to 4 s,
    /// which leaves calls and writes with short deadlines failing for seconds after the
    /// server is back.
    pub fn max_reconnect_delay(mut self, delay: Duration) -> Self {
        self.max_reconnect_delay = delay;
        self
    }

    /// Authenticates with a user name and password.
    pub fn user_password(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.auth = Auth::UserPassword(user.into(), password.into());
        self
    }

    /// Authenticates with a token.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.auth = Auth::Token(token.into());
        self
    }

    /// Authenticates with an nkey seed (`SU…`).
    pub fn nkey(mut self, seed: impl Into<String>) -> Self {
        self.auth = Auth::NKey(seed.into());
        self
    }

    /// Authenticates with a `.creds` file (a user JWT and its nkey seed), read at connect.
    pub fn credentials_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.auth = Auth::CredentialsFile(path.into());
        self
    }

    /// The client name the server shows in its connection list.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Requires TLS, whatever the server offers.
    pub fn require_tls(mut self, required: bool) -> Self {
        self.require_tls = required;
        self
    }

    /// Trusts the CA certificates in this PEM file for the server's certificate (implies
    /// TLS).
    pub fn root_certificates(mut self, pem: impl Into<PathBuf>) -> Self {
        self.root_certificates.push(pem.into());
        self.require_tls = true;
        self
    }

    /// Presents this client certificate chain and key (PEM files) to the server
    /// (implies TLS).
    pub fn client_certificate(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.client_certificate = Some((cert.into(), key.into()));
        self.require_tls = true;
        self
    }

    /// Uses this rustls configuration for TLS (implies TLS; overrides the PEM files).
    pub fn tls_config(mut self, config: Arc<async_nats::rustls::ClientConfig>) -> Self {
        self.tls_config = Some(config);
        self.require_tls = true;
        self
    }

    /// Allows a server that is not on a loopback address without TLS: anyone on the
    /// network can then read and forge the calls.
    pub fn allow_plaintext_network(mut self) -> Self {
        self.plaintext_network = true;
        self
    }

    /// How long connecting may take.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Connects to the NATS server of `url` (`nats://HOST:PORT`, `tls://HOST:PORT`; a path
    /// after it is ignored). The client reconnects by itself, for ever, when the server
    /// goes away; calls made meanwhile wait or end at their deadlines.
    ///
    /// # Errors
    ///
    /// [`ConnectError::InvalidUrl`], [`ConnectError::PlaintextNetwork`],
    /// [`ConnectError::Credentials`] or [`ConnectError::Connect`].
    pub async fn connect(&self, url: &str) -> Result<async_nats::Client, ConnectError> {
        let parsed = crate::NatsUrl::parse(url)?;
        let tls = self.require_tls || parsed.tls;
        if !tls && !self.plaintext_network && !parsed.is_loopback() {
            return Err(ConnectError::PlaintextNetwork {
                server: parsed.server.clone(),
            });
        }
        let mut options = match &self.auth {
            Auth::None => async_nats::ConnectOptions::new(),
            Auth::UserPassword(u, p) => {
                async_nats::ConnectOptions::with_user_and_password(u.clone(), p.clone())
            }
            Auth::Token(t) => async_nats::ConnectOptions::with_token(t.clone()),
            Auth::NKey(seed) => async_nats::ConnectOptions::with_nkey(seed.clone()),
            Auth::CredentialsFile(path) => async_nats::ConnectOptions::with_credentials_file(path)
                .await
                .map_err(|source| ConnectError::Credentials {
                    path: path.clone(),
                    source,
                })?,
        };
        let max_delay = self.max_reconnect_delay;
        options = options
            .reconnect_delay_callback(move |attempts| reconnect_delay(attempts, max_delay))
            .connection_timeout(self.connect_timeout)
            // Calls carry their own deadlines.
            .request_timeout(None)
            .require_tls(tls);
        if let Some(name) = &self.name {
            options = options.name(name);
        }
        for pem in &self.root_certificates {
            options = options.add_root_certificates(pem.clone());
        }
        if let Some((cert, key)) = &self.client_certificate {
            options = options.add_client_certificate(cert.clone(), key.clone());
        }
        if let Some(config) = &self.tls_config {
            options = options.tls_client_config((**config).clone());
        }
        let scheme = if parsed.tls { "tls" } else { "nats" };
        options
            .connect(format!("{scheme}://{}", parsed.server))
            .await
            .map_err(|source| ConnectError::Connect {
                server: parsed.server.clone(),
                source,
            })
    }
}

/// The pause before reconnect attempt `attempts` (1 for the first): none, then 10 ms
/// doubling, at most `max`.
fn reconnect_delay(attempts: usize, max: Duration) -> Duration {
    match attempts {
        0 | 1 => Duration::ZERO,
        n => Duration::from_millis(10u64 << (n - 2).min(16)).min(max),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconnects_start_at_once_double_and_stop_growing_at_the_maximum() {
        let max = Duration::from_millis(500);
        assert_eq!(reconnect_delay(1, max), Duration::ZERO);
        assert_eq!(reconnect_delay(2, max), Duration::from_millis(10));
        assert_eq!(reconnect_delay(3, max), Duration::from_millis(20));
        assert_eq!(reconnect_delay(8, max), max);
        assert_eq!(reconnect_delay(usize::MAX, max), max);
    }
}
