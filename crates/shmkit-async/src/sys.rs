//! The two futex calls the waker thread makes, through `libc::syscall`: `futex_waitv`
//! (Linux 5.16+, syscall 449 on every architecture) on up to 128 words, and the plain
//! futex wait/wake on its own process-private control word.

use crate::primitive::AtomicU32;
use std::time::Duration;

/// Most words one `futex_waitv` call takes (the kernel's `FUTEX_WAITV_MAX`).
pub(crate) const WAITV_MAX: usize = 128;

/// `FUTEX2_SIZE_U32`: every word here is 32 bits.
const FUTEX2_SIZE_U32: u32 = 0x02;
/// `FUTEX2_PRIVATE`: only for the control word, which never leaves this process. The
/// words in shared memory are waited on as shared futexes (keyed by the page, so a waker
/// in another process finds us).
const FUTEX2_PRIVATE: u32 = 128;

/// One entry of a `futex_waitv` call (the kernel's `struct futex_waitv`).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub(crate) struct WaitvEntry {
    val: u64,
    uaddr: u64,
    flags: u32,
    reserved: u32,
}

impl WaitvEntry {
    /// Wait on the process-shared word at `addr` while it holds `val`.
    pub(crate) fn shared(addr: usize, val: u32) -> Self {
        WaitvEntry {
            val: u64::from(val),
            uaddr: addr as u64,
            flags: FUTEX2_SIZE_U32,
            reserved: 0,
        }
    }

    /// Wait on this process's own word `w` while it holds `val`.
    pub(crate) fn private(w: &AtomicU32, val: u32) -> Self {
        WaitvEntry {
            val: u64::from(val),
            uaddr: w.as_ptr() as u64,
            flags: FUTEX2_SIZE_U32 | FUTEX2_PRIVATE,
            reserved: 0,
        }
    }
}

/// Why [`waitv`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Waitv {
    /// Entry `i` was woken.
    Woken(usize),
    /// Some entry did not hold its value when the call began (`EAGAIN`), or some word
    /// was not mapped (`EFAULT`: its owner unmapped it meanwhile): which one, the call
    /// does not say.
    Changed,
    /// The timeout passed.
    TimedOut,
    /// A signal, or another transient error: look again.
    Interrupted,
    /// The kernel has no `futex_waitv` (before 5.16, or a seccomp filter refuses it).
    Unsupported,
}

fn now_monotonic() -> libc::timespec {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts
}

/// Sleep until one of `list` is woken or does not hold its value, or `timeout` passes
/// (`None`: no timeout).
pub(crate) fn waitv(list: &[WaitvEntry], timeout: Option<Duration>) -> Waitv {
    debug_assert!(!list.is_empty() && list.len() <= WAITV_MAX);
    // futex_waitv takes an absolute time on the given clock.
    let abs = timeout.map(|d| {
        let now = now_monotonic();
        let nsec = now.tv_nsec as u64 + u64::from(d.subsec_nanos());
        libc::timespec {
            tv_sec: now.tv_sec
                + d.as_secs() as libc::time_t
                + (nsec / 1_000_000_000) as libc::time_t,
            tv_nsec: (nsec % 1_000_000_000) as _,
        }
    });
    let ts = abs
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: `list` is a valid array of `list.len()` entries laid out as the kernel's
    // `struct futex_waitv`; `ts` is null or a valid timespec; flags must be 0. The
    // kernel reads the words fault-tolerantly (EFAULT), so a word unmapped meanwhile is
    // an error, not a crash.
    let r = unsafe {
        libc::syscall(
            libc::SYS_futex_waitv,
            list.as_ptr(),
            list.len() as libc::c_uint,
            0 as libc::c_uint,
            ts,
            libc::CLOCK_MONOTONIC,
        )
    };
    if r >= 0 {
        return Waitv::Woken(r as usize);
    }
    match std::io::Error::last_os_error().raw_os_error() {
        Some(libc::EAGAIN) | Some(libc::EFAULT) => Waitv::Changed,
        Some(libc::ETIMEDOUT) => Waitv::TimedOut,
        Some(libc::ENOSYS) | Some(libc::EPERM) => Waitv::Unsupported,
        _ => Waitv::Interrupted,
    }
}

/// Whether the process-shared word at `addr` still holds `val` (one `FUTEX_WAIT` with a
/// zero timeout: the kernel compares, fault-tolerantly, and returns). `false` also for a
/// word no longer mapped.
pub(crate) fn still_holds(addr: usize, val: u32) -> bool {
    let zero = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: FUTEX_WAIT only reads the word (the kernel faults it in safely, EFAULT if
    // unmapped); `zero` is a valid relative timeout, so the call never sleeps for long.
    let r = unsafe {
        libc::syscall(
            libc::SYS_futex,
            addr as *const u32,
            libc::FUTEX_WAIT,
            val,
            &zero as *const libc::timespec,
        )
    };
    r != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ETIMEDOUT)
}

/// Sleep on this process's word `w` while it holds `val`, at most `timeout`.
pub(crate) fn wait_private(w: &AtomicU32, val: u32, timeout: Option<Duration>) {
    let ts = timeout.map(|d| libc::timespec {
        tv_sec: d.as_secs() as libc::time_t,
        tv_nsec: d.subsec_nanos() as _,
    });
    let p = ts
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: `w` is a valid, aligned u32 of this process; `p` is null or a valid
    // timespec. Any outcome (woken, value changed, timeout, signal) just returns.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            w.as_ptr(),
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            val,
            p,
        )
    };
}

/// Wake the one sleeper on this process's word `w` (the waker thread).
pub(crate) fn wake_private(w: &AtomicU32) {
    // SAFETY: `w` is a valid, aligned u32 of this process; FUTEX_WAKE touches nothing
    // else.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            w.as_ptr(),
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            1,
        )
    };
}
