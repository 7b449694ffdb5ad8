//! Rings, queues and pipes across real processes (children started with
//! shmkit-process), including peers killed with SIGKILL. Every wait is bounded; every
//! segment name is unique and gone from /dev/shm at the end.

#![cfg(not(miri))] // real processes and syscalls: Miri runs the `raw_*` tests instead

use shmkit_ring::primitive::Ordering;
use shmkit_ring::spsc::{self, Consumer, Producer};
use shmkit_ring::{Connection, Error, Pipe, PodQueue, Queue, TryRecvError, TrySendError};
use shmkit_testing::{assert_unlinked, unique};
use std::time::{Duration, Instant};

shmkit_process::test_support!();

const LONG: Duration = Duration::from_secs(30);
const MANY: u64 = if cfg!(debug_assertions) {
    20_000
} else {
    1_000_000
};

fn join<R: serde::de::DeserializeOwned>(mut p: shmkit_process::Process<R>) -> R {
    p.join_timeout(LONG).expect("child finished in time")
}

fn payload(i: u64) -> Vec<u8> {
    let len = (i % 300) as usize;
    let mut v = i.to_le_bytes().to_vec();
    v.extend((0..len).map(|k| (i as usize + k) as u8));
    v
}

// --- SPSC -------------------------------------------------------------------------

fn produce(args: (Producer, u64)) -> u64 {
    let (mut tx, n) = args;
    for i in 0..n {
        tx.send_timeout(&payload(i), LONG).unwrap();
    }
    n
}

#[test]
fn spsc_fifo_exactly_once_child_producer() {
    let name = unique("spsc");
    let (tx, mut rx) = spsc::channel(&name, 1 << 14).unwrap();
    let child = shmkit_process::spawn(produce, (tx.transfer(), MANY)).unwrap();
    let mut buf = Vec::new();
    for i in 0..MANY {
        rx.recv_into_timeout(&mut buf, LONG).unwrap();
        assert_eq!(buf, payload(i), "message {i}");
    }
    assert_eq!(join(child), MANY);
    // The producer is gone and everything was drained.
    assert!(matches!(
        rx.recv_into_timeout(&mut buf, LONG),
        Err(Error::Disconnected)
    ));
    drop(rx);
    assert_unlinked(&name);
}

fn consume(args: (Consumer, u64)) -> u64 {
    let (mut rx, n) = args;
    let mut buf = Vec::new();
    for i in 0..n {
        rx.recv_into_timeout(&mut buf, LONG).unwrap();
        assert_eq!(buf, payload(i), "message {i}");
    }
    // Then the producer drops: disconnection after draining.
    match rx.recv_into_timeout(&mut buf, LONG) {
        Err(Error::Disconnected) => n,
        other => panic!("expected Disconnected, got {other:?}"),
    }
}

#[test]
fn spsc_child_consumer_batches_and_grants() {
    let (mut tx, rx) = spsc::channel_anonymous(1 << 12).unwrap();
    let n = MANY / 4;
    let child = shmkit_process::spawn(consume, (rx.transfer(), n)).unwrap();
    let mut i = 0;
    while i < n {
        if i % 3 == 0 {
            let p = payload(i);
            let mut g = tx.reserve(p.len()).unwrap();
            g.as_mut_slice().copy_from_slice(&p);
            g.commit();
            i += 1;
        } else {
            let batch: Vec<Vec<u8>> = (i..(i + 5).min(n)).map(payload).collect();
            tx.send_batch(&batch).unwrap();
            i += batch.len() as u64;
        }
    }
    drop(tx);
    assert_eq!(join(child), n);
}

#[test]
fn spsc_zero_length_and_max_size_messages() {
    let name = unique("limits");
    let (mut tx, mut rx) = spsc::channel(&name, 256).unwrap();
    let max = tx.max_message();
    assert_eq!(max, 120);
    let mut buf = vec![1];
    for round in 0..40u8 {
        tx.send(&[]).unwrap();
        rx.recv_into(&mut buf).unwrap();
        assert!(buf.is_empty());
        let big = vec![round; max];
        tx.send_timeout(&big, LONG).unwrap();
        // Consumed padding is skipped transparently by blocking recv.
        rx.recv_into_timeout(&mut buf, LONG).unwrap();
        assert_eq!(buf, big);
        tx.send(&vec![round; (round as usize * 7) % max]).unwrap();
        rx.recv_into(&mut buf).unwrap();
    }
    assert!(matches!(
        tx.send(&vec![0; max + 1]),
        Err(Error::TooLarge { len, max: m, .. }) if len == max + 1 && m == max
    ));
}

