//! tracelab's QEMU TCG plugin: between the agent's start and end markers
//! (`tracelab_model::attribution`), how many times each translation block executed, so
//! the host can say how many instructions a timed loop ran in the kernel and in user
//! space, and in which blocks (later mapped to symbols).
//!
//! Counting is inline, as QEMU's `contrib/plugins/hotblocks.c` does it: each distinct block
//! (address, length) gets a per-vCPU scoreboard entry that the translated code itself
//! increments on every execution, with no call into the plugin; every instruction adds
//! its memory accesses, inline too, to one of four counters (loads and stores, kernel and
//! user). The plugin runs code only
//! when a block is translated and when a marker instruction executes: at a start marker it
//! notes every block's count, at an end marker it writes the blocks whose count moved, as
//! one record (format in `tracelab_model::attribution`), and flushes it.
//!
//! Arguments: `out=<file>` (required), where the records go.
//!
//! Memory is one scoreboard per distinct block, bounded by the code the guest runs.

use qemu_plugin::plugin::{HasCallbacks, Register};
use qemu_plugin::sys::qemu_plugin_mem_rw;
use qemu_plugin::sys::{qemu_plugin_scoreboard, qemu_plugin_scoreboard_new};
use qemu_plugin::{qemu_plugin_register_vcpu_mem_inline_per_vcpu, Instruction};
use qemu_plugin::{
    qemu_plugin_register_vcpu_tb_exec_inline_per_vcpu, qemu_plugin_scoreboard_sum, Args, Info,
    PluginId, PluginOp, PluginU64, TranslationBlock, VCPUIndex,
};
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::sync::{Arc, Mutex};
use tracelab_model::attribution::{self, BlockCount, LoopCounts, Marker, MemoryAccesses};

/// One distinct translation block and its execution counter.
struct Block {
    vaddr: u64,
    insns: u32,
    count: Counter,
    /// The count at the last start marker.
    at_start: u64,
}

/// A scoreboard of one u64 per vCPU.
struct Counter(PluginU64);

// SAFETY: the scoreboard is QEMU's allocation, alive until the plugin is unloaded; the
// plugin only reads its sum (through QEMU's API) under the state's lock, and QEMU's
// translated code adds to it.
unsafe impl Send for Counter {}

impl Counter {
    fn new() -> Counter {
        // SAFETY: asks QEMU for a scoreboard of 8-byte entries, one per vCPU; it never
        // returns null (it aborts on allocation failure).
        let score: *mut qemu_plugin_scoreboard = unsafe { qemu_plugin_scoreboard_new(8) };
        Counter(PluginU64 { score, offset: 0 })
    }

    fn sum(&self) -> u64 {
        qemu_plugin_scoreboard_sum(self.0)
    }
}

/// The four memory-access counters, and their sums at the last start marker.
struct Memory {
    /// Kernel loads, user loads, kernel stores, user stores.
    counters: [Counter; 4],
    at_start: [u64; 4],
}

impl Memory {
    fn sums(&self) -> [u64; 4] {
        [0, 1, 2, 3].map(|i| self.counters[i].sum())
    }
}

#[derive(Default)]
struct State {
    /// Every block seen, by (address, instructions).
    blocks: HashMap<(u64, u32), Block>,
    /// Made at the first translation (QEMU allocates scoreboards only once running).
    memory: Option<Memory>,
    /// Start markers executed so far (the serial of the open loop).
    serial: u64,
    /// Whether a start marker is waiting for its end.
    open: bool,
    out: Option<BufWriter<File>>,
    /// The first write error; later records are not written.
    failed: bool,
}

impl State {
    fn start(&mut self) {
        self.serial += 1;
        self.open = true;
        for b in self.blocks.values_mut() {
            b.at_start = b.count.sum();
        }
        if let Some(m) = &mut self.memory {
            m.at_start = m.sums();
        }
    }

