//! `tiburoncin replay`: list a capture's connections, or play one side of them.
//!
//! This is the command's top level: which connections (`--stream`, or all of them),
//! and then the listing, the debugging dump, or the play: as the server (listen on
//! -A, like the relay does, and serve each client that comes) or as the client
//! (connect to -B, like the relay does, once per recorded connection), with the
//! other side's program started by `-- CMD` if there is one, and the verdict at the
//! end, printed and, with `--report`, written as JSON. The byte-for-byte work is in
//! `player` and `matcher`; several connections at once in `connections`.

pub mod command;
pub mod connections;
pub mod difference;
pub mod matcher;
pub mod peer_socket;
pub mod player;
pub mod reassembly;
pub mod recording;
pub mod verdict;

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, SystemTime};

use crate::output::capture::{Capture, Connection};
use crate::output::capture_streams::stand_ins;

use crate::cli::addr::Address;
use crate::cli::args::Side;
use crate::cli::config::{CaptureFile, ReplayConfig, ReplayMode, Rule, TlsOptions};
use crate::direction::Direction;
use crate::error::Error;
use crate::relay::net;
use crate::replay::command::Running;
use crate::replay::connections::{Schedule, Unplayed};
use crate::replay::peer_socket::PeerSocket;
use crate::replay::player::{Carries, PlaySettings, Player};
use crate::replay::reassembly::{Chosen, StreamEnd};
use crate::replay::recording::{Listing, Recording};
use crate::replay::verdict::{CommandReport, Verdict};
use crate::tls::{BSide, TlsSetup};
use crate::words::Count;

/// Runs the replay command; a difference from the recording is an `Error::Differs`.
pub fn run(config: ReplayConfig) -> Result<(), Error> {
    let out = &mut BufWriter::new(io::stdout());
    if !matches!(config.mode, ReplayMode::List) {
        readable_twice(&config.capture)?;
    }
    match &config.mode {
        ReplayMode::List => {
            let listing = recording::listing(&config.capture, config.client)?;
            print_list(out, &listing).map_err(written)?;
        }
        ReplayMode::Dump => dump(out, &config)?,
        ReplayMode::Play { side, shown, addrs } => {
            let peer = Peer {
                side: *side,
                shown,
                addrs,
                tls: &config.tls,
            };
            play(out, &config, peer)?
        }
    }
    out.flush().map_err(written)
}

/// Playing reads the capture more than once (a pass to choose the connections, then
/// one per connection played), which a pipe or a FIFO cannot give: the second open
/// of a FIFO would wait for a writer that never comes, and `<(...)` would be empty.
/// `--list` reads it once and takes either.
fn readable_twice(path: &Path) -> Result<(), Error> {
    match std::fs::metadata(path) {
        Ok(meta) if !meta.is_file() => Err(Error::Capture {
            path: path.to_path_buf(),
            reason: "replay reads the capture more than once, so it must be a file, \
                     not a pipe or a FIFO: save it to a file first (--list reads it once)"
                .into(),
        }),
        // A missing or unreadable file is told by the first open, as for --list.
        _ => Ok(()),
    }
}

/// A failure to write to standard output.
fn written(source: io::Error) -> Error {
    Error::Output {
        what: "to standard output".into(),
        source,
    }
}

/// `--dump`: the chosen connection's turns, one line of hex each.
fn dump(out: &mut impl Write, config: &ReplayConfig) -> Result<(), Error> {
    let stream = choose_stream(config)?;
    existing_recording(config, stream)?;
    let turns = recording::turns_with_client(&config.capture, stream, config.client)?;
    for turn in turns {
        let hex: String = turn.bytes.iter().map(|b| format!("{b:02x}")).collect();
        writeln!(out, "{} {hex}", turn.dir.from()).map_err(written)?;
    }
    Ok(())
}

/// The live peer: which side we play, where the peer is, and with `tls:`, how.
struct Peer<'c> {
    side: Side,
    shown: &'c Address,
    addrs: &'c [SocketAddr],
    tls: &'c TlsOptions,
}

