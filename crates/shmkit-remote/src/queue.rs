//! [`Queue`]: `multiprocessing.Queue` / `JoinableQueue` over one Redis stream.
//!
//! # Layout in Redis
//! | key | type | holds |
//! |---|---|---|
//! | `shmkit:queue:NAME` | stream | the items, field `d` = postcard bytes; consumer group `q` |
//! | `shmkit:queue:NAME:meta` | hash | `kind` = `queue`, `type` = the item type's name, `maxsize`, `unfinished` |
//! | `shmkit:queue:NAME:dead` | stream | entries that did not decode (field `from` = their id) |
//!
//! `put` is one `XADD` (plus the `unfinished` count, in the same `MULTI`): the item is
//! in Redis before `put` returns. `get` is `XREADGROUP` then `XACK` + `XDEL` in one
//! `MULTI`: the item `get` returns is acknowledged and gone. An item read by a consumer
//! that died before acknowledging it (only possible with [`Queue::take`], or a process
//! killed between the two round trips of `get`) stays in the group's pending list and is
//! **re-delivered** (`XAUTOCLAIM`) to the next `get` after [`Builder::reclaim_after`].

use crate::error::{Error, Result, TryRecvError, TrySendError};
use crate::link::{Link, check_name};
use crate::primitive::{AtomicBool, Ordering};
use crate::wire::{self, Entry};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::marker::PhantomData;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The consumer group every queue handle reads through.
const GROUP: &str = "q";
/// Default idle time after which an unacknowledged item is re-delivered.
pub const DEFAULT_RECLAIM_AFTER: Duration = Duration::from_secs(30);
/// Longest single `BLOCK` of a waiting `get` (between checks for reclaimable items).
const SLICE: Duration = Duration::from_millis(500);

/// `put` with a `maxsize`: add only while the stream is shorter than ARGV[1].
const BOUNDED_PUT: &str = r"
if redis.call('XLEN', KEYS[1]) >= tonumber(ARGV[1]) then return false end
local id = redis.call('XADD', KEYS[1], '*', 'd', ARGV[2])
redis.call('HINCRBY', KEYS[2], 'unfinished', 1)
return id";

/// `task_done`: decrement `unfinished`, refusing to go below zero.
const TASK_DONE: &str = r"
local u = redis.call('HINCRBY', KEYS[1], 'unfinished', -1)
if u < 0 then redis.call('HINCRBY', KEYS[1], 'unfinished', 1) return -1 end
return u";

/// Options of [`Queue::builder`].
pub struct Builder<T> {
    url: String,
    name: String,
    maxsize: Option<u64>,
    reclaim_after: Duration,
    _t: PhantomData<fn(T) -> T>,
}

impl<T> std::fmt::Debug for Builder<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("name", &self.name)
            .field("maxsize", &self.maxsize)
            .field("reclaim_after", &self.reclaim_after)
            .finish()
    }
}

impl<T: Serialize + DeserializeOwned> Builder<T> {
    /// Bound the queue to `n` items (Python's `Queue(maxsize=n)`); `put` waits and
    /// `try_put` fails with [`TrySendError::Full`] at `n`. Recorded in Redis by the first
    /// handle that connects; later handles use the recorded bound.
    pub fn maxsize(mut self, n: u64) -> Self {
        self.maxsize = Some(n);
        self
    }

    /// How long an item read but not acknowledged (its consumer died) waits before it
    /// is re-delivered. Default [`DEFAULT_RECLAIM_AFTER`]. Shorter is quicker recovery,
    /// but a live consumer slower than this (with [`Queue::take`]) gets its item stolen.
    pub fn reclaim_after(mut self, d: Duration) -> Self {
        self.reclaim_after = d;
        self
    }

    /// Connect (or create the queue on first use).
    pub fn connect(self) -> Result<Queue<T>> {
        Queue::connect_with(self)
    }
}

