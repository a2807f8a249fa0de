//! How the commands reach a NATS server (`nats://` URLs and names): the options shared by
//! `remoting` and `mailslot`.

use std::path::PathBuf;

use clap::Args;

/// How to reach a NATS server: credentials and TLS.
#[derive(Debug, Args)]
pub(crate) struct NatsArgs {
    /// The NATS user (with --nats-password).
    #[arg(long, requires = "nats_password")]
    nats_user: Option<String>,
    /// The NATS password.
    #[arg(long, requires = "nats_user")]
    nats_password: Option<String>,
    /// A NATS token.
    #[arg(long, conflicts_with_all = ["nats_user", "nats_creds", "nats_nkey"])]
    nats_token: Option<String>,
    /// A NATS credentials (.creds) file.
    #[arg(long, conflicts_with_all = ["nats_user", "nats_nkey"])]
    nats_creds: Option<PathBuf>,
    /// A NATS nkey seed (`SU…`).
    #[arg(long, conflicts_with = "nats_user")]
    nats_nkey: Option<String>,
    /// Speak TLS to the NATS server, trusting the CA certificates in this PEM file.
    #[arg(long)]
    nats_ca: Option<PathBuf>,
    /// Allow a NATS server that is not on loopback without TLS.
    #[arg(long)]
    nats_allow_plaintext_network: bool,
}

impl NatsArgs {
    pub(crate) fn options(&self) -> procwire_nats::NatsOptions {
        let mut o = procwire_nats::NatsOptions::new().name("procwire");
        if let (Some(u), Some(p)) = (&self.nats_user, &self.nats_password) {
            o = o.user_password(u, p);
        }
        if let Some(t) = &self.nats_token {
            o = o.token(t);
        }
        if let Some(c) = &self.nats_creds {
            o = o.credentials_file(c);
        }
        if let Some(n) = &self.nats_nkey {
            o = o.nkey(n);
        }
        if let Some(ca) = &self.nats_ca {
            o = o.root_certificates(ca);
        }
        if self.nats_allow_plaintext_network {
            o = o.allow_plaintext_network();
        }
        o
    }
}

/// Whether `url` names something on a NATS server (`nats://` or `tls://`).
pub(crate) fn is_nats(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    lower.starts_with("nats://") || lower.starts_with("tls://")
}
