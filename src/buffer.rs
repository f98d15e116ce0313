//! The user-space buffer of one direction, as credit and recycled chunks.
//!
//! The original keeps a circular buffer of `-b` bytes per direction. Here the bytes
//! travel from the reader thread to the writer thread in `Chunk`s instead, and the
//! buffer's size becomes a *credit*: the reader starts with `-b` bytes of it, spends
//! what it reads, and gets a chunk's worth back only once all of that chunk has been
//! written to the consumer. So at most `-b` bytes wait in user space for the
//! consumer, and a read never asks the socket for more than the free space — the
//! backpressure that makes "B is N bytes behind" mean what it says.
//!
//! Chunks are allocated lazily, up to a fixed count, and then recycled forever: the
//! hot path allocates nothing. A chunk is shared (`Arc`) because the logger reads its
//! bytes while the writer writes them. Its credit goes back as soon as it is written,
//! but its memory only once the last one to look at it is done: straight from the
//! writer when no logger watches, else through the logger after it has shown the
//! chunk, so the reader always gets it back unshared. A logger that lags behind thus
//! holds on to chunks, and when all are out the reader waits for one: the logger's
//! own backpressure, separate from the consumer's.

use std::io::{self, Read};
use std::ops::Deref;
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender, bounded, select};

/// No single read asks for more than this; bigger buffers are several chunks.
const MAX_CHUNK: usize = 64 * 1024;

/// Chunks that may exist beyond the ones needed to hold the full credit, so that a
/// reader with credit left is not kept waiting for a buffer to come home.
const SPARE_CHUNKS: usize = 3;

#[derive(Debug)]
struct Buf {
    bytes: Box<[u8]>,
    len: usize,
}

/// Bytes read from one side, on their way to the other. Cloning shares them.
#[derive(Debug, Clone)]
pub struct Chunk(Arc<Buf>);

impl Deref for Chunk {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0.bytes[..self.0.len]
    }
}

/// An empty chunk the reader holds exclusively, and how much of it it may fill.
pub struct Blank {
    buf: Arc<Buf>,
    room: usize,
}

impl Blank {
    /// One `read(2)` into the free space. Ok(0) is end-of-stream.
    pub fn read_from(&mut self, mut producer: impl Read) -> io::Result<usize> {
        let room = self.room;
        // A `Blank` is only made from an unshared buffer (see `Credit::blank`).
        let buf = Arc::get_mut(&mut self.buf).ok_or_else(|| io::Error::other("chunk shared"))?;
        producer.read(&mut buf.bytes[..room])
    }
}

/// The reader's side of a direction's buffer: its credit and its spare chunks.
pub struct Credit {
    limit: usize,
    free: usize,
    chunk_size: usize,
    spares: Vec<Arc<Buf>>,
    allocated: usize,
    max_chunks: usize,
    returned: Receiver<Return>,
}

/// What goes back to a reader.
enum Return {
    /// This many bytes were written: free space again.
    Credit(usize),
    /// A chunk whose credit already went back, now that nobody looks at it any more.
    Buffer(Chunk),
    /// A written chunk nobody else looks at: its credit and its memory at once.
    Spent(Chunk),
}

/// The way credit and chunks go back to their reader.
#[derive(Clone)]
pub struct Recycler(Sender<Return>);

impl Recycler {
    /// `n` bytes of a chunk were all written, and the chunk goes home another way.
    pub fn credit(&self, n: usize) {
        self.send(Return::Credit(n));
    }

    /// A chunk whose credit went back already.
    pub fn buffer(&self, chunk: Chunk) {
        self.send(Return::Buffer(chunk));
    }

    /// A written chunk, credit and memory together.
    pub fn spent(&self, chunk: Chunk) {
        self.send(Return::Spent(chunk));
    }

    fn send(&self, message: Return) {
        // The channel holds two messages for every chunk that can exist, so this never
        // blocks; if the reader is gone the message is simply dropped.
        let _ = self.0.try_send(message);
    }
}

/// A direction's buffer of `limit` bytes: the credit for its reader, and the recycler
/// through which spent chunks go back to it.
pub fn user_space_buffer(limit: usize) -> (Credit, Recycler) {
    let chunk_size = limit.clamp(1, MAX_CHUNK);
    let max_chunks = limit.div_ceil(chunk_size) + SPARE_CHUNKS;
    let (tx, rx) = bounded(2 * max_chunks);
    let credit = Credit {
        limit,
        free: limit,
        chunk_size,
        spares: Vec::new(),
        allocated: 0,
        max_chunks,
        returned: rx,
    };
    (credit, Recycler(tx))
}

