//! Dependencies inside `conclave-core` point one way (style rule 1): `proto` (sans-IO records)
//! below `session` (the task that owns the connection) below `client` (the handles); `path`,
//! `retry` and `random` are leaves; the server reuses `proto` and nothing of the client side; and
//! inside the server, only its top module reaches the connection I/O file `conn.rs`. This test
//! reads the sources and fails when a file imports a module above it, so back-edges do not
//! return unnoticed.
//!
//! What counts is code: comments (doc links included) are skipped, and so are test modules
//! (`tests.rs`, `tests/`, `proptests.rs`, and an inline `#[cfg(...test...)] mod name { ... }`
//! to the end of its file), which may use anything. A file under a rule may not name a forbidden
//! module by path (`crate::client`, `super::conn`, ...) nor use an item the crate root
//! re-exports from it (`crate::Client`, `crate::ServerHandle`, ...).

use std::fs;
use std::path::{Path, PathBuf};

/// One layering rule: the files it covers and the modules they must not reach.
struct Rule {
    /// Source paths under `core/src`: a file, or a folder (every `.rs` below it).
    files: &'static [&'static str],
    /// Files the rule leaves out (paths under `core/src`).
    except: &'static [&'static str],
    /// Crate-level modules the files must not use (`crate::<m>` paths and root re-exports).
    crate_modules: &'static [&'static str],
    /// Other paths the files must not name, as written in the source (`super::conn`).
    paths: &'static [&'static str],
}

const RULES: &[Rule] = &[
    Rule {
        files: &["proto"],
        except: &[],
        crate_modules: &["error", "path", "retry", "random", "session", "client", "server", "testing"],
        paths: &[],
    },
    Rule {
        files: &["path.rs", "retry.rs", "random.rs"],
        except: &[],
        crate_modules: &["session", "client", "server", "testing"],
        paths: &[],
    },
    Rule { files: &["session"], except: &[], crate_modules: &["client", "server", "testing"], paths: &[] },
    Rule { files: &["server"], except: &[], crate_modules: &["session", "client", "retry", "testing"], paths: &[] },
    Rule {
        files: &["server"],
        except: &["server/mod.rs", "server/conn.rs"],
        crate_modules: &[],
        paths: &["super::conn", "super::super::conn", "crate::server::conn", "self::conn"],
    },
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file at or below `path`.
fn rust_files(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_dir() {
        let mut entries: Vec<_> = fs::read_dir(path).expect("read_dir").map(|e| e.expect("entry").path()).collect();
        entries.sort();
        for p in entries {
            rust_files(&p, out);
        }
    } else if path.extension().is_some_and(|e| e == "rs") {
        out.push(path.to_path_buf());
    }
}

/// Whether `rel` (a path under `core/src`, with `/`) is test code as a whole.
fn is_test_file(rel: &str) -> bool {
    rel.split('/').any(|c| c == "tests") || rel.ends_with("/tests.rs") || rel.ends_with("/proptests.rs")
}

/// The code lines of a source file, numbered from 1: line comments are cut off and an inline
/// test module ends the file.
fn code_lines(text: &str) -> Vec<(usize, String)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        let is_test_attr = trimmed.starts_with("#[cfg(") && trimmed.contains("test");
        let next_opens_module = lines.get(i + 1).is_some_and(|n| {
            let n = n.trim_start();
            (n.starts_with("mod ") || n.starts_with("pub mod ") || n.starts_with("pub(crate) mod "))
                && n.trim_end().ends_with('{')
        });
        if is_test_attr && next_opens_module {
            break;
        }
        let code = match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        };
        out.push((i + 1, code.to_string()));
    }
    out
}

