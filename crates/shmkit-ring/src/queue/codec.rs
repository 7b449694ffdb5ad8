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
//! - Integers from `u16`/`i16` to `u64`/`i64`, `usize`, `isize`, `f32`, `f64`: their
//!   postcard bytes (a varint, zigzag for the signed ones; the floats' little-endian
//!   bits) are written and read here, without serde's dispatch: postcard's own path
//!   for a `u64` cost about 100 instructions per put, and a `Queue<u64>` is the queue
//!   most programs start with.
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
                let n = write_varint(b.len() as u64, out);
                copy_bytes(b, &mut out[n..]);
            }
            Encoded::Whole(b) => copy_bytes(b, out),
        }
    }
}

/// Where [`encode`] puts an encoding: a stack buffer for small items, the per-thread
/// buffer for the others.
pub struct Scratch {
    /// A number's bytes (at most a `u64`'s 10-byte varint).
    number: [u8; 10],
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
            number: [0; 10],
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
    #[inline]
    fn drop(&mut self) {
        // Inline, so that the common case (no heap buffer: a number or a small item)
        // costs a test, not a call.
        if let Some(v) = self.heap.take() {
            keep_scratch(v);
        }
    }
}

/// Give a heap buffer back to this thread for the next large item (if not too large).
#[cold]
fn keep_scratch(mut v: Vec<u8>) {
    if v.capacity() <= SCRATCH_KEEP {
        v.clear();
        SCRATCH.set(v);
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

/// Calls `$on!(type, how)` for each number written by hand, `how` being `varint`
/// (unsigned), `zigzag` (signed) or `bits` (floats), as postcard writes them.
macro_rules! numbers {
    ($on:ident) => {
        $on!(u16, varint);
        $on!(u32, varint);
        $on!(u64, varint);
        $on!(usize, varint);
        $on!(i16, zigzag);
        $on!(i32, zigzag);
        $on!(i64, zigzag);
        $on!(isize, zigzag);
        $on!(f32, bits);
        $on!(f64, bits);
    };
}

/// Write `item`'s postcard bytes into `out` if it is one of the numbers above; their
/// length.
#[inline(always)]
fn number<T: 'static>(item: &T, out: &mut [u8; 10]) -> Option<usize> {
    let any = item as &dyn Any;
    macro_rules! put {
        ($t:ty, varint) => {
            if let Some(&n) = any.downcast_ref::<$t>() {
                return Some(write_varint(n as u64, out));
            }
        };
        ($t:ty, zigzag) => {
            if let Some(&n) = any.downcast_ref::<$t>() {
                let n = n as i64;
                return Some(write_varint(((n << 1) ^ (n >> 63)) as u64, out));
            }
        };
        ($t:ty, bits) => {
            if let Some(&n) = any.downcast_ref::<$t>() {
                let b = n.to_bits().to_le_bytes();
                out[..b.len()].copy_from_slice(&b);
                return Some(b.len());
            }
        };
    }
    numbers!(put);
    None
}

/// Read the number `slot` holds room for (`Option<T>` of one of the numbers above)
/// from `bytes` as postcard would, with postcard's limits (a varint no longer than
/// the type needs, its value in range); `None` if `T` is not one of them. Trailing
/// bytes are ignored, as postcard ignores them.
/// (Generic, not over a `&mut dyn Any`: each `T` folds to its one branch.)
#[inline(always)]
fn take_number<T: 'static>(bytes: &[u8], out: &mut Option<T>) -> Option<postcard::Result<()>> {
    let slot = out as &mut dyn Any;
    macro_rules! take {
        ($t:ty, varint) => {
            if let Some(out) = slot.downcast_mut::<Option<$t>>() {
                let v = read_varint_max(bytes, <$t>::BITS)
                    .and_then(|v| <$t>::try_from(v).map_err(|_| bad_varint()));
                return Some(v.map(|v| *out = Some(v)));
            }
        };
        ($t:ty, zigzag) => {
            if let Some(out) = slot.downcast_mut::<Option<$t>>() {
                let v = read_varint_max(bytes, <$t>::BITS).and_then(|v| {
                    let n = ((v >> 1) as i64) ^ -((v & 1) as i64);
                    <$t>::try_from(n).map_err(|_| bad_varint())
                });
                return Some(v.map(|v| *out = Some(v)));
            }
        };
        ($t:ty, bits) => {
            if let Some(out) = slot.downcast_mut::<Option<$t>>() {
                let v = match bytes.split_first_chunk() {
                    Some((b, _)) => Ok(<$t>::from_le_bytes(*b)),
                    None => Err(postcard::Error::DeserializeUnexpectedEnd),
                };
                return Some(v.map(|v| *out = Some(v)));
            }
        };
    }
    numbers!(take);
    None
}

fn bad_varint() -> postcard::Error {
    postcard::Error::DeserializeBadVarint
}

