//! The other functions a cell traces beside the workload's own (`--functions N`), and
//! those the other tracers beside a cell trace (`--other-tracers M`).
//!
//! Chosen once per run, the same way on every run of a kernel: every function each
//! mechanism of the axis can attach to (so kprobes, fprobes, ftrace filters and BPF
//! trampolines trace the same set), ordered by a hash of its name (spread over the whole
//! kernel, not one file's neighbours), with the functions the workload's own loops call
//! screened out. A cell on N functions traces the first N − 1 of that list: sets grow by
//! adding, and the figure is the cost on the workload's function of N attached, never of
//! N firing (a function that fires anyway fails the cell's proof of firing). The other
//! tracers take the functions after the functions axis' largest set, so the two never
//! share one.

use crate::resolve::TargetFunction;
use crate::tracefs::Tracefs;
use anyhow::{bail, Context, Result};
use std::collections::{BTreeMap, BTreeSet};
use tracelab_model::schema::TracedSet;
use tracelab_probes::Symbol;

/// Rounds of screening before the choice gives up: each round drops what fired in it.
const MAX_ROUNDS: usize = 6;
/// Names of screened-out functions kept in the choice's description.
const NAMED_SCREENED: usize = 12;
/// Prefixes of the BPF syscall's own code: the agent reads its BPF counters between the
/// two ends of a loop's count, so a probe there would count the agent's reads.
const AGENT_PATHS: &[&str] = &[
    "bpf_",
    "__bpf",
    "__sys_bpf",
    "__se_sys_bpf",
    "__x64_sys_bpf",
    "__arm64_sys_bpf",
    "map_",
    "btf_",
];

/// The ordered candidates, and how they were found.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FunctionSet {
    names: Vec<Symbol>,
    /// Each name as `set_ftrace_filter` takes it: its line in
    /// `available_filter_functions` where the screening found that to work, else the name.
    spelled: Vec<String>,
    /// How many of `names` (the first) are the functions axis'; the other tracers take
    /// the rest.
    split: usize,
    choice: String,
}

impl FunctionSet {
    /// The set of a plan that traces one function at a time, beside no other tracer.
    pub(crate) fn none() -> FunctionSet {
        FunctionSet {
            names: Vec::new(),
            spelled: Vec::new(),
            split: 0,
            choice: String::new(),
        }
    }

    /// The `n − 1` others of a cell on `n` functions, or why this kernel has too few.
    pub(crate) fn others(&self, n: u32) -> std::result::Result<&[Symbol], String> {
        let want = n.saturating_sub(1) as usize;
        self.names[..self.split].get(..want).ok_or_else(|| {
            format!(
                "{n} functions asked for, and this kernel offers {} besides the workload's ({}): ask for at most {}",
                self.split,
                self.choice,
                self.split + 1
            )
        })
    }

    /// The functions of `m` other tracers, each with its filter spelling, or why this
    /// kernel has too few.
    pub(crate) fn beside(&self, m: u32) -> std::result::Result<Vec<(Symbol, String)>, String> {
        let range = self.split..self.split + m as usize;
        match (self.names.get(range.clone()), self.spelled.get(range)) {
            (Some(names), Some(spelled)) => {
                Ok(names.iter().cloned().zip(spelled.iter().cloned()).collect())
            }
            _ => Err(format!(
                "{m} other tracers asked for, and this kernel offers {} functions for them ({})",
                self.beside_available(),
                self.choice
            )),
        }
    }

    /// How many functions there are for other tracers.
    pub(crate) fn beside_available(&self) -> usize {
        self.names.len() - self.split
    }

    /// What a cell on `n` functions records of its set.
    pub(crate) fn traced(&self, n: u32) -> Option<TracedSet> {
        self.others(n).ok().and_then(|o| self.described(o))
    }

