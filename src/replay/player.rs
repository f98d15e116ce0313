//! Playing one side of a recorded connection against a live peer, byte for byte.
//!
//! The recording is a sequence of events in capture order. Bytes of *our* side are
//! sent; bytes of the *peer's* side are received and compared, exactly as many as the
//! recording has, before anything after them is sent. That keeps a request/response
//! protocol in step: we answer only once the live peer has said what the recorded one
//! said. Each direction ends as it did in the recording: our FIN is a write shutdown,
//! our RST a close with SO_LINGER 0; the peer's FIN or RST must arrive where the
//! recording has it.
//!
//! What counts as a difference, and stops the replay with exit 1:
//! - a byte that differs (both sides shown as hexdumps from the first differing
//!   offset, a few rows each);
//! - the peer closing or resetting before it has said everything;
//! - the peer saying too much: bytes already waiting when it is our turn to send, or
//!   bytes where the recording has its FIN or its end;
//! - the peer staying silent (or not reading what we send) for longer than
//!   `--timeout`: every wait is bounded, so a replay in CI never hangs.
//!
//! The live display is the relay's, through the same `Printer`: `A -> B sent N bytes`
//! and its rows for every chunk either way, then the receiving side's status. In the
//! relay, `B is N bytes behind` counts bytes read from A and not yet written to B,
//! the bytes waiting in tiburoncin. The replayer keeps that meaning: a chunk of ours
//! is "read" from the recording and "written" once `write_all` has returned (the
//! kernel took all of it), a chunk of the peer's is "read" from the socket and
//! "written" once compared. The replayer holds no bytes between the two, so the
//! status printed after each chunk is `in sync`; bytes the kernel still holds (which
//! `--kernel-queues` shows in the relay) are not counted, as in the relay.
//!
//! `-w` records the replay with the relay's capture writer, one TCP stream between
//! the replay's real addresses: a chunk goes in once it is written whole (ours) or
//! received and matched (the peer's), so the capture holds what both sides agreed
//! on. Bytes of a chunk that differed are not in it; the difference report has them.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::thread;
use std::time::{Duration, SystemTime};

use socket2::SockRef;

use crate::direction::{Direction, End};
use crate::error::Error;
use crate::output::capture::Capture;
use crate::output::printer::{Flow, Printer};
use crate::relay::event;
use crate::replay::difference::Difference;
use crate::replay::reassembly::{StreamEnd, StreamEvent};
use crate::replay::recording::Recording;

/// How much the peer may have sent that is read to show it in a difference.
const SHOWN: usize = crate::replay::difference::SHOWN;

/// How to play.
#[derive(Debug, Clone, Copy)]
pub struct PlaySettings {
    /// The direction we send: A->B when playing A.
    pub ours: Direction,
    pub stream: usize,
    pub timeout: Duration,
    /// Keep the recorded pauses before our turns, divided by this.
    pub pace: Option<f64>,
    pub colour: bool,
    pub quiet: bool,
}

pub struct Player<'o, W: Write> {
    /// `None` once we have reset the connection.
    socket: Option<TcpStream>,
    settings: PlaySettings,
    theirs: Direction,
    out: &'o mut W,
    /// The relay's line formats; its buffer collects what `flush` writes out.
    printer: Printer,
    /// Bytes taken in and handed on per direction, for the status lines.
    flows: [Flow; 2],
    /// Bytes done so far, per direction: the stream offset of the next one.
    offsets: [u64; 2],
    /// Whether each direction has ended (FIN or RST) in the replay.
    ended: [bool; 2],
    /// The direction and time of the last data played, for turns and pauses.
    previous: Option<(Direction, Duration)>,
    turns: u64,
    /// `-w`: the capture of the replay, and its name for an error message.
    recorder: Option<(Capture<BufWriter<File>>, String)>,
    /// The capture's first write error: it stops the recording, not the replay, and
    /// fails a replay that otherwise matched.
    record_error: Option<(String, io::Error)>,
}

