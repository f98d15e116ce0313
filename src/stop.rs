//! Stopping a relay from outside its threads.
//!
//! The relay threads block in `read`, `write` and channel receives, and a blocked
//! thread cannot check a flag. So a stop acts on what they block on: it shuts the
//! sockets down, which wakes every blocked `read` (returning 0) or `write` (failing),
//! and it closes the `stop` channel, which wakes every thread waiting on a channel.
//! Threads that wake up during a stop end quietly: what they see then is the stop,
//! not something the peers did.
//!
//! There are two strengths. After a relay failure only *reading* stops, so bytes
//! already held in user space still reach a consumer that is alive; a cancel (a
//! signal, or a drain that takes too long) stops everything at once.

use std::net::Shutdown;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crossbeam_channel::{Receiver, Sender, bounded};
use socket2::Socket;

pub struct Stopper {
    sockets: Mutex<Vec<Arc<Socket>>>,
    closer: Mutex<Option<Sender<()>>>,
    stop: Receiver<()>,
    stopping: AtomicBool,
    relaying: AtomicBool,
    signal: AtomicI32,
}

impl Default for Stopper {
    fn default() -> Self {
        let (closer, stop) = bounded(0);
        Stopper {
            sockets: Mutex::new(Vec::new()),
            closer: Mutex::new(Some(closer)),
            stop,
            stopping: AtomicBool::new(false),
            relaying: AtomicBool::new(false),
            signal: AtomicI32::new(0),
        }
    }
}

impl Stopper {
    /// A channel that never delivers and disconnects when a stop begins.
    pub fn channel(&self) -> &Receiver<()> {
        &self.stop
    }

    /// True once a stop has begun: what a woken thread sees is the stop.
    pub fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// The relay has started with these sockets: a stop now shuts them down.
    pub fn start_relay(&self, sockets: &[Arc<Socket>]) {
        self.sockets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(sockets.iter().cloned());
        self.relaying.store(true, Ordering::SeqCst);
    }

    /// Whether the relay is running (before that, a signal simply ends the process).
    pub fn relaying(&self) -> bool {
        self.relaying.load(Ordering::SeqCst)
    }

    /// After a failure: stop reading from both sides, let writers drain.
    pub fn stop_reading(&self) {
        self.begin(Shutdown::Read);
    }

    /// Stop everything at once.
    pub fn stop_now(&self) {
        self.begin(Shutdown::Both);
    }

    /// A signal asked to stop: remember which (for the exit status) and stop now.
    pub fn cancel(&self, signal: i32) {
        let _ = self
            .signal
            .compare_exchange(0, signal, Ordering::SeqCst, Ordering::SeqCst);
        self.stop_now();
    }

    /// The signal that cancelled the run, if one did.
    pub fn cancelled_by(&self) -> Option<i32> {
        match self.signal.load(Ordering::SeqCst) {
            0 => None,
            signal => Some(signal),
        }
    }

    fn begin(&self, how: Shutdown) {
        // The flag first, so that a thread woken by the shutdown below sees it.
        self.stopping.store(true, Ordering::SeqCst);
        for socket in self
            .sockets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            // A socket whose peer is already gone may refuse; it is stopped anyway.
            let _ = socket.shutdown(how);
        }
        self.closer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
    }
}
