//! `--color`: whether the text for people is coloured, as ripgrep, cargo and ls
//! decide it.
//!
//! `auto` (the default) colours only a terminal that can show colours and a user who
//! did not say no (<https://no-color.org>); `always` and `CLICOLOR_FORCE` force it,
//! for a pager that shows colours (`less -R`) or a test.

use clap::ValueEnum;

/// `--color=auto|always|never`, as typed (`-c` is `never`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum ColourChoice {
    #[default]
    Auto,
    Always,
    Never,
}

impl ColourChoice {
    /// `--color` as given, with `-c` (the original's "no colours") winning.
    pub fn from_flags(color: Option<ColourChoice>, colourless: bool) -> ColourChoice {
        if colourless {
            ColourChoice::Never
        } else {
            color.unwrap_or_default()
        }
    }

    /// Whether to colour a stream that `is_terminal` (or not), reading the
    /// environment through `env`: `NO_COLOR` (set and not empty) and `TERM=dumb` turn
    /// `auto` off, `CLICOLOR_FORCE` (set and not `0`) turns it on.
    pub fn wanted(self, is_terminal: bool, env: impl Fn(&str) -> Option<String>) -> bool {
        let set = |name: &str| env(name).filter(|value| !value.is_empty());
        match self {
            ColourChoice::Never => false,
            ColourChoice::Always => true,
            ColourChoice::Auto if set("CLICOLOR_FORCE").is_some_and(|v| v != "0") => true,
            ColourChoice::Auto => {
                is_terminal && set("NO_COLOR").is_none() && env("TERM").as_deref() != Some("dumb")
            }
        }
    }

    /// `wanted` for a stream, in this process's environment.
    pub fn for_stream(self, stream: &impl std::io::IsTerminal) -> bool {
        self.wanted(stream.is_terminal(), |name| {
            std::env::var_os(name).map(|v| v.to_string_lossy().into_owned())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::ColourChoice::{self, *};

    fn wanted(choice: ColourChoice, terminal: bool, vars: &[(&str, &str)]) -> bool {
        choice.wanted(terminal, |name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn auto_colours_a_terminal_only() {
        assert!(wanted(Auto, true, &[("TERM", "xterm-256color")]));
        assert!(wanted(Auto, true, &[]));
        assert!(!wanted(Auto, false, &[("TERM", "xterm")]));
    }

    #[test]
    fn no_color_and_a_dumb_terminal_say_no() {
        assert!(!wanted(Auto, true, &[("NO_COLOR", "1")]));
        // An empty NO_COLOR is as if unset.
        assert!(wanted(Auto, true, &[("NO_COLOR", "")]));
        assert!(!wanted(Auto, true, &[("TERM", "dumb")]));
    }

    #[test]
    fn always_and_clicolor_force_force_it() {
        assert!(wanted(
            Always,
            false,
            &[("NO_COLOR", "1"), ("TERM", "dumb")]
        ));
        assert!(wanted(Auto, false, &[("CLICOLOR_FORCE", "1")]));
        assert!(wanted(
            Auto,
            true,
            &[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")]
        ));
        assert!(!wanted(Auto, false, &[("CLICOLOR_FORCE", "0")]));
        assert!(!wanted(Auto, false, &[("CLICOLOR_FORCE", "")]));
    }

    #[test]
    fn never_and_dash_c_win() {
        assert!(!wanted(Never, true, &[("CLICOLOR_FORCE", "1")]));
        assert_eq!(ColourChoice::from_flags(Some(Always), true), Never);
        assert_eq!(ColourChoice::from_flags(None, false), Auto);
        assert_eq!(ColourChoice::from_flags(Some(Always), false), Always);
    }
}
