//! The waker thread ("reactor"): one per process, started on the first wait that has to
//! sleep, sleeping in `futex_waitv` on the futex words its pending futures wait for, and
//! waking those futures' tasks when a word changes.
//!
//! A future that must sleep has already done the sleeper's half of the word's protocol
//! (raised the waiter flag or count, re-checked its condition) and read the word's value
//! `v`; it [`register`](Registration::park)s `(word, v, waker)`. The reactor waits for
//! every registered word to leave its value: a waker in any process that bumps the word
//! and calls `FUTEX_WAKE` wakes the reactor (it is queued on the word in the kernel like
//! any blocking sleeper); a word that changed between the registration and the reactor's
//! call makes `futex_waitv` return at once. Either way the word's tasks are woken and
//! re-poll: a registration never misses a change that happened after its value was read.
//!
//! Registrations on one word with one value share one entry. A process-private control
//! word wakes the reactor when an entry is added. Entries are spread over threads of at
//! most 127 words each (`futex_waitv` takes 128, one is the control word): a process
//! awaiting more than 127 distinct words runs more than one waker thread.
//!
//! The reactor never dereferences a registered word: it hands the addresses to the
//! kernel, which reads them fault-tolerantly, and after an `EAGAIN` (some word changed,
//! the call does not say which) asks the kernel about each word (`FUTEX_WAIT` with a zero
//! timeout). So a future that is leaked instead of dropped, leaving its registration
//! behind while the memory under the word is unmapped, costs a spurious wake-up, never a
//! fault.
//!
//! Liveness: a dead peer wakes nobody. While anything is registered the reactor sleeps at
//! most [`SLICE`]; registrations older than that are woken, so their futures ask the
//! kernel whether the peer lives. With nothing registered it sleeps without a timeout.

use crate::primitive::{AtomicU32, Ordering};
use crate::sys::{self, WAITV_MAX, Waitv, WaitvEntry};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::task::Waker;
use std::time::{Duration, Instant};

/// How long a registration waits before its future is woken to check its peer's
/// liveness: the bound on how late a dead peer is noticed (the blocking API's slice is
/// 20 ms; an async server may hold thousands of waits, so each checks less often).
pub const SLICE: Duration = Duration::from_millis(100);

/// Words per waker thread: `futex_waitv`'s limit less the control word.
const WORDS_PER_THREAD: usize = WAITV_MAX - 1;

/// One task waiting on a word.
struct Waiter {
    id: u64,
    waker: Waker,
    since: Instant,
}

/// The tasks waiting on one word while it holds `val`.
struct Word {
    val: u32,
    thread: usize,
    waiters: Vec<Waiter>,
}

/// One waker thread's control word (bumped and woken when its set of words grows).
struct Thread {
    ctl: AtomicU32,
}

#[derive(Default)]
struct Table {
    words: HashMap<usize, Word>,
    /// Words per thread, indexed like `threads`.
    counts: Vec<usize>,
    threads: Vec<Arc<Thread>>,
    next_id: u64,
    /// Set when `futex_waitv` is refused: the threads then poll (see `run`).
    unsupported: bool,
}

struct Reactor {
    table: Mutex<Table>,
}

fn reactor() -> &'static Reactor {
    static R: OnceLock<Reactor> = OnceLock::new();
    R.get_or_init(|| Reactor {
        table: Mutex::new(Table::default()),
    })
}

fn lock() -> MutexGuard<'static, Table> {
    reactor().table.lock().unwrap_or_else(|p| p.into_inner())
}

fn kick(t: &Thread) {
    t.ctl.fetch_add(1, Ordering::SeqCst);
    sys::wake_private(&t.ctl);
}

impl Table {
    /// A thread with room for one more word (started if none has).
    fn thread_with_room(&mut self) -> usize {
        if let Some(i) = self.counts.iter().position(|&c| c < WORDS_PER_THREAD) {
            return i;
        }
        let i = self.threads.len();
        let t = Arc::new(Thread {
            ctl: AtomicU32::new(0),
        });
        self.threads.push(Arc::clone(&t));
        self.counts.push(0);
        std::thread::Builder::new()
            .name(format!("shmkit-waker-{i}"))
            .spawn(move || run(i, &t))
            .expect("shmkit-async: could not start a waker thread");
        i
    }

    /// Remove waiter `id` from `addr`'s entry (and the entry, once empty).
    fn remove(&mut self, addr: usize, id: u64) {
        if let Some(w) = self.words.get_mut(&addr) {
            w.waiters.retain(|x| x.id != id);
            if w.waiters.is_empty() {
                let t = w.thread;
                self.words.remove(&addr);
                self.counts[t] -= 1;
            }
        }
    }

    /// Wake every waiter of `addr` and drop the entry.
    fn wake_word(&mut self, addr: usize) {
        if let Some(w) = self.words.remove(&addr) {
            self.counts[w.thread] -= 1;
            for x in w.waiters {
                x.waker.wake();
            }
        }
    }
}

/// A task's place in the reactor's table: held by a pending future, removed when it is
/// dropped (cancel safety: a dropped future leaves nothing behind).
#[derive(Debug, Default)]
pub(crate) struct Registration {
    /// `(word address, value, id)` while registered.
    at: Option<(usize, u32, u64)>,
}

