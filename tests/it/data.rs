//! Node data arguments: every operation that takes node data (`create`, `set_data`,
//! `create_protected`, `create_all`, transactions, `Op`s and fenced transactions) takes text or
//! bytes, borrowed or owned, through `conclave::Data`, and stores exactly those bytes. Written
//! once, run on both backends.

use conclave::lock::Mutex;
use conclave::{Bytes, Client, CreateMode, Op, Result, RetryPolicy};

use crate::conformance;
use crate::support::Env;

conformance!(every_data_form_is_stored_as_given, borrowed_data_need_not_outlive_the_future);

/// The bytes of `path`.
async fn data(c: &Client, path: &str) -> Result<Bytes> {
    Ok(c.get_data(path).await?.0)
}

/// Asserts that each node holds its expected bytes; `what` names the operation that wrote them.
async fn assert_stored(c: &Client, what: &str, expected: &[(&str, &[u8])]) -> Result<()> {
    for (path, bytes) in expected {
        assert_eq!(data(c, path).await?, bytes, "{what} {path}");
    }
    Ok(())
}

/// `&str`, `String`, `&String`, `&[u8]`, `b"..."`, `Vec<u8>`, `&Vec<u8>`, `Bytes` and `&Bytes`
/// are accepted wherever node data is, and read back byte for byte (ZooKeeper stores data as
/// opaque bytes: Programmer's Guide, "Data Access").
async fn every_data_form_is_stored_as_given(env: Env) -> Result<()> {
    let c = env.client().await;
    let text = String::from("string");
    let slice: &[u8] = &[0, 1, 0xff];
    let vec = vec![b'v', b'e', b'c'];
    let bytes = Bytes::from_static(b"bytes");

    c.create("/str", "text", CreateMode::Persistent).await?;
    c.create("/string", text.clone(), CreateMode::Persistent).await?;
    c.create("/string-ref", &text, CreateMode::Persistent).await?;
    c.create("/slice", slice, CreateMode::Persistent).await?;
    c.create("/array", b"array", CreateMode::Persistent).await?;
    c.create("/vec", vec.clone(), CreateMode::Persistent).await?;
    c.create("/vec-ref", &vec, CreateMode::Persistent).await?;
    c.create("/bytes", bytes.clone(), CreateMode::Persistent).await?;
    c.create("/bytes-ref", &bytes, CreateMode::Persistent).await?;
    let created: [(&str, &[u8]); 9] = [
        ("/str", b"text"),
        ("/string", b"string"),
        ("/string-ref", b"string"),
        ("/slice", slice),
        ("/array", b"array"),
        ("/vec", b"vec"),
        ("/vec-ref", b"vec"),
        ("/bytes", b"bytes"),
        ("/bytes-ref", b"bytes"),
    ];
    assert_stored(&c, "create", &created).await?;

    c.set_data("/str", "set text", None).await?;
    assert_eq!(data(&c, "/str").await?, "set text");
    c.set_data("/str", String::from("set string"), None).await?;
    assert_eq!(data(&c, "/str").await?, "set string");
    c.set_data("/str", slice, None).await?;
    assert_eq!(data(&c, "/str").await?, slice);
    c.set_data("/str", b"set array", None).await?;
    assert_eq!(data(&c, "/str").await?, "set array");
    c.set_data("/str", b"set vec".to_vec(), None).await?;
    assert_eq!(data(&c, "/str").await?, "set vec");
    c.set_data("/str", Bytes::from_static(b"set bytes"), None).await?;
    assert_eq!(data(&c, "/str").await?, "set bytes");

    c.transaction()
        .create("/t-str", "t text", CreateMode::Persistent)
        .create("/t-string", String::from("t string"), CreateMode::Persistent)
        .create("/t-slice", slice, CreateMode::Persistent)
        .create("/t-array", b"t array", CreateMode::Persistent)
        .create("/t-vec", b"t vec".to_vec(), CreateMode::Persistent)
        .create("/t-bytes", Bytes::from_static(b"t bytes"), CreateMode::Persistent)
        .set_data("/t-str", "t text 2", None)
        .commit()
        .await?;
    let committed: [(&str, &[u8]); 6] = [
        ("/t-str", b"t text 2"),
        ("/t-string", b"t string"),
        ("/t-slice", slice),
        ("/t-array", b"t array"),
        ("/t-vec", b"t vec"),
        ("/t-bytes", b"t bytes"),
    ];
    assert_stored(&c, "transaction", &committed).await?;

    c.multi([
        Op::create("/op-str", "op text", CreateMode::Persistent),
        Op::create("/op-string", String::from("op string"), CreateMode::Persistent),
        Op::create("/op-slice", slice, CreateMode::Persistent),
        Op::create("/op-array", b"op array", CreateMode::Persistent),
        Op::create("/op-vec", b"op vec".to_vec(), CreateMode::Persistent),
        Op::create("/op-bytes", Bytes::from_static(b"op bytes"), CreateMode::Persistent),
        Op::set_data("/op-vec", vec.clone(), None),
    ])
    .await?;
    let applied: [(&str, &[u8]); 6] = [
        ("/op-str", b"op text"),
        ("/op-string", b"op string"),
        ("/op-slice", slice),
        ("/op-array", b"op array"),
        ("/op-vec", b"vec"),
        ("/op-bytes", b"op bytes"),
    ];
    assert_stored(&c, "Op", &applied).await?;

    let (protected, _) =
        c.create_protected("/protected", "protected", CreateMode::Persistent, &RetryPolicy::default()).await?;
    assert_eq!(data(&c, &protected).await?, "protected");
    c.create_all("/deep/er/node", &text, CreateMode::Persistent).await?;
    assert_eq!(data(&c, "/deep/er/node").await?, "string");

    let guard = Mutex::new(c.clone(), "/lock").lock().await?;
    guard
        .fenced()
        .create("/fenced", String::from("fenced"), CreateMode::Persistent)
        .set_data("/str", "fenced text", None)
        .commit()
        .await?;
    guard.release().await?;
    assert_eq!(data(&c, "/fenced").await?, "fenced");
    assert_eq!(data(&c, "/str").await?, "fenced text");
    Ok(())
}

/// Borrowed data is copied when the request is queued: futures built from temporaries can be
/// collected and awaited later (pipelining), and apply in call order.
async fn borrowed_data_need_not_outlive_the_future(env: Env) -> Result<()> {
    let c = env.client().await;
    let created: Vec<_> =
        (0..5).map(|i| c.create(&format!("/n{i}"), format!("v{i}").as_bytes(), CreateMode::Persistent)).collect();
    let set: Vec<_> = (0..5).map(|i| c.set_data(&format!("/n{i}"), format!("w{i}").as_str(), None)).collect();
    for future in created {
        future.await?;
    }
    for future in set {
        assert_eq!(future.await?.version, 1);
    }
    for i in 0..5 {
        assert_eq!(data(&c, &format!("/n{i}")).await?, format!("w{i}").as_bytes());
    }
    Ok(())
}
