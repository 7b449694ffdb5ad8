//! Behaviour of named and anonymous segments, within one process and across real ones.

mod common;

use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use common::{ChildRole, Cleanup, unique};
use shmkit_segment::{
    Error, HEADER_SIZE, Kind, LIVENESS_BASE, Segment, SegmentHandle, SegmentState, TypeFingerprint,
};

/// The child side of the cross-process tests: does nothing unless started by `ChildRole`.
#[test]
#[cfg_attr(miri, ignore)] // shared memory, files and processes
fn child_entry() {
    let Some((role, arg)) = common::role() else {
        return;
    };
    match role.as_str() {
        // Open a named segment and write 0xC0FFEE at offset 8.
        "write_named" => {
            let seg = Segment::open(&arg).unwrap();
            seg.write(8, &0xC0FFEEu64).unwrap();
            println!("DONE");
        }
        // Open an anonymous segment through its serialized handle and write 99 at 0.
        "write_handle" => {
            let handle: SegmentHandle = postcard::from_bytes(&common::unhex(&arg)).unwrap();
            let seg = handle.open().unwrap();
            seg.write(0, &99u32).unwrap();
            println!("DONE");
        }
        // Create a segment, report, and wait to be killed (bounded: 30 s).
        "create_and_hang" => {
            let _seg = Segment::create(&arg, 64).unwrap();
            println!("CREATED");
            std::thread::sleep(Duration::from_secs(30));
        }
        // Hold liveness slot 3 of a segment and wait to be killed.
        // Wait for the start file, then race to create the segment; report, then open it.
        "race_create" => {
            let start = format!("/tmp/{arg}.go");
            let t0 = std::time::Instant::now();
            while !std::path::Path::new(&start).exists() {
                assert!(t0.elapsed() < Duration::from_secs(20), "never started");
                std::thread::sleep(Duration::from_micros(200));
            }
            match Segment::builder(&arg)
                .size(4096)
                .unlink_on_drop(false)
                .create()
            {
                Ok(seg) => {
                    seg.write(0, &0xABCDu32).unwrap();
                    println!("RESULT won");
                }
                Err(Error::AlreadyExists { .. }) => println!("RESULT exists"),
                Err(e) => println!("RESULT error {e}"),
            }
            // Whoever won, the segment opens whole: never half-initialised.
            let seg = Segment::open(&arg).unwrap();
            assert_eq!(seg.len(), 4096);
            println!("OPENED");
        }
        "hold_slot" => {
            let seg = Segment::open(&arg).unwrap();
            let _guard = seg.hold_liveness(3).unwrap();
            println!("HOLDING");
            std::thread::sleep(Duration::from_secs(30));
        }
        // Drop root's privileges to `nobody`, then try to open a 0600 segment root made.
        "open_as_nobody" => {
            // SAFETY: plain syscalls in a single-threaded child process.
            let dropped = unsafe { libc::setgid(65534) == 0 && libc::setuid(65534) == 0 };
            assert!(dropped, "setuid(nobody) failed");
            match Segment::open(&arg) {
                Err(Error::PermissionDenied { .. }) => println!("RESULT DENIED"),
                other => println!("RESULT {other:?}"),
            }
        }
        other => panic!("unknown role {other}"),
    }
}

