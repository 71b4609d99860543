//! The statistics path over large sample sets: what summarizing a cell costs.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use tracelab_model::schema::{Phase, Sample};
use tracelab_model::stats;
use tracelab_model::summary::summarize;

/// Noisy per-call figures around 1000, reproducible.
fn values(n: usize) -> Vec<f64> {
    let mut rng = fastrand::Rng::with_seed(7);
    (0..n).map(|_| 1000.0 + rng.f64() * 50.0).collect()
}

fn samples(repeats: u32) -> Vec<Sample> {
    let mut rng = fastrand::Rng::with_seed(11);
    let mut out = Vec::new();
    for repeat in 0..repeats {
        for (phase, base) in [(Phase::Baseline, 330_000u64), (Phase::Mechanism, 1_150_000)] {
            out.push(Sample::timed(
                repeat,
                phase,
                1000,
                base + rng.u64(0..5000),
                None,
            ));
        }
    }
    out
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("stats");
    for n in [1_000usize, 100_000, 1_000_000] {
        let xs = values(n);
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::new("median", n), &xs, |b, xs| {
            b.iter(|| stats::median(black_box(xs)))
        });
        g.bench_with_input(BenchmarkId::new("tukey_outliers", n), &xs, |b, xs| {
            b.iter(|| stats::tukey_outliers(black_box(xs)))
        });
    }
    for n in [15usize, 100, 1000] {
        let xs = values(n);
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(
            BenchmarkId::new("bootstrap_median_ci_2000", n),
            &xs,
            |b, xs| {
                b.iter(|| {
                    stats::bootstrap_median_ci(black_box(xs), 0.95, stats::BOOTSTRAP_RESAMPLES, 1)
                })
            },
        );
    }
    for repeats in [15u32, 1000] {
        let s = samples(repeats);
        g.throughput(Throughput::Elements(s.len() as u64));
        g.bench_with_input(BenchmarkId::new("summarize_cell", repeats), &s, |b, s| {
            b.iter(|| summarize(black_box(s)))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
