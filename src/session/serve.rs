//! The server: listen on `-A`, accept clients, and relay each to B.
//!
//! One path serves the original's single client and `-k`'s many; `one_or_many` says
//! what differs. Every client accepted gets a thread of its own, which dials its B
//! (or takes the one dialled in advance), then relays with its own two buffers, its
//! own four relay threads and a stopper of its own (a child of the process's, see
//! `stop`), so a slow or broken connection holds up no other. One logger serves them
//! all.
//!
//! How many connections relay at once is bounded by a pool of slots: the listener
//! takes a slot before it accepts, and a connection gives it back when its last
//! thread ends. While all slots are taken, clients wait in the listener's backlog,
//! where the kernel completes their handshakes.
//!
//! A signal stops everything: the listener (which wakes the accept) and every
//! connection, through their stoppers.

use std::io;
use std::sync::{Arc, OnceLock};
use std::thread::{self, Scope};
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{Receiver, Sender, bounded, select};
use socket2::Socket;

use crate::cli::addr::Address;
use crate::cli::config::Config;
use crate::error::Error;
use crate::output::progress::{self, Progress};
use crate::relay::event::{ConnId, Note};
use crate::relay::meter::Meter;
use crate::relay::stop::Stopper;
use crate::relay::stream::{Stream, tls_summary};
use crate::relay::unix::SocketFile;
use crate::relay::{self, Link, NOTE_QUEUE, Settings, net, peer};
use crate::session::Outcome;
use crate::session::dial::dial_b;
use crate::session::one_or_many::Clients;
use crate::session::outputs::{DumpFiles, Outputs, Say};
use crate::tls::{BSide, Handshaken, TlsSetup};

/// How long to wait before accepting again after running out of file descriptors
/// or memory: long enough for a connection to end, short enough not to be noticed.
const RESOURCE_PAUSE: Duration = Duration::from_millis(100);

/// What is made ready for the first client before listening: the single relay's
/// dump files and its B, dialled in advance as the original does.
pub(crate) struct Ahead {
    pub(crate) dumps: Option<DumpFiles>,
    pub(crate) b: Option<BSide>,
}

/// Listens on `-A` and relays clients to B, as many as `clients` says, until they
/// are served or a signal stops the server.
pub(crate) fn serve(
    config: &Config,
    clients: Clients,
    outputs: Outputs,
    ahead: Ahead,
    tls: &TlsSetup,
    stopper: &Stopper,
) -> Result<Outcome, Error> {
    let say = outputs.say;
    let listener = Listener::open(config, clients, say, stopper)?;
    let logger = clients.logger(config, outputs);
    // -q: a live line with the counts, on standard error if it is a terminal.
    let meter = config.quiet.then(|| Arc::new(Meter::default()));
    let progress = meter
        .clone()
        .and_then(|meter| Progress::start(meter, matches!(clients, Clients::Many { .. })));
    let server = Server {
        config,
        clients,
        settings: Settings {
            buffers: config.buffers,
            watched: logger.watches_chunks(),
            faults: config.faults,
            kernel_queues: config.kernel_queues,
            meter: progress.as_ref().and(meter),
        },
        stopper,
        tls,
        say,
        failure: OnceLock::new(),
    };
    let (notes, queue) = bounded(NOTE_QUEUE);
    let report = thread::scope(|scope| {
        let logger = scope.spawn(move || logger.run(queue));
        server.accept_clients(scope, listener, ahead, notes);
        logger
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    });
    // Gone before the last lines (an error, `User cancelled.`) are printed.
    if let Some(progress) = progress {
        progress.finish();
    }
    clients.judge(report, server.failure.into_inner(), stopper)
}

/// The socket clients connect to. It has a stopper of its own, a child of the
/// process's, so that a signal shuts it down, which wakes the `accept` waiting on it;
/// dropping the two closes the socket.
struct Listener {
    socket: Arc<Socket>,
    /// Holds the socket too, and only this listener holds it: the two go together.
    _stopper: Arc<Stopper>,
    /// A UNIX listener's socket file, removed when the listener closes.
    _file: Option<SocketFile>,
}

