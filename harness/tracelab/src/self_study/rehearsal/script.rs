//! What the rehearsal guest runs: the nightly steps of `docs/nightly.md` that a
//! bare-metal runner does itself.

use crate::guest::userland::{Step, RESULTS};

/// The night labels of the two nightly passes (the guest's clock starts at 2020-01-01).
pub const NIGHTS: [&str; 2] = ["2020-01-01-rehearsal-1", "2020-01-01-rehearsal-2"];

/// In order: `doctor`, then per night `run --target local` into the store, then `history`,
/// the last night against the one before with `compare`, `show`, `report` and `publish`.
pub(super) fn steps(run_flags: &[String]) -> Vec<Step> {
    let s = |name: &str, args: &[&str]| {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        Step::tracelab(name, &args)
    };
    let store = format!("{RESULTS}/store");
    let mut steps = vec![s("doctor", &["doctor"])];
    for (i, night) in NIGHTS.iter().enumerate() {
        let out = format!("{RESULTS}/night-{}", i + 1);
        let mut args: Vec<String> = [
            "run", "--target", "local", "--out", &out, "--store", &store, "--night", night,
        ]
        .iter()
        .map(|a| a.to_string())
        .collect();
        args.extend(run_flags.iter().cloned());
        steps.push(Step::tracelab(&format!("run-{}", i + 1), &args));
    }
    let (one, two) = (format!("{RESULTS}/night-1"), format!("{RESULTS}/night-2"));
    steps.extend([
        s("history", &["history", &store, "--threshold", "1%"]),
        s("compare", &["compare", &one, &two, "--threshold", "1%"]),
        s("show", &["show", &two]),
        s(
            "report",
            &["report", &one, &two, "--out", &format!("{RESULTS}/report")],
        ),
        s(
            "publish",
            &["publish", &store, "--out", &format!("{RESULTS}/site")],
        ),
    ]);
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nightly_steps_twice_with_the_users_flags() {
        let steps = steps(&["--mechanisms".into(), "kprobe,fprobe".into()]);
        let names: Vec<&str> = steps.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            ["doctor", "run-1", "run-2", "history", "compare", "show", "report", "publish"]
        );
        assert!(steps[1].script.contains(
            "'run' '--target' 'local' '--out' '/results/night-1' '--store' '/results/store' '--night' '2020-01-01-rehearsal-1' '--mechanisms' 'kprobe,fprobe'"
        ), "{}", steps[1].script);
    }
}
