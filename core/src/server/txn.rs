//! The write path: every check of create / delete / setData / setACL / check in ZooKeeper's
//! order (`PrepRequestProcessor`), then the change applied to the tree with its watch events.
//!
//! A write is first *prepared* against the tree plus an overlay of the changes made by earlier
//! ops of the same multi (ZooKeeper's outstanding `ChangeRecord`s): later ops see earlier ones,
//! two sequential creates under one parent get consecutive numbers, and a failed multi leaves
//! nothing behind (no node, no consumed sequence number, no event). Only when every op is
//! prepared are they applied, in order, firing their watches as they go. Every write consumes a
//! zxid, failed ones and empty multis included.
//!
//! 3.8.0 particulars kept here: inside a multi, `create2` results are downgraded to plain
//! create results (path only; ZOOKEEPER-4026), while `createContainer` and `createTTL` results
//! carry the stat; a version check is `current + 1` with no special case for -1; a create
//! through opcode 19 is a container whatever its flags say (a sequential flag still adds the
//! suffix). Deliberate divergence: a `createTTL` whose flags are not a TTL mode is BADARGUMENTS;
//! 3.8.0 accepts it when the TTL is negative and then crashes applying it.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;

use super::acl;
use super::sessions::ConnId;
use super::state::State;
use super::tree::{NewNode, Owner, MAX_TTL};
use super::Now;
use crate::proto::{
    Acl, CreateMode, CreateRequest, ErrorCode, MultiResult, OpCode, Perms, ReplyHeader, Request, Response, Stat,
};

/// The paths `delete` refuses outright (`DataTree.isSpecialPath`).
const SPECIAL_PATHS: [&str; 4] = ["/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config"];

/// A node as the checks see it (ZooKeeper's `ChangeRecord`).
#[derive(Debug, Clone)]
struct Record {
    version: i32,
    aversion: i32,
    cversion: i32,
    num_children: i32,
    owner: i64,
    acl: Arc<[Acl]>,
}

/// Pending changes of the current multi; a lone write does not track them.
#[derive(Debug, Default)]
struct Overlay {
    track: bool,
    map: HashMap<String, Option<Record>>,
}

impl Overlay {
    fn set(&mut self, path: &str, record: Option<Record>) {
        if self.track {
            self.map.insert(path.to_string(), record);
        }
    }
}

/// A prepared change.
#[derive(Debug)]
enum Txn {
    Create { op: OpCode, node: NewNode },
    Delete { path: String },
    SetData { path: String, data: Option<Bytes>, version: i32 },
    SetAcl { path: String, acl: Arc<[Acl]>, aversion: i32 },
    Check,
}

/// What applying a change produced.
enum Applied {
    Created { op: OpCode, path: String, stat: Stat },
    Deleted,
    Stat(Stat),
    Checked,
}

/// `checkAndIncVersion` as in 3.8.0: -1 matches anything; the result is `current + 1`.
fn next_version(current: i32, expected: i32) -> Result<i32, ErrorCode> {
    if expected != -1 && expected != current {
        return Err(ErrorCode::BadVersion);
    }
    Ok(current.wrapping_add(1))
}

fn bad_path(path: &str) -> bool {
    crate::path::validate_path(path).is_err()
}

impl State {
    fn record(&self, ov: &Overlay, path: &str) -> Option<Record> {
        if let Some(r) = ov.map.get(path) {
            return r.clone();
        }
        self.tree.get(path).map(|n| Record {
            version: n.version,
            aversion: n.aversion,
            cversion: n.cversion,
            num_children: n.num_children(),
            owner: n.owner,
            acl: n.acl.clone(),
        })
    }

    fn allowed(&self, conn: ConnId, acl: &[Acl], perm: Perms) -> Result<(), ErrorCode> {
        match self.conns.get(&conn) {
            Some(c) if acl::check(acl, perm, &c.auth) => Ok(()),
            Some(_) => Err(ErrorCode::NoAuth),
            None => Err(ErrorCode::SessionExpired),
        }
    }

    fn fixed_acl(&self, conn: ConnId, acl: &[Acl]) -> Result<Arc<[Acl]>, ErrorCode> {
        let c = self.conns.get(&conn).ok_or(ErrorCode::SessionExpired)?;
        let fixed = acl::fixup_acl(acl, &c.auth)?;
        Ok(if fixed[..] == self.open_acl[..] { self.open_acl.clone() } else { Arc::from(fixed) })
    }