#[test]
#[cfg_attr(miri, ignore)] // shared memory, files and processes
fn create_write_open_read() {
    let name = unique("rw");
    let _c = Cleanup(name.clone());
    let seg = Segment::create(&name, 1024).unwrap();
    assert_eq!(seg.len(), 1024);
    assert_eq!(seg.kind(), Kind::Bytes);
    assert!(seg.is_creator());
    assert_eq!(
        seg.as_ptr() as usize % 128,
        0,
        "payload is 128-byte aligned"
    );
    seg.write(16, &[1u32, 2, 3, 4]).unwrap();
    let other = Segment::open(&name).unwrap();
    assert!(!other.is_creator());
    assert_eq!(other.read::<[u32; 4]>(16).unwrap(), [1, 2, 3, 4]);
    // A write through one mapping is visible through the other.
    other
        .atomic_u64(64)
        .unwrap()
        .store(7, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(seg.read::<u64>(64).unwrap(), 7);
}

#[test]
#[cfg_attr(miri, ignore)] // shared memory, files and processes
fn creator_unlinks_on_drop_and_openers_do_not() {
    let name = unique("drop");
    let _c = Cleanup(name.clone());
    let seg = Segment::create(&name, 8).unwrap();
    drop(Segment::open(&name).unwrap());
    assert!(
        Segment::open(&name).is_ok(),
        "an opener's drop must not unlink"
    );
    drop(seg);
    assert!(matches!(Segment::open(&name), Err(Error::NotFound { .. })));

    let mut kept = Segment::create(&name, 8).unwrap();
    kept.set_unlink_on_drop(false);
    drop(kept);
    let reopened = Segment::open(&name).unwrap();
    reopened.unlink().unwrap();
    assert!(matches!(Segment::open(&name), Err(Error::NotFound { .. })));
}

#[test]
#[cfg_attr(miri, ignore)] // shared memory, files and processes
fn invalid_names_are_rejected() {
    for bad in [
        "",
        "a/b",
        "..",
        ".",
        "white space",
        "ümlaut",
        &"x".repeat(201),
    ] {
        assert!(
            matches!(Segment::create(bad, 8), Err(Error::InvalidName { .. })),
            "{bad:?} should be invalid"
        );
        assert!(matches!(Segment::open(bad), Err(Error::InvalidName { .. })));
    }
    let name = unique("ok._-Name9");
    let _c = Cleanup(name.clone());
    Segment::create(&name, 8).unwrap();
}

#[test]
#[cfg_attr(miri, ignore)] // shared memory, files and processes
fn create_existing_is_already_exists() {
    let name = unique("exists");
    let _c = Cleanup(name.clone());
    let _seg = Segment::create(&name, 8).unwrap();
    let err = Segment::create(&name, 8).unwrap_err();
    assert!(matches!(err, Error::AlreadyExists { .. }), "{err}");
    assert!(err.to_string().contains(&name));
}

#[test]
#[cfg_attr(miri, ignore)] // shared memory, files and processes
fn open_missing_is_not_found() {
    let err = Segment::open(&unique("missing")).unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
}

#[test]
#[cfg_attr(miri, ignore)] // shared memory, files and processes
fn kind_and_type_mismatch_say_what_was_found() {
    let name = unique("mismatch");
    let _c = Cleanup(name.clone());
    let _seg = Segment::builder(&name)
        .size(64)
        .kind(Kind::SpscRing)
        .typed::<u64>()
        .create()
        .unwrap();
    let err = Segment::builder(&name)
        .kind(Kind::Value)
        .typed::<u32>()
        .open()
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::Mismatch { .. }), "{msg}");
    assert_eq!(
        msg,
        format!(
            "segment '{name}' holds kind SpscRing<u64 (8 bytes, align 8)> layout 4, \
             you asked for kind Value<u32 (4 bytes, align 4)> layout 4"
        )
    );
    // The right kind and type open; an open without expectations opens anything.
    Segment::builder(&name)
        .kind(Kind::SpscRing)
        .typed::<u64>()
        .open()
        .unwrap();
    assert_eq!(
        Segment::open(&name).unwrap().fingerprint(),
        TypeFingerprint::of::<u64>()
    );
}

fn write_file(name: &str, bytes: &[u8]) {
    std::fs::write(format!("/dev/shm/{name}"), bytes).unwrap();
}

#[test]
#[cfg_attr(miri, ignore)] // shared memory, files and processes
fn a_file_too_small_for_its_header_is_corrupted() {
    let name = unique("small");
    let _c = Cleanup(name.clone());
    write_file(&name, &[0u8; 100]);
    let err = Segment::open(&name).unwrap_err();
    assert!(matches!(err, Error::Corrupted { .. }), "{err}");
    assert!(
        err.to_string().contains("smaller than the 256-byte header"),
        "{err}"
    );
}

