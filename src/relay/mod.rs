//! The relay: four threads moving the bytes of one connection between A and B.
//!
//! ```text
//!  A ──► [reader A→B] ══ ring of -b bytes ══► [writer A→B] ──► B
//!  A ◄── [writer B→A] ◄══ ring of -b bytes ══ [reader B→A] ◄── B
//!               │        notes (bounded)       │
//!               └────────► to the logger ◄─────┘
//! ```
//!
//! Data enters as two connected sockets (a `Link`) and leaves as bytes written to
//! the other socket, and as `Note`s (see `event`) on a channel to the logger, which
//! is not part of the relay (see `output`). Each thread does plain blocking I/O on
//! one socket, so each reads top to bottom (`reader`, `writer`). The user-space
//! buffer between a reader and its writer is a byte ring of `-b` bytes (see
//! `buffer`): the reader reads into its free space, the writer writes from its
//! filled space, and a byte's space is free again once it is written (and shown, if
//! the logger shows chunks). Every write to a consumer, the writer's or the reader's
//! cut-through, goes through that direction's `Outlet` (see `outlet`).
//!
//! Three ordering rules make each direction's printed sequence deterministic:
//! 1. a reader sends `Read` *before* it commits the bytes to the ring, so the logger
//!    never sees bytes written that it has not seen read;
//! 2. a writer sends `Wrote` *before* it frees the bytes' space, so a read that the
//!    freed space allows is logged after that write;
//! 3. a reader sends `Eof` before it hangs up its end of the ring; the writer stops
//!    only after writing everything committed before the hang-up, and only then
//!    shuts down the consumer's write side. So a FIN never overtakes data: EOF from
//!    A drains the A→B buffer into B, then shuts B's write side, while B→A goes on
//!    (half-close).
//!
//! A failure (a reset, a broken pipe) is reported by the thread that met it, which
//! then stops all reading; writers drain what is already buffered to a consumer that
//! is still there, for a bounded time, and then everything is shut down (see
//! `stop`). A consumer that is gone after everything was written to it is no
//! failure: nothing held was lost.
//!
//! Each connection (`-k` relays many) has its own four threads, rings and stopper;
//! only the logger is shared, and notes reach it tagged with the connection's
//! number. Injected faults (see `faults`) act in a direction's writer, which still
//! writes in order and still sends `Wrote` before freeing the space, so the rules
//! hold; the reader's cut-through is off for that direction, so no byte bypasses
//! them. `net` makes and prepares the sockets; `kernel_queues` reads how many bytes
//! wait in the kernel beside our ring.

pub mod buffer;
pub mod event;
pub mod faults;
pub mod kernel_queues;
pub mod meter;
pub mod net;
pub(crate) mod outlet;
mod reader;
pub mod stop;
pub mod stream;
pub mod unix;
mod writer;

use std::fs::File;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{RecvTimeoutError, Sender, bounded, select};
use socket2::Socket;

use crate::relay::stream::Stream;

use crate::relay::buffer::user_space_buffer;
use crate::relay::event::{Closing, ConnId, Direction, Ending, Note, Opening};
use crate::relay::faults::{Faults, Shaper};
use crate::relay::meter::Meter;
use crate::relay::outlet::Outlet;
use crate::relay::reader::Reader;
use crate::relay::stop::Stopper;
use crate::relay::writer::Writer;

/// Notes in flight to the logger before a relay thread waits for it.
pub const NOTE_QUEUE: usize = 1024;

/// After a failure, how long writers may keep draining before everything is cut.
const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// What every connection's relay is given, the same for all of them.
#[derive(Debug, Clone)]
pub struct Settings {
    /// User-space buffer for A->B and B->A.
    pub buffers: (usize, usize),
    /// Whether the logger wants an event per chunk (see `Logger::watches_chunks`).
    pub watched: bool,
    /// What to inject into A->B and B->A (see `faults`).
    pub faults: [Faults; 2],
    /// `--kernel-queues`: show the kernel's queues beside the user-space backlog.
    pub kernel_queues: bool,
    /// The live progress line's counts, when it is shown.
    pub meter: Option<Arc<Meter>>,
}

/// One connection, ready to relay.
pub struct Link {
    pub id: ConnId,
    pub a: Stream,
    pub b: Stream,
    /// When A was accepted: by the wall clock (for the outputs), and by the monotonic
    /// one (for how long the connection lasted).
    pub accepted: (SystemTime, Instant),
    /// `-o`/`-f`: this connection's dump files.
    pub dumps: Option<[(String, File); 2]>,
}

