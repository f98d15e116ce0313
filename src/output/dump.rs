//! Dump files (`-o`, `-f PREFIX`): one per direction, the relayed bytes as plain hex.
//!
//! The format is the one `xxd -p -c 16 -r` reads back: lowercase hex pairs, no
//! separators, and a newline after every 16th byte *of the stream* (not of the
//! chunk), so the file is the same however the traffic was split into reads. A
//! partial last line has no newline, exactly as the original tool leaves it.
//!
//! `DumpFiles` is the logger's output that keeps each connection's pair of files: a
//! file that cannot be made or written costs that file, not the relay nor the other
//! files.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

use crate::error::Error;
use crate::output::hexdump::HEX;
use crate::output::progress;
use crate::output::sink::{Conn, ConnMap, Failures, Output, Sink};
use crate::relay::event::{Closing, Event, Opening};
use crate::relay::kernel_queues::Queues;

/// Where the dump files go, if anywhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DumpPaths {
    pub a_to_b: PathBuf,
    pub b_to_a: PathBuf,
    /// `-f`'s prefix (empty for `-o`), from which `-k` makes one pair per connection.
    prefix: PathBuf,
}

impl DumpPaths {
    pub fn contains(&self, path: &std::path::Path) -> bool {
        self.a_to_b == path || self.b_to_a == path
    }

    pub fn with_prefix(prefix: PathBuf) -> DumpPaths {
        let named = |name: &str| {
            let mut path = prefix.clone().into_os_string();
            path.push(name);
            PathBuf::from(path)
        };
        DumpPaths {
            a_to_b: named("AtoB.dump"),
            b_to_a: named("BtoA.dump"),
            prefix,
        }
    }

    /// `-k`: connection `n`'s files, `<prefix>n-AtoB.dump` and `<prefix>n-BtoA.dump`.
    pub fn for_connection(&self, n: u64) -> DumpPaths {
        let mut prefix = self.prefix.clone().into_os_string();
        prefix.push(format!("{n}-"));
        DumpPaths::with_prefix(PathBuf::from(prefix))
    }
}

/// Writes one direction's bytes as a hex dump into `W`.
pub struct DumpWriter<W: Write> {
    out: W,
    offset: u64,
    line: Vec<u8>,
}

impl<W: Write> DumpWriter<W> {
    pub fn new(out: W) -> Self {
        DumpWriter {
            out,
            offset: 0,
            line: Vec::with_capacity(64 * 1024),
        }
    }

    /// Appends `bytes`, the next bytes of the stream.
    pub fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.line.clear();
        for &b in bytes {
            self.line.extend_from_slice(&HEX[b as usize]);
            if self.offset % 16 == 15 {
                self.line.push(b'\n');
            }
            self.offset += 1;
        }
        self.out.write_all(&self.line)
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// A dump file being written.
type DumpFile = Sink<DumpWriter<BufWriter<File>>>;

/// `-o`, `-f`: the output that writes every connection's dump files.
#[derive(Default)]
pub(crate) struct DumpFiles {
    /// The connections bring their files, made before they connected (see
    /// `Opening::dumps`).
    pub(crate) brought: bool,
    /// `-k`: the files are made here as each connection opens, named after its
    /// number (see `DumpPaths::for_connection`).
    pub(crate) per_connection: Option<DumpPaths>,
    /// Each open connection's files, A->B and B->A.
    open: ConnMap<[DumpFile; 2]>,
}

impl Output for DumpFiles {
    fn watches_chunks(&self) -> bool {
        self.brought || self.per_connection.is_some()
    }

    fn open(&mut self, conn: &Conn, opening: &mut Opening, failures: &mut Failures) {
        let made = match (opening.dumps.take(), &self.per_connection) {
            (Some(files), _) => files.map(Ok),
            (None, Some(paths)) => {
                let paths = paths.for_connection(conn.id);
                [paths.a_to_b, paths.b_to_a].map(|path| match File::create(&path) {
                    Ok(file) => Ok((path.display().to_string(), file)),
                    Err(source) => Err(Error::CreateOutput { path, source }),
                })
            }
            (None, None) => return,
        };
        let files = made.map(|made| match made {
            Ok((name, file)) => Sink::new(
                name,
                DumpWriter::new(BufWriter::with_capacity(64 * 1024, file)),
            ),
            // A file that cannot be created costs that file, not the relay.
            Err(error) => {
                progress::error_line(format_args!("{}{error}", conn.label));
                failures.push(error);
                Sink::failed()
            }
        });
        self.open.insert(conn.id, files);
    }

    fn event(&mut self, conn: &Conn, event: &Event, _: Option<Queues>, failures: &mut Failures) {
        if let Event::Read { dir, chunk, .. } = event {
            if let Some(files) = self.open.get_mut(&conn.id) {
                files[dir.index()].apply(failures, |d| d.write(chunk));
            }
        }
    }

    fn close(&mut self, conn: &Conn, _: &Closing, failures: &mut Failures) {
        for file in self.open.remove(&conn.id).iter_mut().flatten() {
            file.apply(failures, |d| d.flush());
        }
    }

    fn flush(&mut self, failures: &mut Failures) {
        for file in self.open.values_mut().flatten() {
            file.apply(failures, |d| d.flush());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dump(chunks: &[&[u8]]) -> String {
        let mut out = Vec::new();
        let mut dump = DumpWriter::new(&mut out);
        for chunk in chunks {
            dump.write(chunk).unwrap();
        }
        drop(dump);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_partial_line_has_no_newline() {
        assert_eq!(dump(&[b"hello"]), "68656c6c6f");
    }

    #[test]
    fn lines_follow_the_stream_not_the_chunks() {
        let bytes: Vec<u8> = (0..40).collect();
        let whole = dump(&[&bytes]);
        let split = dump(&[&bytes[..3], &bytes[3..17], &bytes[17..]]);
        assert_eq!(whole, split);
        assert_eq!(
            whole,
            "000102030405060708090a0b0c0d0e0f\n\
             101112131415161718191a1b1c1d1e1f\n\
             2021222324252627"
        );
    }

    #[test]
    fn a_full_last_line_ends_with_a_newline() {
        assert!(dump(&[&[0xff; 32]]).ends_with("ffff\n"));
    }
}
