//! A direction's reader thread: from the producer's socket into the ring.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime};

use crossbeam_channel::Sender;

use crate::relay::buffer::Filler;
use crate::relay::event::{End, Event};
use crate::relay::meter::Meter;
use crate::relay::outlet::Outlet;
use crate::relay::stream::Stream;
use crate::relay::writer::Mark;

/// Reads from the producer into the ring, as far as its free space allows.
///
/// When nothing waits for the writer, the reader also tries to write what it read
/// straight to the consumer, without blocking: with nothing queued before them the
/// bytes cannot overtake anything, and sparing the hand-off to the writer thread is
/// what keeps a request/response round trip and an unhindered bulk transfer as fast
/// as a plain relay. Whatever the consumer cannot take at once is left to the writer,
/// which blocks on it as usual; the events are the same either way.
pub(crate) struct Reader<'a> {
    pub(crate) producer: &'a Stream,
    pub(crate) ring: Filler,
    pub(crate) outlet: Outlet<'a>,
    /// Bytes read so far, for the logger's summary.
    pub(crate) total: &'a AtomicU64,
    /// The live progress line's counts, when it is shown.
    pub(crate) meter: Option<&'a Meter>,
    /// False when the direction has faults: then every byte goes through the
    /// writer's shaper.
    pub(crate) cut_through: bool,
    /// `--delay`: where each read ends in the stream and when it was read, for the
    /// writer to hold it back.
    pub(crate) marks: Option<Sender<Mark>>,
}

impl Reader<'_> {
    pub(crate) fn run(mut self) {
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
                    if let Some(meter) = self.meter {
                        meter.read(dir, n);
                    }
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
