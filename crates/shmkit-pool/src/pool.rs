//! [`Pool`] and its [`Builder`]: the parent side — submitting chunks, the collector
//! thread that receives outcomes, notices dead workers and replaces them.

use crate::error::{Error, Result};
use crate::func::{self, ChunkFn, FnToken, Key};
use crate::job::{AsyncResult, Deliver, IMap, Job, MapResult};
use crate::primitive::{AtomicU64, Ordering};
use crate::wire::{self, Body, Done, INIT_FAILED, INLINE_MAX, Outcome, Task};
use crate::worker::{self, Doorbell, SLOT_BYTES, WorkerArgs};
use serde::Serialize;
use serde::de::DeserializeOwned;
use shmkit_process::{ExitStatus, Process, StartMethod};
use shmkit_ring::spsc;
use shmkit_segment::{Segment, SegmentHandle};
use shmkit_sync::futex::SpinPolicy;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Chunks a worker may hold at once by default (running plus queued in its ring) while
/// chunks are quick: enough that it never waits for the pool between two small tasks.
pub const DEFAULT_PREFETCH: usize = 16;

/// Chunks a worker may hold at once while chunks are slow ([`SLOW_CHUNK`] or more):
/// slow tasks then spread evenly over the workers instead of queueing behind one.
pub const SLOW_PREFETCH: usize = 2;

/// A chunk that runs this long or longer is slow (see [`SLOW_PREFETCH`]).
pub const SLOW_CHUNK: Duration = Duration::from_micros(200);

/// Most workers one pool can have (`dispatch` keeps one bit per worker in a `u64`).
pub const MAX_PROCESSES: usize = 60;
// `dispatch` keeps one bit per worker in a `u64`.
const _: () = assert!(MAX_PROCESSES <= 64);

/// Bytes of each worker's task ring.
const TASK_RING: usize = 1 << 18;
/// Bytes of each worker's result ring.
const RESULT_RING: usize = 1 << 18;
/// Most chunks sent to one worker in one batch (more delays the first of them).
const SEND_BATCH: usize = 4;
/// How often the collector looks for dead workers (and notices `close`).
const CHECK_EVERY: Duration = Duration::from_millis(20);
/// How long `terminate` and the end of `join` wait for a stopped worker to be reaped.
const REAP_WAIT: Duration = Duration::from_secs(5);

static NEXT_POOL: AtomicU64 = AtomicU64::new(0);
static NEXT_WORKER: AtomicU64 = AtomicU64::new(1);

/// Python's rule for `map`'s default chunk size: about four chunks per worker.
pub(crate) fn default_chunksize(tasks: usize, processes: usize) -> usize {
    let per = processes.max(1) * 4;
    tasks.div_ceil(per).max(1)
}

type InitSpec = (ChunkFn, usize, Vec<u8>);

/// Settings of a [`Pool`] — Python's `Pool(processes, initializer, initargs,
/// maxtasksperchild)` plus the start method.
///
/// ```no_run
/// use shmkit_pool::Pool;
/// use shmkit_process::StartMethod;
///
/// fn setup(greeting: String) {
///     eprintln!("{greeting} from {}", std::process::id());
/// }
///
/// fn main() -> Result<(), shmkit_pool::Error> {
///     shmkit_process::init();
///     let pool = Pool::builder()
///         .processes(2)
///         .maxtasksperchild(100)
///         .start_method(StartMethod::Spawn)
///         .initializer(setup, "hello".to_string())
///         .build()?;
///     assert_eq!(pool.map(|x: u32| x + 1, [1, 2, 3])?, [2, 3, 4]);
///     Ok(())
/// }
/// ```
#[derive(Debug)]
pub struct Builder {
    processes: Option<usize>,
    max_tasks: Option<u64>,
    method: StartMethod,
    prefetch: usize,
    init: Option<InitSpec>,
    init_error: Option<Error>,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            processes: None,
            max_tasks: None,
            method: StartMethod::Spawn,
            prefetch: DEFAULT_PREFETCH,
            init: None,
            init_error: None,
        }
    }
}

impl Builder {
    /// Number of worker processes (default: [`cpu_count`](shmkit_process::cpu_count)).
    pub fn processes(mut self, n: usize) -> Self {
        self.processes = Some(n);
        self
    }

    /// A worker exits after this many tasks (chunks, as in Python) and is replaced by a
    /// fresh one — for code that leaks. Default: never.
    pub fn maxtasksperchild(mut self, n: u64) -> Self {
        self.max_tasks = Some(n);
        self
    }

