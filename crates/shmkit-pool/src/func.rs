//! How a task names its function: offsets of a function and of its trampoline, signed
//! with the pool's key.
//!
//! A worker runs the same binary as its pool (re-executed, or forked), so
//! `anchor + offset` is the same function there wherever the binary was loaded. The
//! offsets travel through shared memory, which DESIGN rule 2 says is untrusted: a peer
//! that could write the task ring must not make a worker jump to an address of its
//! choosing. So each token carries a SipHash tag of the two offsets under a 128-bit key
//! that the pool draws at random and gives its workers through the launcher's control
//! socket (kernel memory, not the segment); a worker runs a token only if its tag checks.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::hash::{BuildHasher, Hasher};

/// Runs one chunk: decodes the inputs, calls the function on each (catching panics),
/// encodes the outcomes into `out`. `Err` when the chunk as a whole failed.
pub(crate) type ChunkFn = fn(usize, &[u8], &mut Vec<u8>) -> Result<(), String>;

/// Offsets are taken from this function.
#[inline(never)]
fn anchor() {}

fn offset_of(addr: usize) -> i64 {
    (addr as i64).wrapping_sub(anchor as fn() as usize as i64)
}

fn address_of(offset: i64) -> usize {
    (anchor as fn() as usize as i64).wrapping_add(offset) as usize
}

/// The pool's secret: tags function tokens.
#[derive(Clone, Copy, Serialize, Deserialize)]
pub(crate) struct Key {
    k0: u64,
    k1: u64,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(..)")
    }
}

impl Key {
    /// A fresh random key. `RandomState` is seeded from the OS's random source; its
    /// outputs on a fixed input are unpredictable without its (never exposed) keys.
    pub(crate) fn random() -> Key {
        let a = std::collections::hash_map::RandomState::new();
        let b = std::collections::hash_map::RandomState::new();
        Key {
            k0: a.hash_one(0x5348_4d4b_u64),
            k1: b.hash_one(0x504f_4f4c_u64),
        }
    }

    #[allow(deprecated)] // SipHasher: std's keyed SipHash, exactly what a MAC needs here
    fn tag(&self, tramp: i64, func: i64) -> u64 {
        let mut h = std::hash::SipHasher::new_with_keys(self.k0, self.k1);
        h.write_i64(tramp);
        h.write_i64(func);
        h.finish()
    }
}

/// A signed reference to `(trampoline, function)` in this binary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FnToken {
    tramp: i64,
    func: i64,
    tag: u64,
}

impl FnToken {
    pub(crate) fn new(key: &Key, tramp: ChunkFn, func: usize) -> FnToken {
        let (tramp, func) = (offset_of(tramp as usize), offset_of(func));
        FnToken {
            tramp,
            func,
            tag: key.tag(tramp, func),
        }
    }

    /// The trampoline and function address, if `key` signed this token.
    pub(crate) fn resolve(&self, key: &Key) -> Option<(ChunkFn, usize)> {
        if key.tag(self.tramp, self.func) != self.tag {
            return None;
        }
        let tramp = address_of(self.tramp);
        // SAFETY: the tag proves the token was made by `FnToken::new` in a process
        // holding this pool's key — the pool's parent, which runs this same binary —
        // from a real `ChunkFn`; the offset from `anchor` is the same in this process.
        let tramp = unsafe { std::mem::transmute::<usize, ChunkFn>(tramp) };
        Some((tramp, address_of(self.func)))
    }
}

fn decode<T: DeserializeOwned>(input: &[u8]) -> Result<T, String> {
    postcard::from_bytes(input).map_err(|e| {
        format!(
            "could not decode the arguments as {}: {e}",
            std::any::type_name::<T>()
        )
    })
}

