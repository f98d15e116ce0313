//! The command line exactly as typed: plain data for clap, no logic.
//!
//! Each value is parsed into a small typed value here (a malformed one is a usage
//! error with one clear line), but turning the whole into something ready to run
//! — resolving names, applying defaults — is `config`'s job.

use std::path::PathBuf;

use clap::{CommandFactory, Parser};

use crate::addr::Endpoint;
use crate::config::SizePair;

/// A TCP man in the middle: relays every byte between A and B, showing each chunk as
/// a hexdump and how far the receiving side is behind.
#[derive(Debug, Parser)]
#[command(
    name = "tiburoncin",
    version,
    after_help = "\
<addr> is host:serv, :serv or serv; host defaults to localhost and may be a name, an IP,
or an IPv6 address in brackets ([::1]:8080); serv is a port number or a service name.
<bsz> is n (both) or n:m, in bytes, decimal or 0x-hex.

Order of work: connect to B, wait for one A, relay until both directions are closed."
)]
pub struct Cli {
    /// Where to listen for A, the client
    #[arg(short = 'A', value_name = "addr", value_parser = Endpoint::parse)]
    pub a: Endpoint,

    /// Where B, the server, listens
    #[arg(short = 'B', value_name = "addr", value_parser = Endpoint::parse)]
    pub b: Endpoint,

    /// User-space buffer per direction, A->B[:B->A] (default 2048)
    #[arg(short = 'b', value_name = "bsz", value_parser = SizePair::parse_buffer)]
    pub buffers: Option<SizePair>,

    /// Kernel socket buffers SO_SNDBUF[:SO_RCVBUF] for both sockets (default: untouched)
    #[arg(short = 'z', value_name = "bsz", value_parser = SizePair::parse_socket)]
    pub socket_buffers: Option<SizePair>,

    /// Save the bytes of each direction as hex in AtoB.dump and BtoA.dump
    #[arg(short = 'o', conflicts_with = "prefix")]
    pub dump: bool,

    /// Like -o, with the files named PREFIXAtoB.dump and PREFIXBtoA.dump
    #[arg(short = 'f', value_name = "prefix")]
    pub prefix: Option<PathBuf>,

    /// No colours
    #[arg(short = 'c')]
    pub colourless: bool,

    /// No per-chunk output: start-up lines, errors and a final summary only
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
}

impl Cli {
    /// Parses the process arguments; on a usage error prints the reason and the usage
    /// and exits with 2 (help and version exit 0).
    pub fn parse_or_exit() -> Cli {
        Cli::try_parse().unwrap_or_else(|error| usage_error(error))
    }
}

/// Exits for a command-line mistake: clap omits the usage for some errors (a bad
/// value), but a user who typed something wrong should always see how it goes.
pub fn usage_error(error: clap::Error) -> ! {
    use clap::error::ErrorKind;
    if matches!(
        error.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
    ) {
        error.exit();
    }
    let text = error.render().to_string();
    let usage = Cli::command().render_usage().to_string();
    if text.contains("Usage:") {
        eprint!("{text}");
    } else {
        let (reason, rest) = text.split_once("\n\n").unwrap_or((&text, ""));
        eprint!("{reason}\n\n{usage}\n\n{rest}");
    }
    std::process::exit(2);
}

/// A usage error for a reason found after parsing (a name that does not resolve).
pub fn invalid(reason: String) -> ! {
    usage_error(Cli::command().error(clap::error::ErrorKind::ValueValidation, reason))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn the_original_command_lines_parse() {
        let cli = Cli::try_parse_from([
            "tiburoncin",
            "-A",
            "127.0.0.1:8081",
            "-B",
            "127.0.0.1:8082",
            "-c",
            "-z",
            "1024:4096",
            "-b",
            "512:2048",
            "-o",
        ])
        .unwrap();
        assert_eq!(cli.buffers, Some(SizePair(512, 2048)));
        assert_eq!(cli.socket_buffers, Some(SizePair(1024, 4096)));
        assert!(cli.dump && cli.colourless);
        // getopt-style glued values still work
        let cli = Cli::try_parse_from(["tiburoncin", "-A8081", "-B:8082", "-b0x100"]).unwrap();
        assert_eq!(cli.buffers, Some(SizePair(256, 256)));
    }

    #[test]
    fn dump_flags_exclude_each_other() {
        let err = Cli::try_parse_from(["t", "-A", "1", "-B", "2", "-o", "-f", "x"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ArgumentConflict);
    }
}