#[test]
#[cfg_attr(miri, ignore)] // shared memory, files and processes
fn a_foreign_file_is_corrupted_not_a_crash() {
    let name = unique("foreign");
    let _c = Cleanup(name.clone());
    write_file(&name, &[0xABu8; 4096]);
    let err = Segment::open(&name).unwrap_err();
    assert!(matches!(err, Error::Corrupted { .. }), "{err}");
    assert!(err.to_string().contains("not a shmkit segment"), "{err}");
    assert_eq!(shmkit_segment::inspect(&name).state, SegmentState::Foreign);
}

/// Issue 15: a headerless file (what Python's `SharedMemory` makes) is refused with a
/// pointer to `open_raw`, whether it is smaller than a header, zero-filled, or holds data.
#[test]
#[cfg_attr(miri, ignore)] // shared memory, files and processes
fn a_headerless_file_points_to_open_raw() {
    for (tag, bytes) in [
        ("hl-small", vec![0u8; 100]),
        ("hl-zeros", vec![0u8; 4096]),
        ("hl-data", b"from python".repeat(400)),
    ] {
        let name = unique(tag);
        let _c = Cleanup(name.clone());
        write_file(&name, &bytes);
        let err = Segment::open(&name).unwrap_err();
        assert!(matches!(err, Error::Corrupted { .. }), "{tag}: {err}");
        let message = err.to_string();
        assert!(message.contains(&format!("segment '{name}'")), "{message}");
        assert!(
            message.contains("open it with Segment::open_raw"),
            "{tag}: {message}"
        );
        assert_eq!(Segment::open_raw(&name).unwrap().len(), bytes.len());
    }
}

