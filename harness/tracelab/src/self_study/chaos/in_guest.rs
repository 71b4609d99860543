//! Kills of the agent, all in one guest: for each, a calibration run (unkilled: it must
//! leave nothing either), the run killed by the shell at its point, and a clean rerun;
//! the tracing state after each is compared with the boot's.
//!
//! The guest starts with `tracing_on` 0, as a host with tracing off would be: the lab
//! must put back what it found, not what a fresh boot has.

use super::{Chaos, Kill, Kind, Outcome};
use crate::guest::console::{self, Event, Timeouts};
use crate::guest::initramfs;
use crate::guest::qemu::{Accel, Mode, Setup};
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;
use tracelab_kernels::Catalog;
use tracelab_model::kconfig;
use tracelab_model::kernel_state::KernelState;
use tracelab_model::plan::AgentPlan;
use tracelab_model::protocol::{decode, Line, Record, PREFIX};
use tracelab_model::schema::{Status, Unit};

/// Calls per timed loop of a killed run: short, so a kill lands in every phase.
const CALLS: u64 = 2_000;

/// The marker of the script's report lines.
const MARK: &str = "@@chaos ";

/// Mounts, the state and clock helpers.
const PRELUDE: &str = r#"#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
/bin/busybox --install -s /bin
export PATH=/bin
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tracefs tracefs /sys/kernel/tracing
mount -t debugfs debugfs /sys/kernel/debug
echo 0 > /sys/kernel/tracing/tracing_on
state() { echo "@@chaos $1 state $(/tracelab-agent --state)"; }
# Milliseconds of uptime (guest time; /proc/uptime has 10 ms steps).
now() { read up idle < /proc/uptime; echo $(( ${up%.*} * 1000 + (1${up#*.} - 100) * 10 )); }
# Records of a run's output, renamed so the host's console reader passes them on.
records() { sed -n "s/^@@tracelab /@@chaos $1 rec /p" $2; }
state boot
"#;

fn plan(kill: &Kill, config: &BTreeMap<String, String>) -> AgentPlan {
    AgentPlan {
        mechanisms: kill.mechanisms.clone(),
        workload: "getppid".into(),
        function: None,
        calls: CALLS,
        repeats: 2,
        unit: Unit::Insn,
        kernel_config: config.clone(),
        payloads: vec![tracelab_model::payload::Payload::Count],
        stacks: vec![1],
        functions: vec![tracelab_model::cell_id::Functions::ONE],
        other_tracers: vec![0],
        alone: true,
        fault: None,
        adaptive: None,
        peer_cpu: None,
        skip: Vec::new(),
        attribution: false,
    }
}

/// The rerun: one baseline cell, enough for the agent to clear what a kill left.
fn rerun_plan(config: &BTreeMap<String, String>) -> AgentPlan {
    AgentPlan {
        mechanisms: vec![tracelab_model::mechanism::MechanismKind::Baseline],
        calls: 100,
        repeats: 1,
        ..plan(
            &Kill {
                index: 0,
                kind: Kind::AgentSigkill,
                mechanisms: Vec::new(),
                point: 0,
            },
            config,
        )
    }
}

fn signal(kind: Kind) -> &'static str {
    match kind {
        Kind::AgentSigint => "INT",
        Kind::AgentSigterm => "TERM",
        _ => "KILL",
    }
}

/// The guest's `/init`: every kill in order, then power off.
fn script(kills: &[Kill]) -> String {
    let mut s = PRELUDE.to_string();
    for k in kills {
        let i = k.index;
        // Calibration: the same plan unkilled; its length places the kill.
        let _ = write!(
            s,
            r#"t0=$(now)
/tracelab-agent --plan /plan{i}.json > /tmp/cal 2>&1
st=$?
dur=$(( $(now) - t0 ))
echo "@@chaos {i} calibrated $st $dur"
state {i}.calibrated
/tracelab-agent --plan /plan{i}.json > /tmp/k 2>&1 &
pid=$!
usleep $(( dur * {point} ))
kill -{sig} $pid 2>/dev/null && echo "@@chaos {i} signalled"
wait $pid
echo "@@chaos {i} exit $?"
records {i} /tmp/k
state {i}.killed
/tracelab-agent --plan /rerun.json > /tmp/r 2>&1
echo "@@chaos {i} rerun $?"
records {i}.rerun /tmp/r
state {i}
"#,
            point = k.point,
            sig = signal(k.kind)
        );
    }
    s.push_str("echo \"@@chaos end\"\nreboot -f\n");
    s
}

/// What the guest reported about one kill.
#[derive(Debug, Default)]
struct Report {
    calibrated: Option<(i32, u64)>,
    signalled: bool,
    exit: Option<i32>,
    records: Vec<Line>,
    rerun: Option<i32>,
    rerun_records: Vec<Line>,
    states: BTreeMap<String, KernelState>,
    bad_lines: Vec<String>,
}

/// Sorts the guest's `@@chaos` lines by kill.
fn parse(lines: &[String]) -> (Option<KernelState>, BTreeMap<u32, Report>, bool) {
    let mut boot = None;
    let mut reports: BTreeMap<u32, Report> = BTreeMap::new();
    let mut ended = false;
    for line in lines {
        let Some(at) = line.find(MARK) else { continue };
        let rest = &line[at + MARK.len()..];
        if rest.trim() == "end" {
            ended = true;
            continue;
        }
        let Some((tag, rest)) = rest.split_once(' ') else {
            continue;
        };
        let (index, phase) = match tag.split_once('.') {
            Some((i, p)) => (i, p),
            None => (tag, ""),
        };
        let (word, value) = rest.split_once(' ').unwrap_or((rest, ""));
        if index == "boot" {
            boot = serde_json::from_str(value).ok();
            continue;
        }
        let Ok(index) = index.parse::<u32>() else {
            continue;
        };
        let r = reports.entry(index).or_default();
        match (phase, word) {
            (_, "state") => match serde_json::from_str(value) {
                Ok(s) => {
                    r.states.insert(phase.to_string(), s);
                }
                Err(e) => r.bad_lines.push(format!("state {phase}: {e}")),
            },
            ("", "calibrated") => {
                let mut v = value.split_whitespace().map(|w| w.parse::<i64>().ok());
                if let (Some(Some(st)), Some(Some(ms))) = (v.next(), v.next()) {
                    r.calibrated = Some((st as i32, ms.max(0) as u64));
                }
            }
            ("", "signalled") => r.signalled = true,
            ("", "exit") => r.exit = value.trim().parse().ok(),
            ("", "rerun") => r.rerun = value.trim().parse().ok(),
            ("", "rec") => r.records.push(decode(&format!("{PREFIX}{value}"))),
            ("rerun", "rec") => r.rerun_records.push(decode(&format!("{PREFIX}{value}"))),
            _ => {}
        }
    }
    (boot, reports, ended)
}

/// Judges one kill from its report.
fn judge(kill: &Kill, boot: &KernelState, r: Option<&Report>) -> Outcome {
    let mut o = Outcome {
        kill: Some(kill.clone()),
        ..Outcome::default()
    };
    let Some(r) = r else {
        o.corrupt
            .push("the guest never reached this kill (see the earlier ones)".into());
        return o;
    };
    o.corrupt.extend(r.bad_lines.iter().cloned());
    match r.states.get("calibrated") {
        Some(s) => o.leftovers.extend(
            s.leftovers(boot)
                .into_iter()
                .map(|l| format!("after an unkilled run: {l}")),
        ),
        None => o.corrupt.push("no state after the calibration run".into()),
    }
    match r.states.get("") {
        Some(s) => o.leftovers.extend(s.leftovers(boot)),
        None => o.leftovers.push("no state after the rerun".into()),
    }
    if r.rerun != Some(0) {
        o.leftovers.push(format!(
            "the clean rerun failed (exit {:?}): {}",
            r.rerun,
            fatal(&r.rerun_records).unwrap_or_default()
        ));
    }
    let mut cells = 0;
    let mut done = false;
    let mut interrupted = false;
    for line in &r.records {
        match line {
            Line::Record(rec) => match rec.as_ref() {
                Record::Cell(m) => {
                    cells += 1;
                    interrupted |= m.status == Status::Failed
                        && m.reason
                            .as_deref()
                            .is_some_and(|x| x.contains("interrupted"));
                }
                Record::Done => done = true,
                _ => {}
            },
            Line::Garbled(why) => o.corrupt.push(format!("garbled record: {why}")),
            Line::Other => {}
        }
    }
    let exit = r.exit.unwrap_or(-1);
    // A run that claims to have finished must have; one stopped by SIGINT or SIGTERM
    // after it began must say so, in the cell it cut short or by its exit status.
    if exit == 0 && !done {
        o.corrupt
            .push("exit 0 without a `done` record after a signal".into());
    }
    if r.signalled && kill.kind != Kind::AgentSigkill && exit == 130 && cells > 0 && !interrupted {
        let last_failed = r.records.iter().rev().find_map(|l| match l {
            Line::Record(rec) => match rec.as_ref() {
                Record::Fatal { message } => Some(message.clone()),
                _ => None,
            },
            _ => None,
        });
        if last_failed.is_none() {
            o.corrupt
                .push("interrupted (exit 130) without saying so in a record".into());
        }
    }
    let removed: Vec<String> = r
        .rerun_records
        .iter()
        .find_map(|l| match l {
            Line::Record(rec) => match rec.as_ref() {
                Record::Hello {
                    leftovers_removed, ..
                } => Some(leftovers_removed.clone()),
                _ => None,
            },
            _ => None,
        })
        .unwrap_or_default();
    let left_by_kill = r
        .states
        .get("killed")
        .map(|s| s.leftovers(boot).len())
        .unwrap_or(0);
    o.note = format!(
        "calibrated {} ms; {}exit {exit}, {cells} cells reported; the kill left {left_by_kill} change(s); the rerun {}",
        r.calibrated.map(|c| c.1).unwrap_or(0),
        if r.signalled { "" } else { "finished before the signal; " },
        if removed.is_empty() {
            "removed nothing".to_string()
        } else {
            format!("removed {}", removed.join(", "))
        }
    );
    o
}

fn fatal(lines: &[Line]) -> Option<String> {
    lines.iter().find_map(|l| match l {
        Line::Record(rec) => match rec.as_ref() {
            Record::Fatal { message } => Some(message.clone()),
            _ => None,
        },
        _ => None,
    })
}

/// Boots the guest with every agent kill and judges each.
pub(super) fn run(chaos: &Chaos, kills: &[Kill]) -> Result<Vec<Outcome>> {
    let catalog = Catalog::new(None)?;
    let kernel = catalog.fetch_kernel(chaos.kernel, chaos.arch, false)?;
    let busybox = catalog.fetch_busybox(chaos.arch)?;
    let agent = crate::target::vm::agent_binary(chaos.arch, None)?;
    let config_text = std::fs::read_to_string(&kernel.config)
        .with_context(|| format!("reading kernel config {}", kernel.config.display()))?;
    let config = kconfig::relevant(
        &kconfig::parse(&config_text),
        &tracelab_agent::mechanism::relevant_options(),
    );
    let mut files: Vec<(String, String)> = kills
        .iter()
        .map(|k| {
            Ok((
                format!("plan{}.json", k.index),
                serde_json::to_string(&plan(k, &config))?,
            ))
        })
        .collect::<Result<_>>()?;
    files.push((
        "rerun.json".into(),
        serde_json::to_string(&rerun_plan(&config))?,
    ));
    let mut archive = initramfs::build_with_init(&agent, &busybox, &files[0].1, &script(kills))?;
    archive.extend(initramfs::extra_files(&files)?);
    let initrd = chaos.work.join("chaos-initrd.cpio");
    std::fs::write(&initrd, archive).with_context(|| format!("writing {}", initrd.display()))?;
    let setup = Setup::new(chaos.arch, Mode::Icount, Accel::Tcg);
    let mut lines = Vec::new();
    // The script reports no framed record, so only the overall bound applies.
    let bound = Duration::from_secs(120 + 60 * kills.len() as u64);
    let outcome = console::run(
        setup.command(&kernel.image, &initrd),
        Timeouts {
            boot: bound,
            record: bound,
        },
        &mut |e| {
            if let Event::Text(t) = e {
                lines.push(t);
            }
            Ok(())
        },
    )?;
    let (boot, reports, ended) = parse(&lines);
    let boot = boot.with_context(|| {
        format!(
            "the chaos guest reported no boot state ({}); console tail:\n{}",
            outcome.ending.reason(),
            outcome.tail.join("\n")
        )
    })?;
    let mut outcomes: Vec<Outcome> = kills
        .iter()
        .map(|k| judge(k, &boot, reports.get(&k.index)))
        .collect();
    if !ended {
        if let Some(last) = outcomes.last_mut() {
            last.corrupt.push(format!(
                "the guest stopped before the end of the script ({})",
                outcome.ending.reason()
            ));
        }
    }
    Ok(outcomes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracelab_model::mechanism::MechanismKind;

    fn kill(kind: Kind) -> Kill {
        Kill {
            index: 3,
            kind,
            mechanisms: vec![MechanismKind::Kprobe],
            point: 400,
        }
    }

    fn state(tracer: &str) -> String {
        serde_json::to_string(&KernelState {
            current_tracer: tracer.into(),
            ..KernelState::default()
        })
        .unwrap()
    }

    #[test]
    fn the_script_signals_at_the_calibrated_point() {
        let s = script(&[kill(Kind::AgentSigterm)]);
        assert!(s.contains("usleep $(( dur * 400 ))"), "{s}");
        assert!(s.contains("kill -TERM $pid"), "{s}");
        assert!(s.ends_with("reboot -f\n"));
    }

    #[test]
    fn a_kill_that_left_a_tracer_behind_is_a_leftover() {
        let lines: Vec<String> = [
            format!("@@chaos boot state {}", state("nop")),
            "@@chaos 3 calibrated 0 1500".into(),
            format!("@@chaos 3.calibrated state {}", state("nop")),
            "@@chaos 3 signalled".into(),
            "@@chaos 3 exit 137".into(),
            format!("@@chaos 3.killed state {}", state("function")),
            "@@chaos 3 rerun 0".into(),
            format!("@@chaos 3 state {}", state("function")),
            "@@chaos end".into(),
        ]
        .into();
        let (boot, reports, ended) = parse(&lines);
        assert!(ended);
        let o = judge(&kill(Kind::AgentSigkill), &boot.unwrap(), reports.get(&3));
        assert_eq!(o.leftovers, ["current_tracer function (was nop)"]);
        assert!(o.corrupt.is_empty(), "{:?}", o.corrupt);
        assert!(o.note.contains("exit 137"), "{}", o.note);
    }

    #[test]
    fn a_garbled_record_and_a_missing_report_are_corrupt() {
        let lines: Vec<String> = [
            format!("@@chaos boot state {}", state("nop")),
            "@@chaos 3 rec 00000000 {}".into(),
        ]
        .into();
        let (boot, reports, _) = parse(&lines);
        let boot = boot.unwrap();
        let o = judge(&kill(Kind::AgentSigkill), &boot, reports.get(&3));
        assert!(o.corrupt.iter().any(|c| c.contains("garbled")), "{o:?}");
        let o = judge(&kill(Kind::AgentSigkill), &boot, None);
        assert_eq!(o.corrupt.len(), 1);
    }
}
