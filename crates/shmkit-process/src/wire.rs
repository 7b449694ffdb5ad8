//! Messages on the control socket between a parent and one child.
//!
//! One request (parent → child) and one reply (child → parent), each one seqpacket
//! message encoded with postcard. A payload of up to 64 KiB travels inline; a bigger one
//! travels in a sealed memfd attached with `SCM_RIGHTS`, which the receiver maps and
//! decodes in place — one copy in, none through the kernel's socket buffers.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use serde::{Deserialize, Serialize};

use crate::sys;

/// Where a payload is.
#[derive(Serialize, Deserialize, Debug)]
pub(crate) enum Body {
    Inline(Vec<u8>),
    /// In the memfd attached to this message, of this many bytes.
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
/// memfd (encoded straight into it: no intermediate buffer of the whole value).
pub(crate) enum Encoded {
    Inline(Vec<u8>),
    Memfd(OwnedFd, u64),
}

impl Encoded {
    /// Nothing (for messages without a payload).
    pub(crate) const EMPTY: Encoded = Encoded::Inline(Vec::new());
}

/// Encode `value` with postcard, inline up to [`sys::INLINE_MAX`] bytes, else into a
/// sealed memfd of exactly the encoded size.
pub(crate) fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Encoded, String> {
    let len = postcard::experimental::serialized_size(value).map_err(|e| e.to_string())?;
    if len <= sys::INLINE_MAX {
        return postcard::to_allocvec(value)
            .map(Encoded::Inline)
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
    Ok(Encoded::Memfd(fd, len as u64))
}

/// Send `msg` carrying `payload` (inline in the message, or its memfd attached).
pub(crate) fn send(
    sock: BorrowedFd<'_>,
    make: impl FnOnce(Body) -> Message,
    payload: Encoded,
) -> std::io::Result<()> {
    match payload {
        Encoded::Inline(bytes) => {
            let msg =
                postcard::to_allocvec(&make(Body::Inline(bytes))).map_err(std::io::Error::other)?;
            sys::send(sock, &msg, None)
        }
        Encoded::Memfd(fd, len) => {
            let msg =
                postcard::to_allocvec(&make(Body::Memfd(len))).map_err(std::io::Error::other)?;
            sys::send(sock, &msg, Some(fd.as_fd()))
        }
    }
}

/// A received payload: owned bytes or a mapped sealed memfd.
pub(crate) enum Payload {
    Bytes(Vec<u8>),
    Mapped(memmap2::Mmap),
}

impl Payload {
    pub(crate) fn as_slice(&self) -> &[u8] {
        match self {
            Payload::Bytes(b) => b,
            Payload::Mapped(m) => m,
        }
    }
}

/// Turn a `Body` and the descriptor that came with it into readable bytes.
pub(crate) fn open_body(body: Body, fd: Option<OwnedFd>) -> std::io::Result<Payload> {
    match (body, fd) {
        (Body::Inline(b), _) => Ok(Payload::Bytes(b)),
        (Body::Memfd(len), Some(fd)) => Ok(Payload::Mapped(sys::map_sealed(&fd, len)?)),
        (Body::Memfd(_), None) => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "payload memfd missing from the message",
        )),
    }
}

/// Receive and decode one message; `None` at EOF, or when `wait` is false and no
/// message is queued.
pub(crate) fn recv(
    sock: BorrowedFd<'_>,
    wait: bool,
) -> std::io::Result<Option<(Message, Option<OwnedFd>)>> {
    let Some((bytes, fd)) = sys::recv(sock, wait)? else {
        return Ok(None);
    };
    let msg = postcard::from_bytes(&bytes)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    Ok(Some((msg, fd)))
}
