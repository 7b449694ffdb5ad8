//! The worker loop: the user's own binary, on any host, serving one pool.

use crate::error::{Error, Result};
use crate::func;
use crate::keys::{self, GROUP, Keys, Outcome, Settings};
use crate::link::{Link, check_name};
use crate::primitive::{AtomicBool, Ordering};
use crate::queue::consumer_name;
use crate::wire::{self, Entry};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Longest single `BLOCK` of an idle worker.
const SLICE: Duration = Duration::from_millis(250);

/// Serve the pool `pool` on the server at `url` until [`Pool::stop_workers`] is called
/// (or the server stays unreachable for [`Worker::reconnect_for`]): take one task at a
/// time, run the function registered under its name, answer, repeat. Register the
/// program's functions ([`register`](crate::register)) before calling this.
///
/// ```no_run
/// fn square(x: u64) -> u64 { x * x }
///
/// fn main() -> Result<(), shmkit_remote::Error> {
///     shmkit_remote::register("square", square);
///     shmkit_remote::worker("redis://queue-host:6379", "demo")
/// }
/// ```
///
/// [`Pool::stop_workers`]: crate::Pool::stop_workers
pub fn worker(url: &str, pool: &str) -> Result<()> {
    Worker::new(url, pool).run()
}

/// A worker with settings; [`worker`] with the defaults.
#[derive(Debug, Clone)]
pub struct Worker {
    url: String,
    pool: String,
    max_tasks: Option<u64>,
    reconnect_for: Duration,
}

impl Worker {
    /// A worker for `pool` at `url`.
    pub fn new(url: &str, pool: &str) -> Worker {
        Worker {
            url: url.to_owned(),
            pool: pool.to_owned(),
            max_tasks: None,
            reconnect_for: Duration::from_secs(60),
        }
    }

    /// Exit after this many tasks (Python's `maxtasksperchild`).
    pub fn max_tasks(mut self, n: u64) -> Self {
        self.max_tasks = Some(n);
        self
    }

    /// How long to keep reconnecting to a server that went away (default 60 s).
    pub fn reconnect_for(mut self, d: Duration) -> Self {
        self.reconnect_for = d;
        self
    }

    /// Serve until stopped. Returns the number of tasks run.
    pub fn run(self) -> Result<()> {
        self.serve().map(|_| ())
    }

    /// [`run`](Self::run), returning how many chunks this worker answered.
    pub fn serve(self) -> Result<u64> {
        check_name(&self.pool)?;
        let keys = Keys::new(&self.pool);
        let mut link = Link::connect(&self.url)?;
        crate::queue::create_group(&mut link, &keys.tasks, GROUP)?;
        let consumer = consumer_name();
        let mut settings = Settings::load(&mut link, &keys)?;
        let beat = Heartbeat::start(link.try_clone()?, keys.clone(), consumer.clone(), settings);
        let mut served = 0u64;
        let mut own_first = false;
        let mut last_check = Instant::now() - Duration::from_secs(60);
        loop {
            if self.max_tasks.is_some_and(|m| served >= m) {
                return Ok(leave(&mut link, &keys, &consumer, served));
            }
            let give_up = Instant::now() + self.reconnect_for;
            // Every second (and when idle): the stop flag, the settings, silent workers.
            if last_check.elapsed() >= Duration::from_secs(1) {
                last_check = Instant::now();
                let stop: Option<String> = link.persist(give_up, |l| {
                    l.query(&keys.stop, redis::cmd("GET").arg(&keys.stop))
                })?;
                if stop.is_some() {
                    return Ok(leave(&mut link, &keys, &consumer, served));
                }
                settings = link.persist(give_up, |l| Settings::load(l, &keys))?;
                beat.set_settings(settings);
                let reaper = format!("reaper-{consumer}");
                link.persist(give_up, |l| keys::reap(l, &keys, settings, &reaper))?;
            }
            // After a failed read, first re-read this worker's own pending entries (id
            // `0`): the server may have delivered a task whose reply the broken
            // connection lost; without this it would sit unclaimed until reclaimed as
            // `WorkerDied` although this worker is alive.
            let mut c = redis::cmd("XREADGROUP");
            c.arg("GROUP").arg(GROUP).arg(&consumer).arg("COUNT").arg(1);
            if !own_first {
                c.arg("BLOCK").arg(SLICE.as_millis() as u64);
            }
            c.arg("STREAMS")
                .arg(&keys.tasks)
                .arg(if own_first { "0" } else { ">" });
            let mut failed = false;
            let v: redis::Value = link.persist(give_up, |l| {
                let r = l.run(&keys.tasks, SLICE, |conn| c.query(conn));
                failed |= r.is_err();
                r
            })?;
            let entries = wire::read_reply(&v).ok_or_else(|| Error::Corrupt {
                stream: keys.tasks.clone(),
                id: "-".to_owned(),
                what: format!("unexpected XREADGROUP reply shape: {v:?}"),
            })?;
            let was_own = own_first;
            own_first = failed || (was_own && !entries.is_empty());
            let Some(task) = entries.into_iter().next() else {
                if !was_own {
                    last_check = Instant::now() - Duration::from_secs(60);
                }
                continue;
            };
            beat.running(Some(task.id.clone()));
            let answer = run_task(&keys, &task);
            beat.running(None);
            let mut p = redis::pipe();
            p.atomic();
            match answer {
                Some((reply, seq, outcome)) => {
                    p.cmd("XADD")
                        .arg(reply)
                        .arg("*")
                        .arg("s")
                        .arg(seq)
                        .arg("o")
                        .arg(outcome)
                        .ignore();
                }
                None => {
                    // Not a task of ours: keep it for inspection, never run it.
                    let mut dead = redis::cmd("XADD");
                    dead.arg(&keys.dead).arg("*");
                    for (k, v) in task.fields.iter().flatten() {
                        dead.arg(k).arg(v);
                    }
                    dead.arg("worker")
                        .arg(&consumer)
                        .arg("reason")
                        .arg("not a task: missing or invalid f/a/r/s fields")
                        .arg("task_id")
                        .arg(&task.id);
                    p.add_command(dead).ignore();
                }
            }
            p.cmd("XACK")
                .arg(&keys.tasks)
                .arg(GROUP)
                .arg(&task.id)
                .ignore();
            p.cmd("XDEL").arg(&keys.tasks).arg(&task.id).ignore();
            link.persist(give_up, |l| l.pipe::<()>(&keys.tasks, &p))?;
            served += 1;
        }
    }
}

