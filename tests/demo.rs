//! `tiburoncin demo`: every demo, run as a user runs it (its output to a pipe, so
//! fast and without colours), its relay's lines checked direction by direction,
//! with the exact sizes the kernel makes deterministic; and the mistakes.

mod common;

use std::time::{Duration, Instant};

use common::*;

/// What a demo printed, and how it ended.
struct Run {
    code: Option<i32>,
    stdout: Vec<String>,
    stderr: String,
    took: Duration,
}

fn demo(args: &[&str]) -> Run {
    demo_in(args, &Options::default())
}

fn demo_in(args: &[&str], options: &Options) -> Run {
    let mut all = vec!["demo".to_string()];
    all.extend(args.iter().map(|a| a.to_string()));
    let started = Instant::now();
    let mut p = Process::spawn_with(&all, options);
    let status = p.wait();
    let run = Run {
        code: status.code(),
        stdout: p.stdout.lines(),
        stderr: p.stderr.text(),
        took: started.elapsed(),
    };
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    run
}

impl Run {
    /// Ended by itself with 0, well within the 10 s a demo may take.
    fn succeeded(&self) -> &Self {
        assert_eq!(
            self.code,
            Some(0),
            "stdout:\n{}\nstderr:\n{}",
            self.stdout.join("\n"),
            self.stderr
        );
        assert!(self.took < Duration::from_secs(10), "took {:?}", self.took);
        // The narration is marked, and no line of the relay's looks like it.
        assert!(self.stdout.iter().any(|l| l.starts_with("# ")));
        for line in &self.stdout {
            assert!(
                line.starts_with("# ") || !line.starts_with('#'),
                "unmarked: {line}"
            );
        }
        self
    }

    /// The relay's lines about one direction ("A -> B"), in order, without the
    /// hexdump rows, and without the `[N] ` label of connection `label`.
    fn direction(&self, dir: &str, label: &str) -> Vec<String> {
        let to = &dir[dir.len() - 1..];
        self.stdout
            .iter()
            .filter_map(|l| l.strip_prefix(label))
            .filter(|l| l.starts_with(&format!("{dir} ")) || l.starts_with(&format!("{to} is ")))
            .map(str::to_string)
            .collect()
    }

    /// Where the first line with `text` is: a line of the narration if `text`
    /// starts with `#`, else a line of the relay's.
    fn position(&self, text: &str) -> usize {
        let narration = text.starts_with('#');
        self.stdout
            .iter()
            .position(|l| l.starts_with('#') == narration && l.contains(text))
            .unwrap_or_else(|| panic!("no {text:?} in:\n{}", self.stdout.join("\n")))
    }
}

fn lines(text: &str) -> Vec<String> {
    text.lines().map(|l| l.trim().to_string()).collect()
}

#[test]
fn hello_is_the_default_and_tells_each_step_before_the_relay_shows_it() {
    // No --pace: standard output is a pipe, so the demo runs fast.
    let run = demo(&[]);
    run.succeeded();
    assert_eq!(
        run.direction("A -> B", ""),
        lines(
            "A -> B sent 9 bytes
             B is 9 bytes behind
             B is in sync
             A -> B sent 13 bytes
             B is 13 bytes behind
             B is in sync
             A -> B flow shutdown
             B is in sync"
        )
    );
    assert_eq!(
        run.direction("B -> A", ""),
        lines(
            "B -> A sent 33 bytes
             A is 33 bytes behind
             A is in sync
             B -> A sent 4 bytes
             A is 4 bytes behind
             A is in sync
             B -> A flow shutdown
             A is in sync"
        )
    );
    // Each step's lines come beneath it, before the next step.
    let order = [
        "# A sends a line.",
        "A -> B sent 9 bytes",
        "# B answers",
        "B -> A sent 33 bytes",
        "# A says goodbye",
        "A -> B sent 13 bytes",
        "A -> B flow shutdown",
        "# B says goodbye",
        "B -> A flow shutdown",
        "# Both directions are closed",
    ];
    let at: Vec<usize> = order.iter().map(|t| run.position(t)).collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "{order:?} at {at:?}");
    // Not a terminal: no colours.
    assert!(run.stdout.iter().all(|l| !l.contains('\x1b')));
    assert_eq!(run.stderr, "");
}

