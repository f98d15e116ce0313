//! The command: parse, run, and turn the result into a message and an exit status.

use std::process::ExitCode;

use tiburoncin::Outcome;
use tiburoncin::cli::args::{self as cli, Cli, Command, ReplayArgs};
use tiburoncin::cli::config::{Config, ReplayConfig};
use tiburoncin::error::Error;

fn main() -> ExitCode {
    // A usage error prints one line and the usage, and exits with 2.
    let mut cli = Cli::parse_or_exit();
    if let Some(Command::Replay(args)) = cli.command.take() {
        return replay(args);
    }
    let config = Config::from_cli(cli).unwrap_or_else(|reason| cli::invalid(reason));
    match tiburoncin::run(config) {
        Ok(Outcome::Completed(_)) => ExitCode::SUCCESS,
        // The failure was reported on stderr the moment it happened.
        Ok(Outcome::Failed(_)) => ExitCode::FAILURE,
        Ok(Outcome::Cancelled(signal, _)) => report(Error::Cancelled { signal }),
        Err(error) => report(error),
    }
}

fn replay(args: ReplayArgs) -> ExitCode {
    // clap reads a `--` with nothing after it as no command at all.
    if args.command.is_none() && std::env::args_os().last().is_some_and(|a| a == "--") {
        cli::invalid_replay("-- must be followed by a command to run");
    }
    let config = match ReplayConfig::from_args(args) {
        Ok(config) => config,
        Err(reason) => cli::invalid_replay(&reason),
    };
    match tiburoncin::replay::run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error @ (Error::ChooseStream { .. } | Error::NoSuchStream { .. })) => {
            cli::invalid_replay(&error.to_string())
        }
        Err(error) => report(error),
    }
}

fn report(error: Error) -> ExitCode {
    eprintln!("{error}");
    ExitCode::from(error.exit_code())
}
