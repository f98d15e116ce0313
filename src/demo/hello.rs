//! `hello`: A and B exchange a few lines through the relay, then both close.

use crate::demo::peers::{expect, receive_end, send, shutdown};
use crate::demo::{Show, Sizes};
use crate::error::Error;

const QUESTION: &[u8] = b"hello, B\n";
const ANSWER: &[u8] = b"hello, A! what can I do for you?\n";
const BYE_A: &[u8] = b"nothing, bye\n";
const BYE_B: &[u8] = b"bye\n";

pub(crate) fn play(show: &mut Show) -> Result<(), Error> {
    show.step(&[
        "hello: a client A and a server B talk through tiburoncin, on loopback.",
        "tiburoncin shows each chunk it relays, and how far the receiver is behind.",
    ]);
    let mut stage = show.set_up(None, None, Sizes::default())?;
    let (a, b, relay) = (&stage.a, &stage.b, &mut stage.relay);

    show.step(&[
        "A sends a line. tiburoncin reads it (B is that many bytes behind),",
        "then writes it to B (B is in sync: B's kernel has every byte):",
    ]);
    send("A", a, QUESTION)?;
    expect("B", b, QUESTION)?;
    relay.caught_up("A", "B", QUESTION.len())?;

    show.step(&["B answers, the other way round:"]);
    send("B", b, ANSWER)?;
    expect("A", a, ANSWER)?;
    relay.caught_up("B", "A", ANSWER.len())?;

    show.step(&[
        "A says goodbye and shuts down its side: after its last bytes, a FIN.",
        "tiburoncin passes the end on to B (A -> B flow shutdown):",
    ]);
    send("A", a, BYE_A)?;
    shutdown("A", a)?;
    expect("B", b, BYE_A)?;
    receive_end("B", b)?;
    relay.count("A -> B flow shutdown", 1)?;
    relay.caught_up("A", "B", QUESTION.len() + BYE_A.len())?;

    show.step(&["B says goodbye too, and closes:"]);
    send("B", b, BYE_B)?;
    shutdown("B", b)?;
    expect("A", a, BYE_B)?;
    receive_end("A", a)?;
    relay.ends_with(0)?;
    show.note(&["Both directions are closed: tiburoncin is done (exit status 0)."]);
    Ok(())
}
