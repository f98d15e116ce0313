//! The outputs of a run, opened before anything connects, and the logger that writes
//! them.
//!
//! Every file is created before B is dialled or A awaited, so a path that cannot be
//! written is reported before any connection is made. The text for people goes to
//! standard output, unless `--events -` took it for the JSON (see `Say`).

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::fd::AsFd;
use std::path::Path;

use crate::capture::Format;
use crate::capture::gather::GatherWriter;
use crate::cli::colour::ColourChoice;
use crate::cli::config::{CaptureFile, Config, EventsTo};
use crate::error::Error;
use crate::output::dump::DumpPaths;
use crate::output::logger::{JsonOut, Logger};
use crate::output::progress::AroundProgress;

/// Terminal output is gathered into blocks this big between flushes.
const TERMINAL_BUFFER: usize = 64 * 1024;

/// JSON events are written in blocks this big.
const EVENTS_BUFFER: usize = 256 * 1024;

/// Where the logger writes the text for people.
pub(crate) type Terminal = BufWriter<Box<dyn Write + Send>>;

/// A connection's two dump files (A->B, B->A), each with its name for messages.
pub(crate) type DumpFiles = [(String, File); 2];

/// Where the text for people goes: standard output, unless `--events -` took it for
/// the JSON or `-w -` for the capture, in which case standard error (so neither
/// stream mixes two formats).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Say {
    to_stderr: bool,
}

impl Say {
    fn for_config(config: &Config) -> Say {
        let capture_to_stdout = config.capture.as_ref().is_some_and(CaptureFile::is_stdout);
        Say {
            to_stderr: config.events == Some(EventsTo::Stdout) || capture_to_stdout,
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

    /// Whether `--color` colours the stream the text goes to.
    fn colour(self, choice: ColourChoice) -> bool {
        if self.to_stderr {
            choice.for_stream(&io::stderr())
        } else {
            choice.for_stream(&io::stdout())
        }
    }

    /// The logger's terminal, and its name for messages.
    fn terminal(self) -> (Terminal, &'static str) {
        // On a terminal, -q's live line is cleared around each write (see `progress`).
        let (out, name): (Box<dyn Write + Send>, _) = if self.to_stderr {
            (Box::new(AroundProgress(io::stderr())), "to standard error")
        } else {
            (Box::new(AroundProgress(io::stdout())), "to standard output")
        };
        (BufWriter::with_capacity(TERMINAL_BUFFER, out), name)
    }
}

/// `-w`: the capture file, with its name for messages and its format.
struct CaptureOut {
    name: String,
    file: File,
    format: Format,
}

/// The outputs shared by every connection, opened before anything connects, for the
/// logger.
pub(crate) struct Outputs {
    pub(crate) say: Say,
    /// `--events`: the JSON output and its name.
    json: Option<(String, JsonOut)>,
    capture: Option<CaptureOut>,
}

impl Outputs {
    /// Creates the capture and the events file the configuration asks for.
    pub(crate) fn open(config: &Config) -> Result<Outputs, Error> {
        let capture = match &config.capture {
            Some(capture) => {
                let (name, file) = if capture.is_stdout() {
                    stdout_file()?
                } else {
                    create(&capture.path)?
                };
                Some(CaptureOut {
                    name,
                    file,
                    format: capture.format,
                })
            }
            None => None,
        };
        Ok(Outputs {
            say: Say::for_config(config),
            json: open_events(config)?,
            capture,
        })
    }

    /// The logger the configuration asks for, writing to these outputs.
    pub(crate) fn logger(self, config: &Config) -> Logger<Terminal> {
        let Outputs { say, json, capture } = self;
        let (terminal, name) = say.terminal();
        let mut logger = Logger::new(terminal, say.colour(config.colour))
            .terminal_named(name)
            .quiet(config.quiet)
            .tally_only(config.tally_only)
            .max_dump(config.max_dump)
            .timestamps(config.timestamps)
            .faults(&config.faults)
            .dumping(config.dumps.is_some());
        if let Some((name, out)) = json {
            logger = logger.with_json(name, out);
        }
        if let Some(CaptureOut { name, file, format }) = capture {
            let out = GatherWriter::new(file);
            logger = logger.with_capture(name, out, format);
        }
        logger
    }
}

/// `-o`/`-f`: creates one connection's pair of dump files.
pub(crate) fn open_dumps(paths: &DumpPaths) -> Result<DumpFiles, Error> {
    Ok([create(&paths.a_to_b)?, create(&paths.b_to_a)?])
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

/// `-w -`: standard output, as a file of its own (a duplicate of the descriptor), so
/// that the capture is written as any other, unbuffered by the text's lock.
fn stdout_file() -> Result<(String, File), Error> {
    let name = "the capture to standard output".to_string();
    let fd = io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .map_err(|source| Error::Output {
            what: name.clone(),
            source,
        })?;
    Ok((name, File::from(fd)))
}

fn create(path: &Path) -> Result<(String, File), Error> {
    let file = File::create(path).map_err(|source| Error::CreateOutput {
        path: path.to_path_buf(),
        source,
    })?;
    Ok((path.display().to_string(), file))
}
