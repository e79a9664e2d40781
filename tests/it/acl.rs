//! ACLs and authentication (protocol reference section 10): which permission each operation
//! needs, the `world`, `auth`, `digest` and `ip` schemes, and what a refused scheme does.

use conclave::{Acl, CreateMode, CreateOptions, Id, Perms, SessionState};
use conclave_core::{Error, Result};

use crate::conformance;
use crate::support::{within, Env};

conformance!(
    digest_acl_denies_others,
    auth_scheme_expands_to_the_caller,
    ip_scheme_and_read_only_world,
    get_acl_redacts_digests_without_admin,
    unknown_scheme_fails_the_session
);

fn bob_all() -> Vec<Acl> {
    vec![Acl::new(Perms::ALL, Id::digest("bob", "secret"))]
}

/// A node whose ACL names only `digest:bob` refuses everyone else every permission, while the
/// right credentials (added at connect or later) grant them; a wrong password is not an error,
/// only a different identity.
async fn digest_acl_denies_others(env: Env) -> Result<()> {
    let bob = env.connect(env.builder().digest_auth("bob", "secret")).await;
    bob.create("/sec", b"s", CreateOptions::new(CreateMode::Persistent).acl(bob_all())).await?;
    bob.create("/sec/child", b"", CreateOptions::new(CreateMode::Persistent).acl(bob_all())).await?;

    let anon = env.client().await;
    assert_eq!(anon.get_data("/sec").await, Err(Error::NoAuth));
    assert_eq!(anon.set_data("/sec", b"x", None).await, Err(Error::NoAuth));
    assert_eq!(anon.get_children("/sec").await, Err(Error::NoAuth));
    assert_eq!(anon.get_acl("/sec").await, Err(Error::NoAuth));
    assert_eq!(anon.set_acl("/sec", Acl::open_unsafe(), None).await, Err(Error::NoAuth));
    assert_eq!(anon.create("/sec/new", b"", CreateMode::Persistent).await, Err(Error::NoAuth));
    assert_eq!(
        anon.create("/sec/child", b"", CreateMode::Persistent).await,
        Err(Error::NoAuth),
        "NOAUTH (parent) wins over NODEEXISTS"
    );
    assert_eq!(anon.delete("/sec/child", None).await, Err(Error::NoAuth), "DELETE is checked on the parent");
    assert_eq!(anon.delete("/sec/none", None).await, Err(Error::NoAuth), "NOAUTH wins over the node's NONODE");
    assert_eq!(anon.get_data("/sec/none").await, Err(Error::NoNode), "reads check existence first");
    // ZooKeeper 3.8.0 does not check READ for exists (ZOOKEEPER-2590 came later).
    assert!(anon.exists("/sec").await?.is_some());

    anon.add_auth("digest", b"bob:wrong").await?;
    assert_eq!(anon.get_data("/sec").await, Err(Error::NoAuth));
    anon.add_auth("digest", b"bob:secret").await?;
    assert_eq!(anon.get_data("/sec").await?.0.as_ref(), b"s");
    Ok(())
}

/// The `auth` scheme stands for every authenticated identity of the caller at the time the ACL
/// is set; without any, the ACL is invalid.
async fn auth_scheme_expands_to_the_caller(env: Env) -> Result<()> {
    let anon = env.client().await;
    let creator = CreateOptions::new(CreateMode::Persistent).acl(Acl::creator_all());
    assert_eq!(anon.create("/mine", b"", creator.clone()).await, Err(Error::InvalidAcl));
    let alice = env.connect(env.builder().digest_auth("alice", "pw")).await;
    alice.create("/mine", b"", creator).await?;
    let (acl, _) = alice.get_acl("/mine").await?;
    assert_eq!(acl, vec![Acl::new(Perms::ALL, Id::digest("alice", "pw"))]);
    assert_eq!(anon.get_data("/mine").await, Err(Error::NoAuth));
    Ok(())
}

/// `ip` ACLs match the client's address by prefix; a `world` READ-only ACL allows reads only.
async fn ip_scheme_and_read_only_world(env: Env) -> Result<()> {
    let c = env.client().await;
    let local = vec![Acl::new(Perms::ALL, Id::new("ip", "127.0.0.0/8"))];
    c.create("/local", b"l", CreateOptions::new(CreateMode::Persistent).acl(local)).await?;
    assert_eq!(c.get_data("/local").await?.0.as_ref(), b"l");
    let far = vec![Acl::new(Perms::ALL, Id::new("ip", "10.1.2.3"))];
    c.create("/far", b"", CreateOptions::new(CreateMode::Persistent).acl(far)).await?;
    assert_eq!(c.get_data("/far").await, Err(Error::NoAuth));
    let bad_ip = vec![Acl::new(Perms::ALL, Id::new("ip", "not-an-address"))];
    assert_eq!(
        c.create("/bad", b"", CreateOptions::new(CreateMode::Persistent).acl(bad_ip)).await,
        Err(Error::InvalidAcl)
    );

    c.create("/ro", b"r", CreateOptions::new(CreateMode::Persistent).acl(Acl::read_unsafe())).await?;
    assert_eq!(c.get_data("/ro").await?.0.as_ref(), b"r");
    assert_eq!(c.set_data("/ro", b"w", None).await, Err(Error::NoAuth));
    assert_eq!(c.create("/ro/child", b"", CreateMode::Persistent).await, Err(Error::NoAuth));
    Ok(())
}

/// getACL needs READ or ADMIN; without ADMIN the digest hashes are redacted.
async fn get_acl_redacts_digests_without_admin(env: Env) -> Result<()> {
    let bob = env.connect(env.builder().digest_auth("bob", "secret")).await;
    let acl = vec![Acl::new(Perms::ALL, Id::digest("bob", "secret")), Acl::new(Perms::READ, Id::anyone())];
    bob.create("/n", b"", CreateOptions::new(CreateMode::Persistent).acl(acl.clone())).await?;
    assert_eq!(bob.get_acl("/n").await?.0, acl);
    let anon = env.client().await;
    let (seen, _) = anon.get_acl("/n").await?;
    assert_eq!(seen[0].id, Id::new("digest", "bob:x"));
    assert_eq!(seen[1], acl[1]);
    Ok(())
}

/// addAuth with a scheme the server does not know fails the session: AUTHFAILED, then the
/// connection is closed and the client's state is the terminal `AuthFailed`.
async fn unknown_scheme_fails_the_session(env: Env) -> Result<()> {
    let c = env.client().await;
    assert_eq!(c.add_auth("nonsense", b"x").await, Err(Error::AuthFailed));
    within(5, async {
        let mut states = c.state_stream();
        use futures::StreamExt;
        while let Some(s) = states.next().await {
            if s == SessionState::AuthFailed {
                return;
            }
        }
    })
    .await;
    assert_eq!(c.get_data("/").await, Err(Error::AuthFailed));
    Ok(())
}
