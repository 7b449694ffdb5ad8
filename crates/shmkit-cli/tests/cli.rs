//! The real `shmkit` binary against real segments: a live one, a stale one left by a
//! process that died, and a foreign file in /dev/shm.

use std::process::{Command, Output};

use shmkit::segment::Segment;
use shmkit_testing::unique;

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

/// Tests that leave a stale segment behind, and the test that runs `rm --stale`, take
/// this lock: otherwise `rm --stale` may remove another test's stale segment mid-test.
static STALE: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn stale_lock() -> std::sync::MutexGuard<'static, ()> {
    STALE.lock().unwrap_or_else(|p| p.into_inner())
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
    let _stale = stale_lock();
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

// ---------------------------------------------------------------------------------
// inspect of payloads, watch, bench

fn spawn_shmkit(args: &[&str]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_shmkit"))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run the shmkit binary")
}

fn line_with<'a>(text: &'a str, prefix: &str) -> &'a str {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting with {prefix:?} in:\n{text}"))
}

#[test]
fn inspect_a_ring_shows_depth_counters_and_sides() {
    let name = unique("ring");
    let _c = Cleanup(name.clone());
    let (mut tx, mut rx) = shmkit::ring::spsc::channel(&name, 1 << 12).unwrap();
    for m in [&b"one"[..], b"two", b"three"] {
        tx.send(m).unwrap();
    }
    assert_eq!(rx.recv_vec().unwrap(), b"one");

    let out = shmkit(&["inspect", &name]);
    let text = stdout(&out);
    assert!(out.status.success(), "{}{text}", stderr(&out));
    assert!(line_with(&text, "kind:").contains("SpscRing"), "{text}");
    assert!(
        line_with(&text, "capacity:").contains("4096 bytes"),
        "{text}"
    );
    assert!(
        line_with(&text, "depth:").contains("2 messages in flight, 32 bytes"),
        "{text}"
    );
    assert!(line_with(&text, "sent:").contains("3 messages"), "{text}");
    assert!(
        line_with(&text, "wait strategy:").contains("blocking"),
        "{text}"
    );
    assert!(
        line_with(&text, "received:").contains("1 message "),
        "{text}"
    );
    let me = std::process::id().to_string();
    let producer = line_with(&text, "producer:");
    assert!(
        producer.contains("attached, alive") && producer.contains(&me),
        "{producer}"
    );
    assert!(line_with(&text, "consumer:").contains("awake"), "{text}");
    assert!(!text.contains("corrupted"), "{text}");

    let out = shmkit(&["inspect", &name, "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    assert_eq!(v["kind"], "SpscRing");
    assert_eq!(v["ring"]["layout"], "spsc");
    assert_eq!(v["ring"]["sent"], 3);
    assert_eq!(v["ring"]["received"], 1);
    assert_eq!(v["ring"]["depth_messages"], 2);
    assert_eq!(v["ring"]["wait_strategy"], "blocking");
    assert_eq!(v["ring"]["producer"]["alive"], true);
    assert_eq!(v["corrupted"].as_array().map(Vec::len), Some(0));

    // The consumer closes: inspect says so.
    drop(rx);
    let text = stdout(&shmkit(&["inspect", &name]));
    assert!(line_with(&text, "consumer:").contains("closed"), "{text}");
}

#[test]
fn inspect_shows_a_rings_wait_strategy() {
    let name = unique("ring-busy");
    let _c = Cleanup(name.clone());
    let (_tx, _rx) = shmkit::ring::spsc::builder(1 << 12)
        .name(&name)
        .wait(shmkit::ring::WaitStrategy::BusyPoll)
        .create()
        .unwrap();
    let text = stdout(&shmkit(&["inspect", &name]));
    assert!(
        line_with(&text, "wait strategy:").contains("busy-poll"),
        "{text}"
    );
}

#[test]
fn inspect_a_queue_shows_handles_and_unfinished_items() {
    let name = unique("queue");
    let _c = Cleanup(name.clone());
    let q = shmkit::ring::Queue::<u64>::create(&name, 1 << 12).unwrap();
    let other = q.try_clone().unwrap();
    q.put(&7).unwrap();
    q.put(&8).unwrap();
    other.close();
    let out = shmkit(&["inspect", &name]);
    let text = stdout(&out);
    assert!(out.status.success(), "{}{text}", stderr(&out));
    assert!(line_with(&text, "depth:").contains("2 messages"), "{text}");
    assert!(line_with(&text, "unfinished:").contains("2"), "{text}");
    assert!(
        line_with(&text, "handles:").contains("1 open, 1 closed"),
        "{text}"
    );
    assert!(line_with(&text, "put lock:").contains("free"), "{text}");
}

/// Runs in a child: take the mutex and the rlock named after `name`, say so, and hold
/// them until killed (bounded: the test kills it long before the timeout).
fn hold_locks(name: String) {
    let m = shmkit::sync::Mutex::<u64>::open(&name).expect("open mutex");
    let r = shmkit::sync::RLock::open(&format!("{name}-r")).expect("open rlock");
    let held = shmkit::sync::Event::open(&format!("{name}-held")).expect("open event");
    let never = shmkit::sync::Event::open(&format!("{name}-never")).expect("open event");
    let own = shmkit::sync::Mutex::create(&format!("{name}-own"), 0u64).expect("create");
    let _g = m.lock().expect("lock");
    let _h = r.acquire().expect("acquire");
    let _o = own.lock().expect("lock own");
    held.set();
    never.wait_timeout(std::time::Duration::from_secs(60));
}

#[test]
fn inspect_a_lock_whose_holder_was_killed_reports_it_dead() {
    let _stale = stale_lock();
    let name = unique("lock");
    let names = [
        name.clone(),
        format!("{name}-r"),
        format!("{name}-held"),
        format!("{name}-never"),
        format!("{name}-own"),
    ];
    let _c: Vec<Cleanup> = names.iter().cloned().map(Cleanup).collect();
    let _m = shmkit::sync::Mutex::create(&name, 0u64).unwrap();
    let _r = shmkit::sync::RLock::create(&names[1]).unwrap();
    let held = shmkit::sync::Event::create(&names[2]).unwrap();
    let _never = shmkit::sync::Event::create(&names[3]).unwrap();
    let child = shmkit_process::spawn(hold_locks, name.clone()).unwrap();
    let pid = child.pid().to_string();
    assert!(
        held.wait_timeout(std::time::Duration::from_secs(20)),
        "the child took the locks"
    );

    let out = shmkit(&["inspect", &name]);
    let text = stdout(&out);
    assert!(out.status.success(), "{}{text}", stderr(&out));
    let lock = line_with(&text, "lock:");
    assert!(
        lock.contains("held by process slot 1") && lock.contains("alive") && lock.contains(&pid),
        "{lock}"
    );

    child.kill().unwrap();
    assert!(child.join().is_err(), "killed");

    let out = shmkit(&["inspect", &name]);
    let text = stdout(&out);
    assert!(out.status.success(), "{}{text}", stderr(&out));
    let lock = line_with(&text, "lock:");
    // The lock word names a process slot; the pid comes from the taker's record.
    assert!(
        lock.contains("held by process slot 1")
            && lock.contains("DEAD")
            && lock.contains(&format!("dead holder pid {pid}")),
        "{lock}"
    );
    let out = shmkit(&["inspect", &names[1]]);
    let text = stdout(&out);
    let lock = line_with(&text, "lock:");
    assert!(
        lock.contains("DEAD") && lock.contains(&format!("dead holder pid {pid}")),
        "{text}"
    );
    let v: serde_json::Value =
        serde_json::from_slice(&shmkit(&["inspect", &name, "--json"]).stdout).unwrap();
    assert_eq!(v["lock"]["holder"]["pid"].to_string(), pid);
    let v: serde_json::Value =
        serde_json::from_slice(&shmkit(&["inspect", &names[1], "--json"]).stdout).unwrap();
    assert_eq!(v["lock"]["holder"]["alive"], false);
    assert_eq!(v["lock"]["holder"]["slot"], 1);
    assert_ne!(v["lock"]["rlock"][0], 0, "the owning thread's id");

    // A lock the dead child created and held (its pid is also the header's creator's).
    let out = shmkit(&["inspect", &names[4]]);
    let text = stdout(&out);
    assert!(line_with(&text, "state:").contains("stale"), "{text}");
    let lock = line_with(&text, "lock:");
    assert!(
        lock.contains("DEAD") && lock.contains(&format!("dead holder pid {pid}")),
        "{text}"
    );
    let v: serde_json::Value =
        serde_json::from_slice(&shmkit(&["inspect", &names[4], "--json"]).stdout).unwrap();
    assert_eq!(v["lock_holder_pid"].to_string(), pid);
}

#[test]
fn inspect_a_dict_shows_entries_capacity_load_and_generation() {
    let name = unique("dict");
    let _c = Cleanup(name.clone());
    let d = shmkit::sync::Dict::<u64, String>::create(&name).unwrap();
    d.update((0..1000).map(|i| (i, i.to_string()))).unwrap();
    d.remove(&0).unwrap();
    let out = shmkit(&["inspect", &name]);
    let text = stdout(&out);
    assert!(out.status.success(), "{}{text}", stderr(&out));
    assert!(
        line_with(&text, "dict entries:").contains("999 (unbounded"),
        "{text}"
    );
    let generation = format!("generation:    {} (table segment ", d.generation());
    assert!(
        line_with(&text, "generation:").starts_with(&generation),
        "{text}"
    );
    assert!(line_with(&text, "load factor:").contains("0.49"), "{text}");
    let v: serde_json::Value =
        serde_json::from_slice(&shmkit(&["inspect", &name, "--json"]).stdout).unwrap();
    assert_eq!(v["dict"]["entries"], 999);
    assert_eq!(v["dict"]["slots"], 2048);
    assert_eq!(v["dict"]["capacity"], 1536);
    assert_eq!(v["dict"]["tombstones"], 1);
    assert_eq!(v["dict"]["generation"], d.generation());
    assert_eq!(v["dict"]["table"], d.table_segment_name());
    assert_eq!(v["lock"]["holder"], serde_json::Value::Null);
}

#[test]
fn inspect_a_corrupted_segment_says_what_is_wrong_and_never_crashes() {
    // A ring whose positions and state were overwritten.
    let name = unique("corrupt");
    let _c = Cleanup(name.clone());
    let (_tx, _rx) = shmkit::ring::spsc::channel(&name, 1 << 12).unwrap();
    let seg = Segment::open(&name).unwrap();
    use std::sync::atomic::Ordering;
    seg.atomic_u64(0)
        .unwrap()
        .store((1 << 40) + 3, Ordering::SeqCst); // tail
    seg.atomic_u32(284).unwrap().store(9, Ordering::SeqCst); // consumer state
    let out = shmkit(&["inspect", &name]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("corrupted: tail position"), "{text}");
    assert!(text.contains("not within the capacity"), "{text}");
    assert!(text.contains("consumer state word is 9"), "{text}");
    assert!(stderr(&out).contains("is corrupted"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
    let v: serde_json::Value =
        serde_json::from_slice(&shmkit(&["inspect", &name, "--json"]).stdout).unwrap();
    assert!(v["corrupted"].as_array().is_some_and(|c| c.len() >= 2));

    // A ring kind whose payload cannot hold a ring at all.
    let small = unique("small");
    let _c2 = Cleanup(small.clone());
    let _seg = Segment::builder(&small)
        .size(100)
        .kind(shmkit::segment::Kind::SpscRing)
        .create()
        .unwrap();
    let out = shmkit(&["inspect", &small]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("corrupted: "), "{}", stdout(&out));
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));

    // A shmkit magic with a header that does not check out.
    let bad = unique("badheader");
    let _c3 = Cleanup(bad.clone());
    let mut bytes = vec![0u8; 512];
    bytes[..8].copy_from_slice(&shmkit::segment::MAGIC.to_le_bytes());
    bytes[8..12].copy_from_slice(&77u32.to_le_bytes()); // layout version 77
    bytes[28..32].copy_from_slice(b"REDY");
    std::fs::write(format!("/dev/shm/{bad}"), &bytes).unwrap();
    let out = shmkit(&["inspect", &bad]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("state:         corrupted"),
        "{}",
        stdout(&out)
    );
    assert!(
        stderr(&out).contains("corrupted header"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
}

#[test]
fn watch_prints_rates_and_depth_for_count_refreshes() {
    let name = unique("watch");
    let _c = Cleanup(name.clone());
    let (mut tx, _rx) = shmkit::ring::spsc::channel(&name, 1 << 12).unwrap();
    tx.send(b"queued").unwrap();
    let out = shmkit(&["watch", &name, "--interval", "0.05", "--count", "2"]);
    let text = stdout(&out);
    assert!(out.status.success(), "{}{text}", stderr(&out));
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with(&format!("watching {name}")), "{text}");
    assert!(
        lines[1].contains("SENT/s") && lines[1].contains("DEPTH"),
        "{text}"
    );
    assert_eq!(lines.len(), 4, "a header and two refreshes:\n{text}");
    // Depth 1 message, sent 1, received 0.
    let last: Vec<&str> = lines[3].split_whitespace().collect();
    assert_eq!(last[last.len() - 2..], ["1", "0"], "{text}");

    // Not a ring: a clear error. A bad interval: usage error.
    let m = unique("watch-mutex");
    let _c2 = Cleanup(m.clone());
    let _mutex = shmkit::sync::Mutex::create(&m, 0u32).unwrap();
    let out = shmkit(&["watch", &m, "--count", "1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("not a ring"), "{}", stderr(&out));
    assert_eq!(
        shmkit(&["watch", &name, "--interval", "0"]).status.code(),
        Some(2)
    );
    assert_eq!(
        shmkit(&["watch", &name, "--count", "0"]).status.code(),
        Some(2)
    );
}

#[test]
fn bench_quick_prints_both_tables_and_leaves_no_segment() {
    let child = spawn_shmkit(&[
        "bench",
        "--quick",
        "--per-run-ms",
        "30",
        "--sizes",
        "8,4096",
    ]);
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    let text = stdout(&out);
    assert!(out.status.success(), "{}{text}", stderr(&out));
    for row in [
        "| shm spsc ring | 8 B |",
        "| pipe | 8 B |",
        "| unix socket | 4 KiB |",
        "| shm Queue<u64> | 8 B |",
        "| shm Event wake-up | - |",
    ] {
        assert!(text.contains(row), "{row} missing:\n{text}");
    }
    assert!(
        text.contains("Throughput") && text.contains("Round trip"),
        "{text}"
    );
    shmkit_testing::assert_none_starting(&format!("shmkit-bench-{pid}-"));
}

#[test]
fn help_lists_every_command_and_the_exit_codes() {
    let help = stdout(&shmkit(&["--help"]));
    for cmd in ["ls", "inspect", "watch", "rm", "bench"] {
        assert!(
            help.lines().any(|l| l.trim_start().starts_with(cmd)),
            "{cmd} missing:\n{help}"
        );
    }
    assert!(!help.contains("bench-peer"), "the peer role stays hidden");
    // The criterion report is developer tooling (`cargo xtask report`), not a command.
    assert!(
        !help.lines().any(|l| l.trim_start().starts_with("report")),
        "{help}"
    );
    assert_eq!(shmkit(&["report"]).status.code(), Some(2));
    assert!(
        help.contains("0  success") && help.contains("2  bad usage"),
        "{help}"
    );
    let bench = stdout(&shmkit(&["bench", "--help"]));
    assert!(
        bench.contains("--quick") && !bench.contains("per-run-ms"),
        "{bench}"
    );
}
