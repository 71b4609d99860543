//! libbpf's own messages (including the verifier log on a failed load), captured so a
//! failed load or attach carries them in the cell's reason instead of scrolling past on
//! the guest console.

use libbpf_rs::PrintLevel;
use std::sync::Mutex;

/// Lines kept per capture (the verifier log tail is what explains a rejection).
const KEEP_LINES: usize = 12;

static LINES: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn collect(_level: PrintLevel, msg: String) {
    if let Ok(mut lines) = LINES.lock() {
        // The caller labels the whole tail as libbpf's: drop its per-line prefix.
        lines.extend(
            msg.lines()
                .map(|l| l.trim().trim_start_matches("libbpf:").trim())
                .filter(|l| !l.is_empty())
                .map(String::from),
        );
        let excess = lines.len().saturating_sub(KEEP_LINES);
        lines.drain(..excess);
    }
}

/// Collects libbpf's messages from `start` to `finish`.
pub(super) struct Capture;

impl Capture {
    pub(super) fn start() -> Capture {
        if let Ok(mut lines) = LINES.lock() {
            lines.clear();
        }
        libbpf_rs::set_print(Some((PrintLevel::Info, collect)));
        Capture
    }

    /// The tail of what libbpf said, one line, if anything.
    pub(super) fn finish(self) -> Option<String> {
        let lines = LINES.lock().ok()?;
        (!lines.is_empty()).then(|| lines.join(" | "))
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        // Outside a capture libbpf stays quiet: the console carries the agent's records.
        libbpf_rs::set_print(None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_tail_without_libbpf_prefixes() {
        let capture = Capture::start();
        collect(
            PrintLevel::Warn,
            "libbpf: prog 'p': failed to load\n".into(),
        );
        let log: String = (0..20).map(|i| format!("{i}: r0 = 0\n")).collect();
        collect(PrintLevel::Info, log);
        let tail = capture.finish().expect("captured");
        let lines: Vec<&str> = tail.split(" | ").collect();
        assert_eq!(lines.len(), KEEP_LINES, "{tail}");
        assert_eq!(lines.last(), Some(&"19: r0 = 0"));
        assert!(!tail.contains("libbpf:"), "{tail}");
        let capture = Capture::start();
        assert_eq!(capture.finish(), None);
    }
}
