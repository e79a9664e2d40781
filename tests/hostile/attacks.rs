//! The attacks, one test each, every one beside a [`Bystander`].

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use conclave_core::proto::{Acl, AuthPacket, CreateRequest, ErrorCode, Request};
use conclave_core::{Client, CreateMode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::raw::Raw;
use crate::{alive, peak_bytes, reset_peak, server, turn, Bystander};

const MIB: usize = 1 << 20;

fn create(path: String, data: Option<Bytes>, mode: CreateMode) -> Request {
    Request::Create(CreateRequest { path, data, acl: Acl::open_unsafe(), flags: mode as i32, ttl: -1 })
}

/// Creates every path (parents first), pipelined in chunks on `raw`; each must succeed.
async fn create_all(raw: &mut Raw, paths: &[String], mode: CreateMode) {
    for chunk in paths.chunks(2000) {
        let requests: Vec<Request> = chunk.iter().map(|p| create(p.clone(), None, mode)).collect();
        raw.send_all(&requests).await;
        for p in chunk {
            let (h, _) = raw.reply().await.expect("a create reply");
            assert_eq!(h.err, 0, "create {p}");
        }
    }
}

/// `n` distinct names with one Java `String.hashCode`: blocks of "Aa" and "BB" hash alike.
fn colliding_names(n: usize) -> Vec<String> {
    let bits = usize::BITS - n.leading_zeros();
    (0..n).map(|i| (0..bits).map(|b| if i >> b & 1 == 1 { "BB" } else { "Aa" }).collect()).collect()
}

/// Reply amplification: one ~52 KB `multiRead` naming a 1 MB node thousands of times would be
/// gigabytes of reply. It is refused before anything is built, the connection stays usable,
/// and replies that are each allowed but pipelined without reading stay bounded by the
/// connection's queue limits: the server's count of queued bytes and the process's allocated
/// bytes both stay under stated caps.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reply_amplification_is_refused_before_it_is_built() {
    let _turn = turn().await;
    let server = server().await;
    let setup = Client::builder().connect_in_process(&server).await.unwrap();
    setup.create("/big", vec![7u8; 1_000_000], CreateMode::Persistent).await.unwrap();
    let bystander = Bystander::start(&server).await;
    let mut raw = Raw::session(&server).await;
    let base = reset_peak();

    let get_big = Request::GetData { path: "/big".into(), watch: false };
    let amplify = Request::MultiRead(vec![get_big.clone(); 2900]);
    let xid = raw.send_all(std::slice::from_ref(&amplify)).await;
    let (h, _) = raw.reply().await.expect("an answer, not a dead server");
    assert_eq!((h.xid, h.err), (xid, ErrorCode::MarshallingError.as_i32()), "refused");
    // Twenty more in one write, then a plain read: all answered, the connection is kept.
    raw.send_all(&vec![amplify; 20]).await;
    for _ in 0..20 {
        assert_eq!(raw.reply().await.expect("answer").0.err, ErrorCode::MarshallingError.as_i32());
    }
    raw.send_all(&[Request::Exists { path: "/big".into(), watch: false }]).await;
    assert_eq!(raw.reply().await.expect("answer").0.err, 0);

    // Forty 3 MB replies (each under the 4 MiB reply limit) pipelined and left unread for a
    // while: the server stops serving the connection once 4 MiB wait for it.
    raw.send_all(&vec![Request::MultiRead(vec![get_big; 3]); 40]).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let queued_while_unread = server.queued_bytes();
    for _ in 0..40 {
        let (h, body) = raw.reply().await.expect("answer");
        assert_eq!(h.err, 0);
        assert!(body.len() > 3_000_000);
    }
    let grew = peak_bytes().saturating_sub(base);
    eprintln!(
        "amplification: queued while unread {queued_while_unread}, server peak queued {}, process peak growth {grew}",
        server.peak_queued_bytes()
    );
    assert!(queued_while_unread <= 12 * MIB, "{queued_while_unread} bytes queued for a client that does not read");
    assert!(server.peak_queued_bytes() <= 12 * MIB, "peak queued {}", server.peak_queued_bytes());
    assert!(grew < 64 * MIB, "the process allocated {grew} bytes more during the attack");
    bystander.check("amplification").await;
    assert!(alive(&server).await);
}

