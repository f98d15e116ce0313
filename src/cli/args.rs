//! The command line exactly as typed: plain data for clap, no logic.
//!
//! Each value is parsed into a small typed value here (a malformed one is a usage
//! error with one clear line), but turning the whole into something ready to run
//! — resolving names, applying defaults — is `config`'s job.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};

use crate::cli::addr::Address;
use crate::cli::colour::ColourChoice;
use crate::cli::sizes::SizePair;
use crate::output::timestamps::TimestampKind;
use crate::relay::faults::{self, Delay};

/// A TCP man in the middle: relays every byte between A and B, showing each chunk as
/// a hexdump and how far the receiving side is behind.
//
// `tiburoncin replay` plays one side of a recorded connection instead; the relay's
// flags and the subcommand do not mix.
//
// A flag given twice is no mistake: the last one wins, as with the original's getopt
// (`-A x -A y` listens on y), so a script can override a flag it was given by
// appending another.
#[derive(Debug, Parser)]
#[command(
    name = "tiburoncin",
    version,
    args_override_self = true,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    after_help = "\
<addr> is host:serv, :serv or serv; host defaults to localhost and may be a name, an IP,
or an IPv6 address in brackets ([::1]:8080); serv is a port number or a service name.
With a scheme: tls:host:serv (TLS, shown in plaintext), unix:PATH or unix:@name (a UNIX
stream socket; @ for the abstract namespace).
<bsz> is n (both) or n:m, in bytes, decimal or 0x-hex.
Faults are for A->B and B->A alike (v), for each (v:w), or for one only (v: or :w);
their byte counts are decimal, with k, M or G for thousands, millions, billions.

Order of work: connect to B, wait for one A, relay until both directions are closed.
With -k: listen for A; for each client, connect to B and relay, until a signal stops it.
`tiburoncin replay --help` tells how to replay a recorded session.
`tiburoncin demo` shows the relay at work between built-in peers; `tiburoncin demo --list`."
)]
pub struct Cli {
    /// Where to listen for A, the client: [tcp:]host:port, tls:[host]:port,
    /// unix:PATH or unix:@name
    // Optional only so that `replay` can go without it; the relay requires it.
    #[arg(short = 'A', value_name = "addr", value_parser = Address::parse, required = true)]
    pub a: Option<Address>,

    /// Where B, the server, listens: [tcp:]host:port, tls:host:port, unix:PATH or
    /// unix:@name
    #[arg(short = 'B', value_name = "addr", value_parser = Address::parse, required = true)]
    pub b: Option<Address>,

    /// What the relay keeps and shows, as the demo takes it too.
    #[command(flatten)]
    pub output: OutputFlags,

    /// No per-chunk output: start-up lines, errors and a final summary only; twice
    /// (-qq), with -k: the final tally and errors only
    #[arg(short = 'q', long = "quiet", action = clap::ArgAction::Count)]
    pub quiet: u8,

    /// Show at most N bytes of each chunk as hex, then `... M more bytes`; 0: no
    /// hexdump, only the sent and status lines (dumps, capture and events still get
    /// every byte)
    #[arg(long = "max-dump", value_name = "N")]
    pub max_dump: Option<usize>,

    /// The capture's format, whatever its name: pcap or pcapng
    #[arg(
        long = "capture-format",
        value_name = "format",
        value_enum,
        requires = "capture"
    )]
    pub capture_format: Option<CaptureFormat>,

    /// Keep accepting clients until stopped: each gets its own connection to B and
    /// its own buffers, and its lines start with [N], its number
    #[arg(short = 'k', long = "keep-listening")]
    pub keep_listening: bool,

    /// With -k: relay at most N connections at once; more clients wait to be
    /// accepted (default 256)
    #[arg(long = "max-conns", value_name = "N", requires = "keep_listening",
          value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub max_conns: Option<u32>,

    /// Forward at most this many bytes a second (1000, 64k, 1M)
    #[arg(long, value_name = "A2B:B2A", value_parser = rates, help_heading = FAULTS)]
    pub rate: Option<[Option<u64>; 2]>,

    /// Hold each chunk this many milliseconds after it is read, give or take up to
    /// JITTER (uniformly), keeping the order
    #[arg(long, value_name = "MS[~JITTER]", value_parser = delays, help_heading = FAULTS)]
    pub delay: Option<[Option<Delay>; 2]>,

    /// Forward at most this many bytes per write
    #[arg(long, value_name = "N", value_parser = slices, help_heading = FAULTS)]
    pub slice: Option<[Option<usize>; 2]>,

    /// After forwarding this many bytes, reset the receiver's connection (RST)
    #[arg(long = "reset-after", value_name = "N", value_parser = byte_counts,
          help_heading = FAULTS)]
    pub reset_after: Option<[Option<u64>; 2]>,

    /// After forwarding this many bytes, forward nothing more (until stopped)
    #[arg(long = "stall-after", value_name = "N", value_parser = byte_counts,
          help_heading = FAULTS)]
    pub stall_after: Option<[Option<u64>; 2]>,

    #[command(flatten)]
    pub tls: TlsFlags,

    #[command(subcommand)]
    pub command: Option<Command>,
}

