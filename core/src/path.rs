//! Znode paths: ZooKeeper's validation rules, parent/name splitting, chroot mapping and the
//! parsing of sequence suffixes. Pure functions, shared by the client and the embedded server.

use crate::error::{Error, Result};

/// Checks `path` against ZooKeeper's `PathUtils.validatePath` rules: absolute, no trailing `/`
/// (except the root), no empty, `.` or `..` component, and no character that Java's UTF-16 check
/// rejects (NUL, controls U+0001–U+001F and U+007F–U+009F, U+D800–U+F8FF, U+FFF0–U+FFFF, and every
/// character above U+FFFF, which Java sees as surrogates).
pub fn validate_path(path: &str) -> Result<()> {
    let bad = |reason| Err(Error::InvalidPath { path: path.to_string(), reason });
    if path.is_empty() {
        return bad("path must not be empty");
    }
    if !path.starts_with('/') {
        return bad("path must start with /");
    }
    if path.len() == 1 {
        return Ok(());
    }
    if path.ends_with('/') {
        return bad("path must not end with /");
    }
    for c in path.chars() {
        if let Some(reason) = invalid_char(c) {
            return bad(reason);
        }
    }
    for component in path[1..].split('/') {
        match component {
            "" => return bad("empty node name (//)"),
            "." | ".." => return bad("relative path component (. or ..)"),
            _ => {}
        }
    }
    Ok(())
}

/// Checks the path of a sequential create: the server appends digits, so ZooKeeper validates
/// `path + "1"` (a trailing `/` is therefore allowed: the name is then only digits).
pub fn validate_sequential_path(path: &str) -> Result<()> {
    validate_path(&format!("{path}1")).map_err(|e| match e {
        Error::InvalidPath { reason, .. } => Error::InvalidPath { path: path.to_string(), reason },
        other => other,
    })
}

fn invalid_char(c: char) -> Option<&'static str> {
    match c {
        '\0' => Some("null character"),
        '\u{1}'..='\u{1f}' | '\u{7f}'..='\u{9f}' => Some("control character"),
        '\u{e000}'..='\u{f8ff}' => Some("private-use character"),
        '\u{fff0}'..='\u{ffff}' => Some("reserved character (U+FFF0..U+FFFF)"),
        c if c as u32 > 0xffff => Some("character outside the Basic Multilingual Plane"),
        _ => None,
    }
}

/// The parent of an absolute path (`/` for top-level nodes); `None` for the root.
pub fn parent(path: &str) -> Option<&str> {
    if path == "/" {
        return None;
    }
    match path.rfind('/') {
        Some(0) => Some("/"),
        Some(i) => Some(&path[..i]),
        None => None,
    }
}

/// The proper ancestors of `path` below the root, top down: `/a/b/c` gives `/a`, `/a/b`.
pub fn ancestors(path: &str) -> Vec<&str> {
    let mut chain = Vec::new();
    let mut at = parent(path);
    while let Some(p) = at.filter(|p| *p != "/") {
        chain.push(p);
        at = parent(p);
    }
    chain.reverse();
    chain
}

/// The last component of a path (`""` for the root).
pub fn name(path: &str) -> &str {
    match path.rfind('/') {
        Some(i) => &path[i + 1..],
        None => path,
    }
}

/// Joins a parent path and a child name.
pub fn join(parent: &str, child: &str) -> String {
    if parent == "/" {
        format!("/{child}")
    } else {
        format!("{parent}/{child}")
    }
}

/// Parses the sequence number a sequential create appended, as Java's `%010d` printed it: ten
/// digits, or for the negative values the signed 32-bit counter reaches past 2 147 483 647, a
/// `-` and nine digits (`-000000042`) or, below -999 999 999, a `-` and ten (`-2147483648`).
/// Ten trailing digits that fit an `i32` are read as a positive number: a name ending in `-` plus
/// ten such digits is ambiguous, and the positive reading is the one that holds for 2^31 creates.
pub fn sequence_number(name: &str) -> Option<i32> {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let tail = |n: usize| name.len().checked_sub(n).and_then(|i| name.get(i..));
    if let Some(n) = tail(10).filter(|t| digits(t)).and_then(|t| t.parse().ok()) {
        return Some(n);
    }
    if let Some(t) = tail(10).filter(|t| t.starts_with('-') && digits(&t[1..])) {
        return t.parse().ok();
    }
    tail(11).filter(|t| t.starts_with('-') && digits(&t[1..])).and_then(|t| t.parse().ok())
}

/// The prefix of a protected node name (Curator's `ProtectedUtils.PROTECTED_PREFIX`).
pub const PROTECTED_PREFIX: &str = "_c_";

/// A protected node name: `_c_<id>-<name>`, as Curator's `ProtectedUtils.toProtectedZNode`
/// writes it (the id is a UUID in its usual 36-character text form).
pub fn protected_name(id: &str, name: &str) -> String {
    format!("{PROTECTED_PREFIX}{id}-{name}")
}

/// The name without its protected prefix (`_c_<36-char id>-`), or the name itself if it has
/// none.
pub fn strip_protection(name: &str) -> &str {
    const ID_LEN: usize = 36;
    match name.strip_prefix(PROTECTED_PREFIX) {
        Some(rest) if rest.len() > ID_LEN && rest.as_bytes()[ID_LEN] == b'-' => &rest[ID_LEN + 1..],
        _ => name,
    }
}

