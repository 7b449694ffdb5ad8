//! The robust cross-process `Mutex<T>` — Python's `multiprocessing.Lock`, holding data.

use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::time::Duration;

use bytemuck::Pod;
use shmkit_segment::{Kind, SegmentHandle, TypeFingerprint};

use crate::futex::{Deadline, SpinPolicy};
use crate::lock::{Handle, RobustLock};
use crate::{Open, Result};

/// A mutex around a `T: Pod` that lives in a shared segment, usable from any number of
/// processes — like `multiprocessing.Lock`, with the protected data inside it.
///
/// **Robust**: if the holder dies (even by SIGKILL), the next locker gets the lock within
/// about 10 ms, with [`MutexGuard::owner_died`] set: the data is there to check and
/// repair; call [`MutexGuard::mark_consistent`] once it is. Until then every locker sees
/// `owner_died()`. Nobody deadlocks on a dead holder.
///
/// Uncontended lock + unlock is two atomic operations and no syscall; a waiter spins
/// briefly ([`SpinPolicy`]) and then sleeps on a futex.
///
/// ```
/// use shmkit_sync::Mutex;
/// let name = format!("shmkit-doc-mutex-{}", std::process::id());
/// let counter = Mutex::create(&name, 0u64)?;
/// {
///     let mut n = counter.lock()?;
///     assert!(!n.owner_died());
///     *n += 1;
/// }
/// let other = Mutex::<u64>::open(&name)?;        // what another process does
/// assert_eq!(*other.lock()?, 1);
/// # Ok::<(), shmkit_sync::Error>(())
/// ```
pub struct Mutex<T> {
    lock: RobustLock,
    _t: PhantomData<T>,
}

impl<T> std::fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mutex")
            .field("name", &self.lock.name())
            .finish()
    }
}

/// Options for creating a [`Mutex`].
///
/// ```
/// use shmkit_sync::{Mutex, SpinPolicy};
/// let name = format!("shmkit-doc-mutex-builder-{}", std::process::id());
/// let m = Mutex::<u32>::builder(&name)
///     .spin_policy(SpinPolicy::NEVER)
///     .mode(0o600)
///     .create(5)?;
/// assert_eq!(*m.lock()?, 5);
/// # Ok::<(), shmkit_sync::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct MutexBuilder {
    name: String,
    spin: SpinPolicy,
    mode: u32,
}

impl MutexBuilder {
    /// How long lockers spin before they sleep (default [`SpinPolicy::DEFAULT`]).
    pub fn spin_policy(mut self, spin: SpinPolicy) -> Self {
        self.spin = spin;
        self
    }

    /// File mode of the segment (default `0o600`).
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = mode;
        self
    }

    /// Create the mutex holding `value`.
    pub fn create<T: Pod>(self, value: T) -> Result<Mutex<T>> {
        Mutex::make(Some(&self.name), Kind::Mutex, value, self.spin, self.mode)
    }

    /// Open an existing mutex.
    pub fn open<T: Pod>(self) -> Result<Mutex<T>> {
        let mut m = Mutex::<T>::open(&self.name)?;
        m.lock.spin = self.spin;
        Ok(m)
    }
}

impl<T: Pod> Mutex<T> {
    /// Create a named mutex holding `value`.
    pub fn create(name: &str, value: T) -> Result<Mutex<T>> {
        Mutex::make(Some(name), Kind::Mutex, value, SpinPolicy::DEFAULT, 0o600)
    }

    /// Create an anonymous mutex (reach it from children through [`handle`](Self::handle)).
    pub fn anonymous(value: T) -> Result<Mutex<T>> {
        Mutex::make(None, Kind::Mutex, value, SpinPolicy::DEFAULT, 0o600)
    }

    /// A builder for spin policy and mode.
    pub fn builder(name: &str) -> MutexBuilder {
        MutexBuilder {
            name: name.to_owned(),
            spin: SpinPolicy::DEFAULT,
            mode: 0o600,
        }
    }

    pub(crate) fn make(
        name: Option<&str>,
        kind: Kind,
        value: T,
        spin: SpinPolicy,
        mode: u32,
    ) -> Result<Mutex<T>> {
        let mut lock =
            RobustLock::create(name, kind, TypeFingerprint::of::<T>(), size_of::<T>(), mode)?;
        lock.spin = spin;
        // SAFETY: the data region holds size_of::<T>() bytes at a 128-aligned offset
        // (DATA_OFFSET), and nobody else has the mutex yet.
        unsafe { lock.data_ptr().cast::<T>().write(value) };
        Ok(Mutex {
            lock,
            _t: PhantomData,
        })
    }

    /// Open a named mutex; the segment must hold a `Mutex<T>` of this very `T`.
    pub fn open(name: &str) -> Result<Mutex<T>> {
        Mutex::open_kind(name, Kind::Mutex)
    }