    /// How workers start: [`StartMethod::Spawn`] (default; needs `init()` in `main`) or
    /// [`StartMethod::Fork`].
    pub fn start_method(mut self, method: StartMethod) -> Self {
        self.method = method;
        self
    }

    /// Most chunks a worker holds at once (default [`DEFAULT_PREFETCH`]), which hides
    /// the round trip to the pool between quick chunks. While chunks take
    /// [`SLOW_CHUNK`] or longer, and before the first outcome, a worker holds at most
    /// [`SLOW_PREFETCH`] (or this, if smaller), so slow tasks spread evenly.
    pub fn prefetch(mut self, chunks: usize) -> Self {
        self.prefetch = chunks;
        self
    }

    /// Run `f(args)` in each worker when it starts. If it panics, the pool stops and
    /// every pending task fails with [`Error::InitializerFailed`] (Python's pool keeps
    /// restarting workers forever instead).
    pub fn initializer<A: Serialize + DeserializeOwned>(mut self, f: fn(A), args: A) -> Self {
        match postcard::to_allocvec(&args) {
            Ok(bytes) => self.init = Some((func::init_call::<A>, f as usize, bytes)),
            Err(e) => {
                self.init_error = Some(Error::Encode {
                    type_name: std::any::type_name::<A>(),
                    reason: e.to_string(),
                })
            }
        }
        self
    }

    /// Start the workers.
    pub fn build(self) -> Result<Pool> {
        Pool::start(self)
    }
}

/// A chunk's encoded inputs.
enum Payload {
    /// `buf[span]`: the buffer holds the inputs of every chunk of one map.
    Inline {
        buf: Arc<Vec<u8>>,
        span: std::ops::Range<usize>,
    },
    /// In an anonymous blob segment this pool created, held as long as the chunk (so a
    /// worker can open it through this process's descriptor).
    Blob {
        _segment: Box<Segment>,
        handle: SegmentHandle,
        len: u64,
    },
}

/// A run of consecutive tasks of one job, sent to one worker as one message.
struct Chunk {
    id: u64,
    func: FnToken,
    payload: Payload,
    job: Arc<dyn Deliver>,
    first: usize,
    count: usize,
}

impl Chunk {
    fn fail(self, e: Error) {
        self.job.deliver(self.first, self.count, Err(e));
    }
}

struct Worker {
    process: Option<Process<()>>,
    tx: Option<spsc::Producer>,
    /// Its result ring.
    rx: Option<spsc::Consumer>,
    generation: u32,
    /// Ids of the chunks sent to it without an outcome yet, in the order sent.
    sent: VecDeque<u64>,
    /// Chunks it will still accept before it retires (`maxtasksperchild`).
    quota: Option<u64>,
}

/// Hashes chunk ids (sequential `u64`s made by this process, never read from shared
/// memory) with one multiply: SipHash's flood resistance buys nothing here and cost a
/// measurable share of the collector's time per chunk.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8 | u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_u64(&mut self, id: u64) {
        self.0 = id.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

type ChunkMap = HashMap<u64, Chunk, BuildHasherDefault<IdHasher>>;

#[derive(Default)]
struct State {
    workers: Vec<Worker>,
    pending: VecDeque<Chunk>,
    running: ChunkMap,
    closed: bool,
    terminated: bool,
    /// The collector has stopped and every worker is reaped.
    finished: bool,
    broken: Option<Error>,
    /// The last batch of outcomes says chunks are quick: workers may hold `prefetch`.
    quick: bool,
    scratch: Vec<u8>,
}

/// Bytes the collector's [`Inbox`] keeps allocated between polls.
const INBOX_KEEP: usize = 1 << 20;

/// Outcomes read under the state lock and delivered after it, kept by the collector
/// from one poll to the next (no allocation per chunk once warm): their bytes copied out
/// of the result rings into one buffer.
#[derive(Default)]
struct Inbox {
    bytes: Vec<u8>,
    items: Vec<(u64, Option<Chunk>, Held)>,
}

/// An [`Outcome`] whose bytes lie in [`Inbox::bytes`], or its result blob, opened.
enum Held {
    Inline(std::ops::Range<usize>),
    Blob(Box<shmkit_segment::Result<Segment>>, u64),
    Failed(String),
}

