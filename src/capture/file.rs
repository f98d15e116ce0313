//! The capture's file: classic pcap or pcapng, written with the `pcap-file` crate.
//!
//! The capture (see the parent module) decides what each packet says; this file
//! only stores packets: the file header, then one record per packet with its
//! timestamp and, in pcapng, its comment. Both formats keep nanoseconds (the pcap
//! "nanosecond" magic; pcapng's `if_tsresol` of 9) and use LINKTYPE_RAW, which holds
//! IPv4 and IPv6 packets alike.
//!
//! The file headers are written straight into `W` with pcap-file's own types
//! rather than through its writers, because its pcap writer cannot flush the writer
//! it owns, and the logger flushes whenever it is idle. The per-packet records are
//! laid out here: pcap-file's types want the packet in one slice, which would mean
//! copying every payload behind its headers first, and its pcapng block writes each
//! field with a call of its own. Nothing is allocated per packet.

use std::borrow::Cow;
use std::io::{self, IoSlice, Write};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use byteorder_slice::NativeEndian;
use pcap_file::pcap::PcapHeader;
use pcap_file::pcapng::Block;
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::blocks::section_header::{SectionHeaderBlock, SectionHeaderOption};
use pcap_file::{DataLink, Endianness, PcapError, TsResolution};

use crate::capture::gather::write_all_vectored;
use crate::capture::packet;

/// No packet is longer (see `packet::MAX_PACKET`), so none is ever cut.
pub const SNAPLEN: u32 = packet::MAX_PACKET as u32;
/// pcapng `if_tsresol`: timestamps count nanoseconds (10^-9 s).
pub const NANOSECONDS: u8 = 9;

/// Which file format to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Pcap,
    PcapNg,
}

impl Format {
    /// pcapng for a `.pcapng` path, classic pcap for anything else.
    pub fn for_path(path: &Path) -> Format {
        match path.extension() {
            Some(ext) if ext.eq_ignore_ascii_case("pcapng") => Format::PcapNg,
            _ => Format::Pcap,
        }
    }
}

/// The per-format state.
enum Layout {
    Pcap,
    /// The comment of the packet being written and the block's fields after the
    /// packet, kept between packets so that their memory is reused.
    PcapNg {
        comment: String,
        trailer: Vec<u8>,
    },
}

/// A capture file being written into `W`.
pub struct PacketFile<W: Write> {
    out: W,
    layout: Layout,
    /// The latest timestamp written (see `write`).
    last_at: SystemTime,
}

impl<W: Write> PacketFile<W> {
    /// Writes the file header.
    pub fn new(out: W, format: Format) -> io::Result<PacketFile<W>> {
        Self::start(out, format, true)
    }

    /// Goes on writing a file whose header is written already (`-k`: each connection
    /// writes its packets through a `PacketFile` of its own into the one file).
    pub fn continuing(out: W, format: Format) -> io::Result<PacketFile<W>> {
        Self::start(out, format, false)
    }

    fn start(mut out: W, format: Format, with_header: bool) -> io::Result<PacketFile<W>> {
        let layout = match format {
            Format::Pcap => {
                let header = PcapHeader {
                    snaplen: SNAPLEN,
                    datalink: DataLink::RAW,
                    ts_resolution: TsResolution::NanoSecond,
                    endianness: Endianness::native(),
                    ..PcapHeader::default()
                };
                if with_header {
                    header.write_to(&mut out).map_err(into_io)?;
                }
                Layout::Pcap
            }
            Format::PcapNg => {
                let section = SectionHeaderBlock {
                    endianness: Endianness::native(),
                    options: vec![SectionHeaderOption::UserApplication(Cow::Borrowed(
                        concat!("tiburoncin ", env!("CARGO_PKG_VERSION")),
                    ))],
                    ..SectionHeaderBlock::default()
                };
                let interface = InterfaceDescriptionBlock {
                    linktype: DataLink::RAW,
                    snaplen: SNAPLEN,
                    options: vec![
                        InterfaceDescriptionOption::IfName(Cow::Borrowed("tiburoncin")),
                        InterfaceDescriptionOption::IfDescription(Cow::Borrowed(
                            "A <-> B as relayed by tiburoncin",
                        )),
                        InterfaceDescriptionOption::IfTsResol(NANOSECONDS),
                    ],
                };
                if with_header {
                    for block in [
                        Block::SectionHeader(section),
                        Block::InterfaceDescription(interface),
                    ] {
                        block.write_to::<NativeEndian, _>(&mut out)?;
                    }
                }
                Layout::PcapNg {
                    comment: String::with_capacity(128),
                    trailer: Vec::with_capacity(256),
                }
            }
        };
        Ok(PacketFile {
            out,
            layout,
            last_at: UNIX_EPOCH,
        })
    }

