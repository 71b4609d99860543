//! `tracelab`: parses the command line, hands it to [`tracelab::cli::dispatch`], and maps
//! the outcome to one exit status ([`Exit`]).

use clap::Parser;
use tracelab::cli::{Cli, Exit};

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let command_line: Vec<String> = std::env::args().collect();
    match tracelab::cli::dispatch(cli, command_line) {
        Ok(exit) => exit.into(),
        Err(e) if e.is::<tracelab::interrupt::Interrupted>() => {
            eprintln!("tracelab: {e:#}");
            Exit::Interrupted.into()
        }
        Err(e) => {
            eprintln!("tracelab: error: {e:#}");
            Exit::Error.into()
        }
    }
}
