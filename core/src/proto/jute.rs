//! Jute "binary archive" primitives: the encoding every ZooKeeper record is built from.
//!
//! Integers are big-endian two's complement; `buffer` and `ustring` are an `int` length followed by
//! that many bytes (length `-1` means null); a `vector` is an `int` count followed by the elements.
//! Decoding never panics and never allocates more than the input could possibly describe: every
//! length and count is checked against the bytes that remain before anything is reserved.

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Why a record could not be decoded. Every decoder in [`crate::proto`] returns this instead of
/// panicking, whatever the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended before the record did.
    #[error("record truncated: needed {needed} more bytes, {remaining} left")]
    UnexpectedEof {
        /// Bytes the next field needed.
        needed: usize,
        /// Bytes that were left.
        remaining: usize,
    },
    /// A length or count prefix was negative (other than the `-1` null marker) or larger than the
    /// bytes that follow it.
    #[error("invalid length {0}")]
    InvalidLength(i64),
    /// A field held a value that the protocol does not allow (an unknown op code inside a multi,
    /// an unknown create mode, ...).
    #[error("invalid {what}: {value}")]
    InvalidValue {
        /// Which field.
        what: &'static str,
        /// The value found.
        value: i64,
    },
}

/// A cursor over a received frame. Buffers are returned as zero-copy slices of the frame.
#[derive(Debug, Clone)]
pub struct Reader {
    buf: Bytes,
}

impl Reader {
    /// Reads from the start of `buf`.
    pub fn new(buf: Bytes) -> Self {
        Reader { buf }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// Whether everything has been read.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The unread bytes (consumes the reader).
    pub fn into_rest(self) -> Bytes {
        self.buf
    }

    fn need(&self, n: usize) -> Result<(), DecodeError> {
        if self.buf.len() < n {
            Err(DecodeError::UnexpectedEof { needed: n, remaining: self.buf.len() })
        } else {
            Ok(())
        }
    }

    /// Reads a jute `byte`.
    pub fn read_u8(&mut self) -> Result<u8, DecodeError> {
        self.need(1)?;
        Ok(self.buf.get_u8())
    }

    /// Reads a jute `boolean`: any nonzero byte is true, as Java's reader does.
    pub fn read_bool(&mut self) -> Result<bool, DecodeError> {
        Ok(self.read_u8()? != 0)
    }

    /// Reads a jute `int`.
    pub fn read_i32(&mut self) -> Result<i32, DecodeError> {
        self.need(4)?;
        Ok(self.buf.get_i32())
    }

    /// Reads a jute `long`.
    pub fn read_i64(&mut self) -> Result<i64, DecodeError> {
        self.need(8)?;
        Ok(self.buf.get_i64())
    }

    /// Reads a length prefix: `None` for the null marker `-1`, an error for any other negative
    /// value or for a length longer than what is left.
    fn read_len(&mut self) -> Result<Option<usize>, DecodeError> {
        let len = self.read_i32()?;
        if len == -1 {
            return Ok(None);
        }
        if len < 0 || len as usize > self.buf.len() {
            return Err(DecodeError::InvalidLength(len.into()));
        }
        Ok(Some(len as usize))
    }

    /// Reads a jute `buffer`; `None` is the null buffer (length `-1`).
    pub fn read_buffer(&mut self) -> Result<Option<Bytes>, DecodeError> {
        Ok(self.read_len()?.map(|len| self.buf.split_to(len)))
    }

    /// Reads a jute `buffer`, treating null as empty.
    pub fn read_bytes(&mut self) -> Result<Bytes, DecodeError> {
        Ok(self.read_buffer()?.unwrap_or_default())
    }

    /// Reads a jute `ustring`; `None` is the null string. Invalid UTF-8 (such as the CESU-8 that
    /// Java writes for characters outside the BMP) is replaced, never rejected.
    pub fn read_opt_string(&mut self) -> Result<Option<String>, DecodeError> {
        Ok(self.read_buffer()?.map(|b| match String::from_utf8(b.to_vec()) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        }))
    }

    /// Reads a jute `ustring`, treating null as empty (kazoo sends empty strings as null).
    pub fn read_string(&mut self) -> Result<String, DecodeError> {
        Ok(self.read_opt_string()?.unwrap_or_default())
    }

    /// Reads a jute `vector`; `None` is the null vector. The count is checked against the bytes
    /// left (each element takes at least `min_elem` bytes) before anything is allocated.
    pub fn read_opt_vec<T>(
        &mut self,
        min_elem: usize,
        mut elem: impl FnMut(&mut Self) -> Result<T, DecodeError>,
    ) -> Result<Option<Vec<T>>, DecodeError> {
        let count = self.read_i32()?;
        if count == -1 {
            return Ok(None);
        }
        if count < 0 || (count as usize).saturating_mul(min_elem.max(1)) > self.buf.len() {
            return Err(DecodeError::InvalidLength(count.into()));
        }
        let mut out = Vec::with_capacity(count as usize);
        for _ in 0..count {
            out.push(elem(self)?);
        }
        Ok(Some(out))
    }

