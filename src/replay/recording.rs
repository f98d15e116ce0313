//! A capture seen as recorded TCP connections: the list of them, and one of them as a
//! stream of events to replay.
//!
//! This joins `capture::read` (packets from the file) to `reassembly` (bytes from the
//! packets) and pulls: the replay asks for the next event of its connection, and only
//! then are more packets read. So replaying a multi-gigabyte capture holds one packet,
//! the reassembler's waiting segments and the current event in memory, never the file.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use crate::capture::decode::Skipped;
use crate::capture::read::CaptureReader;
use crate::capture::shared::SharedPayload;
use crate::direction::Direction;
use crate::error::Error;
use crate::replay::reassembly::{Reassembler, StreamEvent, StreamInfo};

/// Every TCP connection in the capture, in Wireshark's `tcp.stream` order.
pub fn list(path: &Path) -> Result<Vec<StreamInfo>, Error> {
    Ok(listing(path, None)?.streams)
}

/// What `--list` shows of a capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    /// Every TCP connection, in Wireshark's `tcp.stream` order.
    pub streams: Vec<StreamInfo>,
    /// The packets that were not used, by reason.
    pub skipped: Skipped,
}

/// The capture's connections, `client` (`--client`) being A wherever it appears, and
/// what was skipped. The listing needs the payloads' lengths, never their bytes, so
/// none is copied out of the reader's buffer (on a bulk capture that copy was most
/// of this pass's work).
pub fn listing(path: &Path, client: Option<SocketAddr>) -> Result<Listing, Error> {
    let mut reader = CaptureReader::open(path)?;
    let mut reassembler = Reassembler::counting(client);
    let mut events = Vec::new();
    while let Some(segment) = reader.next_segment_with()? {
        reassembler.push(segment, &mut events);
        events.clear();
    }
    reassembler.finish(&mut events);
    Ok(Listing {
        streams: reassembler.streams().cloned().collect(),
        skipped: reader.skipped(),
    })
}

/// One connection of a capture, read as it is replayed.
pub struct Recording {
    reader: CaptureReader,
    /// Its payloads share the buffer their packets were read into, so that the bytes
    /// played are the ones read from the file, not a copy of them.
    reassembler: Reassembler<SharedPayload>,
    stream: usize,
    queue: VecDeque<StreamEvent<SharedPayload>>,
    scratch: Vec<StreamEvent<SharedPayload>>,
    finished: bool,
}

impl Recording {
    /// Opens connection `stream` (Wireshark's number) of the capture at `path`.
    pub fn open(path: &Path, stream: usize) -> Result<Recording, Error> {
        Self::open_with_client(path, stream, None)
    }

    /// As `open`, with `client` (`--client`) as A wherever it appears.
    pub fn open_with_client(
        path: &Path,
        stream: usize,
        client: Option<SocketAddr>,
    ) -> Result<Recording, Error> {
        Ok(Recording {
            reader: CaptureReader::open(path)?,
            reassembler: Reassembler::sharing(client),
            stream,
            queue: VecDeque::new(),
            scratch: Vec::new(),
            finished: false,
        })
    }

    /// The connection's next event, reading as much of the file as it takes; `None`
    /// after its last.
    pub fn next_event(&mut self) -> Result<Option<StreamEvent<SharedPayload>>, Error> {
        loop {
            if let Some(event) = self.queue.pop_front() {
                return Ok(Some(event));
            }
            if self.finished {
                return Ok(None);
            }
            self.read_more()?;
        }
    }

    /// Reads ahead until the connection's first packet: false if the capture has none.
    /// (So a wrong `--stream` fails before anyone connects, without reading the whole
    /// file when the connection is near its start.)
    pub fn exists(&mut self) -> Result<bool, Error> {
        while self.info().is_none() && !self.finished {
            self.read_more()?;
        }
        Ok(self.info().is_some())
    }

    /// Feeds the next segment of the file to the reassembler (or tells it the file
    /// has ended), keeping what it says of our connection.
    fn read_more(&mut self) -> Result<(), Error> {
        match self.reader.next_segment_with()? {
            Some(segment) => self.reassembler.push(segment, &mut self.scratch),
            None => {
                self.reassembler.finish(&mut self.scratch);
                self.finished = true;
            }
        }
        self.keep_ours();
        Ok(())
    }

