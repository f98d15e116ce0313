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
//! right after its `Wrote` event, its memory once the logger has shown it.
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

use std::io::{self, Write};
use std::net::Shutdown;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, SystemTime};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, bounded, select};
use socket2::Socket;

use crate::buffer::{Chunk, Credit, Recycler, user_space_buffer};
use crate::event::{Direction, End, Event};
use crate::logger::{Logger, Report};
use crate::stop::Stopper;

/// Events in flight to the logger before a relay thread waits for it.
const EVENT_QUEUE: usize = 1024;

/// After a failure, how long writers may keep draining before everything is cut.
const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// How a relay ended.
#[derive(Debug)]
pub enum Outcome {
    /// Both directions closed; every byte read was delivered.
    Completed(Report),
    /// A direction or an output failed; the messages are already on stderr.
    Failed(Report),
    /// Stopped by this signal; every output was flushed.
    Cancelled(i32, Report),
}

/// Relays between `a` and `b` until both directions are closed, with `buffers`
/// (A->B, B->A) bytes of user-space buffer, all output going through `logger`.
pub fn run<W: Write + Send>(
    a: Socket,
    b: Socket,
    buffers: (usize, usize),
    logger: Logger<W>,
    stopper: &Stopper,
) -> Outcome {
    let a = Arc::new(a);
    let b = Arc::new(b);
    stopper.start_relay(&[a.clone(), b.clone()]);

    let (events, event_queue) = bounded(EVENT_QUEUE);
    let (credit_ab, recycler_ab) = user_space_buffer(buffers.0);
    let (credit_ba, recycler_ba) = user_space_buffer(buffers.1);
    // A logger that shows nothing per chunk (-q, no files) gets no chunk events, and
    // spent chunks go straight from writer to reader, sparing a logger wake-up per
    // chunk.
    let watched = logger.watches_chunks();
    let totals = [AtomicU64::new(0), AtomicU64::new(0)];
    let (chunks_ab, queue_ab) = bounded(buffers.0.min(EVENT_QUEUE));
    let (chunks_ba, queue_ba) = bounded(buffers.1.min(EVENT_QUEUE));
    // Never sent on: it disconnects when the last relay thread ends.
    let (alive, all_done) = bounded::<()>(0);

    let report = thread::scope(|scope| {
        let recyclers = [recycler_ab.clone(), recycler_ba.clone()];
        let totals = &totals;
        let logger = scope.spawn(move || logger.run(event_queue, recyclers, totals));

        let pipes = [
            (
                Direction::AtoB,
                &a,
                &b,
                credit_ab,
                chunks_ab,
                queue_ab,
                recycler_ab,
            ),
            (
                Direction::BtoA,
                &b,
                &a,
                credit_ba,
                chunks_ba,
                queue_ba,
                recycler_ba,
            ),
        ];
        for (dir, producer, consumer, credit, chunks, queue, recycler) in pipes {
            let outlet = || Outlet {
                dir,
                consumer,
                events: events.clone(),
                watched,
                stopper,
            };
            let reader = Reader {
                producer,
                credit,
                chunks,
                outlet: outlet(),
                total: &totals[dir.index()],
            };
            let writer = Writer {
                queue,
                outlet: outlet(),
                recycler,
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
        drop((events, alive));

        // Wait for the relay threads; once a stop has begun, give them a bounded time.
        select! {
            recv(all_done) -> _ => {},
            recv(stopper.channel()) -> _ => {},
        }
        if let Err(RecvTimeoutError::Timeout) = all_done.recv_timeout(DRAIN_GRACE) {
            stopper.stop_now();
        }
        logger
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    });

    if let Some(signal) = stopper.cancelled_by() {
        Outcome::Cancelled(signal, report)
    } else if report.relay_failed || !report.output_failures.is_empty() {
        Outcome::Failed(report)
    } else {
        Outcome::Completed(report)
    }
}

/// The way into one direction's consumer, shared by its reader and its writer: every
/// write goes through here, so every write is reported the same way.
struct Outlet<'a> {
    dir: Direction,
    consumer: &'a Socket,
    events: Sender<Event>,
    /// Whether the logger wants a `Wrote` event per write; when it does, a spent chunk
    /// goes home through the logger with the last one.
    watched: bool,
    stopper: &'a Stopper,
}

/// How far a delivery got.
enum Delivered {
    /// All `len` bytes: their credit is the caller's to return. So is the chunk if
    /// nobody watches; otherwise it went to the logger, which sends it home.
    Whole { len: usize, chunk: Option<Chunk> },
    /// The consumer's kernel buffer is full: this chunk, written up to this offset.
    Part(Chunk, usize),
    /// Writing failed (already reported) or the relay is stopping.
    Stopped,
}

impl Outlet<'_> {
    /// Writes `chunk[from..]`. With `wait` false it never blocks, and stops at the
    /// first write the kernel cannot take at once.
    fn deliver(&self, chunk: Chunk, mut from: usize, wait: bool) -> Delivered {
        let flags = if wait { 0 } else { libc::MSG_DONTWAIT };
        while from < chunk.len() {
            let n = match self.consumer.send_with_flags(&chunk[from..], flags) {
                Ok(0) => return self.failed(io::ErrorKind::WriteZero.into()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && !wait => {
                    return Delivered::Part(chunk, from);
                }
                Err(e) => return self.failed(e),
            };
            from += n;
            if !self.watched {
                continue;
            }
            // The moment the write returned, for the capture's timestamps (a vDSO
            // call, and only when someone watches).
            let at = SystemTime::now();
            if from == chunk.len() {
                // The logger sends the chunk home once it has shown it; the caller
                // returns the credit after this (rule 2). Moved, not cloned: the
                // reader must get it back unshared.
                let _ = self.events.send(Event::Wrote {
                    dir: self.dir,
                    n,
                    spent: Some(chunk),
                    at,
                });
                return Delivered::Whole {
                    len: from,
                    chunk: None,
                };
            }
            let _ = self.events.send(Event::Wrote {
                dir: self.dir,
                n,
                spent: None,
                at,
            });
        }
        Delivered::Whole {
            len: from,
            chunk: Some(chunk),
        }
    }

    /// Writing to the consumer failed: the consumer's end.
    fn failed(&self, error: io::Error) -> Delivered {
        if !self.stopper.stopping() {
            let _ = self.events.send(Event::Failed {
                dir: self.dir,
                end: End::Consumer,
                error,
                at: SystemTime::now(),
            });
            self.stopper.stop_reading();
        }
        Delivered::Stopped
    }
}

/// Reads from the producer into chunks, as far as the credit allows.
///
/// When its buffer is empty, the reader also tries to write what it read straight to
/// the consumer, without blocking: with nothing queued before them the bytes cannot
/// overtake anything, and sparing the hand-off to the writer thread is what keeps a
/// request/response round trip and an unhindered bulk transfer as fast as a plain
/// relay. Whatever the consumer cannot take at once goes to the writer, which blocks
/// on it as usual; the events are the same either way.
struct Reader<'a> {
    producer: &'a Socket,
    credit: Credit,
    chunks: Sender<(Chunk, usize)>,
    outlet: Outlet<'a>,
    /// Bytes read so far, for the logger's summary.
    total: &'a AtomicU64,
}

