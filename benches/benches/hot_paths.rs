//! The hot paths perfgate gates in CI (`spanpipe_benches::hot_paths`), timed by criterion on the
//! size ladder (1, 100 and 8192 spans per request). perfgate counts the instructions of the very
//! same iterations under callgrind; this harness gives the wall-clock view of them.
//!
//! Run: `cargo bench -p spanpipe-benches --bench hot_paths` (on a shared machine, shorten it:
//! `-- --warm-up-time 1 --measurement-time 3`).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput};
use spanpipe_benches::hot_paths::HotPath;
use spanpipe_benches::SIZES;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn hot_paths(c: &mut Criterion) {
    for path in HotPath::ALL {
        let mut group = c.benchmark_group(path.name());
        for spans in SIZES {
            let mut prepared = path.prepare(spans);
            group.throughput(Throughput::Elements(spans as u64));
            // Iterations of the big requests take milliseconds: linear sampling would ask for minutes.
            group.sampling_mode(if spans >= 1000 { SamplingMode::Flat } else { SamplingMode::Auto });
            group.bench_function(BenchmarkId::from_parameter(spans), |b| b.iter(|| black_box(prepared.iteration())));
        }
        group.finish();
    }
}

criterion_group!(benches, hot_paths);
criterion_main!(benches);
