//! The outputs: everything a person or a program gets to see of a session.
//!
//! Data enters as the relay's notes (see `relay::event`), on one channel, into one
//! thread: the `logger`, which counts each note into its bookkeeping and tells it to
//! every output (each an `Output`, see `sink`): the `terminal` (through `printer`,
//! with `hexdump` and `timestamps`), the dump files (`dump`), the JSON events
//! (`json`) and the capture (`capture_streams`, each connection's stream written by
//! `capture` through the packet files of the `capture` folder). It leaves as bytes
//! in those files and streams, and as a `Report` of how the run went. Beside the
//! logger, `progress` draws `-q`'s live line from the relay's counts.

pub mod capture;
pub(crate) mod capture_streams;
pub mod dump;
pub mod hexdump;
pub mod json;
pub mod logger;
pub(crate) mod printer;
pub mod progress;
pub mod sink;
pub(crate) mod terminal;
pub mod timestamps;
