//! `-t`: the time at the start of each event line, local or since the first connection.
//!
//! The time shown is when the system call behind the event returned (the relay
//! threads stamp every event), not when the logger got round to printing it: during a
//! bulk transfer the logger may be hundreds of events behind, and a timestamp is only
//! useful if it says when the bytes moved.
//!
//! Local time needs the time zone as `date` knows it (the `TZ` variable,
//! `/etc/localtime`, summer time), which `chrono`'s `Local` reads. Converting an
//! instant to it costs a time zone look-up, so the hours, minutes and seconds are
//! cached and converted again only when the second changes: a burst of events within
//! one second costs one conversion, and a change of summer time still shows at the
//! very next second.

use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Local, Timelike};

/// What `-t` / `--timestamps=...` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TimestampKind {
    /// Local time of day to the microsecond: `23:41:07.123456`
    Local,
    /// Seconds since the first connection was accepted: `1.250031`
    Relative,
}

/// Writes timestamps; one per logger, used from its thread only.
#[derive(Debug)]
pub struct Timestamps {
    kind: TimestampKind,
    /// Where relative time counts from: the first connection's acceptance.
    origin: Option<SystemTime>,
    /// The last whole second formatted as local time, and its `HH:MM:SS`.
    cached: Option<(u64, [u8; 8])>,
}

impl Timestamps {
    pub fn new(kind: TimestampKind) -> Self {
        Timestamps {
            kind,
            origin: None,
            cached: None,
        }
    }

    /// The first connection was accepted at `at`: relative times count from there.
    /// Later connections do not move the origin.
    pub fn connection_at(&mut self, at: SystemTime) {
        self.origin.get_or_insert(at);
    }

    /// Appends the timestamp for `at` and one space.
    pub fn write(&mut self, out: &mut Vec<u8>, at: SystemTime) {
        match self.kind {
            TimestampKind::Local => {
                // A clock set before 1970 is shown as midnight rather than refused.
                let since_epoch = at.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
                let second = since_epoch.as_secs();
                let hms = match self.cached {
                    Some((cached, hms)) if cached == second => hms,
                    _ => {
                        let hms = local_hms(second);
                        self.cached = Some((second, hms));
                        hms
                    }
                };
                out.extend_from_slice(&hms);
                let _ = write!(out, ".{:06} ", since_epoch.subsec_micros());
            }
            TimestampKind::Relative => {
                // Events stamped a hair before the origin (another thread's clock
                // read) show as 0 rather than as a negative time.
                let since = self
                    .origin
                    .and_then(|origin| at.duration_since(origin).ok())
                    .unwrap_or(Duration::ZERO);
                let _ = write!(out, "{}.{:06} ", since.as_secs(), since.subsec_micros());
            }
        }
    }
}

/// `HH:MM:SS` of the local time at `second` since the epoch.
fn local_hms(second: u64) -> [u8; 8] {
    let local = i64::try_from(second)
        .ok()
        .and_then(|second| DateTime::from_timestamp(second, 0))
        .map(|utc| utc.with_timezone(&Local));
    match local {
        Some(time) => hms(
            u64::from(time.hour()),
            u64::from(time.minute()),
            u64::from(time.second()),
        ),
        // Only for years `chrono` cannot represent; fall back to UTC arithmetic.
        None => {
            let of_day = second % 86_400;
            hms(of_day / 3600, of_day / 60 % 60, of_day % 60)
        }
    }
}

fn hms(hour: u64, minute: u64, second: u64) -> [u8; 8] {
    let digit = |n: u64| b'0' + (n % 10) as u8;
    [
        digit(hour / 10),
        digit(hour),
        b':',
        digit(minute / 10),
        digit(minute),
        b':',
        digit(second / 10),
        digit(second),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(stamps: &mut Timestamps, at: SystemTime) -> String {
        let mut out = Vec::new();
        stamps.write(&mut out, at);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn relative_counts_from_the_first_connection() {
        let origin = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut stamps = Timestamps::new(TimestampKind::Relative);
        stamps.connection_at(origin);
        stamps.connection_at(origin + Duration::from_secs(50)); // a later connection
        assert_eq!(text(&mut stamps, origin), "0.000000 ");
        assert_eq!(
            text(&mut stamps, origin + Duration::from_micros(1_250_031)),
            "1.250031 "
        );
        assert_eq!(
            text(&mut stamps, origin + Duration::from_secs(3725)),
            "3725.000000 "
        );
        // Stamped just before the origin by another thread: never negative.
        assert_eq!(
            text(&mut stamps, origin - Duration::from_micros(3)),
            "0.000000 "
        );
    }

    #[test]
    fn local_time_has_microseconds_and_a_fixed_width() {
        let mut stamps = Timestamps::new(TimestampKind::Local);
        let at = UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789);
        let shown = text(&mut stamps, at);
        // The hour depends on the machine's time zone; the shape and the parts below
        // the minute do not (every zone in use is a whole number of minutes off UTC).
        assert_eq!(shown.len(), "23:41:07.123456 ".len(), "{shown:?}");
        assert_eq!(&shown[5..], ":20.123456 ", "{shown:?}");
        let hour: u32 = shown[..2].parse().unwrap();
        let minute: u32 = shown[3..5].parse().unwrap();
        assert!(hour < 24 && minute < 60, "{shown:?}");
        // The same second again comes from the cache, a new one from the library.
        let later = at + Duration::from_micros(1);
        assert_eq!(&text(&mut stamps, later)[..8], &shown[..8]);
        let next = text(&mut stamps, at + Duration::from_secs(1));
        assert_eq!(&next[5..], ":21.123456 ");
    }

    #[test]
    fn hms_pads_with_zeros() {
        assert_eq!(&hms(7, 5, 9), b"07:05:09");
        assert_eq!(&hms(23, 59, 60), b"23:59:60");
    }

    /// 10M local timestamps, 1 µs apart (a burst: many events in each second),
    /// through the per-second cache and converting every one. Run with
    /// `cargo test --release --lib timestamps -- --ignored --nocapture`.
    #[test]
    #[ignore = "a benchmark, not a test"]
    fn local_time_cache_benchmark() {
        const N: u64 = 10_000_000;
        let start = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut out = Vec::with_capacity(64);
        let mut stamps = Timestamps::new(TimestampKind::Local);
        let timer = std::time::Instant::now();
        for i in 0..N {
            out.clear();
            stamps.write(&mut out, start + Duration::from_micros(i));
        }
        let cached = timer.elapsed();
        let timer = std::time::Instant::now();
        for i in 0..N {
            out.clear();
            let since = Duration::from_secs(1_700_000_000) + Duration::from_micros(i);
            out.extend_from_slice(&local_hms(since.as_secs()));
            let _ = write!(out, ".{:06} ", since.subsec_micros());
        }
        let uncached = timer.elapsed();
        let per = |d: Duration| d.as_nanos() as f64 / N as f64;
        println!(
            "{N} local timestamps: {:.1} ns each through the cache, {:.1} ns converting each",
            per(cached),
            per(uncached)
        );
    }
}
