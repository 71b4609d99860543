//! What an attached program does each time it runs: an axis of BPF cells, and of the
//! tracefs mechanisms for the stack trace.

use strum::{IntoStaticStr, VariantArray};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, IntoStaticStr, VariantArray)]
#[strum(serialize_all = "lowercase")]
pub enum Payload {
    /// Returns at once: the mechanism's floor.
    Empty,
    /// Increments a per-CPU counter.
    Count,
    /// Reserves and submits an event to a BPF ring buffer that user space drains.
    Record,
    /// Takes the kernel stack at every hit: `bpf_get_stack` into a per-CPU buffer for
    /// BPF; ftrace's `stacktrace` option (`func_stack_trace` for the function tracer) for
    /// the tracefs mechanisms, whose other cells carry no payload.
    Stacktrace,
    /// `bpf_get_stackid` into a stack map (BPF only): the profilers' way, one hash
    /// lookup per hit instead of a copy.
    Stackid,
}

crate::named!(Payload, "payload");

impl Payload {
    pub const ALL: [Payload; 5] = [
        Payload::Empty,
        Payload::Count,
        Payload::Record,
        Payload::Stacktrace,
        Payload::Stackid,
    ];

    /// Whether it takes a stack trace (and its cells record the stack depth).
    pub fn takes_stack(self) -> bool {
        matches!(self, Payload::Stacktrace | Payload::Stackid)
    }

    /// Parses a comma-separated list (`all` selects every payload).
    pub fn parse_list(s: &str) -> Result<Vec<Payload>, crate::names::UnknownName> {
        crate::names::parse_list(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_errors_list_valid_ones() {
        for p in Payload::ALL {
            assert_eq!(p.name().parse(), Ok(p));
            assert_eq!(
                serde_json::to_string(&p).ok(),
                Some(format!("\"{}\"", p.name()))
            );
        }
        assert_eq!(Payload::parse_list("all").map(|v| v.len()), Ok(5));
        let err = Payload::parse_list("count,log").unwrap_err().to_string();
        assert_eq!(
            err,
            "unknown payload `log` (valid: empty, count, record, stacktrace, stackid)"
        );
    }
}