    /// What a cell beside `m` other tracers records of their functions.
    pub(crate) fn traced_beside(&self, m: u32) -> Option<TracedSet> {
        let names: Vec<Symbol> = self.beside(m).ok()?.into_iter().map(|(n, _)| n).collect();
        self.described(&names)
    }

    fn described(&self, names: &[Symbol]) -> Option<TracedSet> {
        if names.is_empty() {
            return None;
        }
        let names: Vec<String> = names.iter().map(ToString::to_string).collect();
        Some(TracedSet {
            digest: format!("{:016x}", fnv1a(names.join("\n").as_bytes())),
            others: names,
            choice: self.choice.clone(),
        })
    }
}

/// FNV-1a, 64 bit: a stable hash with no dependency (the order must never change).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// What the kernel says about its functions, as text (so the choice is testable).
pub(crate) struct Sources<'a> {
    /// `available_filter_functions`.
    pub(crate) filterable: &'a str,
    /// `/proc/kallsyms`.
    pub(crate) kallsyms: &'a str,
    /// `kprobes/blacklist` (debugfs), when readable.
    pub(crate) blacklist: Option<&'a str>,
    /// Functions a trampoline can attach to ([`crate::btf`]), when BTF is readable.
    pub(crate) trampoline: Option<&'a BTreeSet<String>>,
}

/// The kernel's lists, as read.
struct Texts {
    filterable: String,
    kallsyms: String,
    blacklist: Option<String>,
}

impl Texts {
    fn read(tracefs: &Tracefs) -> Result<Texts> {
        Ok(Texts {
            filterable: tracefs.read("available_filter_functions")?,
            kallsyms: std::fs::read_to_string("/proc/kallsyms")
                .context("reading /proc/kallsyms")?,
            blacklist: std::fs::read_to_string("/sys/kernel/debug/kprobes/blacklist").ok(),
        })
    }

    fn sources<'a>(&'a self, trampoline: Option<&'a BTreeSet<String>>) -> Sources<'a> {
        Sources {
            filterable: &self.filterable,
            kallsyms: &self.kallsyms,
            blacklist: self.blacklist.as_deref(),
            trampoline,
        }
    }
}

/// A candidate: its name and its line in `available_filter_functions` (from 1), which
/// `set_ftrace_filter` takes in place of the name.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Candidate {
    name: String,
    index: usize,
}

/// Every candidate in choice order, with the counts of what was left out and why.
fn candidates(src: &Sources<'_>, target: &TargetFunction) -> (Vec<Candidate>, String) {
    // name → (times listed, line of the first listing)
    let mut listed: BTreeMap<&str, (u32, usize)> = BTreeMap::new();
    let mut in_module = 0;
    for (i, line) in src.filterable.lines().enumerate() {
        let mut words = line.split_whitespace();
        let Some(name) = words.next() else { continue };
        if words.next().is_some() {
            in_module += 1;
            continue;
        }
        listed.entry(name).or_insert((0, i + 1)).0 += 1;
    }
    let mut text: BTreeMap<&str, u32> = BTreeMap::new();
    for line in src.kallsyms.lines() {
        let w: Vec<&str> = line.split_whitespace().collect();
        if w.len() == 3 && matches!(w[1], "T" | "t") {
            *text.entry(w[2]).or_default() += 1;
        }
    }
    let blacklisted: BTreeSet<&str> = src
        .blacklist
        .unwrap_or("")
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    let mut left_out: BTreeMap<&str, u32> = BTreeMap::new();
    let mut out = Vec::new();
    for (&name, &(times, index)) in &listed {
        let why = if times > 1 || text.get(name) != Some(&1) {
            Some("not unique by name")
        } else if name.contains('.') {
            Some("compiler clones")
        } else if target.names().any(|n| n == name) {
            Some("the workload's own")
        } else if blacklisted.contains(name) {
            Some("on the kprobe blacklist")
        } else if src.trampoline.is_some_and(|t| !t.contains(name)) {
            Some("no trampoline (no BTF, over 6 arguments or a struct by value)")
        } else if AGENT_PATHS.iter().any(|p| name.starts_with(p)) {
            Some("BPF's own (the agent reads its counters through them)")
        } else if Symbol::new(name).is_err() {
            Some("not a valid symbol")
        } else {
            None
        };
        match why {
            Some(w) => *left_out.entry(w).or_default() += 1,
            None => out.push(Candidate {
                name: name.to_string(),
                index,
            }),
        }
    }
    out.sort_by_key(|c| (fnv1a(c.name.as_bytes()), c.name.clone()));
    let mut how = format!(
        "{} candidates of {} in available_filter_functions ({in_module} in modules left out",
        out.len(),
        listed.values().map(|(n, _)| n).sum::<u32>() + in_module
    );
    for (why, n) in &left_out {
        how.push_str(&format!(", {n} {why}"));
    }
    if src.blacklist.is_none() {
        how.push_str("; kprobes/blacklist unreadable");
    }
    if src.trampoline.is_none() {
        how.push_str("; BTF unreadable");
    }
    how.push_str("), ordered by FNV-1a of the name");
    (out, how)
}

