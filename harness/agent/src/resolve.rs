//! Resolving the kernel function a workload calls into the name tracing accepts.
//!
//! On x86_64 6.12 `__x64_sys_getppid`, `__ia32_sys_getppid` and `__do_sys_getppid` share
//! one address, and only `__do_sys_getppid` is in `available_filter_functions` (and BTF):
//! writing an alias fails. So names are resolved by address against the kernel's own lists.

use anyhow::{bail, Context, Result};
use std::collections::BTreeSet;
use tracelab_probes::{Symbol, UserSite};

/// The function the cells trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetFunction {
    /// The name every mechanism uses (the one ftrace lists, when ftrace is there).
    pub symbol: Symbol,
    /// Other names of the same address (the trace may print any of them).
    pub aliases: Vec<String>,
    pub address: Option<u64>,
    /// The next text symbol's address: the function ends before it.
    pub end: Option<u64>,
    /// For the user-space workloads: where the agent's own function is in its file (the
    /// addresses above are then this process's).
    pub user: Option<UserSite>,
}

impl TargetFunction {
    /// The name and its aliases.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.symbol.as_str()).chain(self.aliases.iter().map(String::as_str))
    }

    /// The function's addresses, where kallsyms shows them.
    pub(crate) fn range(&self) -> Option<Range> {
        Some(Range {
            start: self.address?,
            end: self.end?,
        })
    }
}

/// Where the traced addresses must lie: the target function, `[start, end)`.
///
/// Kept beside [`TargetFunction`], which it is cut from, so that the ring-buffer check and
/// the BPF cells depend on this module and it on neither (it was in `ring_buffer`, which
/// made the two modules import each other).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Range {
    pub start: u64,
    pub end: u64,
}

/// Text symbols of `/proc/kallsyms`: (address, name), module symbols excluded.
fn text_symbols(kallsyms: &str) -> impl Iterator<Item = (u64, &str)> {
    kallsyms.lines().filter_map(|line| {
        let mut it = line.split_whitespace();
        let addr = u64::from_str_radix(it.next()?, 16).ok()?;
        let kind = it.next()?;
        let name = it.next()?;
        if it.next().is_some() || !matches!(kind, "T" | "t") {
            return None;
        }
        Some((addr, name))
    })
}

/// The text symbol `address` lies in, from `/proc/kallsyms` (`name+0x4`): for messages
/// that name what fired.
pub(crate) fn name_of(address: u64) -> Option<String> {
    let kallsyms = std::fs::read_to_string("/proc/kallsyms").ok()?;
    let (start, name) = text_symbols(&kallsyms)
        .filter(|&(a, _)| a != 0 && a <= address)
        .max_by_key(|&(a, _)| a)?;
    Some(format!("{name}+{:#x}", address - start))
}

/// Names in `available_filter_functions` (first column; module tags dropped).
pub fn filter_functions(text: &str) -> BTreeSet<&str> {
    text.lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect()
}

/// Picks the function to trace: the first candidate the kernel has, under the name ftrace
/// lists (an alias at the same address when the candidate itself is not listed).
///
/// `kallsyms` is `/proc/kallsyms` (addresses all zero when they are hidden);
/// `filterable` is the content of `available_filter_functions`, None without ftrace.
pub fn resolve(
    candidates: &[&str],
    kallsyms: &str,
    filterable: Option<&BTreeSet<&str>>,
) -> Result<TargetFunction> {
    let symbols: Vec<(u64, &str)> = text_symbols(kallsyms).collect();
    let mut notes = Vec::new();
    for cand in candidates {
        let Some(&(addr, _)) = symbols.iter().find(|(_, n)| n == cand) else {
            notes.push(format!("{cand}: not in /proc/kallsyms"));
            continue;
        };
        let mut names = vec![cand.to_string()];
        if addr != 0 {
            for (a, n) in &symbols {
                if *a == addr && !names.iter().any(|x| x == n) {
                    names.push(n.to_string());
                }
            }
        }
        let chosen = match filterable {
            None => Some(cand.to_string()),
            Some(set) => names.iter().find(|n| set.contains(n.as_str())).cloned(),
        };
        let Some(chosen) = chosen else {
            notes.push(format!(
                "{cand}: neither it nor its aliases ({}) are in available_filter_functions",
                names[1..].join(", ")
            ));
            continue;
        };
        let symbol = Symbol::new(&chosen).with_context(|| format!("kernel symbol {chosen:?}"))?;
        let aliases = names.into_iter().filter(|n| *n != chosen).collect();
        let end = symbols.iter().map(|(a, _)| *a).filter(|a| *a > addr).min();
        return Ok(TargetFunction {
            symbol,
            aliases,
            address: (addr != 0).then_some(addr),
            end: end.filter(|_| addr != 0),
            user: None,
        });
    }
    bail!(
        "no traceable function among {}: {}",
        candidates.join(", "),
        notes.join("; ")
    )
}