const TLS: &str = "TLS";

/// The TLS flags, as given.
#[derive(Debug, Clone, Default, Args)]
pub struct TlsFlags {
    /// With -B tls: verify B's certificate against this CA (PEM) instead of the
    /// system's roots
    #[arg(long = "tls-ca", value_name = "FILE", help_heading = TLS)]
    pub ca: Option<PathBuf>,

    /// With -B tls: accept any certificate from B (a warning says so)
    #[arg(long = "tls-insecure", conflicts_with = "ca", help_heading = TLS)]
    pub insecure: bool,

    /// With -A tls: the certificate chain (PEM) to show A, instead of one signed by
    /// the local CA
    #[arg(long = "tls-cert", value_name = "FILE", requires = "key", help_heading = TLS)]
    pub cert: Option<PathBuf>,

    /// With --tls-cert: its private key (PEM)
    #[arg(long = "tls-key", value_name = "FILE", requires = "cert", help_heading = TLS)]
    pub key: Option<PathBuf>,

    /// The protocols (ALPN) to offer B, as h2,http/1.1, instead of what a TLS A
    /// offered; A is then offered the one B chose (with a plain B, this list)
    #[arg(long = "tls-alpn", value_name = "LIST", help_heading = TLS)]
    pub alpn: Option<String>,

    /// Append every TLS session's secrets to this file, in SSLKEYLOGFILE format (for
    /// Wireshark reading a capture of the encrypted wire)
    #[arg(long = "tls-keylog", value_name = "FILE", help_heading = TLS)]
    pub keylog: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Play one side of a recorded TCP connection against a live peer, checking every byte
    Replay(ReplayArgs),
    /// Watch the relay between built-in peers, on loopback: what TCP really does
    Demo(DemoArgs),
    /// Print a completion script for bash, zsh or fish
    Completions(CompletionsArgs),
    /// Print the manual page (roff); view it with `man -l -`
    Man(ManArgs),
}

/// What `tiburoncin man` prints.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// A subcommand's page (tiburoncin-replay(1)...) instead of the main one
    #[arg(value_parser = ["replay", "demo", "completions", "man"])]
    pub subcommand: Option<String>,
}

/// What `tiburoncin completions` prints.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete in
    #[arg(value_enum)]
    pub shell: crate::cli::generated::Shell,
}

/// Runs the real relay between a built-in client A and server B on loopback, and
/// tells what happens, step by step, in lines starting with `#`; the relay's own
/// output follows each step as it happens.
// The relay's flags that only change what is shown or saved apply; those that say
// where A and B are, or how many clients come, are the demo's own business.
#[derive(Debug, Args)]
#[command(
    args_override_self = true,
    after_help = "\
Examples:
  tiburoncin demo                      # hello, the first session
  tiburoncin demo --list               # every demo, one line each
  tiburoncin demo slow-receiver -b 512 -z 1024 -w demo.pcapng"
)]
pub struct DemoArgs {
    /// The demo to run (default: hello)
    #[arg(value_name = "name", value_enum)]
    pub name: Option<DemoName>,

    /// Name the demos, one line each
    #[arg(long, conflicts_with = "name")]
    pub list: bool,

