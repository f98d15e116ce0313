//! tiburoncin: a TCP man in the middle that shows every byte it relays.
//!
//! It connects to a server B, waits for one client A, and relays both directions
//! through a user-space buffer of its own, printing each chunk as a hexdump with how
//! far the receiving side is behind. See `relay` for the architecture. With `-k` it
//! keeps listening and relays every client to a B of its own (`keep_listening`);
//! `faults` makes the relay misbehave on purpose; the logger also writes a capture,
//! dump files and JSON events.

pub mod addr;
pub mod buffer;
pub mod capture;
pub mod cli;
pub mod config;
pub mod decode;
pub mod difference;
pub mod dump;
pub mod error;
pub mod event;
pub mod events_json;
pub mod faults;
pub mod hexdump;
pub mod keep_listening;
pub mod kernel_queues;
pub mod logger;
pub mod net;
pub mod outlet;
pub mod packet;
pub mod pcap_read;
pub mod player;
mod printer;
pub mod reassembly;
pub mod recording;
pub mod relay;
pub mod replay;
pub mod signals;
pub mod sink;
pub mod stop;
pub mod timestamps;

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::sync::Arc;
use std::thread;
use std::time::{Instant, SystemTime};

use crossbeam_channel::bounded;

use crate::addr::Endpoint;
use crate::capture::Format;
use crate::config::{Config, EventsTo};
use crate::error::Error;
use crate::logger::{JsonOut, Logger};
pub use crate::relay::Outcome;
use crate::relay::{Link, NOTE_QUEUE, Settings};
use crate::stop::Stopper;

/// Terminal output is gathered into blocks this big between flushes.
const TERMINAL_BUFFER: usize = 64 * 1024;

/// JSON events are written in blocks this big.
const EVENTS_BUFFER: usize = 256 * 1024;

/// The capture is written in blocks this big: a few of the largest packets.
const CAPTURE_BUFFER: usize = 256 * 1024;

/// Runs the relay the configuration describes, in the original's order: open the
/// outputs, connect to B, wait for A, relay. With `-k`, see `keep_listening`.
pub fn run(config: Config) -> Result<Outcome, Error> {
    let stopper = Arc::new(Stopper::default());
    signals::install(stopper.clone()).map_err(|source| Error::Output {
        what: "signal handlers".into(),
        source,
    })?;

    // Outputs first: a path that cannot be written is reported before any connection.
    // (With -k each connection gets dump files of its own, made as it opens.)
    let dumps = match (&config.dumps, config.keep_listening) {
        (Some(paths), None) => Some([create(&paths.a_to_b)?, create(&paths.b_to_a)?]),
        _ => None,
    };
    let capture = match &config.capture {
        Some(file) => Some((create(&file.path)?, file.format)),
        None => None,
    };
    let json = open_events(&config)?;
    let outputs = Outputs {
        say: Say::for_config(&config),
        json,
        capture,
    };
    let say = outputs.say;
    if let Some(max_conns) = config.keep_listening {
        return keep_listening::run(&config, max_conns, &stopper, outputs);
    }

    say.line(format_args!("Connecting to B {}...", config.b));
    let (b, _) = net::connect(&config.b_addrs, config.socket_buffers, stopper.channel())
        .map_err(Error::Connect)?;

    // The line comes before a failure to listen too, as the original's does: the
    // error ("Address already in use") then follows the address it is about.
    let listener = net::listen(&config.a_addrs, config.socket_buffers);
    let shown_a = shown_address(&config.a, listener.as_ref().ok());
    say.line(format_args!("Waiting for a connection from A {shown_a}..."));
    let listener = listener.map_err(Error::Accept)?;
    let (a, _) = net::accept(&listener).map_err(Error::Accept)?;
    let accepted = (SystemTime::now(), Instant::now());
    drop(listener); // one A only, as the original

    for socket in [&a, &b] {
        net::prepare_relay_socket(socket).map_err(Error::Accept)?;
    }
    let logger = logger(&config, outputs);
    let settings = Settings {
        buffers: config.buffers,
        watched: logger.watches_chunks(),
        faults: config.faults,
        kernel_queues: config.kernel_queues,
    };
    let link = Link {
        id: 1,
        a,
        b,
        accepted,
        dumps,
    };
    let (notes, queue) = bounded(NOTE_QUEUE);
    let report = thread::scope(|scope| {
        let logger = scope.spawn(move || logger.run(queue));
        relay::connection(link, &settings, &notes, &stopper);
        drop(notes);
        logger
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    });
    Ok(Outcome::of(report, &stopper))
}