/// A first-in first-out queue of `T` shared by any number of producers and consumers on
/// any hosts, through a Redis server. Like Python's `multiprocessing.Queue` (with
/// `task_done`/`join` of `JoinableQueue`); items are postcard-encoded, as in the local
/// [`shmkit_ring::Queue`](https://docs.rs/shmkit-ring).
///
/// ```no_run
/// let q = shmkit_remote::Queue::<String>::connect("redis://127.0.0.1:6379", "jobs")?;
/// q.put(&"hello".to_owned())?;
/// assert_eq!(q.get()?, "hello");
/// # Ok::<(), shmkit_remote::Error>(())
/// ```
///
/// Unlike the local queue, a remote queue cannot see its producers die or leave, so a
/// `get` on an empty queue waits (use [`get_timeout`](Self::get_timeout)); there is no
/// `Disconnected`.
pub struct Queue<T> {
    link: Mutex<Link>,
    key: String,
    meta: String,
    dead: String,
    consumer: String,
    maxsize: Option<u64>,
    reclaim_after: Duration,
    /// When this handle last looked for items to reclaim.
    last_reclaim: Mutex<Instant>,
    closed: AtomicBool,
    _t: PhantomData<fn(T) -> T>,
}

impl<T> std::fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("key", &self.key)
            .field("consumer", &self.consumer)
            .field("maxsize", &self.maxsize)
            .finish()
    }
}

/// An item taken with [`Queue::take`] and not yet acknowledged. If the process dies (or
/// the lease is dropped) before [`Queue::ack`], the item is re-delivered after the
/// queue's `reclaim_after`.
#[derive(Debug)]
pub struct Lease<T> {
    /// The item.
    pub item: T,
    id: String,
}

impl<T> Lease<T> {
    /// The stream entry id of the item.
    pub fn id(&self) -> &str {
        &self.id
    }
}

/// A unique consumer name: `host-pid-nonce`.
pub(crate) fn consumer_name() -> String {
    use std::hash::{BuildHasher, RandomState};
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "host".to_owned());
    let nonce = RandomState::new().hash_one(std::time::SystemTime::now()) & 0xffff_ffff;
    format!("{host}-{}-{nonce:08x}", std::process::id())
}

fn encode<T: Serialize>(item: &T) -> Result<Vec<u8>> {
    postcard::to_allocvec(item).map_err(|e| Error::Encode {
        type_name: std::any::type_name::<T>(),
        reason: e.to_string(),
    })
}

impl<T: Serialize + DeserializeOwned> Queue<T> {
    /// Connect to the queue `name` on the server at `url`
    /// (`redis://[user:password@]host[:port][/db]`, `redis+unix:///path`, or `rediss://`
    /// with the `tls` feature), creating it on first use. Connects now: a wrong URL, a
    /// server that is down or a wrong password is an error here.
    pub fn connect(url: &str, name: &str) -> Result<Queue<T>> {
        Self::builder(url, name).connect()
    }

    /// A builder, for [`maxsize`](Builder::maxsize) and
    /// [`reclaim_after`](Builder::reclaim_after).
    pub fn builder(url: &str, name: &str) -> Builder<T> {
        Builder {
            url: url.to_owned(),
            name: name.to_owned(),
            maxsize: None,
            reclaim_after: DEFAULT_RECLAIM_AFTER,
            _t: PhantomData,
        }
    }

    fn connect_with(b: Builder<T>) -> Result<Queue<T>> {
        check_name(&b.name)?;
        let mut link = Link::connect(&b.url)?;
        let key = format!("shmkit:queue:{}", b.name);
        let meta = format!("{key}:meta");
        let type_name = std::any::type_name::<T>();
        let mut p = redis::pipe();
        p.atomic()
            .cmd("HSETNX")
            .arg(&meta)
            .arg("kind")
            .arg("queue")
            .ignore()
            .cmd("HSETNX")
            .arg(&meta)
            .arg("type")
            .arg(type_name)
            .ignore()
            .cmd("HSETNX")
            .arg(&meta)
            .arg("maxsize")
            .arg(b.maxsize.unwrap_or(0))
            .ignore()
            .cmd("HSETNX")
            .arg(&meta)
            .arg("unfinished")
            .arg(0)
            .ignore()
            .cmd("HMGET")
            .arg(&meta)
            .arg("kind")
            .arg("type")
            .arg("maxsize");
        let (got,): ((Option<String>, Option<String>, Option<u64>),) = link.pipe(&meta, &p)?;
        let (kind, ty, maxsize) = got;
        if kind.as_deref() != Some("queue") || ty.as_deref() != Some(type_name) {
            return Err(Error::Foreign {
                key: meta,
                expected: format!("queue of {type_name}"),
                found: format!(
                    "kind {}, type {}",
                    kind.as_deref().unwrap_or("(none)"),
                    ty.as_deref().unwrap_or("(none)")
                ),
            });
        }
        create_group(&mut link, &key, GROUP)?;
        Ok(Queue {
            link: Mutex::new(link),
            dead: format!("{key}:dead"),
            key,
            meta,
            consumer: consumer_name(),
            maxsize: maxsize.filter(|&m| m > 0),
            reclaim_after: b.reclaim_after,
            last_reclaim: Mutex::new(Instant::now()),
            closed: AtomicBool::new(false),
            _t: PhantomData,
        })
    }

