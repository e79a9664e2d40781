//! [`SharedValue`] and [`SharedCount`]: a value in one node that every participant reads, sets
//! only at the version it read, and follows as a stream of changes, with Apache Curator's
//! layouts (`SharedValue`: the node's data as is; `SharedCount`: a 4-byte big-endian int), or
//! typed by a [`Codec`] of your own.

use std::sync::Arc;

use bytes::Bytes;
use conclave_core::{path, Client, CreateMode, Data, Error as ZkError, Stat};
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

/// How a [`SharedValue`]'s values are written in its node: the layout, both ways. [`Raw`] (the
/// data as is, Curator's `SharedValue`) and [`BigEndianI32`] (Curator's `SharedCount`) are
/// given; a codec of your own (JSON of a config type, say) shares typed values.
pub trait Codec: Send + Sync + 'static {
    /// What [`SharedValue::try_set`] takes.
    type Input;
    /// What [`SharedValue::get`] and [`SharedValue::changes`] give.
    type Value: Send + 'static;
    /// The node data for `value`, or why it cannot be written.
    ///
    /// # Errors
    /// A message, reported as `InvalidArgument`.
    fn encode(&self, value: Self::Input) -> std::result::Result<Bytes, String>;
    /// The value in the node data `data`, or why it is not one.
    ///
    /// # Errors
    /// A message, reported as `InvalidArgument` with the node's path.
    fn decode(&self, data: Bytes) -> std::result::Result<Self::Value, String>;
}

/// The node's data as it is: any [`Data`] in, [`Bytes`] out (Curator's `SharedValue`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Raw;

impl Codec for Raw {
    type Input = Data;
    type Value = Bytes;
    fn encode(&self, value: Data) -> std::result::Result<Bytes, String> {
        Ok(value.into_bytes())
    }
    fn decode(&self, data: Bytes) -> std::result::Result<Bytes, String> {
        Ok(data)
    }
}

/// A 32-bit int as 4 bytes big-endian (Curator's `SharedCount`).
#[derive(Debug, Clone, Copy, Default)]
pub struct BigEndianI32;

impl Codec for BigEndianI32 {
    type Input = i32;
    type Value = i32;
    fn encode(&self, value: i32) -> std::result::Result<Bytes, String> {
        Ok(Bytes::copy_from_slice(&value.to_be_bytes()))
    }
    fn decode(&self, data: Bytes) -> std::result::Result<i32, String> {
        let bytes: [u8; 4] =
            data[..].try_into().map_err(|_| format!("{} bytes of data, not a 4-byte count", data.len()))?;
        Ok(i32::from_be_bytes(bytes))
    }
}

/// A value shared through one node, written and read with the codec `C` (by default [`Raw`]:
/// Curator's `SharedValue` layout, the data as is).
#[derive(Debug, Clone)]
pub struct SharedValue<C = Raw> {
    client: Client,
    path: String,
    codec: Arc<C>,
}

impl SharedValue {
    /// The value at `path`, its data as is.
    pub fn new(client: Client, path: &str) -> SharedValue {
        SharedValue::with_codec(client, path, Raw)
    }
}

impl<C: Codec> SharedValue<C> {
    /// The value at `path`, written and read with `codec`.
    pub fn with_codec(client: Client, path: &str, codec: C) -> SharedValue<C> {
        SharedValue { client, path: path.to_string(), codec: Arc::new(codec) }
    }

    /// The node's path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The current value and its version; `None` if the node does not exist.
    ///
    /// # Errors
    /// `InvalidPath`; `InvalidArgument` if the codec cannot read the node's data; the session's
    /// terminal error (connection losses are ridden out).
    pub async fn get(&self) -> Result<Option<Versioned<C::Value>>> {
        path::validate_path(&self.path)?;
        let (client, node) = (&self.client, self.path.as_str());
        let read = watch::answered(client, || async move {
            match client.get_data(node).await {
                Ok(found) => Ok(Some(found)),
                Err(ZkError::NoNode) => Ok(None),
                Err(e) => Err(e.into()),
            }
        })
        .await?;
        read.map(|(data, stat)| versioned(&*self.codec, node, data, &stat)).transpose()
    }

    /// Sets `value` if the node is still at `expected_version` (as read by [`SharedValue::get`];
    /// `-1` creates the node, with its parents, if it does not exist): `true` if set, `false`
    /// if someone else wrote first (nothing written).
    ///
    /// # Errors
    /// `InvalidPath`; `InvalidArgument` if the codec cannot write `value`; `NoAuth`; the
    /// client's errors. A connection loss is reported as such (`ConnectionLoss`): whether the
    /// value was set is then unknown.
    pub async fn try_set(&self, value: impl Into<C::Input>, expected_version: i32) -> Result<bool> {
        path::validate_path(&self.path)?;
        let value =
            self.codec.encode(value.into()).map_err(|why| ZkError::InvalidArgument(format!("{}: {why}", self.path)))?;
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
    /// The stream ends after the first error (the session's end, or data the codec cannot
    /// read), which it yields.
    pub fn changes(&self) -> impl Stream<Item = Result<Versioned<C::Value>>> + Send + 'static {
        let (client, node, codec) = (self.client.clone(), self.path.clone(), self.codec.clone());
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
                            Some((data, stat)) if stat.mzxid > seen => Ok(Step::Done((data, stat))),
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
                match next.and_then(|(data, stat)| versioned(&*codec, &node, data, &stat)) {
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

/// The value in a node's data and stat, read with `codec`.
fn versioned<C: Codec>(codec: &C, path: &str, data: Bytes, stat: &Stat) -> Result<Versioned<C::Value>> {
    let value = codec.decode(data).map_err(|why| ZkError::InvalidArgument(format!("{path}: {why}")))?;
    Ok(Versioned { value, version: stat.version, mzxid: stat.mzxid })
}

/// A 32-bit count shared through one node (Curator's `SharedCount` layout: 4 bytes big-endian):
/// a [`SharedValue`] with the [`BigEndianI32`] codec.
#[derive(Debug, Clone)]
pub struct SharedCount {
    value: SharedValue<BigEndianI32>,
}

impl SharedCount {
    /// The count at `path`.
    pub fn new(client: Client, path: &str) -> SharedCount {
        SharedCount { value: SharedValue::with_codec(client, path, BigEndianI32) }
    }

    /// The current count and its version; `None` if the node does not exist.
    ///
    /// # Errors
    /// As [`SharedValue::get`]; `InvalidArgument` if the node's data is not 4 bytes.
    pub async fn get(&self) -> Result<Option<Versioned<i32>>> {
        self.value.get().await
    }

    /// Sets `count` if the node is still at `expected_version` (`-1`: create it): `true` if set.
    ///
    /// # Errors
    /// As [`SharedValue::try_set`].
    pub async fn try_set(&self, count: i32, expected_version: i32) -> Result<bool> {
        self.value.try_set(count, expected_version).await
    }

    /// The count's changes, as [`SharedValue::changes`].
    pub fn changes(&self) -> impl Stream<Item = Result<Versioned<i32>>> + Send + 'static {
        self.value.changes()
    }
}
