//! Naming a function across processes: offsets from an anchor in the same binary, and a
//! trampoline monomorphised for the argument and result types.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::wire;

pub(crate) type Trampoline = fn(usize, wire::Payload) -> Result<wire::Encoded, Failure>;

/// Why a child could not return a result.
pub(crate) enum Failure {
    /// The argument did not decode (or could not be read).
    Argument(String),
    /// The result did not encode.
    Result(String),
    /// The function panicked with this payload message.
    Panicked(String),
}

/// Offsets of functions are taken from this one; the child runs the same binary, so
/// `anchor + offset` is the same function there whatever address it was loaded at.
#[inline(never)]
pub(crate) fn anchor() {}

pub(crate) fn offset_of_fn(addr: usize) -> i64 {
    (addr as i64).wrapping_sub(anchor as fn() as usize as i64)
}

pub(crate) fn addr_of_offset(offset: i64) -> usize {
    (anchor as fn() as usize as i64).wrapping_add(offset) as usize
}

pub(crate) fn trampoline<A: DeserializeOwned, R: Serialize>(
    f: usize,
    input: wire::Payload,
) -> Result<wire::Encoded, Failure> {
    // SAFETY: `f` is the address of a `fn(A) -> R` in this binary: the parent computed
    // its offset from exactly such a function (`Builder::spawn`), monomorphised together
    // with this trampoline for the same `A` and `R`.
    let f: fn(A) -> R = unsafe { std::mem::transmute::<usize, fn(A) -> R>(f) };
    let args: A = input
        .decode()
        .map_err(|e| Failure::Argument(e.to_string()))?;
    let result = f(args);
    wire::encode(&result).map_err(Failure::Result)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn double(x: i32) -> i32 {
        x * 2
    }

    #[test]
    fn function_offsets_round_trip() {
        let f = double as fn(i32) -> i32 as usize;
        assert_eq!(addr_of_offset(offset_of_fn(f)), f);
    }
}
