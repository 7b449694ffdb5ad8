//! How a [`Queue`](crate::Queue) item becomes ring bytes and back: postcard, with byte
//! buffers moved as bytes.
//!
//! # Wire format
//! An item's record holds its postcard encoding, nothing else. Postcard writes a byte
//! sequence (`Vec<u8>` as serde hands it over: a sequence of `u8`) and a byte string
//! (`serialize_bytes`, `str`) the same way: the length as a varint, then the bytes.
//! So the fast paths below produce and accept exactly the bytes postcard does; they
//! only skip serde's element-by-element walk (about 1.7 ns per byte each way, measured:
//! docs/benchmarks.md), which made a `Queue<Vec<u8>>` slower than a pipe.
//!
//! # Fast paths
//! `T: 'static`, so the item's type is known at run time ([`Any`]):
//! - `Vec<u8>`, `Box<[u8]>`, `String`, `Box<str>`: the varint and the bytes are written
//!   straight into the ring (one copy), and `Vec<u8>` and `Box<[u8]>` are read with one
//!   copy out of it (`String` already is, by postcard).
//! - Any other `T`: encoded by postcard outside the claim lock (on the stack when small,
//!   else in a per-thread buffer reused from put to put), then copied in. Encoding
//!   outside the lock keeps producers encoding in parallel, and keeps the user's
//!   `Serialize` code — which may panic — from running while the lock is held.
//!
//! A byte buffer *inside* a struct goes through serde's sequence walk (serde hands a
//! serializer one `u8` at a time, and its `Vec<u8>` visitor accepts only a sequence, so
//! no encoder can turn it into a copy). Mark such a field `#[serde(with =
//! "serde_bytes")]` (or use `serde_bytes::ByteBuf`): postcard then copies it, and the
//! bytes on the wire do not change.

use serde::Serialize;
use serde::de::{DeserializeOwned, Deserializer, Visitor};
use shmkit_sync::append::Append;
use std::any::Any;
use std::cell::Cell;
use std::mem::MaybeUninit;
// Postcard's varint (LEB128) is also the frame prefix of packed records: one spelling.
use crate::raw::copy_bytes;
use crate::raw::packed::{varint_len, write_varint};

/// Items whose encoding fits this many bytes are encoded on the stack (into
/// uninitialised bytes: zeroing 256 bytes per put was most of a `Queue<u64>` put's own
/// time).
const ENCODE_STACK: usize = 256;

/// Largest per-thread encode buffer kept between puts (a larger one is freed).
const SCRATCH_KEEP: usize = 1 << 20;

thread_local! {
    /// The per-thread encode buffer for items too large for the stack. Taken out while
    /// in use, so an item whose `Serialize` puts to another queue just gets a new one.
    static SCRATCH: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// An item ready to be written into the ring.
#[derive(Debug)]
pub enum Encoded<'a> {
    /// A byte buffer: postcard's varint length, then these bytes.
    Bytes(&'a [u8]),
    /// The whole postcard encoding.
    Whole(&'a [u8]),
}

impl Encoded<'_> {
    /// Bytes the item takes in the ring.
    pub fn len(&self) -> usize {
        match self {
            Encoded::Bytes(b) => varint_len(b.len()) + b.len(),
            Encoded::Whole(b) => b.len(),
        }
    }

    /// Whether the item takes no bytes (never: every encoding has a length or a value).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Write the item into `out`, exactly [`len`](Self::len) bytes long.
    #[inline]
    pub fn write(&self, out: &mut [u8]) {
        match self {
            Encoded::Bytes(b) => {
                let n = write_varint(b.len(), out);
                copy_bytes(b, &mut out[n..]);
            }
            Encoded::Whole(b) => copy_bytes(b, out),
        }
    }
}

/// Where [`encode`] puts an encoding: a stack buffer for small items, the per-thread
/// buffer for the others.
pub struct Scratch {
    stack: [MaybeUninit<u8>; ENCODE_STACK],
    heap: Option<Vec<u8>>,
}

impl std::fmt::Debug for Scratch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scratch")
            .field("heap", &self.heap.as_ref().map(Vec::len))
            .finish_non_exhaustive()
    }
}

impl Scratch {
    /// An empty one.
    pub fn new() -> Self {
        Scratch {
            stack: [const { MaybeUninit::uninit() }; ENCODE_STACK],
            heap: None,
        }
    }
}

