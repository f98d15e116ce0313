//! What a replay came to: per connection, and for the whole run; printed as verdict
//! lines and written as JSON by `--report`.
//!
//! The JSON is made with serde from these plain structs, so its shape is exactly the
//! fields below (README's "The replay report" shows one).

use std::io::{self, Write};
use std::path::Path;

use serde::Serialize;

use crate::cli::config::Rule;
use crate::direction::Direction;
use crate::error::Error;
use crate::words::Count;

/// The first difference of a connection, as the report shows it.
#[derive(Debug, Clone, Serialize)]
pub struct FirstDifference {
    /// `A -> B` or `B -> A`.
    pub direction: String,
    /// The offset in the live stream, and in the recorded one (they differ after a
    /// span of another length was ignored).
    pub offset: u64,
    pub recorded_offset: u64,
    /// The report's first line: what happened.
    pub what: String,
    /// What the recording has there, and what came instead, in hex (at most 64 bytes
    /// each; empty when there is nothing to show).
    pub expected: String,
    pub received: String,
}

impl FirstDifference {
    pub fn new(dir: Direction, at: [u64; 2], what: &str, sides: [&[u8]; 2]) -> Self {
        FirstDifference {
            direction: format!("{} -> {}", dir.from(), dir.to()),
            offset: at[0],
            recorded_offset: at[1],
            what: what.trim_end().to_string(),
            expected: hex(sides[0]),
            received: hex(sides[1]),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    let shown = &bytes[..bytes.len().min(crate::replay::difference::SHOWN)];
    shown.iter().map(|b| format!("{b:02x}")).collect()
}

/// How one connection's replay ended.
pub struct Verdict {
    pub stream: usize,
    /// `Ok` when the live peer matched the recording to the end.
    pub result: Result<(), Error>,
    /// Bytes exchanged with the live peer, A->B and B->A.
    pub bytes: [u64; 2],
    pub difference: Option<FirstDifference>,
    /// How many spans each rule matched, in the order of `ReplayConfig::rules`.
    pub rules_used: Vec<u64>,
}

impl Verdict {
    /// A connection that never got a live peer, or failed before playing.
    pub fn failed(stream: usize, error: Error, rules: usize) -> Verdict {
        Verdict {
            stream,
            result: Err(error),
            bytes: [0, 0],
            difference: None,
            rules_used: vec![0; rules],
        }
    }

    /// `[N] matched: ...` or `[N] differs: ...`, for the list at the end of a run
    /// with several connections.
    pub fn line(&self) -> String {
        let [ab, ba] = self.bytes;
        match &self.result {
            Ok(()) => format!(
                "[{}] matched: {} A -> B, {} B -> A",
                self.stream,
                Count(ab, "byte"),
                Count(ba, "byte")
            ),
            Err(error) => format!("[{}] differs: {error}", self.stream),
        }
    }
}

/// A rule and how often it matched, for the report.
#[derive(Debug, Serialize)]
struct RuleUse {
    rule: String,
    spans: u64,
}

#[derive(Debug, Serialize)]
struct ConnectionReport {
    stream: usize,
    matched: bool,
    bytes_a_to_b: u64,
    bytes_b_to_a: u64,
    /// The failure in words, when it did not match.
    error: Option<String>,
    first_difference: Option<FirstDifference>,
    rules: Vec<RuleUse>,
}

/// The command run with `--`, as the report shows it.
#[derive(Debug, Clone, Serialize)]
pub struct CommandReport {
    pub command: Vec<String>,
    /// Its exit status, when it exited by itself.
    pub exit_status: Option<i32>,
    /// What became of it, in words.
    pub outcome: String,
    pub passed: bool,
}

#[derive(Debug, Serialize)]
struct RunReport<'a> {
    capture: String,
    matched: bool,
    connections: Vec<ConnectionReport>,
    command: Option<&'a CommandReport>,
}

/// Writes the `--report` JSON for `verdicts` to `path`.
pub fn write_report(
    path: &Path,
    capture: &Path,
    verdicts: &[Verdict],
    rules: &[Rule],
    command: Option<&CommandReport>,
) -> Result<(), Error> {
    let connections: Vec<ConnectionReport> = verdicts
        .iter()
        .map(|v| ConnectionReport {
            stream: v.stream,
            matched: v.result.is_ok(),
            bytes_a_to_b: v.bytes[0],
            bytes_b_to_a: v.bytes[1],
            error: v.result.as_ref().err().map(ToString::to_string),
            first_difference: v.difference.clone(),
            rules: rules
                .iter()
                .zip(&v.rules_used)
                .map(|(rule, &spans)| RuleUse {
                    rule: rule.name(),
                    spans,
                })
                .collect(),
        })
        .collect();
    let report = RunReport {
        capture: capture.display().to_string(),
        matched: connections.iter().all(|c| c.matched) && command.is_none_or(|c| c.passed),
        connections,
        command,
    };
    let failed = |source: io::Error| Error::Output {
        what: format!("the report {}", path.display()),
        source,
    };
    let file = std::fs::File::create(path).map_err(|source| Error::CreateOutput {
        path: path.to_path_buf(),
        source,
    })?;
    let mut out = io::BufWriter::new(file);
    serde_json::to_writer_pretty(&mut out, &report).map_err(|e| failed(e.into()))?;
    out.write_all(b"\n")
        .and_then(|()| out.flush())
        .map_err(failed)
}
