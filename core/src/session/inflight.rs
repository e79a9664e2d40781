//! The in-flight bookkeeping of one connection: the requests written to it, in order, awaiting
//! their replies. ZooKeeper answers a session in order, so each reply belongs to the oldest
//! request still waiting; its xid is checked, and a mismatch is a protocol failure that breaks
//! the connection. A reply to a read older than what the client has seen is stale. A reply
//! settles the watch its request announced, or ends the local watchers a `removeWatches` removed.
//! Auth requests are answered out of band (xid -4), in order among themselves. When the
//! connection breaks, what was in flight fails with `ConnectionLoss`, except guaranteed requests,
//! which are handed back to be sent again after the reconnect.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

use super::watches::Registry;
use super::{Effect, Outcome, Outgoing, RawReply, Responder, SessionState, Shared, WatchKind};
use crate::error::{Error, Result};
use crate::proto::{frame, ErrorCode, OpCode, Reader, ReplyHeader, Request};

/// A request written to the current connection, awaiting its reply.
#[derive(Debug)]
struct Written {
    xid: i32,
    op: OpCode,
    responder: Option<Responder>,
    effect: Effect,
    /// For reads: the highest zxid seen when the request was written; a reply from an older
    /// state is stale.
    floor: i64,
    /// The frame of a guaranteed request, to send again after a reconnect.
    resend: Option<Bytes>,
    /// Whether this is such a repeat.
    resent: bool,
}

/// The requests and auth packets written to the current connection, oldest first.
#[derive(Debug, Default)]
pub(super) struct InFlight {
    requests: VecDeque<Written>,
    /// Responders of auth packets (`None` for credentials replayed after a reconnect).
    auths: VecDeque<Option<Responder>>,
}

impl InFlight {
    /// Appends `out`'s frame to `wbuf` and waits for its reply; a read's reply must not be older
    /// than `floor`.
    pub(super) fn write(&mut self, wbuf: &mut BytesMut, out: Outgoing, floor: i64) {
        wbuf.extend_from_slice(&out.frame);
        self.requests.push_back(Written {
            xid: out.xid,
            op: out.op,
            responder: out.responder,
            effect: out.effect,
            floor,
            resend: out.guaranteed.then_some(out.frame),
            resent: out.resent,
        });
    }

    /// Appends a request of the session's own, whose reply nobody waits for.
    pub(super) fn write_internal(&mut self, wbuf: &mut BytesMut, xid: i32, req: &Request) {
        frame::write_request_frame(wbuf, xid, req);
        self.requests.push_back(Written {
            xid,
            op: req.op_code(),
            responder: None,
            effect: Effect::None,
            floor: 0,
            resend: None,
            resent: false,
        });
    }

    /// Appends an auth packet's frame (already encoded with the auth xid).
    pub(super) fn write_auth(&mut self, wbuf: &mut BytesMut, frame: &[u8], responder: Option<Responder>) {
        wbuf.extend_from_slice(frame);
        self.auths.push_back(responder);
    }

    /// Handles a reply with the auth xid: it answers the oldest auth packet. A refusal ends the
    /// session.
    pub(super) fn on_auth_reply(&mut self, err: i32) -> std::result::Result<(), Outcome> {
        let result = if err == 0 { Ok(RawReply { body: Bytes::new() }) } else { Err(Error::from_code(err)) };
        if let Some(tx) = self.auths.pop_front().flatten() {
            let _ = tx.send(result);
        }
        if err == ErrorCode::AuthFailed.as_i32() {
            return Err(Outcome::Terminal(SessionState::AuthFailed));
        }
        Ok(())
    }

