//! The measurement agent: runs a plan on the kernel it is running on and prints one framed
//! record per line on stdout. Inside a guest, stdout is the serial console the host reads.

use anyhow::{Context, Result};
use clap::Parser;
use std::io::Write;
use std::path::PathBuf;
use tracelab_agent::Completion;
use tracelab_model::plan::AgentPlan;
use tracelab_model::protocol::{encode, Record};

#[derive(Parser)]
#[command(version, about = "tracelab's measurement agent (runs inside guests)")]
struct Args {
    /// The plan to run (JSON written by the host).
    #[arg(long, required_unless_present_any = ["state", "plan_on_stdin"])]
    plan: Option<PathBuf>,
    /// Say `ready` and read the plan as one line of JSON on standard input (a guest's
    /// console): the host keeps a guest at this point and restores it for each run.
    #[arg(long, conflicts_with_all = ["plan", "state"])]
    plan_on_stdin: bool,
    /// Print the tracing state the lab touches (probes, tracer, filters, knobs, BPF
    /// objects) as one JSON line, and exit: what a test compares with the boot's.
    #[arg(long, conflicts_with = "plan")]
    state: bool,
}

fn emit(record: &Record) {
    // One write per line, so kernel console output cannot split a record.
    let line = format!("{}\n", encode(record));
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(line.as_bytes());
    let _ = out.flush();
}

/// Where the plan comes from.
enum Source {
    File(PathBuf),
    Stdin,
}

fn read_plan(source: &Source) -> Result<AgentPlan> {
    let (text, from) = match source {
        Source::File(path) => (
            std::fs::read_to_string(path)
                .with_context(|| format!("reading plan {}", path.display()))?,
            path.display().to_string(),
        ),
        Source::Stdin => {
            tracelab_agent::console::raw_input();
            emit(&Record::Ready);
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .context("reading the plan from standard input")?;
            tracelab_agent::console::wait_for_a_round_time();
            (line, "standard input".to_string())
        }
    };
    serde_json::from_str(&text).with_context(|| format!("parsing the plan from {from}"))
}

fn run(source: &Source) -> Result<Completion> {
    tracelab_agent::run(&read_plan(source)?, &mut emit)
}

fn main() {
    let args = Args::parse();
    let source = match (args.plan, args.plan_on_stdin) {
        (Some(path), _) => Source::File(path),
        (None, true) => Source::Stdin,
        (None, false) => {
            let state = tracelab_agent::kernel_state::capture();
            println!("{}", serde_json::to_string(&state).unwrap_or_default());
            return;
        }
    };
    match run(&source) {
        Ok(Completion::Done) => {}
        // The shell's convention for a run stopped by SIGINT.
        Ok(Completion::Interrupted) => std::process::exit(130),
        Err(e) => {
            emit(&Record::Fatal {
                message: format!("{e:#}"),
            });
            std::process::exit(1);
        }
    }
}
