//! `tracelab chaos` as CI runs it: nine seeded kills, one of each kind, and nothing may be
//! left in the kernel or on the host, lost, or corrupt.

mod common;

#[test]
fn nine_seeded_kills_leave_nothing_and_lose_nothing() {
    let out = common::tracelab()
        .args(["chaos", "--kills", "9", "--seed", "1"])
        .output()
        .expect("run tracelab chaos");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "tracelab chaos failed\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("kills 9, leftovers 0, lost cells 0, corrupt results 0"),
        "{stdout}\n{stderr}"
    );
    // Every kind ran: the log names each once.
    for kind in [
        "agent SIGINT",
        "agent SIGTERM",
        "agent SIGKILL",
        "QEMU SIGKILL",
        "run SIGINT",
        "run SIGKILL",
        "matrix SIGINT",
        "matrix SIGKILL",
        "guest panic",
    ] {
        assert!(stderr.contains(&format!("({kind}, at")), "{kind}: {stderr}");
    }
}
