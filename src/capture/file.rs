//! The capture's file: classic pcap or pcapng, written with the `pcap-file` crate.
//!
//! The capture (see the parent module) decides what each packet says; this file
//! only stores packets: the file header, then one record per packet with its
//! timestamp and, in pcapng, its comment. Both formats keep nanoseconds (the pcap
//! "nanosecond" magic; pcapng's `if_tsresol` of 9) and use LINKTYPE_RAW, which holds
//! IPv4 and IPv6 packets alike.
//!
//! The headers and records are written straight into `W` with pcap-file's own
//! types rather than through its writers, because its pcap writer cannot flush the
//! writer it owns, and the logger flushes whenever it is idle. Nothing is
//! allocated per packet: the packet buffer and the comment string move into the
//! pcapng block and come back out.

use std::borrow::Cow;
use std::io::{self, Write};
use std::mem;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use byteorder_slice::NativeEndian;
use pcap_file::pcap::{PcapHeader, PcapPacket};
use pcap_file::pcapng::Block;
use pcap_file::pcapng::blocks::enhanced_packet::{EnhancedPacketBlock, EnhancedPacketOption};
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::blocks::section_header::{SectionHeaderBlock, SectionHeaderOption};
use pcap_file::{DataLink, Endianness, PcapError, TsResolution};

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
    /// The options of the block being written, kept between packets so that their
    /// vector, and the comment string in it, are reused.
    PcapNg {
        options: Vec<EnhancedPacketOption<'static>>,
        comment: String,
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
                    options: Vec::with_capacity(1),
                    comment: String::with_capacity(128),
                }
            }
        };
        Ok(PacketFile {
            out,
            layout,
            last_at: UNIX_EPOCH,
        })
    }

    /// Appends `packet` stamped `at`. In pcapng, `comment` is asked to write the
    /// packet's comment (nothing for none); classic pcap has no place for one.
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
        packet: &mut Vec<u8>,
        comment: impl FnOnce(&mut String),
    ) -> io::Result<()> {
        let at = at.max(self.last_at);
        self.last_at = at;
        let timestamp = at.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
        // At most MAX_PACKET: `packet::write` refuses anything longer.
        let length = packet.len() as u32;
        match &mut self.layout {
            Layout::Pcap => {
                PcapPacket::new(timestamp, length, packet)
                    .write_to::<_, NativeEndian>(&mut self.out, TsResolution::NanoSecond, SNAPLEN)
                    .map_err(into_io)?;
            }
            Layout::PcapNg {
                options,
                comment: text,
            } => {
                text.clear();
                comment(text);
                if !text.is_empty() {
                    options.push(EnhancedPacketOption::Comment(Cow::Owned(mem::take(text))));
                }
                // The block borrows nothing: the buffers move in and come back out.
                let block = Block::EnhancedPacket(EnhancedPacketBlock {
                    interface_id: 0,
                    timestamp,
                    original_len: length,
                    data: Cow::Owned(mem::take(packet)),
                    options: mem::take(options),
                });
                let written = block.write_to::<NativeEndian, _>(&mut self.out);
                if let Block::EnhancedPacket(block) = block {
                    *packet = block.data.into_owned();
                    *options = block.options;
                    if let Some(EnhancedPacketOption::Comment(Cow::Owned(back))) = options.pop() {
                        *text = back;
                    }
                }
                written?;
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

fn into_io(error: PcapError) -> io::Error {
    match error {
        PcapError::IoError(error) => error,
        other => io::Error::other(other),
    }
}
