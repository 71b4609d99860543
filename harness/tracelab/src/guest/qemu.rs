//! The QEMU command line for a measurement guest.

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::Command;
use tracelab_model::arch::Arch;
use tracelab_model::schema::Unit;

/// How guest time relates to real time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// `-icount shift=0,sleep=off`: 1 guest ns per instruction, deterministic (TCG only).
    Icount,
    /// Real time: KVM when usable, else TCG. Noisy, in ns.
    Wall,
}

impl Mode {
    pub fn unit(self) -> Unit {
        match self {
            Mode::Icount => Unit::Insn,
            Mode::Wall => Unit::Ns,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Mode::Icount => "icount",
            Mode::Wall => "wall",
        }
    }

    /// What the cells' clock counts, for the results: under icount, x86_64 loops read the
    /// TSC, which is the instruction count itself (the agent's `clock::count_with_tsc`).
    pub fn clock(self, arch: Arch) -> &'static str {
        match (self, arch) {
            (Mode::Icount, Arch::X86_64) => {
                "guest TSC under -icount shift=0,sleep=off: 1 tick = 1 instruction"
            }
            (Mode::Icount, Arch::Arm64) => {
                "guest CLOCK_MONOTONIC under -icount shift=0,sleep=off: 1 ns = 1 instruction"
            }
            (Mode::Wall, _) => "guest CLOCK_MONOTONIC (real time)",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    Tcg,
    Kvm,
}

impl Accel {
    pub fn name(self) -> &'static str {
        match self {
            Accel::Tcg => "tcg",
            Accel::Kvm => "kvm",
        }
    }
}

/// The guest's real-time clock: a fixed start, advancing with the virtual clock, so no
/// host time reaches the guest.
pub const RTC: &str = "base=2020-01-01T00:00:00,clock=vm";

/// Everything that decides what a guest measures; recorded with the results.
#[derive(Debug, Clone)]
pub struct Setup {
    pub arch: Arch,
    pub mode: Mode,
    pub accel: Accel,
    pub memory_mib: u32,
    /// Seeds the guest's random numbers (`-seed`), so every boot lays out the same.
    pub seed: u64,
    /// The user's kernel arguments (`--kernel-args`), after the lab's own.
    pub kernel_args: Vec<String>,
    /// Guest CPUs (`-smp`): 1, or 2 when the workload's peer runs on a CPU of its own.
    pub vcpus: u32,
    /// The TCG plugin and the file it writes its loop records to (`--attribution`).
    pub plugin: Option<(PathBuf, PathBuf)>,
}

/// Kernel parameters the lab sets itself and a user may not override: the console
/// carries the agent's records, init is the agent's, a panic must end the guest.
const RESERVED_KERNEL_ARGS: &[&str] = &["console", "rdinit", "init", "panic", "quiet", "loglevel"];

/// Checks `--kernel-args`: whitespace-separated `name` or `name=value` words of plain
/// characters (nothing QEMU or the kernel would parse as quoting or another option), none
/// of the lab's own. Returns the words.
pub fn check_kernel_args(text: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for word in text.split_whitespace() {
        let name = word.split('=').next().unwrap_or(word);
        let plain = word.chars().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ',' | '=' | ':' | '/' | '+')
        });
        if !plain || name.is_empty() || word.len() > 200 {
            return Err(format!(
                "kernel argument `{}`: use name or name=value of letters, digits and _ - . , = : / + (e.g. mitigations=off)",
                word.chars().take(60).collect::<String>()
            ));
        }
        if RESERVED_KERNEL_ARGS.contains(&name) {
            return Err(format!(
                "kernel argument `{name}` is the lab's own (it sets {}); leave it out",
                RESERVED_KERNEL_ARGS.join(", ")
            ));
        }
        out.push(word.to_string());
    }
    Ok(out)
}