#[test]
fn hello_by_name_takes_the_relay_flags_that_apply() {
    let dir = scratch_dir("demo-flags");
    let options = Options {
        dir: Some(dir.clone()),
        ..Options::default()
    };
    let run = demo_in(
        &[
            "hello",
            "--pace",
            "fast",
            "-b",
            "4:2048",
            "-o",
            "-w",
            "demo.pcapng",
            "--timestamps=relative",
            "--kernel-queues",
        ],
        &options,
    );
    run.succeeded();
    run.position("Allocating buffers: 4 and 2048 bytes...");
    // -b 4: A's 9 bytes come in chunks of at most 4.
    let sizes = sent_sizes(
        &run.stdout
            .iter()
            .map(|l| {
                l.split_once(' ')
                    .map_or(l.as_str(), |(_, rest)| rest)
                    .to_string()
            })
            .collect::<Vec<_>>(),
        "A -> B",
    );
    assert!(sizes.iter().all(|&n| n <= 4), "{sizes:?}");
    assert_eq!(sizes.iter().sum::<usize>(), 9 + 13);
    assert!(
        run.stdout
            .iter()
            .any(|l| l.contains("B is in sync (kernel: ")),
        "no kernel queues"
    );
    assert_eq!(
        decode_dump(&dir.join("AtoB.dump")),
        b"hello, B\nnothing, bye\n"
    );
    assert_eq!(
        decode_dump(&dir.join("BtoA.dump")),
        b"hello, A! what can I do for you?\nbye\n"
    );
    let capture = std::fs::read(dir.join("demo.pcapng")).unwrap();
    assert_eq!(&capture[..4], b"\x0a\x0d\x0d\x0a", "not a pcapng file");
}

/// The chunks of the slow receiver: `n` of 512 bytes, each read, then written.
fn chunk_lines(n: usize) -> Vec<String> {
    let mut lines = Vec::new();
    for _ in 0..n {
        lines.push("A -> B sent 512 bytes".to_string());
        lines.push("B is 512 bytes behind".to_string());
        lines.push("B is in sync".to_string());
    }
    lines
}

/// The line without its ` (kernel: ...)` figures.
fn without_figures(line: &str) -> String {
    line.split(" (kernel: ").next().unwrap_or(line).to_string()
}

