//! The pool's I/O: starting workers, sending them chunks, the collector thread that
//! reads their outcomes, notices dead workers and replaces them, and the shutdown. What
//! to send where, and what a death means, is decided by the [`Scheduler`]; this file
//! does it.

use crate::builder::InitSpec;
use crate::chunk::{Chunk, ChunkMap, Payload};
use crate::error::{Error, Result};
use crate::func::{FnToken, Key};
use crate::inbox::{self, Inbox};
use crate::primitive::{AtomicU64, Ordering};
use crate::schedule::{SEND_BATCH, Scheduler};
use crate::wire::{Body, Done, INIT_FAILED, Outcome, Task};
use crate::worker::{self, SLOT_BYTES, WorkerArgs};
use shmkit_process::{ExitStatus, Process, StartMethod};
use shmkit_ring::spsc;
use shmkit_segment::Segment;
use shmkit_sync::futex::SpinPolicy;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Bytes of each worker's task ring: four [`INLINE_MAX`](crate::wire::INLINE_MAX)
/// chunks. Pages are touched only as chunks pass, so a pool of small tasks keeps little
/// of it resident; one that moves large chunks keeps up to 2 MiB per worker.
const TASK_RING: usize = 1 << 20;
/// Bytes of each worker's result ring (as the task ring).
const RESULT_RING: usize = 1 << 20;
// An inline chunk, with its message header, always fits a ring (whose largest message is
// half the ring).
const _: () = assert!(4 * crate::wire::INLINE_MAX <= TASK_RING && TASK_RING == RESULT_RING);
/// How often the collector looks for dead workers (and notices `close`).
const CHECK_EVERY: Duration = Duration::from_millis(20);
/// How long `terminate` and the end of `join` wait for a stopped worker to be reaped.
const REAP_WAIT: Duration = Duration::from_secs(5);

static NEXT_WORKER: AtomicU64 = AtomicU64::new(1);

/// A worker slot's process and its two rings (`None` once it is gone or stopped).
pub(crate) struct Worker {
    pub process: Option<Process<()>>,
    tx: Option<spsc::Producer>,
    /// Its result ring.
    rx: Option<spsc::Consumer>,
}

/// Everything the pool's threads share, under [`Shared::state`].
pub(crate) struct State {
    pub workers: Vec<Worker>,
    /// Which chunk goes where, and what a death means; it queues the pending chunks.
    pub sched: Scheduler<Chunk>,
    /// The chunks workers hold (sent, no outcome yet).
    running: ChunkMap,
    pub closed: bool,
    pub terminated: bool,
    /// The collector has stopped and every worker is reaped.
    pub finished: bool,
    pub broken: Option<Error>,
    /// Encoded tasks of one send.
    scratch: Vec<u8>,
}

/// A pool's settings, as the collector needs them.
pub(crate) struct Settings {
    pub processes: usize,
    pub method: StartMethod,
    pub prefetch: usize,
    pub max_tasks: Option<u64>,
    pub init: Option<InitSpec>,
    pub prefix: String,
    /// How the workers' rings and the collector wait.
    pub strategy: shmkit_ring::WaitStrategy,
}

/// What the pool and its collector thread share.
pub(crate) struct Shared {
    state: Mutex<State>,
    /// Signalled when `finished` turns true.
    pub finished: Condvar,
    pub key: Key,
    pub prefix: String,
    /// One line per worker slot ("started" and "taken" words), then the doorbell.
    control: Segment,
    pub next_chunk: AtomicU64,
    method: StartMethod,
    max_tasks: Option<u64>,
    init: Option<(FnToken, Vec<u8>)>,
    /// How the workers' rings and the collector wait.
    strategy: shmkit_ring::WaitStrategy,
}

