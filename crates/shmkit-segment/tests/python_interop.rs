//! Headerless segments shared with Python's `multiprocessing.shared_memory`, both ways.
//! Skipped, with a printed reason, where `python3` is not available.

mod common;

use std::process::Command;

use common::{Cleanup, unique};
use shmkit_segment::{Error, Segment};

fn python() -> Option<&'static str> {
    let ok = Command::new("python3")
        .args(["-c", "import multiprocessing.shared_memory"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("skipped: python3 with multiprocessing.shared_memory is not available");
    }
    ok.then_some("python3")
}

fn run_python(script: &str) -> String {
    let out = Command::new("python3")
        .args(["-c", script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
#[cfg_attr(miri, ignore)] // shared memory, files and processes
fn python_opens_a_segment_made_by_create_raw() {
    let Some(_) = python() else { return };
    let name = unique("py-open");
    let _c = Cleanup(name.clone());
    let raw = Segment::create_raw(&name, 32).unwrap();
    raw.write_bytes(0, b"from rust").unwrap();
    // Python 3.11's resource tracker would unlink a segment it merely opened when the
    // interpreter exits (the bug DESIGN rule 5 mentions): unregister it, as its docs advise.
    let out = run_python(&format!(
        "from multiprocessing import shared_memory, resource_tracker\n\
         shm = shared_memory.SharedMemory(name='{name}')\n\
         resource_tracker.unregister(shm._name, 'shared_memory')\n\
         print(bytes(shm.buf[:9]).decode())\n\
         shm.buf[16:20] = b'ACK!'\n\
         shm.close()\n"
    ));
    assert_eq!(out.trim(), "from rust");
    let mut ack = [0u8; 4];
    raw.read_bytes(16, &mut ack).unwrap();
    assert_eq!(&ack, b"ACK!");
    assert!(
        std::path::Path::new(&format!("/dev/shm/{name}")).exists(),
        "Python must not have unlinked our segment"
    );
}

#[test]
#[cfg_attr(miri, ignore)] // shared memory, files and processes
fn open_raw_reads_a_segment_python_created() {
    let Some(_) = python() else { return };
    // Python names its own segments psm_*; we pass one explicitly to clean it up for sure.
    let name = format!("psm_shmkit_test_{}", std::process::id());
    let _c = Cleanup(name.clone());
    let script = format!(
        "import sys\n\
         from multiprocessing import shared_memory, resource_tracker\n\
         shm = shared_memory.SharedMemory(name='{name}', create=True, size=4096)\n\
         resource_tracker.unregister(shm._name, 'shared_memory')\n\
         shm.buf[:11] = b'from python'\n\
         shm.buf[16:24] = (123456789).to_bytes(8, 'little')\n\
         shm.close()\n\
         print(shm.name)\n"
    );
    let printed = run_python(&script);
    assert_eq!(printed.trim(), name);
    let raw = Segment::open_raw(&name).unwrap();
    assert_eq!(raw.len(), 4096);
    assert!(!raw.is_creator());
    let mut buf = [0u8; 11];
    raw.read_bytes(0, &mut buf).unwrap();
    assert_eq!(&buf, b"from python");
    assert_eq!(raw.read::<u64>(16).unwrap(), 123_456_789);
    assert!(matches!(
        raw.read::<u64>(4090),
        Err(Error::OutOfBounds { .. })
    ));
    let mode = std::fs::metadata(format!("/dev/shm/{name}")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        mode.permissions().mode() & 0o777,
        0o600,
        "Python creates 0600 too"
    );
    raw.unlink().unwrap();
}

/// Issue 15: `Segment::open` of a segment Python made says to use `open_raw`.
#[test]
#[cfg_attr(miri, ignore)] // shared memory, files and processes
fn segment_open_of_a_python_segment_points_to_open_raw() {
    let Some(_) = python() else { return };
    let name = format!("psm_shmkit_hint_{}", std::process::id());
    let _c = Cleanup(name.clone());
    run_python(&format!(
        "from multiprocessing import shared_memory, resource_tracker\n\
         shm = shared_memory.SharedMemory(name='{name}', create=True, size=1024)\n\
         resource_tracker.unregister(shm._name, 'shared_memory')\n\
         shm.buf[:11] = b'from python'\n\
         shm.close()\n"
    ));
    let err = Segment::open(&name).unwrap_err();
    assert!(matches!(err, Error::Corrupted { .. }), "{err}");
    assert!(
        err.to_string().contains("open it with Segment::open_raw"),
        "{err}"
    );
    assert!(Segment::open_raw(&name).is_ok());
}