/// Kernel parameters that stop the periodic work an idle Debian guest otherwise does every
/// half second or so (traced in a 6.12 guest: kcompactd's proactive compaction every
/// 512 ms, vmstat every second, the soft-lockup watchdog every 4 s, PSI and memcg
/// statistics every 2 s, the clocksource watchdog), and the one-second batching of
/// RCU-tasks callbacks that free BPF trampolines. Without them no window of a second was
/// ever idle, every wait for quiet ran to its bound, and timers landed in timed loops.
/// None of them is on the path of a traced call. Parameters a kernel does not know
/// (the RCU-tasks ones before 6.7) are ignored by it.
pub const QUIET_KERNEL: &str = "nowatchdog nosoftlockup psi=0 cgroup_disable=memory sysctl.vm.stat_interval=3600 sysctl.vm.compaction_proactiveness=0 rcupdate.rcu_tasks_lazy_ms=0 rcupdate.rcu_tasks_trace_lazy_ms=0 rcupdate.rcu_tasks_rude_lazy_ms=0";

impl Setup {
    pub fn new(arch: Arch, mode: Mode, accel: Accel) -> Setup {
        Setup {
            arch,
            mode,
            accel,
            memory_mib: 1024,
            seed: 1,
            kernel_args: Vec::new(),
            vcpus: 1,
            plugin: None,
        }
    }

    pub fn binary(&self) -> &'static str {
        match self.arch {
            Arch::X86_64 => "qemu-system-x86_64",
            Arch::Arm64 => "qemu-system-aarch64",
        }
    }

    /// The CPU model and flags. On arm64, SVE/SME off: with SVE a process whose libc
    /// touched it pays a state flush on each syscall until a context switch, which made the
    /// baseline jump between boots; impdef pointer auth is cheap to emulate.
    pub fn cpu(&self) -> &'static str {
        match (self.arch, self.accel) {
            (_, Accel::Kvm) => "host",
            (Arch::X86_64, Accel::Tcg) => "max",
            (Arch::Arm64, Accel::Tcg) => "max,sve=off,sme=off,pauth-impdef=on",
        }
    }

    /// The kernel command line: quiet (the console carries the agent's records), no
    /// randomized layout, no background crypto self-tests (they made first measurements
    /// 2-3x too high), and a panic ends the guest at once. Then [`QUIET_KERNEL`]: no
    /// periodic kernel work of its own, so that an idle guest is really idle.
    pub fn kernel_cmdline(&self) -> String {
        let (console, arch_quiet) = match self.arch {
            // The TSC needs no watchdog in a guest whose clock is the instruction count.
            Arch::X86_64 => ("ttyS0", " tsc=reliable"),
            Arch::Arm64 => ("ttyAMA0", ""),
        };
        // Under icount, each syscall's random kernel stack offset is off too, like the
        // random layouts: it drew a random number on every syscall (a ChaCha refill every
        // 48th on arm64 6.1 and 6.12, so baseline loops took one of two lengths) and moved
        // the stack, whose alignment changed what some copies cost (a restored guest,
        // whose random state differs from a booted one's, measured 10 insn more in one
        // arm64 7.3 loop).
        let exact = match self.mode {
            Mode::Icount => " randomize_kstack_offset=off",
            Mode::Wall => "",
        };
        let mut line = format!("console={console} quiet loglevel=1 nokaslr norandmaps cryptomgr.notests=1 panic=-1 rdinit=/init {QUIET_KERNEL}{arch_quiet}{exact}");
        for a in &self.kernel_args {
            line.push(' ');
            line.push_str(a);
        }
        line
    }

    pub fn args(&self, kernel: &Path, initrd: &Path) -> Vec<String> {
        let mut a: Vec<String> = Vec::new();
        let mut push = |xs: &[&str]| a.extend(xs.iter().map(|s| s.to_string()));
        if self.arch == Arch::Arm64 {
            push(&["-M", "virt"]);
        }
        push(&[
            "-accel",
            self.accel.name(),
            "-cpu",
            self.cpu(),
            "-smp",
            &self.vcpus.to_string(),
        ]);
        push(&[
            "-m",
            &self.memory_mib.to_string(),
            "-seed",
            &self.seed.to_string(),
            // A fixed clock: by default the RTC follows the host's, and the kernel seeds
            // its random numbers from it, so two boots would differ.
            "-rtc",
            RTC,
        ]);
        if self.mode == Mode::Icount {
            push(&["-icount", "shift=0,sleep=off"]);
        }
        if let Some((plugin, out)) = &self.plugin {
            push(&[
                "-plugin",
                &format!("{},out={}", plugin.display(), out.display()),
            ]);
        }
        push(&[
            "-nographic",
            "-no-reboot",
            "-nodefaults",
            "-serial",
            "stdio",
        ]);
        push(&[
            "-kernel",
            &kernel.to_string_lossy(),
            "-initrd",
            &initrd.to_string_lossy(),
        ]);
        push(&["-append", &self.kernel_cmdline()]);
        a
    }

    pub fn command(&self, kernel: &Path, initrd: &Path) -> Command {
        let mut c = Command::new(self.binary());
        c.args(self.args(kernel, initrd));
        c
    }
}

