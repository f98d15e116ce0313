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
//! the reader's credit (see `buffer`): a spent chunk returns to the reader through
//! the logger, after its `Wrote` event.
//!
//! Three ordering rules make each direction's printed sequence deterministic:
//! 1. a reader sends `Read` *before* handing the chunk to its writer, so the logger
//!    never sees bytes written that it has not seen read;
//! 2. a writer sends `Wrote` *before* the buffer space is returned (the return rides on
//!    the event), so a read that the freed space allows is logged after that write;
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
use std::thread;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, bounded, select};
use socket2::Socket;

use crate::buffer::{Chunk, Credit, user_space_buffer};
use crate::event::{Direction, Event};
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
    let (chunks_ab, queue_ab) = bounded(buffers.0.min(EVENT_QUEUE));
    let (chunks_ba, queue_ba) = bounded(buffers.1.min(EVENT_QUEUE));
    // Never sent on: it disconnects when the last relay thread ends.
    let (alive, all_done) = bounded::<()>(0);

    let report = thread::scope(|scope| {
        let logger = scope.spawn(move || logger.run(event_queue, [recycler_ab, recycler_ba]));

        let pipes = [
            (Direction::AtoB, &a, &b, credit_ab, chunks_ab, queue_ab),
            (Direction::BtoA, &b, &a, credit_ba, chunks_ba, queue_ba),
        ];
        for (dir, producer, consumer, credit, chunks, queue) in pipes {
            let reader = Reader {
                dir,
                producer,
                credit,
                chunks,
                events: events.clone(),
                stopper,
            };
            let writer = Writer {
                dir,
                consumer,
                queue,
                events: events.clone(),
                stopper,
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

/// Reads from the producer into chunks, as far as the credit allows.
struct Reader<'a> {
    dir: Direction,
    producer: &'a Socket,
    credit: Credit,
    chunks: Sender<Chunk>,
    events: Sender<Event>,
    stopper: &'a Stopper,
}

impl Reader<'_> {
    fn run(mut self) {
        loop {
            let Some(mut blank) = self.credit.blank(self.stopper.channel()) else {
                return;
            };
            match blank.read_from(self.producer) {
                Ok(0) => {
                    if !self.stopper.stopping() {
                        let _ = self.events.send(Event::Eof { dir: self.dir });
                    }
                    // Returning drops `chunks`: the writer drains, then shuts down.
                    return;
                }
                Ok(n) => {
                    let chunk = self.credit.fill(blank, n);
                    // Rule 1: logged before the writer can write it.
                    let _ = self.events.send(Event::Read {
                        dir: self.dir,
                        chunk: chunk.clone(),
                    });
                    if self.chunks.send(chunk).is_err() {
                        return; // the writer failed
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => self.credit.put_back(blank),
                Err(error) => {
                    if !self.stopper.stopping() {
                        let _ = self.events.send(Event::Failed {
                            dir: self.dir,
                            error,
                        });
                        self.stopper.stop_reading();
                    }
                    return;
                }
            }
        }
    }
}

/// Writes chunks to the consumer, then shuts down its write side.
struct Writer<'a> {
    dir: Direction,
    consumer: &'a Socket,
    queue: Receiver<Chunk>,
    events: Sender<Event>,
    stopper: &'a Stopper,
}

impl Writer<'_> {
    fn run(self) {
        for chunk in self.queue.iter() {
            let mut done = 0;
            loop {
                let n = match write_some(self.consumer, &chunk[done..]) {
                    Ok(n) => n,
                    Err(error) => {
                        if !self.stopper.stopping() {
                            let _ = self.events.send(Event::Failed {
                                dir: self.dir,
                                error,
                            });
                            self.stopper.stop_reading();
                        }
                        return;
                    }
                };
                done += n;
                if done == chunk.len() {
                    // Rule 2: the chunk, and with it the credit, goes home with the event.
                    let _ = self.events.send(Event::Wrote {
                        dir: self.dir,
                        n,
                        spent: Some(chunk),
                    });
                    break;
                }
                let _ = self.events.send(Event::Wrote {
                    dir: self.dir,
                    n,
                    spent: None,
                });
            }
        }
        // Rule 3: the reader hung up and everything before that is written.
        if self.stopper.stopping() {
            return;
        }
        match self.consumer.shutdown(Shutdown::Write) {
            Ok(()) => {
                let _ = self.events.send(Event::Closed { dir: self.dir });
            }
            Err(error) => {
                // Not connected any more means the consumer reset the connection: it
                // closed without reading, and whatever was written to it since was
                // thrown away by its kernel, however well each write went. That is the
                // broken pipe of a consumer that closed with bytes still coming to it,
                // and the socket's pending error names it as a write would have.
                let error = self.consumer.take_error().ok().flatten().unwrap_or(error);
                let _ = self.events.send(Event::Failed {
                    dir: self.dir,
                    error,
                });
                self.stopper.stop_reading();
            }
        }
    }
}

/// One `write(2)`, retried when interrupted; a zero-byte write is an error.
fn write_some(mut consumer: &Socket, bytes: &[u8]) -> io::Result<usize> {
    loop {
        match consumer.write(bytes) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}