/// An outcome as delivered to its job.
enum Received<'a> {
    Inline(&'a [u8]),
    /// A result blob (opened when its outcome was read) and the length of its contents.
    Blob(Box<shmkit_segment::Result<Segment>>, u64),
    Failed(String),
}

impl Inbox {
    fn clear(&mut self) {
        self.bytes.clear();
        self.items.clear();
    }

    fn len(&self) -> usize {
        self.items.len()
    }

    fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Keep an outcome. A result blob is opened here, at once, through the worker's
    /// descriptor (`worker`: its pid), and `taken` (the worker's word) then tells the
    /// worker that it may let the blob go.
    fn push(
        &mut self,
        id: u64,
        chunk: Option<Chunk>,
        outcome: Outcome<'_>,
        worker: u32,
        taken: Option<&AtomicU64>,
    ) {
        let held = match outcome {
            Outcome::Inline(b) => {
                let start = self.bytes.len();
                self.bytes.extend_from_slice(b);
                Held::Inline(start..self.bytes.len())
            }
            Outcome::Blob { len, seq, blob } => {
                let opened = wire::blob_open(&blob, worker);
                if let Some(taken) = taken {
                    // SYNC: Release, paired with the worker's Acquire load before it
                    // drops its blobs: the blob is open here (or never will be).
                    taken.store(seq, Ordering::Release);
                }
                Held::Blob(Box::new(opened), len)
            }
            Outcome::Failed(m) => Held::Failed(m.into_owned()),
        };
        self.items.push((id, chunk, held));
    }

    /// Hand every outcome to `f`, emptying the inbox.
    fn deliver(&mut self, mut f: impl FnMut(Received<'_>, Option<Chunk>)) {
        for (_, chunk, held) in self.items.drain(..) {
            let received = match held {
                Held::Inline(r) => Received::Inline(&self.bytes[r]),
                Held::Blob(seg, len) => Received::Blob(seg, len),
                Held::Failed(m) => Received::Failed(m),
            };
            f(received, chunk);
        }
        self.bytes.clear();
        // A burst of large outcomes (up to 32 KiB each) should not stay allocated.
        self.bytes.shrink_to(INBOX_KEEP);
    }
}

struct Shared {
    state: Mutex<State>,
    /// Signalled when `finished` turns true.
    finished: Condvar,
    key: Key,
    prefix: String,
    control: Segment,
    next_chunk: AtomicU64,
    method: StartMethod,
    prefetch: usize,
    max_tasks: Option<u64>,
    init: Option<(FnToken, Vec<u8>)>,
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

