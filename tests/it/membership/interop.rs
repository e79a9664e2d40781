//! conclave's `membership::GroupMember` and Apache Curator's `GroupMember` in one group are one
//! group (member `<id>` is the ephemeral node `<group>/<id>`, its data the member's data), with
//! `tests/clients/CuratorGroupCheck.java` as the Curator side, on both backends (Java reaches
//! the embedded server over TCP):
//!
//! - Each side sees the other, ids and data: Java's `getCurrentMembers()` and Rust's
//!   `members()` (and what `changes()` yields) are exactly the expected view, with the data each
//!   side joined with, then with the data each side set afterwards; the nodes are the layout
//!   (`<group>/<id>`, ephemeral on the member's own session, data = the payload); the group
//!   node made by the first member is a container (the server removes it once the group is
//!   empty).
//! - Leaving: a Java member's `close()` is seen by Rust (its id gone), and Rust's `close()` by a
//!   Java member.
//!
//! Every view goes through one checker ([`view_problems`]); the negative controls show it
//! failing: a Java member and a Rust member each waiting for an id that never joins time out
//! with the missing id reported, and the checker fed wrong expectations (a wrong data, a
//! missing member, an extra one) on a good transcript reports each.

use std::collections::BTreeMap;
use std::time::Duration;

use conclave::membership::GroupMember;
use conclave::Result;
use futures::StreamExt;

use crate::conformance;
use crate::lock::children;
use crate::support::clients::{assert_clean, CuratorProgram, JavaRun};
use crate::support::{within, Env};

conformance!(curator_and_rust_members_see_each_other, a_member_that_never_joins_is_not_seen);

/// The Java program.
const PROGRAM: &str = "CuratorGroupCheck";
/// The group, under the test's chroot.
const GROUP: &str = "/group";
/// How long a side waits for a view it expects, in ms (Java) and s (Rust).
const SEE_MS: u64 = 20_000;
const SEE_S: u64 = 20;

/// A group as one side sees it: member id -> data (as UTF-8).
type View = BTreeMap<String, String>;

/// The view of `pairs`.
fn view(pairs: &[(&str, &str)]) -> View {
    pairs.iter().map(|(id, data)| (id.to_string(), data.to_string())).collect()
}

/// A view as the Java program's `see` op takes it: `ID=DATA,ID=DATA`.
fn spec(view: &View) -> String {
    view.iter().map(|(id, data)| format!("{id}={data}")).collect::<Vec<_>>().join(",")
}

/// The `see` op of member `id` for `view`, waiting at most `ms`.
fn see(id: &str, ms: u64, view: &View) -> String {
    format!("see:{id}:{ms}:{}", spec(view))
}

/// What is wrong with a view `seen` by `who` that should be `expected` (none: it is exactly
/// that): members missing, members that should not be there, data that differs.
fn view_problems(who: &str, seen: &View, expected: &View) -> Vec<String> {
    let mut problems = Vec::new();
    for (id, data) in expected {
        match seen.get(id) {
            None => problems.push(format!("{who}: {id} is missing")),
            Some(d) if d != data => problems.push(format!("{who}: {id} has data {d:?}, not {data:?}")),
            Some(_) => {}
        }
    }
    for id in seen.keys().filter(|id| !expected.contains_key(*id)) {
        problems.push(format!("{who}: {id} should not be a member"));
    }
    problems
}

/// What is wrong with the views a Curator run printed (`lines`, its stdout) against the
/// `expected` ones, in order: each `see` op's line (`saw ID<TAB>ID=DATA<TAB>...`, or `timeout
/// ID...` when the view was not seen in time) must be there, say `saw` from the expected member,
/// and show exactly the expected view.
fn transcript_problems(lines: &[String], expected: &[(&str, View)]) -> Vec<String> {
    let views: Vec<&String> = lines.iter().filter(|l| l.starts_with("saw ") || l.starts_with("timeout ")).collect();
    let mut problems = Vec::new();
    if views.len() != expected.len() {
        problems.push(format!("{} views printed, {} expected", views.len(), expected.len()));
    }
    for (i, (line, (member, want))) in views.iter().zip(expected).enumerate() {
        let mut fields = line.split('\t');
        let (verdict, who) = fields.next().unwrap_or_default().split_once(' ').unwrap_or_default();
        if verdict == "timeout" {
            problems.push(format!("view {i}: Curator's {who} did not see the expected view in time"));
        }
        if who != *member {
            problems.push(format!("view {i}: printed by {who}, expected from {member}"));
        }
        let mut seen = View::new();
        for pair in fields {
            let (id, data) = pair.split_once('=').unwrap_or((pair, ""));
            seen.insert(id.to_string(), data.to_string());
        }
        problems.extend(view_problems(&format!("view {i} (Curator's {who})"), &seen, want));
    }
    problems
}

/// A Rust member's view.
fn rust_view(member: &GroupMember) -> View {
    member.members().into_iter().map(|(id, data)| (id, String::from_utf8_lossy(&data).into_owned())).collect()
}

