//! `tracelab report` and `tracelab compare` over ten million stored samples: a baseline
//! and a candidate dataset (2 arches × 4 kernels × 8 mechanisms each, 5 million samples
//! per side), already loaded. Both commands work from each cell's summary, so their cost
//! grows with cells, not samples; this benchmark keeps that claim honest.

use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;
use tracelab::compare::{self, Threshold};
use tracelab::synthetic;

const SAMPLES: usize = 10_000_000;

fn datasets() -> (Vec<tracelab::dataset::Run>, Vec<tracelab::dataset::Run>) {
    let arches = ["x86_64", "arm64"];
    let kernels = ["6.1", "6.12", "7.2", "7.3"];
    // Measured cells (unsupported ones have no samples) on both sides, each with two
    // samples (baseline + armed) per repeat.
    let measured: usize = synthetic::matrix(&arches, &kernels, 1, 0.0)
        .iter()
        .flat_map(|r| &r.cells)
        .filter(|c| c.summary.is_some())
        .count()
        * 2;
    let repeats = u32::try_from(SAMPLES.div_ceil(measured * 2)).unwrap_or(u32::MAX);
    let base = synthetic::matrix(&arches, &kernels, repeats, 2.0);
    let mut cand = synthetic::matrix(&arches, &kernels, repeats, 2.0);
    // A few cells move, so compare has every verdict to reach.
    for run in cand.iter_mut().step_by(3) {
        for cell in run.cells.iter_mut().skip(1).step_by(2) {
            if let Some(s) = cell.summary.as_mut() {
                for x in [&mut s.overhead, &mut s.overhead_min, &mut s.overhead_max] {
                    *x *= 1.2;
                }
                s.overhead_ci_low = s.overhead_ci_low.map(|x| x * 1.2);
                s.overhead_ci_high = s.overhead_ci_high.map(|x| x * 1.2);
            }
        }
    }
    (base, cand)
}

fn bench(c: &mut Criterion) {
    let (base, cand) = datasets();
    let samples: usize = base
        .iter()
        .chain(&cand)
        .flat_map(|r| &r.cells)
        .map(|c| c.measured.samples.len())
        .sum();
    assert!(samples >= SAMPLES * 99 / 100, "only {samples} samples");
    let both: Vec<_> = base.iter().chain(&cand).cloned().collect();
    let mut group = c.benchmark_group("10M samples");
    group.sample_size(20);
    group.bench_function("compare", |b| {
        b.iter(|| {
            compare::compare(
                "base",
                black_box(&base),
                "cand",
                black_box(&cand),
                &Threshold::default(),
            )
        })
    });
    group.bench_function("report", |b| {
        b.iter(|| tracelab::report::build("bench", &[], black_box(&both)))
    });
    group.bench_function("report + compare", |b| {
        b.iter(|| {
            let r = compare::compare("base", &base, "cand", &cand, &Threshold::default());
            let page = tracelab::report::build("bench", &[], &both);
            black_box((r, page))
        })
    });
    group.finish();
}

/// Writes runs as results directories: `meta.json` and `cells/*.json` (the record), then
/// the derived Parquet files once (what report and compare read).
fn write_cells(dir: &std::path::Path, runs: &[tracelab::dataset::Run]) {
    for run in runs {
        let d = dir.join(&run.dir);
        let cells = d.join("cells");
        std::fs::create_dir_all(&cells).expect("create dataset dir");
        let meta = serde_json::to_vec_pretty(&run.meta).expect("meta");
        std::fs::write(d.join("meta.json"), meta).expect("write meta");
        for (i, c) in run.cells.iter().enumerate() {
            let json = serde_json::to_vec_pretty(c).expect("cell");
            std::fs::write(
                cells.join(format!("{i:03}-{}.json", c.measured.mechanism)),
                json,
            )
            .expect("write cell");
        }
        tracelab::results::regenerate(&d).expect("derived files");
    }
}

/// The whole command as a user runs it: load both datasets from disk (10 million samples;
/// the summaries through polars), compare, build the report; and, for scale, parsing every
/// cell's JSON as the lab did before. Opt-in (`TRACELAB_BENCH_LOAD=1`): it writes about
/// 1.5 GB to the temp directory once.
fn bench_from_disk(c: &mut Criterion) {
    if std::env::var_os("TRACELAB_BENCH_LOAD").is_none() {
        return;
    }
    let root = std::env::temp_dir().join("tracelab-bench-10M-samples-v2");
    let (a, b) = (root.join("baseline"), root.join("candidate"));
    if !root.join("complete").exists() {
        let _ = std::fs::remove_dir_all(&root);
        let (base, cand) = datasets();
        write_cells(&a, &base);
        write_cells(&b, &cand);
        std::fs::write(root.join("complete"), b"").expect("marker");
    }
    let mut group = c.benchmark_group("10M samples from disk");
    group.sample_size(10);
    group.bench_function("load + compare + report", |bch| {
        bch.iter(|| {
            let base = tracelab::dataset::load(&a).expect("load baseline");
            let cand = tracelab::dataset::load(&b).expect("load candidate");
            let r = compare::compare("base", &base, "cand", &cand, &Threshold::default());
            let both: Vec<_> = base.into_iter().chain(cand).collect();
            black_box((r, tracelab::report::build("bench", &[], &both)))
        })
    });
    group.bench_function("load every cell's JSON (samples too)", |bch| {
        bch.iter(|| {
            let dirs = |root: &std::path::Path| -> Vec<std::path::PathBuf> {
                tracelab::dataset::load(root)
                    .expect("dirs")
                    .into_iter()
                    .map(|r| r.dir)
                    .collect()
            };
            let mut n = 0usize;
            for d in dirs(&a).into_iter().chain(dirs(&b)) {
                n += tracelab::results::load(&d).expect("json").1.len();
            }
            black_box(n)
        })
    });
    group.finish();
}

criterion_group!(benches, bench, bench_from_disk);
criterion_main!(benches);
