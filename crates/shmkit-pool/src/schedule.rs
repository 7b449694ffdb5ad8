//! The pool's decisions, without I/O: which chunk goes to which worker, how many a
//! worker may hold, and after a worker's death which of its chunks fail and which are
//! sent again. The collector ([`crate::collector`]) does what this decides — encodes and
//! sends, reads outcomes, buries workers — and tells it what happened.
//!
//! The scheduler queues the pending chunks themselves (anything with an id: [`Queued`])
//! and knows the chunks a worker holds by id only; the collector keeps those in a map.
//! So the rules can be checked against a model by property tests over plain ids (at the
//! end of this file).
//!
//! The rules:
//! - A worker holds at most a *window* of chunks (sent, no outcome yet): the pool's
//!   `prefetch` while chunks are quick, at most [`SLOW_PREFETCH`] while they are slow
//!   (the last outcome ran [`SLOW_CHUNK`] or longer) and before the first outcome, so
//!   slow tasks spread evenly instead of queueing behind one worker.
//! - Pending chunks go, oldest first, to the least-loaded open worker with room (the
//!   first such worker on a tie), at most [`SEND_BATCH`] per message batch, never
//!   beyond a worker's `maxtasksperchild` quota. A worker whose ring took fewer than
//!   offered is not offered more in the same round.
//! - A worker runs its chunks in the order sent and says (its "started" word) which one
//!   it began last. When it dies, that chunk and those before it ran (their outcomes
//!   died with it): they fail. Those after it never started: they go back to the front
//!   of the pending chunks, in their order.

use std::collections::VecDeque;
use std::time::Duration;

/// Chunks a worker may hold at once by default (running plus queued in its ring) while
/// chunks are quick: enough that it never waits for the pool between two small tasks.
pub(crate) const DEFAULT_PREFETCH: usize = 16;

/// Chunks a worker may hold at once while chunks are slow ([`SLOW_CHUNK`] or more):
/// slow tasks then spread evenly over the workers instead of queueing behind one.
pub(crate) const SLOW_PREFETCH: usize = 2;

/// A chunk that runs this long or longer is slow (see [`SLOW_PREFETCH`]).
pub(crate) const SLOW_CHUNK: Duration = Duration::from_micros(200);

/// Most chunks sent to one worker in one batch (more delays the first of them).
pub(crate) const SEND_BATCH: usize = 4;

/// What the scheduler queues: something with a chunk id.
pub(crate) trait Queued {
    /// The chunk's id, unique in its pool.
    fn id(&self) -> u64;
}

impl Queued for u64 {
    fn id(&self) -> u64 {
        *self
    }
}

/// What the pool knows of one worker slot.
#[derive(Debug, Default, Clone)]
struct Load {
    /// It takes chunks (a live worker whose task ring the pool holds).
    open: bool,
    /// Ids of the chunks sent to it without an outcome yet, in the order sent.
    sent: VecDeque<u64>,
    /// Chunks it will still accept before it retires (`maxtasksperchild`).
    quota: Option<u64>,
    /// Its ring took fewer chunks than offered this round.
    full: bool,
}

/// A send the scheduler asks for: the first `count` pending chunks to `worker`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Send {
    pub worker: usize,
    pub count: usize,
}

/// What became of a dead worker's chunks.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Death {
    /// They ran (or were running): their outcomes died with the worker.
    pub failed: Vec<u64>,
    /// They never started: they go back to the front of the pending chunks, in this
    /// order ([`Scheduler::requeue`]).
    pub again: Vec<u64>,
}

/// The decisions of one pool; see the module documentation for the rules.
#[derive(Debug)]
pub(crate) struct Scheduler<C> {
    prefetch: usize,
    max_tasks: Option<u64>,
    /// The last outcome says chunks are quick: workers may hold `prefetch`.
    quick: bool,
    workers: Vec<Load>,
    pending: VecDeque<C>,
}

