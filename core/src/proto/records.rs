//! Fixed-shape records shared by many operations: headers, the handshake, `Stat`, ACLs, watch
//! events, `SetWatches`, auth packets and `whoAmI` entries.

use bytes::{BufMut, Bytes, BytesMut};

use super::codes::{EventType, KeeperState, Perms};
use super::jute::{write_bool, write_buffer, write_string, write_string_vec, Decode, DecodeError, Encode, Reader};

/// Every request after the handshake starts with this 8-byte header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestHeader {
    /// Request id, echoed in the reply. See [`super::xid`] for the reserved values.
    pub xid: i32,
    /// The raw op code; kept as an `int` so that unknown ones can be answered `UNIMPLEMENTED`.
    pub op: i32,
}

impl RequestHeader {
    /// Encoded size.
    pub const LEN: usize = 8;
}

impl Encode for RequestHeader {
    fn encode(&self, buf: &mut BytesMut) {
        buf.put_i32(self.xid);
        buf.put_i32(self.op);
    }
}

impl Decode for RequestHeader {
    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(RequestHeader { xid: r.read_i32()?, op: r.read_i32()? })
    }
}

/// Every reply and notification after the handshake starts with this 16-byte header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyHeader {
    /// The request's xid, or -1 for a notification, -2 for a ping reply.
    pub xid: i32,
    /// For a write, its zxid; for a read, the server's last processed zxid.
    pub zxid: i64,
    /// Error code (0 = OK). The body follows only when it is 0.
    pub err: i32,
}

impl ReplyHeader {
    /// Encoded size.
    pub const LEN: usize = 16;
}

impl Encode for ReplyHeader {
    fn encode(&self, buf: &mut BytesMut) {
        buf.put_i32(self.xid);
        buf.put_i64(self.zxid);
        buf.put_i32(self.err);
    }
}

impl Decode for ReplyHeader {
    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(ReplyHeader { xid: r.read_i32()?, zxid: r.read_i64()?, err: r.read_i32()? })
    }
}

/// The first frame a client sends; it has no request header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectRequest {
    /// Always 0.
    pub protocol_version: i32,
    /// Highest zxid the client has seen; a server behind it refuses the connection.
    pub last_zxid_seen: i64,
    /// Requested session timeout in milliseconds.
    pub timeout: i32,
    /// 0 for a new session, otherwise the session to resume.
    pub session_id: i64,
    /// The session password (16 zero bytes for a new session).
    pub passwd: Bytes,
    /// The optional trailing byte: whether a read-only server is acceptable. `None` means the
    /// client is an old one that does not send it (the server then omits it from its answer).
    pub read_only: Option<bool>,
}

impl Encode for ConnectRequest {
    fn encode(&self, buf: &mut BytesMut) {
        buf.put_i32(self.protocol_version);
        buf.put_i64(self.last_zxid_seen);
        buf.put_i32(self.timeout);
        buf.put_i64(self.session_id);
        write_buffer(buf, Some(&self.passwd));
        if let Some(ro) = self.read_only {
            write_bool(buf, ro);
        }
    }
}

impl Decode for ConnectRequest {
    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(ConnectRequest {
            protocol_version: r.read_i32()?,
            last_zxid_seen: r.read_i64()?,
            timeout: r.read_i32()?,
            session_id: r.read_i64()?,
            passwd: r.read_bytes()?,
            read_only: if r.is_empty() { None } else { Some(r.read_bool()?) },
        })
    }
}

/// The server's answer to [`ConnectRequest`]; it has no reply header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectResponse {
    /// Always 0.
    pub protocol_version: i32,
    /// Negotiated session timeout in ms; **0 means the session is invalid or expired**.
    pub timeout: i32,
    /// The session id (0 when invalid).
    pub session_id: i64,
    /// The session password.
    pub passwd: Bytes,
    /// Whether the server is read-only; present only when the request carried the flag.
    pub read_only: Option<bool>,
}

impl Encode for ConnectResponse {
    fn encode(&self, buf: &mut BytesMut) {
        buf.put_i32(self.protocol_version);
        buf.put_i32(self.timeout);
        buf.put_i64(self.session_id);
        write_buffer(buf, Some(&self.passwd));
        if let Some(ro) = self.read_only {
            write_bool(buf, ro);
        }
    }
}

impl Decode for ConnectResponse {
    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(ConnectResponse {
            protocol_version: r.read_i32()?,
            timeout: r.read_i32()?,
            session_id: r.read_i64()?,
            passwd: r.read_bytes()?,
            read_only: if r.is_empty() { None } else { Some(r.read_bool()?) },
        })
    }
}

