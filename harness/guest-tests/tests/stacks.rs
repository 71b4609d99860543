//! Stack-trace payloads in real guests: BPF `bpf_get_stack` (`stacktrace`) and
//! `bpf_get_stackid` (`stackid`), and ftrace's stack trace options for the tracefs
//! mechanisms. Every stack is proven taken (one per event, none failed) and its depth
//! is recorded; what cannot take a stack says why.

mod common;

const MECHANISMS: &str = "baseline,kprobe,fprobe,function,function-graph,bpf-kprobe,bpf-kprobe-multi,bpf-fentry,bpf-raw-tp";

/// Runs both stack payloads on `target`; `unsupported` lists (mechanism, payload, word of
/// the reason) the kernel or the mechanism cannot do.
fn check(target: &str, unsupported: &[(&str, &str, &str)]) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, rows) = common::study(
        &[
            "--target",
            target,
            "--mechanisms",
            MECHANISMS,
            "--payloads",
            "stacktrace,stackid",
            "--calls",
            "200",
            "--repeats",
            "1",
        ],
        dir.path(),
    );
    // The baseline; the tracefs mechanisms take the stack trace only; BPF both.
    let cells: Vec<String> = rows
        .iter()
        .map(|r| format!("{}/{}", r["mechanism"], r["payload"]))
        .collect();
    assert_eq!(cells.len(), 1 + 4 + 4 * 2, "{cells:?}");
    for r in &rows {
        let mechanism = r["mechanism"].as_str().unwrap_or_default();
        if mechanism == "baseline" {
            continue;
        }
        let payload = r["payload"].as_str().unwrap_or_default();
        assert!(["stacktrace", "stackid"].contains(&payload), "{r}");
        if let Some((_, _, why)) = unsupported
            .iter()
            .find(|(m, p, _)| *m == mechanism && (p.is_empty() || *p == payload))
        {
            assert_eq!(r["status"], "unsupported", "{target}: {r}");
            let reason = r["reason"].as_str().unwrap_or_default();
            assert!(reason.contains(why), "{target}: {reason}");
            continue;
        }
        assert_eq!(r["status"], "ok", "{target}: {r}");
        assert_eq!(r["fired"], r["expected_fired"], "{target}: {r}");
        // A kernel stack of a syscall's function is a few frames deep, never none.
        let depth = r["stack_depth"].as_f64().unwrap_or_default();
        assert!((1.0..64.0).contains(&depth), "{target}: {r}");
        // Walking a stack costs hundreds of instructions at the least.
        assert!(r["overhead"].as_f64().unwrap_or_default() > 500.0, "{r}");
    }
}

#[test]
fn x86_64_7_3_both_stack_payloads() {
    check(
        "vm:x86_64/7.3",
        &[("function-graph", "", "func_stack_trace")],
    );
}

#[test]
fn arm64_6_12_both_stack_payloads() {
    check(
        "vm:arm64/6.12",
        &[
            ("function-graph", "", "func_stack_trace"),
            ("fprobe", "", "CONFIG_FPROBE"),
            ("bpf-kprobe-multi", "", "CONFIG_FPROBE"),
        ],
    );
}
