//! One loaded copy of the object: the chosen program, its maps, its ring buffer, and its
//! link while armed. Dropping it closes all of them.

use super::libbpf_log;
use super::BpfSpec;
use crate::resolve::TargetFunction;
use anyhow::{anyhow, bail, Context, Result};
use libbpf_rs::{
    AsRawLibbpf, Link, MapCore, MapFlags, Object, ObjectBuilder, ProgramType, RingBuffer,
    RingBufferBuilder,
};
use std::cell::Cell;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::rc::Rc;
use tracelab_model::schema::StackTraces;
use tracelab_probes::bpf::{self as probes, Attach, Event, Payload};
use tracelab_probes::Symbol;

/// Ring-buffer records seen by the drain callback.
#[derive(Default)]
struct Drained {
    events: Cell<u64>,
    foreign: Cell<u64>,
    malformed: Cell<u64>,
    /// Whose events are ours: the agent and the workload's helpers.
    tgids: Vec<u32>,
}

pub(super) struct Loaded {
    spec: BpfSpec,
    program: String,
    // Field order is drop order: the links go before the ring buffer and the object.
    /// One link; a kprobe program traced on several functions has one per function.
    links: Vec<Link>,
    /// The tracing_multi link, which libbpf 1.7 cannot create (closing it detaches).
    multi_link: Option<OwnedFd>,
    /// The BTF ids a tracing_multi link attaches to.
    multi_ids: Vec<u32>,
    ringbuf: Option<RingBuffer<'static>>,
    drained: Rc<Drained>,
    object: Object,
}

/// Errors that mean "this kernel cannot do it" rather than "we did something wrong":
/// ENOTSUPP (524, the kernel's internal "not supported", which BPF returns to user space)
/// and EOPNOTSUPP (95). libbpf-rs exposes the errno only in its message.
pub(super) fn is_unsupported(e: &anyhow::Error) -> bool {
    let text = format!("{e:#}");
    text.contains("(os error 524)") || text.contains("(os error 95)")
}

impl Loaded {
    /// Opens the object, keeps only the chosen program, points it at `target` (for
    /// BTF-attached types) and loads it. The verifier log tail is in the error.
    pub(super) fn load(
        spec: BpfSpec,
        target: &Symbol,
        ringbuf_bytes: u32,
        ours: &[u32],
    ) -> Result<Loaded> {
        let program = spec.program();
        let captured = libbpf_log::Capture::start();
        let result = Self::load_inner(spec, target, ringbuf_bytes, &program, ours);
        let log = captured.finish();
        result.map_err(|e| match log {
            Some(log) => e.context(format!("libbpf: {log}")),
            None => e,
        })
    }