impl<C: Queued> Scheduler<C> {
    /// A pool of `workers` slots, none open yet.
    pub(crate) fn new(workers: usize, prefetch: usize, max_tasks: Option<u64>) -> Self {
        Scheduler {
            prefetch: prefetch.max(1),
            max_tasks,
            quick: false,
            workers: vec![Load::default(); workers],
            pending: VecDeque::new(),
        }
    }

    /// Chunks to run, after those already pending.
    pub(crate) fn submit(&mut self, chunks: impl IntoIterator<Item = C>) {
        self.pending.extend(chunks);
    }

    /// Chunks a dead worker never started ([`Death::again`], in that order): they run
    /// before every other pending chunk.
    pub(crate) fn requeue(&mut self, chunks: Vec<C>) {
        for c in chunks.into_iter().rev() {
            self.pending.push_front(c);
        }
    }

    /// A (new) worker in `slot` takes chunks; it holds none yet.
    pub(crate) fn started(&mut self, slot: usize) {
        let w = &mut self.workers[slot];
        w.open = true;
        w.sent.clear();
        w.quota = self.max_tasks;
        w.full = false;
    }

    /// The most chunks a worker may hold now.
    pub(crate) fn window(&self) -> usize {
        if self.quick {
            self.prefetch
        } else {
            self.prefetch.min(SLOW_PREFETCH)
        }
    }

    /// Start a round of sends: every open worker may be offered chunks again.
    pub(crate) fn begin_round(&mut self) {
        for w in &mut self.workers {
            w.full = false;
        }
    }

    /// The next send of this round, if any: the least-loaded open worker with room (the
    /// first on a tie) gets up to [`SEND_BATCH`] of the oldest pending chunks.
    pub(crate) fn next_send(&self) -> Option<Send> {
        if self.pending.is_empty() {
            return None;
        }
        let window = self.window();
        let (worker, w) = self
            .workers
            .iter()
            .enumerate()
            .filter(|(_, w)| {
                w.open && !w.full && w.sent.len() < window && w.quota.is_none_or(|q| q > 0)
            })
            .min_by_key(|(_, w)| w.sent.len())?;
        let count = (window - w.sent.len())
            .min(w.quota.map_or(usize::MAX, |q| q as usize))
            .min(self.pending.len())
            .min(SEND_BATCH);
        Some(Send { worker, count })
    }

