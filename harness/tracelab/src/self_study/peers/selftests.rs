//! The BPF selftests' `bench` as a peer: built from Debian's `linux-source` of exactly the
//! guest kernel's version, the way the selftests Makefile builds it (`make bench`, against
//! the guest kernel's own BTF), then its trig-* benches run in the guest. Under
//! `-icount shift=0` a guest second is 10^9 instructions, so a rate of R M/s is 1000/R insn
//! per call.

use crate::guest::userland::{quote, Step};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;
use tracelab_kernels::{Catalog, FetchedKernel, KernelVersion, PackageRef};
use tracelab_model::arch::Arch;

/// The compiler the build uses: the selftests follow current LLVM, and 19 is the newest
/// a Debian 12 host has (`apt-get install clang-19 llvm-19`).
const LLVM: &str = "19";

/// Where the bench sits in the guest.
pub(super) const BENCH: &str = "/usr/local/bin/bench";

/// The bench that measures the driver loop alone, whose cost is subtracted.
pub(super) const BASELINE: &str = "kernel-count";

/// The bench's flags: one warm-up and three measured guest seconds (each 10^9 insn under
/// icount), pinned, one producer.
pub(super) const ARGS: &str = "-w1 -d3 -a -p1";

/// A built bench and what it was built from (`bench.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Built {
    pub binary: PathBuf,
    pub source: PackageRef,
    pub arch: Arch,
    /// `clang-19 --version`'s first line.
    pub clang: String,
    /// Whether this kernel's `trig-kernel-count` loop also calls `bpf_get_numa_node_id`
    /// (it does from 6.19; before, it only counts, so the other benches' figures hold the
    /// helper's call).
    pub baseline_calls_helper: bool,
    /// Host seconds the build took (0 when the cached binary was used).
    pub build_secs: f64,
}

/// Why the bench is not built for a kernel, in a form the table can print.
pub(super) fn unbuildable(version: KernelVersion) -> Option<String> {
    if version == KernelVersion::V6_1 {
        return Some(
            "6.1's bench drives trig-* from user space with getpgid syscalls, not the batched in-kernel driver (6.10) the lab's bpf-numa-batch and bpf-kfunc-batch mirror"
                .into(),
        );
    }
    None
}

/// Builds (or reuses) the bench for `kernel`, in `<cache>/peers/<arch>/<version>/`.
pub(super) fn build(catalog: &Catalog, kernel: &FetchedKernel) -> Result<Built> {
    let clang = tool_version(&format!("clang-{LLVM}"))?;
    for tool in [format!("llc-{LLVM}"), format!("llvm-strip-{LLVM}")] {
        tool_version(&tool)?;
    }
    let source = catalog.fetch_source(kernel, &|_, _, _| {})?;
    let dir = catalog
        .cache_dir()
        .join("peers")
        .join(kernel.arch.name())
        .join(&source.package.version);
    let binary = dir.join("bench");
    let record_path = dir.join("bench.json");
    let cached = std::fs::read_to_string(&record_path)
        .ok()
        .and_then(|t| serde_json::from_str::<Built>(&t).ok())
        .filter(|b| b.source == source.package && b.clang == clang && binary.is_file());
    if let Some(mut b) = cached {
        b.build_secs = 0.0;
        return Ok(b);
    }
    let started = Instant::now();
    let _ = std::fs::remove_file(&record_path);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let image = std::fs::read(&kernel.image)
        .with_context(|| format!("reading {}", kernel.image.display()))?;
    let btf = dir.join("vmlinux.btf");
    let blob = tracelab_kernels::source::vmlinux_btf(&image)
        .with_context(|| format!("taking the BTF out of {}", kernel.image.display()))?;
    crate::results::atomic::write(&btf, &blob)?;
    let output = dir.join("build");
    if output.exists() {
        std::fs::remove_dir_all(&output)
            .with_context(|| format!("clearing {}", output.display()))?;
    }
    std::fs::create_dir_all(&output)?;
    let log = dir.join("build.log");
    let clang_path = dir.join("clang");
    crate::results::atomic::write(&clang_path, clang_wrapper().as_bytes())?;
    std::fs::set_permissions(
        &clang_path,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )?;
    let selftests = source.dir.join("tools/testing/selftests/bpf");
    let cross = cross_compile(catalog, kernel.arch, &dir)?;
    let mut make = Command::new("make");
    make.arg("-C")
        .arg(&selftests)
        .arg(format!(
            "-j{}",
            std::thread::available_parallelism().map_or(1, |n| n.get())
        ))
        .arg("bench")
        .arg(format!("VMLINUX_BTF={}", btf.display()))
        .arg(format!("OUTPUT={}", output.display()))
        .arg(format!("CLANG={}", clang_path.display()))
        .arg(format!("LLC=llc-{LLVM}"))
        .arg(format!("LLVM_STRIP=llvm-strip-{LLVM}"))
        .args(cross)
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&log)?)
        .stderr(std::fs::File::options().append(true).open(&log)?);
    let status = make
        .status()
        .context("running make (install make, gcc, pkg-config, libelf-dev, zlib1g-dev)")?;
    if !status.success() {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        bail!(
            "`make bench` in {} failed ({status}); last lines of {}:\n{}",
            selftests.display(),
            log.display(),
            crate::guest::userland::tail(&text, 15)
        );
    }
    std::fs::copy(output.join("bench"), &binary)
        .with_context(|| format!("copying the bench to {}", binary.display()))?;
    let _ = std::fs::remove_dir_all(&output);
    let programs = std::fs::read_to_string(selftests.join("progs/trigger_bench.c"))
        .context("reading progs/trigger_bench.c")?;
    let built = Built {
        binary,
        source: source.package,
        arch: kernel.arch,
        clang,
        baseline_calls_helper: helper_in_baseline(&programs),
        build_secs: started.elapsed().as_secs_f64(),
    };
    crate::results::atomic::write(
        &record_path,
        serde_json::to_string_pretty(&built)?.as_bytes(),
    )?;
    Ok(built)
}

