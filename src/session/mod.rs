//! Running the relay: connect, listen, accept, relay, and stop.
//!
//! Data enters as a `Config` (see `cli`) and leaves as an `Outcome`: how the run
//! ended, for `main` to turn into an exit status. In between, this is where the
//! outputs are opened (`outputs`), B is dialled (`dial`) and clients are awaited,
//! and each connection is handed to `relay` with the logger (see `output`) listening
//! to it (`serve`). The original's single relay and `-k`'s many connections take
//! that one path: `one_or_many` holds what differs. `signals` turns SIGINT and
//! SIGTERM into a stop.

mod dial;
mod one_or_many;
mod outputs;
mod serve;
pub mod signals;

use std::sync::Arc;

use crate::cli::config::Config;
use crate::error::Error;
use crate::output::logger::Report;
use crate::relay::stop::Stopper;
use crate::session::one_or_many::Clients;
use crate::session::outputs::{Outputs, open_dumps};
use crate::session::serve::{Ahead, serve};
use crate::tls::TlsSetup;

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

/// Runs the relay the configuration describes, in the original's order: open the
/// outputs, connect to B, wait for A, relay. With `-k`: open the outputs, then for
/// each client A, connect to B and relay, until a signal.
pub fn run(config: Config) -> Result<Outcome, Error> {
    let stopper = Arc::new(Stopper::default());
    signals::install(stopper.clone()).map_err(|source| Error::Output {
        what: "signal handlers".into(),
        source,
    })?;
    let clients = Clients::of(&config);
    // Outputs first: a path that cannot be written is reported before any connection.
    // (With -k each connection gets dump files of its own, made as it opens.)
    let dumps = match clients.dumps_up_front(&config) {
        Some(paths) => Some(open_dumps(paths)?),
        None => None,
    };
    let outputs = Outputs::open(&config)?;
    let say = outputs.say;
    let tls = TlsSetup::prepare(Some(&config.a), Some(&config.b), &config.tls, |line| {
        say.line(line)
    })?;
    let b = clients.dial_ahead(&config, &tls, outputs.say, &stopper)?;
    serve(
        &config,
        clients,
        outputs,
        Ahead { dumps, b },
        &tls,
        &stopper,
    )
}
