//! `shmkit inspect NAME`: the header field by field, then what the payload says — for
//! rings (SPSC channel, `Queue`, `PodQueue`, `Pipe`) capacity, depth, counters, sides
//! and sleepers; for robust locks (`Mutex`, `RLock`, `Value`, `Array`, `Dict`) who holds
//! the lock and whether that process lives; for a `Dict` also its entries, capacity,
//! load factor and table generation.
//!
//! Everything comes from memory another process may have corrupted: the libraries'
//! inspectors validate each value, and what fails shows as `corrupted: <what>` (exit 1),
//! never as a crash.

use std::collections::BTreeMap;

use serde::Serialize;
use shmkit_ring::inspect::{ClaimLockView, HandleView, Report, RingView, SideView};
use shmkit_segment::{Segment, SegmentState};
use shmkit_sync::inspect::{DictView, LockView};

use crate::{Row, dash, human_age, human_bytes, row};

/// All of `inspect --json`.
#[derive(Serialize)]
struct Inspection {
    #[serde(flatten)]
    header: Row,
    /// Ring kinds: the ring snapshot.
    ring: Option<Report>,
    /// Lock kinds: the lock snapshot.
    lock: Option<LockView>,
    /// Dicts: entries, capacity, load factor, generation.
    dict: Option<DictView>,
    /// Liveness slot -> pids of the live processes holding it (from /proc).
    slot_pids: BTreeMap<u32, Vec<u32>>,
    /// A held lock's holder pid, when it can be known: from /proc for a live holder; for
    /// a dead one only if it was the creator's own registration (slot 0, generation 1),
    /// whose pid the header records.
    lock_holder_pid: Option<u32>,
    /// Every broken invariant found; non-empty means exit code 1.
    corrupted: Vec<String>,
}

pub(crate) fn run(name: &str, json: bool) -> Result<(), String> {
    shmkit_segment::validate_name(name).map_err(|e| e.to_string())?;
    if !std::path::Path::new(&format!("/dev/shm/{name}")).exists() {
        return Err(format!("segment '{name}' not found in /dev/shm"));
    }
    let info = shmkit_segment::inspect(name);
    let mut out = Inspection {
        header: row(&info),
        ring: None,
        lock: None,
        dict: None,
        slot_pids: BTreeMap::new(),
        lock_holder_pid: None,
        corrupted: Vec::new(),
    };
    let header_ok = matches!(
        info.state,
        SegmentState::Alive | SegmentState::Stale | SegmentState::Initializing
    );
    if header_ok {
        payload(name, &mut out);
    }
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&out).map_err(|e| e.to_string())?
        );
    } else {
        print_header(&out.header, &info);
        print_payload(&out);
    }
    match info.state {
        SegmentState::Foreign => Err(format!(
            "'{name}' is not a shmkit segment (no shmkit header)"
        )),
        SegmentState::Corrupted => Err(format!("segment '{name}' has a corrupted header")),
        SegmentState::Unreadable => Err(format!(
            "segment '{name}' cannot be read (permission denied?)"
        )),
        _ if !out.corrupted.is_empty() => Err(format!(
            "segment '{name}' is corrupted: {}",
            out.corrupted.join("; ")
        )),
        _ => Ok(()),
    }
}

/// Map the segment (as an opener: nothing is written, no slot claimed) and snapshot it.
fn payload(name: &str, out: &mut Inspection) {
    let seg = match Segment::builder(name)
        .open_timeout(std::time::Duration::from_millis(200))
        .open()
    {
        Ok(s) => s,
        Err(e) => {
            out.corrupted.push(format!("cannot map the payload: {e}"));
            return;
        }
    };
    match shmkit_ring::inspect::inspect(&seg) {
        Ok(Some(r)) => {
            out.corrupted.extend(r.problems());
            out.ring = Some(r);
        }
        Ok(None) => {}
        Err(e) => out.corrupted.push(e.to_string()),
    }
    match shmkit_sync::inspect::inspect(&seg) {
        Ok(Some(l)) => {
            out.corrupted.extend(l.problems.iter().cloned());
            out.lock = Some(l);
        }
        Ok(None) => {}
        Err(e) => out.corrupted.push(e.to_string()),
    }
    match shmkit_sync::inspect::inspect_dict(&seg) {
        Ok(d) => out.dict = d,
        Err(e) => out.corrupted.push(e.to_string()),
    }
    if out.ring.is_some() || out.lock.is_some() {
        out.slot_pids = crate::procfs::slot_holders(name);
    }
    if let Some(h) = out.lock.as_ref().and_then(|l| l.holder.as_ref()) {
        out.lock_holder_pid = match h.alive {
            Some(true) => out
                .slot_pids
                .get(&h.slot)
                .and_then(|p| (p.len() == 1).then_some(p[0]))
                .or(h.pid),
            _ => h.pid.or_else(|| {
                is_creator_registration(h.slot, h.generation)
                    .then_some(out.header.creator_pid)
                    .flatten()
            }),
        };
    }
}