impl<'o, W: Write> Player<'o, W> {
    pub fn new(socket: TcpStream, settings: PlaySettings, out: &'o mut W) -> Self {
        let theirs = match settings.ours {
            Direction::AtoB => Direction::BtoA,
            Direction::BtoA => Direction::AtoB,
        };
        // Each chunk goes out as recorded, not held back to be merged by Nagle.
        let _ = socket.set_nodelay(true);
        Player {
            socket: Some(socket),
            settings,
            theirs,
            out,
            printer: Printer::new(settings.colour),
            flows: [Flow::default(); 2],
            offsets: [0; 2],
            ended: [false; 2],
            previous: None,
            turns: 0,
            recorder: None,
            record_error: None,
        }
    }

    /// `-w`: records the replay into `capture` (its handshake written already).
    pub fn recording_into(mut self, capture: Capture<BufWriter<File>>, what: String) -> Self {
        self.recorder = Some((capture, what));
        self
    }

    /// Shows something in the capture, if there is one and it still works.
    fn record(&mut self, show: impl FnOnce(&mut Capture<BufWriter<File>>) -> io::Result<()>) {
        if let Some((capture, what)) = self.recorder.as_mut() {
            if let Err(error) = show(capture) {
                self.record_error = Some((what.clone(), error));
                self.recorder = None;
            }
        }
    }

    /// Writes out the end of the capture; the replay's verdict is already known.
    fn finish_recording(&mut self) {
        let now = SystemTime::now();
        self.record(|c| c.finish(now).and_then(|()| c.flush()));
        self.recorder = None;
    }

    /// Plays the whole recording; `Ok` when the peer matched it to the end.
    pub fn play(mut self, mut recording: Recording) -> Result<(), Error> {
        while let Some(event) = recording.next_event()? {
            if self.socket.is_none() {
                break; // we reset the connection: nothing more can be exchanged
            }
            match event {
                StreamEvent::Data {
                    dir, time, bytes, ..
                } => {
                    if self.previous.map(|(d, _)| d) != Some(dir) {
                        self.turns += 1;
                        if dir == self.settings.ours {
                            self.before_our_turn(time)?;
                        }
                    }
                    self.previous = Some((dir, time));
                    if dir == self.settings.ours {
                        self.send(&bytes)?;
                    } else {
                        self.expect(&bytes)?;
                    }
                }
                StreamEvent::End { dir, how, .. } if dir == self.settings.ours => {
                    self.end_ours(how)
                }
                StreamEvent::End { .. } => self.expect_end()?,
                StreamEvent::Gap { dir, len, .. } => {
                    self.flush();
                    return Err(Error::NotCaptured {
                        dir,
                        offset: self.offsets[dir.index()],
                        len,
                    });
                }
            }
        }
        // The recording ends with the peer's side open: it must not have said more.
        if self.socket.is_some() && !self.ended[self.theirs.index()] {
            self.nothing_waiting("after the end of the recording")?;
        }
        let [ab, ba] = self.offsets;
        let summary = format!(
            "Replay matched stream {}: {ab} bytes A -> B, {ba} bytes B -> A, {} turns.\n",
            self.settings.stream, self.turns
        );
        self.printer.text.extend_from_slice(summary.as_bytes());
        self.flush();
        self.finish_recording();
        match self.record_error.take() {
            Some((what, source)) => Err(Error::Output { what, source }),
            None => Ok(()),
        }
    }

    /// Before we speak: the peer must have nothing more to say, then the pause.
    fn before_our_turn(&mut self, time: Duration) -> Result<(), Error> {
        if !self.ended[self.theirs.index()] {
            let when = match self.settings.ours {
                Direction::AtoB => "before A's next turn",
                Direction::BtoA => "before B's next turn",
            };
            self.nothing_waiting(when)?;
        }
        if let (Some(speed), Some((_, before))) = (self.settings.pace, self.previous) {
            self.flush();
            let gap = time.saturating_sub(before).as_secs_f64() / speed;
            thread::sleep(Duration::try_from_secs_f64(gap).unwrap_or(Duration::MAX));
        }
        Ok(())
    }

