//! The validated configuration the relay runs with, made from the parsed command line.
//!
//! Everything that can be checked before touching the network is checked here, so
//! a mistake in the command line is a usage error (exit 2) and never a half-started
//! relay: sizes are in range, names resolve, B has a real port.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use std::time::Duration;

use crate::capture::Format;
use crate::cli::addr::{Address, Endpoint};
use crate::cli::args::{CaptureFormat, Cli, ReplayArgs, Side, Timing, TlsFlags};
use crate::cli::colour::ColourChoice;
use crate::cli::sizes::SizePair;
use crate::output::dump::DumpPaths;
use crate::output::timestamps::TimestampKind;
use crate::relay::faults::Faults;

/// The original's default user-space buffer per direction.
pub const DEFAULT_BUFFER: usize = 2048;

/// `--max-conns` when not given: enough for a browser's or a test suite's parallel
/// connections, while bounding the threads (five a connection) and the buffers.
pub const DEFAULT_MAX_CONNS: usize = 256;

/// Where `--events` writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventsTo {
    Stdout,
    File(PathBuf),
}

/// Where the capture goes (`-w`), and in which format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureFile {
    /// `-` for standard output.
    pub path: PathBuf,
    pub format: Format,
}

impl CaptureFile {
    /// `-w -`: the capture is a live stream on standard output.
    pub fn is_stdout(&self) -> bool {
        self.path.as_os_str() == "-"
    }
}

/// The TLS flags, each checked against a TLS side that uses it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// `--tls-ca`: B's certificate is verified against this CA, not the system's.
    pub ca: Option<PathBuf>,
    /// `--tls-insecure`: B's certificate is not verified.
    pub insecure: bool,
    /// `--tls-cert` and `--tls-key`: what A is shown, instead of a certificate made
    /// and signed by the local CA.
    pub cert_and_key: Option<(PathBuf, PathBuf)>,
    /// `--tls-keylog`: where the sessions' secrets go.
    pub keylog: Option<PathBuf>,
    /// `--tls-alpn`: the protocols to offer B instead of a TLS A's (or to offer a TLS
    /// A, when B is plain).
    pub alpn: Vec<Vec<u8>>,
}

/// Everything the relay needs, checked and resolved.
#[derive(Debug, Clone)]
pub struct Config {
    pub a: Address,
    /// A's TCP addresses; none for a UNIX socket.
    pub a_addrs: Vec<SocketAddr>,
    pub b: Address,
    /// B's TCP addresses; none for a UNIX socket.
    pub b_addrs: Vec<SocketAddr>,
    pub tls: TlsOptions,
    /// User-space buffer for A->B and B->A.
    pub buffers: (usize, usize),
    /// SO_SNDBUF and SO_RCVBUF for both sockets; `None` leaves the kernel's default.
    pub socket_buffers: Option<(usize, usize)>,
    pub dumps: Option<DumpPaths>,
    pub capture: Option<CaptureFile>,
    /// `--color` and `-c`: decided for the stream the text goes to when it is opened.
    pub colour: ColourChoice,
    pub quiet: bool,
    /// `-qq`: with `-k`, not even each connection's lines: the final tally only.
    pub tally_only: bool,
    /// `--max-dump`: at most this many bytes of each chunk in its hexdump.
    pub max_dump: Option<usize>,
    /// `-t`: show when each event happened, and how.
    pub timestamps: Option<TimestampKind>,
    /// `--events`: where the JSON lines go.
    pub events: Option<EventsTo>,
    /// `-k`: keep accepting clients, relaying at most this many at once.
    pub keep_listening: Option<usize>,
    /// What to inject into A->B and B->A.
    pub faults: [Faults; 2],
    /// `--kernel-queues`: show the kernel's queues beside the user-space backlog.
    pub kernel_queues: bool,
}