impl Default for Scratch {
    fn default() -> Self {
        Scratch::new()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Some(mut v) = self.heap.take()
            && v.capacity() <= SCRATCH_KEEP
        {
            v.clear();
            SCRATCH.set(v);
        }
    }
}

/// The byte slice `item` is, if it is one of the byte-buffer types.
fn as_bytes<T: 'static>(item: &T) -> Option<&[u8]> {
    let any = item as &dyn Any;
    if let Some(v) = any.downcast_ref::<Vec<u8>>() {
        Some(v)
    } else if let Some(s) = any.downcast_ref::<String>() {
        Some(s.as_bytes())
    } else if let Some(b) = any.downcast_ref::<Box<[u8]>>() {
        Some(b)
    } else {
        any.downcast_ref::<Box<str>>().map(|s| s.as_bytes())
    }
}

/// Encode `item` (see the module docs): byte buffers are borrowed as they are, any
/// other item is encoded into `scratch`.
pub fn encode<'a, T: Serialize + 'static>(
    item: &'a T,
    scratch: &'a mut Scratch,
) -> postcard::Result<Encoded<'a>> {
    if let Some(b) = as_bytes(item) {
        return Ok(Encoded::Bytes(b));
    }
    let stack = Stack {
        buf: &mut scratch.stack,
        pos: 0,
    };
    match postcard::serialize_with_flavor(item, stack) {
        Ok(n) => {
            let p = scratch.stack.as_ptr().cast::<u8>();
            // SAFETY: `Stack` wrote bytes `0..n` of `scratch.stack` (each slot it counts
            // was written before `pos` moved past it), so they are initialised; the
            // slice borrows `scratch` for `'a`, as the buffer does.
            let b = unsafe { std::slice::from_raw_parts(p, n) };
            return Ok(Encoded::Whole(b));
        }
        Err(postcard::Error::SerializeBufferFull) => {}
        Err(e) => return Err(e),
    }
    let heap = scratch.heap.insert(SCRATCH.take());
    heap.clear();
    postcard::serialize_with_flavor(item, Append(heap))?;
    Ok(Encoded::Whole(heap))
}

/// A postcard output into the stack buffer: writes each byte (no `memcpy` call for the
/// 1-to-10-byte slices postcard writes a varint as), never reads, and reports how many
/// bytes it wrote; [`SerializeBufferFull`](postcard::Error::SerializeBufferFull) past
/// its end.
struct Stack<'a> {
    buf: &'a mut [MaybeUninit<u8>],
    pos: usize,
}

impl postcard::ser_flavors::Flavor for Stack<'_> {
    type Output = usize;

    #[inline]
    fn try_push(&mut self, b: u8) -> postcard::Result<()> {
        let slot = self
            .buf
            .get_mut(self.pos)
            .ok_or(postcard::Error::SerializeBufferFull)?;
        slot.write(b);
        self.pos += 1;
        Ok(())
    }

    #[inline]
    fn try_extend(&mut self, b: &[u8]) -> postcard::Result<()> {
        let end = self.pos + b.len();
        let dst = self
            .buf
            .get_mut(self.pos..end)
            .ok_or(postcard::Error::SerializeBufferFull)?;
        for (d, &x) in dst.iter_mut().zip(b) {
            d.write(x);
        }
        self.pos = end;
        Ok(())
    }

    fn finalize(self) -> postcard::Result<usize> {
        Ok(self.pos)
    }
}

/// Decode an item from its ring bytes (trailing bytes are ignored, as postcard's
/// `from_bytes` ignores them). `Vec<u8>` and `Box<[u8]>` are copied out in one piece;
/// the varint and the length are checked by postcard as for any item.
pub fn decode<T: DeserializeOwned + 'static>(bytes: &[u8]) -> postcard::Result<T> {
    let mut out: Option<T> = None;
    let slot = &mut out as &mut dyn Any;
    if let Some(v) = slot.downcast_mut::<Option<Vec<u8>>>() {
        *v = Some(postcard::from_bytes::<ByteBuf>(bytes)?.0);
    } else if let Some(b) = slot.downcast_mut::<Option<Box<[u8]>>>() {
        *b = Some(postcard::from_bytes::<ByteBuf>(bytes)?.0.into_boxed_slice());
    }
    match out {
        Some(v) => Ok(v),
        None => postcard::from_bytes(bytes),
    }
}

/// A byte buffer read as postcard bytes (varint length, one copy).
struct ByteBuf(Vec<u8>);

impl<'de> serde::Deserialize<'de> for ByteBuf {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ByteBuf;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E>(self, v: &[u8]) -> Result<ByteBuf, E> {
                Ok(ByteBuf(v.to_vec()))
            }
        }
        d.deserialize_bytes(V)
    }
}

