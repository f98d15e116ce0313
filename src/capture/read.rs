//! Reading a capture file packet by packet: pcap or pcapng, whoever wrote it.
//!
//! Replay must work on captures from tcpdump, dumpcap and Wireshark as well as on our
//! own, and on multi-gigabyte ones, so the file is read as a stream (pcap-file keeps
//! one fixed-size buffer) and each packet is turned into a TCP segment and dropped
//! before the next is read. The format is told by the file's first four bytes, not by
//! its name.
//!
//! Every way a file can be wrong — empty, not a capture, cut short mid-packet, a
//! nonsensical field — is an `Error::Capture` naming the file and the packet, never a
//! panic: the bytes come from outside.

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::Duration;

use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption;
use pcap_file::pcapng::{Block, PcapNgReader};
use pcap_file::{PcapError, TsResolution};

use crate::capture::decode::{self, CapturedSegment, Decoder, Payload, Skipped};
use crate::capture::records::PcapRecords;
use crate::capture::shared::Chunk;
use crate::error::Error;

const PCAP_MAGICS: [[u8; 4]; 4] = [
    [0xa1, 0xb2, 0xc3, 0xd4],
    [0xd4, 0xc3, 0xb2, 0xa1],
    [0xa1, 0xb2, 0x3c, 0x4d],
    [0x4d, 0x3c, 0xb2, 0xa1],
];
const PCAPNG_MAGIC: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];

/// The magic already read, then the rest of the input. Boxed so that a capture can
/// come from anything readable: a file for the command, bytes in memory for the fuzz
/// tests (which feed millions of inputs and must not go through the file system).
type Input = io::Chain<io::Cursor<[u8; 4]>, Box<dyn Read + Send>>;

/// The file's reader, by format, with what it needs to date and decode packets.
enum FormatReader {
    Pcap {
        reader: PcapRecords<Box<dyn Read + Send>>,
        link_type: u32,
        nanos: bool,
    },
    PcapNg {
        reader: PcapNgReader<Input>,
        /// The current section's interfaces, as its Interface Description Blocks said.
        interfaces: Vec<Interface>,
    },
}

/// What a pcapng packet needs from the interface it was captured on.
#[derive(Debug, Clone, Copy)]
struct Interface {
    link_type: u32,
    /// `if_tsresol`: units per second of this interface's timestamps.
    units_per_second: u128,
    /// `if_tsoffset`: seconds to add to every timestamp.
    offset_secs: u64,
}

/// A capture being read, one TCP segment at a time.
pub struct CaptureReader {
    path: PathBuf,
    format: FormatReader,
    /// Packets read so far (of any kind): the number of the packet being decoded, as
    /// Wireshark numbers frames.
    packets: u64,
    decoder: Decoder,
    ended: bool,
}

impl CaptureReader {
    /// Opens `path` and reads its file header.
    pub fn open(path: &Path) -> Result<CaptureReader, Error> {
        let file = File::open(path).map_err(|e| Error::Capture {
            path: path.to_path_buf(),
            reason: crate::error::os_text(&e),
        })?;
        Self::from_reader(path, Box::new(file))
    }

