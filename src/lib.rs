//! tiburoncin: a TCP man in the middle that shows every byte it relays.
//!
//! It connects to a server B, waits for a client A, and relays both directions
//! through a user-space buffer of its own, printing each chunk as a hexdump with how
//! far the receiving side is behind; it saves the session as a capture, and replays
//! a recorded one. docs/ARCHITECTURE.md tells how the parts fit; each folder's
//! `mod.rs` says what it does and how data enters and leaves it. From the top down
//! (a folder uses only those below it):
//!
//! - `demo`: the relay between built-in peers, narrated (`tiburoncin demo`);
//! - `session`: running the relay for one client or many, and stopping it;
//! - `replay`: playing one side of a recorded connection;
//! - `tls`: the TLS settings and handshakes of `tls:` sides, for the relay and the
//!   replay;
//! - `cli`: the command line, checked and resolved into a configuration;
//! - `output`: the logger and everything it writes;
//! - `relay`: the threads that move the bytes of one connection;
//! - `capture`: packets, and the pcap and pcapng files that hold them;
//! - `error`, `direction` and `words`: the words they all share.

pub mod capture;
pub mod cli;
pub mod demo;
pub mod direction;
pub mod error;
pub mod output;
pub mod relay;
pub mod replay;
pub mod session;
pub mod tls;
pub mod words;

pub use session::{Outcome, run};
