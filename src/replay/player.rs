//! Playing one side of a recorded connection against a live peer, byte for byte.
//!
//! The recording is a sequence of events in capture order. Bytes of *our* side are
//! sent; bytes of the *peer's* side are received and compared, exactly as many as the
//! recording has, before anything after them is sent. That keeps a request/response
//! protocol in step: we answer only once the live peer has said what the recorded one
//! said. With `--ignore` or `--carry` rules, "as many" is what the rules make of the
//! recorded turn (`matcher`): the peer's whole turn is compared at once, and what it
//! sent beyond it waits in `pending` for the next comparison. Values `--carry` found
//! replace their recorded values in what we send from then on. Each direction ends as it did in the recording: our FIN is a write shutdown,
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

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::net::Shutdown;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, SystemTime};

use socket2::SockRef;

use crate::capture::shared::SharedPayload;
use crate::cli::config::Rule;
use crate::direction::{Direction, End};
use crate::error::Error;
use crate::output::capture::Capture;
use crate::output::printer::{Flow, Printer};
use crate::relay::event;
use crate::replay::difference::{At, Difference};
use crate::replay::matcher::{self, Carried, Step, TurnMatch};
use crate::replay::peer_socket::PeerSocket;
use crate::replay::reassembly::{StreamEnd, StreamEvent};
use crate::replay::recording::Recording;
use crate::replay::verdict::{FirstDifference, Verdict};
use crate::words::Count;

/// How much the peer may have sent that is read to show it in a difference.
const SHOWN: usize = crate::replay::difference::SHOWN;

/// The most read from the peer at once when rules make the turn's length unknown.
const READ_SIZE: usize = 64 * 1024;

/// The room for the peer's bytes that is kept between turns; a longer turn (with
/// rules, a turn is compared whole) grows it for as long as it lasts.
const KEPT_ROOM: usize = 2 * READ_SIZE;

/// The values `--carry` found so far, shared by every connection of the run: a token
/// one connection was given is what the next ones send.
pub type Carries = Arc<Mutex<Vec<Carried>>>;

/// How to play.
#[derive(Debug, Clone)]
pub struct PlaySettings {
    /// The direction we send: A->B when playing A.
    pub ours: Direction,
    pub stream: usize,
    pub timeout: Duration,
    /// Keep the recorded pauses before our turns, divided by this.
    pub pace: Option<f64>,
    pub colour: bool,
    pub quiet: bool,
    /// `[N] ` at the start of every line when several connections play; else empty.
    pub label: String,
    /// `--ignore` and `--carry`.
    pub rules: Arc<[Rule]>,
    pub carries: Carries,
}

/// Told the capture time of each event before it is played.
type Progress<'o> = Box<dyn FnMut(Duration) + Send + 'o>;

pub struct Player<'o, W: Write> {
    /// `None` once we have reset the connection.
    socket: Option<PeerSocket>,
    settings: PlaySettings,
    theirs: Direction,
    out: &'o mut W,
    /// The relay's line formats; its buffer collects what `flush` writes out.
    printer: Printer,
    /// Bytes taken in and handed on per direction, for the status lines.
    flows: [Flow; 2],
    /// Bytes done so far, per direction: the stream offset of the next one, live.
    offsets: [u64; 2],
    /// The same in the recording (another once a rule skipped spans of other lengths).
    recorded: [u64; 2],
    /// What the peer sent and was not matched yet: the next read goes on from here.
    pending: Received,
    /// Whether each direction has ended (FIN or RST) in the replay.
    ended: [bool; 2],
    /// The direction and time of the last data played, for turns and pauses.
    previous: Option<(Direction, Duration)>,
    turns: u64,
    /// How many spans each rule matched.
    used: Vec<u64>,
    difference: Option<FirstDifference>,
    progress: Option<Progress<'o>>,
    /// `-w`: the capture of the replay, and its name for an error message.
    recorder: Option<(Capture<BufWriter<File>>, String)>,
    /// The capture's first write error: it stops the recording, not the replay, and
    /// fails a replay that otherwise matched.
    record_error: Option<(String, io::Error)>,
}

