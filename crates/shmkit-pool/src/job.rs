//! Results on their way back: the state a submitted job fills in, and the handles a
//! caller waits on ([`AsyncResult`], [`MapResult`], [`IMap`]).

use crate::error::{Error, Result};
use crate::slots::Slots;
use crate::wire;
use serde::de::DeserializeOwned;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// Receives a chunk's outcomes; implemented by [`Job`] for each result type.
pub(crate) trait Deliver: Send + Sync {
    /// Outcomes of tasks `first..first + count`: the encoded `Vec<Result<R, String>>`,
    /// or one error for all of them.
    fn deliver(&self, first: usize, count: usize, outcome: Result<&[u8]>);
}

/// What a waiter waits for; `deliver` wakes it only when that is there (a wake-up is a
/// syscall: not one per chunk of a long map).
#[derive(Clone, Copy)]
enum Want {
    Nothing,
    All,
    Index(usize),
    Any,
}

/// Results by task index. Values and errors are kept apart, so that a slot costs the
/// size of `R` and a bit, not that of the error type.
struct State<R> {
    values: Slots<R>,
    errors: BTreeMap<usize, Error>,
    total: usize,
    done: usize,
    /// Indices in completion order, not yet handed out (kept for `imap_unordered` only).
    order: VecDeque<usize>,
    track_order: bool,
    /// Async waiters (shmkit-async, through the `internals` hooks): each is woken, and
    /// dropped from the list, when what it waits for is there.
    wakers: Vec<(Want, Waker)>,
    want: Want,
}

impl<R> State<R> {
    fn is_filled(&self, i: usize) -> bool {
        self.values.is_filled(i) || self.errors.contains_key(&i)
    }

    fn satisfied(&self, want: Want) -> bool {
        match want {
            Want::Nothing => false,
            Want::All => self.done >= self.total,
            Want::Index(i) => i >= self.total || self.is_filled(i),
            Want::Any => !self.order.is_empty(),
        }
    }

    fn put(&mut self, i: usize, r: Result<R>) {
        if i >= self.values.len() || self.is_filled(i) {
            return;
        }
        match r {
            Ok(v) => {
                self.values.fill(i, v);
            }
            Err(e) => {
                self.errors.insert(i, e);
            }
        }
        self.done += 1;
        if self.track_order {
            self.order.push_back(i);
        }
    }

    /// Empty the slots of `range` that were filled since `done` was `before` (a chunk
    /// whose outcomes turned out undecodable half-way; no other chunk fills them).
    fn unfill(&mut self, range: std::ops::Range<usize>, before: usize) {
        let end = range.end.min(self.values.len());
        for i in range.start.min(end)..end {
            self.values.take(i);
            self.errors.remove(&i);
        }
        self.order.retain(|i| !(range.start..end).contains(i));
        self.done = before;
    }

    /// Result `i`, once (then `Taken`).
    fn take(&mut self, i: usize) -> Result<R> {
        match self.values.take(i) {
            Some(v) => Ok(v),
            None => Err(self.errors.remove(&i).unwrap_or(Error::Taken)),
        }
    }

    /// Every value in order, or the first error in order.
    fn take_all(&mut self) -> Result<Vec<R>> {
        if let Some((_, e)) = self.errors.first_key_value() {
            return Err(e.clone());
        }
        // Handed over as they lie (no copy); slots already taken one by one: `Taken`.
        let values = std::mem::replace(&mut self.values, Slots::new(0));
        if values.len() != self.total {
            return Err(Error::Taken);
        }
        values.into_vec().map_err(|_| Error::Taken)
    }

    /// Every outcome in order, each its own.
    fn take_each(&mut self) -> Vec<Result<R>> {
        (0..self.total).map(|i| self.take(i)).collect()
    }
}

/// One submitted `map`/`apply` and its results, slot by slot.
pub(crate) struct Job<R> {
    state: Mutex<State<R>>,
    cv: Condvar,
}

