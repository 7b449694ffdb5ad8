//! How one task's argument or result is written into a chunk: fixed-width numbers as
//! their little-endian bytes, everything else as postcard writes it.
//!
//! Postcard writes integers as varints, one call and a loop per value on each side.
//! At the default chunk size that coding, once each way for every argument and every
//! result, was about half of what a `map` of a trivial function over `u64`s cost
//! (docs/benchmarks.md, "Issue 17, fifth pass"), and left the pool
//! slower than one moving raw integers over pipes. The pool and its workers are the
//! same binary and decode with the same monomorphised types, so a chunk's bytes need
//! not be postcard's: `u8` to `u128`, `i8` to `i128`, `usize`, `isize`, `f32` and `f64`
//! travel as their little-endian bytes (a copy of 1 to 16 bytes), and every other type
//! through postcard. Any bit pattern is a valid number, so bytes read from a ring need
//! no check beyond their count.
//!
//! (`T: 'static` lets the type be compared at run time, [`Any`]; the comparison folds
//! away when the code is monomorphised.)

use serde::Serialize;
use serde::de::DeserializeOwned;
use std::any::Any;

/// Calls `$on!(type)` for every type written raw.
macro_rules! raw_types {
    ($on:ident) => {
        $on!(u8);
        $on!(u16);
        $on!(u32);
        $on!(u64);
        $on!(u128);
        $on!(usize);
        $on!(i8);
        $on!(i16);
        $on!(i32);
        $on!(i64);
        $on!(i128);
        $on!(isize);
        $on!(f32);
        $on!(f64);
    };
}

/// Append `v` to `out`: its little-endian bytes if it is a fixed-width number, else
/// its postcard encoding.
#[inline]
pub(crate) fn push<T: Serialize + 'static>(v: &T, out: &mut Vec<u8>) -> postcard::Result<()> {
    let any = v as &dyn Any;
    macro_rules! raw {
        ($t:ty) => {
            if let Some(n) = any.downcast_ref::<$t>() {
                out.extend_from_slice(&n.to_le_bytes());
                return Ok(());
            }
        };
    }
    raw_types!(raw);
    postcard::serialize_with_flavor(v, shmkit_sync::append::Append(out))
}

/// Append up to `max` values taken from `items` as a sequence — its length, then each
/// value as [`push`] writes it — and return how many were taken. The values are encoded
/// as they come, never collected: the length (a `usize`, written raw: 8 bytes) is
/// written first as 0 and set once they are in.
pub(crate) fn push_seq<T: Serialize + 'static>(
    items: &mut impl Iterator<Item = T>,
    max: usize,
    out: &mut Vec<u8>,
) -> postcard::Result<usize> {
    let at = out.len();
    push(&0usize, out)?;
    let mut n = 0usize;
    for v in items.take(max) {
        push(&v, out)?;
        n += 1;
    }
    out[at..at + size_of::<usize>()].copy_from_slice(&n.to_le_bytes());
    Ok(n)
}

/// The fewest bytes [`push`] writes for a `T`: its size if it is written raw, else a
/// byte (a value's size in memory says nothing of its encoding). For reserving.
pub(crate) fn least_size<T: 'static>() -> usize {
    if is_raw::<T>() { size_of::<T>() } else { 1 }
}

/// Whether [`push`] writes `T` raw.
fn is_raw<T: 'static>() -> bool {
    let t = std::any::TypeId::of::<T>();
    macro_rules! raw {
        ($t:ty) => {
            if t == std::any::TypeId::of::<$t>() {
                return true;
            }
        };
    }
    raw_types!(raw);
    false
}

/// The value at the start of `bytes`, written by [`push`], and the bytes after it.
#[inline]
pub(crate) fn take<T: DeserializeOwned + 'static>(bytes: &[u8]) -> postcard::Result<(T, &[u8])> {
    let mut slot: Option<T> = None;
    let any = &mut slot as &mut dyn Any;
    macro_rules! raw {
        ($t:ty) => {
            if let Some(out) = any.downcast_mut::<Option<$t>>() {
                let Some((le, rest)) = bytes.split_first_chunk() else {
                    return Err(postcard::Error::DeserializeUnexpectedEnd);
                };
                *out = Some(<$t>::from_le_bytes(*le));
                return Ok((slot.expect("just stored"), rest));
            }
        };
    }
    raw_types!(raw);
    postcard::take_from_bytes(bytes)
}