/// The agent's own function `f` (a user-space workload's), located in the file it was
/// mapped from: `maps` is `/proc/self/maps`, whose line for the address gives the file
/// and the offset the mapping starts at.
pub fn resolve_user(f: &tracelab_workloads::UserFunction, maps: &str) -> Result<TargetFunction> {
    let line = maps
        .lines()
        .find_map(|l| {
            let mut it = l.split_whitespace();
            let (lo, hi) = it.next()?.split_once('-')?;
            let (lo, hi) = (
                u64::from_str_radix(lo, 16).ok()?,
                u64::from_str_radix(hi, 16).ok()?,
            );
            let perms = it.next()?;
            let offset = u64::from_str_radix(it.next()?, 16).ok()?;
            let path = it.nth(2)?;
            (lo <= f.start && f.start < hi && perms.contains('x'))
                .then(|| (lo, offset, path.to_string()))
        })
        .with_context(|| {
            format!(
                "/proc/self/maps has no executable file mapping holding {} at {:#x}",
                f.name, f.start
            )
        })?;
    let (lo, map_offset, path) = line;
    let site = UserSite::new(&path, f.start - lo + map_offset)
        .with_context(|| format!("the agent's file, for {}", f.name))?;
    Ok(TargetFunction {
        symbol: Symbol::new(f.name).with_context(|| format!("symbol {:?}", f.name))?,
        aliases: Vec::new(),
        address: Some(f.start),
        end: Some(f.end),
        user: Some(site),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const KALLSYMS: &str = "\
ffffffff81100000 T _stext
ffffffff810b1230 T __x64_sys_getppid
ffffffff810b1230 T __ia32_sys_getppid
ffffffff810b1230 t __do_sys_getppid
ffffffff810b1260 T __x64_sys_getpid
ffffffffc0001000 t helper\t[some_module]
";

    #[test]
    fn resolves_x86_alias_to_the_filterable_name() {
        let filter = filter_functions("__do_sys_getppid\n__x64_sys_getpid\n");
        let t = resolve(
            &["__x64_sys_getppid", "__do_sys_getppid"],
            KALLSYMS,
            Some(&filter),
        )
        .expect("resolved");
        assert_eq!(t.symbol.as_str(), "__do_sys_getppid");
        assert!(t.aliases.contains(&"__x64_sys_getppid".to_string()));
        assert_eq!(t.address, Some(0xffffffff810b1230));
        assert_eq!(t.end, Some(0xffffffff810b1260));
        assert!(t.names().any(|n| n == "__ia32_sys_getppid"));
    }

    #[test]
    fn without_ftrace_the_candidate_is_used() {
        let t = resolve(&["__x64_sys_getppid"], KALLSYMS, None).expect("resolved");
        assert_eq!(t.symbol.as_str(), "__x64_sys_getppid");
    }

    #[test]
    fn missing_function_names_every_candidate() {
        let filter = filter_functions("other\n");
        let err = resolve(
            &["__arm64_sys_getppid", "__x64_sys_getpid"],
            KALLSYMS,
            Some(&filter),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("__arm64_sys_getppid: not in /proc/kallsyms"),
            "{err}"
        );
        assert!(err.contains("__x64_sys_getpid: neither"), "{err}");
    }

    #[test]
    fn module_symbols_and_hidden_addresses() {
        assert!(resolve(&["helper"], KALLSYMS, None).is_err());
        let hidden = "0000000000000000 T __x64_sys_getppid\n0000000000000000 t __do_sys_getppid\n";
        let t = resolve(&["__x64_sys_getppid"], hidden, None).expect("resolved");
        assert_eq!((t.address, t.aliases.len()), (None, 0));
    }

    proptest::proptest! {
        /// Any kallsyms and filter text resolves or is refused with a reason; a function
        /// planted among garbage lines is found at its address, with its end.
        #[test]
        fn kallsyms_of_any_shape(
            noise in proptest::collection::vec("\\PC{0,60}", 0..30),
            addr in 0x1000u64..0xffff_ffff,
        ) {
            let text = noise.join("\n");
            let _ = resolve(&["__do_sys_getppid"], &text, Some(&filter_functions(&text)));
            let planted = format!(
                "{text}\n{addr:016x} t __do_sys_getppid\n{:016x} T next_one\n",
                addr + 0x30
            );
            let t = resolve(&["__do_sys_getppid"], &planted, None).expect("planted");
            proptest::prop_assert_eq!(t.address, Some(addr));
            // Noise may hold a symbol between the two; the end is never past the next one.
            proptest::prop_assert!(t.end.is_some_and(|e| e > addr && e <= addr + 0x30));
        }
    }

    #[test]
    fn user_functions_resolve_to_their_file_offset() {
        let f = tracelab_workloads::user_function(tracelab_workloads::Workload::UserNop)
            .expect("user-nop exists everywhere");
        let maps = std::fs::read_to_string("/proc/self/maps").expect("maps");
        let t = resolve_user(&f, &maps).expect("resolved");
        let site = t.user.as_ref().expect("user site");
        // The file holds the function's bytes at that offset.
        let file = std::fs::read(site.path()).expect("own executable");
        let at = usize::try_from(site.offset).expect("offset");
        // SAFETY: [start, end) is the function's own code, mapped readable.
        let code =
            unsafe { std::slice::from_raw_parts(f.start as *const u8, (f.end - f.start) as usize) };
        assert_eq!(&file[at..at + code.len()], code);
        assert_eq!(t.symbol.as_str(), "tracelab_user_nop");
        let err = resolve_user(&f, "").unwrap_err().to_string();
        assert!(err.contains("tracelab_user_nop"), "{err}");
    }
}
