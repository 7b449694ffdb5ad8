//! The awaited waits across real processes (children started with shmkit-process), on
//! both tokio runtimes: a queue fed by a child, a pipe round trip, an event set by a
//! child, `join`, pool results, the SPSC ring; a peer SIGKILLed mid-wait; thousands of
//! futures dropped mid-wait while messages flow; more words than one waker thread takes
//! (tests/scale.rs: 1000 tasks on 100 queues, in a process of its own). Every wait is
//! bounded by `tokio::time::timeout` (a hit fails the test); every segment is anonymous
//! or uniquely named and gone at the end.

#![cfg(not(any(miri, shmkit_loom)))] // real processes and syscalls (loom: tests/loom_waiter.rs)

use shmkit_async::Async;
use shmkit_pool::Pool;
use shmkit_process::{Process, ProcessError};
use shmkit_ring::spsc::{self, Consumer, Producer};
use shmkit_ring::{Connection, Error, Pipe, PodQueue, Queue, TrySendError};
use shmkit_sync::{Barrier, Event, Handle, Semaphore, SpinPolicy};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::timeout;

shmkit_process::test_support!();

use shmkit_testing::runtime::{LONG, bounded, multi_thread, on_both};
use shmkit_testing::unique;

fn put_after((q, start, n, pause_ms): (Queue<u64>, u64, u64, u64)) -> u64 {
    // The pause makes the parent's first get wait (sleep and be woken), not find the
    // item at once.
    std::thread::sleep(Duration::from_millis(pause_ms));
    for i in start..start + n {
        q.put(&i).unwrap();
    }
    n
}

/// A `BusyPoll` or `Backoff` queue: its producer wakes nobody, so the awaited `get`
/// polls through the runtime; every item still arrives, in order, then `Disconnected`.
#[test]
fn awaited_get_on_polling_queues() {
    use shmkit_ring::WaitStrategy;
    for strategy in [WaitStrategy::BusyPoll, WaitStrategy::Backoff] {
        on_both(|| async move {
            let q = Queue::<u64>::builder().wait(strategy).create().unwrap();
            let mut child = shmkit_process::spawn(put_after, (q.clone(), 0, 500, 50)).unwrap();
            let q = Async::new(q);
            for i in 0..500 {
                assert_eq!(bounded(q.get()).await.unwrap(), i, "{strategy}");
            }
            assert_eq!(child.join_timeout(LONG).unwrap(), 500);
            assert!(matches!(bounded(q.get()).await, Err(Error::Disconnected)));
        });
    }
}

#[test]
fn queue_get_awaits_items_put_by_a_child() {
    on_both(|| async {
        let q = Queue::<u64>::new().unwrap();
        let child = shmkit_process::spawn(put_after, (q.clone(), 0, 1000, 50)).unwrap();
        let q = Async::new(q);
        for i in 0..1000 {
            assert_eq!(bounded(q.get()).await.unwrap(), i);
        }
        // The child put and left: nobody else can put.
        let mut child = Async::new(child);
        assert_eq!(bounded(child.join()).await.unwrap(), 1000);
        assert!(matches!(bounded(q.get()).await, Err(Error::Disconnected)));
    });
}

fn get_n((q, n): (Queue<u64>, u64)) -> u64 {
    (0..n).map(|_| q.get_timeout(LONG).unwrap()).sum()
}

#[test]
fn queue_put_awaits_room_taken_by_a_child() {
    on_both(|| async {
        let q = Queue::<u64>::builder().maxsize(4).create().unwrap();
        let child = shmkit_process::spawn(get_n, (q.clone(), 500)).unwrap();
        let q = Async::new(q);
        for i in 0..500 {
            bounded(q.put(&i)).await.unwrap();
        }
        assert_eq!(
            bounded(Async::new(child).join()).await.unwrap(),
            499 * 500 / 2
        );
    });
}