/// Issue 15: opening a `Value<u64>` as an `Event` said "you asked for kind
/// Event<u64 (8 bytes, align 8)>"; an Event has no type.
#[test]
#[cfg_attr(miri, ignore)] // shared memory, files and processes
fn a_kind_mismatch_prints_no_type_the_opener_did_not_ask_for() {
    let name = unique("value-as-event");
    let _c = Cleanup(name.clone());
    let _value = Segment::builder(&name)
        .size(8)
        .kind(Kind::Value)
        .typed::<u64>()
        .create()
        .unwrap();
    let err = Segment::builder(&name)
        .kind(Kind::Event)
        .fingerprint(TypeFingerprint::NONE)
        .open()
        .unwrap_err();
    assert!(matches!(err, Error::Mismatch { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        format!(
            "segment '{name}' holds kind Value<u64 (8 bytes, align 8)> layout 4, \
             you asked for kind Event layout 4"
        )
    );
}

/// Issue 15: a name refused for a non-ASCII character said "(no '/')".
#[test]
#[cfg_attr(miri, ignore)] // shared memory, files and processes
fn a_refused_name_is_told_what_is_wrong_with_it() {
    let err = Segment::create("caf\u{e9}-orders", 8).unwrap_err();
    let message = err.to_string();
    assert!(message.contains("non-ASCII character"), "{message}");
    assert!(!message.contains("'/'"), "{message}");
    let err = Segment::open("jobs/1").unwrap_err().to_string();
    assert!(err.contains("contains '/'"), "{err}");
}

/// The bytes `create` writes for a `Bytes` segment of `payload` bytes.
fn valid_header_bytes(payload: usize) -> Vec<u8> {
    let name = unique("template");
    let _c = Cleanup(name.clone());
    let _seg = Segment::create(&name, payload).unwrap();
    std::fs::read(format!("/dev/shm/{name}")).unwrap()
}

#[test]
#[cfg_attr(miri, ignore)] // shared memory, files and processes
fn every_corrupted_header_field_is_named() {
    let good = valid_header_bytes(64);
    // (message expected, header offset, bytes written there)
    let cases: [(&str, usize, Vec<u8>); 5] = [
        ("layout version 7", 8, 7u32.to_le_bytes().to_vec()),
        ("unknown kind code 999", 12, 999u32.to_le_bytes().to_vec()),
        (
            "header says 100000 payload bytes",
            16,
            100_000u64.to_le_bytes().to_vec(),
        ),
        ("type name length 200", 64, 200u32.to_le_bytes().to_vec()),
        ("ready never set", 28, 0u32.to_le_bytes().to_vec()),
    ];
    for (expect, at, patch) in cases {
        let name = unique("field");
        let _c = Cleanup(name.clone());
        let mut bytes = good.clone();
        bytes[at..at + patch.len()].copy_from_slice(&patch);
        write_file(&name, &bytes);
        let err = Segment::open(&name).unwrap_err();
        assert!(
            err.to_string().contains(expect),
            "expected {expect:?} in: {err}"
        );
    }
}

#[test]
#[cfg_attr(miri, ignore)] // shared memory, files and processes
fn open_racing_a_live_creator_waits_then_is_not_ready() {
    // A "creator" that has the file and its creator lock but never publishes `ready`.
    let name = unique("notready");
    let _c = Cleanup(name.clone());
    let mut bytes = valid_header_bytes(64);
    bytes[28..32].copy_from_slice(&0u32.to_le_bytes());
    write_file(&name, &bytes);
    let file = hold_creator_lock(&name);
    let t0 = Instant::now();
    let err = Segment::builder(&name)
        .open_timeout(Duration::from_millis(100))
        .open()
        .unwrap_err();
    assert!(matches!(err, Error::NotReady { .. }), "{err}");
    assert!(t0.elapsed() >= Duration::from_millis(100));
    assert!(t0.elapsed() < Duration::from_secs(5), "the wait is bounded");
    assert_eq!(
        shmkit_segment::inspect(&name).state,
        SegmentState::Initializing
    );
    drop(file); // the "creator" dies: now the same file is reported corrupted at once
    let err = Segment::open(&name).unwrap_err();
    assert!(
        err.to_string().contains("creator died before publishing"),
        "{err}"
    );
}

#[test]
#[cfg_attr(miri, ignore)] // shared memory, files and processes
fn default_mode_is_0600_and_umask_does_not_change_it() {
    let name = unique("mode");
    let _c = Cleanup(name.clone());
    let _seg = Segment::create(&name, 8).unwrap();
    let mode = std::fs::metadata(format!("/dev/shm/{name}"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    // SAFETY: umask only affects file creation; our create sets the mode with fchmod.
    let old = unsafe { libc::umask(0o077) };
    let wide = unique("mode-wide");
    let _c2 = Cleanup(wide.clone());
    let r = Segment::builder(&wide).size(8).mode(0o640).create();
    // SAFETY: restores the previous process umask.
    unsafe { libc::umask(old) };
    let _seg2 = r.unwrap();
    let mode = std::fs::metadata(format!("/dev/shm/{wide}"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(
        mode & 0o777,
        0o640,
        "asked-for mode, exactly, despite umask 077"
    );
}

#[test]
#[cfg_attr(miri, ignore)] // shared memory, files and processes
fn a_symlink_at_the_name_is_not_followed() {
    let target = unique("link-target");
    let link = unique("link");
    let _c1 = Cleanup(target.clone());
    let _c2 = Cleanup(link.clone());
    let _t = Segment::create(&target, 8).unwrap();
    std::os::unix::fs::symlink(format!("/dev/shm/{target}"), format!("/dev/shm/{link}")).unwrap();
    assert!(matches!(Segment::open(&link), Err(Error::Corrupted { .. })));
    assert!(matches!(
        Segment::create(&link, 8),
        Err(Error::AlreadyExists { .. })
    ));
}

#[test]
#[cfg_attr(miri, ignore)] // shared memory, files and processes
fn out_of_bounds_and_misaligned_access_is_an_error() {
    let seg = Segment::anonymous(64).unwrap();
    assert!(matches!(
        seg.read::<u64>(57),
        Err(Error::OutOfBounds { .. })
    ));
    assert!(matches!(
        seg.write(64, &1u8),
        Err(Error::OutOfBounds { .. })
    ));
    assert!(matches!(
        seg.read::<u8>(usize::MAX),
        Err(Error::OutOfBounds { .. })
    ));
    assert!(matches!(seg.atomic_u32(2), Err(Error::OutOfBounds { .. })));
    assert!(matches!(seg.atomic_u64(4), Err(Error::OutOfBounds { .. })));
    assert!(seg.read::<u64>(3).is_ok(), "unaligned copies are fine");
    assert!(seg.atomic_u64(56).is_ok());
}

#[test]
#[cfg_attr(miri, ignore)] // shared memory, files and processes
fn a_segment_too_large_for_dev_shm_fails_at_create() {
    let name = unique("huge");
    let _c = Cleanup(name.clone());
    let err = Segment::create(&name, 1 << 44).unwrap_err();
    assert!(matches!(err, Error::NoSpace { .. }), "{err}");
    assert!(
        !std::path::Path::new(&format!("/dev/shm/{name}")).exists(),
        "nothing left"
    );
}

#[test]
#[cfg_attr(miri, ignore)] // shared memory, files and processes
fn liveness_slots_are_seen_across_opens() {
    let name = unique("live");
    let _c = Cleanup(name.clone());
    let a = Segment::create(&name, 8).unwrap();
    let b = Segment::open(&name).unwrap();
    assert!(!b.is_alive(5).unwrap());
    let guard = a.hold_liveness(5).unwrap();
    assert!(a.is_alive(5).unwrap());
    assert!(b.is_alive(5).unwrap());
    assert!(matches!(
        b.hold_liveness(5),
        Err(Error::SlotBusy { slot: 5, .. })
    ));
    let claimed = b.claim_liveness_slot(5..10).unwrap();
    assert_eq!(claimed.slot(), 6);
    drop(guard);
    assert!(!b.is_alive(5).unwrap());
    assert!(!a.is_alive(5).unwrap());
}

#[test]
#[cfg_attr(miri, ignore)] // shared memory, files and processes
fn named_round_trip_with_a_child_process() {
    let name = unique("child");
    let _c = Cleanup(name.clone());
    let seg = Segment::create(&name, 64).unwrap();
    let child = ChildRole::start("write_named", &name);
    child.expect_line("DONE");
    assert!(child.wait());
    assert_eq!(seg.read::<u64>(8).unwrap(), 0xC0FFEE);
}

#[test]
#[cfg_attr(miri, ignore)] // shared memory, files and processes
fn anonymous_segment_reaches_a_child_through_its_handle() {
    let seg = Segment::anonymous(16).unwrap();
    let handle = postcard::to_allocvec(&seg.handle()).unwrap();
    let child = ChildRole::start("write_handle", &common::hex(&handle));
    child.expect_line("DONE");
    assert!(child.wait());
    assert_eq!(seg.read::<u32>(0).unwrap(), 99);
}

#[test]
#[cfg_attr(miri, ignore)] // shared memory, files and processes
fn a_killed_creator_leaves_a_stale_segment_that_is_found_and_removed() {
    let name = unique("stale");
    let _c = Cleanup(name.clone());
    let child = ChildRole::start("create_and_hang", &name);
    child.expect_line("CREATED");
    let seg = Segment::open(&name).unwrap();
    assert!(!seg.is_stale(), "creator alive");
    let pid = seg.creator().pid;
    assert_eq!(pid, child.child.id());
    child.kill();
    assert!(seg.is_stale(), "creator SIGKILLed");
    let listed = shmkit_segment::list().unwrap();
    let entry = listed.iter().find(|i| i.name == name).expect("listed");
    assert_eq!(entry.state, SegmentState::Stale);
    assert_eq!(entry.kind, Some(Kind::Bytes));
    seg.unlink().unwrap();
    assert!(!std::path::Path::new(&format!("/dev/shm/{name}")).exists());
}

#[test]
#[cfg_attr(miri, ignore)] // shared memory, files and processes
fn a_killed_participant_releases_its_liveness_slot() {
    let name = unique("slotdeath");
    let _c = Cleanup(name.clone());
    let seg = Segment::create(&name, 8).unwrap();
    let child = ChildRole::start("hold_slot", &name);
    child.expect_line("HOLDING");
    assert!(seg.is_alive(3).unwrap());
    child.kill();
    assert!(
        !seg.is_alive(3).unwrap(),
        "the kernel released the dead child's lock"
    );
}

#[test]
fn header_is_256_bytes() {
    assert_eq!(HEADER_SIZE, 256);
}

#[test]
#[cfg_attr(miri, ignore)] // shared memory, files and processes
fn another_user_is_denied_a_0600_segment() {
    let name = unique("perm");
    let _c = Cleanup(name.clone());
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        // Not root: make the segment unreadable even to its owner instead.
        let _seg = Segment::builder(&name)
            .size(8)
            .mode(0o000)
            .create()
            .unwrap();
        let err = Segment::open(&name).unwrap_err();
        assert!(matches!(err, Error::PermissionDenied { .. }), "{err}");
        return;
    }
    let _seg = Segment::create(&name, 8).unwrap();
    let child = ChildRole::start("open_as_nobody", &name);
    assert_eq!(child.expect_line("RESULT "), "DENIED");
    assert!(child.wait());
}

/// Hold the creator byte of `/dev/shm/<name>` the way a creator in progress does.
fn hold_creator_lock(name: &str) -> std::fs::File {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(format!("/dev/shm/{name}"))
        .unwrap();
    let mut fl = libc::flock {
        l_type: libc::F_WRLCK as libc::c_short,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: (LIVENESS_BASE - 1) as libc::off_t,
        l_len: 1,
        l_pid: 0,
    };
    // SAFETY: a valid descriptor and a valid flock struct.
    let rc = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_SETLK, &mut fl) };
    assert_eq!(rc, 0);
    file
}

#[test]
#[cfg_attr(miri, ignore)] // shared memory, files and processes
fn an_empty_file_waits_for_its_creator_then_is_not_ready_or_corrupted() {
    // Created (O_EXCL) but not yet sized: with the creator byte held, NotReady.
    let name = unique("empty");
    let _c = Cleanup(name.clone());
    write_file(&name, &[]);
    let creator = hold_creator_lock(&name);
    let t0 = Instant::now();
    let err = Segment::builder(&name)
        .open_timeout(Duration::from_millis(50))
        .open()
        .unwrap_err();
    assert!(matches!(err, Error::NotReady { .. }), "{err}");
    assert!(t0.elapsed() >= Duration::from_millis(50));
    // Nobody holds it: an abandoned empty file, Corrupted once the wait is over.
    drop(creator);
    let t0 = Instant::now();
    let err = Segment::builder(&name)
        .open_timeout(Duration::from_millis(50))
        .open()
        .unwrap_err();
    assert!(matches!(err, Error::Corrupted { .. }), "{err}");
    assert!(
        err.to_string().contains("no creator is initialising it"),
        "{err}"
    );
    assert!(t0.elapsed() < Duration::from_secs(5));
}

#[test]
#[cfg_attr(miri, ignore)] // shared memory, files and processes
fn an_open_that_races_a_create_succeeds_once_ready_is_published() {
    let name = unique("race");
    let _c = Cleanup(name.clone());
    // A creator mid-way: header written, `ready` still 0, creator byte held.
    let good = valid_header_bytes(64);
    let mut unpublished = good.clone();
    unpublished[28..32].copy_from_slice(&0u32.to_le_bytes());
    write_file(&name, &unpublished);
    let creator = hold_creator_lock(&name);
    let publisher = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(30));
        use std::os::unix::fs::FileExt;
        creator.write_all_at(&good[28..32], 28).unwrap();
        creator // keeps the creator byte held until joined
    });
    let seg = Segment::builder(&name)
        .open_timeout(Duration::from_secs(5))
        .open()
        .unwrap();
    assert_eq!(seg.len(), 64);
    drop(publisher.join().unwrap());
}