/// The creator registers with the lock first, when no other process can have the
/// segment open yet: it takes the first free slot, 0, and bumps its generation to 1. A
/// later registration in slot 0 moves the generation on. So a token of slot 0 and
/// generation 1 names the creator, whose pid (and start time) the header records.
fn is_creator_registration(slot: u32, generation: u32) -> bool {
    slot == 0 && generation == 1
}

fn print_header(r: &Row, info: &shmkit_segment::SegmentInfo) {
    println!("name:          {}", r.name);
    println!("state:         {}", r.state);
    println!("kind:          {}", dash(r.kind.as_deref()));
    println!(
        "type:          {}",
        dash(info.fingerprint.filter(|f| !f.is_none()))
    );
    println!("payload bytes: {}", dash(r.payload_bytes));
    println!("file bytes:    {}", r.file_bytes);
    println!("creator pid:   {}", dash(r.creator_pid));
    println!(
        "creator start: {} (clock ticks since boot)",
        dash(r.creator_start_ticks)
    );
    println!(
        "created:       {} (unix seconds; {} ago)",
        dash(r.created_unix),
        dash(r.age_secs.map(human_age))
    );
}

fn plural(n: u64, one: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {one}s")
    }
}

fn pids(out: &Inspection, slot: u32) -> String {
    match out.slot_pids.get(&slot) {
        Some(p) if !p.is_empty() => {
            let list: Vec<String> = p.iter().map(u32::to_string).collect();
            format!("pid {}", list.join(", "))
        }
        _ => "pid not visible".into(),
    }
}

fn liveness(out: &Inspection, slot: Option<u32>, alive: Option<bool>) -> String {
    match (alive, slot) {
        (Some(true), Some(s)) => format!("alive ({}, slot {s})", pids(out, s)),
        (Some(true), None) => "alive".into(),
        (Some(false), _) => "DEAD (its process is gone)".into(),
        (None, _) => "liveness unknown".into(),
    }
}

fn print_ring(out: &Inspection, r: &RingView, slots: Option<(u32, u32)>) {
    let fill = if r.capacity > 0 {
        100.0 * r.depth_bytes as f64 / r.capacity as f64
    } else {
        0.0
    };
    println!(
        "capacity:      {} bytes ({}; largest message {} bytes)",
        r.capacity,
        human_bytes(r.capacity),
        r.max_message
    );
    println!("wait strategy: {}", r.wait_strategy);
    println!(
        "depth:         {} in flight, {} bytes ({fill:.1}% full)",
        plural(r.depth_messages, "message"),
        r.depth_bytes
    );
    println!(
        "sent:          {} (tail at byte {})",
        plural(r.sent, "message"),
        r.tail
    );
    println!(
        "received:      {} (head at byte {})",
        plural(r.received, "message"),
        r.head
    );
    let side = |label: &str, s: &SideView, slot: Option<u32>, waits_for: &str| {
        let who = if slots.is_some() {
            match s.state {
                "attached" => format!("attached, {}", liveness(out, slot, s.alive)),
                "none" => "not attached (or being handed to another process)".into(),
                "closed" => "closed".into(),
                _ => format!("invalid state word {}", s.state_word),
            }
        } else {
            "shared by the handles below".into()
        };
        let asleep = if s.asleep {
            format!("ASLEEP, waiting for {waits_for}")
        } else {
            "awake".into()
        };
        println!(
            "{label:<15}{who}; {asleep}; woken {}",
            plural(u64::from(s.wakeups), "time")
        );
    };
    side("producer:", &r.producer, slots.map(|s| s.0), "room");
    side("consumer:", &r.consumer, slots.map(|s| s.1), "data");
}

fn print_handles(out: &Inspection, handles: &[HandleView]) {
    // "producing": an open handle that has put (a producer, for disconnection).
    let producing = handles.iter().filter(|h| h.state == "producing").count();
    let open = producing + handles.iter().filter(|h| h.state == "open").count();
    let alive = handles.iter().filter(|h| h.alive == Some(true)).count();
    let closed = handles.iter().filter(|h| h.state == "closed").count();
    println!(
        "handles:       {open} open, {closed} closed (will put no more); {producing} of the open have put; {alive} in live processes"
    );
    for h in handles {
        println!(
            "  slot {:<3}     {}, {}",
            h.slot,
            h.state,
            liveness(out, Some(h.slot), h.alive)
        );
    }
}

fn print_claim(out: &Inspection, label: &str, l: &ClaimLockView) {
    match l.holder {
        None => println!("{label:<15}free"),
        Some(s) => println!(
            "{label:<15}held by handle slot {s}, {}",
            liveness(out, Some(s), l.holder_alive)
        ),
    }
}