/// The guest arch's libraries the bench links: libelf (dynamic, the guest has it) and the zlib
/// and zstd it uses (static, as their `.so` links in a sysroot point outside it).
const SYSROOT: &[&str] = &[
    "libelf-dev",
    "libelf1",
    "zlib1g-dev",
    "zlib1g",
    "libzstd-dev",
    "libzstd1",
];

/// The Makefile's own cross-build flags when the guest's arch is not the host's: `ARCH`
/// and a `CROSS_COMPILE` prefix whose gcc also searches a sysroot of the guest arch's
/// libraries, unpacked from Debian's packages (the host needs no foreign-arch apt).
fn cross_compile(catalog: &Catalog, arch: Arch, dir: &std::path::Path) -> Result<Vec<String>> {
    let host = match std::env::consts::ARCH {
        "aarch64" => Arch::Arm64,
        _ => Arch::X86_64,
    };
    if arch == host {
        return Ok(Vec::new());
    }
    let triplet = match arch {
        Arch::Arm64 => "aarch64-linux-gnu",
        Arch::X86_64 => "x86_64-linux-gnu",
    };
    let gcc = format!("{triplet}-gcc");
    tool_version(&gcc).with_context(|| format!("cross-building the bench for {arch}"))?;
    let sysroot = catalog.fetch_sysroot(arch, SYSROOT)?;
    let tools = dir.join("cross");
    if tools.exists() {
        std::fs::remove_dir_all(&tools)?;
    }
    std::fs::create_dir_all(&tools)?;
    for entry in std::fs::read_dir("/usr/bin")? {
        let name = entry?.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(&format!("{triplet}-")) && name != gcc.as_str() {
            std::os::unix::fs::symlink(format!("/usr/bin/{name}"), tools.join(name.as_ref()))?;
        }
    }
    let (include, lib) = (
        sysroot.join("usr/include"),
        sysroot.join("usr/lib").join(triplet),
    );
    let wrapper = tools.join(&gcc);
    crate::results::atomic::write(
        &wrapper,
        format!(
            "#!/bin/sh\nexec /usr/bin/{gcc} -I{inc} -I{inc}/{triplet} \"$@\" -L{lib}\n",
            inc = include.display(),
            lib = lib.display()
        )
        .as_bytes(),
    )?;
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )?;
    Ok(vec![
        format!("ARCH={}", if arch == Arch::Arm64 { "arm64" } else { "x86" }),
        format!("CROSS_COMPILE={}/{triplet}-", tools.display()),
    ])
}

/// The `CLANG` the build is given: clang-19, with `-mcpu=v4` added to a BPF compile that
/// names no CPU. Newer trees (7.x's libarena) compile some programs with the compiler's
/// default BPF CPU and use 32-bit atomics and signed division, which LLVM 19's default
/// (v1) lacks; the Makefile's own rules, the trig-* programs among them, name their CPU
/// and are compiled as written.
fn clang_wrapper() -> String {
    format!(
        "#!/bin/sh\n\
         case \" $* \" in\n\
         *\" --target=bpf\"*) case \" $* \" in *\" -mcpu=\"*) ;; *) exec clang-{LLVM} \"$@\" -mcpu=v4 ;; esac ;;\n\
         esac\n\
         exec clang-{LLVM} \"$@\"\n"
    )
}