/// Ephemeral names chosen to share one Java hash: creating them, listing them, `getEphemerals`
/// and closing their session (which deletes them all) cost what ordinary names cost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn colliding_names_cost_what_other_names_cost() {
    const N: usize = 25_000;
    let _turn = turn().await;
    let server = server().await;
    let watcher = Client::builder().connect_in_process(&server).await.unwrap();
    watcher.create("/eph", b"", CreateMode::Persistent).await.unwrap();
    let bystander = Bystander::start(&server).await;
    let mut raw = Raw::session(&server).await;
    let paths: Vec<String> = colliding_names(N).into_iter().map(|n| format!("/eph/{n}")).collect();
    create_all(&mut raw, &paths, CreateMode::Ephemeral).await;
    assert_eq!(watcher.get_children("/eph").await.unwrap().len(), N);
    raw.send_all(&[Request::GetEphemerals { prefix: "/".into() }]).await;
    let (h, body) = raw.reply().await.expect("getEphemerals answer");
    assert_eq!(h.err, 0);
    assert_eq!(i32::from_be_bytes(body[..4].try_into().unwrap()) as usize, N);
    raw.send_all(&[Request::CloseSession]).await;
    assert_eq!(raw.reply().await.expect("closeSession answer").0.err, 0);
    assert!(watcher.get_children("/eph").await.unwrap().is_empty(), "the session's ephemerals are gone");
    bystander.check("hash collisions").await;
    assert!(alive(&server).await);
}

/// One connection pipelining expensive reads (`getAllChildrenNumber` of a 20 000-node subtree,
/// 250 times in one write) is served in turns with everyone else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expensive_reads_are_served_in_turns() {
    let _turn = turn().await;
    let server = server().await;
    let mut builder = Raw::session(&server).await;
    let mut paths = vec!["/tree".to_string()];
    for i in 0..100 {
        paths.push(format!("/tree/{i}"));
        paths.extend((0..200).map(|j| format!("/tree/{i}/{j}")));
    }
    create_all(&mut builder, &paths, CreateMode::Persistent).await;
    let bystander = Bystander::start(&server).await;
    let mut raw = Raw::session(&server).await;
    // Alternating with a small subtree, so that every count of /tree walks it again (the server
    // keeps only the last count, until the next create or delete).
    let count = |path: &str| Request::GetAllChildrenNumber { path: path.into() };
    let requests: Vec<Request> = (0..250).flat_map(|_| [count("/tree"), count("/tree/7")]).collect();
    raw.send_all(&requests).await;
    for _ in 0..250 {
        assert_eq!(raw.count_reply().await, Some((0, 20_100)));
        assert_eq!(raw.count_reply().await, Some((0, 200)));
    }
    bystander.check("expensive reads").await;
    assert!(alive(&server).await);
}

/// With the default settings the words that show sessions, watches and ephemeral paths answer
/// only ZooKeeper's refusal line; `srvr` answers, and shows none of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_letter_words_leak_nothing_by_default() {
    let _turn = turn().await;
    let server = server().await;
    let victim = Client::builder().connect_in_process(&server).await.unwrap();
    victim.create("/private-ephemeral", b"", CreateMode::Ephemeral).await.unwrap();
    let _watch = victim.exists_and_watch("/private-watched").await.unwrap();
    let sid = format!("{:x}", victim.session_id());
    let addr = server.local_addr().unwrap();
    for word in ["dump", "wchc", "wchp", "cons", "stat", "mntr", "envi", "conf", "ruok", "srvr"] {
        let mut t = tokio::net::TcpStream::connect(addr).await.unwrap();
        t.write_all(word.as_bytes()).await.unwrap();
        let mut answer = String::new();
        tokio::time::timeout(Duration::from_secs(10), t.read_to_string(&mut answer)).await.unwrap().unwrap();
        assert!(!answer.contains("private") && !answer.contains(&sid), "{word} leaks: {answer}");
        if word == "srvr" {
            assert!(answer.contains("Mode: standalone"), "{answer}");
        } else {
            assert_eq!(answer, format!("{word} is not executed because it is not in the whitelist.\n"));
        }
    }
}

