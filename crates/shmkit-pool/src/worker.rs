//! The worker process: takes chunks from its ring, runs them, puts the outcomes on the
//! worker's own result ring.

use crate::func::{ChunkFn, FnToken, Key};
use crate::primitive::{AtomicU64, Ordering};
use crate::wire::{self, Body, Done, INIT_FAILED, INLINE_MAX, Outcome, Task};
use serde::{Deserialize, Serialize};
use shmkit_ring::spsc;
use shmkit_segment::{Segment, SegmentHandle};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Bytes per worker slot in the control segment (one cache line each).
pub(crate) const SLOT_BYTES: usize = 64;

/// Offset of worker `slot`'s "started" word in the control segment: the id + 1 of the
/// chunk it began running last. The pool reads it after the worker died to tell the
/// chunk that was running (its tasks get `WorkerDied`) from chunks never started
/// (sent again to another worker).
pub(crate) fn started_offset(slot: u32) -> usize {
    slot as usize * SLOT_BYTES
}

/// Offset of worker `slot`'s "taken" word: the `seq` of the last result blob of this
/// worker that the pool has opened (or given up on). The worker holds each result blob
/// (an anonymous segment, gone with its last descriptor) until the pool has taken it.
pub(crate) fn taken_offset(slot: u32) -> usize {
    started_offset(slot) + 8
}

/// How long a worker that retires (`maxtasksperchild`) waits for the pool to take its
/// last result blobs before it exits anyway (the pool takes them within microseconds
/// unless it is gone).
const TAKEN_WAIT: Duration = Duration::from_secs(10);

/// Offset of the collector's doorbell in a control segment of `processes` slots: a
/// [`WakeWord`](shmkit_sync::wake::WakeWord) on the line after the workers' slots. A
/// worker notifies it after publishing an outcome on its result ring; the collector
/// sleeps on it only after announcing the sleep and finding every ring empty (the one
/// wake-up protocol of shmkit-sync, loom-checked there), and at most 20 ms at a time
/// (it looks for dead workers in between).
pub(crate) fn doorbell_offset(processes: usize) -> usize {
    processes * SLOT_BYTES
}

/// The doorbell of `control` (its last line).
pub(crate) fn doorbell(
    control: &shmkit_segment::Segment,
) -> shmkit_segment::Result<&shmkit_sync::wake::WakeWord> {
    // Bounds-checked by `in_segment`.
    shmkit_sync::wake::WakeWord::in_segment(control, control.len().saturating_sub(SLOT_BYTES))
}

/// What a worker gets from the pool (through the launcher: the key never touches
/// shared memory).
#[derive(Serialize, Deserialize)]
pub(crate) struct WorkerArgs {
    pub slot: u32,
    pub tasks: spsc::Consumer,
    /// This worker's own result ring (the pool polls one per worker).
    pub results: spsc::Producer,
    pub control: SegmentHandle,
    pub key: Key,
    /// The pool's process: input blobs are its descriptors, and only its.
    pub pool_pid: u32,
    /// Exit after this many chunks (`maxtasksperchild`).
    pub max_tasks: Option<u64>,
    pub init: Option<(FnToken, Vec<u8>)>,
}

/// The worker's main function, started by the pool with `shmkit_process`.
pub(crate) fn worker_main(args: WorkerArgs) {
    let WorkerArgs {
        slot,
        mut tasks,
        mut results,
        control,
        key,
        pool_pid,
        max_tasks,
        init,
    } = args;
    let Ok(control) = control.open() else { return };
    let (Ok(started), Ok(taken)) = (
        control.atomic_u64(started_offset(slot)),
        control.atomic_u64(taken_offset(slot)),
    ) else {
        return;
    };
    let Ok(bell) = doorbell(&control) else {
        return;
    };
    let mut encoded = Vec::new();
    let mut send = |done: &Done| -> bool {
        encoded.clear();
        match postcard::to_extend(done, std::mem::take(&mut encoded)) {
            Ok(v) => encoded = v,
            Err(_) => return false,
        }
        if results.send(&encoded).is_err() {
            return false;
        }
        results.wait_strategy().notify(bell);
        true
    };
    if let Some((token, input)) = init {
        let failure = match token.resolve(&key) {
            Some((call, f)) => call(f, &input, &mut Vec::new()).err(),
            None => Some("the initializer's function token does not verify".into()),
        };
        if let Some(message) = failure {
            send(&Done {
                chunk: INIT_FAILED,
                ran_us: 0,
                outcome: Outcome::Failed(message.into()),
            });
            return;
        }
    }
    let mut out = Vec::new();
    let mut done = 0u64;
    let mut verified = None;
    let mut blobs = Blobs::default();
    loop {
        blobs.release_taken(taken);
        // Disconnected: the pool dropped this worker's ring (close + join, terminate) or
        // died; Corrupted: nothing sensible left to do. Either way, exit.
        let Ok(grant) = tasks.read() else { return };
        let Ok(task) = postcard::from_bytes::<Task<'_>>(&grant) else {
            return; // not even a chunk id to answer: the pool sees this worker exit
        };
        let chunk = task.chunk;
        // SYNC: Release; the pool reads it (Acquire) only after this process died.
        started.store(chunk.wrapping_add(1), Ordering::Release);
        let t0 = Instant::now();
        let outcome = run(&task, &key, &mut verified, pool_pid, &mut blobs, &mut out);
        let ran_us = t0.elapsed().as_micros().try_into().unwrap_or(u64::MAX);
        grant.release();
        // Each outcome goes out at once: batching them saves ~15% per tiny task but a
        // worker that died would take finished, unsent outcomes with it, failing tasks
        // that had completed.
        let sent = send(&Done {
            chunk,
            ran_us,
            outcome,
        });
        done += 1;
        if !sent {
            return;
        }
        if max_tasks.is_some_and(|max| done >= max) {
            // Our result blobs die with us: stay until the pool has taken them.
            blobs.wait_taken(taken, &tasks);
            return;
        }
    }
}

