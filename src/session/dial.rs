//! Dialling B, given up the moment a stop begins.
//!
//! `net::connect` tries B's addresses up to three times, and one try at a B that does
//! not answer lasts seconds. A stop cuts the pauses between tries short, but not a
//! try. So the dial runs on a thread of its own and its caller waits for the dial or
//! the stop, whichever comes first: a signal during `Connecting to B ...` ends the
//! run at once. The thread is left to finish its try and drop its socket (or to go
//! with the process).

use std::io;
use std::thread;

use crossbeam_channel::{bounded, select};

use crate::cli::addr::Address;
use crate::cli::config::Config;
use crate::relay::net;
use crate::relay::stop::Stopper;
use crate::tls::{BSide, TlsSetup};

/// Connects to B (see `net::connect`; a UNIX socket gets one try), and with
/// `tls:` does the handshake, unless it waits for A's (see `TlsSetup::b_side`). Once `stopper` stops, gives up with `Interrupted`: the
/// caller then sees the stop.
pub(crate) fn dial_b(config: &Config, tls: &TlsSetup, stopper: &Stopper) -> io::Result<BSide> {
    let addrs = config.b_addrs.clone();
    let unix = match &config.b {
        Address::Unix(path) => Some(path.clone()),
        _ => None,
    };
    let buffers = config.socket_buffers;
    let stop = stopper.channel().clone();
    let tls = tls.clone();
    let (done, dialled) = bounded(1);
    thread::Builder::new()
        .name("dial B".into())
        .spawn(move || {
            let socket = match unix {
                Some(path) => path.connect(buffers),
                None => net::connect(&addrs, buffers, &stop).map(|(b, _)| b),
            };
            let _ = done.send(socket.and_then(|b| tls.b_side(b)));
        })?;
    select! {
        recv(dialled) -> result => match result {
            Ok(result) => result,
            // Only a panic ends the thread without an answer.
            Err(_) => Err(io::Error::other("dialling B ended without an answer")),
        },
        recv(stopper.channel()) -> _ => Err(io::ErrorKind::Interrupted.into()),
    }
}