    /// slow: pause between steps, long enough to read (the default on a terminal);
    /// fast: no pauses (the default otherwise)
    #[arg(long, value_name = "how", value_enum)]
    pub pace: Option<Pace>,

    /// The relay's flags that apply to a demo, as the relay takes them
    #[command(flatten)]
    pub relay: DemoRelayFlags,

    /// The relay's flags that do not apply, taken only to be refused with a reason
    #[command(flatten)]
    pub refused: DemoRefusedFlags,
}

/// The relay's flags a demo refuses: it makes its own A and B, and its own clients,
/// and injected faults would change the story it tells. Hidden: they are not the
/// demo's; `from_args` says why each is refused.
#[derive(Debug, Args)]
pub struct DemoRefusedFlags {
    #[arg(short = 'A', hide = true, value_name = "addr")]
    pub a: Option<String>,
    #[arg(short = 'B', hide = true, value_name = "addr")]
    pub b: Option<String>,
    #[arg(short = 'k', long = "keep-listening", hide = true)]
    pub keep_listening: bool,
    #[arg(long = "max-conns", hide = true, value_name = "N")]
    pub max_conns: Option<String>,
    #[arg(long, hide = true, value_name = "v", allow_hyphen_values = true)]
    pub rate: Option<String>,
    #[arg(long, hide = true, value_name = "v", allow_hyphen_values = true)]
    pub delay: Option<String>,
    #[arg(long, hide = true, value_name = "v", allow_hyphen_values = true)]
    pub slice: Option<String>,
    #[arg(
        long = "reset-after",
        hide = true,
        value_name = "v",
        allow_hyphen_values = true
    )]
    pub reset_after: Option<String>,
    #[arg(
        long = "stall-after",
        hide = true,
        value_name = "v",
        allow_hyphen_values = true
    )]
    pub stall_after: Option<String>,
}

/// The built-in demos, in the order `--list` shows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DemoName {
    /// A and B exchange a few lines, then both close: the first session
    Hello,
    /// B stops reading: the kernel's buffers fill, then tiburoncin's, then A blocks
    SlowReceiver,
    /// A shuts down its side with bytes still on the way: they drain, then the FIN
    HalfClose,
    /// B closes while A still sends: why the relay reports a broken pipe
    BrokenPipe,
    /// -k: a few clients at once, each line labelled with its connection's [N]
    Many,
}

/// `--capture-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CaptureFormat {
    Pcap,
    Pcapng,
}

/// A demo's pace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Pace {
    Fast,
    Slow,
}

/// The relay's flags a demo passes on to the relay.
#[derive(Debug, Args)]
pub struct DemoRelayFlags {
    #[command(flatten)]
    pub output: OutputFlags,

    /// No per-chunk output from the relay
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
}

/// What the relay keeps and shows: its buffers, its colours, and the files it
/// writes. The relay's command line and the demo's take the same flags.
#[derive(Debug, Args)]
pub struct OutputFlags {
    /// User-space buffer per direction, A->B[:B->A] (default 2048)
    #[arg(short = 'b', value_name = "bsz", value_parser = SizePair::parse_buffer,
          allow_negative_numbers = true)]
    pub buffers: Option<SizePair>,

    /// Kernel socket buffers SO_SNDBUF[:SO_RCVBUF] for both sockets (default: untouched)
    #[arg(short = 'z', value_name = "bsz", value_parser = SizePair::parse_socket,
          allow_negative_numbers = true)]
    pub socket_buffers: Option<SizePair>,

    /// Save the bytes of each direction as hex in AtoB.dump and BtoA.dump
    #[arg(short = 'o', conflicts_with = "prefix")]
    pub dump: bool,

    /// Like -o, with the files named PREFIXAtoB.dump and PREFIXBtoA.dump
    #[arg(short = 'f', value_name = "prefix")]
    pub prefix: Option<PathBuf>,

    /// No colours (as --color=never)
    #[arg(short = 'c')]
    pub colourless: bool,

    /// Colour the text: auto (on a terminal, unless NO_COLOR is set or TERM=dumb;
    /// CLICOLOR_FORCE=1 forces it), always or never
    #[arg(long = "color", value_name = "when", value_enum)]
    pub color: Option<ColourChoice>,

    /// Save the session for Wireshark: pcapng if the name ends in .pcapng, else pcap;
    /// with - to standard output as a live stream (the text then goes to standard
    /// error)
    #[arg(short = 'w', value_name = "capture|-")]
    pub capture: Option<PathBuf>,

    /// Start each event line with the time: local time of day to the microsecond, or
    /// with =relative the seconds since the first connection
    #[arg(short = 't', long = "timestamps", value_name = "how", value_enum,
          num_args = 0..=1, require_equals = true, default_missing_value = "local")]
    pub timestamps: Option<TimestampKind>,

    /// Show the kernel's queues beside the backlog: bytes sent to the receiver and
    /// not yet acknowledged (SIOCOUTQ), bytes from the sender not yet read (SIOCINQ)
    #[arg(long = "kernel-queues")]
    pub kernel_queues: bool,

    /// Also write every event as a line of JSON (schema in the README) to this file,
    /// or with - to standard output (the text then goes to standard error)
    #[arg(long = "events", value_name = "path|-")]
    pub events: Option<PathBuf>,
}