impl Credit {
    /// Waits until there is free space and a chunk to read into. `None` when `stop`
    /// is closed while waiting: the relay is being torn down.
    pub fn blank(&mut self, stop: &Receiver<()>) -> Option<Blank> {
        loop {
            while let Ok(message) = self.returned.try_recv() {
                self.take_back(message);
            }
            if self.free > 0 {
                if let Some(buf) = self.spare() {
                    let room = self.free.min(self.chunk_size);
                    return Some(Blank { buf, room });
                }
            }
            select! {
                recv(self.returned) -> message => self.take_back(message.ok()?),
                recv(stop) -> _ => return None,
            }
        }
    }

    /// Turns a filled blank into a chunk of its first `n` bytes, spending `n` of credit.
    pub fn fill(&mut self, mut blank: Blank, n: usize) -> Chunk {
        debug_assert!(n <= blank.room);
        if let Some(buf) = Arc::get_mut(&mut blank.buf) {
            buf.len = n;
        }
        self.free -= n;
        Chunk(blank.buf)
    }

    /// Gives an unused blank back (the read returned nothing).
    pub fn put_back(&mut self, blank: Blank) {
        self.spares.push(blank.buf);
    }

    /// True when every chunk is home: nothing waits to be written.
    pub fn is_full(&self) -> bool {
        self.free == self.limit
    }

    /// The reader wrote `n` bytes itself: their space is free again at once.
    pub fn restore(&mut self, n: usize) {
        self.free += n;
    }

    /// A chunk the reader wrote itself and nobody else looks at.
    pub fn keep(&mut self, chunk: Chunk) {
        self.restore(chunk.len());
        self.spares.push(chunk.0);
    }

    fn take_back(&mut self, message: Return) {
        match message {
            Return::Credit(n) => self.restore(n),
            Return::Buffer(chunk) => self.spares.push(chunk.0),
            Return::Spent(chunk) => self.keep(chunk),
        }
    }

    /// An unshared buffer: a spare, or a new one while under the count.
    fn spare(&mut self) -> Option<Arc<Buf>> {
        while let Some(mut buf) = self.spares.pop() {
            if Arc::get_mut(&mut buf).is_some() {
                return Some(buf);
            }
            // Still shared: cannot happen by the relay's rules (debug builds, which the
            // tests run, stop here), but a shared buffer must never be written, so a
            // release build forgets it and makes another.
            debug_assert!(false, "a chunk came home still shared");
            self.allocated -= 1;
        }
        if self.allocated < self.max_chunks {
            self.allocated += 1;
            return Some(Arc::new(Buf {
                bytes: vec![0; self.chunk_size].into_boxed_slice(),
                len: 0,
            }));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn never() -> Receiver<()> {
        crossbeam_channel::never()
    }

    fn read(credit: &mut Credit, data: &[u8]) -> Chunk {
        let mut blank = credit.blank(&never()).unwrap();
        let n = blank.read_from(data).unwrap();
        credit.fill(blank, n)
    }

    #[test]
    fn a_read_never_asks_for_more_than_the_free_space() {
        let (mut credit, recycler) = user_space_buffer(10);
        let first = read(&mut credit, &[1; 64]);
        assert_eq!(first.len(), 10);
        // No credit left: waiting for a blank must block, and a closed stop ends it.
        let (stop_tx, stop_rx) = bounded::<()>(0);
        drop(stop_tx);
        assert!(credit.blank(&stop_rx).is_none());
        recycler.spent(first);
        let second = read(&mut credit, &[2; 64]);
        assert_eq!(&second[..], &[2; 10]);
    }

    #[test]
    fn credit_comes_back_chunk_by_chunk() {
        let (mut credit, recycler) = user_space_buffer(100);
        let a = read(&mut credit, &[1; 30]);
        let b = read(&mut credit, &[2; 30]);
        let c = read(&mut credit, &[3; 64]);
        assert_eq!((a.len(), b.len(), c.len()), (30, 30, 40));
        recycler.spent(b);
        assert_eq!(read(&mut credit, &[4; 64]).len(), 30);
    }

    #[test]
    fn chunks_are_recycled_not_reallocated() {
        let (mut credit, recycler) = user_space_buffer(8);
        for round in 0..1000u32 {
            let chunk = read(&mut credit, &round.to_le_bytes());
            assert_eq!(&chunk[..], &round.to_le_bytes());
            recycler.spent(chunk);
        }
        assert_eq!(credit.allocated, 1);
    }

    #[test]
    fn big_buffers_are_several_chunks() {
        let (mut credit, _recycler) = user_space_buffer(3 * MAX_CHUNK);
        let data = vec![7; 4 * MAX_CHUNK];
        let sizes: Vec<usize> = (0..3).map(|_| read(&mut credit, &data).len()).collect();
        assert_eq!(sizes, vec![MAX_CHUNK; 3]);
        assert_eq!(credit.free, 0);
    }
}
