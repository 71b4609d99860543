//! The bad-input corpus: every case gets exit code 2 and one error line that says what
//! is wrong and what is valid, never a panic, never a page of text. Cases that need a
//! guest are in the guest tier (`bad_input_guests.rs`: a full disk, two runs racing for
//! one directory); console garbage is a unit test of the console reader, and truncated or
//! mismatched kernel packages are tests of the kernels crate.

use assert_cmd::Command;
use std::path::Path;

fn tracelab() -> Command {
    Command::cargo_bin("tracelab").expect("tracelab binary")
}

/// Runs `args` and checks the error: exit 2, `needle` in it, and nothing but the error
/// line (clap adds its `For more information, try '--help'.` hint, and for a missing
/// argument the argument's usage).
fn refused(args: &[&str], needle: &str) {
    let out = tracelab().args(args).output().expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let shown: Vec<&str> = args.iter().map(|a| a.get(..40).unwrap_or(a)).collect();
    assert_eq!(out.status.code(), Some(2), "{shown:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{shown:?}: {stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.contains("error:")).collect();
    assert_eq!(errors.len(), 1, "{shown:?}: one error line, got {stderr}");
    // The longest line names all 26 mechanisms, the four sets and the nearest name
    // (about 505 characters).
    assert!(
        errors[0].len() <= 540,
        "{shown:?}: an error line of {} characters",
        errors[0].len()
    );
    assert!(
        errors[0].contains(needle),
        "{shown:?}: {needle:?} not in {stderr}"
    );
    // `TRACELAB_CORPUS_TABLE=<file>` collects the corpus as a Markdown table (case →
    // message), for a report of what each bad input is told.
    if let Some(path) = std::env::var_os("TRACELAB_CORPUS_TABLE") {
        use std::io::Write;
        let case = shown.join(" ").replace('\n', "\\n").replace('|', "\\|");
        let message = errors[0].replace('|', "\\|");
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .expect("corpus table");
        let _ = writeln!(f, "| `{case}` | {message} |");
    }
    for line in stderr.lines().filter(|l| !l.contains("error:")) {
        let hint = line.is_empty()
            || line.starts_with("For more information")
            || line.starts_with("Usage:")
            || line.starts_with("  ")
            || line.starts_with("tracelab: fetching");
        assert!(hint, "{shown:?}: unexpected line {line:?} in {stderr}");
    }
}

const FLAG_CASES: &[(&[&str], &str)] = &[
    // A bare 5 once meant 500 %: a gate that never fires.
    (
        &["compare", "a", "b", "--threshold", "5"],
        "would mean 500%",
    ),
    (&["history", "s", "--threshold", "2"], "write 2%"),
    (&["frobnicate"], "unrecognized subcommand"),
    (&["chaos", "--kills", "0"], "--kills must be at least 1"),
    (&["chaos", "--kills", "many"], "--kills"),
    (&["chaos", "--seed", "x"], "--seed"),
    (
        &["chaos", "--target", "local"],
        "chaos runs in a Debian guest",
    ),
    (
        &["chaos", "--target", "vm:sparc/6.12"],
        "valid: x86_64, arm64",
    ),
    (&["run", "--fault", "explode"], "unknown fault `explode`"),
    (
        &["run", "--kernel-args", "console=tty0"],
        "is the lab's own",
    ),
    (&["run", "--kernel-args", "a\"b"], "use name or name=value"),
    (
        &["run", "--kernel-args", "x;reboot"],
        "use name or name=value",
    ),
    (
        &["run", "--target", "local", "--kernel-args", "nosmt"],
        "applies to guests only",
    ),
    (&["run", "--vcpus", "3"], "3 is not in 1..=2"),
    (
        &["run", "--vcpus", "2"],
        "workload getppid has no peer (valid: pipe)",
    ),
    (
        &[
            "run",
            "--target",
            "local",
            "--vcpus",
            "2",
            "--workload",
            "pipe",
        ],
        "--vcpus applies to guests only",
    ),
    (
        &["run", "--store", "/tmp/s", "--night", "yesterday"],
        "YYYY-MM-DD-<id>",
    ),
    (
        &["run", "--night", "2026-12-02-a"],
        "required arguments were not provided",
    ),
    (
        &["matrix", "--shard", "3/2"],
        "the shard number must be 1 to 2",
    ),
    (&["matrix", "--shard", "1/0"], "i/N"),
    (
        &[
            "matrix",
            "--kernels",
            "6.12",
            "--arch",
            "x86_64",
            "--shard",
            "2/2",
        ],
        "only 1 guests",
    ),
    (
        &["history", "/nonexistent/store"],
        "is not a store directory",
    ),
    (
        &["merge", "--out", "/tmp/m"],
        "required arguments were not provided",
    ),
    (
        &["merge", "/nonexistent", "--out", "/tmp/m"],
        "is not a matrix dataset",
    ),
    (
        &["run", "--fault", "panic-after-ms=soon"],
        "needs a number of milliseconds",
    ),
    (&["run", "--calls", "0"], "calls must be at least 1"),
    (&["run", "--calls", "abc"], "--calls"),
    (&["run", "--calls", "99999999999999999999"], "too large"),
    (&["run", "--repeats", "0"], "repeats must be at least 1"),
    (&["run", "--repeats", "x"], "--repeats"),
    (&["run", "--stack", "0"], "stack sizes must be 1 to 64"),
    (&["run", "--stack", "65"], "stack sizes must be 1 to 64"),
    (&["run", "--stack", "1,1"], "each listed once"),
    (&["run", "--stack", ""], "e.g. --stack 1,2,4,8"),
    (&["run", "--functions", "0"], "valid: 1 to 100000, or all"),
    (
        &["run", "--functions", "every"],
        "valid: 1 to 100000, or all",
    ),
    (&["run", "--functions", "all,all"], "each listed once"),
    (&["run", "--other-tracers", "201"], "valid: 0 to 200"),
    (&["run", "--other-tracers", "1,1"], "each listed once"),
    (&["run", "--functions", "100001"], "valid: 1 to 100000"),
    (&["run", "--functions", "10,10"], "each listed once"),
    (
        &[
            "run",
            "--functions",
            "1,10",
            "--workload",
            "user-nop",
            "--mechanisms",
            "user",
        ],
        "traces one of the agent's own",
    ),
    // Plans whose every cell would be unsupported are refused before a guest boots.
    (&["run", "--workload", "user-nop"], "add --mechanisms user"),
    (
        &["run", "--mechanisms", "uprobe"],
        "use a user-space workload",
    ),
    (&["run", "--mechanisms", "kprob"], "did you mean kprobe?"),
    (
        &["run", "--attribution", "--target", "local"],
        "it needs a guest",
    ),
    (
        &["run", "--attribution", "--mode", "wall"],
        "needs --mode icount",
    ),
    (&["run", "--payloads", "foo"], "valid: empty, count, record"),
    (&["run", "--payloads", "count,count"], "listed twice"),
    (&["run", "--mechanisms", ""], "valid: baseline"),
    (
        &["run", "--mechanisms", "uprobes"],
        "valid: baseline, kprobe",
    ),
    (&["run", "--mechanisms", "kprobe,kprobe"], "listed twice"),
    (&["run", "--mode", "fast"], "--mode"),
    (
        &["run", "--workload", "ls"],
        "valid: getppid, bpf-numa-batch",
    ),
    (
        &["run", "--target", "qemu"],
        "valid: local, vm:<arch>/<version>",
    ),
    (&["run", "--target", "vm:x86_64"], "names no kernel version"),
    (&["run", "--target", "vm:/6.12"], "valid: x86_64, arm64"),
    (&["run", "--target", "vm:mips/6.12"], "valid: x86_64, arm64"),
    (
        &["run", "--target", "vm:x86_64/5.10"],
        "valid: 6.1, 6.12, 7.2, 7.3",
    ),
    (
        &["run", "--target", "vm:x86_64/custom"],
        "needs --kernel and --config",
    ),
    (
        &["run", "--target", "local", "--mode", "wall"],
        "--mode applies to guests only",
    ),
    (
        &[
            "run", "--target", "local", "--kernel", "/x", "--config", "/y",
        ],
        "need a vm target",
    ),
    (&["run", "--kernel", "/x"], "required arguments"),
    (&["run", "--budget", "5"], "apply to real time only"),
    (&["run", "--max-repeats", "5"], "apply to real time only"),
    (
        &["run", "--mode", "wall", "--max-repeats", "1"],
        "below --repeats (15)",
    ),
    (&["run", "--boot-timeout", "x"], "--boot-timeout"),
    (&["matrix", "--arch", "mips"], "valid: x86_64, arm64"),
    (
        &["matrix", "--kernels", "5.4"],
        "valid: 6.1, 6.12, 7.2, 7.3",
    ),
    (&["matrix", "--jobs", "0"], "--jobs must be at least 1"),
    (&["show"], "required arguments"),
    (&["show", "/nonexistent", "--format", "xml"], "valid"),
    (&["kernels", "fetch", "4.19"], "valid: 6.1, 6.12, 7.2, 7.3"),
    (
        &["kernels", "fetch", "6.12", "--arch", "sparc"],
        "valid: x86_64, arm64",
    ),
];

#[test]
fn flags_and_plan_values() {
    for (args, needle) in FLAG_CASES {
        refused(args, needle);
    }
}

/// Names that must never reach tracefs: probe syntax, globs, newlines, unicode, a name
/// longer than any kernel symbol. Each is refused before anything runs, quoted so that a
/// newline cannot split the error line.
#[test]
fn function_names() {
    let long = "a".repeat(10_000);
    for name in [
        "",
        "a b",
        "do_sys*",
        "a$b",
        "p:tracelab/x do_exit",
        "getppid\np:x/y do_exit",
        "foo\n",
        "1abc",
        "éé",
        "__do_sys_getppid%return",
        "f+0x4",
        "-r",
        long.as_str(),
    ] {
        let needle = if name.is_empty() {
            "function name is empty"
        } else if name.len() > 256 {
            "bytes long (at most 256)"
        } else if name.starts_with('-') {
            "unexpected argument"
        } else {
            "a kernel symbol is letters, digits"
        };
        refused(&["run", "--function", name], needle);
    }
}

/// A results directory made by hand: `meta.json` and one cell, as `run` writes them.
fn results_dir(dir: &Path) {
    let reference = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../results/reference/dataset/arch=x86_64/kernel=6.12");
    std::fs::create_dir_all(dir.join("cells")).expect("mkdir");
    std::fs::copy(reference.join("meta.json"), dir.join("meta.json")).expect("meta");
    std::fs::copy(
        reference.join("cells/001-kprobe.json"),
        dir.join("cells/001-kprobe.json"),
    )
    .expect("cell");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("list") {
        let e = e.expect("entry");
        if e.file_type().expect("type").is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).expect("copy");
        }
    }
}

