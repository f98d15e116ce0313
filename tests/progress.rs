//! `-q` on a terminal: the live progress line on standard error, on a real
//! pseudo-terminal made by `script` (util-linux).

mod common;

use std::io::Write;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};

use common::*;

/// The relay with `extra` flags on a pseudo-terminal of its own; what the terminal
/// got, as it comes. `None` (a loud skip) without `script`.
struct OnTerminal {
    script: Child,
    out: Captured,
    b: TcpListener,
}

impl OnTerminal {
    fn start(extra: &[&str]) -> Option<OnTerminal> {
        if !have_program("script", "--version", "bsdutils") {
            return None;
        }
        let b = TcpListener::bind("127.0.0.1:0").unwrap();
        let b_port = b.local_addr().unwrap().port();
        let mut line = vec![
            BIN.to_string(),
            "-A".into(),
            "127.0.0.1:0".into(),
            "-B".into(),
            format!("127.0.0.1:{b_port}"),
        ];
        line.extend(extra.iter().map(|s| s.to_string()));
        // `exec`: the shell `script` starts becomes the relay, whatever the shell
        // (dash, the usual /bin/sh, would otherwise stay in between and take the
        // signal the test sends).
        let mut script = Command::new("script")
            .args(["-qfec", &format!("exec {}", line.join(" ")), "/dev/null"])
            .env("SHELL", "/bin/sh")
            .env("TERM", "xterm")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start script");
        let out = Captured::collect(script.stdout.take().unwrap(), false);
        Some(OnTerminal { script, out, b })
    }

    /// A client, and B's side of its connection.
    fn connect(&self) -> (TcpStream, TcpStream) {
        let waiting = self
            .out
            .wait_line("the waiting line", |l| l.contains("from A 127.0.0.1:"));
        let from = waiting.rfind("127.0.0.1:").unwrap();
        let port = waiting[from..]
            .trim_end_matches(['\r', '.'])
            .trim_start_matches("127.0.0.1:")
            .parse::<u16>()
            .unwrap();
        let a = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let b = accept_in_time(&self.b);
        (a, b)
    }

    /// Waits until the live line, as last drawn, contains `text`.
    fn wait_live(&self, text: &str) {
        wait_for(
            &format!("{text:?} in the live line"),
            || {
                latest_live_line(&self.out.text())
                    .contains(text)
                    .then_some(())
            },
            || format!("{:?}", self.out.text()),
        );
    }

    /// tiburoncin itself, the child of `script`.
    fn relay_pid(&self) -> i32 {
        let pid = self.script.id();
        let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
            .expect("script's children");
        let child = children
            .split_whitespace()
            .next()
            .expect("the relay under script");
        let name = std::fs::read_to_string(format!("/proc/{child}/comm")).expect("its name");
        assert_eq!(name.trim_end(), "tiburoncin", "script's child {child}");
        child.parse().unwrap()
    }

    /// Waits for the end; everything the terminal got.
    fn finish(mut self) -> String {
        let status = self.script.wait().unwrap();
        assert!(status.success(), "{status}: {:?}", self.out.text());
        wait_for(
            "the terminal to close",
            || self.out.closed().then_some(()),
            || self.out.text(),
        );
        self.out.text()
    }
}

/// A failed test leaves nothing running: killing `script` hangs its terminal up,
/// and the hang-up ends the relay.
impl Drop for OnTerminal {
    fn drop(&mut self) {
        if let Ok(None) = self.script.try_wait() {
            let _ = self.script.kill();
            let _ = self.script.wait();
        }
    }
}

/// The live line as it was last drawn: the last piece of the screen, between
/// carriage returns and newlines, that gives a rate.
fn latest_live_line(screen: &str) -> String {
    screen
        .split(['\r', '\n'])
        .rfind(|piece| piece.contains(" B/s"))
        .unwrap_or_default()
        .to_string()
}

