//! [`Pool`]: `multiprocessing.Pool`'s calls, run by worker processes on any host.
//!
//! A call splits its items into chunks; each chunk is one entry in the pool's task
//! stream (see [`keys`](crate::keys) for the layout). Workers read chunks through the
//! consumer group `workers`, one at a time, and answer each into the reply stream of the
//! `Pool` handle that submitted it, acknowledging the task in the same `MULTI`. The pool
//! handle reads its replies (no background thread: whoever waits pumps) and, every
//! `reclaim_after / 2`, reclaims tasks whose worker went silent.
//!
//! A chunk is answered at most once to the caller: the handle keeps the set of chunks it
//! still waits for and ignores a second answer (a worker that was only slow, answering
//! after its task was reclaimed and retried).

use crate::error::{Error, Result};
use crate::func::{self, Item};
use crate::keys::{self, DEFAULT_RECLAIM_AFTER, Keys, Outcome, Settings};
use crate::link::{Link, check_name};
use crate::primitive::{AtomicBool, Ordering};
use crate::queue::consumer_name;
use crate::wire;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::{HashMap, HashSet, VecDeque};
use std::marker::PhantomData;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Longest single `BLOCK` while waiting for replies.
const SLICE: Duration = Duration::from_millis(250);
/// Default time a pool keeps reconnecting after the server went away, before a wait
/// returns the connection error.
pub const DEFAULT_RECONNECT_FOR: Duration = Duration::from_secs(30);

/// Options of [`Pool::builder`].
#[derive(Debug, Clone)]
pub struct Builder {
    url: String,
    name: String,
    reclaim_after: Duration,
    retries: u32,
    chunksize: Option<usize>,
    reconnect_for: Duration,
}

impl Builder {
    /// How long a task may go without a heartbeat from its worker before it is
    /// reclaimed (default [`DEFAULT_RECLAIM_AFTER`], 10 s). Workers heartbeat every
    /// third of it, so only a dead, stopped or cut-off worker loses its task. Stored in
    /// Redis for the workers (the last pool handle to connect sets it).
    pub fn reclaim_after(mut self, d: Duration) -> Self {
        self.reclaim_after = d;
        self
    }

    /// How many times a reclaimed task is run again before it is answered
    /// [`Error::WorkerDied`] and put in the dead-letter stream. Default 0, as the local
    /// pool: a task whose worker died comes back as `WorkerDied` at once.
    pub fn retries(mut self, n: u32) -> Self {
        self.retries = n;
        self
    }

    /// The chunk size of `map`/`imap`/`starmap` calls that do not give one. Default:
    /// the items split into about 128 chunks (Python divides by 4 × workers; a remote
    /// pool does not know its workers).
    pub fn chunksize(mut self, n: usize) -> Self {
        self.chunksize = Some(n.max(1));
        self
    }

    /// How long a wait keeps reconnecting after the server went away (default
    /// [`DEFAULT_RECONNECT_FOR`]).
    pub fn reconnect_for(mut self, d: Duration) -> Self {
        self.reconnect_for = d;
        self
    }

    /// Connect to the server and the pool (created on first use).
    pub fn connect(self) -> Result<Pool> {
        Pool::connect_with(self)
    }
}

struct Driver {
    link: Link,
    last_id: String,
    next_seq: u64,
    waiting: HashSet<u64>,
    done: HashMap<u64, Outcome>,
    /// Chunks answered, in arrival order (for `imap_unordered`).
    arrivals: VecDeque<u64>,
    /// Task stream entry id of each chunk not yet answered (for `terminate`).
    task_ids: HashMap<u64, String>,
    last_reap: Instant,
}

struct Shared {
    keys: Keys,
    reply: String,
    consumer: String,
    settings: Settings,
    chunksize: Option<usize>,
    reconnect_for: Duration,
    closed: AtomicBool,
    driver: Mutex<Driver>,
}

