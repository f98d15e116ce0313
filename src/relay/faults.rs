//! Fault injection: a slow, laggy, fragmenting or failing network, per direction.
//!
//! A program is only known to handle a slow link, a connection reset mid-response or
//! a peer that stops answering if someone made those happen. These options make the
//! relay misbehave on purpose, in one direction or both, while it still shows every
//! byte:
//!
//! - `--rate`: at most so many bytes a second (a token bucket);
//! - `--delay`: each chunk is held so many milliseconds after it was read, give or
//!   take a random jitter (a link's latency: chunks stay in order, and the user-space
//!   buffer caps the bytes in flight, as a window does);
//! - `--slice`: at most so many bytes per write (a TCP stream split into small
//!   segments, which shakes out parsers that assume whole messages);
//! - `--reset-after`: after so many bytes, reset the consumer's connection (RST);
//! - `--stall-after`: after so many bytes, forward nothing more (a peer that hangs).
//!
//! Everything happens in the writer thread of the direction (see `Shaper`). The
//! reader's cut-through (see `relay`) is off for a direction with faults, so every
//! byte passes through the shaper.
//!
//! The values on the command line follow `-b`'s `n:m`: `v` for both directions, `v:w`
//! for A->B and B->A, and `v:` or `:w` for one direction only.

use std::fmt;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;

use crate::words::Count;

/// A rate's burst: the bucket holds this much time's worth of bytes, so a writer
/// that was idle cannot then exceed the rate for more than this long.
const BURST: Duration = Duration::from_millis(50);

/// The faults of one direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Faults {
    /// Bytes per second.
    pub rate: Option<u64>,
    pub delay: Option<Delay>,
    /// Most bytes per write.
    pub slice: Option<usize>,
    /// Reset the consumer once this many bytes were written to it.
    pub reset_after: Option<u64>,
    /// Write nothing more once this many bytes were written.
    pub stall_after: Option<u64>,
}

/// `--delay MS[~JITTER]`: each chunk waits `base` give or take up to `jitter`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delay {
    pub base: Duration,
    pub jitter: Duration,
}

/// What happened to a direction on purpose, for the outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Injected {
    /// The consumer's connection was reset after this many bytes.
    Reset(u64),
    /// Forwarding stopped after this many bytes.
    Stall(u64),
}

impl Injected {
    /// The word for it in the JSON events.
    pub fn word(self) -> &'static str {
        match self {
            Injected::Reset(_) => "reset",
            Injected::Stall(_) => "stall",
        }
    }

    /// After how many bytes.
    pub fn after(self) -> u64 {
        match self {
            Injected::Reset(n) | Injected::Stall(n) => n,
        }
    }
}

impl Faults {
    /// Whether any fault is configured: then every write goes through a `Shaper`.
    pub fn any(&self) -> bool {
        *self != Faults::default()
    }
}

impl fmt::Display for Faults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(rate) = self.rate {
            parts.push(format!("rate {rate} bytes/s"));
        }
        if let Some(Delay { base, jitter }) = self.delay {
            if jitter.is_zero() {
                parts.push(format!("delay {} ms", base.as_millis()));
            } else {
                parts.push(format!(
                    "delay {}~{} ms",
                    base.as_millis(),
                    jitter.as_millis()
                ));
            }
        }
        if let Some(slice) = self.slice {
            parts.push(format!("slice {}", Count(slice, "byte")));
        }
        if let Some(n) = self.reset_after {
            parts.push(format!("reset after {}", Count(n, "byte")));
        }
        if let Some(n) = self.stall_after {
            parts.push(format!("stall after {}", Count(n, "byte")));
        }
        f.write_str(&parts.join(", "))
    }
}

/// `Injecting faults: A -> B ...; B -> A ...`, or `None` when there are none.
pub fn describe(faults: &[Faults; 2]) -> Option<String> {
    let parts: Vec<String> = [("A -> B", &faults[0]), ("B -> A", &faults[1])]
        .into_iter()
        .filter(|(_, f)| f.any())
        .map(|(dir, f)| format!("{dir} {f}"))
        .collect();
    (!parts.is_empty()).then(|| format!("Injecting faults: {}", parts.join("; ")))
}

