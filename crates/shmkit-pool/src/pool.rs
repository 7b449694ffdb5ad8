//! [`Pool`]: the user's side — starting the pool, the submit methods (`map`, `imap`,
//! `apply_async`, ...) that cut work into chunks, `close` / `join` / `terminate`. The
//! chunks go to the collector ([`crate::collector`]), which sends them and gathers the
//! outcomes.

use crate::builder::Builder;
use crate::chunk::{Chunk, InputBlob, Payload};
use crate::collector::{Settings, Shared};
use crate::error::{Error, Result};
use crate::func::{self, ChunkFn, FnToken};
use crate::job::{AsyncResult, Deliver, IMap, Job, MapResult};
use crate::primitive::{AtomicU64, Ordering};
use crate::wire::{self, INLINE_MAX};
use serde::Serialize;
use serde::de::DeserializeOwned;
use shmkit_process::Process;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

// Most workers one pool can have: shmkit's one process limit, as many as a lock has
// process slots, so that every worker of a pool can share one lock, value or queue.
use shmkit_sync::MAX_PROCESSES;

static NEXT_POOL: AtomicU64 = AtomicU64::new(0);

/// Python's rule for `map`'s default chunk size: about four chunks per worker.
pub(crate) fn default_chunksize(tasks: usize, processes: usize) -> usize {
    let per = processes.max(1) * 4;
    tasks.div_ceil(per).max(1)
}

/// A pool of worker processes — Python's
/// [`multiprocessing.Pool`](https://docs.python.org/3/library/multiprocessing.html#module-multiprocessing.pool).
///
/// | Python | shmkit |
/// |---|---|
/// | `Pool()` (one worker per CPU) | [`Pool::new()`](Self::new) |
/// | `Pool(4)` | [`Pool::with_processes(4)`](Self::with_processes) |
/// | `pool.map(f, xs)`, `chunksize=` | [`map`](Self::map), [`map_chunked`](Self::map_chunked) |
/// | `pool.imap(f, xs)`, `imap_unordered` | [`imap`](Self::imap), [`imap_unordered`](Self::imap_unordered) |
/// | `pool.starmap(f, pairs)` | [`starmap`](Self::starmap) (or `map` over tuples) |
/// | `pool.apply(f, (x,))`, `apply_async` | [`apply`](Self::apply), [`apply_async`](Self::apply_async) |
/// | `pool.map_async(f, xs)` | [`map_async`](Self::map_async) |
/// | `close()`, `join()`, `terminate()` | [`close`](Self::close), [`join`](Self::join), [`terminate`](Self::terminate) |
/// | `with Pool() as p:` | drop (= terminate, every worker reaped) |
///
/// Functions are `fn` items or non-capturing closures; arguments and results are serde
/// types. A panicking task returns [`Error::Panicked`] and the worker keeps serving; a
/// worker that dies returns [`Error::WorkerDied`] for the task it was running, is
/// replaced, and nothing hangs.
pub struct Pool {
    shared: Arc<Shared>,
    collector: Mutex<Option<JoinHandle<()>>>,
    processes: usize,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("processes", &self.processes)
            .field("prefix", &self.shared.prefix)
            .finish()
    }
}

impl Pool {
    /// A pool of one worker per CPU ([`cpu_count`](shmkit_process::cpu_count)), started
    /// with the default settings (`Spawn`) — Python's `Pool()`.
    ///
    /// ```no_run
    /// fn main() -> Result<(), shmkit_pool::Error> {
    ///     shmkit_process::init();
    ///     let pool = shmkit_pool::Pool::new()?;
    ///     assert_eq!(pool.processes(), shmkit_process::cpu_count());
    ///     Ok(())
    /// }
    /// ```
    pub fn new() -> Result<Pool> {
        Pool::builder().build()
    }

    /// A pool of `processes` workers (1 to [`MAX_PROCESSES`]) started with the default
    /// settings (`Spawn`) — Python's `Pool(processes)`.
    pub fn with_processes(processes: usize) -> Result<Pool> {
        Pool::builder().processes(processes).build()
    }

    /// Settings beyond the size: see [`Builder`].
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// Number of worker processes.
    pub fn processes(&self) -> usize {
        self.processes
    }