/// A pool of workers reached through Redis: Python's `multiprocessing.Pool` calls
/// (`map`, `imap`, `imap_unordered`, `starmap`, `apply`, `apply_async`), run by
/// processes that called [`worker`](crate::worker) on any host. Functions are passed as
/// in the local pool, `fn` items, and travel by the name they were
/// [`register`](crate::register)ed under.
///
/// ```no_run
/// fn square(x: u64) -> u64 { x * x }
///
/// shmkit_remote::register("square", square);
/// let pool = shmkit_remote::Pool::connect("redis://127.0.0.1:6379", "demo")?;
/// // ... workers elsewhere run shmkit_remote::worker("redis://...", "demo") ...
/// assert_eq!(pool.map(square, 0..5)?, [0, 1, 4, 9, 16]);
/// # Ok::<(), shmkit_remote::Error>(())
/// ```
pub struct Pool {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("tasks", &self.shared.keys.tasks)
            .field("reply", &self.shared.reply)
            .finish()
    }
}

fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>> {
    postcard::to_allocvec(v).map_err(|e| Error::Encode {
        type_name: std::any::type_name::<T>(),
        reason: e.to_string(),
    })
}

impl Pool {
    /// Connect to the pool `name` on the server at `url`, with default settings.
    pub fn connect(url: &str, name: &str) -> Result<Pool> {
        Self::builder(url, name).connect()
    }

    /// A builder for [`reclaim_after`](Builder::reclaim_after),
    /// [`retries`](Builder::retries), [`chunksize`](Builder::chunksize).
    pub fn builder(url: &str, name: &str) -> Builder {
        Builder {
            url: url.to_owned(),
            name: name.to_owned(),
            reclaim_after: DEFAULT_RECLAIM_AFTER,
            retries: 0,
            chunksize: None,
            reconnect_for: DEFAULT_RECONNECT_FOR,
        }
    }

    fn connect_with(b: Builder) -> Result<Pool> {
        check_name(&b.name)?;
        if b.reclaim_after < Duration::from_millis(30) {
            return Err(Error::Config(format!(
                "reclaim_after {:?} is below 30 ms: heartbeats could not keep up",
                b.reclaim_after
            )));
        }
        let mut link = Link::connect(&b.url)?;
        let keys = Keys::new(&b.name);
        let mut p = redis::pipe();
        p.atomic()
            .cmd("HSETNX")
            .arg(&keys.meta)
            .arg("kind")
            .arg("pool")
            .ignore()
            .cmd("HSET")
            .arg(&keys.meta)
            .arg("reclaim_ms")
            .arg(b.reclaim_after.as_millis() as u64)
            .arg("retries")
            .arg(b.retries)
            .ignore()
            .cmd("HGET")
            .arg(&keys.meta)
            .arg("kind");
        let (kind,): (Option<String>,) = link.pipe(&keys.meta, &p)?;
        if kind.as_deref() != Some("pool") {
            return Err(Error::Foreign {
                key: keys.meta.clone(),
                expected: "pool".to_owned(),
                found: format!("kind {}", kind.as_deref().unwrap_or("(none)")),
            });
        }
        crate::queue::create_group(&mut link, &keys.tasks, keys::GROUP)?;
        let consumer = consumer_name();
        let reply = format!("{}{consumer}", keys.reply_prefix);
        Ok(Pool {
            shared: Arc::new(Shared {
                settings: Settings {
                    reclaim_after: b.reclaim_after,
                    retries: b.retries,
                },
                keys,
                reply,
                consumer,
                chunksize: b.chunksize,
                reconnect_for: b.reconnect_for,
                closed: AtomicBool::new(false),
                driver: Mutex::new(Driver {
                    link,
                    last_id: "0-0".to_owned(),
                    next_seq: 0,
                    waiting: HashSet::new(),
                    done: HashMap::new(),
                    arrivals: VecDeque::new(),
                    task_ids: HashMap::new(),
                    last_reap: Instant::now(),
                }),
            }),
        })
    }