/// A node's metadata (68 bytes on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Stat {
    /// zxid of the create.
    pub czxid: i64,
    /// zxid of the last data change.
    pub mzxid: i64,
    /// Create time, ms since the epoch.
    pub ctime: i64,
    /// Last data change time, ms since the epoch.
    pub mtime: i64,
    /// Number of data changes.
    pub version: i32,
    /// Number of child creates plus child deletes.
    pub cversion: i32,
    /// Number of ACL changes.
    pub aversion: i32,
    /// Owning session of an ephemeral node, otherwise 0.
    pub ephemeral_owner: i64,
    /// Length of the data in bytes.
    pub data_length: i32,
    /// Number of direct children.
    pub num_children: i32,
    /// zxid of the last child create or delete.
    pub pzxid: i64,
}

impl Stat {
    /// Encoded size.
    pub const LEN: usize = 68;
}

impl Encode for Stat {
    fn encode(&self, buf: &mut BytesMut) {
        buf.put_i64(self.czxid);
        buf.put_i64(self.mzxid);
        buf.put_i64(self.ctime);
        buf.put_i64(self.mtime);
        buf.put_i32(self.version);
        buf.put_i32(self.cversion);
        buf.put_i32(self.aversion);
        buf.put_i64(self.ephemeral_owner);
        buf.put_i32(self.data_length);
        buf.put_i32(self.num_children);
        buf.put_i64(self.pzxid);
    }
}

impl Decode for Stat {
    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(Stat {
            czxid: r.read_i64()?,
            mzxid: r.read_i64()?,
            ctime: r.read_i64()?,
            mtime: r.read_i64()?,
            version: r.read_i32()?,
            cversion: r.read_i32()?,
            aversion: r.read_i32()?,
            ephemeral_owner: r.read_i64()?,
            data_length: r.read_i32()?,
            num_children: r.read_i32()?,
            pzxid: r.read_i64()?,
        })
    }
}

/// An identity under an auth scheme, e.g. `world:anyone` or `digest:bob:<hash>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Id {
    /// The scheme: `world`, `auth`, `digest`, `ip`, ...
    pub scheme: String,
    /// The scheme-specific id.
    pub id: String,
}

impl Id {
    /// An id from its parts.
    pub fn new(scheme: impl Into<String>, id: impl Into<String>) -> Self {
        Id { scheme: scheme.into(), id: id.into() }
    }

    /// `world:anyone`: every client.
    pub fn anyone() -> Self {
        Id::new("world", "anyone")
    }

    /// `auth:`: at ACL time, every authenticated identity of the caller.
    pub fn authenticated() -> Self {
        Id::new("auth", "")
    }

    /// The `digest` id that `addAuth("digest", "user:password")` yields:
    /// `digest:user:base64(sha1("user:password"))`.
    pub fn digest(user: &str, password: &str) -> Self {
        Id::new("digest", digest_id(&format!("{user}:{password}")))
    }
}

/// The digest scheme's id for a credential `user:password`: `user:base64(sha1(credential))`
/// (the user is the part before the first `:`).
pub fn digest_id(credential: &str) -> String {
    use base64::Engine;
    use sha1::Digest;
    let user = credential.split(':').next().unwrap_or_default();
    let hash = sha1::Sha1::digest(credential.as_bytes());
    format!("{user}:{}", base64::engine::general_purpose::STANDARD.encode(hash))
}

impl std::fmt::Display for Id {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.scheme, self.id)
    }
}

impl Encode for Id {
    fn encode(&self, buf: &mut BytesMut) {
        write_string(buf, &self.scheme);
        write_string(buf, &self.id);
    }
}

impl Decode for Id {
    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(Id { scheme: r.read_string()?, id: r.read_string()? })
    }
}

/// One ACL entry: which permissions an identity has.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Acl {
    /// Permission bits.
    pub perms: Perms,
    /// Who they are granted to.
    pub id: Id,
}

impl Acl {
    /// An entry from its parts.
    pub fn new(perms: Perms, id: Id) -> Self {
        Acl { perms, id }
    }

    /// `OPEN_ACL_UNSAFE`: everything for everyone.
    pub fn open_unsafe() -> Vec<Acl> {
        vec![Acl::new(Perms::ALL, Id::anyone())]
    }

    /// `CREATOR_ALL_ACL`: everything for the creator's authenticated identities.
    pub fn creator_all() -> Vec<Acl> {
        vec![Acl::new(Perms::ALL, Id::authenticated())]
    }