/// One address holding its whole per-address allowance of idle connections locks out nobody
/// else; the limits are the ones configured, and the total cap holds across addresses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_lock_out_the_others() {
    let _turn = turn().await;
    let server = conclave_core::Server::builder()
        .tick_time(Duration::from_millis(250))
        .max_connections_per_ip(8)
        .max_connections(12)
        .start()
        .await
        .unwrap();
    let port = server.local_addr().unwrap().port();
    let from = |ip: [u8; 4]| async move {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind((std::net::Ipv4Addr::from(ip), 0).into()).unwrap();
        socket.connect((std::net::Ipv4Addr::LOCALHOST, port).into()).await.unwrap()
    };
    let refused = |mut t: tokio::net::TcpStream| async move {
        let mut b = [0u8; 1];
        matches!(tokio::time::timeout(Duration::from_secs(5), t.read(&mut b)).await, Ok(Ok(0) | Err(_)))
    };
    let bystander = Bystander::start(&server).await;
    let mut idle = Vec::new();
    for _ in 0..8 {
        idle.push(from([127, 0, 0, 1]).await);
    }
    assert!(refused(from([127, 0, 0, 1]).await).await, "the ninth from one address is refused");
    // Another address still gets a session.
    let other = Raw::handshake(from([127, 0, 0, 2]).await).await;
    assert!(other.session_id != 0);
    // The total cap: 8 + 1 open, 3 more fit, the next is refused whatever its address.
    for _ in 0..3 {
        idle.push(from([127, 0, 0, 3]).await);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(refused(from([127, 0, 0, 4]).await).await, "the thirteenth connection is refused");
    bystander.check("same-address lockout").await;
    assert!(alive(&server).await);
}

/// The attacks that already failed keep failing, beside a bystander: bad frame lengths,
/// handshakes dribbled a byte at a time, a client that never reads its replies, a multi of
/// 15 000 creates, a path of 900 KB, a chain of nodes 2 000 deep, and identities piled up on
/// one connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn known_attacks_still_fail() {
    let _turn = turn().await;
    let server = server().await;
    let setup = Client::builder().connect_in_process(&server).await.unwrap();
    setup.create("/half", vec![1u8; 500_000], CreateMode::Persistent).await.unwrap();
    setup.create("/m", b"", CreateMode::Persistent).await.unwrap();
    let bystander = Bystander::start(&server).await;

    for len in [-1i32, i32::MAX, 0x10_0000] {
        let mut t = server.connect_in_process().unwrap();
        let mut f = BytesMut::new();
        f.put_i32(len);
        f.put_slice(&[0; 64]);
        t.write_all(&f).await.unwrap();
        let mut rest = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), t.read_to_end(&mut rest)).await.unwrap();
        assert!(rest.is_empty(), "bad length {len}: closed without an answer");
    }

    let dribblers: Vec<_> = (0..20)
        .map(|_| {
            let mut t = server.connect_in_process().unwrap();
            tokio::spawn(async move {
                for _ in 0..20 {
                    if t.write_all(&[0]).await.is_err() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            })
        })
        .collect();

    // 2 000 replies of 500 KB (1 GB) asked for and never read.
    let mut deaf = Raw::session(&server).await;
    deaf.send_all(&vec![Request::GetData { path: "/half".into(), watch: false }; 2000]).await;

    let mut raw = Raw::session(&server).await;
    let creates: Vec<Request> = (0..15_000).map(|i| create(format!("/m/{i}"), None, CreateMode::Persistent)).collect();
    raw.send_all(&[Request::Multi(creates)]).await;
    assert_eq!(raw.reply().await.expect("multi answer").0.err, 0);
    assert_eq!(setup.get_all_children_number("/m").await.unwrap(), 15_000);

    let long = format!("/{}", "x".repeat(900_000));
    raw.send_all(&[create(long.clone(), None, CreateMode::Persistent)]).await;
    assert_eq!(raw.reply().await.expect("long path answer").0.err, 0);
    let mut deep = String::new();
    let chain: Vec<String> = (0..2000)
        .map(|_| {
            deep.push_str("/d");
            deep.clone()
        })
        .collect();
    create_all(&mut raw, &chain, CreateMode::Persistent).await;
    assert_eq!(setup.get_all_children_number("/d").await.unwrap(), 1999);

    // Identities piled up on one connection: refused past 256, the connection closed.
    let mut identities = Raw::session(&server).await;
    let auths: Vec<Request> = (0..300)
        .map(|i| {
            Request::Auth(AuthPacket { auth_type: 0, scheme: "digest".into(), auth: Bytes::from(format!("u{i}:pw")) })
        })
        .collect();
    identities.send_all(&auths).await;
    let mut answers = Vec::new();
    while let Some((h, _)) = identities.reply().await {
        answers.push(h.err);
    }
    assert_eq!(answers.len(), 256, "255 accepted (the address is the first identity), then one refusal");
    assert_eq!(answers.last(), Some(&ErrorCode::AuthFailed.as_i32()));

    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(server.queued_bytes() <= 12 * MIB, "{} bytes queued", server.queued_bytes());
    for d in dribblers {
        d.await.unwrap();
    }
    drop(deaf);
    bystander.check("known attacks").await;
    assert!(alive(&server).await);
}
