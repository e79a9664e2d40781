//! Atomic `multi` transactions ([`Client::multi`], [`Transaction`]) and independent batched reads
//! ([`Client::multi_read`]).

use std::future::Future;

use super::{unexpected, Client, CreateOptions, Data, Op, OpResult, ReadOp, ReadResult};
use crate::error::{Error, Result};
use crate::proto::{MultiResult, OpCode, Request, Response};

impl Client {
    /// Applies `ops` atomically: either all of them or none. Later ops see the effects of earlier
    /// ones (create a node, then a child of it). On success the results come in op order.
    ///
    /// # Errors
    /// [`Error::MultiFailed`] with the index and error of the first op that failed (nothing was
    /// applied); client-side validation errors of any op (nothing was sent). An empty list
    /// succeeds without contacting the server.
    pub fn multi(
        &self,
        ops: impl IntoIterator<Item = Op>,
    ) -> impl Future<Output = Result<Vec<OpResult>>> + Send + 'static {
        let requests: Result<Vec<Request>> = ops.into_iter().map(|op| self.multi_request(op)).collect();
        let reply = requests.map(|reqs| (!reqs.is_empty()).then(|| self.call(Request::Multi(reqs))));
        let paths = self.path_mapper();
        async move {
            let Some(reply) = reply? else { return Ok(Vec::new()) };
            let results = match reply.await? {
                Response::Multi(results) => results,
                other => return Err(unexpected(OpCode::Multi, &other)),
            };
            if let Some((index, err)) = results.iter().enumerate().find_map(|(i, r)| match r {
                MultiResult::Error { err } if *err != 0 => Some((i, *err)),
                _ => None,
            }) {
                return Err(Error::MultiFailed { index, source: Box::new(Error::from_code(err)) });
            }
            results
                .into_iter()
                .map(|r| match r {
                    MultiResult::Create { path } => Ok(OpResult::Create { path: paths.client_path(path)?, stat: None }),
                    MultiResult::Create2 { path, stat } => {
                        Ok(OpResult::Create { path: paths.client_path(path)?, stat: Some(stat) })
                    }
                    MultiResult::Delete => Ok(OpResult::Delete),
                    MultiResult::SetData { stat } => Ok(OpResult::SetData { stat }),
                    MultiResult::Check => Ok(OpResult::Check),
                    other => Err(Error::Protocol(format!("unexpected multi result {other:?}"))),
                })
                .collect()
        }
    }

    /// A builder for a [`Client::multi`] transaction.
    pub fn transaction(&self) -> Transaction {
        Transaction { client: self.clone(), ops: Vec::new() }
    }

    fn multi_request(&self, op: Op) -> Result<Request> {
        Ok(match op {
            Op::Create { path, data, options } => self.create_request(&path, data, &options)?,
            Op::Delete { path, version } => {
                Request::Delete { path: self.server_path(&path)?, version: version.unwrap_or(-1) }
            }
            Op::SetData { path, data, version } => {
                Request::SetData { path: self.server_path(&path)?, data: Some(data), version: version.unwrap_or(-1) }
            }
            Op::Check { path, version } => {
                Request::Check { path: self.server_path(&path)?, version: version.unwrap_or(-1) }
            }
        })
    }

    /// Reads several nodes in one round trip (`multiRead`). Each read succeeds or fails on its
    /// own: the result list has one entry per op, in order. No watches are set.
    pub fn multi_read(
        &self,
        ops: impl IntoIterator<Item = ReadOp>,
    ) -> impl Future<Output = Result<Vec<Result<ReadResult>>>> + Send + 'static {
        let requests: Result<Vec<Request>> = ops
            .into_iter()
            .map(|op| {
                Ok(match op {
                    ReadOp::GetData(path) => Request::GetData { path: self.server_path(&path)?, watch: false },
                    ReadOp::GetChildren(path) => Request::GetChildren { path: self.server_path(&path)?, watch: false },
                })
            })
            .collect();
        let reply = requests.map(|reqs| (!reqs.is_empty()).then(|| self.call(Request::MultiRead(reqs))));
        async move {
            let Some(reply) = reply? else { return Ok(Vec::new()) };
            match reply.await? {
                Response::Multi(results) => Ok(results
                    .into_iter()
                    .map(|r| match r {
                        MultiResult::GetData { data, stat } => {
                            Ok(ReadResult::Data { data: data.unwrap_or_default(), stat })
                        }
                        MultiResult::GetChildren { children } => Ok(ReadResult::Children(children)),
                        MultiResult::Error { err } => Err(Error::from_code(err)),
                        other => Err(Error::Protocol(format!("unexpected multiRead result {other:?}"))),
                    })
                    .collect()),
                other => Err(unexpected(OpCode::MultiRead, &other)),
            }
        }
    }
}

/// Collects ops for one atomic [`Client::multi`]; nothing is sent until [`Transaction::commit`].
#[derive(Debug, Clone)]
#[must_use = "a transaction does nothing until committed"]
pub struct Transaction {
    client: Client,
    ops: Vec<Op>,
}

impl Transaction {
    /// Adds a create.
    pub fn create(mut self, path: &str, data: impl Into<Data>, options: impl Into<CreateOptions>) -> Self {
        self.ops.push(Op::create(path, data, options));
        self
    }

    /// Adds a delete.
    pub fn delete(mut self, path: &str, version: Option<i32>) -> Self {
        self.ops.push(Op::delete(path, version));
        self
    }

    /// Adds a setData.
    pub fn set_data(mut self, path: &str, data: impl Into<Data>, version: Option<i32>) -> Self {
        self.ops.push(Op::set_data(path, data, version));
        self
    }

    /// Adds a version check.
    pub fn check(mut self, path: &str, version: Option<i32>) -> Self {
        self.ops.push(Op::check(path, version));
        self
    }

    /// The ops collected so far.
    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    /// Sends the transaction; see [`Client::multi`].
    pub fn commit(self) -> impl Future<Output = Result<Vec<OpResult>>> + Send + 'static {
        self.client.multi(self.ops)
    }
}