// --- the command line ------------------------------------------------------------

/// Splits `v`, `v:w`, `v:` or `:w` into the A->B and B->A values, each parsed by
/// `one`; an empty side means no value for that direction.
pub fn parse_pair<T: Copy>(
    text: &str,
    one: impl Fn(&str) -> Result<T, String>,
) -> Result<[Option<T>; 2], String> {
    if text.is_empty() || text == ":" {
        return Err(format!("'{text}': give a value"));
    }
    let (ab, ba) = match text.split_once(':') {
        Some((_, b)) if b.contains(':') => {
            return Err(format!("'{text}': give one value, or A->B:B->A"));
        }
        Some((a, b)) => (a, b),
        None => (text, text),
    };
    let side = |s: &str| {
        if s.is_empty() {
            Ok(None)
        } else {
            one(s).map(Some)
        }
    };
    Ok([side(ab)?, side(ba)?])
}

/// A count of bytes: decimal, with an optional `k`, `M` or `G` (powers of 1000).
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let (digits, unit) = match text.char_indices().last() {
        Some((at, 'k')) => (&text[..at], 1_000),
        Some((at, 'M')) => (&text[..at], 1_000_000),
        Some((at, 'G')) => (&text[..at], 1_000_000_000),
        _ => (text, 1),
    };
    digits
        .parse::<u64>()
        .ok()
        .filter(|_| !digits.starts_with('+'))
        .and_then(|n| n.checked_mul(unit))
        .ok_or_else(|| format!("'{text}' is not a number of bytes (like 1000, 64k or 2M)"))
}

/// A rate: bytes per second, at least 1.
pub fn parse_rate(text: &str) -> Result<u64, String> {
    match parse_bytes(text)? {
        0 => Err(format!("'{text}': a rate must be at least 1 byte/s")),
        n => Ok(n),
    }
}

/// A slice: at most this many bytes per write, at least 1.
pub fn parse_slice(text: &str) -> Result<usize, String> {
    match parse_bytes(text)? {
        0 => Err(format!("'{text}': a slice must be at least 1 byte")),
        n => usize::try_from(n).map_err(|_| format!("'{text}' is too large")),
    }
}

/// `MS` or `MS~JITTER`, in whole milliseconds, at most an hour.
pub fn parse_delay(text: &str) -> Result<Delay, String> {
    let millis = |s: &str| {
        s.parse::<u64>()
            .ok()
            .filter(|&ms| ms <= 3_600_000 && !s.starts_with('+'))
            .map(Duration::from_millis)
            .ok_or_else(|| format!("'{text}' is not a delay in milliseconds (like 200 or 200~50)"))
    };
    let (base, jitter) = match text.split_once('~') {
        Some((base, jitter)) => (millis(base)?, millis(jitter)?),
        None => (millis(text)?, Duration::ZERO),
    };
    Ok(Delay { base, jitter })
}

// --- in the writer -----------------------------------------------------------------

/// What the writer may do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allow {
    /// Write at most this many bytes, now.
    Write(usize),
    /// The reset is due: reset the consumer.
    Reset,
    /// The stall is due: write nothing more.
    Stall,
    /// The relay is stopping.
    Stopped,
}

/// One direction's faults at work: the writer asks it before each write.
pub struct Shaper {
    faults: Faults,
    /// Bytes written to the consumer so far.
    written: u64,
    /// The token bucket for `rate`: bytes that may be written now, and when it was
    /// last filled.
    tokens: f64,
    filled: Instant,
    /// The jitter's random numbers (xorshift; anything but a constant will do).
    random: u64,
}

impl Shaper {
    pub fn new(faults: Faults, seed: u64) -> Self {
        Shaper {
            faults,
            written: 0,
            // Empty at the start, so that the rate holds from the first byte.
            tokens: 0.0,
            filled: Instant::now(),
            random: seed | 1,
        }
    }