/// Relays one connection until both directions are closed, every note going to the
/// logger through `notes`: an `Open` first, then the events, then a `Close`. Stopping
/// `stopper` stops this connection; a failure in it stops nothing else.
pub fn connection(
    link: Link,
    settings: &Settings,
    notes: &Sender<Note>,
    stopper: &Stopper,
) -> Ending {
    let Link {
        id,
        a,
        b,
        accepted,
        dumps,
    } = link;
    let (a, b) = (Arc::new(a), Arc::new(b));
    stopper.start_relay(&[a.socket().clone(), b.socket().clone()]);
    let opening = Opening {
        at: accepted.0,
        a: peer(a.socket()),
        b: peer(b.socket()),
        transports: [a.transport(), b.transport()],
        buffers: settings.buffers,
        dumps,
    };
    let _ = notes.send(Note::Open(id, Box::new(opening)));
    let meter = settings.meter.as_deref();
    if let Some(meter) = meter {
        meter.opened();
    }

    let shared = Shared {
        id,
        settings,
        notes,
        stopper,
        totals: [AtomicU64::new(0), AtomicU64::new(0)],
        failed: AtomicBool::new(false),
        reset: AtomicBool::new(false),
    };
    shared.relay(&a, &b);
    let ending = shared.ending();
    // Every reader has ended, so the totals are final.
    let closing = Closing {
        ending,
        bytes: shared.totals.each_ref().map(|t| t.load(Ordering::Relaxed)),
        lasted: accepted.1.elapsed(),
        at: SystemTime::now(),
    };
    if let Some(meter) = meter {
        meter.closed();
    }
    let _ = notes.send(Note::Close(id, closing));
    ending
}

/// What the four threads of a connection share.
struct Shared<'a> {
    id: ConnId,
    settings: &'a Settings,
    notes: &'a Sender<Note>,
    stopper: &'a Stopper,
    /// Bytes read each way, for the closing summary.
    totals: [AtomicU64; 2],
    /// Set when a direction failed.
    failed: AtomicBool,
    /// Set when a reset was injected (`--reset-after`).
    reset: AtomicBool,
}

impl<'a> Shared<'a> {
    /// Runs the four threads until they end, or until a stop has cut them short.
    fn relay(&'a self, a: &'a Stream, b: &'a Stream) {
        thread::scope(|scope| {
            // Never sent on: it disconnects when the last relay thread ends.
            let (alive, all_done) = bounded::<()>(0);
            for (dir, producer, consumer) in [(Direction::AtoB, a, b), (Direction::BtoA, b, a)] {
                let (reader, writer) = self.direction(dir, producer, consumer);
                let (alive_r, alive_w) = (alive.clone(), alive.clone());
                scope.spawn(move || {
                    reader.run();
                    drop(alive_r);
                });
                scope.spawn(move || {
                    writer.run();
                    drop(alive_w);
                });
            }
            drop(alive);
            // Wait for the threads; once a stop has begun, give them a bounded time.
            select! {
                recv(all_done) -> _ => {},
                recv(self.stopper.channel()) -> _ => {},
            }
            if let Err(RecvTimeoutError::Timeout) = all_done.recv_timeout(DRAIN_GRACE) {
                self.stopper.stop_now();
            }
        });
    }

    /// One direction's reader and writer, joined by a ring of its `-b`.
    fn direction(
        &'a self,
        dir: Direction,
        producer: &'a Stream,
        consumer: &'a Stream,
    ) -> (Reader<'a>, Writer<'a>) {
        let settings = self.settings;
        let faults = settings.faults[dir.index()];
        let outlet = || Outlet {
            conn: self.id,
            dir,
            producer,
            consumer,
            kernel_queues: settings.kernel_queues,
            notes: self.notes.clone(),
            watched: settings.watched,
            stopper: self.stopper,
            failed: &self.failed,
            reset: &self.reset,
        };
        // A logger that shows nothing per chunk (-q, no files) gets no chunk events,
        // and the rings need no room for it.
        let (filler, drainer) =
            user_space_buffer(buffers_of(settings.buffers, dir), settings.watched);
        let (marks, held) = match faults.delay {
            Some(_) => {
                let (marks, held) = bounded(NOTE_QUEUE);
                (Some(marks), Some(held))
            }
            None => (None, None),
        };
        let reader = Reader {
            producer,
            ring: filler,
            outlet: outlet(),
            total: &self.totals[dir.index()],
            meter: settings.meter.as_deref(),
            // A TLS consumer is written by its writer only (see `stream`).
            cut_through: !faults.any() && !consumer.is_tls(),
            marks,
        };
        // A different seed each way, so the two directions' jitters differ.
        let seed = self.id.wrapping_mul(2).wrapping_add(dir.index() as u64);
        let writer = Writer {
            ring: drainer,
            outlet: outlet(),
            shaper: faults.any().then(|| Shaper::new(faults, seed)),
            marks: held,
        };
        (reader, writer)
    }

    /// How the connection ended, once its threads have.
    fn ending(&self) -> Ending {
        if self.failed.load(Ordering::SeqCst) {
            Ending::Failed
        } else if self.reset.load(Ordering::SeqCst) {
            Ending::Reset
        } else if let Some(signal) = self.stopper.cancelled_by() {
            Ending::Cancelled(signal)
        } else {
            Ending::Completed
        }
    }
}

/// The `-b` of one direction.
fn buffers_of(buffers: (usize, usize), dir: Direction) -> usize {
    match dir {
        Direction::AtoB => buffers.0,
        Direction::BtoA => buffers.1,
    }
}

/// The address of a connected socket's peer.
pub(crate) fn peer(socket: &Socket) -> Option<SocketAddr> {
    socket.peer_addr().ok()?.as_socket()
}
