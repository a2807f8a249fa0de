//! Remoting URLs: `tcp://host:port/App/Service`, `http://host:port/App/Service`,
//! `pipe://Name/App/Service`.

use std::fmt;

use crate::error::RemotingError;

/// A channel scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `tcp://host:port`
    Tcp,
    /// `http://host:port`
    Http,
    /// `pipe://Name`
    Pipe,
}

/// A parsed remoting URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteUrl {
    /// The channel.
    pub scheme: Scheme,
    /// `host:port` or the pipe name.
    pub authority: String,
    /// `App/Service` (may be just `App`, or empty).
    pub path: String,
}

impl RemoteUrl {
    /// Parses a URL.
    ///
    /// # Errors
    ///
    /// [`RemotingError::InvalidUrl`].
    ///
    /// # Examples
    ///
    /// ```
    /// use procwire_remoting::{RemoteUrl, Scheme};
    /// let url = RemoteUrl::parse("tcp://localhost:6100/RemotingService/SingletonService")?;
    /// assert_eq!(url.scheme, Scheme::Tcp);
    /// assert_eq!(url.path, "RemotingService/SingletonService");
    /// # Ok::<(), procwire_remoting::RemotingError>(())
    /// ```
    pub fn parse(url: &str) -> Result<RemoteUrl, RemotingError> {
        let bad = |reason: &str| RemotingError::InvalidUrl {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| bad("expected scheme://…, e.g. tcp://localhost:6100/App/Service"))?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "tcp" => Scheme::Tcp,
            "http" => Scheme::Http,
            "pipe" => Scheme::Pipe,
            other => {
                return Err(bad(&format!(
                    "unknown scheme `{other}`; use tcp, http or pipe"
                )))
            }
        };
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        if authority.is_empty() {
            return Err(bad("no host or pipe name"));
        }
        if scheme != Scheme::Pipe && !authority.contains(':') {
            return Err(bad("no port, e.g. tcp://localhost:6100/…"));
        }
        Ok(RemoteUrl {
            scheme,
            authority: authority.to_owned(),
            path: path.trim_end_matches('/').to_owned(),
        })
    }

    /// The URL without its path: the connection part.
    pub fn base(&self) -> String {
        let scheme = match self.scheme {
            Scheme::Tcp => "tcp",
            Scheme::Http => "http",
            Scheme::Pipe => "pipe",
        };
        format!("{scheme}://{}", self.authority)
    }
}

impl fmt::Display for RemoteUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.base(), self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_schemes() {
        let u = RemoteUrl::parse("pipe://Remoting/App/Svc").unwrap();
        assert_eq!(
            (u.scheme, u.authority.as_str(), u.path.as_str()),
            (Scheme::Pipe, "Remoting", "App/Svc")
        );
        let u = RemoteUrl::parse("http://127.0.0.1:80/App/").unwrap();
        assert_eq!(u.path, "App");
        assert!(RemoteUrl::parse("ftp://x/y").is_err());
        assert!(RemoteUrl::parse("tcp://host/App").is_err());
        assert!(RemoteUrl::parse("nothing").is_err());
    }
}