fn print_lock(out: &Inspection, l: &LockView) {
    match &l.holder {
        None => println!("lock:          free"),
        Some(h) => {
            let who = match h.alive {
                Some(true) => format!("alive, {}", pids(out, h.slot)),
                Some(false) => {
                    // A dead process holds no file lock and has no /proc entry: only
                    // what the segment recorded is left, and the lock word records a
                    // process slot, not a pid. An RLock also records the owning
                    // thread's kernel id.
                    let pid = match (l.rlock, out.lock_holder_pid) {
                        (_, Some(pid)) => format!("dead holder pid {pid}"),
                        (Some((tid, _)), None) if tid != 0 => format!(
                            "its pid was not recorded (it died taking the lock); its thread id was {tid}"
                        ),
                        _ => "its pid was not recorded (it died between taking the lock and recording it)"
                            .into(),
                    };
                    format!(
                        "DEAD: {}; {pid}; the next locker takes it over with owner_died",
                        h.dead_because.unwrap_or("its process is gone")
                    )
                }
                None => "liveness unknown".into(),
            };
            println!(
                "lock:          held by process slot {} (generation {}), {who}",
                h.slot, h.generation
            );
        }
    }
    println!(
        "waiters:       {}",
        if l.waiters {
            "yes (someone may sleep on the lock word)"
        } else {
            "none"
        }
    );
    if let Some((tid, depth)) = l.rlock {
        println!("rlock owner:   thread {tid}, depth {depth}");
    }
    println!(
        "data:          {}; taken over from a dead holder {}",
        if l.inconsistent {
            "INCONSISTENT (a holder died; nobody called mark_consistent)"
        } else {
            "consistent"
        },
        plural(u64::from(l.recoveries), "time")
    );
    let live: Vec<String> = l
        .live_slots
        .iter()
        .map(|s| format!("{s} ({})", pids(out, *s)))
        .collect();
    println!(
        "processes:     {} registered now{}; {} ever used",
        live.len(),
        if live.is_empty() {
            String::new()
        } else {
            format!(" (slots {})", live.join(", "))
        },
        plural(u64::from(l.used_slots), "slot")
    );
}

fn print_payload(out: &Inspection) {
    match &out.ring {
        Some(Report::Spsc(r)) => {
            println!("ring:          SPSC byte ring (one producer, one consumer)");
            print_ring(out, r, Some((0, 1)));
        }
        Some(Report::Queue(q)) => {
            println!("ring:          Queue (many producers and consumers over one byte ring)");
            print_ring(out, &q.ring, None);
            print_handles(out, &q.handles);
            print_claim(out, "put lock:", &q.put_lock);
            print_claim(out, "get lock:", &q.get_lock);
            println!(
                "unfinished:    {} (put and not yet task_done); join {}",
                q.unfinished,
                if q.join_asleep {
                    "ASLEEP"
                } else {
                    "not waiting"
                }
            );
            if q.in_transit > 0 {
                println!("in transit:    {} handles", q.in_transit);
            }
        }
        Some(Report::PodQueue(p)) => {
            println!("ring:          PodQueue (fixed-size slots, lock-free MPMC)");
            println!(
                "capacity:      {} slots of {} bytes",
                p.capacity, p.item_size
            );
            println!("wait strategy: {}", p.wait_strategy);
            println!("depth:         {} items", p.depth);
            println!("sent:          {} items (tail)", p.sent);
            println!(
                "received:      {} items (head; {} abandoned by dead producers)",
                p.received, p.abandoned
            );
            println!(
                "sleepers:      consumers {}, producers {}",
                if p.consumers_asleep {
                    "ASLEEP (waiting for items)"
                } else {
                    "awake"
                },
                if p.producers_asleep {
                    "ASLEEP (waiting for room)"
                } else {
                    "awake"
                }
            );
            print_handles(out, &p.handles);
            for (slot, pos) in &p.claims {
                println!("  claim:       handle slot {slot} is writing position {pos}");
            }
        }
        Some(Report::Pipe(p)) => {
            println!("ring A:        end 0 -> end 1");
            print_ring(out, &p.a, Some((0, 1)));
            println!("ring B:        end 1 -> end 0");
            print_ring(out, &p.b, Some((1, 0)));
        }
        Some(_) | None => {}
    }
    if let Some(l) = &out.lock {
        print_lock(out, l);
    }
    if let Some(d) = &out.dict {
        print_dict(d);
    }
    for c in &out.corrupted {
        println!("corrupted: {c}");
    }
}

fn print_dict(d: &DictView) {
    let bound = d.max_entries.map_or("unbounded (grows)".to_owned(), |n| {
        format!("at most {n} entries")
    });
    println!("dict entries:  {} ({bound})", d.entries);
    println!(
        "capacity:      {} entries before the table grows ({} slots)",
        d.capacity, d.slots
    );
    println!("load factor:   {:.2}", d.load_factor);
    println!(
        "generation:    {} (table segment {})",
        d.generation, d.table
    );
    println!(
        "storage:       {} of {} used, {} of it replaced or removed; {} tombstones",
        human_bytes(d.heap_used),
        human_bytes(d.heap_bytes),
        human_bytes(d.heap_garbage),
        d.tombstones
    );
}