impl Shared {
    /// Make the control segment, start every worker and the collector thread.
    pub(crate) fn start(s: Settings) -> Result<(Arc<Shared>, JoinHandle<()>)> {
        let key = Key::random();
        // One line per worker, then the collector's doorbell. Anonymous, like every
        // segment of the pool: nothing in /dev/shm outlives the processes using it.
        let control = Segment::anonymous(worker::doorbell_offset(s.processes) + SLOT_BYTES)?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                workers: Vec::with_capacity(s.processes),
                sched: Scheduler::new(s.processes, s.prefetch, s.max_tasks),
                running: ChunkMap::default(),
                closed: false,
                terminated: false,
                finished: false,
                broken: None,
                scratch: Vec::new(),
            }),
            finished: Condvar::new(),
            init: s
                .init
                .map(|(tramp, f, bytes)| (FnToken::new(&key, tramp, f), bytes)),
            key,
            prefix: s.prefix,
            control,
            next_chunk: AtomicU64::new(0),
            method: s.method,
            max_tasks: s.max_tasks,
            strategy: s.strategy,
        });
        {
            let mut st = shared.lock();
            for slot in 0..s.processes {
                st.workers.push(Worker {
                    process: None,
                    tx: None,
                    rx: None,
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
        };
        match collector {
            Ok(handle) => Ok((shared, handle)),
            Err(e) => {
                shared.shut_down(Error::Terminated);
                Err(Error::Config(format!(
                    "could not start the collector thread: {e}"
                )))
            }
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queue `chunks` (made by `submit`) and send what the workers have room for.
    pub(crate) fn submit(&self, chunks: Vec<Chunk>) -> Result<()> {
        let mut st = self.lock();
        if let Some(e) = &st.broken {
            return Err(e.clone());
        }
        if st.closed {
            return Err(Error::Closed);
        }
        st.sched.submit(chunks);
        self.dispatch(&mut st);
        Ok(())
    }

    /// Start worker `slot` (again): fresh rings, cleared "started" and "taken" words.
    fn spawn_worker(&self, st: &mut State, slot: usize) -> Result<()> {
        // Anonymous rings: the worker opens them through this process's descriptors.
        let (tx, rx) = spsc::builder(TASK_RING).wait(self.strategy).create()?;
        let (result_tx, result_rx) = spsc::builder(RESULT_RING).wait(self.strategy).create()?;
        for word in [
            worker::started_offset(slot as u32),
            worker::taken_offset(slot as u32),
        ] {
            // SYNC: Release; the worker's own stores follow its start.
            self.control.atomic_u64(word)?.store(0, Ordering::Release);
        }
        let args = WorkerArgs {
            slot: slot as u32,
            tasks: rx.transfer(),
            results: result_tx.transfer(),
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
        st.sched.started(slot);
        Ok(())
    }

    /// Send pending chunks where the scheduler says. Never blocks.
    fn dispatch(&self, st: &mut State) {
        let State {
            workers,
            sched,
            running,
            scratch,
            ..
        } = st;
        sched.begin_round();
        let mut ends = [0usize; SEND_BATCH];
        while let Some(send) = sched.next_send() {
            // Several chunks in one batch: one publication, at most one wake-up.
            scratch.clear();
            let mut count = 0;
            for (k, chunk) in sched.front(send.count).enumerate() {
                let task = Task {
                    chunk: chunk.id,
                    func: chunk.func,
                    body: match &chunk.payload {
                        Payload::Inline { buf, span } => Body::Inline(&buf[span.clone()]),
                        Payload::Blob(b) => Body::Blob {
                            len: b.len,
                            blob: b.handle.clone(),
                        },
                    },
                };
                // Encoding integers, a handle and a byte slice into a Vec cannot fail.
                *scratch = postcard::to_extend(&task, std::mem::take(scratch))
                    .expect("a Task always encodes");
                ends[k] = scratch.len();
                count = k + 1;
            }
            let mut msgs: [&[u8]; SEND_BATCH] = [&[]; SEND_BATCH];
            let mut start = 0;
            for (m, &end) in msgs.iter_mut().zip(&ends).take(count) {
                *m = &scratch[start..end];
                start = end;
            }
            let accepted = match workers[send.worker]
                .tx
                .as_mut()
                .map(|tx| tx.try_send_batch(&msgs[..count]))
            {
                Some(Ok(n)) => n,
                // Gone: the collector will see it dead.
                _ => 0,
            };
            sched.sent(send, accepted, |chunk| {
                running.insert(chunk.id, chunk);
            });
        }
    }

    /// The collector thread: outcomes in, dead workers out, until the pool ends.
    fn collect(self: Arc<Self>) {
        let bell = match worker::doorbell(&self.control) {
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
                self.strategy.park(bell, || self.any_results(), CHECK_EVERY);
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
                sched,
                running,
                ..
            } = &mut *st;
            for (slot, w) in workers.iter_mut().enumerate() {
                let Some(rx) = &mut w.rx else {
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
                    let ran = Duration::from_micros(done.ran_us);
                    // Only a chunk this worker holds is its to answer.
                    let chunk = if sched.outcome(slot, done.chunk, ran) {
                        running.remove(&done.chunk)
                    } else {
                        None
                    };
                    inbox.push(done.chunk, chunk, done.outcome, pid, taken);
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
        // Also after a shutdown: these chunks left `chunks` above, so their outcomes
        // are theirs to deliver.
        let n = inbox.len();
        inbox.deliver(inbox::deliver);
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
        if st.closed && st.sched.is_idle() {
            // close() + all done: let the workers drain and exit, then reap them.
            st.sched.close_all();
            let processes = detach_workers(&mut st);
            drop(st);
            reap(processes);
            let mut st = self.lock();
            st.finished = true;
            self.finished.notify_all();
            return false;
        }
        true
    }

    /// Worker `slot` died: fail the chunks it ran, queue the others first, start a
    /// successor.
    fn bury(&self, st: &mut State, slot: usize) {
        let w = &mut st.workers[slot];
        let Some(process) = w.process.take() else {
            return;
        };
        w.tx = None;
        w.rx = None;
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
        // The chunks it ran died with their outcomes; the others are pending again.
        let death = st.sched.died(slot, started);
        for id in death.failed {
            if let Some(chunk) = st.running.remove(&id) {
                chunk.fail(Error::WorkerDied {
                    pid,
                    cause: cause.clone(),
                });
            }
        }
        let again = death
            .again
            .iter()
            .filter_map(|id| st.running.remove(id))
            .collect();
        st.sched.requeue(again);
        let more_work = !st.closed || !st.sched.is_idle();
        if st.broken.is_none()
            && more_work
            && let Err(e) = self.spawn_worker(st, slot)
            // Cannot replace it: if no worker is left, nothing would run the rest.
            && st.workers.iter().all(|w| w.process.is_none())
        {
            st.broken = Some(e.clone());
            for chunk in st.sched.take_pending() {
                chunk.fail(e.clone());
            }
        }
    }

    /// Terminate: kill every worker, fail what is unfinished with `why`, reap.
    pub(crate) fn shut_down(&self, why: Error) {
        let (processes, unfinished) = {
            let mut st = self.lock();
            if st.terminated {
                return;
            }
            st.terminated = true;
            st.closed = true;
            let processes = detach_workers(&mut st);
            // Pending first, in order; then those the workers held.
            let (mut unfinished, held) = st.sched.take_all();
            unfinished.extend(held.iter().filter_map(|id| st.running.remove(id)));
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

/// Drop every worker's rings (so a live worker sees its task ring close and exits) and
/// take its process, to reap outside the lock.
fn detach_workers(st: &mut State) -> Vec<Process<()>> {
    st.workers
        .iter_mut()
        .filter_map(|w| {
            w.tx = None;
            w.rx = None;
            w.process.take()
        })
        .collect()
}
