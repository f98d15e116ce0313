//! Shell completions and the manual page, generated from the clap definitions in
//! `args`, so that they cannot drift from the options the program really takes.
//!
//! `tiburoncin completions bash|zsh|fish` and `tiburoncin man` print them on
//! standard output; the README says where to put them.

use std::io::{self, Write};

use clap::{CommandFactory, ValueEnum};

use crate::cli::args::Cli;
use crate::error::Error;

/// The shells a completion script can be printed for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

/// The completion script for `shell`.
pub fn completions(shell: Shell) -> Vec<u8> {
    let generator = match shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    let mut command = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(generator, &mut command, "tiburoncin", &mut script);
    script
}

/// The manual page, in roff, for `man -l` or a `man1` folder: the main one, or
/// `tiburoncin-<subcommand>(1)`, which the main one lists.
pub fn man_page(subcommand: Option<&str>) -> Vec<u8> {
    // `tiburoncin help` is clap's own; it gets no page, so the main one does not
    // list one.
    let mut command = Cli::command().disable_help_subcommand(true);
    command.build();
    let page = match subcommand.and_then(|name| command.find_subcommand(name)) {
        // Built, a subcommand's display name is `tiburoncin-<name>`.
        Some(sub) => clap_mangen::Man::new(with_usage_as_synopsis(sub.clone())),
        None => clap_mangen::Man::new(with_usage_as_synopsis(command)),
    };
    let mut roff = Vec::new();
    // Rendering into a Vec cannot fail.
    let _ = page.render(&mut roff);
    roff
}

/// `command` with the usage `--help` shows as its synopsis: clap_mangen's own
/// synopsis leaves out the value names (`[-b ]` for `[-b <bsz>]`).
fn with_usage_as_synopsis(mut command: clap::Command) -> clap::Command {
    let usage = command.render_usage().to_string();
    let usage = usage.strip_prefix("Usage: ").unwrap_or(&usage).to_owned();
    command.override_usage(usage)
}

/// Writes `text` to standard output. A reader that went away early (`| head`) is
/// no failure: it had all it wanted.
pub fn print(text: &[u8]) -> Result<(), Error> {
    let mut out = io::stdout().lock();
    match out.write_all(text).and_then(|()| out.flush()) {
        Err(error) if error.kind() != io::ErrorKind::BrokenPipe => Err(Error::Output {
            what: "standard output".into(),
            source: error,
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shell_gets_a_script_that_knows_the_options() {
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let script = String::from_utf8(completions(shell)).unwrap();
            for option in ["keep-listening", "max-dump", "replay", "completions"] {
                assert!(script.contains(option), "{shell:?} lacks {option}");
            }
        }
    }

    #[test]
    fn the_man_page_has_a_name_and_the_options() {
        let page = String::from_utf8(man_page(None)).unwrap();
        assert!(page.starts_with(".ie"), "{}", &page[..40]);
        assert!(page.contains(".SH NAME"));
        assert!(page.contains("tiburoncin"));
        assert!(page.contains("keep\\-listening"));
        assert!(page.contains("[OPTIONS] \\-A <addr> \\-B <addr>"), "{page}");
        assert!(!page.contains("tiburoncin\\-help"), "{page}");
        let replay = String::from_utf8(man_page(Some("replay"))).unwrap();
        assert!(replay.contains(".TH tiburoncin-replay 1"), "{replay}");
        assert!(replay.contains("\\-\\-list"), "{replay}");
    }
}
