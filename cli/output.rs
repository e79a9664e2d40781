//! What the commands print. A command produces a [`Reply`] (or, for `watch`, a stream of
//! events), and [`Output`] renders it either as plain text for shells or, with `--json`, as one
//! JSON document per reply or event. All of stdout goes through here, flushed after each
//! document so that `watch` lines reach a pipe as they happen.
//!
//! Plain formats:
//! - `ls`: one child per line, sorted.
//! - `get`: the data's bytes exactly as stored; when stdout is a terminal, a newline is added if
//!   the data does not end with one (so the prompt starts on its own line).
//! - `stat`: one `field value` line per field, zxids and the owner in `0x` hex, times in ms since
//!   the epoch.
//! - `create`: the created path; `set`: the new data version; `delete`: nothing.
//! - `watch`: `EventType path`, such as `NodeDataChanged /a`.
//! - `locks`: one line per contender, holder first, then the waiters in the order they will get
//!   the lock: `holder|waiting SEQUENCE NODE SESSION FENCING_TOKEN DATA` (session in `0x` hex,
//!   the fencing token in decimal as `lock` hands it to its command, the data with control
//!   characters escaped so that it stays on its line); nothing if nobody holds the lock.
//!
//! JSON data is a string when it is valid UTF-8, otherwise an array of byte values; zxids and
//! session ids are `0x` hex strings, since 64-bit ids do not survive a JSON number in every
//! reader. A watch event's `zxid` is null when the server did not send one. `locks` prints one
//! array of `{"role", "holder", "sequence", "node", "path", "kind", "session",
//! "fencing_token", "data"}` objects, the fencing token as a decimal string.

use std::io::{self, IsTerminal, Write};

use bytes::Bytes;
use conclave::lock::Participant;
use conclave_core::{EventType, Stat, WatchedEvent};
use serde_json::{json, Value};

use crate::exit::CliError;

/// The result of a one-shot command, ready to print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `ls`: the (sorted) children of `path`.
    Children {
        /// The listed node.
        path: String,
        /// Its children's names.
        children: Vec<String>,
    },
    /// `get`: a node's data and stat.
    Data {
        /// The node.
        path: String,
        /// Its data.
        data: Bytes,
        /// Its stat.
        stat: Stat,
    },
    /// `stat`: a node's stat.
    Stat {
        /// The node.
        path: String,
        /// Its stat.
        stat: Stat,
    },
    /// `create`: the created node.
    Created {
        /// The created path, with the sequence suffix if any.
        path: String,
        /// The new node's stat.
        stat: Stat,
    },
    /// `set`: the node's new stat.
    Set {
        /// The node.
        path: String,
        /// Its stat after the write.
        stat: Stat,
    },
    /// `delete`: the node is gone.
    Deleted {
        /// The deleted node.
        path: String,
    },
    /// `locks`: the contenders on a lock, holder first.
    Locks {
        /// The lock path.
        path: String,
        /// Holder(s), then waiters in order.
        participants: Vec<Participant>,
    },
}

/// Writes replies and events to stdout, plain or JSON.
#[derive(Debug)]
pub struct Output {
    json: bool,
}

impl Output {
    /// An output in JSON (`--json`) or plain mode.
    pub fn new(json: bool) -> Output {
        Output { json }
    }

    /// Prints a command's reply.
    pub fn reply(&mut self, reply: &Reply) -> Result<(), CliError> {
        if self.json {
            return self.json_line(&reply_json(reply));
        }
        let mut text = Vec::new();
        match reply {
            Reply::Children { children, .. } => {
                for child in children {
                    text.extend_from_slice(child.as_bytes());
                    text.push(b'\n');
                }
            }
            Reply::Data { data, .. } => {
                text.extend_from_slice(data);
                if !data.is_empty() && !data.ends_with(b"\n") && io::stdout().is_terminal() {
                    text.push(b'\n');
                }
            }
            Reply::Stat { stat, .. } => {
                for (field, value) in stat_fields(stat) {
                    text.extend_from_slice(format!("{field} {}\n", plain(&value)).as_bytes());
                }
            }
            Reply::Created { path, .. } => text.extend_from_slice(format!("{path}\n").as_bytes()),
            Reply::Set { stat, .. } => text.extend_from_slice(format!("{}\n", stat.version).as_bytes()),
            Reply::Deleted { .. } => {}
            Reply::Locks { participants, .. } => {
                for p in participants {
                    text.extend_from_slice(participant_line(p).as_bytes());
                    text.push(b'\n');
                }
            }
        }
        self.write(&text)
    }

