//! `-q` on a terminal: one live line on standard error with the bytes each way, the
//! current rate and, with `-k`, the connections open, redrawn in place at most ten
//! times a second. It is drawn by indicatif, which knows how to redraw a line in
//! place and how to clear it.
//!
//! The relay only counts (a `Meter`: atomic adds, nothing more); a thread of its own
//! reads the counts ten times a second and redraws the line. The line must never
//! be torn by other text on the same terminal: every line the program prints while
//! it is shown — the terminal text (through `AroundProgress`) and the error lines
//! (through `error_line`) — first clears it, and it is drawn again after. When the
//! run ends it is cleared for good, before the last lines are printed.
//!
//! Only with standard error a terminal: into a pipe or a file the line would be
//! noise. With `-qq` too: the line leaves nothing behind, so what remains is still
//! the tally and the errors only, and a long quiet run is where a person most
//! wants to see that it is moving.

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, IsTerminal, Write};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, bounded};
use indicatif::{HumanBytes, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::relay::meter::{Meter, Reading};

/// How often the line is redrawn: ten times a second.
const TICK: Duration = Duration::from_millis(100);

/// The current rate is over this last stretch of time.
const RATE_WINDOW: Duration = Duration::from_secs(1);

/// The line being shown, if one is: what `suspend` clears.
static LIVE: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// The live line, for as long as the run lasts.
pub struct Progress {
    bar: ProgressBar,
    /// Dropped to stop the thread: never sent on.
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Progress {
    /// Starts showing `meter` on standard error, if it is a terminal; with `many`
    /// (`-k`), with the connections open.
    pub fn start(meter: Arc<Meter>, many: bool) -> Option<Progress> {
        if !io::stderr().is_terminal() {
            return None;
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(10));
        // A template that is a constant parses; the plain spinner is only a fallback.
        let style = ProgressStyle::with_template("{msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
        bar.set_style(style);
        *LIVE.lock().unwrap_or_else(PoisonError::into_inner) = Some(bar.clone());
        let (stop, stopped) = bounded(0);
        let drawn = bar.clone();
        let thread = thread::Builder::new()
            .name("progress".into())
            .spawn(move || redraw(&drawn, &meter, many, &stopped))
            .ok();
        Some(Progress {
            bar,
            stop: Some(stop),
            thread,
        })
    }

    /// Stops redrawing and clears the line for good.
    pub fn finish(mut self) {
        self.end();
    }

    fn end(&mut self) {
        self.stop = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        *LIVE.lock().unwrap_or_else(PoisonError::into_inner) = None;
        self.bar.finish_and_clear();
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.end();
    }
}

/// The progress thread: redraws every `TICK` until told to stop.
fn redraw(bar: &ProgressBar, meter: &Meter, many: bool, stopped: &Receiver<()>) {
    let mut rate = Rate::default();
    loop {
        let reading = meter.reading();
        let per_second = rate.sample(Instant::now(), reading.bytes[0] + reading.bytes[1]);
        // Set on every tick, changed or not: indicatif may skip a draw to keep to
        // its rate, and the next tick then draws what was skipped.
        let line = Line {
            reading,
            per_second,
            many,
        };
        bar.set_message(line.to_string());
        match stopped.recv_timeout(TICK) {
            Err(RecvTimeoutError::Timeout) => {}
            _ => return,
        }
    }
}

/// Runs `f`, which prints to the terminal, with the live line cleared meanwhile.
pub(crate) fn suspend<R>(f: impl FnOnce() -> R) -> R {
    let bar = LIVE.lock().unwrap_or_else(PoisonError::into_inner).clone();
    match bar {
        Some(bar) => bar.suspend(f),
        None => f(),
    }
}

/// An error line on standard error, as `eprintln!`, but never torn by the live line.
pub(crate) fn error_line(args: fmt::Arguments) {
    suspend(|| eprintln!("{args}"));
}

/// A writer to the terminal that clears the live line around each write.
pub(crate) struct AroundProgress<W>(pub(crate) W);

impl<W: Write> Write for AroundProgress<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        suspend(|| self.0.write(buf))
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        suspend(|| self.0.write_all(buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        suspend(|| self.0.flush())
    }
}

/// The live line's text.
struct Line {
    reading: Reading,
    per_second: u64,
    many: bool,
}

impl fmt::Display for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a_to_b, b_to_a] = self.reading.bytes;
        write!(
            f,
            "A -> B {}, B -> A {}, {}/s",
            HumanBytes(a_to_b),
            HumanBytes(b_to_a),
            HumanBytes(self.per_second)
        )?;
        if self.many {
            let open = self.reading.open;
            let unit = if open == 1 {
                "connection"
            } else {
                "connections"
            };
            write!(f, ", {open} {unit} open")?;
        }
        Ok(())
    }
}

/// The rate over the last `RATE_WINDOW`, from samples of a running total.
#[derive(Default)]
struct Rate {
    samples: VecDeque<(Instant, u64)>,
}

impl Rate {
    /// Adds a sample; bytes a second since the oldest one within the window.
    fn sample(&mut self, at: Instant, total: u64) -> u64 {
        self.samples.push_back((at, total));
        while self
            .samples
            .front()
            .is_some_and(|&(then, _)| at.duration_since(then) > RATE_WINDOW)
        {
            self.samples.pop_front();
        }
        let Some(&(then, before)) = self.samples.front() else {
            return 0;
        };
        let elapsed = at.duration_since(then).as_secs_f64();
        if elapsed <= 0.0 {
            return 0;
        }
        (total.saturating_sub(before) as f64 / elapsed) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_says_each_way_the_rate_and_with_k_the_connections() {
        let reading = Reading {
            bytes: [1536, 3],
            open: 1,
        };
        let line = |many, per_second| {
            Line {
                reading,
                per_second,
                many,
            }
            .to_string()
        };
        assert_eq!(line(false, 2048), "A -> B 1.50 KiB, B -> A 3 B, 2.00 KiB/s");
        assert_eq!(
            line(true, 0),
            "A -> B 1.50 KiB, B -> A 3 B, 0 B/s, 1 connection open"
        );
        let two = Line {
            reading: Reading { open: 2, ..reading },
            per_second: 0,
            many: true,
        };
        assert!(two.to_string().ends_with(", 2 connections open"));
    }

    #[test]
    fn the_rate_is_over_the_last_second() {
        let start = Instant::now();
        let at = |ms| start + Duration::from_millis(ms);
        let mut rate = Rate::default();
        assert_eq!(rate.sample(at(0), 0), 0);
        assert_eq!(rate.sample(at(500), 1000), 2000);
        assert_eq!(rate.sample(at(1000), 2000), 2000);
        // The sample at 0 has left the window: 1000 bytes over the last 500 ms...
        assert_eq!(rate.sample(at(1500), 2000), 1000);
        // ...and nothing new for a second means a rate of 0.
        assert_eq!(rate.sample(at(2600), 2000), 0);
    }
}