    fn keep_ours(&mut self) {
        let stream = self.stream;
        self.queue.extend(
            self.scratch
                .drain(..)
                .filter(|event| event_stream(event) == stream),
        );
    }

    /// What the capture says about this connection so far (all of it once
    /// `next_event` has returned `None`); `None` if it has not been seen yet.
    pub fn info(&self) -> Option<&StreamInfo> {
        self.reassembler.streams().nth(self.stream)
    }
}

fn event_stream<P>(event: &StreamEvent<P>) -> usize {
    match event {
        StreamEvent::Data { stream, .. }
        | StreamEvent::Gap { stream, .. }
        | StreamEvent::End { stream, .. } => *stream,
    }
}

/// Consecutive bytes of one direction: what one side said before the other spoke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Turn {
    pub dir: Direction,
    /// When its first bytes were captured.
    pub time: Duration,
    pub bytes: Vec<u8>,
}

/// All the turns of connection `stream` (for small captures: tests and `--dump`).
pub fn turns(path: &Path, stream: usize) -> Result<Vec<Turn>, Error> {
    turns_with_client(path, stream, None)
}

/// As `turns`, with `client` (`--client`) as A wherever it appears.
pub fn turns_with_client(
    path: &Path,
    stream: usize,
    client: Option<SocketAddr>,
) -> Result<Vec<Turn>, Error> {
    let mut recording = Recording::open_with_client(path, stream, client)?;
    let mut turns: Vec<Turn> = Vec::new();
    while let Some(event) = recording.next_event()? {
        if let StreamEvent::Data {
            dir, time, bytes, ..
        } = event
        {
            match turns.last_mut() {
                Some(turn) if turn.dir == dir => turn.bytes.extend_from_slice(&bytes),
                _ => turns.push(Turn {
                    dir,
                    time,
                    bytes: bytes.to_vec(),
                }),
            }
        }
    }
    Ok(turns)
}

/// How a connection opens, to tell which recorded connection a live client is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opening {
    pub stream: usize,
    /// Whether the client spoke first (else the server did, or nobody did).
    pub client_first: bool,
    /// The client's first turn, its first `OPENING_BYTES` at most.
    pub first: Vec<u8>,
}

/// How much of a client's first turn is kept to tell connections apart.
pub const OPENING_BYTES: usize = 64 * 1024;

