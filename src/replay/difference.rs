//! The differences that stop a replay, and how each is reported.
//!
//! A report says what happened and where — the direction and the offset in that
//! direction's stream, which is what a person needs to find the spot in a hexdump
//! or in Wireshark — then shows what the recording has and what came instead, as
//! hexdump rows aligned to the stream offset, a few rows of each, so a changed byte
//! stands out in the same column of both.

use std::io;
use std::time::Duration;

use crate::direction::Direction;
use crate::output::hexdump;
use crate::words::Count;

/// How much of each side a report shows: four rows of sixteen.
pub const SHOWN: usize = 64;

/// What went wrong, in the peer's direction unless said otherwise.
pub enum Difference {
    /// `received` differs from `expected` at its first byte.
    Bytes {
        expected: Vec<u8>,
        received: Vec<u8>,
    },
    /// The peer closed (FIN) with `expected` still to say.
    Closed { expected: Vec<u8> },
    /// The peer reset the connection.
    Reset { expected: Vec<u8>, error: io::Error },
    /// Nothing for `--timeout` with `expected` still to say (or its FIN).
    Silent { expected: Vec<u8>, fin: bool },
    /// The peer said `received` where the recording has nothing more before `when`.
    Extra {
        received: Vec<u8>,
        when: &'static str,
    },
    /// Our bytes could not be delivered.
    SendFailed { error: io::Error },
}

/// Where a difference is: the offset in the live stream and in the recorded one.
/// They are the same until a rule skips spans of different lengths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct At {
    pub live: u64,
    pub recorded: u64,
}

impl At {
    pub fn same(offset: u64) -> At {
        At {
            live: offset,
            recorded: offset,
        }
    }

    /// `stream offset N`, and the recorded offset when it is another.
    fn words(self) -> String {
        if self.live == self.recorded {
            format!("stream offset {}", self.live)
        } else {
            format!(
                "stream offset {} ({} in the recording)",
                self.live, self.recorded
            )
        }
    }
}

impl Difference {
    /// Appends the report for this difference in `dir` at `at` to `out`; `timeout` is
    /// the wait a silent peer exceeded.
    pub fn report(&self, out: &mut Vec<u8>, dir: Direction, at: At, timeout: Duration) {
        out.extend_from_slice(self.headline(dir, at, timeout).as_bytes());
        let [expected, received] = self.sides();
        if let Some(bytes) = expected {
            write_side(out, "expected", at.recorded, bytes);
        }
        if let Some(bytes) = received {
            write_side(out, "received", at.live, bytes);
        }
    }

    /// The report's first line: what happened, and where.
    pub fn headline(&self, dir: Direction, at: At, timeout: Duration) -> String {
        let (from, to) = (dir.from(), dir.to());
        let offset = at.words();
        match self {
            Difference::Bytes { .. } if at.live == at.recorded => {
                let live = at.live;
                format!("Difference in {from} -> {to} at stream offset {live} (0x{live:x}):\n")
            }
            Difference::Bytes { .. } => {
                let (live, recorded) = (at.live, at.recorded);
                format!(
                    "Difference in {from} -> {to} at stream offset {live} (0x{live:x}), \
                     offset {recorded} (0x{recorded:x}) in the recording:\n"
                )
            }
            Difference::Closed { expected } if expected.is_empty() => {
                format!("{from} closed its side at {offset}, before the recording has it close.\n")
            }
            Difference::Closed { expected } => format!(
                "{from} closed its side at {offset}, with {} still to send.\n",
                Count(expected.len(), "byte")
            ),
            Difference::Reset { error, .. } | Difference::SendFailed { error } => format!(
                "{from} -> {to} failed at {offset}: {}\n",
                crate::error::os_text(error)
            ),
            Difference::Silent { fin, .. } => {
                let what = if *fin {
                    "did not close its side, as the recording has it do,"
                } else {
                    "sent nothing"
                };
                let secs = timeout.as_secs_f64();
                format!("{from} {what} for {secs} s at {offset}.\n")
            }
            Difference::Extra { when, .. } => {
                format!("{from} sent bytes the recording does not have, at {offset} ({when}):\n")
            }
        }
    }

