//! The results schema, defined once: what the agent reports for a cell and what the lab
//! stores. Every figure travels with its [`Unit`].

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

fn one() -> u32 {
    1
}

/// Version of the stored results format; bump on any incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

/// Outcome of one cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Measured, and the mechanism was verified to fire on every measured call.
    Ok,
    /// The kernel lacks the mechanism; `reason` names what is missing.
    Unsupported,
    /// Something went wrong (attach, verification, guest); `reason` says what.
    Failed,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Unsupported => "unsupported",
            Status::Failed => "failed",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The unit of every time-like figure in a cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Unit {
    /// Guest instructions: QEMU `-icount shift=0` advances guest time 1 ns per instruction.
    Insn,
    /// Real (monotonic) nanoseconds.
    Ns,
}

impl Unit {
    pub fn name(self) -> &'static str {
        match self {
            Unit::Insn => "insn",
            Unit::Ns => "ns",
        }
    }
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which half of an interleaved pair a sample belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// The mechanism installed but disarmed.
    Baseline,
    /// The mechanism armed.
    Mechanism,
}

/// One timed loop: `calls` calls of the workload took `elapsed` (in the cell's unit).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub repeat: u32,
    pub phase: Phase,
    pub calls: u64,
    pub elapsed: u64,
    /// Events the mechanism produced during this loop (None for the baseline mechanism).
    pub fired: Option<u64>,
    /// Perf counters over the loop (name → count, user + kernel); empty where the PMU
    /// offers none. A counter the PMU lacks is absent, never zero.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub counters: BTreeMap<String, u64>,
    /// The measuring thread's own CPU time over the loop (`CLOCK_THREAD_CPUTIME_ID`, in
    /// the cell's unit): beside `elapsed`, what shows time spent outside the thread.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread_time: Option<u64>,
    /// Context switches of the measuring thread during the loop (`getrusage`); a loop
    /// with any is contaminated and was rerun.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub switches: Option<u64>,
    /// RCU softirqs that ran during the loop (guests, one CPU: `/proc/softirqs`); a loop
    /// with any ran RCU's work inside it, with or without a switch, and was rerun.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rcu_softirqs: Option<u64>,
    /// Every interrupt and softirq row of `/proc/interrupts` and `/proc/softirqs` that
    /// moved during the loop (guests: `LOC`, `arch_timer`, `softirq:TIMER`, …), with by
    /// how much; empty on a host or when nothing ran.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub interrupts: BTreeMap<String, u64>,
    /// The loop's number among the marked loops of its boot (`--attribution`): the QEMU
    /// plugin's record of the loop carries the same number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loop_serial: Option<u64>,
}

impl Sample {
    /// A loop known only by its timing (and its event count): no counters, no thread
    /// clock, no switch or softirq counts. What synthetic data and tests build.
    pub fn timed(
        repeat: u32,
        phase: Phase,
        calls: u64,
        elapsed: u64,
        fired: Option<u64>,
    ) -> Sample {
        Sample {
            repeat,
            phase,
            calls,
            elapsed,
            fired,
            counters: BTreeMap::new(),
            thread_time: None,
            switches: None,
            rcu_softirqs: None,
            interrupts: BTreeMap::new(),
            loop_serial: None,
        }
    }
}

/// How a cell's loops were kept free of foreign work.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Cleanliness {
    /// Timed loops thrown away and run again because something else ran in them.
    pub reruns: u32,
    /// Guest (or host) time spent waiting for the kernel to be idle before timed loops,
    /// in the cell's unit.
    pub quiesce_time: u64,
    /// Loops started without an idle window having been seen (the wait timed out).
    pub unquiet_starts: u32,
    /// Loops started although the busy tick before them was not clean (RCU work or a
    /// switch in every rehearsal; the loop's own check remains).
    #[serde(default)]
    pub unsettled_starts: u32,
    /// Extra events allowed beyond calls × events per call (0 in a guest, where nothing
    /// else calls the function).
    pub firing_slack: u64,
}

