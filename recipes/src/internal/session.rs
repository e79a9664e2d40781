//! Going on after a session expired: the one place the recipes open a new session. Recipes that
//! outlive their session (an election that rejoins, a cache that rebuilds, a node kept in place)
//! ask [`renewed`] for the expired session's successor, and every recipe that was on the same
//! session gets the same one: an application with a cache and a group member on one client
//! still has one session after an expiry, not one per recipe.

use std::time::Duration;

use conclave_core::Client;

use crate::error::Result;

/// The session that replaced this one, kept with the expired session's handle state.
#[derive(Debug, Default)]
struct Successor(tokio::sync::OnceCell<Client>);

/// The successor of `expired` (whose session has expired): a new session built like it
/// ([`Client::reconnect_new_session`]), opened by the first caller and shared with every later
/// one. A failed attempt is not remembered: the next caller tries again.
///
/// The successor is kept as long as a handle of the expired session is (a user's clone of the
/// old client keeps the new session open until it is dropped).
///
/// # Errors
/// What opening the new session failed with (no server reachable within the connect timeout).
pub(crate) async fn renewed(expired: &Client) -> Result<Client> {
    let successor = expired.local::<Successor>();
    let client = successor.0.get_or_try_init(|| expired.reconnect_new_session()).await?;
    Ok(client.clone())
}

/// The first pause before trying again to open the successor, doubled after each failure up
/// to [`RENEW_MAX_DELAY`].
const RENEW_FIRST_DELAY: Duration = Duration::from_millis(100);
/// The longest pause between two attempts.
const RENEW_MAX_DELAY: Duration = Duration::from_secs(5);

/// [`renewed`], tried again with back-off while the successor cannot be opened (no server
/// answers): for the recipes' background tasks, which go on until they are dropped. `what`
/// names the recipe in the log.
pub(crate) async fn renewed_patiently(expired: &Client, what: &str) -> Client {
    let mut delay = RENEW_FIRST_DELAY;
    loop {
        match renewed(expired).await {
            Ok(client) => return client,
            Err(e) => {
                tracing::warn!(recipe = what, error = %e, retry_in = ?delay, "cannot open a new session yet");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(RENEW_MAX_DELAY);
            }
        }
    }
}
