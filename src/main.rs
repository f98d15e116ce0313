//! The command: parse, run, and turn the result into a message and an exit status.

use std::process::ExitCode;

use clap::{CommandFactory, Parser, error::ErrorKind};

use tiburoncin::Outcome;
use tiburoncin::cli::Cli;
use tiburoncin::config::Config;
use tiburoncin::error::Error;

fn main() -> ExitCode {
    // A usage error prints one line and the usage, and exits with 2.
    let cli = Cli::parse();
    let config = match Config::from_cli(cli) {
        Ok(config) => config,
        Err(reason) => Cli::command()
            .error(ErrorKind::ValueValidation, reason)
            .exit(),
    };
    match tiburoncin::run(config) {
        Ok(Outcome::Completed(_)) => ExitCode::SUCCESS,
        // The failure was reported on stderr the moment it happened.
        Ok(Outcome::Failed(_)) => ExitCode::FAILURE,
        Ok(Outcome::Cancelled(signal, _)) => report(Error::Cancelled { signal }),
        Err(error) => report(error),
    }
}

fn report(error: Error) -> ExitCode {
    eprintln!("{error}");
    ExitCode::from(error.exit_code())
}
