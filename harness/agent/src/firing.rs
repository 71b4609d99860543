//! The one firing rule, for every loop that proves a mechanism fired: the timed loops'
//! event counts and the BPF statistics loops' `run_cnt` alike. Fewer events than the calls
//! make is always an error; more are allowed only where another process may call the
//! function too (natively), never in a guest, where the agent runs alone.

use anyhow::{bail, Result};

/// Events beyond the expected ones that a loop may show: none where the agent runs alone
/// (a guest: nothing else calls the function, so any extra is an error); natively another
/// process may call the function too, so a tiny amount is allowed (and recorded).
pub(crate) fn slack(alone: bool, expected: u64) -> u64 {
    if alone || expected == 0 {
        0
    } else {
        expected / 1000 + 2
    }
}

/// Checks `fired` against `expected` under [`slack`]; `what` names the count in the error
/// (`fired`, `program 1 of 2 ran`).
pub(crate) fn check(what: &str, fired: u64, expected: u64, alone: bool) -> Result<()> {
    if fired < expected || fired > expected + slack(alone, expected) {
        bail!(
            "{what} {fired} times for an expected {expected}: the measurement would not be of this mechanism"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alone_nothing_extra_is_allowed_natively_a_tiny_excess() {
        assert!(check("fired", 1000, 1000, true).is_ok());
        assert!(check("fired", 1001, 1000, true).is_err());
        assert!(check("fired", 999, 1000, true).is_err());
        assert!(check("fired", 1003, 1000, false).is_ok());
        assert!(check("fired", 1004, 1000, false).is_err());
        assert!(check("fired", 999, 1000, false).is_err());
        assert_eq!(slack(false, 0), 0);
    }
}
