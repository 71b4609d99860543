//! Kernel symbols for `--attribution`: the host names the translation blocks the QEMU
//! plugin counted by the kernel's own `/proc/kallsyms` (fixed across boots: the lab boots
//! with `nokaslr`). The function symbols of the kernel image are sent once per boot, after
//! the hello, deflated and in parts small enough that kernel messages on the console
//! cannot land inside one unnoticed (each part is a checksummed record).

use anyhow::{Context, Result};
use base64::Engine as _;
use std::io::Write as _;
use tracelab_model::protocol::Record;

/// Base64 characters per record.
const PART: usize = 48 * 1024;

/// The kernel image's function symbols (`t`/`T`, no module), as `address name` lines.
pub(crate) fn kernel_text() -> Result<String> {
    let all = std::fs::read_to_string("/proc/kallsyms").context("reading /proc/kallsyms")?;
    Ok(text_symbols(&all))
}

fn text_symbols(kallsyms: &str) -> String {
    let mut out = String::new();
    for line in kallsyms.lines() {
        let mut w = line.split_whitespace();
        let (Some(addr), Some(kind), Some(name), None) = (w.next(), w.next(), w.next(), w.next())
        else {
            continue;
        };
        // Zero addresses: kptr_restrict hides them, and they name nothing.
        if matches!(kind, "t" | "T") && addr.bytes().any(|b| b != b'0') {
            out.push_str(addr);
            out.push(' ');
            out.push_str(name);
            out.push('\n');
        }
    }
    out
}

/// Kernel code made at run time (BPF programs and trampolines, kprobe slots, ftrace
/// trampolines), as `/proc/kallsyms` lists it now.
pub(crate) fn runtime() -> Result<Vec<tracelab_model::attribution::RuntimeSymbol>> {
    let all = std::fs::read_to_string("/proc/kallsyms").context("reading /proc/kallsyms")?;
    Ok(all
        .lines()
        .filter_map(tracelab_model::attribution::RuntimeSymbol::from_kallsyms)
        .collect())
}

/// The records that carry `text` (deflated, base64, in parts).
pub(crate) fn records(text: &str) -> Result<Vec<Record>> {
    let mut z = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(text.as_bytes())
        .context("deflating the symbols")?;
    let packed = base64::engine::general_purpose::STANDARD.encode(z.finish()?);
    let parts: Vec<&str> = packed
        .as_bytes()
        .chunks(PART)
        .map(|c| std::str::from_utf8(c).unwrap_or_default())
        .collect();
    let count = u32::try_from(parts.len()).unwrap_or(u32::MAX);
    Ok(parts
        .into_iter()
        .enumerate()
        .map(|(i, data)| Record::Symbols {
            part: u32::try_from(i).unwrap_or(u32::MAX),
            parts: count,
            data: data.to_string(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_images_functions_are_kept() {
        let text = text_symbols(
            "ffffffff81000000 T _stext\nffffffff81000010 t helper\nffffffff82000000 D data\n\
             ffffffffa0000000 t bpf_prog_x_f\t[bpf]\n0000000000000000 T hidden\n",
        );
        assert_eq!(text, "ffffffff81000000 _stext\nffffffff81000010 helper\n");
        let r = records(&text).expect("records");
        assert_eq!(r.len(), 1);
    }
}
