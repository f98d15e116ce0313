//! A pcap file's records, read into shared chunks rather than through pcap-file's
//! reader.
//!
//! pcap-file's reader parses each record in a buffer it reuses for the next, so a
//! payload that outlives its record must be copied out of it; a replay playing a bulk
//! capture spent most of its instructions on that copy. Here records are read into a
//! `Chunk` that the payloads cut from it share (pcap-file's parser still reads the
//! headers), and the chunk is reused once no payload holds it any more, as when a
//! listing only counts bytes or a replay has sent what it read.

use std::io::{self, ErrorKind, Read};
use std::ops::Range;
use std::sync::Arc;

use pcap_file::PcapError;
use pcap_file::pcap::{PcapHeader, PcapParser};

use crate::capture::shared::Chunk;

/// The size of a chunk: room for many records, so that the part of a record that
/// must move to the start of the chunk (it did not fit at its end) is little next to
/// the bytes read in place. 2 MiB made that move 1.5 M instructions of a 64 MiB
/// listing's 4.5 M; 8 MiB is what pcap-file's reader used.
const CHUNK: usize = 8 << 20;

/// The largest chunk, so the largest record taken (pcap-file's reader took records
/// up to its buffer's 8 MB): a longer one is a corrupted length, and is reported as a
/// file cut short.
const LARGEST: usize = CHUNK;

/// One record: its timestamp as written, and where its packet bytes are in `chunk`.
pub struct Record {
    pub ts_sec: u32,
    pub ts_frac: u32,
    pub data: Range<usize>,
}

/// The records of a pcap file, in order.
pub struct PcapRecords<R> {
    parser: PcapParser,
    buffer: ChunkBuffer<R>,
}

/// The file read into a chunk: the bytes of `chunk` in `pos..len` are read and not
/// parsed yet.
struct ChunkBuffer<R> {
    input: R,
    chunk: Chunk,
    pos: usize,
    len: usize,
}

impl<R: Read> PcapRecords<R> {
    /// Reads the file header from `input`.
    pub fn new(input: R) -> Result<PcapRecords<R>, PcapError> {
        let mut buffer = ChunkBuffer {
            input,
            chunk: Arc::new(vec![0; CHUNK]),
            pos: 0,
            len: 0,
        };
        loop {
            match PcapParser::new(buffer.unparsed()) {
                Ok((rest, parser)) => {
                    buffer.pos = buffer.len - rest.len();
                    return Ok(PcapRecords { parser, buffer });
                }
                Err(PcapError::IncompleteBuffer) => buffer.read_more()?,
                Err(e) => return Err(e),
            }
        }
    }

    pub fn header(&self) -> PcapHeader {
        self.parser.header()
    }

    /// The buffer the last record returned is in.
    pub fn chunk(&self) -> &Chunk {
        &self.buffer.chunk
    }

    /// The next record; `None` at the end of the file.
    pub fn next_record(&mut self) -> Option<Result<Record, PcapError>> {
        loop {
            let buffer = &mut self.buffer;
            let found = self
                .parser
                .next_raw_packet(buffer.unparsed())
                .map(|(after, raw)| {
                    let start = raw.data.as_ptr() as usize - buffer.chunk.as_ptr() as usize;
                    let record = Record {
                        ts_sec: raw.ts_sec,
                        ts_frac: raw.ts_frac,
                        data: start..start + raw.data.len(),
                    };
                    (buffer.len - after.len(), record)
                });
            match found {
                Ok((pos, record)) => {
                    buffer.pos = pos;
                    return Some(Ok(record));
                }
                Err(PcapError::IncompleteBuffer) => {
                    let between_records = buffer.pos == buffer.len;
                    match buffer.read_more() {
                        Ok(()) => {}
                        Err(PcapError::IoError(e))
                            if between_records && e.kind() == ErrorKind::UnexpectedEof =>
                        {
                            return None;
                        }
                        Err(e) => return Some(Err(e)),
                    }
                }
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

impl<R: Read> ChunkBuffer<R> {
    fn unparsed(&self) -> &[u8] {
        &self.chunk[self.pos..self.len]
    }

    /// Reads more of the file after the bytes not parsed yet: an unexpected end if
    /// there is none, or if a record would be longer than `LARGEST`.
    fn read_more(&mut self) -> Result<(), PcapError> {
        if self.len == self.chunk.len() || Arc::get_mut(&mut self.chunk).is_none() {
            self.make_room()?;
        }
        let Some(buf) = Arc::get_mut(&mut self.chunk) else {
            unreachable!("make_room leaves the chunk unshared");
        };
        loop {
            match self.input.read(&mut buf[self.len..]) {
                Ok(0) => return Err(PcapError::IoError(ErrorKind::UnexpectedEof.into())),
                Ok(n) => {
                    self.len += n;
                    return Ok(());
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(PcapError::IoError(e)),
            }
        }
    }

    /// Moves the bytes not parsed yet to the start of a chunk with room after them:
    /// this one if no payload holds it, else a new one; a larger one if they fill it.
    fn make_room(&mut self) -> Result<(), PcapError> {
        let kept = self.len - self.pos;
        let size = if kept == self.chunk.len() {
            kept * 2
        } else {
            self.chunk.len()
        };
        if size > LARGEST {
            return Err(PcapError::IoError(io::Error::from(
                ErrorKind::UnexpectedEof,
            )));
        }
        let (pos, len) = (self.pos, self.len);
        match Arc::get_mut(&mut self.chunk) {
            Some(buf) => {
                buf.copy_within(pos..len, 0);
                buf.resize(size, 0);
            }
            None => {
                let mut fresh = vec![0; size];
                fresh[..kept].copy_from_slice(&self.chunk[pos..len]);
                self.chunk = Arc::new(fresh);
            }
        }
        self.pos = 0;
        self.len = kept;
        Ok(())
    }
}
