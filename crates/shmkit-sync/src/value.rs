//! `Value<T>` and `Array<T>` — Python's `multiprocessing.Value` and `Array`.

use std::time::Duration;

use bytemuck::Pod;
use shmkit_segment::{Kind, SegmentHandle, TypeFingerprint};

use crate::futex::SpinPolicy;
use crate::lock::{Handle, RobustLock};
use crate::mutex::{Mutex, MutexGuard};
use crate::primitive::{AtomicU32, AtomicU64, Ordering};
use crate::{Error, Open, Result};

/// A single `T` in shared memory, with its own robust lock — `multiprocessing.Value`
/// (`Value('i', 0)` is `Value::<i32>::create(name, 0)`).
///
/// [`get`](Self::get) and [`set`](Self::set) take the lock; [`lock`](Self::lock) holds it
/// across a read-modify-write (Python's `with v.get_lock(): v.value += 1`). For integer
/// types the atomic fast paths ([`fetch_add`](Self::fetch_add) and friends) need no lock.
/// [`with_lock(false)`](Self::with_lock) makes `get`/`set` plain copies, like
/// `Value('i', 0, lock=False)`. The atomic paths never take the lock, so do not mix them
/// with read-modify-writes under [`lock`](Self::lock) on the same value: pick one.
///
/// ```
/// let v = shmkit_sync::Value::anonymous(0i32)?;
/// v.set(41)?;
/// *v.lock()? += 1;
/// assert_eq!(v.get()?, 42);
/// assert_eq!(v.fetch_add(8), 42);
/// assert_eq!(v.load(), 50);
/// # Ok::<(), shmkit_sync::Error>(())
/// ```
#[derive(Debug)]
pub struct Value<T> {
    inner: Mutex<T>,
    locked: bool,
}

impl<T: Pod> Value<T> {
    /// Create a named value holding `value`.
    pub fn create(name: &str, value: T) -> Result<Value<T>> {
        Ok(Value::from(Mutex::make(
            Some(name),
            Kind::Value,
            value,
            SpinPolicy::DEFAULT,
            0o600,
        )?))
    }

    /// Create an anonymous value.
    pub fn anonymous(value: T) -> Result<Value<T>> {
        Ok(Value::from(Mutex::make(
            None,
            Kind::Value,
            value,
            SpinPolicy::DEFAULT,
            0o600,
        )?))
    }

    /// Open a named value of this `T`.
    pub fn open(name: &str) -> Result<Value<T>> {
        Ok(Value::from(Mutex::open_kind(name, Kind::Value)?))
    }

    /// Whether `get`/`set` take the lock (default `true`).
    pub fn with_lock(mut self, locked: bool) -> Value<T> {
        self.locked = locked;
        self
    }

    /// A copy of the value.
    pub fn get(&self) -> Result<T> {
        if self.locked {
            return Ok(*self.inner.lock()?);
        }
        let seg = self.inner.raw();
        // SAFETY: the data region holds a T (checked at open), aligned; T is Pod, so a
        // concurrent writer can tear the value but not make it invalid (lock=False
        // semantics, as in Python).
        Ok(unsafe { std::ptr::read_volatile(seg.data_ptr().cast::<T>()) })
    }

    /// Replace the value.
    pub fn set(&self, value: T) -> Result<()> {
        if self.locked {
            *self.inner.lock()? = value;
            return Ok(());
        }
        // SAFETY: as in `get`; the write is a plain copy of a Pod value.
        unsafe { std::ptr::write_volatile(self.inner.raw().data_ptr().cast::<T>(), value) };
        Ok(())
    }

    /// Hold the lock for a read-modify-write.
    pub fn lock(&self) -> Result<MutexGuard<'_, T>> {
        self.inner.lock()
    }

    /// Like [`lock`](Self::lock), or `Err(Timeout)`.
    pub fn lock_timeout(&self, timeout: Duration) -> Result<MutexGuard<'_, T>> {
        self.inner.lock_timeout(timeout)
    }

    /// The lock itself (Python's `get_lock()`).
    pub fn get_lock(&self) -> &Mutex<T> {
        &self.inner
    }

    /// A handle to pass to another process.
    pub fn handle(&self) -> Handle<Value<T>> {
        Handle::new(self.inner.raw().handle())
    }
}

impl<T: Pod> From<Mutex<T>> for Value<T> {
    fn from(inner: Mutex<T>) -> Self {
        Value {
            inner,
            locked: true,
        }
    }
}

impl<T: Pod> Open for Value<T> {
    fn open_handle(seg: &SegmentHandle) -> Result<Self> {
        Ok(Value::from(Mutex::checked(RobustLock::open_handle(seg)?)?))
    }
}

/// Integers with lock-free atomic operations on a [`Value`].
pub trait AtomicInt: Pod + sealed::Sealed {
    #[doc(hidden)]
    fn atomic_op(ptr: *mut u8, op: AtomicOp, a: Self, b: Self) -> Result<Self, Self>;
}

#[doc(hidden)]
#[derive(Clone, Copy, Debug)]
pub enum AtomicOp {
    Load,
    Store,
    Add,
    Sub,
    Swap,
    Cas,
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for u32 {}
    impl Sealed for i32 {}
    impl Sealed for u64 {}
    impl Sealed for i64 {}
}

