//! The command: parse, run, and turn the result into a message and an exit status.

use std::process::ExitCode;

use clap::{CommandFactory, Parser, error::ErrorKind};

use tiburoncin::Outcome;
use tiburoncin::cli::{Cli, Command, ReplayArgs};
use tiburoncin::config::{Config, ReplayConfig};
use tiburoncin::error::Error;

fn main() -> ExitCode {
    // A usage error prints one line and the usage, and exits with 2.
    let mut cli = Cli::parse();
    if let Some(Command::Replay(args)) = cli.command.take() {
        return replay(args);
    }
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

fn replay(args: ReplayArgs) -> ExitCode {
    let config = match ReplayConfig::from_args(args) {
        Ok(config) => config,
        Err(reason) => replay_usage_error(&reason),
    };
    match tiburoncin::replay::run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error @ Error::ChooseStream { .. }) => replay_usage_error(&error.to_string()),
        Err(error) => report(error),
    }
}

/// One line and the replay usage, exit 2, as clap does for its own errors.
fn replay_usage_error(reason: &str) -> ! {
    let mut command = Cli::command();
    command.build();
    match command.find_subcommand_mut("replay") {
        Some(replay) => replay.error(ErrorKind::ValueValidation, reason).exit(),
        None => command.error(ErrorKind::ValueValidation, reason).exit(),
    }
}

fn report(error: Error) -> ExitCode {
    eprintln!("{error}");
    ExitCode::from(error.exit_code())
}