/// A client-side path prefix that the server knows nothing about (the `/chroot` part of a
/// connect string). `/` means none.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Chroot(Option<String>);

impl Chroot {
    /// No chroot.
    pub fn none() -> Self {
        Chroot(None)
    }

    /// A chroot; validated like any path. `/` means no chroot.
    pub fn new(path: &str) -> Result<Self> {
        validate_path(path)?;
        Ok(if path == "/" { Chroot(None) } else { Chroot(Some(path.to_string())) })
    }

    /// The chroot path, if any.
    pub fn as_str(&self) -> Option<&str> {
        self.0.as_deref()
    }

    /// The server path for a client path.
    pub fn to_server(&self, client_path: &str) -> String {
        match &self.0 {
            None => client_path.to_string(),
            Some(root) if client_path == "/" => root.clone(),
            Some(root) => format!("{root}{client_path}"),
        }
    }

    /// The client path for a server path, or `None` if the server path lies outside the chroot.
    pub fn to_client<'a>(&self, server_path: &'a str) -> Option<std::borrow::Cow<'a, str>> {
        use std::borrow::Cow;
        match &self.0 {
            None => Some(Cow::Borrowed(server_path)),
            Some(root) => {
                let rest = server_path.strip_prefix(root.as_str())?;
                if rest.is_empty() {
                    Some(Cow::Borrowed("/"))
                } else if rest.starts_with('/') {
                    Some(Cow::Borrowed(rest))
                } else {
                    None
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ancestors_top_down_without_the_root() {
        assert_eq!(ancestors("/a/b/c"), ["/a", "/a/b"]);
        assert_eq!(ancestors("/a/b/seq-"), ["/a", "/a/b"]);
        assert_eq!(ancestors("/a/b/"), ["/a", "/a/b"]);
        assert!(ancestors("/a").is_empty());
        assert!(ancestors("/").is_empty());
    }

    use super::*;

    #[test]
    fn valid_paths() {
        for p in ["/", "/a", "/a/b", "/.a", "/a.", "/...", "/zookeeper", "/ü", "/\u{d7ff}", "/a b"] {
            validate_path(p).unwrap_or_else(|e| panic!("{p:?}: {e}"));
        }
    }

    #[test]
    fn invalid_paths() {
        for p in [
            "",
            "a",
            "/a/",
            "//",
            "/a//b",
            "/.",
            "/..",
            "/a/./b",
            "/a/../b",
            "/a\0b",
            "/\u{1}",
            "/\u{7f}",
            "/\u{9f}",
            "/\u{e000}",
            "/\u{f8ff}",
            "/\u{fff0}",
            "/\u{fffd}",
            "/\u{ffff}",
            "/\u{1f600}",
        ] {
            assert!(validate_path(p).is_err(), "{p:?} should be invalid");
        }
    }

    #[test]
    fn sequential_paths_may_end_with_slash() {
        validate_sequential_path("/a/").unwrap();
        validate_sequential_path("/a/lock-").unwrap();
        assert!(validate_sequential_path("/a//").is_err());
    }

    #[test]
    fn parents_and_names() {
        assert_eq!(parent("/"), None);
        assert_eq!(parent("/a"), Some("/"));
        assert_eq!(parent("/a/b"), Some("/a"));
        assert_eq!(name("/a/b"), "b");
        assert_eq!(name("/"), "");
        assert_eq!(join("/", "a"), "/a");
        assert_eq!(join("/a", "b"), "/a/b");
    }

    #[test]
    fn sequence_numbers() {
        assert_eq!(sequence_number("lock-0000000042"), Some(42));
        assert_eq!(sequence_number("0000000000"), Some(0));
        assert_eq!(sequence_number("x-2147483648"), Some(i32::MIN));
        assert_eq!(sequence_number("x-000000042"), Some(-42));
        assert_eq!(sequence_number("lock-"), None);
        assert_eq!(sequence_number("abc"), None);
        assert_eq!(sequence_number("ab-c0000000001"), Some(1));
    }

    #[test]
    fn protected_names() {
        let id = "0f8fad5b-d9cb-469f-a165-70867728950e";
        let n = protected_name(id, "lock-");
        assert_eq!(n, "_c_0f8fad5b-d9cb-469f-a165-70867728950e-lock-");
        assert_eq!(strip_protection(&format!("{n}0000000007")), "lock-0000000007");
        assert_eq!(strip_protection("lock-0000000007"), "lock-0000000007");
        assert_eq!(strip_protection("_c_short-x"), "_c_short-x");
    }

    #[test]
    fn chroot_mapping() {
        let c = Chroot::new("/app").unwrap();
        assert_eq!(c.to_server("/"), "/app");
        assert_eq!(c.to_server("/x"), "/app/x");
        assert_eq!(c.to_client("/app").as_deref(), Some("/"));
        assert_eq!(c.to_client("/app/x").as_deref(), Some("/x"));
        assert_eq!(c.to_client("/apple"), None);
        assert_eq!(c.to_client("/other"), None);
        assert_eq!(Chroot::new("/").unwrap(), Chroot::none());
        assert!(Chroot::new("/app/").is_err());
    }
}
