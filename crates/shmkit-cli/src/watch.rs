//! `shmkit watch NAME`: a ring's message rate, byte rate and depth, refreshed every
//! interval like `top`, until Ctrl-C or `--count` refreshes.
//!
//! Rates are differences of the ring's own counters (messages committed and released,
//! byte positions) between two snapshots, divided by the time between them; nothing is
//! added to the shared layout and nothing is written to the segment. On a terminal the
//! screen is redrawn in place; otherwise (a pipe, a test) one line per refresh.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use shmkit_ring::inspect::{Flow, Report};
use shmkit_segment::Segment;

use crate::human_bytes;

/// Parse `--interval`: seconds, positive and at most a day (clap turns the error into a
/// usage error, exit 2).
pub(crate) fn parse_interval(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .parse()
        .map_err(|_| format!("'{s}' is not a number of seconds"))?;
    if !(secs.is_finite() && secs > 0.0 && secs <= 86_400.0) {
        return Err(format!(
            "the interval must be more than 0 and at most 86400 seconds, not {s}"
        ));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn snapshot(seg: &Segment) -> Result<Report, String> {
    match shmkit_ring::inspect::inspect(seg) {
        Ok(Some(r)) => Ok(r),
        Ok(None) => Err(format!(
            "'{}' holds a {}, not a ring: watch works on SpscRing, Queue, MpmcQueue and Pipe segments",
            seg.name(),
            seg.kind()
        )),
        Err(e) => Err(format!("corrupted: {e}")),
    }
}

fn rate(now: u64, before: u64, secs: f64) -> f64 {
    now.wrapping_sub(before) as f64 / secs
}

fn si(x: f64) -> String {
    match x {
        x if x >= 1e9 => format!("{:.2}G", x / 1e9),
        x if x >= 1e6 => format!("{:.2}M", x / 1e6),
        x if x >= 1e3 => format!("{:.1}k", x / 1e3),
        x => format!("{x:.0}"),
    }
}

const HEADER: &str =
    "    SENT/s    RECV/s   BYTES/s   DEPTH  DEPTH-B   FILL        SENT    RECEIVED";

fn line(now: &Flow, before: &Flow, secs: f64) -> String {
    let fill = if now.capacity_bytes > 0 {
        100.0 * now.depth_bytes as f64 / now.capacity_bytes as f64
    } else {
        0.0
    };
    format!(
        "{:>10}{:>10}{:>9}/s{:>8}{:>9}{:>6.1}%{:>12}{:>12}",
        si(rate(now.sent, before.sent, secs)),
        si(rate(now.received, before.received, secs)),
        human_bytes(rate(now.bytes_received, before.bytes_received, secs) as u64),
        now.depth_messages,
        human_bytes(now.depth_bytes),
        fill,
        now.sent,
        now.received
    )
}

pub(crate) fn run(name: &str, interval: Duration, count: Option<u64>) -> Result<(), String> {
    shmkit_segment::validate_name(name).map_err(|e| e.to_string())?;
    let seg = Segment::builder(name)
        .open_timeout(Duration::from_millis(200))
        .open()
        .map_err(|e| e.to_string())?;
    let tty = std::io::stdout().is_terminal();
    let mut before = snapshot(&seg)?.flow();
    let mut t_before = Instant::now();
    let mut history: Vec<String> = Vec::new();
    let mut corrupted = false;
    let mut shown = 0u64;
    if !tty {
        println!("watching {name} ({}), every {interval:?}", seg.kind());
        println!("{HEADER}");
    }
    while count.is_none_or(|c| shown < c) {
        // The refresh period of the view (like top's), not a wait for anything.
        std::thread::sleep(interval);
        let report = snapshot(&seg)?;
        let now = report.flow();
        let t_now = Instant::now();
        let secs = t_now.duration_since(t_before).as_secs_f64().max(1e-9);
        let row = line(&now, &before, secs);
        let problems = report.problems();
        corrupted |= !problems.is_empty();
        if tty {
            history.push(row);
            if history.len() > 20 {
                history.remove(0);
            }
            let mut out = String::from("\x1b[H\x1b[2J");
            out += &format!(
                "shmkit watch {name} ({}) - every {interval:?}, Ctrl-C to stop\n\n",
                seg.kind()
            );
            out += &format!(
                "capacity {}, in flight {} messages / {}\n\n{HEADER}\n",
                human_bytes(now.capacity_bytes),
                now.depth_messages,
                human_bytes(now.depth_bytes)
            );
            for r in &history {
                out += r;
                out.push('\n');
            }
            for p in &problems {
                out += &format!("corrupted: {p}\n");
            }
            print!("{out}");
        } else {
            println!("{row}");
            for p in &problems {
                println!("corrupted: {p}");
            }
        }
        let _ = std::io::stdout().flush();
        if !std::path::Path::new(&format!("/dev/shm/{name}")).exists() {
            println!("segment '{name}' was removed");
            break;
        }
        before = now;
        t_before = t_now;
        shown += 1;
    }
    if corrupted {
        return Err(format!("segment '{name}' is corrupted (see above)"));
    }
    Ok(())
}
