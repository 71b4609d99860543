//! What an attached BPF program does each time it runs: an axis of BPF cells.

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
}

crate::named!(Payload, "payload");

impl Payload {
    pub const ALL: [Payload; 3] = [Payload::Empty, Payload::Count, Payload::Record];

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
        assert_eq!(Payload::parse_list("all").map(|v| v.len()), Ok(3));
        let err = Payload::parse_list("count,log").unwrap_err().to_string();
        assert_eq!(err, "unknown payload `log` (valid: empty, count, record)");
    }
}
