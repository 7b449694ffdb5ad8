//! Fault injection for segments (issue 8): a creator killed at each step of creation, a
//! creator killed at random points of `Segment::create`, a full `/dev/shm`, a peer
//! truncating a named segment, and the exact error for each wrong header field.
//!
//! Already covered in `tests/segment.rs` (not repeated here): 64 processes creating one
//! name (`of_64_processes_creating_one_name_exactly_one_wins`), another uid denied
//! (`another_user_is_denied_a_0600_segment`), a symlink not followed
//! (`a_symlink_at_the_name_is_not_followed`), umask (`default_mode_is_0600_and_umask_
//! does_not_change_it`, `a_wider_mode_is_exact_under_a_narrowing_umask`), 1000
//! create/open/drop cycles (`a_thousand_create_open_drop_cycles_leak_no_descriptor`).

#![cfg(not(miri))] // files, mappings and processes

mod common;

use std::ffi::CString;
use std::time::{Duration, Instant};

use common::{ChildRole, Cleanup, unique};
use shmkit_segment::{Error, HEADER_SIZE, Kind, LIVENESS_BASE, Segment, SegmentState};
use shmkit_testing::faults::{Rng, torture};

const BOUND: Duration = Duration::from_secs(10);

/// Removes a file on drop, whatever happened in the test.
struct RemoveFile(String);

impl Drop for RemoveFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn exists(name: &str) -> bool {
    std::path::Path::new(&format!("/dev/shm/{name}")).exists()
}

/// The child side: does nothing unless started by `ChildRole`.
#[test]
fn child_entry() {
    let Some((role, arg)) = common::role() else {
        return;
    };
    match role.as_str() {
        // Create and drop `arg` in a loop until killed (bounded).
        "create_loop" => {
            let t0 = Instant::now();
            println!("LOOPING");
            while t0.elapsed() < BOUND {
                if let Ok(seg) = Segment::builder(&arg)
                    .size(1 << 16)
                    .kind(Kind::Value)
                    .create()
                {
                    seg.write(0, &1u64).unwrap();
                }
            }
        }
        // Open `arg`, wait for the go file, then read its last payload byte.
        "read_after_truncate" => {
            let seg = Segment::open(&arg).unwrap();
            println!("OPENED");
            let go = format!("/tmp/{arg}.go");
            let t0 = Instant::now();
            while !std::path::Path::new(&go).exists() {
                assert!(t0.elapsed() < BOUND, "never told to go");
                std::thread::sleep(Duration::from_millis(1));
            }
            let last: u8 = seg.read(seg.len() - 1).unwrap();
            println!("READ {last}");
        }
        // In a private mount namespace, a 256 KiB tmpfs on /dev/shm: a segment that fits,
        // then one that does not.
        "full_tmpfs" => {
            if let Err(why) = private_small_dev_shm() {
                println!("RESULT skip {why}");
                return;
            }
            let fits = Segment::create(&arg, 128 << 10).unwrap();
            // Every page is reserved: writing all of it cannot SIGBUS.
            for off in (0..fits.len()).step_by(4096) {
                fits.write(off, &0xA5u8).unwrap();
            }
            let second = format!("{arg}-2");
            match Segment::create(&second, 512 << 10) {
                Err(Error::NoSpace { size, .. }) => {
                    let left = std::path::Path::new(&format!("/dev/shm/{second}")).exists();
                    println!("RESULT nospace {size} left={left}");
                }
                other => println!("RESULT unexpected {other:?}"),
            }
        }
        // With RLIMIT_FSIZE at 64 KiB (and SIGXFSZ ignored), create past the limit.
        "fsize_limit" => {
            // SAFETY: plain syscalls with valid arguments in this child process.
            unsafe {
                libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
                let lim = libc::rlimit {
                    rlim_cur: 64 << 10,
                    rlim_max: 64 << 10,
                };
                assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &lim), 0);
            }
            let small = Segment::create(&arg, 16 << 10).unwrap();
            small.write(0, &1u64).unwrap();
            let big = format!("{arg}-big");
            match Segment::create(&big, 1 << 20) {
                Err(Error::NoSpace { .. }) => {
                    let left = std::path::Path::new(&format!("/dev/shm/{big}")).exists();
                    println!("RESULT nospace left={left}");
                }
                other => println!("RESULT unexpected {other:?}"),
            }
        }
        other => panic!("unknown role {other}"),
    }
}

