//! Access control: the `world`, `auth`, `digest`, `ip` and `super` schemes, as ZooKeeper 3.8's
//! `DigestAuthenticationProvider`, `IPAuthenticationProvider`, `PrepRequestProcessor.fixupACL`
//! and `ZooKeeperServer.checkACL` implement them.
//!
//! A connection's identities live in an [`AuthIds`] set kept in the same iteration order as the
//! real server's `ConcurrentHashMap`-backed `authInfo`, because `whoAmI` lists them and `auth`
//! ACLs expand to them in that order. As in 3.8.0, `ip` ids and ACL expressions are IPv4 only
//! (`::1` is an invalid ACL id; an IPv6 client's id, `0:0:0:0:0:0:0:1`, matches no `ip` ACL).

use std::net::IpAddr;

use super::jhash::{string_hash, JavaSet};
use crate::proto::{Acl, ErrorCode, Id, Perms};

/// `Id.hashCode()` as jute generates it.
fn id_hash(id: &Id) -> i32 {
    17i32.wrapping_mul(37).wrapping_add(string_hash(&id.scheme)).wrapping_mul(37).wrapping_add(string_hash(&id.id))
}

/// Most identities one connection may hold: real clients add one or two; past this an `auth`
/// request fails (AUTHFAILED, and the connection is closed). ZooKeeper has no limit.
pub(crate) const MAX_AUTH_IDS: usize = 256;

/// The identities a connection has proved, in the real server's `authInfo` order. ACL checks
/// against it cost O(1) per ACL entry whatever the number of ids: digest ids are looked up, `ip`
/// ids and `super` are kept aside.
#[derive(Debug, Clone)]
pub(crate) struct AuthIds {
    set: JavaSet<Id>,
    /// The `ip` ids (the connection's own address, normally the only one).
    ips: Vec<String>,
    /// Whether one of the ids is `super`.
    is_super: bool,
}

impl AuthIds {
    /// The ids of a fresh connection from `ip` (Java's `getHostAddress()` form).
    pub(crate) fn for_ip(ip: &str) -> Self {
        let mut ids = AuthIds { set: JavaSet::concurrent(), ips: Vec::new(), is_super: false };
        ids.add(Id::new("ip", ip));
        ids
    }

    /// Adds an id (a duplicate is ignored, as by a set).
    pub(crate) fn add(&mut self, id: Id) {
        let (scheme, value) = (id.scheme.clone(), id.id.clone());
        if self.set.insert(id_hash(&id), id) {
            match scheme.as_str() {
                "super" => self.is_super = true,
                "ip" => self.ips.push(value),
                _ => {}
            }
        }
    }

    /// Number of ids.
    pub(crate) fn len(&self) -> usize {
        self.set.len()
    }

    /// Whether `id` is one of them.
    fn contains(&self, id: &Id) -> bool {
        self.set.contains(id_hash(id), id)
    }

    /// The ids in `authInfo` iteration order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Id> + '_ {
        self.set.iter()
    }

    /// Whether one of the ids is `super` (which passes every ACL check).
    pub(crate) fn is_super(&self) -> bool {
        self.is_super
    }
}

/// `DigestAuthenticationProvider.generateDigest`: `user:base64(sha1("user:password"))` (the
/// same computation clients use to build digest ACLs).
pub(crate) use crate::proto::records::digest_id as digest;

/// Handles an `auth` packet: on success adds the resulting ids to `ids` and returns true. An
/// unknown scheme, or a null scheme or credential, fails (the caller then answers `AUTHFAILED`
/// and closes the connection). `conn_ip` is the connection's own address, which is what an `ip`
/// auth adds whatever the credential says. `super_digest` is the configured
/// `super:<base64 sha1>` value.
pub(crate) fn authenticate(
    ids: &mut AuthIds,
    scheme: Option<&str>,
    auth: Option<&[u8]>,
    conn_ip: &str,
    super_digest: Option<&str>,
) -> bool {
    let (Some(scheme), Some(auth)) = (scheme, auth) else { return false };
    match scheme {
        "digest" => {
            let credential = String::from_utf8_lossy(auth);
            let id = digest(&credential);
            if super_digest == Some(id.as_str()) {
                ids.add(Id::new("super", ""));
            }
            ids.add(Id::new("digest", id));
            true
        }
        "ip" => {
            ids.add(Id::new("ip", conn_ip));
            true
        }
        _ => false,
    }
}

/// Java's `String.split(":")` piece count (trailing empty pieces dropped).
fn java_split_count(s: &str, sep: char) -> usize {
    let mut pieces: Vec<&str> = s.split(sep).collect();
    if pieces.len() == 1 {
        // No separator: Java returns the input itself, even when it is empty.
        return 1;
    }
    while pieces.last() == Some(&"") {
        pieces.pop();
    }
    pieces.len()
}