/// Every function kprobe_multi traces beside `target` over every function
/// (`--functions all`, as the selftests' kprobe-multi-all): the candidates of the
/// functions axis, unscreened and without the trampolines' BTF condition.
pub(crate) fn every(tracefs: &Tracefs, target: &TargetFunction) -> Result<Vec<Symbol>> {
    let texts = Texts::read(tracefs)?;
    candidates(&texts.sources(None), target)
        .0
        .iter()
        .map(|c| Symbol::new(&c.name).with_context(|| format!("kernel symbol {:?}", c.name)))
        .collect()
}

/// Chooses up to `max_functions − 1` others for `target` and then up to `max_others` for
/// the other tracers: the candidates, screened by tracing them with the `function` tracer
/// while `rehearse` runs what a cell's loop runs, until a round in which none of the
/// chosen fired.
pub(crate) fn choose(
    max_functions: u32,
    max_others: u32,
    target: &TargetFunction,
    tracefs: &Tracefs,
    rehearse: &mut dyn FnMut() -> Result<()>,
) -> Result<FunctionSet> {
    let texts = Texts::read(tracefs)?;
    let trampoline = std::fs::read(crate::btf::VMLINUX)
        .ok()
        .and_then(|b| crate::btf::trampoline_functions(&b).ok());
    let (all, how) = candidates(&texts.sources(trampoline.as_ref()), target);
    // More than the kernel has: the largest set it has (the cells asking for more say so).
    let axis = max_functions.saturating_sub(1) as usize;
    let want = (axis + max_others as usize).min(all.len());
    let mut screened: BTreeSet<String> = BTreeSet::new();
    for _ in 0..MAX_ROUNDS {
        let chosen: Vec<&Candidate> = all
            .iter()
            .filter(|c| !screened.contains(&c.name))
            .take(want)
            .collect();
        let (fired, by_index) = fired_while(tracefs, &chosen, rehearse)?;
        if fired.is_empty() {
            let mut choice = how.clone();
            if !screened.is_empty() {
                let named: Vec<&str> = screened
                    .iter()
                    .take(NAMED_SCREENED)
                    .map(String::as_str)
                    .collect();
                choice.push_str(&format!(
                    "; {} screened out because they ran during a rehearsal of the loop ({}{})",
                    screened.len(),
                    named.join(", "),
                    if screened.len() > NAMED_SCREENED {
                        ", …"
                    } else {
                        ""
                    }
                ));
            }
            let names = chosen
                .iter()
                .map(|c| {
                    Symbol::new(&c.name).with_context(|| format!("kernel symbol {:?}", c.name))
                })
                .collect::<Result<_>>()?;
            let spelled = chosen
                .iter()
                .map(|c| match by_index {
                    true => c.index.to_string(),
                    false => c.name.clone(),
                })
                .collect();
            return Ok(FunctionSet {
                names,
                spelled,
                split: axis.min(chosen.len()),
                choice,
            });
        }
        screened.extend(fired);
    }
    bail!(
        "after {MAX_ROUNDS} rounds of screening, functions of the chosen set still ran during the workload's loop ({} screened out)",
        screened.len()
    )
}

