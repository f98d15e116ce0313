//! The logger's outputs, each of which may fail on its own.
//!
//! A terminal that went away or a full disk must not stop the relay: a `Sink`
//! reports its first failure once, on stderr, and is left alone afterwards, while
//! the logger goes on feeding the others. The capture file is a sink too, owned by
//! the one connection there is, or shared by every connection's stream with `-k`.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::sync::{Arc, Mutex, PoisonError};

use crate::error::Error;

/// An output that may fail; after the first failure it is dropped.
pub(crate) struct Sink<T> {
    pub(crate) what: String,
    pub(crate) out: Option<T>,
}

impl<T> Sink<T> {
    pub(crate) fn new(what: impl Into<String>, out: T) -> Self {
        Sink {
            what: what.into(),
            out: Some(out),
        }
    }

    pub(crate) fn apply(
        &mut self,
        failures: &mut Vec<Error>,
        op: impl FnOnce(&mut T) -> io::Result<()>,
    ) {
        if let Some(out) = self.out.as_mut() {
            if let Err(source) = op(out) {
                output_failed(self.what.clone(), source, failures);
                self.out = None;
            }
        }
    }
}

/// Reports an output that failed, once, on stderr, and keeps it for the report.
pub(crate) fn output_failed(what: String, source: io::Error, failures: &mut Vec<Error>) {
    let error = Error::Output { what, source };
    eprintln!("{error}");
    failures.push(error);
}

/// Where a connection's capture stream writes.
pub(crate) enum CaptureOut {
    /// Without `-k` there is one connection, which owns the file: no lock per write.
    Own(BufWriter<File>),
    /// With `-k` the connections share it.
    Shared(SharedFile),
}

impl Write for CaptureOut {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        match self {
            CaptureOut::Own(out) => out.write(bytes),
            CaptureOut::Shared(out) => out.write(bytes),
        }
    }

    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            CaptureOut::Own(out) => out.write_all(bytes),
            CaptureOut::Shared(out) => out.write_all(bytes),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            CaptureOut::Own(out) => out.flush(),
            CaptureOut::Shared(out) => out.flush(),
        }
    }
}

/// One buffered file written by several owners, all on the logger's thread: the
/// lock is never contended, it only makes the sharing safe to hand over to it.
#[derive(Clone)]
pub(crate) struct SharedFile(pub(crate) Arc<Mutex<BufWriter<File>>>);

impl Write for SharedFile {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .write(bytes)
    }

    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .write_all(bytes)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .flush()
    }
}