impl Config {
    /// Checks and resolves the command line; the error is one line for the usage
    /// message.
    pub fn from_cli(cli: Cli) -> Result<Config, String> {
        let faults = faults(&cli);
        // clap requires both for the relay; only `replay` goes without them.
        let (Some(a), Some(b)) = (cli.a, cli.b) else {
            return Err("the relay needs both -A and -B".to_string());
        };
        if b.endpoint().and_then(Endpoint::numeric_port) == Some(0) {
            return Err(format!("-B {b}: B needs a real port, not 0"));
        }
        let tls = tls_options(&cli.tls, Some(&a), Some(&b))?;
        let a_addrs = resolve(&a).map_err(|e| format!("-A: {e}"))?;
        let b_addrs = resolve(&b).map_err(|e| format!("-B: {e}"))?;
        let dumps = dump_paths(cli.output.dump, cli.output.prefix);
        let capture = capture_file(cli.output.capture, cli.capture_format, dumps.as_ref())?;
        let events = events_to(cli.output.events, dumps.as_ref(), capture.as_ref())?;
        let buffers = cli
            .output
            .buffers
            .unwrap_or(SizePair(DEFAULT_BUFFER, DEFAULT_BUFFER));
        Ok(Config {
            a,
            a_addrs,
            b,
            b_addrs,
            tls,
            buffers: (buffers.0, buffers.1),
            socket_buffers: cli.output.socket_buffers.map(|s| (s.0, s.1)),
            dumps,
            capture,
            colour: ColourChoice::from_flags(cli.output.color, cli.output.colourless),
            quiet: cli.quiet > 0,
            tally_only: cli.quiet > 1,
            max_dump: cli.max_dump,
            timestamps: cli.output.timestamps,
            events,
            faults,
            kernel_queues: cli.output.kernel_queues,
            keep_listening: cli
                .keep_listening
                .then(|| cli.max_conns.map_or(DEFAULT_MAX_CONNS, |n| n as usize)),
        })
    }
}

/// A TCP side's addresses; none for a UNIX socket.
fn resolve(address: &Address) -> Result<Vec<SocketAddr>, String> {
    address.endpoint().map_or(Ok(Vec::new()), Endpoint::resolve)
}

/// The TLS flags, each refused unless the side it is for speaks TLS.
fn tls_options(
    flags: &TlsFlags,
    a: Option<&Address>,
    b: Option<&Address>,
) -> Result<TlsOptions, String> {
    let (a_tls, b_tls) = (
        a.is_some_and(Address::is_tls),
        b.is_some_and(Address::is_tls),
    );
    if !b_tls {
        for (given, flag) in [
            (flags.ca.is_some(), "--tls-ca"),
            (flags.insecure, "--tls-insecure"),
        ] {
            if given {
                return Err(format!("{flag} is for a TLS B: write -B tls:HOST:PORT"));
            }
        }
    }
    if !a_tls && flags.cert.is_some() {
        return Err("--tls-cert is for a TLS A: write -A tls:[HOST]:PORT".to_string());
    }
    for (given, flag) in [
        (flags.keylog.is_some(), "--tls-keylog"),
        (flags.alpn.is_some(), "--tls-alpn"),
    ] {
        if given && !a_tls && !b_tls {
            return Err(format!("{flag} is for a TLS side: write tls: in -A or -B"));
        }
    }
    let alpn: Vec<Vec<u8>> = match &flags.alpn {
        Some(list) => list.split(',').map(|p| p.as_bytes().to_vec()).collect(),
        None => Vec::new(),
    };
    if alpn.iter().any(|p| p.is_empty() || p.len() > 255) {
        return Err(format!(
            "--tls-alpn {}: each protocol is 1 to 255 bytes, separated by commas",
            flags.alpn.as_deref().unwrap_or("")
        ));
    }
    Ok(TlsOptions {
        ca: flags.ca.clone(),
        insecure: flags.insecure,
        cert_and_key: flags.cert.clone().zip(flags.key.clone()),
        keylog: flags.keylog.clone(),
        alpn,
    })
}

/// `-o` (the default names) or `-f PREFIX`.
fn dump_paths(dump: bool, prefix: Option<PathBuf>) -> Option<DumpPaths> {
    match (dump, prefix) {
        (_, Some(prefix)) => Some(DumpPaths::with_prefix(prefix)),
        (true, None) => Some(DumpPaths::with_prefix(PathBuf::new())),
        (false, None) => None,
    }
}