#[test]
fn spsc_timeouts_are_bounded() {
    let (mut tx, mut rx) = spsc::channel_anonymous(64).unwrap();
    let mut buf = Vec::new();
    let t = Instant::now();
    assert!(matches!(
        rx.recv_into_timeout(&mut buf, Duration::from_millis(50)),
        Err(Error::Timeout)
    ));
    assert!(t.elapsed() >= Duration::from_millis(50) && t.elapsed() < Duration::from_secs(5));
    assert!(matches!(
        rx.try_recv_into(&mut buf),
        Err(TryRecvError::Empty)
    ));
    // Three 16-byte records and the next length word: 56 of the 64 bytes.
    for _ in 0..3 {
        tx.send(&[0; 8]).unwrap();
    }
    assert!(matches!(tx.try_send(&[1]), Err(TrySendError::Full)));
    let t = Instant::now();
    assert!(matches!(
        tx.send_timeout(&[1], Duration::from_millis(50)),
        Err(Error::Timeout)
    ));
    assert!(t.elapsed() < Duration::from_secs(5));
}

/// The try forms' errors come in three cases a caller matches exhaustively: now
/// (`Full`, `Empty`), the end (`Disconnected`, after the last message), and never
/// (`Failed`: too large, closed). `?` and `Error::from` give the crate's `Error`.
#[test]
fn try_forms_have_errors_a_caller_can_match_exhaustively() {
    let (mut tx, mut rx) = spsc::channel_anonymous(256).unwrap();
    let max = tx.max_message();
    let too_large = tx.try_send(&vec![0; max + 1]).unwrap_err();
    assert!(
        matches!(&too_large, TrySendError::Failed(Error::TooLarge { len, .. }) if *len == max + 1),
        "{too_large:?}"
    );
    assert!(matches!(Error::from(too_large), Error::TooLarge { .. }));
    tx.try_send(b"last").unwrap();
    drop(tx);
    let mut buf = Vec::new();
    rx.try_recv_into(&mut buf).unwrap(); // what was sent comes before the end
    assert_eq!(buf, b"last");
    let end = rx.try_recv_into(&mut buf).unwrap_err();
    assert!(matches!(end, TryRecvError::Disconnected), "{end:?}");
    assert!(matches!(Error::from(end), Error::Disconnected));

    // The zero-copy forms end the same way.
    let (mut tx, mut rx) = spsc::channel_anonymous(256).unwrap();
    tx.try_send(b"last").unwrap();
    drop(tx);
    let g = rx.try_read().unwrap();
    assert_eq!(&*g, b"last");
    g.release();
    let end = rx.try_read().unwrap_err();
    assert!(matches!(end, TryRecvError::Disconnected), "{end:?}");
    let (mut tx, rx) = spsc::channel_anonymous(256).unwrap();
    drop(rx);
    let end = tx.try_reserve(4).unwrap_err();
    assert!(matches!(end, TrySendError::Disconnected), "{end:?}");
    assert!(matches!(tx.reserve(4), Err(Error::Disconnected)));

    let (a, b) = Pipe::new().unwrap();
    a.close();
    assert!(matches!(
        a.try_send_bytes(b"x"),
        Err(TrySendError::Failed(Error::Closed))
    ));
    assert!(matches!(
        a.try_recv_bytes_into(&mut buf),
        Err(TryRecvError::Failed(Error::Closed))
    ));
    assert!(matches!(
        b.try_recv_bytes_into(&mut buf),
        Err(TryRecvError::Disconnected)
    ));
    fn send(c: &Connection) -> Result<(), Error> {
        c.try_send_bytes(b"x")?;
        Ok(())
    }
    assert!(matches!(send(&b), Err(Error::Disconnected)));
}

#[test]
fn spsc_roles_are_unique() {
    let name = unique("roles");
    let (tx, rx) = spsc::channel(&name, 1024).unwrap();
    assert!(matches!(
        Producer::open(&name),
        Err(Error::RoleTaken { .. })
    ));
    assert!(matches!(
        Consumer::open(&name),
        Err(Error::RoleTaken { .. })
    ));
    drop(tx);
    // A dropped producer's role can be taken again by name.
    let mut tx2 = Producer::open(&name).unwrap();
    tx2.send(b"again").unwrap();
    let mut rx = rx;
    let mut buf = Vec::new();
    rx.recv_into_timeout(&mut buf, LONG).unwrap();
    assert_eq!(buf, b"again");
}