    fn link(&self) -> std::sync::MutexGuard<'_, Link> {
        // A panic while holding the lock leaves a `Link` that is still consistent (at
        // worst without a connection), so a poisoned lock is used as is.
        self.link.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The stream's key in Redis.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// This handle's consumer name in the group (`host-pid-nonce`).
    pub fn consumer(&self) -> &str {
        &self.consumer
    }

    /// The queue's bound, if it has one.
    pub fn maxsize(&self) -> Option<u64> {
        self.maxsize
    }

    /// Put `item`; with a `maxsize`, wait while the queue is full. The item is stored
    /// in Redis when this returns. On [`Error::ConnectionLost`] the item may or may not
    /// have been stored.
    pub fn put(&self, item: &T) -> Result<()> {
        self.put_deadline(item, None)
    }

    /// [`put`](Self::put), giving up after `timeout` with [`Error::Timeout`].
    pub fn put_timeout(&self, item: &T, timeout: Duration) -> Result<()> {
        self.put_deadline(item, Some(Instant::now() + timeout))
    }

    /// Put without waiting: [`TrySendError::Full`] if the queue is at its `maxsize`.
    pub fn try_put(&self, item: &T) -> Result<(), TrySendError> {
        let bytes = encode(item)?;
        if self.put_once(&bytes)? {
            Ok(())
        } else {
            Err(TrySendError::Full)
        }
    }