    /// Handles the reply `h` (an ordinary xid) with body `body`: it must answer the oldest
    /// request in flight. Raises the session's highest zxid seen, settles the request's watch
    /// effect in `registry` and hands the result over. Returns how serving ends if the reply
    /// ends it: an xid out of order breaks the connection, a `closeSession` reply or
    /// `SESSIONMOVED` ends the session.
    pub(super) fn on_reply(
        &mut self,
        h: ReplyHeader,
        body: Reader,
        registry: &mut Registry,
        shared: &Shared,
    ) -> std::result::Result<(), Outcome> {
        let Some(p) = self.requests.pop_front() else {
            return Err(Outcome::Lost(format!("reply with xid {} but no request in flight", h.xid)));
        };
        if p.xid != h.xid {
            let expected = p.xid;
            self.requests.push_front(p);
            return Err(Outcome::Lost(format!("xid out of order: expected {expected}, got {}", h.xid)));
        }
        let stale = p.op.is_read() && h.zxid > 0 && h.zxid < p.floor;
        if h.zxid > 0 {
            shared.last_zxid.raise(h.zxid);
        }
        // A repeated guaranteed delete that finds the node gone may have been the one that
        // deleted it: the end it was sent for is reached.
        let done_before = p.resent && p.op == OpCode::Delete && h.err == ErrorCode::NoNode.as_i32();
        let result = if stale {
            Err(Error::StaleRead { zxid: h.zxid, floor: p.floor })
        } else if h.err == 0 || done_before {
            Ok(RawReply { body: body.into_rest() })
        } else {
            Err(Error::from_code(h.err))
        };
        settle(registry, p.op, p.effect, &result);
        if let Some(tx) = p.responder {
            let _ = tx.send(result);
        }
        if p.op == OpCode::CloseSession {
            return Err(Outcome::Terminal(SessionState::Closed));
        }
        if h.err == ErrorCode::SessionMoved.as_i32() {
            // The server says another connection owns the session now.
            return Err(Outcome::Terminal(SessionState::Moved));
        }
        Ok(())
    }

    /// The connection broke: everything in flight fails with `ConnectionLoss` (its outcome is
    /// unknown) and its watch announcements are withdrawn, except guaranteed requests, which
    /// are returned, oldest first, to be sent again after the reconnect.
    pub(super) fn connection_lost(&mut self, registry: &mut Registry) -> Vec<Outgoing> {
        let mut again = Vec::new();
        for p in self.requests.drain(..) {
            if let Some(frame) = p.resend {
                again.push(Outgoing {
                    xid: p.xid,
                    op: p.op,
                    frame,
                    responder: p.responder,
                    effect: p.effect,
                    deadline: None,
                    guaranteed: true,
                    resent: true,
                });
                continue;
            }
            if let Effect::Watch(reg) = p.effect {
                registry.settle(reg.kind, &reg.path, None);
            }
            if let Some(tx) = p.responder {
                let _ = tx.send(Err(Error::ConnectionLoss));
            }
        }
        for tx in self.auths.drain(..).flatten() {
            let _ = tx.send(Err(Error::ConnectionLoss));
        }
        again
    }

    /// The session is over: everything in flight fails with `err`.
    pub(super) fn fail_all(&mut self, err: &Error) {
        let responders = self.requests.drain(..).filter_map(|p| p.responder);
        for tx in responders.chain(self.auths.drain(..).flatten()) {
            let _ = tx.send(Err(err.clone()));
        }
    }
}

/// Applies the effect of a request that got `result`: registers the watcher it announced
/// (an `exists` that found no node leaves an exists watch) or withdraws the announcement; after
/// a successful `removeWatches`, ends the matching local watchers.
fn settle(registry: &mut Registry, op: OpCode, effect: Effect, result: &Result<RawReply>) {
    match effect {
        Effect::Watch(mut reg) => {
            let announced = reg.kind;
            let path = reg.path.clone();
            let keep = match result {
                Ok(_) => true,
                Err(Error::NoNode) if op == OpCode::Exists => {
                    reg.kind = WatchKind::Exist;
                    true
                }
                Err(_) => false,
            };
            registry.settle(announced, &path, keep.then_some(reg));
        }
        Effect::RemoveLocal { path, watcher_type, client_path } if result.is_ok() => {
            registry.remove_local(&path, watcher_type, client_path)
        }
        Effect::RemoveLocal { .. } | Effect::None => {}
    }
}
