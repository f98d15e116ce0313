//! A command line that is not run: help or the version asked for, or a mistake.
//!
//! clap reports all of them as errors. This turns each into what `main` prints and
//! the status it exits with: help and the version on standard output with 0, a
//! mistake as one line and the usage on standard error with 2. clap omits the usage
//! for some errors (a bad value), but a user who typed something wrong should always
//! see how it goes.

use clap::error::{ContextValue, ErrorKind};
use clap::{CommandFactory, Parser};

use crate::cli::args::Cli;
use crate::error::visible;

/// Why the command line is not run, for `main` to print and exit with.
#[derive(Debug)]
pub enum Usage {
    /// `--help` or `--version`: clap's own text, which it prints itself.
    Asked(clap::Error),
    /// A mistake: the reason on one line, then the usage, for standard error.
    Mistake(String),
}

impl Usage {
    /// Shows the help, the version or the mistake where each belongs.
    pub fn print(&self) {
        match self {
            // Nothing sensible is left to do if standard output is gone.
            Usage::Asked(asked) => {
                let _ = asked.print();
            }
            Usage::Mistake(text) => eprint!("{text}"),
        }
    }

    /// The exit status: 0 for what was asked for, 2 for a mistake.
    pub fn exit_code(&self) -> u8 {
        match self {
            Usage::Asked(asked) => u8::try_from(asked.exit_code()).unwrap_or(2),
            Usage::Mistake(_) => 2,
        }
    }
}

/// Parses the process arguments.
pub fn parse_args() -> Result<Cli, Usage> {
    Cli::try_parse().map_err(of_clap)
}

/// What a failed parse shows.
pub fn of_clap(error: clap::Error) -> Usage {
    // A mistake in a subcommand (`tiburoncin replay ...`) shows that subcommand's
    // usage. The subcommand is the first argument (the relay's flags and
    // the subcommands do not mix); clap's own text names it only for some errors.
    let first = std::env::args_os().nth(1);
    let mut command = Cli::command();
    command.build();
    let named = ["replay", "demo", "completions", "man"]
        .into_iter()
        .find(|name| {
            first.as_deref().is_some_and(|a| a == *name)
                || error.to_string().contains(&format!("tiburoncin {name}"))
        });
    let usage = match named.and_then(|name| command.find_subcommand_mut(name)) {
        Some(sub) => sub.render_usage(),
        None => command.render_usage(),
    };
    with_usage(error, usage.to_string())
}

/// A mistake found after parsing (a name that does not resolve).
pub fn invalid(reason: &str) -> Usage {
    let mut command = Cli::command();
    let usage = command.render_usage().to_string();
    with_usage(
        command.error(ErrorKind::ValueValidation, visible(reason)),
        usage,
    )
}

/// The same for `tiburoncin replay`, with the replay usage.
pub fn invalid_replay(reason: &str) -> Usage {
    invalid_in("replay", reason)
}

/// The same for `tiburoncin demo`, with the demo usage.
pub fn invalid_demo(reason: &str) -> Usage {
    invalid_in("demo", reason)
}

fn invalid_in(subcommand: &str, reason: &str) -> Usage {
    let mut command = Cli::command();
    command.build();
    match command.find_subcommand_mut(subcommand) {
        Some(sub) => {
            let usage = sub.render_usage().to_string();
            with_usage(
                sub.error(ErrorKind::ValueValidation, visible(reason)),
                usage,
            )
        }
        None => invalid(reason),
    }
}

/// clap's error as a mistake shown with `usage`, unless it is help or the version.
fn with_usage(error: clap::Error, usage: String) -> Usage {
    if matches!(
        error.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
    ) {
        return Usage::Asked(error);
    }
    let mut text = error.render().to_string();
    // What the user typed is quoted back; a control character in it must neither
    // break the line nor reach the terminal as one.
    for (_, value) in error.context() {
        let typed = match value {
            ContextValue::String(one) => std::slice::from_ref(one),
            ContextValue::Strings(many) => many.as_slice(),
            _ => &[],
        };
        for raw in typed.iter().filter(|t| t.chars().any(char::is_control)) {
            text = text.replace(raw.as_str(), &visible(raw));
        }
    }
    let (reason, rest) = text.split_once("\n\n").unwrap_or((&text, ""));
    let reason = one_line(reason);
    Usage::Mistake(if rest.contains("Usage:") {
        format!("{reason}\n\n{rest}")
    } else {
        format!("{reason}\n\n{usage}\n\n{rest}")
    })
}

/// The reason on one line: clap lists missing arguments and possible values on lines
/// of their own, and a usage error is one line to read, then the usage.
fn one_line(reason: &str) -> String {
    let mut lines = reason.lines();
    let mut line = lines.next().unwrap_or_default().to_string();
    let rest: Vec<&str> = lines.map(str::trim).filter(|l| !l.is_empty()).collect();
    if !rest.is_empty() {
        line.push(' ');
        line += &rest.join(", ");
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reason_is_one_line() {
        assert_eq!(
            one_line(
                "error: the following required arguments were not provided:\n  -A <addr>\n  -B <addr>"
            ),
            "error: the following required arguments were not provided: -A <addr>, -B <addr>"
        );
        assert_eq!(one_line("error: plain"), "error: plain");
    }

    #[test]
    fn help_and_version_are_asked_for_mistakes_are_not() {
        let parse = |args: &[&str]| Cli::try_parse_from(args).map_err(of_clap);
        for asked in [
            &["t", "--help"][..],
            &["t", "--version"],
            &["t", "replay", "-h"],
            &["t", "demo", "--help"],
        ] {
            let usage = parse(asked).unwrap_err();
            assert!(matches!(usage, Usage::Asked(_)), "{asked:?}");
            assert_eq!(usage.exit_code(), 0);
        }
        let usage = parse(&["t", "-A", "1"]).unwrap_err();
        assert_eq!(usage.exit_code(), 2);
        let Usage::Mistake(text) = usage else {
            panic!("not a mistake")
        };
        assert!(text.starts_with("error: "), "{text}");
        assert!(text.contains("Usage: "), "{text}");
        let Usage::Mistake(text) = invalid("-B: cannot\x1b resolve") else {
            panic!("not a mistake")
        };
        assert!(text.contains("-B: cannot\\u{1b} resolve"), "{text}");
    }
}
