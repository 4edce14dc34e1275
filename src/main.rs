//! The `booster` binary: parse arguments, set up output, run the command, map errors to
//! exit codes. All the work is in the library.

use std::process::ExitCode;

use clap::Parser;

use booster::cli::Cli;
use booster::commands;
use booster::output::{self, Verbosity};

fn main() -> ExitCode {
    // Parse first: clap prints --help and --version to the real stdout.
    let cli = Cli::parse();
    output::guard_stdout();
    let verbosity = match (cli.global.quiet, cli.global.verbose) {
        (true, _) => Verbosity::Quiet,
        (false, 0) => Verbosity::Normal,
        (false, 1) => Verbosity::Verbose,
        (false, _) => Verbosity::Debug,
    };
    output::init(verbosity, cli.global.json);
    match commands::run(cli) {
        Ok(code) => code,
        Err(e) => {
            let mut msg = format!("{e:#}");
            // anyhow's alternate form already joins causes with ": ".
            if msg.is_empty() {
                msg = "unknown error".into();
            }
            tracing::error!("{msg}");
            ExitCode::from(1)
        }
    }
}
