//! [`Async`]: a shmkit handle whose waits are `async fn`s.

use shmkit_sync::SpinPolicy;

/// A shmkit handle whose waits are awaited instead of blocking a thread: `Async<Queue<T>>`
/// has `async fn get` and `async fn put`, `Async<Connection>` has `async fn recv` and
/// `async fn send`, and so on: the blocking names, awaited (one spelling per idea). Every
/// other method (`try_get`, `len`, `close`, ...) is the handle's own, through `Deref`.
///
/// ```no_run
/// # async fn f() -> shmkit_ring::Result<()> {
/// use shmkit_async::Async;
/// let q = Async::new(shmkit_ring::Queue::<u64>::new()?);
/// q.put(&7).await?;
/// assert_eq!(q.get().await?, 7);
/// assert!(q.is_empty()); // the Queue's own method
/// # Ok(()) }
/// ```
///
/// Every future is cancel-safe: dropped at any point (`tokio::select!`,
/// `tokio::time::timeout`), it has taken nothing and leaves no registration behind
/// (see the crate docs; a barrier's `wait` is the documented exception).
///
/// Before its first sleep a wait spins briefly, per its [`SpinPolicy`], as the blocking
/// waits do (checks, then `sched_yield`s), for at most 100 us of the runtime thread: a peer that answers within that time is caught without the
/// two wake-ups a sleep costs (the peer's `FUTEX_WAKE` of the waker thread, the waker
/// thread's wake of the task). A wait woken from a sleep does not spin again.
#[derive(Debug)]
pub struct Async<T> {
    pub(crate) inner: T,
    pub(crate) spin: SpinPolicy,
}

impl<T> Async<T> {
    /// Wrap `inner`, with the [default](SpinPolicy::DEFAULT) spin policy.
    pub fn new(inner: T) -> Self {
        Async {
            inner,
            spin: SpinPolicy::DEFAULT,
        }
    }

    /// Set how long a wait spins before it first sleeps (as the blocking waits'
    /// `set_spin_policy`). [`SpinPolicy::NEVER`] sleeps at once: for a runtime whose
    /// threads have other tasks to run.
    pub fn spin_policy(mut self, spin: SpinPolicy) -> Self {
        self.spin = spin;
        self
    }

    /// The handle back.
    pub fn into_inner(self) -> T {
        self.inner
    }
}

impl<T> std::ops::Deref for Async<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.inner
    }
}

impl<T> std::ops::DerefMut for Async<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.inner
    }
}

impl<T> From<T> for Async<T> {
    fn from(inner: T) -> Self {
        Async::new(inner)
    }
}
