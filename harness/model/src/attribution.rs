//! Emulated counters from the QEMU TCG plugin (`harness/plugin`), defined once for the
//! three sides that meet here: the agent executes a marker instruction before and after
//! every timed loop, the plugin recognises those instructions when it translates them and
//! writes one record per loop, and the host reads the records back.
//!
//! The markers are instructions no compiler emits and that do nothing: on x86_64 a
//! `nopl 0x7ace000N(%rax)` (a long NOP whose displacement carries the marker), on arm64 a
//! `movz xzr, #0x7acN` (a write to the zero register). Each is alone in a function of its
//! own, so it ends up in a translation block of its own.
//!
//! A record is text, one per loop, written and flushed when the end marker executes:
//! ```text
//! L <serial> <kernel insns> <user insns> [<kernel loads> <user loads> <kernel stores> <user stores>]
//! B <block address, hex> <instructions in the block> <executions>
//! E
//! ```
//! Loads and stores are memory accesses (an instruction that touches memory twice counts
//! twice), split by where the instruction lies; records written before they were counted
//! end the `L` line after the user instructions.
//! `serial` counts start markers from 1 in one QEMU process (one boot of a guest), as the
//! agent counts the markers it executes, so a record joins the loop that made it. A record
//! cut short by a killed QEMU has no `E` and is not read.

use std::fmt::Write as _;

/// The start marker on x86_64: `nopl 0x7ace0001(%rax)`.
pub const START_X86_64: [u8; 7] = [0x0f, 0x1f, 0x80, 0x01, 0x00, 0xce, 0x7a];
/// The end marker on x86_64: `nopl 0x7ace0002(%rax)`.
pub const END_X86_64: [u8; 7] = [0x0f, 0x1f, 0x80, 0x02, 0x00, 0xce, 0x7a];
/// The start marker on arm64: `movz xzr, #0x7ac1` (0xd28f583f, little-endian).
pub const START_ARM64: [u8; 4] = [0x3f, 0x58, 0x8f, 0xd2];
/// The end marker on arm64: `movz xzr, #0x7ac2` (0xd28f585f).
pub const END_ARM64: [u8; 4] = [0x5f, 0x58, 0x8f, 0xd2];

/// Which marker an instruction is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    Start,
    End,
}

/// The marker an instruction's bytes are, on either arch (their encodings cannot be
/// confused: the lengths differ).
pub fn marker(insn: &[u8]) -> Option<Marker> {
    if insn == START_X86_64 || insn == START_ARM64 {
        Some(Marker::Start)
    } else if insn == END_X86_64 || insn == END_ARM64 {
        Some(Marker::End)
    } else {
        None
    }
}

/// Whether a guest virtual address is the kernel's (the upper half, on both arches).
pub fn is_kernel(vaddr: u64) -> bool {
    vaddr >> 63 == 1
}

/// One translation block's executions within a loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockCount {
    pub vaddr: u64,
    pub insns: u32,
    pub execs: u64,
}

impl BlockCount {
    /// The instructions the block executed in the loop.
    pub fn total(&self) -> u64 {
        u64::from(self.insns).saturating_mul(self.execs)
    }
}

/// What the plugin counted between one start marker and the next end marker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoopCounts {
    pub serial: u64,
    pub kernel_insns: u64,
    pub user_insns: u64,
    /// Memory accesses; None in records written before they were counted.
    pub memory: Option<MemoryAccesses>,
    /// Every block that executed, by address.
    pub blocks: Vec<BlockCount>,
}

/// Memory accesses of a loop, by kind and by where the accessing instruction lies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MemoryAccesses {
    pub kernel_loads: u64,
    pub user_loads: u64,
    pub kernel_stores: u64,
    pub user_stores: u64,
}

impl LoopCounts {
    pub fn insns(&self) -> u64 {
        self.kernel_insns.saturating_add(self.user_insns)
    }