    /// The task stream's key in Redis.
    pub fn tasks_key(&self) -> &str {
        &self.shared.keys.tasks
    }

    /// `f(a)` for each item, results in order; the first task error is the call's
    /// error (use [`map_async`](Self::map_async) and [`MapResult::get_each`] for all).
    pub fn map<A, R>(&self, f: fn(A) -> R, items: impl IntoIterator<Item = A>) -> Result<Vec<R>>
    where
        A: Serialize,
        R: DeserializeOwned,
    {
        self.map_async(f, items)?.get()
    }

    /// [`map`](Self::map) with an explicit chunk size.
    pub fn map_chunked<A, R>(
        &self,
        f: fn(A) -> R,
        items: impl IntoIterator<Item = A>,
        chunksize: usize,
    ) -> Result<Vec<R>>
    where
        A: Serialize,
        R: DeserializeOwned,
    {
        let name = self.name_of(f as usize, false)?;
        self.submit(&name, items.into_iter().collect(), Some(chunksize))?
            .into_map()
            .get()
    }

    /// Submit a map and return at once.
    pub fn map_async<A, R>(
        &self,
        f: fn(A) -> R,
        items: impl IntoIterator<Item = A>,
    ) -> Result<MapResult<R>>
    where
        A: Serialize,
        R: DeserializeOwned,
    {
        let name = self.name_of(f as usize, false)?;
        Ok(self
            .submit(&name, items.into_iter().collect(), None)?
            .into_map())
    }

    /// `f(a, b)` for each pair (Python's `starmap`); `f` registered with
    /// [`register_star`](crate::register_star).
    pub fn starmap<A, B, R>(
        &self,
        f: fn(A, B) -> R,
        items: impl IntoIterator<Item = (A, B)>,
    ) -> Result<Vec<R>>
    where
        A: Serialize,
        B: Serialize,
        R: DeserializeOwned,
    {
        let name = self.name_of(f as usize, true)?;
        self.submit(&name, items.into_iter().collect(), None)?
            .into_map()
            .get()
    }

    /// Results in order, as they become available.
    pub fn imap<A, R>(&self, f: fn(A) -> R, items: impl IntoIterator<Item = A>) -> Result<IMap<R>>
    where
        A: Serialize,
        R: DeserializeOwned,
    {
        let name = self.name_of(f as usize, false)?;
        Ok(self
            .submit(&name, items.into_iter().collect(), None)?
            .into_imap(true))
    }

    /// [`imap`](Self::imap) with an explicit chunk size.
    pub fn imap_chunked<A, R>(
        &self,
        f: fn(A) -> R,
        items: impl IntoIterator<Item = A>,
        chunksize: usize,
    ) -> Result<IMap<R>>
    where
        A: Serialize,
        R: DeserializeOwned,
    {
        let name = self.name_of(f as usize, false)?;
        Ok(self
            .submit(&name, items.into_iter().collect(), Some(chunksize))?
            .into_imap(true))
    }

    /// Results in completion order.
    pub fn imap_unordered<A, R>(
        &self,
        f: fn(A) -> R,
        items: impl IntoIterator<Item = A>,
    ) -> Result<IMap<R>>
    where
        A: Serialize,
        R: DeserializeOwned,
    {
        let name = self.name_of(f as usize, false)?;
        Ok(self
            .submit(&name, items.into_iter().collect(), None)?
            .into_imap(false))
    }

    /// `f(a)` in a worker, waiting for the result.
    pub fn apply<A, R>(&self, f: fn(A) -> R, a: A) -> Result<R>
    where
        A: Serialize,
        R: DeserializeOwned,
    {
        self.apply_async(f, a)?.get()
    }

    /// `f(a)` in a worker; the result later.
    pub fn apply_async<A, R>(&self, f: fn(A) -> R, a: A) -> Result<AsyncResult<R>>
    where
        A: Serialize,
        R: DeserializeOwned,
    {
        let name = self.name_of(f as usize, false)?;
        Ok(AsyncResult {
            job: self.submit(&name, vec![a], Some(1))?,
            taken: false,
        })
    }

