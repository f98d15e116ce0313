//! `tiburoncin replay`: list a capture's connections, or play one side of one.
//!
//! This is the command's top level: which connection (Wireshark's numbering, and the
//! only one when there is just one), and then the listing, the debugging dump, or a
//! `Player` set up as the server (listen on -A, like the relay does) or as the client
//! (connect to -B, like the relay does). The byte-for-byte work is in `player`.

pub mod difference;
pub mod player;
pub mod reassembly;
pub mod recording;

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, SystemTime};

use crate::output::capture::{Capture, Connection};

use crate::cli::addr::Endpoint;
use crate::cli::args::Side;
use crate::cli::config::{CaptureFile, ReplayConfig, ReplayMode};
use crate::direction::Direction;
use crate::error::Error;
use crate::relay::net;
use crate::replay::player::{PlaySettings, Player};
use crate::replay::reassembly::{Chosen, StreamEnd};
use crate::replay::recording::{Listing, Recording};

/// Runs the replay command; a difference from the recording is an `Error::Differs`.
pub fn run(config: ReplayConfig) -> Result<(), Error> {
    let out = &mut BufWriter::new(io::stdout());
    match &config.mode {
        ReplayMode::List => {
            let listing = recording::listing(&config.capture, config.client)?;
            print_list(out, &listing).map_err(written)?;
        }
        ReplayMode::Dump => dump(out, &config)?,
        ReplayMode::Play { side, shown, addrs } => play(out, &config, *side, shown, addrs)?,
    }
    out.flush().map_err(written)
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

/// Plays `side` of the chosen connection against the live peer at `addrs`.
fn play(
    out: &mut impl Write,
    config: &ReplayConfig,
    side: Side,
    shown: &Endpoint,
    addrs: &[SocketAddr],
) -> Result<(), Error> {
    let stream = choose_stream(config)?;
    // The file is checked before anyone connects: a typo fails at once.
    let recording = existing_recording(config, stream)?;
    let socket = meet_peer(config, side, shown, addrs)?;
    let settings = PlaySettings {
        ours: match side {
            Side::A => Direction::AtoB,
            Side::B => Direction::BtoA,
        },
        stream,
        timeout: config.timeout,
        pace: config.pace,
        colour: config.colour,
        quiet: config.quiet,
    };
    let capture = match &config.record {
        Some(file) => Some((start_capture(file, &socket, side)?, what(file))),
        None => None,
    };
    let mut player = Player::new(socket, settings, out);
    if let Some((capture, what)) = capture {
        player = player.recording_into(capture, what);
    }
    player.play(recording)
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

/// The live peer, as the relay meets it: playing B we wait for A on -A, playing A we
/// connect to B on -B.
fn meet_peer(
    config: &ReplayConfig,
    side: Side,
    shown: &Endpoint,
    addrs: &[SocketAddr],
) -> Result<TcpStream, Error> {
    let socket = match side {
        Side::B => {
            // Said before a failure to listen too, as the relay does.
            let listener = net::listen(addrs, None);
            let shown = shown.as_listening(listener.as_ref().ok());
            println!("Waiting for a connection from A {shown}...");
            let listener = listener.map_err(Error::Accept)?;
            net::accept_within(&listener, config.timeout).map_err(Error::Accept)?
        }
        Side::A => {
            println!("Connecting to B {shown}...");
            net::connect(addrs, None, &crossbeam_channel::never())
                .map_err(Error::Connect)?
                .0
        }
    };
    Ok(socket.into())
}

/// `-w`: the capture of the replay, its handshake written: one TCP stream between
/// the real addresses of the connection, A the client and B the server, whichever
/// side we play.
fn start_capture(
    file: &CaptureFile,
    socket: &TcpStream,
    side: Side,
) -> Result<Capture<BufWriter<File>>, Error> {
    let addrs = socket
        .local_addr()
        .and_then(|l| Ok((l, socket.peer_addr()?)));
    let (ours, theirs) = addrs.map_err(|source| Error::Output {
        what: what(file),
        source,
    })?;
    let (a, b) = match side {
        Side::A => (ours, theirs),
        Side::B => (theirs, ours),
    };
    let out = File::create(&file.path).map_err(|source| Error::CreateOutput {
        path: file.path.clone(),
        source,
    })?;
    let connection = Connection::new(a, b, SystemTime::now());
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

/// The connection to work on: the one asked for, or the only one there is.
fn choose_stream(config: &ReplayConfig) -> Result<usize, Error> {
    if let Some(n) = config.stream {
        return Ok(n);
    }
    let listing = recording::listing(&config.capture, config.client)?;
    match listing.streams.len() {
        0 if listing.skipped.total() > 0 => Err(Error::Capture {
            path: config.capture.clone(),
            reason: format!("it holds no TCP connection (skipped: {})", listing.skipped),
        }),
        0 => Err(Error::Capture {
            path: config.capture.clone(),
            reason: "it holds no TCP connection".into(),
        }),
        1 => Ok(0),
        count => Err(Error::ChooseStream {
            path: config.capture.clone(),
            count,
        }),
    }
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
                    ended += &format!(" ({} -> {} lacks {missing} bytes)", dir.from(), dir.to());
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