    /// The record's text (see the module header).
    pub fn record(&self) -> String {
        let mut s = format!(
            "L {} {} {}",
            self.serial, self.kernel_insns, self.user_insns
        );
        if let Some(m) = self.memory {
            let _ = write!(
                s,
                " {} {} {} {}",
                m.kernel_loads, m.user_loads, m.kernel_stores, m.user_stores
            );
        }
        s.push('\n');
        for b in &self.blocks {
            let _ = writeln!(s, "B {:x} {} {}", b.vaddr, b.insns, b.execs);
        }
        s.push_str("E\n");
        s
    }
}

/// Where a cell's overhead goes, per traced call, by the symbol each executed block
/// starts in (`--attribution`): the armed loop less the baseline loop of the pair whose
/// paired overhead is the cell's median (the two middle pairs, averaged, for an even
/// count), so the rows add up to the cell's overhead. Instructions (the plugin's count),
/// never time.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Breakdown {
    /// How the blocks were named: `kallsyms` (the guest kernel's own symbols), or why not.
    pub symbols: String,
    /// Calls per loop, and the pairs (a baseline and an armed loop each) the rows come
    /// from: the median pair, or the two middle pairs.
    pub calls: u64,
    pub pairs: usize,
    /// The symbols, largest overhead first; what is left is summed into one
    /// `[other] <family>: N symbols` row per family, so the rows add up to the whole
    /// overhead and to each family's.
    pub rows: Vec<SymbolCost>,
    /// The same instructions by family, largest overhead first; absent from breakdowns
    /// made before families existed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub families: Vec<FamilyCost>,
    /// Exceptions entered per call, armed less baseline: int3 and #DB on x86_64, every
    /// synchronous exception on arm64 (BRK, single step; the syscall's own SVC cancels
    /// out). None when the kernel's symbols did not arrive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traps_per_call: Option<f64>,
}

/// One symbol's instructions per call.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SymbolCost {
    pub symbol: String,
    /// The symbol's family (`other-kernel` in breakdowns made before families existed).
    #[serde(default)]
    pub family: crate::family::Family,
    pub baseline_insn: f64,
    pub armed_insn: f64,
    pub overhead_insn: f64,
}

/// One family's instructions per call.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FamilyCost {
    pub family: crate::family::Family,
    pub baseline_insn: f64,
    pub armed_insn: f64,
    pub overhead_insn: f64,
}

impl Breakdown {
    /// The overhead per call the rows add up to.
    pub fn total(&self) -> f64 {
        self.rows.iter().map(|r| r.overhead_insn).sum()
    }
}

/// The rows summed by family, largest overhead first (rows hold every symbol or one
/// `[other]` row per family, so the sums are exact).
pub fn families(rows: &[SymbolCost]) -> Vec<FamilyCost> {
    let mut sums: std::collections::BTreeMap<crate::family::Family, [f64; 2]> =
        std::collections::BTreeMap::new();
    for r in rows {
        let s = sums.entry(r.family).or_default();
        s[0] += r.baseline_insn;
        s[1] += r.armed_insn;
    }
    let mut out: Vec<FamilyCost> = sums
        .into_iter()
        .map(|(family, [baseline_insn, armed_insn])| FamilyCost {
            family,
            baseline_insn,
            armed_insn,
            overhead_insn: armed_insn - baseline_insn,
        })
        .collect();
    out.sort_by(|x, y| {
        y.overhead_insn
            .abs()
            .total_cmp(&x.overhead_insn.abs())
            .then_with(|| x.family.cmp(&y.family))
    });
    out
}

/// Kernel code made at run time, as `/proc/kallsyms` lists it with a module in
/// brackets (`[bpf]`, `[__builtin__kprobes]`, `[__builtin__ftrace]`): where it starts,
/// and its name with the module. Names that carry a per-kernel or per-build number are
/// reduced to what stays the same across kernels, so that `compare` of two kernels
/// matches them: `bpf_trampoline_6442491932` → `bpf_trampoline`, and
/// `bpf_prog_6deef7357e7b4530_tracelab_fentry` → `bpf_prog_tracelab_fentry`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct RuntimeSymbol {
    pub address: u64,
    pub name: String,
}