    fn load_inner(
        spec: BpfSpec,
        target: &Symbol,
        ringbuf_bytes: u32,
        program: &str,
        ours: &[u32],
    ) -> Result<Loaded> {
        let mut open = ObjectBuilder::default()
            .open_memory(probes::OBJECT)
            .context("opening the BPF object")?;
        let mut found = false;
        for mut p in open.progs_mut() {
            let mine = p.name().to_str() == Some(program);
            found |= mine;
            p.set_autoload(mine);
            if !mine {
                continue;
            }
            if spec.attach == Attach::FentryMulti {
                // A tracing program of the multi attach type; changing the type drops the
                // section's handling, so libbpf looks for no attach target.
                p.set_prog_type(ProgramType::Tracing);
                // SAFETY: the pointer is the live, not yet loaded program `p` borrows.
                let rc = unsafe {
                    libbpf_rs::libbpf_sys::bpf_program__set_expected_attach_type(
                        p.as_libbpf_object().as_ptr(),
                        BPF_TRACE_FENTRY_MULTI,
                    )
                };
                if rc != 0 {
                    bail!("setting the attach type of {program}: error {rc}");
                }
            }
            if matches!(
                spec.attach,
                Attach::Fentry | Attach::Fexit | Attach::FmodRet
            ) {
                p.set_attach_target(0, Some(target.to_string()))
                    .with_context(|| format!("setting attach target {target}"))?;
            }
            // The unfiltered tp_btf program names its tracepoint at run time.
            if spec.attach == Attach::TpBtf && spec.filter() == probes::Filter::None {
                let tp = spec.tracepoint()?;
                p.set_attach_target(0, Some(tp.raw.to_string()))
                    .with_context(|| format!("setting attach target {}", tp.raw))?;
            }
        }
        if !found {
            bail!("the BPF object has no program {program}");
        }
        for mut m in open.maps_mut() {
            let name = m.name().to_str();
            if name == Some(probes::EVENTS_MAP) {
                m.set_max_entries(ringbuf_bytes)
                    .context("sizing the ring buffer")?;
            }
            // A stack map takes the kernel's callchain buffers: only its payload has one.
            let only_for = match name {
                Some(probes::STACK_BUF_MAP) => Some(Payload::Stacktrace),
                Some(probes::STACKS_MAP) => Some(Payload::Stackid),
                _ => None,
            };
            if let Some(p) = only_for {
                m.set_autocreate(p == spec.payload)
                    .context("choosing the maps to create")?;
            }
            if name == Some(probes::TARGET_MAP) {
                m.set_autocreate(spec.every.is_some())
                    .context("choosing the maps to create")?;
            }
        }
        let object = open.load().context("loading (verifier)")?;
        if let Some(range) = spec.every {
            let map = object
                .maps()
                .find(|m| m.name().to_str() == Some(probes::TARGET_MAP))
                .context("the object has no target map")?;
            let value = [range.start.to_ne_bytes(), range.end.to_ne_bytes()].concat();
            map.update(&0u32.to_ne_bytes(), &value, MapFlags::ANY)
                .context("writing the target's addresses")?;
        }
        let drained = Rc::new(Drained {
            tgids: ours.to_vec(),
            ..Drained::default()
        });
        let ringbuf = if spec.payload == Payload::Record {
            let map = object
                .maps()
                .find(|m| m.name().to_str() == Some(probes::EVENTS_MAP))
                .context("the object has no ring buffer map")?;
            let d = Rc::clone(&drained);
            let mut builder = RingBufferBuilder::new();
            builder.add(&map, move |bytes: &[u8]| {
                d.events.set(d.events.get() + 1);
                match Event::from_record(bytes) {
                    Some(e) if d.tgids.contains(&e.tgid) => {}
                    Some(_) => d.foreign.set(d.foreign.get() + 1),
                    None => d.malformed.set(d.malformed.get() + 1),
                }
                0
            })?;
            Some(
                builder
                    .build()
                    .context("setting up the ring buffer reader")?,
            )
        } else {
            None
        };
        Ok(Loaded {
            spec,
            program: program.to_string(),
            links: Vec::new(),
            multi_link: None,
            multi_ids: Vec::new(),
            ringbuf,
            drained,
            object,
        })
    }

    /// The program's fd (for the kernel's statistics).
    pub(super) fn prog_fd(&self) -> Result<i32> {
        self.object
            .progs()
            .find(|p| p.name().to_str() == Some(self.program.as_str()))
            .map(|p| p.as_fd().as_raw_fd())
            .ok_or_else(|| anyhow!("program {} is not loaded", self.program))
    }

    /// Attaches the program to `target`, and for kprobe types to `others` too: one link
    /// per function for kprobe, one link over all of them for kprobe_multi. (A trampoline
    /// program attaches to the function it was loaded for.)
    pub(super) fn attach(&mut self, target: &TargetFunction, others: &[Symbol]) -> Result<()> {
        if !self.links.is_empty() || self.multi_link.is_some() {
            return Ok(());
        }
        if self.spec.attach == Attach::FentryMulti {
            let fd = link_create_multi(self.prog_fd()?, &self.multi_ids).with_context(|| {
                format!(
                    "attaching {} to {} functions (tracing_multi link)",
                    self.program,
                    self.multi_ids.len()
                )
            })?;
            self.multi_link = Some(fd);
            return Ok(());
        }
        let captured = libbpf_log::Capture::start();
        let links = self.attach_inner(target, others);
        let log = captured.finish();
        self.links = links.map_err(|e| match log {
            Some(log) => e.context(format!("libbpf: {log}")),
            None => e,
        })?;
        Ok(())
    }