    /// Submit a task by function name (for a program that does not link the function
    /// itself): `f` must be registered in the workers.
    pub fn apply_named<A, R>(&self, name: &str, a: A) -> Result<AsyncResult<R>>
    where
        A: Serialize,
        R: DeserializeOwned,
    {
        Ok(AsyncResult {
            job: self.submit(name, vec![a], Some(1))?,
            taken: false,
        })
    }

    fn name_of(&self, addr: usize, star: bool) -> Result<String> {
        func::name_of(addr, star).ok_or(Error::UnknownFunction {
            name: "(this fn was never passed to shmkit_remote::register)".to_owned(),
            where_: "in this process",
        })
    }

    fn submit<A: Serialize, R>(
        &self,
        name: &str,
        items: Vec<A>,
        chunksize: Option<usize>,
    ) -> Result<Job<R>> {
        if self.shared.closed.load(Ordering::Relaxed) {
            return Err(Error::Closed);
        }
        let n = items.len();
        let size = chunksize
            .or(self.shared.chunksize)
            .unwrap_or_else(|| n.div_ceil(128))
            .max(1);
        let mut args = Vec::new();
        let mut counts = Vec::new();
        for chunk in items.chunks(size) {
            args.push(encode(&chunk)?);
            counts.push(chunk.len());
        }
        let sh = &self.shared;
        let mut d = sh.driver();
        let first_seq = d.next_seq;
        d.next_seq += counts.len() as u64;
        // Pipelines of at most 1024 chunks, each atomic: a chunk is stored or not.
        let give_up = Instant::now() + sh.reconnect_for;
        for (i, batch) in args.chunks(1024).enumerate() {
            let mut p = redis::pipe();
            for (j, a) in batch.iter().enumerate() {
                let seq = first_seq + (i * 1024 + j) as u64;
                p.cmd("XADD")
                    .arg(&sh.keys.tasks)
                    .arg("*")
                    .arg("f")
                    .arg(name)
                    .arg("ta")
                    .arg(std::any::type_name::<A>())
                    .arg("tr")
                    .arg(std::any::type_name::<R>())
                    .arg("a")
                    .arg(a)
                    .arg("r")
                    .arg(&sh.reply)
                    .arg("s")
                    .arg(seq)
                    .arg("n")
                    .arg(1);
            }
            let ids: Vec<String> = d.link.persist(give_up, |l| l.pipe(&sh.keys.tasks, &p))?;
            for (j, id) in ids.into_iter().enumerate() {
                d.task_ids.insert(first_seq + (i * 1024 + j) as u64, id);
            }
        }
        let seqs: Vec<u64> = (first_seq..first_seq + counts.len() as u64).collect();
        d.waiting.extend(seqs.iter().copied());
        drop(d);
        Ok(Job {
            shared: self.shared.clone(),
            chunks: seqs.into_iter().zip(counts).collect(),
            _r: PhantomData,
        })
    }

    /// Take no new tasks (Python's `close`).
    pub fn close(&self) {
        self.shared.closed.store(true, Ordering::Relaxed);
    }

    /// Take no new tasks and give up on the ones submitted (Python's `terminate`): the
    /// chunks no worker has started are deleted from the task stream, and every task of
    /// this handle not yet answered is answered [`Error::Terminated`] at once. Chunks
    /// already running finish in their workers; their answers are ignored. Workers keep
    /// serving other calls (use [`stop_workers`](Self::stop_workers) to end them).
    pub fn terminate(&self) -> Result<()> {
        self.close();
        let sh = &self.shared;
        let mut d = sh.driver();
        let ids: Vec<String> = d.task_ids.values().cloned().collect();
        if !ids.is_empty() {
            // An entry a worker holds is deleted too: its pending entry then shows as
            // deleted, and the worker's answer goes to a call that no longer waits.
            for batch in ids.chunks(1024) {
                let mut c = redis::cmd("XDEL");
                c.arg(&sh.keys.tasks).arg(batch);
                d.link.query::<()>(&sh.keys.tasks, &c)?;
            }
        }
        d.task_ids.clear();
        let waiting: Vec<u64> = d.waiting.drain().collect();
        for seq in waiting {
            d.done.insert(seq, Outcome::Terminated);
            d.arrivals.push_back(seq);
        }
        Ok(())
    }

