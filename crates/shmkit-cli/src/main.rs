//! `shmkit`: see what is in shared memory, watch it move, clean up what dead processes
//! left, and measure shared memory against pipes on this machine.
//!
//! | command | what it does | example |
//! |---|---|---|
//! | `ls [--all] [--json]` | every shmkit segment in /dev/shm: kind, type, size, creator, age, alive/stale (`--all`: other files too) | `shmkit ls` |
//! | `inspect NAME [--json]` | one segment's header field by field, and its payload: for rings capacity, depth, counters, sides and sleepers; for locks the holder and whether it lives | `shmkit inspect jobs` |
//! | `watch NAME [--interval SECS] [--count N]` | a ring's message rate, bytes/s and depth, refreshed like `top` until Ctrl-C (or N refreshes) | `shmkit watch jobs --interval 0.5` |
//! | `rm NAME...` | remove segments by name | `shmkit rm jobs results` |
//! | `rm --stale [--dry-run]` | remove every segment whose creator is gone | `shmkit rm --stale --dry-run` |
//! | `bench [--quick]` | shm ring, `Queue<u64>` and `Event` against a pipe and a Unix socket, two processes, 8 B / 64 B / 64 KiB: a throughput and a round-trip table | `shmkit bench --quick` |
//!
//! `inspect` of a ring with two messages in it:
//!
//! ```text
//! $ shmkit inspect jobs
//! name:          jobs
//! state:         alive
//! kind:          SpscRing
//! ...
//! ring:          SPSC byte ring (one producer, one consumer)
//! capacity:      4096 bytes (4.0K; largest message 2040 bytes)
//! depth:         2 messages in flight, 32 bytes (0.8% full)
//! sent:          3 messages (tail at byte 48)
//! received:      1 message (head at byte 16)
//! producer:      attached, alive (pid 4242, slot 0); awake; woken 0 times
//! consumer:      attached, alive (pid 4243, slot 1); ASLEEP, waiting for data; woken 1 time
//! ```
//!
//! and of a mutex whose holder was killed (a taker records its pid next to the lock word;
//! liveness itself comes from the kernel-released slot):
//!
//! ```text
//! lock:          held by process slot 0 (generation 1), DEAD: its liveness slot is free:
//!                the kernel released it when the process died; dead holder pid 4242;
//!                the next locker takes it over with owner_died
//! ```
//!
//! A value that breaks the layout's invariants prints as `corrupted: <what>`; nothing read
//! from a segment can crash the command.
//!
//! Exit codes: **0** success; **1** the operation failed: a segment could not be read,
//! found or removed, is corrupted, or a benchmark failed (the message names it and the
//! cause); **2** bad usage (unknown command or option, missing or malformed argument).

#![warn(missing_debug_implementations, unreachable_pub)]
#![warn(clippy::multiple_unsafe_ops_per_block)]

mod bench;
mod frame;
mod inspect;
mod procfs;
mod remote;
mod watch;

use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{Parser, Subcommand};
use serde::Serialize;
use shmkit::segment::{SegmentInfo, SegmentState};

/// See what is in shared memory, watch it move, clean up what dead processes left, and
/// compare shared memory with pipes on this machine.
#[derive(Parser, Debug)]
#[command(
    name = "shmkit",
    version,
    about,
    long_about = None,
    after_help = EXIT_CODES
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

const EXIT_CODES: &str = "Exit codes:\n  \
    0  success\n  \
    1  the operation failed: a segment could not be read, found or removed, is corrupted, \
    or a benchmark failed (the message names it and the cause)\n  \
    2  bad usage: unknown command or option, missing or malformed argument";

