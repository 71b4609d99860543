//! Compiles the BPF programs (`src/bpf/*.bpf.c`) with clang into `OUT_DIR`: the object
//! the agent loads, and a libbpf-rs skeleton whose generated types describe the data the
//! programs share with user space. Nothing is written into the source tree.
//!
//! The object is built for the crate's *target* architecture (libbpf-cargo reads
//! `CARGO_CFG_TARGET_ARCH`), so a cross build of the aarch64 agent gets arm64 programs.

use libbpf_cargo::SkeletonBuilder;
use std::path::PathBuf;

const SRC: &str = "src/bpf/tracelab.bpf.c";

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    SkeletonBuilder::new()
        .source(SRC)
        .obj(out.join("tracelab.bpf.o"))
        // -Wall: the C is small enough to keep warning-free. src/bpf/include stands in
        // for the one kernel header libbpf's usdt.bpf.h includes (linux/errno.h).
        .clang_args(["-Wall", "-Wno-unused-parameter", "-Isrc/bpf/include"])
        .build_and_generate(out.join("tracelab.skel.rs"))
        .unwrap_or_else(|e| {
            panic!("compiling {SRC} (needs clang; scripts/install-deps installs it): {e:#}")
        });
    println!("cargo:rerun-if-changed=src/bpf");
}