    /// The pool's name, `shmkit-pool-PID-N`. Its segments (rings, control, blobs) are
    /// anonymous: none of them appears in `/dev/shm`, so nothing is left there however
    /// the program ends (Ctrl-C and `kill -9` included).
    pub fn prefix(&self) -> &str {
        &self.shared.prefix
    }

    /// Pids of the current workers (a replaced worker's successor has a new pid).
    pub fn worker_pids(&self) -> Vec<u32> {
        let st = self.shared.lock();
        st.workers
            .iter()
            .filter_map(|w| w.process.as_ref().map(Process::pid))
            .collect()
    }

    pub(crate) fn start(b: Builder) -> Result<Pool> {
        if let Some(e) = b.init_error {
            return Err(e);
        }
        // Python's `Pool()`: one worker per CPU (within the limit).
        let processes = b
            .processes
            .unwrap_or_else(|| shmkit_process::cpu_count().min(MAX_PROCESSES as usize));
        if processes == 0 || processes > MAX_PROCESSES as usize {
            return Err(Error::Config(format!(
                "processes must be 1..={MAX_PROCESSES}, got {processes}"
            )));
        }
        if b.prefetch == 0 {
            return Err(Error::Config("prefetch must be at least 1".into()));
        }
        if b.max_tasks == Some(0) {
            return Err(Error::Config("maxtasksperchild must be at least 1".into()));
        }
        let prefix = format!(
            "shmkit-pool-{}-{}",
            std::process::id(),
            NEXT_POOL.fetch_add(1, Ordering::Relaxed)
        );
        let (shared, collector) = Shared::start(Settings {
            processes,
            method: b.method,
            prefetch: b.prefetch,
            max_tasks: b.max_tasks,
            init: b.init,
            prefix,
            strategy: b.strategy,
        })?;
        Ok(Pool {
            shared,
            collector: Mutex::new(Some(collector)),
            processes,
        })
    }

