//! `--attribution`: the QEMU TCG plugin's counts of every marked loop, joined to the
//! loop's sample as emulated counters, and checked against the loop's own clock.
//!
//! The counters are named `tcg-plugin:…` so that nobody mistakes them for a hardware
//! PMU's: they are instructions QEMU translated and executed, split at the kernel's half
//! of the address space. Under `-icount shift=0` a loop's elapsed time is its instruction
//! count, so the plugin's count of the same loop must equal it plus a constant (the
//! markers and one clock read lie inside the plugin's span, outside the clock's): that is
//! the independent check of the `insn` unit, made on every loop.

use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::path::PathBuf;
use tracelab_model::attribution::{self, LoopCounts, RuntimeSymbol};
use tracelab_model::schema::Measured;

/// Instructions the loop executed in the kernel's half of the address space.
pub const KERNEL_INSN: &str = "tcg-plugin:insn-kernel";
/// Instructions the loop executed in user space.
pub const USER_INSN: &str = "tcg-plugin:insn-user";
/// Memory accesses (loads, stores) by instructions in the kernel and in user space: every
/// access counts, so an instruction that touches memory twice counts twice.
pub const KERNEL_LOADS: &str = "tcg-plugin:loads-kernel";
pub const USER_LOADS: &str = "tcg-plugin:loads-user";
pub const KERNEL_STORES: &str = "tcg-plugin:stores-kernel";
pub const USER_STORES: &str = "tcg-plugin:stores-user";
/// The plugin's count less the clock's: the markers' and one clock read's instructions,
/// nearly the same for every loop of a boot (see [`CLOCK_JITTER_INSN`]).
pub const OUTSIDE_CLOCK: &str = "tcg-plugin:insn-outside-clock";

/// How far the plugin-minus-clock difference may wander between the loops of a cell.
/// The plugin counts every executed instruction exactly; the guest's clock under icount
/// is exact only to a few instructions: QEMU ends a translation block early when the host
/// interrupts the vCPU (its timers, I/O), which moves where within the block the clock
/// read is resolved. Seen on x86_64 6.12 with the host busy: 89 to 92 over one cell's
/// loops (every loop 92 on an idle host). A lost block or a clock jump moves it by far more.
pub const CLOCK_JITTER_INSN: i128 = 8;

/// Each timer interrupt inside a loop moves the plugin-minus-clock difference: the plugin
/// counts a block whole when it is entered, and a block the interrupt leaves early is
/// counted whole. Seen with 20 000 getppid calls: x86_64 6.12 92 with no tick in the loop,
/// 87–88 with one or two, 74–75 with about nine; arm64 7.3 79 with two ticks, 149 with
/// eight, 179 with about thirteen. The allowance grows by this much per tick the longest
/// loop of the cell can hold; a lost or foreign loop moves it by far more.
pub const PER_TICK_INSN: i128 = 12;

/// Instructions between two timer ticks: Debian's kernels run at HZ=250 (4 ms), and under
/// `-icount shift=0` a guest nanosecond is one instruction.
pub const TICK_INSN: u64 = 4_000_000;

/// The plugin's file name, as `scripts/build-agents` installs it beside the agents.
pub const PLUGIN_FILE: &str = "libtracelab_plugin.so";

/// One boot's plugin records, read as the plugin appends them: each update reads only
/// what came after the last complete record (a matrix guest writes thousands of loops;
/// reading the whole file again for every cell would grow with their square).
#[derive(Debug)]
pub struct Reader {
    path: PathBuf,
    /// Bytes of the file already taken, up to the end of a complete record.
    offset: u64,
    /// Records not yet joined to a cell, by serial.
    records: BTreeMap<u64, LoopCounts>,
}

impl Reader {
    pub fn new(path: PathBuf) -> Reader {
        Reader {
            path,
            offset: 0,
            records: BTreeMap::new(),
        }
    }