/// `-w`: the capture, in the format `--capture-format` or else its name asks for
/// (`-`, standard output, is pcap unless pcapng is asked for).
fn capture_file(
    path: Option<PathBuf>,
    format: Option<CaptureFormat>,
    dumps: Option<&DumpPaths>,
) -> Result<Option<CaptureFile>, String> {
    let format_for = |path: &Path| match format {
        Some(CaptureFormat::Pcap) => Format::Pcap,
        Some(CaptureFormat::Pcapng) => Format::PcapNg,
        None => Format::for_path(path),
    };
    match path {
        // The dump files would overwrite the capture, or the other way round.
        Some(path) if dumps.is_some_and(|d| d.contains(&path)) => Err(format!(
            "-w {}: that is also a dump file's name",
            path.display()
        )),
        Some(path) => Ok(Some(CaptureFile {
            format: format_for(&path),
            path,
        })),
        None => Ok(None),
    }
}

/// `--events`: a file, or `-` for standard output.
fn events_to(
    path: Option<PathBuf>,
    dumps: Option<&DumpPaths>,
    capture: Option<&CaptureFile>,
) -> Result<Option<EventsTo>, String> {
    match path {
        Some(path) if path.as_os_str() == "-" && capture.is_some_and(CaptureFile::is_stdout) => {
            Err("-w - and --events - both want standard output: send one of them to a file".into())
        }
        Some(path) if path.as_os_str() == "-" => Ok(Some(EventsTo::Stdout)),
        // The dump files would overwrite the events, or the other way round.
        Some(path) if dumps.is_some_and(|d| d.contains(&path)) => Err(format!(
            "--events {}: that is also a dump file's name",
            path.display()
        )),
        Some(path) if capture.is_some_and(|c| c.path == path) => Err(format!(
            "--events {}: that is also the capture's name",
            path.display()
        )),
        Some(path) => Ok(Some(EventsTo::File(path))),
        None => Ok(None),
    }
}

/// The faults to inject into A->B and B->A: each flag gives a value per direction.
fn faults(cli: &Cli) -> [Faults; 2] {
    let side = |i: usize| Faults {
        rate: cli.rate.and_then(|r| r[i]),
        delay: cli.delay.and_then(|d| d[i]),
        slice: cli.slice.and_then(|s| s[i]),
        reset_after: cli.reset_after.and_then(|n| n[i]),
        stall_after: cli.stall_after.and_then(|n| n[i]),
    };
    [side(0), side(1)]
}

/// What `tiburoncin replay` is asked to do.
#[derive(Debug, Clone)]
pub enum ReplayMode {
    List,
    /// Print the chosen connection's turns as hex (for tests).
    Dump,
    /// Play `side` against a live peer: listen on `addrs` (as B) or connect to them
    /// (as A); `shown` is the address as typed, for the start-up line.
    Play {
        side: Side,
        shown: Address,
        addrs: Vec<SocketAddr>,
    },
}

/// Everything a replay needs, checked and resolved.
#[derive(Debug, Clone)]
pub struct ReplayConfig {
    pub capture: PathBuf,
    pub mode: ReplayMode,
    /// `--stream`: the connections to play; all when `None`.
    pub stream: Option<Vec<usize>>,
    /// `--timing recorded`: the speed factor for the recorded pauses.
    pub pace: Option<f64>,
    pub timeout: Duration,
    /// `--color` and `-c`: decided for standard output when the replay starts.
    pub colour: ColourChoice,
    pub quiet: bool,
    /// `-w`: the replayed session, as the relay's capture shows a relayed one.
    pub record: Option<CaptureFile>,
    /// `--client`: the endpoint that is A, whatever the capture suggests.
    pub client: Option<SocketAddr>,
    /// `--ignore` and `--carry`, in the order given.
    pub rules: Vec<Rule>,
    /// `--report`: where the JSON verdict goes.
    pub report: Option<PathBuf>,
    /// After `--`: the program to run against the replay, and its arguments.
    pub command: Option<Vec<String>>,
    /// The TLS flags, for a `tls:` address of `--as`.
    pub tls: TlsOptions,
}