fn work_and_mark_done((q, n): (Queue<u64>, u64)) {
    for _ in 0..n {
        q.get_timeout(LONG).unwrap();
        std::thread::sleep(Duration::from_millis(1));
        q.task_done().unwrap();
    }
}

#[test]
fn queue_join_awaits_task_done_from_a_child() {
    on_both(|| async {
        let q = Async::new(Queue::<u64>::new().unwrap());
        for i in 0..20 {
            q.put(&i).await.unwrap();
        }
        let child = shmkit_process::spawn(work_and_mark_done, (q.clone(), 20)).unwrap();
        // Not done yet (the child needs 20 ms at least): a join dropped mid-wait changes
        // nothing. No spin, so the first poll registers at once.
        let q = Async::new(q.into_inner()).spin_policy(SpinPolicy::NEVER);
        let early = timeout(Duration::from_millis(2), q.join()).await;
        assert!(early.is_err(), "{early:?} {} {}", q.len(), q.is_empty());
        bounded(q.join()).await.unwrap();
        bounded(Async::new(child).join()).await.unwrap();
    });
}

fn pod_put((q, n): (PodQueue<u64>, u64)) {
    std::thread::sleep(Duration::from_millis(30));
    for i in 0..n {
        q.put_timeout(&i, LONG).unwrap();
    }
}

#[test]
fn pod_queue_get_and_put_across_processes() {
    on_both(|| async {
        let q = PodQueue::<u64>::anonymous(8).unwrap();
        let child = shmkit_process::spawn(pod_put, (q.clone(), 2000)).unwrap();
        let q = Async::new(q);
        for i in 0..2000 {
            assert_eq!(bounded(q.get()).await.unwrap(), i);
        }
        bounded(Async::new(child).join()).await.unwrap();
        // Full, then room made by another handle: put waits, then goes through. (With
        // no other handle left, a put on a full queue is `Disconnected`, as blocking.)
        let other = Async::new(q.try_clone().unwrap());
        for i in 0..8 {
            bounded(q.put(&i)).await.unwrap();
        }
        assert!(matches!(q.try_put(&9), Err(TrySendError::Full)));
        let (a, b) = tokio::join!(q.put(&9), other.get());
        a.unwrap();
        assert_eq!(b.unwrap(), 0);
        drop(other);
        assert!(matches!(
            bounded(q.put(&10)).await,
            Err(Error::Disconnected)
        ));
    });
}

fn echo(conn: Connection) -> u64 {
    let mut n = 0;
    loop {
        match conn.recv::<(u64, String)>() {
            Ok(m) => {
                conn.send(&m).unwrap();
                n += 1;
            }
            Err(Error::Disconnected) => return n,
            Err(e) => panic!("{e}"),
        }
    }
}

#[test]
fn connection_round_trips_with_a_child() {
    on_both(|| async {
        let (a, b) = Pipe::new().unwrap();
        let child = shmkit_process::spawn(echo, b.transfer()).unwrap();
        let a = Async::new(a);
        for i in 0..1000u64 {
            bounded(a.send(&(i, format!("msg {i}")))).await.unwrap();
            let back: (u64, String) = bounded(a.recv()).await.unwrap();
            assert_eq!(back, (i, format!("msg {i}")));
        }
        a.close();
        assert_eq!(bounded(Async::new(child).join()).await.unwrap(), 1000);
    });
}

fn spsc_echo((mut rx, mut tx, n): (Consumer, Producer, u64)) {
    let mut buf = Vec::new();
    for _ in 0..n {
        rx.recv_into_timeout(&mut buf, LONG).unwrap();
        tx.send_timeout(&buf, LONG).unwrap();
    }
}