/// A varint of at most as many bytes as a `bits`-bit number takes (postcard's limit)
/// from the start of `bytes`.
#[inline]
fn read_varint_max(bytes: &[u8], bits: u32) -> postcard::Result<u64> {
    let max = bits.div_ceil(7) as usize;
    match crate::raw::packed::read_varint(bytes) {
        Some((v, used)) if used <= max => Ok(v),
        _ => Err(bad_varint()),
    }
}

/// Encode `item` (see the module docs): byte buffers are borrowed as they are,
/// numbers written into `scratch` by hand, any other item encoded into `scratch`.
pub fn encode<'a, T: Serialize + 'static>(
    item: &'a T,
    scratch: &'a mut Scratch,
) -> postcard::Result<Encoded<'a>> {
    if let Some(b) = as_bytes(item) {
        return Ok(Encoded::Bytes(b));
    }
    if let Some(n) = number(item, &mut scratch.number) {
        return Ok(Encoded::Whole(&scratch.number[..n]));
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
/// the varint and the length are checked by postcard as for any item. Numbers are
/// read by hand, with postcard's checks.
pub fn decode<T: DeserializeOwned + 'static>(bytes: &[u8]) -> postcard::Result<T> {
    let mut out: Option<T> = None;
    if let Some(done) = take_number(bytes, &mut out) {
        done?;
        return Ok(out.expect("a number read is stored"));
    }
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

    /// `T`'s hand-written bytes are postcard's, and every byte string decodes as
    /// postcard decodes it (the same value, or an error where postcard has one).
    fn number_agrees_with_postcard<T>(values: &[T], strings: &[Vec<u8>])
    where
        T: Serialize + DeserializeOwned + std::fmt::Debug + 'static,
    {
        let name = std::any::type_name::<T>();
        for v in values {
            let mut scratch = Scratch::new();
            let e = encode(v, &mut scratch).unwrap();
            let mut bytes = vec![0; e.len()];
            e.write(&mut bytes);
            assert_eq!(bytes, postcard::to_stdvec(v).unwrap(), "{name} {v:?}");
            let back = decode::<T>(&bytes).unwrap();
            // (Debug text, not `==`: NaN.)
            assert_eq!(format!("{back:?}"), format!("{v:?}"), "{name}");
        }
        for b in strings {
            let ours = decode::<T>(b).ok();
            let theirs = postcard::from_bytes::<T>(b).ok();
            assert_eq!(
                format!("{ours:?}"),
                format!("{theirs:?}"),
                "{name} from {b:02x?}"
            );
        }
    }

    #[test]
    #[cfg_attr(miri, ignore)] // safe code only, and 1.7 M decodes: hours under Miri
    fn numbers_are_written_and_read_as_postcard_does() {
        // Every string of one and two bytes, then pseudo-random ones of up to 12 bytes
        // whose bytes mostly carry a continuation bit (long varints, overflows).
        let mut strings: Vec<Vec<u8>> = vec![vec![]];
        strings.extend((0..=255u8).map(|a| vec![a]));
        strings.extend((0..=0xFFFFu16).map(|x| x.to_le_bytes().to_vec()));
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        for _ in 0..100_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = 1 + (seed % 12) as usize;
            let b = (0..len)
                .map(|i| {
                    let byte = (seed >> (i * 5)) as u8;
                    if i + 1 < len && seed & (1 << (60 - i)) != 0 {
                        byte | 0x80
                    } else {
                        byte
                    }
                })
                .collect();
            strings.push(b);
        }
        number_agrees_with_postcard(&[0u16, 1, 127, 128, 16383, 16384, u16::MAX], &strings);
        number_agrees_with_postcard(&[0u32, 127, 128, 1 << 28, u32::MAX], &strings);
        number_agrees_with_postcard(&[0u64, 127, 128, 1 << 63, u64::MAX], &strings);
        number_agrees_with_postcard(&[0usize, 300, usize::MAX], &strings);
        number_agrees_with_postcard(&[0i16, -1, 1, -64, 64, i16::MIN, i16::MAX], &strings);
        number_agrees_with_postcard(&[0i32, -1, 63, -65, i32::MIN, i32::MAX], &strings);
        number_agrees_with_postcard(&[0i64, -1, i64::MIN, i64::MAX], &strings);
        number_agrees_with_postcard(&[0isize, -7, isize::MIN, isize::MAX], &strings);
        number_agrees_with_postcard(&[0.0f32, -1.5, f32::MAX, f32::NAN], &strings);
        number_agrees_with_postcard(&[0.0f64, -0.0, f64::MIN, f64::INFINITY], &strings);
    }

    #[test]
    fn varint_len_matches_the_encoding() {
        for n in [0usize, 1, 127, 128, 16383, 16384, usize::MAX] {
            let mut buf = [0u8; 10];
            assert_eq!(write_varint(n as u64, &mut buf), varint_len(n), "{n}");
            assert_eq!(postcard::to_stdvec(&n).unwrap(), buf[..varint_len(n)]);
            let read = crate::raw::packed::read_varint(&buf);
            assert_eq!(read, Some((n as u64, varint_len(n))), "{n}");
        }
    }
}
