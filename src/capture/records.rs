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

/// The file read into a chunk: the chunk holds the bytes read (its length; the rest of
/// its capacity is room for more), those from `pos` on not parsed yet.
struct ChunkBuffer<R> {
    input: R,
    chunk: Chunk,
    pos: usize,
}

impl<R: Read> PcapRecords<R> {
    /// Reads the file header: `start`, its first bytes already read, then `input`.
    pub fn new(start: &[u8], input: R) -> Result<PcapRecords<R>, PcapError> {
        Self::with_chunks(start, input, CHUNK)
    }

    /// As `new`, with chunks of `size` bytes (tests make records cross chunks).
    fn with_chunks(start: &[u8], input: R, size: usize) -> Result<PcapRecords<R>, PcapError> {
        let mut first = Vec::with_capacity(size.max(start.len()));
        first.extend_from_slice(start);
        let mut buffer = ChunkBuffer {
            input,
            chunk: Arc::new(first),
            pos: 0,
        };
        loop {
            match PcapParser::new(buffer.unparsed()) {
                Ok((rest, parser)) => {
                    buffer.pos = buffer.chunk.len() - rest.len();
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
                    (buffer.chunk.len() - after.len(), record)
                });
            match found {
                Ok((pos, record)) => {
                    buffer.pos = pos;
                    return Some(Ok(record));
                }
                Err(PcapError::IncompleteBuffer) => {
                    let between_records = buffer.unparsed().is_empty();
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
        &self.chunk[self.pos..]
    }

    /// Reads more of the file after the bytes not parsed yet, filling the chunk's room
    /// (`read_to_end` reads into it without zeroing it first): an unexpected end if
    /// there is nothing more, or if a record would be longer than `LARGEST`.
    fn read_more(&mut self) -> Result<(), PcapError> {
        if self.chunk.len() == self.chunk.capacity() || Arc::get_mut(&mut self.chunk).is_none() {
            self.make_room()?;
        }
        let Some(buf) = Arc::get_mut(&mut self.chunk) else {
            unreachable!("make_room leaves the chunk unshared");
        };
        let room = (buf.capacity() - buf.len()) as u64;
        match (&mut self.input).take(room).read_to_end(buf) {
            Ok(0) => Err(PcapError::IoError(ErrorKind::UnexpectedEof.into())),
            Ok(_) => Ok(()),
            Err(e) => Err(PcapError::IoError(e)),
        }
    }

    /// Moves the bytes not parsed yet to the start of a chunk with room after them:
    /// this one if no payload holds it, else a new one; a larger one if they fill it.
    fn make_room(&mut self) -> Result<(), PcapError> {
        let kept = self.chunk.len() - self.pos;
        let size = if kept == self.chunk.capacity() {
            kept * 2
        } else {
            self.chunk.capacity()
        };
        if size > LARGEST {
            return Err(PcapError::IoError(io::Error::from(
                ErrorKind::UnexpectedEof,
            )));
        }
        let pos = self.pos;
        match Arc::get_mut(&mut self.chunk) {
            Some(buf) => {
                buf.copy_within(pos.., 0);
                buf.truncate(kept);
                buf.reserve_exact(size - kept);
            }
            None => {
                let mut fresh = Vec::with_capacity(size);
                fresh.extend_from_slice(&self.chunk[pos..]);
                self.chunk = Arc::new(fresh);
            }
        }
        self.pos = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pcap_file::pcap::{PcapPacket, PcapWriter};
    use std::time::Duration;

    /// A pcap of records whose lengths go from 0 to 299 bytes, each filled with its
    /// own number.
    fn capture() -> (Vec<u8>, Vec<Vec<u8>>) {
        let mut writer = PcapWriter::new(Vec::new()).unwrap();
        let datas: Vec<Vec<u8>> = (0..300).map(|n| vec![n as u8; (n * 7) % 300]).collect();
        for (n, data) in datas.iter().enumerate() {
            let time = Duration::from_secs(n as u64);
            writer
                .write_packet(&PcapPacket::new(time, data.len() as u32, data))
                .unwrap();
        }
        (writer.into_writer(), datas)
    }

    /// Every record, read in chunks of `size`; `hold` keeps every chunk seen, as
    /// payloads still waiting to be played would.
    fn read(file: &[u8], size: usize, hold: bool) -> Result<Vec<Vec<u8>>, PcapError> {
        let mut records = PcapRecords::with_chunks(&file[..4], &file[4..], size)?;
        let mut held = Vec::new();
        let mut out = Vec::new();
        while let Some(record) = records.next_record() {
            let record = record?;
            assert_eq!(u64::from(record.ts_sec), out.len() as u64);
            out.push(records.chunk()[record.data].to_vec());
            if hold {
                held.push(Arc::clone(records.chunk()));
            }
        }
        Ok(out)
    }

    #[test]
    fn records_that_cross_chunks_are_read_whole() {
        let (file, datas) = capture();
        for size in [24, 64, 301, 4096, CHUNK] {
            for hold in [false, true] {
                let got = read(&file, size, hold).unwrap();
                assert!(got == datas, "chunks of {size}, holding them: {hold}");
            }
        }
    }

    #[test]
    fn a_chunk_no_payload_holds_is_reused() {
        let (file, _) = capture();
        let mut records = PcapRecords::with_chunks(&file[..4], &file[4..], 1024).unwrap();
        let first = Arc::as_ptr(records.chunk());
        while let Some(record) = records.next_record() {
            record.unwrap();
        }
        assert_eq!(Arc::as_ptr(records.chunk()), first);
    }

    #[test]
    fn a_record_cut_short_is_an_unexpected_end() {
        let (file, _) = capture();
        for size in [64, CHUNK] {
            let error = read(&file[..file.len() - 1], size, false).unwrap_err();
            assert!(
                matches!(&error, PcapError::IoError(e) if e.kind() == ErrorKind::UnexpectedEof),
                "{error:?}"
            );
        }
    }

    #[test]
    fn a_record_longer_than_the_largest_chunk_is_an_unexpected_end() {
        let (mut file, _) = capture();
        // The first record's incl_len (little-endian, after the 24-byte header and
        // two timestamps).
        file[32..36].copy_from_slice(&u32::MAX.to_le_bytes());
        // Bytes enough for it follow: the chunk grows to its largest, and no more.
        let endless = (&file[4..]).chain(io::repeat(0));
        let mut records = PcapRecords::with_chunks(&file[..4], endless, 64).unwrap();
        let error = records.next_record().unwrap().err().unwrap();
        assert_eq!(records.chunk().capacity(), LARGEST);
        assert!(
            matches!(&error, PcapError::IoError(e) if e.kind() == ErrorKind::UnexpectedEof),
            "{error:?}"
        );
    }
}