/// Plays A's side of a recorded connection against a live server, or B's side for a
/// live client, and checks byte for byte that the live peer says what the recording
/// says. Exits 0 when it does, 1 at the first difference (printed as hexdumps).
// As for the relay, a flag given twice is no mistake: the last one wins.
#[derive(Debug, Args)]
#[command(
    args_override_self = true,
    group(ArgGroup::new("mode").required(true).args(["list", "side"])),
    override_usage = "\
tiburoncin replay <capture> --list
       tiburoncin replay <capture> --as b -A <addr> [OPTIONS] [-- CMD ARGS...]
       tiburoncin replay <capture> --as a -B <addr> [OPTIONS] [-- CMD ARGS...]",
    after_help = "\
<capture> is a pcap or pcapng file from tiburoncin -w, tcpdump, dumpcap or Wireshark.
Connections are numbered as Wireshark's tcp.stream; A is the side that connected.
Every connection is played, at once, unless --stream picks some.

  tiburoncin replay session.pcap --list
  tiburoncin replay session.pcap --as b -A 127.0.0.1:8080    # be the server
  tiburoncin replay session.pcap --as a -B 127.0.0.1:8080    # be the client
  tiburoncin replay web.pcap --as b -A 127.0.0.1:0 --ignore 'Host: [^\\r]*' \\
      -- curl -s 'http://{addr}/'                           # and run the client"
)]
pub struct ReplayArgs {
    /// The recorded session: a file (--list also reads a pipe or a FIFO)
    #[arg(value_name = "capture")]
    pub capture: PathBuf,

    /// List the TCP connections in the capture: number, endpoints, bytes each way,
    /// duration, how each side ended
    #[arg(long)]
    pub list: bool,

    /// Play A (connect to -B, talk as the client did) or B (listen on -A, answer as
    /// the server did)
    #[arg(long = "as", value_name = "side", value_enum)]
    pub side: Option<Side>,

