//! `conclave serve`: runs the embedded ZooKeeper-compatible server in the foreground.
//!
//! Once the server accepts connections it prints one line to stdout, `listening on ADDR:PORT`
//! (with `--json`, `{"listening":"ADDR:PORT"}`), and flushes it, so scripts and tests can start
//! it with `--port 0` and read the port chosen by the system. Logs go to stderr through
//! `tracing` (filter with `RUST_LOG`, default `info`). Ctrl-C or SIGTERM shuts the server down
//! gracefully and the command exits 0; the state lives in memory only and is gone after that.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use clap::Args;
use conclave_core::server::Server;
use serde_json::json;

use crate::exit::CliError;
use crate::output::Output;
use crate::signal::Shutdown;

/// Arguments of `serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// TCP port to listen on; 0 picks a free port (printed on stdout).
    #[arg(long, default_value_t = 2181)]
    pub port: u16,
    /// Address to listen on.
    #[arg(long, value_name = "IP", default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    pub bind: IpAddr,
    /// The server's tick in ms: sessions may ask for timeouts of 2 to 20 ticks.
    #[arg(long, value_name = "MS", default_value_t = 2000, value_parser = clap::value_parser!(u64).range(1..=3_600_000u64))]
    pub tick_ms: u64,
    /// The four-letter words answered on the client port, comma-separated, or * for all
    /// (ZooKeeper's 4lw.commands.whitelist; srvr is always answered). Others get "... is not
    /// executed because it is not in the whitelist". dump, cons, wchc and wchp show session
    /// ids, watched paths and ephemeral paths to anyone who can connect: enable them on trusted
    /// networks only.
    #[arg(long, value_name = "WORDS", default_value = "srvr")]
    pub four_letter_words: String,
    /// Most connections from one IP address, 0 for no limit (ZooKeeper's maxClientCnxns).
    /// Further connections are closed at once and logged.
    #[arg(long, value_name = "N", default_value_t = 60)]
    pub max_client_cnxns: usize,
    /// Most connections open at once from all addresses, 0 for no limit (ZooKeeper's
    /// zookeeper.maxCnxns). Further connections are closed at once and logged.
    #[arg(long, value_name = "N", default_value_t = 1024)]
    pub max_cnxns: usize,
    /// The largest reply the server builds, in bytes: a getChildren, getEphemerals, whoAmI or
    /// multiRead reply that would be larger is answered MARSHALLINGERROR instead.
    #[arg(long, value_name = "BYTES", default_value_t = conclave_core::server::DEFAULT_MAX_REPLY)]
    pub max_reply_bytes: usize,
}

/// Runs the server until a signal arrives.
pub async fn run(args: &ServeArgs, out: &mut Output) -> Result<(), CliError> {
    let context = format!("serve on {}", std::net::SocketAddr::new(args.bind, args.port));
    // Before announcing the address, so that a signal sent right after it is caught.
    let mut shutdown = Shutdown::install()?;
    let handle = Server::builder()
        .bind(args.bind)
        .port(args.port)
        .tick_time(Duration::from_millis(args.tick_ms))
        .max_connections_per_ip(args.max_client_cnxns)
        .max_connections(args.max_cnxns)
        .max_reply_bytes(args.max_reply_bytes)
        .four_letter_words(&args.four_letter_words)
        .map_err(|e| CliError::zk(context.as_str(), &e))?
        .start()
        .await
        .map_err(|e| CliError::zk(context.as_str(), &e))?;
    let address = match handle.local_addr() {
        Some(addr) => addr.to_string(),
        None => handle.connect_string(),
    };
    let announced = out.line(&format!("listening on {address}"), &json!({ "listening": address }));
    if announced.is_ok() {
        let signal = shutdown.requested().await;
        tracing::info!(signal, "shutting down");
    }
    handle.shutdown().await;
    announced
}
