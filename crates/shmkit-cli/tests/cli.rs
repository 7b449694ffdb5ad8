//! The real `shmkit` binary against real segments: a live one, a stale one left by a
//! process that died, and a foreign file in /dev/shm.

use std::process::{Command, Output};

use shmkit::segment::Segment;

shmkit_process::test_support!();

fn shmkit(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_shmkit"))
        .args(args)
        .output()
        .expect("run the shmkit binary")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn unique(tag: &str) -> String {
    format!("shmkit-test-cli-{tag}-{}", std::process::id())
}

struct Cleanup(String);
impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(format!("/dev/shm/{}", self.0));
    }
}

/// Runs in a child: create a segment and die without removing it.
fn create_and_die(name: String) {
    let _seg = Segment::builder(&name)
        .size(4096)
        .kind(shmkit::segment::Kind::Queue)
        .create()
        .expect("create");
    std::process::abort();
}

#[test]
fn ls_lists_a_live_segment_with_its_kind_and_creator() {
    let name = unique("live");
    let _c = Cleanup(name.clone());
    let _seg = Segment::builder(&name)
        .size(1 << 20)
        .kind(shmkit::segment::Kind::Mutex)
        .typed::<u64>()
        .create()
        .unwrap();
    let out = shmkit(&["ls"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let line = stdout(&out)
        .lines()
        .find(|l| l.starts_with(&name))
        .map(str::to_owned)
        .expect("listed");
    assert!(
        line.contains("Mutex") && line.contains("u64") && line.contains("1.0M"),
        "{line}"
    );
    assert!(line.ends_with("alive"), "{line}");
    assert!(line.contains(&std::process::id().to_string()), "{line}");

    let out = shmkit(&["ls", "--json"]);
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    let row = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name.as_str())
        .expect("in the JSON");
    assert_eq!(row["state"], "alive");
    assert_eq!(row["kind"], "Mutex");
    assert_eq!(row["payload_bytes"], 1 << 20);

    let out = shmkit(&["inspect", &name]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("type:          u64 (8 bytes, align 8)"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn a_stale_segment_is_found_and_only_it_is_removed() {
    let dead = unique("stale");
    let live = unique("stays");
    let _c1 = Cleanup(dead.clone());
    let _c2 = Cleanup(live.clone());
    let _live = Segment::create(&live, 64).unwrap();
    let child = shmkit_process::spawn(create_and_die, dead.clone()).unwrap();
    assert!(child.join().is_err(), "the child aborted");
    assert!(
        std::path::Path::new(&format!("/dev/shm/{dead}")).exists(),
        "left behind"
    );

    let listing = stdout(&shmkit(&["ls"]));
    let line = listing
        .lines()
        .find(|l| l.starts_with(&dead))
        .expect("listed");
    assert!(line.ends_with("stale"), "{line}");

    let dry = shmkit(&["rm", "--stale", "--dry-run"]);
    assert!(dry.status.success());
    assert!(
        stdout(&dry).contains(&format!("would remove {dead}")),
        "{}",
        stdout(&dry)
    );
    assert!(
        std::path::Path::new(&format!("/dev/shm/{dead}")).exists(),
        "dry run removes nothing"
    );

    let rm = shmkit(&["rm", "--stale"]);
    assert!(rm.status.success(), "{}", stderr(&rm));
    assert!(stdout(&rm).contains(&format!("removed {dead}")));
    assert!(!std::path::Path::new(&format!("/dev/shm/{dead}")).exists());
    assert!(
        std::path::Path::new(&format!("/dev/shm/{live}")).exists(),
        "a live one stays"
    );
}

#[test]
fn a_foreign_file_is_listed_only_with_all_and_never_crashes_inspect() {
    let name = unique("foreign");
    let _c = Cleanup(name.clone());
    std::fs::write(format!("/dev/shm/{name}"), b"not a shmkit segment").unwrap();
    assert!(!stdout(&shmkit(&["ls"])).contains(&name));
    let all = stdout(&shmkit(&["ls", "--all"]));
    let line = all
        .lines()
        .find(|l| l.starts_with(&name))
        .expect("listed with --all");
    assert!(line.ends_with("foreign"), "{line}");
    let out = shmkit(&["inspect", &name]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("not a shmkit segment"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn errors_name_the_segment_and_exit_codes_are_documented() {
    let missing = unique("missing");
    let out = shmkit(&["rm", &missing]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains(&missing) && stderr(&out).contains("not found"));
    let out = shmkit(&["inspect", &missing]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(shmkit(&["frobnicate"]).status.code(), Some(2), "bad usage");
    assert_eq!(
        shmkit(&["rm"]).status.code(),
        Some(2),
        "rm needs names or --stale"
    );
    let help = stdout(&shmkit(&["--help"]));
    assert!(help.contains("Exit codes"), "{help}");
}

#[test]
fn report_turns_criterion_output_into_tables_and_svg_plots() {
    let dir = std::env::temp_dir().join(format!("shmkit-report-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    for (transport, size, bytes, ns) in [
        ("pipe", "64B", 64u64, 1000.0f64),
        ("spsc_ring", "64B", 64, 10.0),
        ("pipe", "1KiB", 1024, 1500.0),
        ("spsc_ring", "1KiB", 1024, 60.0),
    ] {
        let d = dir
            .join("criterion/throughput")
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
    let crit = dir.join("criterion");
    let plots = dir.join("plots");
    let out = shmkit(&[
        "report",
        "--criterion-dir",
        crit.to_str().unwrap(),
        "--out",
        plots.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("| spsc_ring | 64B | 10.0 ns |"), "{text}");
    assert!(text.contains("100.0x faster"), "{text}");
    let svg = std::fs::read_to_string(plots.join("throughput.svg")).unwrap();
    assert!(
        svg.contains("<svg") && svg.contains("spsc_ring"),
        "a plot with a legend"
    );
    let _ = std::fs::remove_dir_all(&dir);
    let missing = shmkit(&["report", "--criterion-dir", "/nonexistent-criterion-dir"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(stderr(&missing).contains("run `cargo bench` first"));
}
