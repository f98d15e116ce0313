//! Shared harness for the integration tests: the real binary between two real peers.
//!
//! `Session::start` makes a server B on a free loopback port, starts tiburoncin with
//! `-A 127.0.0.1:0`, reads the port it bound from its start-up line, and connects a
//! client A. Every wait has a deadline, so a broken relay fails a test instead of
//! hanging it.

#![allow(dead_code)] // each test file uses its own part of the harness

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use tiburoncin::direction::Direction;
use tiburoncin::replay::reassembly::{StreamEnd, StreamEvent};
use tiburoncin::replay::recording::Recording;

pub const BIN: &str = env!("CARGO_BIN_EXE_tiburoncin");

/// How long any single wait may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// Everything a child printed on one stream, filled by a background thread.
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<(Vec<u8>, bool)>>);

/// Output kept from a bulk run: the start-up lines and the last lines, not the middle.
pub const BULK_HEAD: usize = 4096;
pub const BULK_TAIL: usize = 256 * 1024;

impl Captured {
    /// Collects everything, or with `bulk` only the head and the tail (a bulk
    /// transfer's hexdump is hundreds of MB nobody reads).
    pub fn collect(mut from: impl Read + Send + 'static, bulk: bool) -> Captured {
        let captured = Captured::default();
        let sink = captured.clone();
        thread::spawn(move || {
            let mut buf = [0u8; 64 * 1024];
            loop {
                match from.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let kept = &mut sink.0.lock().unwrap().0;
                        kept.extend_from_slice(&buf[..n]);
                        if bulk && kept.len() > BULK_HEAD + 2 * BULK_TAIL {
                            // Cut at a line start so the tail still splits into lines.
                            let cut = kept.len() - BULK_TAIL;
                            let cut = cut
                                + kept[cut..]
                                    .iter()
                                    .position(|&b| b == b'\n')
                                    .map_or(0, |p| p + 1);
                            kept.drain(BULK_HEAD..cut);
                        }
                    }
                }
            }
            sink.0.lock().unwrap().1 = true;
        });
        captured
    }

    pub fn bytes(&self) -> Vec<u8> {
        self.0.lock().unwrap().0.clone()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes()).into_owned()
    }

    pub fn lines(&self) -> Vec<String> {
        self.text().lines().map(str::to_string).collect()
    }

    pub fn closed(&self) -> bool {
        self.0.lock().unwrap().1
    }

    /// Waits until a line satisfying `pred` has been printed, and returns it.
    pub fn wait_line(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        wait_for(
            what,
            || self.lines().into_iter().find(|l| pred(l)),
            || self.text(),
        )
    }

    /// Waits until the number of lines satisfying `pred` reaches `count`.
    pub fn wait_count(&self, what: &str, count: usize, pred: impl Fn(&str) -> bool) {
        wait_for(
            what,
            || (self.lines().iter().filter(|l| pred(l)).count() >= count).then_some(()),
            || self.text(),
        )
    }
}

impl Captured {
    /// Waits until something was printed and then nothing more for half a second: a
    /// relay whose buffers are all full has stalled. (What it waits for is that
    /// silence; a test then checks what the output says, which is exact.)
    pub fn wait_until_quiet(&self, what: &str) {
        let mut last = 0;
        let mut quiet_polls = 0;
        wait_for(
            what,
            || {
                let len = self.0.lock().unwrap().0.len();
                quiet_polls = if len == last && len > 0 {
                    quiet_polls + 1
                } else {
                    0
                };
                last = len;
                thread::sleep(Duration::from_millis(20));
                (quiet_polls >= 25).then_some(())
            },
            || self.text(),
        )
    }
}

/// Polls `probe` until it gives a value or the deadline passes (then panics with
/// `context()` to show what was there instead).
pub fn wait_for<T>(
    what: &str,
    mut probe: impl FnMut() -> Option<T>,
    context: impl Fn() -> String,
) -> T {
    let start = Instant::now();
    loop {
        if let Some(value) = probe() {
            return value;
        }
        if start.elapsed() > DEADLINE {
            panic!(
                "timed out waiting for {what}; output so far:\n{}",
                context()
            );
        }
        thread::sleep(Duration::from_millis(5));
    }
}