/// The sequence length [`push_seq`] wrote (or a count [`push`] wrote as a `usize`),
/// and the bytes after it.
#[inline]
pub(crate) fn take_len(bytes: &[u8]) -> postcard::Result<(usize, &[u8])> {
    take::<usize>(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<
        T: Serialize + DeserializeOwned + Clone + PartialEq + std::fmt::Debug + 'static,
    >(
        values: &[T],
        width: Option<usize>,
    ) {
        let mut out = Vec::new();
        let taken = push_seq(&mut values.iter().cloned(), usize::MAX, &mut out).unwrap();
        assert_eq!(taken, values.len());
        if let Some(w) = width {
            assert_eq!(out.len(), 8 + values.len() * w, "raw: exactly the bytes");
        }
        let (n, mut rest) = take_len(&out).unwrap();
        assert_eq!(n, values.len());
        for v in values {
            let (got, more) = take::<T>(rest).unwrap();
            assert_eq!(&got, v);
            rest = more;
        }
        assert!(rest.is_empty());
    }

    #[test]
    fn a_sequence_takes_at_most_its_share_and_counts_what_it_took() {
        let mut items = 1u32..=5;
        let mut out = Vec::new();
        assert_eq!(push_seq(&mut items, 2, &mut out).unwrap(), 2);
        assert_eq!(
            push_seq(&mut items, 4, &mut out).unwrap(),
            3,
            "only three were left"
        );
        assert_eq!(push_seq(&mut items, 4, &mut out).unwrap(), 0);
        let mut rest = &out[..];
        for want in [vec![1u32, 2], vec![3, 4, 5], vec![]] {
            let (n, mut more) = take_len(rest).unwrap();
            assert_eq!(n, want.len());
            for w in want {
                let (got, after) = take::<u32>(more).unwrap();
                assert_eq!(got, w);
                more = after;
            }
            rest = more;
        }
        assert!(rest.is_empty());
        assert_eq!(least_size::<u32>(), 4);
        assert_eq!(least_size::<String>(), 1);
    }

    #[test]
    fn numbers_travel_raw_and_come_back_whole() {
        round_trip(&[0u8, 1, 255], Some(1));
        round_trip(&[0u16, 300, u16::MAX], Some(2));
        round_trip(&[0u32, 1 << 31, u32::MAX], Some(4));
        round_trip(&[0u64, 1, 1 << 40, u64::MAX], Some(8));
        round_trip(&[0u128, u128::MAX], Some(16));
        round_trip(&[0usize, usize::MAX], Some(8));
        round_trip(&[i8::MIN, -1, 0, i8::MAX], Some(1));
        round_trip(&[i16::MIN, -1, i16::MAX], Some(2));
        round_trip(&[i32::MIN, -1, i32::MAX], Some(4));
        round_trip(&[i64::MIN, -1, 0, i64::MAX], Some(8));
        round_trip(&[i128::MIN, i128::MAX], Some(16));
        round_trip(&[isize::MIN, isize::MAX], Some(8));
        round_trip(&[0.0f32, -1.5, f32::MAX, f32::MIN_POSITIVE], Some(4));
        round_trip(&[0.0f64, -1.5, f64::MAX, f64::INFINITY], Some(8));
        // NaN keeps its bits (no `==` for it).
        let mut out = Vec::new();
        push(&f64::NAN, &mut out).unwrap();
        assert_eq!(take::<f64>(&out).unwrap().0.to_bits(), f64::NAN.to_bits());
    }

    #[test]
    fn other_types_are_the_bytes_postcard_writes() {
        let values = vec![(1u64, "a".to_string()), (u64::MAX, String::new())];
        let mut out = Vec::new();
        for v in &values {
            push(v, &mut out).unwrap();
        }
        let mut postcard_bytes = Vec::new();
        for v in &values {
            postcard_bytes = postcard::to_extend(v, postcard_bytes).unwrap();
        }
        assert_eq!(out, postcard_bytes);
        round_trip(&values, None);
        round_trip(&[true, false], None);
        round_trip(&['x', '\u{10ffff}'], None);
        round_trip(&[Some(3u64), None], None);
    }

    #[test]
    fn a_short_raw_value_is_an_error_not_a_read_past_the_end() {
        let mut out = Vec::new();
        push(&u64::MAX, &mut out).unwrap();
        for cut in 0..out.len() {
            assert!(take::<u64>(&out[..cut]).is_err(), "{cut} of 8 bytes");
        }
        assert!(take::<u16>(&[1]).is_err());
        assert!(take_len(&[]).is_err());
    }
}
