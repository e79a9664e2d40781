//! Property tests: every record round-trips, and no decoder panics on arbitrary bytes.

use bytes::{Bytes, BytesMut};
use proptest::collection::vec;
use proptest::prelude::*;

use super::*;

fn s() -> impl Strategy<Value = String> {
    prop_oneof!["[a-z/]{0,12}", any::<String>()]
}

fn buf() -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..40).prop_map(Bytes::from)
}

fn opt_buf() -> impl Strategy<Value = Option<Bytes>> {
    proptest::option::of(buf())
}

fn stat() -> impl Strategy<Value = Stat> {
    (
        (any::<i64>(), any::<i64>(), any::<i64>(), any::<i64>()),
        (any::<i32>(), any::<i32>(), any::<i32>()),
        (any::<i64>(), any::<i32>(), any::<i32>(), any::<i64>()),
    )
        .prop_map(|((czxid, mzxid, ctime, mtime), (version, cversion, aversion), (eo, dl, nc, pzxid))| Stat {
            czxid,
            mzxid,
            ctime,
            mtime,
            version,
            cversion,
            aversion,
            ephemeral_owner: eo,
            data_length: dl,
            num_children: nc,
            pzxid,
        })
}

fn acl() -> impl Strategy<Value = Acl> {
    (any::<i32>(), s(), s()).prop_map(|(p, scheme, id)| Acl::new(Perms(p), Id::new(scheme, id)))
}

fn create() -> impl Strategy<Value = CreateRequest> {
    (s(), opt_buf(), vec(acl(), 0..3), any::<i32>(), any::<i64>())
        .prop_map(|(path, data, acl, flags, ttl)| CreateRequest { path, data, acl, flags, ttl })
}

fn set_watches() -> impl Strategy<Value = SetWatches> {
    (any::<i64>(), vec(s(), 0..3), vec(s(), 0..3), vec(s(), 0..3), vec(s(), 0..3), vec(s(), 0..3)).prop_map(
        |(z, d, e, c, p, pr)| SetWatches {
            relative_zxid: z,
            data_watches: d,
            exist_watches: e,
            child_watches: c,
            persistent_watches: p,
            persistent_recursive_watches: pr,
        },
    )
}

fn write_op() -> impl Strategy<Value = Request> {
    prop_oneof![
        create().prop_map(Request::Create),
        create().prop_map(Request::Create2),
        create().prop_map(Request::CreateContainer),
        create().prop_map(Request::CreateTtl),
        (s(), any::<i32>()).prop_map(|(path, version)| Request::Delete { path, version }),
        (s(), opt_buf(), any::<i32>()).prop_map(|(path, data, version)| Request::SetData { path, data, version }),
        (s(), any::<i32>()).prop_map(|(path, version)| Request::Check { path, version }),
    ]
}

fn read_op() -> impl Strategy<Value = Request> {
    prop_oneof![
        (s(), any::<bool>()).prop_map(|(path, watch)| Request::GetData { path, watch }),
        (s(), any::<bool>()).prop_map(|(path, watch)| Request::GetChildren { path, watch }),
    ]
}