/// Decode the `Vec<T>` in `input` one element at a time and encode the
/// `Vec<Result<R, String>>` of `g` over them into `out`: the same bytes as decoding and
/// encoding whole vectors, without their two allocations per chunk. The length read
/// from the ring sizes nothing: a short input fails at its first missing element.
///
/// A panic in `g` (or in encoding its value) is that task's outcome, and the next task
/// runs. The tasks run in stretches under one `catch_panic` each, not one per task (its
/// cost showed per task at the default chunk size): a stretch ends at a panic, and the
/// bytes the panicking task had begun to write are dropped.
fn each_input<T: DeserializeOwned + 'static, R: Serialize + 'static>(
    input: &[u8],
    out: &mut Vec<u8>,
    mut g: impl FnMut(T) -> R,
) -> Result<(), String> {
    let bad = |e: postcard::Error| {
        format!(
            "could not decode the arguments as Vec<{}>: {e}",
            std::any::type_name::<T>()
        )
    };
    let unencodable = |e: postcard::Error| {
        format!(
            "could not encode the results as {}: {e}",
            std::any::type_name::<R>()
        )
    };
    let (n, mut rest) = crate::value::take_len(input).map_err(bad)?;
    out.clear();
    crate::value::push(&n, out).map_err(unencodable)?;
    let mut started = 0;
    while started < n {
        // Where the task that is running began writing: a panic truncates to it.
        let mut mark = out.len();
        let stretch = shmkit_process::catch_panic(|| -> Result<(), String> {
            while started < n {
                let (item, r) = crate::value::take::<T>(rest).map_err(bad)?;
                rest = r;
                mark = out.len();
                // Counted before it runs: if it panics, the panic is its outcome.
                started += 1;
                let value = g(item);
                crate::wire::push_outcome(&Ok(value), out).map_err(unencodable)?;
            }
            Ok(())
        });
        match stretch {
            Ok(done) => done?,
            Err(message) => {
                out.truncate(mark);
                crate::wire::push_outcome::<R>(&Err(message), out).map_err(unencodable)?;
            }
        }
    }
    Ok(())
}

/// Chunk of `f(a)` calls: inputs `Vec<A>`, outcomes `Vec<Result<R, String>>`.
pub(crate) fn map_chunk<A: DeserializeOwned + 'static, R: Serialize + 'static>(
    f: usize,
    input: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), String> {
    // SAFETY: `f` comes from a token that `Pool` made from a `fn(A) -> R` together with
    // this trampoline, monomorphised for the same `A` and `R` (see `FnToken::resolve`).
    let f = unsafe { std::mem::transmute::<usize, fn(A) -> R>(f) };
    each_input(input, out, f)
}

/// Chunk of `f(a, b)` calls (`starmap`): inputs `Vec<(A, B)>`.
pub(crate) fn star_chunk<
    A: DeserializeOwned + 'static,
    B: DeserializeOwned + 'static,
    R: Serialize + 'static,
>(
    f: usize,
    input: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), String> {
    // SAFETY: as in `map_chunk`, for a `fn(A, B) -> R`.
    let f = unsafe { std::mem::transmute::<usize, fn(A, B) -> R>(f) };
    each_input(input, out, |(a, b): (A, B)| f(a, b))
}