/// The peer's bytes, read straight into the buffer they are compared from: the first
/// `len` of `bytes` came and are not matched yet (the turn being compared, then what
/// came beyond it); the rest is room for the next read, zeroed once and reused, so a
/// read neither clears memory nor copies what it read.
#[derive(Default)]
struct Received {
    bytes: Vec<u8>,
    len: usize,
}

impl Received {
    fn filled(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Room for `want` more bytes after those that came.
    fn room(&mut self, want: usize) -> &mut [u8] {
        let end = self.len + want;
        if self.bytes.len() < end {
            self.bytes.resize(end, 0);
        }
        &mut self.bytes[self.len..end]
    }

    /// `k` bytes were read into the room.
    fn added(&mut self, k: usize) {
        self.len += k;
    }

    /// The first `n` bytes were matched: what came after them moves to the front
    /// (nothing, without rules: exactly the recorded bytes are read).
    fn consume(&mut self, n: usize) {
        self.bytes.copy_within(n..self.len, 0);
        self.len -= n;
        if self.bytes.len() > KEPT_ROOM && self.len <= KEPT_ROOM {
            self.bytes.truncate(KEPT_ROOM);
            self.bytes.shrink_to(KEPT_ROOM);
        }
    }

    /// Everything that came and was not matched, taken out.
    fn take_all(&mut self) -> Vec<u8> {
        let bytes = self.filled().to_vec();
        self.consume(self.len);
        bytes
    }
}

/// The recording's events with one of look-ahead, to take a turn whole.
struct Events {
    recording: Recording,
    peeked: Option<StreamEvent<SharedPayload>>,
}

impl Events {
    fn next(&mut self) -> Result<Option<StreamEvent<SharedPayload>>, Error> {
        match self.peeked.take() {
            Some(event) => Ok(Some(event)),
            None => self.recording.next_event(),
        }
    }

    /// `bytes` and the data events of `dir` right after them: the rest of the turn.
    fn rest_of_turn(&mut self, dir: Direction, mut bytes: Vec<u8>) -> Result<Vec<u8>, Error> {
        loop {
            match self.next()? {
                Some(StreamEvent::Data {
                    dir: d,
                    bytes: more,
                    ..
                }) if d == dir => bytes.extend_from_slice(&more),
                other => {
                    self.peeked = other;
                    return Ok(bytes);
                }
            }
        }
    }
}

fn event_time(event: &StreamEvent<SharedPayload>) -> Option<Duration> {
    match event {
        StreamEvent::Data { time, .. } | StreamEvent::End { time, .. } => Some(*time),
        StreamEvent::Gap { .. } => None,
    }
}

/// Bytes as a quoted string, escapes for what is not printable ASCII.
fn quoted(bytes: &[u8]) -> String {
    format!("'{}'", bytes.escape_ascii())
}

impl<'o, W: Write> Player<'o, W> {
    pub fn new(socket: PeerSocket, settings: PlaySettings, out: &'o mut W) -> Self {
        let theirs = match settings.ours {
            Direction::AtoB => Direction::BtoA,
            Direction::BtoA => Direction::AtoB,
        };
        // Each chunk goes out as recorded, not held back to be merged by Nagle.
        let _ = socket.set_nodelay(true);
        Player {
            socket: Some(socket),
            theirs,
            out,
            printer: Printer::new(settings.colour),
            flows: [Flow::default(); 2],
            offsets: [0; 2],
            recorded: [0; 2],
            pending: Received::default(),
            ended: [false; 2],
            previous: None,
            turns: 0,
            used: vec![0; settings.rules.len()],
            difference: None,
            progress: None,
            recorder: None,
            record_error: None,
            settings,
        }
    }

    /// `-w`: records the replay into `capture` (its handshake written already).
    pub fn recording_into(mut self, capture: Capture<BufWriter<File>>, what: String) -> Self {
        self.recorder = Some((capture, what));
        self
    }