impl<R> Job<R> {
    /// A job of `total` tasks; `track_order` for results handed out as they complete.
    pub(crate) fn new(total: usize, track_order: bool) -> Arc<Self> {
        Arc::new(Job {
            state: Mutex::new(State {
                values: Slots::new(total),
                errors: BTreeMap::new(),
                total,
                done: 0,
                order: VecDeque::new(),
                track_order,
                want: Want::Nothing,
                wakers: Vec::new(),
            }),
            cv: Condvar::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State<R>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn total(&self) -> usize {
        self.lock().total
    }

    fn completed(&self) -> usize {
        self.lock().done
    }

    /// Wait until `want` holds (`None`: forever). Returns the guard, or `None` on
    /// timeout.
    fn wait(&self, want: Want, timeout: Option<Duration>) -> Option<MutexGuard<'_, State<R>>> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut st = self.lock();
        while !st.satisfied(want) {
            st.want = want;
            st = match deadline {
                None => self.cv.wait(st).unwrap_or_else(|p| p.into_inner()),
                Some(d) => {
                    let left = d.checked_duration_since(Instant::now())?;
                    self.cv
                        .wait_timeout(st, left)
                        .unwrap_or_else(|p| p.into_inner())
                        .0
                }
            };
        }
        st.want = Want::Nothing;
        Some(st)
    }

    fn fill(&self, first: usize, values: impl Iterator<Item = Result<R>>) {
        let mut st = self.lock();
        for (i, v) in values.enumerate() {
            st.put(first + i, v);
        }
        self.notify(&mut st);
    }

    /// After filling slots: wake the blocking waiter and the async waiters whose wish
    /// now holds (every path that fills slots ends here).
    fn notify(&self, st: &mut State<R>) {
        let want = st.want;
        if st.satisfied(want) {
            st.want = Want::Nothing;
            self.cv.notify_all();
        }
        if !st.wakers.is_empty() {
            let mut wakers = std::mem::take(&mut st.wakers);
            wakers.retain(|(want, waker)| {
                let done = st.satisfied(*want);
                if done {
                    waker.wake_by_ref();
                }
                !done
            });
            st.wakers = wakers;
        }
    }

    /// Ready once `want` holds; else the task's waker is kept (once per task) and woken
    /// by `fill` when it does.
    #[cfg_attr(not(feature = "internals"), allow(dead_code))]
    fn poll_want(&self, want: Want, cx: &mut Context<'_>) -> Poll<()> {
        let mut st = self.lock();
        if st.satisfied(want) {
            return Poll::Ready(());
        }
        let w = cx.waker();
        match st.wakers.iter_mut().find(|(_, k)| k.will_wake(w)) {
            Some(slot) => slot.0 = want,
            None => st.wakers.push((want, w.clone())),
        }
        Poll::Pending
    }
}

impl<R: DeserializeOwned + Send + 'static> Deliver for Job<R> {
    fn deliver(&self, first: usize, count: usize, outcome: Result<&[u8]>) {
        let bytes = match outcome {
            Ok(bytes) => bytes,
            Err(e) => return self.fill(first, all_failed(e, count).into_iter()),
        };
        // Decoded straight into the slots, under one lock: no vector of outcomes per
        // chunk (two allocations of a chunk's size, and their page faults, per chunk of
        // a long map), and the `Result` tag read by hand (serde's enum machinery was
        // the collector's largest cost per task: docs/benchmarks.md).
        let mut st = self.lock();
        let put = |st: &mut State<R>| -> std::result::Result<(), String> {
            let (n, mut rest) = crate::value::take_len(bytes).map_err(|e| e.to_string())?;
            if n != count {
                return Err(format!("{n} outcomes for a chunk of {count}"));
            }
            for i in 0..count {
                let (r, more) = wire::take_outcome::<R>(rest).map_err(|e| e.to_string())?;
                rest = more;
                st.put(first + i, r.map_err(|message| Error::Panicked { message }));
            }
            Ok(())
        };
        let before = st.done;
        if let Err(reason) = put(&mut st) {
            // All or nothing, as if the chunk had not been decoded at all: the slots
            // this chunk filled so far are emptied, then every one gets the error.
            st.unfill(first..first + count, before);
            let e = Error::Decode {
                type_name: std::any::type_name::<R>(),
                reason,
            };
            for i in 0..count {
                st.put(first + i, Err(e.clone()));
            }
        }
        self.notify(&mut st);
    }
}

fn all_failed<R>(e: Error, count: usize) -> Vec<Result<R>> {
    (0..count).map(|_| Err(e.clone())).collect()
}

/// The pending result of [`Pool::apply_async`](crate::Pool::apply_async) — Python's
/// `AsyncResult`.
///
/// | Python | shmkit |
/// |---|---|
/// | `r.get()` / `r.get(timeout)` | [`get`](Self::get) / [`get_timeout`](Self::get_timeout) |
/// | `r.wait()` / `r.wait(timeout)` | [`wait`](Self::wait) / [`wait_timeout`](Self::wait_timeout) |
/// | `r.ready()`, `r.successful()` | [`ready`](Self::ready), [`successful`](Self::successful) (`None` until ready) |
#[must_use = "the task runs anyway; without the AsyncResult its result is dropped"]
pub struct AsyncResult<R> {
    job: Arc<Job<R>>,
}

impl<R> std::fmt::Debug for AsyncResult<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncResult")
            .field("ready", &self.ready())
            .finish()
    }
}

