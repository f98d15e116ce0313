//! A direction's writer thread: from the ring to the consumer's socket, then the
//! shutdown that passes the producer's end of stream on.

use std::io;
use std::time::{Instant, SystemTime};

use crossbeam_channel::Receiver;

use crate::relay::buffer::Drainer;
use crate::relay::event::{End, Event};
use crate::relay::faults::{Allow, Shaper};
use crate::relay::outlet::Outlet;

/// `--delay`: a read's end in the stream, and when it was read.
pub(crate) struct Mark {
    pub(crate) end: u64,
    pub(crate) read_at: Instant,
}

/// Writes what the reader filled to the consumer, blocking as long as it takes, then
/// shuts down the consumer's write side.
pub(crate) struct Writer<'a> {
    pub(crate) ring: Drainer,
    pub(crate) outlet: Outlet<'a>,
    /// The direction's faults at work, if it has any.
    pub(crate) shaper: Option<Shaper>,
    /// `--delay`: the reads, to hold each back until it is due.
    pub(crate) marks: Option<Receiver<Mark>>,
}

/// How far the writer may write next.
enum Next {
    /// Everything the reader has filled.
    All,
    /// Up to this stream position (`--delay`: the end of a read that is due).
    UpTo(u64),
    /// Nothing more: every read is written.
    Done,
    /// The relay is stopping, or a fault ended the writing.
    Stop,
}

impl Writer<'_> {
    pub(crate) fn run(mut self) {
        // A reset or stall that is due acts at once, not when (or if) more bytes
        // come: `--reset-after 0` before any byte, `--reset-after 6` right after a
        // 6-byte request.
        if self.injected_due() {
            return;
        }
        loop {
            let until = match self.next() {
                Next::All => None,
                Next::UpTo(end) => Some(end),
                Next::Done => break,
                Next::Stop => return,
            };
            if !self.write_until(until) {
                return;
            }
            if until.is_none() {
                break;
            }
        }
        // Rule 3: the reader hung up and everything before that is written.
        if !self.outlet.stopper.stopping() {
            self.shut_down();
        }
    }

    /// With `--delay`, one read at a time, each once it is due; else all there is.
    fn next(&mut self) -> Next {
        let Some(marks) = &self.marks else {
            return Next::All;
        };
        // An error is the reader hanging up: every read is written.
        let Ok(mark) = marks.recv() else {
            return Next::Done;
        };
        let stop = self.outlet.stopper.channel();
        let due = self
            .shaper
            .as_mut()
            .is_some_and(|s| s.hold(mark.read_at, stop));
        if due {
            Next::UpTo(mark.end)
        } else {
            Next::Stop
        }
    }

    /// Writes what is filled, up to `until` if given, until the reader hangs up. False
    /// if writing stopped short (a failure, a stop, an injected fault).
    fn write_until(&mut self, until: Option<u64>) -> bool {
        while let Some(bytes) = self.ring.pending(until) {
            let written = match self.shaper.as_mut() {
                None => self.outlet.deliver(bytes, true),
                Some(shaper) => self.outlet.deliver_shaped(bytes, shaper),
            };
            let Some(written) = written else {
                return false;
            };
            // Rule 2: the Wrote events went first, now the space is free.
            self.ring.consumed(written);
            if self.injected_due() {
                return false;
            }
        }
        true
    }

    /// Passes the producer's end of stream on: shuts down the consumer's write side.
    fn shut_down(&self) {
        let Outlet {
            dir,
            producer,
            consumer,
            ..
        } = self.outlet;
        let result = consumer.pass_end_on(producer);
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
