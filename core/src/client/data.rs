//! [`Data`]: the one type every data argument of the client takes, so that a node's data can be
//! given as text or bytes, borrowed or owned, in the same way everywhere (`create`, `set_data`,
//! transactions, [`Op`](super::Op)s).
//!
//! Owned buffers (`String`, `Vec<u8>`, [`Bytes`]) are taken over without copying; borrowed ones
//! (`&str`, `&[u8]`, `b"..."`, `&Vec<u8>`) are copied, since the request outlives the borrow:
//! it is queued when the method is called and may be sent again after a reconnect.

use bytes::Bytes;

/// Node data as given by the caller: the bytes a node is created with or set to.
///
/// Every client method that takes node data takes `impl Into<Data>`, which `&str`, `String`,
/// `&String`, `&[u8]`, `&[u8; N]` (`b"..."`), `Vec<u8>`, `&Vec<u8>`, [`Bytes`] and `&Bytes` all
/// are, so `client.set_data("/a", "text", None)` and `client.create("/a", b"v", mode)` both
/// work. Text is stored as its UTF-8 bytes; ZooKeeper gives data no meaning of its own.
///
/// ```
/// use conclave_core::{Bytes, Data};
///
/// let owned = String::from("config");
/// assert_eq!(Data::from("config"), Data::from(&owned));
/// assert_eq!(Data::from(b"config").into_bytes(), Bytes::from_static(b"config"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Data(Bytes);

impl Data {
    /// The bytes, for a request or an [`Op`](super::Op).
    pub fn into_bytes(self) -> Bytes {
        self.0
    }

    /// The bytes, borrowed.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl AsRef<[u8]> for Data {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl From<Data> for Bytes {
    fn from(data: Data) -> Bytes {
        data.0
    }
}

impl From<Bytes> for Data {
    fn from(bytes: Bytes) -> Data {
        Data(bytes)
    }
}

impl From<&Bytes> for Data {
    /// Shares the buffer (a reference count), copies nothing.
    fn from(bytes: &Bytes) -> Data {
        Data(bytes.clone())
    }
}

impl From<Vec<u8>> for Data {
    fn from(bytes: Vec<u8>) -> Data {
        Data(Bytes::from(bytes))
    }
}

impl From<&Vec<u8>> for Data {
    fn from(bytes: &Vec<u8>) -> Data {
        Data(Bytes::copy_from_slice(bytes))
    }
}

impl From<&[u8]> for Data {
    fn from(bytes: &[u8]) -> Data {
        Data(Bytes::copy_from_slice(bytes))
    }
}

impl<const N: usize> From<&[u8; N]> for Data {
    fn from(bytes: &[u8; N]) -> Data {
        Data(Bytes::copy_from_slice(bytes))
    }
}

impl From<String> for Data {
    fn from(text: String) -> Data {
        Data(Bytes::from(text))
    }
}

impl From<&String> for Data {
    fn from(text: &String) -> Data {
        Data(Bytes::copy_from_slice(text.as_bytes()))
    }
}

impl From<&str> for Data {
    fn from(text: &str) -> Data {
        Data(Bytes::copy_from_slice(text.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_gives_the_same_bytes() {
        let text = String::from("v");
        let vec = b"v".to_vec();
        let bytes = Bytes::from_static(b"v");
        let forms = [
            Data::from("v"),
            Data::from(text.clone()),
            Data::from(&text),
            Data::from(&b"v"[..]),
            Data::from(b"v"),
            Data::from(vec.clone()),
            Data::from(&vec),
            Data::from(bytes.clone()),
            Data::from(&bytes),
        ];
        for data in forms {
            assert_eq!(data.as_bytes(), b"v");
            assert_eq!(Bytes::from(data), bytes);
        }
        assert!(Data::default().into_bytes().is_empty());
    }

    #[test]
    fn owned_buffers_are_not_copied() {
        let vec = b"abc".to_vec();
        let ptr = vec.as_ptr();
        assert_eq!(Data::from(vec).into_bytes().as_ptr(), ptr);
        let bytes = Bytes::from(b"xyz".to_vec());
        assert_eq!(Data::from(&bytes).into_bytes().as_ptr(), bytes.as_ptr());
    }
}