#[test]
fn spsc_recv_read_and_send_when_full() {
    on_both(|| async {
        let (tx1, rx1) = spsc::channel(&unique("spsc-out"), 256).unwrap();
        let (tx2, rx2) = spsc::channel(&unique("spsc-back"), 256).unwrap();
        let n = 2000u64;
        let child = shmkit_process::spawn(spsc_echo, (rx1.transfer(), tx2.transfer(), n)).unwrap();
        let (mut tx, mut rx) = (Async::new(tx1), Async::new(rx2));
        // The sender runs ahead of the echo, filling the 256-byte rings (send waits);
        // the receiver alternates copy-out and zero-copy reads.
        let send = async {
            for i in 0..n {
                bounded(tx.send(&i.to_le_bytes())).await.unwrap();
            }
        };
        let recv = async {
            let mut buf = Vec::new();
            for i in 0..n {
                if i % 2 == 0 {
                    bounded(rx.recv_into(&mut buf)).await.unwrap();
                    assert_eq!(buf, i.to_le_bytes());
                } else {
                    let g = bounded(rx.read()).await.unwrap();
                    assert_eq!(&*g, i.to_le_bytes());
                    g.release();
                }
            }
        };
        tokio::join!(send, recv);
        bounded(Async::new(child).join()).await.unwrap();
        // The echo's producer is gone: the next recv says so.
        assert!(matches!(
            bounded(rx.recv_vec()).await,
            Err(Error::Disconnected)
        ));
    });
}

fn set_after((ev, ms): (Handle<Event>, u64)) {
    std::thread::sleep(Duration::from_millis(ms));
    ev.open().unwrap().set();
}

#[test]
fn event_wait_is_woken_by_a_child() {
    on_both(|| async {
        let ev = Async::new(Event::anonymous().unwrap());
        let child = shmkit_process::spawn(set_after, (ev.handle(), 50)).unwrap();
        // Two waiters on the same word, one of them cancelled first.
        assert!(
            timeout(Duration::from_millis(5), ev.wait()).await.is_err(),
            "not set yet"
        );
        tokio::join!(bounded(ev.wait()), bounded(ev.wait()));
        assert!(ev.is_set());
        bounded(Async::new(child).join()).await.unwrap();
    });
}

fn release_n((sem, n): (Handle<Semaphore>, u32)) {
    let sem = sem.open().unwrap();
    for _ in 0..n {
        std::thread::sleep(Duration::from_millis(2));
        sem.release();
    }
}