/// `<tool> --version`'s first line, or an error saying how to install it.
fn tool_version(tool: &str) -> Result<String> {
    let out = Command::new(tool)
        .arg("--version")
        .output()
        .with_context(|| format!("{tool} is not installed (apt-get install clang-{LLVM} llvm-{LLVM}): the selftests' BPF programs need it"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
        .to_string())
}

/// Whether the `trig-kernel-count` program's loop calls `bpf_get_numa_node_id`.
fn helper_in_baseline(programs: &str) -> bool {
    programs
        .split("SEC(")
        .find(|section| {
            section.contains("int trigger_kernel_count(") || section.contains("int trigger_count(")
        })
        .is_some_and(|body| body.contains("bpf_get_numa_node_id()"))
}

/// What most likely makes the bench's figure differ from the lab's `empty` cell. Both
/// leave the program body out, but not the same way: the bench's baseline runs its
/// programs' counter (`bpf_get_smp_processor_id` and an atomic add) inline in its driver's
/// loop, where the probed benches run it in an attached program. Measured: +5 insn on
/// every `bpf_get_numa_node_id` attach type, on 6.12 and 7.3 alike.
pub(super) fn likely(kfunc_driver: bool, built: &Built) -> &'static str {
    if kfunc_driver {
        "a different driver: the bench has no baseline for its kfunc driver (trig-kernel-count does not call bpf_modify_return_test_tp), so its figure also holds that kfunc call and its tracepoint"
    } else if built.baseline_calls_helper {
        "a different program body: the bench's baseline runs its counter inline in the driver's loop, its probed benches in an attached program"
    } else {
        "a different program body: the bench's baseline runs its counter inline in the driver's loop, its probed benches in an attached program (and in this kernel trig-kernel-count calls no bpf_get_numa_node_id)"
    }
}

/// The guest's steps: `trig-kernel-count`, then each named bench, one process each.
pub(super) fn steps(benches: &[&str]) -> Vec<Step> {
    std::iter::once(BASELINE)
        .chain(benches.iter().copied())
        .map(|name| Step {
            name: format!("bench-{name}"),
            script: format!("{BENCH} {ARGS} {} 2>&1", quote(&format!("trig-{name}"))),
        })
        .collect()
}

/// The final rate a bench printed, in M calls per second, with its ±:
/// `Summary: hits   12.345 ± 0.067M/s (...)`.
pub(super) fn rate(output: &str) -> Option<(f64, f64)> {
    let line = output.lines().rev().find(|l| l.starts_with("Summary:"))?;
    let rest = line.split_once("hits")?.1;
    let (value, rest) = rest.split_once('±').or_else(|| rest.split_once("+/-"))?;
    let spread = rest.trim_start().split("M/s").next()?;
    Some((value.trim().parse().ok()?, spread.trim().parse().ok()?))
}

/// Insn per call of a rate under icount (1 M/s is 1000 insn per call).
pub(super) fn per_call(mps: f64) -> Option<f64> {
    (mps > 0.0).then(|| 1000.0 / mps)
}

/// The bench's place in the guest's files.
pub(super) fn guest_files(built: &Built) -> Vec<(String, PathBuf)> {
    vec![(
        BENCH.trim_start_matches('/').to_string(),
        built.binary.clone(),
    )]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_summary_rate() {
        let out = "Iter   0 ( 12.3us): hits    6.100M/s (  6.100M/prod), drops    0.000M/s, total operations    6.100M/s\n\
                   Summary: hits    6.120 \u{b1} 0.015M/s (  6.120M/prod), drops    0.000 \u{b1} 0.000M/s, total operations    6.120 \u{b1} 0.015M/s\n";
        assert_eq!(rate(out), Some((6.12, 0.015)));
        assert_eq!(
            rate("Summary: hits 2.000 +/- 0.100M/s (2.000M/prod)"),
            Some((2.0, 0.1))
        );
        assert_eq!(
            rate("Setting up benchmark 'trig-x'...\nbenchmark not found"),
            None
        );
        assert_eq!(per_call(4.0), Some(250.0));
        assert_eq!(per_call(0.0), None);
    }

    #[test]
    fn knows_whether_the_baseline_calls_the_helper() {
        let v612 = "SEC(\"?raw_tp\")\nint trigger_count(void *ctx)\n{\n\tfor (i = 0; i < batch_iters; i++)\n\t\tinc_counter();\n}\n\nSEC(\"?raw_tp\")\nint trigger_driver(void *ctx)\n{\n\t(void)bpf_get_numa_node_id();\n}\n";
        let v73 = "SEC(\"?raw_tp\")\nint trigger_kernel_count(void *ctx)\n{\n\t\tinc_counter();\n\t\tbpf_get_numa_node_id();\n}\n";
        assert!(!helper_in_baseline(v612));
        assert!(helper_in_baseline(v73));
    }

    #[test]
    fn runs_the_baseline_first_one_bench_per_step() {
        let s = steps(&["fentry", "tp"]);
        let names: Vec<&str> = s.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["bench-kernel-count", "bench-fentry", "bench-tp"]);
        assert_eq!(
            s[1].script,
            "/usr/local/bin/bench -w1 -d3 -a -p1 'trig-fentry' 2>&1"
        );
    }
}