#[test]
fn slow_receiver_fills_each_buffer_in_turn() {
    let run = demo(&["slow-receiver", "--pace", "fast"]);
    run.succeeded();
    let ab = run.direction("A -> B", "");
    let plain: Vec<String> = ab.iter().map(|l| without_figures(l)).collect();
    // Three chunks fill B's kernel, eight tiburoncin's socket to B: each written.
    assert_eq!(plain[..33], chunk_lines(11)[..]);
    // There the socket to B is full (4096 bytes of data in 4608), and the twelfth
    // chunk stays in tiburoncin's buffer: nothing from A is waiting yet.
    assert_eq!(
        ab[32],
        "B is in sync (kernel: 4096 queued to B, 0 unread from A)"
    );
    assert_eq!(ab[33], "A -> B sent 512 bytes");
    assert_eq!(
        ab[34],
        "B is 512 bytes behind (kernel: 4096 queued to B, 0 unread from A)"
    );
    // Then A blocks: 5632 bytes more, 3584 of them in tiburoncin's kernel (its
    // window), 2048 in A's, unsent. The relay, stalled, says nothing meanwhile.
    run.position(
        "# A's write would block now. A sent 5632 bytes more: tiburoncin's kernel holds 3584,",
    );
    run.position("# unread; A's kernel the other 2048, which it cannot even send");
    let stalled = run.position("B is 512 bytes behind (kernel: 4096 queued to B, 0 unread from A)");
    let catching_up = run.position("# B catches up");
    assert!(
        run.stdout[stalled + 1..catching_up]
            .iter()
            .all(|l| l.starts_with("# ")),
        "the relay said something while stalled"
    );
    assert!(ab[35].ends_with(", 3584 unread from A)"), "{}", ab[35]);
    // B catches up: every byte, 512 at a time, and all ends in sync.
    let sizes = sent_sizes(&ab, "A -> B");
    assert_eq!(sizes, vec![512; 23]);
    run.position("# B got all 11776 bytes A sent, in order.");
    run.position("# B's kernel holds 0 unread, A's kernel 0 unsent: all in sync.");
    assert_eq!(ab[ab.len() - 2], "A -> B flow shutdown");
    assert_eq!(
        ab.last().unwrap(),
        "B is in sync (kernel: 0 queued to B, 0 unread from A)"
    );
    assert_eq!(
        run.direction("B -> A", ""),
        lines(
            "B -> A flow shutdown
             A is in sync (kernel: 0 queued to A, 0 unread from B)"
        )
    );
}

#[test]
fn half_close_drains_then_passes_the_end_and_the_other_way_goes_on() {
    let run = demo(&["half-close", "--pace", "fast"]);
    run.succeeded();
    let ab: Vec<String> = run
        .direction("A -> B", "")
        .iter()
        .map(|l| without_figures(l))
        .collect();
    let mut expected = chunk_lines(12);
    expected.pop(); // the twelfth chunk waits in tiburoncin's buffer...
    expected.extend(lines(
        "B is in sync
         A -> B flow shutdown
         B is in sync",
    )); // ...until B reads; only then the end.
    assert_eq!(ab, expected);
    // A shut down while the chunk waited: the end came after, once B read.
    assert!(run.position("# A is done") < run.position("# B reads."));
    assert!(run.position("# B reads.") < run.position("A -> B flow shutdown"));
    let ba: Vec<String> = run
        .direction("B -> A", "")
        .iter()
        .map(|l| without_figures(l))
        .collect();
    assert_eq!(
        ba,
        lines(
            "B -> A sent 32 bytes
             A is 32 bytes behind
             A is in sync
             B -> A sent 32 bytes
             A is 32 bytes behind
             A is in sync
             B -> A flow shutdown
             A is in sync"
        )
    );
    // B -> A flows after A -> B is closed.
    assert!(run.position("A -> B flow shutdown") < run.position("B -> A sent 32 bytes"));
}

#[test]
fn broken_pipe_is_the_relays_failure_and_the_demos_success() {
    let run = demo(&["broken-pipe", "--pace", "fast"]);
    run.succeeded();
    assert_eq!(
        run.direction("A -> B", ""),
        lines(
            "A -> B sent 4 bytes
             B is 4 bytes behind
             B is in sync
             A -> B sent 4 bytes
             B is 4 bytes behind
             B is in sync
             A -> B sent 6 bytes
             B is 6 bytes behind"
        )
    );
    assert_eq!(
        run.direction("B -> A", ""),
        lines(
            "B -> A flow shutdown
             A is in sync"
        )
    );
    // The relay's own message, on standard error where it puts it.
    assert_eq!(run.stderr, "Passthrough from A to B failed: Broken pipe\n");
    run.position("# which the kernel reports as EPIPE: the write fails with a broken pipe.");
}

