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

/// Runs in a child: open the segment by name and write a greeting into it.
fn write_greeting(handle: SegmentHandle) -> usize {
    let seg = handle.open().expect("child opens the segment");
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
    let written = spawn(write_greeting, seg.handle())?.join()?;
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

fn main() -> Result {
    shmkit::init();
    println!("shmkit tour — pid {}", std::process::id());
    segment_tour()?;
    process_tour()?;
    Ok(())
}