impl RuntimeSymbol {
    /// One `/proc/kallsyms` line, if it is a text symbol with a module.
    pub fn from_kallsyms(line: &str) -> Option<RuntimeSymbol> {
        let mut w = line.split_whitespace();
        let (addr, kind, name, module) = (w.next()?, w.next()?, w.next()?, w.next()?);
        if !matches!(kind, "t" | "T") || !module.starts_with('[') {
            return None;
        }
        let address = u64::from_str_radix(addr, 16).ok().filter(|a| *a != 0)?;
        Some(RuntimeSymbol {
            address,
            name: format!("{} {module}", stable_name(name)),
        })
    }
}

/// A run-time symbol's name without the numbers that differ between kernels or builds.
fn stable_name(name: &str) -> String {
    let is_hex = |s: &str| s.len() == 16 && s.bytes().all(|b| b.is_ascii_hexdigit());
    if let Some(rest) = name.strip_prefix("bpf_prog_") {
        // bpf_prog_<16-hex tag>_<name>; the name may be empty.
        let (tag, prog) = rest.split_once('_').unwrap_or((rest, ""));
        if is_hex(tag) {
            return format!("bpf_prog_{prog}");
        }
    }
    if let Some(key) = name.strip_prefix("bpf_trampoline_") {
        if key.bytes().all(|b| b.is_ascii_digit()) {
            return "bpf_trampoline".into();
        }
    }
    name.to_string()
}

/// A line the reader could not take.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("plugin record line {line}: {what}")]
pub struct ParseError {
    pub line: usize,
    pub what: String,
}