/// Waits (at most `secs`) until `member`'s `changes()` yields exactly `expected`, and checks
/// that `members()` says the same then; the problems of the last view seen otherwise.
async fn rust_sees(member: &GroupMember, expected: &View, secs: u64) -> Vec<String> {
    let who = format!("Rust's {}", member.id());
    let mut changes = Box::pin(member.changes());
    let deadline = tokio::time::sleep(Duration::from_secs(secs));
    tokio::pin!(deadline);
    let mut last = None;
    loop {
        tokio::select! {
            next = changes.next() => match next {
                Some(Ok(members)) => {
                    let yielded: View =
                        members.into_iter().map(|(id, d)| (id, String::from_utf8_lossy(&d).into_owned())).collect();
                    if yielded == *expected {
                        return view_problems(&format!("{who} members()"), &rust_view(member), expected);
                    }
                    last = Some(yielded);
                }
                Some(Err(e)) => return vec![format!("{who}: changes() failed: {e}")],
                None => return vec![format!("{who}: changes() ended")],
            },
            () = &mut deadline => {
                let mut problems = vec![format!("{who}: the expected view did not come within {secs} s")];
                problems.extend(view_problems(&who, &last.unwrap_or_default(), expected));
                return problems;
            }
        }
    }
}

/// Starts the Curator program on the group of this test's chroot with `ops`.
fn start(program: &CuratorProgram, env: &Env, ops: &[String]) -> JavaRun {
    let mut cmd = program.command();
    cmd.arg(env.tcp_address()).arg(format!("{}{GROUP}", env.root)).args(ops);
    JavaRun::start(PROGRAM, GROUP, cmd)
}