    /// Takes the complete records appended since the last update; returns all not yet
    /// forgotten.
    pub fn update(&mut self) -> Result<&BTreeMap<u64, LoopCounts>> {
        use std::io::{Read as _, Seek as _};
        let mut file = match std::fs::File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(&self.records),
            Err(e) => return Err(e).with_context(|| format!("reading {}", self.path.display())),
        };
        let mut text = String::new();
        file.seek(std::io::SeekFrom::Start(self.offset))
            .and_then(|_| file.read_to_string(&mut text))
            .with_context(|| format!("reading {}", self.path.display()))?;
        // Up to the last complete record: an `E` line (records start with `L`).
        let end = text
            .match_indices("E\n")
            .filter(|(i, _)| *i == 0 || text.as_bytes()[i - 1] == b'\n')
            .last()
            .map_or(0, |(i, _)| i + 2);
        let records = attribution::parse(&text[..end])
            .with_context(|| format!("{} after byte {}", self.path.display(), self.offset))?;
        self.records
            .extend(records.into_iter().map(|r| (r.serial, r)));
        self.offset += end as u64;
        Ok(&self.records)
    }

    /// Drops the records of a cell's loops once joined (no later cell shares them).
    pub fn forget(&mut self, measured: &Measured) {
        for serial in measured.samples.iter().filter_map(|s| s.loop_serial) {
            self.records.remove(&serial);
        }
    }
}

/// Puts the plugin's counts of each marked loop into its sample's counters and checks
/// them against the loop's clock. Err: why the cell cannot be trusted (a loop the plugin
/// has no record of, or one whose count and clock disagree beyond the constant that the
/// cell's other loops share).
pub fn attach(measured: &mut Measured, records: &BTreeMap<u64, LoopCounts>) -> Result<(), String> {
    let mut offsets: BTreeMap<i128, Vec<u64>> = BTreeMap::new();
    let longest = measured
        .samples
        .iter()
        .map(|s| s.elapsed)
        .max()
        .unwrap_or(0);
    let allowed = CLOCK_JITTER_INSN + PER_TICK_INSN * i128::from(longest.div_ceil(TICK_INSN));
    for s in &mut measured.samples {
        let Some(serial) = s.loop_serial else {
            continue;
        };
        let Some(r) = records.get(&serial) else {
            return Err(format!(
                "the QEMU plugin has no record of marked loop {serial} (repeat {}, {:?})",
                s.repeat, s.phase
            ));
        };
        s.counters.insert(KERNEL_INSN.into(), r.kernel_insns);
        s.counters.insert(USER_INSN.into(), r.user_insns);
        if let Some(m) = r.memory {
            s.counters.insert(KERNEL_LOADS.into(), m.kernel_loads);
            s.counters.insert(USER_LOADS.into(), m.user_loads);
            s.counters.insert(KERNEL_STORES.into(), m.kernel_stores);
            s.counters.insert(USER_STORES.into(), m.user_stores);
        }
        let offset = i128::from(r.insns()) - i128::from(s.elapsed);
        if let Ok(o) = u64::try_from(offset) {
            s.counters.insert(OUTSIDE_CLOCK.into(), o);
        }
        offsets.entry(offset).or_default().push(serial);
    }
    let (lo, hi) = match (offsets.keys().next(), offsets.keys().next_back()) {
        (Some(&lo), Some(&hi)) => (lo, hi),
        _ => return Ok(()),
    };
    if hi - lo > allowed || lo < 0 {
        let seen: Vec<String> = offsets
            .iter()
            .map(|(o, loops)| {
                format!(
                    "{o:+} insn in {} loops (e.g. loop {})",
                    loops.len(),
                    loops[0]
                )
            })
            .collect();
        return Err(format!(
            "the QEMU plugin's instruction counts disagree with the icount clock by more than {allowed} insn between loops (8, and 12 per timer tick the longest loop holds): plugin − clock = {}",
            seen.join(", ")
        ));
    }
    Ok(())
}