/// Bytes as postcard bytes: what the fast path writes (tests compare the two).
#[cfg(test)]
struct AsBytes<'a>(&'a [u8]);

#[cfg(test)]
impl Serialize for AsBytes<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring_bytes<T: Serialize + 'static>(item: &T) -> Vec<u8> {
        let mut scratch = Scratch::new();
        let e = encode(item, &mut scratch).unwrap();
        let mut out = vec![0xAA; e.len()];
        e.write(&mut out);
        out
    }

    const SIZES: [usize; 12] = [
        0,
        1,
        8,
        127,
        128,
        255,
        256,
        300,
        16383,
        16384,
        70_000,
        1 << 21,
    ];

    #[test]
    fn byte_buffers_encode_as_postcard_does() {
        // Under Miri the large sizes take many minutes (serde goes element by element).
        for n in SIZES.into_iter().filter(|&n| !cfg!(miri) || n <= 300) {
            let v: Vec<u8> = (0..n).map(|i| (i * 7) as u8).collect();
            let want = postcard::to_stdvec(&v).unwrap();
            assert_eq!(ring_bytes(&v), want, "Vec<u8> of {n}");
            assert_eq!(
                ring_bytes(&v.clone().into_boxed_slice()),
                want,
                "Box<[u8]> of {n}"
            );
            assert_eq!(postcard::to_stdvec(&AsBytes(&v)).unwrap(), want);
            let s = "é".repeat(n / 2);
            let want = postcard::to_stdvec(&s).unwrap();
            assert_eq!(ring_bytes(&s), want, "String of {}", s.len());
            assert_eq!(ring_bytes(&s.clone().into_boxed_str()), want);
        }
    }

    #[test]
    fn byte_buffers_decode_as_postcard_does() {
        // Under Miri the large sizes take many minutes (serde goes element by element).
        for n in SIZES.into_iter().filter(|&n| !cfg!(miri) || n <= 300) {
            let v: Vec<u8> = (0..n).map(|i| (i * 7) as u8).collect();
            let wire = postcard::to_stdvec(&v).unwrap();
            assert_eq!(decode::<Vec<u8>>(&wire).unwrap(), v);
            assert_eq!(
                decode::<Box<[u8]>>(&wire).unwrap(),
                v.clone().into_boxed_slice()
            );
            // Trailing bytes are ignored, by both.
            let mut longer = wire.clone();
            longer.extend_from_slice(b"xyz");
            assert_eq!(decode::<Vec<u8>>(&longer).unwrap(), v);
            assert_eq!(postcard::from_bytes::<Vec<u8>>(&longer).unwrap(), v);
        }
    }

    #[test]
    fn malformed_bytes_are_refused_like_postcard() {
        let cases: [&[u8]; 6] = [
            &[],
            &[5, 1, 2],  // length past the end
            &[0x80],     // varint cut short
            &[0xFF; 11], // varint too long
            &[0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F], // > usize
            &[0x81, 0x01], // 129 bytes promised
        ];
        for c in cases {
            assert!(decode::<Vec<u8>>(c).is_err(), "{c:?}");
            assert!(postcard::from_bytes::<Vec<u8>>(c).is_err(), "{c:?}");
        }
    }

    #[test]
    fn other_items_round_trip_through_stack_and_heap() {
        let small = (7u64, "seven".to_string());
        let big = (vec![1u32; 1000], "x".repeat(5000));
        assert_eq!(ring_bytes(&small), postcard::to_stdvec(&small).unwrap());
        assert_eq!(ring_bytes(&big), postcard::to_stdvec(&big).unwrap());
        assert_eq!(decode::<(u64, String)>(&ring_bytes(&small)).unwrap(), small);
        assert_eq!(
            decode::<(Vec<u32>, String)>(&ring_bytes(&big)).unwrap(),
            big
        );
    }

    #[test]
    fn varint_len_matches_the_encoding() {
        for n in [0usize, 1, 127, 128, 16383, 16384, usize::MAX] {
            let mut buf = [0u8; 10];
            assert_eq!(write_varint(n, &mut buf), varint_len(n), "{n}");
            assert_eq!(postcard::to_stdvec(&n).unwrap(), buf[..varint_len(n)]);
            let read = crate::raw::packed::read_varint(&buf);
            assert_eq!(read, Some((n as u64, varint_len(n))), "{n}");
        }
    }
}