#[test]
fn many_labels_each_connection_and_stops_on_a_signal() {
    let run = demo(&["many", "--pace", "fast"]);
    run.succeeded();
    for n in 1..=3 {
        let label = format!("[{n}] ");
        assert_eq!(
            run.direction("A -> B", &label),
            lines(
                "A -> B sent 20 bytes
                 B is 20 bytes behind
                 B is in sync
                 A -> B flow shutdown
                 B is in sync"
            ),
            "{label}"
        );
        assert_eq!(
            run.direction("B -> A", &label),
            lines(
                "B -> A sent 18 bytes
                 A is 18 bytes behind
                 A is in sync
                 B -> A flow shutdown
                 A is in sync"
            ),
            "{label}"
        );
        run.position(&format!(
            "{label}Relayed A -> B 20 bytes, B -> A 18 bytes in "
        ));
    }
    assert_eq!(
        run.stdout.last().unwrap(),
        "Served 3 connections: 3 completed, 0 failed, 0 cancelled"
    );
    // The -k rows are the narrow ones (one space after the offset, not two), and
    // the relay's lines fit 80 columns.
    let rows = run.stdout.iter().filter(|l| l.contains("] 00000000 "));
    assert_eq!(rows.filter(|l| !l.contains("00000000  ")).count(), 6);
    for line in run.stdout.iter().filter(|l| !l.starts_with('#')) {
        assert!(line.len() <= 80, "{} columns: {line}", line.len());
    }
    assert!(run.position("# Every connection ended") < run.position("Served 3 connections"));
}

#[test]
fn quiet_demos_still_end_by_themselves() {
    for name in ["hello", "broken-pipe", "many"] {
        let run = demo(&[name, "-q", "--pace", "fast"]);
        run.succeeded();
        assert!(
            !run.stdout.iter().any(|l| l.contains(" sent ")),
            "{name}: chunks under -q"
        );
    }
}

#[test]
fn list_names_every_demo_on_a_line() {
    let run = demo(&["--list"]);
    assert_eq!(run.code, Some(0));
    let names: Vec<&str> = run
        .stdout
        .iter()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(
        names,
        [
            "hello",
            "slow-receiver",
            "half-close",
            "broken-pipe",
            "many"
        ]
    );
}

fn mistake(args: &[&str]) -> String {
    let mut all = vec!["demo".to_string()];
    all.extend(args.iter().map(|a| a.to_string()));
    assert_usage_error(&all, false);
    let mut p = Process::spawn(&all);
    p.wait();
    let err = p.stderr.text();
    assert!(err.contains("Usage: tiburoncin demo "), "{args:?}: {err}");
    err.lines().next().unwrap_or_default().to_string()
}

#[test]
fn an_unknown_demo_is_a_usage_error_naming_the_known_ones() {
    let reason = mistake(&["nosuch"]);
    assert!(reason.contains("'nosuch'"), "{reason}");
    assert!(
        reason.contains("hello, slow-receiver, half-close, broken-pipe, many"),
        "{reason}"
    );
}

#[test]
fn flags_that_make_no_sense_for_a_demo_are_usage_errors() {
    for (args, says) in [
        (
            &["-A", "127.0.0.1:8080"][..],
            "-A: a demo makes its own A and B",
        ),
        (
            &["hello", "-B", "127.0.0.1:80"],
            "-B: a demo makes its own A and B",
        ),
        (&["many", "-k"], "-k"),
        (&["many", "--max-conns", "2"], "--max-conns"),
        (&["--rate", "1k"], "--rate: faults"),
        (&["--delay", "-5"], "--delay: faults"),
        (
            &["slow-receiver", "-b", "1024"],
            "slow-receiver counts on -b 512",
        ),
        (&["slow-receiver", "-z", "4096"], "slow-receiver counts on"),
        (
            &["half-close", "-b", "100:100"],
            "half-close counts on -b 512",
        ),
        (&["half-close", "-q"], "-q hides"),
        (&["--pace", "medium"], "'medium'"),
        (&["--list", "hello"], "--list"),
        (&["-b", "0"], "-b"),
    ] {
        let reason = mistake(args);
        assert!(reason.contains(says), "{args:?}: {reason}");
    }
}
