//! The command: parse, run, and turn the result into a message and an exit status.

use std::process::ExitCode;

use tiburoncin::Outcome;
use tiburoncin::cli::{self, Cli};
use tiburoncin::config::Config;
use tiburoncin::error::Error;

fn main() -> ExitCode {
    // A usage error prints one line and the usage, and exits with 2.
    let config =
        Config::from_cli(Cli::parse_or_exit()).unwrap_or_else(|reason| cli::invalid(reason));
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