/// What every connection of a run shares.
struct Run<'c> {
    config: &'c ReplayConfig,
    side: Side,
    shown: &'c Address,
    addrs: &'c [SocketAddr],
    tls: TlsSetup,
    streams: Vec<usize>,
    /// When each of `streams` starts in the recording.
    firsts: Vec<Duration>,
    rules: Arc<[Rule]>,
    carries: Carries,
}

/// Plays `peer.side` of the chosen connections against the live peers.
fn play(out: &mut impl Write, config: &ReplayConfig, peer: Peer) -> Result<(), Error> {
    let Peer {
        side,
        shown,
        addrs,
        tls,
    } = peer;
    // The file and the connections are checked before anyone connects.
    let listing = recording::listing(&config.capture, config.client)?;
    let streams = chosen_streams(config, &listing)?;
    if config.record.is_some() && streams.len() > 1 {
        return Err(Error::ChooseStream {
            path: config.capture.clone(),
            count: streams.len(),
        });
    }
    out.flush().map_err(written)?;
    let (a, b) = match side {
        Side::B => (Some(shown), None),
        Side::A => (None, Some(shown)),
    };
    let tls = TlsSetup::prepare(a, b, tls, |line| println!("{line}"))?;
    let run = Run {
        config,
        side,
        shown,
        addrs,
        tls,
        firsts: streams.iter().map(|&s| listing.streams[s].first).collect(),
        streams,
        rules: config.rules.clone().into(),
        carries: Carries::default(),
    };
    let (verdicts, command) = match side {
        Side::B => run.serve()?,
        Side::A => run.visit()?,
    };
    run.conclude(verdicts, command)
}

