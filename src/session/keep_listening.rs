//! `-k`: accept clients until stopped, each relayed to a B of its own.
//!
//! The original serves one connection and exits; programs worth watching (browsers,
//! HTTP clients, database drivers) open several at once. With `-k` the listener stays
//! open, and every client A that it accepts gets a connection to B of its own, dialled
//! with the same three tries, its own two buffers and its own four relay threads, so a
//! slow or broken connection holds up no other. One logger serves them all: its lines
//! carry the connection's number, `[N] `, and each connection ends with a summary
//! line.
//!
//! B is dialled *after* A is accepted, not before as for a single connection: a B
//! dialled in advance would sit idle until a client came, and servers close idle
//! connections (or count them against their limits).
//!
//! `--max-conns` bounds how many connections relay at once. The bound is a pool of
//! slots: the listener takes a slot before it accepts, and a connection gives it back
//! when its last thread ends. While all slots are taken, clients wait in the
//! listener's backlog, where the kernel completes their handshakes.
//!
//! A signal stops everything: the listener (which wakes the accept) and every
//! connection, through their stoppers (children of the process's, see `stop`).

use std::io;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{Receiver, Sender, bounded, select};
use socket2::Socket;

use crate::cli::config::Config;
use crate::error::Error;
use crate::relay::event::{Closing, ConnId, Ending, Note};
use crate::relay::stop::Stopper;
use crate::relay::{self, Link, NOTE_QUEUE, Settings, net, peer};
use crate::session::{Outcome, Outputs};

/// Clients the kernel may hold, handshake done, while every slot is taken.
const BACKLOG: i32 = 1024;

/// How long to wait before accepting again after running out of file descriptors
/// or memory: long enough for a connection to end, short enough not to be noticed.
const RESOURCE_PAUSE: Duration = Duration::from_millis(100);

/// Listens on `-A` and relays every client to B until a signal stops it.
pub(crate) fn run(
    config: &Config,
    max_conns: usize,
    stopper: &Arc<Stopper>,
    outputs: Outputs,
) -> Result<Outcome, Error> {
    let listening = net::listen_with_backlog(&config.a_addrs, config.socket_buffers, BACKLOG);
    let shown_a = config.a.as_listening(listening.as_ref().ok());
    let waiting = || {
        outputs
            .say
            .line(format_args!("Waiting for connections from A {shown_a}..."))
    };
    let listener = match listening {
        Ok(listener) => Arc::new(listener),
        Err(error) => {
            // Said before the error, as without -k: the error then follows the
            // address it is about.
            waiting();
            return Err(Error::Accept(error));
        }
    };
    // From here a signal stops the listener and every connection, and the run ends
    // with every output flushed, instead of the process just exiting.
    stopper.start_relay(std::slice::from_ref(&listener));
    waiting();

    let logger = crate::session::logger(config, outputs)
        .many(config.b.to_string())
        .dumps_per_connection(config.dumps.clone());
    let settings = Settings {
        buffers: config.buffers,
        watched: logger.watches_chunks(),
        faults: config.faults,
        kernel_queues: config.kernel_queues,
    };
    let (notes, queue) = bounded(NOTE_QUEUE);
    let (take_slot, free_slot) = bounded::<()>(max_conns);

    let mut accept_failure = None;
    let report = thread::scope(|scope| {
        let logger = scope.spawn(move || logger.run(queue));
        let mut id: ConnId = 0;
        loop {
            let a = match next_client(&listener, &take_slot, &free_slot, stopper) {
                Ok(Some(a)) => a,
                Ok(None) => break,
                Err(error) => {
                    // The listener itself is broken: serve no one new, but let the
                    // connections already relaying finish.
                    accept_failure = Some(error);
                    break;
                }
            };
            let accepted = (SystemTime::now(), Instant::now());
            id += 1;
            // Told here, not by the connection's own thread: the connections are
            // numbered in the order they were accepted, and their `Connection from A`
            // lines must come in that order too, which threads started one after
            // the other would not keep.
            let _ = notes.send(Note::Accepted {
                conn: id,
                a: peer(&a),
                at: accepted.0,
            });
            let notes = notes.clone();
            let settings = &settings;
            let stopper = stopper.child();
            let free_slot = free_slot.clone();
            scope.spawn(move || {
                serve(id, a, accepted, config, settings, &notes, &stopper);
                // Its last thread has ended: the slot is free for the next client.
                let _ = free_slot.try_recv();
            });
        }
        drop(notes);
        logger
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    });
    if let Some(error) = accept_failure {
        eprintln!("{}", Error::Accept(error));
        return Ok(Outcome::Failed(report));
    }
    Ok(Outcome::of(report, stopper))
}

/// Waits for a free slot, then for a client. `None` once a stop has begun.
fn next_client(
    listener: &Socket,
    take_slot: &Sender<()>,
    free_slot: &Receiver<()>,
    stopper: &Stopper,
) -> io::Result<Option<Socket>> {
    select! {
        send(take_slot, ()) -> taken => if taken.is_err() { return Ok(None) },
        recv(stopper.channel()) -> _ => return Ok(None),
    }
    loop {
        match net::accept(listener) {
            Ok((a, _)) => return Ok(Some(a)),
            Err(_) if stopper.stopping() => break,
            // A client that gave up while waiting in the backlog: take the next.
            Err(e) if e.raw_os_error() == Some(libc::ECONNABORTED) => continue,
            Err(e) if out_of_resources(&e) => {
                eprintln!("{} (trying again)", Error::Accept(e));
                if stopper
                    .channel()
                    .recv_timeout(RESOURCE_PAUSE)
                    .is_err_and(|e| e.is_disconnected())
                {
                    break;
                }
            }
            Err(e) => {
                let _ = free_slot.try_recv();
                return Err(e);
            }
        }
    }
    let _ = free_slot.try_recv();
    Ok(None)
}

/// Errors after which accepting may work again once a connection has ended.
fn out_of_resources(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// One client, already announced to the logger: dial B for it, then relay until both
/// directions are closed.
fn serve(
    id: ConnId,
    a: Socket,
    accepted: (SystemTime, Instant),
    config: &Config,
    settings: &Settings,
    notes: &Sender<Note>,
    stopper: &Stopper,
) {
    let b = net::connect(&config.b_addrs, config.socket_buffers, stopper.channel())
        .map_err(Error::Connect)
        .and_then(|(b, _)| {
            for socket in [&a, &b] {
                net::prepare_relay_socket(socket).map_err(Error::Accept)?;
            }
            Ok(b)
        });
    if stopper.stopping() {
        // Stopped while B was being dialled: this connection never relayed.
        let closing = Closing {
            ending: stopper
                .cancelled_by()
                .map_or(Ending::Failed, Ending::Cancelled),
            bytes: [0, 0],
            lasted: accepted.1.elapsed(),
            at: SystemTime::now(),
        };
        let _ = notes.send(Note::Close(id, closing));
        return;
    }
    let b = match b {
        Ok(b) => b,
        Err(error) => {
            let at = SystemTime::now();
            let _ = notes.send(Note::NotRelayed {
                conn: id,
                error,
                at,
            });
            turn_away(a);
            return;
        }
    };
    let link = Link {
        id,
        a,
        b,
        accepted,
        dumps: None,
    };
    relay::connection(link, settings, notes, stopper);
}

/// Closes a client's connection with a reset: like the refusal a client gets from a
/// server that is not there, rather than an empty answer it might take for a reply.
fn turn_away(a: Socket) {
    let _ = a.set_linger(Some(Duration::ZERO));
}