/// The trace instance the screening traces in: its own buffer, filter and tracer, so
/// what the rehearsal does to the main buffer (emptying it, as tracefs mechanisms do
/// before every loop) loses nothing, and the main tracer and filter are never touched.
const INSTANCE: &str = "instances/tracelab_screen";

/// Which of `chosen` ran while `rehearse` ran, seen by the `function` tracer of
/// [`INSTANCE`], filtered to them, and whether the filter took them by index. The
/// instance is removed on every path (and by the next run, after a kill:
/// [`crate::clear_leftovers`]).
fn fired_while(
    tracefs: &Tracefs,
    chosen: &[&Candidate],
    rehearse: &mut dyn FnMut() -> Result<()>,
) -> Result<(BTreeSet<String>, bool)> {
    if chosen.is_empty() {
        return Ok((BTreeSet::new(), true));
    }
    let dir = tracefs.root().join(INSTANCE);
    std::fs::create_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut instance = Instance { tracefs, on: false };
    let file = |f: &str| format!("{INSTANCE}/{f}");
    if !tracefs.exists(&file("set_ftrace_filter")) {
        bail!("trace instances have no set_ftrace_filter here: the functions cannot be screened");
    }
    let want: BTreeSet<String> = chosen.iter().map(|c| c.name.clone()).collect();
    // By index first: a name makes ftrace look up every function's symbol (tens of
    // millions of instructions per name under TCG), an index goes straight to its
    // record. Kernels whose index and list disagree get the names instead.
    let filter = file("set_ftrace_filter");
    let by_index = filter_by(tracefs, &filter, chosen, |c| c.index.to_string())
        .ok()
        .as_ref()
        == Some(&want);
    if !by_index {
        let held = filter_by(tracefs, &filter, chosen, |c| c.name.clone())?;
        if held != want {
            bail!(
                "the screening's set_ftrace_filter holds {} functions after {} were written",
                held.len(),
                want.len()
            );
        }
    }
    tracefs.write(&file("current_tracer"), "function")?;
    instance.on = true;
    let ran = rehearse();
    // Recording off, the buffer kept: switching the tracer off would empty it.
    tracefs.write(&file("tracing_on"), "0")?;
    ran.context("rehearsing the workload's loop while screening the other functions")?;
    let text = tracefs.read(&file("trace"))?;
    instance.stop()?;
    let mut fired = BTreeSet::new();
    for line in text.lines() {
        if let crate::mechanism::TraceLine::Event(name) = crate::mechanism::parse_trace_line(line) {
            if want.contains(name) {
                fired.insert(name.to_string());
            }
        }
    }
    Ok((fired, by_index))
}

/// Writes `chosen` into the filter file `filter`, each as `spell` spells it, and reads
/// back the names it holds.
fn filter_by(
    tracefs: &Tracefs,
    filter: &str,
    chosen: &[&Candidate],
    spell: impl Fn(&Candidate) -> String,
) -> Result<BTreeSet<String>> {
    tracefs.write(filter, "")?;
    let spelled: Vec<String> = chosen.iter().map(|c| spell(c)).collect();
    let lines: Vec<&str> = spelled.iter().map(String::as_str).collect();
    tracefs.append_lines(filter, &lines)?;
    Ok(tracefs
        .read(filter)?
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| !n.starts_with('#'))
        .map(String::from)
        .collect())
}

/// The screening's instance: its tracer stopped and the instance removed when dropped.
struct Instance<'a> {
    tracefs: &'a Tracefs,
    on: bool,
}

impl Instance<'_> {
    fn stop(&mut self) -> Result<()> {
        if self.on {
            self.on = false;
            self.tracefs
                .write(&format!("{INSTANCE}/current_tracer"), "nop")?;
        }
        Ok(())
    }
}