impl Run<'_> {
    fn settings(&self, stream: usize) -> PlaySettings {
        let several = self.streams.len() > 1;
        PlaySettings {
            ours: match self.side {
                Side::A => Direction::AtoB,
                Side::B => Direction::BtoA,
            },
            stream,
            timeout: self.config.timeout,
            pace: self.config.pace,
            colour: self.config.colour.for_stream(&io::stdout()),
            quiet: self.config.quiet,
            label: if several {
                format!("[{stream}] ")
            } else {
                String::new()
            },
            rules: Arc::clone(&self.rules),
            carries: Arc::clone(&self.carries),
        }
    }

    /// Plays connection `stream` on `socket`.
    fn play_one(
        &self,
        stream: usize,
        socket: PeerSocket,
        progress: Option<(&Schedule, usize)>,
    ) -> Verdict {
        let failed = |error| Verdict::failed(stream, error, self.rules.len());
        let recording = match existing_recording(self.config, stream) {
            Ok(recording) => recording,
            Err(error) => return failed(error),
        };
        let capture = match &self.config.record {
            Some(file) => match start_capture(file, &socket, self.side) {
                Ok(capture) => Some((capture, what(file))),
                Err(error) => return failed(error),
            },
            None => None,
        };
        let mut out = io::stdout();
        let mut player = Player::new(socket, self.settings(stream), &mut out);
        if let Some((capture, what)) = capture {
            player = player.recording_into(capture, what);
        }
        if let Some((schedule, k)) = progress {
            player = player.on_progress(move |time| schedule.at(k, time));
        }
        player.play(recording)
    }

    /// As B: listen, start the client command if there is one, and serve every
    /// client that comes, each in its own thread, until every chosen connection has
    /// had one (or none came in time).
    fn serve(&self) -> Result<(Vec<Verdict>, Option<CommandReport>), Error> {
        let openings = recording::openings(&self.config.capture, &self.streams)?;
        let backlog = i32::try_from(self.streams.len())
            .unwrap_or(i32::MAX)
            .max(16);
        // Said before a failure to listen too, as the relay does.
        let listening = match self.shown {
            Address::Unix(path) => path.listen(None, backlog),
            _ => net::listen_with_backlog(self.addrs, None, backlog).map(|s| (s, None)),
        };
        let shown = self
            .shown
            .as_listening(listening.as_ref().ok().map(|(socket, _)| socket));
        println!("Waiting for a connection from A {shown}...");
        // The socket file goes when the replay is over.
        let (listener, _file) = listening.map_err(|source| Error::Listen {
            addr: shown.to_string(),
            source,
        })?;
        let mut command = self.start_client(&listener)?;
        let unplayed = Unplayed::new(openings);
        let mut verdicts = thread::scope(|scope| {
            let mut threads = Vec::new();
            let mut missing = None;
            for _ in 0..self.streams.len() {
                let mut gone = || command.as_mut().is_some_and(Running::has_exited);
                match connections::accept(&listener, self.config.timeout, &mut gone) {
                    Ok(socket) => {
                        let unplayed = &unplayed;
                        threads.push(scope.spawn(move || self.serve_one(socket, unplayed)));
                    }
                    Err(error) => {
                        missing = Some(error);
                        break;
                    }
                }
            }
            let mut verdicts: Vec<Verdict> = threads
                .into_iter()
                .filter_map(|t| t.join().ok().flatten())
                .collect();
            if let Some(error) = missing {
                for stream in unplayed.left() {
                    let error = Error::Accept(io::Error::new(error.kind(), error.to_string()));
                    verdicts.push(Verdict::failed(stream, error, self.rules.len()));
                }
            }
            verdicts
        });
        verdicts.sort_by_key(|v| v.stream);
        let report = command.map(|c| c.finish_client(self.config.timeout));
        Ok((verdicts, report))
    }

    /// One client accepted: with `-A tls:` its handshake, then the recorded
    /// connection it opens, played. `None` when every connection is taken.
    fn serve_one(&self, socket: socket2::Socket, unplayed: &Unplayed) -> Option<Verdict> {
        let socket = match self.tls.a_side(socket) {
            Ok(stream) => PeerSocket::new(stream),
            // Which connection it meant to open is not known: the first one left
            // fails with the reason.
            Err(error) => {
                let stream = unplayed.take_first()?;
                return Some(Verdict::failed(
                    stream,
                    Error::Accept(error),
                    self.rules.len(),
                ));
            }
        };
        let stream = unplayed.pick_for(&socket, &self.rules, self.config.timeout)?;
        Some(self.play_one(stream, socket, None))
    }

    /// `-- CMD` as B's client, told where the replay listens.
    fn start_client(&self, listener: &socket2::Socket) -> Result<Option<Running>, Error> {
        let Some(argv) = &self.config.command else {
            return Ok(None);
        };
        let addr = listener
            .local_addr()
            .ok()
            .and_then(|a| a.as_socket())
            .ok_or_else(|| Error::Accept(io::Error::other("no local address")))?;
        Running::start(command::substitute(argv, addr), addr).map(Some)
    }

    /// As A: start the server command if there is one and wait until B accepts,
    /// then open each chosen connection when the recording does.
    fn visit(&self) -> Result<(Vec<Verdict>, Option<CommandReport>), Error> {
        let mut command = None;
        if let (Some(argv), Some(addr)) =
            (&self.config.command, connections::first_addr(self.addrs))
        {
            let mut running = Running::start(command::substitute(argv, addr), addr)?;
            if let Err(what) = running.until_listening(addr, self.config.timeout) {
                let report = running.finish_server();
                println!("The command {}.", report.outcome);
                return Err(Error::ReplayFailed { what });
            }
            command = Some(running);
        }
        let schedule = Schedule::new(self.firsts.clone());
        let mut verdicts: Vec<Verdict> = thread::scope(|scope| {
            let threads: Vec<_> = self
                .streams
                .iter()
                .enumerate()
                .map(|(k, &stream)| {
                    let schedule = &schedule;
                    scope.spawn(move || {
                        schedule.wait_turn(k);
                        let verdict = self.visit_one(stream, schedule, k);
                        schedule.done(k);
                        verdict
                    })
                })
                .collect();
            threads.into_iter().filter_map(|t| t.join().ok()).collect()
        });
        verdicts.sort_by_key(|v| v.stream);
        Ok((verdicts, command.map(Running::finish_server)))
    }

    fn visit_one(&self, stream: usize, schedule: &Schedule, k: usize) -> Verdict {
        let label = self.settings(stream).label;
        println!("{label}Connecting to B {}...", self.shown);
        match self.connect() {
            Ok(socket) => self.play_one(stream, socket, Some((schedule, k))),
            Err(error) => Verdict::failed(stream, Error::Connect(error), self.rules.len()),
        }
    }

    /// As A: a connection to B, with `-B tls:` once the handshake is done.
    fn connect(&self) -> io::Result<PeerSocket> {
        let socket = match self.shown {
            Address::Unix(path) => path.connect(None)?,
            _ => net::connect(self.addrs, None, &crossbeam_channel::never())?.0,
        };
        match self.tls.b_side(socket)? {
            BSide::Ready(stream) => Ok(PeerSocket::new(stream)),
            // Only a TLS A makes B's handshake wait, and the replay has no A.
            BSide::AwaitingA(_) => Err(io::Error::other("B's handshake waits for an A")),
        }
    }

    /// The verdict lines, the report, and the run's result.
    fn conclude(
        &self,
        verdicts: Vec<Verdict>,
        command: Option<CommandReport>,
    ) -> Result<(), Error> {
        if let Some(path) = &self.config.report {
            verdict::write_report(
                path,
                &self.config.capture,
                &verdicts,
                &self.rules,
                command.as_ref(),
            )?;
        }
        // A connection without a verdict (its thread died) is one that failed.
        let total = self.streams.len().max(verdicts.len());
        let failed = verdicts.iter().filter(|v| v.result.is_err()).count() + total - verdicts.len();
        if total > 1 {
            for verdict in &verdicts {
                println!("{}", verdict.line());
            }
            println!("Replay: {} of {total} connections matched.", total - failed);
        }
        if let Some(command) = &command {
            println!(
                "The command {} {}.",
                command.command.join(" "),
                command.outcome
            );
        }
        let replay = if total == 1 && verdicts.len() == 1 {
            verdicts.into_iter().next().map_or(Ok(()), |v| v.result)
        } else if failed > 0 {
            Err(Error::ReplayFailed {
                what: format!(
                    "Replay differs from the recording in {failed} of {total} connections"
                ),
            })
        } else {
            Ok(())
        };
        match (replay, command) {
            (Ok(()), Some(c)) if !c.passed => Err(Error::ReplayFailed {
                what: format!("The replay matched, but the command {}", c.outcome),
            }),
            (Err(e), Some(c)) => Err(Error::ReplayFailed {
                what: format!("{e}; the command {}", c.outcome),
            }),
            (result, _) => result,
        }
    }
}