    /// The first `count` pending chunks (what a [`Send`] sends).
    pub(crate) fn front(&self, count: usize) -> impl Iterator<Item = &C> + '_ {
        self.pending.iter().take(count)
    }

    /// `send` went out and its worker's ring took the first `accepted` chunks: they are
    /// that worker's now, and `held` keeps each. Fewer than asked: the ring is full (or
    /// gone) for this round.
    pub(crate) fn sent(&mut self, send: Send, accepted: usize, mut held: impl FnMut(C)) {
        let w = &mut self.workers[send.worker];
        for _ in 0..accepted.min(send.count) {
            let Some(chunk) = self.pending.pop_front() else {
                break;
            };
            w.sent.push_back(chunk.id());
            held(chunk);
            if let Some(q) = &mut w.quota {
                *q = q.saturating_sub(1);
            }
        }
        if accepted < send.count {
            w.full = true;
        }
    }

    /// Worker `slot` answered chunk `id` after running it `ran` long. Whether it had
    /// that chunk (an outcome for a chunk it does not hold changes nothing).
    pub(crate) fn outcome(&mut self, slot: usize, id: u64, ran: Duration) -> bool {
        self.quick = ran < SLOW_CHUNK;
        let sent = &mut self.workers[slot].sent;
        // The worker answers in the order sent: nearly always the front.
        if sent.front() == Some(&id) {
            sent.pop_front();
            true
        } else if let Some(pos) = sent.iter().position(|&c| c == id) {
            sent.remove(pos);
            true
        } else {
            false
        }
    }

    /// Worker `slot` died; `started` is its "started" word (the id + 1 of the chunk it
    /// began last, 0: none). Its slot takes nothing until [`started`](Self::started).
    /// The caller requeues [`Death::again`] ([`requeue`](Self::requeue)).
    pub(crate) fn died(&mut self, slot: usize, started: u64) -> Death {
        let w = &mut self.workers[slot];
        w.open = false;
        let sent: Vec<u64> = w.sent.drain(..).collect();
        let last_started = sent.iter().position(|&id| started == id.wrapping_add(1));
        let mut death = Death::default();
        for (n, id) in sent.into_iter().enumerate() {
            if last_started.is_some_and(|last| n <= last) {
                death.failed.push(id);
            } else {
                death.again.push(id);
            }
        }
        death
    }

    /// No worker takes chunks any more (close, after the last outcome).
    pub(crate) fn close_all(&mut self) {
        for w in &mut self.workers {
            w.open = false;
        }
    }

    /// Stop: forget every chunk; those pending, and the ids of those workers held.
    pub(crate) fn take_all(&mut self) -> (Vec<C>, Vec<u64>) {
        let pending = self.pending.drain(..).collect();
        let mut held = Vec::new();
        for w in &mut self.workers {
            w.open = false;
            held.extend(w.sent.drain(..));
        }
        (pending, held)
    }

    /// Nothing pending and no worker holds a chunk.
    pub(crate) fn is_idle(&self) -> bool {
        self.pending.is_empty() && self.workers.iter().all(|w| w.sent.is_empty())
    }

    /// Chunks waiting for a worker.
    #[cfg(test)]
    fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Take every pending chunk (to fail them: nothing would run them).
    pub(crate) fn take_pending(&mut self) -> Vec<C> {
        self.pending.drain(..).collect()
    }

    /// The chunks worker `slot` holds, in the order sent.
    #[cfg(test)]
    fn held(&self, slot: usize) -> impl Iterator<Item = u64> + '_ {
        self.workers[slot].sent.iter().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    /// One step of a random pool's life.
    #[derive(Debug, Clone)]
    enum Step {
        /// Submit this many chunks.
        Submit(u8),
        /// A round of sends; each ring takes at most this many chunks per send.
        Round(Vec<u8>),
        /// Worker `w % n` answers its oldest chunk (or one further back), quick or slow.
        Answer { w: u8, skip: u8, slow: bool },
        /// Worker `w % n` dies having started its `k`-th chunk (`None`: none).
        Die { w: u8, k: Option<u8> },
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            (0u8..12).prop_map(Step::Submit),
            prop::collection::vec(0u8..6, 1..4).prop_map(Step::Round),
            (any::<u8>(), 0u8..3, any::<bool>()).prop_map(|(w, skip, slow)| Step::Answer {
                w,
                skip,
                slow
            }),
            (any::<u8>(), prop::option::of(0u8..20)).prop_map(|(w, k)| Step::Die { w, k }),
        ]
    }

    /// Every id ever submitted is in exactly one place: pending, held by one worker,
    /// answered, or failed.
    fn check_conservation(
        s: &Scheduler<u64>,
        submitted: u64,
        answered: &BTreeSet<u64>,
        failed: &BTreeSet<u64>,
    ) {
        let mut seen = BTreeSet::new();
        let mut places = s.pending.iter().copied().collect::<Vec<_>>();
        for w in 0..s.workers.len() {
            places.extend(s.held(w));
        }
        places.extend(answered.iter().copied());
        places.extend(failed.iter().copied());
        for id in places {
            assert!(seen.insert(id), "chunk {id} is in two places");
        }
        assert_eq!(
            seen,
            (0..submitted).collect::<BTreeSet<_>>(),
            "a chunk got lost"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        /// Whatever happens, no chunk is lost or doubled; no worker holds more than the
        /// window or beyond its quota; a send goes to a least-loaded open worker; a
        /// dead worker's chunks fail up to the one it started and the rest go back to
        /// the front of the queue in their order.
        #[test]
        fn decisions_keep_every_chunk_once(
            workers in 1usize..5,
            prefetch in 1usize..20,
            max_tasks in prop::option::of(1u64..6),
            steps in prop::collection::vec(step(), 1..80),
        ) {
            let mut s = Scheduler::<u64>::new(workers, prefetch, max_tasks);
            for w in 0..workers {
                s.started(w);
            }
            let (mut submitted, mut answered, mut failed) = (0u64, BTreeSet::new(), BTreeSet::new());
            // Chunks given to each worker since it started (the quota's count).
            let mut given = vec![0u64; workers];
            for st in steps {
                match st {
                    Step::Submit(n) => {
                        s.submit(submitted..submitted + u64::from(n));
                        submitted += u64::from(n);
                    }
                    Step::Round(takes) => {
                        s.begin_round();
                        let mut k = 0;
                        while let Some(send) = s.next_send() {
                            let window = s.window();
                            let load = |w: usize| s.workers[w].sent.len();
                            // Least loaded among the eligible, and within every bound.
                            prop_assert!(send.count >= 1 && send.count <= SEND_BATCH);
                            prop_assert!(load(send.worker) + send.count <= window);
                            for (i, w) in s.workers.iter().enumerate() {
                                let eligible = w.open && !w.full && w.sent.len() < window
                                    && w.quota.is_none_or(|q| q > 0);
                                if eligible {
                                    prop_assert!(load(send.worker) <= w.sent.len());
                                    if w.sent.len() == load(send.worker) {
                                        prop_assert!(send.worker <= i, "ties go to the first");
                                    }
                                }
                            }
                            let expected: Vec<u64> = s.pending.iter().take(send.count).copied().collect();
                            prop_assert_eq!(s.front(send.count).copied().collect::<Vec<_>>(), expected.clone());
                            let accepted = usize::from(takes[k % takes.len()]).min(send.count);
                            k += 1;
                            let mut kept = Vec::new();
                            s.sent(send, accepted, |c| kept.push(c));
                            prop_assert_eq!(&kept[..], &expected[..accepted]);
                            given[send.worker] += accepted as u64;
                            let held: Vec<u64> = s.held(send.worker).collect();
                            prop_assert!(held.ends_with(&expected[..accepted]));
                            prop_assert!(k < 10_000, "a round ends");
                        }
                        // The round ended: every open worker with room got what its ring took.
                        if s.pending() > 0 {
                            for w in &s.workers {
                                prop_assert!(
                                    !w.open || w.full || w.sent.len() >= s.window()
                                        || w.quota == Some(0)
                                );
                            }
                        }
                    }
                    Step::Answer { w, skip, slow } => {
                        let w = usize::from(w) % workers;
                        let held: Vec<u64> = s.held(w).collect();
                        if let Some(&id) = held.get(usize::from(skip).min(held.len().saturating_sub(1))) {
                            let ran = if slow { SLOW_CHUNK } else { Duration::ZERO };
                            prop_assert!(s.outcome(w, id, ran));
                            prop_assert!(!s.held(w).any(|c| c == id));
                            prop_assert_eq!(s.window(), if slow { prefetch.min(SLOW_PREFETCH) } else { prefetch });
                            answered.insert(id);
                        }
                        // An outcome for a chunk it does not hold changes nothing.
                        prop_assert!(!s.outcome(w, u64::MAX, Duration::ZERO));
                    }
                    Step::Die { w, k } => {
                        let w = usize::from(w) % workers;
                        let held: Vec<u64> = s.held(w).collect();
                        let start = k.and_then(|k| held.get(usize::from(k)).copied());
                        let before: Vec<u64> = s.pending.iter().copied().collect();
                        let death = s.died(w, start.map_or(0, |id| id + 1));
                        s.requeue(death.again.clone());
                        let cut = start.map_or(0, |id| held.iter().position(|&c| c == id).unwrap() + 1);
                        prop_assert_eq!(&death.failed[..], &held[..cut]);
                        prop_assert_eq!(&death.again[..], &held[cut..]);
                        let now: Vec<u64> = s.pending.iter().copied().collect();
                        prop_assert_eq!(now, [death.again.clone(), before].concat());
                        prop_assert_eq!(s.held(w).count(), 0);
                        failed.extend(death.failed);
                        s.started(w); // its successor
                        given[w] = 0;
                    }
                }
                for (i, w) in s.workers.iter().enumerate() {
                    prop_assert!(w.sent.len() <= prefetch);
                    if let Some(max) = max_tasks {
                        prop_assert!(given[i] <= max, "quota kept");
                        prop_assert_eq!(w.quota, Some(max - given[i]));
                    }
                }
                check_conservation(&s, submitted, &answered, &failed);
            }
            // Stopping takes every chunk not answered or failed, once.
            let (pending, held) = s.take_all();
            prop_assert!(s.is_idle());
            let all: BTreeSet<u64> = pending.into_iter().chain(held).chain(answered).chain(failed).collect();
            prop_assert_eq!(all.len() as u64, submitted);
        }
    }

    #[test]
    fn slow_chunks_narrow_the_window_and_quick_ones_widen_it() {
        let mut s = Scheduler::<u64>::new(2, 16, None);
        s.started(0);
        s.started(1);
        assert_eq!(s.window(), SLOW_PREFETCH, "before the first outcome");
        s.submit(0..40);
        s.begin_round();
        let mut sends = Vec::new();
        while let Some(send) = s.next_send() {
            s.sent(send, send.count, drop);
            sends.push(send);
        }
        // Two each, spread evenly.
        assert_eq!(
            sends,
            [
                Send {
                    worker: 0,
                    count: 2
                },
                Send {
                    worker: 1,
                    count: 2
                }
            ]
        );
        assert!(s.outcome(0, 0, Duration::from_micros(10)));
        assert_eq!(s.window(), 16);
        s.begin_round();
        let send = s.next_send().unwrap();
        assert_eq!(
            send,
            Send {
                worker: 0,
                count: SEND_BATCH
            }
        );
    }

    #[test]
    fn a_full_ring_is_skipped_for_the_rest_of_the_round() {
        let mut s = Scheduler::<u64>::new(2, 16, None);
        s.started(0);
        s.started(1);
        s.submit(0..10);
        s.begin_round();
        let first = s.next_send().unwrap();
        assert_eq!(first.worker, 0);
        s.sent(first, 0, drop); // worker 0's ring is full
        let second = s.next_send().unwrap();
        assert_eq!(second.worker, 1);
        s.sent(second, second.count, drop);
        assert_eq!(
            s.next_send(),
            None,
            "worker 1 is at the window, worker 0 full"
        );
        s.begin_round();
        assert_eq!(s.next_send().map(|s| s.worker), Some(0));
    }

    #[test]
    fn death_fails_what_ran_and_resends_the_rest_first() {
        let mut s = Scheduler::<u64>::new(1, 16, None);
        s.started(0);
        s.submit(0..6);
        s.begin_round();
        let send = s.next_send().unwrap();
        s.sent(send, 2, drop); // holds 0, 1
        s.submit(6..7);
        let death = s.died(0, 1); // it started chunk 0 (the word is id + 1)
        assert_eq!(
            death,
            Death {
                failed: vec![0],
                again: vec![1]
            }
        );
        s.requeue(death.again);
        assert_eq!(s.front(6).copied().collect::<Vec<_>>(), [1, 2, 3, 4, 5, 6]);
        assert_eq!(s.next_send(), None, "a dead worker takes nothing");
        // Died before starting anything: all of it runs elsewhere.
        s.started(0);
        s.begin_round();
        let send = s.next_send().unwrap();
        s.sent(send, 2, drop);
        assert_eq!(
            s.died(0, 0),
            Death {
                failed: vec![],
                again: vec![1, 2]
            }
        );
    }

    #[test]
    fn the_quota_limits_what_a_worker_is_given() {
        let mut s = Scheduler::<u64>::new(1, 16, Some(3));
        s.started(0);
        s.submit(0..10);
        assert!(!s.outcome(0, 99, Duration::ZERO));
        s.begin_round();
        let mut given = 0;
        while let Some(send) = s.next_send() {
            s.sent(send, send.count, drop);
            given += send.count;
        }
        assert_eq!(given, 3);
        s.started(0); // its successor has a fresh quota
        s.begin_round();
        assert!(s.next_send().is_some());
    }
}
