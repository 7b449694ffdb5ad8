//! A job's result slots: one per task, each filled at most once and in any order, and
//! handed back as the `Vec<R>` a `map` returns, without a copy.
//!
//! The slots were a `Vec<Option<R>>`, collected into a fresh `Vec<R>` at the end: for
//! a `map` of 200 000 `u64`s, 3.2 MB written with `None`s up front, then 1.6 MB more
//! for the copy. Each such block was fresh memory from the kernel whenever glibc's
//! thresholds left it so, and its pages were faulted in on every `map`
//! (docs/benchmarks.md, "Issue 17, seventh pass"). Here the values sit in the vector
//! that is returned, uninitialised until filled, and a bit per slot says which hold a
//! value.

use std::mem::{ManuallyDrop, MaybeUninit};

/// `len` slots of `R`, each empty or holding one value.
pub(crate) struct Slots<R> {
    /// Slot `i` holds a value iff bit `i` of `filled` is set.
    values: Vec<MaybeUninit<R>>,
    /// One bit per slot.
    filled: Vec<u64>,
    /// How many bits of `filled` are set.
    count: usize,
}

impl<R> Slots<R> {
    /// `len` empty slots. Nothing is written to the values' memory.
    pub(crate) fn new(len: usize) -> Self {
        Slots {
            values: Box::<[R]>::new_uninit_slice(len).into_vec(),
            filled: vec![0; len.div_ceil(64)],
            count: 0,
        }
    }

    /// How many slots there are.
    pub(crate) fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether slot `i` holds a value (`false` beyond the end).
    pub(crate) fn is_filled(&self, i: usize) -> bool {
        i < self.len() && self.filled[i / 64] & (1 << (i % 64)) != 0
    }

    /// Put `v` in slot `i`; `false` (and `v` dropped) if `i` is beyond the end or the
    /// slot is already filled.
    pub(crate) fn fill(&mut self, i: usize, v: R) -> bool {
        if i >= self.len() || self.is_filled(i) {
            return false;
        }
        self.values[i].write(v);
        self.filled[i / 64] |= 1 << (i % 64);
        self.count += 1;
        true
    }

    /// The value in slot `i`, leaving it empty.
    pub(crate) fn take(&mut self, i: usize) -> Option<R> {
        if !self.is_filled(i) {
            return None;
        }
        self.filled[i / 64] &= !(1 << (i % 64));
        self.count -= 1;
        // SAFETY: the bit was set, so slot `i` was written by `fill` and not read out
        // since; clearing the bit first means it is read out exactly once.
        Some(unsafe { self.values[i].assume_init_read() })
    }

    /// Every value in slot order, if every slot holds one; else the slots, unchanged.
    pub(crate) fn into_vec(self) -> Result<Vec<R>, Self> {
        if self.count != self.len() {
            return Err(self);
        }
        // Its `Drop` must not run: the values move into the returned vector. What is
        // left in it after the two `take`s owns no memory.
        let mut me = ManuallyDrop::new(self);
        drop(std::mem::take(&mut me.filled));
        let mut values = ManuallyDrop::new(std::mem::take(&mut me.values));
        let (ptr, len, cap) = (values.as_mut_ptr(), values.len(), values.capacity());
        // SAFETY: `MaybeUninit<R>` has `R`'s size and alignment, so the allocation is
        // one for `cap` `R`s; `count == len` and each slot's bit is set once, by `fill`,
        // so all `len` values are initialised; `values` is not dropped, so the vector
        // built here is the allocation's only owner.
        Ok(unsafe { Vec::from_raw_parts(ptr.cast::<R>(), len, cap) })
    }
}

impl<R> Drop for Slots<R> {
    fn drop(&mut self) {
        if self.count == 0 || !std::mem::needs_drop::<R>() {
            return;
        }
        for i in 0..self.len() {
            if self.is_filled(i) {
                // SAFETY: a set bit marks a value written by `fill` and not read out;
                // each is dropped once, here, and the slots are not used again.
                unsafe { self.values[i].assume_init_drop() };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    #[test]
    fn filled_in_any_order_comes_back_in_slot_order() {
        let mut s = Slots::new(130);
        for i in (0..130).rev() {
            assert!(s.fill(i, i.to_string()));
        }
        let v = s.into_vec().ok().expect("every slot filled");
        assert_eq!(v, (0..130).map(|i| i.to_string()).collect::<Vec<_>>());
    }

    #[test]
    fn a_slot_is_filled_once_and_taken_once() {
        let mut s = Slots::new(3);
        assert!(s.fill(1, String::from("a")));
        assert!(!s.fill(1, String::from("b")), "filled already");
        assert!(!s.fill(3, String::from("c")), "beyond the end");
        assert!(s.is_filled(1) && !s.is_filled(0) && !s.is_filled(3));
        assert_eq!(s.take(1).as_deref(), Some("a"));
        assert_eq!(s.take(1), None);
        assert!(s.fill(1, String::from("d")), "empty again");
    }

    #[test]
    fn an_incomplete_set_is_handed_back_and_drops_what_it_holds() {
        let counted = Rc::new(());
        let mut s = Slots::new(70);
        for i in [0, 63, 64, 69] {
            assert!(s.fill(i, Rc::clone(&counted)));
        }
        let s = s.into_vec().expect_err("four of seventy");
        assert_eq!(Rc::strong_count(&counted), 5);
        drop(s);
        assert_eq!(
            Rc::strong_count(&counted),
            1,
            "each held value dropped once"
        );
    }

    #[test]
    fn the_returned_vector_owns_the_values() {
        let counted = Rc::new(());
        let mut s = Slots::new(2);
        s.fill(1, Rc::clone(&counted));
        s.fill(0, Rc::clone(&counted));
        let v = s.into_vec().ok().expect("full");
        assert_eq!(Rc::strong_count(&counted), 3);
        drop(v);
        assert_eq!(Rc::strong_count(&counted), 1);
        let empty = Slots::<u64>::new(0)
            .into_vec()
            .ok()
            .expect("nothing to fill");
        assert!(empty.is_empty());
    }
}