macro_rules! atomic_int {
    ($t:ty, $atomic:ty, $bits:ty) => {
        impl AtomicInt for $t {
            fn atomic_op(ptr: *mut u8, op: AtomicOp, a: Self, b: Self) -> Result<Self, Self> {
                // SAFETY: `ptr` is the data region of a Value<$t>: 128-aligned, sized for
                // $t (checked at open); the atomic type has the same layout as $t.
                let atomic = unsafe { &*ptr.cast::<$atomic>() };
                let (a, b) = (a as $bits, b as $bits);
                let r = match op {
                    AtomicOp::Load => atomic.load(Ordering::SeqCst),
                    AtomicOp::Store => {
                        atomic.store(a, Ordering::SeqCst);
                        a
                    }
                    AtomicOp::Add => atomic.fetch_add(a, Ordering::SeqCst),
                    AtomicOp::Sub => atomic.fetch_sub(a, Ordering::SeqCst),
                    AtomicOp::Swap => atomic.swap(a, Ordering::SeqCst),
                    AtomicOp::Cas => {
                        return atomic
                            .compare_exchange(a, b, Ordering::SeqCst, Ordering::SeqCst)
                            .map(|v| v as $t)
                            .map_err(|v| v as $t);
                    }
                };
                Ok(r as $t)
            }
        }
    };
}

atomic_int!(u32, AtomicU32, u32);
atomic_int!(i32, AtomicU32, u32);
atomic_int!(u64, AtomicU64, u64);
atomic_int!(i64, AtomicU64, u64);

impl<T: AtomicInt> Value<T> {
    fn op(&self, op: AtomicOp, a: T, b: T) -> Result<T, T> {
        T::atomic_op(self.inner.raw().data_ptr(), op, a, b)
    }

    /// Atomic read, without the lock.
    pub fn load(&self) -> T {
        self.op(AtomicOp::Load, T::zeroed(), T::zeroed())
            .unwrap_or_else(|v| v)
    }

    /// Atomic write, without the lock.
    pub fn store(&self, v: T) {
        let _ = self.op(AtomicOp::Store, v, T::zeroed());
    }

    /// Atomic add (wrapping); returns the previous value.
    pub fn fetch_add(&self, v: T) -> T {
        self.op(AtomicOp::Add, v, T::zeroed()).unwrap_or_else(|v| v)
    }

    /// Atomic subtract (wrapping); returns the previous value.
    pub fn fetch_sub(&self, v: T) -> T {
        self.op(AtomicOp::Sub, v, T::zeroed()).unwrap_or_else(|v| v)
    }

    /// Atomic swap; returns the previous value.
    pub fn swap(&self, v: T) -> T {
        self.op(AtomicOp::Swap, v, T::zeroed())
            .unwrap_or_else(|v| v)
    }

    /// Atomic compare-and-exchange: `Ok(previous)` if it held `current`, else `Err(actual)`.
    pub fn compare_exchange(&self, current: T, new: T) -> Result<T, T> {
        self.op(AtomicOp::Cas, current, new)
    }
}

/// A fixed-length array of `T` in shared memory with its own robust lock —
/// `multiprocessing.Array` (`Array('i', 5)` is `Array::<i32>::zeroed(name, 5)`).
///
/// ```
/// let a = shmkit_sync::Array::<i32>::anonymous_zeroed(5)?;
/// a.set(2, 7)?;
/// a.lock()?[3] = 9;
/// assert_eq!(a.to_vec()?, [0, 0, 7, 9, 0]);
/// assert_eq!(a.len(), 5);
/// # Ok::<(), shmkit_sync::Error>(())
/// ```
pub struct Array<T> {
    lock: RobustLock,
    len: usize,
    locked: bool,
    _t: std::marker::PhantomData<T>,
}

impl<T> std::fmt::Debug for Array<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Array")
            .field("name", &self.lock.name())
            .field("len", &self.len)
            .finish()
    }
}

impl<T: Pod> Array<T> {
    /// Create a named array holding a copy of `values`.
    pub fn create(name: &str, values: &[T]) -> Result<Array<T>> {
        Array::make(Some(name), values)
    }

    /// Create a named array of `len` zeroed elements.
    pub fn zeroed(name: &str, len: usize) -> Result<Array<T>> {
        Array::make(Some(name), &vec![T::zeroed(); len])
    }

    /// Create an anonymous array holding a copy of `values`.
    pub fn anonymous(values: &[T]) -> Result<Array<T>> {
        Array::make(None, values)
    }

    /// Create an anonymous array of `len` zeroed elements.
    pub fn anonymous_zeroed(len: usize) -> Result<Array<T>> {
        Array::make(None, &vec![T::zeroed(); len])
    }

    fn make(name: Option<&str>, values: &[T]) -> Result<Array<T>> {
        let bytes = size_of_val(values);
        let lock = RobustLock::create(name, Kind::Array, TypeFingerprint::of::<T>(), bytes, 0o600)?;
        // SAFETY: the data region holds `bytes` bytes, 128-aligned, and nobody else has
        // the array yet.
        unsafe {
            std::ptr::copy_nonoverlapping(values.as_ptr().cast::<u8>(), lock.data_ptr(), bytes)
        };
        Array::checked(lock)
    }

