//! `cargo xtask report` against a small criterion tree written by the test.

use std::path::Path;
use std::process::{Command, Output};

fn xtask(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .output()
        .expect("run the xtask binary")
}

fn write_point(criterion: &Path, transport: &str, size: &str, bytes: u64, ns: f64) {
    let d = criterion
        .join("throughput")
        .join(transport)
        .join(size)
        .join("new");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(
        d.join("benchmark.json"),
        format!(
            r#"{{"group_id":"throughput","function_id":"{transport}","value_str":"{size}","throughput":{{"Bytes":{bytes}}}}}"#
        ),
    )
    .unwrap();
    std::fs::write(
        d.join("estimates.json"),
        format!(
            r#"{{"median":{{"point_estimate":{ns},"confidence_interval":{{"lower_bound":{ns},"upper_bound":{ns},"confidence_level":0.95}}}}}}"#
        ),
    )
    .unwrap();
}

/// Removes the test's directory even when an assertion fails.
struct TempDir(std::path::PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn report_turns_criterion_output_into_tables_and_svg_plots() {
    let dir =
        TempDir(std::env::temp_dir().join(format!("xtask-report-test-{}", std::process::id())));
    let _ = std::fs::remove_dir_all(&dir.0);
    let crit = dir.0.join("criterion");
    for (transport, size, bytes, ns) in [
        ("pipe", "64B", 64u64, 1000.0f64),
        ("spsc_ring", "64B", 64, 10.0),
        ("pipe", "1KiB", 1024, 1500.0),
        ("spsc_ring", "1KiB", 1024, 60.0),
    ] {
        write_point(&crit, transport, size, bytes, ns);
    }
    let plots = dir.0.join("plots");
    let out = xtask(&[
        "report",
        "--criterion-dir",
        crit.to_str().unwrap(),
        "--out",
        plots.to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("| spsc_ring | 64B | 10.0 ns |"), "{text}");
    assert!(text.contains("100.0x faster"), "{text}");
    let svg = std::fs::read_to_string(plots.join("throughput.svg")).unwrap();
    assert!(
        svg.contains("<svg") && svg.contains("spsc_ring"),
        "a plot with a legend"
    );
}

#[test]
fn report_without_results_says_to_run_the_benches_and_exits_1() {
    let missing = xtask(&["report", "--criterion-dir", "/nonexistent-criterion-dir"]);
    assert_eq!(missing.status.code(), Some(1));
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(err.contains("run `cargo bench` first"), "{err}");
    assert_eq!(xtask(&["no-such-task"]).status.code(), Some(2));
}