fn talk(a: &mut TcpStream, b: &mut TcpStream) {
    a.write_all(&[b'x'; 1000]).unwrap();
    assert_eq!(read_exact(b, 1000).len(), 1000);
}

fn close(a: &mut TcpStream, b: &mut TcpStream) {
    a.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_to_end(b).unwrap(), b"");
    b.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_to_end(a).unwrap(), b"");
}

/// Every line of text other than the live line starts on a line of its own: after
/// a newline, or right after the live line was cleared (`\r` and erase-line).
fn assert_not_torn(screen: &str, line_start: &str) {
    let mut found = 0;
    for (at, _) in screen.match_indices(line_start) {
        let before = &screen[..at];
        assert!(
            before.is_empty() || before.ends_with('\n') || before.ends_with("\r\x1b[2K"),
            "{line_start:?} torn at {at}: {:?}",
            &screen[at.saturating_sub(120)..(at + 60).min(screen.len())]
        );
        found += 1;
    }
    assert!(found > 0, "no {line_start:?} in {screen:?}");
}

#[test]
fn quiet_on_a_terminal_shows_the_counts_live_and_clears_them_at_the_end() {
    let Some(run) = OnTerminal::start(&["-q"]) else {
        return;
    };
    let (mut a, mut b) = run.connect();
    talk(&mut a, &mut b);
    // The line follows the bytes while the relay runs.
    run.wait_live("A -> B 1000 B, B -> A 0 B, ");
    b.write_all(b"hi\n").unwrap();
    assert_eq!(read_exact(&mut a, 3), b"hi\n");
    run.wait_live("A -> B 1000 B, B -> A 3 B, ");
    close(&mut a, &mut b);
    let screen = run.finish();
    assert!(screen.contains(" B/s"), "{screen:?}");
    // The summary is a line of its own, and the live line is gone at the end.
    assert_not_torn(&screen, "Relayed A -> B 1000 bytes, B -> A 3 bytes in ");
    assert!(screen.ends_with("\r\x1b[2K"), "{screen:?}");
}

#[test]
fn with_k_the_line_counts_the_connections_open() {
    let Some(run) = OnTerminal::start(&["-q", "-k"]) else {
        return;
    };
    let (mut a1, mut b1) = run.connect();
    let (mut a2, mut b2) = run.connect();
    talk(&mut a1, &mut b1);
    talk(&mut a2, &mut b2);
    run.wait_live("A -> B 1.95 KiB, B -> A 0 B, ");
    run.wait_live(", 2 connections open");
    close(&mut a1, &mut b1);
    run.wait_live(", 1 connection open");
    close(&mut a2, &mut b2);
    run.wait_live(", 0 connections open");
    let pid = run.relay_pid();
    // SAFETY: kill(2) with a pid and a signal number has no memory effects.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let screen = run.finish();
    for line_start in ["[1] Relayed", "[2] Relayed", "Served 2 connections"] {
        assert_not_torn(&screen, line_start);
    }
    assert!(screen.ends_with("\r\x1b[2K"), "{screen:?}");
}

#[test]
fn no_live_line_without_q_or_into_a_pipe() {
    // Not quiet, on a terminal: the hexdump says it all, no live line.
    if let Some(run) = OnTerminal::start(&[]) {
        let (mut a, mut b) = run.connect();
        talk(&mut a, &mut b);
        close(&mut a, &mut b);
        let screen = run.finish();
        assert!(screen.contains("A -> B sent 1000 bytes"), "{screen:?}");
        assert!(!screen.contains("B/s"), "{screen:?}");
    }
    // Quiet, with standard error a pipe: nothing on it.
    let mut s = Session::start(&["-q"]);
    // Both send and half-close, and the relay ends with 0.
    exchange_both_ways(&mut s, &[b'x'; 1000], b"hi\n");
    assert_eq!(s.process.stderr.text(), "");
    assert!(!s.process.stdout.text().contains("B/s"));
}