impl Reader<'_> {
    fn run(mut self) {
        let dir = self.outlet.dir;
        loop {
            let Some(mut blank) = self.credit.blank(self.outlet.stopper.channel()) else {
                return;
            };
            match blank.read_from(self.producer) {
                Ok(0) => {
                    if !self.outlet.stopper.stopping() {
                        let at = SystemTime::now();
                        let _ = self.outlet.events.send(Event::Eof { dir, at });
                    }
                    // Returning drops `chunks`: the writer drains, then shuts down.
                    return;
                }
                Ok(n) => {
                    // Nothing is queued for the writer when all the credit is home.
                    let idle = self.credit.is_full();
                    let chunk = self.credit.fill(blank, n);
                    self.total.fetch_add(n as u64, Ordering::Relaxed);
                    // Rule 1: logged before anyone writes it.
                    if self.outlet.watched {
                        let _ = self.outlet.events.send(Event::Read {
                            dir,
                            chunk: chunk.clone(),
                            // When the read returned, give or take the lines above.
                            at: SystemTime::now(),
                        });
                    }
                    let (chunk, from) = if idle {
                        match self.outlet.deliver(chunk, 0, false) {
                            Delivered::Whole { len, chunk } => {
                                match chunk {
                                    Some(chunk) => self.credit.keep(chunk),
                                    None => self.credit.restore(len),
                                }
                                continue;
                            }
                            Delivered::Part(chunk, from) => (chunk, from),
                            Delivered::Stopped => return,
                        }
                    } else {
                        (chunk, 0)
                    };
                    if self.chunks.send((chunk, from)).is_err() {
                        return; // the writer failed
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => self.credit.put_back(blank),
                Err(error) => {
                    if !self.outlet.stopper.stopping() {
                        let _ = self.outlet.events.send(Event::Failed {
                            dir,
                            end: End::Producer,
                            error,
                            at: SystemTime::now(),
                        });
                        self.outlet.stopper.stop_reading();
                    }
                    return;
                }
            }
        }
    }
}

/// Writes queued chunks to the consumer, blocking as long as it takes, then shuts
/// down the consumer's write side.
struct Writer<'a> {
    queue: Receiver<(Chunk, usize)>,
    outlet: Outlet<'a>,
    /// Where spent chunks go when no logger watches them.
    recycler: Recycler,
}

impl Writer<'_> {
    fn run(self) {
        let Outlet {
            dir,
            consumer,
            stopper,
            ..
        } = self.outlet;
        for (chunk, from) in self.queue.iter() {
            match self.outlet.deliver(chunk, from, true) {
                // Rule 2: the Wrote event went first, now the credit goes back.
                Delivered::Whole {
                    chunk: Some(chunk), ..
                } => self.recycler.spent(chunk),
                Delivered::Whole { len, chunk: None } => self.recycler.credit(len),
                // A blocking delivery ends whole or stopped.
                Delivered::Part(..) | Delivered::Stopped => return,
            }
        }
        // Rule 3: the reader hung up and everything before that is written.
        if stopper.stopping() {
            return;
        }
        let result = consumer.shutdown(Shutdown::Write);
        let at = SystemTime::now();
        match result {
            Ok(()) => {
                let _ = self.outlet.events.send(Event::Closed { dir, at });
            }
            Err(error) => {
                // Not connected any more means the consumer reset the connection: it
                // closed without reading, and whatever was written to it since was
                // thrown away by its kernel, however well each write went. That is the
                // broken pipe of a consumer that closed with bytes still coming to it,
                // and the socket's pending error names it as a write would have.
                let error = consumer.take_error().ok().flatten().unwrap_or(error);
                let _ = self.outlet.events.send(Event::Failed {
                    dir,
                    end: End::Consumer,
                    error,
                    at,
                });
                stopper.stop_reading();
            }
        }
    }
}