#[test]
#[cfg_attr(miri, ignore)] // shared memory, files and processes
fn a_fifo_at_the_name_is_refused_and_listed_as_foreign() {
    let name = unique("fifo");
    let _c = Cleanup(name.clone());
    let path = std::ffi::CString::new(format!("/dev/shm/{name}")).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
    let err = Segment::open(&name).unwrap_err();
    assert!(err.to_string().contains("not a regular file"), "{err}");
    assert_eq!(shmkit_segment::inspect(&name).state, SegmentState::Foreign);
}

#[test]
#[cfg_attr(miri, ignore)] // shared memory, files and processes
fn a_live_segment_is_listed_with_its_header() {
    let name = unique("listed");
    let _c = Cleanup(name.clone());
    let _seg = Segment::builder(&name)
        .size(100)
        .kind(Kind::Queue)
        .typed::<[u8; 16]>()
        .create()
        .unwrap();
    let info = shmkit_segment::inspect(&name);
    assert_eq!(info.state, SegmentState::Alive);
    assert_eq!(info.kind, Some(Kind::Queue));
    assert_eq!(info.payload_size, Some(100));
    assert_eq!(info.file_size, 100 + HEADER_SIZE as u64);
    assert_eq!(info.fingerprint.unwrap().name(), "[u8; 16]");
    let creator = info.creator.unwrap();
    assert_eq!(creator.pid, std::process::id());
    assert!(creator.start_time > 0 && creator.created_unix > 1_600_000_000);
}