/// `-A` as typed, but with the port the listener really got when it was 0; as typed
/// when there is no listener (listening failed).
pub(crate) fn shown_address(typed: &Endpoint, listener: Option<&socket2::Socket>) -> Endpoint {
    let mut shown = typed.clone();
    if shown.numeric_port() == Some(0) {
        if let Some(port) = listener.and_then(net::local_port) {
            shown.serv = port.to_string();
        }
    }
    shown
}

/// Where the text for people goes: standard output, unless `--events -` took it for
/// the JSON, in which case standard error (so neither stream mixes two formats).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Say {
    to_stderr: bool,
}

impl Say {
    fn for_config(config: &Config) -> Say {
        Say {
            to_stderr: config.events == Some(EventsTo::Stdout),
        }
    }

    /// A start-up line, printed at once.
    pub(crate) fn line(self, args: std::fmt::Arguments) {
        if self.to_stderr {
            eprintln!("{args}");
        } else {
            println!("{args}");
        }
    }

    /// The logger's terminal, and its name for messages.
    fn terminal(self) -> (BufWriter<Box<dyn Write + Send>>, &'static str) {
        let (out, name): (Box<dyn Write + Send>, _) = if self.to_stderr {
            (Box::new(io::stderr()), "to standard error")
        } else {
            (Box::new(io::stdout()), "to standard output")
        };
        (BufWriter::with_capacity(TERMINAL_BUFFER, out), name)
    }
}

/// The outputs opened before anything connects, for the logger.
pub(crate) struct Outputs {
    pub(crate) say: Say,
    /// `--events`: the JSON output and its name.
    json: Option<(String, JsonOut)>,
    /// `-w`: the capture file, its name and its format.
    capture: Option<((String, File), Format)>,
}

/// The logger the configuration asks for, writing to `outputs`.
pub(crate) fn logger(
    config: &Config,
    outputs: Outputs,
) -> Logger<BufWriter<Box<dyn Write + Send>>> {
    let Outputs { say, json, capture } = outputs;
    let (terminal, name) = say.terminal();
    let mut logger = Logger::new(terminal, config.colour)
        .terminal_named(name)
        .quiet(config.quiet)
        .timestamps(config.timestamps)
        .faults(&config.faults)
        .dumping(config.dumps.is_some());
    if let Some((name, out)) = json {
        logger = logger.with_json(name, out);
    }
    if let Some(((name, file), format)) = capture {
        let out = BufWriter::with_capacity(CAPTURE_BUFFER, file);
        logger = logger.with_capture(name, out, format);
    }
    logger
}

/// `--events`: the JSON output, opened before anything connects.
fn open_events(config: &Config) -> Result<Option<(String, JsonOut)>, Error> {
    Ok(match &config.events {
        None => None,
        Some(EventsTo::Stdout) => Some((
            "events to standard output".to_string(),
            Box::new(BufWriter::with_capacity(EVENTS_BUFFER, io::stdout())),
        )),
        Some(EventsTo::File(path)) => {
            let (name, file) = create(path)?;
            Some((
                name,
                Box::new(BufWriter::with_capacity(EVENTS_BUFFER, file)),
            ))
        }
    })
}

fn create(path: &std::path::Path) -> Result<(String, File), Error> {
    let file = File::create(path).map_err(|source| Error::CreateOutput {
        path: path.to_path_buf(),
        source,
    })?;
    Ok((path.display().to_string(), file))
}