/// The first line of `qemu-system-* --version`.
pub fn version(binary: &str) -> Result<String> {
    let out = Command::new(binary).arg("--version").output().with_context(|| {
        format!("{binary} not found: install QEMU (run scripts/install-deps, or apt-get install qemu-system-x86 qemu-system-arm)")
    })?;
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text.lines().next().unwrap_or("unknown").trim().to_string())
}

/// Whether `binary` loads the TCG plugin at `plugin`: QEMU starts with no machine, loads
/// it, and quits at once on a QMP command (about 30 ms), so a QEMU built without plugin
/// support, a plugin of another API version or a damaged file is a one-line error
/// before any guest boots.
pub fn check_plugin(binary: &str, plugin: &Path) -> Result<()> {
    use std::io::Write as _;
    use std::process::Stdio;
    let mut child = Command::new(binary)
        .args([
            "-M",
            "none",
            "-accel",
            "tcg",
            "-display",
            "none",
            "-nodefaults",
        ])
        .arg("-plugin")
        .arg(format!("{},out=/dev/null", plugin.display()))
        .args(["-qmp", "stdio"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("{binary} not found: install QEMU (run scripts/install-deps)"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // QEMU may already have exited (the plugin failed to load): a closed pipe here
        // is that failure, reported from its status below.
        let _ = stdin.write_all(b"{\"execute\":\"qmp_capabilities\"}\n{\"execute\":\"quit\"}\n");
    }
    let out = child
        .wait_with_output()
        .with_context(|| format!("running {binary} to load the plugin"))?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let first = stderr
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("no message")
        .trim();
    let first = first.strip_prefix(&format!("{binary}: ")).unwrap_or(first);
    if stderr.contains("invalid option") {
        bail!(
            "--attribution: {binary} has no TCG plugin support (-plugin is not an option); install a QEMU built with plugins (Debian's qemu-system from bookworm-backports is)"
        );
    }
    bail!(
        "--attribution: {binary} cannot load the TCG plugin {}: {first}",
        plugin.display()
    )
}

/// KVM is worth trying only for the host's own arch and when /dev/kvm opens read-write.
pub fn kvm_usable(arch: Arch) -> bool {
    Arch::this() == Some(arch)
        && std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/kvm")
            .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn icount_guest_args() {
        assert_eq!(
            check_kernel_args(" mitigations=off  nosmt ").expect("ok"),
            ["mitigations=off", "nosmt"]
        );
        for bad in [
            "console=tty0",
            "init=/bin/sh",
            "a\"b",
            "x;reboot",
            "panic=0",
        ] {
            assert!(check_kernel_args(bad).is_err(), "{bad}");
        }
        let mut k = Setup::new(Arch::X86_64, Mode::Icount, Accel::Tcg);
        k.kernel_args = vec!["mitigations=off".into()];
        assert!(k.kernel_cmdline().ends_with(" mitigations=off"));
        let s = Setup::new(Arch::Arm64, Mode::Icount, Accel::Tcg);
        let a = s.args(Path::new("/k"), Path::new("/i")).join(" ");
        assert!(
            a.starts_with("-M virt -accel tcg -cpu max,sve=off,sme=off,pauth-impdef=on"),
            "{a}"
        );
        assert!(
            a.contains("-icount shift=0,sleep=off") && a.contains("-seed 1"),
            "{a}"
        );
        assert!(
            a.contains("console=ttyAMA0") && a.contains("cryptomgr.notests=1"),
            "{a}"
        );
        let w = Setup::new(Arch::X86_64, Mode::Wall, Accel::Kvm)
            .args(Path::new("/k"), Path::new("/i"))
            .join(" ");
        assert!(
            !w.contains("icount") && w.contains("-accel kvm -cpu host") && w.contains("ttyS0"),
            "{w}"
        );
        assert_eq!(Mode::Icount.unit(), Unit::Insn);
    }
}
