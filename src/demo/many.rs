//! `many`: `-k`, with a few clients at once. Each gets its own connection to B and
//! its own buffers, and every line of its connection starts with its number, `[N]`,
//! numbered in the order tiburoncin accepted them.

use std::net::{TcpListener, TcpStream};
use std::thread;

use crate::demo::child::RelayChild;
use crate::demo::peers::{self, receive, receive_end, send, shutdown};
use crate::demo::{Show, Sizes, listening_port};
use crate::error::Error;

/// How many clients come at once.
pub(crate) const CLIENTS: usize = 3;

/// What client `n` says, and what B answers: the same length for every client.
fn greeting(n: usize) -> Vec<u8> {
    format!("hello from client {n}\n").into_bytes()
}

fn welcome(n: u8) -> Vec<u8> {
    format!("welcome, client {}\n", char::from(n)).into_bytes()
}

pub(crate) fn play(show: &mut Show) -> Result<(), Error> {
    show.step(&[
        "many: with -k, tiburoncin keeps listening, and relays every client to a",
        "connection of its own to B. Each connection's lines start with its [N].",
    ]);
    let listener = peers::listen(None)?;
    let b_port = peers::port(&listener)?;
    let args = show.relay_args(b_port, &["-k"], Sizes::default());
    let mut relay = RelayChild::start(&args, show.chatty())?;
    let port = listening_port(&relay.line("Waiting for connections from A ")?)?;

    show.step(&[&format!(
        "{CLIENTS} clients connect at once; each says hello, B welcomes it, and both close:"
    )]);
    thread::scope(|scope| -> Result<(), Error> {
        let server = scope.spawn(|| serve(&listener));
        let clients: Vec<_> = (1..=CLIENTS)
            .map(|n| scope.spawn(move || client(port, n)))
            .collect();
        for done in clients.into_iter().chain([server]) {
            done.join()
                .map_err(|_| Error::Demo("a peer's thread panicked".into()))??;
        }
        Ok(())
    })?;
    // Each connection's summary, which even -q prints.
    relay.until("a summary for every connection", |seen| {
        seen.iter().filter(|l| l.contains("Relayed A -> B")).count() >= CLIENTS
    })?;

    show.step(&[
        "Every connection ended. tiburoncin -k serves until it is stopped: the demo",
        "sends it SIGTERM, as Ctrl-C would, and it sums up and exits 0:",
    ]);
    relay.terminate()?;
    relay.line("Served ")?;
    relay.ends_with(0)
}

/// B: one thread per connection, started as the relay dials B for each client.
fn serve(listener: &TcpListener) -> Result<(), Error> {
    thread::scope(|scope| {
        let mut served = Vec::new();
        for _ in 0..CLIENTS {
            let b = peers::accept(listener)?;
            served.push(scope.spawn(move || welcome_one(&b)));
        }
        for one in served {
            one.join()
                .map_err(|_| Error::Demo("B's thread panicked".into()))??;
        }
        Ok(())
    })
}

/// B reads a client's greeting, answers it, and closes after the client.
fn welcome_one(b: &TcpStream) -> Result<(), Error> {
    let said = receive("B", b, greeting(0).len())?;
    let n = said[said.len() - 2];
    send("B", b, &welcome(n))?;
    receive_end("B", b)?;
    shutdown("B", b)
}

/// Client `n`: connect, greet, read the welcome, close.
fn client(port: u16, n: usize) -> Result<(), Error> {
    let a = peers::connect(port, None)?;
    send("A", &a, &greeting(n))?;
    receive("A", &a, welcome(b'0').len())?;
    shutdown("A", &a)?;
    receive_end("A", &a)
}