#[test]
fn semaphore_acquire_takes_permits_released_by_a_child() {
    on_both(|| async {
        let sem = Arc::new(Async::new(Semaphore::anonymous(0).unwrap()));
        let child = shmkit_process::spawn(release_n, (sem.handle(), 20)).unwrap();
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let sem = Arc::clone(&sem);
                tokio::spawn(async move {
                    for _ in 0..5 {
                        bounded(sem.acquire()).await;
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(sem.value(), 0);
        bounded(Async::new(child).join()).await.unwrap();
    });
}

fn barrier_wait((b, ms): (Handle<Barrier>, u64)) -> Result<u32, String> {
    std::thread::sleep(Duration::from_millis(ms));
    b.open()
        .unwrap()
        .wait_timeout(LONG)
        .map_err(|e| e.to_string())
}

#[test]
fn barrier_wait_meets_children_and_a_cancelled_wait_breaks_it() {
    on_both(|| async {
        let b = Async::new(Barrier::anonymous(3).unwrap());
        let kids: Vec<_> = [10, 40]
            .into_iter()
            .map(|ms| shmkit_process::spawn(barrier_wait, (b.handle(), ms)).unwrap())
            .collect();
        let mut seen = vec![bounded(b.wait()).await.unwrap()];
        for k in kids {
            seen.push(bounded(Async::new(k).join()).await.unwrap().unwrap());
        }
        seen.sort_unstable();
        assert_eq!(seen, [0, 1, 2]);

        // A wait dropped while the others are still to come breaks the barrier, as a
        // blocking wait_timeout running out does: the late child hears of it.
        let b = Async::new(Barrier::anonymous(2).unwrap());
        assert!(timeout(Duration::from_millis(20), b.wait()).await.is_err());
        let late = shmkit_process::spawn(barrier_wait, (b.handle(), 0)).unwrap();
        let err = bounded(Async::new(late).join()).await.unwrap().unwrap_err();
        assert!(err.contains("is broken"), "{err}");
        assert!(matches!(
            bounded(b.wait()).await,
            Err(shmkit_sync::Error::BrokenBarrier { .. })
        ));
    });
}

fn sleep_then_return(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms * 2
}

fn hang(_: ()) {
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

#[test]
fn process_join_returns_the_result_or_the_death() {
    on_both(|| async {
        let mut p = Async::new(shmkit_process::spawn(sleep_then_return, 30).unwrap());
        // A join cancelled mid-wait leaves the process joinable.
        assert!(timeout(Duration::from_millis(1), p.join()).await.is_err());
        assert_eq!(bounded(p.join()).await.unwrap(), 60);
        assert!(matches!(
            p.join().await,
            Err(ProcessError::AlreadyJoined { .. })
        ));
        let mut h: Async<Process<()>> = Async::new(shmkit_process::spawn(hang, ()).unwrap());
        h.kill().unwrap();
        assert!(matches!(
            bounded(h.join()).await,
            Err(ProcessError::Signaled { .. })
        ));
    });
}

fn square(x: u64) -> u64 {
    x * x
}

#[test]
fn pool_results_are_awaited() {
    let pool = Pool::with_processes(2).unwrap();
    let pool = &pool;
    on_both(|| async move {
        let r = Async::new(pool.apply_async(square, 7).unwrap());
        assert_eq!(bounded(r.get()).await.unwrap(), 49);
        let m = Async::new(pool.map_async(square, 0..100u64).unwrap());
        let want: Vec<u64> = (0..100).map(|x| x * x).collect();
        assert_eq!(bounded(m.get()).await.unwrap(), want);
        let mut it = Async::new(pool.imap(square, 0..50u64).unwrap());
        let mut got = Vec::new();
        while let Some(v) = bounded(next(&mut it)).await {
            got.push(v.unwrap());
        }
        assert_eq!(got, want[..50]);
        let mut it = Async::new(pool.imap_unordered(square, 0..50u64).unwrap());
        let mut got = Vec::new();
        while let Some(v) = bounded(next(&mut it)).await {
            got.push(v.unwrap());
        }
        got.sort_unstable();
        assert_eq!(got, want[..50]);
    });
}

/// `StreamExt::next` without a dependency for it.
async fn next<S: futures_core::Stream + Unpin>(s: &mut S) -> Option<S::Item> {
    std::future::poll_fn(|cx| std::pin::Pin::new(&mut *s).poll_next(cx)).await
}

fn put_one_then_hang(q: Queue<u64>) {
    q.put(&1).unwrap();
    hang(());
}

fn send_one_then_hang(c: Connection) {
    c.send(&1u64).unwrap();
    hang(());
}

#[test]
fn a_killed_producer_ends_an_awaited_get_with_disconnected() {
    on_both(|| async {
        let q = Queue::<u64>::new().unwrap();
        let child = shmkit_process::spawn(put_one_then_hang, q.clone()).unwrap();
        let q = Async::new(q);
        assert_eq!(bounded(q.get()).await.unwrap(), 1);
        let getter = q.get();
        tokio::pin!(getter);
        // Waiting now (nothing there, the producer lives).
        assert!(
            timeout(Duration::from_millis(20), &mut getter)
                .await
                .is_err()
        );
        child.kill().unwrap();
        assert!(matches!(bounded(getter).await, Err(Error::Disconnected)));

        let (a, b) = Pipe::new().unwrap();
        let child = shmkit_process::spawn(send_one_then_hang, b.transfer()).unwrap();
        let a = Async::new(a);
        assert_eq!(bounded(a.recv::<u64>()).await.unwrap(), 1);
        child.kill().unwrap();
        assert!(matches!(
            bounded(a.recv::<u64>()).await,
            Err(Error::Disconnected)
        ));
    });
}

fn put_paced((q, id, n): (Queue<(u32, u64)>, u32, u64)) {
    for i in 0..n {
        q.put(&(id, i)).unwrap();
        if i % 4 == 3 {
            // Gaps in the stream, so the consumer's futures wait (and are dropped
            // mid-wait) between bursts.
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

#[test]
fn futures_dropped_mid_wait_lose_no_message() {
    on_both(|| async {
        let q = Queue::<(u32, u64)>::new().unwrap();
        let per = 2000u64;
        let kids: Vec<_> = (0..2)
            .map(|id| shmkit_process::spawn(put_paced, (q.clone(), id, per)).unwrap())
            .collect();
        // No spinning or yielding before a sleep: every get that is not ready at once
        // registers with the waker thread, so each one dropped was dropped mid-wait.
        let q = Async::new(q).spin_policy(SpinPolicy::NEVER);
        let mut next_of = [0u64; 2];
        let mut dropped = 0u64;
        let mut round = 0u64;
        let all = async {
            while next_of.iter().sum::<u64>() < 2 * per {
                round += 1;
                // Most rounds race the get against a yield (the get is dropped if it is
                // still waiting on its second poll), one in eight against a 1 ms timer.
                let got = if !round.is_multiple_of(8) {
                    tokio::select! {
                        biased;
                        r = q.get() => Some(r),
                        _ = tokio::task::yield_now() => None,
                    }
                } else {
                    tokio::select! {
                        r = q.get() => Some(r),
                        _ = tokio::time::sleep(Duration::from_millis(1)) => None,
                    }
                };
                match got {
                    Some(r) => {
                        let (id, i) = r.unwrap();
                        assert_eq!(
                            i, next_of[id as usize],
                            "producer {id}: out of order or twice"
                        );
                        next_of[id as usize] += 1;
                    }
                    None => dropped += 1,
                }
            }
        };
        bounded(all).await;
        for k in kids {
            bounded(Async::new(k).join()).await.unwrap();
        }
        assert!(matches!(bounded(q.get()).await, Err(Error::Disconnected)));
        assert!(
            dropped >= 1000,
            "only {dropped} futures were dropped mid-wait"
        );
        eprintln!(
            "{dropped} get futures dropped mid-wait, {} messages each delivered once",
            2 * per
        );
    });
}

/// More distinct words than one `futex_waitv` takes (127 + the control word): a second
/// waker thread starts, and every task is still woken.
#[test]
fn more_than_127_awaited_words_start_another_waker_thread() {
    multi_thread().block_on(async {
        let n = 140;
        // (the awaited handle, a second handle that puts)
        type Pair = (Arc<Async<Queue<u64>>>, Queue<u64>);
        let pairs: Vec<Pair> = (0..n)
            .map(|_| {
                let q = Queue::<u64>::new().unwrap();
                let producer = q.clone(); // a second handle, so the queue stays open
                (
                    Arc::new(Async::new(q).spin_policy(SpinPolicy::NEVER)),
                    producer,
                )
            })
            .collect();
        let tasks: Vec<_> = pairs
            .iter()
            .map(|(q, _)| {
                let q = Arc::clone(q);
                tokio::spawn(async move { q.get().await.unwrap() })
            })
            .collect();
        bounded(async {
            while shmkit_async::waker_threads() < 2 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
        .await;
        for (i, (_, p)) in pairs.iter().enumerate() {
            p.put(&(i as u64)).unwrap();
        }
        let mut sum = 0;
        for t in tasks {
            sum += bounded(t).await.unwrap();
        }
        assert_eq!(sum, (0..n as u64).sum::<u64>());
    });
}