/// What a rule does with the bytes its regex matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleKind {
    /// `--ignore`: the span compares equal to the recorded one.
    Ignore,
    /// `--carry`: as `Ignore`, and the group's live value replaces its recorded one.
    Carry,
}

/// One `--ignore` or `--carry`, compiled.
#[derive(Debug, Clone)]
pub struct Rule {
    pub kind: RuleKind,
    pub regex: regex::bytes::Regex,
}

impl Rule {
    /// The rule as it was typed: `--ignore 'Date: [^\r]*'`.
    pub fn name(&self) -> String {
        let flag = match self.kind {
            RuleKind::Ignore => "--ignore",
            RuleKind::Carry => "--carry",
        };
        format!("{flag} '{}'", self.regex.as_str())
    }

    fn compile(kind: RuleKind, pattern: &str) -> Result<Rule, String> {
        let flag = match kind {
            RuleKind::Ignore => "--ignore",
            RuleKind::Carry => "--carry",
        };
        let regex = regex::bytes::Regex::new(pattern).map_err(|e| {
            // The regex crate explains over several lines, with a caret; one is enough.
            let why = e.to_string();
            let last = why
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("");
            format!(
                "{flag} '{pattern}' is not a regular expression: {}",
                last.trim()
            )
        })?;
        if pattern.is_empty() {
            return Err(format!("{flag}: the regular expression is empty"));
        }
        // Group 0 is the whole match: one group of our own makes two.
        if kind == RuleKind::Carry && regex.captures_len() != 2 {
            return Err(format!(
                "--carry '{pattern}' needs exactly one capture group (the value to carry), \
                 like 'token=([0-9a-f]+)'; it has {}",
                regex.captures_len() - 1
            ));
        }
        Ok(Rule { kind, regex })
    }
}

impl ReplayConfig {
    /// Checks and resolves `tiburoncin replay`'s arguments; the error is one line.
    pub fn from_args(args: ReplayArgs) -> Result<ReplayConfig, String> {
        let (mode, tls) = replay_mode(args.side, args.a, args.b, args.dump, &args.tls)?;
        check_command(&mode, args.command.as_deref())?;
        let record = match args.record {
            // Writing the capture being read would destroy the recording.
            Some(path) if path == args.capture => {
                return Err(format!(
                    "-w {}: that is the capture being replayed",
                    path.display()
                ));
            }
            // Standard output carries the replay's own lines.
            Some(path) if path.as_os_str() == "-" => {
                return Err(
                    "-w -: the replay's capture goes to a file, not standard output".into(),
                );
            }
            Some(path) => Some(CaptureFile {
                format: Format::for_path(&path),
                path,
            }),
            None => None,
        };
        let mut rules = Vec::new();
        for pattern in &args.ignore {
            rules.push(Rule::compile(RuleKind::Ignore, pattern)?);
        }
        for pattern in &args.carry {
            rules.push(Rule::compile(RuleKind::Carry, pattern)?);
        }
        if matches!(mode, ReplayMode::List | ReplayMode::Dump)
            && (!rules.is_empty() || args.command.is_some() || args.report.is_some())
        {
            return Err("--ignore, --carry, --report and -- CMD go with --as".into());
        }
        Ok(ReplayConfig {
            rules,
            report: args.report,
            command: args.command,
            record,
            capture: args.capture,
            mode,
            stream: args.stream.map(|s| s.0),
            pace: (args.timing == Timing::Recorded).then_some(args.speed),
            timeout: args.timeout,
            colour: ColourChoice::from_flags(args.color, args.colourless),
            quiet: args.quiet,
            client: args.client,
            tls,
        })
    }
}

/// `-- CMD`: a command to run, against a replay that has a port to tell it.
fn check_command(mode: &ReplayMode, command: Option<&[String]>) -> Result<(), String> {
    match (mode, command) {
        (_, Some([])) => Err("-- must be followed by a command to run".into()),
        // The command is told the port to use ({port}); a UNIX socket has none.
        (
            ReplayMode::Play {
                shown: Address::Unix(_),
                ..
            },
            Some(_),
        ) => Err("-- CMD goes with a TCP or TLS address, not unix:".into()),
        _ => Ok(()),
    }
}