/// What the agent measured for one mechanism: raw samples and the proof of firing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measured {
    pub mechanism: String,
    /// What the attached program does (BPF mechanisms: `empty`, `count`, `record`).
    #[serde(default)]
    pub payload: Option<String>,
    /// How many programs/probes are attached to the function at once.
    #[serde(default = "one")]
    pub stack: u32,
    /// Functions traced at once (`--functions`); one in results written before the axis
    /// existed.
    #[serde(default, skip_serializing_if = "crate::cell_id::Functions::is_one")]
    pub functions: crate::cell_id::Functions,
    /// The other functions traced beside the workload's (cells with `functions` > 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traced: Option<TracedSet>,
    /// Other ftrace users on the kernel while the cell ran, each tracing one function of
    /// its own (`--other-tracers`); 0 in results written before the axis existed.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub other_tracers: u32,
    /// The functions the other tracers traced, one each (cells with `other_tracers` > 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beside: Option<TracedSet>,
    /// How long attaching and detaching took, per repeat (what the functions axis is
    /// about; every cell that installs something records it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attach_times: Vec<AttachTime>,
    /// The stack traces a stack-trace payload took (`stacktrace`, `stackid`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack_traces: Option<StackTraces>,
    /// Kernel code the cell's install made at run time, as `/proc/kallsyms` named it while
    /// armed (`--attribution`): BPF programs and trampolines, kprobe slots, ftrace
    /// trampolines. The host names the plugin's blocks outside the image by them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runtime_symbols: Vec<crate::attribution::RuntimeSymbol>,
    pub workload: String,
    /// The kernel function traced, as the kernel names it.
    pub function: Option<String>,
    /// What was attached, as written to tracefs (probe line, tracer and filter).
    pub attach: Option<String>,
    pub status: Status,
    pub reason: Option<String>,
    pub unit: Unit,
    /// Calls per timed loop.
    pub calls: u64,
    /// Events the mechanism must produce per call of the traced function (1, or 2 for
    /// function_graph; K for K stacked programs).
    pub events_per_call: Option<u64>,
    /// Calls of the traced function per operation of the workload, counted in the first
    /// armed loop and held in every other (1 for getppid; 2 for the pipe ping-pong, one
    /// read per side). Absent where nothing was counted and in older results (read: 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traced_per_op: Option<u64>,
    /// Verified events over all mechanism loops.
    pub fired: Option<u64>,
    pub samples: Vec<Sample>,
    /// The kernel's own statistics of the attached BPF programs, one entry per repeat
    /// (empty for mechanisms the kernel keeps none for).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kernel_stats: Vec<KernelStatsLoop>,
    /// Reruns, idle waits and firing slack of this cell (absent in results written before
    /// the lab kept them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cleanliness: Option<Cleanliness>,
    /// Real time: how the cell chose its number of pairs (None: a fixed count).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precision: Option<Precision>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// The functions a cell traced beside the workload's own, and how they were chosen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TracedSet {
    /// The other functions, in the order of the choice (a prefix of the same list for
    /// every number of functions on one kernel).
    pub others: Vec<String>,
    /// How they were chosen, in words (what was skipped and why).
    pub choice: String,
    /// FNV-1a (64 bit, hex) of the names joined by newlines: two cells traced the same
    /// set exactly when their digests agree.
    pub digest: String,
}

/// Time of one step, in two clocks: elapsed on the cell's clock (under icount the
/// guest's virtual time, in which a wait for an RCU grace period counts at its virtual
/// length) and the attaching thread's own CPU time (the instructions it ran, in the
/// kernel too, under icount).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Span {
    pub elapsed: u64,
    pub thread: u64,
}

impl Span {
    pub fn plus(self, other: Span) -> Span {
        Span {
            elapsed: self.elapsed.saturating_add(other.elapsed),
            thread: self.thread.saturating_add(other.thread),
        }
    }
}

/// How long one repeat took to attach and to detach the mechanism, in the cell's unit.
/// `install` and `remove` are absent where the repeat reused an installation (BPF
/// programs loaded once per cell and attached per repeat).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachTime {
    pub repeat: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub install: Option<Span>,
    pub arm: Span,
    pub disarm: Span,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remove: Option<Span>,
}

impl AttachTime {
    /// From nothing to armed, where this repeat installed (else None).
    pub fn attach(&self) -> Option<Span> {
        Some(self.install?.plus(self.arm))
    }

