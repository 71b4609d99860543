//! `tracelab chaos`: seeded random kills, each followed by checks that the lab left
//! nothing behind and lost nothing.
//!
//! A kill is one of [`Kind::ALL`], at a point drawn from the seed. Kills of the agent run
//! in one guest ([`in_guest`]): the agent is signalled mid-run by the guest's shell, then a
//! clean rerun goes in the same guest state and the kernel's tracing state is compared
//! with the boot's. Kills of the host ([`host`]) signal a real `tracelab run` or `matrix`
//! (or its QEMU, or panic its guest) and check its results directory: every cell it
//! reported finished is on disk and unchanged, the directory loads, no QEMU outlives it.

mod host;
mod in_guest;

use anyhow::{bail, Result};
use std::path::PathBuf;
use std::time::Instant;
use tracelab_kernels::KernelVersion;
use tracelab_model::arch::Arch;
use tracelab_model::mechanism::MechanismKind;

/// What is killed, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    AgentSigint,
    AgentSigterm,
    AgentSigkill,
    QemuSigkill,
    RunSigint,
    RunSigkill,
    MatrixSigint,
    MatrixSigkill,
    /// The guest kernel panics (sysrq `c`) during a `tracelab run`.
    GuestPanic,
}

impl Kind {
    pub const ALL: [Kind; 9] = [
        Kind::AgentSigint,
        Kind::AgentSigterm,
        Kind::AgentSigkill,
        Kind::QemuSigkill,
        Kind::RunSigint,
        Kind::RunSigkill,
        Kind::MatrixSigint,
        Kind::MatrixSigkill,
        Kind::GuestPanic,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::AgentSigint => "agent SIGINT",
            Kind::AgentSigterm => "agent SIGTERM",
            Kind::AgentSigkill => "agent SIGKILL",
            Kind::QemuSigkill => "QEMU SIGKILL",
            Kind::RunSigint => "run SIGINT",
            Kind::RunSigkill => "run SIGKILL",
            Kind::MatrixSigint => "matrix SIGINT",
            Kind::MatrixSigkill => "matrix SIGKILL",
            Kind::GuestPanic => "guest panic",
        }
    }

    fn in_guest(self) -> bool {
        matches!(
            self,
            Kind::AgentSigint | Kind::AgentSigterm | Kind::AgentSigkill
        )
    }
}

/// Mechanisms the killed runs use: every kind of kernel state the lab creates (probes at
/// entry and inside, return probes, fprobes, both tracers, BPF links of three kinds).
const POOL: [MechanismKind; 10] = [
    MechanismKind::Kprobe,
    MechanismKind::KprobeOffset,
    MechanismKind::Kretprobe,
    MechanismKind::Fprobe,
    MechanismKind::FprobeExit,
    MechanismKind::Function,
    MechanismKind::FunctionGraph,
    MechanismKind::BpfKprobe,
    MechanismKind::BpfKprobeMulti,
    MechanismKind::BpfFentry,
];

/// Mechanisms per killed run.
const PER_RUN: usize = 3;

/// One kill: what, in which run, at which point.
#[derive(Debug, Clone, PartialEq)]
pub struct Kill {
    /// 1-based, in schedule order.
    pub index: u32,
    pub kind: Kind,
    pub mechanisms: Vec<MechanismKind>,
    /// Where in the run it strikes, per mille of the length of the same run unkilled (in
    /// guest time for the agent's runs, real time for the host's). A panic is set off
    /// from inside the guest, at the point × 6 ms of guest time.
    pub point: u32,
}

impl Kill {
    pub fn describe(&self) -> String {
        let names: Vec<&str> = self.mechanisms.iter().map(|m| m.name()).collect();
        format!(
            "kill {} ({}, at {:.1}%, {})",
            self.index,
            self.kind.name(),
            f64::from(self.point) / 10.0,
            names.join(",")
        )
    }
}

/// The kills of a seed: kinds in a seeded order that covers all of [`Kind::ALL`] every
/// nine kills, each with its own mechanisms and point.
pub fn schedule(kills: u32, seed: u64) -> Vec<Kill> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut kinds = Vec::new();
    let mut out = Vec::new();
    for index in 1..=kills {
        if kinds.is_empty() {
            kinds = Kind::ALL.to_vec();
            rng.shuffle(&mut kinds);
        }
        let kind = kinds.pop().unwrap_or(Kind::AgentSigkill);
        let mut pool = POOL.to_vec();
        rng.shuffle(&mut pool);
        let mut mechanisms: Vec<MechanismKind> = pool.into_iter().take(PER_RUN).collect();
        mechanisms.sort_by_key(|m| MechanismKind::ALL.iter().position(|x| x == m));
        out.push(Kill {
            index,
            kind,
            mechanisms,
            point: rng.u32(0..1000),
        });
    }
    out
}

