//! A tour of shmkit: every capability once, across real processes, in the order of
//! the Python `multiprocessing` guide.
//!
//! Run: `cargo run --release --example tour`

use std::time::Instant;

use shmkit::prelude::*;

type Result<T = (), E = Box<dyn std::error::Error>> = std::result::Result<T, E>;

fn section(title: &str) {
    println!("\n== {title}");
}

// --- 1. A named shared segment, written by a child -------------------------------

/// Runs in a child, given the segment itself (it travels by name): write a greeting.
fn write_greeting(seg: Segment) -> usize {
    let text = format!("hello from child pid {}", std::process::id());
    seg.write(0, &(text.len() as u32)).expect("length fits");
    seg.write_bytes(4, text.as_bytes()).expect("text fits");
    text.len()
}

fn segment_tour() -> Result {
    section("shared segment (multiprocessing.shared_memory.SharedMemory)");
    let name = format!("shmkit-tour-{}", std::process::id());
    let seg = Segment::builder(&name).size(4096).create()?;
    println!(
        "created /dev/shm/{name}: {} payload bytes, mode 0600",
        seg.len()
    );
    let written = spawn(write_greeting, seg.clone())?.join()?;
    let len = seg.read::<u32>(0)? as usize;
    let mut text = vec![0u8; len];
    seg.read_bytes(4, &mut text)?;
    println!(
        "read back {written} bytes the child wrote: {:?}",
        String::from_utf8_lossy(&text)
    );
    drop(seg); // the creator unlinks on drop
    println!(
        "after drop, open says: {}",
        Segment::open(&name)
            .map(|_| "still there".to_string())
            .unwrap_or_else(|e| e.to_string())
    );
    Ok(())
}

// --- 2. Processes --------------------------------------------------------------------

fn square(x: u64) -> u64 {
    x * x
}

fn crash(_: ()) -> u64 {
    panic!("worker failed on purpose")
}

fn process_tour() -> Result {
    section("processes (multiprocessing.Process)");
    let children = (0..3)
        .map(|i| spawn(square, i))
        .collect::<Result<Vec<_>, _>>()?;
    let squares = children
        .into_iter()
        .map(|p| p.join())
        .collect::<Result<Vec<_>, _>>()?;
    println!("{squares:?}");
    for method in [StartMethod::Spawn, StartMethod::Fork] {
        let t0 = Instant::now();
        let p = Process::builder().start_method(method).spawn(square, 12)?;
        let r = p.join()?;
        println!(
            "{method:?}: 12^2 = {r} (start + join in {:.2?})",
            t0.elapsed()
        );
    }
    match spawn(crash, ())?.join() {
        Err(e) => println!("a panicking child comes back as an error: {e}"),
        Ok(_) => println!("unexpected: the crash returned"),
    }
    println!("all processes finished (cpu_count = {})", cpu_count());
    Ok(())
}

// --- 3. Shared values, locks, events, a dict ------------------------------------------

use shmkit::sync::{Array, Dict, Event, Mutex, Value};

fn add_under_lock(counter: Mutex<u64>) {
    for _ in 0..100_000 {
        *counter.lock().expect("lock") += 1;
    }
}

/// Take the lock, start an update, and die without finishing it.
fn die_holding(counter: Mutex<u64>) {
    let mut g = counter.lock().expect("lock");
    *g += 1;
    std::process::abort();
}

/// What the sync scenario hands its child: the value, array, dict and event to fill
/// (each passed as itself, as Python passes them).
type Shared = (Value<i32>, Array<i32>, Dict<u32, String>, Event);

fn fill((v, a, d, done): Shared) {
    v.set(100).expect("set");
    for i in 0..a.len() {
        a.set(i, i as i32 * 2).expect("set");
    }
    d.insert(1, format!("from pid {}", std::process::id()))
        .expect("insert");
    done.set();
}

