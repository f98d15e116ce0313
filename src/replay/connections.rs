//! Playing several recorded connections at once, as the recorded programs did.
//!
//! - **As B** (serving live clients): every client is accepted as it comes, and served
//!   in a thread of its own with the recorded connection whose first client bytes
//!   match best what it sent first (compared under the rules, so a `Host:` header
//!   of another port still matches), ties going to the earlier recorded connection.
//!   A connection whose server spoke first is given to a client that says nothing
//!   at first.
//! - **As A** (a client of a live server): each recorded connection has a thread that
//!   opens it when the recording does: once every earlier connection has played all
//!   its events captured before this one's first packet. So connections that
//!   overlapped in the recording overlap in the replay, and one that came after
//!   another had ended still does. With `--timing fast` nothing else waits; with
//!   `--timing recorded` each connection also keeps its own pauses.

use std::io;
use std::net::SocketAddr;
use std::sync::{Condvar, Mutex};
use std::thread;
use std::time::Duration;

use socket2::Socket;

use crate::replay::matcher::{Step, TurnMatch};
use crate::replay::peer_socket::PeerSocket;
use crate::replay::recording::Opening;

/// How long a client is watched for its first bytes when a recorded connection where
/// the server speaks first is still unplayed: a client that stays silent this long
/// is taken for one that waits for the server.
const SILENT_CLIENT: Duration = Duration::from_millis(300);

/// The recorded connections no live client has been given yet.
pub struct Unplayed {
    openings: Mutex<Vec<Opening>>,
}

impl Unplayed {
    pub fn new(openings: Vec<Opening>) -> Self {
        Unplayed {
            openings: Mutex::new(openings),
        }
    }

    /// The recorded connections still unplayed, by number.
    pub fn left(&self) -> Vec<usize> {
        self.openings
            .lock()
            .map(|o| o.iter().map(|o| o.stream).collect())
            .unwrap_or_default()
    }

    /// Takes the first recorded connection still unplayed, for a client that could
    /// not be served (its TLS handshake failed).
    pub fn take_first(&self) -> Option<usize> {
        let mut openings = self.openings.lock().ok()?;
        (!openings.is_empty()).then(|| openings.remove(0).stream)
    }

    /// Picks the recorded connection for a live client that has just connected, by
    /// what it sends first; `None` when all are taken.
    pub fn pick_for(
        &self,
        socket: &PeerSocket,
        rules: &[crate::cli::config::Rule],
        timeout: Duration,
    ) -> Option<usize> {
        let (one, server_first) = {
            let openings = self.openings.lock().ok()?;
            if openings.is_empty() {
                return None;
            }
            (
                openings.len() == 1,
                openings.iter().any(|o| !o.client_first),
            )
        };
        // Nothing to choose between: the player itself judges the client's bytes.
        let peeked = if one {
            Vec::new()
        } else {
            let wait = if server_first {
                SILENT_CLIENT.min(timeout)
            } else {
                timeout
            };
            first_bytes(socket, wait)
        };
        // Another client may have taken some while this one was watched.
        let mut openings = self.openings.lock().ok()?;
        if openings.is_empty() {
            return None;
        }
        let at = best(&openings, &peeked, rules);
        Some(openings.remove(at).stream)
    }
}

/// What the client has sent so far, without taking it from the socket: waits up to
/// `wait` for the first bytes, then briefly for the rest of a first turn cut into
/// several segments.
fn first_bytes(socket: &PeerSocket, wait: Duration) -> Vec<u8> {
    let mut buf = vec![0u8; crate::replay::recording::OPENING_BYTES];
    let mut seen = 0;
    let mut wait = wait;
    for _ in 0..5 {
        if socket.set_read_timeout(Some(wait)).is_err() {
            break;
        }
        match socket.peek(&mut buf) {
            Ok(n) if n > seen => seen = n,
            _ => break,
        }
        // More of the same turn follows within a few milliseconds, if at all.
        wait = Duration::from_millis(20);
        thread::sleep(wait);
    }
    let _ = socket.set_read_timeout(None);
    buf.truncate(seen);
    buf
}

