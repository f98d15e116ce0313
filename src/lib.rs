//! tiburoncin: a TCP man in the middle that shows every byte it relays.
//!
//! It connects to a server B, waits for one client A, and relays both directions
//! through a user-space buffer of its own, printing each chunk as a hexdump with how
//! far the receiving side is behind. See `relay` for the architecture.

pub mod addr;
pub mod buffer;
pub mod cli;
pub mod config;
pub mod decode;
pub mod difference;
pub mod dump;
pub mod error;
pub mod event;
pub mod hexdump;
pub mod logger;
pub mod net;
pub mod pcap_read;
pub mod player;
pub mod reassembly;
pub mod recording;
pub mod relay;
pub mod replay;
pub mod signals;
pub mod stop;
pub mod timestamps;

use std::fs::File;
use std::io::{self, BufWriter};
use std::sync::Arc;
use std::time::SystemTime;

use crate::config::Config;
use crate::error::Error;
use crate::logger::Logger;
pub use crate::relay::Outcome;
use crate::stop::Stopper;

/// Terminal output is gathered into blocks this big between flushes.
const TERMINAL_BUFFER: usize = 64 * 1024;

/// Runs the relay the configuration describes, in the original's order: open the
/// outputs, connect to B, wait for A, relay.
pub fn run(config: Config) -> Result<Outcome, Error> {
    let stopper = Arc::new(Stopper::default());
    signals::install(stopper.clone()).map_err(|source| Error::Output {
        what: "signal handlers".into(),
        source,
    })?;

    // Outputs first: a path that cannot be written is reported before any connection.
    let dumps = match &config.dumps {
        Some(paths) => Some([create(&paths.a_to_b)?, create(&paths.b_to_a)?]),
        None => None,
    };

    println!("Connecting to B {}...", config.b);
    let b = net::connect(&config.b_addrs, config.socket_buffers, stopper.channel())
        .map_err(Error::Connect)?;

    let listener = net::listen(&config.a_addrs, config.socket_buffers).map_err(Error::Accept)?;
    let mut shown_a = config.a.clone();
    if shown_a.numeric_port() == Some(0) {
        if let Some(port) = net::local_port(&listener) {
            shown_a.serv = port.to_string();
        }
    }
    println!("Waiting for a connection from A {shown_a}...");
    let a = net::accept(&listener).map_err(Error::Accept)?;
    let accepted_at = SystemTime::now();
    drop(listener); // one A only, as the original

    let (ab, ba) = config.buffers;
    println!("Allocating buffers: {ab} and {ba} bytes...");
    for socket in [&a, &b] {
        net::prepare_relay_socket(socket).map_err(Error::Accept)?;
    }

    let terminal = BufWriter::with_capacity(TERMINAL_BUFFER, io::stdout());
    let mut logger = Logger::new(terminal, config.colour)
        .quiet(config.quiet)
        .timestamps(config.timestamps)
        .accepted_at(accepted_at);
    if let Some(files) = dumps {
        logger = logger.with_dumps(files);
    }
    Ok(relay::run(a, b, config.buffers, logger, &stopper))
}

fn create(path: &std::path::Path) -> Result<(String, File), Error> {
    let file = File::create(path).map_err(|source| Error::CreateOutput {
        path: path.to_path_buf(),
        source,
    })?;
    Ok((path.display().to_string(), file))
}