    fn end(&mut self) {
        if !std::mem::take(&mut self.open) {
            return;
        }
        let memory = self.memory.as_ref().map(|m| {
            let now = m.sums();
            let d = |i: usize| now[i].saturating_sub(m.at_start[i]);
            MemoryAccesses {
                kernel_loads: d(0),
                user_loads: d(1),
                kernel_stores: d(2),
                user_stores: d(3),
            }
        });
        let mut record = LoopCounts {
            serial: self.serial,
            kernel_insns: 0,
            user_insns: 0,
            memory,
            blocks: Vec::new(),
        };
        for b in self.blocks.values() {
            let execs = b.count.sum().saturating_sub(b.at_start);
            if execs == 0 {
                continue;
            }
            let block = BlockCount {
                vaddr: b.vaddr,
                insns: b.insns,
                execs,
            };
            if attribution::is_kernel(b.vaddr) {
                record.kernel_insns += block.total();
            } else {
                record.user_insns += block.total();
            }
            record.blocks.push(block);
        }
        record.blocks.sort_by_key(|b| (b.vaddr, b.insns));
        if let (Some(out), false) = (self.out.as_mut(), self.failed) {
            let written = out
                .write_all(record.record().as_bytes())
                .and_then(|()| out.flush());
            if let Err(e) = written {
                self.failed = true;
                eprintln!("tracelab-plugin: writing a loop record: {e}");
            }
        }
    }
}

#[derive(Default)]
struct Plugin {
    state: Arc<Mutex<State>>,
}

impl Register for Plugin {
    fn register(&mut self, _: PluginId, args: &Args, _: &Info) -> qemu_plugin::Result<()> {
        let path = args
            .raw
            .iter()
            .find_map(|a| a.strip_prefix("out="))
            .ok_or_else(|| qemu_plugin::Error::MissingArgValue {
                argument: "out=<file> (where tracelab-plugin writes its records)".into(),
            })?;
        let file = File::create(path).inspect_err(|e| {
            eprintln!("tracelab-plugin: creating {path}: {e}");
        })?;
        if let Ok(mut s) = self.state.lock() {
            s.out = Some(BufWriter::new(file));
        }
        Ok(())
    }
}

impl HasCallbacks for Plugin {
    fn on_translation_block_translate(
        &mut self,
        _: PluginId,
        tb: TranslationBlock,
    ) -> qemu_plugin::Result<()> {
        let vaddr = tb.vaddr();
        let insns = u32::try_from(tb.size()).unwrap_or(u32::MAX);
        let Ok(mut state) = self.state.lock() else {
            return Ok(());
        };
        let block = state.blocks.entry((vaddr, insns)).or_insert_with(|| Block {
            vaddr,
            insns,
            count: Counter::new(),
            at_start: 0,
        });
        qemu_plugin_register_vcpu_tb_exec_inline_per_vcpu(
            tb.clone(),
            PluginOp::QEMU_PLUGIN_INLINE_ADD_U64,
            block.count.0,
            1,
        );
        let memory = state.memory.get_or_insert_with(|| Memory {
            counters: [(); 4].map(|()| Counter::new()),
            at_start: [0; 4],
        });
        let (loads, stores) = if attribution::is_kernel(vaddr) {
            (memory.counters[0].0, memory.counters[2].0)
        } else {
            (memory.counters[1].0, memory.counters[3].0)
        };
        drop(state);
        // Every access of every instruction, inline: one pass per kind (an instruction
        // handle is consumed by the registration).
        for (rw, counter) in [
            (qemu_plugin_mem_rw::QEMU_PLUGIN_MEM_R, loads),
            (qemu_plugin_mem_rw::QEMU_PLUGIN_MEM_W, stores),
        ] {
            for insn in tb.instructions() {
                count_accesses(insn, rw, counter);
            }
        }
        for insn in tb.instructions() {
            let Some(m) = attribution::marker(&insn.data()) else {
                continue;
            };
            let state = Arc::clone(&self.state);
            insn.register_execute_callback(move |_: VCPUIndex| {
                if let Ok(mut s) = state.lock() {
                    match m {
                        Marker::Start => s.start(),
                        Marker::End => s.end(),
                    }
                }
            });
        }
        Ok(())
    }
}

/// Adds one to `counter` on every access of kind `rw` the instruction makes.
fn count_accesses(insn: Instruction<'_>, rw: qemu_plugin_mem_rw, counter: PluginU64) {
    qemu_plugin_register_vcpu_mem_inline_per_vcpu(
        insn,
        rw,
        PluginOp::QEMU_PLUGIN_INLINE_ADD_U64,
        counter,
        1,
    );
}

qemu_plugin::register!(Plugin::default());