#[derive(Subcommand, Debug)]
enum Command {
    /// List shmkit segments in /dev/shm: name, kind and type, size, creator, age, state.
    ///
    /// State is `alive` while the creating process lives, `stale` once it is gone (it
    /// died or exited without removing the segment), `init` while it is being created.
    Ls {
        /// Also list files in /dev/shm that are not shmkit segments (as `foreign`).
        #[arg(long)]
        all: bool,
        /// Print JSON (an array of objects) instead of a table.
        #[arg(long)]
        json: bool,
        /// List the remote queues and pools (shmkit-remote) on this Redis server
        /// instead: depth, entries held by consumers or workers, dead letters.
        #[arg(long, value_name = "URL")]
        url: Option<String>,
    },
    /// Show one segment: its header field by field, then its payload.
    ///
    /// Rings (SPSC channel, Queue, PodQueue, Pipe): capacity, depth in messages and bytes,
    /// messages sent and received, each side's state and liveness (with the pids of live
    /// holders, from /proc), and whether a side is asleep waiting for the other.
    /// Locks (Mutex, RLock, Value, Array, Dict): free or held, by which process slot,
    /// whether that process lives, waiters, recoveries from dead holders.
    /// Whatever breaks the layout's invariants prints as `corrupted: <what>` (exit 1).
    #[command(after_help = "Example: shmkit inspect jobs --json")]
    Inspect {
        /// The segment name (the file name under /dev/shm).
        name: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Show the remote queue or pool NAME on this Redis server instead.
        #[arg(long, value_name = "URL")]
        url: Option<String>,
    },
    /// Watch a ring live: messages/s, bytes/s and depth, refreshed like `top`.
    ///
    /// Runs until Ctrl-C, or for --count refreshes. Rates come from the ring's own
    /// counters between two refreshes; bytes count the ring's records (length words and
    /// padding included). Nothing is written to the segment.
    #[command(after_help = "Example: shmkit watch jobs --interval 0.5 --count 10")]
    Watch {
        /// The ring's segment name (SpscRing, Queue, MpmcQueue or Pipe).
        name: String,
        /// Seconds between refreshes (fractions allowed).
        #[arg(long, default_value = "1", value_name = "SECS", value_parser = watch::parse_interval)]
        interval: Duration,
        /// Stop after N refreshes (default: until Ctrl-C).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
        count: Option<u64>,
    },
    /// Remove segments: by name, or every stale one.
    Rm {
        /// Segment names to remove.
        #[arg(required_unless_present = "stale", conflicts_with = "stale")]
        names: Vec<String>,
        /// Remove every shmkit segment whose creator is gone (and nothing else).
        #[arg(long)]
        stale: bool,
        /// Show what would be removed, remove nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Compare shared memory with a pipe and a Unix socket on this machine.
    ///
    /// Two processes (this binary runs the peer). Throughput of the SPSC ring, a pipe and
    /// a Unix socket for 8 B, 64 B and 64 KiB messages, and of `Queue<u64>`; round-trip
    /// latency (median, p99) of the same, and of an Event wake-up. Prints two markdown
    /// tables with the ratio to the pipe. About 25 s; --quick about 8 s.
    #[command(after_help = "Example: shmkit bench --quick")]
    Bench {
        /// Shorter runs (0.25 s per measurement instead of 1 s).
        #[arg(long)]
        quick: bool,
        /// Milliseconds per measurement (overrides --quick; for tests).
        #[arg(long, hide = true, value_parser = clap::value_parser!(u64).range(1..=60_000))]
        per_run_ms: Option<u64>,
        /// Message sizes in bytes, comma-separated (for tests).
        #[arg(long, hide = true, value_delimiter = ',')]
        sizes: Option<Vec<usize>>,
    },
    /// The peer process of `bench` (internal).
    #[command(hide = true)]
    BenchPeer { role: String, arg: String },
}

/// One row of `ls` / the body of `inspect`, as printed and as JSON.
#[derive(Serialize, Debug)]
struct Row {
    name: String,
    state: &'static str,
    kind: Option<String>,
    type_name: Option<String>,
    payload_bytes: Option<u64>,
    file_bytes: u64,
    creator_pid: Option<u32>,
    creator_start_ticks: Option<u64>,
    created_unix: Option<u64>,
    age_secs: Option<u64>,
}

fn state_name(s: SegmentState) -> &'static str {
    match s {
        SegmentState::Alive => "alive",
        SegmentState::Stale => "stale",
        SegmentState::Initializing => "init",
        SegmentState::Corrupted => "corrupted",
        SegmentState::Foreign => "foreign",
        SegmentState::Unreadable => "unreadable",
    }
}