    fn prep(&self, ov: &mut Overlay, conn: ConnId, session: i64, req: Request) -> Result<Txn, ErrorCode> {
        match req {
            Request::Create(c) => self.prep_create(ov, conn, session, OpCode::Create, c),
            Request::Create2(c) => self.prep_create(ov, conn, session, OpCode::Create2, c),
            Request::CreateContainer(c) => self.prep_create(ov, conn, session, OpCode::CreateContainer, c),
            Request::CreateTtl(c) => self.prep_create(ov, conn, session, OpCode::CreateTtl, c),
            Request::Delete { path, version } => {
                let slash = path.rfind('/');
                if slash.is_none() || path.contains('\0') || SPECIAL_PATHS.contains(&path.as_str()) {
                    return Err(ErrorCode::BadArguments);
                }
                let parent_path = &path[..slash.unwrap_or(0)];
                let mut parent = self.record(ov, parent_path).ok_or(ErrorCode::NoNode)?;
                self.allowed(conn, &parent.acl, Perms::DELETE)?;
                let node = self.record(ov, &path).ok_or(ErrorCode::NoNode)?;
                next_version(node.version, version)?;
                if node.num_children > 0 {
                    return Err(ErrorCode::NotEmpty);
                }
                parent.num_children -= 1;
                ov.set(parent_path, Some(parent));
                ov.set(&path, None);
                Ok(Txn::Delete { path })
            }
            Request::SetData { path, data, version } => {
                if bad_path(&path) {
                    return Err(ErrorCode::BadArguments);
                }
                let mut node = self.record(ov, &path).ok_or(ErrorCode::NoNode)?;
                self.allowed(conn, &node.acl, Perms::WRITE)?;
                let version = next_version(node.version, version)?;
                node.version = version;
                ov.set(&path, Some(node));
                Ok(Txn::SetData { path, data, version })
            }
            Request::SetAcl { path, acl, version } => {
                if bad_path(&path) {
                    return Err(ErrorCode::BadArguments);
                }
                let acl = self.fixed_acl(conn, &acl)?;
                let mut node = self.record(ov, &path).ok_or(ErrorCode::NoNode)?;
                self.allowed(conn, &node.acl, Perms::ADMIN)?;
                let aversion = next_version(node.aversion, version)?;
                node.aversion = aversion;
                node.acl = acl.clone();
                ov.set(&path, Some(node));
                Ok(Txn::SetAcl { path, acl, aversion })
            }
            Request::Check { path, version } => {
                if bad_path(&path) {
                    return Err(ErrorCode::BadArguments);
                }
                let node = self.record(ov, &path).ok_or(ErrorCode::NoNode)?;
                self.allowed(conn, &node.acl, Perms::READ)?;
                next_version(node.version, version)?;
                Ok(Txn::Check)
            }
            _ => Err(ErrorCode::MarshallingError),
        }
    }

    fn prep_create(
        &self,
        ov: &mut Overlay,
        conn: ConnId,
        session: i64,
        op: OpCode,
        req: CreateRequest,
    ) -> Result<Txn, ErrorCode> {
        let mode = CreateMode::from_i32(req.flags).ok_or(ErrorCode::BadArguments)?;
        if mode.is_ttl() && !self.cfg.ttl_enabled {
            return Err(ErrorCode::Unimplemented);
        }
        let ttl = if op == OpCode::CreateTtl { req.ttl } else { -1 };
        if mode.is_ttl() {
            if ttl <= 0 || ttl > MAX_TTL {
                return Err(ErrorCode::BadArguments);
            }
        } else if op == OpCode::CreateTtl {
            return Err(ErrorCode::BadArguments);
        }
        let slash = req.path.rfind('/');
        if slash.is_none() || req.path.contains('\0') {
            return Err(ErrorCode::BadArguments);
        }
        let acl = self.fixed_acl(conn, &req.acl)?;
        let parent_path = &req.path[..slash.unwrap_or(0)];
        let mut parent = self.record(ov, parent_path).ok_or(ErrorCode::NoNode)?;
        self.allowed(conn, &parent.acl, Perms::CREATE)?;
        let path = if mode.is_sequential() { format!("{}{:010}", req.path, parent.cversion) } else { req.path.clone() };
        if bad_path(&path) {
            return Err(ErrorCode::BadArguments);
        }
        if self.record(ov, &path).is_some() {
            return Err(ErrorCode::NodeExists);
        }
        if matches!(Owner::of(parent.owner), Owner::Session(_)) {
            return Err(ErrorCode::NoChildrenForEphemerals);
        }
        let parent_cversion = parent.cversion.wrapping_add(1);
        let owner = match op {
            OpCode::CreateContainer => Owner::Container,
            OpCode::CreateTtl => Owner::Ttl(ttl),
            _ if mode.is_ephemeral() => Owner::Session(session),
            _ => Owner::None,
        };
        parent.num_children += 1;
        parent.cversion = parent_cversion;
        ov.set(parent_path, Some(parent));
        let record =
            Record { version: 0, aversion: 0, cversion: 0, num_children: 0, owner: owner.raw(), acl: acl.clone() };
        ov.set(&path, Some(record));
        Ok(Txn::Create { op, node: NewNode { path, data: req.data, acl, owner, parent_cversion } })
    }