impl<R> AsyncResult<R> {
    pub(crate) fn new(job: Arc<Job<R>>) -> Self {
        AsyncResult { job }
    }

    /// Wait for the result and return it (or the task's error).
    pub fn get(self) -> Result<R> {
        let mut st = self
            .job
            .wait(Want::All, None)
            .expect("no deadline, no timeout");
        st.take(0)
    }

    /// [`get`](Self::get), giving up after `timeout` with [`Error::Timeout`] (the task
    /// stays pending: call again). After a successful call, [`Error::Taken`].
    pub fn get_timeout(&self, timeout: Duration) -> Result<R> {
        let mut st = self
            .job
            .wait(Want::All, Some(timeout))
            .ok_or(Error::Timeout)?;
        st.take(0)
    }

    /// Whether the task has finished (successfully or not).
    pub fn ready(&self) -> bool {
        let st = self.job.lock();
        st.satisfied(Want::All)
    }

    /// `Some(true)` if it finished successfully, `Some(false)` if with an error, `None`
    /// while it runs (Python raises `ValueError` then).
    pub fn successful(&self) -> Option<bool> {
        let st = self.job.lock();
        if st.total == 0 || st.errors.contains_key(&0) {
            return Some(st.total == 0);
        }
        st.is_filled(0).then_some(true)
    }

    /// Ready once [`get`](Self::get) would not wait; else the task is woken when it
    /// would not (feature `internals`, for shmkit-async).
    #[cfg(feature = "internals")]
    #[doc(hidden)]
    pub fn poll_ready(&self, cx: &mut Context<'_>) -> Poll<()> {
        self.job.poll_want(Want::All, cx)
    }

    /// Wait until the task has finished.
    pub fn wait(&self) {
        drop(self.job.wait(Want::All, None));
    }

    /// Wait until the task has finished or `timeout` passed; whether it finished.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.job.wait(Want::All, Some(timeout)).is_some()
    }
}

/// The pending results of [`Pool::map_async`](crate::Pool::map_async), in input order.
#[must_use = "the tasks run anyway; without the MapResult their results are dropped"]
pub struct MapResult<R> {
    job: Arc<Job<R>>,
}

impl<R> std::fmt::Debug for MapResult<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MapResult")
            .field("completed", &self.completed())
            .field("len", &self.len())
            .finish()
    }
}

impl<R> MapResult<R> {
    pub(crate) fn new(job: Arc<Job<R>>) -> Self {
        MapResult { job }
    }

    /// Wait for every result; the values in input order, or the first error in input
    /// order (like Python's `map`, which raises the first exception).
    pub fn get(self) -> Result<Vec<R>> {
        let mut st = self
            .job
            .wait(Want::All, None)
            .expect("no deadline, no timeout");
        st.take_all()
    }

    /// [`get`](Self::get), giving up after `timeout` with [`Error::Timeout`].
    pub fn get_timeout(&self, timeout: Duration) -> Result<Vec<R>> {
        let mut st = self
            .job
            .wait(Want::All, Some(timeout))
            .ok_or(Error::Timeout)?;
        st.take_all()
    }

    /// Every outcome, each task's own: for retrying just the tasks that failed.
    pub fn get_each(self) -> Vec<Result<R>> {
        let mut st = self
            .job
            .wait(Want::All, None)
            .expect("no deadline, no timeout");
        st.take_each()
    }

    /// Ready once [`get`](Self::get) would not wait; else the task is woken when it
    /// would not (feature `internals`, for shmkit-async).
    #[cfg(feature = "internals")]
    #[doc(hidden)]
    pub fn poll_ready(&self, cx: &mut Context<'_>) -> Poll<()> {
        self.job.poll_want(Want::All, cx)
    }

    /// Whether every task has finished.
    pub fn ready(&self) -> bool {
        self.job.lock().satisfied(Want::All)
    }

    /// Tasks finished so far — for a progress bar.
    pub fn completed(&self) -> usize {
        self.job.completed()
    }

    /// Number of tasks.
    pub fn len(&self) -> usize {
        self.job.total()
    }

    /// Whether there were no tasks at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Wait until every task has finished or `timeout` passed; whether they finished.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.job.wait(Want::All, Some(timeout)).is_some()
    }
}