    /// After [`close`](Self::close), wait until every task this handle submitted has
    /// its outcome (results stay with their `AsyncResult`/`MapResult`).
    pub fn join(&self) -> Result<()> {
        self.join_deadline(None)
    }

    /// [`join`](Self::join), giving up after `timeout` with [`Error::Timeout`].
    pub fn join_timeout(&self, timeout: Duration) -> Result<()> {
        self.join_deadline(Some(Instant::now() + timeout))
    }

    fn join_deadline(&self, deadline: Option<Instant>) -> Result<()> {
        if !self.shared.closed.load(Ordering::Relaxed) {
            return Err(Error::StillRunning);
        }
        loop {
            let mut d = self.shared.driver();
            if d.waiting.is_empty() {
                return Ok(());
            }
            self.shared.pump(&mut d, deadline)?;
            if deadline.is_some_and(|t| Instant::now() >= t) && !d.waiting.is_empty() {
                return Err(Error::Timeout);
            }
        }
    }

    /// Ask every worker of this pool to exit once it finishes its current task.
    /// Workers started later exit at once until [`Pool::resume_workers`].
    pub fn stop_workers(&self) -> Result<()> {
        let k = &self.shared.keys.stop;
        self.shared
            .driver()
            .link
            .query(k, redis::cmd("SET").arg(k).arg(1))
    }

    /// Undo [`stop_workers`](Self::stop_workers).
    pub fn resume_workers(&self) -> Result<()> {
        let k = &self.shared.keys.stop;
        self.shared.driver().link.query(k, redis::cmd("DEL").arg(k))
    }

    /// Tasks past their retries, newest last: what the dead-letter stream holds.
    pub fn dead_letters(&self) -> Result<Vec<DeadLetter>> {
        let k = &self.shared.keys.dead;
        let v: redis::Value = self
            .shared
            .driver()
            .link
            .query(k, redis::cmd("XRANGE").arg(k).arg("-").arg("+"))?;
        let es = wire::entries(&v).ok_or_else(|| Error::Corrupt {
            stream: k.clone(),
            id: "-".to_owned(),
            what: "unexpected XRANGE reply shape".to_owned(),
        })?;
        Ok(es
            .iter()
            .map(|e| DeadLetter {
                id: e.id.clone(),
                function: e.text("f").unwrap_or("").to_owned(),
                worker: e.text("worker").unwrap_or("").to_owned(),
                attempts: e.number("attempts").unwrap_or(0) as u32,
            })
            .collect())
    }

    /// Delete the pool's task stream, dead letters, settings and stop flag from Redis.
    pub fn destroy(self) -> Result<()> {
        let k = &self.shared.keys;
        let mut c = redis::cmd("DEL");
        c.arg(&k.tasks).arg(&k.dead).arg(&k.meta).arg(&k.stop);
        self.shared.driver().link.query(&k.tasks, &c)
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // The reply stream is this handle's alone; results nobody will read go with it.
        if Arc::strong_count(&self.shared) == 1 {
            let r = self.shared.reply.clone();
            let _ = self
                .shared
                .driver()
                .link
                .query::<()>(&r, redis::cmd("DEL").arg(&r));
        }
    }
}

/// A task of the dead-letter stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// Its entry id in the dead-letter stream.
    pub id: String,
    /// The function name.
    pub function: String,
    /// The consumer name of the last worker that held it.
    pub worker: String,
    /// How many times it was started.
    pub attempts: u32,
}