fn send_then_hang(mut tx: Producer) {
    for i in 0..3u64 {
        tx.send(&payload(i)).unwrap();
    }
    std::thread::sleep(Duration::from_secs(60));
}

#[test]
fn spsc_consumer_sees_disconnect_when_producer_is_killed() {
    let (tx, mut rx) = spsc::channel_anonymous(1 << 12).unwrap();
    let child = shmkit_process::spawn(send_then_hang, tx.transfer()).unwrap();
    let mut buf = Vec::new();
    for i in 0..3 {
        rx.recv_into_timeout(&mut buf, LONG).unwrap();
        assert_eq!(buf, payload(i));
    }
    child.kill().unwrap();
    let t = Instant::now();
    assert!(matches!(
        rx.recv_into_timeout(&mut buf, LONG),
        Err(Error::Disconnected)
    ));
    assert!(t.elapsed() < Duration::from_secs(5));
}

fn recv_one_then_hang(mut rx: Consumer) {
    let mut buf = Vec::new();
    rx.recv_into_timeout(&mut buf, LONG).unwrap();
    std::thread::sleep(Duration::from_secs(60));
}

#[test]
fn spsc_producer_sees_disconnect_when_consumer_is_killed() {
    let (mut tx, rx) = spsc::channel_anonymous(256).unwrap();
    let child = shmkit_process::spawn(recv_one_then_hang, rx.transfer()).unwrap();
    // Fill the ring with 16-byte records (15 of them and the next length word), then
    // wait (bounded) until the child has taken one: only then does it hold the consumer
    // role, so its death is a disconnection (a role still in transit is waited for).
    for _ in 0..15 {
        tx.send_timeout(&[0; 8], LONG).unwrap();
    }
    let t = Instant::now();
    while matches!(tx.try_send(&[0; 8]), Err(TrySendError::Full)) {
        assert!(t.elapsed() < LONG, "child never received");
        std::thread::sleep(Duration::from_millis(1));
    }
    child.kill().unwrap();
    let t = Instant::now();
    let r = loop {
        match tx.send_timeout(&[0; 100], LONG) {
            Ok(()) => continue,
            other => break other,
        }
    };
    assert!(matches!(r, Err(Error::Disconnected)), "{r:?}");
    assert!(t.elapsed() < Duration::from_secs(5));
}

#[test]
fn spsc_corrupted_indices_are_reported() {
    let name = unique("corrupt");
    let (mut tx, mut rx) = spsc::channel(&name, 1024).unwrap();
    tx.send(b"ok").unwrap();
    drop(tx);
    let seg = shmkit_segment::Segment::open(&name).unwrap();
    // The producer's tail is the first word of the payload. The consumer never reads
    // it (it finds records by their length words), so the message is still delivered;
    // the next producer to attach validates it and refuses.
    seg.atomic_u64(0).unwrap().store(1 << 40, Ordering::Release);
    let mut buf = Vec::new();
    rx.recv_into_timeout(&mut buf, Duration::from_secs(1))
        .unwrap();
    assert_eq!(buf, b"ok");
    let r = Producer::open(&name);
    assert!(matches!(r, Err(Error::Corrupted { .. })), "{r:?}");
    // A length word past the capacity.
    let name2 = unique("corrupt-len");
    let (mut tx2, mut rx2) = spsc::channel(&name2, 1024).unwrap();
    tx2.send(b"ok").unwrap();
    let seg2 = shmkit_segment::Segment::open(&name2).unwrap();
    seg2.write::<u64>(384, &5000).unwrap();
    let r = rx2.recv_into_timeout(&mut buf, Duration::from_secs(1));
    assert!(matches!(r, Err(Error::Corrupted { .. })), "{r:?}");
    drop((rx, tx2, rx2, seg, seg2));
    assert_unlinked(&name);
    assert_unlinked(&name2);
}

// --- Queue<T> (MPMC over the claim-locked ring) ------------------------------------

fn put_seq(args: (Queue<(u32, u64)>, u32, u64)) -> u64 {
    let (q, id, n) = args;
    for i in 0..n {
        q.put_timeout(&(id, i), LONG).unwrap();
    }
    n
}

