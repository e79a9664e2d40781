//! The lock family (`conclave::lock`): behaviour on both backends (`basics`, `semaphore`),
//! faults (`faults`), the stress run with its checker and negative control (`stress`), and
//! interoperation with Apache Curator on the same paths (`interop`). The helpers below are
//! shared by these files.

mod basics;
mod faults;
pub(crate) mod interop;
mod semaphore;
pub(crate) mod stress;

use std::time::Duration;

use conclave::{Client, ZkError};

use crate::support::within;

/// The children of `dir` (none if it does not exist).
pub async fn children(client: &Client, dir: &str) -> Vec<String> {
    match client.get_children(dir).await {
        Ok(mut c) => {
            c.sort();
            c
        }
        Err(ZkError::NoNode) => Vec::new(),
        Err(e) => panic!("list {dir}: {e}"),
    }
}

/// Waits until `dir` has exactly `n` children.
#[track_caller]
pub fn until_children(client: &Client, dir: &str, n: usize) -> impl std::future::Future<Output = Vec<String>> {
    let (client, dir) = (client.clone(), dir.to_string());
    within(30, async move {
        loop {
            let c = children(&client, &dir).await;
            if c.len() == n {
                return c;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
}

/// The last path segment.
pub fn name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}
