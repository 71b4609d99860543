//! The agent's reports to the host, one line each.
//!
//! The guest's console carries them, so each line is framed as
//! `@@tracelab <crc32> <json>`: the host finds records among kernel messages and detects a
//! garbled line (the checksum is over the JSON text).

use crate::schema::Measured;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const PREFIX: &str = "@@tracelab ";

/// One message from the agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "snake_case")]
// One Hello per run: its size does not matter, and boxing it would reshape every match.
#[allow(clippy::large_enum_variant)]
pub enum Record {
    /// The agent waits for its plan, one line of JSON on its standard input (the guest's
    /// console). A guest is kept here (its snapshot) and restored here.
    Ready,
    /// The agent started: where it runs.
    Hello {
        kernel_release: String,
        machine: String,
        agent_version: String,
        /// The function the cells trace, once resolved.
        function: Option<String>,
        /// The CPU the measuring thread is pinned to.
        #[serde(default)]
        cpu: Option<u32>,
        /// Perf counters this kernel/PMU does not offer, with the reason.
        #[serde(default)]
        counters_absent: BTreeMap<String, String>,
        /// What a crashed earlier run had left and this one removed.
        #[serde(default)]
        leftovers_removed: Vec<String>,
        /// CPU, mitigations, boot command line and noise of the measuring system.
        #[serde(default)]
        environment: Option<Box<crate::environment::Environment>>,
        /// The git revision the agent was built from (`-dirty` when the tree had changes).
        #[serde(default)]
        agent_revision: Option<String>,
        /// `/proc/sys/kernel/random/boot_id` and the uptime (s) when the agent started:
        /// two boots of one plan should agree on both in a deterministic guest.
        #[serde(default)]
        boot_id: Option<String>,
        #[serde(default)]
        uptime: Option<String>,
    },
    /// One finished cell (boxed: it is by far the largest record).
    Cell(Box<Measured>),
    /// Part `part` of `parts` of the kernel image's function symbols (`--attribution`):
    /// base64 of the deflated `address name` lines; the host joins the parts in order.
    Symbols { part: u32, parts: u32, data: String },
    /// The agent could not run its plan at all.
    Fatal { message: String },
    /// All cells are done and everything the agent installed was removed.
    Done,
}

/// Frames a record as one line (without the newline).
pub fn encode(record: &Record) -> String {
    // Serializing these plain data types cannot fail.
    let json = serde_json::to_string(record).unwrap_or_else(|e| {
        format!(r#"{{"record":"fatal","message":"cannot encode record: {e}"}}"#)
    });
    format!("{PREFIX}{:08x} {json}", crc32fast::hash(json.as_bytes()))
}

/// What a console line holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Line {
    Record(Box<Record>),
    /// It carries the prefix but its checksum or JSON is wrong.
    Garbled(String),
    /// Anything else (kernel messages, shell output).
    Other,
}

/// Parses one console line.
pub fn decode(line: &str) -> Line {
    let line = line.trim_end_matches(['\r', '\n']);
    let Some(start) = line.find(PREFIX) else {
        return Line::Other;
    };
    let rest = &line[start + PREFIX.len()..];
    let Some((crc, json)) = rest.split_once(' ') else {
        return Line::Garbled("record without checksum".into());
    };
    match u32::from_str_radix(crc, 16) {
        Ok(c) if c == crc32fast::hash(json.as_bytes()) => {}
        _ => return Line::Garbled(format!("checksum mismatch in record: {}", truncate(json))),
    }
    match serde_json::from_str(json) {
        Ok(r) => Line::Record(Box::new(r)),
        Err(e) => Line::Garbled(format!("unreadable record ({e}): {}", truncate(json))),
    }
}

fn truncate(s: &str) -> &str {
    match s.char_indices().nth(120) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let r = Record::Fatal {
            message: "no tracefs".into(),
        };
        let line = encode(&r);
        assert_eq!(decode(&line), Line::Record(Box::new(r.clone())));
        // Kernel text before the record on the same line does not hide it.
        assert_eq!(
            decode(&format!("[ 1.0] x{line}\r\n")),
            Line::Record(Box::new(r))
        );
    }

    #[test]
    fn detects_garbled_lines() {
        let line = encode(&Record::Done);
        let flipped = line.replace("done", "dome");
        assert!(matches!(decode(&flipped), Line::Garbled(_)));
        assert!(matches!(decode("@@tracelab zz {}"), Line::Garbled(_)));
        assert!(matches!(decode("@@tracelab"), Line::Other));
        assert_eq!(decode("[    0.000000] Linux version 6.12"), Line::Other);
    }

    proptest::proptest! {
        /// A console line is a record, garbled or other: never a panic, whatever bytes
        /// the guest or the kernel printed.
        #[test]
        fn any_console_line_decodes(line in "\\PC{0,200}", tail in "\\PC{0,40}") {
            let _ = decode(&line);
            let _ = decode(&format!("{PREFIX}{line}"));
            let _ = decode(&format!("{PREFIX}deadbeef {line}"));
            // A record with kernel output run into its end is garbled, never misread.
            let encoded = encode(&Record::Fatal { message: line.clone() });
            proptest::prop_assert_eq!(decode(&encoded), Line::Record(Box::new(Record::Fatal { message: line.clone() })));
            if !tail.is_empty() {
                let joined = format!("{encoded}{tail}");
                proptest::prop_assert!(!matches!(decode(&joined), Line::Record(_)));
            }
        }
    }
}