fn row(info: &SegmentInfo) -> Row {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    Row {
        name: info.name.clone(),
        state: state_name(info.state),
        kind: info.kind.map(|k| k.to_string()),
        type_name: info
            .fingerprint
            .filter(|f| !f.is_none())
            .map(|f| f.name().to_owned()),
        payload_bytes: info.payload_size,
        file_bytes: info.file_size,
        creator_pid: info.creator.map(|c| c.pid),
        creator_start_ticks: info.creator.map(|c| c.start_time),
        created_unix: info.creator.map(|c| c.created_unix),
        age_secs: info.creator.map(|c| now.saturating_sub(c.created_unix)),
    }
}

fn human_bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 30 => format!("{:.1}G", n as f64 / (1u64 << 30) as f64),
        n if n >= 1 << 20 => format!("{:.1}M", n as f64 / (1u64 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.1}K", n as f64 / 1024.0),
        n => format!("{n}B"),
    }
}

fn human_age(secs: u64) -> String {
    match secs {
        s if s >= 86_400 => format!("{}d", s / 86_400),
        s if s >= 3_600 => format!("{}h", s / 3_600),
        s if s >= 60 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

fn dash<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

fn is_shmkit(info: &SegmentInfo) -> bool {
    !matches!(info.state, SegmentState::Foreign | SegmentState::Unreadable)
}

fn ls(all: bool, json: bool) -> Result<(), String> {
    let infos = shmkit::segment::list().map_err(|e| format!("cannot read /dev/shm: {e}"))?;
    let rows: Vec<Row> = infos
        .iter()
        .filter(|i| all || is_shmkit(i))
        .map(row)
        .collect();
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&rows).map_err(|e| e.to_string())?
        );
        return Ok(());
    }
    println!(
        "{:<40} {:<14} {:<20} {:>8} {:>8} {:>5} STATE",
        "NAME", "KIND", "TYPE", "SIZE", "PID", "AGE"
    );
    for r in &rows {
        println!(
            "{:<40} {:<14} {:<20} {:>8} {:>8} {:>5} {}",
            r.name,
            dash(r.kind.as_deref()),
            dash(r.type_name.as_deref()),
            human_bytes(r.payload_bytes.unwrap_or(r.file_bytes)),
            dash(r.creator_pid),
            dash(r.age_secs.map(human_age)),
            r.state
        );
    }
    Ok(())
}

fn remove(name: &str) -> Result<(), String> {
    shmkit::segment::validate_name(name).map_err(|e| e.to_string())?;
    std::fs::remove_file(format!("/dev/shm/{name}")).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => format!("segment '{name}' not found in /dev/shm"),
        _ => format!("cannot remove segment '{name}': {e}"),
    })
}

fn rm(names: &[String], stale: bool, dry_run: bool) -> Result<(), String> {
    let targets: Vec<String> = if stale {
        shmkit::segment::list()
            .map_err(|e| format!("cannot read /dev/shm: {e}"))?
            .into_iter()
            .filter(|i| i.state == SegmentState::Stale)
            .map(|i| i.name)
            .collect()
    } else {
        names.to_vec()
    };
    let mut failed = Vec::new();
    for name in &targets {
        // Re-check right before removing: a stale name could have been re-created since.
        if stale && shmkit::segment::inspect(name).state != SegmentState::Stale {
            continue;
        }
        if dry_run {
            println!("would remove {name}");
            continue;
        }
        match remove(name) {
            Ok(()) => println!("removed {name}"),
            Err(e) => failed.push(e),
        }
    }
    if stale && targets.is_empty() {
        println!("no stale segments");
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(failed.join("\n"))
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse(); // exits with 2 on bad usage (clap's convention)
    let result = match &cli.command {
        Command::Ls { all, json, url } => match url {
            Some(url) => remote::ls(url, *json),
            None => ls(*all, *json),
        },
        Command::Inspect { name, json, url } => match url {
            Some(url) => remote::show(url, name, *json),
            None => inspect::run(name, *json),
        },
        Command::Watch {
            name,
            interval,
            count,
        } => watch::run(name, *interval, *count),
        Command::Bench {
            quick,
            per_run_ms,
            sizes,
        } => bench::run(*quick, per_run_ms.map(Duration::from_millis), sizes.clone()),
        Command::BenchPeer { role, arg } => bench::peer(role, arg),
        Command::Rm {
            names,
            stale,
            dry_run,
        } => rm(names, *stale, *dry_run),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("shmkit: {e}");
            ExitCode::from(1)
        }
    }
}
