//! The command: parse, run, and turn the result into a message and an exit status.
//! This is the only place that ends the process.

use std::process::ExitCode;

use tiburoncin::Outcome;
use tiburoncin::cli::args::{Command, DemoArgs, ReplayArgs};
use tiburoncin::cli::config::{Config, ReplayConfig};
use tiburoncin::cli::generated;
use tiburoncin::cli::usage::{self, Usage};
use tiburoncin::error::Error;

fn main() -> ExitCode {
    let mut cli = match usage::parse_args() {
        Ok(cli) => cli,
        Err(asked_or_mistake) => return exit_usage(asked_or_mistake),
    };
    match cli.command.take() {
        Some(Command::Replay(args)) => return replay(args),
        Some(Command::Demo(args)) => return demo(args),
        Some(Command::Completions(args)) => return print(generated::completions(args.shell)),
        Some(Command::Man(args)) => return print(generated::man_page(args.subcommand.as_deref())),
        None => {}
    }
    let config = match Config::from_cli(cli) {
        Ok(config) => config,
        Err(reason) => return exit_usage(usage::invalid(&reason)),
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
    // clap reads a `--` with nothing after it as no command at all.
    if args.command.is_none() && std::env::args_os().last().is_some_and(|a| a == "--") {
        return exit_usage(usage::invalid_replay(
            "-- must be followed by a command to run",
        ));
    }
    let config = match ReplayConfig::from_args(args) {
        Ok(config) => config,
        Err(reason) => return exit_usage(usage::invalid_replay(&reason)),
    };
    match tiburoncin::replay::run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error @ (Error::ChooseStream { .. } | Error::NoSuchStream { .. })) => {
            exit_usage(usage::invalid_replay(&error.to_string()))
        }
        Err(error) => report(error),
    }
}

fn demo(args: DemoArgs) -> ExitCode {
    if args.list {
        print!("{}", tiburoncin::demo::list());
        return ExitCode::SUCCESS;
    }
    let demo = match tiburoncin::demo::Demo::from_args(args) {
        Ok(demo) => demo,
        Err(reason) => return exit_usage(usage::invalid_demo(&reason)),
    };
    match tiburoncin::demo::run(demo) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => report(error),
    }
}

fn print(text: Vec<u8>) -> ExitCode {
    match generated::print(&text) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => report(error),
    }
}

/// Help or the version (exit 0), or a usage error: one line and the usage (exit 2).
fn exit_usage(usage: Usage) -> ExitCode {
    usage.print();
    ExitCode::from(usage.exit_code())
}

fn report(error: Error) -> ExitCode {
    eprintln!("{error}");
    ExitCode::from(error.exit_code())
}
