//! `shmkit`: see what is in shared memory, and clean up what dead processes left.
//!
//! ```text
//! shmkit ls [--all] [--json]          every shmkit segment in /dev/shm (--all: other files too)
//! shmkit inspect NAME [--json]        one segment's header, field by field
//! shmkit rm NAME...                   remove segments by name
//! shmkit rm --stale [--dry-run]       remove every segment whose creator is gone
//! shmkit report [--criterion-dir D] [--out D]   benchmark tables and SVG plots
//! ```
//!
//! Exit codes: 0 success; 1 a segment could not be read, found or removed (the message
//! names it and the cause); 2 bad usage.

mod report;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::{Parser, Subcommand};
use serde::Serialize;
use shmkit::segment::{SegmentInfo, SegmentState};

/// See what is in shared memory, and clean up what dead processes left behind.
///
/// Exit codes: 0 success; 1 a segment could not be read, found or removed; 2 bad usage.
#[derive(Parser, Debug)]
#[command(
    name = "shmkit",
    version,
    about,
    long_about = None,
    after_help = "Exit codes: 0 success; 1 a segment could not be read, found or removed \
                  (the message names it and the cause); 2 bad usage."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

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
    },
    /// Show one segment's header field by field.
    Inspect {
        /// The segment name (the file name under /dev/shm).
        name: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
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
    /// Turn criterion's results into markdown tables (printed) and SVG plots.
    ///
    /// Reads every `benchmark.json` / `estimates.json` under the criterion directory;
    /// prints one table per group (median, 95 % interval, throughput, ratio to `pipe`)
    /// and writes `<group>.svg` into the output directory.
    Report {
        /// Criterion's output directory.
        #[arg(long, default_value = "target/criterion")]
        criterion_dir: PathBuf,
        /// Where the SVG plots go.
        #[arg(long, default_value = "docs/plots")]
        out: PathBuf,
    },
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

fn inspect(name: &str, json: bool) -> Result<(), String> {
    shmkit::segment::validate_name(name).map_err(|e| e.to_string())?;
    if !std::path::Path::new(&format!("/dev/shm/{name}")).exists() {
        return Err(format!("segment '{name}' not found in /dev/shm"));
    }
    let info = shmkit::segment::inspect(name);
    let r = row(&info);
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&r).map_err(|e| e.to_string())?
        );
    } else {
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
    match info.state {
        SegmentState::Foreign => Err(format!(
            "'{name}' is not a shmkit segment (no shmkit header)"
        )),
        SegmentState::Corrupted => Err(format!("segment '{name}' has a corrupted header")),
        SegmentState::Unreadable => Err(format!(
            "segment '{name}' cannot be read (permission denied?)"
        )),
        _ => Ok(()),
    }
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
    let cli = Cli::parse(); // exits with 2 on bad usage
    let result = match &cli.command {
        Command::Ls { all, json } => ls(*all, *json),
        Command::Inspect { name, json } => inspect(name, *json),
        Command::Rm {
            names,
            stale,
            dry_run,
        } => rm(names, *stale, *dry_run),
        Command::Report { criterion_dir, out } => report::run(criterion_dir, out),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("shmkit: {e}");
            ExitCode::from(1)
        }
    }
}