    /// `READ_ACL_UNSAFE`: read for everyone.
    pub fn read_unsafe() -> Vec<Acl> {
        vec![Acl::new(Perms::READ, Id::anyone())]
    }

    /// Minimum encoded size, used to bound vector counts before allocating.
    pub(crate) const MIN_LEN: usize = 12;
}

impl Encode for Acl {
    fn encode(&self, buf: &mut BytesMut) {
        buf.put_i32(self.perms.0);
        self.id.encode(buf);
    }
}

impl Decode for Acl {
    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(Acl { perms: Perms(r.read_i32()?), id: Id::decode(r)? })
    }
}

/// Writes an ACL list.
pub fn write_acl_vec(buf: &mut BytesMut, acl: &[Acl]) {
    buf.put_i32(super::jute::len_i32(acl.len()));
    for a in acl {
        a.encode(buf);
    }
}

/// Reads an ACL list; `None` is the null list (which the server answers with `INVALIDACL`).
pub fn read_acl_vec(r: &mut Reader) -> Result<Option<Vec<Acl>>, DecodeError> {
    r.read_opt_vec(Acl::MIN_LEN, Acl::decode)
}

/// A watch notification (sent after `ReplyHeader { xid: -1, .. }`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatcherEvent {
    /// What happened; an [`EventType`] value.
    pub event_type: i32,
    /// The session state; servers always send `SyncConnected` (3).
    pub state: i32,
    /// The server path the event is about.
    pub path: String,
}

impl WatcherEvent {
    /// A server-side event for `path`.
    pub fn new(event_type: EventType, path: impl Into<String>) -> Self {
        WatcherEvent { event_type: event_type.as_i32(), state: KeeperState::SyncConnected.as_i32(), path: path.into() }
    }
}

impl Encode for WatcherEvent {
    fn encode(&self, buf: &mut BytesMut) {
        buf.put_i32(self.event_type);
        buf.put_i32(self.state);
        write_string(buf, &self.path);
    }
}

impl Decode for WatcherEvent {
    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(WatcherEvent { event_type: r.read_i32()?, state: r.read_i32()?, path: r.read_string()? })
    }
}

/// The watches a client re-registers after reconnecting (`SetWatches` / `SetWatches2`). The two
/// persistent lists exist only in `SetWatches2`; `SetWatches` requires them to be empty.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SetWatches {
    /// The client's last seen zxid: changes after it fire at once.
    pub relative_zxid: i64,
    /// Paths with data watches.
    pub data_watches: Vec<String>,
    /// Paths with exists watches (on nodes that did not exist).
    pub exist_watches: Vec<String>,
    /// Paths with child watches.
    pub child_watches: Vec<String>,
    /// Paths with persistent watches (`SetWatches2` only).
    pub persistent_watches: Vec<String>,
    /// Paths with persistent recursive watches (`SetWatches2` only).
    pub persistent_recursive_watches: Vec<String>,
}

impl SetWatches {
    /// Writes the record; `v2` selects the `SetWatches2` layout.
    pub fn encode_as(&self, buf: &mut BytesMut, v2: bool) {
        buf.put_i64(self.relative_zxid);
        write_string_vec(buf, &self.data_watches);
        write_string_vec(buf, &self.exist_watches);
        write_string_vec(buf, &self.child_watches);
        if v2 {
            write_string_vec(buf, &self.persistent_watches);
            write_string_vec(buf, &self.persistent_recursive_watches);
        }
    }

    /// Reads the record; `v2` selects the `SetWatches2` layout.
    pub fn decode_as(r: &mut Reader, v2: bool) -> Result<Self, DecodeError> {
        let mut sw = SetWatches {
            relative_zxid: r.read_i64()?,
            data_watches: r.read_string_vec()?,
            exist_watches: r.read_string_vec()?,
            child_watches: r.read_string_vec()?,
            ..SetWatches::default()
        };
        if v2 {
            sw.persistent_watches = r.read_string_vec()?;
            sw.persistent_recursive_watches = r.read_string_vec()?;
        }
        Ok(sw)
    }

    /// Whether the record names no path at all.
    pub fn is_empty(&self) -> bool {
        self.data_watches.is_empty()
            && self.exist_watches.is_empty()
            && self.child_watches.is_empty()
            && self.persistent_watches.is_empty()
            && self.persistent_recursive_watches.is_empty()
    }
}

/// Credentials for `addAuth` (op 100, xid -4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthPacket {
    /// Always 0.
    pub auth_type: i32,
    /// The scheme, e.g. `digest`.
    pub scheme: String,
    /// The credential; for `digest`, the UTF-8 bytes of `user:password`.
    pub auth: Bytes,
}