    /// Appends the packet made of `headers` then `payload`, stamped `at`. In
    /// pcapng, `comment` is asked to write the packet's comment (nothing for none);
    /// classic pcap has no place for one.
    ///
    /// The record's fields, the two parts of the packet and the fields after it go
    /// out in one vectored write: the payload is never copied into a packet buffer
    /// first. (A `GatherWriter` gathers the small parts and hands a long payload to
    /// the kernel uncopied, in one `writev` with the parts before and after it, so
    /// that nothing of the packet is left over for a write of its own.)
    ///
    /// Each event is stamped when its system call returned, but events of the two
    /// directions can reach the logger a few microseconds out of that order (a
    /// writer sends its `Wrote` after the write returned, and by then the consumer
    /// may have answered and the other reader logged the answer). Packets keep the
    /// logger's order, which is a valid TCP history, so a stamp earlier than the
    /// last one written is raised to it: the file stays in time order.
    pub fn write(
        &mut self,
        at: SystemTime,
        headers: &[u8],
        payload: &[u8],
        comment: impl FnOnce(&mut String),
    ) -> io::Result<()> {
        let at = at.max(self.last_at);
        self.last_at = at;
        let timestamp = at.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
        // At most MAX_PACKET: `packet::write_headers` refuses anything longer.
        let length = (headers.len() + payload.len()) as u32;
        match &mut self.layout {
            Layout::Pcap => {
                // The record header: seconds, nanoseconds, captured and original
                // length (the same: nothing is cut), in the file's byte order.
                let mut record = [0u8; 16];
                let seconds = timestamp.as_secs() as u32;
                record[..4].copy_from_slice(&seconds.to_ne_bytes());
                record[4..8].copy_from_slice(&timestamp.subsec_nanos().to_ne_bytes());
                record[8..12].copy_from_slice(&length.to_ne_bytes());
                record[12..].copy_from_slice(&length.to_ne_bytes());
                let parts = [&record[..], headers, payload];
                write_all_vectored(&mut self.out, &mut parts.map(IoSlice::new))?;
            }
            Layout::PcapNg {
                comment: text,
                trailer,
            } => {
                text.clear();
                comment(text);
                let block = EnhancedPacket {
                    timestamp,
                    length,
                    packet: [headers, payload],
                    comment: text,
                };
                block.write(&mut self.out, trailer)?;
            }
        }
        Ok(())
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

/// pcapng's Enhanced Packet Block type.
const ENHANCED_PACKET: u32 = 6;
/// The `opt_comment` option code, and `opt_endofopt`'s.
const OPT_COMMENT: u16 = 1;
const OPT_END: u16 = 0;

/// One Enhanced Packet Block: a packet in two parts, and its comment (empty: none).
struct EnhancedPacket<'a> {
    timestamp: Duration,
    length: u32,
    packet: [&'a [u8]; 2],
    comment: &'a str,
}

impl EnhancedPacket<'_> {
    /// Writes the block as the pcapng specification (and pcap-file's reader) has
    /// it: type, total length, interface 0, the timestamp in two halves, captured
    /// and original length, the packet padded to 32 bits, the comment option and the
    /// end of options when there is a comment, and the total length again. What
    /// follows the packet is laid out in `trailer`.
    fn write(&self, out: &mut impl Write, trailer: &mut Vec<u8>) -> io::Result<()> {
        let padding = |len: usize| (4 - len % 4) % 4;
        let comment = self.comment;
        let data_pad = padding(self.length as usize);
        let options_len = if comment.is_empty() {
            0
        } else {
            4 + comment.len() + padding(comment.len()) + 4
        };
        // Eight words of fields, the padded packet and the options; a comment is a
        // few dozen bytes, so this stays well within 32 bits.
        let total = (32 + self.length as usize + data_pad + options_len) as u32;
        let nanos = self.timestamp.as_nanos() as u64;
        let mut fields = [0u8; 28];
        for (i, word) in [
            ENHANCED_PACKET,
            total,
            0,
            (nanos >> 32) as u32,
            nanos as u32,
            self.length,
            self.length,
        ]
        .into_iter()
        .enumerate()
        {
            fields[i * 4..i * 4 + 4].copy_from_slice(&word.to_ne_bytes());
        }
        const ZEROS: [u8; 3] = [0; 3];
        trailer.clear();
        trailer.extend_from_slice(&ZEROS[..data_pad]);
        if !comment.is_empty() {
            trailer.extend_from_slice(&OPT_COMMENT.to_ne_bytes());
            trailer.extend_from_slice(&(comment.len() as u16).to_ne_bytes());
            trailer.extend_from_slice(comment.as_bytes());
            trailer.extend_from_slice(&ZEROS[..padding(comment.len())]);
            trailer.extend_from_slice(&OPT_END.to_ne_bytes());
            trailer.extend_from_slice(&OPT_END.to_ne_bytes());
        }
        trailer.extend_from_slice(&total.to_ne_bytes());
        let parts = [&fields[..], self.packet[0], self.packet[1], &trailer[..]];
        write_all_vectored(out, &mut parts.map(IoSlice::new))
    }
}

fn into_io(error: PcapError) -> io::Error {
    match error {
        PcapError::IoError(error) => error,
        other => io::Error::other(other),
    }
}