    fn attach_inner(&self, target: &TargetFunction, others: &[Symbol]) -> Result<Vec<Link>> {
        let prog = self
            .object
            .progs_mut()
            .find(|p| p.name().to_str() == Some(self.program.as_str()))
            .ok_or_else(|| anyhow!("program {} is not loaded", self.program))?;
        let names = || {
            std::iter::once(target.symbol.as_str())
                .chain(others.iter().map(|s| s.as_str()))
                .collect::<Vec<_>>()
        };
        match self.spec.attach {
            Attach::Kprobe | Attach::Kretprobe if !others.is_empty() => {
                let ret = self.spec.attach == Attach::Kretprobe;
                return names()
                    .into_iter()
                    .map(|f| {
                        prog.attach_kprobe(ret, f)
                            .with_context(|| format!("attaching {} to {f}", self.program))
                    })
                    .collect();
            }
            Attach::KprobeMulti | Attach::KretprobeMulti if !others.is_empty() => {
                let ret = self.spec.attach == Attach::KretprobeMulti;
                return Ok(vec![prog.attach_kprobe_multi(ret, names()).with_context(
                    || {
                        format!(
                            "attaching {} to {} functions",
                            self.program,
                            others.len() + 1
                        )
                    },
                )?]);
            }
            _ => {}
        }
        self.attach_one(target).map(|l| vec![l])
    }

    fn attach_one(&self, target: &TargetFunction) -> Result<Link> {
        let prog = self
            .object
            .progs_mut()
            .find(|p| p.name().to_str() == Some(self.program.as_str()))
            .ok_or_else(|| anyhow!("program {} is not loaded", self.program))?;
        let sym = target.symbol.as_str();
        let link = match self.spec.attach {
            Attach::Kprobe => prog.attach_kprobe(false, sym),
            Attach::Kretprobe => prog.attach_kprobe(true, sym),
            Attach::KprobeMulti => prog.attach_kprobe_multi(false, vec![sym]),
            Attach::KretprobeMulti => prog.attach_kprobe_multi(true, vec![sym]),
            Attach::Fentry | Attach::Fexit | Attach::FmodRet => prog.attach_trace(),
            Attach::FentryMulti => bail!("a tracing_multi link is not made by libbpf"),
            Attach::Tracepoint => {
                let tp = self.spec.tracepoint()?;
                let category = match tp.category {
                    "syscalls" => libbpf_rs::TracepointCategory::Syscalls,
                    "bpf_test_run" => libbpf_rs::TracepointCategory::BpfTestRun,
                    other => bail!("no tracepoint category {other} in libbpf-rs"),
                };
                prog.attach_tracepoint(category, tp.name)
            }
            Attach::RawTp => prog.attach_raw_tracepoint(self.spec.tracepoint()?.raw),
            Attach::TpBtf => prog.attach_trace(),
            Attach::Uprobe
            | Attach::Uretprobe
            | Attach::UprobeMulti
            | Attach::UretprobeMulti
            | Attach::Usdt => {
                let site = target
                    .user
                    .as_ref()
                    .with_context(|| format!("{sym} is not a user-space function"))?;
                let offset = usize::try_from(site.offset).context("uprobe offset")?;
                // Any process, as a tracefs uprobe is: the same kernel path for both.
                let any = -1;
                match self.spec.attach {
                    Attach::Uprobe => prog.attach_uprobe(false, any, site.path(), offset),
                    Attach::Uretprobe => prog.attach_uprobe(true, any, site.path(), offset),
                    Attach::UprobeMulti | Attach::UretprobeMulti => prog
                        .attach_uprobe_multi_with_opts(
                            any,
                            site.path(),
                            "",
                            libbpf_rs::UprobeMultiOpts {
                                offsets: vec![offset],
                                retprobe: self.spec.attach == Attach::UretprobeMulti,
                                ..Default::default()
                            },
                        ),
                    _ => {
                        let (provider, name) = tracelab_workloads::USDT_PROBE;
                        prog.attach_usdt(any, site.path(), provider, name)
                    }
                }
            }
        };
        link.with_context(|| format!("attaching {}", self.program))
    }

    /// Drops the links: the program stays loaded but leaves the hot path.
    pub(super) fn detach(&mut self) {
        self.links.clear();
        self.multi_link = None;
    }

    /// The functions a tracing_multi link attaches to, as BTF ids (found once, so an
    /// attach times the kernel's work, not our reading of BTF).
    pub(super) fn set_multi_ids(&mut self, ids: Vec<u32>) {
        self.multi_ids = ids;
    }

    /// (events, failed) so far: per-CPU counters for `count` and the stack payloads
    /// (a stack not taken fails), drained ring-buffer records for `record` (a full ring
    /// buffer fails). Draining happens here, outside any timed loop.
    pub(super) fn hits(&self, payload: Payload) -> Result<(u64, u64)> {
        let counts = self.counters()?;
        match payload {
            Payload::Empty => Ok((0, 0)),
            Payload::Count => Ok((counts[0], 0)),
            Payload::Stacktrace | Payload::Stackid => Ok((counts[0], counts[1])),
            Payload::Record => {
                if let Some(rb) = &self.ringbuf {
                    rb.consume().context("draining the ring buffer")?;
                }
                Ok((self.drained.events.get(), counts[1]))
            }
        }
    }

