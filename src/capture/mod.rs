//! Capture files: packets laid out byte by byte, written as pcap or pcapng, and
//! read back.
//!
//! Data enters as TCP segments to store (from `output::capture`, which turns the
//! relay's events into a TCP conversation) and leaves as file bytes; or enters as a
//! capture file (any that tshark reads, within reason: tunnels and IP fragments
//! included) and leaves as TCP segments with their addresses, flags and payloads
//! (for `replay`), with a count of the packets that were not used and why. Nothing
//! here knows of relays or sessions.

pub mod decode;
pub mod defrag;
pub mod file;
pub mod gather;
pub mod packet;
pub mod read;
pub mod records;
pub mod shared;

pub use file::Format;