    /// From armed to nothing, where this repeat removed (else None).
    pub fn detach(&self) -> Option<Span> {
        Some(self.disarm.plus(self.remove?))
    }
}

/// The stack traces of a stack-trace payload, over the loops of the cell's installs:
/// for `stacktrace` every trace taken (the kernel's `size` of each ftrace stack entry, or
/// the bytes `bpf_get_stack` wrote); for `stackid` the distinct stacks its map holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StackTraces {
    pub traces: u64,
    /// Frames over all of them.
    pub frames: u64,
}

impl StackTraces {
    /// Mean frames per trace; None without any trace.
    pub fn depth(&self) -> Option<f64> {
        (self.traces > 0).then(|| self.frames as f64 / self.traces as f64)
    }

    /// Both together (two installs of one cell).
    pub fn plus(self, other: StackTraces) -> StackTraces {
        StackTraces {
            traces: self.traces + other.traces,
            frames: self.frames + other.frames,
        }
    }
}

/// Why a real-time cell stopped adding pairs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stopped {
    /// The interval reached its goal.
    Precise,
    /// The time budget ended first.
    Budget,
    /// The most pairs allowed ran first.
    MaxRepeats,
}

/// How a real-time cell's repeats adapted to its interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Precision {
    /// The 95% CI half-width aimed for (`summary::precision_goal`), in the cell's unit.
    pub goal: f64,
    /// The half-width reached (None: too few pairs for an interval).
    pub half_width: Option<f64>,
    pub pairs: u32,
    pub stopped: Stopped,
}

/// One loop of `calls` calls run after a repeat's armed loop with the kernel's BPF
/// statistics on (`BPF_ENABLE_STATS`): the kernel's `run_cnt`/`run_time_ns` of our programs
/// over it. Its elapsed time is not in the summary: statistics add two clock reads per
/// program run. `run_time_ns` excludes the dispatch (trampoline, kprobe, fprobe) cost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KernelStatsLoop {
    pub calls: u64,
    /// Elapsed time of the loop, in the cell's unit.
    pub elapsed: u64,
    /// Programs attached (the stack).
    pub programs: u32,
    /// Program runs over all programs, as the kernel counted them (verified against calls).
    pub run_cnt: u64,
    /// Time inside the programs as the kernel measured it (guest `sched_clock`: one ns per
    /// instruction under icount).
    pub run_time_ns: u64,
    pub recursion_misses: u64,
    /// Runs the kernel adds beyond the workload's calls (programs on every syscall also
    /// run for the agent's own statistics reads), included in `run_cnt`.
    #[serde(default)]
    pub extra_runs: u64,
}

impl Measured {
    /// A cell that produced no samples.
    pub fn without_samples(
        mechanism: &str,
        workload: &str,
        unit: Unit,
        status: Status,
        reason: String,
    ) -> Self {
        Measured {
            mechanism: mechanism.to_string(),
            payload: None,
            stack: 1,
            functions: crate::cell_id::Functions::ONE,
            traced: None,
            other_tracers: 0,
            beside: None,
            attach_times: Vec::new(),
            stack_traces: None,
            runtime_symbols: Vec::new(),
            workload: workload.to_string(),
            function: None,
            attach: None,
            status,
            reason: Some(reason),
            unit,
            calls: 0,
            events_per_call: None,
            traced_per_op: None,
            fired: None,
            samples: Vec::new(),
            kernel_stats: Vec::new(),
            cleanliness: None,
            precision: None,
        }
    }
}

/// Where and on what a cell ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellContext {
    /// `local` or `vm:<arch>/<version>`.
    pub target: String,
    pub arch: String,
    /// The kernel's label (`6.12`, or `local`).
    pub kernel: String,
    /// `uname -r` inside the target, when it got that far.
    pub kernel_release: Option<String>,
}

impl Measured {
    /// The cell's identity.
    pub fn id(&self) -> crate::cell_id::CellId {
        crate::cell_id::CellId {
            mechanism: self.mechanism.clone(),
            payload: self.payload.clone(),
            stack: self.stack,
            functions: self.functions,
            other_tracers: self.other_tracers,
        }
    }
}