/// Requests whose decoded form equals the encoded one. The `ttl` of non-TTL creates is not on
/// the wire, so those are normalised before comparing.
fn request() -> impl Strategy<Value = Request> {
    prop_oneof![
        write_op(),
        read_op(),
        (s(), any::<bool>()).prop_map(|(path, watch)| Request::Exists { path, watch }),
        (s(), any::<bool>()).prop_map(|(path, watch)| Request::GetChildren2 { path, watch }),
        s().prop_map(|path| Request::GetAcl { path }),
        (s(), vec(acl(), 0..3), any::<i32>()).prop_map(|(path, acl, version)| Request::SetAcl { path, acl, version }),
        s().prop_map(|path| Request::Sync { path }),
        Just(Request::Ping),
        Just(Request::WhoAmI),
        Just(Request::CloseSession),
        vec(write_op(), 0..4).prop_map(Request::Multi),
        vec(read_op(), 0..4).prop_map(Request::MultiRead),
        (proptest::option::of(s()), proptest::option::of(s()), proptest::option::of(s()), any::<i64>()).prop_map(
            |(joining_servers, leaving_servers, new_members, cur_config_id)| {
                Request::Reconfig { joining_servers, leaving_servers, new_members, cur_config_id }
            }
        ),
        (s(), any::<i32>()).prop_map(|(path, watcher_type)| Request::CheckWatches { path, watcher_type }),
        (s(), any::<i32>()).prop_map(|(path, watcher_type)| Request::RemoveWatches { path, watcher_type }),
        (any::<i32>(), s(), buf()).prop_map(|(auth_type, scheme, auth)| Request::Auth(AuthPacket {
            auth_type,
            scheme,
            auth
        })),
        set_watches().prop_map(|mut sw| {
            sw.persistent_watches.clear();
            sw.persistent_recursive_watches.clear();
            Request::SetWatches(sw)
        }),
        set_watches().prop_map(Request::SetWatches2),
        buf().prop_map(|token| Request::Sasl { token }),
        s().prop_map(|prefix| Request::GetEphemerals { prefix }),
        s().prop_map(|path| Request::GetAllChildrenNumber { path }),
        (s(), any::<i32>()).prop_map(|(path, mode)| Request::AddWatch { path, mode }),
    ]
}

fn normalise(r: Request) -> Request {
    let fix = |mut c: CreateRequest| {
        c.ttl = -1;
        c
    };
    match r {
        Request::Create(c) => Request::Create(fix(c)),
        Request::Create2(c) => Request::Create2(fix(c)),
        Request::CreateContainer(c) => Request::CreateContainer(fix(c)),
        Request::Multi(ops) => Request::Multi(ops.into_iter().map(normalise).collect()),
        other => other,
    }
}

fn multi_result() -> impl Strategy<Value = MultiResult> {
    prop_oneof![
        s().prop_map(|path| MultiResult::Create { path }),
        (s(), stat()).prop_map(|(path, stat)| MultiResult::Create2 { path, stat }),
        Just(MultiResult::Delete),
        stat().prop_map(|stat| MultiResult::SetData { stat }),
        Just(MultiResult::Check),
        (opt_buf(), stat()).prop_map(|(data, stat)| MultiResult::GetData { data, stat }),
        vec(s(), 0..3).prop_map(|children| MultiResult::GetChildren { children }),
        any::<i32>().prop_map(|err| MultiResult::Error { err }),
    ]
}

/// Responses with the op code they answer.
fn response() -> impl Strategy<Value = (OpCode, Response)> {
    prop_oneof![
        Just((OpCode::Delete, Response::Empty)),
        s().prop_map(|p| (OpCode::Create, Response::Path(p))),
        s().prop_map(|p| (OpCode::Sync, Response::Path(p))),
        (s(), stat()).prop_map(|(path, stat)| (OpCode::Create2, Response::Created { path, stat })),
        stat().prop_map(|st| (OpCode::Exists, Response::Stat(st))),
        (opt_buf(), stat()).prop_map(|(data, stat)| (OpCode::GetData, Response::Data { data, stat })),
        (vec(acl(), 0..3), stat()).prop_map(|(acl, stat)| (OpCode::GetAcl, Response::Acl { acl, stat })),
        vec(s(), 0..4).prop_map(|n| (OpCode::GetChildren, Response::Names(n))),
        vec(s(), 0..4).prop_map(|n| (OpCode::GetEphemerals, Response::Names(n))),
        (vec(s(), 0..4), stat())
            .prop_map(|(children, stat)| (OpCode::GetChildren2, Response::Children { children, stat })),
        vec(multi_result(), 0..4).prop_map(|r| (OpCode::Multi, Response::Multi(r))),
        any::<i32>().prop_map(|n| (OpCode::GetAllChildrenNumber, Response::Count(n))),
        any::<i32>().prop_map(|n| (OpCode::AddWatch, Response::Code(n))),
        buf().prop_map(|t| (OpCode::Sasl, Response::Token(t))),
        vec((s(), s()), 0..3).prop_map(|v| (
            OpCode::WhoAmI,
            Response::WhoAmI(v.into_iter().map(|(auth_scheme, user)| ClientInfo { auth_scheme, user }).collect())
        )),
    ]
}