    /// With --as b: where to listen for A (host:port, tls:[host]:port, unix:PATH)
    #[arg(short = 'A', value_name = "addr", value_parser = Address::parse,
          required_if_eq("side", "b"))]
    pub a: Option<Address>,

    /// With --as a: where B listens (host:port, tls:host:port, unix:PATH)
    #[arg(short = 'B', value_name = "addr", value_parser = Address::parse,
          required_if_eq("side", "a"))]
    pub b: Option<Address>,

    /// The connections to play, by number (see --list), like 0 or 0,2; all when not given
    #[arg(long, value_name = "N[,N...]", value_parser = parse_streams,
          allow_negative_numbers = true)]
    pub stream: Option<Streams>,

    /// Bytes matched by REGEX in the live peer's bytes and at the same place in the
    /// recording compare equal, whatever their length (repeatable)
    #[arg(long, value_name = "REGEX", action = clap::ArgAction::Append)]
    pub ignore: Vec<String>,

    /// Like --ignore, and the group's recorded value stands for its live value from
    /// then on, in every byte the replay sends (repeatable; one capture group)
    #[arg(long, value_name = "REGEX", action = clap::ArgAction::Append)]
    pub carry: Vec<String>,

    /// Write the verdict as JSON to this file
    #[arg(long, value_name = "FILE.json")]
    pub report: Option<PathBuf>,

    /// fast: as fast as the peer allows; recorded: keep the recorded pause before
    /// each turn we send
    #[arg(long, value_name = "how", value_enum, default_value_t = Timing::Fast)]
    pub timing: Timing,

    /// With --timing recorded, play pauses this many times faster (0.5 = twice as long)
    #[arg(long, value_name = "X", value_parser = parse_speed, default_value = "1",
          allow_negative_numbers = true)]
    pub speed: f64,

    /// Longest wait for the peer (to connect, to send, to close), in seconds
    #[arg(long, value_name = "secs", value_parser = parse_seconds, default_value = "10",
          allow_negative_numbers = true)]
    pub timeout: Duration,

    /// No colours (as --color=never)
    #[arg(short = 'c')]
    pub colourless: bool,

    /// Colour the text: auto (on a terminal, unless NO_COLOR is set or TERM=dumb;
    /// CLICOLOR_FORCE=1 forces it), always or never
    #[arg(long = "color", value_name = "when", value_enum)]
    pub color: Option<ColourChoice>,

    /// Don't show the bytes as they are exchanged, only the result
    #[arg(short = 'q')]
    pub quiet: bool,

    /// Save the replayed session for Wireshark: pcapng if the name ends in .pcapng,
    /// else pcap
    #[arg(short = 'w', value_name = "capture")]
    pub record: Option<PathBuf>,

    /// The client's address and port in the capture: for a capture that starts after
    /// the handshake, where A is otherwise told by the ports or by who spoke first
    #[arg(long, value_name = "addr:port", value_parser = parse_client)]
    pub client: Option<SocketAddr>,

    /// With --list: instead of the list, print the connection's reassembled turns as
    /// hex, one line per turn starting with A or B (to check the reassembly against
    /// other tools)
    #[arg(long, hide = true, requires = "list")]
    pub dump: bool,

    /// After --: a command to run against the replay (a client with --as b, a server
    /// with --as a); {addr} and {port} in its arguments, and TIBURONCIN_ADDR in its
    /// environment, say where
    #[arg(last = true, value_name = "CMD", num_args = 0..)]
    pub command: Option<Vec<String>>,

    /// The TLS flags, for a tls: address
    #[command(flatten)]
    pub tls: TlsFlags,
}

/// Which side of the recording we play.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Side {
    A,
    B,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Timing {
    Fast,
    Recorded,
}

/// The heading of the fault injection flags in `--help`.
const FAULTS: &str = "Fault injection (per direction: v, A2B:B2A, A2B: or :B2A)";

fn rates(text: &str) -> Result<[Option<u64>; 2], String> {
    faults::parse_pair(text, faults::parse_rate)
}

fn delays(text: &str) -> Result<[Option<Delay>; 2], String> {
    faults::parse_pair(text, faults::parse_delay)
}

fn slices(text: &str) -> Result<[Option<usize>; 2], String> {
    faults::parse_pair(text, faults::parse_slice)
}

fn byte_counts(text: &str) -> Result<[Option<u64>; 2], String> {
    faults::parse_pair(text, faults::parse_bytes)
}

/// `--stream 0,2`: connection numbers, as typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Streams(pub Vec<usize>);

fn parse_streams(text: &str) -> Result<Streams, String> {
    text.split(',')
        .map(|one| {
            one.trim().parse().map_err(|_| {
                format!("'{text}' is not a list of connection numbers (0 or 0,2 as --list shows)")
            })
        })
        .collect::<Result<Vec<usize>, String>>()
        .map(Streams)
}

fn parse_client(text: &str) -> Result<SocketAddr, String> {
    text.parse().map_err(|_| {
        format!("'{text}' is not an IP address and port (like 10.0.0.1:51234 or [::1]:51234)")
    })
}

fn parse_speed(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 => Ok(x),
        _ => Err(format!(
            "'{text}' is not a speed (a number above 0, like 2 or 0.5)"
        )),
    }
}