impl Drop for Instance<'_> {
    fn drop(&mut self) {
        let _ = self.stop();
        let _ = remove_instance(self.tracefs);
    }
}

/// Removes the screening's instance (its tracer off first, or the kernel refuses).
fn remove_instance(tracefs: &Tracefs) -> Result<()> {
    let dir = tracefs.root().join(INSTANCE);
    let _ = tracefs.write(&format!("{INSTANCE}/current_tracer"), "nop");
    std::fs::remove_dir(&dir).with_context(|| format!("removing {}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> TargetFunction {
        TargetFunction {
            symbol: Symbol::new("__do_sys_getppid").expect("symbol"),
            aliases: vec!["__x64_sys_getppid".into()],
            address: None,
            end: None,
            user: None,
        }
    }

    #[test]
    fn candidates_are_what_every_mechanism_can_attach_to_in_a_stable_order() {
        let filterable = "__do_sys_getppid\nvfs_read\nvfs_write\nfoo.constprop.0\ndup\ndup\nbpf_map_update_value\nmod_fn [ext4]\nno_btf\nlisted\n";
        let kallsyms = "0 T __do_sys_getppid\n0 T vfs_read\n0 T vfs_write\n0 t foo.constprop.0\n0 t dup\n0 t dup\n0 T bpf_map_update_value\n0 t no_btf\n0 T listed\n";
        let btf: BTreeSet<String> = [
            "vfs_read",
            "vfs_write",
            "bpf_map_update_value",
            "listed",
            "dup",
        ]
        .into_iter()
        .map(String::from)
        .collect();
        let src = Sources {
            filterable,
            kallsyms,
            blacklist: Some("0xffff-0xffff\tlisted\n"),
            trampoline: Some(&btf),
        };
        let (names, how) = candidates(&src, &target());
        let mut sorted: Vec<(&str, usize)> =
            names.iter().map(|c| (c.name.as_str(), c.index)).collect();
        sorted.sort();
        assert_eq!(sorted, [("vfs_read", 2), ("vfs_write", 3)]);
        let (again, _) = candidates(&src, &target());
        assert_eq!(names, again);
        for part in [
            "2 candidates of 10",
            "1 in modules",
            "1 no trampoline",
            "1 on the kprobe blacklist",
            "1 BPF's own",
            "1 compiler clones",
            "1 the workload's own",
            "1 not unique by name",
        ] {
            assert!(how.contains(part), "{part}: {how}");
        }
    }

    #[test]
    fn a_cell_takes_a_prefix_and_too_many_is_an_error() {
        let set = FunctionSet {
            names: ["a", "b", "c", "d"]
                .iter()
                .map(|n| Symbol::new(n).expect("sym"))
                .collect(),
            spelled: ["1", "2", "3", "4"].map(String::from).to_vec(),
            split: 3,
            choice: "4 candidates".into(),
        };
        assert_eq!(set.others(1).expect("none"), &[] as &[Symbol]);
        assert_eq!(set.others(3).expect("two").len(), 2);
        assert!(set.traced(1).is_none());
        let t = set.traced(4).expect("all three");
        assert_eq!(t.others, ["a", "b", "c"]);
        assert_eq!(t.digest, format!("{:016x}", fnv1a(b"a\nb\nc")));
        let err = set.others(5).unwrap_err();
        assert!(err.contains("at most 4"), "{err}");
        // The other tracers take what follows the functions axis' largest set.
        assert_eq!(
            set.beside(1).expect("one"),
            [(Symbol::new("d").expect("sym"), "4".to_string())]
        );
        assert!(set.traced_beside(0).is_none());
        assert_eq!(set.traced_beside(1).expect("d").others, ["d"]);
        let err = set.beside(2).unwrap_err();
        assert!(err.contains("offers 1 functions"), "{err}");
    }
}
