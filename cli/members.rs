//! `conclave members`: who is in a group ([`conclave::membership::GroupMember`], or Curator's
//! `GroupMember` on the same path: member `<id>` is the ephemeral node `PATH/<id>`, its data the
//! member's data). Read once, without joining: the children of PATH and their data.
//!
//! Plain output is one `ID DATA` line per member, sorted by id (the data with control characters
//! escaped so that it stays on its line; just `ID` when the data is empty); nothing when the group
//! is empty. With `--json`, one array of `{"id", "path", "data", "stat"}` objects (data and stat
//! as `get` prints them). A group path that does not exist fails with exit 3 (NONODE), as
//! `locks` does: a mistyped path shows at once (an empty group whose directory the server removed,
//! a container, is reported the same way); a bad path fails with exit 9 before connecting. A
//! member that leaves while the group is read is left out.

use bytes::Bytes;
use clap::Args;
use conclave_core::path::{join, validate_path};
use conclave_core::{Client, Error, Stat};
use serde_json::{json, Value};

use crate::connect::ConnectOpts;
use crate::exit::CliError;
use crate::output::{data_json, escaped, stat_json, Output};

/// Arguments of `members`.
#[derive(Debug, Args)]
pub struct MembersArgs {
    /// The group's path.
    pub path: String,
}

/// One member as read: its id, node path, data and stat.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Member {
    id: String,
    path: String,
    data: Bytes,
    stat: Stat,
}

/// Runs `members`.
pub async fn run(args: &MembersArgs, opts: &ConnectOpts, out: &mut Output) -> Result<(), CliError> {
    let context = format!("members {}", args.path);
    validate_path(&args.path).map_err(|e| CliError::zk(context.as_str(), &e))?;
    let client = opts.connect().await?;
    let read = members(&client, &args.path).await;
    client.close().await;
    let members = read.map_err(|e| CliError::zk(context.as_str(), &e))?;
    if out.is_json() {
        return out.line("", &Value::from(members.iter().map(member_json).collect::<Vec<_>>()));
    }
    for m in &members {
        out.line(&member_line(m), &Value::Null)?;
    }
    Ok(())
}

/// The members of the group at `path`, by id: its children and their data, read in one pipelined
/// round (children deleted meanwhile are left out). `NoNode` if the group does not exist.
async fn members(client: &Client, path: &str) -> Result<Vec<Member>, Error> {
    let mut ids = client.get_children(path).await?;
    ids.sort();
    let paths: Vec<String> = ids.iter().map(|id| join(path, id)).collect();
    let reads = futures::future::join_all(paths.iter().map(|p| client.get_data(p))).await;
    let mut members = Vec::with_capacity(ids.len());
    for ((id, path), read) in ids.into_iter().zip(paths).zip(reads) {
        match read {
            Ok((data, stat)) => members.push(Member { id, path, data, stat }),
            Err(Error::NoNode) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(members)
}

/// One plain line: `ID DATA`, or `ID` alone when the data is empty.
fn member_line(m: &Member) -> String {
    let data = escaped(&m.data);
    if data.is_empty() {
        escaped(m.id.as_bytes())
    } else {
        format!("{} {data}", escaped(m.id.as_bytes()))
    }
}

/// One member as JSON.
fn member_json(m: &Member) -> Value {
    json!({ "id": m.id, "path": m.path, "data": data_json(&m.data), "stat": stat_json(&m.stat) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str, data: &[u8]) -> Member {
        Member {
            id: id.into(),
            path: format!("/g/{id}"),
            data: Bytes::copy_from_slice(data),
            stat: Stat { ephemeral_owner: 0x42, ..Stat::default() },
        }
    }

    #[test]
    fn lines_stay_on_one_line() {
        assert_eq!(member_line(&member("w-1", b"10.0.0.7:80")), "w-1 10.0.0.7:80");
        assert_eq!(member_line(&member("w-2", b"")), "w-2");
        assert_eq!(member_line(&member("w-3", b"a\nb")), "w-3 a\\nb");
    }

    #[test]
    fn json_has_the_data_and_stat() {
        let v = member_json(&member("w-1", &[0xff]));
        assert_eq!((v["id"].as_str(), v["path"].as_str()), (Some("w-1"), Some("/g/w-1")));
        assert_eq!(v["data"], json!([255]));
        assert_eq!(v["stat"]["ephemeralOwner"], json!("0x42"));
    }
}