/// A Java member and a Rust member join, see each other (ids and data) and the nodes are the
/// layout; each sets new data and the other sees it; a second Java member joins; the first Java
/// member leaves and Rust sees it gone; then Rust leaves and the second Java member sees it gone.
/// Once everyone left, the group node (a container) goes too.
async fn curator_and_rust_members_see_each_other(env: Env) -> Result<()> {
    let Some(program) = CuratorProgram::compile(PROGRAM).await else { return Ok(()) };
    let (c, observer) = (env.client().await, env.client().await);
    let me = GroupMember::new(&c, GROUP, "rust-1", "rust data")?;
    within(20, me.joined()).await?;
    assert_eq!((me.id(), me.group()), ("rust-1", GROUP));

    let both = view(&[("java-1", "java data"), ("rust-1", "rust data")]);
    let both_set = view(&[("java-1", "java data 2"), ("rust-1", "rust data 2")]);
    let three = view(&[("java-1", "java data 2"), ("java-2", "observer"), ("rust-1", "rust data 2")]);
    let java_left = view(&[("java-2", "observer"), ("rust-1", "rust data 2")]);
    let rust_left = view(&[("java-2", "observer")]);
    let ops = vec![
        "session".to_string(),
        "join:java-1:java data".into(),
        see("java-1", SEE_MS, &both),
        "handover:both".into(),
        "setdata:java-1:java data 2".into(),
        see("java-1", SEE_MS, &both_set),
        "join:java-2:observer".into(),
        "handover:three".into(),
        "leave:java-1".into(),
        see("java-2", SEE_MS, &java_left),
        "handover:left".into(),
        see("java-2", SEE_MS, &rust_left),
        "leave:java-2".into(),
    ];
    let java = start(&program, &env, &ops);

    // Both in: each sees the other, and the nodes are Curator's layout.
    let java = java.ready(&observer, "both").await;
    assert_clean("Rust sees both", rust_sees(&me, &both, SEE_S).await);
    assert_eq!(children(&observer, GROUP).await, ["java-1", "rust-1"], "one node per member, named by id");
    let (data, rust_stat) = observer.get_data(&format!("{GROUP}/rust-1")).await?;
    assert_eq!((&data[..], rust_stat.ephemeral_owner), (&b"rust data"[..], c.session_id()), "Rust's member node");
    let (data, java_stat) = observer.get_data(&format!("{GROUP}/java-1")).await?;
    assert_eq!(&data[..], b"java data", "Java's member node's data");
    assert!(java_stat.ephemeral_owner != 0 && java_stat.ephemeral_owner != c.session_id(), "{java_stat:?}");
    me.set_data("rust data 2").await?;
    java.go(&observer, "both").await?;

    // New data both ways, and a second Java member.
    let java = java.ready(&observer, "three").await;
    assert_clean("Rust sees the new data and java-2", rust_sees(&me, &three, SEE_S).await);
    java.go(&observer, "three").await?;

    // Java's first member leaves: Rust sees it gone. Then Rust leaves.
    let java = java.ready(&observer, "left").await;
    assert_clean("Rust sees java-1 gone", rust_sees(&me, &java_left, SEE_S).await);
    me.close().await?;
    assert_eq!(observer.exists(&format!("{GROUP}/rust-1")).await?, None, "close deletes the member node");
    java.go(&observer, "left").await?;

    let (ok, lines, err) = java.finish().await;
    assert!(ok, "{PROGRAM} failed:\n{}\n{err}", lines.join("\n"));
    let expected = [("java-1", both), ("java-1", both_set), ("java-2", java_left), ("java-2", rust_left)];
    assert_clean("Curator's views", transcript_problems(&lines, &expected));
    let session = lines.iter().find_map(|l| l.strip_prefix("session 0x")).expect("Curator's session line");
    assert_eq!(i64::from_str_radix(session, 16).ok(), Some(java_stat.ephemeral_owner), "Java's node is its session's");
    assert_eq!(lines.last().map(String::as_str), Some("ok done"));

    // Everyone left: the group, a container made by the first member, goes too.
    within(20, async {
        while observer.exists(GROUP).await.expect("exists").is_some() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    eprintln!(
        "group interop on the {}: Curator and Rust members saw each other join, change and leave",
        env.backend_name()
    );
    c.close().await;
    observer.close().await;
    Ok(())
}

/// The negative control, live: a Java member waiting (1.5 s) to see a member `ghost` that never
/// joins times out, and a Rust member waiting for it likewise; the checker reports both, with
/// the missing id.
async fn a_member_that_never_joins_is_not_seen(env: Env) -> Result<()> {
    let Some(program) = CuratorProgram::compile(PROGRAM).await else { return Ok(()) };
    let c = env.client().await;
    let me = GroupMember::new(&c, GROUP, "rust-1", "rust data")?;
    within(20, me.joined()).await?;
    let with_ghost = view(&[("ghost", "boo"), ("java-1", "java data"), ("rust-1", "rust data")]);
    let ops = ["join:java-1:java data".to_string(), see("java-1", 1_500, &with_ghost), "leave:java-1".into()];
    let (ok, lines, err) = start(&program, &env, &ops).finish().await;
    assert!(!ok, "{PROGRAM} cannot have seen the ghost:\n{}\n{err}", lines.join("\n"));
    let found = transcript_problems(&lines, &[("java-1", with_ghost.clone())]);
    eprintln!("group interop, negative control on the {}: Curator's side: {found:?}", env.backend_name());
    assert!(found.iter().any(|p| p.contains("did not see the expected view in time")), "{found:#?}");
    assert!(found.iter().any(|p| p.ends_with("ghost is missing")), "{found:#?}");
    assert!(!lines.iter().any(|l| l.starts_with("left ")), "the run stopped at the view it did not see: {lines:?}");

    let found = rust_sees(&me, &with_ghost, 1).await;
    eprintln!("group interop, negative control on the {}: Rust's side: {found:?}", env.backend_name());
    assert!(found.iter().any(|p| p.contains("did not come within 1 s")), "{found:#?}");
    assert!(found.iter().any(|p| p.ends_with("ghost is missing")), "{found:#?}");
    me.close().await?;
    c.close().await;
    Ok(())
}

/// The checker alone: a good transcript passes, and each wrong expectation fed to it (another
/// data, a missing member, an extra member, another member printing, fewer views) is reported.
#[test]
fn the_view_checker_catches_wrong_views() {
    let lines: Vec<String> =
        ["session 0x1", "joined java-1", "saw java-1\tjava-1=a\trust-1=b", "saw java-1\tjava-1=a", "ok done"]
            .iter()
            .map(|l| l.to_string())
            .collect();
    let good = [("java-1", view(&[("java-1", "a"), ("rust-1", "b")])), ("java-1", view(&[("java-1", "a")]))];
    assert_clean("a good transcript", transcript_problems(&lines, &good));

    let wrong = [
        ("java-1", view(&[("java-1", "a"), ("rust-1", "other")])),
        ("java-2", view(&[("java-1", "a"), ("rust-1", "b")])),
    ];
    let found = transcript_problems(&lines, &wrong);
    eprintln!("group view checker control: {found:#?}");
    assert!(
        found.contains(&"view 0 (Curator's java-1): rust-1 has data \"b\", not \"other\"".to_string()),
        "{found:#?}"
    );
    assert!(found.contains(&"view 1: printed by java-1, expected from java-2".to_string()), "{found:#?}");
    assert!(found.contains(&"view 1 (Curator's java-1): rust-1 is missing".to_string()), "{found:#?}");
    assert_eq!(found.len(), 3, "nothing else: {found:#?}");

    let extra = [("java-1", view(&[("java-1", "a")])), ("java-1", view(&[("java-1", "a")]))];
    let found = transcript_problems(&lines, &extra);
    assert_eq!(found, ["view 0 (Curator's java-1): rust-1 should not be a member"], "{found:#?}");
    let found = transcript_problems(&lines, &good[..1]);
    assert_eq!(found, ["2 views printed, 1 expected"], "{found:#?}");
}
