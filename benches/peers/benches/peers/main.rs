//! shmkit side by side with the Rust IPC crates a user would pick instead: `iceoryx2`
//! (zero-copy publish-subscribe over its `ipc` service, and its `event` service),
//! `ipc-channel` (Servo's typed channels), `shared_memory` + `raw_sync`, `interprocess`
//! local sockets, a glibc robust pthread mutex, and a plain pipe.
//!
//! Every transport runs across two real processes: the second one is this bench binary
//! re-executed with a role (shmkit-process's `Spawn`, as in `benches/ring.rs`, or the
//! `SHMKIT_BENCH_ROLE` pipe children of `benches/support/mod.rs`). Timing uses
//! `iter_custom`, so start-up and connection set-up stay outside the measured loop.
//! Criterion ids are shaped `group/transport/size`:
//!
//! - `throughput/{spsc_ring,spsc_ring_zero_copy,queue_vec,iceoryx2,ipc_channel,local_socket,pipe}/{8B,64B,1KiB,64KiB}`
//! - `queue_u64/{shmkit,ipc_channel}/items`
//! - `roundtrip/{cacheline,ring_spin,ring_blocking,iceoryx2_pubsub,iceoryx2_event,ipc_channel,local_socket,pipe}/8B`
//! - `wakeup/{shmkit_event,shmkit_event_spin0,iceoryx2_event,raw_sync_event,pipe}/round_trip`
//! - `lock_uncontended/{shmkit,raw_sync,pthread_robust,parking_lot}/lock_unlock`
//! - `lock_contended/{shmkit,raw_sync,pthread_robust,parking_lot}/lock_unlock`
//! - `segment_lifecycle/{shmkit,shared_memory}/{4KiB,1MiB}`
//!
//! Run (one group at a time with a filter, e.g. `-- roundtrip/`):
//! `cargo bench --manifest-path benches/peers/Cargo.toml -- --warm-up-time 1 --measurement-time 2`
//!
//! Every busy-wait here is bounded (`spin_until` gives up after [`LONG`]), every segment
//! is anonymous or unlinked by its creator, and every iceoryx2 service name carries this
//! process's id (and iceoryx2 gets its own prefix and root directory, removed at the
//! end), so a run leaves nothing behind in `/dev/shm` or `/tmp`.

#[path = "../../../support/mod.rs"]
mod support;

mod framed;
mod iox;
mod ipc;
mod lock;
mod roundtrip;
mod segment;
mod throughput;
mod wakeup;

use std::sync::atomic::{AtomicU64, Ordering};

use criterion::criterion_group;

pub use support::shm::{LONG, spin_until};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A name no other run or bench uses: `shmkit-peers-{tag}-{pid}-{n}`.
pub fn unique_name(tag: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("shmkit-peers-{tag}-{}-{n}", std::process::id())
}

criterion_group!(
    benches,
    throughput::throughput,
    throughput::queue_u64,
    roundtrip::roundtrip,
    wakeup::wakeup,
    lock::lock_uncontended,
    lock::lock_contended,
    segment::lifecycle
);

fn main() {
    shmkit_process::init();
    support::dispatch_child_role();
    iox::setup();
    benches();
    iox::cleanup();
    criterion::Criterion::default()
        .configure_from_args()
        .final_summary();
}