fn roundtrip<T: Encode + Decode + PartialEq + std::fmt::Debug>(x: &T) {
    let mut b = BytesMut::new();
    x.encode(&mut b);
    let mut r = Reader::new(b.freeze());
    assert_eq!(&T::decode(&mut r).unwrap(), x);
    assert!(r.is_empty(), "decoder must consume exactly what the encoder wrote");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn requests_round_trip(req in request()) {
        let mut b = BytesMut::new();
        frame::write_request_frame(&mut b, 7, &req);
        let payload = frame::split_frame(&mut b, usize::MAX).unwrap().unwrap();
        let mut r = Reader::new(payload);
        let h = RequestHeader::decode(&mut r).unwrap();
        prop_assert_eq!(h.xid, 7);
        let decoded = Request::decode(OpCode::from_i32(h.op).unwrap(), &mut r).unwrap();
        prop_assert!(r.is_empty());
        prop_assert_eq!(decoded, normalise(req));
    }

    #[test]
    fn responses_round_trip((op, resp) in response()) {
        let mut b = BytesMut::new();
        resp.encode(&mut b);
        let mut r = Reader::new(b.freeze());
        prop_assert_eq!(Response::decode(op, &mut r).unwrap(), resp);
        prop_assert!(r.is_empty());
    }

    #[test]
    fn records_round_trip(
        st in stat(), a in acl(), (proto, z, t, sid, pw, ro) in (any::<i32>(), any::<i64>(), any::<i32>(), any::<i64>(), buf(), proptest::option::of(any::<bool>())),
        ev in (any::<i32>(), any::<i32>(), s()), hdr in (any::<i32>(), any::<i64>(), any::<i32>()),
        mh in (any::<i32>(), any::<bool>(), any::<i32>()),
    ) {
        roundtrip(&st);
        roundtrip(&a);
        roundtrip(&ConnectRequest { protocol_version: proto, last_zxid_seen: z, timeout: t, session_id: sid, passwd: pw.clone(), read_only: ro });
        roundtrip(&ConnectResponse { protocol_version: proto, timeout: t, session_id: sid, passwd: pw, read_only: ro });
        roundtrip(&WatcherEvent { event_type: ev.0, state: ev.1, path: ev.2 });
        roundtrip(&ReplyHeader { xid: hdr.0, zxid: hdr.1, err: hdr.2 });
        roundtrip(&RequestHeader { xid: hdr.0, op: hdr.2 });
        roundtrip(&MultiHeader { op: mh.0, done: mh.1, err: mh.2 });
    }

    #[test]
    fn no_decoder_panics_on_arbitrary_bytes(bytes in vec(any::<u8>(), 0..300)) {
        let b = Bytes::from(bytes);
        for op in OpCode::ALL {
            let _ = Request::decode(*op, &mut Reader::new(b.clone()));
            let _ = Response::decode(*op, &mut Reader::new(b.clone()));
        }
        let _ = ConnectRequest::decode_bytes(b.clone());
        let _ = ConnectResponse::decode_bytes(b.clone());
        let _ = RequestHeader::decode_bytes(b.clone());
        let _ = ReplyHeader::decode_bytes(b.clone());
        let _ = WatcherEvent::decode_bytes(b.clone());
        let _ = Stat::decode_bytes(b.clone());
        let _ = Acl::decode_bytes(b.clone());
        let _ = AuthPacket::decode_bytes(b.clone());
        let _ = ClientInfo::decode_bytes(b.clone());
        let _ = SetWatches::decode_as(&mut Reader::new(b.clone()), true);
        let mut bm = BytesMut::from(b.as_ref());
        while let Ok(Some(_)) = frame::split_frame(&mut bm, 64) {}
    }

    #[test]
    fn multi_bodies_of_arbitrary_ops_never_panic(ops in vec((any::<i32>(), vec(any::<u8>(), 0..20)), 0..6)) {
        // Multi bodies built from arbitrary headers and bodies: the decoder must reject unknown
        // op codes and truncated bodies with an error.
        let mut b = BytesMut::new();
        for (op, body) in &ops {
            MultiHeader { op: *op, done: false, err: -1 }.encode(&mut b);
            b.extend_from_slice(body);
        }
        MultiHeader::END.encode(&mut b);
        let b = b.freeze();
        let _ = Request::decode(OpCode::Multi, &mut Reader::new(b.clone()));
        let _ = Request::decode(OpCode::MultiRead, &mut Reader::new(b.clone()));
        let _ = Response::decode(OpCode::Multi, &mut Reader::new(b));
    }
}