#[test]
#[cfg_attr(miri, ignore)] // shared memory, files and processes
fn a_handle_whose_descriptor_was_closed_is_not_found() {
    let seg = Segment::anonymous(8).unwrap();
    let handle = seg.handle();
    drop(seg);
    // The fd number is closed now, or reused by another file: either way, not ours.
    let _other = Segment::anonymous(8).unwrap();
    let err = handle.open().unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
}

#[test]
#[cfg_attr(miri, ignore)] // shared memory, files and processes
fn a_handle_checks_the_type_it_was_made_for() {
    let name = unique("handle-type");
    let _c = Cleanup(name.clone());
    let seg = Segment::builder(&name)
        .size(8)
        .kind(Kind::Value)
        .typed::<u64>()
        .create()
        .unwrap();
    let handle = seg.handle();
    assert_eq!(handle.name(), name);
    let reopened = handle.open().unwrap();
    assert_eq!(reopened.kind(), Kind::Value);
    assert_eq!(reopened.fingerprint(), TypeFingerprint::of::<u64>());
}

#[test]
#[cfg_attr(miri, ignore)] // shared memory, files and processes
fn a_wider_mode_is_exact_under_a_narrowing_umask() {
    let name = unique("mode-666");
    let _c = Cleanup(name.clone());
    // SAFETY: umask has no preconditions; restored right after the create.
    let old = unsafe { libc::umask(0o027) };
    let r = Segment::builder(&name).size(8).mode(0o666).create();
    // SAFETY: as above.
    unsafe { libc::umask(old) };
    let _seg = r.unwrap();
    let mode = std::fs::metadata(format!("/dev/shm/{name}"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o666, "umask 027 would have made it 0640");
}

#[test]
#[cfg_attr(miri, ignore)] // fork
fn a_forked_child_gets_liveness_of_its_own_and_never_unlinks() {
    let name = unique("fork");
    let _c = Cleanup(name.clone());
    let seg = Segment::create(&name, 8).unwrap();
    let parent_slot = seg.hold_liveness(1).unwrap();
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: the child runs only this crate's code and leaves with `_exit`, never
    // returning into the test harness.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        // The inherited copies share the parent's open file description; the segment
        // must give the child locks of its own and must not act for the parent.
        let sees_parent = seg.is_alive(1).unwrap_or(false)
            && matches!(seg.hold_liveness(1), Err(Error::SlotBusy { .. }));
        let own = seg.hold_liveness(2);
        drop(parent_slot); // must not release the parent's slot 1
        drop(seg); // must not unlink the parent's name
        let verdict = if sees_parent && own.is_ok() {
            b'Y'
        } else {
            b'N'
        };
        // SAFETY: a valid descriptor and a 1-byte buffer; then wait to be killed (bounded)
        // still holding slot 2, and leave without running destructors or the harness.
        unsafe {
            libc::write(fds[1], (&raw const verdict).cast(), 1);
            libc::sleep(20);
            libc::_exit(0);
        }
    }
    // SAFETY: the parent's copy of the write end; closing it makes `read` see EOF if
    // the child dies before writing.
    unsafe { libc::close(fds[1]) };
    let mut verdict = 0u8;
    // SAFETY: a valid descriptor and a 1-byte buffer.
    let n = unsafe { libc::read(fds[0], (&raw mut verdict).cast(), 1) };
    assert_eq!((n, verdict), (1, b'Y'), "the child's checks failed");
    assert!(
        seg.is_alive(2).unwrap(),
        "the child's slot is visible to the parent"
    );
    assert!(seg.is_alive(1).unwrap());
    assert!(
        matches!(seg.hold_liveness(1), Err(Error::SlotBusy { .. })),
        "the child's drop of its inherited guard left the parent's slot held"
    );
    assert!(
        Segment::open(&name).is_ok(),
        "the child did not unlink the name"
    );
    // A second open in the parent sees slot 1 held (by the parent's own description).
    assert!(Segment::open(&name).unwrap().is_alive(1).unwrap());
    // SAFETY: `pid` is our child; kill and reap it.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
        libc::waitpid(pid, std::ptr::null_mut(), 0);
        libc::close(fds[0]);
    }
    assert!(
        !seg.is_alive(2).unwrap(),
        "the dead child's slot is released"
    );
    drop(parent_slot);
}