    /// The bytes shown under the headline: what the recording has there and what came
    /// instead, each only when the report has something to show of it.
    pub fn sides(&self) -> [Option<&[u8]>; 2] {
        fn unless_empty(bytes: &[u8]) -> Option<&[u8]> {
            (!bytes.is_empty()).then_some(bytes)
        }
        match self {
            Difference::Bytes { expected, received } => {
                [Some(expected.as_slice()), Some(received.as_slice())]
            }
            Difference::Closed { expected }
            | Difference::Reset { expected, .. }
            | Difference::Silent { expected, .. } => [unless_empty(expected), None],
            Difference::Extra { received, .. } => [None, Some(received.as_slice())],
            Difference::SendFailed { .. } => [None, None],
        }
    }
}

/// `label:` and the first `SHOWN` bytes of one side as hexdump rows aligned to the
/// stream offset, then how many more there were.
fn write_side(out: &mut Vec<u8>, label: &str, offset: u64, bytes: &[u8]) {
    out.extend_from_slice(format!("{label}:\n").as_bytes());
    let shown = &bytes[..bytes.len().min(SHOWN)];
    hexdump::write_rows(out, offset, shown);
    if bytes.len() > SHOWN {
        let more = format!("... and {} more\n", Count(bytes.len() - SHOWN, "byte"));
        out.extend_from_slice(more.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(difference: Difference, dir: Direction, offset: u64) -> String {
        let mut out = Vec::new();
        difference.report(&mut out, dir, At::same(offset), Duration::from_millis(1500));
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_changed_byte_lines_up_in_both_hexdumps() {
        let diff = Difference::Bytes {
            expected: b"world\n".to_vec(),
            received: b"World\n".to_vec(),
        };
        assert_eq!(
            text(diff, Direction::BtoA, 0x1e),
            "Difference in B -> A at stream offset 30 (0x1e):\n\
             expected:\n\
             0000001e                                             77 6f  |              wo|\n\
             00000020  72 6c 64 0a                                       |rld.            |\n\
             received:\n\
             0000001e                                             57 6f  |              Wo|\n\
             00000020  72 6c 64 0a                                       |rld.            |\n"
        );
    }

    #[test]
    fn after_an_ignored_span_both_offsets_are_given() {
        let diff = Difference::Bytes {
            expected: b"x".to_vec(),
            received: b"y".to_vec(),
        };
        let mut out = Vec::new();
        let at = At {
            live: 0x22,
            recorded: 0x20,
        };
        diff.report(&mut out, Direction::BtoA, at, Duration::from_secs(1));
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with(
                "Difference in B -> A at stream offset 34 (0x22), offset 32 (0x20) in the recording:\n\
                 expected:\n00000020  78"
            ),
            "{text}"
        );
        assert!(text.contains("received:\n00000022        79"), "{text}");
    }

    #[test]
    fn long_sides_are_cut_to_four_rows() {
        let diff = Difference::Closed {
            expected: vec![b'x'; 100],
        };
        let report = text(diff, Direction::AtoB, 0);
        assert!(report.starts_with(
            "A closed its side at stream offset 0, with 100 bytes still to send.\nexpected:\n"
        ));
        assert_eq!(
            report
                .lines()
                .filter(|l| l.ends_with("|xxxxxxxxxxxxxxxx|"))
                .count(),
            4
        );
        assert!(report.ends_with("... and 36 bytes more\n"), "{report}");
    }

    #[test]
    fn each_kind_says_what_happened() {
        let cases = [
            (
                Difference::Silent {
                    expected: Vec::new(),
                    fin: true,
                },
                "A did not close its side, as the recording has it do, for 1.5 s at stream offset 7.\n",
            ),
            (
                Difference::Extra {
                    received: Vec::new(),
                    when: "after the end of the recording",
                },
                "A sent bytes the recording does not have, at stream offset 7 (after the end of the recording):\n",
            ),
            (
                Difference::Reset {
                    expected: Vec::new(),
                    error: io::Error::from_raw_os_error(libc::ECONNRESET),
                },
                "A -> B failed at stream offset 7: Connection reset by peer\n",
            ),
        ];
        for (diff, first) in cases {
            let report = text(diff, Direction::AtoB, 7);
            assert!(report.starts_with(first), "{report}");
        }
    }
}