    /// Prints a watch event.
    pub fn event(&mut self, event: &WatchedEvent) -> Result<(), CliError> {
        let kind = event_name(event.event_type);
        if self.json {
            // A negative zxid means the server did not tell (ZooKeeper before 3.9 sends -1).
            let zxid = if event.zxid < 0 { Value::Null } else { hex(event.zxid) };
            self.json_line(&json!({ "event": kind, "path": event.path, "zxid": zxid }))
        } else {
            self.write(format!("{kind} {}\n", event.path).as_bytes())
        }
    }

    /// Whether documents are JSON (`--json`).
    pub fn is_json(&self) -> bool {
        self.json
    }

    /// Prints one line of text (plain mode) or one JSON document (JSON mode).
    pub fn line(&mut self, plain: &str, doc: &Value) -> Result<(), CliError> {
        if self.json {
            self.json_line(doc)
        } else {
            self.write(format!("{plain}\n").as_bytes())
        }
    }

    fn json_line(&mut self, doc: &Value) -> Result<(), CliError> {
        self.write(format!("{doc}\n").as_bytes())
    }

    /// Writes and flushes, so each document reaches a pipe at once.
    fn write(&mut self, bytes: &[u8]) -> Result<(), CliError> {
        let mut stdout = io::stdout().lock();
        stdout.write_all(bytes).and_then(|()| stdout.flush()).map_err(CliError::stdout)
    }
}

/// The JSON document for a reply.
fn reply_json(reply: &Reply) -> Value {
    match reply {
        Reply::Children { path, children } => json!({ "path": path, "children": children }),
        Reply::Data { path, data, stat } => json!({ "path": path, "data": data_json(data), "stat": stat_json(stat) }),
        Reply::Stat { path, stat } => json!({ "path": path, "stat": stat_json(stat) }),
        Reply::Created { path, stat } => json!({ "path": path, "stat": stat_json(stat) }),
        Reply::Set { path, stat } => json!({ "path": path, "version": stat.version, "stat": stat_json(stat) }),
        Reply::Deleted { path } => json!({ "path": path, "deleted": true }),
        Reply::Locks { participants, .. } => Value::from(participants.iter().map(participant_json).collect::<Vec<_>>()),
    }
}

/// Whether the contender holds the lock, as `locks` prints it.
fn role(p: &Participant) -> &'static str {
    if p.holder {
        "holder"
    } else {
        "waiting"
    }
}

/// The last component of a path.
fn node_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// Node data as text on one line: lossy UTF-8, control characters escaped.
pub fn escaped(data: &[u8]) -> String {
    String::from_utf8_lossy(data)
        .chars()
        .flat_map(|c| {
            let escaped: Vec<char> = if c.is_control() { c.escape_default().collect() } else { vec![c] };
            escaped
        })
        .collect()
}

/// One `locks` line: `role sequence node session token data`.
fn participant_line(p: &Participant) -> String {
    let data = escaped(&p.data);
    let mut line = format!(
        "{} {} {} {:#x} {}",
        role(p),
        p.sequence,
        node_name(&p.path),
        p.stat.ephemeral_owner,
        p.stat.czxid as u64
    );
    if !data.is_empty() {
        line.push(' ');
        line.push_str(&data);
    }
    line
}

