//! `cargo bench -p hz3-criterion`: hz3::Hz3 against mimalloc::MiMalloc,
//! tikv_jemallocator::Jemalloc and std::alloc::System as GlobalAlloc, on the
//! small/medium/mixed churn patterns at 1 and 8 threads.

use std::alloc::{GlobalAlloc, System};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use hz3_criterion::{churn, PATTERNS};

const OPS: usize = 200_000;
const WS: usize = 400;

fn run<A: GlobalAlloc + Sync>(a: &'static A, p: usize, threads: usize) -> u64 {
    if threads == 1 {
        return churn(a, &PATTERNS[p], OPS, WS, 0x1234_5678);
    }
    std::thread::scope(|s| {
        let hs: Vec<_> = (0..threads)
            .map(|t| s.spawn(move || churn(a, &PATTERNS[p], OPS, WS, 0x1234_5678 + t as u64)))
            .collect();
        hs.into_iter()
            .map(|h| h.join().unwrap())
            .fold(0, u64::wrapping_add)
    })
}

static HZ3: hz3::Hz3 = hz3::Hz3;
static MI: mimalloc::MiMalloc = mimalloc::MiMalloc;
static JE: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
static SYS: System = System;

fn bench(c: &mut Criterion) {
    for threads in [1usize, 8] {
        for (pi, p) in PATTERNS.iter().enumerate() {
            let mut g = c.benchmark_group(format!("{}-t{}", p.name, threads));
            g.throughput(Throughput::Elements((OPS * threads) as u64));
            g.sample_size(10);
            g.bench_function(BenchmarkId::from_parameter("hz3"), |b| {
                b.iter(|| run(&HZ3, pi, threads))
            });
            g.bench_function(BenchmarkId::from_parameter("mimalloc"), |b| {
                b.iter(|| run(&MI, pi, threads))
            });
            g.bench_function(BenchmarkId::from_parameter("jemalloc"), |b| {
                b.iter(|| run(&JE, pi, threads))
            });
            g.bench_function(BenchmarkId::from_parameter("system"), |b| {
                b.iter(|| run(&SYS, pi, threads))
            });
            g.finish();
        }
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
