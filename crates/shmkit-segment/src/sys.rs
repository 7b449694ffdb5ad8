//! Everything that talks to the operating system, in one place so that other Unixes can
//! follow: opening `/dev/shm` files, memfds, mapping, open-file-description locks, and
//! reading a process's start time. Linux-specific.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use rustix::fs::{FallocateFlags, Mode, OFlags, SealFlags};

/// Where named segments live.
pub(crate) const SHM_DIR: &str = "/dev/shm";

pub(crate) fn shm_path(name: &str) -> String {
    format!("{SHM_DIR}/{name}")
}

/// `O_CREAT | O_EXCL | O_NOFOLLOW`, then `fchmod` to exactly `mode` (the umask neither
/// widens nor narrows it).
pub(crate) fn create_exclusive(name: &str, mode: u32) -> io::Result<OwnedFd> {
    let fd = rustix::fs::open(
        shm_path(name),
        OFlags::RDWR | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(mode),
    )?;
    rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode))?;
    Ok(fd)
}

/// Open an existing file in `/dev/shm`; a symlink planted at the name is refused
/// (`ELOOP`), never followed.
pub(crate) fn open_existing(path: &str, writable: bool) -> io::Result<OwnedFd> {
    open_with(path, writable, OFlags::NOFOLLOW)
}

/// Open a `/dev/shm` entry read-only to look at it (`shmkit ls`): never follows a link,
/// never blocks (a FIFO planted at the name returns at once).
pub(crate) fn open_for_inspect(path: &str) -> io::Result<OwnedFd> {
    open_with(path, false, OFlags::NOFOLLOW | OFlags::NONBLOCK)
}

/// Open `/proc/<pid>/fd/<n>`: a magic link to another process's memfd, which must be
/// followed. Opening it makes a new open file description (with its own OFD locks).
pub(crate) fn open_proc_fd(path: &str) -> io::Result<OwnedFd> {
    open_with(path, true, OFlags::empty())
}