impl Listener {
    /// Listens where A will connect, and says so.
    fn open(
        config: &Config,
        clients: Clients,
        say: Say,
        stopper: &Stopper,
    ) -> Result<Listener, Error> {
        let (buffers, backlog) = (config.socket_buffers, clients.backlog());
        let listening = match &config.a {
            Address::Unix(path) => path.listen(buffers, backlog).map(|(s, f)| (s, Some(f))),
            _ => net::listen_with_backlog(&config.a_addrs, buffers, backlog).map(|s| (s, None)),
        };
        let shown_a = config
            .a
            .as_listening(listening.as_ref().ok().map(|(socket, _)| socket));
        let listener = listening.map(|(socket, file)| {
            let socket = Arc::new(socket);
            let own = stopper.child();
            own.start_relay(std::slice::from_ref(&socket));
            Listener {
                socket,
                _stopper: own,
                _file: file.flatten(),
            }
        });
        // A signal that came before the listener was in its stopper could not shut
        // it down: the run ends here, before anyone was served.
        if let Some(signal) = stopper.cancelled_by() {
            return Err(Error::Cancelled { signal });
        }
        // The line comes before a failure to listen too, as the original's does: the
        // error ("Address already in use") then follows the address it is about.
        clients.say_waiting(say, &shown_a);
        listener.map_err(|source| Error::Listen {
            addr: shown_a.to_string(),
            source,
        })
    }
}

/// A client just accepted, with what was made ready for it.
struct Client {
    id: ConnId,
    a: Socket,
    /// When A was accepted, by the wall clock and by the monotonic one.
    accepted: (SystemTime, Instant),
    /// B, if it was dialled in advance; else it is dialled for this client.
    b: Option<BSide>,
    dumps: Option<DumpFiles>,
}

/// The `--max-conns` slots: one is taken before each accept and given back when the
/// connection's last thread ends.
#[derive(Clone)]
struct Slots {
    take: Sender<()>,
    taken: Receiver<()>,
}

impl Slots {
    fn new(count: usize) -> Slots {
        let (take, taken) = bounded(count);
        Slots { take, taken }
    }

    /// Waits for a free slot and takes it; false once a stop has begun.
    fn take(&self, stopper: &Stopper) -> bool {
        select! {
            send(self.take, ()) -> taken => taken.is_ok(),
            recv(stopper.channel()) -> _ => false,
        }
    }

    fn give_back(&self) {
        let _ = self.taken.try_recv();
    }
}

/// What the threads of the server share.
struct Server<'a> {
    config: &'a Config,
    clients: Clients,
    settings: Settings,
    stopper: &'a Stopper,
    tls: &'a TlsSetup,
    say: Say,
    /// The error that ends the run once every connection has ended: the listener
    /// broke, or the single relay's client could not be relayed.
    failure: OnceLock<Error>,
}

