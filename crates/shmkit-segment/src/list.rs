//! Listing what is in `/dev/shm`, for `shmkit ls` and `shmkit rm --stale`.

use std::os::fd::OwnedFd;

use crate::header::{self, HEADER_SIZE, Header};
use crate::liveness::CREATOR_LOCK;
use crate::{CreatorInfo, Kind, TypeFingerprint, sys};

/// What [`list`] found out about one file in `/dev/shm`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentState {
    /// A shmkit segment whose creator is alive.
    Alive,
    /// A shmkit segment whose creator is gone (it died, or exited without unlinking).
    Stale,
    /// A shmkit header whose `ready` word was never set while its creator lives.
    Initializing,
    /// A shmkit magic with a header that does not check out.
    Corrupted,
    /// Not a shmkit segment (another program's file, or a headerless [`RawSegment`](crate::RawSegment)).
    Foreign,
    /// The file could not be read (permissions).
    Unreadable,
}

/// One entry of [`list`].
#[derive(Debug, Clone)]
pub struct SegmentInfo {
    /// File name under `/dev/shm`.
    pub name: String,
    /// File size in bytes, header included.
    pub file_size: u64,
    /// What the entry is.
    pub state: SegmentState,
    /// Kind, for shmkit segments.
    pub kind: Option<Kind>,
    /// Type fingerprint, for shmkit segments.
    pub fingerprint: Option<TypeFingerprint>,
    /// Payload size, for shmkit segments.
    pub payload_size: Option<u64>,
    /// Creator, for shmkit segments.
    pub creator: Option<CreatorInfo>,
}

/// Every regular file in `/dev/shm`, each classified. Reads headers with `pread`, never
/// maps, so a truncated or hostile file cannot hurt the caller.
pub fn list() -> std::io::Result<Vec<SegmentInfo>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(sys::SHM_DIR)? {
        let entry = entry?;
        let Ok(ft) = entry.file_type() else { continue };
        if !ft.is_file() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        out.push(inspect(&name));
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Classify one `/dev/shm` file by name (see [`list`]).
pub fn inspect(name: &str) -> SegmentInfo {
    let mut info = SegmentInfo {
        name: name.to_owned(),
        file_size: 0,
        state: SegmentState::Unreadable,
        kind: None,
        fingerprint: None,
        payload_size: None,
        creator: None,
    };
    let Ok(fd) = sys::open_for_inspect(&sys::shm_path(name)) else {
        return info;
    };
    if !sys::is_regular_file(&fd) {
        info.state = SegmentState::Foreign;
        return info;
    }
    info.file_size = sys::file_size(&fd).unwrap_or(0);
    let Some(h) = read_header(&fd) else {
        info.state = SegmentState::Foreign;
        return info;
    };
    if h.magic != header::MAGIC {
        info.state = SegmentState::Foreign;
        return info;
    }
    let creator_alive = sys::byte_locked_elsewhere(&fd, CREATOR_LOCK).unwrap_or(false);
    let kind = Kind::from_code(h.kind);
    let sane = h.version == header::LAYOUT_VERSION
        && kind.is_some()
        && h.payload_size <= info.file_size.saturating_sub(HEADER_SIZE as u64)
        && h.type_name_len as usize <= crate::kind::FP_NAME_LEN;
    info.state = match (h.ready == header::READY, sane, creator_alive) {
        (true, false, _) => SegmentState::Corrupted,
        (true, true, true) => SegmentState::Alive,
        (true, true, false) => SegmentState::Stale,
        (false, _, true) => SegmentState::Initializing,
        (false, _, false) => SegmentState::Stale,
    };
    if sane {
        info.kind = kind;
        info.fingerprint = Some(h.fingerprint());
        info.payload_size = Some(h.payload_size);
        info.creator = Some(CreatorInfo {
            pid: h.creator_pid,
            start_time: h.creator_start,
            created_unix: h.created_unix,
        });
    }
    info
}

fn read_header(fd: &OwnedFd) -> Option<Header> {
    let mut buf = [0u8; HEADER_SIZE];
    let n = rustix::io::pread(fd, &mut buf, 0).ok()?;
    (n == HEADER_SIZE).then(|| bytemuck::pod_read_unaligned(&buf))
}
