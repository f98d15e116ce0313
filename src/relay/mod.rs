//! The relay: four threads moving bytes between A and B, and a logger watching them.
//!
//! ```text
//!  A ──► [reader A→B] ══ chunks ══► [writer A→B] ──► B
//!  A ◄── [writer B→A] ◄══ chunks ══ [reader B→A] ◄── B
//!               │  events (bounded)  │
//!               └──────► [logger] ◄──┘
//! ```
//!
//! Each thread does plain blocking I/O on one socket and one channel, so the code of
//! each reads top to bottom. The user-space buffer between a reader and its writer is
//! the reader's credit (see `buffer`): a written chunk's space goes back to the reader
//! right after its `Wrote` event, its memory once the logger has shown it. Every write
//! to a consumer, the writer's or the reader's cut-through, goes through that
//! direction's `Outlet` (see `outlet`).
//!
//! Three ordering rules make each direction's printed sequence deterministic:
//! 1. a reader sends `Read` *before* handing the chunk to its writer, so the logger
//!    never sees bytes written that it has not seen read;
//! 2. a writer sends `Wrote` *before* the buffer space is returned, so a read that the
//!    freed space allows is logged after that write;
//! 3. a reader sends `Eof` before it hangs up its chunk channel; the writer ends its
//!    `for chunk in chunks` loop only after writing everything sent before the hang-up,
//!    and only then shuts down the consumer's write side. So a FIN never overtakes data:
//!    EOF from A drains the A→B buffer into B, then shuts B's write side, while B→A
//!    goes on (half-close).
//!
//! A failure (a reset, a broken pipe) is reported by the thread that met it, which
//! then stops all reading; writers drain what is already buffered to a consumer that
//! is still there, for a bounded time, and then everything is shut down.
//!
//! Each connection (`-k` relays many) has its own four threads, buffers and stopper;
//! only the logger is shared, and events reach it tagged with the connection's
//! number. Injected faults (see `faults`) act in a direction's writer, which still
//! writes in order and still sends `Wrote` before giving the space back, so the rules
//! hold; the reader's cut-through is off for that direction, so no byte bypasses
//! them.

pub mod buffer;
pub mod event;
pub mod faults;
pub mod kernel_queues;
pub mod net;
pub(crate) mod outlet;
pub mod stop;

use std::fs::File;
use std::io;
use std::net::{Shutdown, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, bounded, select};
use socket2::Socket;

use crate::relay::buffer::{Drainer, Filler, user_space_buffer};
use crate::relay::event::{Closing, ConnId, Direction, End, Ending, Event, Note, Opening};
use crate::relay::faults::{Allow, Faults, Shaper};
use crate::relay::outlet::Outlet;
use crate::relay::stop::Stopper;

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
}

/// One connection, ready to relay.
pub struct Link {
    pub id: ConnId,
    pub a: Socket,
    pub b: Socket,
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
    let buffers = settings.buffers;
    let a = Arc::new(a);
    let b = Arc::new(b);
    stopper.start_relay(&[a.clone(), b.clone()]);

    let opening = Opening {
        at: accepted.0,
        a: peer(&a),
        b: peer(&b),
        buffers,
        dumps,
    };
    let _ = notes.send(Note::Open(id, Box::new(opening)));

    // A logger that shows nothing per chunk (-q, no files) gets no chunk events, and
    // the rings need no room for it.
    let watched = settings.watched;
    let totals = [AtomicU64::new(0), AtomicU64::new(0)];
    let failed = AtomicBool::new(false);
    let reset = AtomicBool::new(false);
    // Never sent on: it disconnects when the last relay thread ends.
    let (alive, all_done) = bounded::<()>(0);

    thread::scope(|scope| {
        let ends = [(Direction::AtoB, &a, &b), (Direction::BtoA, &b, &a)];
        for (dir, producer, consumer) in ends {
            let faults = settings.faults[dir.index()];
            let outlet = || Outlet {
                conn: id,
                dir,
                producer,
                consumer,
                kernel_queues: settings.kernel_queues,
                notes: notes.clone(),
                watched,
                stopper,
                failed: &failed,
                reset: &reset,
            };
            let (filler, drainer) = user_space_buffer(buffers_of(buffers, dir), watched);
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
                total: &totals[dir.index()],
                cut_through: !faults.any(),
                marks,
            };
            // A different seed each way, so the two directions' jitters differ.
            let seed = id.wrapping_mul(2).wrapping_add(dir.index() as u64);
            let writer = Writer {
                ring: drainer,
                outlet: outlet(),
                shaper: faults.any().then(|| Shaper::new(faults, seed)),
                marks: held,
            };
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

        // Wait for the relay threads; once a stop has begun, give them a bounded time.
        select! {
            recv(all_done) -> _ => {},
            recv(stopper.channel()) -> _ => {},
        }
        if let Err(RecvTimeoutError::Timeout) = all_done.recv_timeout(DRAIN_GRACE) {
            stopper.stop_now();
        }
    });

    let ending = if failed.load(Ordering::SeqCst) {
        Ending::Failed
    } else if reset.load(Ordering::SeqCst) {
        Ending::Reset
    } else if let Some(signal) = stopper.cancelled_by() {
        Ending::Cancelled(signal)
    } else {
        Ending::Completed
    };
    // Every reader has ended, so the totals are final.
    let closing = Closing {
        ending,
        bytes: totals.each_ref().map(|t| t.load(Ordering::Relaxed)),
        lasted: accepted.1.elapsed(),
        at: SystemTime::now(),
    };
    let _ = notes.send(Note::Close(id, closing));
    ending
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

/// Reads from the producer into the ring, as far as its free space allows.
///
/// When nothing waits for the writer, the reader also tries to write what it read
/// straight to the consumer, without blocking: with nothing queued before them the
/// bytes cannot overtake anything, and sparing the hand-off to the writer thread is
/// what keeps a request/response round trip and an unhindered bulk transfer as fast
/// as a plain relay. Whatever the consumer cannot take at once is left to the writer,
/// which blocks on it as usual; the events are the same either way.
struct Reader<'a> {
    producer: &'a Socket,
    ring: Filler,
    outlet: Outlet<'a>,
    /// Bytes read so far, for the logger's summary.
    total: &'a AtomicU64,
    /// False when the direction has faults: then every byte goes through the
    /// writer's shaper.
    cut_through: bool,
    /// `--delay`: where each read ends in the stream and when it was read, for the
    /// writer to hold it back.
    marks: Option<Sender<Mark>>,
}