/// Parses an IPv4 address the way `IPAuthenticationProvider.v4addr2Bytes` does
/// (`Integer.parseInt` per part, so `+1` and `01` are accepted).
fn v4_bytes(addr: &str) -> Option<[u8; 4]> {
    let parts: Vec<&str> = addr.split('.').collect();
    if parts.len() != 4 {
        return None;
    }
    let mut out = [0u8; 4];
    for (o, p) in out.iter_mut().zip(parts) {
        let v: i32 = p.parse().ok()?;
        *o = u8::try_from(v).ok()?;
    }
    Some(out)
}

/// Splits `a.b.c.d[/bits]` and checks it like `IPAuthenticationProvider.isValid`.
fn ip_expr(expr: &str) -> Option<([u8; 4], u32)> {
    let (addr, bits) = match expr.split_once('/') {
        Some((a, b)) => (a, Some(b)),
        None => (expr, None),
    };
    let bytes = v4_bytes(addr)?;
    let bits = match bits {
        None => 32,
        Some(b) => u32::try_from(b.parse::<i32>().ok()?).ok().filter(|b| *b <= 32)?,
    };
    Some((bytes, bits))
}

fn masked(addr: [u8; 4], bits: u32) -> u32 {
    let v = u32::from_be_bytes(addr);
    if bits == 0 {
        0
    } else {
        v & (u32::MAX << (32 - bits))
    }
}

/// Whether a connection id of scheme `ip` matches the ACL expression (IPv4 prefix match).
fn ip_matches(conn_addr: &str, expr: &str) -> bool {
    let (Some((acl, bits)), Some(remote)) = (ip_expr(expr), v4_bytes(conn_addr)) else { return false };
    masked(acl, bits) == masked(remote, bits)
}

/// Java's `InetAddress.getHostAddress()` text for a peer address: IPv4-mapped IPv6 addresses
/// become IPv4, other IPv6 addresses are eight uncompressed lower-case hex groups.
pub(crate) fn java_host_address(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => v6.segments().iter().map(|s| format!("{s:x}")).collect::<Vec<_>>().join(":"),
        },
    }
}

/// Whether the provider for `scheme` accepts `id` (`isValid`); schemes without a provider
/// (`super`, `sasl`, `x509`, anything unknown) are refused.
fn valid_id(scheme: &str, id: &str) -> bool {
    match scheme {
        "digest" => java_split_count(id, ':') == 2,
        "ip" => ip_expr(id).is_some(),
        _ => false,
    }
}

/// `fixupACL`: removes duplicates, refuses an empty list, keeps `world:anyone`, expands `auth`
/// to every authenticated (`digest`) id of the connection, and validates every other entry. Any
/// failure is `INVALIDACL`.
pub(crate) fn fixup_acl(acl: &[Acl], ids: &AuthIds) -> Result<Vec<Acl>, ErrorCode> {
    let mut unique: Vec<&Acl> = Vec::with_capacity(acl.len());
    for a in acl {
        if !unique.contains(&a) {
            unique.push(a);
        }
    }
    if unique.is_empty() {
        return Err(ErrorCode::InvalidAcl);
    }
    let mut out = Vec::with_capacity(unique.len());
    for a in unique {
        if a.id.scheme == "world" && a.id.id == "anyone" {
            out.push(a.clone());
        } else if a.id.scheme == "auth" {
            let before = out.len();
            for id in ids.iter().filter(|id| id.scheme == "digest") {
                out.push(Acl::new(a.perms, id.clone()));
            }
            if out.len() == before {
                return Err(ErrorCode::InvalidAcl);
            }
        } else if valid_id(&a.id.scheme, &a.id.id) {
            out.push(a.clone());
        } else {
            return Err(ErrorCode::InvalidAcl);
        }
    }
    Ok(out)
}

/// `checkACL`: whether `ids` may perform an operation needing any bit of `perm` on a node with
/// `acl`. An empty ACL and a `super` id allow everything.
pub(crate) fn check(acl: &[Acl], perm: Perms, ids: &AuthIds) -> bool {
    if acl.is_empty() || ids.is_super() {
        return true;
    }
    acl.iter().filter(|a| a.perms.intersects(perm)).any(|a| match a.id.scheme.as_str() {
        "world" => a.id.id == "anyone",
        "digest" => ids.contains(&a.id),
        "ip" => ids.ips.iter().any(|ip| ip_matches(ip, &a.id.id)),
        _ => false,
    })
}

