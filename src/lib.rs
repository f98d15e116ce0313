//! tiburoncin: a TCP man in the middle that shows every byte it relays.
//!
//! It connects to a server B, waits for one client A, and relays both directions
//! through a user-space buffer of its own, printing each chunk as a hexdump with how
//! far the receiving side is behind. See `relay` for the architecture.

pub mod addr;
pub mod buffer;
pub mod capture;
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
pub mod packet;
pub mod pcap_read;
pub mod player;
pub mod reassembly;
pub mod recording;
pub mod relay;
pub mod replay;
pub mod signals;
pub mod stop;

use std::fs::File;
use std::io::{self, BufWriter};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::SystemTime;

use crate::capture::{Capture, Connection};
use crate::config::Config;
use crate::error::Error;
use crate::logger::Logger;
pub use crate::relay::Outcome;
use crate::stop::Stopper;

/// Terminal output is gathered into blocks this big between flushes.
const TERMINAL_BUFFER: usize = 64 * 1024;

/// The capture is written in blocks this big: a few of the largest packets.
const CAPTURE_BUFFER: usize = 256 * 1024;

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
    let capture = match &config.capture {
        Some(file) => Some((create(&file.path)?, file.format)),
        None => None,
    };

    println!("Connecting to B {}...", config.b);
    let (b, b_addr) = net::connect(&config.b_addrs, config.socket_buffers, stopper.channel())
        .map_err(Error::Connect)?;

    let listener = net::listen(&config.a_addrs, config.socket_buffers).map_err(Error::Accept)?;
    let mut shown_a = config.a.clone();
    if shown_a.numeric_port() == Some(0) {
        if let Some(port) = net::local_port(&listener) {
            shown_a.serv = port.to_string();
        }
    }
    println!("Waiting for a connection from A {shown_a}...");
    let (a, a_addr) = net::accept(&listener).map_err(Error::Accept)?;
    let accepted_at = SystemTime::now();
    drop(listener); // one A only, as the original

    let (ab, ba) = config.buffers;
    println!("Allocating buffers: {ab} and {ba} bytes...");
    for socket in [&a, &b] {
        net::prepare_relay_socket(socket).map_err(Error::Accept)?;
    }

    let terminal = BufWriter::with_capacity(TERMINAL_BUFFER, io::stdout());
    let mut logger = Logger::new(terminal, config.colour).quiet(config.quiet);
    if let Some(files) = dumps {
        logger = logger.with_dumps(files);
    }
    if let Some(((name, file), format)) = capture {
        // The OS names the peer of every TCP accept; the fallback is never used.
        let a_addr = a_addr.unwrap_or(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0));
        let connection = Connection::new(a_addr, b_addr, accepted_at);
        let out = BufWriter::with_capacity(CAPTURE_BUFFER, file);
        logger = logger.with_capture(name, Capture::new(out, format, connection));
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