    /// Reads a capture from `input`, reading its file header now; `path` is the name
    /// its errors give.
    pub fn from_reader(
        path: &Path,
        mut input: Box<dyn Read + Send>,
    ) -> Result<CaptureReader, Error> {
        let fail = |reason: String| Error::Capture {
            path: path.to_path_buf(),
            reason,
        };
        let mut magic = [0u8; 4];
        let got =
            read_up_to(&mut input, &mut magic).map_err(|e| fail(crate::error::os_text(&e)))?;
        if got == 0 {
            return Err(fail("the file is empty, not a capture".into()));
        }
        if got < magic.len() {
            return Err(fail("too short to be a pcap or pcapng file".into()));
        }
        let format = if PCAP_MAGICS.contains(&magic) {
            let reader = PcapRecords::new(&magic, input).map_err(|e| fail(header_problem(e)))?;
            let header = reader.header();
            let link_type = u32::from(header.datalink);
            if !decode::supported(link_type) {
                return Err(fail(unsupported_link(link_type)));
            }
            FormatReader::Pcap {
                reader,
                link_type,
                nanos: header.ts_resolution == TsResolution::NanoSecond,
            }
        } else if magic == PCAPNG_MAGIC {
            let input = io::Cursor::new(magic).chain(input);
            let reader = PcapNgReader::new(input).map_err(|e| fail(header_problem(e)))?;
            FormatReader::PcapNg {
                reader,
                interfaces: Vec::new(),
            }
        } else {
            return Err(fail("not a pcap or pcapng file".into()));
        };
        Ok(CaptureReader {
            path: path.to_path_buf(),
            format,
            packets: 0,
            decoder: Decoder::new(),
            ended: false,
        })
    }

    /// The next TCP segment in the file, skipping every other packet (and counting
    /// it, see `skipped`); `None` at the end.
    pub fn next_segment(&mut self) -> Result<Option<CapturedSegment>, Error> {
        self.next_segment_with()
    }

    /// As `next_segment`, keeping of each payload what `P` keeps (its bytes, or only
    /// its length).
    pub fn next_segment_with<P: Payload>(&mut self) -> Result<Option<CapturedSegment<P>>, Error> {
        loop {
            if self.ended {
                return Ok(None);
            }
            let packet = match &mut self.format {
                FormatReader::Pcap {
                    reader,
                    link_type,
                    nanos,
                } => match reader.next_record() {
                    None => Ok(None),
                    Some(Err(e)) => Err(e),
                    Some(Ok(record)) => {
                        let frac = if *nanos {
                            u64::from(record.ts_frac)
                        } else {
                            u64::from(record.ts_frac) * 1000
                        };
                        let time =
                            Duration::from_secs(record.ts_sec.into()) + Duration::from_nanos(frac);
                        let chunk = reader.chunk();
                        let frame = Frame {
                            link_type: *link_type,
                            data: Cow::Borrowed(&chunk[record.data]),
                            chunk: Some(chunk),
                            time,
                        };
                        Ok(Some(Some(Packet::Frame(frame))))
                    }
                },
                FormatReader::PcapNg { reader, interfaces } => match reader.next_block() {
                    None => Ok(None),
                    Some(Err(e)) => Err(e),
                    Some(Ok(block)) => Ok(Some(pcapng_block(block, interfaces))),
                },
            };
            match packet {
                Err(e) => return Err(self.packet_problem(e)),
                Ok(None) => {
                    self.ended = true;
                    self.decoder.finish();
                }
                // A block that is no packet.
                Ok(Some(None)) => {}
                Ok(Some(Some(Packet::Frame(frame)))) => {
                    self.packets += 1;
                    let decoded = self.decoder.decode_in(
                        frame.link_type,
                        &frame.data,
                        frame.chunk,
                        frame.time,
                    );
                    if decoded.is_some() {
                        return Ok(decoded);
                    }
                }
                Ok(Some(Some(Packet::Unusable))) => {
                    self.packets += 1;
                    self.decoder.malformed();
                }
            }
        }
    }

    /// The packets read so far, of any kind.
    pub fn packets(&self) -> u64 {
        self.packets
    }

    /// The packets not used so far, by reason: all of them once `next_segment` has
    /// returned `None`.
    pub fn skipped(&self) -> Skipped {
        self.decoder.skipped()
    }

    fn packet_problem(&self, error: PcapError) -> Error {
        let n = self.packets + 1;
        let reason = match error {
            PcapError::IoError(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                format!("the file is cut short in packet {n}")
            }
            PcapError::IoError(e) => format!("packet {n}: {}", crate::error::os_text(&e)),
            other => format!("packet {n} is malformed ({other})"),
        };
        Error::Capture {
            path: self.path.clone(),
            reason,
        }
    }
}