/// A chaos run's settings.
#[derive(Debug, Clone)]
pub struct Chaos {
    pub kills: u32,
    pub seed: u64,
    pub arch: Arch,
    pub kernel: KernelVersion,
    /// Where the killed runs write (a temporary directory unless kept).
    pub work: PathBuf,
    /// The `tracelab` binary the host kills run.
    pub tracelab: PathBuf,
}

/// What one kill and its checks found.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub kill: Option<Kill>,
    /// What the kernel or host still held after the rerun, one line each.
    pub leftovers: Vec<String>,
    /// Cells the killed run reported finished that are gone or no longer load.
    pub lost: usize,
    /// Results that do not load, changed after they were written, or say something untrue
    /// (e.g. a run stopped by SIGINT that claims to have finished).
    pub corrupt: Vec<String>,
    /// What happened, for the log: exit status, cells finished, what the rerun removed.
    pub note: String,
}

/// The one-line verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub kills: usize,
    pub leftovers: usize,
    pub lost: usize,
    pub corrupt: usize,
}

impl Summary {
    pub fn of(outcomes: &[Outcome]) -> Summary {
        Summary {
            kills: outcomes.len(),
            leftovers: outcomes.iter().map(|o| o.leftovers.len()).sum(),
            lost: outcomes.iter().map(|o| o.lost).sum(),
            corrupt: outcomes.iter().map(|o| o.corrupt.len()).sum(),
        }
    }

    pub fn clean(&self) -> bool {
        self.leftovers == 0 && self.lost == 0 && self.corrupt == 0
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "kills {}, leftovers {}, lost cells {}, corrupt results {}",
            self.kills, self.leftovers, self.lost, self.corrupt
        )
    }
}

/// Runs the schedule: the guest kills in one guest, then each host kill; `report` sees
/// every outcome as it is known.
pub fn run(chaos: &Chaos, report: &mut dyn FnMut(&Outcome)) -> Result<Vec<Outcome>> {
    if chaos.kills == 0 {
        bail!("--kills must be at least 1");
    }
    let plan = schedule(chaos.kills, chaos.seed);
    let (guest, host): (Vec<Kill>, Vec<Kill>) = plan.into_iter().partition(|k| k.kind.in_guest());
    let mut outcomes = Vec::new();
    if !guest.is_empty() {
        for o in in_guest::run(chaos, &guest)? {
            report(&o);
            outcomes.push(o);
        }
    }
    // One unkilled run of each shape first: a kill's point is a fraction of its length.
    let mut lengths: Vec<(bool, std::time::Duration)> = Vec::new();
    for kill in &host {
        let matrix = host::is_matrix(kill.kind);
        let length = match lengths.iter().find(|(m, _)| *m == matrix) {
            Some((_, l)) => *l,
            None => {
                let l = host::calibrate(chaos, kill)?;
                lengths.push((matrix, l));
                l
            }
        };
        let started = Instant::now();
        let mut o = host::run(chaos, kill, length)?;
        o.note = format!("{} ({:.0} s)", o.note, started.elapsed().as_secs_f64());
        report(&o);
        outcomes.push(o);
    }
    outcomes.sort_by_key(|o| o.kill.as_ref().map(|k| k.index));
    Ok(outcomes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_gives_one_schedule_and_nine_kills_cover_every_kind() {
        let a = schedule(18, 7);
        assert_eq!(a, schedule(18, 7));
        assert_ne!(a, schedule(18, 8));
        for round in a.chunks(9) {
            for kind in Kind::ALL {
                assert!(round.iter().any(|k| k.kind == kind), "{kind:?} missing");
            }
        }
        for k in &a {
            assert_eq!(k.mechanisms.len(), PER_RUN);
            assert!(k.point < 1000);
        }
    }

    #[test]
    fn the_summary_line_counts_every_finding() {
        let outcomes = vec![
            Outcome {
                leftovers: vec!["probe p:tracelab/kprobe".into()],
                ..Outcome::default()
            },
            Outcome {
                lost: 2,
                corrupt: vec!["cells/003-kprobe.json changed".into()],
                ..Outcome::default()
            },
        ];
        let s = Summary::of(&outcomes);
        assert_eq!(
            s.to_string(),
            "kills 2, leftovers 1, lost cells 2, corrupt results 1"
        );
        assert!(!s.clean());
        assert!(Summary::of(&[Outcome::default()]).clean());
    }
}