/// Make /dev/shm a fresh 256 KiB tmpfs for this process only (root only).
fn private_small_dev_shm() -> Result<(), String> {
    let root = CString::new("/").unwrap();
    let shm = CString::new("/dev/shm").unwrap();
    let tmpfs = CString::new("tmpfs").unwrap();
    let opts = CString::new("size=256k").unwrap();
    // SAFETY: valid NUL-terminated strings; these calls change only this process's
    // (new, private) mount namespace.
    unsafe {
        if libc::unshare(libc::CLONE_NEWNS) != 0 {
            return Err(format!("unshare: {}", std::io::Error::last_os_error()));
        }
        if libc::mount(
            std::ptr::null(),
            root.as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        ) != 0
        {
            return Err(format!(
                "mount private: {}",
                std::io::Error::last_os_error()
            ));
        }
        if libc::mount(
            tmpfs.as_ptr(),
            shm.as_ptr(),
            tmpfs.as_ptr(),
            0,
            opts.as_ptr().cast(),
        ) != 0
        {
            return Err(format!("mount tmpfs: {}", std::io::Error::last_os_error()));
        }
    }
    Ok(())
}

// --- 1. crash points: segment creation ----------------------------------------------

/// The steps of `Segment::create`, in the library's order (`SegmentBuilder::create` and
/// `init`); the creator dies right after the named one.
#[derive(Debug, Clone, Copy, PartialEq)]
enum CreateStep {
    /// `open(O_CREAT | O_EXCL | O_NOFOLLOW)` + `fchmod`: an empty file.
    Opened,
    /// The creator byte locked (OFD lock on byte 2^40 - 1).
    Locked,
    /// `ftruncate` + `fallocate`: sized, all zero.
    Sized,
    /// Every header field written but `ready`.
    HeaderWritten,
    /// `ready` published.
    Ready,
}

/// A real header for a 64-byte `Value` segment (the bytes `create` writes).
fn header_template() -> Vec<u8> {
    let name = unique("template");
    let _c = Cleanup(name.clone());
    let _seg = Segment::builder(&name)
        .size(64)
        .kind(Kind::Value)
        .create()
        .unwrap();
    std::fs::read(format!("/dev/shm/{name}")).unwrap()
}

/// Fork a child that performs the creation steps up to `step` with raw syscalls, then
/// SIGKILLs itself; wait for it. Everything the child uses is prepared before the fork
/// (only async-signal-safe calls after it).
fn creator_dies_after(name: &str, step: CreateStep, template: &[u8]) {
    let path = CString::new(format!("/dev/shm/{name}")).unwrap();
    let mut header = template[..HEADER_SIZE].to_vec();
    header[28..32].copy_from_slice(&[0; 4]); // ready is stored last, on its own
    let ready = template[28..32].to_vec();
    let total = template.len() as libc::off_t;
    // SAFETY: the child makes only raw syscalls on data prepared above, then kills
    // itself; it never returns into the test harness.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork");
    if pid == 0 {
        // SAFETY: as above: plain syscalls with valid pointers and lengths.
        unsafe {
            let die = || {
                libc::kill(libc::getpid(), libc::SIGKILL);
                libc::_exit(1)
            };
            let fd = libc::open(
                path.as_ptr(),
                libc::O_RDWR | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                0o600,
            );
            if fd < 0 {
                libc::_exit(2);
            }
            libc::fchmod(fd, 0o600);
            if step == CreateStep::Opened {
                die();
            }
            let mut fl = libc::flock {
                l_type: libc::F_WRLCK as libc::c_short,
                l_whence: libc::SEEK_SET as libc::c_short,
                l_start: (LIVENESS_BASE - 1) as libc::off_t,
                l_len: 1,
                l_pid: 0,
            };
            if libc::fcntl(fd, libc::F_OFD_SETLK, &mut fl) != 0 {
                libc::_exit(3);
            }
            if step == CreateStep::Locked {
                die();
            }
            if libc::ftruncate(fd, total) != 0 || libc::fallocate(fd, 0, 0, total) != 0 {
                libc::_exit(4);
            }
            if step == CreateStep::Sized {
                die();
            }
            libc::pwrite(fd, header.as_ptr().cast(), header.len(), 0);
            if step == CreateStep::HeaderWritten {
                die();
            }
            libc::pwrite(fd, ready.as_ptr().cast(), 4, 28);
            die();
        }
    }
    let mut status = 0;
    // SAFETY: `pid` is our child; reap it.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(
        libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGKILL,
        "{step:?}: the creator died by SIGKILL at the chosen step (status {status:#x})"
    );
}