    fn send(&mut self, bytes: &[u8]) -> Result<(), Error> {
        let dir = self.settings.ours;
        let Some(socket) = self.socket.as_mut() else {
            return Ok(());
        };
        let sent = socket
            .set_write_timeout(Some(self.settings.timeout))
            .and_then(|()| socket.write_all(bytes));
        if let Err(error) = sent {
            return self.differ(dir, 0, Difference::SendFailed { error });
        }
        let now = SystemTime::now();
        self.record(|c| c.delivered(dir, bytes, now));
        self.chunk(dir, bytes);
        self.offsets[dir.index()] += bytes.len() as u64;
        Ok(())
    }

    /// Receives exactly `expected.len()` bytes from the peer and compares them.
    fn expect(&mut self, expected: &[u8]) -> Result<(), Error> {
        let dir = self.theirs;
        let mut got = vec![0u8; expected.len()];
        let mut n = 0;
        while n < expected.len() {
            // What is still expected, copied only when a difference needs it.
            let rest = || expected[n..].to_vec();
            match self.read(&mut got[n..]) {
                Ok(0) => return self.differ(dir, n, Difference::Closed { expected: rest() }),
                Ok(k) => {
                    let same = got[n..n + k] == expected[n..n + k];
                    if !same {
                        let at = (n..n + k).find(|&i| got[i] != expected[i]).unwrap_or(n);
                        let mut received = got[at..n + k].to_vec();
                        self.read_waiting(&mut received);
                        let expected = expected[at..].to_vec();
                        let diff = Difference::Bytes { expected, received };
                        return self.differ(dir, at, diff);
                    }
                    n += k;
                }
                Err(e) if is_timeout(&e) => {
                    let diff = Difference::Silent {
                        expected: rest(),
                        fin: false,
                    };
                    return self.differ(dir, n, diff);
                }
                Err(error) => {
                    let diff = Difference::Reset {
                        expected: rest(),
                        error,
                    };
                    return self.differ(dir, n, diff);
                }
            }
        }
        let now = SystemTime::now();
        self.record(|c| c.delivered(dir, expected, now));
        self.chunk(dir, expected);
        self.offsets[dir.index()] += expected.len() as u64;
        Ok(())
    }

    /// The peer's side ends here in the recording: it must close, saying nothing more.
    fn expect_end(&mut self) -> Result<(), Error> {
        let dir = self.theirs;
        let mut buf = [0u8; SHOWN];
        match self.read(&mut buf) {
            // A reset is accepted where the recording has a FIN or a RST: on Linux a
            // close with unread bytes is a RST, and that is timing, not behaviour.
            Ok(0) => {}
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {}
            Ok(k) => {
                let mut received = buf[..k].to_vec();
                self.read_waiting(&mut received);
                let when = "where the recording has its FIN";
                return self.differ(dir, 0, Difference::Extra { received, when });
            }
            Err(e) if is_timeout(&e) => {
                let diff = Difference::Silent {
                    expected: Vec::new(),
                    fin: true,
                };
                return self.differ(dir, 0, diff);
            }
            Err(error) => {
                let diff = Difference::Reset {
                    expected: Vec::new(),
                    error,
                };
                return self.differ(dir, 0, diff);
            }
        }
        self.ended[dir.index()] = true;
        let at = SystemTime::now();
        self.record(|c| c.record(&event::Event::Closed { dir, at }));
        self.line(
            dir,
            &format!("{} -> {} flow shutdown\n", dir.from(), dir.to()),
        );
        Ok(())
    }