/// The result blobs this worker made and the pool has not opened yet, oldest first.
#[derive(Default)]
struct Blobs {
    held: VecDeque<(u64, Segment)>,
    last_seq: u64,
}

impl Blobs {
    /// Hold `seg` until the pool takes it; its sequence number.
    fn hold(&mut self, seg: Segment) -> u64 {
        self.last_seq += 1;
        self.held.push_back((self.last_seq, seg));
        self.last_seq
    }

    /// Drop the blobs the pool has opened (`taken` is the last one's `seq`).
    fn release_taken(&mut self, taken: &AtomicU64) {
        if self.held.is_empty() {
            return;
        }
        // SYNC: Acquire, paired with the pool's Release store once it opened the blob.
        let upto = taken.load(Ordering::Acquire);
        while self.held.front().is_some_and(|(seq, _)| *seq <= upto) {
            self.held.pop_front();
        }
    }

    /// Before exiting: wait (bounded) until the pool has taken every held blob, or is
    /// gone (our task ring disconnected).
    fn wait_taken(&mut self, taken: &AtomicU64, tasks: &spsc::Consumer) {
        let deadline = Instant::now() + TAKEN_WAIT;
        let mut pause = Duration::from_micros(20);
        loop {
            self.release_taken(taken);
            if self.held.is_empty() || tasks.is_disconnected() || Instant::now() >= deadline {
                return;
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(5));
        }
    }
}

/// Run `task`; its outcome borrows `out` (reused from task to task).
fn run<'o>(
    task: &Task<'_>,
    key: &Key,
    verified: &mut Option<(FnToken, ChunkFn, usize)>,
    pool_pid: u32,
    blobs: &mut Blobs,
    out: &'o mut Vec<u8>,
) -> Outcome<'o> {
    // The tag check costs a SipHash: once per function, not per task.
    let resolved = match verified {
        Some((token, call, f)) if *token == task.func => Some((*call, *f)),
        _ => task.func.resolve(key).inspect(|&(call, f)| {
            *verified = Some((task.func, call, f));
        }),
    };
    let Some((call, f)) = resolved else {
        return Outcome::Failed(
            "the task's function token does not verify: it was not sent by this pool \
             (corrupted or foreign data in the task ring)"
                .into(),
        );
    };
    let from_blob;
    let input: &[u8] = match task.body {
        Body::Inline(bytes) => bytes,
        Body::Blob { len, ref blob } => match wire::blob_open(blob, pool_pid)
            .and_then(|seg| wire::blob_read(&seg, len))
        {
            Ok(bytes) => {
                from_blob = bytes;
                &from_blob
            }
            Err(e) => return Outcome::Failed(format!("could not read the arguments: {e}").into()),
        },
    };
    if let Err(message) = call(f, input, out) {
        return Outcome::Failed(message.into());
    }
    if out.len() <= INLINE_MAX {
        return Outcome::Inline(out);
    }
    match wire::blob_create(out) {
        Ok(seg) => {
            let blob = seg.handle();
            Outcome::Blob {
                len: out.len() as u64,
                seq: blobs.hold(seg),
                blob,
            }
        }
        Err(e) => {
            Outcome::Failed(format!("could not store a result of {} bytes: {e}", out.len()).into())
        }
    }
}