    fn apply(&mut self, txn: Txn, zxid: i64, time: i64) -> Applied {
        match txn {
            Txn::Create { op, node } => {
                let stat = self.apply_create(&node, zxid, time);
                Applied::Created { op, path: node.path, stat }
            }
            Txn::Delete { path } => {
                self.apply_delete(&path, zxid);
                Applied::Deleted
            }
            Txn::SetData { path, data, version } => {
                Applied::Stat(self.apply_set_data(&path, data, version, zxid, time))
            }
            Txn::SetAcl { path, acl, aversion } => Applied::Stat(self.tree.set_acl(&path, acl, aversion)),
            Txn::Check => Applied::Checked,
        }
    }

    /// A single create, delete, setData or setACL.
    pub(crate) fn write(&mut self, now: Now, conn: ConnId, session: i64, xid: i32, req: Request) {
        let zxid = self.next_zxid();
        let mut ov = Overlay::default();
        match self.prep(&mut ov, conn, session, req) {
            Err(e) => self.reply(conn, ReplyHeader { xid, zxid, err: e.as_i32() }, None),
            Ok(txn) => {
                let body = match self.apply(txn, zxid, now.wall) {
                    Applied::Created { op: OpCode::Create, path, .. } => Some(Response::Path(path)),
                    Applied::Created { path, stat, .. } => Some(Response::Created { path, stat }),
                    Applied::Stat(stat) => Some(Response::Stat(stat)),
                    Applied::Deleted | Applied::Checked => None,
                };
                self.reply(conn, ReplyHeader { xid, zxid, err: 0 }, body.as_ref());
            }
        }
    }

    /// `multi`: all or nothing, one zxid, reply header err 0 even on failure.
    pub(crate) fn multi(&mut self, now: Now, conn: ConnId, session: i64, xid: i32, ops: Vec<Request>) {
        let zxid = self.next_zxid();
        let n = ops.len();
        let mut ov = Overlay { track: true, ..Overlay::default() };
        let mut txns = Vec::with_capacity(n);
        let mut failed = None;
        for (i, op) in ops.into_iter().enumerate() {
            match self.prep(&mut ov, conn, session, op) {
                Ok(t) => txns.push(t),
                Err(e) => {
                    failed = Some((i, e));
                    break;
                }
            }
        }
        let results: Vec<MultiResult> = match failed {
            Some((at, err)) => (0..n)
                .map(|i| match i.cmp(&at) {
                    std::cmp::Ordering::Less => MultiResult::error(ErrorCode::Ok),
                    std::cmp::Ordering::Equal => MultiResult::error(err),
                    std::cmp::Ordering::Greater => MultiResult::error(ErrorCode::RuntimeInconsistency),
                })
                .collect(),
            None => txns
                .into_iter()
                .map(|t| match self.apply(t, zxid, now.wall) {
                    Applied::Created { op: OpCode::Create | OpCode::Create2, path, .. } => MultiResult::Create { path },
                    Applied::Created { path, stat, .. } => MultiResult::Create2 { path, stat },
                    Applied::Deleted => MultiResult::Delete,
                    Applied::Stat(stat) => MultiResult::SetData { stat },
                    Applied::Checked => MultiResult::Check,
                })
                .collect(),
        };
        self.reply(conn, ReplyHeader { xid, zxid, err: 0 }, Some(&Response::Multi(results)));
    }
}