impl Shared {
    fn driver(&self) -> MutexGuard<'_, Driver> {
        // The driver's state is updated in single steps; a panic elsewhere while it was
        // held leaves it consistent.
        self.driver.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Read replies for up to one slice (or until `deadline`), reclaim silent workers'
    /// tasks when due. Connection failures are retried for `reconnect_for`.
    fn pump(&self, d: &mut Driver, deadline: Option<Instant>) -> Result<()> {
        let give_up = Instant::now() + self.reconnect_for;
        if d.last_reap.elapsed() >= self.settings.reclaim_after / 2 {
            d.last_reap = Instant::now();
            let reaper = format!("reaper-{}", self.consumer);
            d.link.persist(give_up, |l| {
                keys::reap(l, &self.keys, self.settings, &reaper)
            })?;
        }
        let block = match deadline {
            None => SLICE,
            Some(t) => t.saturating_duration_since(Instant::now()).min(SLICE),
        };
        let mut c = redis::cmd("XREAD");
        c.arg("COUNT").arg(1024);
        if !block.is_zero() {
            c.arg("BLOCK").arg(block.as_millis().max(1) as u64);
        }
        c.arg("STREAMS").arg(&self.reply).arg(&d.last_id);
        let v: redis::Value = d
            .link
            .persist(give_up, |l| l.run(&self.reply, block, |conn| c.query(conn)))?;
        let entries = wire::read_reply(&v).ok_or_else(|| Error::Corrupt {
            stream: self.reply.clone(),
            id: "-".to_owned(),
            what: format!("unexpected XREAD reply shape: {v:?}"),
        })?;
        let Some(last) = entries.last() else {
            return Ok(());
        };
        d.last_id = last.id.clone();
        for e in &entries {
            let Some(seq) = e.number("s") else { continue };
            d.task_ids.remove(&seq);
            if !d.waiting.remove(&seq) {
                continue; // a second answer (a slow worker after a reclaim): ignored
            }
            let o = e
                .field("o")
                .and_then(|b| postcard::from_bytes::<Outcome>(b).ok())
                .unwrap_or_else(|| {
                    Outcome::Failed(format!(
                        "reply {} in stream {:?} does not decode as an outcome",
                        e.id, self.reply
                    ))
                });
            d.done.insert(seq, o);
            d.arrivals.push_back(seq);
        }
        // Replies read are not needed again.
        let mut t = redis::cmd("XTRIM");
        t.arg(&self.reply).arg("MINID").arg(&d.last_id);
        let _ = d.link.query::<()>(&self.reply, &t);
        Ok(())
    }

    /// Wait for chunk `seq`'s outcome.
    fn wait(&self, seq: u64, deadline: Option<Instant>) -> Result<Outcome> {
        loop {
            let mut d = self.driver();
            if let Some(o) = d.done.remove(&seq) {
                return Ok(o);
            }
            if !d.waiting.contains(&seq) {
                return Err(Error::Taken);
            }
            if deadline.is_some_and(|t| Instant::now() >= t) {
                return Err(Error::Timeout);
            }
            self.pump(&mut d, deadline)?;
        }
    }

    /// Wait for any of `seqs`' outcomes (for `imap_unordered`).
    fn wait_any(&self, seqs: &HashSet<u64>, deadline: Option<Instant>) -> Result<(u64, Outcome)> {
        loop {
            let mut d = self.driver();
            if let Some(pos) = d.arrivals.iter().position(|s| seqs.contains(s)) {
                let seq = d.arrivals.remove(pos).unwrap_or_default();
                if let Some(o) = d.done.remove(&seq) {
                    return Ok((seq, o));
                }
                continue;
            }
            if deadline.is_some_and(|t| Instant::now() >= t) {
                return Err(Error::Timeout);
            }
            self.pump(&mut d, deadline)?;
        }
    }
}