/// For every step of creation, a creator SIGKILLed right after it: an opener gets a
/// whole segment (only after `ready`) or, within its open timeout, a clear error naming
/// what is wrong — never a hang, a crash or a half-initialised segment. The file is
/// listed as what it is, a second `create` of the name is `AlreadyExists` (O_EXCL),
/// and `remove` cleans it up.
#[test]
fn a_creator_killed_at_each_step_leaves_an_openable_or_clearly_broken_segment() {
    let template = header_template();
    let cases = [
        (
            CreateStep::Opened,
            "smaller than the 256-byte header, and no creator is initialising it",
        ),
        (
            CreateStep::Locked,
            "smaller than the 256-byte header, and no creator is initialising it",
        ),
        (
            CreateStep::Sized,
            "no header (zero bytes where it belongs): its creator died between sizing",
        ),
        (
            CreateStep::HeaderWritten,
            "its creator died before publishing it (ready never set)",
        ),
        (CreateStep::Ready, ""),
    ];
    for (step, message) in cases {
        let name = unique("create-step");
        let _c = Cleanup(name.clone());
        creator_dies_after(&name, step, &template);
        let t0 = Instant::now();
        let r = Segment::builder(&name)
            .open_timeout(Duration::from_millis(100))
            .open();
        assert!(t0.elapsed() < Duration::from_secs(5), "{step:?}: bounded");
        match (step, r) {
            (CreateStep::Ready, Ok(seg)) => {
                assert_eq!((seg.kind(), seg.len()), (Kind::Value, 64));
                assert!(seg.is_stale(), "its creator is dead");
                assert_eq!(shmkit_segment::inspect(&name).state, SegmentState::Stale);
            }
            (_, Err(e @ Error::Corrupted { .. })) => {
                assert!(e.to_string().contains(message), "{step:?}: {e}");
                assert!(
                    e.to_string().contains(&name),
                    "{step:?}: names the segment: {e}"
                );
                let state = shmkit_segment::inspect(&name).state;
                assert!(
                    matches!(
                        state,
                        SegmentState::Foreign | SegmentState::Corrupted | SegmentState::Stale
                    ),
                    "{step:?}: listed as {state:?}"
                );
            }
            (_, other) => panic!("{step:?}: {other:?}"),
        }
        assert!(matches!(
            Segment::create(&name, 64),
            Err(Error::AlreadyExists { .. })
        ));
        shmkit_segment::remove(&name).unwrap();
        Segment::create(&name, 64).unwrap(); // the name is usable again
        assert!(!exists(&name));
    }
}

/// Creators SIGKILLed at random points of real `Segment::create` / drop cycles: every
/// open afterwards is a whole segment, `NotFound`, or a `Corrupted`/`NotReady` error
/// within its timeout — never a panic, a hang or a SIGBUS — and `remove` cleans up.
#[test]
fn creators_killed_at_random_points_of_create() {
    let kills = torture(120) / 4;
    let (mut whole, mut missing, mut broken) = (0, 0, 0);
    let mut rng = Rng::new("creators_killed_at_random_points_of_create");
    for _ in 0..kills {
        let name = unique("create-kill");
        let _c = Cleanup(name.clone());
        let child = ChildRole::start("create_loop", &name);
        child.expect_line("LOOPING");
        // A random moment in the loop (it runs tens of creates per millisecond).
        std::thread::sleep(Duration::from_micros(rng.below(3000)));
        child.kill();
        let t0 = Instant::now();
        match Segment::builder(&name)
            .open_timeout(Duration::from_millis(50))
            .open()
        {
            Ok(seg) => {
                assert_eq!(seg.len(), 1 << 16);
                whole += 1;
            }
            Err(Error::NotFound { .. }) => missing += 1,
            Err(e @ (Error::Corrupted { .. } | Error::NotReady { .. })) => {
                assert!(e.to_string().contains(&name), "{e}");
                broken += 1;
            }
            Err(e) => panic!("unexpected: {e}"),
        }
        assert!(t0.elapsed() < Duration::from_secs(5));
        let _ = shmkit_segment::remove(&name);
        assert!(!exists(&name));
    }
    eprintln!(
        "creator kills: {kills}: whole segment {whole}, no segment {missing}, \
         half-created (clear error) {broken}"
    );
}