fn open_with(path: &str, writable: bool, extra: OFlags) -> io::Result<OwnedFd> {
    let access = if writable {
        OFlags::RDWR
    } else {
        OFlags::RDONLY
    };
    Ok(rustix::fs::open(
        path,
        access | extra | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

pub(crate) fn memfd(size: u64, reserve: u64) -> io::Result<OwnedFd> {
    use rustix::fs::MemfdFlags;
    let fd = rustix::fs::memfd_create(
        "shmkit-anonymous",
        MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING,
    )?;
    set_size(&fd, size, reserve)?;
    // A sealed memfd can never shrink, so no peer can make our mapping SIGBUS.
    rustix::fs::fcntl_add_seals(&fd, SealFlags::SHRINK | SealFlags::GROW | SealFlags::SEAL)?;
    Ok(fd)
}

/// Size the file and reserve the pages of its first `reserve` bytes now, so a full
/// `/dev/shm` fails here with `ENOSPC` rather than as a `SIGBUS` on first touch.
pub(crate) fn set_size(fd: &OwnedFd, size: u64, reserve: u64) -> io::Result<()> {
    rustix::fs::ftruncate(fd, size)?;
    reserve_range(fd, 0, reserve.min(size))
}

/// Reserve the pages of bytes `offset..offset + len` of the file (`ENOSPC` if
/// `/dev/shm` is full).
pub(crate) fn reserve_range(fd: &OwnedFd, offset: u64, len: u64) -> io::Result<()> {
    if len == 0 {
        return Ok(());
    }
    match rustix::fs::fallocate(fd, FallocateFlags::KEEP_SIZE, offset, len) {
        Ok(()) => Ok(()),
        // File systems without fallocate: nothing is reserved.
        Err(rustix::io::Errno::OPNOTSUPP) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Give back the pages of bytes `offset..offset + len` of the file (they read as zeros
/// afterwards, in every mapping).
pub(crate) fn release_range(fd: &OwnedFd, offset: u64, len: u64) -> io::Result<()> {
    if len == 0 {
        return Ok(());
    }
    rustix::fs::fallocate(
        fd,
        FallocateFlags::PUNCH_HOLE | FallocateFlags::KEEP_SIZE,
        offset,
        len,
    )
    .map_err(Into::into)
}

pub(crate) fn file_size(fd: &OwnedFd) -> io::Result<u64> {
    Ok(rustix::fs::fstat(fd)?.st_size as u64)
}

pub(crate) fn is_regular_file(fd: &OwnedFd) -> bool {
    rustix::fs::fstat(fd).is_ok_and(|st| {
        rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::RegularFile
    })
}

/// (device, inode) of a descriptor, to make sure a name still refers to our file.
pub(crate) fn identity(fd: BorrowedFd<'_>) -> io::Result<(u64, u64)> {
    let st = rustix::fs::fstat(fd)?;
    Ok((st.st_dev, st.st_ino))
}

pub(crate) fn path_identity(path: &str) -> io::Result<(u64, u64)> {
    let st = rustix::fs::lstat(path)?;
    Ok((st.st_dev, st.st_ino))
}

pub(crate) fn unlink(name: &str) -> io::Result<()> {
    Ok(rustix::fs::unlink(shm_path(name))?)
}

/// A shared, read-write mapping of a whole file: memmap2's `MmapRaw`, the type it
/// provides for memory another process writes (it hands out raw pointers only, never
/// `&[u8]`, which would be unsound over concurrently written bytes).
#[derive(Debug)]
pub(crate) struct Mapping(memmap2::MmapRaw);

impl Mapping {
    pub(crate) fn new(fd: &OwnedFd, len: usize) -> io::Result<Mapping> {
        if len == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty mapping"));
        }
        memmap2::MmapOptions::new()
            .len(len)
            .map_raw(fd)
            .map(Mapping)
    }

    pub(crate) fn ptr(&self) -> *mut u8 {
        self.0.as_mut_ptr()
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }
}

/// Open-file-description locks (`F_OFD_*`): owned by the open file, released by the
/// kernel when the last descriptor of it closes — which includes the process dying.
/// They may lie past the end of the file, so a liveness slot costs no memory.
fn ofd_lock(
    fd: BorrowedFd<'_>,
    cmd: libc::c_int,
    kind: libc::c_short,
    offset: u64,
) -> io::Result<libc::flock> {
    let mut fl = libc::flock {
        l_type: kind,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: offset as libc::off_t,
        l_len: 1,
        l_pid: 0, // required to be 0 for OFD locks
    };
    // SAFETY: `fd` is a live descriptor for the duration of the call and `fl` is a valid,
    // initialised `struct flock` that fcntl may read and (for F_OFD_GETLK) write.
    let rc = unsafe { libc::fcntl(fd.as_raw_fd(), cmd, &mut fl as *mut libc::flock) };
    if rc == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(fl)
}

/// Try to take the write lock on byte `offset`; `Ok(false)` if another open file holds it.
pub(crate) fn try_lock_byte(fd: &impl AsFd, offset: u64) -> io::Result<bool> {
    match ofd_lock(
        fd.as_fd(),
        libc::F_OFD_SETLK,
        libc::F_WRLCK as libc::c_short,
        offset,
    ) {
        Ok(_) => Ok(true),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EAGAIN) | Some(libc::EACCES)) => Ok(false),
        Err(e) => Err(e),
    }
}

pub(crate) fn unlock_byte(fd: &impl AsFd, offset: u64) -> io::Result<()> {
    ofd_lock(
        fd.as_fd(),
        libc::F_OFD_SETLK,
        libc::F_UNLCK as libc::c_short,
        offset,
    )
    .map(|_| ())
}

/// Whether some *other* open file description holds byte `offset`.
pub(crate) fn byte_locked_elsewhere(fd: &impl AsFd, offset: u64) -> io::Result<bool> {
    let fl = ofd_lock(
        fd.as_fd(),
        libc::F_OFD_GETLK,
        libc::F_WRLCK as libc::c_short,
        offset,
    )?;
    Ok(fl.l_type != libc::F_UNLCK as libc::c_short)
}

/// A process's start time in clock ticks since boot (field 22 of `/proc/<pid>/stat`);
/// with the pid it names a process unambiguously, even after the pid is reused.
pub(crate) fn process_start_time(pid: u32) -> Option<u64> {
    parse_start_time(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// This process's start time, read once per process (keyed by pid, so a forked child
/// reads its own rather than inheriting its parent's).
pub(crate) fn own_start_time() -> u64 {
    use std::sync::Mutex;
    static CACHE: Mutex<Option<(u32, u64)>> = Mutex::new(None);
    let pid = std::process::id();
    let mut cache = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    match *cache {
        Some((p, t)) if p == pid => t,
        _ => {
            let t = process_start_time(pid).unwrap_or(0);
            *cache = Some((pid, t));
            t
        }
    }
}

/// Field 22 of a `/proc/<pid>/stat` line.
pub(crate) fn parse_start_time(stat: &str) -> Option<u64> {
    // The command name (field 2) may contain spaces and parentheses: skip past the last
    // ')'; field 3 is then the first word, so field 22 is the 20th.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

pub(crate) fn now_unix_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_is_field_22_even_with_a_hostile_command_name() {
        let line = "4242 (a) b (c) d) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 \
                    987654 10000 100 18446744073709551615";
        assert_eq!(parse_start_time(line), Some(987_654));
        assert_eq!(parse_start_time("1 (x) S 1"), None);
        assert_eq!(parse_start_time("no parenthesis"), None);
    }

    #[test]
    #[cfg_attr(miri, ignore)] // reads /proc
    fn own_start_time_is_readable() {
        assert!(process_start_time(std::process::id()).is_some_and(|t| t > 0));
    }
}