fn get_all(q: Queue<(u32, u64)>) -> Vec<(u32, u64)> {
    let mut got = Vec::new();
    loop {
        match q.get_timeout(LONG) {
            Ok(v) => got.push(v),
            Err(Error::Disconnected) => return got,
            Err(e) => panic!("{e}"),
        }
    }
}

#[test]
fn queue_four_producers_two_consumers_exactly_once() {
    let name = unique("queue");
    let q = Queue::<(u32, u64)>::create(&name, 1 << 16).unwrap();
    let per = MANY / 4;
    let producers: Vec<_> = (0..4)
        .map(|id| shmkit_process::spawn(put_seq, (q.clone(), id, per)).unwrap())
        .collect();
    let consumer = shmkit_process::spawn(get_all, q.clone()).unwrap();
    // This handle only consumes: close it so consumers can see the end.
    q.close();
    let mut mine = Vec::new();
    let mut seen = vec![vec![false; per as usize]; 4];
    let mut last = [None::<u64>; 4];
    loop {
        match q.get_timeout(LONG) {
            Ok((id, i)) => {
                // Per-producer FIFO as seen by one consumer.
                assert!(last[id as usize].is_none_or(|l| l < i));
                last[id as usize] = Some(i);
                mine.push((id, i));
            }
            Err(Error::Disconnected) => break,
            Err(e) => panic!("{e}"),
        }
    }
    for p in producers {
        assert_eq!(join(p), per);
    }
    let theirs = join(consumer);
    for (id, i) in mine.into_iter().chain(theirs) {
        assert!(!seen[id as usize][i as usize], "({id}, {i}) twice");
        seen[id as usize][i as usize] = true;
    }
    assert!(seen.iter().flatten().all(|&s| s), "every message seen once");
    drop(q);
    assert_unlinked(&name);
}

fn work_and_mark_done(q: Queue<u32>) -> u32 {
    let mut n = 0;
    while let Ok(_v) = q.get_timeout(Duration::from_millis(500)) {
        q.task_done().unwrap();
        n += 1;
    }
    n
}

#[test]
fn queue_task_done_and_join_across_processes() {
    let q = Queue::<u32>::anonymous(1 << 12).unwrap();
    for i in 0..100 {
        q.put(&i).unwrap();
    }
    assert_eq!(q.len(), 100);
    let worker = shmkit_process::spawn(work_and_mark_done, q.clone()).unwrap();
    q.join_timeout(LONG).unwrap();
    assert_eq!(join(worker), 100);
    assert!(matches!(q.task_done(), Err(Error::TaskDoneTooMany)));
    assert!(q.is_empty());
}

#[test]
fn queue_timeouts_full_and_empty() {
    let q = Queue::<Vec<u8>>::anonymous(128).unwrap();
    let other = q.clone(); // keeps the queue connected
    assert!(matches!(q.try_get(), Err(TryRecvError::Empty)));
    let t = Instant::now();
    assert!(matches!(
        q.get_timeout(Duration::from_millis(30)),
        Err(Error::Timeout)
    ));
    assert!(t.elapsed() < Duration::from_secs(5));
    // 128 bytes hold two records of 56 (8 + 41 rounded up) and the next length word.
    q.put(&vec![0; 40]).unwrap();
    q.put(&vec![0; 40]).unwrap();
    assert!(matches!(q.try_put(&vec![0; 40]), Err(TrySendError::Full)));
    assert!(matches!(
        q.put_timeout(&vec![0; 40], Duration::from_millis(30)),
        Err(Error::Timeout)
    ));
    assert!(matches!(q.put(&vec![0; 100]), Err(Error::TooLarge { .. })));
    drop(other);
    // No other handle: a full queue cannot drain.
    assert!(matches!(q.put(&vec![0; 40]), Err(Error::Disconnected)));
    q.close();
    assert!(matches!(q.put(&vec![]), Err(Error::Closed)));
}

// --- PodQueue<T> (lock-free MPMC slots) -------------------------------------------

fn pod_put(args: (PodQueue<[u64; 2]>, u64, u64)) -> u64 {
    let (q, id, n) = args;
    for i in 0..n {
        q.put_timeout(&[id, i], LONG).unwrap();
    }
    n
}

