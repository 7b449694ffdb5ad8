//! The awaited forms of the pool's results: [`AsyncResult`] and [`MapResult`] as
//! futures, [`IMap`] (`imap`, `imap_unordered`) as a [`Stream`].
//!
//! These live in this process (a mutex and a condition variable filled by the pool's
//! collector thread): the job keeps each awaiting task's `Waker` and wakes it where it
//! notifies the condition variable; no futex word, no waker thread.

use crate::wrapper::Async;
use futures_core::Stream;
use shmkit_pool::{AsyncResult, IMap, MapResult, Result};
use std::future::poll_fn;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

impl<R> Async<AsyncResult<R>> {
    /// Wait for the result and return it (or the task's error), like
    /// [`AsyncResult::get`]. Cancel-safe: the result is taken only once it is there (a
    /// second call then returns [`Error::Taken`](shmkit_pool::Error::Taken)).
    pub async fn get(&self) -> Result<R> {
        poll_fn(|cx| self.inner.poll_ready(cx)).await;
        // Ready: this does not wait.
        self.inner.get_timeout(Duration::ZERO)
    }
}

impl<R> Async<MapResult<R>> {
    /// Wait for every result; the values in input order, or the first error in input
    /// order, like [`MapResult::get`]. Cancel-safe, as [`Async::<AsyncResult>::get`].
    pub async fn get(&self) -> Result<Vec<R>> {
        poll_fn(|cx| self.inner.poll_ready(cx)).await;
        self.inner.get_timeout(Duration::ZERO)
    }
}

impl<R> Stream for Async<IMap<R>> {
    type Item = Result<R>;

    /// The next result (input order for `imap`, completion order for
    /// `imap_unordered`), `None` after the last.
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<R>>> {
        let it = &mut self.get_mut().inner;
        match it.poll_ready(cx) {
            // Ready: `next` does not wait.
            Poll::Ready(()) => Poll::Ready(it.next()),
            Poll::Pending => Poll::Pending,
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}