/// A started tiburoncin process.
pub struct Process {
    pub child: Child,
    pub stdout: Captured,
    pub stderr: Captured,
}

impl Process {
    /// Starts the binary with `args`, stdin closed, stdout and stderr captured.
    pub fn spawn(args: &[String]) -> Process {
        Self::spawn_with(args, &Options::default())
    }

    pub fn spawn_with(args: &[String], options: &Options) -> Process {
        let mut command = Command::new(BIN);
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // A process group of its own, whose parent (this test) is in the same
            // session: such a group is never orphaned, so a SIGTSTP stops it as Ctrl-Z
            // would, however the test runner itself was started (CI, nohup, &).
            .process_group(0);
        if let Some(dir) = &options.dir {
            command.current_dir(dir);
        }
        command.envs(options.env.iter().map(|(k, v)| (k, v)));
        let mut child = command.spawn().expect("start tiburoncin");
        let stdout = Captured::collect(child.stdout.take().unwrap(), options.bulk);
        let stderr = Captured::collect(child.stderr.take().unwrap(), false);
        Process {
            child,
            stdout,
            stderr,
        }
    }

    /// Waits for the process to end (killing it and failing past the deadline).
    pub fn wait(&mut self) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                wait_for(
                    "stdout to close",
                    || self.stdout.closed().then_some(()),
                    String::new,
                );
                wait_for(
                    "stderr to close",
                    || self.stderr.closed().then_some(()),
                    String::new,
                );
                return status;
            }
            if start.elapsed() > DEADLINE {
                let _ = self.child.kill();
                panic!(
                    "tiburoncin did not end; stdout:\n{}\nstderr:\n{}",
                    self.stdout.text(),
                    self.stderr.text()
                );
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// Sends a signal to the process.
    pub fn signal(&self, signal: i32) {
        let rc = unsafe { libc::kill(self.child.id() as i32, signal) };
        assert_eq!(rc, 0, "kill failed");
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How to start the process.
#[derive(Default, Clone)]
pub struct Options {
    /// Working directory (where `-o` writes its files).
    pub dir: Option<PathBuf>,
    /// Keep only the head and tail of stdout.
    pub bulk: bool,
    /// Extra environment variables (`TZ`, say).
    pub env: Vec<(String, String)>,
}

/// A fresh empty directory for one test's files.
pub fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tiburoncin-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A relay with both peers connected.
pub struct Session {
    pub process: Process,
    /// The client, connected to tiburoncin.
    pub a: TcpStream,
    /// The server's side of the connection tiburoncin made.
    pub b: TcpStream,
}

/// The port in `Waiting for a connection from A host:PORT...`.
pub fn waiting_port(line: &str) -> u16 {
    line.trim_end_matches("...")
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"))
}

impl Session {
    /// Starts tiburoncin between a new server B and a new client A, with extra `args`.
    pub fn start(args: &[&str]) -> Session {
        Self::start_with(args, |_| {})
    }

    /// As `start`, with `tune_b` applied to B's listener before anything connects
    /// (to give it a small receive buffer, for instance).
    pub fn start_with(args: &[&str], tune_b: impl FnOnce(&TcpListener)) -> Session {
        Self::start_full(args, &Options::default(), tune_b)
    }

    /// As `start_with`, with process options.
    pub fn start_full(
        args: &[&str],
        options: &Options,
        tune_b: impl FnOnce(&TcpListener),
    ) -> Session {
        Self::start_on("127.0.0.1", args, options, tune_b)
    }

    /// As `start_full`, with A and B on loopback address `ip` (`::1` for IPv6).
    pub fn start_on(
        ip: &str,
        args: &[&str],
        options: &Options,
        tune_b: impl FnOnce(&TcpListener),
    ) -> Session {
        let listener = TcpListener::bind((ip, 0)).unwrap();
        tune_b(&listener);
        let b_port = listener.local_addr().unwrap().port();
        let host = if ip.contains(':') {
            format!("[{ip}]")
        } else {
            ip.to_string()
        };
        let mut all = vec![
            "-A".to_string(),
            format!("{host}:0"),
            "-B".into(),
            format!("{host}:{b_port}"),
        ];
        all.extend(args.iter().map(|s| s.to_string()));
        let process = Process::spawn_with(&all, options);
        let waiting = process.stdout.wait_line("the waiting line", |l| {
            l.starts_with("Waiting for a connection from A ")
        });
        // tiburoncin connected to B before printing that line: B's accept is immediate.
        let (b, _) = listener.accept().unwrap();
        let a = TcpStream::connect((ip, waiting_port(&waiting))).unwrap();
        // (With -t the line starts with the time.)
        process.stdout.wait_line("the allocating line", |l| {
            l.contains("Allocating buffers: ")
        });
        Session { process, a, b }
    }

    pub fn stdout(&self) -> &Captured {
        &self.process.stdout
    }
}

/// Reads until EOF, failing past the deadline.
pub fn read_to_end(stream: &mut TcpStream) -> io::Result<Vec<u8>> {
    stream.set_read_timeout(Some(DEADLINE))?;
    let mut all = Vec::new();
    stream.read_to_end(&mut all)?;
    Ok(all)
}

/// Reads exactly `n` bytes, failing past the deadline.
pub fn read_exact(stream: &mut TcpStream, n: usize) -> Vec<u8> {
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut buf = vec![0; n];
    stream.read_exact(&mut buf).unwrap();
    buf
}

/// Writes all of `bytes` from a thread of its own (so a test can read the other end
/// while a big write is blocked), then shuts down the write side if `close` says so.
pub fn send_in_background(
    stream: &TcpStream,
    bytes: Vec<u8>,
    close: bool,
) -> thread::JoinHandle<()> {
    let mut stream = stream.try_clone().unwrap();
    thread::spawn(move || {
        stream.set_write_timeout(Some(DEADLINE)).unwrap();
        stream.write_all(&bytes).unwrap();
        if close {
            stream.shutdown(Shutdown::Write).unwrap();
        }
    })
}

/// Deterministic pseudo-random bytes (xorshift), so a failure can be replayed.
pub fn random_bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// The lines of one direction's status: `B is ...` for A->B.
pub fn statuses(lines: &[String], who: &str) -> Vec<String> {
    lines
        .iter()
        .filter(|l| l.starts_with(&format!("{who} is ")))
        .cloned()
        .collect()
}

/// The N of every `X -> Y sent N bytes` (or `1 byte`) line for `dir` ("A -> B").
pub fn sent_sizes(lines: &[String], dir: &str) -> Vec<usize> {
    let prefix = format!("{dir} sent ");
    lines
        .iter()
        .filter_map(|l| count_of(l.strip_prefix(&prefix)?, ""))
        .collect()
}

/// `N` of `N bytes<tail>`, or 1 of `1 byte<tail>`.
fn count_of(text: &str, tail: &str) -> Option<usize> {
    let count = text.strip_suffix(tail)?;
    match count.strip_suffix(" bytes") {
        Some(n) => n.parse().ok(),
        None => (count == "1 byte").then_some(1),
    }
}

/// The N of every `Y is N bytes behind` (or `1 byte`) line for `who`.
pub fn behinds(lines: &[String], who: &str) -> Vec<usize> {
    let prefix = format!("{who} is ");
    lines
        .iter()
        .filter_map(|l| count_of(l.strip_prefix(&prefix)?, " behind"))
        .collect()
}

/// `list` as owned strings, for a command line.
pub fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// Runs tiburoncin to the end with `list` as arguments: (exit status, stdout, stderr).
pub fn run(list: &[&str]) -> (i32, String, String) {
    let mut p = Process::spawn(&strings(list));
    let status = p.wait();
    (
        status.code().unwrap_or(-1),
        p.stdout.text(),
        p.stderr.text(),
    )
}

/// The path of the capture `name` in `fixtures/`.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

/// Accepts one connection on `listener`, failing past the deadline.
pub fn accept_in_time(listener: &TcpListener) -> TcpStream {
    listener.set_nonblocking(true).unwrap();
    let stream = wait_for(
        "a connection to B",
        || match listener.accept() {
            Ok((stream, _)) => Some(stream),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => None,
            Err(e) => panic!("accept: {e}"),
        },
        String::new,
    );
    stream.set_nonblocking(false).unwrap();
    stream
}

/// tiburoncin with `-k`: a server B, and the process listening for clients.
pub struct Listening {
    pub process: Process,
    /// B's listener: every client of tiburoncin becomes a connection here.
    pub b: TcpListener,
    /// Where tiburoncin listens for A.
    pub port: u16,
}

impl Listening {
    /// Starts `tiburoncin -k -A 127.0.0.1:0 -B <a new B>` with extra `args`.
    pub fn start(args: &[&str], options: &Options) -> Listening {
        let b = TcpListener::bind("127.0.0.1:0").unwrap();
        let b_port = b.local_addr().unwrap().port();
        let mut all = vec![
            "-k".to_string(),
            "-A".into(),
            "127.0.0.1:0".into(),
            "-B".into(),
            format!("127.0.0.1:{b_port}"),
        ];
        all.extend(args.iter().map(|s| s.to_string()));
        let process = Process::spawn_with(&all, options);
        let waiting = process.stdout.wait_line("the waiting line", |l| {
            l.starts_with("Waiting for connections from A ")
        });
        Listening {
            process,
            b,
            port: waiting_port(&waiting),
        }
    }

    /// A new client A, and B's side of the connection tiburoncin made for it.
    pub fn connect(&self) -> (TcpStream, TcpStream) {
        let a = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        let b = accept_in_time(&self.b);
        (a, b)
    }
}

/// The bytes a dump file (`-o`, `-f`) holds, checking its format on the way: full
/// lines of 32 hex digits, a shorter last line without a newline.
pub fn decode_dump(path: &Path) -> Vec<u8> {
    let text = std::fs::read_to_string(path).unwrap();
    let lines: Vec<&str> = text.split('\n').collect();
    let (last, full) = lines.split_last().unwrap();
    assert!(
        full.iter().all(|l| l.len() == 32),
        "a full line that is not 32 hex chars"
    );
    assert!(
        last.len() < 32 && last.len() % 2 == 0,
        "bad last line {last:?}"
    );
    let hex: String = text.split('\n').collect();
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

/// The colour codes tiburoncin writes itself: the only escapes allowed on stdout.
pub const OUR_COLOURS: [&str; 4] = ["\x1b[91m", "\x1b[94m", "\x1b[1m", "\x1b[0m"];

/// The bytes of `shown` that are neither printable ASCII nor a newline, after taking
/// out our own colour codes: what traffic would have smuggled to the terminal.
pub fn control_bytes(shown: &[u8]) -> Vec<u8> {
    let mut rest = shown.to_vec();
    for code in OUR_COLOURS {
        rest = replace_all(&rest, code.as_bytes());
    }
    rest.into_iter()
        .filter(|&b| b != b'\n' && !(0x20..0x7f).contains(&b))
        .collect()
}

fn replace_all(haystack: &[u8], needle: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut i = 0;
    while i < haystack.len() {
        if haystack[i..].starts_with(needle) {
            i += needle.len();
        } else {
            out.push(haystack[i]);
            i += 1;
        }
    }
    out
}

/// Every byte value, then escape sequences that would recolour, clear or retitle a
/// terminal (CSI, OSC, DCS, a C1 CSI, carriage return, backspace, delete).
pub fn hostile_bytes() -> Vec<u8> {
    let mut hostile: Vec<u8> = (0..=255).collect();
    hostile.extend_from_slice(b"\x1b[2J\x1b[31mred\x1b]0;owned\x07\x1bP+q\x1b\\\r\x08\x7f\x9b31m");
    hostile
}

/// Runs the binary with `args`, which must be a usage error: exit status 2, nothing
/// on stdout, and on stderr one line of reason (`error: ...`), then the usage —
/// replay's when `replay` says so — and no panic, no control character.
pub fn assert_usage_error(args: &[String], replay: bool) {
    let mut p = Process::spawn(args);
    let status = p.wait();
    let err = p.stderr.text();
    assert_eq!(status.code(), Some(2), "{args:?}: {err}");
    assert_eq!(p.stdout.text(), "", "{args:?}");
    assert!(err.starts_with("error: "), "{args:?}: {err}");
    let reason = err.split("\n\n").next().unwrap();
    assert_eq!(reason.lines().count(), 1, "{args:?}: not one line: {err}");
    assert!(!err.contains("panicked"), "{args:?}: {err}");
    let usage = if replay {
        "Usage: tiburoncin replay <capture>"
    } else {
        "Usage: tiburoncin "
    };
    assert!(err.contains(usage), "{args:?}: {err}");
    if !replay {
        assert!(
            !err.contains("replay <capture>"),
            "{args:?}: replay usage: {err}"
        );
    }
    assert_eq!(
        control_bytes(err.as_bytes()),
        b"",
        "{args:?}: control bytes on stderr"
    );
}

// ---- live peers for the replay ----------------------------------------------------

/// What a live peer does to repeat its side of a recording.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    Send(Vec<u8>),
    Receive(usize),
    Shutdown,
    ExpectEnd,
}

/// The steps of the side that sends `dir`, from connection `stream` of `path`.
pub fn script(path: &Path, stream: usize, dir: Direction) -> Vec<Step> {
    let mut recording = Recording::open(path, stream).unwrap();
    let mut steps = Vec::new();
    while let Some(event) = recording.next_event().unwrap() {
        let step = match event {
            StreamEvent::Data { dir: d, bytes, .. } if d == dir => Step::Send(bytes.to_vec()),
            StreamEvent::Data { bytes, .. } => Step::Receive(bytes.len()),
            StreamEvent::End { dir: d, how, .. } if d == dir => {
                assert_eq!(how, StreamEnd::Fin, "the live peers only half-close");
                Step::Shutdown
            }
            StreamEvent::End { .. } => Step::ExpectEnd,
            StreamEvent::Gap { .. } => panic!("the fixture lacks bytes"),
        };
        steps.push(step);
    }
    steps
}

/// `tiburoncin replay path --as b -A 127.0.0.1:0`, then `extra`, started: the
/// process and the port it waits for A on.
pub fn spawn_replay_as_b(path: &Path, extra: &[&str]) -> (Process, u16) {
    let mut list = strings(&["replay", path.to_str().unwrap(), "--as", "b"]);
    list.extend(strings(&["-A", "127.0.0.1:0"]));
    list.extend(strings(extra));
    let p = Process::spawn(&list);
    let waiting = p.stdout.wait_line("the waiting line", |l| {
        l.starts_with("Waiting for a connection from A ")
    });
    let port = waiting_port(&waiting);
    (p, port)
}

/// A connected stream a scripted peer plays on: TCP or UNIX.
pub trait Connected: Read + Write {
    fn set_timeouts(&self, limit: Duration) -> io::Result<()>;
    fn shutdown_write(&self) -> io::Result<()>;
}

impl Connected for TcpStream {
    fn set_timeouts(&self, limit: Duration) -> io::Result<()> {
        self.set_read_timeout(Some(limit))?;
        self.set_write_timeout(Some(limit))
    }
    fn shutdown_write(&self) -> io::Result<()> {
        self.shutdown(Shutdown::Write)
    }
}

impl Connected for std::os::unix::net::UnixStream {
    fn set_timeouts(&self, limit: Duration) -> io::Result<()> {
        self.set_read_timeout(Some(limit))?;
        self.set_write_timeout(Some(limit))
    }
    fn shutdown_write(&self) -> io::Result<()> {
        self.shutdown(Shutdown::Write)
    }
}

/// Plays `steps` on `stream`; a read error or short read ends it quietly (the
/// replay's verdict is what the tests check).
pub fn perform(mut stream: impl Connected, steps: &[Step]) {
    stream.set_timeouts(DEADLINE).unwrap();
    for step in steps {
        let ok = match step {
            Step::Send(bytes) => stream.write_all(bytes).is_ok(),
            Step::Receive(n) => {
                let mut buf = vec![0; *n];
                stream.read_exact(&mut buf).is_ok()
            }
            Step::Shutdown => stream.shutdown_write().is_ok(),
            Step::ExpectEnd => {
                let mut rest = Vec::new();
                stream.read_to_end(&mut rest).is_ok() && rest.is_empty()
            }
        };
        if !ok {
            return;
        }
    }
}

/// Changes the byte at `offset` of the sending side's stream.
pub fn change_byte(steps: &mut [Step], mut offset: usize) {
    for step in steps {
        if let Step::Send(bytes) = step {
            if offset < bytes.len() {
                bytes[offset] ^= 0x20;
                return;
            }
            offset -= bytes.len();
        }
    }
    panic!("the stream is shorter than that");
}

/// Whether tshark can be run to judge our files. Under CI its absence is a failure;
/// elsewhere the calling test is skipped, loudly.
pub fn have_tshark() -> bool {
    have_program("tshark", "-v", "tshark")
}

/// Whether `program` runs (`program version_arg` succeeds). Under CI its absence is
/// a failure; elsewhere the calling test is skipped, loudly.
pub fn have_program(program: &str, version_arg: &str, package: &str) -> bool {
    let found = Command::new(program)
        .arg(version_arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "{program} not found, and CI must run these tests: apt-get install -y {package}"
        );
        eprintln!("SKIPPED: {program} not found (apt-get install -y {package})");
    }
    found
}

/// A child process that is not tiburoncin (a real server, a real client), its
/// output collected as tiburoncin's is; killed when dropped.
pub struct Helper {
    pub child: Child,
    pub stdout: Captured,
    pub stderr: Captured,
}

impl Helper {
    pub fn spawn(program: &str, args: &[&str], stdin: Stdio) -> Helper {
        let mut child = Command::new(program)
            .args(args)
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {program}: {e}"));
        let stdout = Captured::collect(child.stdout.take().unwrap(), false);
        let stderr = Captured::collect(child.stderr.take().unwrap(), false);
        Helper {
            child,
            stdout,
            stderr,
        }
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The original tool's broken pipe (docs/slow-receiver.md): A is gone, and B keeps sending to it from a thread of its
/// own until tiburoncin's writes to the vanished A fail.
pub fn keep_sending_to_a_gone(b: &TcpStream) {
    let mut b = b.try_clone().unwrap();
    thread::spawn(move || {
        let chunk = [b'C'; 8192];
        for _ in 0..1024 {
            if b.write_all(&chunk).is_err() {
                break;
            }
        }
    });
}

/// Both peers send all they have at once and half-close; each must receive exactly
/// what the other sent, and the relay must then end with exit status 0.
pub fn exchange_both_ways(s: &mut Session, ab: &[u8], ba: &[u8]) {
    let to_b = send_in_background(&s.a, ab.to_vec(), true);
    let to_a = send_in_background(&s.b, ba.to_vec(), true);
    let mut a = s.a.try_clone().unwrap();
    let got_a = thread::spawn(move || read_to_end(&mut a).unwrap());
    let got_b = read_to_end(&mut s.b).unwrap();
    assert!(
        got_b == ab,
        "A->B: {} of {} bytes, or different",
        got_b.len(),
        ab.len()
    );
    assert!(got_a.join().unwrap() == ba, "B->A differs");
    to_b.join().unwrap();
    to_a.join().unwrap();
    assert_eq!(s.process.wait().code(), Some(0));
}

/// Writes `data` from a thread of its own for as long as the peer takes it: for a
/// transfer a test interrupts (a signal, a reset), so a failing write just ends it.
pub fn flood_in_background(stream: &TcpStream, data: Vec<u8>) -> thread::JoinHandle<()> {
    let mut stream = stream.try_clone().unwrap();
    thread::spawn(move || {
        let _ = stream.write_all(&data);
    })
}