fn sync_tour() -> Result {
    section("Value, Array, Manager().dict(), Event (multiprocessing.Value / Array / Event)");
    let v = Value::anonymous(0i32)?;
    let a = Array::<i32>::anonymous_zeroed(5)?;
    let d = Dict::<u32, String>::anonymous()?;
    let done = Event::anonymous()?;
    d.insert(0, "from the parent".into())?;
    let child = spawn(fill, (v.clone(), a.clone(), d.clone(), done.clone()))?;
    let seen = done.wait_timeout(std::time::Duration::from_secs(30));
    child.join()?;
    println!(
        "event seen: {seen}; value = {}; array = {:?}",
        v.get()?,
        a.to_vec()?
    );
    println!("dict = {:?}", d.snapshot()?);

    section("Lock (multiprocessing.Lock), robust against a holder that dies");
    let counter = Mutex::anonymous(0u64)?;
    let t0 = Instant::now();
    let workers = (0..2)
        .map(|_| spawn(add_under_lock, counter.clone()))
        .collect::<Result<Vec<_>, _>>()?;
    for w in workers {
        w.join()?;
    }
    println!(
        "two processes x 100000 increments = {} ({:.2?})",
        *counter.lock()?,
        t0.elapsed()
    );
    let crashed = spawn(die_holding, counter.clone())?.join();
    println!(
        "a child died holding the lock: {}",
        crashed.err().map(|e| e.to_string()).unwrap_or_default()
    );
    let t0 = Instant::now();
    let mut g = counter.lock()?;
    println!(
        "next lock after {:.2?}: owner_died = {}, value = {} (the dead holder's +1 is there; repair, then mark consistent)",
        t0.elapsed(),
        g.owner_died(),
        *g
    );
    *g -= 1;
    g.mark_consistent();
    Ok(())
}

// --- 4. Queues and pipes, then shm vs pipe ---------------------------------------------

use shmkit::ring::{Connection, Pipe, Queue, spsc};

fn produce(q: Queue<Option<u32>>) {
    for i in 0..5 {
        q.put(&Some(i)).expect("put");
    }
    q.put(&None).expect("put the sentinel");
}

fn consume(q: Queue<Option<u32>>) -> Vec<u32> {
    let mut got = Vec::new();
    while let Some(i) = q.get().expect("get") {
        got.push(i);
    }
    got
}

fn say_hello(conn: Connection) {
    for word in ["Hello", "World", "Bye"] {
        conn.send(word).expect("send");
    }
    conn.close();
}

const MSG: usize = 64;

/// Rounds of the closing comparison, and messages per round for each transport (the
/// pipe is ~30-100x slower per message: fewer of them keep its rounds as short).
const ROUNDS: usize = 7;
const RING_BATCH: u64 = 100_000;
const PIPE_BATCH: u64 = 10_000;

/// Take `ROUNDS` batches of `RING_BATCH` 64-byte messages off the ring, acknowledging
/// each batch on `ack`.
fn ring_sink((mut rx, mut ack): (spsc::Consumer, spsc::Producer)) {
    let mut buf = Vec::with_capacity(MSG);
    for _ in 0..ROUNDS {
        for _ in 0..RING_BATCH {
            rx.recv_into(&mut buf).expect("recv");
        }
        ack.send(b"k").expect("ack");
    }
}

/// The same over an inherited pipe pair (Fork start method): length-prefixed 64-byte
/// frames in, one byte per batch out.
fn pipe_sink((from_parent, to_parent): (i32, i32)) {
    use std::io::{Read, Write};
    use std::os::fd::FromRawFd;
    // SAFETY: a forked child inherits the parent's pipe ends; this process alone reads
    // `from_parent` and writes `to_parent`.
    let (input, mut ack) = unsafe {
        (
            std::fs::File::from_raw_fd(from_parent),
            std::fs::File::from_raw_fd(to_parent),
        )
    };
    let mut r = std::io::BufReader::with_capacity(1 << 16, input);
    let mut frame = [0u8; 4 + MSG];
    for _ in 0..ROUNDS {
        for _ in 0..PIPE_BATCH {
            r.read_exact(&mut frame).expect("read a frame");
        }
        ack.write_all(b"k").expect("ack");
    }
}

fn ring_tour() -> Result {
    section("Queue (multiprocessing.Queue) with a sentinel");
    let q = Queue::<Option<u32>>::anonymous(1 << 16)?;
    let consumer = spawn(consume, q.try_clone()?)?;
    spawn(produce, q.try_clone()?)?.join()?;
    println!("{:?}", consumer.join()?);

    section("Pipe (multiprocessing.Pipe)");
    let (parent, child) = Pipe::new()?;
    let p = spawn(say_hello, child.transfer())?;
    let mut words = Vec::new();
    while let Ok(w) = parent.recv::<String>() {
        words.push(w); // Err(Disconnected) once the child closed, like Python's EOFError
    }
    p.join()?;
    println!("{words:?}");
    Ok(())
}

/// Kills its own worker process when given 3: a worker dying mid-task.
fn square_or_die(x: u64) -> u64 {
    if x == 3 {
        std::process::abort();
    }
    x * x
}