    fn end_ours(&mut self, how: StreamEnd) {
        let dir = self.settings.ours;
        self.ended[dir.index()] = true;
        match how {
            StreamEnd::Rst => {
                if let Some(socket) = self.socket.take() {
                    // Closing with a zero linger time sends a RST instead of a FIN.
                    let _ = SockRef::from(&socket).set_linger(Some(Duration::ZERO));
                }
                let at = SystemTime::now();
                // The capture shows a reset from the side that sent it: ours.
                let error = io::Error::from(io::ErrorKind::ConnectionReset);
                let failed = event::Event::Failed {
                    dir,
                    end: End::Producer,
                    error,
                    at,
                };
                self.record(|c| c.record(&failed));
                self.line(dir, &format!("{} -> {} reset\n", dir.from(), dir.to()));
            }
            StreamEnd::Fin | StreamEnd::Open => {
                if let Some(socket) = &self.socket {
                    // A peer that is gone already will show up when we read from it.
                    let _ = socket.shutdown(Shutdown::Write);
                }
                let at = SystemTime::now();
                self.record(|c| c.record(&event::Event::Closed { dir, at }));
                self.line(
                    dir,
                    &format!("{} -> {} flow shutdown\n", dir.from(), dir.to()),
                );
            }
        }
    }

    /// Fails if the peer has sent anything (or closed) that we have not read yet.
    fn nothing_waiting(&mut self, when: &'static str) -> Result<(), Error> {
        let dir = self.theirs;
        let mut received = Vec::new();
        self.read_waiting(&mut received);
        if !received.is_empty() {
            return self.differ(dir, 0, Difference::Extra { received, when });
        }
        let closed = self.socket.as_ref().is_some_and(|s| {
            s.set_nonblocking(true).is_ok() && {
                let peeked = s.peek(&mut [0u8; 1]);
                let _ = s.set_nonblocking(false);
                matches!(peeked, Ok(0))
            }
        });
        if closed {
            return self.differ(
                dir,
                0,
                Difference::Closed {
                    expected: Vec::new(),
                },
            );
        }
        Ok(())
    }

    /// Appends to `buf` whatever the peer has already sent, up to `SHOWN` bytes, without
    /// waiting for more.
    fn read_waiting(&mut self, buf: &mut Vec<u8>) {
        let Some(socket) = self.socket.as_mut() else {
            return;
        };
        if socket.set_nonblocking(true).is_err() {
            return;
        }
        let mut chunk = [0u8; SHOWN];
        while buf.len() < SHOWN {
            match socket.read(&mut chunk[..SHOWN - buf.len()]) {
                Ok(0) | Err(_) => break,
                Ok(k) => buf.extend_from_slice(&chunk[..k]),
            }
        }
        let _ = socket.set_nonblocking(false);
    }

    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(socket) = self.socket.as_mut() else {
            return Ok(0);
        };
        socket.set_read_timeout(Some(self.settings.timeout))?;
        loop {
            match socket.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => return other,
            }
        }
    }

    /// Reports `difference`, found `skip` bytes past the direction's current offset,
    /// and ends the replay with it.
    fn differ(&mut self, dir: Direction, skip: usize, difference: Difference) -> Result<(), Error> {
        let offset = self.offsets[dir.index()] + skip as u64;
        difference.report(&mut self.printer.text, dir, offset, self.settings.timeout);
        self.flush();
        self.finish_recording();
        Err(Error::Differs { dir, offset })
    }

    /// `X -> Y sent N bytes` and its rows, then `Y is in sync`: the chunk was taken
    /// in and handed on whole (see the module comment).
    fn chunk(&mut self, dir: Direction, bytes: &[u8]) {
        let flow = &mut self.flows[dir.index()];
        flow.read += bytes.len() as u64;
        flow.written += bytes.len() as u64;
        let flow = *flow;
        if self.settings.quiet {
            return;
        }
        let now = SystemTime::now();
        let offset = self.offsets[dir.index()];
        self.printer.sent("", dir, now, offset, bytes);
        self.printer.status("", dir, now, flow, None);
        self.flush();
    }

    fn line(&mut self, dir: Direction, text: &str) {
        if self.settings.quiet {
            return;
        }
        let now = SystemTime::now();
        self.printer
            .line(Some(dir), "", now, format_args!("{text}"));
    }

    /// Writes out what is formatted. A failing stdout must not hide the verdict, which
    /// is also in the exit status, so its error is dropped here.
    fn flush(&mut self) {
        let _ = self.out.write_all(&self.printer.text);
        let _ = self.out.flush();
        self.printer.text.clear();
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}