    /// Put several items in one round trip (a pipelined `MULTI`), in order. Ignores
    /// `maxsize` beyond checking that the batch fits now ([`Error::Full`] if not).
    pub fn put_many<'a>(&self, items: impl IntoIterator<Item = &'a T>) -> Result<()>
    where
        T: 'a,
    {
        self.check_open()?;
        let encoded = items.into_iter().map(encode).collect::<Result<Vec<_>>>()?;
        if encoded.is_empty() {
            return Ok(());
        }
        if let Some(max) = self.maxsize
            && self.len()? as u64 + encoded.len() as u64 > max
        {
            return Err(Error::Full);
        }
        let mut p = redis::pipe();
        p.atomic();
        for b in &encoded {
            p.cmd("XADD")
                .arg(&self.key)
                .arg("*")
                .arg("d")
                .arg(b)
                .ignore();
        }
        p.cmd("HINCRBY")
            .arg(&self.meta)
            .arg("unfinished")
            .arg(encoded.len())
            .ignore();
        self.link().pipe::<()>(&self.key, &p)
    }

    fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Relaxed) {
            Err(Error::Closed)
        } else {
            Ok(())
        }
    }

    /// One attempt: `false` if the queue is full.
    fn put_once(&self, bytes: &[u8]) -> Result<bool> {
        self.check_open()?;
        let mut link = self.link();
        match self.maxsize {
            None => {
                let mut p = redis::pipe();
                p.atomic()
                    .cmd("XADD")
                    .arg(&self.key)
                    .arg("*")
                    .arg("d")
                    .arg(bytes)
                    .ignore()
                    .cmd("HINCRBY")
                    .arg(&self.meta)
                    .arg("unfinished")
                    .arg(1)
                    .ignore();
                link.pipe::<()>(&self.key, &p)?;
                Ok(true)
            }
            Some(max) => {
                let mut c = redis::cmd("EVAL");
                c.arg(BOUNDED_PUT)
                    .arg(2)
                    .arg(&self.key)
                    .arg(&self.meta)
                    .arg(max)
                    .arg(bytes);
                let id: Option<String> = link.query(&self.key, &c)?;
                Ok(id.is_some())
            }
        }
    }

    fn put_deadline(&self, item: &T, deadline: Option<Instant>) -> Result<()> {
        let bytes = encode(item)?;
        let mut pause = Duration::from_micros(500);
        loop {
            if self.put_once(&bytes)? {
                return Ok(());
            }
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                return Err(Error::Timeout);
            }
            // Full: poll with backoff (Redis has no "wait for room" command).
            let left = deadline.map_or(pause, |d| d.saturating_duration_since(now));
            std::thread::sleep(pause.min(left));
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }

    /// Take the next item, waiting while the queue is empty. The item is acknowledged
    /// (and deleted from the stream) before it is returned.
    pub fn get(&self) -> Result<T> {
        self.get_deadline(None)
    }

    /// [`get`](Self::get), giving up after `timeout` with [`Error::Timeout`].
    pub fn get_timeout(&self, timeout: Duration) -> Result<T> {
        self.get_deadline(Some(Instant::now() + timeout))
    }

    /// Take without waiting: [`TryRecvError::Empty`] if nothing is there now.
    pub fn try_get(&self) -> Result<T, TryRecvError> {
        match self.read_one(None)? {
            Some(e) => Ok(self.finish(e)?),
            None => Err(TryRecvError::Empty),
        }
    }

    /// Take up to `max` items in one round trip (plus one for their acknowledgement),
    /// waiting up to `timeout` for the first; an empty `Vec` if none came.
    pub fn get_many(&self, max: usize, timeout: Duration) -> Result<Vec<T>> {
        let block = timeout.min(SLICE).max(Duration::from_millis(1));
        let mut c = redis::cmd("XREADGROUP");
        c.arg("GROUP")
            .arg(GROUP)
            .arg(&self.consumer)
            .arg("COUNT")
            .arg(max.max(1))
            .arg("BLOCK")
            .arg(block.as_millis() as u64)
            .arg("STREAMS")
            .arg(&self.key)
            .arg(">");
        let entries = self.read(&c, block)?;
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let mut p = redis::pipe();
        p.atomic();
        let ids: Vec<&str> = entries.iter().map(|e| e.id.as_str()).collect();
        p.cmd("XACK").arg(&self.key).arg(GROUP).arg(&ids).ignore();
        p.cmd("XDEL").arg(&self.key).arg(&ids).ignore();
        self.link().pipe::<()>(&self.key, &p)?;
        let mut out = Vec::with_capacity(entries.len());
        for e in &entries {
            match self.decode(e) {
                Ok(v) => out.push(v),
                Err(err) => {
                    self.bury(e)?;
                    return Err(err);
                }
            }
        }
        Ok(out)
    }

    /// Take the next item without acknowledging it: it is re-delivered to another
    /// consumer if this process dies (or drops the lease) before [`ack`](Self::ack) —
    /// at-least-once processing, like a message broker's manual acknowledgement.
    pub fn take(&self, timeout: Duration) -> Result<Lease<T>> {
        let deadline = Some(Instant::now() + timeout);
        loop {
            if let Some(e) = self.read_one(deadline)? {
                match self.decode(&e) {
                    Ok(item) => return Ok(Lease { item, id: e.id }),
                    Err(err) => {
                        self.bury(&e)?;
                        return Err(err);
                    }
                }
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(Error::Timeout);
            }
        }
    }

    /// Acknowledge a leased item: it is gone for good.
    pub fn ack(&self, lease: Lease<T>) -> Result<T> {
        self.ack_ids(&[lease.id.as_str()])?;
        Ok(lease.item)
    }

    fn ack_ids(&self, ids: &[&str]) -> Result<()> {
        let mut p = redis::pipe();
        p.atomic()
            .cmd("XACK")
            .arg(&self.key)
            .arg(GROUP)
            .arg(ids)
            .ignore()
            .cmd("XDEL")
            .arg(&self.key)
            .arg(ids)
            .ignore();
        self.link().pipe::<()>(&self.key, &p)
    }

    fn get_deadline(&self, deadline: Option<Instant>) -> Result<T> {
        loop {
            if let Some(e) = self.read_one(deadline)? {
                return self.finish(e);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(Error::Timeout);
            }
        }
    }

    /// Acknowledge `e` and decode it (a foreign entry goes to the dead-letter stream).
    fn finish(&self, e: Entry) -> Result<T> {
        let v = self.decode(&e);
        if v.is_err() {
            self.bury(&e)?;
        } else {
            self.ack_ids(&[e.id.as_str()])?;
        }
        v
    }

    fn decode(&self, e: &Entry) -> Result<T> {
        let corrupt = |what: String| Error::Corrupt {
            stream: self.key.clone(),
            id: e.id.clone(),
            what,
        };
        let Some(d) = e.field("d") else {
            let found = match &e.fields {
                None => "a deleted entry".to_owned(),
                Some(f) => format!(
                    "fields {:?}",
                    f.iter()
                        .map(|(k, _)| String::from_utf8_lossy(k).into_owned())
                        .collect::<Vec<_>>()
                ),
            };
            return Err(corrupt(format!(
                "expected a field \"d\" (an item), found {found}"
            )));
        };
        postcard::from_bytes(d).map_err(|err| {
            corrupt(format!(
                "expected a postcard-encoded {}, found {} bytes that do not decode ({err})",
                std::any::type_name::<T>(),
                d.len()
            ))
        })
    }

    /// Move a bad entry to the dead-letter stream and acknowledge it, so it never
    /// comes back.
    fn bury(&self, e: &Entry) -> Result<()> {
        let mut p = redis::pipe();
        p.atomic();
        let mut add = redis::cmd("XADD");
        add.arg(&self.dead).arg("*").arg("from").arg(&e.id);
        for (k, v) in e.fields.iter().flatten() {
            add.arg(b"f:".iter().chain(k).copied().collect::<Vec<u8>>())
                .arg(v);
        }
        p.add_command(add).ignore();
        p.cmd("XACK").arg(&self.key).arg(GROUP).arg(&e.id).ignore();
        p.cmd("XDEL").arg(&self.key).arg(&e.id).ignore();
        self.link().pipe::<()>(&self.key, &p)
    }

    /// One entry: a reclaimable one first (when due), else a new one, waiting up to
    /// the deadline (at most one slice).
    fn read_one(&self, deadline: Option<Instant>) -> Result<Option<Entry>> {
        let due = {
            let mut last = self.last_reclaim.lock().unwrap_or_else(|p| p.into_inner());
            let due = last.elapsed() >= (self.reclaim_after / 2).min(SLICE * 4);
            if due {
                *last = Instant::now();
            }
            due
        };
        if due && let Some(e) = self.reclaim_one()? {
            return Ok(Some(e));
        }
        let block = match deadline {
            None => Some(SLICE),
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                (!left.is_zero()).then(|| left.min(SLICE).max(Duration::from_millis(1)))
            }
        };
        let mut c = redis::cmd("XREADGROUP");
        c.arg("GROUP")
            .arg(GROUP)
            .arg(&self.consumer)
            .arg("COUNT")
            .arg(1);
        if let Some(b) = block {
            c.arg("BLOCK").arg(b.as_millis() as u64);
        }
        c.arg("STREAMS").arg(&self.key).arg(">");
        let mut es = self.read(&c, block.unwrap_or_default())?;
        Ok(es.pop())
    }

    fn read(&self, c: &redis::Cmd, block: Duration) -> Result<Vec<Entry>> {
        let v: redis::Value = self.link().run(&self.key, block, |conn| c.query(conn))?;
        wire::read_reply(&v).ok_or_else(|| Error::Corrupt {
            stream: self.key.clone(),
            id: "-".to_owned(),
            what: format!("unexpected XREADGROUP reply shape: {v:?}"),
        })
    }

    /// `XAUTOCLAIM` one entry idle longer than `reclaim_after` to this consumer.
    fn reclaim_one(&self) -> Result<Option<Entry>> {
        let mut c = redis::cmd("XAUTOCLAIM");
        c.arg(&self.key)
            .arg(GROUP)
            .arg(&self.consumer)
            .arg(self.reclaim_after.as_millis() as u64)
            .arg("0-0")
            .arg("COUNT")
            .arg(1);
        let v: redis::Value = self.link().query(&self.key, &c)?;
        let es = wire::autoclaim_reply(&v).ok_or_else(|| Error::Corrupt {
            stream: self.key.clone(),
            id: "-".to_owned(),
            what: format!("unexpected XAUTOCLAIM reply shape: {v:?}"),
        })?;
        Ok(es.into_iter().find(|e| e.fields.is_some()))
    }

    /// Items in the queue, including those read and not yet acknowledged (`XLEN`).
    pub fn len(&self) -> Result<usize> {
        let n: u64 = self
            .link()
            .query(&self.key, redis::cmd("XLEN").arg(&self.key))?;
        Ok(n as usize)
    }

    /// Whether [`len`](Self::len) is 0.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Whether the queue is at its `maxsize` (always `false` without one).
    pub fn is_full(&self) -> Result<bool> {
        Ok(match self.maxsize {
            Some(m) => self.len()? as u64 >= m,
            None => false,
        })
    }

    /// This handle puts no more: later `put`s return [`Error::Closed`].
    pub fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
    }

    /// Mark one item taken by `get` as processed (`JoinableQueue.task_done`).
    /// [`Error::TaskDoneTooMany`] if called more often than items were put.
    pub fn task_done(&self) -> Result<()> {
        let mut c = redis::cmd("EVAL");
        c.arg(TASK_DONE).arg(1).arg(&self.meta);
        let left: i64 = self.link().query(&self.meta, &c)?;
        if left < 0 {
            return Err(Error::TaskDoneTooMany);
        }
        Ok(())
    }

    /// Items put and not yet marked [`task_done`](Self::task_done), by every handle.
    pub fn unfinished(&self) -> Result<u64> {
        let n: Option<i64> = self.link().query(
            &self.meta,
            redis::cmd("HGET").arg(&self.meta).arg("unfinished"),
        )?;
        Ok(n.unwrap_or(0).max(0) as u64)
    }

    /// Wait until every item put has been marked done (`JoinableQueue.join`).
    pub fn join(&self) -> Result<()> {
        self.join_deadline(None)
    }

    /// [`join`](Self::join), giving up after `timeout` with [`Error::Timeout`].
    pub fn join_timeout(&self, timeout: Duration) -> Result<()> {
        self.join_deadline(Some(Instant::now() + timeout))
    }

    fn join_deadline(&self, deadline: Option<Instant>) -> Result<()> {
        let mut pause = Duration::from_millis(1);
        loop {
            if self.unfinished()? == 0 {
                return Ok(());
            }
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                return Err(Error::Timeout);
            }
            let left = deadline.map_or(pause, |d| d.saturating_duration_since(now));
            std::thread::sleep(pause.min(left));
            pause = (pause * 2).min(Duration::from_millis(100));
        }
    }

    /// Entries in the dead-letter stream (items that did not decode).
    pub fn dead_letters(&self) -> Result<u64> {
        self.link()
            .query(&self.dead, redis::cmd("XLEN").arg(&self.dead))
    }

    /// Another handle to the same queue, with its own connection and consumer name.
    pub fn try_clone(&self) -> Result<Queue<T>> {
        Ok(Queue {
            link: Mutex::new(self.link().try_clone()?),
            key: self.key.clone(),
            meta: self.meta.clone(),
            dead: self.dead.clone(),
            consumer: consumer_name(),
            maxsize: self.maxsize,
            reclaim_after: self.reclaim_after,
            last_reclaim: Mutex::new(Instant::now()),
            closed: AtomicBool::new(false),
            _t: PhantomData,
        })
    }

    /// Delete the queue from Redis (stream, counters, dead letters), for every handle.
    pub fn destroy(self) -> Result<()> {
        let mut c = redis::cmd("DEL");
        c.arg(&self.key).arg(&self.meta).arg(&self.dead);
        self.link().query::<()>(&self.key, &c)
    }
}

/// `XGROUP CREATE key group 0 MKSTREAM`, accepting a group that exists already.
pub(crate) fn create_group(link: &mut Link, key: &str, group: &str) -> Result<()> {
    let mut c = redis::cmd("XGROUP");
    c.arg("CREATE").arg(key).arg(group).arg("0").arg("MKSTREAM");
    match link.query::<()>(key, &c) {
        Err(Error::Server { reason, .. }) if reason.contains("BUSYGROUP") => Ok(()),
        Err(Error::Server { url, key, reason }) if reason.contains("WRONGTYPE") => {
            let _ = url;
            Err(Error::Foreign {
                key,
                expected: "stream".to_owned(),
                found: "a key of another type".to_owned(),
            })
        }
        r => r,
    }
}