/// The kernel image's function symbols, by address (from the agent's `Symbols` records).
#[derive(Debug, Clone, Default)]
pub struct Symbols {
    /// (address, name), sorted by address.
    by_address: Vec<(u64, String)>,
    /// Where the image's text ends (`_etext`, else the last symbol).
    end: u64,
    /// Where the exception entries that count as traps start ([`TRAP_ENTRIES`]).
    traps: Vec<u64>,
}

/// The exception entries whose executions are a breakdown's traps: x86_64's int3 and
/// debug-exception entries, and arm64's synchronous-exception vectors from EL1 and EL0
/// (BRK and single step as well as the syscall's SVC, which the baseline cancels out).
pub const TRAP_ENTRIES: &[&str] = &[
    "asm_exc_int3",
    "asm_exc_debug",
    "el1h_64_sync",
    "el0t_64_sync",
];

/// How far past a run-time symbol's start a block may lie and still be named by it:
/// kallsyms gives no sizes, and BPF programs and trampolines, kprobe slot pages and ftrace
/// trampolines each fit in a page.
const RUNTIME_SPAN: u64 = 4096;

/// What a block outside every known symbol is counted as: code the kernel made at run
/// time (BPF programs and trampolines, kprobe and ftrace trampolines), or an image
/// without symbols.
pub const OUTSIDE_IMAGE: &str = "[kernel code outside the image, unnamed]";
/// User-space blocks (the agent and its libc).
pub const USER: &str = tracelab_model::family::USER_ROW;
/// What is left after the largest rows, per family: `[other] <family>: N symbols`.
pub const OTHER: &str = "[other]";