#[test]
fn multi_request_matches_reference_bytes() {
    // Section 14: [create("/x", "", OPEN_ACL_UNSAFE, 0), delete("/y", -1)].
    let req = Request::Multi(vec![
        Request::Create(CreateRequest {
            path: "/x".into(),
            data: Some(Bytes::new()),
            acl: Acl::open_unsafe(),
            flags: 0,
            ttl: -1,
        }),
        Request::Delete { path: "/y".into(), version: -1 },
    ]);
    let mut b = BytesMut::new();
    req.encode_body(&mut b);
    let expected: Vec<u8> = [
        &[0, 0, 0, 1, 0, 0xff, 0xff, 0xff, 0xff][..],
        &[0, 0, 0, 2, b'/', b'x'],
        &[0, 0, 0, 0],
        &[0, 0, 0, 1, 0, 0, 0, 0x1f, 0, 0, 0, 5],
        b"world",
        &[0, 0, 0, 6],
        b"anyone",
        &[0, 0, 0, 0],
        &[0, 0, 0, 2, 0, 0xff, 0xff, 0xff, 0xff],
        &[0, 0, 0, 2, b'/', b'y', 0xff, 0xff, 0xff, 0xff],
        &[0xff, 0xff, 0xff, 0xff, 1, 0xff, 0xff, 0xff, 0xff],
    ]
    .concat();
    assert_eq!(b.as_ref(), expected.as_slice());

    // The failed-multi reply of the reference: OK for the create, NONODE for the delete.
    let resp = Response::Multi(vec![MultiResult::error(ErrorCode::Ok), MultiResult::error(ErrorCode::NoNode)]);
    let mut b = BytesMut::new();
    resp.encode(&mut b);
    let expected: Vec<u8> = [
        &[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0][..],
        &[0xff, 0xff, 0xff, 0xff, 0, 0xff, 0xff, 0xff, 0x9b, 0xff, 0xff, 0xff, 0x9b],
        &[0xff, 0xff, 0xff, 0xff, 1, 0xff, 0xff, 0xff, 0xff],
    ]
    .concat();
    assert_eq!(b.as_ref(), expected.as_slice());
}

#[test]
fn multi_rejects_mixed_read_and_write_ops() {
    let mut b = BytesMut::new();
    Request::MultiRead(vec![Request::Delete { path: "/a".into(), version: -1 }]).encode_body(&mut b);
    assert!(Request::decode(OpCode::MultiRead, &mut Reader::new(b.freeze())).is_err());
    let mut b = BytesMut::new();
    Request::Multi(vec![Request::GetData { path: "/a".into(), watch: false }]).encode_body(&mut b);
    assert!(Request::decode(OpCode::Multi, &mut Reader::new(b.freeze())).is_err());
}