/// The paths the code names that start at `crate`, `super` or `self`, each with the line it
/// starts on; `use` groups are expanded (`crate::{a::B, c}` names `crate::a::B` and `crate::c`).
fn paths(lines: &[(usize, String)]) -> Vec<(usize, String)> {
    let mut chars = Vec::new();
    let mut line_of = Vec::new();
    for (n, line) in lines {
        for c in line.chars().chain(['\n']) {
            chars.push(c);
            line_of.push(*n);
        }
    }
    let mut out = Vec::new();
    for i in 0..chars.len() {
        let prev = if i == 0 { ' ' } else { chars[i - 1] };
        if is_ident(prev) || prev == ':' {
            continue;
        }
        let rest: String = chars[i..chars.len().min(i + 7)].iter().collect();
        if ["crate::", "super::", "self::"].iter().any(|root| rest.starts_with(root)) {
            let mut at = i;
            for p in parse_path(&chars, &mut at) {
                out.push((line_of[i], p));
            }
        }
    }
    out
}

/// Parses a path (with `{...}` groups) at `chars[*at..]`; returns every path it names.
fn parse_path(chars: &[char], at: &mut usize) -> Vec<String> {
    let skip_ws = |at: &mut usize| {
        while *at < chars.len() && chars[*at].is_whitespace() {
            *at += 1;
        }
    };
    let mut prefix = String::new();
    loop {
        skip_ws(at);
        if chars.get(*at) == Some(&'{') {
            *at += 1;
            let mut out = Vec::new();
            loop {
                skip_ws(at);
                match chars.get(*at) {
                    None => return out,
                    Some('}') => {
                        *at += 1;
                        return out;
                    }
                    Some(',') => *at += 1,
                    Some(_) => {
                        let before = *at;
                        for p in parse_path(chars, at) {
                            out.push(if p == "self" {
                                prefix.trim_end_matches("::").to_string()
                            } else {
                                format!("{prefix}{p}")
                            });
                        }
                        if *at == before {
                            // Something that is no path (`*`, `as`): step over it.
                            *at += 1;
                        }
                    }
                }
            }
        }
        let start = *at;
        while *at < chars.len() && is_ident(chars[*at]) {
            *at += 1;
        }
        if *at == start {
            return if prefix.is_empty() { Vec::new() } else { vec![prefix.trim_end_matches("::").to_string()] };
        }
        prefix.extend(&chars[start..*at]);
        if chars.get(*at) == Some(&':') && chars.get(*at + 1) == Some(&':') {
            *at += 2;
            prefix.push_str("::");
        } else {
            // `X as Y` names X.
            return vec![prefix];
        }
    }
}

/// Whether `path` is `module` or something inside it.
fn within(path: &str, module: &str) -> bool {
    path == module || path.strip_prefix(module).is_some_and(|rest| rest.starts_with("::"))
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The names `lib.rs` re-exports at the crate root from `module` (`pub use client::{A, B};`).
fn root_reexports(lib: &str, module: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = lib;
    let start = format!("pub use {module}::");
    while let Some(at) = rest.find(&start) {
        let tail = &rest[at + start.len()..];
        let end = tail.find(';').unwrap_or(tail.len());
        let list = tail[..end].trim().trim_start_matches('{').trim_end_matches('}');
        for item in list.split(',') {
            // `a::B` re-exports `B`; `B as C` re-exports `C`.
            let item = item.trim();
            let name = item.rsplit(" as ").next().unwrap_or(item).rsplit("::").next().unwrap_or(item).trim();
            if !name.is_empty() && name != "self" {
                out.push(name.to_string());
            }
        }
        rest = &tail[end..];
    }
    out
}

/// What a file under `rule` must not name.
fn forbidden(rule: &Rule, lib: &str) -> Vec<String> {
    let mut out = Vec::new();
    for m in rule.crate_modules {
        out.push(format!("crate::{m}"));
        out.extend(root_reexports(lib, m).into_iter().map(|name| format!("crate::{name}")));
    }
    out.extend(rule.paths.iter().map(|p| p.to_string()));
    out
}

/// The violations in one file's `text`: `(line, forbidden path)`.
fn violations(text: &str, forbidden: &[String]) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (n, path) in paths(&code_lines(text)) {
        if let Some(f) = forbidden.iter().find(|f| within(&path, f)) {
            out.push((n, f.clone()));
        }
    }
    out
}