impl Registration {
    /// Have the task of `waker` woken once `word` no longer holds `val` (which the caller
    /// read after announcing itself to the word's wakers). Replaces any earlier
    /// registration of this future. Returns `false` if `word` no longer holds `val`
    /// already: the caller re-polls instead of sleeping.
    pub(crate) fn park(&mut self, word: &AtomicU32, val: u32, waker: &Waker) -> bool {
        let addr = word.as_ptr() as usize;
        let mut t = lock();
        if let Some((a, v, id)) = self.at {
            if a == addr && v == val {
                // Still registered (the reactor has not woken us): refresh the waker.
                if let Some(x) = t
                    .words
                    .get_mut(&addr)
                    .and_then(|w| w.waiters.iter_mut().find(|x| x.id == id))
                {
                    if !x.waker.will_wake(waker) {
                        x.waker = waker.clone();
                    }
                    return true;
                }
            }
            t.remove(a, id);
            self.at = None;
        }
        // Relaxed: a re-check of a value the caller read with the protocol's ordering;
        // the word is borrowed by the caller, so it is mapped.
        if word.load(Ordering::Relaxed) != val {
            return false;
        }
        let id = t.next_id;
        t.next_id += 1;
        let waiter = Waiter {
            id,
            waker: waker.clone(),
            since: Instant::now(),
        };
        let kick_thread = match t.words.get_mut(&addr) {
            Some(w) if w.val == val => {
                // The entry's thread already waits on (or is about to wait on) this
                // word with this value.
                w.waiters.push(waiter);
                None
            }
            Some(w) => {
                // The entry was made with an older value (the word holds ours now):
                // those tasks must re-poll.
                w.val = val;
                for x in std::mem::take(&mut w.waiters) {
                    x.waker.wake();
                }
                w.waiters.push(waiter);
                Some(w.thread)
            }
            None => {
                let th = t.thread_with_room();
                t.counts[th] += 1;
                t.words.insert(
                    addr,
                    Word {
                        val,
                        thread: th,
                        waiters: vec![waiter],
                    },
                );
                Some(th)
            }
        };
        self.at = Some((addr, val, id));
        let th = kick_thread.map(|i| Arc::clone(&t.threads[i]));
        drop(t);
        if let Some(th) = th {
            kick(&th);
        }
        true
    }

    /// Leave the table (done, or dropped).
    #[inline]
    pub(crate) fn clear(&mut self) {
        if let Some((a, _, id)) = self.at.take() {
            lock().remove(a, id);
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.clear();
    }
}

/// Words a waker thread is currently waiting on; how many threads exist (tests).
#[doc(hidden)]
pub fn waker_threads() -> usize {
    lock().threads.len()
}

/// The body of waker thread `me`.
fn run(me: usize, th: &Thread) {
    let mut list: Vec<WaitvEntry> = Vec::with_capacity(WAITV_MAX);
    let mut words: Vec<(usize, u32)> = Vec::with_capacity(WORDS_PER_THREAD);
    loop {
        let ctl = th.ctl.load(Ordering::SeqCst);
        words.clear();
        let unsupported = {
            let t = lock();
            words.extend(
                t.words
                    .iter()
                    .filter(|(_, w)| w.thread == me)
                    .map(|(&a, w)| (a, w.val)),
            );
            t.unsupported
        };
        if words.is_empty() {
            // Nothing to wait for: sleep until a registration kicks us, no timeout.
            sys::wait_private(&th.ctl, ctl, None);
            continue;
        }
        let mut changed: Vec<usize> = Vec::new();
        if unsupported {
            // No futex_waitv (a kernel before 5.16, or a seccomp filter): poll every
            // millisecond, asking the kernel about each word. Documented in docs/async.md.
            sys::wait_private(&th.ctl, ctl, Some(Duration::from_millis(1)));
            changed.extend(
                words
                    .iter()
                    .filter(|&&(a, v)| !sys::still_holds(a, v))
                    .map(|&(a, _)| a),
            );
        } else {
            list.clear();
            list.push(WaitvEntry::private(&th.ctl, ctl));
            list.extend(words.iter().map(|&(a, v)| WaitvEntry::shared(a, v)));
            match sys::waitv(&list, Some(SLICE)) {
                Waitv::Woken(0) | Waitv::TimedOut | Waitv::Interrupted => {}
                Waitv::Woken(i) => changed.push(words[i - 1].0),
                Waitv::Changed => changed.extend(
                    words
                        .iter()
                        .filter(|&&(a, v)| !sys::still_holds(a, v))
                        .map(|&(a, _)| a),
                ),
                Waitv::Unsupported => lock().unsupported = true,
            }
        }
        let mut t = lock();
        for a in changed {
            // Only if the entry still waits for the value we waited on (a newer
            // registration may have replaced it).
            if words
                .iter()
                .any(|&(w, v)| w == a && t.words.get(&a).is_some_and(|e| e.val == v))
            {
                t.wake_word(a);
            }
        }
        // Registrations older than a slice: woken to check their peer's liveness.
        let now = Instant::now();
        let mut emptied = Vec::new();
        for (&a, w) in t.words.iter_mut().filter(|(_, w)| w.thread == me) {
            w.waiters.retain(|x| {
                let old = now.duration_since(x.since) >= SLICE;
                if old {
                    x.waker.wake_by_ref();
                }
                !old
            });
            if w.waiters.is_empty() {
                emptied.push(a);
            }
        }
        for a in emptied {
            t.words.remove(&a);
            t.counts[me] -= 1;
        }
    }
}
