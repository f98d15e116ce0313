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

impl Difference {
    /// Appends the report for this difference in `dir` at stream `offset` to `out`;
    /// `timeout` is the wait a silent peer exceeded.
    pub fn report(self, out: &mut Vec<u8>, dir: Direction, offset: u64, timeout: Duration) {
        out.extend_from_slice(self.headline(dir, offset, timeout).as_bytes());
        let (expected, received) = self.into_sides();
        for (label, side) in [("expected", expected), ("received", received)] {
            if let Some(bytes) = side {
                write_side(out, label, offset, &bytes);
            }
        }
    }

    /// The report's first line: what happened, and where.
    fn headline(&self, dir: Direction, offset: u64, timeout: Duration) -> String {
        let (from, to) = (dir.from(), dir.to());
        match self {
            Difference::Bytes { .. } => {
                format!("Difference in {from} -> {to} at stream offset {offset} (0x{offset:x}):\n")
            }
            Difference::Closed { expected } if expected.is_empty() => format!(
                "{from} closed its side at stream offset {offset}, \
                 before the recording has it close.\n"
            ),
            Difference::Closed { expected } => format!(
                "{from} closed its side at stream offset {offset}, \
                 with {} bytes still to send.\n",
                expected.len()
            ),
            Difference::Reset { error, .. } | Difference::SendFailed { error } => format!(
                "{from} -> {to} failed at stream offset {offset}: {}\n",
                crate::error::os_text(error)
            ),
            Difference::Silent { fin, .. } => {
                let what = if *fin {
                    "did not close its side, as the recording has it do,"
                } else {
                    "sent nothing"
                };
                let secs = timeout.as_secs_f64();
                format!("{from} {what} for {secs} s at stream offset {offset}.\n")
            }
            Difference::Extra { when, .. } => format!(
                "{from} sent bytes the recording does not have, \
                 at stream offset {offset} ({when}):\n"
            ),
        }
    }

    /// The bytes shown under the headline: what the recording has there and what came
    /// instead, each only when the report has something to show of it.
    fn into_sides(self) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
        let unless_empty = |bytes: Vec<u8>| (!bytes.is_empty()).then_some(bytes);
        match self {
            Difference::Bytes { expected, received } => (Some(expected), Some(received)),
            Difference::Closed { expected }
            | Difference::Reset { expected, .. }
            | Difference::Silent { expected, .. } => (unless_empty(expected), None),
            Difference::Extra { received, .. } => (None, Some(received)),
            Difference::SendFailed { .. } => (None, None),
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
        let more = format!("... and {} bytes more\n", bytes.len() - SHOWN);
        out.extend_from_slice(more.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(difference: Difference, dir: Direction, offset: u64) -> String {
        let mut out = Vec::new();
        difference.report(&mut out, dir, offset, Duration::from_millis(1500));
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