/// The initializer: one `f(a)` call whose panic fails the worker.
pub(crate) fn init_call<A: DeserializeOwned>(
    f: usize,
    input: &[u8],
    _out: &mut Vec<u8>,
) -> Result<(), String> {
    // SAFETY: as in `map_chunk`, for the `fn(A)` given to `Builder::initializer`.
    let f = unsafe { std::mem::transmute::<usize, fn(A)>(f) };
    let a: A = decode(input)?;
    shmkit_process::catch_panic(|| f(a)).map_err(|m| format!("panicked: {m}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn double(x: u32) -> u32 {
        2 * x
    }

    /// A chunk's inputs, as the pool writes them.
    fn inputs<T: Serialize + Clone + 'static>(values: &[T]) -> Vec<u8> {
        let mut out = Vec::new();
        crate::value::push_seq(&mut values.iter().cloned(), usize::MAX, &mut out).unwrap();
        out
    }

    /// A chunk's outcomes, as the pool reads them.
    fn outcomes<R: DeserializeOwned + 'static>(bytes: &[u8]) -> Vec<Result<R, String>> {
        let (n, mut rest) = crate::value::take_len(bytes).unwrap();
        let back = (0..n)
            .map(|_| {
                let (r, more) = crate::wire::take_outcome::<R>(rest).unwrap();
                rest = more;
                r
            })
            .collect();
        assert!(rest.is_empty(), "nothing after the outcomes");
        back
    }

    #[test]
    fn tokens_resolve_only_under_their_key() {
        let key = Key::random();
        let token = FnToken::new(
            &key,
            map_chunk::<u32, u32>,
            double as fn(u32) -> u32 as usize,
        );
        let (tramp, f) = token.resolve(&key).expect("signed by this key");
        let mut out = Vec::new();
        tramp(f, &inputs(&[1u32, 2]), &mut out).unwrap();
        let back = outcomes::<u32>(&out);
        assert_eq!(back, vec![Ok(2), Ok(4)]);

        assert!(token.resolve(&Key::random()).is_none(), "another key");
        let mut forged = token;
        forged.func += 16;
        assert!(forged.resolve(&key).is_none(), "a moved function offset");
    }

    #[test]
    fn a_panic_is_that_item_outcome() {
        fn picky(x: u32) -> u32 {
            assert!(x != 3, "three is not welcome");
            x
        }
        let mut out = Vec::new();
        map_chunk::<u32, u32>(
            picky as fn(u32) -> u32 as usize,
            &inputs(&[2u32, 3, 4]),
            &mut out,
        )
        .unwrap();
        let back = outcomes::<u32>(&out);
        assert_eq!(back[0], Ok(2));
        assert!(
            back[1]
                .as_ref()
                .unwrap_err()
                .contains("three is not welcome")
        );
        assert_eq!(back[2], Ok(4));
    }

    /// A value whose encoding panics half-way (after writing some bytes).
    struct Explosive(u32);

    impl Serialize for Explosive {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            use serde::ser::SerializeTuple;
            let mut t = s.serialize_tuple(2)?;
            t.serialize_element(&self.0)?;
            assert!(self.0 != 7, "seven does not encode");
            t.serialize_element(&self.0)?;
            t.end()
        }
    }

    #[test]
    fn panics_in_a_row_at_either_end_and_in_encoding_are_each_their_own_outcome() {
        fn boom_odd(x: u32) -> Explosive {
            assert!(x.is_multiple_of(2), "odd {x}");
            Explosive(x)
        }
        // Panics in the function: first, twice in a row, and last.
        let values = vec![1u32, 3, 2, 5, 4, 9];
        let mut out = Vec::new();
        map_chunk::<u32, Explosive>(
            boom_odd as fn(u32) -> Explosive as usize,
            &self::inputs(&values),
            &mut out,
        )
        .unwrap();
        let back = outcomes::<(u32, u32)>(&out);
        assert_eq!(back.len(), values.len());
        for (x, r) in values.iter().zip(&back) {
            if x.is_multiple_of(2) {
                assert_eq!(r, &Ok((*x, *x)));
            } else {
                assert!(
                    r.as_ref().unwrap_err().contains(&format!("odd {x}")),
                    "{r:?}"
                );
            }
        }

        fn wrap(x: u32) -> Explosive {
            Explosive(x)
        }
        let values = vec![6u32, 7, 8];
        let mut out = Vec::new();
        map_chunk::<u32, Explosive>(
            wrap as fn(u32) -> Explosive as usize,
            &self::inputs(&values),
            &mut out,
        )
        .unwrap();
        let back = outcomes::<(u32, u32)>(&out);
        assert_eq!(back[0], Ok((6, 6)));
        assert!(
            back[1]
                .as_ref()
                .unwrap_err()
                .contains("seven does not encode")
        );
        assert_eq!(back[2], Ok((8, 8)));
    }
}
