//! Running the relay: connect, listen, accept, relay, and stop.
//!
//! Data enters as a `Config` (see `cli`) and leaves as an `Outcome`: how the run
//! ended, for `main` to turn into an exit status. In between, this is where the
//! outputs are opened, B is dialled and A is awaited, and each connection is handed
//! to `relay` with the logger (see `output`) listening to it. `keep_listening` does
//! that for many clients (`-k`); `signals` turns SIGINT and SIGTERM into a stop.

pub mod keep_listening;
pub mod signals;

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::sync::Arc;
use std::thread;
use std::time::{Instant, SystemTime};

use crossbeam_channel::bounded;

use crate::capture::Format;
use crate::cli::config::{Config, EventsTo};
use crate::error::Error;
use crate::output::logger::Report;
use crate::output::logger::{JsonOut, Logger};
use crate::relay::stop::Stopper;
use crate::relay::{self, Link, NOTE_QUEUE, Settings, net};

/// How a run ended.
#[derive(Debug)]
pub enum Outcome {
    /// Every connection closed both directions; every byte read was delivered.
    Completed(Report),
    /// A connection or an output failed; the messages are already on stderr.
    Failed(Report),
    /// A signal stopped connections that were still relaying; every output was
    /// flushed.
    Cancelled(i32, Report),
}

impl Outcome {
    /// Judges a run by its logger's report: any failure makes it a failure (the
    /// more useful news for a script), else a signal that cut connections short
    /// makes it cancelled.
    pub fn of(report: Report, stopper: &Stopper) -> Outcome {
        if report.connections.failed > 0 || !report.output_failures.is_empty() {
            Outcome::Failed(report)
        } else if let (Some(signal), true) =
            (stopper.cancelled_by(), report.connections.cancelled > 0)
        {
            Outcome::Cancelled(signal, report)
        } else {
            Outcome::Completed(report)
        }
    }
}

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
    let shown_a = config.a.as_listening(listener.as_ref().ok());
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
