//! Developer tasks of the shmkit workspace, run as `cargo xtask <task>` from anywhere in
//! the checkout (the alias lives in `.cargo/config.toml`). This crate is never published:
//! what it needs (plotters for the SVG plots) stays out of the `shmkit` binary users
//! install.
//!
//! | task | what it does | example |
//! |---|---|---|
//! | `report [--criterion-dir D] [--out D]` | criterion results to markdown tables (printed) and one SVG plot per group | `cargo xtask report` |
//!
//! Exit codes: **0** success; **1** the task failed (the message says why); **2** bad
//! usage.

#![warn(missing_debug_implementations, unreachable_pub)]
#![warn(clippy::multiple_unsafe_ops_per_block)]

mod report;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Developer tasks of the shmkit workspace (not installed with shmkit).
#[derive(Parser, Debug)]
#[command(name = "cargo xtask", bin_name = "cargo xtask", about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand, Debug)]
enum Task {
    /// Turn criterion's results into markdown tables (printed) and SVG plots.
    ///
    /// Reads every `benchmark.json` / `estimates.json` under the criterion directory;
    /// prints one table per group (median, 95 % interval, throughput, ratio to `pipe`)
    /// and writes `<group>.svg` into the output directory.
    #[command(after_help = "Example: cargo bench --bench ring && cargo xtask report")]
    Report {
        /// Criterion's output directory [default: criterion/ in $CARGO_TARGET_DIR, or in
        /// the workspace's target/].
        #[arg(long, value_name = "DIR")]
        criterion_dir: Option<PathBuf>,
        /// Where the SVG plots go [default: the workspace's docs/plots].
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
}

/// The workspace root: this crate lives in `<root>/xtask`.
fn workspace_root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.parent().map_or(here.clone(), PathBuf::from)
}

fn main() -> ExitCode {
    let cli = Cli::parse(); // exits with 2 on bad usage (clap's convention)
    let result = match cli.task {
        Task::Report { criterion_dir, out } => {
            let root = workspace_root();
            let criterion_dir = criterion_dir.unwrap_or_else(|| {
                std::env::var_os("CARGO_TARGET_DIR")
                    .map_or_else(|| root.join("target"), PathBuf::from)
                    .join("criterion")
            });
            let out = out.unwrap_or_else(|| root.join("docs/plots"));
            report::run(&criterion_dir, &out)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cargo xtask: {e}");
            ExitCode::from(1)
        }
    }
}
