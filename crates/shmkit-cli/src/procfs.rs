//! Which live processes hold which liveness slot of a segment, from `/proc`.
//!
//! shmkit never stores a pid for liveness (pids are reused); a slot is an OFD lock on
//! byte `LIVENESS_BASE + slot` of the segment's file, and the kernel lists each open file
//! description's locks in `/proc/<pid>/fdinfo/<fd>` (`lock:` lines). So the processes
//! holding slot `s` are those with a descriptor of the file whose fdinfo shows a lock
//! starting at that byte. A dead process holds nothing and is found nowhere: this can
//! name live holders only.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;

use shmkit_segment::LIVENESS_BASE;

/// Liveness slot -> pids of the processes whose descriptors hold it (several when a
/// descriptor was inherited through `fork`). Best effort: processes of other users, or
/// ones that exit during the scan, are skipped.
pub(crate) fn slot_holders(name: &str) -> BTreeMap<u32, Vec<u32>> {
    let mut out: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    let path = format!("/dev/shm/{name}");
    let Ok(meta) = std::fs::metadata(&path) else {
        return out;
    };
    let ino = meta.ino().to_string();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return out;
    };
    for p in procs.flatten() {
        let Some(pid) = p.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(p.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            let Ok(target) = std::fs::read_link(fd.path()) else {
                continue;
            };
            if target.to_str().and_then(|t| t.strip_prefix(&path)) != Some("") {
                continue;
            }
            let info = p.path().join("fdinfo").join(fd.file_name());
            let Ok(text) = std::fs::read_to_string(info) else {
                continue;
            };
            for slot in locked_slots(&text, &ino) {
                let pids = out.entry(slot).or_default();
                if !pids.contains(&pid) {
                    pids.push(pid);
                }
            }
        }
    }
    out
}

/// Liveness slots locked in one fdinfo text, for the file with inode `ino`. A line looks
/// like `lock:\t1: OFDLCK ADVISORY  WRITE -1 00:1b:5830935 1099511627777 1099511627777`.
fn locked_slots(fdinfo: &str, ino: &str) -> Vec<u32> {
    let mut slots = Vec::new();
    for line in fdinfo.lines() {
        let Some(rest) = line.strip_prefix("lock:") else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // id, class, mode, access, pid, dev:dev:inode, start, end
        if fields.len() < 8 || fields[5].rsplit(':').next() != Some(ino) {
            continue;
        }
        // The kernel merges adjacent ranges of one owner: the creator byte
        // (`LIVENESS_BASE - 1`) and slots 0, 1, ... held through one descriptor show as
        // one range. Liveness slots are few (at most 1024), so the range is bounded.
        let (Ok(start), Ok(end)) = (fields[6].parse::<u64>(), fields[7].parse::<u64>()) else {
            continue;
        };
        let first = start.max(LIVENESS_BASE);
        let last = end.min(LIVENESS_BASE + 4095);
        for byte in first..=last {
            slots.push((byte - LIVENESS_BASE) as u32);
        }
    }
    slots
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_fdinfo_lock_lines() {
        let text = "pos:\t0\nflags:\t0100002\nlock:\t1: OFDLCK ADVISORY  WRITE -1 00:1b:42 1099511627777 1099511627777\n\
                    lock:\t2: OFDLCK ADVISORY  WRITE -1 00:1b:42 1099511627775 1099511627775\n\
                    lock:\t3: OFDLCK ADVISORY  WRITE -1 00:1b:43 1099511627776 1099511627776\n";
        assert_eq!(locked_slots(text, "42"), vec![1]);
        let merged = "lock:\t1: OFDLCK ADVISORY  WRITE -1 00:1b:42 1099511627775 1099511627777\n";
        assert_eq!(locked_slots(merged, "42"), vec![0, 1]);
    }
}