// --- 3. /dev/shm full -----------------------------------------------------------------

/// A full /dev/shm (a private 256 KiB tmpfs, root only): a create that does not fit fails
/// at creation with `NoSpace` and leaves no file; the one that fits has every page
/// reserved (writing all of it cannot SIGBUS). Skipped, with the reason, where the test
/// cannot make a mount namespace.
#[test]
fn a_full_dev_shm_fails_at_create_not_later() {
    let name = unique("full");
    let child = ChildRole::start("full_tmpfs", &name);
    let result = child.expect_line("RESULT ");
    assert!(child.wait());
    if let Some(why) = result.strip_prefix("skip ") {
        eprintln!("a_full_dev_shm_fails_at_create_not_later: skipped: {why}");
        return;
    }
    assert!(
        result.starts_with("nospace ") && result.ends_with("left=false"),
        "{result}"
    );
    // Nothing reached the real /dev/shm.
    assert!(!exists(&name));
}

/// The same with RLIMIT_FSIZE (works without root): the create past the limit is
/// `NoSpace` at creation, with no file left, and the process is not killed by SIGXFSZ
/// or SIGBUS.
#[test]
fn a_file_size_limit_fails_at_create_not_later() {
    let name = unique("fsize");
    let _c = Cleanup(name.clone());
    let _c2 = Cleanup(format!("{name}-big"));
    let child = ChildRole::start("fsize_limit", &name);
    assert_eq!(child.expect_line("RESULT "), "nospace left=false");
    assert!(child.wait());
    assert!(!exists(&name) && !exists(&format!("{name}-big")));
}

// --- 3. a peer truncating a segment ---------------------------------------------------

/// What is guarded against truncation, and what is not (docs/safety.md):
/// - opening a truncated named segment is `Corrupted` (payload larger than the file);
/// - an anonymous segment cannot be truncated at all (sealed memfd: `EPERM`);
/// - NOT guarded: a process that mapped a named segment before a peer truncated it gets
///   SIGBUS when it touches the cut-off pages. This test pins that behaviour down.
#[test]
fn truncation_is_refused_at_open_sealed_for_anonymous_and_sigbus_for_old_mappings() {
    let name = unique("truncate");
    let _c = Cleanup(name.clone());
    let _go = RemoveFile(format!("/tmp/{name}.go"));
    let seg = Segment::create(&name, 1 << 16).unwrap();
    let reader = ChildRole::start("read_after_truncate", &name);
    reader.expect_line("OPENED");
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(format!("/dev/shm/{name}"))
        .unwrap();
    file.set_len(4096).unwrap(); // a peer with write access cuts the file
    let err = Segment::open(&name).unwrap_err();
    assert!(matches!(err, Error::Corrupted { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("header says 65536 payload bytes but the file holds only 3840"),
        "{err}"
    );
    std::fs::write(format!("/tmp/{name}.go"), b"go").unwrap();
    let mut child = reader.child;
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(t0.elapsed() < BOUND, "reader neither read nor died");
        std::thread::sleep(Duration::from_millis(2));
    };
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        status.signal(),
        Some(libc::SIGBUS),
        "the old mapping's cut-off page raises SIGBUS (not guarded: named segments cannot be sealed)"
    );
    drop(seg);
    assert!(!exists(&name));

    // Anonymous: sealed against shrinking and growing.
    let anon = Segment::anonymous(1 << 16).unwrap();
    let fd: i32 = anon
        .handle()
        .name()
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let again = std::fs::OpenOptions::new()
        .write(true)
        .open(format!("/proc/self/fd/{fd}"))
        .unwrap();
    let err = again.set_len(4096).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EPERM), "{err}");
    assert_eq!(anon.read::<u8>((1 << 16) - 1).unwrap(), 0, "still whole");
}

// --- 4. each header field wrong: the exact error ---------------------------------------

