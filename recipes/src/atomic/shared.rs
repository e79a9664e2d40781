//! [`SharedValue`] and [`SharedCount`]: a value in one node that every participant reads, sets
//! only at the version it read, and follows as a stream of changes, with Apache Curator's
//! layouts (`SharedValue`: the node's data as is; `SharedCount`: a 4-byte big-endian int).

use bytes::Bytes;
use conclave_core::{path, Client, CreateMode, Error as ZkError, Stat};
use futures::Stream;

use crate::error::{Error, Result};
use crate::internal::watch::{self, Step};

/// A value with the version it was read at (the version a [`SharedValue::try_set`] expects).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned<T> {
    /// The value.
    pub value: T,
    /// The node's data version when it held the value.
    pub version: i32,
    /// The zxid of the write that set it (the order of the changes, even across a delete and a
    /// re-create, which resets the version).
    pub mzxid: i64,
}

/// A value shared through one node (Curator's `SharedValue` layout: the data as is).
#[derive(Debug, Clone)]
pub struct SharedValue {
    client: Client,
    path: String,
}

impl SharedValue {
    /// The value at `path`.
    pub fn new(client: Client, path: &str) -> SharedValue {
        SharedValue { client, path: path.to_string() }
    }

    /// The node's path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The current value and its version; `None` if the node does not exist.
    ///
    /// # Errors
    /// `InvalidPath`; the session's terminal error (connection losses are ridden out).
    pub async fn get(&self) -> Result<Option<Versioned<Bytes>>> {
        path::validate_path(&self.path)?;
        let (client, node) = (&self.client, self.path.as_str());
        watch::answered(client, || async move {
            match client.get_data(node).await {
                Ok((data, stat)) => Ok(Some(versioned(data, &stat))),
                Err(ZkError::NoNode) => Ok(None),
                Err(e) => Err(e.into()),
            }
        })
        .await
    }

    /// Sets `value` if the node is still at `expected_version` (as read by [`SharedValue::get`];
    /// `-1` creates the node, with its parents, if it does not exist): `true` if set, `false`
    /// if someone else wrote first (nothing written).
    ///
    /// # Errors
    /// `InvalidPath`; `NoAuth`; the client's errors. A connection loss is reported as such
    /// (`ConnectionLoss`): whether the value was set is then unknown.
    pub async fn try_set(&self, value: impl Into<conclave_core::Data>, expected_version: i32) -> Result<bool> {
        path::validate_path(&self.path)?;
        let value = value.into();
        let written = if expected_version == -1 {
            self.client.create_all(&self.path, value, CreateMode::Persistent).await.map(drop)
        } else {
            self.client.set_data(&self.path, value, Some(expected_version)).await.map(drop)
        };
        match written {
            Ok(()) => Ok(true),
            Err(ZkError::BadVersion | ZkError::NodeExists | ZkError::NoNode) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// The value's changes: the current value first (once the node exists), then every later
    /// one this client sees, in the order they were written. After a reconnect the node is read
    /// again (a change made meanwhile is seen, though intermediate ones may be skipped); a value
    /// is never followed by an older one. A deleted node yields nothing until it is re-created.
    /// The stream ends after the first error (the session's end), which it yields.
    pub fn changes(&self) -> impl Stream<Item = Result<Versioned<Bytes>>> + Send + 'static {
        let (client, node) = (self.client.clone(), self.path.clone());
        async_stream::stream! {
            if let Err(e) = path::validate_path(&node) {
                yield Err(Error::from(e));
                return;
            }
            let mut last = i64::MIN;
            loop {
                let seen = last;
                let next = watch::until(&client, |round| {
                    let node = node.as_str();
                    async move {
                        match round.watch_data(node).await? {
                            Some((data, stat)) if stat.mzxid > seen => Ok(Step::Done(versioned(data, &stat))),
                            Some(_) => Ok(Step::Wait),
                            None => {
                                // Gone: wait for it to come back.
                                round.watch_exists(node).await?;
                                Ok(Step::Wait)
                            }
                        }
                    }
                })
                .await;
                match next {
                    Ok(v) => {
                        last = v.mzxid;
                        yield Ok(v);
                    }
                    Err(e) => {
                        yield Err(e);
                        return;
                    }
                }
            }
        }
    }
}

fn versioned(data: Bytes, stat: &Stat) -> Versioned<Bytes> {
    Versioned { value: data, version: stat.version, mzxid: stat.mzxid }
}

/// A 32-bit count shared through one node (Curator's `SharedCount` layout: 4 bytes big-endian).
#[derive(Debug, Clone)]
pub struct SharedCount {
    value: SharedValue,
}

impl SharedCount {
    /// The count at `path`.
    pub fn new(client: Client, path: &str) -> SharedCount {
        SharedCount { value: SharedValue::new(client, path) }
    }

    /// The current count and its version; `None` if the node does not exist.
    ///
    /// # Errors
    /// As [`SharedValue::get`]; `InvalidArgument` if the node's data is not 4 bytes.
    pub async fn get(&self) -> Result<Option<Versioned<i32>>> {
        match self.value.get().await? {
            Some(v) => Ok(Some(count(self.value.path(), v)?)),
            None => Ok(None),
        }
    }

    /// Sets `count` if the node is still at `expected_version` (`-1`: create it): `true` if set.
    ///
    /// # Errors
    /// As [`SharedValue::try_set`].
    pub async fn try_set(&self, count: i32, expected_version: i32) -> Result<bool> {
        self.value.try_set(count.to_be_bytes().to_vec(), expected_version).await
    }

    /// The count's changes, as [`SharedValue::changes`].
    pub fn changes(&self) -> impl Stream<Item = Result<Versioned<i32>>> + Send + 'static {
        use futures::StreamExt;
        let path = self.value.path().to_string();
        self.value.changes().map(move |v| v.and_then(|v| count(&path, v)))
    }
}

fn count(path: &str, v: Versioned<Bytes>) -> Result<Versioned<i32>> {
    let bytes: [u8; 4] = v.value[..].try_into().map_err(|_| {
        Error::from(ZkError::InvalidArgument(format!("{path}: {} bytes of data, not a 4-byte count", v.value.len())))
    })?;
    Ok(Versioned { value: i32::from_be_bytes(bytes), version: v.version, mzxid: v.mzxid })
}