    fn start(b: Builder) -> Result<Pool> {
        if let Some(e) = b.init_error {
            return Err(e);
        }
        // Python's `Pool()`: one worker per CPU (within the limit).
        let processes = b
            .processes
            .unwrap_or_else(|| shmkit_process::cpu_count().min(MAX_PROCESSES));
        if processes == 0 || processes > MAX_PROCESSES {
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
        let key = Key::random();
        let prefix = format!(
            "shmkit-pool-{}-{}",
            std::process::id(),
            NEXT_POOL.fetch_add(1, Ordering::Relaxed)
        );
        // One line per worker, then the collector's doorbell. Anonymous, like every
        // segment of the pool: nothing in /dev/shm outlives the processes using it.
        let control = Segment::anonymous(worker::doorbell_offset(processes) + SLOT_BYTES)?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            finished: Condvar::new(),
            init: b
                .init
                .map(|(tramp, f, bytes)| (FnToken::new(&key, tramp, f), bytes)),
            key,
            prefix,
            control,
            next_chunk: AtomicU64::new(0),
            method: b.method,
            prefetch: b.prefetch,
            max_tasks: b.max_tasks,
        });
        {
            let mut st = shared.lock();
            for slot in 0..processes {
                st.workers.push(Worker {
                    process: None,
                    tx: None,
                    rx: None,
                    generation: 0,
                    sent: VecDeque::new(),
                    quota: None,
                });
                if let Err(e) = shared.spawn_worker(&mut st, slot) {
                    drop(st);
                    shared.shut_down(Error::Terminated);
                    return Err(e);
                }
            }
        }
        let collector = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("shmkit-pool-collector".into())
                .spawn(move || shared.collect())
                .map_err(|e| Error::Config(format!("could not start the collector thread: {e}")))?
        };
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
        A: Serialize + DeserializeOwned,
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
        A: Serialize + DeserializeOwned,
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
        A: Serialize + DeserializeOwned,
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
        A: Serialize + DeserializeOwned,
        B: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        let items: Vec<(A, B)> = items.into_iter().collect();
        let job = self.submit(func::star_chunk::<A, B, R>, f as usize, &items, None, false)?;
        MapResult::new(job).get()
    }

    /// Results in input order as they arrive, each a `Result` of its own — Python's
    /// `imap` (chunk size 1, like Python's default; see [`imap_chunked`](Self::imap_chunked)).
    /// The inputs are encoded up front; the results stream.
    pub fn imap<A, R>(&self, f: fn(A) -> R, items: impl IntoIterator<Item = A>) -> Result<IMap<R>>
    where
        A: Serialize + DeserializeOwned,
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
        A: Serialize + DeserializeOwned,
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
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        Ok(IMap::new(self.submit_map(f, items, Some(1), true)?, false))
    }

    /// `f(a)` in a worker, waiting for the result — Python's `apply`.
    pub fn apply<A, R>(&self, f: fn(A) -> R, a: A) -> Result<R>
    where
        A: Serialize + DeserializeOwned,
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
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        let job = self.submit(
            func::map_chunk::<A, R>,
            f as usize,
            std::slice::from_ref(&a),
            Some(1),
            false,
        )?;
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

    /// `f` over `items` (collected first), in chunks of `chunksize` (`None`: Python's
    /// default); `track_order` for results handed out as they complete.
    fn submit_map<A, R>(
        &self,
        f: fn(A) -> R,
        items: impl IntoIterator<Item = A>,
        chunksize: Option<usize>,
        track_order: bool,
    ) -> Result<Arc<Job<R>>>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        let items: Vec<A> = items.into_iter().collect();
        let tramp = func::map_chunk::<A, R>;
        self.submit(tramp, f as usize, &items, chunksize, track_order)
    }

    /// Split `items` into chunks and queue them.
    fn submit<A: Serialize, R: DeserializeOwned + Send + 'static>(
        &self,
        tramp: ChunkFn,
        f: usize,
        items: &[A],
        chunksize: Option<usize>,
        track_order: bool,
    ) -> Result<Arc<Job<R>>> {
        let job = Job::<R>::new(items.len(), track_order);
        if items.is_empty() {
            return Ok(job);
        }
        let size = chunksize
            .unwrap_or_else(|| default_chunksize(items.len(), self.processes))
            .max(1);
        let shared = &self.shared;
        let token = FnToken::new(&shared.key, tramp, f);
        let deliver: Arc<dyn Deliver> = job.clone();
        // Every chunk's inputs encoded into one buffer that the chunks share: one
        // allocation per map, not one per chunk (which the collector would free). Only
        // inline chunks hold it: if every chunk went to a blob, it is freed on return.
        let mut buf = Vec::new();
        let mut spans = Vec::with_capacity(items.len().div_ceil(size));
        for part in items.chunks(size) {
            let start = buf.len();
            buf = postcard::to_extend(part, buf).map_err(|e| Error::Encode {
                type_name: std::any::type_name::<A>(),
                reason: e.to_string(),
            })?;
            spans.push(start..buf.len());
        }
        let buf = Arc::new(buf);
        let first_id = shared
            .next_chunk
            .fetch_add(spans.len() as u64, Ordering::Relaxed);
        let mut chunks = Vec::with_capacity(spans.len());
        for (n, span) in spans.into_iter().enumerate() {
            let id = first_id + n as u64;
            let len = span.len();
            let payload = if len <= INLINE_MAX {
                Payload::Inline {
                    buf: Arc::clone(&buf),
                    span,
                }
            } else {
                let seg = wire::blob_create(&buf[span])?;
                Payload::Blob {
                    handle: seg.handle(),
                    _segment: Box::new(seg),
                    len: len as u64,
                }
            };
            let first = n * size;
            chunks.push(Chunk {
                id,
                func: token,
                payload,
                job: Arc::clone(&deliver),
                first,
                count: size.min(items.len() - first),
            });
        }
        let mut st = shared.lock();
        if let Some(e) = &st.broken {
            return Err(e.clone());
        }
        if st.closed {
            return Err(Error::Closed);
        }
        st.pending.extend(chunks);
        shared.dispatch(&mut st);
        Ok(job)
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.terminate();
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Start worker `slot` (again): a fresh task ring, a cleared "started" word.
    fn spawn_worker(&self, st: &mut State, slot: usize) -> Result<()> {
        let generation = st.workers[slot].generation + 1;
        // Anonymous rings: the worker opens them through this process's descriptors.
        let (tx, rx) = spsc::channel_anonymous(TASK_RING)?;
        let (result_tx, result_rx) = spsc::channel_anonymous(RESULT_RING)?;
        for word in [
            worker::started_offset(slot as u32),
            worker::taken_offset(slot as u32),
        ] {
            // SYNC: Release; the worker's own stores follow its start.
            self.control.atomic_u64(word)?.store(0, Ordering::Release);
        }
        let args = WorkerArgs {
            slot: slot as u32,
            tasks: rx,
            results: result_tx,
            control: self.control.handle(),
            key: self.key,
            pool_pid: std::process::id(),
            max_tasks: self.max_tasks,
            init: self.init.clone(),
        };
        let name = format!("PoolWorker-{}", NEXT_WORKER.fetch_add(1, Ordering::Relaxed));
        let process = Process::builder()
            .name(name)
            .start_method(self.method)
            .spawn(worker::worker_main, args)?;
        let w = &mut st.workers[slot];
        w.process = Some(process);
        w.tx = Some(tx);
        w.rx = Some(result_rx);
        w.generation = generation;
        w.sent.clear();
        w.quota = self.max_tasks;
        Ok(())
    }

    /// Send pending chunks to the least-loaded workers with room. Never blocks.
    fn dispatch(&self, st: &mut State) {
        let State {
            workers,
            pending,
            running,
            scratch,
            quick,
            ..
        } = st;
        let window = if *quick {
            self.prefetch
        } else {
            self.prefetch.min(SLOW_PREFETCH)
        };
        // Workers whose ring is full (or gone) this round; `MAX_PROCESSES` <= 64.
        let mut skip = 0u64;
        let mut ends = [0usize; SEND_BATCH];
        while !pending.is_empty() {
            let candidate = workers
                .iter()
                .enumerate()
                .filter(|(i, w)| {
                    skip & (1 << *i) == 0
                        && w.tx.is_some()
                        && w.sent.len() < window
                        && w.quota.is_none_or(|q| q > 0)
                })
                .min_by_key(|(_, w)| w.sent.len())
                .map(|(i, _)| i);
            let Some(i) = candidate else { break };
            let w = &mut workers[i];
            // Several chunks in one batch: one publication, at most one wake-up.
            let room = (window - w.sent.len())
                .min(w.quota.map_or(usize::MAX, |q| q as usize))
                .min(pending.len())
                .min(SEND_BATCH);
            scratch.clear();
            for (k, chunk) in pending.iter().take(room).enumerate() {
                let task = Task {
                    chunk: chunk.id,
                    func: chunk.func,
                    body: match &chunk.payload {
                        Payload::Inline { buf, span } => Body::Inline(&buf[span.clone()]),
                        Payload::Blob { len, handle, .. } => Body::Blob {
                            len: *len,
                            blob: handle.clone(),
                        },
                    },
                };
                // Encoding integers and a byte slice into a Vec cannot fail.
                *scratch = postcard::to_extend(&task, std::mem::take(scratch))
                    .expect("a Task always encodes");
                ends[k] = scratch.len();
            }
            let mut msgs: [&[u8]; SEND_BATCH] = [&[]; SEND_BATCH];
            let mut start = 0;
            for (m, &end) in msgs.iter_mut().zip(&ends).take(room) {
                *m = &scratch[start..end];
                start = end;
            }
            let msgs = &msgs[..room];
            let sent = match w.tx.as_mut().map(|tx| tx.try_send_batch(msgs)) {
                Some(Ok(n)) => n,
                // Gone: the collector will see it dead.
                _ => 0,
            };
            for _ in 0..sent {
                let Some(chunk) = pending.pop_front() else {
                    break;
                };
                w.sent.push_back(chunk.id);
                if let Some(q) = &mut w.quota {
                    *q -= 1;
                }
                running.insert(chunk.id, chunk);
            }
            if sent < room {
                skip |= 1 << i; // its ring is full (or it is gone): try the others
            }
        }
    }

    /// The collector thread: outcomes in, dead workers out, until the pool ends.
    fn collect(self: Arc<Self>) {
        let bell = match Doorbell::of(&self.control) {
            Ok(b) => b,
            Err(e) => {
                self.shut_down(Error::from(e));
                return;
            }
        };
        let mut inbox = Inbox::default();
        let mut last_check = Instant::now();
        loop {
            if self.poll_results(&mut inbox) == 0
                && !SpinPolicy::DEFAULT.spin_until(|| self.any_results())
            {
                bell.sleep(CHECK_EVERY, || self.any_results());
            }
            if last_check.elapsed() >= CHECK_EVERY {
                last_check = Instant::now();
                if !self.check_workers(&mut inbox) {
                    return;
                }
            }
        }
    }

    /// Take what every worker's result ring holds now: under one lock, decode each
    /// outcome in place, settle the bookkeeping and refill the workers' task rings;
    /// then, outside the lock, hand the outcomes to their jobs. How many there were.
    fn poll_results(&self, inbox: &mut Inbox) -> usize {
        inbox.clear();
        let mut init_failed = None;
        {
            let mut st = self.lock();
            let State {
                workers,
                running,
                quick,
                ..
            } = &mut *st;
            for (slot, w) in workers.iter_mut().enumerate() {
                let (Some(rx), sent) = (&mut w.rx, &mut w.sent) else {
                    continue;
                };
                let pid = w.process.as_ref().map_or(0, Process::pid);
                let taken = self
                    .control
                    .atomic_u64(worker::taken_offset(slot as u32))
                    .ok();
                // Empty, or the worker is gone (`check_workers` sees to that); a
                // message that does not decode is ignored (DESIGN rule 2).
                let _ = rx.try_read_batch(64, |bytes| {
                    let Ok(done) = postcard::from_bytes::<Done<'_>>(bytes) else {
                        return;
                    };
                    if done.chunk == INIT_FAILED {
                        init_failed = Some(match done.outcome {
                            Outcome::Failed(m) => m.into_owned(),
                            _ => "no reason given".into(),
                        });
                        return;
                    }
                    *quick = done.ran_us < SLOW_CHUNK.as_micros() as u64;
                    // The worker answers in the order sent: nearly always the front.
                    if sent.front() == Some(&done.chunk) {
                        sent.pop_front();
                    } else if let Some(pos) = sent.iter().position(|&c| c == done.chunk) {
                        sent.remove(pos);
                    }
                    inbox.push(
                        done.chunk,
                        running.remove(&done.chunk),
                        done.outcome,
                        pid,
                        taken,
                    );
                });
            }
            if let Some(message) = &init_failed {
                st.broken = Some(Error::InitializerFailed {
                    message: message.clone(),
                });
            } else if !inbox.is_empty() {
                self.dispatch(&mut st);
            }
        }
        if let Some(message) = init_failed {
            self.shut_down(Error::InitializerFailed { message });
        }
        // Also after a shutdown: these chunks left `running` above, so their outcomes
        // are theirs to deliver.
        let n = inbox.len();
        inbox.deliver(deliver);
        n
    }

    /// Whether some result ring holds a message.
    fn any_results(&self) -> bool {
        let st = self.lock();
        st.workers
            .iter()
            .any(|w| w.rx.as_ref().is_some_and(|rx| !rx.is_empty()))
    }

    /// Replace dead workers; end the pool when closed and idle. `false`: stop collecting.
    fn check_workers(&self, inbox: &mut Inbox) -> bool {
        let dead: Vec<usize> = {
            let st = self.lock();
            if st.terminated {
                return false;
            }
            st.workers
                .iter()
                .enumerate()
                .filter(|(_, w)| w.process.as_ref().is_some_and(|p| !p.is_alive()))
                .map(|(i, _)| i)
                .collect()
        };
        if !dead.is_empty() {
            // Everything a dead worker committed is in its ring now: take it first, so
            // that only what it never answered counts as lost.
            while self.poll_results(inbox) > 0 {}
            let mut st = self.lock();
            for slot in dead {
                self.bury(&mut st, slot);
            }
            self.dispatch(&mut st);
        }
        let mut st = self.lock();
        if st.terminated {
            return false;
        }
        if st.closed && st.pending.is_empty() && st.running.is_empty() {
            // close() + all done: let the workers drain and exit, then reap them.
            let processes: Vec<Process<()>> = st
                .workers
                .iter_mut()
                .filter_map(|w| {
                    w.tx = None;
                    w.rx = None;
                    w.process.take()
                })
                .collect();
            drop(st);
            reap(processes);
            let mut st = self.lock();
            st.finished = true;
            self.finished.notify_all();
            return false;
        }
        true
    }

    /// Worker `slot` died: fail the chunk it was running, send the others again,
    /// start a successor.
    fn bury(&self, st: &mut State, slot: usize) {
        let w = &mut st.workers[slot];
        let Some(process) = w.process.take() else {
            return;
        };
        w.tx = None;
        w.rx = None;
        let sent: Vec<u64> = w.sent.drain(..).collect();
        let pid = process.pid();
        let cause = match process.exit_status() {
            Some(ExitStatus::Signaled(sig)) => {
                format!("killed by {}", shmkit_process::signal_name(sig))
            }
            Some(ExitStatus::Exited(code)) => format!("exited with code {code}"),
            None => "gone".into(),
        };
        drop(process); // reaped already (`is_alive` was false), or in the background
        let started = self
            .control
            .atomic_u64(worker::started_offset(slot as u32))
            // SYNC: Acquire, paired with the worker's Release store.
            .map(|a| a.load(Ordering::Acquire))
            .unwrap_or(0);
        // The worker runs its chunks in the order sent. Those up to the one it started
        // last have run (their outcomes, unsent, died with it): `WorkerDied`. Those
        // after it never started: another worker runs them.
        let last_started = sent.iter().position(|&id| started == id.wrapping_add(1));
        let mut again = Vec::new();
        for (n, id) in sent.into_iter().enumerate() {
            let Some(chunk) = st.running.remove(&id) else {
                continue;
            };
            if last_started.is_some_and(|last| n <= last) {
                chunk.fail(Error::WorkerDied {
                    pid,
                    cause: cause.clone(),
                });
            } else {
                again.push(chunk);
            }
        }
        for chunk in again.into_iter().rev() {
            st.pending.push_front(chunk);
        }
        let more_work = !st.closed || !st.pending.is_empty() || !st.running.is_empty();
        if st.broken.is_none()
            && more_work
            && let Err(e) = self.spawn_worker(st, slot)
            // Cannot replace it: if no worker is left, nothing would run the rest.
            && st.workers.iter().all(|w| w.process.is_none())
        {
            st.broken = Some(e.clone());
            for chunk in st.pending.drain(..) {
                chunk.fail(e.clone());
            }
        }
    }

    /// Terminate: kill every worker, fail what is unfinished with `why`, reap.
    fn shut_down(&self, why: Error) {
        let (processes, unfinished) = {
            let mut st = self.lock();
            if st.terminated {
                return;
            }
            st.terminated = true;
            st.closed = true;
            let processes: Vec<Process<()>> = st
                .workers
                .iter_mut()
                .filter_map(|w| {
                    w.tx = None;
                    w.rx = None;
                    w.sent.clear();
                    w.process.take()
                })
                .collect();
            let mut unfinished: Vec<Chunk> = st.pending.drain(..).collect();
            unfinished.extend(st.running.drain().map(|(_, c)| c));
            (processes, unfinished)
        };
        for p in &processes {
            let _ = p.kill();
        }
        reap(processes);
        for chunk in unfinished {
            chunk.fail(why.clone());
        }
        let mut st = self.lock();
        st.finished = true;
        self.finished.notify_all();
    }
}

/// Wait (bounded) for stopped workers to exit; one still running after the wait is
/// killed, and reaped in the background when it goes.
fn reap(processes: Vec<Process<()>>) {
    let deadline = Instant::now() + REAP_WAIT;
    for mut p in processes {
        let left = deadline.saturating_duration_since(Instant::now());
        if p.join_timeout(left.max(Duration::from_millis(1))).is_err() && p.is_alive() {
            let _ = p.kill();
        }
    }
}

/// Hand one chunk's outcome to its job (`chunk`: `None` if it is not ours any more).
fn deliver(received: Received<'_>, chunk: Option<Chunk>) {
    let Some(chunk) = chunk else {
        return;
    };
    match received {
        Received::Inline(bytes) => chunk.job.deliver(chunk.first, chunk.count, Ok(bytes)),
        Received::Blob(seg, len) => match (*seg).and_then(|seg| wire::blob_read(&seg, len)) {
            Ok(bytes) => chunk.job.deliver(chunk.first, chunk.count, Ok(&bytes)),
            Err(e) => chunk.fail(Error::Failed {
                message: format!("could not read the results: {e}"),
            }),
        },
        Received::Failed(message) => chunk.fail(Error::Failed { message }),
    }
}
