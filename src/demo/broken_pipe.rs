//! `broken-pipe`: B closes while A still sends, and the relay's write to B fails.
//!
//! Why it is a broken pipe and not a reset: B's `close` sends a FIN, which the relay
//! passes on to A; the relay's socket to B is then half-closed by B. The next bytes
//! the relay writes to B reach a socket that no program holds any more, so B's
//! kernel answers them with a reset (RST). A socket that had already received the
//! peer's FIN records that reset as EPIPE, and the write after it fails with
//! "Broken pipe". The relay still holds bytes it can never deliver: a failure.

use std::time::Duration;

use crate::demo::peers::{expect, receive_end, send};
use crate::demo::{Show, Sizes};
use crate::error::Error;

/// How many lines A tries before giving up on seeing the failure.
const TRIES: usize = 20;

/// How long A waits for the failure after each line. With its per-chunk lines the
/// relay shows when it wrote a line to B, and the first try is the one; with `-q`,
/// A cannot tell, and tries again.
const TRY_FOR: Duration = Duration::from_millis(300);

pub(crate) fn play(show: &mut Show) -> Result<(), Error> {
    show.step(&["broken-pipe: B closes its connection while A still has things to say."]);
    let mut stage = show.set_up(None, None, Sizes::default())?;
    let (a, relay) = (&stage.a, &mut stage.relay);

    show.step(&["A sends a line, and B reads it:"]);
    send("A", a, b"one\n")?;
    expect("B", &stage.b, b"one\n")?;
    relay.caught_up("A", "B", 4)?;

    show.step(&[
        "B closes its socket. Its kernel sends a FIN; tiburoncin passes the end on",
        "to A (B -> A flow shutdown). A's side is still open, and A goes on.",
    ]);
    drop(stage.b);
    receive_end("A", a)?;
    relay.count("B -> A flow shutdown", 1)?;
    relay.count("A is in sync", 1)?;

    show.step(&[
        "A sends another line. tiburoncin writes it to B, and the write succeeds:",
        "B's kernel takes the bytes, but no program will read them, so it answers",
        "with a reset (RST).",
    ]);
    send("A", a, b"two\n")?;
    relay.caught_up("A", "B", 8)?;

    show.step(&[
        "A sends one more line. tiburoncin's socket to B was reset after B's FIN,",
        "which the kernel reports as EPIPE: the write fails with a broken pipe. The",
        "bytes tiburoncin holds can never reach B, so it fails and exits 1:",
    ]);
    // The reset reaches the relay's socket as its write returns, on loopback; should
    // it ever come later, the next line meets it.
    for _ in 0..TRIES {
        if send("A", a, b"three\n").is_err() {
            break; // the relay already failed and closed A's connection
        }
        let failed = |seen: &[String]| seen.iter().any(|l| l.contains("failed: "));
        if relay.until_within(TRY_FOR, "the failure", failed).is_ok() {
            break;
        }
    }
    relay.line("Passthrough from A to B failed: Broken pipe")?;
    relay.ends_with(1)?;
    show.note(&["That is what a program sees writing to a peer that has gone away."]);
    Ok(())
}
