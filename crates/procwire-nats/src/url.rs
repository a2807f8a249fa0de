//! NATS URLs: `nats://HOST:PORT[/App[/Service]]`, or `tls://…` for TLS.

use crate::options::ConnectError;

/// A parsed NATS URL.
///
/// # Examples
///
/// ```
/// use procwire_nats::NatsUrl;
/// let url = NatsUrl::parse("nats://127.0.0.1:4222/App/Counter")?;
/// assert_eq!(url.server, "127.0.0.1:4222");
/// assert_eq!(url.path, "App/Counter");
/// # Ok::<(), procwire_nats::ConnectError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatsUrl {
    /// `host:port`.
    pub server: String,
    /// `tls://`: TLS is required.
    pub tls: bool,
    /// What follows the server, without the slashes around it (may be empty).
    pub path: String,
}

impl NatsUrl {
    /// Parses `nats://HOST:PORT/…` or `tls://HOST:PORT/…`.
    ///
    /// # Errors
    ///
    /// [`ConnectError::InvalidUrl`].
    pub fn parse(url: &str) -> Result<NatsUrl, ConnectError> {
        let bad = |reason: &str| ConnectError::InvalidUrl {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| bad("expected nats://HOST:PORT/…"))?;
        let tls = match scheme.to_ascii_lowercase().as_str() {
            "nats" => false,
            "tls" => true,
            other => return Err(bad(&format!("unknown scheme `{other}`; use nats or tls"))),
        };
        let (server, path) = rest.split_once('/').unwrap_or((rest, ""));
        if server.is_empty() {
            return Err(bad("no host"));
        }
        if server.contains('@') {
            return Err(bad(
                "put credentials in NatsOptions (user_password, token, nkey, credentials_file), not in the URL",
            ));
        }
        let port = server.rsplit_once(':').map(|(_, p)| p);
        if port.is_none_or(|p| p.parse::<u16>().is_err()) {
            return Err(bad("no port, e.g. nats://127.0.0.1:4222/…"));
        }
        Ok(NatsUrl {
            server: server.to_owned(),
            tls,
            path: path.trim_matches('/').to_owned(),
        })
    }

    /// The URL without its path.
    pub fn base(&self) -> String {
        let scheme = if self.tls { "tls" } else { "nats" };
        format!("{scheme}://{}", self.server)
    }

    /// The host, without brackets around an IPv6 address.
    pub fn host(&self) -> &str {
        self.server
            .rsplit_once(':')
            .map_or(self.server.as_str(), |(h, _)| h)
            .trim_start_matches('[')
            .trim_end_matches(']')
    }

    /// Whether the host is this machine's loopback (`localhost`, `127.0.0.0/8`, `::1`).
    pub fn is_loopback(&self) -> bool {
        let host = self.host();
        host.eq_ignore_ascii_case("localhost")
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_server_and_path() {
        let u = NatsUrl::parse("nats://localhost:4222/App/Svc/").unwrap();
        assert_eq!(
            (u.server.as_str(), u.path.as_str(), u.tls),
            ("localhost:4222", "App/Svc", false)
        );
        assert!(u.is_loopback());
        let u = NatsUrl::parse("tls://[::1]:4222").unwrap();
        assert!(u.tls && u.is_loopback() && u.path.is_empty());
        assert!(!NatsUrl::parse("nats://10.0.0.1:4222")
            .unwrap()
            .is_loopback());
        assert!(NatsUrl::parse("nats://host/App").is_err());
        assert!(NatsUrl::parse("nats://u:p@host:4222").is_err());
        assert!(NatsUrl::parse("tcp://host:1/App").is_err());
    }
}
