//! What differs between the original's one client and `-k`'s many.
//!
//! A single relay is the server of `serve` limited to one connection, without
//! labels. What else sets it apart from `-k` is decided here, and only here:
//!
//! - **When B is dialled.** The original dials B *before* listening, so that a
//!   missing server is reported before anyone connects to us: `Connecting to B ...`,
//!   then `Waiting for a connection from A ...`. With `-k`, each client's B is
//!   dialled once the client is accepted: a B dialled in advance would sit idle until
//!   a client came, and servers close idle connections (or count them against their
//!   limits).
//! - **The listener.** A backlog of one, closed as soon as the one A is in; with
//!   `-k`, room for many clients waiting, open until a signal.
//! - **Dump files.** Created at the start with the other outputs; with `-k` the
//!   logger makes each connection's pair as it opens, named after its number.
//! - **The logger.** With `-k` every line of a connection starts with its number,
//!   `[N] `, each connection ends with a summary line and the run with a tally.
//! - **Failures before the relay** (accepting A, reaching B, setting up the sockets)
//!   end a single relay with the original's message. With `-k` a client whose B
//!   cannot be reached is turned away with a reset while the others go on, and an
//!   accept that failed for want of descriptors or memory is tried again.
//! - **A signal before the relay.** A single relay ends cancelled, with nothing to
//!   save; for `-k`, a signal is simply how the server stops.

use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::Sender;
use socket2::Socket;

use crate::cli::addr::Address;
use crate::cli::config::Config;
use crate::error::Error;
use crate::output::dump::DumpPaths;
use crate::output::logger::{Logger, Report, Tally};
use crate::relay::event::{Closing, ConnId, Ending, Note};
use crate::relay::stop::Stopper;
use crate::session::Outcome;
use crate::session::dial::dial_b;
use crate::session::outputs::{Outputs, Say, Terminal};
use crate::tls::{BSide, TlsSetup};

/// With `-k`: clients the kernel may hold, handshake done, while every slot is taken.
const BACKLOG: i32 = 1024;

/// How many clients a run serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Clients {
    /// The original's way: one client, relayed to a B dialled before listening.
    One,
    /// `-k`: clients until a signal, at most `at_once` relayed at a time
    /// (`--max-conns`).
    Many { at_once: usize },
}

impl Clients {
    pub(crate) fn of(config: &Config) -> Clients {
        match config.keep_listening {
            Some(at_once) => Clients::Many { at_once },
            None => Clients::One,
        }
    }

    /// The dump files to create with the other outputs, before anything connects.
    pub(crate) fn dumps_up_front(self, config: &Config) -> Option<&DumpPaths> {
        match self {
            Clients::One => config.dumps.as_ref(),
            Clients::Many { .. } => None,
        }
    }

    /// The single relay's B, dialled before listening as the original does; none
    /// with `-k`.
    pub(crate) fn dial_ahead(
        self,
        config: &Config,
        tls: &TlsSetup,
        say: Say,
        stopper: &Stopper,
    ) -> Result<Option<BSide>, Error> {
        if let Clients::Many { .. } = self {
            return Ok(None);
        }
        say.line(format_args!("Connecting to B {}...", config.b));
        match dial_b(config, tls, stopper) {
            Ok(b) => {
                // A handshake that waits for A's is told of once done (see `serve`).
                if let BSide::Ready(b) = &b {
                    if let Some(summary) = b.tls_summary() {
                        say.line(format_args!("TLS with B: {summary}"));
                    }
                }
                Ok(Some(b))
            }
            Err(error) => Err(match stopper.cancelled_by() {
                Some(signal) => Error::Cancelled { signal },
                None => Error::Connect(error),
            }),
        }
    }

    /// How many clients may wait to be accepted.
    pub(crate) fn backlog(self) -> i32 {
        match self {
            Clients::One => 1,
            Clients::Many { .. } => BACKLOG,
        }
    }