/// The results of [`Pool::imap`](crate::Pool::imap) (input order) or
/// [`Pool::imap_unordered`](crate::Pool::imap_unordered) (completion order), one
/// `Result` per task, as they arrive.
///
/// [`position`](Self::position) and [`len`](Self::len) drive a progress bar;
/// [`next_timeout`](Self::next_timeout) is Python's `it.next(timeout)`.
#[must_use = "iterators are lazy; the tasks run anyway"]
pub struct IMap<R> {
    job: Arc<Job<R>>,
    next: usize,
    ordered: bool,
}

impl<R> std::fmt::Debug for IMap<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IMap")
            .field("position", &self.next)
            .field("len", &self.job.total())
            .field("ordered", &self.ordered)
            .finish()
    }
}

impl<R> IMap<R> {
    pub(crate) fn new(job: Arc<Job<R>>, ordered: bool) -> Self {
        IMap {
            job,
            next: 0,
            ordered,
        }
    }

    /// Results handed out so far.
    pub fn position(&self) -> usize {
        self.next
    }

    /// Tasks finished so far (some possibly not handed out yet).
    pub fn completed(&self) -> usize {
        self.job.completed()
    }

    /// Number of tasks.
    pub fn len(&self) -> usize {
        self.job.total()
    }

    /// Whether there were no tasks at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The next result, waiting at most `timeout`: `Some(Err(Error::Timeout))` if it is
    /// not there yet (it is not skipped: call again), `None` after the last one.
    pub fn next_timeout(&mut self, timeout: Duration) -> Option<Result<R>> {
        self.next_within(Some(timeout))
    }

    /// Ready once [`next`](Iterator::next) would not wait (a result is there, or none
    /// is left); else the task is woken when it would not (feature `internals`, for
    /// shmkit-async).
    #[cfg(feature = "internals")]
    #[doc(hidden)]
    pub fn poll_ready(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.next >= self.job.total() {
            return Poll::Ready(());
        }
        let want = if self.ordered {
            Want::Index(self.next)
        } else {
            Want::Any
        };
        self.job.poll_want(want, cx)
    }

    fn next_within(&mut self, timeout: Option<Duration>) -> Option<Result<R>> {
        if self.next >= self.job.total() {
            return None;
        }
        let want = if self.ordered {
            Want::Index(self.next)
        } else {
            Want::Any
        };
        let Some(mut st) = self.job.wait(want, timeout) else {
            return Some(Err(Error::Timeout));
        };
        let idx = if self.ordered {
            self.next
        } else {
            st.order.pop_front()?
        };
        self.next += 1;
        Some(st.take(idx))
    }
}

impl<R> Iterator for IMap<R> {
    type Item = Result<R>;

    /// The next result, waiting for it.
    fn next(&mut self) -> Option<Result<R>> {
        self.next_within(None)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.job.total() - self.next;
        (left, Some(left))
    }
}

impl<R> ExactSizeIterator for IMap<R> {}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcomes(rs: &[std::result::Result<u64, String>]) -> Vec<u8> {
        let mut out = Vec::new();
        crate::value::push(&rs.len(), &mut out).unwrap();
        for r in rs {
            wire::push_outcome(r, &mut out).unwrap();
        }
        out
    }

    #[test]
    fn a_chunk_is_decoded_into_its_slots() {
        let job = Job::<u64>::new(5, false);
        job.deliver(2, 3, Ok(&outcomes(&[Ok(4), Err("boom".into()), Ok(16)])));
        job.deliver(0, 2, Ok(&outcomes(&[Ok(0), Ok(1)])));
        let mut st = job.lock();
        assert_eq!(st.done, 5);
        assert_eq!(st.take(0).unwrap(), 0);
        assert_eq!(st.take(4).unwrap(), 16);
        assert!(matches!(st.take(3), Err(Error::Panicked { message }) if message == "boom"));
    }

    #[test]
    fn an_undecodable_chunk_fails_every_task_of_it_even_half_way() {
        let job = Job::<u64>::new(4, true);
        // Two good outcomes, then a bad tag: nothing of the chunk is kept.
        let mut bytes = outcomes(&[Ok(1), Ok(2), Ok(3)]);
        let third = bytes.len() - 9; // tag of the third outcome (a raw u64: 8 bytes)
        bytes[third] = 9;
        job.deliver(0, 3, Ok(&bytes));
        // A count that does not match.
        job.deliver(3, 1, Ok(&outcomes(&[Ok(1), Ok(2)])));
        let mut st = job.lock();
        assert_eq!(st.done, 4);
        assert_eq!(st.order.len(), 4, "each slot once in completion order");
        for i in 0..4 {
            assert!(matches!(st.take(i), Err(Error::Decode { .. })), "task {i}");
        }
    }
}
