//! The connection flags shared by every client command (`--connect`, `--session-timeout-ms`,
//! `--connect-timeout-ms`, `--auth`) and opening a session with them. The connect timeout is
//! short by default (3 s) so that a command pointed at a dead server fails quickly with exit
//! code 8 instead of hanging.

use std::fmt;
use std::time::Duration;

use clap::Args;
use conclave_core::Client;

use crate::exit::CliError;

/// The environment variable that supplies the default `--connect`.
pub const CONNECT_ENV: &str = "CONCLAVE_CONNECT";

/// Where `--connect` points when neither the flag nor [`CONNECT_ENV`] is set.
pub const DEFAULT_CONNECT: &str = "127.0.0.1:2181";

/// Connection flags (global: they may appear before or after the subcommand).
#[derive(Debug, Args)]
pub struct ConnectOpts {
    /// Servers to use, `host:port[,host:port...][/chroot]`.
    /// [default: $CONCLAVE_CONNECT, else 127.0.0.1:2181]
    #[arg(long, global = true, value_name = "HOSTS")]
    pub connect: Option<String>,

    /// Session timeout to request, in ms (the server clamps it to its bounds). It also bounds
    /// how long a one-shot command waits for its reply.
    #[arg(
        long,
        global = true,
        value_name = "MS",
        default_value_t = 10_000,
        value_parser = clap::value_parser!(u64).range(1..=i32::MAX as u64)
    )]
    pub session_timeout_ms: u64,

    /// How long to keep trying the servers before failing with exit code 8, in ms.
    #[arg(
        long,
        global = true,
        value_name = "MS",
        default_value_t = 3_000,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub connect_timeout_ms: u64,

    /// Credentials to add to the session, `scheme:credential` (e.g. `digest:user:password`);
    /// repeatable.
    #[arg(long, global = true, value_name = "SCHEME:CREDENTIAL", value_parser = parse_auth)]
    pub auth: Vec<Auth>,
}

impl ConnectOpts {
    /// The connect string in effect: the flag, else a non-empty [`CONNECT_ENV`], else
    /// [`DEFAULT_CONNECT`].
    pub fn target(&self) -> String {
        match &self.connect {
            Some(s) => s.clone(),
            None => std::env::var(CONNECT_ENV).ok().filter(|s| !s.trim().is_empty()).unwrap_or(DEFAULT_CONNECT.into()),
        }
    }

    /// The session timeout.
    pub fn session_timeout(&self) -> Duration {
        Duration::from_millis(self.session_timeout_ms)
    }

    /// Opens a session (and adds the credentials).
    ///
    /// # Errors
    /// Class 8 when no server answers within the connect timeout, 7 when the server refuses the
    /// credentials, 9 for a malformed connect string.
    pub async fn connect(&self) -> Result<Client, CliError> {
        let target = self.target();
        // A reply that takes longer than the session timeout is not coming: the request fails
        // with OPERATIONTIMEOUT (exit code 8) instead of waiting for a reconnect forever.
        let mut builder = Client::builder()
            .session_timeout(self.session_timeout())
            .request_timeout(self.session_timeout())
            .connect_timeout(Duration::from_millis(self.connect_timeout_ms));
        for auth in &self.auth {
            builder = builder.auth(auth.scheme.as_str(), auth.credential.as_bytes());
        }
        builder.connect(&target).await.map_err(|e| CliError::connect(&target, &e))
    }
}

/// One `--auth scheme:credential`.
#[derive(Clone, PartialEq, Eq)]
pub struct Auth {
    /// The scheme (`digest`, ...).
    pub scheme: String,
    /// The scheme-specific credential (`user:password` for `digest`).
    pub credential: String,
}

impl fmt::Debug for Auth {
    /// Never shows the credential.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auth").field("scheme", &self.scheme).field("credential", &"<redacted>").finish()
    }
}

/// Parses `scheme:credential`, splitting at the first `:`.
fn parse_auth(s: &str) -> Result<Auth, String> {
    match s.split_once(':') {
        Some((scheme, credential)) if !scheme.is_empty() => {
            Ok(Auth { scheme: scheme.to_string(), credential: credential.to_string() })
        }
        _ => Err("expected scheme:credential, e.g. digest:user:password".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_splits_at_the_first_colon() {
        let a = parse_auth("digest:user:pw").expect("valid");
        assert_eq!((a.scheme.as_str(), a.credential.as_str()), ("digest", "user:pw"));
        assert!(parse_auth("digest").is_err());
        assert!(parse_auth(":x").is_err());
        assert!(!format!("{a:?}").contains("pw"));
    }
}
