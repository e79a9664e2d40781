//! Length-prefixed framing: every message is a 4-byte big-endian length followed by that many
//! bytes. Splitting is zero-copy (frames are `Bytes` views of the read buffer) and checks the
//! length against the limit before waiting for, or reserving, the body.

use bytes::{BufMut, Bytes, BytesMut};

use super::codes::OpCode;
use super::jute::{Decode, DecodeError, Encode, Reader};
use super::records::{ReplyHeader, RequestHeader};
use super::request::Request;
use super::response::Response;

/// ZooKeeper's default `jute.maxbuffer` (0xfffff = 1 048 575 bytes): the largest frame payload a
/// server or the Java client accepts. It bounds the whole payload, not only the node data.
pub const DEFAULT_MAX_FRAME: usize = 0xfffff;

/// A frame length that no peer may send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("frame length {len} outside 0..={max}")]
pub struct FrameError {
    /// The length the peer announced.
    pub len: i64,
    /// The limit in force.
    pub max: usize,
}

/// Splits one complete frame payload off the front of `buf`, or returns `Ok(None)` when more
/// bytes are needed. A length below 0 or above `max_len` is an error (the connection must then
/// be closed, as ZooKeeper does). Once a frame's length is known, `buf` reserves room for the
/// rest of it so the next read can complete it.
pub fn split_frame(buf: &mut BytesMut, max_len: usize) -> Result<Option<Bytes>, FrameError> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let len = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    if len < 0 || len as usize > max_len {
        return Err(FrameError { len: len.into(), max: max_len });
    }
    let total = 4 + len as usize;
    if buf.len() < total {
        buf.reserve(total - buf.len());
        return Ok(None);
    }
    let mut frame = buf.split_to(total);
    let _ = frame.split_to(4);
    Ok(Some(frame.freeze()))
}

/// Reserves the length prefix of a frame about to be written; pass the result to
/// [`finish_frame`] once the payload has been appended.
pub fn start_frame(buf: &mut BytesMut) -> usize {
    let start = buf.len();
    buf.put_i32(0);
    start
}

/// Fills in the length prefix reserved by [`start_frame`] and returns the payload length.
pub fn finish_frame(buf: &mut BytesMut, start: usize) -> usize {
    let len = buf.len() - start - 4;
    buf[start..start + 4].copy_from_slice(&super::jute::len_i32(len).to_be_bytes());
    len
}

/// Appends a complete frame holding one record (used for the handshake frames).
pub fn write_record_frame(buf: &mut BytesMut, record: &impl Encode) -> usize {
    let start = start_frame(buf);
    record.encode(buf);
    finish_frame(buf, start)
}

/// Appends a complete request frame (header + body) and returns its payload length.
pub fn write_request_frame(buf: &mut BytesMut, xid: i32, request: &Request) -> usize {
    let start = start_frame(buf);
    RequestHeader { xid, op: request.op_code().as_i32() }.encode(buf);
    request.encode_body(buf);
    finish_frame(buf, start)
}

/// A copy of `frame`, one complete request frame (length prefix included) as
/// [`write_request_frame`] writes it, that asks the server for no watch: the watch flag of an
/// `exists`, `getData`, `getChildren` or `getChildren2` request is cleared. The frame is decoded
/// and encoded again, so only the codec knows where the flag sits.
///
/// # Errors
/// When the length prefix does not match the frame's size, when the header or the body does not
/// decode or is followed by more bytes, or when the request has no watch flag.
pub fn clear_watch_flag(frame: &[u8]) -> Result<Bytes, DecodeError> {
    let mut buf = BytesMut::from(frame);
    let payload = match split_frame(&mut buf, usize::MAX) {
        Ok(Some(payload)) if buf.is_empty() => payload,
        _ => return Err(DecodeError::InvalidLength(frame.len() as i64)),
    };
    let mut r = Reader::new(payload);
    let header = RequestHeader::decode(&mut r)?;
    let op =
        OpCode::from_i32(header.op).ok_or(DecodeError::InvalidValue { what: "op code", value: header.op.into() })?;
    let mut request = Request::decode(op, &mut r)?;
    if !r.is_empty() {
        return Err(DecodeError::InvalidValue { what: "bytes after the request body", value: r.remaining() as i64 });
    }
    let watch = request
        .watch_mut()
        .ok_or(DecodeError::InvalidValue { what: "op code of a request with a watch flag", value: header.op.into() })?;
    *watch = false;
    let mut out = BytesMut::with_capacity(frame.len());
    write_request_frame(&mut out, header.xid, &request);
    Ok(out.freeze())
}

/// Appends a complete reply frame: the header, then the body when there is one.
pub fn write_reply_frame(buf: &mut BytesMut, header: ReplyHeader, body: Option<&Response>) -> usize {
    let start = start_frame(buf);
    header.encode(buf);
    if let Some(body) = body {
        body.encode(buf);
    }
    finish_frame(buf, start)
}

