//! `tracelab history` over a store of 365 nights × 544 cells (8 guests × 68 cells a
//! night), as a year of a nightly reference matrix: loading every night's summaries and
//! the change-point search over every series (bound: 2 s on a build machine), and
//! `publish` of that store: 544 series pages with their trend plots, 365 night pages, the
//! index, the changes and the feed (bound: 10 s).

use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;
use std::path::Path;
use tracelab::history;
use tracelab::synthetic::{self, CellSpec};
use tracelab_model::schema::Unit;

const NIGHTS: usize = 365;
const CELLS_PER_GUEST: usize = 68;

/// One night: 8 guests of 68 cells, as `matrix --store` stores them.
fn first_night(dir: &Path) {
    let mut runs = Vec::new();
    for arch in ["x86_64", "arm64"] {
        for kernel in ["6.1", "6.12", "7.2", "7.3"] {
            let cells: Vec<CellSpec> = (0..CELLS_PER_GUEST)
                .map(|i| CellSpec {
                    spread: 0.01,
                    ..CellSpec::ok(&format!("mechanism-{i:02}"), 100.0 + 10.0 * i as f64)
                })
                .collect();
            runs.push(synthetic::run(arch, kernel, Unit::Insn, &cells, 3));
        }
    }
    synthetic::write_dataset(dir, &runs).expect("night");
}

fn copy(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir").flatten() {
        let dest = to.join(e.file_name());
        if e.file_type().expect("type").is_dir() {
            copy(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).expect("copy");
        }
    }
}

fn bench(c: &mut Criterion) {
    let store = tempfile::tempdir().expect("tempdir");
    let first = store.path().join("night=2025-01-01-a");
    first_night(&first);
    let day = chrono::NaiveDate::from_ymd_opt(2025, 1, 1).expect("date");
    for n in 1..NIGHTS {
        let label = (day + chrono::Days::new(n as u64)).format("%Y-%m-%d-a");
        copy(&first, &store.path().join(format!("night={label}")));
    }
    let mut group = c.benchmark_group("history");
    group.sample_size(10);
    group.bench_function("load and analyse 365 nights x 544 cells", |b| {
        b.iter(|| {
            let (nights, series) =
                history::load(store.path(), history::Grouping::default()).expect("load");
            black_box(history::analyse(nights, &series, 0.01, 1.0))
        })
    });
    let (nights, series) = history::load(store.path(), history::Grouping::default()).expect("load");
    let h = history::analyse(nights, &series, 0.01, 1.0);
    let site = tempfile::tempdir().expect("site");
    group.bench_function("publish 365 nights x 544 series", |b| {
        b.iter(|| {
            black_box(
                tracelab::publish::publish(&series, &h, site.path(), "bench").expect("publish"),
            )
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