    /// Open a named array of this `T`.
    pub fn open(name: &str) -> Result<Array<T>> {
        Array::checked(RobustLock::open(
            name,
            Kind::Array,
            TypeFingerprint::of::<T>(),
        )?)
    }

    fn checked(lock: RobustLock) -> Result<Array<T>> {
        let size = size_of::<T>().max(1);
        // DESIGN rule 2: the length derives from a size another process wrote.
        if align_of::<T>() > 128 || !lock.data_len().is_multiple_of(size) {
            return Err(Error::Corrupted {
                name: lock.name().to_owned(),
                what: format!(
                    "{} data bytes is not a whole number of elements",
                    lock.data_len()
                ),
            });
        }
        Ok(Array {
            len: lock.data_len() / size,
            lock,
            locked: true,
            _t: std::marker::PhantomData,
        })
    }

    /// Whether `get`/`set`/`to_vec` take the lock (default `true`).
    pub fn with_lock(mut self, locked: bool) -> Array<T> {
        self.locked = locked;
        self
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn elem(&self, i: usize) -> Result<*mut T> {
        if i >= self.len {
            return Err(Error::IndexOutOfRange {
                name: self.lock.name().to_owned(),
                index: i,
                len: self.len,
            });
        }
        // SAFETY: i < len, so the element lies inside the data region.
        Ok(unsafe { self.lock.data_ptr().cast::<T>().add(i) })
    }

    fn with<R>(&self, f: impl FnOnce() -> R) -> Result<R> {
        if self.locked {
            let _g = self.lock()?;
            Ok(f())
        } else {
            Ok(f())
        }
    }

    /// Element `i`.
    pub fn get(&self, i: usize) -> Result<T> {
        let p = self.elem(i)?;
        // SAFETY: `p` is in bounds (checked) and aligned; T is Pod.
        self.with(|| unsafe { std::ptr::read_volatile(p) })
    }

    /// Set element `i`.
    pub fn set(&self, i: usize, v: T) -> Result<()> {
        let p = self.elem(i)?;
        // SAFETY: as in `get`.
        self.with(|| unsafe { std::ptr::write_volatile(p, v) })
    }

    /// A copy of every element.
    pub fn to_vec(&self) -> Result<Vec<T>> {
        let mut out = vec![T::zeroed(); self.len];
        let src = self.lock.data_ptr();
        // SAFETY: the data region holds len elements (checked at open); `out` is ours.
        self.with(|| unsafe {
            std::ptr::copy_nonoverlapping(
                src,
                out.as_mut_ptr().cast::<u8>(),
                size_of::<T>() * self.len,
            )
        })?;
        Ok(out)
    }

    /// Hold the lock; the guard derefs to `[T]`.
    pub fn lock(&self) -> Result<ArrayGuard<'_, T>> {
        let owner_died = self.lock.lock(crate::futex::Deadline::NEVER)?;
        Ok(ArrayGuard {
            array: self,
            owner_died,
        })
    }

    /// A handle to pass to another process.
    pub fn handle(&self) -> Handle<Array<T>> {
        Handle::new(self.lock.handle())
    }
}

impl<T: Pod> Open for Array<T> {
    fn open_handle(seg: &SegmentHandle) -> Result<Self> {
        Array::checked(RobustLock::open_handle(seg)?)
    }
}

/// Exclusive access to an [`Array`]; derefs to `[T]`, unlocks on drop.
pub struct ArrayGuard<'a, T: Pod> {
    array: &'a Array<T>,
    owner_died: bool,
}

impl<T: Pod + std::fmt::Debug> std::fmt::Debug for ArrayGuard<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArrayGuard")
            .field("items", &&**self)
            .field("owner_died", &self.owner_died)
            .finish()
    }
}

impl<T: Pod> ArrayGuard<'_, T> {
    /// Whether a previous holder died holding the lock (see [`Mutex`]).
    pub fn owner_died(&self) -> bool {
        self.owner_died
    }

    /// Declare the data repaired.
    pub fn mark_consistent(&mut self) {
        self.array.lock.mark_consistent();
        self.owner_died = false;
    }
}

impl<T: Pod> std::ops::Deref for ArrayGuard<'_, T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        // SAFETY: the lock is held, so no process writes the elements (all access goes
        // through the lock); the region holds `len` aligned elements (checked at open).
        unsafe {
            std::slice::from_raw_parts(self.array.lock.data_ptr().cast::<T>(), self.array.len)
        }
    }
}

impl<T: Pod> std::ops::DerefMut for ArrayGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as for `deref`; `&mut self` makes this the only access.
        unsafe {
            std::slice::from_raw_parts_mut(self.array.lock.data_ptr().cast::<T>(), self.array.len)
        }
    }
}

impl<T: Pod> Drop for ArrayGuard<'_, T> {
    fn drop(&mut self) {
        self.array.lock.unlock();
    }
}