/// How each of `streams` opens, in one pass over the capture, which stops as soon as
/// every opening is known (a long one-way transfer is not read to its end).
pub fn openings(path: &Path, streams: &[usize]) -> Result<Vec<Opening>, Error> {
    let mut reader = CaptureReader::open(path)?;
    let mut reassembler = Reassembler::new();
    let mut found: Vec<Opening> = streams
        .iter()
        .map(|&stream| Opening {
            stream,
            client_first: false,
            first: Vec::new(),
        })
        .collect();
    // Whether each connection's first turn is over, or as much of it kept as is.
    let mut over = vec![false; streams.len()];
    let mut events = Vec::new();
    let mut more = true;
    while more && !over.iter().all(|&known| known) {
        match reader.next_segment()? {
            Some(segment) => reassembler.push(segment, &mut events),
            None => {
                reassembler.finish(&mut events);
                more = false;
            }
        }
        for event in events.drain(..) {
            let StreamEvent::Data {
                stream, dir, bytes, ..
            } = event
            else {
                continue;
            };
            let Some(k) = streams.iter().position(|&s| s == stream) else {
                continue;
            };
            if over[k] {
                continue;
            }
            if dir == Direction::AtoB {
                let opening = &mut found[k];
                opening.client_first = true;
                let room = OPENING_BYTES.saturating_sub(opening.first.len());
                opening
                    .first
                    .extend_from_slice(&bytes[..bytes.len().min(room)]);
                // More of the turn would change nothing.
                over[k] = opening.first.len() == OPENING_BYTES;
            } else {
                over[k] = true;
            }
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::Format;
    use crate::output::capture::{Capture, Connection};
    use std::time::{SystemTime, UNIX_EPOCH};

    fn at(ms: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_700_000_000) + Duration::from_millis(ms)
    }

    /// One file with two connections: a client that says more than `OPENING_BYTES`
    /// before the server answers, then a server that speaks first.
    fn two_connections(long: &[u8]) -> Vec<u8> {
        let b = "127.0.0.1:7".parse().unwrap();
        let a = "127.0.0.1:40001".parse().unwrap();
        let mut first = Capture::new(Vec::new(), Format::Pcap, Connection::new(a, b, at(0)))
            .expect("a capture into memory");
        for piece in long.chunks(30_000) {
            first.delivered(Direction::AtoB, piece, at(1)).unwrap();
        }
        first.delivered(Direction::BtoA, b"ok", at(2)).unwrap();
        first.finish(at(3)).unwrap();
        let a = "127.0.0.1:40002".parse().unwrap();
        let connection = Connection::new(a, b, at(4));
        let mut second = Capture::continuing(first.into_inner(), Format::Pcap, connection)
            .expect("a capture into memory");
        second
            .delivered(Direction::BtoA, b"220 hello\r\n", at(5))
            .unwrap();
        second
            .delivered(Direction::AtoB, b"QUIT\r\n", at(6))
            .unwrap();
        second.finish(at(7)).unwrap();
        second.into_inner()
    }

    /// The listing as it was made before it kept only lengths: every payload copied.
    fn listing_with_bytes(path: &Path, client: Option<SocketAddr>) -> Listing {
        let mut reader = CaptureReader::open(path).unwrap();
        let mut reassembler = Reassembler::with_client(client);
        let mut events = Vec::new();
        let mut delivered = Vec::new();
        while let Some(segment) = reader.next_segment().unwrap() {
            reassembler.push(segment, &mut events);
            delivered.append(&mut events);
        }
        reassembler.finish(&mut delivered);
        let streams: Vec<StreamInfo> = reassembler.streams().cloned().collect();
        // The counts the listing shows are the bytes the replay would play.
        for info in &streams {
            for dir in Direction::BOTH {
                let played: usize = delivered
                    .iter()
                    .filter_map(|event| match event {
                        StreamEvent::Data {
                            stream,
                            dir: d,
                            bytes,
                            ..
                        } if *stream == info.number && *d == dir => Some(bytes.len()),
                        _ => None,
                    })
                    .sum();
                assert_eq!(info.bytes[dir.index()], played as u64);
            }
        }
        Listing {
            streams,
            skipped: reader.skipped(),
        }
    }

    #[test]
    fn the_listing_without_payloads_is_the_listing_with_them() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files: Vec<_> = ["fixtures", "fuzz/seeds"]
            .iter()
            .flat_map(|dir| std::fs::read_dir(root.join(dir)).unwrap())
            .map(|entry| entry.unwrap().path())
            .filter(|path| {
                let ext = path.extension().and_then(|e| e.to_str());
                matches!(ext, Some("pcap" | "pcapng"))
            })
            .collect();
        files.sort();
        assert!(files.len() >= 20, "fixtures missing: {files:?}");
        for path in &files {
            let listed = listing(path, None).unwrap();
            assert_eq!(listed, listing_with_bytes(path, None), "{}", path.display());
            assert!(!listed.streams.is_empty(), "{}", path.display());
            // And with the server given as the client, which turns every connection.
            let server = Some(listed.streams[0].b);
            let turned = listing(path, server).unwrap();
            assert_eq!(
                turned,
                listing_with_bytes(path, server),
                "{}",
                path.display()
            );
        }
    }

    #[test]
    fn openings_keep_the_clients_first_turn_up_to_the_limit() {
        let long: Vec<u8> = (0..3 * OPENING_BYTES).map(|i| (i % 251) as u8).collect();
        let dir = std::env::temp_dir().join(format!("tiburoncin-openings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("two.pcap");
        std::fs::write(&path, two_connections(&long)).unwrap();
        let client_first = Opening {
            stream: 0,
            client_first: true,
            first: long[..OPENING_BYTES].to_vec(),
        };
        let server_first = Opening {
            stream: 1,
            client_first: false,
            first: Vec::new(),
        };
        let both = openings(&path, &[0, 1]).unwrap();
        let only_second = openings(&path, &[1]).unwrap();
        let only_first = openings(&path, &[0]).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(both, [client_first.clone(), server_first.clone()]);
        assert_eq!(only_second, [server_first]);
        assert_eq!(only_first, [client_first]);
    }
}