/// A packet as read: a frame to decode, or one that cannot be (it names an interface
/// that was never described).
enum Packet<'a> {
    Frame(Frame<'a>),
    Unusable,
}

struct Frame<'a> {
    link_type: u32,
    data: Cow<'a, [u8]>,
    /// The buffer `data` is part of, when its payload may share it (a pcap record).
    chunk: Option<&'a Chunk>,
    time: Duration,
}

/// Handles one pcapng block: interface descriptions are remembered, packets returned.
fn pcapng_block<'a>(block: Block<'a>, interfaces: &mut Vec<Interface>) -> Option<Packet<'a>> {
    let (interface, raw_time, data) = match block {
        Block::SectionHeader(_) => {
            // A new section starts a new list of interfaces.
            interfaces.clear();
            return None;
        }
        Block::InterfaceDescription(idb) => {
            interfaces.push(interface(u32::from(idb.linktype), &idb.options));
            return None;
        }
        Block::EnhancedPacket(epb) => {
            // pcap-file hands the raw timestamp over as if it were nanoseconds; it is
            // in the interface's units (microseconds unless `if_tsresol` says other).
            let raw = u64::try_from(epb.timestamp.as_nanos()).unwrap_or(u64::MAX);
            (epb.interface_id as usize, raw, epb.data)
        }
        Block::Packet(pb) => (usize::from(pb.interface_id), pb.timestamp, pb.data),
        // A simple packet has no timestamp and belongs to the first interface.
        Block::SimplePacket(spb) => (0, 0, spb.data),
        _ => return None,
    };
    let Some(interface) = interfaces.get(interface) else {
        return Some(Packet::Unusable);
    };
    let nanos = u128::from(raw_time) * 1_000_000_000 / interface.units_per_second;
    let time = Duration::from_secs(interface.offset_secs).saturating_add(Duration::from_nanos(
        u64::try_from(nanos).unwrap_or(u64::MAX),
    ));
    Some(Packet::Frame(Frame {
        link_type: interface.link_type,
        data,
        chunk: None,
        time,
    }))
}

fn interface(link_type: u32, options: &[InterfaceDescriptionOption]) -> Interface {
    let mut units_per_second = 1_000_000u128;
    let mut offset_secs = 0;
    for option in options {
        match *option {
            // High bit clear: a negative power of 10; set: a negative power of 2.
            InterfaceDescriptionOption::IfTsResol(resol) => {
                let exponent = u32::from(resol & 0x7f);
                let units = if resol & 0x80 == 0 {
                    10u128.checked_pow(exponent)
                } else {
                    2u128.checked_pow(exponent)
                };
                // A resolution finer than a unit per 2^-64 s makes no sense; ignore it.
                if let Some(units) = units.filter(|&u| u > 0 && u <= 1 << 64) {
                    units_per_second = units;
                }
            }
            InterfaceDescriptionOption::IfTsOffset(offset) => offset_secs = offset,
            _ => {}
        }
    }
    Interface {
        link_type,
        units_per_second,
        offset_secs,
    }
}

fn header_problem(error: PcapError) -> String {
    match error {
        PcapError::IoError(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
            "the file is cut short in its header".into()
        }
        PcapError::IoError(e) => crate::error::os_text(&e),
        other => format!("its header is malformed ({other})"),
    }
}

fn unsupported_link(link_type: u32) -> String {
    format!(
        "link type {link_type} is not supported \
         (Ethernet, Linux cooked, raw IP and loopback/null are)"
    )
}

