//! `segment_lifecycle/{shmkit,shared_memory}/{4KiB,1MiB}`: create + map + unlink a named
//! segment, shaped like `benches/segment.rs`. shmkit reserves the pages at creation
//! (`fallocate`, so a full `/dev/shm` fails at `create` rather than with SIGBUS later)
//! and writes a header; `shared_memory` does neither.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion};
use shmkit_segment::Segment;

use crate::support::size_label;
use crate::unique_name;

pub fn lifecycle(c: &mut Criterion) {
    let mut g = c.benchmark_group("segment_lifecycle");
    for size in [4096usize, 1 << 20] {
        let label = size_label(size);
        g.bench_function(BenchmarkId::new("shmkit", &label), |b| {
            b.iter(|| {
                let seg = Segment::create(&unique_name("life"), size).expect("create");
                black_box(seg.as_ptr());
                // Drop unmaps and, as creator, unlinks.
            })
        });
        g.bench_function(BenchmarkId::new("shared_memory", &label), |b| {
            b.iter(|| {
                let shm = shared_memory::ShmemConf::new()
                    .size(size)
                    .os_id(unique_name("life-sm"))
                    .create()
                    .expect("shared_memory create");
                black_box(shm.as_ptr());
                // Drop unmaps and, as owner, unlinks.
            })
        });
    }
    g.finish();
}
