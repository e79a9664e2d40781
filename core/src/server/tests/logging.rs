//! What the server says at `info`: one line per session opened, closed by its client or
//! expired, and one per connection refused or dropped, with the reason; ordinary ends (a closed
//! session's connection, a four-letter word) stay at `debug`. A small collecting subscriber
//! records the server's events on the test's thread (the runtime is single-threaded, so every
//! server task runs there).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata, Subscriber};

use super::harness::Raw;
use crate::{Client, Server};

/// One event: its message and its fields, as text.
#[derive(Debug, Clone)]
struct Line {
    level: Level,
    message: String,
    fields: BTreeMap<String, String>,
}

impl Line {
    fn field(&self, name: &str) -> &str {
        self.fields.get(name).map_or("", String::as_str)
    }
}

/// A subscriber that keeps every event of the server's modules.
#[derive(Debug, Clone, Default)]
struct Collect(Arc<Mutex<Vec<Line>>>);

impl Collect {
    fn lines(&self) -> Vec<Line> {
        self.0.lock().unwrap().clone()
    }

    /// The `info` lines with `message`.
    fn info(&self, message: &str) -> Vec<Line> {
        self.lines().into_iter().filter(|l| l.level == Level::INFO && l.message == message).collect()
    }
}

struct Fields<'a>(&'a mut Line);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let text = format!("{value:?}");
        if field.name() == "message" {
            self.0.message = text;
        } else {
            self.0.fields.insert(field.name().to_string(), text.trim_matches('"').to_string());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.fields.insert(field.name().to_string(), value.to_string());
    }
}

impl Subscriber for Collect {
    fn register_callsite(&self, _: &'static Metadata<'static>) -> Interest {
        // Ask every time: other tests' threads have no subscriber.
        Interest::sometimes()
    }

    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.target().starts_with("conclave_core::server")
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut line = Line { level: *event.metadata().level(), message: String::new(), fields: BTreeMap::new() };
        event.record(&mut Fields(&mut line));
        self.0.lock().unwrap().push(line);
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

fn hex(id: i64) -> String {
    format!("0x{id:x}")
}

/// Exactly one line with `message` names session `id`.
fn once(lines: &[Line], message: &str, id: i64) -> Line {
    let of: Vec<&Line> = lines.iter().filter(|l| l.field("session") == hex(id)).collect();
    assert_eq!(of.len(), 1, "one {message:?} line for {}: {lines:#?}", hex(id));
    of[0].clone()
}

/// A session closed by its client, a session whose client fell silent (its connection dropped
/// for the session timeout, then the session expired), connections refused for a bad first
/// frame and for an unknown session, and a four-letter word: one `info` line for each event,
/// none for the closed session's connection or the four-letter word.
#[tokio::test(start_paused = true)]
async fn one_info_line_per_session_and_connection_event() {
    let logs = Collect::default();
    let _guard = tracing::subscriber::set_default(logs.clone());
    let server = Server::builder().no_tcp().tick_time(Duration::from_millis(500)).start().await.unwrap();

    let closed = Client::builder().session_timeout(Duration::from_secs(4)).connect_in_process(&server).await.unwrap();
    let closed_id = closed.session_id();
    closed.close().await;

    let (mut silent, resp) = Raw::connect(&server).await;
    let silent_id = resp.session_id;
    // Nothing from the client: after the session timeout (10 s here) the server drops the
    // connection, and the session expires at the next tick.
    let mut rest = Vec::new();
    let eof = tokio::time::timeout(Duration::from_secs(20), silent.io.read_to_end(&mut rest)).await;
    assert!(matches!(eof, Ok(Ok(0))), "dropped: {eof:?}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(server.session_ids().is_empty(), "expired");

    let mut garbage = Raw::open(&server);
    garbage.send(&(-5i32).to_be_bytes()).await;
    assert!(garbage.closed().await);
    let mut stranger = Raw::open(&server);
    assert_eq!(stranger.handshake(0x1234, Bytes::from_static(&[0; 16]), 0, 4000).await.map(|r| r.timeout), Some(0));
    let mut four = server.connect_in_process().unwrap();
    four.write_all(b"srvr").await.unwrap();
    let mut answer = String::new();
    four.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("Zookeeper version: "), "{answer}");
    server.shutdown().await;

    let opened = logs.info("session opened");
    assert_eq!(opened.len(), 2, "{opened:#?}");
    let line = once(&opened, "session opened", closed_id);
    assert_eq!((line.field("timeout_ms"), line.field("peer")), ("4000", "/in-process:1"));
    once(&opened, "session opened", silent_id);

    let by_client = logs.info("session closed by the client");
    assert_eq!(by_client.len(), 1, "{by_client:#?}");
    once(&by_client, "session closed by the client", closed_id);

    let expired = logs.info("session expired");
    assert_eq!(expired.len(), 1, "{expired:#?}");
    let line = once(&expired, "session expired", silent_id);
    assert_eq!(line.field("timeout_ms"), "10000");
    let idle: i64 = line.field("idle_ms").parse().unwrap();
    assert!((10_000..=10_500).contains(&idle), "idle for the session timeout and at most a tick: {idle}");

    let dropped = logs.info("connection dropped");
    assert_eq!(dropped.len(), 1, "only the silent client's connection: {dropped:#?}");
    let line = once(&dropped, "connection dropped", silent_id);
    assert!(line.field("reason").contains("session timeout"), "{line:?}");

    let refused = logs.info("connection refused");
    let reasons: Vec<&str> = refused.iter().map(|l| l.field("reason")).collect();
    assert_eq!(refused.len(), 2, "{refused:#?}");
    assert!(reasons[0].starts_with("bad first frame"), "{reasons:?}");
    assert!(reasons[1].contains("session 0x1234 is unknown"), "{reasons:?}");

    let quiet: Vec<Line> = logs.lines().into_iter().filter(|l| l.message == "connection closed").collect();
    assert_eq!(quiet.len(), 2, "the closed session's connection and the four-letter word: {quiet:#?}");
    assert!(quiet.iter().all(|l| l.level == Level::DEBUG));
}

/// A TCP connection over the per-address cap is refused with one `info` line saying so.
#[tokio::test]
async fn a_connection_over_the_per_address_cap_is_refused_once() {
    let logs = Collect::default();
    let _guard = tracing::subscriber::set_default(logs.clone());
    let server = Server::builder().max_connections_per_ip(1).start().await.unwrap();
    let addr = server.local_addr().unwrap();
    let first = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut second = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), second.read_to_end(&mut rest)).await;
    let refused = logs.info("connection refused");
    assert_eq!(refused.len(), 1, "{refused:#?}");
    assert!(refused[0].field("reason").contains("1 connections from this address"), "{refused:?}");
    assert_eq!(refused[0].field("peer"), format!("/127.0.0.1:{}", second.local_addr().unwrap().port()));
    drop(first);
    server.shutdown().await;
}
