//! The way into one direction's consumer, shared by that direction's reader (its
//! cut-through, when the buffer is empty) and its writer (everything else).
//!
//! Every write to a consumer goes through an `Outlet`, so every write is reported
//! the same way, whoever makes it: a `Wrote` event per write when the logger
//! watches, a failure reported once and the connection's reading stopped. Injected
//! faults (`--rate`, `--slice`, `--reset-after`, `--stall-after`) shape the writes
//! here too.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::Sender;

use crate::relay::event::{ConnId, Direction, End, Event, Note};
use crate::relay::faults::{Allow, Injected, Shaper};
use crate::relay::kernel_queues::{self, Queues};
use crate::relay::net;
use crate::relay::stop::Stopper;
use crate::relay::stream::Stream;

/// Before an injected reset, how long the consumer may take to acknowledge the bytes
/// already written to it (a reset discards what it has not acknowledged).
const RESET_ACK_WAIT: Duration = Duration::from_secs(1);

/// The way into one direction's consumer, shared by its reader and its writer: every
/// write goes through here, so every write is reported the same way.
pub(crate) struct Outlet<'a> {
    pub(crate) conn: ConnId,
    pub(crate) dir: Direction,
    pub(crate) producer: &'a Stream,
    pub(crate) consumer: &'a Stream,
    /// `--kernel-queues`: measure them for every event.
    pub(crate) kernel_queues: bool,
    pub(crate) notes: Sender<Note>,
    /// Whether the logger wants a `Wrote` event per write.
    pub(crate) watched: bool,
    pub(crate) stopper: &'a Stopper,
    /// Set when a direction of the connection failed.
    pub(crate) failed: &'a AtomicBool,
    /// Set when a reset was injected (`--reset-after`).
    pub(crate) reset: &'a AtomicBool,
}

impl Outlet<'_> {
    /// Tells the logger. (If the logger is gone, the process is ending anyway.)
    pub(crate) fn tell(&self, event: Event) {
        // Measured right after the event's system call, so that the status line
        // pairs the user-space backlog with the kernel's queues of the same moment.
        let kernel = if self.kernel_queues {
            Queues::of(self.producer.socket(), self.consumer.socket())
        } else {
            None
        };
        let _ = self.notes.send(Note::Event(self.conn, event, kernel));
    }

    /// Reports a failure of this direction, unless a stop is under way (then what
    /// the thread met is the stop), and stops the connection's reading.
    pub(crate) fn fail(&self, error: io::Error, end: End, at: SystemTime) {
        if !self.stopper.stopping() {
            self.failed.store(true, Ordering::SeqCst);
            self.tell(Event::Failed {
                dir: self.dir,
                end,
                error,
                at,
            });
            self.stopper.stop_reading();
        }
    }

    /// Writes `bytes`, all of them (or until writing fails), with a `Wrote` event
    /// per write. With `wait` false it never blocks, and stops at the first write
    /// the kernel cannot take at once. How many bytes were written; `None` if
    /// writing failed (already reported) or the relay is stopping.
    pub(crate) fn deliver(&self, bytes: &[u8], wait: bool) -> Option<usize> {
        let mut done = 0;
        while done < bytes.len() {
            let n = match self.consumer.send(&bytes[done..], wait) {
                Ok(0) => return self.failed(io::ErrorKind::WriteZero.into()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && !wait => break,
                Err(e) => return self.failed(e),
            };
            done += n;
            if self.watched {
                // The moment the write returned, for timestamps and the capture (a
                // vDSO call, and only when someone watches).
                let at = SystemTime::now();
                self.tell(Event::Wrote {
                    dir: self.dir,
                    n,
                    at,
                });
            }
        }
        Some(done)
    }

    /// Writes `bytes` as the direction's faults allow: paced (`--rate`), in slices
    /// (`--slice`), and stopped short by a reset or a stall that comes due. Blocks as
    /// long as that takes; `None` if it stopped short.
    pub(crate) fn deliver_shaped(&self, bytes: &[u8], shaper: &mut Shaper) -> Option<usize> {
        let stop = self.stopper.channel();
        let mut done = 0;
        while done < bytes.len() {
            let n = match shaper.allow(bytes.len() - done, stop) {
                Allow::Write(n) => n,
                Allow::Reset => return self.inject_reset(shaper.written()),
                Allow::Stall => return self.inject_stall(shaper.written()),
                Allow::Stopped => return None,
            };
            let n = self.deliver(&bytes[done..done + n], true)?;
            shaper.wrote(n);
            done += n;
        }
        Some(done)
    }

    /// `--reset-after`: resets the consumer's connection once it has acknowledged
    /// what it was sent, and ends the relay (quietly: what the other threads meet
    /// next is the reset's doing, not the peers').
    pub(crate) fn inject_reset(&self, after: u64) -> Option<usize> {
        self.reset.store(true, Ordering::SeqCst);
        self.stopper.stop_reading();
        // A reset throws away what the consumer has not acknowledged; wait (a
        // little) for it, so that it really gets the bytes before the reset.
        let deadline = Instant::now() + RESET_ACK_WAIT;
        while kernel_queues::unacknowledged(self.consumer.socket()).is_ok_and(|n| n > 0)
            && Instant::now() < deadline
        {
            thread::sleep(Duration::from_millis(1));
        }
        let _ = net::reset(self.consumer.socket());
        self.tell(Event::Injected {
            dir: self.dir,
            fault: Injected::Reset(after),
            at: SystemTime::now(),
        });
        None
    }

    /// `--stall-after`: writes nothing more, until the relay is stopped.
    pub(crate) fn inject_stall(&self, after: u64) -> Option<usize> {
        self.tell(Event::Injected {
            dir: self.dir,
            fault: Injected::Stall(after),
            at: SystemTime::now(),
        });
        // Only a stop disconnects this channel; nothing is ever sent on it.
        let _ = self.stopper.channel().recv();
        None
    }

    /// Writing to the consumer failed: the consumer's end.
    pub(crate) fn failed(&self, error: io::Error) -> Option<usize> {
        self.fail(error, End::Consumer, SystemTime::now());
        None
    }
}