fn parse_seconds(text: &str) -> Result<Duration, String> {
    text.parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s > 0.0)
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .ok_or_else(|| format!("'{text}' is not a number of seconds above 0"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

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
        assert!(cli.command.is_none());
        assert_eq!(cli.output.buffers, Some(SizePair(512, 2048)));
        assert_eq!(cli.output.socket_buffers, Some(SizePair(1024, 4096)));
        assert!(cli.output.dump && cli.output.colourless);
        // getopt-style glued values still work
        let cli = Cli::try_parse_from(["tiburoncin", "-A8081", "-B:8082", "-b0x100"]).unwrap();
        assert_eq!(cli.output.buffers, Some(SizePair(256, 256)));
    }

    #[test]
    fn the_relay_still_needs_both_addresses() {
        for args in [&["t"][..], &["t", "-A", "1"], &["t", "-B", "2"]] {
            let err = Cli::try_parse_from(args).unwrap_err();
            assert_eq!(err.kind(), clap::error::ErrorKind::MissingRequiredArgument);
        }
    }

    fn replay(args: &[&str]) -> Result<ReplayArgs, clap::Error> {
        let all = ["tiburoncin", "replay"].iter().chain(args).copied();
        match Cli::try_parse_from(all)?.command {
            Some(Command::Replay(args)) => Ok(args),
            _ => panic!("not replay"),
        }
    }

    #[test]
    fn rules_add_up_and_a_command_follows_the_double_dash() {
        let r = replay(&[
            "x.pcap", "--as", "b", "-A", ":0", "--ignore", "a", "--ignore", "b", "--carry",
            "t=(.)", "--stream", "0,2", "--", "curl", "-s", "{addr}",
        ])
        .unwrap();
        assert_eq!(r.ignore, ["a", "b"]);
        assert_eq!(r.carry, ["t=(.)"]);
        assert_eq!(r.stream, Some(Streams(vec![0, 2])));
        assert_eq!(r.command.unwrap(), ["curl", "-s", "{addr}"]);
        assert!(replay(&["x.pcap", "--stream", "0,x"]).is_err());
    }

    #[test]
    fn replay_command_lines() {
        let r = replay(&["x.pcap", "--list"]).unwrap();
        assert!(r.list && r.side.is_none());
        assert_eq!(r.timeout, Duration::from_secs(10));
        let r = replay(&["x.pcap", "--as", "b", "-A", ":0", "--stream", "2"]).unwrap();
        assert_eq!((r.side, r.stream), (Some(Side::B), Some(Streams(vec![2]))));
        let r = replay(&[
            "x.pcap",
            "--as",
            "a",
            "-B",
            "8080",
            "--timing",
            "recorded",
            "--speed",
            "2.5",
            "--timeout",
            "0.5",
            "-c",
            "-q",
        ])
        .unwrap();
        assert_eq!(r.timing, Timing::Recorded);
        assert_eq!(r.speed, 2.5);
        assert_eq!(r.timeout, Duration::from_millis(500));
    }

    #[test]
    fn bad_replay_command_lines() {
        use clap::error::ErrorKind::*;
        for (args, kind) in [
            (&["x.pcap"][..], MissingRequiredArgument),
            (&["x.pcap", "--as", "b"], MissingRequiredArgument),
            (&["x.pcap", "--as", "a", "-A", "1"], MissingRequiredArgument),
            (
                &["x.pcap", "--list", "--as", "a", "-B", "1"],
                ArgumentConflict,
            ),
            (&["x.pcap", "--as", "c"], InvalidValue),
            (&["x.pcap", "--list", "--speed", "0"], ValueValidation),
            (&["x.pcap", "--list", "--timeout", "0"], ValueValidation),
            (&["x.pcap", "--list", "--stream", "x"], ValueValidation),
        ] {
            let err = replay(args).unwrap_err();
            assert_eq!(err.kind(), kind, "{args:?}: {err}");
        }
        // The relay's flags and the subcommand do not mix.
        let err = Cli::try_parse_from(["t", "-A", "1", "replay", "x", "--list"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ArgumentConflict);
    }

    fn demo(args: &[&str]) -> Result<DemoArgs, clap::Error> {
        let all = ["tiburoncin", "demo"].iter().chain(args).copied();
        match Cli::try_parse_from(all)?.command {
            Some(Command::Demo(args)) => Ok(args),
            _ => panic!("not demo"),
        }
    }

    #[test]
    fn demo_command_lines() {
        let d = demo(&[]).unwrap();
        assert_eq!((d.name, d.list, d.pace), (None, false, None));
        let d = demo(&[
            "slow-receiver",
            "--pace",
            "fast",
            "-b",
            "512",
            "-z",
            "1024",
            "-w",
            "x",
        ])
        .unwrap();
        assert_eq!(d.name, Some(DemoName::SlowReceiver));
        assert_eq!(d.pace, Some(Pace::Fast));
        assert_eq!(d.relay.output.buffers, Some(SizePair(512, 512)));
        assert_eq!(d.relay.output.capture, Some(PathBuf::from("x")));
        // The relay's flags that do not apply are taken, to be refused with a reason.
        let d = demo(&["-A", "1", "-k", "--rate", "1k"]).unwrap();
        assert_eq!(d.refused.a.as_deref(), Some("1"));
        assert!(d.refused.keep_listening);
        assert_eq!(d.refused.rate.as_deref(), Some("1k"));
        for bad in [
            &["nosuch"][..],
            &["--pace", "medium"],
            &["--list", "hello"],
            &["-b", "0"],
        ] {
            assert!(demo(bad).is_err(), "{bad:?}");
        }
        // The relay's flags and the subcommand do not mix.
        assert!(Cli::try_parse_from(["t", "-c", "demo"]).is_err());
    }

    #[test]
    fn timestamps_local_by_default_relative_on_request() {
        let parse = |extra: &[&str]| {
            let args = ["t", "-A", "1", "-B", "2"].iter().chain(extra).copied();
            Cli::try_parse_from(args).map(|cli| cli.output.timestamps)
        };
        assert_eq!(parse(&[]).unwrap(), None);
        for local in [&["-t"][..], &["--timestamps"], &["--timestamps=local"]] {
            assert_eq!(parse(local).unwrap(), Some(TimestampKind::Local));
        }
        for relative in [&["--timestamps=relative"][..], &["-t=relative"]] {
            assert_eq!(parse(relative).unwrap(), Some(TimestampKind::Relative));
        }
        // The value needs `=`: a separate word is not taken as the value.
        assert!(parse(&["-t", "relative"]).is_err());
        assert!(parse(&["--timestamps=utc"]).is_err());
        // -t combines with other short flags as getopt allows.
        assert_eq!(parse(&["-ct"]).unwrap(), Some(TimestampKind::Local));
    }

    #[test]
    fn negative_numbers_reach_the_value_parsers() {
        for args in [
            &["t", "-A", "1", "-B", "2", "-b", "-1"][..],
            &["t", "-A", "1", "-B", "2", "-z", "-5"],
        ] {
            let err = Cli::try_parse_from(args).unwrap_err();
            assert_eq!(
                err.kind(),
                clap::error::ErrorKind::ValueValidation,
                "{args:?}"
            );
        }
        let err = replay(&["x.pcap", "--list", "--timeout", "-3"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation);
    }

    #[test]
    fn a_repeated_flag_is_taken_the_last_time() {
        let typed = "t -A 1 -A 2 -B 3 -b 10 -b 20 -c -c -q -q -f x -f y -t --timestamps=relative";
        let cli = Cli::try_parse_from(typed.split(' ')).unwrap();
        assert_eq!(cli.a.unwrap().to_string(), "localhost:2");
        assert_eq!(cli.output.buffers, Some(SizePair(20, 20)));
        assert!(cli.output.colourless);
        // -q counts, though: -qq is quieter still.
        assert_eq!(cli.quiet, 2);
        assert_eq!(cli.output.prefix, Some(PathBuf::from("y")));
        assert_eq!(cli.output.timestamps, Some(TimestampKind::Relative));
        let r = replay(&[
            "x.pcap", "--list", "--list", "--stream", "1", "--stream", "2",
        ])
        .unwrap();
        assert!(r.list);
        assert_eq!(r.stream, Some(Streams(vec![2])));
    }

    #[test]
    fn dump_flags_exclude_each_other() {
        let err = Cli::try_parse_from(["t", "-A", "1", "-B", "2", "-o", "-f", "x"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ArgumentConflict);
    }
}