    /// Reads a jute `vector`, treating null as empty.
    pub fn read_vec<T>(
        &mut self,
        min_elem: usize,
        elem: impl FnMut(&mut Self) -> Result<T, DecodeError>,
    ) -> Result<Vec<T>, DecodeError> {
        Ok(self.read_opt_vec(min_elem, elem)?.unwrap_or_default())
    }

    /// Reads a vector of strings, null treated as empty.
    pub fn read_string_vec(&mut self) -> Result<Vec<String>, DecodeError> {
        self.read_vec(4, Self::read_string)
    }
}

/// A record that can be written in jute binary form.
pub trait Encode {
    /// Appends the record's bytes to `buf`.
    fn encode(&self, buf: &mut BytesMut);
}

/// A record that can be read from jute binary form.
pub trait Decode: Sized {
    /// Reads one record from `r`.
    fn decode(r: &mut Reader) -> Result<Self, DecodeError>;

    /// Decodes a whole buffer holding one record; trailing bytes are ignored, as ZooKeeper's
    /// Java reader ignores them.
    fn decode_bytes(buf: Bytes) -> Result<Self, DecodeError> {
        Self::decode(&mut Reader::new(buf))
    }
}

/// Writes a jute `boolean`.
pub fn write_bool(buf: &mut BytesMut, v: bool) {
    buf.put_u8(u8::from(v));
}

/// Writes a jute `buffer`; `None` is written as the null buffer (length `-1`).
pub fn write_buffer(buf: &mut BytesMut, v: Option<&[u8]>) {
    match v {
        None => buf.put_i32(-1),
        Some(b) => {
            buf.put_i32(len_i32(b.len()));
            buf.put_slice(b);
        }
    }
}

/// Writes a jute `ustring`.
pub fn write_string(buf: &mut BytesMut, v: &str) {
    write_buffer(buf, Some(v.as_bytes()));
}

/// Writes a vector of strings.
pub fn write_string_vec<S: AsRef<str>>(buf: &mut BytesMut, v: &[S]) {
    buf.put_i32(len_i32(v.len()));
    for s in v {
        write_string(buf, s.as_ref());
    }
}

/// Converts a length to the wire's `int`. Frames are capped far below `i32::MAX` long before
/// this is reached, so saturation only matters for a caller that ignores the frame limit; the
/// peer then rejects the frame instead of misreading it.
pub(crate) fn len_i32(len: usize) -> i32 {
    i32::try_from(len).unwrap_or(i32::MAX)
}

/// The encoded size of a `ustring` or `buffer` holding `len` bytes.
pub const fn buffer_len(len: usize) -> usize {
    4 + len
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(bytes: &[u8]) -> Reader {
        Reader::new(Bytes::copy_from_slice(bytes))
    }

    #[test]
    fn primitives_are_big_endian() {
        let mut r = reader(&[0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 1, 0, 2]);
        assert_eq!(r.read_i32().unwrap(), 7);
        assert_eq!(r.read_i64().unwrap(), 256);
        assert!(r.read_bool().unwrap(), "any nonzero byte is true");
        assert!(matches!(r.read_u8(), Err(DecodeError::UnexpectedEof { .. })));
    }

    #[test]
    fn null_and_empty_buffers_differ() {
        let mut buf = BytesMut::new();
        write_buffer(&mut buf, None);
        write_buffer(&mut buf, Some(b""));
        write_string(&mut buf, "hi");
        let mut r = Reader::new(buf.freeze());
        assert_eq!(r.read_buffer().unwrap(), None);
        assert_eq!(r.read_buffer().unwrap(), Some(Bytes::new()));
        assert_eq!(r.read_string().unwrap(), "hi");
        assert!(r.is_empty());
    }

    #[test]
    fn null_string_reads_as_empty() {
        let mut r = reader(&[0xff, 0xff, 0xff, 0xff]);
        assert_eq!(r.read_string().unwrap(), "");
    }

    #[test]
    fn lengths_are_checked_before_allocating() {
        // A buffer that claims more bytes than follow.
        assert_eq!(reader(&[0, 0, 0x13, 0x88, 1, 2]).read_buffer(), Err(DecodeError::InvalidLength(5000)));
        // Negative lengths other than -1.
        assert_eq!(reader(&[0xff, 0xff, 0xff, 0xfb]).read_buffer(), Err(DecodeError::InvalidLength(-5)));
        // A vector count of i32::MAX in a tiny frame is refused without reserving memory.
        let r = reader(&[0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0]).read_vec(4, Reader::read_i32);
        assert_eq!(r, Err(DecodeError::InvalidLength(i32::MAX.into())));
    }

    #[test]
    fn invalid_utf8_is_replaced_not_rejected() {
        // CESU-8 encoding of U+1F600 as Java writes it: two 3-byte surrogates.
        let mut r = reader(&[0, 0, 0, 6, 0xed, 0xa0, 0xbd, 0xed, 0xb8, 0x80]);
        let s = r.read_string().unwrap();
        assert!(s.contains('\u{fffd}'));
    }
}