impl Symbols {
    /// Parses `address name` lines.
    pub fn parse(text: &str) -> Symbols {
        let mut by_address: Vec<(u64, String)> = text
            .lines()
            .filter_map(|l| {
                let (a, n) = l.split_once(' ')?;
                Some((u64::from_str_radix(a, 16).ok()?, n.trim().to_string()))
            })
            .collect();
        by_address.sort();
        let end = by_address
            .iter()
            .find(|(_, n)| n == "_etext")
            .or(by_address.last())
            .map_or(0, |(a, _)| *a);
        let traps = by_address
            .iter()
            .filter(|(_, n)| TRAP_ENTRIES.contains(&n.as_str()))
            .map(|(a, _)| *a)
            .collect();
        Symbols {
            by_address,
            end,
            traps,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.by_address.is_empty()
    }

    pub fn len(&self) -> usize {
        self.by_address.len()
    }

    /// The symbol a kernel address lies in: the last at or below it, within the image's
    /// text (up to `_etext`, else the last symbol); outside the image, the run-time
    /// symbol (sorted by address) it lies in, within a page.
    pub fn name<'a>(&'a self, vaddr: u64, runtime: &'a [RuntimeSymbol]) -> &'a str {
        if !tracelab_model::attribution::is_kernel(vaddr) {
            return USER;
        }
        let i = self.by_address.partition_point(|(a, _)| *a <= vaddr);
        if i > 0 && vaddr < self.end {
            return &self.by_address[i - 1].1;
        }
        match runtime.partition_point(|r| r.address <= vaddr) {
            0 => OUTSIDE_IMAGE,
            j if vaddr - runtime[j - 1].address < RUNTIME_SPAN => &runtime[j - 1].name,
            _ => OUTSIDE_IMAGE,
        }
    }

    /// Whether a block starting at `vaddr` is a trap's entry ([`TRAP_ENTRIES`]).
    fn is_trap(&self, vaddr: u64) -> bool {
        self.traps.contains(&vaddr)
    }
}

/// Joins a boot's symbol records (parts in order) into the symbols' text.
pub fn unpack(parts: &[String]) -> Result<String> {
    use base64::Engine as _;
    use std::io::Read as _;
    let packed = base64::engine::general_purpose::STANDARD
        .decode(parts.concat())
        .context("decoding the kernel symbols (base64)")?;
    let mut text = String::new();
    flate2::read::DeflateDecoder::new(&packed[..])
        .read_to_string(&mut text)
        .context("inflating the kernel symbols")?;
    Ok(text)
}

/// The most rows a breakdown keeps before `[other]`.
const ROWS: usize = 40;

/// Where a cell's overhead goes, by symbol and family: the blocks of its armed loops less
/// those of its baseline loops, per call, with the traps per call. None without marked
/// loops in both phases.
pub fn breakdown(
    measured: &Measured,
    records: &BTreeMap<u64, LoopCounts>,
    symbols: &Symbols,
) -> Option<tracelab_model::attribution::Breakdown> {
    use tracelab_model::attribution::{Breakdown, SymbolCost};
    use tracelab_model::family::Family;
    use tracelab_model::schema::{Phase, Sample};
    // The same loops the cell's figure comes from: the pair (repeat) whose paired
    // overhead is the median, or the two middle pairs for an even count (as
    // `tracelab_model::summary` defines `per_call` and `baseline_per_call`), so the rows
    // add up to the published overhead even when the repeats are in two states.
    let mut pairs: BTreeMap<u32, [Option<&Sample>; 2]> = BTreeMap::new();
    for s in measured
        .samples
        .iter()
        .filter(|s| s.loop_serial.is_some() && s.calls > 0)
    {
        pairs.entry(s.repeat).or_default()[usize::from(s.phase == Phase::Mechanism)] = Some(s);
    }
    let mut pairs: Vec<[&Sample; 2]> = pairs
        .into_values()
        .filter_map(|[b, a]| Some([b?, a?]))
        .collect();
    let per_call = |p: &[&Sample; 2]| {
        p[1].elapsed as f64 / p[1].calls as f64 - p[0].elapsed as f64 / p[0].calls as f64
    };
    pairs.sort_by(|x, y| per_call(x).total_cmp(&per_call(y)));
    let middle = match pairs.len() {
        0 => return None,
        n if n % 2 == 1 => &pairs[n / 2..=n / 2],
        n => &pairs[n / 2 - 1..=n / 2],
    };
    let mut runtime = measured.runtime_symbols.clone();
    runtime.sort();
    let mut per: BTreeMap<&str, [f64; 2]> = BTreeMap::new();
    let mut traps = [0.0; 2];
    let mut calls = 0;
    for pair in middle {
        for (side, s) in pair.iter().enumerate() {
            let r = records.get(&s.loop_serial?)?;
            calls = s.calls;
            let weight = 1.0 / s.calls as f64 / middle.len() as f64;
            // Whole counts per symbol first, then one product each: how QEMU happened to
            // cut the code into blocks (a restored guest translates afresh) must not
            // reach the last digit of a figure through the order of float sums.
            let mut loop_counts: BTreeMap<&str, u64> = BTreeMap::new();
            let mut loop_traps = 0u64;
            for b in &r.blocks {
                let name = if symbols.is_empty() && tracelab_model::attribution::is_kernel(b.vaddr)
                {
                    "[kernel]"
                } else {
                    symbols.name(b.vaddr, &runtime)
                };
                *loop_counts.entry(name).or_default() += b.total();
                if symbols.is_trap(b.vaddr) {
                    loop_traps += b.execs;
                }
            }
            for (name, count) in loop_counts {
                per.entry(name).or_default()[side] += count as f64 * weight;
            }
            traps[side] += loop_traps as f64 * weight;
        }
    }
    let mut rows: Vec<SymbolCost> = per
        .into_iter()
        .filter(|(_, [b, a])| *b != 0.0 || *a != 0.0)
        .map(|(symbol, [baseline_insn, armed_insn])| SymbolCost {
            symbol: symbol.to_string(),
            family: Family::of(symbol),
            baseline_insn,
            armed_insn,
            overhead_insn: armed_insn - baseline_insn,
        })
        .collect();
    let by_overhead = |a: f64, b: f64| b.abs().total_cmp(&a.abs());
    rows.sort_by(|a, b| {
        by_overhead(a.overhead_insn, b.overhead_insn).then_with(|| a.symbol.cmp(&b.symbol))
    });
    if rows.len() > ROWS {
        // What is left is summed per family, so that the rows still add up to each
        // family's total (a notebook grouping `attribution.parquet` by family is exact).
        let mut rest: BTreeMap<Family, (usize, [f64; 3])> = BTreeMap::new();
        for r in rows.split_off(ROWS) {
            let e = rest.entry(r.family).or_default();
            e.0 += 1;
            e.1[0] += r.baseline_insn;
            e.1[1] += r.armed_insn;
            e.1[2] += r.overhead_insn;
        }
        rows.extend(rest.into_iter().map(|(family, (n, [b, a, o]))| SymbolCost {
            symbol: format!("{OTHER} {}: {n} symbols", family.label()),
            family,
            baseline_insn: b,
            armed_insn: a,
            overhead_insn: o,
        }));
    }
    let families = tracelab_model::attribution::families(&rows);
    Some(Breakdown {
        symbols: if symbols.is_empty() {
            "none received: kernel blocks are counted as [kernel]".into()
        } else if runtime.is_empty() {
            "kallsyms of the guest kernel (nokaslr)".into()
        } else {
            "kallsyms of the guest kernel (nokaslr), and its run-time code as kallsyms named it while armed".into()
        },
        calls,
        pairs: middle.len(),
        rows,
        families,
        traps_per_call: (!symbols.traps.is_empty()).then(|| traps[1] - traps[0]),
    })
}

/// A cell's breakdown as a table: symbol, insn per call in baseline and armed loops, the
/// overhead and its share; a heading says what was measured and how blocks were named.
pub fn render_breakdown(
    label: &str,
    b: &tracelab_model::attribution::Breakdown,
    format: crate::render::Format,
) -> Result<String> {
    use crate::render::{fixed, table::Table, Format};
    if format == Format::Json {
        return Ok(serde_json::to_string_pretty(b)? + "\n");
    }
    let total = b.total();
    // One shape for both tables: a name, its insn per call in each loop, the overhead
    // and its share of the cell's.
    let table = |first: &str| {
        Table::new(
            [
                first,
                "baseline (insn/call)",
                "armed (insn/call)",
                "overhead (insn/call)",
                "share",
            ]
            .map(String::from)
            .to_vec(),
            vec![false, true, true, true, true],
        )
    };
    let mut t = table("symbol");
    let share = |overhead: f64| {
        if total.abs() > 0.0 {
            format!("{:.1}%", overhead / total * 100.0)
        } else {
            "-".into()
        }
    };
    for r in &b.rows {
        t.push(vec![
            r.symbol.clone(),
            fixed(r.baseline_insn, 2),
            fixed(r.armed_insn, 2),
            fixed(r.overhead_insn, 2),
            share(r.overhead_insn),
        ]);
    }
    let head = format!(
        "{label}: overhead {} insn per call by symbol (the TCG plugin's instruction counts: the armed loop less the baseline loop of the median pair{}, {} calls each); blocks named by {}\n\n",
        fixed(total, 2),
        if b.pairs > 1 { "s, averaged" } else { "" },
        b.calls,
        b.symbols
    );
    let mut f = table("family");
    for r in &b.families {
        f.push(vec![
            r.family.label().to_string(),
            fixed(r.baseline_insn, 2),
            fixed(r.armed_insn, 2),
            fixed(r.overhead_insn, 2),
            share(r.overhead_insn),
        ]);
    }
    let traps = match b.traps_per_call {
        Some(t) => format!(
            "traps per call (exceptions entered, armed less baseline): {}; on real hardware a trap costs far more time than its instructions say\n",
            fixed(t, 2)
        ),
        None => "traps per call: not counted (no kernel symbols)\n".into(),
    };
    Ok(match format {
        Format::Markdown => {
            let mut out = head + &t.markdown();
            if !b.families.is_empty() {
                out += &format!("\nBy family:\n\n{}", f.markdown());
            }
            out + "\n" + &traps
        }
        Format::Csv => t.csv(),
        _ => {
            let mut out = head + &t.text(true);
            if !b.families.is_empty() {
                out += &format!("\nBy family:\n{}", f.text(true));
            }
            out + "\n" + &traps
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracelab_model::schema::{Phase, Sample, Status, Unit};

    fn measured(elapsed: &[(u64, u64)]) -> Measured {
        let mut m =
            Measured::without_samples("kprobe", "getppid", Unit::Insn, Status::Ok, String::new());
        m.samples = elapsed
            .iter()
            .map(|&(serial, e)| {
                let mut s = Sample::timed(0, Phase::Mechanism, 1000, e, Some(1000));
                s.loop_serial = Some(serial);
                s
            })
            .collect();
        m
    }

    fn record(serial: u64, kernel: u64, user: u64) -> (u64, LoopCounts) {
        (
            serial,
            LoopCounts {
                serial,
                kernel_insns: kernel,
                user_insns: user,
                memory: Some(tracelab_model::attribution::MemoryAccesses {
                    kernel_loads: kernel / 3,
                    user_loads: user / 3,
                    kernel_stores: kernel / 5,
                    user_stores: user / 5,
                }),
                blocks: Vec::new(),
            },
        )
    }

    #[test]
    fn blocks_are_named_by_the_symbol_they_start_in_and_the_rows_add_up() {
        let symbols = Symbols::parse(
            "ffffffff81000000 _stext\nffffffff81000100 do_syscall_64\nffffffff81000200 kprobe_ftrace_handler\nffffffff81000280 asm_exc_int3\nffffffff81000300 _etext\n",
        );
        let runtime = [RuntimeSymbol {
            address: 0xffff_ffff_a000_1000,
            name: "bpf_prog_tracelab_fentry [bpf]".into(),
        }];
        assert_eq!(symbols.name(0xffff_ffff_8100_0150, &[]), "do_syscall_64");
        assert_eq!(symbols.name(0xffff_ffff_a000_0000, &runtime), OUTSIDE_IMAGE);
        assert_eq!(
            symbols.name(0xffff_ffff_a000_1040, &runtime),
            "bpf_prog_tracelab_fentry [bpf]"
        );
        // Beyond a page past the last run-time symbol, nothing names it.
        assert_eq!(symbols.name(0xffff_ffff_a000_3000, &runtime), OUTSIDE_IMAGE);
        assert_eq!(symbols.name(0x5555_0000, &[]), USER);
        let block = |vaddr: u64, insns: u32, execs: u64| tracelab_model::attribution::BlockCount {
            vaddr,
            insns,
            execs,
        };
        let records: BTreeMap<_, _> = [
            (
                1,
                LoopCounts {
                    serial: 1,
                    kernel_insns: 0,
                    user_insns: 0,
                    memory: None,
                    blocks: vec![
                        block(0xffff_ffff_8100_0100, 10, 100),
                        block(0x5555_0000, 3, 100),
                    ],
                },
            ),
            (
                2,
                LoopCounts {
                    serial: 2,
                    kernel_insns: 0,
                    user_insns: 0,
                    memory: None,
                    blocks: vec![
                        block(0xffff_ffff_8100_0100, 10, 100),
                        block(0xffff_ffff_8100_0200, 7, 100),
                        block(0xffff_ffff_8100_0280, 4, 100),
                        block(0xffff_ffff_a000_0000, 5, 100),
                        block(0xffff_ffff_a000_1000, 6, 100),
                        block(0x5555_0000, 3, 100),
                    ],
                },
            ),
        ]
        .into();
        let mut m = measured(&[(1, 1300), (2, 3500)]);
        m.runtime_symbols = runtime.to_vec();
        m.samples[0].phase = Phase::Baseline;
        m.samples.iter_mut().for_each(|s| s.calls = 100);
        let b = breakdown(&m, &records, &symbols).expect("both phases");
        let row = |name: &str| {
            b.rows
                .iter()
                .find(|r| r.symbol == name)
                .map(|r| r.overhead_insn)
        };
        assert_eq!(row("kprobe_ftrace_handler"), Some(7.0));
        assert_eq!(row(OUTSIDE_IMAGE), Some(5.0));
        assert_eq!(row("bpf_prog_tracelab_fentry [bpf]"), Some(6.0));
        assert_eq!(row("do_syscall_64"), Some(0.0));
        assert_eq!(b.total(), 22.0);
        assert_eq!(b.rows[0].symbol, "kprobe_ftrace_handler");
        // The families hold the same instructions, and the int3 entry is one trap a call.
        let family = |f: tracelab_model::family::Family| {
            b.families
                .iter()
                .find(|c| c.family == f)
                .map(|c| c.overhead_insn)
        };
        use tracelab_model::family::Family;
        assert_eq!(family(Family::Kprobes), Some(7.0));
        assert_eq!(family(Family::Exceptions), Some(4.0));
        assert_eq!(family(Family::BpfProgram), Some(6.0));
        assert_eq!(family(Family::RuntimeCode), Some(5.0));
        assert_eq!(family(Family::SyscallEntryExit), Some(0.0));
        assert_eq!(
            b.families.iter().map(|f| f.overhead_insn).sum::<f64>(),
            b.total()
        );
        assert_eq!(b.traps_per_call, Some(1.0));
        let packed = {
            use base64::Engine as _;
            use std::io::Write as _;
            let mut z =
                flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
            z.write_all(b"ffffffff81000000 _stext\n").expect("deflate");
            base64::engine::general_purpose::STANDARD.encode(z.finish().expect("finish"))
        };
        let (a, c) = packed.split_at(4);
        assert_eq!(
            unpack(&[a.into(), c.into()]).expect("unpack"),
            "ffffffff81000000 _stext\n"
        );
    }

    /// The reader takes complete records only, and only what came after the last one.
    #[test]
    fn the_reader_takes_what_was_appended_and_waits_for_a_cut_record() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("boot-1.txt");
        let (one, two) = (record(1, 5, 6).1.record(), record(2, 7, 8).1.record());
        let mut reader = Reader::new(path.clone());
        assert!(reader.update().expect("no file yet").is_empty());
        std::fs::write(&path, format!("{one}{}", &two[..4])).expect("write");
        assert_eq!(
            reader.update().expect("one").keys().collect::<Vec<_>>(),
            [&1]
        );
        std::fs::write(&path, format!("{one}{two}")).expect("write");
        assert_eq!(
            reader.update().expect("two").keys().collect::<Vec<_>>(),
            [&1, &2]
        );
        let mut m = measured(&[(1, 1000)]);
        m.samples[0].loop_serial = Some(1);
        reader.forget(&m);
        assert_eq!(
            reader.update().expect("again").keys().collect::<Vec<_>>(),
            [&2]
        );
    }

    #[test]
    fn counts_join_their_loops_and_the_clock_checks_them() {
        let records: BTreeMap<_, _> = [record(1, 900, 130), record(2, 1900, 230)].into();
        let mut m = measured(&[(1, 1000), (2, 2100)]);
        attach(&mut m, &records).expect("one constant");
        let c = &m.samples[1].counters;
        assert_eq!(
            (c[KERNEL_INSN], c[USER_INSN], c[OUTSIDE_CLOCK]),
            (1900, 230, 30)
        );
        assert_eq!(
            (
                c[KERNEL_LOADS],
                c[USER_LOADS],
                c[KERNEL_STORES],
                c[USER_STORES]
            ),
            (633, 76, 380, 46)
        );
        // The clock's few instructions of jitter pass; a loop that strays further fails
        // the cell with both numbers.
        let mut m = measured(&[(1, 1000), (2, 2095)]);
        attach(&mut m, &records).expect("within the clock's jitter");
        let mut m = measured(&[(1, 1000), (2, 2000)]);
        let err = attach(&mut m, &records).unwrap_err();
        assert!(
            err.contains("+30 insn in 1 loops") && err.contains("+130 insn"),
            "{err}"
        );
        // A loop the plugin never saw.
        let mut m = measured(&[(3, 1000)]);
        assert!(attach(&mut m, &records)
            .unwrap_err()
            .contains("no record of marked loop 3"));
    }
}