    /// (foreign, malformed) ring-buffer records so far: events of another process than
    /// the agent, and records of the wrong size.
    pub(super) fn foreign_events(&self) -> (u64, u64) {
        (self.drained.foreign.get(), self.drained.malformed.get())
    }

    /// The stacks taken so far: for `stacktrace` every one (frames counted in the
    /// program), for `stackid` the distinct stacks in the map (frames counted here).
    pub(super) fn stack_traces(&self, payload: Payload) -> Result<Option<StackTraces>> {
        match payload {
            Payload::Stacktrace => {
                let counts = self.counters()?;
                Ok(Some(StackTraces {
                    traces: counts[0],
                    frames: counts[2],
                }))
            }
            Payload::Stackid => {
                let map = self
                    .object
                    .maps()
                    .find(|m| m.name().to_str() == Some(probes::STACKS_MAP))
                    .context("the object has no stack map")?;
                let mut out = StackTraces::default();
                for key in map.keys() {
                    let Some(stack) = map
                        .lookup(&key, MapFlags::ANY)
                        .context("reading the stack map")?
                    else {
                        continue;
                    };
                    let frames = stack
                        .chunks_exact(8)
                        .take_while(|ip| ip.iter().any(|&b| b != 0))
                        .count() as u64;
                    out = out.plus(StackTraces { traces: 1, frames });
                }
                Ok(Some(out))
            }
            _ => Ok(None),
        }
    }

    /// Sums of the per-CPU slots [hits, drops, frames].
    fn counters(&self) -> Result<[u64; 3]> {
        let map = self
            .object
            .maps()
            .find(|m| m.name().to_str() == Some(probes::COUNTS_MAP))
            .context("the object has no counter map")?;
        let mut out = [0u64; 3];
        for (slot, total) in [probes::SLOT_HITS, probes::SLOT_DROPS, probes::SLOT_FRAMES]
            .into_iter()
            .zip(out.iter_mut())
        {
            let per_cpu = map
                .lookup_percpu(&slot.to_ne_bytes(), MapFlags::ANY)
                .context("reading the per-CPU counters")?
                .unwrap_or_default();
            for v in per_cpu {
                let bytes: [u8; 8] = v
                    .get(..8)
                    .and_then(|b| b.try_into().ok())
                    .context("a per-CPU counter is not 8 bytes")?;
                *total += u64::from_ne_bytes(bytes);
            }
        }
        Ok(out)
    }
}

/// `BPF_TRACE_FENTRY_MULTI` (enum bpf_attach_type of Linux 7.x; libbpf 1.7 predates it).
const BPF_TRACE_FENTRY_MULTI: u32 = 59;

/// `union bpf_attr` for `BPF_LINK_CREATE` of a tracing_multi link, as far as it reaches.
#[repr(C)]
struct LinkCreateMulti {
    prog_fd: u32,
    target_fd: u32,
    attach_type: u32,
    flags: u32,
    /// User pointer to `cnt` BTF ids.
    ids: u64,
    /// User pointer to `cnt` cookies (none).
    cookies: u64,
    cnt: u32,
    pad: u32,
}

/// Creates a tracing_multi link of program `prog_fd` over the functions `ids`.
fn link_create_multi(prog_fd: i32, ids: &[u32]) -> Result<OwnedFd> {
    let attr = LinkCreateMulti {
        prog_fd: u32::try_from(prog_fd).context("program fd")?,
        target_fd: 0,
        attach_type: BPF_TRACE_FENTRY_MULTI,
        flags: 0,
        ids: ids.as_ptr() as u64,
        cookies: 0,
        cnt: u32::try_from(ids.len()).context("function count")?,
        pad: 0,
    };
    // SAFETY: `attr` is a valid prefix of union bpf_attr of the size passed, and `ids`, the
    // only memory it points to, outlives the call; the kernel only reads it.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            libbpf_rs::libbpf_sys::BPF_LINK_CREATE,
            &attr as *const LinkCreateMulti,
            std::mem::size_of::<LinkCreateMulti>(),
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error()).context("BPF_LINK_CREATE");
    }
    let fd = i32::try_from(fd).context("link fd")?;
    // SAFETY: `fd` is a new file descriptor the kernel just returned; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}