    /// Waits until a chunk read at `read_at` is due (`--delay`). False if the relay
    /// stopped meanwhile.
    pub fn hold(&mut self, read_at: Instant, stop: &Receiver<()>) -> bool {
        let Some(Delay { base, jitter }) = self.faults.delay else {
            return true;
        };
        let due = read_at + base;
        let due = if jitter.is_zero() {
            due
        } else {
            // Uniform in [base - jitter, base + jitter], never before the read.
            let span = 2 * jitter.as_micros() as u64 + 1;
            let offset = Duration::from_micros(self.next_random() % span);
            (due + offset)
                .checked_sub(jitter)
                .unwrap_or(read_at)
                .max(read_at)
        };
        sleep_until(due, stop)
    }

    /// How much of the `want` bytes left in a chunk may be written now, waiting for
    /// the rate if need be.
    pub fn allow(&mut self, want: usize, stop: &Receiver<()>) -> Allow {
        let mut most = want as u64;
        for (limit, due) in [
            (self.faults.reset_after, Allow::Reset),
            (self.faults.stall_after, Allow::Stall),
        ] {
            if let Some(limit) = limit {
                match limit.saturating_sub(self.written) {
                    0 => return due,
                    left => most = most.min(left),
                }
            }
        }
        if let Some(slice) = self.faults.slice {
            most = most.min(slice as u64);
        }
        if let Some(rate) = self.faults.rate {
            let rate = rate as f64;
            let capacity = (rate * BURST.as_secs_f64()).max(1.0);
            // Wait for the whole piece if the bucket can hold it, else for a full
            // bucket: writes are then as big as the burst allows, not a byte each.
            let wanted = (most as f64).min(capacity);
            loop {
                let now = Instant::now();
                let elapsed = now.duration_since(self.filled).as_secs_f64();
                self.tokens = (self.tokens + elapsed * rate).min(capacity);
                self.filled = now;
                if self.tokens >= wanted {
                    break;
                }
                let wait = Duration::from_secs_f64((wanted - self.tokens) / rate);
                if !sleep_until(now + wait, stop) {
                    return Allow::Stopped;
                }
            }
            most = most.min(self.tokens as u64);
        }
        Allow::Write(most as usize)
    }

    /// A reset or a stall, if one is due now.
    pub fn due(&self) -> Option<Allow> {
        if self.faults.reset_after.is_some_and(|n| self.written >= n) {
            Some(Allow::Reset)
        } else if self.faults.stall_after.is_some_and(|n| self.written >= n) {
            Some(Allow::Stall)
        } else {
            None
        }
    }