#[test]
fn broken_results_directories() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let case = |name: &str, damage: &dyn Fn(&Path)| {
        let dir = tmp.path().join(name);
        results_dir(&dir);
        damage(&dir);
        dir.to_string_lossy().into_owned()
    };
    let no_meta = case("no-meta", &|d| {
        std::fs::remove_file(d.join("meta.json")).expect("rm")
    });
    let garbage_meta = case("garbage-meta", &|d| {
        std::fs::write(d.join("meta.json"), "{garbage").expect("write")
    });
    let schema = case("schema", &|d| {
        let p = d.join("meta.json");
        let text = std::fs::read_to_string(&p).expect("read");
        let text = text.replacen("\"schema_version\": 1", "\"schema_version\": 99", 1);
        std::fs::write(&p, text).expect("write");
    });
    let truncated = case("truncated-cell", &|d| {
        let p = d.join("cells/001-kprobe.json");
        let text = std::fs::read_to_string(&p).expect("read");
        std::fs::write(&p, &text[..text.len() / 2]).expect("write");
    });
    let good = case("good", &|_| {});
    let reference_dataset = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../results/reference/dataset")
        .to_string_lossy()
        .into_owned();
    for (args, needle) in [
        (vec!["show", no_meta.as_str()], "no meta.json"),
        (
            vec!["compare", good.as_str(), no_meta.as_str()],
            "no meta.json",
        ),
        (vec!["show", garbage_meta.as_str()], "parsing"),
        (
            vec!["report", garbage_meta.as_str(), "--out", "/tmp/x"],
            "parsing",
        ),
        (
            vec!["show", schema.as_str()],
            "schema version 99, this tracelab reads version 1",
        ),
        (
            vec!["compare", schema.as_str(), good.as_str()],
            "schema version 99",
        ),
        (vec!["show", truncated.as_str()], "001-kprobe.json"),
        (
            vec!["compare", good.as_str(), truncated.as_str()],
            "001-kprobe.json",
        ),
        (vec!["show", "/etc"], "not a tracelab results directory"),
        (
            vec!["show", "/nonexistent/run"],
            "/nonexistent/run does not exist",
        ),
        (vec!["show", reference_dataset.as_str()], "is a dataset of"),
        (
            vec!["compare", "/etc", "/tmp"],
            "neither a results directory",
        ),
    ] {
        refused(&args, needle);
    }
    // A whole reference guest with its derived files, its first cell cut to 40 bytes:
    // `show`, `compare` and `report` once printed every cell from the Parquet and passed.
    let reference = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../results/reference/dataset/arch=x86_64/kernel=6.12");
    let whole = tmp.path().join("whole-guest");
    copy_dir(&reference, &whole);
    let first = std::fs::read_dir(whole.join("cells"))
        .expect("cells")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .min()
        .expect("a cell");
    let bytes = std::fs::read(&first).expect("read");
    std::fs::write(&first, &bytes[..40]).expect("cut");
    let name = first
        .file_name()
        .and_then(|n| n.to_str())
        .expect("name")
        .to_string();
    let whole = whole.to_string_lossy().into_owned();
    for args in [
        vec!["show", whole.as_str(), "--format", "json"],
        vec!["compare", good.as_str(), whole.as_str()],
        vec![
            "report",
            whole.as_str(),
            "--out",
            "/tmp/tracelab-damaged-report",
        ],
    ] {
        refused(&args, &name);
    }
    // Garbage in a derived file loses nothing: the cells' JSON is the record.
    let parquet = case("garbage-parquet", &|d| {
        std::fs::write(d.join("summary.parquet"), "junk").expect("write")
    });
    tracelab()
        .args(["show", parquet.as_str()])
        .assert()
        .success()
        .stdout(predicates::str::contains("kprobe"));
}

#[test]
fn custom_kernels_that_are_not_kernels() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let text = tmp.path().join("notes.txt");
    std::fs::write(&text, "not a kernel").expect("write");
    let config = tmp.path().join(".config");
    std::fs::write(&config, "CONFIG_KPROBES=y\n").expect("write");
    let image = tmp.path().join("bzImage");
    let mut header = vec![0u8; 0x210];
    header[0x202..0x206].copy_from_slice(b"HdrS");
    std::fs::write(&image, header).expect("write");
    let (text, config, image) = (
        text.to_string_lossy(),
        config.to_string_lossy(),
        image.to_string_lossy(),
    );
    let custom = |kernel: &str, cfg: &str, arch: &str, needle: &str| {
        let target = format!("vm:{arch}/custom");
        refused(
            &[
                "run", "--target", &target, "--kernel", kernel, "--config", cfg,
            ],
            needle,
        );
    };
    custom(&text, &config, "x86_64", "is not a kernel image for x86_64");
    custom(&text, &config, "arm64", "is not a kernel image for arm64");
    custom(
        "/nonexistent",
        &config,
        "x86_64",
        "kernel image /nonexistent",
    );
    custom(
        &image,
        &text,
        "x86_64",
        "does not look like a kernel .config",
    );
}