impl<'env> Server<'env> {
    /// Accepts clients, each relayed by a thread of its own, until a stop, the last
    /// client the server takes, or a broken listener.
    fn accept_clients<'scope>(
        &'scope self,
        scope: &'scope Scope<'scope, 'env>,
        listener: Listener,
        mut ahead: Ahead,
        notes: Sender<Note>,
    ) {
        let slots = Slots::new(self.clients.at_once());
        let mut listener = Some(listener);
        let mut id: ConnId = 0;
        while let Some(open) = &listener {
            let a = match self.next_client(&open.socket, &slots) {
                Ok(Some(a)) => a,
                Ok(None) => break,
                Err(error) => {
                    // The listener itself is broken: serve no one new, but let the
                    // connections already relaying finish.
                    let _ = self.failure.set(Error::Accept(error));
                    break;
                }
            };
            let accepted = (SystemTime::now(), Instant::now());
            id += 1;
            if self.clients.in_all() == Some(id) {
                // The last client (the single relay's one A): close the listener.
                listener = None;
            }
            let client = Client {
                id,
                a,
                accepted,
                b: ahead.b.take(),
                dumps: ahead.dumps.take(),
            };
            if client.b.is_none() {
                // Told here, not by the connection's own thread: the connections are
                // numbered in the order they were accepted, and their `Connection
                // from A` lines must come in that order too, which threads started
                // one after the other would not keep.
                let _ = notes.send(Note::Accepted {
                    conn: id,
                    a: peer(&client.a),
                    at: accepted.0,
                });
            }
            let notes = notes.clone();
            let slots = slots.clone();
            scope.spawn(move || {
                self.relay(client, &notes);
                // Its last thread has ended: the slot is free for the next client.
                slots.give_back();
            });
        }
    }

    /// Waits for a free slot, then for a client. `None` once a stop has begun.
    fn next_client(&self, listener: &Socket, slots: &Slots) -> io::Result<Option<Socket>> {
        if !slots.take(self.stopper) {
            return Ok(None);
        }
        let client = self.accept(listener);
        if !matches!(client, Ok(Some(_))) {
            slots.give_back();
        }
        client
    }

    /// Waits for a client. `None` once a stop has begun.
    fn accept(&self, listener: &Socket) -> io::Result<Option<Socket>> {
        loop {
            match net::accept(listener) {
                Ok((a, _)) => return Ok(Some(a)),
                Err(_) if self.stopper.stopping() => return Ok(None),
                Err(e) if !self.clients.retries_accept() => return Err(e),
                // A client that gave up while waiting in the backlog: take the next.
                Err(e) if e.raw_os_error() == Some(libc::ECONNABORTED) => continue,
                Err(e) if out_of_resources(&e) => {
                    progress::error_line(format_args!("{} (trying again)", Error::Accept(e)));
                    if self
                        .stopper
                        .channel()
                        .recv_timeout(RESOURCE_PAUSE)
                        .is_err_and(|e| e.is_disconnected())
                    {
                        return Ok(None);
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// One client: its B, then the relay until both directions are closed.
    fn relay(&self, client: Client, notes: &Sender<Note>) {
        let stopper = self.stopper.child();
        let Client {
            id,
            a,
            accepted,
            b,
            dumps,
        } = client;
        let b = match b {
            Some(b) => Ok(b),
            None => dial_b(self.config, self.tls, &stopper).map_err(Error::Connect),
        };
        // A's side is ready once B's is: its TLS handshake is not begun for a client
        // that cannot be relayed.
        // Shut down with the connection's stopper, so that a signal ends a handshake
        // that a silent client holds up (or B's, when it waits for A's).
        let a = Arc::new(a);
        let mut sockets = vec![a.clone()];
        if let Ok(BSide::AwaitingA(b)) = &b {
            sockets.push(b.clone());
        }
        stopper.start_relay(&sockets);
        let ready = b.and_then(|b| {
            let ready = self.handshakes(&a, b)?;
            net::prepare_relay_socket(ready.b.socket()).map_err(Error::Accept)?;
            Ok(ready)
        });
        if stopper.stopping() {
            self.clients
                .stopped_before_relay(id, accepted.1, notes, &stopper);
            return;
        }
        match ready {
            Ok(Handshaken { a: tls, b, .. }) => {
                let a = match tls {
                    Some(state) => Stream::tls(a, state),
                    None => Stream::plain(a),
                };
                let link = Link {
                    id,
                    a,
                    b,
                    accepted,
                    dumps,
                };
                relay::connection(link, &self.settings, notes, &stopper);
            }
            Err(error) => {
                if let Some(failure) = self.clients.not_relayed(id, &a, error, notes) {
                    let _ = self.failure.set(failure);
                }
            }
        }
    }

    /// Prepares A's socket, and with `-A tls:` does the handshake (and B's, if it
    /// waited for A's); says which version and suite the single relay's sides got.
    fn handshakes(&self, a: &Socket, b: BSide) -> Result<Handshaken, Error> {
        net::prepare_relay_socket(a).map_err(Error::Accept)?;
        let ready = self.tls.handshakes(a, b)?;
        if let Clients::One = self.clients {
            if ready.b_just_now {
                if let Some(summary) = ready.b.tls_summary() {
                    self.say.line(format_args!("TLS with B: {summary}"));
                }
            }
            if let Some(summary) = ready.a.as_ref().and_then(tls_summary) {
                self.say.line(format_args!("TLS with A: {summary}"));
            }
        }
        Ok(ready)
    }
}

/// Errors after which accepting may work again once a connection has ended.
fn out_of_resources(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}