    /// `n` bytes were written.
    pub fn wrote(&mut self, n: usize) {
        self.written += n as u64;
        if self.faults.rate.is_some() {
            self.tokens -= n as f64;
        }
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    fn next_random(&mut self) -> u64 {
        let mut x = self.random;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.random = x;
        x
    }
}

/// Sleeps until `due`, or until `stop` disconnects (then false).
fn sleep_until(due: Instant, stop: &Receiver<()>) -> bool {
    let now = Instant::now();
    if due <= now {
        return true;
    }
    !stop
        .recv_timeout(due - now)
        .is_err_and(|e| e.is_disconnected())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_like_b() {
        let n = |s: &str| parse_bytes(s);
        assert_eq!(parse_pair("5", n), Ok([Some(5), Some(5)]));
        assert_eq!(parse_pair("5:7", n), Ok([Some(5), Some(7)]));
        assert_eq!(parse_pair("5:", n), Ok([Some(5), None]));
        assert_eq!(parse_pair(":7", n), Ok([None, Some(7)]));
        for bad in ["", ":", "1:2:3", "x", "5:x", "-1", "+5", "1.5"] {
            assert!(parse_pair(bad, n).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn byte_counts_rates_and_slices() {
        assert_eq!(parse_bytes("0"), Ok(0));
        assert_eq!(parse_bytes("64k"), Ok(64_000));
        assert_eq!(parse_bytes("2M"), Ok(2_000_000));
        assert_eq!(parse_bytes("1G"), Ok(1_000_000_000));
        assert!(parse_bytes("k").is_err());
        assert!(parse_bytes("99999999999999999999G").is_err());
        assert!(parse_bytes("20000000000G").is_err());
        assert!(parse_rate("0").is_err());
        assert_eq!(parse_rate("100k"), Ok(100_000));
        assert!(parse_slice("0").is_err());
        assert_eq!(parse_slice("1"), Ok(1));
    }

    #[test]
    fn delays_with_and_without_jitter() {
        let ms = Duration::from_millis;
        assert_eq!(
            parse_delay("200"),
            Ok(Delay {
                base: ms(200),
                jitter: ms(0)
            })
        );
        assert_eq!(
            parse_delay("200~50"),
            Ok(Delay {
                base: ms(200),
                jitter: ms(50)
            })
        );
        for bad in ["", "~", "200~", "~5", "1.5", "-1", "3600001", "2~3~4"] {
            assert!(parse_delay(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn the_injecting_line() {
        let none = [Faults::default(); 2];
        assert_eq!(describe(&none), None);
        let faults = [
            Faults {
                rate: Some(1000),
                delay: Some(Delay {
                    base: Duration::from_millis(200),
                    jitter: Duration::from_millis(50),
                }),
                slice: Some(10),
                ..Faults::default()
            },
            Faults {
                reset_after: Some(5),
                stall_after: Some(7),
                ..Faults::default()
            },
        ];
        assert_eq!(
            describe(&faults).unwrap(),
            "Injecting faults: A -> B rate 1000 bytes/s, delay 200~50 ms, slice 10 bytes; \
             B -> A reset after 5 bytes, stall after 7 bytes"
        );
    }

    fn never() -> Receiver<()> {
        crossbeam_channel::never()
    }

    #[test]
    fn slices_and_thresholds_cut_the_writes() {
        let mut shaper = Shaper::new(
            Faults {
                slice: Some(100),
                reset_after: Some(250),
                ..Faults::default()
            },
            1,
        );
        let mut writes = Vec::new();
        loop {
            match shaper.allow(1000, &never()) {
                Allow::Write(n) => {
                    writes.push(n);
                    shaper.wrote(n);
                }
                Allow::Reset => break,
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(writes, [100, 100, 50]);
        assert_eq!(shaper.written(), 250);
        // A stall comes due the same way, and stays due.
        let mut shaper = Shaper::new(
            Faults {
                stall_after: Some(0),
                ..Faults::default()
            },
            1,
        );
        assert_eq!(shaper.allow(10, &never()), Allow::Stall);
        assert_eq!(shaper.allow(10, &never()), Allow::Stall);
    }

    #[test]
    fn a_rate_waits_and_a_stop_ends_the_wait() {
        // 1000 bytes/s: a 50-byte bucket, filled in 50 ms.
        let mut shaper = Shaper::new(
            Faults {
                rate: Some(1000),
                ..Faults::default()
            },
            1,
        );
        let start = Instant::now();
        let mut total = 0;
        while total < 100 {
            let Allow::Write(n) = shaper.allow(1000, &never()) else {
                panic!("not a write")
            };
            assert!(n <= 50, "{n} bytes at once");
            shaper.wrote(n);
            total += n;
        }
        // 100 bytes at 1000 bytes/s cannot take less than 0.1 s.
        assert!(start.elapsed() >= Duration::from_millis(100));
        let (stop_tx, stop) = crossbeam_channel::bounded::<()>(0);
        drop(stop_tx);
        assert_eq!(shaper.allow(1000, &stop), Allow::Stopped);
    }

    #[test]
    fn a_delay_holds_each_chunk_from_its_read() {
        let delay = Delay {
            base: Duration::from_millis(30),
            jitter: Duration::from_millis(20),
        };
        let mut shaper = Shaper::new(
            Faults {
                delay: Some(delay),
                ..Faults::default()
            },
            7,
        );
        for _ in 0..3 {
            let read_at = Instant::now();
            assert!(shaper.hold(read_at, &never()));
            // Never less than base - jitter.
            assert!(read_at.elapsed() >= Duration::from_millis(10));
        }
        // A chunk read long ago is due at once.
        let long_ago = Instant::now() - Duration::from_secs(1);
        let before = Instant::now();
        assert!(shaper.hold(long_ago, &never()));
        assert!(before.elapsed() < Duration::from_millis(500));
    }
}