    pub(crate) fn open_kind(name: &str, kind: Kind) -> Result<Mutex<T>> {
        let lock = RobustLock::open(name, kind, TypeFingerprint::of::<T>())?;
        Mutex::checked(lock)
    }

    pub(crate) fn checked(lock: RobustLock) -> Result<Mutex<T>> {
        if lock.data_len() < size_of::<T>() || align_of::<T>() > 128 {
            return Err(crate::Error::Corrupted {
                name: lock.name().to_owned(),
                what: format!(
                    "data region of {} bytes cannot hold the type",
                    lock.data_len()
                ),
            });
        }
        Ok(Mutex {
            lock,
            _t: PhantomData,
        })
    }

    /// Lock, waiting as long as it takes (a dead holder is detected within ~10 ms).
    #[inline]
    pub fn lock(&self) -> Result<MutexGuard<'_, T>> {
        let died = self.lock.lock(Deadline::NEVER)?;
        Ok(self.guard(died))
    }

    /// Lock, or `Err(Timeout)` after `timeout`.
    pub fn lock_timeout(&self, timeout: Duration) -> Result<MutexGuard<'_, T>> {
        // The deadline (a clock read: ~28 ns here, five times an uncontended lock +
        // unlock) only if the lock is held.
        if let Some(died) = self.lock.try_lock() {
            return Ok(self.guard(died));
        }
        let died = self.lock.lock(Deadline::after(Some(timeout)))?;
        Ok(self.guard(died))
    }

    /// Lock if nobody holds it; `None` otherwise.
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        self.lock.try_lock().map(|died| self.guard(died))
    }

    fn guard(&self, owner_died: bool) -> MutexGuard<'_, T> {
        MutexGuard {
            mutex: self,
            owner_died,
        }
    }

    /// A handle to pass to another process.
    pub fn handle(&self) -> Handle<Mutex<T>> {
        Handle::new(self.lock.handle())
    }

    /// The segment name.
    pub fn name(&self) -> &str {
        self.lock.name()
    }

    /// How many times the lock was taken over from a dead holder.
    pub fn recoveries(&self) -> u32 {
        self.lock
            .state()
            .recoveries
            .load(crate::primitive::Ordering::Relaxed)
    }

    pub(crate) fn raw(&self) -> &RobustLock {
        &self.lock
    }
}

impl<T: Pod> Open for Mutex<T> {
    fn open_handle(seg: &SegmentHandle) -> Result<Self> {
        Mutex::checked(RobustLock::open_handle(seg)?)
    }
}

/// Exclusive access to a [`Mutex`]'s data; unlocks on drop.
///
/// ```
/// let m = shmkit_sync::Mutex::anonymous([0u8; 4])?;
/// let mut g = m.lock()?;
/// if g.owner_died() {
///     *g = [0; 4];              // repair what a dead holder left half-done
///     g.mark_consistent();
/// }
/// g[0] = 1;
/// # Ok::<(), shmkit_sync::Error>(())
/// ```
pub struct MutexGuard<'a, T: Pod> {
    mutex: &'a Mutex<T>,
    owner_died: bool,
}

impl<T: Pod + std::fmt::Debug> std::fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MutexGuard")
            .field("value", &**self)
            .field("owner_died", &self.owner_died)
            .finish()
    }
}

impl<T: Pod> MutexGuard<'_, T> {
    /// Whether a previous holder died while holding the lock (and nobody has called
    /// [`mark_consistent`](Self::mark_consistent) since): the data may be half-updated.
    /// Like `EOWNERDEAD` of a robust pthread mutex.
    pub fn owner_died(&self) -> bool {
        self.owner_died
    }

    /// Declare the data repaired: later lockers no longer see `owner_died()`.
    pub fn mark_consistent(&mut self) {
        self.mutex.lock.mark_consistent();
        self.owner_died = false;
    }

    /// Unlock, returning the mutex (how a [`Condvar`](crate::Condvar) waits).
    pub(crate) fn unlock_into_mutex<'b>(guard: MutexGuard<'b, T>) -> &'b Mutex<T> {
        let mutex = guard.mutex;
        drop(guard);
        mutex
    }
}

impl<T: Pod> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: we hold the lock, so no process writes the data now (every access goes
        // through the lock); the region is aligned and sized for T (checked at open);
        // T is Pod, so whatever a dead holder left is a valid T.
        unsafe { &*self.mutex.lock.data_ptr().cast::<T>() }
    }
}

impl<T: Pod> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as for `deref`, and the guard is the only access in any process while
        // it lives (`&mut self`).
        unsafe { &mut *self.mutex.lock.data_ptr().cast::<T>() }
    }
}

impl<T: Pod> Drop for MutexGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        self.mutex.lock.unlock();
    }
}