fn pool_tour() -> Result {
    section("Pool (multiprocessing.Pool): map, apply_async, a worker that dies");
    let pool = Pool::with_processes(4)?;
    println!("results: {:?}", pool.map(square, 0..5)?);
    let pending = (0..3)
        .map(|i| pool.apply_async(|i: u32| format!("hello {i}"), i))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    for r in pending {
        println!("multi_result : {}", r.get()?);
    }
    // Python's Pool.map hangs forever when a worker dies; here that one task fails
    // with WorkerDied, the worker is replaced and map returns.
    let outcomes = pool.map_async(square_or_die, 0..6)?.get_each();
    for (x, r) in outcomes.iter().enumerate() {
        match r {
            Ok(v) => println!("square_or_die({x}) = {v}"),
            Err(e) => println!("square_or_die({x}): {e}"),
        }
    }
    pool.close();
    pool.join()?;
    println!("pool closed and joined, every worker reaped");
    Ok(())
}

/// Messages per second over `batch` messages, `send` sending one and `acked` waiting
/// for the sink's acknowledgement of the batch.
fn rate(
    batch: u64,
    mut send: impl FnMut() -> Result,
    acked: impl FnOnce() -> Result,
) -> Result<f64> {
    let t0 = Instant::now();
    for _ in 0..batch {
        send()?;
    }
    acked()?;
    Ok(batch as f64 / t0.elapsed().as_secs_f64())
}

/// The 1-minute load average, if /proc tells it.
fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn comparison_tour() -> Result {
    use std::io::{Read, Write};
    use std::os::fd::AsRawFd;
    section("shared-memory ring vs OS pipe, 64-byte messages between two processes");
    let msg = [7u8; MSG];
    let mut frame = [7u8; 4 + MSG];
    frame[..4].copy_from_slice(&(MSG as u32).to_le_bytes());
    // Both sinks start first (process start-up is not timed), then the two transports
    // take turns, round by round, so that whatever else the machine does weighs on both.
    let (mut tx, rx) = spsc::channel_anonymous(1 << 20)?;
    let (ack_tx, mut ack_rx) = spsc::channel_anonymous(1 << 12)?;
    let ring = spawn(ring_sink, (rx.transfer(), ack_tx.transfer()))?;
    let (from_parent, mut to_child) = std::io::pipe()?;
    let (mut from_child, to_parent) = std::io::pipe()?;
    let pipe = Process::builder()
        .start_method(StartMethod::Fork)
        .spawn(pipe_sink, (from_parent.as_raw_fd(), to_parent.as_raw_fd()))?;
    drop((from_parent, to_parent)); // the child has its copies
    let load_before = load_average();
    let mut ack = Vec::new();
    let mut ratios = Vec::with_capacity(ROUNDS);
    let (mut ring_rates, mut pipe_rates) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let r = rate(
            RING_BATCH,
            || Ok(tx.send(&msg)?),
            || Ok(ack_rx.recv_into(&mut ack)?),
        )?;
        let p = rate(
            PIPE_BATCH,
            || Ok(to_child.write_all(&frame)?), // one write per message, as a pipe user sends
            || Ok(from_child.read_exact(&mut [0u8; 1])?),
        )?;
        ratios.push(r / p);
        ring_rates.push(r);
        pipe_rates.push(p);
    }
    ring.join()?;
    pipe.join()?;
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (ring_rate, pipe_rate) = (median(&mut ring_rates), median(&mut pipe_rates));
    let ratio = median(&mut ratios);
    println!(
        "64 B messages, median of {ROUNDS} rounds: spsc ring {:.1} M msg/s, pipe {:.2} M msg/s \
         — the ring is {ratio:.0}x faster on this machine (rounds: {:.0}x to {:.0}x)",
        ring_rate / 1e6,
        pipe_rate / 1e6,
        ratios[0],
        ratios[ROUNDS - 1],
    );
    // Two processes spinning and copying need both of two cores; a load average above
    // the core count means other work took turns with them, and the ratio is low.
    let cores = cpu_count() as f64;
    let load = load_before
        .into_iter()
        .chain(load_average())
        .fold(0.0, f64::max);
    if load > cores - 0.5 {
        println!(
            "note: the machine looks busy (load average {load:.1} on {cores} cores): \
             these figures are lower than on an idle machine; run again when it is quiet"
        );
    }
    Ok(())
}

fn main() -> Result {
    shmkit::init();
    println!("shmkit tour — pid {}", std::process::id());
    segment_tour()?;
    process_tour()?;
    sync_tour()?;
    ring_tour()?;
    pool_tour()?;
    comparison_tour()?;
    Ok(())
}