/// Java's `id.replaceAll(":.*", ":x")`: every `:` up to the next line terminator becomes `:x`.
fn redact_digest_id(id: &str) -> String {
    let is_terminator = |c: char| matches!(c, '\n' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}');
    let mut out = String::with_capacity(id.len());
    let mut rest = id;
    while let Some(i) = rest.find(':') {
        out.push_str(&rest[..i]);
        out.push_str(":x");
        rest = &rest[i..];
        let end = rest.find(is_terminator).unwrap_or(rest.len());
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// The ACL as `getACL` shows it to a caller without ADMIN: digest ids become `user:x`.
pub(crate) fn redact(acl: &[Acl]) -> Vec<Acl> {
    acl.iter()
        .map(|a| {
            if a.id.scheme == "digest" {
                Acl::new(a.perms, Id::new("digest", redact_digest_id(&a.id.id)))
            } else {
                a.clone()
            }
        })
        .collect()
}

/// The user `whoAmI` reports for an id: the name before the first `:` for `digest`, the id
/// itself otherwise (the address for `ip`, empty for `super`).
pub(crate) fn user_name(id: &Id) -> String {
    match id.scheme.as_str() {
        "digest" => id.id.split(':').next().unwrap_or_default().to_string(),
        _ => id.id.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acl(perms: i32, scheme: &str, id: &str) -> Acl {
        Acl::new(Perms(perms), Id::new(scheme, id))
    }

    #[test]
    fn digest_matches_reference_values() {
        assert_eq!(digest("bob:secret"), "bob:fyVmFCwVbTJYrznoSu1koqYEYF0=");
        assert_eq!(digest("super:admin"), "super:xQJmxLMiHGwaqBvst5y6rkB6HQs=");
        assert!(digest("nocolon").starts_with("nocolon:"));
    }

    #[test]
    fn who_am_i_order_matches_zookeeper_3_8() {
        // Measured: after `addauth digest alice:x`, `addauth digest zed:y` (and alice again)
        // whoAmI listed digest alice, digest zed, ip 127.0.0.1.
        let mut ids = AuthIds::for_ip("127.0.0.1");
        for c in ["alice:x", "zed:y", "alice:x"] {
            assert!(authenticate(&mut ids, Some("digest"), Some(c.as_bytes()), "127.0.0.1", None));
        }
        let users: Vec<(String, String)> = ids.iter().map(|i| (i.scheme.clone(), user_name(i))).collect();
        assert_eq!(
            users,
            [("digest".into(), "alice".into()), ("digest".into(), "zed".into()), ("ip".into(), "127.0.0.1".into())]
        );
        // And with the super digest: digest super, super "", ip.
        let mut ids = AuthIds::for_ip("127.0.0.1");
        let sup = digest("super:admin");
        assert!(authenticate(&mut ids, Some("digest"), Some(b"super:admin"), "127.0.0.1", Some(&sup)));
        let order: Vec<&str> = ids.iter().map(|i| i.scheme.as_str()).collect();
        assert_eq!(order, ["digest", "super", "ip"]);
        assert!(ids.is_super());
    }

    #[test]
    fn authenticate_refuses_unknown_schemes_and_nulls() {
        let mut ids = AuthIds::for_ip("127.0.0.1");
        assert!(!authenticate(&mut ids, Some("world"), Some(b"anyone"), "127.0.0.1", None));
        assert!(!authenticate(&mut ids, Some("sasl"), Some(b"x"), "127.0.0.1", None));
        assert!(!authenticate(&mut ids, None, Some(b"x"), "127.0.0.1", None));
        assert!(!authenticate(&mut ids, Some("digest"), None, "127.0.0.1", None));
        // `ip` auth adds the connection's own address, whatever the credential.
        assert!(authenticate(&mut ids, Some("ip"), Some(b"1.2.3.4"), "127.0.0.1", None));
        assert_eq!(ids.iter().count(), 1);
    }

    #[test]
    fn acl_validation_matches_zookeeper_3_8() {
        // Measured on 3.8.0 (create with a one-entry ACL).
        let ok = |s: &str, i: &str| fixup_acl(&[acl(31, s, i)], &AuthIds::for_ip("127.0.0.1")).is_ok();
        for (s, i) in
            [("world", "anyone"), ("digest", "a:b"), ("digest", "a:b:"), ("digest", ":b"), ("ip", "127.0.0.0/8")]
        {
            assert!(ok(s, i), "{s}:{i} should be valid");
        }
        for (s, i) in [("ip", "127.0.0.1"), ("ip", "127.0.0.1/32"), ("ip", "127.0.0.1/0")] {
            assert!(ok(s, i), "{s}:{i} should be valid");
        }
        for (s, i) in [
            ("world", "foo"),
            ("digest", "a:"),
            ("digest", "a:b:c"),
            ("digest", "ab"),
            ("digest", "::"),
            ("digest", ""),
            ("super", "x"),
            ("sasl", "x"),
            ("x509", "x"),
            ("foo", "x"),
            ("auth", "x"),
            ("", "anyone"),
            ("ip", "::1"),
            ("ip", "fe80::/64"),
            ("ip", "127.0.0.1/33"),
            ("ip", "127.0.0.1/"),
            ("ip", "127.0.0.1/-1"),
            ("ip", "127.1"),
            ("ip", "256.1.1.1"),
            ("ip", "1.2.3.4.5"),
            ("ip", " 1.2.3.4"),
            ("ip", ""),
        ] {
            assert!(!ok(s, i), "{s}:{i} should be invalid");
        }
        assert_eq!(fixup_acl(&[], &AuthIds::for_ip("1.1.1.1")), Err(ErrorCode::InvalidAcl));
    }

    #[test]
    fn fixup_dedupes_and_expands_auth() {
        let mut ids = AuthIds::for_ip("127.0.0.1");
        let acls = [acl(31, "world", "anyone"), acl(31, "world", "anyone"), acl(1, "world", "anyone")];
        assert_eq!(fixup_acl(&acls, &ids).unwrap(), vec![acl(31, "world", "anyone"), acl(1, "world", "anyone")]);
        // `auth` with only an ip id: INVALIDACL.
        assert_eq!(fixup_acl(&[acl(31, "auth", "")], &ids), Err(ErrorCode::InvalidAcl));
        authenticate(&mut ids, Some("digest"), Some(b"alice:x"), "127.0.0.1", None);
        authenticate(&mut ids, Some("digest"), Some(b"zed:y"), "127.0.0.1", None);
        let fixed = fixup_acl(&[acl(5, "auth", "ignored")], &ids).unwrap();
        assert_eq!(fixed, vec![acl(5, "digest", &digest("alice:x")), acl(5, "digest", &digest("zed:y"))]);
    }

    #[test]
    fn check_acl_rules() {
        let anon = AuthIds::for_ip("127.0.0.1");
        let mut bob = AuthIds::for_ip("10.1.2.3");
        authenticate(&mut bob, Some("digest"), Some(b"bob:secret"), "10.1.2.3", None);
        let bob_acl = [acl(31, "digest", &digest("bob:secret"))];
        assert!(!check(&bob_acl, Perms::READ, &anon));
        assert!(check(&bob_acl, Perms::READ, &bob));
        assert!(check(&[], Perms::ADMIN, &anon), "an empty ACL allows everything");
        let read_only = [acl(1, "world", "anyone")];
        assert!(check(&read_only, Perms::READ, &anon));
        assert!(!check(&read_only, Perms::WRITE, &anon));
        assert!(check(&read_only, Perms::READ | Perms::ADMIN, &anon), "any bit of the mask suffices");
        let net = [acl(31, "ip", "10.0.0.0/8")];
        assert!(check(&net, Perms::READ, &bob));
        assert!(!check(&net, Perms::READ, &anon));
        assert!(check(&[acl(31, "ip", "0.0.0.0/0")], Perms::READ, &anon));
        // A wrong password is simply another identity.
        let mut eve = AuthIds::for_ip("127.0.0.1");
        authenticate(&mut eve, Some("digest"), Some(b"bob:wrong"), "127.0.0.1", None);
        assert!(!check(&bob_acl, Perms::READ, &eve));
        // super passes everything.
        let mut root = AuthIds::for_ip("127.0.0.1");
        let sup = digest("super:admin");
        authenticate(&mut root, Some("digest"), Some(b"super:admin"), "127.0.0.1", Some(&sup));
        assert!(check(&bob_acl, Perms::ADMIN, &root));
    }

    #[test]
    fn redaction_and_host_addresses() {
        let r = redact(&[acl(31, "digest", "bob:abc=="), acl(1, "ip", "1.2.3.4"), acl(1, "digest", "a:b\nc:d")]);
        assert_eq!(r[0].id.id, "bob:x");
        assert_eq!(r[1].id.id, "1.2.3.4");
        assert_eq!(r[2].id.id, "a:x\nc:x");
        assert_eq!(java_host_address("::1".parse().unwrap()), "0:0:0:0:0:0:0:1");
        assert_eq!(java_host_address("::ffff:10.0.0.1".parse().unwrap()), "10.0.0.1");
        assert_eq!(java_host_address("fe80::a:1".parse().unwrap()), "fe80:0:0:0:0:0:a:1");
    }
}