/// Connection `stream` of the capture, read up to its first packet: an error if the
/// capture has no such connection.
fn existing_recording(config: &ReplayConfig, stream: usize) -> Result<Recording, Error> {
    let mut recording = Recording::open_with_client(&config.capture, stream, config.client)?;
    if !recording.exists()? {
        return Err(Error::NoSuchStream {
            path: config.capture.clone(),
            stream,
        });
    }
    Ok(recording)
}

/// `-w`: the capture of the replay, its handshake written: one TCP stream between
/// the real addresses of the connection, A the client and B the server, whichever
/// side we play.
fn start_capture(
    file: &CaptureFile,
    socket: &PeerSocket,
    side: Side,
) -> Result<Capture<BufWriter<File>>, Error> {
    // A UNIX socket has no IP address: made-up ones stand in, as in the relay's
    // capture.
    let (ours, theirs) = socket.addrs().unzip();
    let (a, b) = match side {
        Side::A => (ours, theirs),
        Side::B => (theirs, ours),
    };
    let (a, b) = stand_ins(1, a, b);
    let out = File::create(&file.path).map_err(|source| Error::CreateOutput {
        path: file.path.clone(),
        source,
    })?;
    let mut connection = Connection::new(a, b, SystemTime::now());
    // The live peer's side says how it was reached; ours is this process.
    let peer = match side {
        Side::A => 1,
        Side::B => 0,
    };
    connection.transports[peer] = socket.transport();
    Capture::new(
        BufWriter::with_capacity(64 * 1024, out),
        file.format,
        connection,
    )
    .map_err(|source| Error::Output {
        what: what(file),
        source,
    })
}