/// The opening that matches `peeked` furthest, the earliest on a tie; with nothing
/// peeked, the first where the server speaks first, or else the first.
fn best(openings: &[Opening], peeked: &[u8], rules: &[crate::cli::config::Rule]) -> usize {
    if peeked.is_empty() {
        return openings.iter().position(|o| !o.client_first).unwrap_or(0);
    }
    let mut best = (0, 0);
    for (k, opening) in openings.iter().enumerate() {
        if !opening.client_first {
            continue;
        }
        let mut walk = TurnMatch::new(rules, opening.first.clone());
        let score = match walk.advance(peeked, false) {
            Step::Done => usize::MAX,
            Step::NeedMore | Step::Differs => walk.position().0 + 1,
        };
        if score > best.1 {
            best = (k, score);
        }
    }
    best.0
}

/// Accepts the next client, waiting at most `limit`, and giving up early when
/// `gone` says the client program has exited (after taking any client it left
/// waiting in the queue).
pub fn accept(
    listener: &Socket,
    limit: Duration,
    gone: &mut dyn FnMut() -> bool,
) -> io::Result<Socket> {
    let tick = Duration::from_millis(100);
    let deadline = std::time::Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let was_gone = gone();
        let slice = if was_gone {
            Duration::ZERO
        } else {
            left.min(tick)
        };
        match crate::relay::net::accept_within(listener, slice) {
            Ok(socket) => return Ok(socket),
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                if was_gone {
                    return Err(io::Error::other("the command exited without connecting"));
                }
                if left <= tick {
                    return Err(e);
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// Where each recorded connection of a run as A has got to, so that the next opens
/// when the recording has it open.
pub struct Schedule {
    /// When each connection's first packet was captured.
    firsts: Vec<Duration>,
    state: Mutex<Vec<Progress>>,
    changed: Condvar,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Progress {
    NotStarted,
    /// Playing the event captured at this time.
    At(Duration),
    Done,
}

impl Schedule {
    pub fn new(firsts: Vec<Duration>) -> Self {
        let n = firsts.len();
        Schedule {
            firsts,
            state: Mutex::new(vec![Progress::NotStarted; n]),
            changed: Condvar::new(),
        }
    }

    /// Waits until connection `k` may open: every earlier one has finished, or is
    /// playing an event captured after `k`'s first packet.
    pub fn wait_turn(&self, k: usize) {
        let first = self.firsts[k];
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        while !state[..k].iter().all(|p| match p {
            Progress::Done => true,
            Progress::At(t) => *t >= first,
            Progress::NotStarted => false,
        }) {
            match self.changed.wait(state) {
                Ok(next) => state = next,
                Err(_) => return,
            }
        }
    }

    pub fn at(&self, k: usize, time: Duration) {
        self.set(k, Progress::At(time));
    }

    pub fn done(&self, k: usize) {
        self.set(k, Progress::Done);
    }

    fn set(&self, k: usize, progress: Progress) {
        if let Ok(mut state) = self.state.lock() {
            state[k] = progress;
        }
        self.changed.notify_all();
    }
}

/// The first address of `addrs` (the one a command is told about).
pub fn first_addr(addrs: &[SocketAddr]) -> Option<SocketAddr> {
    addrs.first().copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opening(stream: usize, first: &[u8]) -> Opening {
        Opening {
            stream,
            client_first: !first.is_empty(),
            first: first.to_vec(),
        }
    }

    #[test]
    fn the_best_match_wins_and_ties_go_to_the_earlier() {
        let openings = [
            opening(0, b"GET /a HTTP/1.1\r\n"),
            opening(1, b"GET /b HTTP/1.1\r\n"),
            opening(2, b"GET /b HTTP/1.1\r\n"),
            opening(3, b""),
        ];
        assert_eq!(best(&openings, b"GET /b HTTP/1.1\r\n", &[]), 1);
        assert_eq!(best(&openings, b"GET /a", &[]), 0);
        assert_eq!(best(&openings, b"POST", &[]), 0);
        // A client that says nothing gets the connection where the server spoke first.
        assert_eq!(best(&openings, b"", &[]), 3);
    }

    #[test]
    fn a_connection_opens_once_the_earlier_ones_got_that_far() {
        let ms = Duration::from_millis;
        let schedule = Schedule::new(vec![ms(0), ms(10)]);
        schedule.wait_turn(0);
        schedule.at(0, ms(5));
        let opened = std::sync::atomic::AtomicBool::new(false);
        thread::scope(|s| {
            s.spawn(|| {
                schedule.wait_turn(1);
                opened.store(true, std::sync::atomic::Ordering::SeqCst);
            });
            assert!(!opened.load(std::sync::atomic::Ordering::SeqCst));
            schedule.at(0, ms(12));
        });
        assert!(opened.load(std::sync::atomic::Ordering::SeqCst));
    }
}