/// One `locks` entry as JSON.
fn participant_json(p: &Participant) -> Value {
    json!({
        "role": role(p),
        "holder": p.holder,
        "sequence": p.sequence,
        "node": node_name(&p.path),
        "path": p.path,
        "kind": p.kind,
        "session": hex(p.stat.ephemeral_owner),
        // As `lock` puts it in CONCLAVE_FENCING_TOKEN; a string, like every 64-bit id here.
        "fencing_token": (p.stat.czxid as u64).to_string(),
        "data": data_json(&p.data),
    })
}

/// Data as a JSON string when it is UTF-8, else as an array of byte values.
pub fn data_json(data: &[u8]) -> Value {
    match std::str::from_utf8(data) {
        Ok(s) => Value::from(s),
        Err(_) => Value::from(data.to_vec()),
    }
}

/// A stat as a JSON object with the names of [`stat_fields`].
pub fn stat_json(stat: &Stat) -> Value {
    Value::Object(stat_fields(stat).into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

/// The stat's fields in display order, with zxids and the owner as `0x` hex strings.
fn stat_fields(stat: &Stat) -> [(&'static str, Value); 11] {
    [
        ("czxid", hex(stat.czxid)),
        ("mzxid", hex(stat.mzxid)),
        ("pzxid", hex(stat.pzxid)),
        ("ctime", stat.ctime.into()),
        ("mtime", stat.mtime.into()),
        ("version", stat.version.into()),
        ("cversion", stat.cversion.into()),
        ("aversion", stat.aversion.into()),
        ("ephemeralOwner", hex(stat.ephemeral_owner)),
        ("dataLength", stat.data_length.into()),
        ("numChildren", stat.num_children.into()),
    ]
}

/// A 64-bit id as zkCli prints it: `0x` and the two's-complement hex digits.
fn hex(v: i64) -> Value {
    Value::from(format!("{v:#x}"))
}

/// A scalar JSON value without quotes.
fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The Java client's name for an event type (`Watcher.Event.EventType`).
pub fn event_name(t: EventType) -> &'static str {
    match t {
        EventType::None => "None",
        EventType::NodeCreated => "NodeCreated",
        EventType::NodeDeleted => "NodeDeleted",
        EventType::NodeDataChanged => "NodeDataChanged",
        EventType::NodeChildrenChanged => "NodeChildrenChanged",
        EventType::DataWatchRemoved => "DataWatchRemoved",
        EventType::ChildWatchRemoved => "ChildWatchRemoved",
        EventType::PersistentWatchRemoved => "PersistentWatchRemoved",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_is_a_string_only_when_utf8() {
        assert_eq!(data_json(b"hi"), json!("hi"));
        assert_eq!(data_json(&[0xff, 0]), json!([255, 0]));
    }

    #[test]
    fn stat_uses_hex_ids() {
        let stat = Stat { czxid: 26, ephemeral_owner: -1, version: 3, ..Stat::default() };
        let v = stat_json(&stat);
        assert_eq!(v["czxid"], json!("0x1a"));
        assert_eq!(v["ephemeralOwner"], json!("0xffffffffffffffff"));
        assert_eq!(v["version"], json!(3));
        assert_eq!(v.as_object().map(|o| o.len()), Some(11));
    }

    #[test]
    fn participants_stay_on_one_line() {
        let p = Participant {
            path: "/l/_c_u-lock-0000000007".into(),
            sequence: 7,
            kind: "lock-",
            holder: false,
            data: Bytes::from_static(b"host 12 sh -c 'a\nb'"),
            stat: Stat { czxid: 0x1_0000_002a, ephemeral_owner: 0x77, ..Stat::default() },
        };
        assert_eq!(participant_line(&p), "waiting 7 _c_u-lock-0000000007 0x77 4294967338 host 12 sh -c 'a\\nb'");
        let v = participant_json(&p);
        assert_eq!((v["role"].as_str(), v["fencing_token"].as_str()), (Some("waiting"), Some("4294967338")));
        assert_eq!(v["data"], json!("host 12 sh -c 'a\nb'"));
        let empty = Participant { data: Bytes::new(), holder: true, ..p };
        assert_eq!(participant_line(&empty), "holder 7 _c_u-lock-0000000007 0x77 4294967338");
    }
}
