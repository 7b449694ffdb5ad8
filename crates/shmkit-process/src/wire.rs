//! Messages on the control socket between a parent and one child.
//!
//! One request (parent → child) and one reply (child → parent), each one seqpacket
//! message encoded with postcard. A payload of up to 64 KiB travels inline; a bigger one
//! travels in a sealed memfd attached with `SCM_RIGHTS`, which the receiver maps and
//! decodes in place — one copy in, none through the kernel's socket buffers.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::sys;

/// Where a payload is, and how many descriptors of anonymous segments it names
/// (attached to the message after the payload's own memfd, if any; see
/// `shmkit_segment::collect_descriptors`).
#[derive(Serialize, Deserialize, Debug)]
pub(crate) struct Body {
    data: Data,
    descriptors: u32,
}

#[derive(Serialize, Deserialize, Debug)]
enum Data {
    Inline(Vec<u8>),
    /// In the memfd attached first to this message, of this many bytes.
    Memfd(u64),
}

#[derive(Serialize, Deserialize, Debug)]
pub(crate) enum Message {
    /// Run the function at `func` through the trampoline at `tramp` (offsets from the
    /// anchor function, valid because the child runs the same binary).
    Request {
        tramp: i64,
        func: i64,
        name: String,
        args: Body,
    },
    /// The function returned; its encoded result.
    Returned(Body),
    /// The function panicked with this message.
    Panicked(String),
    /// The child could not run the function (e.g. the argument failed to decode).
    Failed(String),
    /// The function returned, but its result could not be encoded.
    Unencodable(String),
}

/// An encoded payload, ready to send: small ones as bytes, big ones already in a sealed
/// memfd (encoded straight into it: no intermediate buffer of the whole value); with the
/// descriptors of the anonymous segments it names, to travel with it.
pub(crate) struct Encoded {
    data: EncodedData,
    descriptors: Vec<OwnedFd>,
}

enum EncodedData {
    Inline(Vec<u8>),
    Memfd(OwnedFd, u64),
}

impl Encoded {
    /// Nothing (for messages without a payload).
    pub(crate) const EMPTY: Encoded = Encoded {
        data: EncodedData::Inline(Vec::new()),
        descriptors: Vec::new(),
    };
}

/// Encode `value` with postcard, inline up to [`sys::INLINE_MAX`] bytes, else into a
/// sealed memfd of exactly the encoded size. Anonymous segments it names travel as
/// descriptors ([`shmkit_segment::collect_descriptors`]).
pub(crate) fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Encoded, String> {
    let (data, descriptors) = shmkit_segment::collect_descriptors(|| encode_data(value));
    // At most `MAX_DESCRIPTORS` (the collection stops there): one `SCM_RIGHTS` message.
    Ok(Encoded {
        data: data?,
        descriptors,
    })
}

fn encode_data<T: Serialize + ?Sized>(value: &T) -> Result<EncodedData, String> {
    let len = postcard::experimental::serialized_size(value).map_err(|e| e.to_string())?;
    if len <= sys::INLINE_MAX {
        return postcard::to_allocvec(value)
            .map(EncodedData::Inline)
            .map_err(|e| e.to_string());
    }
    let fd = sys::sealed_memfd_with(len, |file| {
        // Buffered: postcard writes field by field; a large byte string passes through
        // `BufWriter` in one `write`, straight into the memfd's pages.
        let mut out = std::io::BufWriter::with_capacity(1 << 16, file);
        postcard::to_io(value, &mut out).map_err(std::io::Error::other)?;
        std::io::Write::flush(&mut out)
    })
    .map_err(|e| e.to_string())?;
    Ok(EncodedData::Memfd(fd, len as u64))
}

/// Send `msg` carrying `payload` (inline in the message, or its memfd attached), with the
/// payload's descriptors attached after it.
pub(crate) fn send(
    sock: BorrowedFd<'_>,
    make: impl FnOnce(Body) -> Message,
    payload: Encoded,
) -> std::io::Result<()> {
    let descriptors = payload.descriptors.len() as u32;
    let (data, memfd) = match payload.data {
        EncodedData::Inline(bytes) => (Data::Inline(bytes), None),
        EncodedData::Memfd(fd, len) => (Data::Memfd(len), Some(fd)),
    };
    let msg =
        postcard::to_allocvec(&make(Body { data, descriptors })).map_err(std::io::Error::other)?;
    let fds: Vec<BorrowedFd<'_>> = memfd
        .iter()
        .chain(&payload.descriptors)
        .map(|f| f.as_fd())
        .collect();
    sys::send(sock, &msg, &fds)
}

/// A received payload: owned bytes or a mapped sealed memfd, and the descriptors of the
/// anonymous segments it names (decode it inside
/// [`shmkit_segment::with_descriptors`]).
pub(crate) struct Payload {
    data: PayloadData,
    pub(crate) descriptors: Vec<OwnedFd>,
}

enum PayloadData {
    Bytes(Vec<u8>),
    Mapped(memmap2::Mmap),
}

impl Payload {
    /// Bytes that came without descriptors (a Fork child's arguments are in memory).
    pub(crate) fn bytes(bytes: Vec<u8>, descriptors: Vec<OwnedFd>) -> Payload {
        Payload {
            data: PayloadData::Bytes(bytes),
            descriptors,
        }
    }

    pub(crate) fn as_slice(&self) -> &[u8] {
        match &self.data {
            PayloadData::Bytes(b) => b,
            PayloadData::Mapped(m) => m,
        }
    }

    /// Decode the payload as `T`, the descriptors it names available to it.
    pub(crate) fn decode<T: DeserializeOwned>(mut self) -> Result<T, postcard::Error> {
        let descriptors = std::mem::take(&mut self.descriptors);
        shmkit_segment::with_descriptors(descriptors, || postcard::from_bytes(self.as_slice()))
    }
}

/// Turn a `Body` and the descriptors that came with it into readable bytes.
pub(crate) fn open_body(body: Body, fds: Vec<OwnedFd>) -> std::io::Result<Payload> {
    let invalid = |what: String| std::io::Error::new(std::io::ErrorKind::InvalidData, what);
    let mut fds = fds.into_iter();
    let data = match body.data {
        Data::Inline(b) => PayloadData::Bytes(b),
        Data::Memfd(len) => {
            let fd = fds
                .next()
                .ok_or_else(|| invalid("payload memfd missing from the message".into()))?;
            PayloadData::Mapped(sys::map_sealed(&fd, len)?)
        }
    };
    let descriptors: Vec<OwnedFd> = fds.collect();
    if descriptors.len() != body.descriptors as usize {
        return Err(invalid(format!(
            "{} descriptors came with the payload, {} announced",
            descriptors.len(),
            body.descriptors
        )));
    }
    Ok(Payload { data, descriptors })
}

/// Receive and decode one message; `None` at EOF, or when `wait` is false and no
/// message is queued.
pub(crate) fn recv(
    sock: BorrowedFd<'_>,
    wait: bool,
) -> std::io::Result<Option<(Message, Vec<OwnedFd>)>> {
    let Some((bytes, fds)) = sys::recv(sock, wait)? else {
        return Ok(None);
    };
    let msg = postcard::from_bytes(&bytes)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    Ok(Some((msg, fds)))
}