/// Reads until `buf` is full or the input ends; how many bytes were read.
fn read_up_to(file: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match file.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pcap_file::DataLink;
    use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
    use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
    use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionBlock;
    use pcap_file::pcapng::{PcapNgBlock, PcapNgWriter};
    use std::borrow::Cow;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A file of its own in the temporary directory, removed when dropped.
    struct TempFile(PathBuf);

    impl TempFile {
        fn with(bytes: &[u8]) -> TempFile {
            static COUNT: AtomicUsize = AtomicUsize::new(0);
            let n = COUNT.fetch_add(1, Ordering::SeqCst);
            let path = std::env::temp_dir()
                .join(format!("tiburoncin-pcap-read-{}-{n}", std::process::id()));
            std::fs::write(&path, bytes).unwrap();
            TempFile(path)
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn raw_ip(payload: &[u8], seq: u32) -> Vec<u8> {
        let builder = etherparse::PacketBuilder::ipv4([127, 0, 0, 1], [127, 0, 0, 1], 64)
            .tcp(40000, 80, seq, 1000);
        let mut out = Vec::new();
        builder.write(&mut out, payload).unwrap();
        out
    }

    fn pcap(nanos: bool) -> Vec<u8> {
        let header = PcapHeader {
            datalink: DataLink::RAW,
            ts_resolution: if nanos {
                TsResolution::NanoSecond
            } else {
                TsResolution::MicroSecond
            },
            ..PcapHeader::default()
        };
        let mut writer = PcapWriter::with_header(Vec::new(), header).unwrap();
        let udp = {
            let b = etherparse::PacketBuilder::ipv4([1, 1, 1, 1], [2, 2, 2, 2], 9).udp(1, 2);
            let mut out = Vec::new();
            b.write(&mut out, b"x").unwrap();
            out
        };
        for (i, data) in [raw_ip(b"one", 1), udp, raw_ip(b"two", 4)]
            .iter()
            .enumerate()
        {
            let time = Duration::new(1_700_000_000 + i as u64, 123_456_000);
            let packet = PcapPacket::new(time, data.len() as u32, data);
            writer.write_packet(&packet).unwrap();
        }
        writer.into_writer()
    }

    fn read_all(path: &Path) -> Result<Vec<CapturedSegment>, Error> {
        let mut reader = CaptureReader::open(path)?;
        let mut all = Vec::new();
        while let Some(segment) = reader.next_segment()? {
            all.push(segment);
        }
        Ok(all)
    }

    #[test]
    fn pcap_in_micro_and_nanoseconds() {
        for nanos in [false, true] {
            let file = TempFile::with(&pcap(nanos));
            let segments = read_all(&file.0).unwrap();
            assert_eq!(segments.len(), 2, "the UDP packet is skipped");
            assert_eq!(segments[0].payload, b"one");
            assert_eq!(segments[1].payload, b"two");
            assert_eq!(segments[1].time, Duration::new(1_700_000_002, 123_456_000));
        }
    }

    fn pcapng() -> Vec<u8> {
        let mut writer = PcapNgWriter::new(Vec::new()).unwrap();
        for resol in [6u8, 9] {
            let idb = InterfaceDescriptionBlock {
                linktype: DataLink::RAW,
                snaplen: 0,
                options: vec![InterfaceDescriptionOption::IfTsResol(resol)],
            };
            writer.write_block(&idb.into_block()).unwrap();
        }
        let data = raw_ip(b"hi", 7);
        for (interface_id, units) in [(0u32, 1_500_000u64), (1, 2_500_000_000)] {
            let epb = EnhancedPacketBlock {
                interface_id,
                // pcap-file carries the raw count of interface units in this field.
                timestamp: Duration::from_nanos(units),
                original_len: data.len() as u32,
                data: Cow::Borrowed(&data),
                options: vec![],
            };
            writer.write_block(&epb.into_block()).unwrap();
        }
        writer.into_inner()
    }

    #[test]
    fn pcapng_timestamps_follow_the_interface_resolution() {
        let file = TempFile::with(&pcapng());
        let segments = read_all(&file.0).unwrap();
        let times: Vec<Duration> = segments.iter().map(|s| s.time).collect();
        assert_eq!(
            times,
            [Duration::from_millis(1500), Duration::from_millis(2500)]
        );
    }

    fn error_text(bytes: &[u8]) -> String {
        let file = TempFile::with(bytes);
        match read_all(&file.0) {
            Ok(segments) => panic!("{} segments from a broken file", segments.len()),
            Err(e) => {
                let text = e.to_string();
                assert!(text.contains(&file.0.display().to_string()), "{text}");
                text
            }
        }
    }

    #[test]
    fn empty_short_and_garbage_files_are_errors() {
        assert!(error_text(b"").ends_with("the file is empty, not a capture"));
        assert!(error_text(b"\xd4\xc3").ends_with("too short to be a pcap or pcapng file"));
        assert!(error_text(b"GET / HTTP/1.1\r\n\r\n").ends_with("not a pcap or pcapng file"));
        let missing = Path::new("/nonexistent/capture.pcap");
        let err = CaptureReader::open(missing).err().unwrap().to_string();
        assert_eq!(
            err,
            "Cannot read /nonexistent/capture.pcap: No such file or directory"
        );
    }

    #[test]
    fn a_capture_cut_anywhere_is_an_error_never_a_panic() {
        let whole = pcap(false);
        for cut in 1..whole.len() {
            let file = TempFile::with(&whole[..cut]);
            // Some cuts fall between packets, and those captures are fine.
            if let Err(e) = read_all(&file.0) {
                let text = e.to_string();
                assert!(
                    text.contains("cut short") || text.contains("too short"),
                    "cut {cut}: {text}"
                );
            }
        }
        let text = error_text(&whole[..whole.len() - 1]);
        assert!(
            text.ends_with("the file is cut short in packet 3"),
            "{text}"
        );
    }

    #[test]
    fn corrupted_captures_never_panic() {
        // Deterministic bit flips over a pcap and a pcapng.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for round in 0..3000 {
            let whole = if round % 2 == 0 { pcap(true) } else { pcapng() };
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let mut broken = whole.clone();
            let at = (x % broken.len() as u64) as usize;
            broken[at] ^= (x >> 32) as u8 | 1;
            let file = TempFile::with(&broken);
            let _ = read_all(&file.0);
        }
    }

    #[test]
    fn packets_on_unknown_link_types_are_counted() {
        let mut writer = PcapNgWriter::new(Vec::new()).unwrap();
        for linktype in [DataLink::RAW, DataLink::Unknown(147)] {
            let idb = InterfaceDescriptionBlock {
                linktype,
                snaplen: 0,
                options: vec![],
            };
            writer.write_block(&idb.into_block()).unwrap();
        }
        let data = raw_ip(b"hi", 7);
        for interface_id in [0u32, 1, 1] {
            let epb = EnhancedPacketBlock {
                interface_id,
                timestamp: Duration::ZERO,
                original_len: data.len() as u32,
                data: Cow::Borrowed(&data),
                options: vec![],
            };
            writer.write_block(&epb.into_block()).unwrap();
        }
        let file = TempFile::with(&writer.into_inner());
        let mut reader = CaptureReader::open(&file.0).unwrap();
        assert_eq!(reader.next_segment().unwrap().unwrap().payload, b"hi");
        assert_eq!(reader.next_segment().unwrap(), None);
        let skipped = reader.skipped();
        assert_eq!(skipped.to_string(), "2 unknown link types (LINKTYPE 147)");
    }

    #[test]
    fn unsupported_link_types_are_named() {
        let header = PcapHeader {
            datalink: DataLink::IEEE802_11,
            ..PcapHeader::default()
        };
        let writer = PcapWriter::with_header(Vec::new(), header).unwrap();
        let text = error_text(&writer.into_writer());
        assert!(text.contains("link type 105 is not supported"), "{text}");
    }
}