/// Submitted chunks: `(seq, number of items)`.
struct Job<R> {
    shared: Arc<Shared>,
    chunks: Vec<(u64, usize)>,
    _r: PhantomData<fn() -> R>,
}

impl<R> Drop for Job<R> {
    fn drop(&mut self) {
        // Outcomes nobody will ask for any more: forget them (and ignore them if they
        // arrive later), so an abandoned call does not grow the driver's tables.
        let mut d = self.shared.driver();
        for &(seq, _) in &self.chunks {
            d.waiting.remove(&seq);
            d.done.remove(&seq);
            d.task_ids.remove(&seq);
        }
        if !d.arrivals.is_empty() {
            let mine: HashSet<u64> = self.chunks.iter().map(|c| c.0).collect();
            d.arrivals.retain(|s| !mine.contains(s));
        }
    }
}

impl<R: DeserializeOwned> Job<R> {
    fn into_map(self) -> MapResult<R> {
        MapResult {
            results: Mutex::new(vec![None; self.chunks.len()]),
            job: self,
        }
    }

    fn into_imap(self, ordered: bool) -> IMap<R> {
        let left = self.chunks.iter().map(|c| c.0).collect();
        IMap {
            job: self,
            ordered,
            next_chunk: 0,
            ready: VecDeque::new(),
            left,
        }
    }
}

/// `n` copies of `Err(e)`.
fn errs<R>(e: Error, n: usize) -> Vec<Result<R>> {
    (0..n).map(|_| Err(e.clone())).collect()
}

/// A chunk's outcome as one result per item.
fn decode_chunk<R: DeserializeOwned>(o: &Outcome, n: usize) -> Vec<Result<R>> {
    if let Some(e) = o.chunk_error() {
        return errs(e, n);
    }
    let Outcome::Done(items) = o else {
        unreachable!("chunk_error is None only for Done")
    };
    if items.len() != n {
        let message = format!("expected {n} outcomes for the chunk, got {}", items.len());
        return errs(Error::Failed { message }, n);
    }
    items
        .iter()
        .map(|it| match it {
            Item::Ok(b) => postcard::from_bytes(b).map_err(|e| Error::Decode {
                type_name: std::any::type_name::<R>(),
                reason: e.to_string(),
            }),
            Item::Panicked(m) => Err(Error::Panicked { message: m.clone() }),
        })
        .collect()
}

/// The pending result of [`Pool::apply_async`].
pub struct AsyncResult<R> {
    job: Job<R>,
    taken: bool,
}

impl<R> std::fmt::Debug for AsyncResult<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncResult")
            .field("chunks", &self.job.chunks)
            .finish()
    }
}

impl<R: DeserializeOwned> AsyncResult<R> {
    /// Wait for the result.
    pub fn get(mut self) -> Result<R> {
        self.get_deadline(None)
    }

    /// Wait up to `timeout`; [`Error::Timeout`] leaves the task pending.
    pub fn get_timeout(&mut self, timeout: Duration) -> Result<R> {
        self.get_deadline(Some(Instant::now() + timeout))
    }

    fn get_deadline(&mut self, deadline: Option<Instant>) -> Result<R> {
        if self.taken {
            return Err(Error::Taken);
        }
        let (seq, n) = self.job.chunks[0];
        let o = self.job.shared.wait(seq, deadline)?;
        self.taken = true;
        decode_chunk(&o, n).pop().unwrap_or(Err(Error::Taken))
    }
}

/// The pending results of [`Pool::map_async`].
pub struct MapResult<R> {
    job: Job<R>,
    results: Mutex<Vec<Option<Outcome>>>,
}

impl<R> std::fmt::Debug for MapResult<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MapResult")
            .field("chunks", &self.job.chunks.len())
            .finish()
    }
}

impl<R: DeserializeOwned> MapResult<R> {
    /// Every result in order; the first task error is the error.
    pub fn get(self) -> Result<Vec<R>> {
        self.get_each().into_iter().collect()
    }

