//! The kernel's BTF (`/sys/kernel/btf/vmlinux`), read for two questions: which functions
//! a BPF trampoline (fentry, fexit) can attach to, and their type ids (which a
//! tracing_multi link takes). The kernel refuses a function without
//! BTF, one with more arguments than a trampoline saves, and one taking a struct or union
//! by value on kernels before 6.9 (all are refused the same way here, so the set is the
//! same on every kernel).

use anyhow::{bail, Context, Result};
use std::collections::BTreeSet;

/// Arguments a trampoline saves on every architecture and kernel the lab boots.
const MAX_ARGS: u32 = 6;

const MAGIC: u16 = 0xeb9f;

/// Where the kernel shows its own BTF.
pub(crate) const VMLINUX: &str = "/sys/kernel/btf/vmlinux";

// Type kinds (include/uapi/linux/btf.h).
const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
const KIND_TYPEDEF: u32 = 8;
const KIND_VOLATILE: u32 = 9;
const KIND_CONST: u32 = 10;
const KIND_RESTRICT: u32 = 11;
const KIND_FUNC: u32 = 12;
const KIND_FUNC_PROTO: u32 = 13;
const KIND_TYPE_TAG: u32 = 18;

/// One type: its kind, name, the type it refers to (or its size) and, for a function
/// prototype, its parameters' types.
struct Type {
    kind: u32,
    name_off: u32,
    refers: u32,
    params: Vec<u32>,
}

fn u32_at(b: &[u8], at: usize) -> Result<u32> {
    let bytes = b
        .get(at..at + 4)
        .with_context(|| format!("BTF ends before offset {at}"))?;
    Ok(u32::from_le_bytes(bytes.try_into()?))
}

/// Bytes that follow a type's 12-byte header, by kind.
fn trailing(kind: u32, vlen: u32) -> Result<usize> {
    let vlen = vlen as usize;
    Ok(match kind {
        1 | 14 | 17 => 4,             // int, var, decl_tag
        3 => 12,                      // array
        4 | 5 | 15 | 19 => 12 * vlen, // struct, union, datasec, enum64
        6 | 13 => 8 * vlen,           // enum, func_proto
        2 | 7..=12 | 16 | 18 => 0,    // ptr, fwd, typedef, cv, func, float, type_tag
        other => bail!("BTF type kind {other} is unknown to this reader"),
    })
}

fn parse(b: &[u8]) -> Result<(Vec<Type>, &[u8])> {
    let magic = u16::from_le_bytes(b.get(..2).context("BTF is empty")?.try_into()?);
    if magic != MAGIC {
        bail!("not BTF (magic {magic:#x})");
    }
    let hdr_len = u32_at(b, 4)? as usize;
    let (type_off, type_len) = (u32_at(b, 8)? as usize, u32_at(b, 12)? as usize);
    let (str_off, str_len) = (u32_at(b, 16)? as usize, u32_at(b, 20)? as usize);
    let types = b
        .get(hdr_len + type_off..hdr_len + type_off + type_len)
        .context("BTF type section out of bounds")?;
    let strings = b
        .get(hdr_len + str_off..hdr_len + str_off + str_len)
        .context("BTF string section out of bounds")?;
    // Type 0 is void.
    let mut out = vec![Type {
        kind: 0,
        name_off: 0,
        refers: 0,
        params: Vec::new(),
    }];
    let mut at = 0;
    while at < types.len() {
        let name_off = u32_at(types, at)?;
        let info = u32_at(types, at + 4)?;
        let refers = u32_at(types, at + 8)?;
        let (kind, vlen) = ((info >> 24) & 0x1f, info & 0xffff);
        let extra = trailing(kind, vlen)?;
        let params = if kind == KIND_FUNC_PROTO {
            (0..vlen as usize)
                .map(|i| u32_at(types, at + 12 + 8 * i + 4))
                .collect::<Result<_>>()?
        } else {
            Vec::new()
        };
        out.push(Type {
            kind,
            name_off,
            refers,
            params,
        });
        at += 12 + extra;
    }
    Ok((out, strings))
}

fn name(strings: &[u8], off: u32) -> Option<&str> {
    let s = strings.get(off as usize..)?;
    let end = s.iter().position(|&c| c == 0)?;
    std::str::from_utf8(&s[..end]).ok()
}

/// Whether a parameter of type `id` passes in registers: not a struct or union by value
/// (through typedefs and qualifiers).
fn by_register(types: &[Type], mut id: u32) -> bool {
    for _ in 0..32 {
        let Some(t) = types.get(id as usize) else {
            return false;
        };
        match t.kind {
            KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_TYPE_TAG => {
                id = t.refers
            }
            KIND_STRUCT | KIND_UNION => return false,
            _ => return true,
        }
    }
    false
}