/// Reads every complete record of a plugin's output, in order; a record cut short at the
/// end (no `E`) is left out.
pub fn parse(text: &str) -> Result<Vec<LoopCounts>, ParseError> {
    let mut out = Vec::new();
    let mut open: Option<LoopCounts> = None;
    // A line without its newline was being written when QEMU stopped.
    let whole = match text.rfind('\n') {
        Some(end) => &text[..=end],
        None => "",
    };
    for (i, line) in whole.lines().enumerate() {
        let bad = |what: &str| ParseError {
            line: i + 1,
            what: format!("{what}: `{}`", line.chars().take(80).collect::<String>()),
        };
        let mut words = line.split(' ');
        let mut number = |radix: u32| -> Result<u64, ParseError> {
            words
                .next()
                .and_then(|w| u64::from_str_radix(w, radix).ok())
                .ok_or_else(|| bad("a number is missing or malformed"))
        };
        match line.as_bytes().first() {
            Some(b'L') => {
                let _ = number(10);
                if open.is_some() {
                    return Err(bad("a record starts inside another"));
                }
                let (serial, kernel_insns, user_insns) = (number(10)?, number(10)?, number(10)?);
                let rest: Vec<&str> = words.by_ref().collect();
                let memory = match rest[..] {
                    [] => None,
                    [kl, ul, ks, us] => {
                        let n = |w: &str| {
                            w.parse::<u64>()
                                .map_err(|_| bad("a memory count is malformed"))
                        };
                        Some(MemoryAccesses {
                            kernel_loads: n(kl)?,
                            user_loads: n(ul)?,
                            kernel_stores: n(ks)?,
                            user_stores: n(us)?,
                        })
                    }
                    _ => return Err(bad("a loop line has 3 or 7 numbers")),
                };
                open = Some(LoopCounts {
                    serial,
                    kernel_insns,
                    user_insns,
                    memory,
                    blocks: Vec::new(),
                });
            }
            Some(b'B') => {
                let _ = number(16);
                let b = BlockCount {
                    vaddr: number(16)?,
                    insns: u32::try_from(number(10)?).map_err(|_| bad("too many instructions"))?,
                    execs: number(10)?,
                };
                open.as_mut()
                    .ok_or_else(|| bad("a block outside a record"))?
                    .blocks
                    .push(b);
            }
            Some(b'E') if line == "E" => {
                out.push(open.take().ok_or_else(|| bad("an end outside a record"))?);
            }
            _ => return Err(bad("not a plugin record line")),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn markers_are_told_apart_and_nothing_else_is_one() {
        assert_eq!(marker(&START_X86_64), Some(Marker::Start));
        assert_eq!(marker(&END_ARM64), Some(Marker::End));
        // A plain long NOP and arm64's NOP are not markers.
        assert_eq!(marker(&[0x0f, 0x1f, 0x80, 0, 0, 0, 0]), None);
        assert_eq!(marker(&[0x1f, 0x20, 0x03, 0xd5]), None);
        // movz xzr, #0x7ac1 and #0x7ac2, as the arm64 encoding gives them.
        let movz = |imm: u32| (0xd280_0000u32 | (imm << 5) | 31).to_le_bytes();
        assert_eq!(movz(0x7ac1), START_ARM64);
        assert_eq!(movz(0x7ac2), END_ARM64);
        assert!(is_kernel(0xffff_ffff_8100_0000) && !is_kernel(0x5555_5555_0000));
    }

    #[test]
    fn a_cut_record_is_left_out_and_garbage_is_refused() {
        let one = LoopCounts {
            serial: 1,
            kernel_insns: 300,
            user_insns: 27,
            memory: None,
            blocks: vec![BlockCount {
                vaddr: 0xffff_ffff_8100_0000,
                insns: 3,
                execs: 100,
            }],
        };
        let text = format!("{}L 2 5 5\nB 10 1", one.record());
        assert_eq!(parse(&text), Ok(vec![one.clone()]));
        assert_eq!(one.blocks[0].total(), 300);
        assert!(parse("L 1 2\nE\n").is_err());
        assert!(parse("L 1 2 3 4\nE\n").is_err());
        // With memory accesses.
        let two = LoopCounts {
            serial: 2,
            memory: Some(MemoryAccesses {
                kernel_loads: 10,
                user_loads: 2,
                kernel_stores: 7,
                user_stores: 1,
            }),
            ..one.clone()
        };
        assert_eq!(two.record().lines().next(), Some("L 2 300 27 10 2 7 1"));
        assert_eq!(parse(&two.record()), Ok(vec![two]));
        assert!(parse("B 10 1 1\n").is_err());
        assert!(parse("hello\n").unwrap_err().to_string().contains("line 1"));
    }

    #[test]
    fn run_time_symbols_keep_their_module_and_lose_their_numbers() {
        let read = |l: &str| RuntimeSymbol::from_kallsyms(l).map(|s| s.name);
        assert_eq!(
            read("ffffffffa0001000 t bpf_prog_6deef7357e7b4530_tracelab_fentry\t[bpf]"),
            Some("bpf_prog_tracelab_fentry [bpf]".into())
        );
        assert_eq!(
            read("ffffffffa0002000 t bpf_trampoline_6442491932\t[bpf]"),
            Some("bpf_trampoline [bpf]".into())
        );
        assert_eq!(
            read("ffffffffa0003000 t kprobe_insn_page\t[__builtin__kprobes]"),
            Some("kprobe_insn_page [__builtin__kprobes]".into())
        );
        // The image's own symbols, data and hidden addresses are not run-time code.
        assert_eq!(read("ffffffff81000000 T _stext"), None);
        assert_eq!(read("ffffffffa0004000 d some_map\t[bpf]"), None);
        assert_eq!(read("0000000000000000 t bpf_prog_x\t[bpf]"), None);
    }

    proptest! {
        #[test]
        fn records_round_trip(
            serial in 1u64..1_000_000,
            k in any::<u64>(),
            u in any::<u64>(),
            memory in proptest::option::of(any::<[u64; 4]>()),
            blocks in proptest::collection::vec((any::<u64>(), 1u32..512, any::<u64>()), 0..20),
        ) {
            let l = LoopCounts {
                serial,
                kernel_insns: k,
                user_insns: u,
                memory: memory.map(|[kernel_loads, user_loads, kernel_stores, user_stores]| {
                    MemoryAccesses { kernel_loads, user_loads, kernel_stores, user_stores }
                }),
                blocks: blocks
                    .into_iter()
                    .map(|(vaddr, insns, execs)| BlockCount { vaddr, insns, execs })
                    .collect(),
            };
            prop_assert_eq!(parse(&l.record()), Ok(vec![l]));
        }

        #[test]
        fn any_text_is_read_or_refused_without_a_panic(text in "\\PC{0,200}") {
            let _ = parse(&text);
        }
    }
}
