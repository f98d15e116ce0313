//! `half-close`: A shuts down its side while its last bytes are still on the way.
//! They drain into B, only then does the end of A's stream (the FIN) follow, and B
//! goes on talking to A: one direction closed, the other open.
//!
//! The stage is the slow receiver's (same sizes, same filling): B reads nothing
//! until every buffer towards it is full, so that A's FIN has bytes to wait behind.

use crate::demo::peers::{expect, receive, receive_end, send, shutdown};
use crate::demo::{Show, slow_receiver};
use crate::error::Error;

const STILL_HERE: &[u8] = b"B here: I can still talk to you\n";

pub(crate) fn play(show: &mut Show) -> Result<(), Error> {
    show.step(&[
        "half-close: A shuts down its sending side while its last bytes are still",
        "on their way to B. First, B reads nothing, to let the bytes pile up.",
    ]);
    let mut stage = show.set_up(
        Some(slow_receiver::B_RECEIVE_BUFFER),
        None,
        slow_receiver::sizes(),
    )?;
    let sent = slow_receiver::fill(show, &mut stage)?;
    let (a, b, relay) = (&stage.a, &stage.b, &mut stage.relay);

    show.step(&[
        "A is done: it shuts down its side (shutdown(SHUT_WR)). Its FIN reaches",
        "tiburoncin's kernel, but with its buffer full tiburoncin reads nothing, so",
        "it does not see the end yet: no A -> B flow shutdown.",
    ]);
    shutdown("A", a)?;

    show.step(&[
        "B reads. The bytes drain into B, and only then does tiburoncin read the end",
        "of A's stream and pass it on (A -> B flow shutdown):",
    ]);
    if receive("B", b, sent)? != slow_receiver::filling() {
        return Err(Error::Demo("B got other bytes than A sent".into()));
    }
    receive_end("B", b)?;
    relay.line("A -> B flow shutdown")?;
    relay.caught_up("A", "B", sent)?;

    show.step(&["The other direction is still open: B talks to A, and A reads."]);
    for _ in 0..2 {
        send("B", b, STILL_HERE)?;
        expect("A", a, STILL_HERE)?;
    }
    relay.caught_up("B", "A", 2 * STILL_HERE.len())?;

    show.step(&["B is done too, and closes. tiburoncin exits 0:"]);
    shutdown("B", b)?;
    receive_end("A", a)?;
    relay.ends_with(0)
}