/// Each header field wrong on its own (with `ready` set and the creator gone), opened as
/// a `Value<u64>` of 64 bytes: the exact variant and message. (`tests/segment.rs`
/// checks the message fragments of version, kind code, payload size, type name length
/// and ready; this adds magic, a valid but other kind, the fingerprint's hash and size,
/// and pins every variant.)
#[test]
fn each_wrong_header_field_has_its_exact_error() {
    let name0 = unique("fields");
    let good = {
        let _c = Cleanup(name0.clone());
        let _seg = Segment::builder(&name0)
            .size(64)
            .kind(Kind::Value)
            .typed::<u64>()
            .create()
            .unwrap();
        std::fs::read(format!("/dev/shm/{name0}")).unwrap()
    };
    let u32le = |v: u32| v.to_le_bytes().to_vec();
    let u64le = |v: u64| v.to_le_bytes().to_vec();
    // (field, offset, bytes, expected variant, expected message after "segment '<name>' ")
    type Check = fn(&Error) -> bool;
    let cases: Vec<(&str, usize, Vec<u8>, Check, String)> = vec![
        (
            "magic",
            0,
            u64le(0x1122_3344_5566_7788),
            |e| matches!(e, Error::Corrupted { .. }),
            format!(
                "is corrupted: not a shmkit segment (magic 0x1122334455667788, expected {:#018x})",
                shmkit_segment::MAGIC
            ),
        ),
        (
            "version",
            8,
            u32le(shmkit_segment::LAYOUT_VERSION + 1),
            |e| matches!(e, Error::Mismatch { .. }),
            format!(
                "holds layout version {}, you asked for layout version {}",
                shmkit_segment::LAYOUT_VERSION + 1,
                shmkit_segment::LAYOUT_VERSION
            ),
        ),
        (
            "kind (unknown code)",
            12,
            u32le(999),
            |e| matches!(e, Error::Corrupted { .. }),
            "is corrupted: unknown kind code 999".into(),
        ),
        (
            "kind (another kind)",
            12,
            u32le(Kind::Array.code()),
            |e| matches!(e, Error::Mismatch { .. }),
            "holds kind Array<u64 (8 bytes, align 8)> layout 4, you asked for kind \
             Value<u64 (8 bytes, align 8)> layout 4"
                .into(),
        ),
        (
            "fingerprint hash",
            56,
            u64le(12345),
            |e| matches!(e, Error::Mismatch { .. }),
            // Equal descriptions: the hashes are what differs, so both are shown.
            format!(
                "holds kind Value<u64 (8 bytes, align 8)> layout 4, type hash {:#018x}, \
                 you asked for kind Value<u64 (8 bytes, align 8)> layout 4, type hash {:#018x}",
                12345,
                u64_hash()
            ),
        ),
        (
            "fingerprint size",
            48,
            u32le(4),
            |e| matches!(e, Error::Mismatch { .. }),
            "holds kind Value<u64 (4 bytes, align 8)> layout 4, you asked for kind \
             Value<u64 (8 bytes, align 8)> layout 4"
                .into(),
        ),
        (
            "payload size",
            16,
            u64le(1 << 20),
            |e| matches!(e, Error::Corrupted { .. }),
            "is corrupted: header says 1048576 payload bytes but the file holds only 64".into(),
        ),
        (
            "payload size (smaller than asked)",
            16,
            u64le(32),
            |e| matches!(e, Error::Mismatch { .. }),
            "holds a payload of 32 bytes, you asked for a payload of 64 bytes".into(),
        ),
        (
            "ready never set",
            28,
            u32le(0),
            |e| matches!(e, Error::Corrupted { .. }),
            "is corrupted: its creator died before publishing it (ready never set)".into(),
        ),
    ];
    for (field, at, patch, variant, message) in cases {
        let name = unique("field");
        let _c = Cleanup(name.clone());
        let mut bytes = good.clone();
        bytes[at..at + patch.len()].copy_from_slice(&patch);
        std::fs::write(format!("/dev/shm/{name}"), &bytes).unwrap();
        let err = Segment::builder(&name)
            .kind(Kind::Value)
            .typed::<u64>()
            .size(64)
            .open_timeout(Duration::from_millis(50))
            .open()
            .unwrap_err();
        assert!(variant(&err), "{field}: wrong variant: {err:?}");
        assert_eq!(
            err.to_string(),
            format!("segment '{name}' {message}"),
            "{field}"
        );
    }
}

/// The fingerprint hash of `u64` as the segment crate computes it (FNV-1a of the type
/// name), read back from a header it wrote.
fn u64_hash() -> u64 {
    let name = format!("shmkit-test-faults-hash-{}", std::process::id());
    let _seg = Segment::builder(&name)
        .kind(Kind::Value)
        .typed::<u64>()
        .size(64)
        .create()
        .unwrap();
    let bytes = std::fs::read(format!("/dev/shm/{name}")).unwrap();
    u64::from_le_bytes(bytes[56..64].try_into().unwrap())
}
