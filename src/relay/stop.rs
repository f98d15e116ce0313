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
//!
//! Every connection has a stopper of its own, a *child* of the process's: a failure
//! in one connection stops that connection only, while a signal stops the process's
//! stopper, which stops every child too (and the listener).

use std::net::Shutdown;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};

use crossbeam_channel::{Receiver, Sender, bounded};
use socket2::Socket;

pub struct Stopper {
    sockets: Mutex<Vec<Arc<Socket>>>,
    closer: Mutex<Option<Sender<()>>>,
    stop: Receiver<()>,
    stopping: AtomicBool,
    /// Shared with the children: a signal cancels them all.
    signal: Arc<AtomicI32>,
    /// The connections' stoppers (`-k`); they go away with their connections.
    children: Mutex<Vec<Weak<Stopper>>>,
}

impl Default for Stopper {
    fn default() -> Self {
        Self::with_signal(Arc::new(AtomicI32::new(0)))
    }
}

impl Stopper {
    fn with_signal(signal: Arc<AtomicI32>) -> Self {
        let (closer, stop) = bounded(0);
        Stopper {
            sockets: Mutex::new(Vec::new()),
            closer: Mutex::new(Some(closer)),
            stop,
            stopping: AtomicBool::new(false),
            signal,
            children: Mutex::new(Vec::new()),
        }
    }

    /// A stopper for one connection: stopped with this one, but stopping it (after a
    /// failure) leaves this one and its other children alone. If this one is already
    /// stopping, the child is born stopped.
    pub fn child(&self) -> Arc<Stopper> {
        let child = Arc::new(Stopper::with_signal(self.signal.clone()));
        let mut children = self.children.lock().unwrap_or_else(PoisonError::into_inner);
        // `begin` sets the flag before it takes this lock, so a child added after the
        // flag was set would be missed by it: stop such a child here instead.
        if self.stopping() {
            child.stop_now();
        }
        children.retain(|c| c.strong_count() > 0);
        children.push(Arc::downgrade(&child));
        child
    }

    /// A channel that never delivers and disconnects when a stop begins.
    pub fn channel(&self) -> &Receiver<()> {
        &self.stop
    }

    /// True once a stop has begun: what a woken thread sees is the stop.
    pub fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// The relay has started with these sockets: a stop now shuts them down. If a
    /// stop began before they were added, they are shut down at once: the stop's own
    /// pass over the sockets may have missed them.
    pub fn start_relay(&self, sockets: &[Arc<Socket>]) {
        let mut held = self.sockets.lock().unwrap_or_else(PoisonError::into_inner);
        held.extend(sockets.iter().cloned());
        // `begin` sets the flag before it takes this lock: either it sees these
        // sockets, or this sees the flag.
        if self.stopping() {
            for socket in sockets {
                let _ = socket.shutdown(Shutdown::Both);
            }
        }
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
        let children: Vec<Arc<Stopper>> = self
            .children
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter_map(Weak::upgrade)
            .collect();
        for child in children {
            child.begin(how);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stopped(stopper: &Stopper) -> bool {
        stopper.stopping()
            && stopper
                .channel()
                .try_recv()
                .is_err_and(|e| e.is_disconnected())
    }

    #[test]
    fn a_child_stops_alone_but_with_its_parent() {
        let root = Stopper::default();
        let (one, two) = (root.child(), root.child());
        one.stop_reading();
        assert!(stopped(&one));
        assert!(!root.stopping() && !two.stopping());
        root.cancel(15);
        assert!(stopped(&root) && stopped(&two));
        assert_eq!(two.cancelled_by(), Some(15));
        // Born after the stop: stopped at once.
        let late = root.child();
        assert!(stopped(&late));
        assert_eq!(late.cancelled_by(), Some(15));
    }

    #[test]
    fn children_that_ended_are_forgotten() {
        let root = Stopper::default();
        for _ in 0..100 {
            drop(root.child());
        }
        let _kept = root.child();
        assert_eq!(root.children.lock().unwrap().len(), 1);
    }
}