/// What `--as`, `-A` and `-B` ask for together: `--as b` listens on `-A`, `--as a`
/// connects to `-B`, and without `--as` the capture is listed (or, hidden, dumped).
fn replay_mode(
    side: Option<Side>,
    a: Option<Address>,
    b: Option<Address>,
    dump: bool,
    tls: &TlsFlags,
) -> Result<(ReplayMode, TlsOptions), String> {
    let (a_tls, b_tls) = (a.as_ref(), b.as_ref());
    let options = match side {
        Some(Side::B) => tls_options(tls, a_tls, None)?,
        Some(Side::A) => tls_options(tls, None, b_tls)?,
        None => tls_options(tls, a_tls, b_tls)?,
    };
    let mode = match (side, a, b) {
        (Some(Side::B), Some(a), None) => {
            let addrs = resolve(&a).map_err(|e| format!("-A: {e}"))?;
            ReplayMode::Play {
                side: Side::B,
                shown: a,
                addrs,
            }
        }
        (Some(Side::A), None, Some(b)) => {
            if b.endpoint().and_then(Endpoint::numeric_port) == Some(0) {
                return Err(format!("-B {b}: B needs a real port, not 0"));
            }
            let addrs = resolve(&b).map_err(|e| format!("-B: {e}"))?;
            ReplayMode::Play {
                side: Side::A,
                shown: b,
                addrs,
            }
        }
        (Some(Side::B), _, Some(_)) => {
            return Err("--as b listens on -A; -B is for --as a".into());
        }
        (Some(Side::A), Some(_), _) => {
            return Err("--as a connects to -B; -A is for --as b".into());
        }
        (Some(_), None, None) => return Err("--as needs -A or -B".into()),
        (None, None, None) if dump => ReplayMode::Dump,
        (None, None, None) => ReplayMode::List,
        (None, _, _) => return Err("-A and -B go with --as".into()),
    };
    Ok((mode, options))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn config(args: &[&str]) -> Result<Config, String> {
        let cli = Cli::try_parse_from(std::iter::once("tiburoncin").chain(args.iter().copied()))
            .map_err(|e| e.to_string())?;
        Config::from_cli(cli)
    }

    #[test]
    fn defaults_as_the_original() {
        let c = config(&["-A", "127.0.0.1:0", "-B", "127.0.0.1:9"]).unwrap();
        assert_eq!(c.buffers, (2048, 2048));
        assert_eq!(c.socket_buffers, None);
        assert!(c.colour == ColourChoice::Auto && c.dumps.is_none());
    }

    #[test]
    fn capture_to_standard_output() {
        let c = config(&["-A", "1", "-B", "2", "-w", "-"]).unwrap();
        let capture = c.capture.unwrap();
        assert!(capture.is_stdout());
        assert_eq!(capture.format, Format::Pcap);
        let c = config(&[
            "-A",
            "1",
            "-B",
            "2",
            "-w",
            "-",
            "--capture-format",
            "pcapng",
        ]);
        assert_eq!(c.unwrap().capture.unwrap().format, Format::PcapNg);
        let c = config(&[
            "-A",
            "1",
            "-B",
            "2",
            "-w",
            "x.pcapng",
            "--capture-format",
            "pcap",
        ]);
        assert_eq!(c.unwrap().capture.unwrap().format, Format::Pcap);
        let err = config(&["-A", "1", "-B", "2", "-w", "-", "--events", "-"]).unwrap_err();
        assert!(err.contains("both want standard output"), "{err}");
        assert!(config(&["-A", "1", "-B", "2", "--capture-format", "pcap"]).is_err());
    }

    #[test]
    fn dump_file_names() {
        let c = config(&["-A", "1", "-B", "2", "-o"]).unwrap();
        assert_eq!(c.dumps.unwrap().a_to_b, PathBuf::from("AtoB.dump"));
        let c = config(&["-A", "1", "-B", "2", "-f", "/tmp/x-"]).unwrap();
        let dumps = c.dumps.unwrap();
        assert_eq!(dumps.a_to_b, PathBuf::from("/tmp/x-AtoB.dump"));
        assert_eq!(dumps.b_to_a, PathBuf::from("/tmp/x-BtoA.dump"));
    }

    fn replay_config(args: &[&str]) -> Result<ReplayConfig, String> {
        let all = ["tiburoncin", "replay"].iter().chain(args).copied();
        let cli = Cli::try_parse_from(all).map_err(|e| e.to_string())?;
        match cli.command {
            Some(crate::cli::args::Command::Replay(args)) => ReplayConfig::from_args(args),
            _ => Err("not replay".into()),
        }
    }

    #[test]
    fn replay_capture_goes_to_a_file() {
        let err = replay_config(&["f", "--as", "b", "-A", ":0", "-w", "-"]).unwrap_err();
        assert!(err.contains("-w -"), "{err}");
    }

    #[test]
    fn replay_client() {
        let c = replay_config(&["f", "--list", "--client", "[::1]:51234"]).unwrap();
        assert_eq!(c.client, Some("[::1]:51234".parse().unwrap()));
        assert_eq!(replay_config(&["f", "--list"]).unwrap().client, None);
        let err = replay_config(&["f", "--list", "--client", "localhost:1"]).unwrap_err();
        assert!(err.contains("is not an IP address and port"), "{err}");
    }

    #[test]
    fn replay_modes() {
        let c = replay_config(&["f", "--as", "b", "-A", "127.0.0.1:0"]).unwrap();
        assert!(matches!(c.mode, ReplayMode::Play { side: Side::B, .. }));
        assert_eq!(c.pace, None);
        let c = replay_config(&[
            "f",
            "--as",
            "a",
            "-B",
            "127.0.0.1:9",
            "--timing",
            "recorded",
        ])
        .unwrap();
        assert!(matches!(c.mode, ReplayMode::Play { side: Side::A, .. }));
        assert_eq!(c.pace, Some(1.0));
        assert!(matches!(
            replay_config(&["f", "--list"]).unwrap().mode,
            ReplayMode::List
        ));
        for bad in [
            &["f", "--as", "b", "-A", "1", "-B", "2"][..],
            &["f", "--as", "a", "-B", "2", "-A", "1"],
            &["f", "--as", "a", "-B", "127.0.0.1:0"],
            &["f", "--list", "-A", "1"],
        ] {
            assert!(replay_config(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn replay_takes_tls_and_unix_addresses_and_the_tls_flags_of_its_side() {
        let c = replay_config(&["f", "--as", "b", "-A", "tls::0", "--tls-alpn", "h2"]).unwrap();
        assert!(matches!(
            c.mode,
            ReplayMode::Play {
                shown: Address::Tls(_),
                ..
            }
        ));
        assert_eq!(c.tls.alpn, vec![b"h2".to_vec()]);
        let c =
            replay_config(&["f", "--as", "a", "-B", "tls:127.0.0.1:1", "--tls-insecure"]).unwrap();
        assert!(c.tls.insecure);
        let c = replay_config(&["f", "--as", "a", "-B", "unix:@x"]).unwrap();
        assert!(matches!(
            c.mode,
            ReplayMode::Play {
                shown: Address::Unix(_),
                ..
            }
        ));
        for (bad, why) in [
            (
                &["f", "--as", "b", "-A", "tls::0", "--tls-ca", "x"][..],
                "--tls-ca is for a TLS B",
            ),
            (
                &[
                    "f",
                    "--as",
                    "a",
                    "-B",
                    "h:1",
                    "--tls-cert",
                    "c",
                    "--tls-key",
                    "k",
                ],
                "--tls-cert is for a TLS A",
            ),
            (
                &["f", "--as", "b", "-A", "unix:/x", "--", "cmd"],
                "-- CMD goes with a TCP or TLS address",
            ),
        ] {
            let err = replay_config(bad).unwrap_err();
            assert!(err.contains(why), "{bad:?}: {err}");
        }
    }

    #[test]
    fn replay_rules_are_compiled_and_checked() {
        let play = ["f", "--as", "b", "-A", "127.0.0.1:0"];
        let with = |extra: &[&str]| replay_config(&[&play[..], extra].concat());
        let c = with(&["--ignore", "Date: [^\\r]*", "--carry", "id=([0-9]+)"]).unwrap();
        let names: Vec<String> = c.rules.iter().map(Rule::name).collect();
        assert_eq!(names, ["--ignore 'Date: [^\\r]*'", "--carry 'id=([0-9]+)'"]);
        assert_eq!(c.rules[1].kind, RuleKind::Carry);
        let err = with(&["--ignore", "a(b"]).unwrap_err();
        assert!(
            err.starts_with("--ignore 'a(b' is not a regular expression: "),
            "{err}"
        );
        assert!(!err.contains('\n'), "{err}");
        for carry in ["id=[0-9]+", "(a)(b)"] {
            let err = with(&["--carry", carry]).unwrap_err();
            assert!(err.contains("needs exactly one capture group"), "{err}");
        }
        // A group that does not capture is no value to carry.
        assert!(with(&["--carry", "(?:id)=([0-9]+)"]).is_ok());
        assert!(with(&["--ignore", ""]).is_err());
        let err = replay_config(&["f", "--list", "--ignore", "x"]).unwrap_err();
        assert!(err.contains("go with --as"), "{err}");
        let c = with(&["--", "curl", "{addr}"]).unwrap();
        assert_eq!(c.command.unwrap(), ["curl", "{addr}"]);
    }

    #[test]
    fn keep_listening_and_its_bound() {
        assert_eq!(
            config(&["-A", "1", "-B", "2"]).unwrap().keep_listening,
            None
        );
        let c = config(&["-A", "1", "-B", "2", "-k"]).unwrap();
        assert_eq!(c.keep_listening, Some(DEFAULT_MAX_CONNS));
        let c = config(&["-A", "1", "-B", "2", "-k", "--max-conns", "3"]).unwrap();
        assert_eq!(c.keep_listening, Some(3));
        for bad in [
            &["-A", "1", "-B", "2", "--max-conns", "3"][..],
            &["-A", "1", "-B", "2", "-k", "--max-conns", "0"],
            &["-A", "1", "-B", "2", "-k", "--max-conns", "x"],
        ] {
            assert!(config(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn faults_per_direction() {
        use crate::relay::faults::Delay;
        let c = config(&["-A", "1", "-B", "2"]).unwrap();
        assert!(!c.faults[0].any() && !c.faults[1].any());
        let c = config(&[
            "-A",
            "1",
            "-B",
            "2",
            "--rate",
            "10k",
            "--delay",
            ":200~50",
            "--slice",
            "7:",
            "--reset-after",
            "1M:",
            "--stall-after",
            ":5",
        ])
        .unwrap();
        let ms = Duration::from_millis;
        assert_eq!(
            c.faults[0],
            Faults {
                rate: Some(10_000),
                slice: Some(7),
                reset_after: Some(1_000_000),
                ..Faults::default()
            }
        );
        assert_eq!(
            c.faults[1],
            Faults {
                rate: Some(10_000),
                delay: Some(Delay {
                    base: ms(200),
                    jitter: ms(50)
                }),
                stall_after: Some(5),
                ..Faults::default()
            }
        );
        for bad in [
            &["-A", "1", "-B", "2", "--rate", "0"][..],
            &["-A", "1", "-B", "2", "--slice", "0:1"],
            &["-A", "1", "-B", "2", "--delay", "fast"],
            &["-A", "1", "-B", "2", "--reset-after", "1:2:3"],
            &["-A", "1", "-B", "2", "--stall-after", ":"],
        ] {
            assert!(config(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn each_connection_has_its_own_dump_files() {
        let c = config(&["-A", "1", "-B", "2", "-k", "-f", "/tmp/run-"]).unwrap();
        let third = c.dumps.unwrap().for_connection(3);
        assert_eq!(third.a_to_b, PathBuf::from("/tmp/run-3-AtoB.dump"));
        assert_eq!(third.b_to_a, PathBuf::from("/tmp/run-3-BtoA.dump"));
        let c = config(&["-A", "1", "-B", "2", "-k", "-o"]).unwrap();
        let first = c.dumps.unwrap().for_connection(1);
        assert_eq!(first.a_to_b, PathBuf::from("1-AtoB.dump"));
    }

    #[test]
    fn events_go_to_a_file_or_standard_output() {
        let c = config(&["-A", "1", "-B", "2"]).unwrap();
        assert_eq!(c.events, None);
        let c = config(&["-A", "1", "-B", "2", "--events", "-"]).unwrap();
        assert_eq!(c.events, Some(EventsTo::Stdout));
        let c = config(&["-A", "1", "-B", "2", "--events", "e.jsonl"]).unwrap();
        assert_eq!(c.events, Some(EventsTo::File("e.jsonl".into())));
        let err = config(&["-A", "1", "-B", "2", "-o", "--events", "BtoA.dump"]).unwrap_err();
        assert!(err.contains("also a dump file"), "{err}");
        let err = config(&["-A", "1", "-B", "2", "-w", "e", "--events", "e"]).unwrap_err();
        assert!(err.contains("also the capture"), "{err}");
    }

    #[test]
    fn capture_format_follows_the_name() {
        let c = config(&["-A", "1", "-B", "2", "-w", "/tmp/s.pcap"]).unwrap();
        assert_eq!(c.capture.unwrap().format, Format::Pcap);
        let c = config(&["-A", "1", "-B", "2", "-w", "s.PcapNG"]).unwrap();
        assert_eq!(c.capture.unwrap().format, Format::PcapNg);
        let c = config(&["-A", "1", "-B", "2", "-w", "anything"]).unwrap();
        assert_eq!(c.capture.unwrap().format, Format::Pcap);
        assert!(config(&["-A", "1", "-B", "2"]).unwrap().capture.is_none());
    }

    #[test]
    fn a_capture_needs_a_name_of_its_own() {
        // clap itself refuses an empty name.
        assert!(config(&["-A", "1", "-B", "2", "-w", ""]).is_err());
        let err = config(&["-A", "1", "-B", "2", "-o", "-w", "AtoB.dump"]).unwrap_err();
        assert!(err.contains("also a dump file"), "{err}");
        let err = config(&["-A", "1", "-B", "2", "-f", "x-", "-w", "x-BtoA.dump"]).unwrap_err();
        assert!(err.contains("also a dump file"), "{err}");
    }

    #[test]
    fn tls_flags_need_their_tls_side() {
        let c = config(&["-A", "tls::1", "-B", "unix:/x", "--tls-alpn", "h2,http/1.1"]).unwrap();
        assert_eq!(c.tls.alpn, vec![b"h2".to_vec(), b"http/1.1".to_vec()]);
        assert!(c.b_addrs.is_empty());
        let c = config(&["-A", "1", "-B", "tls:127.0.0.1:2", "--tls-insecure"]).unwrap();
        assert!(c.tls.insecure && c.b.is_tls());
        for bad in [
            &["-A", "1", "-B", "2", "--tls-insecure"][..],
            &["-A", "tls::1", "-B", "2", "--tls-ca", "ca.pem"],
            &[
                "-A",
                "1",
                "-B",
                "tls::2",
                "--tls-cert",
                "c",
                "--tls-key",
                "k",
            ],
            &["-A", "1", "-B", "2", "--tls-keylog", "k"],
            &["-A", "tls::1", "-B", "2", "--tls-alpn", "h2,,x"],
            &["-A", "1", "-B", "tls::2", "--tls-ca", "c", "--tls-insecure"],
            &["-A", "1", "-B", "tls::0"],
        ] {
            assert!(config(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn b_needs_a_port_and_names_must_resolve() {
        assert!(
            config(&["-A", "1", "-B", "127.0.0.1:0"])
                .unwrap_err()
                .contains("real port")
        );
        // glibc refuses an empty label without asking DNS: no traffic leaves loopback.
        let err = config(&["-A", "1", "-B", "a..b:80"]).unwrap_err();
        assert!(err.starts_with("-B: cannot resolve a..b:80"), "{err}");
    }
}
