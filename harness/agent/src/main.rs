//! The measurement agent: runs a plan on the kernel it is running on and prints one framed
//! record per line on stdout. Inside a guest, stdout is the serial console the host reads.

use anyhow::{Context, Result};
use clap::Parser;
use std::io::Write;
use std::path::{Path, PathBuf};
use tracelab_agent::Completion;
use tracelab_model::plan::AgentPlan;
use tracelab_model::protocol::{encode, Record};

#[derive(Parser)]
#[command(version, about = "tracelab's measurement agent (runs inside guests)")]
struct Args {
    /// The plan to run (JSON written by the host).
    #[arg(long, required_unless_present = "state")]
    plan: Option<PathBuf>,
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

fn run(path: &Path) -> Result<Completion> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading plan {}", path.display()))?;
    let plan: AgentPlan =
        serde_json::from_str(&text).with_context(|| format!("parsing plan {}", path.display()))?;
    tracelab_agent::run(&plan, &mut emit)
}

fn main() {
    let args = Args::parse();
    let Some(plan) = args.plan else {
        let state = tracelab_agent::kernel_state::capture();
        println!("{}", serde_json::to_string(&state).unwrap_or_default());
        return;
    };
    match run(&plan) {
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
