//! Reading and writing a results directory: what storing a cell costs a run.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use std::hint::black_box;
use tracelab::results::{self, ResultsDir, RunMeta};
use tracelab_model::cell::Cell;
use tracelab_model::schema::{CellContext, Measured, Phase, Sample, Status, Unit, SCHEMA_VERSION};

fn meta() -> RunMeta {
    RunMeta {
        schema_version: SCHEMA_VERSION,
        run_id: "bench".into(),
        started_at: "2026-11-21T00:00:00Z".into(),
        tracelab_version: tracelab_model::VERSION.into(),
        git_revision: None,
        command_line: vec![],
        target: "vm:x86_64/6.12".into(),
        arch: "x86_64".into(),
        kernel: "6.12".into(),
        kernel_release: Some("6.12.95+deb12-cloud-amd64".into()),
        kernel_package: None,
        kernel_config: Default::default(),
        cpu: "max".into(),
        qemu_version: None,
        mode: "icount".into(),
        accel: Some("tcg".into()),
        clock: "icount".into(),
        unit: Unit::Insn,
        workload: "getppid".into(),
        calls: 1000,
        repeats: 15,
        mechanisms: vec![],
        extra: Default::default(),
    }
}

fn cell(i: u32) -> Cell {
    let mut m =
        Measured::without_samples("kprobe", "getppid", Unit::Insn, Status::Ok, String::new());
    m.reason = None;
    m.calls = 1000;
    m.events_per_call = Some(1);
    m.fired = Some(15_000);
    for repeat in 0..15 {
        for (phase, e) in [
            (Phase::Baseline, 330_000),
            (Phase::Mechanism, 1_150_000 + u64::from(i)),
        ] {
            let fired = (phase == Phase::Mechanism).then_some(1000);
            m.samples.push(Sample::timed(repeat, phase, 1000, e, fired));
        }
    }
    let ctx = CellContext {
        target: "vm:x86_64/6.12".into(),
        arch: "x86_64".into(),
        kernel: "6.12".into(),
        kernel_release: None,
    };
    Cell::new(ctx, m, None)
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("results_io");
    g.sample_size(10);
    // A study's last cell: store it and regenerate every derived file from 16 cells.
    g.bench_function("add_16th_cell", |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().expect("tempdir");
                let mut store = ResultsDir::create(&dir.path().join("r"), &meta()).expect("create");
                for i in 0..15 {
                    store.add_cell(cell(i)).expect("add");
                }
                (dir, store)
            },
            |(dir, mut store)| {
                store.add_cell(cell(15)).expect("add");
                drop(dir);
            },
            BatchSize::PerIteration,
        )
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = ResultsDir::create(&dir.path().join("r"), &meta()).expect("create");
    for i in 0..16 {
        store.add_cell(cell(i)).expect("add");
    }
    g.bench_function("load_16_cells", |b| {
        b.iter(|| results::load(black_box(store.path())).expect("load"))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
