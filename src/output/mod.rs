//! The outputs: everything a person or a program gets to see of a session.
//!
//! Data enters as the relay's notes (see `relay::event`), on one channel, into one
//! thread: the `logger`, which owns every output and feeds each note to each of
//! them: the terminal (`printer`, with `hexdump` and `timestamps`), the dump files
//! (`dump`), the JSON events (`json`) and the capture (`capture`, through the
//! packet files of the `capture` folder). It leaves as bytes in those files and
//! streams, and as a `Report` of how the run went.

pub mod capture;
pub mod dump;
pub mod hexdump;
pub mod json;
pub mod logger;
pub(crate) mod printer;
pub mod sink;
pub mod timestamps;