/// Functions a trampoline can attach to: described in BTF, at most [`MAX_ARGS`]
/// arguments, none variadic, none a struct or union by value, and not returning one
/// (arm64 7.3's verifier refuses `contpte_ptep_get_lockless`, which returns a `pte_t`).
pub(crate) fn trampoline_functions(btf: &[u8]) -> Result<BTreeSet<String>> {
    let (types, strings) = parse(btf)?;
    let mut out = BTreeSet::new();
    for t in types.iter().filter(|t| t.kind == KIND_FUNC) {
        let Some(proto) = types.get(t.refers as usize) else {
            continue;
        };
        if proto.kind != KIND_FUNC_PROTO || proto.params.len() > MAX_ARGS as usize {
            continue;
        }
        // Nor one returning a struct or union: the verifier refuses those for any trampoline.
        if !by_register(&types, proto.refers) {
            continue;
        }
        // A variadic prototype ends with a parameter of type 0.
        if proto
            .params
            .iter()
            .any(|&p| p == 0 || !by_register(&types, p))
        {
            continue;
        }
        if let Some(n) = name(strings, t.name_off) {
            out.insert(n.to_string());
        }
    }
    Ok(out)
}

/// The BTF type ids of the functions `names`, in order: what a tracing_multi link takes
/// (it attaches one trampoline per id). A name without a function in BTF is an error
/// naming it.
pub(crate) fn func_ids(btf: &[u8], names: &[&str]) -> Result<Vec<u32>> {
    let (types, strings) = parse(btf)?;
    let mut by_name = std::collections::HashMap::new();
    for (id, t) in types
        .iter()
        .enumerate()
        .filter(|(_, t)| t.kind == KIND_FUNC)
    {
        if let Some(n) = name(strings, t.name_off) {
            // The first, as libbpf's lookup by name takes it.
            by_name.entry(n).or_insert(u32::try_from(id)?);
        }
    }
    names
        .iter()
        .map(|n| {
            by_name
                .get(n)
                .copied()
                .with_context(|| format!("{n} is not a function in the kernel's BTF"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A BTF blob: int (1), struct (2, no members), ptr to int (3), protos and funcs.
    fn blob() -> Vec<u8> {
        let strings = b"\0int\0s\0ok\0by_value\0many\0returns_s\0".to_vec();
        let mut types = Vec::new();
        let mut ty = |name: u32, kind: u32, vlen: u32, refers: u32, extra: &[u32]| {
            for w in [name, (kind << 24) | vlen, refers] {
                types.extend_from_slice(&w.to_le_bytes());
            }
            for w in extra {
                types.extend_from_slice(&w.to_le_bytes());
            }
        };
        ty(1, 1, 0, 4, &[32]); // 1: int
        ty(5, KIND_STRUCT, 0, 8, &[]); // 2: struct s
        ty(0, 2, 0, 1, &[]); // 3: int *
        ty(0, KIND_FUNC_PROTO, 2, 1, &[0, 1, 0, 3]); // 4: int (int, int *)
        ty(7, KIND_FUNC, 0, 4, &[]); // 5: ok
        ty(0, KIND_FUNC_PROTO, 1, 1, &[0, 2]); // 6: int (struct s)
        ty(10, KIND_FUNC, 0, 6, &[]); // 7: by_value
        let seven: Vec<u32> = (0..7).flat_map(|_| [0, 1]).collect();
        ty(0, KIND_FUNC_PROTO, 7, 1, &seven); // 8: int (7 × int)
        ty(19, KIND_FUNC, 0, 8, &[]); // 9: many
        ty(0, KIND_FUNC_PROTO, 1, 2, &[0, 1]); // 10: struct s (int)
        ty(24, KIND_FUNC, 0, 10, &[]); // 11: returns_s
        let mut b = Vec::new();
        b.extend_from_slice(&MAGIC.to_le_bytes());
        b.extend_from_slice(&[1, 0]);
        for w in [
            24u32,
            0,
            types.len() as u32,
            types.len() as u32,
            strings.len() as u32,
        ] {
            b.extend_from_slice(&w.to_le_bytes());
        }
        b.extend_from_slice(&types);
        b.extend_from_slice(&strings);
        b
    }

    #[test]
    fn trampolines_take_functions_with_few_register_arguments() {
        let set = trampoline_functions(&blob()).expect("parsed");
        assert_eq!(set.into_iter().collect::<Vec<_>>(), ["ok"]);
    }

    #[test]
    fn func_ids_are_type_ids_by_name() {
        assert_eq!(func_ids(&blob(), &["many", "ok"]).ok(), Some(vec![9, 5]));
        let err = func_ids(&blob(), &["ok", "int"]).unwrap_err().to_string();
        assert!(err.contains("int is not a function"), "{err}");
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(trampoline_functions(b"").is_err());
        assert!(trampoline_functions(&[0x9f, 0xeb, 1, 0, 24, 0, 0]).is_err());
        let mut b = blob();
        b.truncate(40);
        assert!(trampoline_functions(&b).is_err());
    }
}