fn what(file: &CaptureFile) -> String {
    format!("the capture {}", file.path.display())
}

/// The connection `--dump` works on: the one asked for, or the only one there is.
fn choose_stream(config: &ReplayConfig) -> Result<usize, Error> {
    let listing = recording::listing(&config.capture, config.client)?;
    match chosen_streams(config, &listing)?.as_slice() {
        [one] => Ok(*one),
        many => Err(Error::ChooseStream {
            path: config.capture.clone(),
            count: many.len(),
        }),
    }
}

/// The connections to play: those `--stream` names, or all of `listing`'s; each
/// must exist.
fn chosen_streams(config: &ReplayConfig, listing: &Listing) -> Result<Vec<usize>, Error> {
    let count = listing.streams.len();
    if count == 0 {
        let mut reason = "it holds no TCP connection".to_string();
        if listing.skipped.total() > 0 {
            reason += &format!(" (skipped: {})", listing.skipped);
        }
        return Err(Error::Capture {
            path: config.capture.clone(),
            reason,
        });
    }
    let Some(asked) = &config.stream else {
        return Ok((0..count).collect());
    };
    let mut chosen: Vec<usize> = Vec::new();
    for &stream in asked {
        if stream >= count {
            return Err(Error::NoSuchStream {
                path: config.capture.clone(),
                stream,
            });
        }
        if !chosen.contains(&stream) {
            chosen.push(stream);
        }
    }
    Ok(chosen)
}

/// `--list`: a header and one line per connection, in columns, then what was
/// skipped, if anything was.
fn print_list(out: &mut impl Write, listing: &Listing) -> io::Result<()> {
    let rows: Vec<[String; 7]> = listing
        .streams
        .iter()
        .map(|s| {
            let mut ended = format!("A {}, B {}", ending(s.ending[0]), ending(s.ending[1]));
            for dir in Direction::BOTH {
                let missing = s.missing[dir.index()];
                if missing > 0 {
                    let lacks = Count(missing, "byte");
                    ended += &format!(" ({} -> {} lacks {lacks})", dir.from(), dir.to());
                }
            }
            if let Some(how) = chosen(s.chosen) {
                ended += &format!(" ({how})");
            }
            [
                s.number.to_string(),
                s.a.to_string(),
                s.b.to_string(),
                s.bytes[0].to_string(),
                s.bytes[1].to_string(),
                seconds(s.last.saturating_sub(s.first)),
                ended,
            ]
        })
        .collect();
    let header = [
        "Stream",
        "A (client)",
        "B (server)",
        "A->B bytes",
        "B->A bytes",
        "Duration",
        "Ended",
    ];
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |out: &mut dyn Write, cells: [&str; 7]| -> io::Result<()> {
        // Numbers right-aligned, text left-aligned, the last column unpadded.
        let [n, a, b, ab, ba, d, e] = cells;
        let [wn, wa, wb, wab, wba, wd, _] = widths;
        writeln!(
            out,
            "{n:>wn$}  {a:<wa$}  {b:<wb$}  {ab:>wab$}  {ba:>wba$}  {d:>wd$}  {e}"
        )
    };
    line(out, header)?;
    for row in &rows {
        line(out, row.each_ref().map(String::as_str))?;
    }
    if listing.skipped.total() > 0 {
        writeln!(out, "skipped: {}", listing.skipped)?;
    }
    Ok(())
}

/// How A was chosen, when the capture has no handshake to say it.
fn chosen(how: Chosen) -> Option<&'static str> {
    match how {
        Chosen::Handshake => None,
        Chosen::Port => Some("no handshake: A chosen by port"),
        Chosen::FirstPayload => Some("no handshake: A sent first"),
        Chosen::FirstPacket => Some("no handshake: A sent the first packet"),
        Chosen::Given => Some("A given by --client"),
    }
}

fn ending(how: StreamEnd) -> &'static str {
    match how {
        StreamEnd::Fin => "FIN",
        StreamEnd::Rst => "RST",
        StreamEnd::Open => "open",
    }
}

fn seconds(d: Duration) -> String {
    format!("{}.{:06}", d.as_secs(), d.subsec_micros())
}