    /// Calls `tell` with the capture time of each event before playing it, so that
    /// other connections can start where the recording has them start.
    pub fn on_progress(mut self, tell: impl FnMut(Duration) + Send + 'o) -> Self {
        self.progress = Some(Box::new(tell));
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

    /// Plays the whole recording and says how it went.
    pub fn play(mut self, recording: Recording) -> Verdict {
        let result = self.play_events(recording);
        Verdict {
            stream: self.settings.stream,
            result,
            bytes: self.offsets,
            difference: self.difference.take(),
            rules_used: std::mem::take(&mut self.used),
        }
    }

    fn play_events(&mut self, recording: Recording) -> Result<(), Error> {
        let mut events = Events {
            recording,
            peeked: None,
        };
        while let Some(event) = events.next()? {
            if self.socket.is_none() {
                break; // we reset the connection: nothing more can be exchanged
            }
            if let (Some(tell), Some(time)) = (self.progress.as_mut(), event_time(&event)) {
                tell(time);
            }
            match event {
                StreamEvent::Data {
                    dir, time, bytes, ..
                } => {
                    // With rules, a turn is compared whole: a span may cross segments.
                    // Without, each segment's bytes go out from the capture's buffer.
                    let bytes = if self.settings.rules.is_empty() {
                        Cow::Borrowed(&*bytes)
                    } else {
                        Cow::Owned(events.rest_of_turn(dir, bytes.to_vec())?)
                    };
                    self.data(dir, time, bytes)?;
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
            "{}Replay matched stream {}: {} A -> B, {} B -> A, {}.\n",
            self.settings.label,
            self.settings.stream,
            Count(ab, "byte"),
            Count(ba, "byte"),
            Count(self.turns, "turn")
        );
        self.printer.text.extend_from_slice(summary.as_bytes());
        self.flush();
        self.finish_recording();
        match self.record_error.take() {
            Some((what, source)) => Err(Error::Output { what, source }),
            None => Ok(()),
        }
    }

    fn data(&mut self, dir: Direction, time: Duration, bytes: Cow<[u8]>) -> Result<(), Error> {
        if self.previous.map(|(d, _)| d) != Some(dir) {
            self.turns += 1;
            if dir == self.settings.ours {
                self.before_our_turn(time)?;
            }
        }
        self.previous = Some((dir, time));
        if dir == self.settings.ours {
            self.send(&bytes)
        } else {
            self.expect(bytes)
        }
    }

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

    fn send(&mut self, recorded: &[u8]) -> Result<(), Error> {
        let dir = self.settings.ours;
        let carried = self.carried(recorded);
        let bytes = carried.as_deref().unwrap_or(recorded);
        let Some(socket) = self.socket.as_mut() else {
            return Ok(());
        };
        let sent = socket
            .set_write_timeout(Some(self.settings.timeout))
            .and_then(|()| socket.write_all(bytes));
        if let Err(error) = sent {
            return self.differ(dir, (0, 0), Difference::SendFailed { error });
        }
        let now = SystemTime::now();
        self.record(|c| c.delivered(dir, bytes, now));
        self.chunk(dir, bytes);
        self.offsets[dir.index()] += bytes.len() as u64;
        self.recorded[dir.index()] += recorded.len() as u64;
        Ok(())
    }

    /// `recorded` with the carried values in it replaced, if there are any.
    fn carried(&self, recorded: &[u8]) -> Option<Vec<u8>> {
        let carries = self.settings.carries.lock().ok()?;
        (!carries.is_empty()).then(|| matcher::substitute(recorded, &carries))
    }

    /// Receives the peer's next recorded bytes (a turn, with rules) and compares them.
    fn expect(&mut self, recorded: Cow<[u8]>) -> Result<(), Error> {
        // A value the peer chose earlier stands in for the recorded one here too.
        let recorded = match self.carried(&recorded) {
            Some(carried) => Cow::Owned(carried),
            None => recorded,
        };
        let rules = Arc::clone(&self.settings.rules);
        let mut walk = TurnMatch::new(&rules, recorded);
        let mut live = std::mem::take(&mut self.pending);
        loop {
            match walk.advance(live.filled(), false) {
                Step::Done => break,
                Step::Differs => return self.bytes_differ(&walk, live.filled()),
                Step::NeedMore => {}
            }
            // Without rules, exactly what the recording has is read, never more.
            let want = walk.literal_rest(live.filled()).unwrap_or(READ_SIZE);
            let want = want.clamp(1, READ_SIZE);
            match self.read(live.room(want)) {
                Ok(0) => return self.ran_out(&mut walk, live, None),
                Ok(k) => live.added(k),
                Err(e) => return self.ran_out(&mut walk, live, Some(e)),
            }
        }
        self.matched(&walk, live);
        Ok(())
    }

    /// The peer's bytes of a turn matched: shown, recorded, counted; what came
    /// beyond them waits for the next turn.
    fn matched(&mut self, walk: &TurnMatch, mut live: Received) {
        let dir = self.theirs;
        let (recorded_len, live_len) = walk.position();
        let turn = &live.filled()[..live_len];
        let now = SystemTime::now();
        self.record(|c| c.delivered(dir, turn, now));
        self.chunk(dir, turn);
        live.consume(live_len);
        self.pending = live;
        self.offsets[dir.index()] += live_len as u64;
        self.recorded[dir.index()] += recorded_len as u64;
        self.count_used(walk);
        for carried in &walk.carried {
            let rule = self.settings.rules[carried.rule].name();
            let text = format!(
                "Carrying {} as {} ({rule})\n",
                quoted(&carried.recorded),
                quoted(&carried.live)
            );
            // Shown even with -q: a substitution is part of the verdict's story.
            let label = &self.settings.label;
            self.printer
                .line(Some(dir), label, SystemTime::now(), format_args!("{text}"));
            self.flush();
            if let Ok(mut carries) = self.settings.carries.lock() {
                carries.retain(|c| c.recorded != carried.recorded);
                carries.push(carried.clone());
            }
        }
    }

    /// The live bytes stopped (`error`: a timeout or a failure; `None`: a FIN) before
    /// the turn was matched: the walk is finished with what came, and whatever is
    /// missing or different is the difference.
    fn ran_out(
        &mut self,
        walk: &mut TurnMatch,
        live: Received,
        error: Option<io::Error>,
    ) -> Result<(), Error> {
        match walk.advance(live.filled(), true) {
            Step::Done => {
                self.matched(walk, live);
                return Ok(());
            }
            Step::Differs => return self.bytes_differ(walk, live.filled()),
            Step::NeedMore => {}
        }
        self.count_used(walk);
        let (at_recorded, at_live) = walk.position();
        let expected = walk.recorded()[at_recorded..].to_vec();
        let diff = match error {
            None => Difference::Closed { expected },
            Some(e) if is_timeout(&e) => Difference::Silent {
                expected,
                fin: false,
            },
            Some(error) => Difference::Reset { expected, error },
        };
        self.differ(self.theirs, (at_recorded, at_live), diff)
    }

    /// Adds the spans `walk` skipped to the rules' counts.
    fn count_used(&mut self, walk: &TurnMatch) {
        for (used, more) in self.used.iter_mut().zip(&walk.used) {
            *used += more;
        }
    }

    fn bytes_differ(&mut self, walk: &TurnMatch, live: &[u8]) -> Result<(), Error> {
        self.count_used(walk);
        let (at_recorded, at_live) = walk.position();
        let mut received = live[at_live..].to_vec();
        self.read_waiting(&mut received);
        let expected = walk.recorded()[at_recorded..].to_vec();
        let diff = Difference::Bytes { expected, received };
        self.differ(self.theirs, (at_recorded, at_live), diff)
    }

    /// The peer's side ends here in the recording: it must close, saying nothing more.
    fn expect_end(&mut self) -> Result<(), Error> {
        let dir = self.theirs;
        if !self.pending.is_empty() {
            let mut received = self.pending.take_all();
            self.read_waiting(&mut received);
            let when = "where the recording has its FIN";
            return self.differ(dir, (0, 0), Difference::Extra { received, when });
        }
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
                return self.differ(dir, (0, 0), Difference::Extra { received, when });
            }
            Err(e) if is_timeout(&e) => {
                let diff = Difference::Silent {
                    expected: Vec::new(),
                    fin: true,
                };
                return self.differ(dir, (0, 0), diff);
            }
            Err(error) => {
                let diff = Difference::Reset {
                    expected: Vec::new(),
                    error,
                };
                return self.differ(dir, (0, 0), diff);
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
        let mut received = self.pending.take_all();
        self.read_waiting(&mut received);
        if !received.is_empty() {
            return self.differ(dir, (0, 0), Difference::Extra { received, when });
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
                (0, 0),
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

    /// Reports `difference`, found `skip` bytes past the direction's current offsets
    /// (recorded, live), and ends the replay with it.
    fn differ(
        &mut self,
        dir: Direction,
        skip: (usize, usize),
        difference: Difference,
    ) -> Result<(), Error> {
        let at = At {
            recorded: self.recorded[dir.index()] + skip.0 as u64,
            live: self.offsets[dir.index()] + skip.1 as u64,
        };
        let mut text = Vec::new();
        difference.report(&mut text, dir, at, self.settings.timeout);
        if !self.settings.rules.is_empty() {
            text.extend_from_slice(self.rules_in_force().as_bytes());
        }
        for line in text.split_inclusive(|&b| b == b'\n') {
            self.printer
                .text
                .extend_from_slice(self.settings.label.as_bytes());
            self.printer.text.extend_from_slice(line);
        }
        let headline = difference.headline(dir, at, self.settings.timeout);
        let [expected, received] = difference.sides();
        self.difference = Some(FirstDifference::new(
            dir,
            [at.live, at.recorded],
            &headline,
            [expected.unwrap_or_default(), received.unwrap_or_default()],
        ));
        self.flush();
        self.finish_recording();
        Err(Error::Differs {
            dir,
            offset: at.live,
        })
    }

    /// `Rules in force: --ignore '...' (2 spans), --carry '...' (none)`.
    fn rules_in_force(&self) -> String {
        let named: Vec<String> = self
            .settings
            .rules
            .iter()
            .zip(&self.used)
            .map(|(rule, &n)| match n {
                0 => format!("{} (no span)", rule.name()),
                1 => format!("{} (1 span)", rule.name()),
                n => format!("{} ({n} spans)", rule.name()),
            })
            .collect();
        format!("Rules in force: {}\n", named.join(", "))
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
        self.printer
            .sent(&self.settings.label, dir, now, offset, bytes);
        self.printer
            .status(&self.settings.label, dir, now, flow, None);
        self.flush();
    }

    fn line(&mut self, dir: Direction, text: &str) {
        if self.settings.quiet {
            return;
        }
        let now = SystemTime::now();
        let label = &self.settings.label;
        self.printer
            .line(Some(dir), label, now, format_args!("{text}"));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn received_bytes_are_read_in_place_and_the_rest_kept_in_order() {
        let mut live = Received::default();
        live.room(5).copy_from_slice(b"hello");
        live.added(5);
        // A read that brought fewer bytes than there was room for.
        live.room(READ_SIZE)[..6].copy_from_slice(b" world");
        live.added(6);
        assert_eq!(live.filled(), b"hello world");
        live.consume(6);
        assert_eq!(live.filled(), b"world");
        live.room(1)[0] = b'!';
        live.added(1);
        assert_eq!(live.take_all(), b"world!");
        assert!(live.is_empty());
    }

    #[test]
    fn a_long_turn_gives_its_room_back() {
        let mut live = Received::default();
        for _ in 0..5 {
            live.room(READ_SIZE).fill(7);
            live.added(READ_SIZE);
        }
        live.consume(5 * READ_SIZE - 3);
        assert_eq!(live.filled(), [7, 7, 7]);
        assert!(live.bytes.capacity() <= KEPT_ROOM);
    }
}