/// Appends a complete notification frame (`xid` -1) for `event`.
pub fn write_event_frame(buf: &mut BytesMut, zxid: i64, event: &super::records::WatcherEvent) -> usize {
    let start = start_frame(buf);
    ReplyHeader { xid: super::xid::NOTIFICATION, zxid, err: 0 }.encode(buf);
    event.encode(buf);
    finish_frame(buf, start)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_complete_frames_only() {
        let mut buf = BytesMut::from(&[0, 0, 0, 3, 1, 2][..]);
        assert_eq!(split_frame(&mut buf, 10), Ok(None));
        buf.extend_from_slice(&[3, 0, 0, 0, 0]);
        assert_eq!(split_frame(&mut buf, 10).unwrap().unwrap().as_ref(), &[1, 2, 3]);
        assert_eq!(split_frame(&mut buf, 10).unwrap().unwrap().as_ref(), &[] as &[u8]);
        assert!(buf.is_empty());
    }

    #[test]
    fn rejects_bad_lengths_before_reading_the_body() {
        for len in [-5i32, 0xfffff + 1, i32::MAX] {
            let mut buf = BytesMut::from(&len.to_be_bytes()[..]);
            assert!(split_frame(&mut buf, DEFAULT_MAX_FRAME).is_err(), "{len}");
        }
        let mut buf = BytesMut::from(&(0xfffffi32).to_be_bytes()[..]);
        assert_eq!(split_frame(&mut buf, DEFAULT_MAX_FRAME), Ok(None));
    }

    #[test]
    fn ping_frame_matches_reference_bytes() {
        let mut buf = BytesMut::new();
        write_request_frame(&mut buf, super::super::xid::PING, &Request::Ping);
        assert_eq!(buf.as_ref(), &[0, 0, 0, 8, 0xff, 0xff, 0xff, 0xfe, 0, 0, 0, 11]);
    }

    #[test]
    fn get_data_frame_matches_reference_bytes() {
        let mut buf = BytesMut::new();
        write_request_frame(&mut buf, 1, &Request::GetData { path: "/a".into(), watch: true });
        assert_eq!(buf.as_ref(), &[0, 0, 0, 0x0f, 0, 0, 0, 1, 0, 0, 0, 4, 0, 0, 0, 2, b'/', b'a', 1]);
    }

    #[test]
    fn clear_watch_flag_asks_for_no_watch() {
        let frame = |xid: i32, req: &Request| {
            let mut buf = BytesMut::new();
            write_request_frame(&mut buf, xid, req);
            buf.freeze()
        };
        let watching = [
            Request::Exists { path: "/a".into(), watch: true },
            Request::GetData { path: "/a/b".into(), watch: true },
            Request::GetChildren { path: "/".into(), watch: true },
            Request::GetChildren2 { path: "/c".into(), watch: true },
        ];
        for mut req in watching {
            let cleared = clear_watch_flag(&frame(7, &req)).unwrap();
            *req.watch_mut().unwrap() = false;
            assert_eq!(cleared, frame(7, &req), "{req:?}");
            assert_eq!(clear_watch_flag(&cleared).unwrap(), cleared, "clearing twice changes nothing");
        }
        // The reference bytes of `get_data_frame_matches_reference_bytes`, flag cleared.
        let get_data = frame(1, &Request::GetData { path: "/a".into(), watch: true });
        assert_eq!(
            clear_watch_flag(&get_data).unwrap().as_ref(),
            &[0, 0, 0, 0x0f, 0, 0, 0, 1, 0, 0, 0, 4, 0, 0, 0, 2, b'/', b'a', 0]
        );
    }

    #[test]
    fn clear_watch_flag_refuses_other_frames() {
        let mut set_data = BytesMut::new();
        write_request_frame(&mut set_data, 3, &Request::SetData { path: "/a".into(), data: None, version: 1 });
        assert!(clear_watch_flag(&set_data).is_err(), "no watch flag: the last byte is the version's");
        let mut exists = BytesMut::new();
        write_request_frame(&mut exists, 3, &Request::Exists { path: "/a".into(), watch: true });
        assert!(clear_watch_flag(&exists[..exists.len() - 1]).is_err(), "truncated");
        let mut longer = exists.clone();
        longer.extend_from_slice(&[0]);
        assert!(clear_watch_flag(&longer).is_err(), "a byte past the frame");
        let mut padded = exists[4..].to_vec();
        padded.push(1);
        let mut padded_frame = BytesMut::new();
        padded_frame.extend_from_slice(&(padded.len() as i32).to_be_bytes());
        padded_frame.extend_from_slice(&padded);
        assert!(clear_watch_flag(&padded_frame).is_err(), "a byte after the body");
        assert!(clear_watch_flag(&[]).is_err());
    }
}