#[test]
fn dependencies_point_one_way() {
    let src = src();
    let lib = fs::read_to_string(src.join("lib.rs")).expect("lib.rs");
    let mut checked = 0;
    let mut found = Vec::new();
    for rule in RULES {
        let forbidden = forbidden(rule, &lib);
        for root in rule.files {
            let mut files = Vec::new();
            rust_files(&src.join(root), &mut files);
            assert!(!files.is_empty(), "no source under {root}: the rule checks nothing");
            for file in files {
                let rel = file.strip_prefix(&src).expect("under src").to_string_lossy().replace('\\', "/");
                if is_test_file(&rel) || rule.except.contains(&rel.as_str()) {
                    continue;
                }
                checked += 1;
                let text = fs::read_to_string(&file).expect("source");
                for (line, what) in violations(&text, &forbidden) {
                    found.push(format!("core/src/{rel}:{line} names {what}"));
                }
            }
        }
    }
    assert!(checked >= 30, "only {checked} files checked");
    assert!(found.is_empty(), "dependencies pointing upwards:\n{}", found.join("\n"));
}

#[test]
fn the_check_sees_what_it_should() {
    let lib = "pub use client::{Client, ClientBuilder, WatchedEvent};\npub use server::{Faults, Server};\n";
    let session = forbidden(&RULES[2], lib);
    assert!(session.contains(&"crate::WatchedEvent".to_string()), "{session:?}");
    let flagged = |text: &str| violations(text, &session).into_iter().map(|(line, _)| line).collect::<Vec<_>>();
    assert_eq!(flagged("use crate::client::WatchedEvent;"), [1]);
    assert_eq!(flagged("use crate::{error::Error, client::Client};"), [1], "use groups");
    assert_eq!(
        flagged("use crate::{\n    error::Error,\n    client::{self, Client},\n};"),
        [1, 1],
        "groups over lines"
    );
    assert_eq!(flagged("use crate::{error::{self, Error}, path};"), Vec::<usize>::new());
    assert_eq!(flagged("fn f() {}\n    let c = crate::Client::builder();"), [2]);
    assert_eq!(flagged("let e: crate::WatchedEvent;"), [1], "a root re-export of client");
    assert_eq!(flagged("use crate::server::ServerHandle;"), [1]);
    assert_eq!(flagged("/// See [`crate::Client::close`]."), Vec::<usize>::new(), "doc links are not imports");
    assert_eq!(flagged("let x = 1; // crate::client"), Vec::<usize>::new(), "trailing comments");
    assert_eq!(flagged("use crate::clients::X;"), Vec::<usize>::new(), "another name");
    assert_eq!(flagged("use crate::ClientBuilderish;"), Vec::<usize>::new(), "another name");
    let tests_at_end = "use crate::proto;\n#[cfg(test)]\nmod tests {\n    use crate::client::Client;\n}\n";
    assert!(flagged(tests_at_end).is_empty(), "inline test modules may use anything");
    let gated_decl = "#[cfg(all(test, feature = \"testing\"))]\nmod tests;\nuse crate::client::Client;\n";
    assert_eq!(flagged(gated_decl), [3], "a test module declared elsewhere does not end the file");
    let server = forbidden(&RULES[4], lib);
    assert_eq!(violations("use super::conn::Peer;", &server).len(), 1);
    assert_eq!(violations("use super::{conn, state};", &server).len(), 1);
    assert_eq!(violations("conn::serve(x);", &server).len(), 0, "only paths from super or crate");
    assert_eq!(violations("use super::connections::X;\nlet conn = 1;", &server).len(), 0);
    assert!(is_test_file("server/tests/harness.rs") && is_test_file("session/tests.rs"));
    assert!(!is_test_file("session/task.rs"));
}