/// A clean exit: remove this worker's (empty) consumer from the group, so stopped
/// workers do not pile up in `XINFO CONSUMERS`.
fn leave(link: &mut Link, keys: &Keys, consumer: &str, served: u64) -> u64 {
    let mut c = redis::cmd("XGROUP");
    c.arg("DELCONSUMER")
        .arg(&keys.tasks)
        .arg(GROUP)
        .arg(consumer);
    // Best effort: a consumer left behind only shows up in XINFO.
    let _ = link.query::<i64>(&keys.tasks, &c);
    served
}

/// Run one task: `(reply stream, seq, encoded outcome)`, or `None` for an entry that is
/// not a well-formed task (it names no reply stream of this pool).
fn run_task(keys: &Keys, task: &Entry) -> Option<(String, u64, Vec<u8>)> {
    let reply = task.text("r").filter(|r| keys.is_reply(r))?.to_owned();
    let seq = task.number("s")?;
    let outcome = match (task.text("f"), task.field("a")) {
        (Some(name), Some(args)) => match func::lookup(name) {
            Some(f) => {
                let (ta, tr) = (
                    task.text("ta").unwrap_or("?"),
                    task.text("tr").unwrap_or("?"),
                );
                if ta != f.arg_type || tr != f.ret_type {
                    Outcome::Failed(format!(
                        "function {name:?} is registered here as {} -> {}; the task was \
                         submitted as {ta} -> {tr}",
                        f.arg_type, f.ret_type
                    ))
                } else {
                    match f.call(args) {
                        Ok(items) => Outcome::Done(items),
                        Err(m) => Outcome::Failed(m),
                    }
                }
            }
            None => Outcome::Unknown(name.to_owned()),
        },
        _ => Outcome::Failed(format!(
            "stream {:?}, entry {}: missing field f or a",
            keys.tasks, task.id
        )),
    };
    // An outcome is plain data; encoding it cannot fail short of allocation failure.
    let bytes = postcard::to_allocvec(&outcome).ok()?;
    Some((reply, seq, bytes))
}

/// Keeps the running task's claim fresh: every third of `reclaim_after`, `XCLAIM ...
/// JUSTID` with minimum idle 0 resets its idle time, so reapers leave it alone.
struct Heartbeat {
    state: Arc<BeatState>,
    thread: Option<std::thread::JoinHandle<()>>,
}

struct BeatState {
    current: Mutex<Option<String>>,
    settings: Mutex<Settings>,
    stop: AtomicBool,
}

impl Heartbeat {
    fn start(mut link: Link, keys: Keys, consumer: String, s: Settings) -> Heartbeat {
        let state = Arc::new(BeatState {
            current: Mutex::new(None),
            settings: Mutex::new(s),
            stop: AtomicBool::new(false),
        });
        let st = state.clone();
        let thread = std::thread::Builder::new()
            .name("shmkit-remote-heartbeat".to_owned())
            .spawn(move || {
                let mut last = Instant::now();
                while !st.stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(10));
                    let every = st
                        .settings
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .reclaim_after
                        / 3;
                    if last.elapsed() < every {
                        continue;
                    }
                    last = Instant::now();
                    let id = st.current.lock().unwrap_or_else(|p| p.into_inner()).clone();
                    if let Some(id) = id {
                        let mut c = redis::cmd("XCLAIM");
                        c.arg(&keys.tasks)
                            .arg(GROUP)
                            .arg(&consumer)
                            .arg(0)
                            .arg(&id)
                            .arg("JUSTID");
                        // A failed beat is retried at the next; a lost connection
                        // reconnects then.
                        let _ = link.query::<redis::Value>(&keys.tasks, &c);
                    }
                }
            })
            .ok();
        Heartbeat { state, thread }
    }

    fn running(&self, id: Option<String>) {
        *self.state.current.lock().unwrap_or_else(|p| p.into_inner()) = id;
    }

    fn set_settings(&self, s: Settings) {
        *self
            .state
            .settings
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = s;
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
