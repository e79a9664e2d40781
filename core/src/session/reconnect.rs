//! Connecting and reconnecting the session: trying the servers round-robin with back-off until
//! one accepts the session (or a limit passes), queueing the commands that arrive meanwhile, and
//! priming a new connection: credentials replayed, watches re-registered with `SetWatches`, then
//! the guaranteed requests that were in flight on the lost connection and the requests queued
//! while disconnected, in that order.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::time::Instant;

use super::connect::{self, AttemptError, Connection};
use super::task::Session;
use super::{Command, Effect, Outcome, Outgoing, Responder, SessionState};
use crate::error::{Error, Result};
use crate::proto::{frame, xid, AuthPacket, ConnectRequest, Request};

/// How much path text one `SetWatches` request carries at most (the Java client's figure).
const SET_WATCHES_BATCH: usize = 128 * 1024;

/// How long connection attempts may go on.
#[derive(Debug, Clone, Copy)]
enum Limit {
    /// Until then, and then give up (the first connection).
    GiveUpAt(Instant),
    /// Until then, and then the session is known to be expired (client-side expiry).
    ExpireAt(Instant),
    /// Until a server answers (or the session ends otherwise).
    Forever,
}

/// A command received while disconnected, to carry out after the reconnect.
#[derive(Debug)]
pub(super) enum Queued {
    Request(Outgoing),
    Auth { packet: AuthPacket, frame: Bytes, responder: Responder },
}

impl Queued {
    /// Where the command's outcome goes.
    pub(super) fn into_responder(self) -> Option<Responder> {
        match self {
            Queued::Request(out) => out.responder,
            Queued::Auth { responder, .. } => Some(responder),
        }
    }
}

impl Session {
    /// The first connection of the session (a new one, or the one to resume).
    pub(super) async fn first_connection(&mut self, deadline: Instant) -> Result<Connection> {
        match self.connect_until(Limit::GiveUpAt(deadline)).await {
            Ok(conn) => {
                self.connected(&conn);
                Ok(conn)
            }
            Err(Outcome::Lost(why)) => Err(Error::Connect(why)),
            Err(Outcome::Terminal(state)) => Err(state.terminal_error().unwrap_or(Error::Closed)),
        }
    }

    /// Adopts a connection that completed its handshake.
    pub(super) fn connected(&mut self, conn: &Connection) {
        self.shared.adopt(conn);
        self.last_heard = Instant::now();
        let state = if conn.response.read_only == Some(true) {
            SessionState::ConnectedReadOnly
        } else {
            SessionState::Connected
        };
        self.shared.state.set(state);
    }

    /// Fails what was in flight on the lost connection; watches stay registered locally and are
    /// re-registered after the reconnect. Guaranteed requests are queued again, ahead of what
    /// was queued meanwhile, to be sent after the reconnect.
    pub(super) fn connection_lost(&mut self) {
        self.shared.set_server(None);
        self.shared.state.set(SessionState::Disconnected);
        self.wbuf.clear();
        let again = self.inflight.connection_lost(&mut self.registry);
        for out in again.into_iter().rev() {
            self.queued.push_front(Queued::Request(out));
        }
    }

    /// Reconnects to the same session, queueing commands meanwhile. Returns the terminal state
    /// if the session ended instead. With client-side expiry, a session that has not heard from
    /// any server for 4/3 of its timeout is expired on every server by then: give up on it.
    pub(super) async fn reconnect(&mut self) -> std::result::Result<Connection, SessionState> {
        let limit = if self.config.client_side_expiry {
            Limit::ExpireAt(self.last_heard + self.shared.negotiated_timeout() * 4 / 3)
        } else {
            Limit::Forever
        };
        match self.connect_until(limit).await {
            Ok(conn) => {
                self.prime();
                Ok(conn)
            }
            Err(Outcome::Terminal(state)) => Err(state),
            // Only `GiveUpAt` ends in `Lost`.
            Err(Outcome::Lost(_)) => Err(SessionState::Closed),
        }
    }

    /// After a reconnect: replay credentials, re-register watches, then send what was queued
    /// (except requests whose callers have stopped waiting).
    fn prime(&mut self) {
        for packet in &self.auths {
            let mut auth = BytesMut::new();
            frame::write_request_frame(&mut auth, xid::AUTH, &Request::Auth(packet.clone()));
            self.inflight.write_auth(&mut self.wbuf, &auth, None);
        }
        let last_zxid = self.shared.last_zxid();
        for sw in self.registry.set_watches(last_zxid, SET_WATCHES_BATCH) {
            let v2 = !sw.persistent_watches.is_empty() || !sw.persistent_recursive_watches.is_empty();
            self.write_internal(if v2 { Request::SetWatches2(sw) } else { Request::SetWatches(sw) });
        }
        let now = Instant::now();
        while let Some(q) = self.queued.pop_front() {
            match q {
                Queued::Request(out) if out.deadline.is_some_and(|d| d <= now) => {
                    if let Effect::Watch(reg) = &out.effect {
                        self.registry.settle(reg.kind, &reg.path, None);
                    }
                    if let Some(tx) = out.responder {
                        let _ = tx.send(Err(Error::OperationTimeout));
                    }
                }
                // The watch expectation was recorded when the request was queued.
                Queued::Request(out) => self.write_request(out),
                Queued::Auth { packet, frame, responder } => self.write_auth(packet, frame, responder),
            }
        }
    }