    /// [`get`](Self::get) within `timeout` ([`Error::Timeout`] leaves it pending).
    pub fn get_timeout(&self, timeout: Duration) -> Result<Vec<R>> {
        self.fill(Some(Instant::now() + timeout))?;
        self.collect().into_iter().collect()
    }

    /// Every task's own outcome, in order: a result or its error.
    pub fn get_each(self) -> Vec<Result<R>> {
        if let Err(e) = self.fill(None) {
            let n = self.len();
            return errs(e, n);
        }
        self.collect()
    }

    /// The number of tasks.
    pub fn len(&self) -> usize {
        self.job.chunks.iter().map(|c| c.1).sum()
    }

    /// Whether there are no tasks.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn fill(&self, deadline: Option<Instant>) -> Result<()> {
        let mut res = self.results.lock().unwrap_or_else(|p| p.into_inner());
        for (i, &(seq, _)) in self.job.chunks.iter().enumerate() {
            if res[i].is_none() {
                res[i] = Some(self.job.shared.wait(seq, deadline)?);
            }
        }
        Ok(())
    }

    fn collect(&self) -> Vec<Result<R>> {
        let res = self.results.lock().unwrap_or_else(|p| p.into_inner());
        self.job
            .chunks
            .iter()
            .zip(res.iter())
            .flat_map(|(&(_, n), o)| match o {
                Some(o) => decode_chunk(o, n),
                None => errs(Error::Timeout, n),
            })
            .collect()
    }
}

/// The iterator of [`Pool::imap`] and [`Pool::imap_unordered`]: one `Result` per task.
pub struct IMap<R> {
    job: Job<R>,
    ordered: bool,
    next_chunk: usize,
    ready: VecDeque<Result<R>>,
    left: HashSet<u64>,
}

impl<R> std::fmt::Debug for IMap<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IMap")
            .field("ordered", &self.ordered)
            .field("chunks_left", &self.left.len())
            .finish()
    }
}

impl<R: DeserializeOwned> IMap<R> {
    /// The next result, waiting at most `timeout`; `None` at the end, `Some(Err(Timeout))`
    /// if it did not come in time (call again to keep waiting).
    pub fn next_timeout(&mut self, timeout: Duration) -> Option<Result<R>> {
        self.next_deadline(Some(Instant::now() + timeout))
    }

    fn next_deadline(&mut self, deadline: Option<Instant>) -> Option<Result<R>> {
        if let Some(r) = self.ready.pop_front() {
            return Some(r);
        }
        if self.left.is_empty() {
            return None;
        }
        let got = if self.ordered {
            let (seq, _) = self.job.chunks[self.next_chunk];
            self.job.shared.wait(seq, deadline).map(|o| (seq, o))
        } else {
            self.job.shared.wait_any(&self.left, deadline)
        };
        match got {
            Ok((seq, o)) => {
                self.left.remove(&seq);
                let n = self
                    .job
                    .chunks
                    .iter()
                    .find(|c| c.0 == seq)
                    .map_or(0, |c| c.1);
                if self.ordered {
                    self.next_chunk += 1;
                }
                self.ready.extend(decode_chunk::<R>(&o, n));
                self.ready
                    .pop_front()
                    .or_else(|| self.next_deadline(deadline))
            }
            Err(Error::Timeout) => Some(Err(Error::Timeout)),
            Err(e) => {
                // The connection is gone for good: every task left ends with this error.
                let n: usize = self
                    .job
                    .chunks
                    .iter()
                    .filter(|c| self.left.contains(&c.0))
                    .map(|c| c.1)
                    .sum();
                self.left.clear();
                self.ready.extend(errs(e, n));
                self.ready.pop_front()
            }
        }
    }
}

impl<R: DeserializeOwned> Iterator for IMap<R> {
    type Item = Result<R>;
    fn next(&mut self) -> Option<Result<R>> {
        self.next_deadline(None)
    }
}
