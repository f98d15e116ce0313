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
use socket2::Socket;

use crate::cli::config::Config;
use crate::relay::net;
use crate::relay::stop::Stopper;

/// Connects to B (see `net::connect`). Once `stopper` stops, gives up with
/// `Interrupted`: the caller then sees the stop.
pub(crate) fn dial_b(config: &Config, stopper: &Stopper) -> io::Result<Socket> {
    let addrs = config.b_addrs.clone();
    let buffers = config.socket_buffers;
    let stop = stopper.channel().clone();
    let (done, dialled) = bounded(1);
    thread::Builder::new()
        .name("dial B".into())
        .spawn(move || {
            let _ = done.send(net::connect(&addrs, buffers, &stop));
        })?;
    select! {
        recv(dialled) -> result => match result {
            Ok(result) => result.map(|(b, _)| b),
            // Only a panic ends the thread without an answer.
            Err(_) => Err(io::Error::other("dialling B ended without an answer")),
        },
        recv(stopper.channel()) -> _ => Err(io::ErrorKind::Interrupted.into()),
    }
}