#[test]
#[cfg_attr(miri, ignore)] // shared memory
fn an_open_that_expects_a_size_checks_it() {
    let name = unique("size");
    let _c = Cleanup(name.clone());
    let _seg = Segment::create(&name, 4096).unwrap();
    let err = Segment::builder(&name).size(1 << 20).open().unwrap_err();
    assert!(matches!(err, Error::Mismatch { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        format!(
            "segment '{name}' holds a payload of 4096 bytes, you asked for a payload of 1048576 bytes"
        )
    );
    assert_eq!(
        Segment::builder(&name).size(4096).open().unwrap().len(),
        4096
    );
}

#[test]
#[cfg_attr(miri, ignore)] // shared memory
fn opens_racing_creates_and_drops_see_a_whole_segment_or_nothing() {
    let name = unique("churn");
    let _c = Cleanup(name.clone());
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let creator = {
        let (name, stop) = (name.clone(), stop.clone());
        std::thread::spawn(move || {
            for i in 0..2000u64 {
                let seg = Segment::builder(&name)
                    .size(64)
                    .kind(Kind::Value)
                    .create()
                    .unwrap();
                seg.write(0, &i).unwrap();
            }
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
        })
    };
    let (mut opened, mut missing) = (0u32, 0u32);
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        match Segment::builder(&name).kind(Kind::Value).open() {
            Ok(seg) => {
                assert_eq!(seg.len(), 64);
                opened += 1;
            }
            Err(Error::NotFound { .. }) => missing += 1,
            Err(other) => panic!("an open racing create/drop saw a half-made segment: {other}"),
        }
    }
    creator.join().unwrap();
    eprintln!("racing opens: {opened} opened, {missing} not found");
}

#[test]
fn of_64_processes_creating_one_name_exactly_one_wins() {
    let name = unique("race64");
    let _c = Cleanup(name.clone());
    let start = format!("/tmp/{name}.go");
    let children: Vec<ChildRole> = (0..64)
        .map(|_| ChildRole::start("race_create", &name))
        .collect();
    std::fs::write(&start, b"go").unwrap();
    let mut won = 0;
    let mut exists = 0;
    for child in children {
        match child.expect_line("RESULT ").as_str() {
            "won" => won += 1,
            "exists" => exists += 1,
            other => panic!("unexpected result: {other}"),
        }
        child.expect_line("OPENED");
        assert!(child.wait());
    }
    let _ = std::fs::remove_file(&start);
    assert_eq!((won, exists), (1, 63));
}