    /// Tries the servers round-robin until one accepts the session or the limit passes. While
    /// waiting, commands are queued (or end the session).
    async fn connect_until(&mut self, limit: Limit) -> std::result::Result<Connection, Outcome> {
        let hosts = self.config.endpoints.len().max(1);
        let mut failures_in_row = 0u32;
        let mut last_error = String::from("no server tried");
        let remaining = |last_error: &str| {
            let now = Instant::now();
            match limit {
                Limit::GiveUpAt(d) if now >= d => Err(Outcome::Lost(last_error.to_string())),
                Limit::ExpireAt(d) if now >= d => Err(Outcome::Terminal(SessionState::Expired)),
                Limit::GiveUpAt(d) | Limit::ExpireAt(d) => Ok(d - now),
                Limit::Forever => Ok(Duration::MAX),
            }
        };
        loop {
            // A full cycle without success: back off (exponential, capped at 1 s, with jitter).
            if failures_in_row > 0 && (failures_in_row as usize).is_multiple_of(hosts) {
                let round = (failures_in_row as usize / hosts).min(7) as u32;
                let pause = Duration::from_millis(10 << round).min(Duration::from_secs(1));
                let pause = crate::random::upper_half(pause).min(remaining(&last_error)?);
                self.wait_queueing(Instant::now() + pause).await?;
            }
            let limit = remaining(&last_error)?.min(self.attempt_limit());
            let i = self.next_host;
            self.next_host = (self.next_host + 1) % hosts;
            let request = ConnectRequest {
                protocol_version: 0,
                last_zxid_seen: self.shared.last_zxid(),
                timeout: self.config.session_timeout.as_millis().min(i32::MAX as u128) as i32,
                session_id: self.shared.session_id(),
                passwd: self.shared.password(),
                read_only: Some(self.config.read_only),
            };
            let endpoints = self.config.endpoints.clone();
            let max_frame = self.config.max_reply_frame;
            let attempt = connect::attempt(&endpoints, i, &request, max_frame, limit);
            tokio::pin!(attempt);
            let result = loop {
                tokio::select! {
                    r = &mut attempt => break r,
                    cmd = self.rx.recv() => self.queue_command(cmd)?,
                }
            };
            match result {
                Ok(conn) => return Ok(conn),
                Err(AttemptError::Expired) => return Err(Outcome::Terminal(SessionState::Expired)),
                Err(AttemptError::Failed(why)) => {
                    tracing::debug!(reason = %why, "connection attempt failed");
                    last_error = why;
                    failures_in_row += 1;
                }
            }
        }
    }

    /// One attempt may take a fair share of the session timeout (as the Java client's
    /// `connectTimeout = sessionTimeout / hostCount`), but never less than a second.
    fn attempt_limit(&self) -> Duration {
        let base = if self.shared.state.get() == SessionState::Connecting {
            self.config.session_timeout
        } else {
            self.shared.negotiated_timeout()
        };
        (base / self.config.endpoints.len().max(1) as u32).max(Duration::from_secs(1))
    }

    /// Sleeps until `until`, queueing commands that arrive meanwhile.
    async fn wait_queueing(&mut self, until: Instant) -> std::result::Result<(), Outcome> {
        let sleep = tokio::time::sleep_until(until);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                () = &mut sleep => return Ok(()),
                cmd = self.rx.recv() => self.queue_command(cmd)?,
            }
        }
    }

    /// Handles a command while no connection is up.
    fn queue_command(&mut self, cmd: Option<Command>) -> std::result::Result<(), Outcome> {
        match cmd {
            // Nobody can reach this session any more, or it was asked to close: without a
            // connection closeSession cannot be sent, so the server expires the session later.
            None => Err(Outcome::Terminal(SessionState::Closed)),
            Some(Command::Close(done)) => {
                self.close_waiters.push(done);
                Err(Outcome::Terminal(SessionState::Closed))
            }
            Some(Command::Detach(done)) => {
                self.detach_waiters.push(done);
                Err(Outcome::Terminal(SessionState::Moved))
            }
            Some(Command::Unwatch(id)) => {
                // Not re-registered after the reconnect, so nothing to remove on the server.
                self.registry.unwatch(id);
                Ok(())
            }
            Some(Command::Request(out)) if self.config.fail_fast && !out.guaranteed => {
                if let Some(tx) = out.responder {
                    let _ = tx.send(Err(Error::ConnectionLoss));
                }
                Ok(())
            }
            Some(Command::Request(mut out)) => {
                self.announce(&mut out);
                self.queued.push_back(Queued::Request(out));
                Ok(())
            }
            Some(Command::Auth { packet, frame, responder }) => {
                self.queued.push_back(Queued::Auth { packet, frame, responder });
                Ok(())
            }
        }
    }
}