    /// `f(x)` for every `x`, results in input order — Python's `pool.map(f, xs)`.
    /// Waits for all; the first error in input order if any task failed. The chunk
    /// size is Python's default: tasks / (4 x processes), rounded up.
    ///
    /// ```no_run
    /// fn square(x: u64) -> u64 {
    ///     x * x
    /// }
    ///
    /// fn main() -> Result<(), shmkit_pool::Error> {
    ///     shmkit_process::init();
    ///     let pool = shmkit_pool::Pool::with_processes(4)?;
    ///     assert_eq!(pool.map(square, 0..5)?, [0, 1, 4, 9, 16]);
    ///     Ok(())
    /// }
    /// ```
    pub fn map<A, R>(&self, f: fn(A) -> R, items: impl IntoIterator<Item = A>) -> Result<Vec<R>>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        self.map_async(f, items)?.get()
    }

    /// [`map`](Self::map) with an explicit chunk size (tasks per message): 1 spreads
    /// uneven tasks best, larger amortises the per-message cost over many tiny tasks.
    pub fn map_chunked<A, R>(
        &self,
        f: fn(A) -> R,
        items: impl IntoIterator<Item = A>,
        chunksize: usize,
    ) -> Result<Vec<R>>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        MapResult::new(self.submit_map(f, items, Some(chunksize), false)?).get()
    }

    /// [`map`](Self::map) without waiting: Python's `map_async`. The returned
    /// [`MapResult`] also gives each task's own outcome ([`MapResult::get_each`]) and
    /// progress ([`MapResult::completed`]).
    pub fn map_async<A, R>(
        &self,
        f: fn(A) -> R,
        items: impl IntoIterator<Item = A>,
    ) -> Result<MapResult<R>>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        Ok(MapResult::new(self.submit_map(f, items, None, false)?))
    }

    /// `f(a, b)` for every pair — Python's `starmap`. (`map` over tuples works as well:
    /// `pool.map(|(a, b): (u32, u32)| a + b, pairs)`.)
    pub fn starmap<A, B, R>(
        &self,
        f: fn(A, B) -> R,
        items: impl IntoIterator<Item = (A, B)>,
    ) -> Result<Vec<R>>
    where
        A: Serialize + DeserializeOwned + 'static,
        B: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        let job = self.submit(func::star_chunk::<A, B, R>, f as usize, items, None, false)?;
        MapResult::new(job).get()
    }

    /// Results in input order as they arrive, each a `Result` of its own — Python's
    /// `imap` (chunk size 1, like Python's default; see [`imap_chunked`](Self::imap_chunked)).
    /// The inputs are encoded up front; the results stream.
    pub fn imap<A, R>(&self, f: fn(A) -> R, items: impl IntoIterator<Item = A>) -> Result<IMap<R>>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        self.imap_chunked(f, items, 1)
    }

    /// [`imap`](Self::imap) with an explicit chunk size.
    pub fn imap_chunked<A, R>(
        &self,
        f: fn(A) -> R,
        items: impl IntoIterator<Item = A>,
        chunksize: usize,
    ) -> Result<IMap<R>>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        Ok(IMap::new(
            self.submit_map(f, items, Some(chunksize), false)?,
            true,
        ))
    }

    /// Results in the order they complete — Python's `imap_unordered` (chunk size 1).
    pub fn imap_unordered<A, R>(
        &self,
        f: fn(A) -> R,
        items: impl IntoIterator<Item = A>,
    ) -> Result<IMap<R>>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        Ok(IMap::new(self.submit_map(f, items, Some(1), true)?, false))
    }

    /// `f(a)` in a worker, waiting for the result — Python's `apply`.
    pub fn apply<A, R>(&self, f: fn(A) -> R, a: A) -> Result<R>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        self.apply_async(f, a)?.get()
    }

    /// `f(a)` in a worker; the result comes later through the [`AsyncResult`] — Python's
    /// `apply_async`.
    ///
    /// ```no_run
    /// fn hello(i: u32) -> String {
    ///     format!("hello {i}")
    /// }
    ///
    /// fn main() -> Result<(), shmkit_pool::Error> {
    ///     shmkit_process::init();
    ///     let pool = shmkit_pool::Pool::with_processes(2)?;
    ///     let pending: Vec<_> = (0..3).map(|i| pool.apply_async(hello, i)).collect::<Result<_, _>>()?;
    ///     pool.close();
    ///     pool.join()?;
    ///     for r in pending {
    ///         println!("multi_result : {}", r.get()?);
    ///     }
    ///     Ok(())
    /// }
    /// ```
    pub fn apply_async<A, R>(&self, f: fn(A) -> R, a: A) -> Result<AsyncResult<R>>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        let job = self.submit(func::map_chunk::<A, R>, f as usize, [a], Some(1), false)?;
        Ok(AsyncResult::new(job))
    }

    /// Take no more tasks; the workers exit once every submitted task is done (then
    /// [`join`](Self::join) returns). Python's `close`.
    pub fn close(&self) {
        self.shared.lock().closed = true;
    }

    /// Stop at once: kill the workers (SIGKILL), fail every unfinished task with
    /// [`Error::Terminated`], reap everything. Python's `terminate`. Dropping the pool
    /// does the same.
    pub fn terminate(&self) {
        self.shared.shut_down(Error::Terminated);
        self.join_collector();
    }

    /// Wait until the workers have exited, after [`close`](Self::close) (all submitted
    /// tasks done) or [`terminate`](Self::terminate). [`Error::StillRunning`] if neither
    /// was called. Python's `join`.
    pub fn join(&self) -> Result<()> {
        self.join_within(None)
    }

    /// [`join`](Self::join), giving up after `timeout` with [`Error::Timeout`].
    pub fn join_timeout(&self, timeout: Duration) -> Result<()> {
        self.join_within(Some(timeout))
    }

    fn join_within(&self, timeout: Option<Duration>) -> Result<()> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut st = self.shared.lock();
        if !st.closed {
            return Err(Error::StillRunning);
        }
        while !st.finished {
            st = match deadline {
                None => self
                    .shared
                    .finished
                    .wait(st)
                    .unwrap_or_else(|p| p.into_inner()),
                Some(d) => {
                    let left = d
                        .checked_duration_since(Instant::now())
                        .ok_or(Error::Timeout)?;
                    self.shared
                        .finished
                        .wait_timeout(st, left)
                        .unwrap_or_else(|p| p.into_inner())
                        .0
                }
            };
        }
        drop(st);
        self.join_collector();
        Ok(())
    }

    fn join_collector(&self) {
        let handle = self
            .collector
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(h) = handle {
            let _ = h.join();
        }
    }

    /// `f` over `items`, in chunks of `chunksize` (`None`: Python's default);
    /// `track_order` for results handed out as they complete.
    fn submit_map<A, R>(
        &self,
        f: fn(A) -> R,
        items: impl IntoIterator<Item = A>,
        chunksize: Option<usize>,
        track_order: bool,
    ) -> Result<Arc<Job<R>>>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        let tramp = func::map_chunk::<A, R>;
        self.submit(tramp, f as usize, items, chunksize, track_order)
    }

    /// Encode `items` into chunks and queue them. They are encoded as they come, not
    /// collected first, unless Python's default chunk size is asked for and the
    /// iterator does not say exactly how many items it has (the size needs the count).
    fn submit<A: Serialize + 'static, R: DeserializeOwned + Send + 'static>(
        &self,
        tramp: ChunkFn,
        f: usize,
        items: impl IntoIterator<Item = A>,
        chunksize: Option<usize>,
        track_order: bool,
    ) -> Result<Arc<Job<R>>> {
        let items = items.into_iter();
        let size = match (chunksize, items.size_hint()) {
            (Some(size), _) => size.max(1),
            // A count that turns out wrong only gives chunks of another size.
            (None, (low, Some(high))) if low == high => default_chunksize(low, self.processes),
            (None, _) => {
                let items: Vec<A> = items.collect();
                let size = default_chunksize(items.len(), self.processes);
                return self.submit(tramp, f, items, Some(size), track_order);
            }
        };
        let shared = &self.shared;
        let token = FnToken::new(&shared.key, tramp, f);
        // Every chunk's inputs encoded into one buffer that the chunks share: one
        // allocation per map, not one per chunk (which the collector would free). Only
        // inline chunks hold it: if every chunk went to a blob, it is freed on return.
        // Reserved once, for what the items take at least (a reservation the hint
        // makes impossible is skipped: the buffer then grows as it goes).
        let mut buf = Vec::new();
        let expected = items.size_hint().0;
        let at_least = expected
            .checked_mul(crate::value::least_size::<A>())
            .and_then(|b| b.checked_add(expected.div_ceil(size) * size_of::<usize>()));
        if let Some(bytes) = at_least {
            let _ = buf.try_reserve_exact(bytes);
        }
        // (where the chunk's bytes lie, its first task, its tasks)
        let mut spans = Vec::with_capacity(expected.div_ceil(size).min(1 << 16));
        let mut items = items.peekable();
        let mut total = 0;
        while items.peek().is_some() {
            let start = buf.len();
            let count =
                crate::value::push_seq(&mut items, size, &mut buf).map_err(|e| Error::Encode {
                    type_name: std::any::type_name::<A>(),
                    reason: e.to_string(),
                })?;
            spans.push((start..buf.len(), total, count));
            total += count;
        }
        let job = Job::<R>::new(total, track_order);
        if total == 0 {
            return Ok(job);
        }
        let deliver: Arc<dyn Deliver> = job.clone();
        let buf = Arc::new(buf);
        let first_id = shared
            .next_chunk
            .fetch_add(spans.len() as u64, Ordering::Relaxed);
        let mut chunks = Vec::with_capacity(spans.len());
        for (n, (span, first, count)) in spans.into_iter().enumerate() {
            let id = first_id + n as u64;
            let len = span.len();
            let payload = if len <= INLINE_MAX {
                Payload::Inline {
                    buf: Arc::clone(&buf),
                    span,
                }
            } else {
                let seg = wire::blob_create(&buf[span])?;
                Payload::Blob(Box::new(InputBlob {
                    handle: seg.handle(),
                    _segment: seg,
                    len: len as u64,
                }))
            };
            chunks.push(Chunk {
                id,
                func: token,
                payload,
                job: Arc::clone(&deliver),
                first,
                count,
            });
        }
        shared.submit(chunks)?;
        Ok(job)
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.terminate();
    }
}