#[test]
fn pod_queue_four_producers_exactly_once() {
    let name = unique("pod");
    let q = PodQueue::<[u64; 2]>::create(&name, 1 << 10).unwrap();
    let per = MANY / 4;
    let producers: Vec<_> = (0..4u64)
        .map(|id| shmkit_process::spawn(pod_put, (q.clone(), id, per)).unwrap())
        .collect();
    q.close();
    let mut next = [0u64; 4];
    let mut total = 0;
    loop {
        match q.get_timeout(LONG) {
            Ok([id, i]) => {
                // One consumer: each producer's items arrive in order, none missing.
                assert_eq!(next[id as usize], i);
                next[id as usize] += 1;
                total += 1;
            }
            Err(Error::Disconnected) => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(total, 4 * per);
    for p in producers {
        assert_eq!(join(p), per);
    }
    assert_eq!(q.abandoned(), 0);
    drop(q);
    assert_unlinked(&name);
}

fn claim_die(q: PodQueue<u64>) {
    // One handle per thread of work: the claim that dies, and a later put.
    let q2 = q.clone();
    q.claim_and_abandon_for_test().unwrap();
    q2.put(&42).unwrap();
    std::thread::sleep(Duration::from_secs(60));
}

#[test]
fn pod_queue_skips_slot_of_killed_producer() {
    let q = PodQueue::<u64>::anonymous(8).unwrap();
    let child = shmkit_process::spawn(claim_die, q.clone()).unwrap();
    let t = Instant::now();
    while q.len() < 2 {
        assert!(t.elapsed() < LONG, "child never claimed");
        std::thread::sleep(Duration::from_millis(1));
    }
    // While the claimant lives, its slot is never skipped.
    assert!(matches!(
        q.get_timeout(Duration::from_millis(50)),
        Err(Error::Timeout)
    ));
    assert_eq!(q.abandoned(), 0);
    child.kill().unwrap();
    assert_eq!(q.get_timeout(LONG).unwrap(), 42);
    assert_eq!(q.abandoned(), 1);
}

// --- Pipe --------------------------------------------------------------------------

fn echo(conn: Connection) -> u32 {
    let mut n = 0;
    loop {
        match conn.recv_bytes_timeout(LONG) {
            Ok(b) => {
                conn.send_bytes(&b).unwrap();
                n += 1;
            }
            Err(Error::Disconnected) => return n,
            Err(e) => panic!("{e}"),
        }
    }
}

#[test]
fn pipe_duplex_echo_and_disconnect() {
    let (a, b) = Pipe::new().unwrap();
    let child = shmkit_process::spawn(echo, b.transfer()).unwrap();
    for i in 0..1000u64 {
        a.send(&(i, format!("msg {i}"))).unwrap();
        assert_eq!(
            a.recv_timeout::<(u64, String)>(LONG).unwrap(),
            (i, format!("msg {i}"))
        );
    }
    assert!(!a.poll(Some(Duration::from_millis(10))).unwrap());
    a.close();
    assert_eq!(join(child), 1000);
    assert!(matches!(a.recv_bytes(), Err(Error::Closed)));
}

fn say_and_close(conn: Connection) {
    for w in ["Hello", "World", "Bye"] {
        conn.send(&w).unwrap();
    }
    conn.close();
}

#[test]
fn pipe_one_way_then_eof() {
    let (reader, writer) = Pipe::one_way().unwrap();
    let child = shmkit_process::spawn(say_and_close, writer.transfer()).unwrap();
    let mut got = Vec::new();
    loop {
        match reader.recv_timeout::<String>(LONG) {
            Ok(s) => got.push(s),
            Err(Error::Disconnected) => break,
            Err(e) => panic!("{e}"),
        }
    }
    join(child);
    assert_eq!(got, ["Hello", "World", "Bye"]);
    assert!(matches!(reader.send(&1), Err(Error::Closed)));
}

fn hang(_conn: Connection) {
    std::thread::sleep(Duration::from_secs(60));
}

#[test]
fn pipe_peer_killed_is_disconnected() {
    let (a, b) = Pipe::new().unwrap();
    let child = shmkit_process::spawn(hang, b.transfer()).unwrap();
    // Let the child take its end (bounded), then kill it.
    std::thread::sleep(Duration::from_millis(100));
    child.kill().unwrap();
    let t = Instant::now();
    assert!(a.poll(Some(LONG)).unwrap());
    assert!(matches!(
        a.recv_bytes_timeout(LONG),
        Err(Error::Disconnected)
    ));
    assert!(t.elapsed() < Duration::from_secs(10));
}

// --- wait strategies ---------------------------------------------------------------

const STRATEGIES: [shmkit_ring::WaitStrategy; 3] = [
    shmkit_ring::WaitStrategy::Blocking,
    shmkit_ring::WaitStrategy::BusyPoll,
    shmkit_ring::WaitStrategy::Backoff,
];

fn put_all(args: (Queue<u64>, PodQueue<u64>, Connection, u64)) {
    let (q, pq, conn, n) = args;
    for i in 0..n {
        q.put_timeout(&i, LONG).unwrap();
        pq.put_timeout(&i, LONG).unwrap();
        conn.send(&i).unwrap();
    }
}

/// Every ring kind, built with each strategy, carries messages from a child in order,
/// and ends with `Disconnected` once the child is gone; the strategy is recorded in the
/// header, so the child (which only opens the rings) waits the same way.
#[test]
fn every_strategy_carries_messages_across_processes() {
    use shmkit_ring::WaitStrategy;
    const N: u64 = 2_000;
    for strategy in STRATEGIES {
        let name = unique("strategy-spsc");
        let (tx, mut rx) = spsc::builder(1 << 12)
            .name(&name)
            .wait(strategy)
            .create()
            .unwrap();
        // The producer role is taken: a second opener is refused, whatever the strategy.
        assert!(Producer::open(&name).is_err());
        assert_eq!(rx.wait_strategy(), strategy);
        let child = shmkit_process::spawn(produce, (tx.transfer(), N)).unwrap();
        let mut buf = Vec::new();
        for i in 0..N {
            rx.recv_into_timeout(&mut buf, LONG).unwrap();
            assert_eq!(buf, payload(i), "{strategy}: message {i}");
        }
        assert_eq!(join(child), N);
        assert!(matches!(
            rx.recv_into_timeout(&mut buf, LONG),
            Err(Error::Disconnected)
        ));
        drop(rx);
        assert_unlinked(&name);

        let q = Queue::<u64>::builder()
            .maxsize(16)
            .wait(strategy)
            .create()
            .unwrap();
        let pq = PodQueue::<u64>::builder(16)
            .wait(strategy)
            .create()
            .unwrap();
        assert_eq!(pq.wait_strategy(), strategy);
        assert_eq!(q.wait_strategy(), strategy);
        let (reader, writer) = Pipe::builder()
            .capacity(1 << 12)
            .one_way()
            .wait(strategy)
            .create()
            .unwrap();
        assert_eq!(reader.wait_strategy(), strategy);
        assert_eq!(writer.wait_strategy(), strategy);
        let child =
            shmkit_process::spawn(put_all, (q.clone(), pq.clone(), writer.transfer(), N)).unwrap();
        for i in 0..N {
            assert_eq!(
                q.get_timeout(LONG).unwrap(),
                i,
                "{strategy}: queue item {i}"
            );
            assert_eq!(pq.get_timeout(LONG).unwrap(), i, "{strategy}: pod item {i}");
            assert_eq!(
                reader.recv_timeout::<u64>(LONG).unwrap(),
                i,
                "{strategy}: pipe {i}"
            );
        }
        join(child);
        assert!(
            matches!(q.get_timeout(LONG), Err(Error::Disconnected)),
            "{strategy}"
        );
        assert!(
            matches!(pq.get_timeout(LONG), Err(Error::Disconnected)),
            "{strategy}"
        );
        assert!(matches!(
            reader.recv_timeout::<u64>(LONG),
            Err(Error::Disconnected)
        ));
        assert_eq!(WaitStrategy::default(), WaitStrategy::Blocking);
    }
}

/// A header naming a strategy this version does not know is refused at open, naming the
/// code, never waited on by guesswork.
#[test]
fn an_unknown_wait_strategy_code_is_refused() {
    let name = unique("strategy-bad");
    let (tx, rx) = spsc::channel(&name, 1 << 12).unwrap();
    drop(rx);
    let seg = shmkit_segment::Segment::open(&name).unwrap();
    // `meta.wait_strategy`: docs/memory-layout-ring.md.
    seg.atomic_u32(312).unwrap().store(7, Ordering::Relaxed);
    match Consumer::open(&name) {
        Err(Error::Corrupted { what, .. }) => {
            assert!(what.contains("unknown wait strategy code 7"), "{what}")
        }
        other => panic!("expected Corrupted, got {other:?}"),
    }
    drop((tx, seg));
    assert_unlinked(&name);
}