impl Encode for AuthPacket {
    fn encode(&self, buf: &mut BytesMut) {
        buf.put_i32(self.auth_type);
        write_string(buf, &self.scheme);
        write_buffer(buf, Some(&self.auth));
    }
}

impl Decode for AuthPacket {
    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(AuthPacket { auth_type: r.read_i32()?, scheme: r.read_string()?, auth: r.read_bytes()? })
    }
}

/// One authenticated identity of a connection, as `whoAmI` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientInfo {
    /// The scheme, e.g. `ip` or `digest`.
    pub auth_scheme: String,
    /// The user: the address for `ip`, the user name for `digest`.
    pub user: String,
}

impl Encode for ClientInfo {
    fn encode(&self, buf: &mut BytesMut) {
        write_string(buf, &self.auth_scheme);
        write_string(buf, &self.user);
    }
}

impl Decode for ClientInfo {
    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(ClientInfo { auth_scheme: r.read_string()?, user: r.read_string()? })
    }
}

/// The header before each op of a multi request or response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MultiHeader {
    /// The op code of the op (or of its result); -1 for an error result and for the terminator.
    pub op: i32,
    /// True only on the terminator.
    pub done: bool,
    /// In a response: the op's error code (0 on success); -1 in requests and on the terminator.
    pub err: i32,
}

impl MultiHeader {
    /// The header that ends a multi request or response.
    pub const END: MultiHeader = MultiHeader { op: -1, done: true, err: -1 };
}

impl Encode for MultiHeader {
    fn encode(&self, buf: &mut BytesMut) {
        buf.put_i32(self.op);
        write_bool(buf, self.done);
        buf.put_i32(self.err);
    }
}

impl Decode for MultiHeader {
    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(MultiHeader { op: r.read_i32()?, done: r.read_bool()?, err: r.read_i32()? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(x: &impl Encode) -> Vec<u8> {
        let mut buf = BytesMut::new();
        x.encode(&mut buf);
        buf.to_vec()
    }

    #[test]
    fn connect_request_matches_reference_bytes() {
        // Section 14 of the protocol reference: new session, 30 000 ms, read-only false.
        let req = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            timeout: 30_000,
            session_id: 0,
            passwd: Bytes::from_static(&[0; 16]),
            read_only: Some(false),
        };
        let bytes = enc(&req);
        assert_eq!(bytes.len(), 45);
        assert_eq!(&bytes[12..16], &[0, 0, 0x75, 0x30]);
        assert_eq!(ConnectRequest::decode_bytes(Bytes::from(bytes)).unwrap(), req);
        // Without the trailing byte the flag is absent, not false.
        let old = ConnectRequest { read_only: None, ..req };
        assert_eq!(enc(&old).len(), 44);
        assert_eq!(ConnectRequest::decode_bytes(Bytes::from(enc(&old))).unwrap().read_only, None);
    }

    #[test]
    fn digest_matches_zookeeper() {
        assert_eq!(digest_id("bob:secret"), "bob:fyVmFCwVbTJYrznoSu1koqYEYF0=");
        assert_eq!(Id::digest("super", "admin").id, "super:xQJmxLMiHGwaqBvst5y6rkB6HQs=");
    }

    #[test]
    fn fixed_sizes() {
        assert_eq!(enc(&Stat::default()).len(), Stat::LEN);
        assert_eq!(enc(&ReplyHeader { xid: 1, zxid: 2, err: 0 }).len(), ReplyHeader::LEN);
        assert_eq!(enc(&MultiHeader::END), vec![0xff, 0xff, 0xff, 0xff, 1, 0xff, 0xff, 0xff, 0xff]);
    }

    #[test]
    fn notification_matches_reference_bytes() {
        let ev = WatcherEvent::new(EventType::NodeDataChanged, "/a");
        assert_eq!(enc(&ev), vec![0, 0, 0, 3, 0, 0, 0, 3, 0, 0, 0, 2, b'/', b'a']);
    }

    #[test]
    fn set_watches_v1_omits_persistent_lists() {
        let sw = SetWatches { relative_zxid: 9, data_watches: vec!["/a".into()], ..Default::default() };
        let mut v1 = BytesMut::new();
        sw.encode_as(&mut v1, false);
        let mut v2 = BytesMut::new();
        sw.encode_as(&mut v2, true);
        assert_eq!(v2.len(), v1.len() + 8);
        assert_eq!(SetWatches::decode_as(&mut Reader::new(v2.freeze()), true).unwrap(), sw);
    }
}