impl Reader<'_> {
    fn run(mut self) {
        let dir = self.outlet.dir;
        loop {
            if !self.ring.wait_for_space(self.outlet.stopper.channel()) {
                return;
            }
            let result = self.ring.read_from(self.producer);
            // When the read returned, for timestamps and the capture: taken right
            // after it, but only when an event will carry it (a vDSO call).
            let now = SystemTime::now;
            match result {
                Ok(0) => {
                    if !self.outlet.stopper.stopping() {
                        self.outlet.tell(Event::Eof { dir, at: now() });
                    }
                    // Returning drops the ring's filler: the writer drains, then
                    // shuts down.
                    return;
                }
                Ok(n) => {
                    self.total.fetch_add(n as u64, Ordering::Relaxed);
                    // Rule 1: logged before anyone writes it.
                    if self.outlet.watched {
                        self.outlet.tell(Event::Read {
                            dir,
                            chunk: self.ring.show(),
                            at: now(),
                        });
                    }
                    let delivered = if self.cut_through && self.ring.is_idle() {
                        match self.outlet.deliver(self.ring.fresh(), false) {
                            Some(delivered) => delivered,
                            None => return,
                        }
                    } else {
                        0
                    };
                    self.ring.commit(delivered);
                    if let Some(marks) = &self.marks {
                        let mark = Mark {
                            end: self.ring.position(),
                            read_at: Instant::now(),
                        };
                        if marks.send(mark).is_err() {
                            return; // the writer is gone
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => {
                    self.outlet.fail(error, End::Producer, now());
                    return;
                }
            }
        }
    }
}

/// `--delay`: a read's end in the stream, and when it was read.
struct Mark {
    end: u64,
    read_at: Instant,
}

/// Writes what the reader filled to the consumer, blocking as long as it takes, then
/// shuts down the consumer's write side.
struct Writer<'a> {
    ring: Drainer,
    outlet: Outlet<'a>,
    /// The direction's faults at work, if it has any.
    shaper: Option<Shaper>,
    /// `--delay`: the reads, to hold each back until it is due.
    marks: Option<Receiver<Mark>>,
}

impl Writer<'_> {
    fn run(mut self) {
        let Outlet {
            dir,
            consumer,
            stopper,
            ..
        } = self.outlet;
        // A reset or stall that is due acts at once, not when (or if) more bytes
        // come: `--reset-after 0` before any byte, `--reset-after 6` right after a
        // 6-byte request.
        if self.injected_due() {
            return;
        }
        loop {
            // With `--delay`, one read at a time, each when it is due; else all
            // there is.
            let until = match &self.marks {
                None => None,
                Some(marks) => match marks.recv() {
                    Ok(mark) => {
                        let shaper = self.shaper.as_mut();
                        if !shaper.is_some_and(|s| s.hold(mark.read_at, stopper.channel())) {
                            return;
                        }
                        Some(mark.end)
                    }
                    // The reader hung up: every read is written.
                    Err(_) => break,
                },
            };
            while let Some(bytes) = self.ring.pending(until) {
                let written = match self.shaper.as_mut() {
                    None => self.outlet.deliver(bytes, true),
                    Some(shaper) => self.outlet.deliver_shaped(bytes, shaper),
                };
                let Some(written) = written else {
                    return;
                };
                // Rule 2: the Wrote events went first, now the space is free.
                self.ring.consumed(written);
                if self.injected_due() {
                    return;
                }
            }
            if until.is_none() {
                break;
            }
        }
        // Rule 3: the reader hung up and everything before that is written.
        if stopper.stopping() {
            return;
        }
        let result = consumer.shutdown(Shutdown::Write);
        let at = SystemTime::now();
        match result {
            Ok(()) => self.outlet.tell(Event::Closed { dir, at }),
            // Not connected any more: the consumer is gone. It closed without reading
            // everything it was sent, and its kernel answered with a reset. But every
            // byte of this direction was written before the shutdown: tiburoncin holds
            // none that could not be delivered, and what the consumer left unread was
            // its own to throw away. So this is no failure, as in the original, which
            // ignores the shutdown's result; the other direction goes on to its own
            // end. A consumer that went while bytes were still held fails a write
            // instead, and that is reported.
            //
            // The logger is told nothing: `Closed` means the consumer was sent a FIN,
            // and this one was not. So `--events` has no `closed` record for the
            // direction, and the capture shows no acknowledgement of a FIN that the
            // consumer never got.
            Err(error) if error.kind() == io::ErrorKind::NotConnected => {}
            Err(error) => self.outlet.fail(error, End::Consumer, at),
        }
    }

    /// Injects a reset or a stall if one is due; true if it did (the writer is done).
    fn injected_due(&self) -> bool {
        let Some(shaper) = self.shaper.as_ref() else {
            return false;
        };
        match shaper.due() {
            Some(Allow::Reset) => self.outlet.inject_reset(shaper.written()),
            Some(Allow::Stall) => self.outlet.inject_stall(shaper.written()),
            _ => return false,
        };
        true
    }
}
