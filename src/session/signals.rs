//! SIGINT and SIGTERM: stop promptly, keep every output whole, say so, and exit with
//! 128 + the signal number as a shell would report it.
//!
//! Signals are received on a thread of their own (signal-hook), so the handler does
//! nothing but wake it and no relay thread is interrupted mid-call. The thread only
//! cancels the process's stopper, and whatever waits wakes up: the dial of B, the
//! accept, the relay threads. Before the relay starts there is nothing to save and
//! the run just ends, cancelled (with `-k`, once the listener is up, a signal is
//! simply how the server stops: see `one_or_many`); during the relay the sockets are
//! shut down, the threads wind up, and the logger flushes every output before `main`
//! prints `User cancelled.`.
//!
//! Ctrl-Z and `fg` need nothing: SIGTSTP and SIGCONT keep their default actions, and
//! every blocking call in the relay retries when it is interrupted.

use std::io;
use std::sync::Arc;
use std::thread;

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::relay::stop::Stopper;

/// Starts the thread that turns SIGINT and SIGTERM into a stop.
pub fn install(stopper: Arc<Stopper>) -> io::Result<()> {
    let mut signals = Signals::new([SIGINT, SIGTERM])?;
    thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                stopper.cancel(signal);
            }
        })?;
    Ok(())
}