    /// Says where clients are awaited.
    pub(crate) fn say_waiting(self, say: Say, shown_a: &Address) {
        match self {
            Clients::One => say.line(format_args!("Waiting for a connection from A {shown_a}...")),
            Clients::Many { .. } => {
                say.line(format_args!("Waiting for connections from A {shown_a}..."))
            }
        }
    }

    /// The logger for these clients, writing to `outputs`.
    pub(crate) fn logger(self, config: &Config, outputs: Outputs) -> Logger<Terminal> {
        let logger = outputs.logger(config);
        match self {
            Clients::One => logger,
            Clients::Many { .. } => logger
                .many(config.b.to_string())
                .dumps_per_connection(config.dumps.clone()),
        }
    }

    /// Connections relayed at once.
    pub(crate) fn at_once(self) -> usize {
        match self {
            Clients::One => 1,
            Clients::Many { at_once } => at_once,
        }
    }

    /// Connections served in all before the listener is closed; `None`: until a
    /// signal.
    pub(crate) fn in_all(self) -> Option<ConnId> {
        match self {
            Clients::One => Some(1),
            Clients::Many { .. } => None,
        }
    }

    /// Whether an accept that failed but may work again (a client that gave up
    /// waiting, no descriptor left for now) is tried again. The single relay's one
    /// accept is not: the original's ends the run.
    pub(crate) fn retries_accept(self) -> bool {
        matches!(self, Clients::Many { .. })
    }

    /// A client stopped before its relay began (a signal while its B was dialled).
    pub(crate) fn stopped_before_relay(
        self,
        id: ConnId,
        since: Instant,
        notes: &Sender<Note>,
        stopper: &Stopper,
    ) {
        if let Clients::Many { .. } = self {
            // The logger announced it: it ends, having relayed nothing.
            let closing = Closing {
                ending: stopper
                    .cancelled_by()
                    .map_or(Ending::Failed, Ending::Cancelled),
                bytes: [0, 0],
                lasted: since.elapsed(),
                at: SystemTime::now(),
            };
            let _ = notes.send(Note::Close(id, closing));
        }
        // The single relay's run ends cancelled: see `judge`.
    }

    /// A client that could not be relayed: B could not be reached, or the sockets
    /// could not be set up. Gives the failure that ends the run, if it does.
    pub(crate) fn not_relayed(
        self,
        id: ConnId,
        a: &Socket,
        error: Error,
        notes: &Sender<Note>,
    ) -> Option<Error> {
        match self {
            Clients::One => Some(error),
            Clients::Many { .. } => {
                let at = SystemTime::now();
                let _ = notes.send(Note::NotRelayed {
                    conn: id,
                    error,
                    at,
                });
                turn_away(a);
                None
            }
        }
    }

    /// How the run ended, once every connection has: `failure` first (the listener
    /// broke, or the single relay's client could not be relayed), else as the
    /// logger's report says (see `Outcome::of`).
    pub(crate) fn judge(
        self,
        report: Report,
        failure: Option<Error>,
        stopper: &Stopper,
    ) -> Result<Outcome, Error> {
        if let Some(error) = failure {
            return Err(error);
        }
        let Tally {
            completed,
            failed,
            cancelled,
        } = report.connections;
        match (self, stopper.cancelled_by()) {
            // A signal before the one client's relay began: nothing was relayed,
            // nothing is left to save.
            (Clients::One, Some(signal)) if completed + failed + cancelled == 0 => {
                Err(Error::Cancelled { signal })
            }
            _ => Ok(Outcome::of(report, stopper)),
        }
    }
}

/// Closes a client's connection with a reset: like the refusal a client gets from a
/// server that is not there, rather than an empty answer it might take for a reply.
/// (The reset goes when the last holder of the socket, the connection's stopper
/// too, lets go of it.)
fn turn_away(a: &Socket) {
    let _ = a.set_linger(Some(Duration::ZERO));
}
